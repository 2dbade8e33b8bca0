"""The access log cannot be altered through the database role the application uses in
production (`manage.py db_app_role`): tried over a real connection as that role."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from datapolicy.models import AccessLog
from datapolicy.services import access_log_write

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROLE = f"fit_app_test_{os.getpid()}"


@pytest.fixture
def app_conn(org1: Any) -> Iterator[psycopg.Connection]:
    call_command("db_app_role", role=ROLE, verbosity=0)
    s = connection.settings_dict
    conn = psycopg.connect(
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        dbname=s["NAME"],
        user=ROLE,
        autocommit=True,
    )
    try:
        yield conn
    finally:
        conn.close()
        with connection.cursor() as cur:
            cur.execute(f"DROP OWNED BY {ROLE}")
            cur.execute(f"DROP ROLE {ROLE}")


def _refused(conn: psycopg.Connection, sql: str, *params: Any) -> str:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as err, conn.cursor() as cur:
        cur.execute(sql, params or None)
    return str(err.value)


def test_the_app_role_appends_and_reads_but_never_alters_the_log(
    app_conn: psycopg.Connection, org1: Any
) -> None:
    entry = access_log_write(
        actor=org1.therapist_a, organisation=org1.org, action="view", object_type="client"
    )
    with app_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO datapolicy_accesslog (organisation_id, username, role, action,"
            " object_type, at, path) VALUES (%s, 'x', '', 'view', 'client', now(), '')",
            [org1.org.pk],
        )
        cur.execute("SELECT count(*) FROM datapolicy_accesslog")
        assert cur.fetchone()[0] == 2
    _refused(app_conn, "UPDATE datapolicy_accesslog SET action = 'forged' WHERE id = %s", entry.pk)
    _refused(app_conn, "DELETE FROM datapolicy_accesslog WHERE id = %s", entry.pk)
    _refused(app_conn, "TRUNCATE datapolicy_accesslog")
    _refused(app_conn, "ALTER TABLE datapolicy_accesslog DISABLE TRIGGER ALL")
    _refused(app_conn, "DROP TRIGGER datapolicy_accesslog_append_only ON datapolicy_accesslog")
    _refused(app_conn, "DROP TABLE datapolicy_accesslog")
    _refused(app_conn, "CREATE TABLE datapolicy_accesslog_copy (id int)")
    assert AccessLog.objects.get(pk=entry.pk).action == "view"
    assert AccessLog.objects.count() == 2


def test_the_app_role_still_erases_a_user_and_writes_data(
    app_conn: psycopg.Connection, org1: Any
) -> None:
    """Django's SET NULL on the log when an account is erased must keep working, and the
    role writes the data tables (a unit here) like the application does."""
    entry = access_log_write(
        actor=org1.therapist_b, organisation=org1.org, action="view", object_type="client"
    )
    with app_conn.cursor() as cur:
        cur.execute(
            "UPDATE datapolicy_accesslog SET user_id = NULL WHERE user_id = %s",
            [org1.therapist_b.pk],
        )
        cur.execute(
            "INSERT INTO datapolicy_unit (organisation_id, code, name) VALUES (%s, 'ny', 'Ny')"
            " RETURNING id",
            [org1.org.pk],
        )
        unit_id = cur.fetchone()[0]
        cur.execute("UPDATE datapolicy_unit SET name = 'Nyt navn' WHERE id = %s", [unit_id])
        cur.execute("DELETE FROM datapolicy_unit WHERE id = %s", [unit_id])
    again = AccessLog.objects.get(pk=entry.pk)
    assert again.user_id is None and again.username == org1.therapist_b.username
    # ... but the column grant is for user_id only: the trigger still guards the row.
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_conn.cursor() as cur:
        cur.execute(
            "UPDATE datapolicy_accesslog SET user_id = NULL, username = 'x' WHERE id = %s",
            [entry.pk],
        )


def test_the_command_is_idempotent(app_conn: psycopg.Connection) -> None:
    call_command("db_app_role", role=ROLE, verbosity=0)
    call_command("db_app_role", role=ROLE, verbosity=0)
    with app_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM datapolicy_unit")
        assert cur.fetchone() is not None


def test_the_application_works_as_that_role(app_conn: psycopg.Connection, org1: Any) -> None:
    """The write paths that do more than plain ORM calls, run through Django's own
    connection logged in as the application role: the CSV import (advisory lock, COPY,
    setval), a session on the page's service, the statistics recompute (temporary table,
    COPY, upsert) and retention (batched deletes)."""
    import datetime as dt

    from datapolicy.retention import retention_run
    from measures.importer import import_sessions
    from stats.models import StatsSnapshot
    from stats.services import stats_recompute_all
    from tests.conftest import make_episode, record

    owner = connection.settings_dict["USER"]
    connection.close()
    connection.settings_dict["USER"] = ROLE
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone()[0] == ROLE
        data = (
            "client_code,therapist,unit,session_date,ors_total,srs_total\n"
            f"IM-1,{org1.therapist_a.username},{org1.unit.code},2025-01-06,14.5,36\n"
            f"IM-1,{org1.therapist_a.username},{org1.unit.code},2025-01-13,18,37\n"
        ).encode()
        result = import_sessions(actor=org1.owner, organisation=org1.org, data=data)
        assert result.ok and result.sessions_created == 2, result.errors
        episode = make_episode(org1, code="AR-1")
        record(episode, dt.date.today() - dt.timedelta(days=3), ors="20.0", srs="38.0")
        assert stats_recompute_all() > 0
        assert StatsSnapshot.objects.exists()
        org1.org.retention_days = 400
        org1.org.save(update_fields=["retention_days"])
        run = retention_run(organisation=org1.org, today=dt.date(2026, 6, 1))
        assert run.pk is not None
    finally:
        connection.close()
        connection.settings_dict["USER"] = owner
