"""Create/refresh the application's PostgreSQL role (see datapolicy/dbroles.py)."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from datapolicy.dbroles import app_role_apply


class Command(BaseCommand):
    help = (
        "Grant the application's database role data rights only (run as the owner after "
        "migrate): read/write the data, append to the access log, no DDL, no TRUNCATE."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--role", default=os.environ.get("DJANGO_DB_APP_ROLE", ""))
        parser.add_argument(
            "--no-bulk-import",
            action="store_true",
            help="do not let the role set session_replication_role (the CSV import then "
            "checks foreign keys row by row, several times slower)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        role = opts["role"]
        if not role:
            raise CommandError("Name the role: --role or DJANGO_DB_APP_ROLE.")
        if connection.vendor != "postgresql":
            raise CommandError("Database roles exist on PostgreSQL only.")
        password = os.environ.get("DJANGO_DB_APP_PASSWORD") or None
        try:
            done = app_role_apply(role, password=password, bulk_import=not opts["no_bulk_import"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        for line in done:
            if line.startswith("--"):
                self.stdout.write(line)
        self.stdout.write(f"{role}: {len(done)} statements applied")
