"""Export an organisation's sessions as CSV in the import format.

manage.py export_sessions --org <slug> [--output FILE]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from datapolicy.models import Membership, Organisation, Role
from measures.exporter import export_chunks


class Command(BaseCommand):
    help = "Export an organisation's sessions as CSV (the import format); logged."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", required=True, help="organisation short name (slug)")
        parser.add_argument("--output", help="file to write (default: standard output)")

    def handle(self, *args: Any, **opts: Any) -> None:
        org = Organisation.objects.filter(slug=opts["org"]).first()
        if org is None:
            raise CommandError(f"No organisation {opts['org']!r}")
        owner = (
            Membership.objects.for_org(org)
            .filter(role=Role.SYSTEM_OWNER, is_active=True)
            .select_related("user")
            .first()
        )
        # The access log names the organisation's system owner, in that role, as the one
        # who exported (the command is run on their behalf by the installation's operator).
        # Written chunk by chunk (export_chunks, the text export_sessions joins), in one
        # transaction with its access-log entries: a run that fails logs nothing and
        # leaves no partial file.
        output = Path(opts["output"]) if opts["output"] else None
        try:
            with transaction.atomic():
                chunks = export_chunks(
                    actor=owner.user if owner else None, organisation=org, role=Role.SYSTEM_OWNER
                )
                if output is None:
                    for chunk in chunks:
                        self.stdout.write(chunk, ending="")
                    return
                with output.open("w", encoding="utf-8", newline="") as fh:
                    for chunk in chunks:
                        fh.write(chunk)
        except BaseException:
            if output is not None:
                output.unlink(missing_ok=True)
            raise
