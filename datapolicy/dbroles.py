"""The application's own PostgreSQL role: data rights only, never the tables' owner.

The append-only trigger on the access log refuses UPDATE and DELETE for everyone, but a
table's *owner* can still TRUNCATE it, disable or drop the trigger. So in production the
web, worker and beat processes connect as a separate role that owns nothing: it may read
and write the data, may INSERT into the access log but never UPDATE (except setting
``user_id`` to NULL when an account is erased, which the trigger checks), DELETE or
TRUNCATE it, and, owning no table, can run no DDL. Migrations run as the owner, which
then calls ``manage.py db_app_role`` to (re)grant these rights on every table, including
tables a new migration created.
"""

from __future__ import annotations

import re

from django.db import DatabaseError, connection, transaction
from psycopg import sql as pgsql

ACCESS_LOG_TABLE = "datapolicy_accesslog"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def app_role_statements(role: str, database: str) -> list[str]:
    """The GRANT/REVOKE statements for ``role`` on ``database`` (idempotent)."""
    if not _ROLE_NAME.match(role) or not _ROLE_NAME.match(database.lower()):
        raise ValueError("role and database must be plain lower-case identifiers")
    return [
        f'GRANT CONNECT ON DATABASE "{database}" TO {role}',
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        # UPDATE: the bulk import moves a sequence past the ids it wrote (setval).
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
        # The access log: read and append only. (Column-level UPDATE of user_id stays
        # for Django's SET NULL when an account is erased; the trigger refuses any other
        # change to the row.)
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {ACCESS_LOG_TABLE} FROM {role}",
        f"GRANT UPDATE (user_id) ON {ACCESS_LOG_TABLE} TO {role}",
        # Never anything that outlives the data rights.
        f"REVOKE CREATE ON SCHEMA public FROM {role}",
    ]


BULK_IMPORT_PARAMETER = "session_replication_role"


def app_role_apply(
    role: str, *, password: str | None = None, bulk_import: bool = True
) -> list[str]:
    """Create ``role`` (LOGIN, owning nothing) if missing and grant it the data rights
    on the current database. Run as the tables' owner after ``migrate``.

    ``bulk_import``: on PostgreSQL 15+, also let the role set ``session_replication_role``
    so the CSV import checks foreign keys set-based instead of per row
    (measures/bulkload.py; the access log's trigger is ``ENABLE ALWAYS`` and stays on).
    Granting on a parameter needs a superuser; without one this is skipped and said so.
    Without ``bulk_import`` the right is revoked."""
    database = connection.settings_dict["NAME"]
    done = []
    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cur.fetchone() is None:
            if not _ROLE_NAME.match(role):
                raise ValueError("role must be a plain lower-case identifier")
            cur.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
            done.append(f"CREATE ROLE {role}")
        if password:
            # Utility statements take no bind parameters: a quoted literal (psycopg).
            cur.execute(
                pgsql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    pgsql.Identifier(role), pgsql.Literal(password)
                )
            )
        for sql in app_role_statements(role, database):
            cur.execute(sql)
            done.append(sql)
        cur.execute("SELECT current_setting('server_version_num')::int >= 150000")
        if cur.fetchone()[0]:
            verb = "GRANT" if bulk_import else "REVOKE"
            prep = "TO" if bulk_import else "FROM"
            sql = f"{verb} SET ON PARAMETER {BULK_IMPORT_PARAMETER} {prep} {role}"
            try:
                with transaction.atomic():
                    cur.execute(sql)
                done.append(sql)
            except DatabaseError as exc:
                reason = type(exc).__name__
                done.append(
                    f"-- skipped ({reason}; granting on a parameter needs a superuser): {sql}"
                )
    return done
