"""A large full recompute computes half of its figures (implementation, data quality,
ETR) in a forked child process while the parent computes the tables and trajectories.
The payloads must be exactly those of the one-process computation — also when the child
fails (the parent then computes that half itself)."""

from __future__ import annotations

import json

import pandas as pd

from stats import services
from stats.engine import StatsSettings
from stats.services import Context, compute_payloads
from tests.stats.test_engine_scale import random_sessions


def _ctx(frame: pd.DataFrame) -> Context:
    units = sorted(frame["unit_id"].unique().tolist())
    orgs = dict(frame.groupby("unit_id")["org_id"].first())
    # Nesting: every unit with an odd id is a sub-unit of the unit before it when both
    # belong to the same organisation (scopes then count sub-units).
    parent = {
        u: (u - 1 if u % 2 and (u - 1) in orgs and orgs[u - 1] == orgs[u] else None) for u in units
    }
    settings = {int(o): StatsSettings() for o in frame["org_id"].unique()}
    settings[1] = StatsSettings(inactivity_days=60, etr_min_n=10, etr_boundary_quantile=0.1)
    return Context(
        settings=settings,
        unit_parent=parent,
        unit_org={u: int(orgs[u]) for u in units},
        deactivated={3, 57, 101},
    )


def _dump(payloads: dict) -> str:
    return json.dumps({f"{k[0]}:{k[1]}:{k[2]}": v for k, v in payloads.items()}, sort_keys=True)


def test_forked_half_gives_identical_payloads(monkeypatch):
    frame = random_sessions(n_episodes=8_000, seed=21)
    as_of = frame["session_date"].max().date()
    monkeypatch.setattr(services, "SECOND_PROCESS_MIN_ROWS", 10**12)
    serial = compute_payloads(frame, _ctx(frame), as_of=as_of)

    results = []

    class Spy(services._ForkedPart):
        def result(self):
            out = super().result()
            results.append(out)
            return out

    monkeypatch.setattr(services, "SECOND_PROCESS_MIN_ROWS", 1)
    monkeypatch.setattr(services, "_ForkedPart", Spy)
    ctx = _ctx(frame)
    forked = compute_payloads(frame, ctx, as_of=as_of)

    assert len(results) == 1 and results[0] is not None  # the child really computed
    parts, platform_model = results[0]
    assert platform_model is not None
    assert any("etr" in p for p in parts.values())
    assert ctx.platform_model is not None  # handed back to the caller's context
    assert _dump(forked) == _dump(serial)
    assert len(serial) > 50
    some_unit = next(p for k, p in serial.items() if k[0] == "unit")
    assert {"table", "trajectory", "implementation", "quality", "etr"} <= set(some_unit)


def test_a_failing_child_is_computed_in_the_parent(monkeypatch, caplog):
    frame = random_sessions(n_episodes=3_000, seed=22)
    as_of = frame["session_date"].max().date()
    monkeypatch.setattr(services, "SECOND_PROCESS_MIN_ROWS", 10**12)
    serial = compute_payloads(frame, _ctx(frame), as_of=as_of)

    def broken(*args, **kwargs):
        raise MemoryError("child out of memory")

    monkeypatch.setattr(services, "SECOND_PROCESS_MIN_ROWS", 1)
    monkeypatch.setattr(services, "_run_part", broken)
    with caplog.at_level("WARNING", logger="stats.services"):
        forked = compute_payloads(frame, _ctx(frame), as_of=as_of)
    assert _dump(forked) == _dump(serial)
    assert "second process failed (MemoryError)" in caplog.text


def test_the_second_process_can_be_switched_off(settings, monkeypatch):
    frame = random_sessions(n_episodes=500, seed=23)
    monkeypatch.setattr(services, "SECOND_PROCESS_MIN_ROWS", 1)
    assert services._use_second_process(frame) is True
    settings.STATS_SECOND_PROCESS = False
    assert services._use_second_process(frame) is False


def _in_daemon(queue):  # runs in a daemonic process, like a Celery prefork worker
    queue.put(services._ForkedPart(lambda: sum(range(10))).result())


def test_the_second_process_starts_inside_a_daemonic_worker():
    """The nightly job runs in a Celery prefork worker, a daemonic process, where
    multiprocessing refuses to start children; the fork must work there too."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    worker = ctx.Process(target=_in_daemon, args=(queue,), daemon=True)
    worker.start()
    value = queue.get(timeout=30)
    worker.join(timeout=30)
    assert value == 45
