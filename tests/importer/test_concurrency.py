"""An import locks no table: other organisations (and this organisation's other clients)
keep writing while it runs; the episodes it matched, and a second import into the same
organisation, wait for it; ids are reserved from the sequences, so concurrent inserts
never collide with the import's rows; a conflicting change in between is a clear error
and nothing is imported. Tried with real concurrent transactions on PostgreSQL (a
second thread with its own connection and a lock timeout: a write that waits for the
import fails instead of hanging)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from django.db import OperationalError, connection

from clients.models import Client, Episode
from measures.bulkload import reserve_ids
from measures.importer import _concurrent_change_text, import_sessions
from measures.models import Scale, Session
from measures.scales import load_scales
from tests.conftest import OrgPersonas, make_episode, record

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HEADER = "client_code,therapist,unit,session_date,ors_total,srs_total\n"


@pytest.fixture(autouse=True)
def _scales(db: Any) -> None:
    if not Scale.objects.exists():  # an earlier transactional test emptied the tables
        load_scales(Scale)


def _lines(org: OrgPersonas, codes: list[str]) -> bytes:
    t, u = org.therapist_a.username, org.unit.code
    rows = [f"{c},{t},{u},2025-01-{d:02d},14.5,36\n" for c in codes for d in (6, 13)]
    return (HEADER + "".join(rows)).encode()


def _in_thread(fn: Callable[[], Any], lock_timeout: str = "3s") -> Any:
    """Run ``fn`` in another thread, on its own connection that gives up waiting for a
    lock after ``lock_timeout``; returns its result or raises its exception."""

    def run() -> Any:
        try:
            with connection.cursor() as cur:
                cur.execute(f"SET lock_timeout = '{lock_timeout}'")
            return fn()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result(timeout=60)


@pytest.fixture
def when_written(monkeypatch: Any) -> Callable[[Callable[[], Any]], list]:
    """``when_written(action)``: the next import runs ``action`` once inside its
    transaction, after all its rows are written (where it queues its notification),
    and the returned list gets the action's result."""
    from measures import importer

    def arm(action: Callable[[], Any]) -> list:
        done: list[Any] = []
        fired: list[bool] = []
        original = importer._notify

        def notify(*args: Any) -> None:
            if not fired:  # once: an import inside the action passes through here too
                fired.append(True)
                assert connection.in_atomic_block
                done.append(action())
            original(*args)

        monkeypatch.setattr(importer, "_notify", notify)
        return done

    return arm


def _other_connection() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        dbname=s["NAME"],
        user=s["USER"],
        autocommit=True,
    )


def test_other_organisations_write_while_an_import_runs(
    org1: OrgPersonas, org2: OrgPersonas, when_written: Any
) -> None:
    """A therapist of another organisation creates a client and records a session while
    the import holds its transaction open (with the table locks of before, this waited
    until the import committed, and here fails on the lock timeout)."""

    def therapist_elsewhere() -> tuple[int, int]:
        episode = make_episode(org2, code="ELSE-1")
        session = record(episode, dt.date.today() - dt.timedelta(days=1), ors="20.0", srs="36")
        return episode.client_id, session.pk

    done = when_written(lambda: _in_thread(therapist_elsewhere))
    result = import_sessions(
        actor=org1.owner, organisation=org1.org, data=_lines(org1, ["IM-1", "IM-2", "IM-3"])
    )
    assert result.ok, result.errors
    assert len(done) == 1
    other_client, other_session = done[0]
    imported = Session.objects.for_org(org1.org)
    assert imported.count() == 6
    assert other_session not in set(imported.values_list("pk", flat=True))
    assert Session.objects.for_org(org2.org).filter(pk=other_session).exists()
    assert other_client not in set(Client.objects.for_org(org1.org).values_list("pk", flat=True))
    # The sequences are past both: ordinary inserts go on without a duplicate key.
    later = make_episode(org1, code="LATER-1")
    record(later, dt.date.today(), ors="21.0", srs="37")


def test_the_organisations_other_clients_are_not_locked(org1: OrgPersonas) -> None:
    """A session for a client the file does not name is recorded during the import; the
    episode the file adds sessions to is locked until the import commits, as
    session_record locks it first."""
    matched = make_episode(org1, code="IM-1", started_on=dt.date(2025, 1, 1))
    record(matched, dt.date(2025, 1, 2), ors="12.0", srs="35")
    unrelated = make_episode(org1, code="OTHER-1")

    def during() -> tuple[bool, int]:
        other = _other_connection()
        try:
            with other.cursor() as cur:
                try:
                    cur.execute(
                        "SELECT 1 FROM clients_episode WHERE id = %s FOR UPDATE NOWAIT",
                        [matched.pk],
                    )
                    locked = False
                except psycopg.errors.LockNotAvailable:
                    locked = True
        finally:
            other.close()
        session = _in_thread(lambda: record(unrelated, dt.date.today(), ors="19.0", srs="36"))
        return locked, session.pk

    done: list[Any] = []

    def progress(stage: str, n: int, total: int) -> None:
        # The first report of the writing stage: matched, nothing written yet (so no
        # foreign-key lock of the writes is held on the episode).
        if stage == "importing" and not done:
            done.append(during())

    result = import_sessions(
        actor=org1.owner, organisation=org1.org, data=_lines(org1, ["IM-1"]), progress=progress
    )
    assert result.ok, result.errors
    assert done[0][0] is True, "the matched episode was not locked during the import"
    assert Session.objects.for_org(org1.org).filter(pk=done[0][1], episode=unrelated).exists()
    assert list(
        Session.objects.for_org(org1.org)
        .filter(episode=matched)
        .order_by("number")
        .values_list("number", "date")
    ) == [(1, dt.date(2025, 1, 2)), (2, dt.date(2025, 1, 6)), (3, dt.date(2025, 1, 13))]


def test_a_second_import_into_the_same_organisation_waits(
    org1: OrgPersonas, org2: OrgPersonas, when_written: Any
) -> None:
    def second_imports() -> tuple[Any, Any]:
        try:
            same = _in_thread(
                lambda: import_sessions(
                    actor=org1.owner, organisation=org1.org, data=_lines(org1, ["IM-9"])
                ),
                lock_timeout="1s",
            )
        except OperationalError as exc:
            same = exc
        other = _in_thread(
            lambda: import_sessions(
                actor=org2.owner, organisation=org2.org, data=_lines(org2, ["IM-9"])
            )
        )
        return same, other

    done = when_written(second_imports)
    result = import_sessions(actor=org1.owner, organisation=org1.org, data=_lines(org1, ["IM-1"]))
    assert result.ok, result.errors
    same, other = done[0]
    assert isinstance(same, OperationalError) and "lock timeout" in str(same)
    assert other.ok and other.sessions_created == 2, other.errors
    assert not Client.objects.for_org(org1.org).filter(code="IM-9").exists()
    assert Client.objects.for_org(org2.org).filter(code="IM-9").exists()


def test_a_client_created_meanwhile_is_a_clear_error_and_nothing_is_imported(
    org1: OrgPersonas,
) -> None:
    """Between matching (the code was free) and writing, someone creates a client with
    one of the file's codes: the unique constraint refuses the import's row."""
    created = []

    def progress(stage: str, n: int, total: int) -> None:
        if stage == "importing" and not created:
            created.append(_in_thread(lambda: make_episode(org1, code="IM-2")))

    result = import_sessions(
        actor=org1.owner,
        organisation=org1.org,
        data=_lines(org1, ["IM-1", "IM-2"]),
        progress=progress,
    )
    assert created
    assert not result.ok and result.error_count == 1
    assert result.errors[0].message == _concurrent_change_text()
    assert "IM-2" not in result.errors[0].message
    assert result.sessions_created == 0 and result.clients_created == 0
    assert not Client.objects.for_org(org1.org).filter(code="IM-1").exists()
    assert Episode.objects.for_org(org1.org).count() == 1  # the one created meanwhile
    assert not Session.objects.for_org(org1.org).exists()


def test_reserved_ids_are_never_drawn_by_ordinary_inserts(org1: OrgPersonas) -> None:
    first = reserve_ids(Client, 5)
    assert list(first) == list(range(first[0], first[0] + 5))
    other = _other_connection()
    try:
        with other.cursor() as cur:
            cur.execute(
                "INSERT INTO clients_client (organisation_id, code, age_group, note, created_at)"
                " VALUES (%s, 'SEQ-1', 'adult', '', now()) RETURNING id",
                [org1.org.pk],
            )
            drawn = cur.fetchone()[0]
    finally:
        other.close()
    second = reserve_ids(Client, 3)
    assert drawn not in set(first) and drawn not in set(second)
    assert drawn > first[-1] and second[0] > drawn


def test_a_client_the_import_is_writing_waits_and_then_gets_the_form_error(
    org1: OrgPersonas, when_written: Any
) -> None:
    """A therapist creates a client under a code the running import has just written
    (not yet committed): the insert waits for the import, and when it commits the
    therapist gets the ordinary "code exists" message, not a server error."""
    import threading
    import time

    from django.core.exceptions import ValidationError

    from clients.services import client_create

    outcome: list[Any] = []

    def therapist() -> None:
        try:
            client_create(
                actor=org1.therapist_a, organisation=org1.org, code="IM-1", age_group="adult"
            )
            outcome.append("created")
        except ValidationError as exc:
            outcome.append(exc.message_dict)
        finally:
            connection.close()

    thread = threading.Thread(target=therapist)

    def start_and_wait_until_blocked() -> None:
        thread.start()
        other = _other_connection()
        try:
            for _ in range(200):  # until the therapist's insert waits for a lock
                with other.cursor() as cur:
                    cur.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE 'INSERT INTO \"clients_client\"%%'"
                    )
                    if cur.fetchone()[0]:
                        return
                time.sleep(0.05)
            raise AssertionError("the therapist's insert never waited for the import")
        finally:
            other.close()

    when_written(start_and_wait_until_blocked)
    result = import_sessions(actor=org1.owner, organisation=org1.org, data=_lines(org1, ["IM-1"]))
    thread.join(timeout=30)
    assert result.ok, result.errors
    assert outcome and outcome[0] != "created"
    assert "code" in outcome[0]
    assert Client.objects.for_org(org1.org).filter(code="IM-1").count() == 1


def test_a_deadlock_with_another_transaction_is_the_clear_error(
    org1: OrgPersonas,
) -> None:
    """Someone holds the second of the file's two episodes and then asks for the first,
    which the import (locking in id order) already holds: PostgreSQL aborts one side.
    The other side's deadlock_timeout is set longer, so the import is the one aborted:
    it reports the organisation's data changed, and nothing is imported."""
    import threading
    import time

    first = make_episode(org1, code="IM-1", started_on=dt.date(2025, 1, 1))
    second = make_episode(org1, code="IM-2", started_on=dt.date(2025, 1, 1))
    assert first.pk < second.pk
    other = _other_connection()
    other.autocommit = False
    outcome: list[Any] = []

    def run_import() -> None:
        try:
            outcome.append(
                import_sessions(
                    actor=org1.owner, organisation=org1.org, data=_lines(org1, ["IM-1", "IM-2"])
                )
            )
        except Exception as exc:  # reported to the test, not swallowed
            outcome.append(exc)
        finally:
            connection.close()

    try:
        with other.cursor() as cur:
            cur.execute("SET deadlock_timeout = '20s'")
            cur.execute("SELECT 1 FROM clients_episode WHERE id = %s FOR UPDATE", [second.pk])
        thread = threading.Thread(target=run_import)
        thread.start()
        watcher = _other_connection()
        try:
            for _ in range(200):  # until the import waits for the second episode
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%%FOR UPDATE%%' AND pid <> %s",
                    [other.info.backend_pid],
                ).fetchone()
                if row and row[0]:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the import never waited for the episode")
        finally:
            watcher.close()
        with other.cursor() as cur:  # closes the cycle; the import is aborted after 1 s
            cur.execute("SELECT 1 FROM clients_episode WHERE id = %s FOR UPDATE", [first.pk])
        other.rollback()
        thread.join(timeout=30)
    finally:
        other.close()
    result = outcome[0]
    assert not isinstance(result, Exception), result
    assert not result.ok and result.errors[0].message == _concurrent_change_text()
    assert not Session.objects.for_org(org1.org).exists()
