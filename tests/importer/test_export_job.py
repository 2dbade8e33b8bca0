"""The system owner's export as a job: a Celery task writes the CSV into private storage,
the job page offers the download (logged), the file expires, the broker may be down.

Tasks run eagerly here (as the import tests); tests/integration/test_export_worker.py
runs one export through a real worker process."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.translation import override

from clients.models import Client
from datapolicy.models import AccessLog
from measures.exporter import export_sessions
from measures.importer import import_sessions
from measures.models import ExportJob
from tests.conftest import OrgPersonas

HEADER = "client_code;therapist;unit;session_date;ors_total;srs_total"
LINES = [
    "AB-1;alpha-therapist_a;ung;2025-01-10;12,5;38",
    "AB-1;alpha-therapist_a;ung;2025-01-17;14;39",
    "CD-2;alpha-therapist_a;ung;2025-02-03;20;36",
]


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def data(org1: OrgPersonas) -> OrgPersonas:
    text = "\n".join([HEADER, *LINES]) + "\n"
    assert import_sessions(actor=org1.owner, organisation=org1.org, data=text.encode()).ok
    return org1


def _start(client: Any, capture: Any) -> ExportJob:
    with capture(execute=True):
        r = client.post(reverse("export_sessions"))
    assert r.status_code == 302
    job = ExportJob.dangerously_unscoped.order_by("-pk").first()
    assert job is not None
    assert r["Location"] == reverse("export_job", kwargs={"pk": job.pk})
    return job


def _urls(job: ExportJob) -> list[str]:
    return [
        reverse(name, kwargs={"pk": job.pk})
        for name in ("export_job", "export_job_status", "export_job_download")
    ]


def _exports(org: Any) -> Any:
    return AccessLog.objects.filter(organisation=org, action="export")


def test_task_writes_the_file_and_the_download_is_the_export(
    client: Any, data: OrgPersonas, django_capture_on_commit_callbacks: Any
) -> None:
    org = data.org
    client.force_login(data.owner)
    job = _start(client, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.status == "done" and (job.sessions, job.clients) == (3, 2)
    # Private storage: under MEDIA_ROOT, a random name, and no URL serves media.
    assert job.file.name.startswith("exports/") and "AB-1" not in job.file.name
    assert os.path.exists(job.file.path)
    with pytest.raises(Resolver404):
        resolve("/media/" + job.file.name)

    status = client.get(reverse("export_job_status", kwargs={"pk": job.pk})).json()
    assert status["finished"] and status["status"] == "done"
    download_url = reverse("export_job_download", kwargs={"pk": job.pk})
    assert status["download_url"] == download_url
    page = client.get(reverse("export_job", kwargs={"pk": job.pk}))
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    assert f'href="{download_url}"' in page.content.decode()

    r = client.get(download_url)
    assert r.status_code == 200 and r["Content-Type"] == "text/csv; charset=utf-8"
    assert r["Cache-Control"] == "no-store"
    day = timezone.localdate().isoformat()
    assert r["Content-Disposition"] == f'attachment; filename="{org.slug}-sessions-{day}.csv"'
    body = b"".join(r.streaming_content)

    # The access log: the export's entries once (system owner's role, one per client) ...
    sessions_entries = _exports(org).filter(object_type="sessions")
    assert sessions_entries.count() == 1
    assert sessions_entries.get().role == "system_owner"
    per_client = _exports(org).filter(object_type="client")
    ids = set(Client.objects.for_org(org).values_list("pk", flat=True))
    assert sorted(per_client.values_list("client_id", flat=True)) == sorted(ids)
    assert set(per_client.values_list("role", flat=True)) == {"system_owner"}
    # ... and one entry for the download, naming the job (no client, no code).
    downloads = AccessLog.objects.filter(organisation=org, action="download")
    assert list(downloads.values_list("object_type", "object_id", "client_id", "role")) == [
        ("exportjob", job.pk, None, "system_owner")
    ]
    assert downloads.get().path == download_url

    # Byte-identical to what export_sessions returns for the same data (round trip).
    assert body == export_sessions(actor=data.owner, organisation=org).encode("utf-8")


def test_a_second_download_within_the_time_works_and_is_logged(
    client: Any, data: OrgPersonas, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(data.owner)
    job = _start(client, django_capture_on_commit_callbacks)
    url = reverse("export_job_download", kwargs={"pk": job.pk})
    first = b"".join(client.get(url).streaming_content)
    second = b"".join(client.get(url).streaming_content)
    assert first == second and first.startswith(b"client_code,")
    assert AccessLog.objects.filter(organisation=data.org, action="download").count() == 2
    assert _exports(data.org).filter(object_type="sessions").count() == 1
    job.refresh_from_db()
    assert job.downloads == 2


def test_the_task_gets_the_job_id_only(
    client: Any, data: OrgPersonas, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    from measures.tasks import export_run

    sent: list[tuple[Any, Any]] = []
    monkeypatch.setattr(
        export_run, "apply_async", lambda args=None, kwargs=None, **o: sent.append((args, kwargs))
    )
    client.force_login(data.owner)
    job = _start(client, django_capture_on_commit_callbacks)
    assert sent == [((job.pk,), None)]
    job.refresh_from_db()
    assert job.status == "queued" and not job.file


def test_the_task_runs_a_job_once(data: OrgPersonas) -> None:
    from measures.tasks import export_run

    job = ExportJob.objects.create(organisation=data.org, created_by=data.owner)
    assert export_run(job.pk) == "done"
    name = ExportJob.objects.for_org(data.org).get(pk=job.pk).file.name
    assert export_run(job.pk) == "done"
    again = ExportJob.objects.for_org(data.org).get(pk=job.pk)
    assert again.file.name == name
    assert _exports(data.org).filter(object_type="sessions").count() == 1


def test_an_error_in_the_task_fails_the_job_without_data_in_log_or_message(
    data: OrgPersonas, monkeypatch: Any, caplog: Any
) -> None:
    import measures.exports
    from measures.tasks import export_run

    def broken(**kwargs: Any) -> Any:
        raise ValueError("AB-1 12.5")

    monkeypatch.setattr(measures.exports, "export_chunks", broken)
    job = ExportJob.objects.create(organisation=data.org, created_by=data.owner)
    with override("en"):
        assert export_run(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and not job.file
    assert "unexpected error" in job.message and "AB-1" not in job.message
    assert "AB-1" not in caplog.text
    assert not _exports(data.org).exists()


def test_other_organisations_owner_gets_404(
    client: Any, data: OrgPersonas, org2: OrgPersonas, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(data.owner)
    job = _start(client, django_capture_on_commit_callbacks)
    client.force_login(org2.owner)
    for url in _urls(job):
        assert client.get(url).status_code == 404, url
    assert not AccessLog.objects.filter(action="download").exists()


@pytest.mark.parametrize("persona", ["therapist_a", "leader", "analyst", "dp_admin"])
def test_other_roles_get_403(
    client: Any,
    data: OrgPersonas,
    persona: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client.force_login(data.owner)
    job = _start(client, django_capture_on_commit_callbacks)
    client.force_login(data.by_role()[persona])
    for url in _urls(job):
        assert client.get(url).status_code == 403, url
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("export_sessions")).status_code == 403
    assert ExportJob.objects.for_org(data.org).count() == 1
    assert not AccessLog.objects.filter(action="download").exists()


def test_not_logged_in_goes_to_login(
    client: Any, data: OrgPersonas, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(data.owner)
    job = _start(client, django_capture_on_commit_callbacks)
    client.logout()
    login = reverse("login")
    for url in _urls(job):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith(login), url
    r = client.post(reverse("export_sessions"))
    assert r.status_code == 302 and r["Location"].startswith(login)


def test_the_nightly_clean_up_deletes_the_file_and_the_page_says_expired(
    client: Any, data: OrgPersonas, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    from datapolicy.tasks import retention_nightly

    client.force_login(data.owner)
    job = _start(client, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    path = job.file.path
    url = reverse("export_job_download", kwargs={"pk": job.pk})
    assert client.get(url).status_code == 200
    retention_nightly()  # within the time: kept
    assert os.path.exists(path)
    written = timezone.now() - dt.timedelta(hours=settings.EXPORT_FILE_HOURS, minutes=1)
    ExportJob.objects.for_org(data.org).filter(pk=job.pk).update(finished_at=written)
    retention_nightly()
    assert not os.path.exists(path)
    job.refresh_from_db()
    assert not job.file and job.file_deleted_at is not None
    assert (job.sessions, job.clients) == (3, 2)  # the counts stay

    with override("en"):
        r = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        page = client.get(reverse("export_job", kwargs={"pk": job.pk}), HTTP_ACCEPT_LANGUAGE="en")
    # Danish first: the pages follow the language cookie, not Accept-Language
    assert r.status_code == 410 and "Filen er udløbet" in r.content.decode()
    assert "Filen er udløbet" in page.content.decode() and f'href="{url}"' not in (
        page.content.decode()
    )
    status = client.get(reverse("export_job_status", kwargs={"pk": job.pk})).json()
    assert status["expired"] and status["download_url"] == ""
    assert AccessLog.objects.filter(action="download").count() == 1  # the refused one: none


def test_a_download_after_the_time_deletes_the_file_before_the_clean_up(
    client: Any, data: OrgPersonas, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    client.force_login(data.owner)
    job = _start(client, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    path = job.file.path
    written = timezone.now() - dt.timedelta(hours=settings.EXPORT_FILE_HOURS, seconds=1)
    ExportJob.objects.for_org(data.org).filter(pk=job.pk).update(finished_at=written)
    r = client.get(reverse("export_job_download", kwargs={"pk": job.pk}))
    assert r.status_code == 410
    assert not os.path.exists(path)
    assert not AccessLog.objects.filter(action="download").exists()


def test_broker_down_fails_the_job_with_a_message(
    client: Any, data: OrgPersonas, broker_down: None, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(data.owner)
    with override("en"):
        job = _start(client, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.status == "failed" and not job.file
    # the message in the language of the request that started it: Danish first
    assert "opgavekø ikke svarer" in job.message
    page = client.get(reverse("export_job", kwargs={"pk": job.pk}))
    assert page.status_code == 200 and "opgavekø ikke svarer" in page.content.decode()
    status = client.get(reverse("export_job_status", kwargs={"pk": job.pk})).json()
    assert status["finished"] and status["status"] == "failed" and not status["download_url"]
    assert not _exports(data.org).exists()


def test_export_jobs_are_listed_on_the_import_page(
    client: Any, data: OrgPersonas, org2: OrgPersonas, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(data.owner)
    job = _start(client, django_capture_on_commit_callbacks)
    other = ExportJob.objects.create(organisation=org2.org, created_by=org2.owner)
    html = client.get(reverse("import_upload")).content.decode()
    assert reverse("export_job", kwargs={"pk": job.pk}) in html
    assert reverse("export_job", kwargs={"pk": other.pk}) not in html
    assert f'action="{reverse("export_sessions")}"' in html
    # The old address leads to the button.
    r = client.get(reverse("export_sessions"))
    assert r.status_code == 302 and r["Location"] == reverse("import_upload") + "#exports"


def test_the_nightly_clean_up_deletes_an_export_file_no_job_names(
    data: OrgPersonas, settings: Any
) -> None:
    """A worker that died after writing its file and before its commit leaves a file
    without a row (the row rolled back). The nightly clean-up deletes such a file once it
    is older than EXPORT_FILE_HOURS; a younger one (a file being written now) stays (a
    job's own file within its time: the test above)."""
    import time as time_module

    from datapolicy.tasks import retention_nightly

    exports = os.path.join(settings.MEDIA_ROOT, "exports")
    os.makedirs(exports, exist_ok=True)
    old, young = os.path.join(exports, "old.csv"), os.path.join(exports, "young.csv")
    for path in (old, young):
        with open(path, "w") as fh:
            fh.write("client_code,therapist\r\nAB-1,x\r\n")
    past = time_module.time() - (settings.EXPORT_FILE_HOURS * 3600 + 60)
    os.utime(old, (past, past))
    retention_nightly()
    assert not os.path.exists(old)
    assert os.path.exists(young)
