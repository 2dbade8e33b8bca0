"""Import historical sessions from a CSV file into one organisation (all or nothing).

    manage.py import_sessions --org <slug> FILE

Prints every error with its line number and column and exits with status 1 when the
file has errors (then nothing was written).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from datapolicy.models import Membership, Organisation, Role
from measures.importer import import_sessions


class Command(BaseCommand):
    help = "Import historical sessions (CSV) into an organisation; nothing is written on errors."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True, help="organisation short name (slug)")
        parser.add_argument("file", help="UTF-8 CSV file")

    def handle(self, *args: Any, **opts: Any) -> None:
        org = Organisation.objects.filter(slug=opts["org"]).first()
        if org is None:
            raise CommandError(f"No organisation {opts['org']!r}")
        path = Path(opts["file"])
        if not path.is_file():
            # The path is not repeated: a file may be named after what it holds.
            raise CommandError("No such file.")
        # The access log names the organisation's system owner as the one who imported
        # (the command is run on their behalf by the operator of the installation).
        owner = (
            Membership.objects.for_org(org)
            .filter(role=Role.SYSTEM_OWNER, is_active=True)
            .select_related("user")
            .first()
        )
        started = time.perf_counter()
        result = import_sessions(
            actor=owner.user if owner else None, organisation=org, data=path.read_bytes()
        )
        took = time.perf_counter() - started
        if not result.ok:
            for e in result.errors:
                self.stderr.write(f"line {e.line}, {e.column or '-'}: {e.message}")
            if result.error_count > len(result.errors):
                self.stderr.write(f"... and {result.error_count - len(result.errors)} more")
            raise CommandError(f"{result.error_count} error(s); nothing was imported.")
        s = result.summary()
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {s['sessions_created']} sessions ({s['sessions_skipped']} already "
                f"present), {s['episodes_created']} new episodes, {s['clients_created']} new "
                f"clients, {s['episodes_closed']} existing episodes closed in {took:.1f} s"
            )
        )
