"""The export is written in chunks, a batch of sessions each (memory bounded by the
batch, not by the organisation), and the export job records its progress as it goes.

The batch size is forced small here (settings.EXPORT_BATCH_SESSIONS) so that a test
organisation spans many batches; the file must be byte for byte the one-batch text."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.urls import reverse
from django.utils import timezone

from datapolicy.models import AccessLog
from measures.exporter import ExportCounts, export_chunks, export_sessions
from measures.models import ExportJob, Session
from tests.conftest import OrgPersonas, make_episode, make_org, record


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


def _fill(personas: OrgPersonas) -> int:
    """Generated episodes (the demo's generator) and the cases whose formatting depends on
    the whole client or episode: several episodes of one client (start dates as names),
    two sessions on one date (same_day_order), a code behind the formula guard."""
    from clients.services import episode_close, episode_start
    from measures.demo import generate
    from measures.management.commands.seed_demo import write_generated
    from measures.services import ScoreInput, session_record

    therapists = [personas.therapist_a, personas.therapist_b]
    gen = generate(
        np.random.default_rng(11),
        n_episodes=40,
        therapist_keys=np.array([t.pk for t in therapists]),
        therapist_units=np.array([personas.unit.pk, personas.unit.pk]),
        unit_age_weights={personas.unit.pk: (0.6, 0.3, 0.1)},
        today=timezone.localdate(),
    )
    write_generated(personas.org, gen, code_prefix="GE")
    ep = make_episode(personas, code="-7", started_on=dt.date(2025, 1, 1))
    for day in (5, 12, 19):
        record(ep, dt.date(2025, 1, day), ors="10.0", srs="30.0")
    session_record(
        actor=ep.therapist,
        episode=ep,
        date=dt.date(2025, 1, 19),
        ors=ScoreInput(total=Decimal("11.5")),
        confirm_same_date=True,
    )
    episode_close(actor=personas.therapist_a, episode=ep, closed_on=dt.date(2025, 2, 1))
    ep2 = episode_start(
        actor=personas.therapist_a,
        client=ep.client,
        unit=personas.unit,
        started_on=dt.date(2025, 3, 1),
    )
    record(ep2, dt.date(2025, 3, 2), ors="20.0")
    return Session.objects.for_org(personas.org).count()


@pytest.fixture
def many(org1: OrgPersonas) -> OrgPersonas:
    assert _fill(org1) > 60
    return org1


def _one_batch(personas: OrgPersonas, settings: Any) -> bytes:
    size = settings.EXPORT_BATCH_SESSIONS
    settings.EXPORT_BATCH_SESSIONS = 10**9
    try:
        return export_sessions(actor=None, organisation=personas.org).encode("utf-8")
    finally:
        settings.EXPORT_BATCH_SESSIONS = size


def _rows(chunk: str) -> list[str]:
    return chunk.splitlines()


def test_the_export_yields_a_chunk_per_batch_that_ends_with_a_client(many: OrgPersonas) -> None:
    n = Session.objects.for_org(many.org).count()
    counts = ExportCounts()
    chunks = []
    for chunk in export_chunks(actor=None, organisation=many.org, counts=counts, batch_size=10):
        chunks.append(chunk)
        assert counts.total == n  # counted before the first chunk
    header, batches = chunks[0], chunks[1:]
    assert _rows(header) == [header.rstrip("\r\n")] and header.startswith("client_code,")
    # Streamed: many chunks, none larger than the batch and one client's sessions.
    most_per_client = max(len(_client_rows(batches, c)) for c in _codes(batches))
    assert all(len(_rows(b)) < 10 + most_per_client for b in batches)
    assert len(batches) >= n // (10 + most_per_client) >= 4
    # A client's sessions are in one chunk (episode names and same-day order need them).
    seen: set[str] = set()
    for b in batches:
        codes = {line.split(",")[0] for line in _rows(b)}
        assert not codes & seen
        seen |= codes
    assert (counts.sessions, counts.clients) == (n, len(seen))
    assert sum(len(_rows(b)) for b in batches) == n


def _codes(batches: list[str]) -> set[str]:
    return {line.split(",")[0] for b in batches for line in _rows(b)}


def _client_rows(batches: list[str], code: str) -> list[str]:
    return [line for b in batches for line in _rows(b) if line.split(",")[0] == code]


@pytest.mark.parametrize("size", [1, 3, 10])
def test_a_small_batch_gives_the_same_bytes_as_one_batch(
    many: OrgPersonas, settings: Any, size: int
) -> None:
    whole = _one_batch(many, settings)
    assert "'-7," in whole.decode() and whole.decode().count("\r\n") > 60
    assert any(line.endswith(",2") for line in whole.decode().splitlines())  # same day
    settings.EXPORT_BATCH_SESSIONS = size
    streamed = export_sessions(actor=None, organisation=many.org).encode("utf-8")
    assert streamed == whole


def test_the_job_writes_the_file_in_batches_with_its_progress(
    many: OrgPersonas, settings: Any, client: Any
) -> None:
    from measures.tasks import export_run

    n = Session.objects.for_org(many.org).count()
    whole = _one_batch(many, settings)
    before = AccessLog.objects.order_by("-pk").values_list("pk", flat=True).first()
    settings.EXPORT_BATCH_SESSIONS = 7
    job = ExportJob.objects.create(organisation=many.org, created_by=many.owner)
    assert export_run(job.pk) == "done"
    job.refresh_from_db()
    with job.file.open("rb") as fh:
        assert fh.read() == whole  # byte for byte the one-batch export
    assert (job.sessions_written, job.sessions_total, job.sessions) == (n, n, n)
    assert job.size == len(whole) and job.percent() == 100
    assert os.listdir(os.path.dirname(job.file.path)) == [os.path.basename(job.file.name)]
    # The access log: the same entries as one export_sessions (once, one per client).
    exports = AccessLog.objects.filter(organisation=many.org, action="export", pk__gt=before)
    assert exports.filter(object_type="sessions").count() == 1
    per_client = list(exports.filter(object_type="client").values_list("client_id", flat=True))
    assert len(per_client) == len(set(per_client)) == job.clients

    client.force_login(many.owner)
    status = client.get(reverse("export_job_status", kwargs={"pk": job.pk})).json()
    assert (status["sessions_written"], status["sessions_total"]) == (n, n)
    assert status["percent"] == 100 and status["progress_text"] == f"{n} af {n} sessioner"


def _dies_in_batch(monkeypatch: Any, k: int) -> None:
    """The k-th batch's formatting raises (an error mid-way, after k-1 batches were
    written to the file and logged)."""
    import measures.exporter

    real = measures.exporter._frame
    calls = {"n": 0}

    def frame(organisation: Any, rows: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == k:
            raise ValueError("GE-1 12.5")
        return real(organisation, rows)

    monkeypatch.setattr(measures.exporter, "_frame", frame)


@pytest.mark.django_db(transaction=True)
def test_a_failure_mid_way_leaves_no_file_and_no_entries(
    settings: Any, monkeypatch: Any, tmp_path: Any, caplog: Any
) -> None:
    from measures.tasks import export_run

    personas = make_org("alpha")
    n = _fill(personas)
    settings.EXPORT_BATCH_SESSIONS = 7
    _dies_in_batch(monkeypatch, 4)
    job = ExportJob.objects.create(organisation=personas.org, created_by=personas.owner)
    assert export_run(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and not job.file and job.size == 0
    # Three batches were written (and their progress stored, committed at once) ...
    assert 0 < job.sessions_written < n and job.sessions_total == n
    # ... but no file, neither the partial one nor a final one, and no access-log entry.
    assert os.listdir(tmp_path / "exports") == []
    assert not AccessLog.objects.filter(action="export").exists()
    assert "GE-1" not in caplog.text and "GE-1" not in job.message


@pytest.mark.django_db(transaction=True)
def test_the_progress_is_visible_outside_the_task_while_it_runs(
    settings: Any, monkeypatch: Any
) -> None:
    """The task writes in one transaction; its progress is committed on a connection of
    its own, so another connection (the job page's request) sees it batch by batch."""
    import measures.exports
    from measures.tasks import export_run

    personas = make_org("alpha")
    n = _fill(personas)
    settings.EXPORT_BATCH_SESSIONS = 7
    job = ExportJob.objects.create(organisation=personas.org, created_by=personas.owner)
    page = connections.create_connection(DEFAULT_DB_ALIAS)  # as the polling page
    seen: list[tuple[str, int, int]] = []
    entries: list[int] = []
    real = measures.exports.export_chunks

    def chunks(**kwargs: Any) -> Any:
        for chunk in real(**kwargs):
            yield chunk  # the task writes it and stores its progress
            with page.cursor() as cur:
                cur.execute(
                    "SELECT status, sessions_written, sessions_total FROM measures_exportjob "
                    "WHERE id = %s",
                    [job.pk],
                )
                seen.append(cur.fetchone())
                cur.execute("SELECT count(*) FROM datapolicy_accesslog WHERE action = 'export'")
                entries.append(cur.fetchone()[0])

    monkeypatch.setattr(measures.exports, "export_chunks", chunks)
    try:
        assert export_run(job.pk) == "done"
    finally:
        page.close()
    written = [w for _status, w, _total in seen]
    assert all(status == "running" and total == n for status, _w, total in seen)
    assert written == sorted(written) and written[0] == 0 and written[-1] == n
    assert len({w for w in written if 0 < w < n}) >= n // 14  # batch by batch
    # Before the commit no access-log entry was visible to the page; after it, all.
    assert set(entries) == {0}
    assert AccessLog.objects.filter(action="export", object_type="sessions").count() == 1


def test_the_job_page_shows_the_progress_in_danish(org1: OrgPersonas, client: Any) -> None:
    job = ExportJob.objects.create(
        organisation=org1.org,
        created_by=org1.owner,
        status=ExportJob.Status.RUNNING,
        sessions_written=2500,
        sessions_total=10000,
    )
    client.force_login(org1.owner)
    html = client.get(reverse("export_job", kwargs={"pk": job.pk})).content.decode()
    assert 'id="job-progress" max="100" value="25"' in html
    assert "2500 af 10000 sessioner" in html
    status = client.get(reverse("export_job_status", kwargs={"pk": job.pk})).json()
    assert status["percent"] == 25 and status["progress_text"] == "2500 af 10000 sessioner"
    ExportJob.objects.for_org(org1.org).filter(pk=job.pk).update(
        sessions_written=1, sessions_total=1
    )
    status = client.get(reverse("export_job_status", kwargs={"pk": job.pk})).json()
    assert status["progress_text"] == "1 af 1 session"


def _generated(personas: OrgPersonas, episodes: int) -> int:
    from measures.demo import generate
    from measures.management.commands.seed_demo import write_generated

    therapists = [personas.therapist_a, personas.therapist_b]
    gen = generate(
        np.random.default_rng(5),
        n_episodes=episodes,
        therapist_keys=np.array([t.pk for t in therapists]),
        therapist_units=np.array([personas.unit.pk, personas.unit.pk]),
        unit_age_weights={personas.unit.pk: (0.6, 0.3, 0.1)},
        today=timezone.localdate(),
    )
    return write_generated(personas.org, gen, code_prefix="ME")


def _peak(personas: OrgPersonas, size: int) -> int:
    """Peak memory (bytes traced by tracemalloc: Python objects and numpy/pandas
    buffers) of an export whose chunks are written away, as the job does."""
    import gc
    import tracemalloc

    from django.db import transaction

    gc.collect()
    tracemalloc.start()
    try:
        with transaction.atomic():
            for _chunk in export_chunks(actor=None, organisation=personas.org, batch_size=size):
                pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_memory_of_an_export_is_bounded_by_its_batch(db: Any) -> None:
    """Measured, not assumed: with a batch of 50 sessions the export's peak memory stays
    about the same for an organisation eight times as large, while the one-batch export
    (the whole CSV at once, as before) grows with it. (Not a timing: tracemalloc counts
    bytes. The batched peaks differ a little with the garbage collector's timing: pandas
    frames hold reference cycles, freed at its next run.)"""
    small, large = make_org("alpha"), make_org("beta")
    n_small, n_large = _generated(small, 100), _generated(large, 800)
    assert n_large > 6 * n_small
    _peak(small, 50)  # the first run's imports and caches are not the export's
    batched = (_peak(small, 50), _peak(large, 50))
    whole = (_peak(small, 10**9), _peak(large, 10**9))
    assert batched[1] < 2 * batched[0]
    assert whole[1] > 4 * whole[0] and whole[1] > 8 * batched[1]
