"""Retention: inactive episodes past the organisation's retention are deleted in
batches, idempotently, with a record; statistics are told to recompute."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, Episode, EpisodeUserObjectPermission
from clients.services import episode_close, episode_start
from datapolicy.models import AccessLog, RetentionRun
from datapolicy.retention import retention_run
from datapolicy.services import grant_create
from datapolicy.tasks import retention_nightly
from measures.models import Session
from measures.signals import episode_data_changed
from tests.conftest import make_episode, record

TODAY = dt.date(2026, 6, 15)


@pytest.fixture
def history(org1: Any) -> dict[str, Any]:
    """Episodes of org 1, retention 365 days (cutoff 2025-06-15):

    * old_closed: last session 2024-03-01, closed 2024-03-10 -> deleted, client too
    * old_open: open, last session 2025-01-10 -> deleted (inactive for 17 months)
    * recent_closed: closed 2025-09-01 -> kept
    * shared client: one old episode (deleted) and one recent (kept) -> client kept
    """
    with time_machine.travel(dt.datetime(2024, 2, 1, 9, tzinfo=dt.UTC), tick=False):
        old_closed = make_episode(org1, code="OLD-C", started_on=dt.date(2024, 1, 15))
    with time_machine.travel(dt.datetime(2024, 3, 20, 9, tzinfo=dt.UTC), tick=False):
        record(old_closed, dt.date(2024, 3, 1), ors="20", srs="36")
        episode_close(actor=org1.therapist_a, episode=old_closed, closed_on=dt.date(2024, 3, 10))
    with time_machine.travel(dt.datetime(2025, 1, 20, 9, tzinfo=dt.UTC), tick=False):
        old_open = make_episode(org1, code="OLD-O", started_on=dt.date(2024, 12, 1))
        record(old_open, dt.date(2025, 1, 10), ors="20", srs="36")
        shared_old = make_episode(org1, code="SHARED", started_on=dt.date(2024, 11, 1))
        record(shared_old, dt.date(2024, 11, 5), ors="20", srs="36")
        episode_close(actor=org1.therapist_a, episode=shared_old, closed_on=dt.date(2024, 11, 6))
    with time_machine.travel(dt.datetime(2025, 9, 2, 9, tzinfo=dt.UTC), tick=False):
        recent = make_episode(org1, code="RECENT", started_on=dt.date(2025, 8, 1))
        record(recent, dt.date(2025, 8, 20), ors="20", srs="36")
        episode_close(actor=org1.therapist_a, episode=recent, closed_on=dt.date(2025, 9, 1))
        shared_new = episode_start(
            actor=org1.therapist_a,
            client=shared_old.client,
            unit=org1.unit,
            started_on=dt.date(2025, 9, 1),
            label="2",
        )
    org1.org.retention_days = 365
    org1.org.save()
    return {
        "old_closed": old_closed,
        "old_open": old_open,
        "shared_old": shared_old,
        "recent": recent,
        "shared_new": shared_new,
    }


def _ids(org: Any) -> set[int]:
    return set(Episode.objects.for_org(org).values_list("pk", flat=True))


@pytest.mark.django_db(transaction=False)
class TestRetention:
    def test_deletes_what_is_past_retention_and_records_it(
        self, org1: Any, history: dict[str, Any], django_capture_on_commit_callbacks: Any
    ) -> None:
        h = history
        signals: list[dict[str, Any]] = []

        def listener(**kw: Any) -> None:
            signals.append(kw)

        episode_data_changed.connect(listener)
        try:
            with django_capture_on_commit_callbacks(execute=True):
                run = retention_run(organisation=org1.org, today=TODAY, batch_size=2)
        finally:
            episode_data_changed.disconnect(listener)
        assert _ids(org1.org) == {h["recent"].pk, h["shared_new"].pk}
        assert (run.episodes_deleted, run.clients_deleted) == (3, 2)
        assert run.cutoff == dt.date(2025, 6, 15)
        assert run.details["batches"] == 2  # 3 episodes in batches of 2
        clients = set(Client.objects.for_org(org1.org).values_list("code", flat=True))
        assert clients == {"RECENT", "SHARED"}
        deleted = [h["old_closed"].pk, h["old_open"].pk, h["shared_old"].pk]
        assert not Session.objects.for_org(org1.org).filter(episode_id__in=deleted).exists()
        assert signals and signals[0]["organisation_id"] == org1.org.pk
        assert signals[0]["unit_ids"] == [org1.unit.pk]

    def test_idempotent(self, org1: Any, history: dict[str, Any]) -> None:
        retention_run(organisation=org1.org, today=TODAY)
        again = retention_run(organisation=org1.org, today=TODAY)
        assert (again.episodes_deleted, again.clients_deleted) == (0, 0)
        assert RetentionRun.objects.for_org(org1.org).count() == 2

    def test_no_setting_keeps_everything(self, org1: Any, history: dict[str, Any]) -> None:
        org1.org.retention_days = None
        org1.org.save()
        before = _ids(org1.org)
        run = retention_run(organisation=org1.org, today=TODAY)
        assert _ids(org1.org) == before and run.episodes_deleted == 0

    def test_other_organisations_are_untouched(
        self, org1: Any, org2: Any, history: dict[str, Any]
    ) -> None:
        with time_machine.travel(dt.datetime(2024, 2, 1, 9, tzinfo=dt.UTC), tick=False):
            foreign = make_episode(org2, code="OLD-C", started_on=dt.date(2024, 1, 15))
        retention_run(organisation=org1.org, today=TODAY)
        assert Episode.objects.for_org(org2.org).filter(pk=foreign.pk).exists()

    def test_guardian_rows_and_grants_go_with_the_episode(
        self, org1: Any, history: dict[str, Any]
    ) -> None:
        episode = history["old_open"]
        grant_create(
            actor=org1.therapist_a,
            organisation=org1.org,
            kind="client_graph",
            grantee=org1.leader,
            episode=episode,
            purpose="Supervision",
            starts_at=timezone.now(),
            expires_at=timezone.now() + dt.timedelta(days=3),
        )
        assert EpisodeUserObjectPermission.objects.filter(content_object_id=episode.pk).exists()
        retention_run(organisation=org1.org, today=TODAY)
        assert not EpisodeUserObjectPermission.objects.filter(content_object_id=episode.pk).exists()

    def test_access_log_is_kept(self, org1: Any, history: dict[str, Any]) -> None:
        client_id = history["old_closed"].client_id
        before = AccessLog.objects.filter(organisation=org1.org, client_id=client_id).count()
        retention_run(organisation=org1.org, today=TODAY)
        after = AccessLog.objects.filter(organisation=org1.org, client_id=client_id).count()
        # Kept, plus the entry recording the erasure (tests/fixes/test_ops.py).
        assert after == before + 1 and before > 0

    def test_nightly_task_runs_every_organisation_with_a_setting(
        self, org1: Any, org2: Any, history: dict[str, Any]
    ) -> None:
        with time_machine.travel(dt.datetime(2026, 6, 15, 1, tzinfo=dt.UTC), tick=False):
            run_ids = retention_nightly.delay().get()
        assert len(run_ids) == 1  # org2 has no retention setting
        assert RetentionRun.objects.for_org(org1.org).get().pk == run_ids[0]
        assert not RetentionRun.objects.for_org(org2.org).exists()

    def test_run_now_page(self, org1: Any, client: Any, history: dict[str, Any]) -> None:
        client.force_login(org1.dp_admin)
        response = client.post(reverse("dp_retention_run"))
        assert response.status_code == 302
        run = RetentionRun.objects.for_org(org1.org).get()
        assert run.details["manual"] is True
        assert AccessLog.objects.filter(
            organisation=org1.org, action="retention", object_id=run.pk
        ).exists()


@pytest.mark.django_db
class TestSettings:
    def test_k_below_3_and_short_retention_are_refused(self, org1: Any, client: Any) -> None:
        client.force_login(org1.dp_admin)
        response = client.post(
            reverse("dp_settings"), {"retention_days": "30", "small_cell_k": "2"}
        )
        assert response.status_code == 200
        org1.org.refresh_from_db()
        assert org1.org.small_cell_k == 5 and org1.org.retention_days is None

    def test_approvers_must_be_members(self, org1: Any, org2: Any, client: Any) -> None:
        client.force_login(org1.dp_admin)
        response = client.post(
            reverse("dp_settings"),
            {"retention_days": "730", "small_cell_k": "4", "approvers": [org2.leader.pk]},
        )
        assert response.status_code == 200
        assert not org1.org.report_approvers.exists()
        response = client.post(
            reverse("dp_settings"),
            {"retention_days": "730", "small_cell_k": "4", "approvers": [org1.leader.pk]},
        )
        assert response.status_code == 302
        org1.org.refresh_from_db()
        assert (org1.org.retention_days, org1.org.small_cell_k) == (730, 4)
        assert list(org1.org.report_approvers.all()) == [org1.leader]


@pytest.mark.django_db
def test_management_command(org1: Any, history: dict[str, Any]) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("retention_run", "--org", org1.org.slug, "--today", "2026-06-15", stdout=out)
    assert out.getvalue().strip() == "alpha: cutoff 2025-06-15, 3 episodes, 2 clients deleted"


def test_beat_schedule_names_registered_tasks() -> None:
    from django.conf import settings

    from fitplatform.celery import app

    app.loader.import_default_modules()
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"datapolicy.retention_nightly", "datapolicy.grant_permissions_cleanup"} <= names
    assert names <= set(app.tasks)


@pytest.mark.django_db
def test_grant_cleanup_task(org1: Any) -> None:
    from datapolicy.tasks import grant_permissions_cleanup_nightly

    t0 = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    with time_machine.travel(t0, tick=False):
        episode = make_episode(org1)
        grant_create(
            actor=org1.therapist_a,
            organisation=org1.org,
            kind="client_graph",
            grantee=org1.leader,
            episode=episode,
            purpose="Supervision",
            starts_at=t0,
            expires_at=t0 + dt.timedelta(days=1),
        )
    with time_machine.travel(t0 + dt.timedelta(days=2), tick=False):
        assert grant_permissions_cleanup_nightly.delay().get() == 1
        assert grant_permissions_cleanup_nightly.delay().get() == 0
    assert not EpisodeUserObjectPermission.objects.filter(content_object_id=episode.pk).exists()
