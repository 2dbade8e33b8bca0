"""Statistics benchmark at national scale (see bench/README.md for the figures).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fit_stats_bench python bench/stats_bench.py

Loads 1,000,000 sessions with ``seed_demo --sessions`` if the database has fewer than
900,000, then measures in one run (ratios against baselines of the same run):

1. baseline: ``COPY (SELECT <the frame query>) TO STDOUT`` of all sessions (bytes only);
2. full recompute (``stats_recompute_all``: bulk read, every scope, bulk upsert), its ratio
   to (1) and the peak memory (ru_maxrss) of the process;
3. incremental recompute after one new session (its therapist, unit, organisation);
4. a unit dashboard served from snapshots vs a trivial primary-key-lookup view (same
   middleware, session and role check) under gunicorn (2 sync workers, CONN_MAX_AGE
   600), 16 concurrent connections from a bounded thread load generator: p50/p99 and
   requests per second.

Bounded: each load phase runs a fixed number of seconds. Results go to stdout and
bench/results.json.
"""

from __future__ import annotations

import datetime as dt
import http.client
import io
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fitplatform.settings.base")
os.environ.setdefault("DJANGO_DEBUG", "true")
# The same key as the gunicorn server below: the session made here must be valid there.
BENCH_SECRET = "bench-only-secret-key-" + "x" * 40
os.environ["DJANGO_SECRET_KEY"] = BENCH_SECRET

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

LOAD_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "20"))
CONCURRENCY = 16
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def _rounded(obj: Any) -> Any:
    """Figures as written out: at most 4 decimals (full float digits are noise, and a
    run of ten of them can look like a CPR number, which no file of ours may hold)."""
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, list | tuple):
        return [_rounded(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    return obj


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def session_count() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM measures_session")
        return int(cur.fetchone()[0])


def copy_baseline() -> tuple[float, int]:
    from stats.frames import FRAME_SQL

    sql = FRAME_SQL.format(where="TRUE")
    buf = io.BytesIO()
    start = time.perf_counter()
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy,
    ):
        for chunk in copy:
            buf.write(chunk)
    return time.perf_counter() - start, buf.tell()


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_user() -> tuple[Any, Any, Any]:
    """A unit leader of one unit of the first organisation (created once)."""
    from datapolicy.models import Membership, Organisation, Role, Unit, User

    org = Organisation.objects.order_by("pk").first()
    unit = Unit.objects.for_org(org).order_by("pk").first()
    user, _ = User.objects.get_or_create(
        username="bench-leader", defaults={"first_name": "Bench", "last_name": "Leader"}
    )
    Membership.objects.for_org(org).get_or_create(
        organisation=org, user=user, unit=unit, role=Role.UNIT_LEADER
    )
    return org, unit, user


def session_cookie(user: Any, org: Any) -> str:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from datapolicy.middleware import SESSION_KEY as ORG_KEY

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store[ORG_KEY] = org.pk
    store.create()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}"


def load(port: int, path: str, cookie: str, seconds: float) -> dict[str, Any]:
    """16 threads, each a client that sends the next request when the last one returned."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client() -> None:
        local: list[float] = []
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Cookie": cookie, "Host": "127.0.0.1"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    with lock:
                        errors[0] += 1
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            local.append(time.perf_counter() - t0)
        conn.close()
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=client) for _ in range(CONCURRENCY)]
    t_start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t_start
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "errors": errors[0],
        "rps": n / elapsed,
        "p50_ms": 1000 * latencies[n // 2] if n else None,
        "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else None,
    }


def main() -> None:
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
    }
    n = session_count()
    if n < 900_000:
        seconds, _ = timed(call_command, "seed_demo", sessions=1_000_000)
        results["seed_seconds"] = seconds
        n = session_count()
        # Like a database autovacuum has been over: statistics and visibility maps set
        # (a freshly loaded table read the organisation's frame 0.16 s slower).
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    results["sessions"] = n
    with connection.cursor() as cur:
        cur.execute(
            "SELECT (SELECT count(*) FROM clients_episode), "
            "(SELECT count(DISTINCT therapist_id) FROM clients_episode), "
            "(SELECT count(*) FROM datapolicy_unit), (SELECT count(*) FROM datapolicy_organisation)"
        )
        ep, th, units, orgs = cur.fetchone()
    results.update(episodes=ep, therapists=th, units=units, organisations=orgs)
    print(json.dumps(_rounded(results), indent=1), flush=True)

    from stats.services import stats_mark_dirty, stats_recompute_all, stats_recompute_dirty

    if os.environ.get("BENCH_ONLY_HTTP"):  # re-run phase 4 alone (snapshots exist)
        return http_phase(results)
    # 1 + 2: interleaved so both see the same machine load.
    copies, fulls = [], []
    rss_before = rss_mb()
    for _ in range(REPEATS):
        t, size = copy_baseline()
        copies.append(t)
        t, scopes = timed(stats_recompute_all)
        fulls.append(t)
    results["copy_seconds"] = copies
    results["copy_bytes"] = size
    results["full_recompute_seconds"] = fulls
    results["full_recompute_scopes"] = scopes
    results["ratio_median"] = statistics.median(fulls) / statistics.median(copies)
    results["ratio_best"] = min(fulls) / min(copies)
    results["peak_rss_mb"] = rss_mb()
    results["rss_before_mb"] = rss_before
    # The forked second process of the full recompute (stats.services._ForkedPart).
    results["peak_rss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(_rounded({k: results[k] for k in list(results)[-9:]}), indent=1), flush=True)

    # 3: one new session -> its therapist, unit and organisation
    from clients.models import Episode
    from datapolicy.models import Organisation

    org1 = Organisation.objects.order_by("pk").first()
    episode = Episode.objects.for_org(org1).order_by("pk").first()
    incr = []
    for _ in range(5):
        stats_mark_dirty(
            organisation_id=org1.pk,
            unit_ids=[episode.unit_id],
            therapist_ids=[episode.therapist_id],
        )
        t, _ = timed(stats_recompute_dirty)
        incr.append(t)
    results["incremental_seconds"] = incr
    results["incremental_median"] = statistics.median(incr)
    print("incremental", _rounded(incr), flush=True)

    http_phase(results)


def http_phase(results: dict[str, Any]) -> None:
    """4: dashboard vs trivial view under gunicorn."""
    from stats.models import StatsSnapshot

    org, unit, user = bench_user()
    cookie = session_cookie(user, org)
    snap_pk = StatsSnapshot.objects.order_by("pk").values_list("pk", flat=True).first()
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": BENCH_SECRET,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_CONN_MAX_AGE": "600",
        "DJANGO_LOG_LEVEL": "WARNING",
        "STATS_BENCH_VIEWS": "true",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "fitplatform.wsgi:application",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        dash = f"/stats/unit/{unit.pk}/"
        trivial = f"/stats/bench/pk/{snap_pk}/"
        load(port, dash, cookie, 2)  # warm-up (templates, connections, snapshot)
        load(port, trivial, cookie, 2)
        results["trivial"] = load(port, trivial, cookie, LOAD_SECONDS)
        results["dashboard"] = load(port, dash, cookie, LOAD_SECONDS)
        results["rps_ratio"] = results["dashboard"]["rps"] / results["trivial"]["rps"]
    finally:
        server.terminate()
        server.wait(timeout=20)
    results["loadavg_end"] = os.getloadavg()
    print(
        json.dumps(
            _rounded({k: results[k] for k in ("trivial", "dashboard", "rps_ratio")}), indent=1
        )
    )
    (ROOT / "bench" / "results.json").write_text(
        json.dumps(_rounded(results), indent=1, default=str)
    )


if __name__ == "__main__":
    main()
