"""Import of historical sessions from other FIT systems (CSV), all or nothing.

Format (docs/import.md): UTF-8 CSV with a header, comma or semicolon separated, decimal
point or decimal comma. Columns: ``client_code``, ``therapist`` (username or e-mail),
``unit`` (unit code), ``session_date`` (YYYY-MM-DD), optional ``age_group``
(adult/youth/child, default adult), ``episode`` (a label separating several episodes of
one client), ``ors_1..ors_4`` and/or ``ors_total``, ``srs_1..srs_4`` and/or
``srs_total``, ``episode_closed_on``.

The whole file is validated before anything is written; every error is reported with
its line (the header is line 1), column and message. Only a file without errors is
written, in one transaction, with bulk paths (COPY on PostgreSQL). A session that
exists already with identical scores (same client, episode, date) is skipped, so
importing the same file twice changes nothing; a different existing session on that
date is an error.

Validation is vectorised with pandas (a million lines must load within 5x PostgreSQL's
own COPY, see bench/import_bench.py). The score rules are those of
``measures.services.ScoreInput.parse``: the vectorised check only finds the bad lines,
and each bad line's message is produced by ``ScoreInput.parse`` itself, so the rules and
wording live in one place.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clients.models import Client, Episode
from datapolicy.models import Membership, Organisation, Role, Unit
from datapolicy.services import access_log_write
from datapolicy.validators import _CPR_SHAPE, looks_like_cpr

from .models import Scale, Score, Session
from .services import ScoreInput

REQUIRED = ("client_code", "therapist", "unit", "session_date")
ITEMS = {p: [f"{p}_{i}" for i in range(1, 5)] for p in ("ors", "srs")}
OPTIONAL = (
    "age_group",
    "episode",
    *ITEMS["ors"],
    "ors_total",
    *ITEMS["srs"],
    "srs_total",
    "episode_closed_on",
)
COLUMNS = (*REQUIRED, *OPTIONAL)
AGE_GROUPS = ("adult", "youth", "child")
EARLIEST = dt.date(1990, 1, 1)
MAX_ERRORS = 1000
_CODE_RE = r"^[\w.\-/ ]{1,40}$"  # clients.models.code_validator
_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
EPS = 1e-6
# The CPR shape without capture groups (a fast pre-filter for pandas).
_CPR_PREFILTER = re.sub(r"\((?!\?)", "(?:", _CPR_SHAPE.pattern)

Progress = Callable[[str, int, int], None]


@dataclass
class LineError:
    line: int
    column: str
    message: str

    def __post_init__(self) -> None:
        # SECURITY: the report is shown to the owner and stored in ImportJob.errors; a
        # value of the file (a header, a number that failed to parse) that looks like a
        # CPR number never goes into it, whichever check produced the message.
        if looks_like_cpr(self.column):
            self.column = ""
        if looks_like_cpr(self.message):
            self.message = str(_cpr_text())

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "message": self.message}


def _cpr_text() -> str:
    return _("This looks like a CPR number; the platform must never hold CPR numbers.")


@dataclass
class ImportResult:
    lines: int = 0
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0
    clients_created: int = 0
    episodes_created: int = 0
    sessions_created: int = 0
    sessions_skipped: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def summary(self) -> dict[str, int]:
        return {
            "lines": self.lines,
            "clients_created": self.clients_created,
            "episodes_created": self.episodes_created,
            "sessions_created": self.sessions_created,
            "sessions_skipped": self.sessions_skipped,
            "errors": self.error_count,
        }


class _Errors:
    """Collects errors from boolean masks over the rows (row i is line i + 2)."""

    def __init__(self) -> None:
        self.items: list[tuple[np.ndarray, str, Any]] = []
        self.extra: list[LineError] = []

    def add(self, mask: Any, column: str, message: Any) -> None:
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        if len(rows):
            self.items.append((rows, column, message))

    def line(self, line: int, column: str, message: str) -> None:
        self.extra.append(LineError(line, column, message))

    def count(self) -> int:
        return sum(len(r) for r, _c, _m in self.items) + len(self.extra)

    def result(self) -> list[LineError]:
        out = list(self.extra)
        for rows, column, message in self.items:
            # Only the first MAX_ERRORS per check need their text (messages may be built
            # per row by a callable).
            for r in rows[:MAX_ERRORS]:
                text = message(int(r)) if callable(message) else str(message)
                out.append(LineError(int(r) + 2, column, text))
        out.sort(key=lambda e: (e.line, COLUMNS.index(e.column) if e.column in COLUMNS else -1))
        return out[:MAX_ERRORS]


# --------------------------------------------------------------------------- parsing


def read_csv(data: bytes) -> tuple[pd.DataFrame | None, list[LineError]]:
    """The file as a frame of stripped strings (row i = line i + 2), or the errors."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [LineError(line, "", _("The file is not UTF-8 text."))]
    header = text.split("\n", 1)[0]
    if not header.strip():
        return None, [LineError(1, "", _("The file is empty or has no header line."))]
    sep = ";" if header.count(";") > header.count(",") else ","
    try:
        df = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else 1
        return None, [
            LineError(
                line,
                "",
                _(
                    "The line has more fields than the header (a decimal comma in a "
                    "comma-separated file must be quoted, or use semicolons)."
                ),
            )
        ]
    df.columns = [str(c).strip().lower() for c in df.columns]
    errors = []
    unknown = [c for c in df.columns if c not in COLUMNS]
    for c in unknown:
        errors.append(LineError(1, c, _("Unknown column %(name)s.") % {"name": c[:40]}))
    for c in REQUIRED:
        if c not in df.columns:
            errors.append(LineError(1, c, _("The column %(name)s is missing.") % {"name": c}))
    if errors:
        return None, errors
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = ""
    df = df[list(COLUMNS)].fillna("")
    for c in COLUMNS:
        df[c] = df[c].str.strip()
    return df, []


def _dates(values: pd.Series) -> pd.Series:
    shaped = values.str.match(_DATE_RE)
    parsed = pd.to_datetime(values.where(shaped, None), format="%Y-%m-%d", errors="coerce")
    return parsed


def _numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(floats with NaN for empty, mask of non-empty values that are not numbers)."""
    given = (values != "").to_numpy()
    text = values.str.replace(",", ".", regex=False).where(given, "nan")
    try:
        # Fast path for a clean column (the usual case): one vectorised cast.
        num = text.astype("float64").to_numpy(dtype=float)
    except (ValueError, TypeError, ArithmeticError):
        num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    if np.isinf(num).any() or np.isnan(num[given]).any():
        # "inf", "nan" typed in the file are not numbers either.
        num = pd.to_numeric(text.where(given, ""), errors="coerce").to_numpy(dtype=float, copy=True)
        num[~np.isfinite(num)] = np.nan
        bad = given & np.isnan(num)
        return num, bad
    return num, np.zeros(len(num), dtype=bool)


def _cpr_mask(values: pd.Series) -> np.ndarray:
    """CPR-shaped values (datapolicy.validators.looks_like_cpr), checked per unique value
    and only where the digit pattern occurs at all."""
    uniq = pd.Series(values.unique())
    candidates = uniq[uniq.str.contains(_CPR_PREFILTER, regex=True)]
    bad = {v for v in candidates if looks_like_cpr(v)}
    if not bad:
        return np.zeros(len(values), dtype=bool)
    return values.isin(bad).to_numpy()


# --------------------------------------------------------------------------- validation


@dataclass
class _Plan:
    df: pd.DataFrame
    ors: dict[str, np.ndarray]
    srs: dict[str, np.ndarray]


def _score_check(
    df: pd.DataFrame, prefix: str, errors: _Errors, cpr: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Vectorised ScoreInput rules; messages for bad lines come from ScoreInput.parse.
    Lines with a CPR-shaped score cell already have their error (``cpr``)."""
    cols = [*ITEMS[prefix], f"{prefix}_total"]
    values = {}
    bad = np.zeros(len(df), dtype=bool)
    for c in cols:
        num, not_number = _numbers(df[c])
        values[c] = num
        bad |= not_number
    items = np.column_stack([values[c] for c in ITEMS[prefix]])
    total = values[f"{prefix}_total"]
    n_items = np.isfinite(items).sum(axis=1)
    given_items = np.column_stack([df[c].to_numpy() != "" for c in ITEMS[prefix]]).sum(axis=1)
    bad |= (given_items > 0) & (given_items < 4)
    with np.errstate(invalid="ignore"):
        bad |= np.any(np.isfinite(items) & ((items < -EPS) | (items > 10 + EPS)), axis=1)
        bad |= np.isfinite(total) & ((total < -EPS) | (total > 40 + EPS))
        tenths = np.column_stack([items, total]) * 10
        bad |= np.any(np.isfinite(tenths) & (np.abs(tenths - np.round(tenths)) > EPS), axis=1)
        item_sum = np.round(np.nansum(items, axis=1), 1)
        bad |= (n_items == 4) & np.isfinite(total) & (np.abs(item_sum - total) > 0.05)
    has = (n_items == 4) | np.isfinite(total)
    cpr_line = np.any(np.column_stack([cpr[c] for c in cols]), axis=1)
    has &= ~cpr_line
    bad &= ~cpr_line

    raw = df[cols]

    def message(row: int) -> str:
        r = raw.iloc[row]
        try:
            ScoreInput.parse([r[c] for c in ITEMS[prefix]], r[f"{prefix}_total"], field=prefix)
        except ValidationError as exc:
            return "; ".join(f"{m}" for ms in exc.message_dict.values() for m in ms)
        return _("Invalid score.")

    def column(row: int) -> str:
        r = raw.iloc[row]
        try:
            ScoreInput.parse([r[c] for c in ITEMS[prefix]], r[f"{prefix}_total"], field=prefix)
        except ValidationError as exc:
            name = next(iter(exc.message_dict))
            return name if name in COLUMNS else f"{prefix}_1"
        return f"{prefix}_total"

    # One error per bad line, named by the column ScoreInput.parse names.
    for r in np.flatnonzero(bad)[:MAX_ERRORS]:
        errors.line(int(r) + 2, column(int(r)), message(int(r)))
    if int(bad.sum()) > MAX_ERRORS:  # counted, not spelled out
        errors.items.append((np.flatnonzero(bad)[MAX_ERRORS:], f"{prefix}_total", ""))
    total = np.where(n_items == 4, item_sum, total)
    return {"items": items, "total": total, "has": has & ~bad, "has_items": n_items == 4}


def validate_file(
    organisation: Organisation, df: pd.DataFrame, today: dt.date
) -> tuple[_Plan, _Errors]:
    """Checks that need only the file and the organisation's units and therapists."""
    errors = _Errors()
    code = df["client_code"]
    errors.add(code == "", "client_code", _("The client code is missing."))
    errors.add(
        (code != "") & ~code.str.match(_CODE_RE),
        "client_code",
        _("Use letters, digits, spaces and . - / only (at most 40 characters)."),
    )
    # SECURITY: a CPR-shaped value in any column is an error of its own, without the
    # value; the checks below leave such cells out of messages that name the value.
    cpr = {c: _cpr_mask(df[c]) for c in COLUMNS}
    for c in COLUMNS:
        errors.add(cpr[c], c, _cpr_text())
    label = df["episode"]
    errors.add(label.str.len() > 40, "episode", _("At most 40 characters."))

    # Therapists by username or e-mail among the organisation's therapists.
    members = list(
        Membership.objects.for_org(organisation)
        .filter(role=Role.THERAPIST)
        .values_list("user_id", "unit_id", "user__username", "user__email", "is_active")
    )
    by_name: dict[str, int] = {}
    for uid, _unit, username, email, _active in members:
        by_name.setdefault(username, uid)
        if email:
            by_name.setdefault(email.lower(), uid)
    t = df["therapist"]
    t_key = t.where(~t.str.contains("@", regex=False), t.str.lower())
    therapist_id = t_key.map(by_name)
    errors.add(
        therapist_id.isna() & (t != "") & ~cpr["therapist"],
        "therapist",
        lambda r: _("Unknown therapist %(name)s in this organisation.") % {"name": t.iat[r][:60]},
    )
    errors.add(t == "", "therapist", _("The therapist is missing."))
    units = dict(Unit.objects.for_org(organisation).values_list("code", "id"))
    u = df["unit"]
    unit_id = u.map(units)
    errors.add(
        unit_id.isna() & ~cpr["unit"],
        "unit",
        lambda r: _("Unknown unit %(code)s.") % {"code": u.iat[r][:60]},
    )
    # Historical data may name therapists who have left (inactive memberships).
    pairs = {uid * 2**32 + unit for uid, unit, _n, _e, _a in members}
    pair = therapist_id.fillna(-1).astype("int64") * 2**32 + unit_id.fillna(-1).astype("int64")
    errors.add(
        therapist_id.notna() & unit_id.notna() & ~pair.isin(pairs),
        "therapist",
        _("The therapist is not a therapist in this unit."),
    )

    age = df["age_group"].where(df["age_group"] != "", "adult").str.lower()
    errors.add(~age.isin(AGE_GROUPS), "age_group", _("Age group must be adult, youth or child."))

    date = _dates(df["session_date"])
    errors.add(date.isna(), "session_date", _("Not a date of the form YYYY-MM-DD."))
    errors.add(
        date > pd.Timestamp(today),
        "session_date",
        _("The session date cannot be in the future."),
    )
    errors.add(
        date < pd.Timestamp(EARLIEST),
        "session_date",
        _("Dates before %(date)s are not accepted.") % {"date": EARLIEST.isoformat()},
    )
    closed_given = df["episode_closed_on"] != ""
    closed = _dates(df["episode_closed_on"])
    errors.add(
        closed_given & closed.isna(),
        "episode_closed_on",
        _("Not a date of the form YYYY-MM-DD."),
    )
    errors.add(
        closed > pd.Timestamp(today),
        "episode_closed_on",
        _("The closing date cannot be in the future."),
    )

    ors = _score_check(df, "ors", errors, cpr)
    srs = _score_check(df, "srs", errors, cpr)

    work = pd.DataFrame(
        {
            "code_key": code.str.lower(),
            "code": code,
            "label": label,
            "therapist_id": therapist_id,
            "unit_id": unit_id,
            "age_group": age,
            "date": date,
            "date_str": df["session_date"],
            "closed_on": closed,
        }
    )
    # Episode-level values must agree on every line of the episode.
    ep_key = work["code_key"] + "\x1f" + work["label"]
    work["ep_key"] = ep_key
    for col, text in (
        ("therapist_id", _("Another line of this episode names another therapist.")),
        ("unit_id", _("Another line of this episode names another unit.")),
        ("age_group", _("Another line of this episode names another age group.")),
    ):
        first = work.groupby("ep_key", sort=False)[col].transform("first")
        column = {"therapist_id": "therapist", "unit_id": "unit"}.get(col, col)
        errors.add((work[col] != first) & work[col].notna() & first.notna(), column, text)
    closed_first = (
        work.loc[closed_given.to_numpy()].groupby("ep_key", sort=False)["closed_on"].first()
    )
    ep_closed = pd.Series(
        closed_first.reindex(ep_key.to_numpy()).to_numpy(dtype="datetime64[ns]"),
        index=ep_key.index,
    )
    errors.add(
        closed_given & (closed != ep_closed),
        "episode_closed_on",
        _("Another line of this episode gives another closing date."),
    )
    last = work.groupby("ep_key", sort=False)["date"].transform("max")
    errors.add(
        ep_closed.notna() & (ep_closed < last) & closed_given,
        "episode_closed_on",
        _("The closing date is before the last session."),
    )
    work["closed_on"] = ep_closed
    # One client has one age group across its episodes in this file.
    first_age = work.groupby("code_key", sort=False)["age_group"].transform("first")
    errors.add(
        work["age_group"] != first_age,
        "age_group",
        _("Another line of this client names another age group."),
    )
    dup = work.duplicated(["ep_key", "date"], keep="first") & work["date"].notna()
    first_line = (
        pd.Series(np.arange(len(work)) + 2, index=work.index)
        .groupby([work["ep_key"], work["date"]])
        .transform("first")
    )
    errors.add(
        dup,
        "session_date",
        lambda r: (
            _("Duplicate session: line %(line)s has the same client, episode and date.")
            % {"line": int(first_line.iat[r])}
        ),
    )
    return _Plan(work, ors, srs), errors


# --------------------------------------------------------------------------- existing data

_EXISTING_SQL = """
SELECT s.id, s.episode_id, s.date, o.item1, o.item2, o.item3, o.item4, o.total,
       r.item1, r.item2, r.item3, r.item4, r.total
FROM measures_session s
LEFT JOIN measures_score o ON o.session_id = s.id AND o.kind = 'outcome'
LEFT JOIN measures_score r ON r.session_id = s.id AND r.kind = 'alliance'
WHERE s.organisation_id = %s
"""


def _match_existing(
    organisation: Organisation, plan: _Plan, errors: _Errors
) -> tuple[pd.Series, pd.Series, np.ndarray, list[int]]:
    """Existing clients/episodes for the file's lines, and which lines are already
    imported (identical sessions). Returns (client_id per line, episode_id per line,
    skip mask, ids of existing episodes that get new sessions)."""
    w = plan.df
    n = len(w)
    clients = pd.DataFrame.from_records(
        list(Client.objects.for_org(organisation).values_list("id", "code", "age_group")),
        columns=["id", "code", "age_group"],
    )
    if clients.empty:
        return (
            pd.Series(np.nan, index=w.index),
            pd.Series(np.nan, index=w.index),
            np.zeros(n, dtype=bool),
            [],
        )
    clients["code_key"] = clients["code"].str.lower()
    cmap = clients.drop_duplicates("code_key").set_index("code_key")
    client_id = w["code_key"].map(cmap["id"])
    client_age = w["code_key"].map(cmap["age_group"])
    errors.add(
        client_id.notna() & (client_age != w["age_group"]),
        "age_group",
        _("The client exists already with another age group."),
    )
    known = client_id.dropna().astype("int64").unique().tolist()
    episodes = Episode.objects.for_org(organisation)
    if len(known) <= 1000:  # else read them all: cheaper than a huge IN list
        episodes = episodes.filter(client_id__in=known)
    known_set = set(known)
    eps = [
        row
        for row in episodes.values_list(
            "id", "client_id", "label", "started_on", "therapist_id", "unit_id", "status"
        )
        if row[1] in known_set
    ]
    # Labelled episodes match by label; an unlabelled one by "" when it is the client's
    # only unlabelled episode, and by its start date (how the export labels it when the
    # client has several episodes).
    keys: dict[tuple[int, str], int] = {}
    unlabelled: dict[int, list[int]] = {}
    info = {}
    for eid, cid, lab, started, tid, uid, status in eps:
        info[eid] = (tid, uid, status)
        if lab:
            keys[(cid, lab)] = eid
        else:
            unlabelled.setdefault(cid, []).append(eid)
            keys.setdefault((cid, started.isoformat()), eid)
    for cid, ids in unlabelled.items():
        if len(ids) == 1:
            keys[(cid, "")] = ids[0]
    lookup = pd.Series(keys, dtype="float64")
    if len(lookup):
        lookup.index = pd.Index([f"{c}\x1f{lab}" for c, lab in keys])
    key = client_id.astype("Int64").astype(str) + "\x1f" + w["label"]
    episode_id = key.map(lookup) if len(lookup) else pd.Series(np.nan, index=w.index)
    episode_id = episode_id.where(client_id.notna())
    several = client_id.notna() & episode_id.isna() & (w["label"] == "")
    several &= client_id.map(lambda c: len(unlabelled.get(int(c), [])) > 1 if c == c else False)
    errors.add(
        several,
        "episode",
        _("The client has several episodes: name the episode in the episode column."),
    )
    ep_info = episode_id.map(lambda e: info.get(int(e)) if e == e else None)
    for pos, col, text in (
        (0, "therapist", _("The episode exists already with another therapist.")),
        (1, "unit", _("The episode exists already in another unit.")),
    ):
        other = ep_info.map(lambda t, p=pos: None if t is None else t[p])
        target = w["therapist_id"] if col == "therapist" else w["unit_id"]
        errors.add(other.notna() & target.notna() & (other != target), col, text)

    skip = np.zeros(n, dtype=bool)
    if episode_id.notna().any():
        with connection.cursor() as cur:
            cur.execute(_EXISTING_SQL, [organisation.pk])
            rows = cur.fetchall()
        ex = pd.DataFrame.from_records(
            rows,
            columns=[
                "sid",
                "episode_id",
                "date",
                *[f"o{i}" for i in range(5)],
                *[f"r{i}" for i in range(5)],
            ],
        )
        ex = ex[ex["episode_id"].isin(episode_id.dropna().astype("int64").unique())]
        ex["date"] = pd.to_datetime(ex["date"])
        for c in ex.columns[3:]:
            ex[c] = pd.to_numeric(ex[c], errors="coerce").astype(float)
        ex = ex.drop_duplicates(["episode_id", "date"]).set_index(["episode_id", "date"])
        idx = pd.MultiIndex.from_arrays([episode_id.fillna(-1).astype("int64"), w["date"]])
        hit = ex.reindex(idx)
        exists = hit["sid"].notna().to_numpy()
        same = exists.copy()
        for score, pfx in ((plan.ors, "o"), (plan.srs, "r")):
            mine_total = np.where(score["has"], score["total"], np.nan)
            theirs = hit[f"{pfx}4"].to_numpy()
            same &= _eq(mine_total, theirs)
            for i in range(4):
                mine = np.where(score["has_items"], score["items"][:, i], np.nan)
                same &= _eq(mine, hit[f"{pfx}{i}"].to_numpy())
        errors.add(
            exists & ~same,
            "session_date",
            _("A different session of this episode on this date exists already."),
        )
        skip = exists & same
        closed_eps = {e for e, (_t, _u, st) in info.items() if st == Episode.Status.CLOSED}
        errors.add(
            ~skip & episode_id.isin(closed_eps).to_numpy(),
            "episode",
            _("The episode is closed in the platform; new sessions cannot be added."),
        )
    touched = sorted({int(e) for e in episode_id[~skip & episode_id.notna()].unique()})
    return client_id, episode_id, skip, touched


def _eq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        return both_nan | (np.abs(a - b) < 0.05)


# --------------------------------------------------------------------------- writing


def _write(model: Any, frame: pd.DataFrame) -> None:
    """COPY (PostgreSQL) or bulk_create (SQLite, embedded mode)."""
    if frame.empty:
        return
    if connection.vendor == "postgresql":
        from measures.management.commands.seed_demo import _copy

        _copy(model._meta.db_table, frame)
        return
    records = frame.astype(object).where(pd.notna(frame), None).to_dict("records")
    for r in records:
        if "alerts" in r:
            r["alerts"] = json.loads(r["alerts"])
    model.dangerously_unscoped.bulk_create([model(**r) for r in records], batch_size=2000)


# "0.0" ... "40.0": scores as text by table lookup (formatting a million floats is slow).
_TENTHS = np.array([f"{i / 10:.1f}" for i in range(401)] + [None], dtype=object)


def _fmt(values: np.ndarray) -> np.ndarray:
    tenths = np.where(np.isnan(values), 401, np.round(np.nan_to_num(values) * 10))
    return _TENTHS[tenths.astype(np.int64)]


def import_sessions(
    *,
    actor: Any,
    organisation: Organisation,
    data: bytes,
    progress: Progress | None = None,
    request: Any = None,
    today: dt.date | None = None,
) -> ImportResult:
    """Validate ``data`` completely; write it only if there is no error (all or nothing)."""
    from measures.management.commands.seed_demo import _next_ids

    report = progress or (lambda stage, done, total: None)
    today = today or timezone.localdate()
    df, file_errors = read_csv(data)
    if df is None:
        return ImportResult(errors=file_errors, error_count=len(file_errors))
    # Blank lines are ignored (their line numbers still count).
    blank = (df == "").all(axis=1).to_numpy()
    df = df.loc[~blank]
    result = ImportResult(lines=len(df))
    report("validating", 0, len(df))
    plan, errors = validate_file(organisation, df.reset_index(drop=True), today)
    # Line numbers are positions in the file, also after dropping blank lines.
    line_of = np.flatnonzero(~blank) + 2
    report("validating", len(df) // 2, len(df))

    def finish(errs: _Errors) -> ImportResult:
        result.error_count = errs.count()
        lines = errs.result()
        for e in lines:
            if e.line >= 2 and e.line - 2 < len(line_of):
                # Errors from masks count rows of the non-blank frame.
                e.line = int(line_of[e.line - 2])
        result.errors = lines
        return result

    if errors.count():
        return finish(errors)

    pg = connection.vendor == "postgresql"
    tables = ["clients_client", "clients_episode", "measures_session", "measures_score"]
    with transaction.atomic():
        if pg:
            # Serialises imports and bulk writes against each other; pages keep reading.
            with connection.cursor() as cur:
                cur.execute(f"LOCK TABLE {', '.join(tables)} IN SHARE ROW EXCLUSIVE MODE")
        client_id, episode_id, skip, touched = _match_existing(organisation, plan, errors)
        if errors.count():
            return finish(errors)
        report("importing", len(df) // 2, len(df))
        _write_plan(
            organisation, plan, client_id, episode_id, skip, actor, result, _next_ids, today
        )
        if touched:
            from .services import _renumber, episode_alerts_refresh

            for ep in Episode.objects.for_org(organisation).filter(pk__in=touched):
                _renumber(ep)
                episode_alerts_refresh(ep)
                first = ep.sessions.order_by("date").values_list("date", flat=True).first()
                if first and first < ep.started_on:
                    Episode.dangerously_unscoped.filter(pk=ep.pk).update(started_on=first)
        if pg:
            with connection.cursor() as cur:
                for table in tables:  # fixed names above, no user input
                    cur.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"GREATEST((SELECT MAX(id) FROM {table}), 1))"
                    )
        access_log_write(
            actor=actor,
            organisation=organisation,
            action="import",
            object_type="sessions",
            object_id=result.sessions_created,
            request=request,
        )
        _notify(organisation, plan, skip)
    report("done", len(df), len(df))
    return result


def _write_plan(
    organisation: Organisation,
    plan: _Plan,
    client_id: pd.Series,
    episode_id: pd.Series,
    skip: np.ndarray,
    actor: Any,
    result: ImportResult,
    next_ids: Any,
    today: dt.date,
) -> None:
    w = plan.df.copy()
    w["client_id"] = client_id.to_numpy()
    w["episode_id"] = episode_id.to_numpy()
    keep = ~skip
    result.sessions_skipped = int(skip.sum())
    w = w.loc[keep].reset_index(drop=True)
    ors = {k: v[keep] for k, v in plan.ors.items()}
    srs = {k: v[keep] for k, v in plan.srs.items()}
    now = timezone.now().isoformat()
    actor_id = actor.pk if getattr(actor, "is_authenticated", False) else None
    existing = w["episode_id"].notna().to_numpy()

    # New clients.
    new_c = w.loc[w["client_id"].isna()].drop_duplicates("code_key")
    if len(new_c):
        ids = next_ids(Client, len(new_c))
        _write(
            Client,
            pd.DataFrame(
                {
                    "id": ids,
                    "organisation_id": organisation.pk,
                    "code": new_c["code"].to_numpy(),
                    "age_group": new_c["age_group"].to_numpy(),
                    "birth_year": None,
                    "note": "",
                    "created_at": now,
                    "created_by_id": actor_id,
                }
            ),
        )
        w["client_id"] = w["client_id"].fillna(
            w["code_key"].map(pd.Series(ids, index=new_c["code_key"].to_numpy()))
        )
        result.clients_created = len(new_c)
    w["client_id"] = w["client_id"].astype("int64")

    # Session numbers by date within the episode. Sessions of existing episodes get a
    # temporary offset (unique meanwhile) and are renumbered after the insert.
    new_rows = w.loc[~existing]
    if len(new_rows):
        g = new_rows.groupby("ep_key", sort=False)
        first = g.first()
        ep_ids = next_ids(Episode, len(first))
        w.loc[~existing, "episode_id"] = new_rows["ep_key"].map(
            pd.Series(ep_ids, index=first.index)
        )
    w["episode_id"] = w["episode_id"].astype("int64")
    order = np.lexsort((np.arange(len(w)), w["date"].to_numpy(), w["episode_id"].to_numpy()))
    number = np.empty(len(w), dtype=np.int64)
    number[order] = w.iloc[order].groupby("episode_id", sort=False).cumcount().to_numpy() + 1
    number = np.where(existing, number + 20000, number)

    if len(new_rows):
        closed = first["closed_on"]
        closed_str = closed.dt.strftime("%Y-%m-%d").where(closed.notna(), None)
        alerts = _alerts(organisation, w.loc[~existing], ors, srs, ~existing, number, today)
        ep_frame = pd.DataFrame(
            {
                "id": ep_ids,
                "organisation_id": organisation.pk,
                "client_id": first["client_id"].astype("int64").to_numpy(),
                "therapist_id": first["therapist_id"].astype("int64").to_numpy(),
                "unit_id": first["unit_id"].astype("int64").to_numpy(),
                "age_group": first["age_group"].to_numpy(),
                "label": first["label"].to_numpy(),
                "started_on": g["date_str"].min().to_numpy(),
                "closed_on": closed_str.to_numpy(),
                "status": np.where(closed.notna(), "closed", "open"),
                "alerts": [alerts.get(int(e), "[]") for e in ep_ids],
                "created_at": now,
            }
        )
        _write(Episode, ep_frame)
        result.episodes_created = len(first)

    n = len(w)
    sids = next_ids(Session, n)
    _write(
        Session,
        pd.DataFrame(
            {
                "id": sids,
                "organisation_id": organisation.pk,
                "episode_id": w["episode_id"].to_numpy(),
                "date": w["date_str"].to_numpy(),
                "number": number,
                "created_by_id": actor_id,
                "created_at": now,
                "updated_at": now,
            }
        ),
    )
    result.sessions_created = n

    # Scores: ORS/SRS for adults and youth, CORS/CSRS for children.
    scales = dict(Scale.objects.values_list("code", "pk"))
    child = (w["age_group"] == "child").to_numpy()
    frames = []
    for kind, score, adult, kid in (
        ("outcome", ors, "ORS", "CORS"),
        ("alliance", srs, "SRS", "CSRS"),
    ):
        m = score["has"]
        items = np.where(score["has_items"][:, None], score["items"], np.nan)[m]
        frames.append(
            pd.DataFrame(
                {
                    "organisation_id": organisation.pk,
                    "session_id": sids[m],
                    "scale_id": np.where(child[m], scales[kid], scales[adult]),
                    "kind": kind,
                    "item1": _fmt(items[:, 0]),
                    "item2": _fmt(items[:, 1]),
                    "item3": _fmt(items[:, 2]),
                    "item4": _fmt(items[:, 3]),
                    "total": _fmt(score["total"][m]),
                }
            )
        )
    scores = pd.concat(frames, ignore_index=True)
    scores.insert(0, "id", next_ids(Score, len(scores)))
    _write(Score, scores)


def _alerts(
    organisation: Organisation,
    rows: pd.DataFrame,
    ors: dict[str, np.ndarray],
    srs: dict[str, np.ndarray],
    mask: np.ndarray,
    number: np.ndarray,
    today: dt.date,
) -> dict[int, str]:
    """Alerts of the new open episodes, computed by the statistics engine over the
    imported rows (the same as measures.services.episode_alerts_refresh would store)."""
    from stats.frames import normalise_frame

    from .services import alert_lists

    open_rows = rows["closed_on"].isna().to_numpy()
    if not open_rows.any():
        return {}
    sel = open_rows
    frame = pd.DataFrame(
        {
            "org_id": organisation.pk,
            "unit_id": rows["unit_id"].to_numpy()[sel],
            "therapist_id": rows["therapist_id"].to_numpy()[sel],
            "episode_id": rows["episode_id"].to_numpy()[sel],
            "age_group": rows["age_group"].to_numpy()[sel],
            "closed_on": pd.NaT,
            "session_date": rows["date"].to_numpy()[sel],
            "session_number": number[mask][sel],
            "ors": np.where(ors["has"], ors["total"], np.nan)[mask][sel],
            "srs": np.where(srs["has"], srs["total"], np.nan)[mask][sel],
        }
    )
    frame = normalise_frame(frame)
    lists = alert_lists(frame, organisation=organisation, as_of=today)
    return {eid: json.dumps(names) for eid, names in lists.items()}


def _notify(organisation: Organisation, plan: _Plan, skip: np.ndarray) -> None:
    from .signals import episode_data_changed

    w = plan.df.loc[~skip]
    unit_ids = sorted({int(u) for u in w["unit_id"].dropna().unique()})
    therapist_ids = sorted({int(t) for t in w["therapist_id"].dropna().unique()})
    org_id = organisation.pk
    transaction.on_commit(
        lambda: episode_data_changed.send(
            sender=Session, organisation_id=org_id, unit_ids=unit_ids, therapist_ids=therapist_ids
        )
    )
