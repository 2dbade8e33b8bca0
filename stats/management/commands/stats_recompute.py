"""Recompute every statistics snapshot now (the nightly job, by hand)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from stats.services import stats_recompute_all, stats_recompute_dirty


class Command(BaseCommand):
    help = "Recompute all statistics snapshots (or only the scopes marked dirty)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dirty", action="store_true", help="only the marked scopes")

    def handle(self, *args: Any, **options: Any) -> None:
        start = time.perf_counter()
        n = stats_recompute_dirty() if options["dirty"] else stats_recompute_all()
        self.stdout.write(f"{n} snapshots in {time.perf_counter() - start:.2f} s")
