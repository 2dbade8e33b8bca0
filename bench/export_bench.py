"""Export memory: peak memory of the session export, in batches and in one piece.

    DATABASE_URL=postgres://... python bench/export_bench.py [--episodes 25000]

Writes two organisations of generated sessions (measures.demo.generate: ORS/SRS items
and totals, closed episodes), one eight times the other, and exports each with
``export_chunks`` into a temporary file, as the export job does: once in batches of
``EXPORT_BATCH_SESSIONS`` (the job) and once in one batch (the whole CSV at once, what
the export did before it was streamed). Peak memory is what ``tracemalloc`` traces
(Python objects and numpy/pandas buffers, not the interpreter's own footprint). The
exports run in a transaction that is rolled back (no access-log entries stay); the
organisations' data are removed afterwards (``bench/import_bench.py``'s clean-up).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fitplatform.settings.base")
os.environ.setdefault("DJANGO_DEBUG", "true")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.import_bench import cleanup  # noqa: E402
from datapolicy.models import Membership, Organisation, Role, Unit, User  # noqa: E402
from measures.demo import generate  # noqa: E402
from measures.exporter import ExportCounts, export_chunks  # noqa: E402
from measures.management.commands.seed_demo import write_generated  # noqa: E402


def make_org(slug: str, episodes: int) -> tuple[Organisation, int]:
    org = Organisation.objects.create(slug=slug, name=slug)
    unit = Unit.objects.create(organisation=org, code="u", name="u")
    therapists = []
    for i in range(20):
        user = User.objects.create_user(username=f"{slug}-t{i}", password=None)
        Membership.objects.create(organisation=org, user=user, unit=unit, role=Role.THERAPIST)
        therapists.append(user)
    gen = generate(
        np.random.default_rng(3),
        n_episodes=episodes,
        therapist_keys=np.array([t.pk for t in therapists]),
        therapist_units=np.array([unit.pk] * len(therapists)),
        unit_age_weights={unit.pk: (0.6, 0.3, 0.1)},
        today=timezone.localdate(),
    )
    return org, write_generated(org, gen, code_prefix="B")


def peak(org: Organisation, batch: int) -> tuple[int, int, int]:
    """(peak bytes, file bytes, chunks) of one export written to a temporary file."""
    gc.collect()
    tracemalloc.start()
    size = chunks = 0
    try:
        with transaction.atomic(), tempfile.TemporaryFile() as fh:
            counts = ExportCounts()
            for chunk in export_chunks(
                actor=None, organisation=org, counts=counts, batch_size=batch
            ):
                size += fh.write(chunk.encode("utf-8"))
                chunks += 1
            transaction.set_rollback(True)  # no access-log entries from a benchmark
        return tracemalloc.get_traced_memory()[1], size, chunks
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=25_000)
    args = parser.parse_args()
    run = timezone.now().strftime("%H%M%S")
    orgs = [
        make_org(f"bench-export-s-{run}", args.episodes // 8),
        make_org(f"bench-export-l-{run}", args.episodes),
    ]
    batch = int(settings.EXPORT_BATCH_SESSIONS)
    try:
        peak(orgs[0][0], batch)  # imports and caches of the first run
        for org, sessions in orgs:
            for size in (batch, 10**9):
                mem, file_bytes, chunks = peak(org, size)
                label = f"batches of {batch}" if size == batch else "one batch"
                print(
                    f"{sessions:>8} sessions, {label:>20}: peak {mem / 2**20:7.1f} MiB, "
                    f"file {file_bytes / 2**20:6.1f} MiB, {chunks} chunks",
                    flush=True,
                )
    finally:
        for org, _sessions in orgs:
            cleanup(org)


if __name__ == "__main__":
    main()
