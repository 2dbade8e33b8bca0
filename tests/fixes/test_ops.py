"""Production and log gaps (review findings C and D): the import task fails cleanly,
retention logs each erased client, the access log takes the address behind the proxy."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import RequestFactory

from datapolicy.models import AccessLog
from datapolicy.retention import retention_run
from datapolicy.selectors import access_log_search
from datapolicy.services import _client_ip, access_log_write
from measures.models import ImportJob, Session
from tests.conftest import make_episode, record

HEADER = "client_code;therapist;unit;session_date;ors_total;srs_total"
GOOD = "AB-77;alpha-therapist_a;ung;2025-01-10;12,5;38"


# --------------------------------------------------------------------------- C


@pytest.fixture
def media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


@pytest.mark.django_db
def test_import_task_crash_fails_the_job_and_deletes_the_upload(
    org1: Any, media: None, monkeypatch: Any
) -> None:
    from measures import tasks

    def boom(**kwargs: Any) -> Any:
        raise RuntimeError("AB-77 ORS 12,5 exploded")  # health data in the message

    monkeypatch.setattr(tasks, "import_sessions", boom)
    job = ImportJob(organisation=org1.org, created_by=org1.owner, original_name="a.csv")
    job.file.save("a.csv", ContentFile(f"{HEADER}\n{GOOD}\n".encode()), save=False)
    job.save()
    stored = job.file.path
    assert tasks.import_run(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert job.finished_at is not None
    assert not os.path.exists(stored)
    assert not job.file
    assert len(job.errors) == 1
    assert "AB-77" not in str(job.errors) and "12,5" not in str(job.errors)
    assert not Session.objects.for_org(org1.org).exists()
    # Idempotent: a failed job is not run again.
    assert tasks.import_run(job.pk) == "failed"


# --------------------------------------------------------------------------- D1


@pytest.mark.django_db
def test_retention_logs_each_erased_client(org1: Any) -> None:
    old = make_episode(org1, code="OLD-1", started_on=dt.date(2024, 1, 10))
    old2 = make_episode(org1, code="OLD-2", started_on=dt.date(2024, 2, 10))
    kept = make_episode(org1, code="NEW-1", started_on=dt.date(2026, 6, 1))
    record(kept, dt.date(2026, 6, 2), ors="20", srs="36")
    org1.org.retention_days = 365
    org1.org.save()
    old_ids = sorted([old.client_id, old2.client_id])

    run = retention_run(organisation=org1.org, today=dt.date(2026, 6, 15))
    assert run.clients_deleted == 2

    entries = AccessLog.objects.filter(organisation=org1.org, username="retention")
    assert sorted(e.client_id for e in entries) == old_ids
    for e in entries:
        assert (e.action, e.object_type, e.object_id, e.user_id, e.role) == (
            "delete",
            "client",
            e.client_id,
            None,
            "",
        )
    # The erased client's log (right of access) shows the erasure.
    log = access_log_search(organisation=org1.org, client_ids=[old.client_id])
    newest = log.first()
    assert newest is not None and (newest.action, newest.username) == ("delete", "retention")
    assert not access_log_search(
        organisation=org1.org, client_ids=[kept.client_id], action="delete"
    ).exists()
    # A second run deletes and logs nothing more.
    retention_run(organisation=org1.org, today=dt.date(2026, 6, 15))
    assert entries.count() == 2


# --------------------------------------------------------------------------- D2


def _request(**meta: str) -> Any:
    return RequestFactory().get("/x/", REMOTE_ADDR="10.0.0.5", **meta)


def test_without_trusted_proxy_the_connection_address_is_used(settings: Any) -> None:
    settings.FITPLATFORM = {**settings.FITPLATFORM, "TRUSTED_PROXY_COUNT": 0}
    # A client-written header is ignored.
    assert _client_ip(_request(HTTP_X_FORWARDED_FOR="203.0.113.9")) == "10.0.0.5"
    assert _client_ip(None) is None


def test_behind_one_proxy_the_rightmost_forwarded_address_is_used(settings: Any) -> None:
    settings.FITPLATFORM = {**settings.FITPLATFORM, "TRUSTED_PROXY_COUNT": 1}
    # The client forged the first entry; the proxy appended the real address.
    req = _request(HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7")
    assert _client_ip(req) == "198.51.100.7"
    assert _client_ip(_request(HTTP_X_FORWARDED_FOR="2001:db8::1")) == "2001:db8::1"
    # Missing or malformed header: the connection address.
    assert _client_ip(_request()) == "10.0.0.5"
    assert _client_ip(_request(HTTP_X_FORWARDED_FOR="not-an-ip")) == "10.0.0.5"


def test_behind_two_proxies_counts_from_the_right(settings: Any) -> None:
    settings.FITPLATFORM = {**settings.FITPLATFORM, "TRUSTED_PROXY_COUNT": 2}
    req = _request(HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7, 10.0.0.2")
    assert _client_ip(req) == "198.51.100.7"


@pytest.mark.django_db
def test_access_log_entry_records_the_forwarded_address(org1: Any, settings: Any) -> None:
    settings.FITPLATFORM = {**settings.FITPLATFORM, "TRUSTED_PROXY_COUNT": 1}
    entry = access_log_write(
        actor=org1.owner,
        organisation=org1.org,
        action="view",
        object_type="client",
        object_id=1,
        request=_request(HTTP_X_FORWARDED_FOR="198.51.100.7"),
    )
    assert entry.ip == "198.51.100.7"


def test_setting_reads_the_environment() -> None:
    import subprocess
    import sys

    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='fitplatform.settings.base';"
        "django.setup(); from django.conf import settings;"
        "print(settings.FITPLATFORM['TRUSTED_PROXY_COUNT'])"
    )
    env = {**os.environ, "DJANGO_DEBUG": "true", "DJANGO_TRUSTED_PROXY_COUNT": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert out.stdout.strip().splitlines()[-1] == "1", out.stderr
    env.pop("DJANGO_TRUSTED_PROXY_COUNT")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert out.stdout.strip().splitlines()[-1] == "0", out.stderr
