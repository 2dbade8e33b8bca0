"""Run retention now (the nightly job), for one organisation or all with a setting."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from datapolicy.models import Organisation
from datapolicy.retention import retention_run, retention_run_all


class Command(BaseCommand):
    help = "Delete inactive episodes past each organisation's retention (prints counts only)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--org", help="organisation short name (default: all)")
        parser.add_argument("--today", help="YYYY-MM-DD (default: today)")

    def handle(self, *args: Any, **opts: Any) -> None:
        today = dt.date.fromisoformat(opts["today"]) if opts["today"] else timezone.localdate()
        if opts["org"]:
            org = Organisation.objects.filter(slug=opts["org"]).first()
            if org is None:
                raise CommandError(f"No organisation {opts['org']!r}")
            runs = [retention_run(organisation=org, today=today).pk]
        else:
            runs = retention_run_all(today)
        from datapolicy.models import RetentionRun

        for run in RetentionRun.dangerously_unscoped.filter(pk__in=runs).select_related(
            "organisation"
        ):
            self.stdout.write(
                f"{run.organisation.slug}: cutoff {run.cutoff}, "
                f"{run.episodes_deleted} episodes, {run.clients_deleted} clients deleted"
            )
