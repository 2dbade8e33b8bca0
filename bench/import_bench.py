"""Import speed: ``import_sessions`` against PostgreSQL's own COPY FROM, same run.

    DATABASE_URL=postgres://... python bench/import_bench.py [--lines 1000000]

Generates a CSV of realistic sessions (measures.demo.generate: ORS/SRS items and
totals, closed episodes), loads it once with ``COPY FROM`` into a plain table with the
same columns (the baseline) and once with the importer into an empty organisation
(validation of every line, clients, episodes, sessions, scores, session numbers,
alerts), and prints both times and their ratio. The target is a ratio of at most 5.
The benchmark organisation and table are removed afterwards.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fitplatform.settings.base")
os.environ.setdefault("DJANGO_DEBUG", "true")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from datapolicy.models import Membership, Organisation, Role, Unit, User  # noqa: E402
from measures.demo import generate  # noqa: E402
from measures.importer import COLUMNS, import_sessions  # noqa: E402

UNUSABLE = "!"  # Django's marker for "no password can log in"
BASELINE_TABLE = "bench_import_copy"
BASELINE_DDL = f"""
CREATE TABLE {BASELINE_TABLE} (
    client_code varchar(40), therapist varchar(150), unit varchar(60), session_date date,
    age_group varchar(5), episode varchar(40),
    ors_1 numeric(3,1), ors_2 numeric(3,1), ors_3 numeric(3,1), ors_4 numeric(3,1),
    ors_total numeric(3,1),
    srs_1 numeric(3,1), srs_2 numeric(3,1), srs_3 numeric(3,1), srs_4 numeric(3,1),
    srs_total numeric(3,1),
    episode_closed_on date, same_day_order smallint
)
"""


def make_org(run: str, n_units: int = 10, n_therapists: int = 400) -> Organisation:
    org = Organisation.objects.create(slug=f"import-bench-{run}", name="Import Benchmark")
    units = Unit.objects.bulk_create(
        [Unit(organisation=org, code=f"u{i}", name=f"Enhed {i}") for i in range(n_units)]
    )
    users = User.objects.bulk_create(
        [User(username=f"ib{run}-{t}", password=UNUSABLE) for t in range(n_therapists)]
    )
    Membership.objects.bulk_create(
        [
            Membership(organisation=org, user=u, unit=units[i % n_units], role=Role.THERAPIST)
            for i, u in enumerate(users)
        ]
    )
    return org


def make_csv(org: Organisation, lines: int, seed: int = 11) -> bytes:
    members = list(
        Membership.objects.for_org(org)
        .filter(role=Role.THERAPIST)
        .values_list("user_id", "unit_id", "user__username", "unit__code")
    )
    keys = np.array([m[0] for m in members])
    units = np.array([m[1] for m in members])
    name = dict((m[0], m[2]) for m in members)
    code = dict((m[1], m[3]) for m in members)
    gen = generate(
        np.random.default_rng(seed),
        n_episodes=int(lines / 3.6) + 1000,
        therapist_keys=keys,
        therapist_units=units,
        unit_age_weights={int(u): (0.8, 0.15, 0.05) for u in np.unique(units)},
        today=timezone.localdate(),
    )
    s = gen.sessions.iloc[:lines]
    ep = gen.episodes.set_index("episode_key").reindex(s["episode_key"].to_numpy())
    out = pd.DataFrame(
        {
            "client_code": "BI-" + s["episode_key"].astype(str).str.zfill(7).to_numpy(),
            "therapist": ep["therapist_key"].map(name).to_numpy(),
            "unit": ep["unit_key"].map(code).to_numpy(),
            "session_date": pd.to_datetime(s["date"]).dt.strftime("%Y-%m-%d").to_numpy(),
            "age_group": ep["age_group"].to_numpy(),
            "episode": "",
        }
    )
    for p in ("ors", "srs"):
        has = s[f"has_{p}"].to_numpy()
        for c in [f"{p}_{i}" for i in range(1, 5)] + [f"{p}_total"]:
            out[c] = np.where(has, s[c].map("{:.1f}".format).to_numpy(), "")
    closed = pd.to_datetime(ep["closed_on"])
    out["episode_closed_on"] = closed.dt.strftime("%Y-%m-%d").fillna("").to_numpy()
    out["same_day_order"] = ""  # one session per episode and date
    buf = io.StringIO()
    out[list(COLUMNS)].to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode()


def make_extract(data: bytes) -> bytes:
    """A later extract of the same system: one new session (ORS 25, SRS 38) a week after
    the last one, at the latest today, for every episode of the file still open (the
    client codes name one episode each here)."""
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    last = frame.groupby("client_code", sort=False).agg(
        therapist=("therapist", "last"),
        unit=("unit", "last"),
        age_group=("age_group", "last"),
        date=("session_date", "max"),
        closed=("episode_closed_on", "last"),
    )
    last = last[last["closed"] == ""]
    today = pd.Timestamp(timezone.localdate())
    when = (pd.to_datetime(last["date"]) + pd.Timedelta(days=7)).clip(upper=today)
    keep = when > pd.to_datetime(last["date"])
    out = pd.DataFrame({c: "" for c in COLUMNS}, index=last.index[keep])
    out["client_code"] = out.index
    for c in ("therapist", "unit", "age_group"):
        out[c] = last.loc[keep, c]
    out["session_date"] = when[keep].dt.strftime("%Y-%m-%d")
    out["ors_total"], out["srs_total"] = "25.0", "38.0"
    buf = io.StringIO()
    out[list(COLUMNS)].to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode()


def time_copy(data: bytes) -> float:
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
        cur.execute(BASELINE_DDL)
    started = time.perf_counter()
    with connection.cursor() as cur:
        sql = f"COPY {BASELINE_TABLE} FROM STDIN WITH (FORMAT csv, HEADER true)"
        with cur.copy(sql) as copy:  # type: ignore[attr-defined]
            copy.write(data)
    took = time.perf_counter() - started
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {BASELINE_TABLE}")
        rows = cur.fetchone()[0]
        cur.execute(f"DROP TABLE {BASELINE_TABLE}")
    assert rows == data.count(b"\n") - 1, rows
    return took


def checkpoint() -> None:
    """CHECKPOINT needs a superuser or (PostgreSQL 15+) the pg_checkpoint role."""
    from django.db import DatabaseError

    try:
        with connection.cursor() as cur:
            cur.execute("CHECKPOINT")
    except DatabaseError as exc:
        print(f"  (no CHECKPOINT: {exc})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark data")
    parser.add_argument("--profile", action="store_true", help="profile a second import")
    parser.add_argument(
        "--per-row-fk",
        action="store_true",
        help="check foreign keys with PostgreSQL's per-row triggers (IMPORT_SET_BASED_FK off)",
    )
    args = parser.parse_args()
    if args.per_row_fk:
        from django.conf import settings

        settings.IMPORT_SET_BASED_FK = False
    if connection.vendor != "postgresql":
        raise SystemExit("The import benchmark needs PostgreSQL (DATABASE_URL).")
    connection.ensure_connection()
    connection.connection.autocommit = True
    with connection.cursor() as cur:  # earlier runs' deleted rows
        cur.execute(
            "VACUUM ANALYZE clients_client, clients_episode, measures_session, measures_score"
        )
    from measures.bulkload import set_based_checks_permitted

    how = "set-based" if set_based_checks_permitted() else "per-row triggers"
    print(f"Foreign keys checked: {how}")
    run = str(int(time.time()))
    org = make_org(run)
    started = time.perf_counter()
    data = make_csv(org, args.lines)
    n = data.count(b"\n") - 1
    print(
        f"Generated {n} lines ({len(data) / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s"
    )
    # A checkpoint falling into one timed step moves it by a second or more: each step
    # starts right after one, and the baseline is the median of three loads.
    copies = []
    for _ in range(3):
        checkpoint()
        copies.append(time_copy(data))
    copy_s = sorted(copies)[1]
    print(
        f"COPY FROM (baseline, median of {', '.join(f'{c:.2f}' for c in copies)}): {copy_s:.2f} s"
    )
    checkpoint()
    stages: list[tuple[str, float]] = []

    def progress(stage: str, done: int, total: int) -> None:
        stages.append((f"{stage} {done}/{total}", time.perf_counter()))

    started = time.perf_counter()
    result = import_sessions(actor=None, organisation=org, data=data, progress=progress)
    import_s = time.perf_counter() - started
    previous = started
    for name, at in stages:
        print(f"  {at - previous:7.2f} s until {name}")
        previous = at
    if not result.ok:
        for e in result.errors[:20]:
            print(f"  line {e.line} {e.column}: {e.message}")
        raise SystemExit(f"import failed with {result.error_count} errors")
    print(f"import_sessions: {import_s:.2f} s  {result.summary()}")
    ratio = import_s / copy_s
    print(f"Ratio import / COPY: {ratio:.2f} (target <= 5)")
    started = time.perf_counter()
    again = import_sessions(actor=None, organisation=org, data=data)
    print(
        f"Re-import of the same file: {time.perf_counter() - started:.2f} s, "
        f"{again.sessions_created} created, {again.sessions_skipped} skipped"
    )
    # A later extract: one new session in each open episode (existing episodes renumbered,
    # their alerts recomputed), against COPY of the same (smaller) file.
    extract = make_extract(data)
    checkpoint()
    extract_copy = sorted(time_copy(extract) for _ in range(3))[1]
    checkpoint()
    started = time.perf_counter()
    later = import_sessions(actor=None, organisation=org, data=extract)
    later_s = time.perf_counter() - started
    if not later.ok:
        raise SystemExit(f"the extract failed with {later.error_count} errors")
    extract_n = extract.count(b"\n") - 1
    print(
        f"Later extract ({extract_n} lines into open episodes): "
        f"{later_s:.2f} s, COPY {extract_copy:.3f} s, ratio {later_s / extract_copy:.1f}; "
        f"{later.summary()}"
    )
    if args.profile:
        import cProfile
        import pstats

        cleanup(org)
        org2 = make_org(run + "p")
        data2 = make_csv(org2, args.lines)
        prof = cProfile.Profile()
        prof.enable()
        import_sessions(actor=None, organisation=org2, data=data2)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        cleanup(org2)
        return
    if not args.keep:
        cleanup(org)


def cleanup(org: Organisation) -> None:
    with connection.cursor() as cur:
        for table in ("measures_score", "measures_session", "clients_episode", "clients_client"):
            cur.execute(f"DELETE FROM {table} WHERE organisation_id = %s", [org.pk])
    # The organisation itself stays (inactive): its access-log entries are append-only.
    Membership.objects.for_org(org).update(is_active=False)
    org.is_active = False
    org.save(update_fields=["is_active"])


if __name__ == "__main__":
    main()
