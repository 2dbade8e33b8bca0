"""The import's set-based foreign-key check (measures/bulkload.py), tried by breaking it:
a dangling reference must abort the import, a referenced row that existed before must
stay locked until the import commits, the access log must stay append-only while the
per-row triggers are off, and without the right the import takes the per-row path."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import ForeignKey
from django.test import override_settings
from django.utils import timezone

from clients.models import Client, Episode
from measures.bulkload import BulkWrite, set_based_checks_permitted
from measures.importer import import_sessions
from measures.models import Session
from tests.conftest import OrgPersonas

pytestmark = pytest.mark.postgres

ROLE = f"fit_bulk_test_{os.getpid()}"


def _data(org: OrgPersonas, code: str = "BL-1") -> bytes:
    t, u = org.therapist_a.username, org.unit.code
    return (
        "client_code,therapist,unit,session_date,ors_total,srs_total\n"
        f"{code},{t},{u},2025-01-06,14.5,36\n"
        f"{code},{t},{u},2025-01-13,18,37\n"
    ).encode()


def _new_episode_row(org: OrgPersonas, client: int, **over: Any) -> int:
    """Insert one episode row by SQL (as the bulk path does) and return its id."""
    values = {
        "organisation_id": org.org.pk,
        "client_id": client,
        "therapist_id": org.therapist_a.pk,
        "unit_id": org.unit.pk,
        **over,
    }
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO clients_episode (organisation_id, client_id, therapist_id, unit_id, "
            "age_group, label, started_on, status, alerts, created_at) "
            "VALUES (%s, %s, %s, %s, 'adult', '', %s, 'open', '[]', %s) RETURNING id",
            [*values.values(), dt.date(2025, 1, 6), timezone.now()],
        )
        return int(cur.fetchone()[0])


@pytest.mark.django_db
def test_the_superuser_connection_takes_the_set_based_path(org1: OrgPersonas) -> None:
    assert set_based_checks_permitted()
    with override_settings(IMPORT_SET_BASED_FK=False):
        assert not set_based_checks_permitted()


@pytest.mark.django_db
@pytest.mark.parametrize("column", ["unit_id", "therapist_id", "client_id"])
def test_a_dangling_reference_aborts_the_write(org1: OrgPersonas, column: str) -> None:
    client = Client.objects.create(organisation=org1.org, code="BL-9")
    with (
        pytest.raises(IntegrityError, match=f"clients_episode.*{column}"),
        transaction.atomic(),
        BulkWrite() as bulk,
    ):
        assert bulk.set_based
        eid = _new_episode_row(org1, client.pk, **{column: 987_654_321})
        bulk.record(Episode, [eid])
    assert not Episode.objects.for_org(org1.org).exists()


@pytest.mark.django_db
def test_a_gap_in_a_written_parent_range_is_found(org1: OrgPersonas) -> None:
    """References inside a parent's own written range are proved by that range being
    complete; a missing row inside it must not pass."""
    client = Client.objects.create(organisation=org1.org, code="BL-8")
    with (
        pytest.raises(IntegrityError, match="gaps"),
        transaction.atomic(),
        BulkWrite() as bulk,
    ):
        first = _new_episode_row(org1, client.pk)
        second = _new_episode_row(org1, client.pk)
        with connection.cursor() as cur:
            cur.execute(
                "INSERT INTO measures_session (organisation_id, episode_id, date, number, "
                "created_at, updated_at) VALUES (%s, %s, '2025-01-06', 1, now(), now()) "
                "RETURNING id",
                [org1.org.pk, second],
            )
            sid = cur.fetchone()[0]
            cur.execute("DELETE FROM clients_episode WHERE id = %s", [second])
        bulk.record(Episode, [first, second])
        bulk.record(Session, [sid])


@pytest.mark.django_db(transaction=True)
def test_a_referenced_row_stays_locked_until_commit(org1: OrgPersonas) -> None:
    """Without the per-row trigger's lock another transaction could delete the unit
    the new episodes point at; the set-based check locks it FOR KEY SHARE."""
    s = connection.settings_dict
    other = psycopg.connect(
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        dbname=s["NAME"],
        user=s["USER"],
        autocommit=True,
    )
    try:
        client = Client.objects.create(organisation=org1.org, code="BL-7")
        with transaction.atomic():
            with BulkWrite() as bulk:
                eid = _new_episode_row(org1, client.pk)
                bulk.record(Episode, [eid])
            with pytest.raises(psycopg.errors.LockNotAvailable), other.cursor() as cur:
                cur.execute(
                    "SELECT 1 FROM datapolicy_unit WHERE id = %s FOR UPDATE NOWAIT",
                    [org1.unit.pk],
                )
        # Committed: the lock is gone.
        with other.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM datapolicy_unit WHERE id = %s FOR UPDATE NOWAIT", [org1.unit.pk]
            )
            assert cur.fetchone() == (1,)
    finally:
        other.close()


@pytest.mark.django_db
def test_the_import_writes_through_the_set_based_path(
    org1: OrgPersonas, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[dict[Any, tuple[int, int]]] = []
    original = BulkWrite.check

    def spy(self: BulkWrite) -> None:
        checked.append(dict(self.ranges))
        original(self)

    monkeypatch.setattr(BulkWrite, "check", spy)
    result = import_sessions(actor=org1.owner, organisation=org1.org, data=_data(org1))
    assert result.ok and result.sessions_created == 2, result.errors
    assert len(checked) == 1
    assert {m.__name__ for m in checked[0]} == {"Client", "Episode", "Session", "Score"}


@pytest.fixture
def app_role(org1: OrgPersonas) -> Iterator[str]:
    yield ROLE
    connection.close()
    with connection.cursor() as cur:
        cur.execute(f"DROP OWNED BY {ROLE}")
        cur.execute(f"DROP ROLE {ROLE}")


def _as_role(role: str, owner: str, work: Any) -> Any:
    connection.close()
    connection.settings_dict["USER"] = role
    try:
        return work()
    finally:
        connection.close()
        connection.settings_dict["USER"] = owner


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("granted", [True, False])
def test_the_app_role_imports_with_and_without_the_right(
    org1: OrgPersonas, app_role: str, granted: bool
) -> None:
    call_command("db_app_role", role=app_role, no_bulk_import=not granted, verbosity=0)
    owner = connection.settings_dict["USER"]

    def work() -> tuple[bool, Any]:
        permitted = set_based_checks_permitted()
        return permitted, import_sessions(
            actor=org1.owner, organisation=org1.org, data=_data(org1, f"BL-{granted:d}")
        )

    permitted, result = _as_role(app_role, owner, work)
    assert permitted is granted
    assert result.ok and result.sessions_created == 2, result.errors
    assert Session.objects.for_org(org1.org).count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_access_log_stays_append_only_with_triggers_off(
    org1: OrgPersonas, app_role: str
) -> None:
    """The role may set session_replication_role; the log's trigger is ENABLE ALWAYS."""
    from datapolicy.services import access_log_write

    call_command("db_app_role", role=app_role, verbosity=0)
    entry = access_log_write(
        actor=org1.therapist_a, organisation=org1.org, action="view", object_type="client"
    )
    s = connection.settings_dict
    with (
        psycopg.connect(
            host=s["HOST"] or "127.0.0.1",
            port=s["PORT"] or 5432,
            dbname=s["NAME"],
            user=app_role,
            autocommit=True,
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SET session_replication_role = replica")
        cur.execute("SHOW session_replication_role")
        assert cur.fetchone() == ("replica",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            cur.execute(
                "UPDATE datapolicy_accesslog SET user_id = %s WHERE id = %s",
                [org1.owner.pk, entry.pk],
            )


@pytest.mark.django_db
def test_every_foreign_key_column_is_served_by_an_index() -> None:
    """Single-column foreign-key indexes were dropped where another index starts with
    the column (tenancy.organisation_field, measures.models); each foreign key must
    still be the first column of some index, so deleting a referenced row never scans
    a whole table. The one exception is a reference-data table that is never deleted."""
    from django.apps import apps

    never_deleted = {("measures_score", "scale_id")}
    missing = []
    with connection.cursor() as cur:
        for model in apps.get_models():
            table = model._meta.db_table
            if model._meta.proxy or not model._meta.managed:
                continue
            constraints = connection.introspection.get_constraints(cur, table)
            leading = {c["columns"][0] for c in constraints.values() if c["index"] and c["columns"]}
            leading |= {c["columns"][0] for c in constraints.values() if c["unique"]}
            for f in model._meta.concrete_fields:
                skip = (table, f.column) in never_deleted
                if isinstance(f, ForeignKey) and not skip and f.column not in leading:
                    missing.append(f"{table}.{f.column}")
    assert missing == []


@pytest.mark.django_db(transaction=True)
def test_db_app_role_goes_on_when_the_grant_is_refused(
    org1: OrgPersonas, app_role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused GRANT SET ON PARAMETER (an owner that is not a superuser; here a
    parameter the server does not know) is reported and the other rights stay."""
    from datapolicy import dbroles

    monkeypatch.setattr(dbroles, "BULK_IMPORT_PARAMETER", "fit_no_such_parameter")
    done = dbroles.app_role_apply(app_role)
    assert done[-1].startswith("-- skipped (")
    assert "GRANT SET ON PARAMETER fit_no_such_parameter" in done[-1]
    with connection.cursor() as cur:
        cur.execute("SELECT has_table_privilege(%s, 'measures_session', 'INSERT')", [app_role])
        assert cur.fetchone() == (True,)
        cur.execute(
            "SELECT has_parameter_privilege(%s, 'session_replication_role', 'SET')", [app_role]
        )
        assert cur.fetchone() == (False,)
