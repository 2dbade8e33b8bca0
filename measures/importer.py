"""Import of historical sessions from other FIT systems (CSV), all or nothing.

Format (docs/import.md): UTF-8 CSV with a header, comma or semicolon separated, decimal
point or decimal comma. Columns: ``client_code``, ``therapist`` (username or e-mail),
``unit`` (unit code), ``session_date`` (YYYY-MM-DD), optional ``age_group``
(adult/youth/child, default adult), ``episode`` (a label separating several episodes of
one client), ``ors_1..ors_4`` and/or ``ors_total``, ``srs_1..srs_4`` and/or
``srs_total``, ``episode_closed_on``, ``same_day_order`` (1, 2 ... for several sessions
of one episode on one date; empty means 1).

The whole file is validated before anything is written; every error is reported with
its line (the header is line 1; a record's line is the line where it starts), column
and message. Only a file without errors is written, in one transaction, with bulk paths
(COPY on PostgreSQL). A session that exists already with identical scores (same
episode, date and same-day order) is skipped, so importing the same file twice changes
nothing; a different existing session there is an error. ``episode_closed_on`` closes
a matched open episode (as ``clients.services.episode_close`` would).

Validation is vectorised with pandas (a million lines must load within 5x PostgreSQL's
own COPY, see bench/import_bench.py). The score rules are those of
``measures.services.ScoreInput.parse``: the vectorised check only finds the bad lines,
and each bad line's message is produced by ``ScoreInput.parse`` itself, so the rules and
wording live in one place.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import math
import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clients.models import DATE_NAME_RE, EARLIEST_DATE, Client, Episode, too_early_text
from datapolicy.models import Membership, Organisation, Role, Unit
from datapolicy.services import Action, access_log_write, access_log_write_from_query
from datapolicy.validators import _CPR_SHAPE, looks_like_cpr

from .bulkload import BulkWrite, copy_frame, lock_organisation_for_bulk_write, reserve_ids
from .models import Scale, Score, Session
from .services import (
    NUMBER_RE,
    ScoreInput,
    episodes_alerts_refresh,
    id_chunks,
    sessions_renumber,
)

logger = logging.getLogger(__name__)

REQUIRED = ("client_code", "therapist", "unit", "session_date")
ITEMS = {p: [f"{p}_{i}" for i in range(1, 5)] for p in ("ors", "srs")}
SCORE_COLUMNS = frozenset(c for p in ("ors", "srs") for c in (*ITEMS[p], f"{p}_total"))
# Where a line's session sits in the file: what matching existing sessions needs.
PLACE_COLUMNS = frozenset({"client_code", "episode", "session_date", "same_day_order"})
OPTIONAL = (
    "age_group",
    "episode",
    *ITEMS["ors"],
    "ors_total",
    *ITEMS["srs"],
    "srs_total",
    "episode_closed_on",
    "same_day_order",
)
COLUMNS = (*REQUIRED, *OPTIONAL)
AGE_GROUPS = ("adult", "youth", "child")
# Free text the export writes. A value that a spreadsheet would run as a formula (it
# starts with = + - @, or a tab or carriage return: OWASP's CSV-injection list) is
# written with a leading apostrophe, which spreadsheets show as text, and the import
# removes that apostrophe again (FORMULA_START, _GUARDED); a value that starts with an
# apostrophe gets one more, so that "'=x" comes back as "'=x". The one guard of every
# export: datapolicy.reports.spreadsheet_text uses it too.
TEXT_COLUMNS = ("client_code", "therapist", "unit", "episode")
FORMULA_START = r"^[=+\-@\t\r']"  # and the apostrophe itself, so that the guard reverses
_GUARDED = r"^'(?=[=+\-@\t\r'])"
MAX_ERRORS = 1000
CHUNK = 50_000  # lines per progress report (reading and writing)
_CODE_RE = r"^[\w.\-/ ]{1,40}$"  # clients.models.code_validator
_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
_ORDER_RE = r"^[1-9]\d?$"
# Control characters other than line ends (checked per value when the file has any):
# a NUL cannot be stored at all, a tab or escape is never part of a code or a label.
_CONTROL = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")
EPS = 1e-9  # float noise of a value with one decimal is far smaller
_ONE_DECIMAL = Decimal("0.1")
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
    episodes_closed: int = 0
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
            "episodes_closed": self.episodes_closed,
            "sessions_created": self.sessions_created,
            "sessions_skipped": self.sessions_skipped,
            "errors": self.error_count,
        }


class _Errors:
    """Collects errors by row of the (blank-free) frame; ``line_of[row]`` is the file
    line where that row's record starts (blank lines and quoted line breaks counted)."""

    def __init__(self, line_of: np.ndarray) -> None:
        self.line_of = line_of
        self.items: list[tuple[np.ndarray, str, Any]] = []
        self.extra: list[tuple[int, str, str]] = []
        self.rendered: list[LineError] = []  # from a check of a part of the rows
        self.uncounted = 0  # errors counted but not spelled out (beyond MAX_ERRORS)
        self.unspelled: list[tuple[np.ndarray, str]] = []  # their rows and column

    def add(self, mask: Any, column: str, message: Any) -> None:
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        if len(rows):
            self.items.append((rows, column, message))

    def row(self, row: int, column: str, message: str) -> None:
        self.extra.append((row, column, message))

    def flag(self, rows: np.ndarray, column: str) -> None:
        """Errors in ``column`` counted on ``rows`` without a message (beyond
        MAX_ERRORS)."""
        self.uncounted += len(rows)
        self.unspelled.append((rows, column))

    def line(self, row: int) -> int:
        return int(self.line_of[row])

    def count(self) -> int:
        spelled = sum(len(r) for r, _c, _m in self.items) + len(self.extra) + len(self.rendered)
        return spelled + self.uncounted

    def rows_with_errors(self, *, besides: frozenset[str] = frozenset()) -> np.ndarray:
        """Rows with an error (``besides``: an error in a column not among these)."""
        bad = np.zeros(len(self.line_of), dtype=bool)
        for rows, column, _m in self.items:
            if column not in besides:
                bad[rows] = True
        for rows, column in self.unspelled:
            if column not in besides:
                bad[rows] = True
        bad[[r for r, column, _m in self.extra if column not in besides]] = True
        return bad

    def drop_rows(self, rows: np.ndarray) -> None:
        """Forget the errors found on ``rows`` (a mask)."""
        self.items = [(r[~rows[r]], c, m) for r, c, m in self.items if (~rows[r]).any()]
        self.extra = [(r, c, m) for r, c, m in self.extra if not rows[r]]

    def merge(self, other: _Errors) -> None:
        """Add the errors of a check of some of the rows (its own line numbers)."""
        found = other.result()
        self.rendered.extend(found)
        self.uncounted += other.count() - len(found)

    def result(self) -> list[LineError]:
        out = [LineError(self.line(r), c, m) for r, c, m in self.extra]
        out += self.rendered
        for rows, column, message in self.items:
            # Only the first MAX_ERRORS per check need their text (messages may be built
            # per row by a callable).
            for r in rows[:MAX_ERRORS]:
                text = message(int(r)) if callable(message) else str(message)
                out.append(LineError(self.line(int(r)), column, text))
        out.sort(key=lambda e: (e.line, COLUMNS.index(e.column) if e.column in COLUMNS else -1))
        return out[:MAX_ERRORS]


# --------------------------------------------------------------------------- parsing


class Parsed(NamedTuple):
    """The data lines as a frame of stripped strings in COLUMNS order (blank lines
    removed), the file line where each row's record starts, and whether some record
    spans several lines (a quoted line break)."""

    frame: pd.DataFrame
    line_of: np.ndarray
    multiline: bool
    control: bool = False  # some value holds a control character (e.g. NUL, tab)


def _more_fields() -> str:
    return _(
        "The line has more fields than the header (a decimal comma in a "
        "comma-separated file must be quoted, or use semicolons)."
    )


_FIELD_LIMIT = csv.field_size_limit()


def _structure_plain(text: str, sep: str) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """``_structure`` for a file without quotes, carriage returns or NUL characters (what
    spreadsheets and other systems' exports usually write): every line is one record and
    its field count is its separators plus one (an empty line has none); three times
    faster than the csv module, whose reading of such a file is the same (a test compares
    them). None for any other file."""
    if not _plain(text):
        return None
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    if not lines or max(map(len, lines)) > _FIELD_LIMIT:
        return None
    counts = np.fromiter(
        (line.count(sep) + 1 if line else 0 for line in lines), dtype=np.int64, count=len(lines)
    )
    header = lines[0].split(sep) if lines[0] else []
    return header, counts[1:], np.arange(2, 1 + len(counts), dtype=np.int64)


def _structure(text: str, sep: str) -> tuple[list[str], np.ndarray, np.ndarray] | LineError:
    """(header fields, field count per data record, start line per data record), read
    with the csv module (quotes strict), or the error of the first unreadable record."""
    plain = _structure_plain(text, sep)
    if plain is not None:
        return plain
    reader = csv.reader(io.StringIO(text), delimiter=sep, strict=True)
    try:
        header = next(reader, [])
        counts = np.fromiter(map(len, reader), dtype=np.int64)
    except csv.Error as exc:
        return _csv_error(text, sep, exc)
    physical = text.count("\n") + (0 if text.endswith("\n") else 1)
    if 1 + len(counts) == physical:
        return header, counts, np.arange(2, 2 + len(counts), dtype=np.int64)
    # Some quoted value holds a line break: each record's own start line.
    reader = csv.reader(io.StringIO(text), delimiter=sep, strict=True)
    next(reader)
    starts = np.empty(len(counts), dtype=np.int64)
    previous = reader.line_num
    for i, _row in enumerate(reader):
        starts[i] = previous + 1
        previous = reader.line_num
    return header, counts, starts


def _csv_error(text: str, sep: str, exc: csv.Error) -> LineError:
    """The csv module's error as a message with the line where the bad record starts
    (for an unclosed quote: the line where the quote opens)."""
    reader = csv.reader(io.StringIO(text), delimiter=sep, strict=True)
    previous = 0
    try:
        for _row in reader:
            previous = reader.line_num
    except csv.Error as again:
        exc = again
    start = previous + 1
    reason = str(exc)
    if "unexpected end of data" in reason or "field larger than field limit" in reason:
        # The quote opens where the count of quotes (from the record's start) last
        # became odd: "" inside a quoted value counts twice and keeps the parity.
        odd, opens = False, 0
        for i, physical in enumerate(text.split("\n")[start - 1 :]):
            if physical.count('"') % 2:
                odd = not odd
                if odd:
                    opens = start + i
        if not opens and "field larger" in reason:  # a value longer than csv reads
            return LineError(
                start,
                "",
                _("A value on this line is longer than %(limit)s characters.")
                % {"limit": _FIELD_LIMIT},
            )
        return LineError(
            opens or start, "", _("A quote opened on this line is never closed (check the quotes).")
        )
    if "new-line character" in reason:
        return LineError(
            start,
            "",
            _("The line ends with a lone carriage return; save the file with ordinary line ends."),
        )
    return LineError(
        start,
        "",
        _(
            "A quoted value must be followed by the separator or the end of the line "
            '(write "" for a quote inside a quoted value).'
        ),
    )


def read_csv(
    data: bytes, progress: Callable[[int, int], None] | None = None
) -> tuple[Parsed | None, list[LineError], int]:
    """The file as a ``Parsed`` frame, or (None, errors, error count)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [LineError(line, "", _("The file is not UTF-8 text."))], 1
    end = text.find("\n")
    first = text if end < 0 else text[:end]
    if not first.strip():
        return None, [LineError(1, "", _("The file is empty or has no header line."))], 1
    sep = ";" if first.count(";") > first.count(",") else ","
    structure = _structure(text, sep)
    if isinstance(structure, LineError):
        return None, [structure], 1
    header, counts, starts = structure

    names = [str(c).strip().lower() for c in header]
    errors = []
    seen: set[str] = set()
    for i, c in enumerate(names):
        # SECURITY: a CPR number in a header is never repeated, not even cut short.
        shown = "" if looks_like_cpr(c) else c[:40]
        if not c:
            errors.append(
                LineError(
                    1,
                    "",
                    _(
                        "Column %(number)s of the header has no name (is there a separator "
                        "at the end of the header line?)."
                    )
                    % {"number": i + 1},
                )
            )
        elif not shown:
            errors.append(LineError(1, "", _cpr_text()))
        elif c in seen:
            errors.append(
                LineError(
                    1, shown, _("The column %(name)s appears more than once.") % {"name": shown}
                )
            )
        elif c not in COLUMNS:
            errors.append(LineError(1, shown, _("Unknown column %(name)s.") % {"name": shown}))
        seen.add(c)
    for c in REQUIRED:
        if c not in names:
            errors.append(LineError(1, c, _("The column %(name)s is missing.") % {"name": c}))
    if errors:
        return None, errors, len(errors)

    width = len(names)
    more = np.flatnonzero(counts > width)
    if len(more):
        errors = [LineError(int(starts[r]), "", _more_fields()) for r in more[:MAX_ERRORS]]
        return None, errors, len(more)

    if _plain(text) and len(counts) and bool((counts == width).all()):
        # Every line a full record (no quotes, blank or short lines): arrow's reader
        # takes all columns as text in one multi-threaded pass.
        df = _read_rectangular(text, sep, names)
        if progress is not None:
            progress(len(df), len(counts))
    else:
        df = _read_chunked(text, sep, names, len(counts), progress)
    if len(df) != len(counts):  # the two readers disagree: never guess line numbers
        return (
            None,
            [LineError(1, "", _("The file cannot be read consistently; check its quotes."))],
            1,
        )
    for c in COLUMNS:
        df[c] = df[c].str.strip() if c in df.columns else ""
    if "'" in text:
        for c in TEXT_COLUMNS:  # the export's guard against spreadsheet formulas
            df[c] = df[c].str.replace(_GUARDED, "", n=1, regex=True)
    df = df[list(COLUMNS)]
    # Blank lines (also a line of separators or spaces only) are ignored; their line
    # numbers still count.
    blank = (df == "").all(axis=1).to_numpy() | (counts == 0)
    fewer = np.flatnonzero(~blank & (counts < width))
    if len(fewer):
        # A line cut short would silently lose its last columns (e.g. the SRS).
        errors = [
            LineError(
                int(starts[r]),
                "",
                _("The line has fewer fields than the header (%(got)s instead of %(want)s).")
                % {"got": int(counts[r]), "want": width},
            )
            for r in fewer[:MAX_ERRORS]
        ]
        return None, errors, len(fewer)
    multiline = bool(len(starts)) and bool(starts[-1] != len(starts) + 1)
    keep = ~blank
    if not keep.any():
        return None, [LineError(1, "", _("The file has a header but no sessions."))], 1
    control = _CONTROL.search(text) is not None
    return Parsed(df.loc[keep].reset_index(drop=True), starts[keep], multiline, control), [], 0


def _plain(text: str) -> bool:
    return '"' not in text and "\r" not in text and "\x00" not in text


def _read_rectangular(text: str, sep: str, names: list[str]) -> pd.DataFrame:
    table = pa_csv.read_csv(
        io.BytesIO(text.encode()),
        read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=pa_csv.ParseOptions(
            delimiter=sep, quote_char=False, newlines_in_values=False, ignore_empty_lines=False
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
        ),
    )
    return table.to_pandas()


def _read_chunked(
    text: str, sep: str, names: list[str], records: int, progress: Callable[[int, int], None] | None
) -> pd.DataFrame:
    """pandas' reader (quotes, blank and short lines), CHUNK lines per progress report."""
    chunks = []
    done = 0
    reader = pd.read_csv(
        io.StringIO(text),
        sep=sep,
        header=0,
        names=names,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=False,
        index_col=False,
        engine="c",
        chunksize=CHUNK,
    )
    with reader:
        for chunk in reader:
            chunks.append(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, records)
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=names)


def _dates(values: pd.Series) -> pd.Series:
    shaped = values.str.match(_DATE_RE)
    parsed = pd.to_datetime(values.where(shaped, None), format="%Y-%m-%d", errors="coerce")
    return parsed


def _numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(floats with NaN for empty, mask of non-empty values that are not numbers).

    Each distinct value is read once, by the rule of the form and the API
    (measures.services.NUMBER_RE: ASCII digits, a decimal point or comma), so whether a
    value is a number never depends on the other lines of the file."""
    codes, uniques = pd.factorize(values)
    number = np.full(len(uniques) + 1, np.nan)  # the last slot: code -1 (none here)
    bad = np.zeros(len(uniques) + 1, dtype=bool)
    for i, text in enumerate(uniques):
        if text == "":
            continue
        text = text.replace(",", ".")
        value = float(text) if NUMBER_RE.fullmatch(text) else math.inf
        if math.isfinite(value):  # 400 digits are a number, but not a finite float
            number[i] = value
        else:
            bad[i] = True
    return number[codes], bad[codes]


def _too_precise(values: pd.Series) -> np.ndarray:
    """Values with more than one decimal that the float check cannot see (10.0000001).

    A value of at most four characters ("40.0", "9,5") is exact enough for the float
    check; a longer one is checked as ScoreInput.parse does, once per distinct value."""
    long = (values.str.len() > 4).to_numpy()
    if not long.any():
        return long
    bad = set()
    for v in values[long].unique():
        try:
            number = Decimal(v.replace(",", "."))
            if number.is_finite() and number != number.quantize(_ONE_DECIMAL):
                bad.add(v)
        except InvalidOperation:
            continue  # not a number, or far out of range: the other checks report it
    return long & values.isin(bad).to_numpy()


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
        bad |= not_number | _too_precise(df[c])
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
        errors.row(int(r), column(int(r)), message(int(r)))
    errors.flag(np.flatnonzero(bad)[MAX_ERRORS:], f"{prefix}_total")  # counted only
    total = np.where(n_items == 4, item_sum, total)
    return {"items": items, "total": total, "has": has & ~bad, "has_items": n_items == 4}


def validate_file(
    organisation: Organisation,
    parsed: Parsed,
    today: dt.date,
    tick: Callable[[float], None] | None = None,
) -> tuple[_Plan, _Errors]:
    """Checks that need only the file and the organisation's units and therapists.
    ``tick(fraction)`` reports how far the checks are."""
    df = parsed.frame
    errors = _Errors(parsed.line_of)
    step = tick or (lambda fraction: None)
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
    if parsed.multiline:
        # A quoted line break is never part of a valid value (and is easily a quote
        # missing its end).
        for c in COLUMNS:
            errors.add(
                df[c].str.contains("\n|\r", regex=True) & ~cpr[c],
                c,
                _("The value contains a line break (check the quotes)."),
            )
    if parsed.control:
        for c in COLUMNS:
            errors.add(
                df[c].str.contains(_CONTROL.pattern, regex=True) & ~cpr[c],
                c,
                _("The value contains a control character (such as a tab or NUL)."),
            )
    label = df["episode"]
    errors.add(label.str.len() > 40, "episode", _("At most 40 characters."))
    step(0.2)

    members = list(
        Membership.objects.for_org(organisation)
        .filter(role=Role.THERAPIST)
        .values_list("user_id", "unit_id", "user__username", "user__email", "is_active")
    )
    t = df["therapist"]
    therapist_id, ambiguous = _therapists(t, members)
    errors.add(
        ambiguous & ~cpr["therapist"],
        "therapist",
        lambda r: (
            _(
                "%(name)s matches several users of this organisation (username or e-mail); "
                "use the exact username."
            )
            % {"name": t.iat[r][:60]}
        ),
    )
    errors.add(
        therapist_id.isna() & ~ambiguous & (t != "") & ~cpr["therapist"],
        "therapist",
        lambda r: _("Unknown therapist %(name)s in this organisation.") % {"name": t.iat[r][:60]},
    )
    errors.add(t == "", "therapist", _("The therapist is missing."))
    units = dict(Unit.objects.for_org(organisation).values_list("code", "id"))
    u = df["unit"]
    # The exact code; else the code without regard to case where only one unit has it.
    folded: dict[str, set[int]] = defaultdict(set)
    for unit_code, uid in units.items():
        folded[unit_code.lower()].add(uid)
    unit_id = u.map(units)
    inexact = unit_id.isna()
    unit_ambiguous = np.zeros(len(u), dtype=bool)
    if inexact.any():
        unique = {k: next(iter(ids)) for k, ids in folded.items() if len(ids) == 1}
        unit_id = unit_id.where(~inexact, u.str.lower().map(unique))
        several = [k for k, ids in folded.items() if len(ids) > 1]
        unit_ambiguous = (inexact & u.str.lower().isin(several)).to_numpy()
    errors.add(
        unit_ambiguous & ~cpr["unit"],
        "unit",
        lambda r: (
            _("%(code)s matches several units whose codes differ only in case; use the exact code.")
            % {"code": u.iat[r][:60]}
        ),
    )
    errors.add(
        unit_id.isna() & ~unit_ambiguous & ~cpr["unit"],
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
        date < pd.Timestamp(EARLIEST_DATE),
        "session_date",
        too_early_text(),
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

    order_text = df["same_day_order"]
    order_given = order_text != ""
    order_ok = ~order_given | order_text.str.match(_ORDER_RE)
    errors.add(
        ~order_ok & ~cpr["same_day_order"],
        "same_day_order",
        _("Give a whole number from 1 to 99 (the order of sessions on one date), or nothing."),
    )
    step(0.4)

    ors = _score_check(df, "ors", errors, cpr)
    step(0.6)
    srs = _score_check(df, "srs", errors, cpr)
    step(0.8)

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
            # The n-th session of the episode on that date (empty: the first).
            "order": order_text.where(order_given & order_ok, "1").astype("int64"),
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
        closed_given & closed.notna() & (closed != ep_closed),
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
    keys = ["ep_key", "date", "order"]
    dup = work.duplicated(keys, keep="first") & work["date"].notna()
    if dup.any():
        first_row = (
            pd.Series(np.arange(len(work)), index=work.index)
            .groupby([work[k] for k in keys])
            .transform("first")
        )
        errors.add(
            dup,
            "session_date",
            lambda r: (
                _("Duplicate session: line %(line)s has the same client, episode and date.")
                % {"line": errors.line(int(first_row.iat[r]))}
            ),
        )
    if order_given.any():
        # 1, 2, 3 ... without gaps, so that a re-import finds the same sessions again.
        distinct = work.groupby(["ep_key", "date"], sort=False)["order"].transform("nunique")
        errors.add(
            order_given & (work["order"] > distinct),
            "same_day_order",
            _(
                "The same_day_order values of one episode and date must be 1, 2, 3 ... "
                "without gaps."
            ),
        )
    step(1.0)
    return _Plan(work, ors, srs), errors


def _therapists(values: pd.Series, members: list[tuple[Any, ...]]) -> tuple[pd.Series, np.ndarray]:
    """User id per value among the organisation's therapists, and the ambiguous values.

    The exact username first (usernames are unique, and the export writes them); else
    the value without regard to case among usernames and e-mail addresses, where a value
    that fits two different users is ambiguous (never one of them picked silently)."""
    exact: dict[str, int] = {}
    folded: dict[str, set[int]] = defaultdict(set)
    for uid, _unit, username, email, _active in members:
        exact[username] = uid
        folded[username.strip().lower()].add(uid)
        if email:
            folded[email.strip().lower()].add(uid)
    unique = {k: next(iter(ids)) for k, ids in folded.items() if len(ids) == 1}
    several = {k for k, ids in folded.items() if len(ids) > 1}
    found = values.map(exact)
    missing = found.isna()
    if missing.any():
        lower = values[missing].str.lower()
        found = found.fillna(lower.map(unique))
        ambiguous = np.zeros(len(values), dtype=bool)
        ambiguous[np.flatnonzero(missing.to_numpy())] = lower.isin(several).to_numpy()
        return found, ambiguous
    return found, np.zeros(len(values), dtype=bool)


# --------------------------------------------------------------------------- existing data

# The sessions of the matched episodes with their scores (PostgreSQL: scores as float8,
# read as CSV and parsed by pyarrow; SQLite reads the organisation's and filters).
_EXISTING_SELECT = """
SELECT s.id, s.episode_id, s.date, s.number, s.imported_on, s.imported_order, {scores}
FROM measures_session s
LEFT JOIN measures_score o ON o.session_id = s.id AND o.kind = 'outcome'
LEFT JOIN measures_score r ON r.session_id = s.id AND r.kind = 'alliance'
WHERE s.organisation_id = %s
"""
_SCORE_COLUMNS = [f"{t}.{c}" for t in "or" for c in ("item1", "item2", "item3", "item4", "total")]
_SCORE_NAMES = [f"{p}{i}" for p in "or" for i in range(5)]
_EXISTING_COLUMNS = [
    "sid",
    "episode_id",
    "date",
    "number",
    "imported_on",
    "imported_order",
    *_SCORE_NAMES,
]


def _existing_sessions(organisation: Organisation, episode_ids: list[int]) -> pd.DataFrame:
    """Existing sessions of ``episode_ids`` (columns ``_EXISTING_COLUMNS``; scores as
    floats, NaN where absent; dates as datetimes)."""
    if connection.vendor == "postgresql":
        sql = _EXISTING_SELECT.format(scores=", ".join(f"{c}::float8" for c in _SCORE_COLUMNS))
        # A semi-join: "= ANY(array)" as a row filter compares each row with the whole
        # array (a seq scan of a big organisation against 255,000 ids ran for minutes).
        sql += " AND s.episode_id IN (SELECT unnest(%s::bigint[]))"
        buf = io.BytesIO()
        with connection.cursor() as cur:
            raw = cur.cursor  # psycopg's own cursor under Django's wrapper
            with raw.copy(
                f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", [organisation.pk, episode_ids]
            ) as copy:
                for chunk in copy:
                    buf.write(chunk)
        if not buf.tell():
            ex = pd.DataFrame({c: pd.Series(dtype="float64") for c in _EXISTING_COLUMNS})
            ex["date"] = ex["imported_on"] = pd.Series(dtype="datetime64[ns]")
            return ex
        buf.seek(0)
        table = pa_csv.read_csv(
            buf,
            read_options=pa_csv.ReadOptions(column_names=_EXISTING_COLUMNS),
            convert_options=pa_csv.ConvertOptions(
                column_types={c: pa.float64() for c in _SCORE_NAMES}
                | {"sid": pa.int64(), "episode_id": pa.int64(), "number": pa.int64()}
                | {"imported_order": pa.float64()}
                | {"imported_on": pa.date32()}
            ),
        )
        ex = table.to_pandas()
    else:
        with connection.cursor() as cur:
            cur.execute(
                _EXISTING_SELECT.format(scores=", ".join(_SCORE_COLUMNS)), [organisation.pk]
            )
            ex = pd.DataFrame.from_records(cur.fetchall(), columns=_EXISTING_COLUMNS)
        ex = ex[ex["episode_id"].isin(episode_ids)]
        for c in (*_SCORE_NAMES, "imported_order"):
            ex[c] = pd.to_numeric(ex[c], errors="coerce").astype(float)
    ex["date"] = pd.to_datetime(ex["date"])
    ex["imported_on"] = pd.to_datetime(ex["imported_on"])
    return ex


def episode_keys(episodes: Iterable[tuple[int, int, str, dt.date]]) -> dict[int, str]:
    """How the import format names each episode of a client, from ``(id, client id,
    label, start date)``: a labelled episode by its label; an unlabelled one by its start
    date (YYYY-MM-DD), as ``YYYY-MM-DD (2)``, ``(3)`` ... where a label or an earlier
    unlabelled episode of the client (by start date, then id) has that name already.
    The export writes these keys and the import matches by them, so that every episode
    of a client keeps a name of its own in a round trip."""
    by_client: dict[int, list[tuple[int, str, dt.date]]] = defaultdict(list)
    for eid, cid, label, started in episodes:
        by_client[cid].append((eid, label, started))
    keys: dict[int, str] = {}
    for eps in by_client.values():
        taken = {label for _eid, label, _started in eps if label}
        for eid, label, _started in eps:
            if label:
                keys[eid] = label
        unlabelled = sorted((e for e in eps if not e[1]), key=lambda e: (e[2], e[0]))
        for eid, _label, started in unlabelled:
            base = key = started.isoformat()
            n = 1
            while key in taken:
                n += 1
                key = f"{base} ({n})"
            taken.add(key)
            keys[eid] = key
    return keys


class _Matched(NamedTuple):
    client_id: pd.Series  # existing client per line (NaN: new)
    episode_id: pd.Series  # existing episode per line (NaN: new)
    skip: np.ndarray  # lines already imported (identical session)
    touched: list[int]  # existing episodes that get new sessions
    to_close: dict[int, dt.date]  # existing open episodes the file closes
    changed: np.ndarray  # lines whose episode changes (new session or closed)
    # Unlabelled existing episodes the file names by their start date (episode_keys):
    # an episode whose start date the import moves keeps that name as its label.
    named_by: dict[int, str] = {}


def _match_existing(
    organisation: Organisation,
    plan: _Plan,
    errors: _Errors,
    *,
    lock: bool = True,
    wild: np.ndarray | None = None,
) -> _Matched:
    """Existing clients/episodes for the file's lines, which lines are already imported
    (identical sessions), and which existing open episodes the file closes.

    ``wild`` (the error report only): lines whose scores have errors of their own; they
    may be any of their candidate sessions once corrected, so that no other line is told
    its session differs because of a line the report left out."""
    w = plan.df
    n = len(w)
    nothing = _Matched(
        pd.Series(np.nan, index=w.index),
        pd.Series(np.nan, index=w.index),
        np.zeros(n, dtype=bool),
        [],
        {},
        np.ones(n, dtype=bool),
    )
    clients = pd.DataFrame.from_records(
        list(Client.objects.for_org(organisation).values_list("id", "code", "age_group")),
        columns=["id", "code", "age_group"],
    )
    if clients.empty:
        return nothing
    clients["code_key"] = clients["code"].str.lower()
    cmap = clients.drop_duplicates("code_key").set_index("code_key")
    client_id = w["code_key"].map(cmap["id"])
    client_age = w["code_key"].map(cmap["age_group"])
    # What the platform changed since (an episode handed to a colleague, a client's age
    # group) conflicts only with lines that would add something: a line whose session
    # is imported already is skipped as it is (a cumulative extract imported again).
    conflicts: list[tuple[np.ndarray, str, str]] = [
        (
            (client_id.notna() & (client_age != w["age_group"])).to_numpy(),
            "age_group",
            _("The client exists already with another age group."),
        )
    ]
    known = client_id.dropna().astype("int64").unique().tolist()
    eps = _episodes_locked(organisation, known, lock=lock)
    # Every episode matches by its key (episode_keys: the label, or for an unlabelled
    # one its start date, made unique; how the export names it); an unlabelled one also
    # by "" when it is the client's only unlabelled episode.
    named = episode_keys(e[:4] for e in eps)
    keys: dict[tuple[int, str], int] = {}
    unlabelled: dict[int, list[int]] = {}
    for eid, cid, lab, *_rest in eps:
        keys[(cid, named[eid])] = eid
        if not lab:
            unlabelled.setdefault(cid, []).append(eid)
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
    several &= client_id.isin([c for c, ids in unlabelled.items() if len(ids) > 1])
    errors.add(
        several,
        "episode",
        _("The client has several episodes: name the episode in the episode column."),
    )
    # A date as name (how unlabelled episodes are named) must name one of the client's
    # episodes now: refused, never guessed. The start date moves when an earlier session
    # is added, so an older file could otherwise put a session into a new episode. (The
    # pages and the API refuse such labels, clients.models.reject_date_name, so a label
    # typed later cannot take an unlabelled episode's name.)
    label = w["label"]
    date_named = client_id.notna() & label.str.match(DATE_NAME_RE)
    errors.add(
        date_named & episode_id.isna(),
        "episode",
        lambda r: (
            _(
                "The client has no episode named %(name)s now (an unlabelled episode is "
                "named by its start date, which moves when an earlier session is added): "
                "export again for the current names; a new episode needs a label that is "
                "not a date."
            )
            % {"name": label.iat[r]}
        ),
    )
    labelled_ids = {eid for eid, _cid, lab, *_rest in eps if lab}
    named_by = {
        int(e): lab
        for e, lab in zip(episode_id[date_named], label[date_named], strict=True)
        if e == e and int(e) not in labelled_ids  # e == e: not NaN
    }
    # The matched episode's therapist, unit, status and closing date on every line.
    ep_info = (
        pd.DataFrame.from_records(
            [e[:1] + e[4:] for e in eps],
            columns=["id", "therapist_id", "unit_id", "status", "closed_on"],
        )
        .set_index("id")
        .reindex(episode_id.to_numpy())
        .set_axis(w.index)
    )
    for col, text in (
        ("therapist", _("The episode exists already with another therapist.")),
        ("unit", _("The episode exists already in another unit.")),
    ):
        other = ep_info[f"{col}_id"]
        target = w[f"{col}_id"]
        conflicts.append(
            ((other.notna() & target.notna() & (other != target)).to_numpy(), col, text)
        )

    # A line changes its episode when it adds a session or closes the open episode.
    closes = (
        episode_id.notna() & w["closed_on"].notna() & (ep_info["status"] != Episode.Status.CLOSED)
    ).to_numpy()

    def report_conflicts(skip: np.ndarray) -> None:
        for mask, column, text in conflicts:
            errors.add(mask & (~skip | closes), column, text)

    matched = episode_id.notna()
    skip = np.zeros(n, dtype=bool)
    to_close: dict[int, dt.date] = {}
    if not matched.any():
        report_conflicts(skip)
        return _Matched(client_id, episode_id, skip, [], to_close, np.ones(n, dtype=bool))
    eid = episode_id.fillna(-1).astype("int64")

    # Two lines of one existing episode on one date (and same-day order), e.g. one with
    # and one without the episode label: only one of them can be that session.
    keys3 = [eid, w["date"], w["order"]]
    dup = matched & pd.DataFrame({"e": eid, "d": w["date"], "o": w["order"]}).duplicated()
    if dup.any():
        first_row = pd.Series(np.arange(n), index=w.index).groupby(keys3).transform("first")
        errors.add(
            dup,
            "session_date",
            lambda r: (
                _("Duplicate session: line %(line)s is the same session of this episode.")
                % {"line": errors.line(int(first_row.iat[r]))}
            ),
        )

    ex = _existing_sessions(organisation, sorted({int(e) for e in eid[matched].unique()}))
    ex["date"] = ex["date"].astype(w["date"].dtype)
    ex["imported_on"] = ex["imported_on"].astype(w["date"].dtype)
    # The n-th session of an episode on a date, in the order of the session numbers.
    ex = ex.sort_values(["episode_id", "date", "number"])
    ex["order"] = ex.groupby(["episode_id", "date"]).cumcount() + 1
    last_existing = ex.groupby("episode_id")["date"].max()
    idx = pd.MultiIndex.from_arrays([eid, w["date"], w["order"]])
    # Two candidates per line: the existing session in the line's place now (episode,
    # date, same-day order by number), and the session an import made from a line with
    # this place (Session.imported_on / imported_order), found also after its date was
    # corrected in the platform.
    here = ex.set_index(["episode_id", "date", "order"]).reindex(idx)
    # Two sessions can hold one file place (a line added at the place of a session that
    # another line took): the oldest is ``origin``, the others further candidates.
    place_keys = ["episode_id", "imported_on", "imported_order"]
    src = (
        ex[ex["imported_on"].notna() & ex["imported_order"].notna()]
        .astype({"imported_order": "int64"})
        .sort_values("sid")
    )
    twice = src.duplicated(place_keys)
    origin = src[~twice].set_index(place_keys).reindex(idx)
    more_same, more_other = _more_origins(plan, src[twice], eid, w, wild)
    here_sid = here["sid"].to_numpy(dtype="float64")
    origin_sid = origin["sid"].to_numpy(dtype="float64")
    same_here, same_origin = _same_scores(plan, here), _same_scores(plan, origin)
    if wild is not None:  # lines whose scores are to be corrected: any candidate may fit
        same_here |= wild & ~np.isnan(here_sid)
        same_origin |= wild & ~np.isnan(origin_sid)
    matched_sid = _claim_identical(
        here_sid, origin_sid, same_here, same_origin, more=more_same, last=wild
    )
    skip = ~np.isnan(matched_sid)
    claimed = matched_sid[skip]
    # A line not skipped with a candidate that no other line is: that session differs.
    other_origin = ~skip & ~np.isnan(origin_sid) & ~np.isin(origin_sid, claimed)
    other_here = ~skip & ~np.isnan(here_sid) & ~np.isin(here_sid, claimed)
    for r, sids in {**more_same, **more_other}.items():
        if not skip[r] and not np.isin(sids, claimed).all():
            other_here[r] = True
    moved_to = origin["date"].to_numpy(dtype="datetime64[D]")
    moved = other_origin & (moved_to != w["date"].to_numpy(dtype="datetime64[D]"))
    errors.add(
        (other_origin | other_here) & ~moved,
        "session_date",
        _("A different session of this episode on this date exists already."),
    )
    errors.add(
        moved,
        "session_date",
        lambda r: (
            _(
                "This session was imported before, and its date has been corrected to "
                "%(date)s in the platform since; its scores differ from this line."
            )
            % {"date": str(moved_to[r])}
        ),
    )
    report_conflicts(skip)
    status = ep_info["status"]
    is_closed = (status == Episode.Status.CLOSED).to_numpy()
    errors.add(
        ~skip & is_closed,
        "episode",
        _("The episode is closed in the platform; new sessions cannot be added."),
    )

    # Closing dates for existing episodes: a closed one must keep its date; an open one
    # is closed (as clients.services.episode_close would), not before its last session
    # in the platform or in this file (every line is a session, and the start moves back
    # to the earliest session, so the closing date is never before the start).
    closing = (matched & w["closed_on"].notna()).to_numpy()
    if closing.any():
        closed_on = w["closed_on"]
        platform_closed = pd.to_datetime(ep_info["closed_on"]).astype(closed_on.dtype)
        errors.add(
            closing & is_closed & (closed_on != platform_closed).to_numpy(),
            "episode_closed_on",
            _("The episode is closed in the platform with another closing date."),
        )
        opened = closing & ~is_closed
        by_episode = closed_on.where(opened).groupby(eid)
        errors.add(
            opened & (by_episode.transform("min") != by_episode.transform("max")).to_numpy(),
            "episode_closed_on",
            _("Another line of this episode gives another closing date."),
        )
        last_file = w["date"].where(matched).groupby(eid).transform("max")
        last = np.fmax(
            last_file.to_numpy(dtype="datetime64[ns]"),
            pd.to_datetime(eid.map(last_existing.to_dict())).to_numpy(dtype="datetime64[ns]"),
        )
        errors.add(
            opened & (closed_on.to_numpy(dtype="datetime64[ns]") < last),
            "episode_closed_on",
            _("The closing date is before the last session."),
        )
        for e, d in zip(eid[opened], closed_on[opened], strict=True):
            to_close[int(e)] = d.date()
    touched = sorted({int(e) for e in episode_id[~skip & matched].unique()})
    changed = ~skip | np.isin(eid.to_numpy(), list(to_close))
    return _Matched(client_id, episode_id, skip, touched, to_close, changed, named_by)


def _claim_identical(
    here: np.ndarray,
    origin: np.ndarray,
    same_here: np.ndarray,
    same_origin: np.ndarray,
    *,
    more: dict[int, list[float]] | None = None,
    last: np.ndarray | None = None,
) -> np.ndarray:
    """Which existing session each line is (NaN: none): one of its candidates with
    identical scores (``here``: the session in its place; ``origin``: the one imported
    from a line with this place; ``more``: per line, further identical sessions imported
    from its place, where a place is held twice), each session for one line at most, as
    many lines as possible (a maximum bipartite matching). Where either would do, the
    session imported from the line's place: a file of the old system names a session
    where it was first, and an export names every session in its place now, so for an
    export the two never compete. Lines in ``last`` (the error report's lines with score
    errors) choose after all others, so they only take sessions no other line can have.

    Nearly every line is an isolated edge (both candidates one session, or one candidate
    nobody else has), decided without the loop; the rest is matched by augmenting paths
    (Kuhn)."""
    more = more or {}
    p = np.where(same_here, here, np.nan)
    o = np.where(same_origin & (origin != p), origin, np.nan)
    out = np.full(len(p), np.nan)
    has_p, has_o = ~np.isnan(p), ~np.isnan(o)
    extra = np.array([s for sids in more.values() for s in sids], dtype=float)
    sids, counts = np.unique(np.concatenate([p[has_p], o[has_o], extra]), return_counts=True)
    shared = sids[counts > 1]
    has_more = np.zeros(len(p), dtype=bool)
    has_more[list(more)] = True
    alone_p = has_p & ~has_o & ~has_more & ~np.isin(p, shared)
    alone_o = has_o & ~has_p & ~has_more & ~np.isin(o, shared)
    out[alone_p] = p[alone_p]
    out[alone_o] = o[alone_o]
    rest = np.flatnonzero((has_p | has_o | has_more) & ~alone_p & ~alone_o)
    if not len(rest):
        return out
    # The origin first: a candidate list per line (origin, further origins, place).
    adj = {
        int(r): list(
            dict.fromkeys(float(x) for x in (o[r], *more.get(int(r), []), p[r]) if not np.isnan(x))
        )
        for r in rest
    }
    late = last if last is not None else np.zeros(len(p), dtype=bool)
    line_of: dict[float, int] = {}
    session_of: dict[int, float] = {}
    for group in ([r for r in adj if not late[r]], [r for r in adj if late[r]]):
        for r in group:  # each line takes its first free candidate ...
            first = next((c for c in adj[r] if c not in line_of), None)
            if first is not None and first == adj[r][0]:
                line_of[first], session_of[r] = r, first
        for r in group:  # ... then augmenting paths, breadth first (no recursion)
            if r not in session_of:
                _augment(r, adj, line_of, session_of)
    for line, sid in session_of.items():
        out[line] = sid
    return out


def _augment(
    r: int, adj: dict[int, list[float]], line_of: dict[float, int], session_of: dict[int, float]
) -> None:
    """Match line ``r`` along an augmenting path, if there is one (no matched line loses
    its match; some move to another of their candidates)."""
    via: dict[float, int] = {}
    queue, seen = deque([r]), set()
    free: float | None = None
    while queue and free is None:
        line = queue.popleft()
        for cand in adj[line]:
            if cand in seen:
                continue
            seen.add(cand)
            via[cand] = line
            if cand not in line_of:
                free = cand
                break
            queue.append(line_of[cand])
    step = free
    while step is not None:  # flip the path back to r
        line = via[step]
        before = session_of.get(line)
        session_of[line], line_of[step] = step, line
        step = before


def _more_origins(
    plan: _Plan, held: pd.DataFrame, eid: pd.Series, w: pd.DataFrame, wild: np.ndarray | None
) -> tuple[dict[int, list[float]], dict[int, list[float]]]:
    """The further sessions imported from each line's place (``held``: the younger
    sessions of places held twice), per line: those with the line's scores (or any, for
    a ``wild`` line), and the others."""
    same: dict[int, list[float]] = {}
    other: dict[int, list[float]] = {}
    if held.empty:
        return same, other
    lines = pd.DataFrame(
        {
            "episode_id": eid.to_numpy(),
            "imported_on": w["date"].to_numpy(),
            "imported_order": w["order"].to_numpy(),
            "row": np.arange(len(w)),
        }
    )
    pairs = lines.merge(held, on=["episode_id", "imported_on", "imported_order"])
    rows = pairs["row"].to_numpy()
    part = _Plan(
        plan.df.iloc[rows].reset_index(drop=True),
        {k: v[rows] for k, v in plan.ors.items()},
        {k: v[rows] for k, v in plan.srs.items()},
    )
    fits = _same_scores(part, pairs.reset_index(drop=True))
    if wild is not None:
        fits |= wild[rows]
    for r, sid, fit in zip(rows.tolist(), pairs["sid"].tolist(), fits.tolist(), strict=True):
        (same if fit else other).setdefault(r, []).append(float(sid))
    return same, other


def _same_scores(plan: _Plan, hit: pd.DataFrame) -> np.ndarray:
    """Per line: whether ``hit`` (an existing session per line, a row of NaN where none)
    is there and has the file's ORS and SRS, items and totals (absent on both sides
    counts as equal)."""
    same = np.ones(len(hit), dtype=bool)
    for score, pfx in ((plan.ors, "o"), (plan.srs, "r")):
        mine_total = np.where(score["has"], score["total"], np.nan)
        same &= _eq(mine_total, hit[f"{pfx}4"].to_numpy(dtype="float64"))
        for i in range(4):
            mine = np.where(score["has_items"], score["items"][:, i], np.nan)
            same &= _eq(mine, hit[f"{pfx}{i}"].to_numpy(dtype="float64"))
    return same & hit["sid"].notna().to_numpy()


_EPISODE_FIELDS = (
    "id",
    "client_id",
    "label",
    "started_on",
    "therapist_id",
    "unit_id",
    "status",
    "closed_on",
)
# client_id IN (unnest): a semi-join, linear in the ids however the rows are reached.
_EPISODES_SQL = f"""
SELECT {", ".join(_EPISODE_FIELDS)} FROM clients_episode
WHERE organisation_id = %s AND client_id IN (SELECT unnest(%s::bigint[]))
ORDER BY id FOR UPDATE
"""  # noqa: S608 (field names above)


def _episodes_locked(
    organisation: Organisation, client_ids: list[int], *, lock: bool = True
) -> list[tuple[Any, ...]]:
    """The episodes of the file's existing clients, locked until the import commits
    (``lock=False``: only read, for the error report of a file that is not imported).

    ``measures.services.session_record`` (and correcting, deleting, closing) lock the
    episode ``FOR UPDATE`` first, so a therapist's change to one of these episodes waits
    for the import, and what is read here (status, sessions, numbering) stays as read
    until the import has written. Episodes of other clients, and other organisations, are
    not locked (no table is: measures.bulkload.reserve_ids)."""
    if not client_ids:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            sql = _EPISODES_SQL if lock else _EPISODES_SQL.replace("FOR UPDATE", "")
            cur.execute(sql, [organisation.pk, client_ids])
            return cur.fetchall()
    known = set(client_ids)
    return [
        row
        for row in Episode.objects.for_org(organisation).values_list(*_EPISODE_FIELDS)
        if row[1] in known
    ]


def _eq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        return both_nan | (np.abs(a - b) < 0.05)


# --------------------------------------------------------------------------- writing


def _write(
    model: Any, frame: pd.DataFrame, bulk: BulkWrite, wrote: Callable[[int], None] | None = None
) -> None:
    """COPY (PostgreSQL) or bulk_create (SQLite, embedded mode), CHUNK rows at a time
    (``wrote(rows)`` after each, for the progress bar); ``bulk`` checks the foreign keys."""
    bulk.record(model, frame["id"].to_numpy())
    if connection.vendor == "postgresql":
        copy_frame(model._meta.db_table, frame, chunk=CHUNK, wrote=wrote)
        return
    for start in range(0, len(frame), CHUNK):
        part = frame.iloc[start : start + CHUNK]
        records = part.astype(object).where(pd.notna(part), None).to_dict("records")
        for r in records:
            if "alerts" in r:
                r["alerts"] = json.loads(r["alerts"])
        model.dangerously_unscoped.bulk_create([model(**r) for r in records], batch_size=2000)
        if wrote is not None:
            wrote(len(part))


# "0.0" ... "40.0": scores as text by table lookup (formatting a million floats is slow).
_TENTHS = np.array([f"{i / 10:.1f}" for i in range(401)] + [None], dtype=object)


def _fmt(values: np.ndarray) -> np.ndarray:
    tenths = np.where(np.isnan(values), 401, np.round(np.nan_to_num(values) * 10))
    return _TENTHS[tenths.astype(np.int64)]


# Progress: reading 0-20 %, the file's checks 20-40 %, matching the organisation's data
# 40-45 % (stage "validating"); writing 45-75 %, numbering and alerts 75-80 %
# ("importing"); the foreign-key check (measures/bulkload.py; per row at commit where
# the role may not skip the triggers) and the commit the rest. ``progress(stage, done,
# total)`` gets the lines done of all lines.
_READ, _CHECK, _MATCH, _WRITE, _COMMIT = 0.2, 0.4, 0.45, 0.75, 0.8


def import_sessions(
    *,
    actor: Any,
    organisation: Organisation,
    data: bytes,
    progress: Progress | None = None,
    request: Any = None,
    today: dt.date | None = None,
) -> ImportResult:
    """Validate ``data`` completely; write it only if there is no error (all or nothing).

    ``progress`` is called every CHUNK lines while reading and writing and after each
    group of checks; it runs inside the import's transaction, so a caller that stores
    progress for others to see must use a connection of its own (measures.tasks)."""
    report = progress or (lambda stage, done, total: None)
    today = today or timezone.localdate()
    total = [0]

    def at(stage: str, fraction: float) -> None:
        report(stage, min(total[0], int(total[0] * fraction)), total[0])

    def read_progress(done: int, lines: int) -> None:
        total[0] = lines
        at("validating", _READ * done / max(lines, 1))

    parsed, file_errors, file_error_count = read_csv(data, read_progress)
    if parsed is None:
        return ImportResult(errors=file_errors, error_count=file_error_count)
    result = ImportResult(lines=len(parsed.frame))
    plan, errors = validate_file(
        organisation, parsed, today, lambda f: at("validating", _READ + (_CHECK - _READ) * f)
    )

    def finish(errs: _Errors) -> ImportResult:
        result.error_count = errs.count()
        result.errors = errs.result()
        return result

    if errors.count():
        # Also what the organisation's data says about the other lines, so that one
        # round of corrections can fix every line.
        _check_existing_for_report(organisation, plan, errors)
        return finish(errors)

    try:
        with transaction.atomic():
            done = _import_checked(organisation, plan, errors, actor, result, request, today, at)
    except (DatabaseError, psycopg.DatabaseError) as exc:  # COPY raises psycopg's own
        # Another transaction changed this organisation's data in between (e.g. created a
        # client with one of the file's codes, or deleted a unit the file names), or
        # locked the same episodes in the other order (a deadlock, which PostgreSQL
        # breaks by aborting one side): nothing was imported. The database's message
        # names values of the file, so it is not passed on. Anything else is re-raised.
        if not _conflict(exc):
            raise
        logger.warning(
            "import into organisation %s refused (%s)", organisation.pk, type(exc).__name__
        )
        return ImportResult(
            lines=result.lines, errors=[LineError(1, "", _concurrent_change_text())], error_count=1
        )
    if not done:
        return finish(errors)
    _planner_statistics_refresh(result)
    report("done", total[0], total[0])
    return result


# Sessions written from which the import refreshes the planner's statistics itself.
ANALYZE_AFTER_SESSIONS = 10_000


def _planner_statistics_refresh(result: ImportResult) -> None:
    """ANALYZE the four tables after a big import (PostgreSQL).

    Autovacuum analyses a table only once a tenth of it changed: a new organisation's
    200,000 sessions in a national database may never get there, and until then the
    planner takes the organisation for empty. The next import of that organisation then
    read its existing sessions with a nested loop over every session and every episode
    id of the file (measured: over 4 minutes for a later extract of 15,107 lines into a
    fresh organisation of 200,000 sessions, `bench/import_bench.py`). A failure (a role
    that may not ANALYZE) is logged and changes nothing: the import is committed."""
    if connection.vendor != "postgresql" or result.sessions_created < ANALYZE_AFTER_SESSIONS:
        return
    tables = ", ".join(m._meta.db_table for m in (Client, Episode, Session, Score))
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(f"ANALYZE {tables}")
    except DatabaseError as exc:
        logger.warning("ANALYZE after an import failed (%s)", type(exc).__name__)


def _check_existing_for_report(organisation: Organisation, plan: _Plan, errors: _Errors) -> None:
    """The checks against the organisation's data (``_match_existing``) for the lines
    without errors of their own, for the error report only: nothing is written or
    locked. Lines with errors of their own take part too where their place in the file
    (client, episode, date, same-day order) is sound, so that no other line is told its
    session differs because of a line left out; their own findings are dropped, and
    those with score errors are ``wild`` (any candidate session may be theirs once
    corrected; they choose last)."""
    bad = errors.rows_with_errors()
    usable = ~errors.rows_with_errors(besides=frozenset(COLUMNS) - PLACE_COLUMNS)
    if not (usable & ~bad).any():
        return
    part = _Plan(
        plan.df.loc[usable].reset_index(drop=True),
        {k: v[usable] for k, v in plan.ors.items()},
        {k: v[usable] for k, v in plan.srs.items()},
    )
    wild = errors.rows_with_errors(besides=frozenset(COLUMNS) - SCORE_COLUMNS)[usable]
    found = _Errors(errors.line_of[usable])
    with transaction.atomic():
        _match_existing(organisation, part, found, lock=False, wild=wild)
    found.drop_rows(bad[usable])
    errors.merge(found)


def _conflict(exc: BaseException) -> bool:
    """A constraint refused the write, or PostgreSQL broke a deadlock."""
    refused = (IntegrityError, psycopg.IntegrityError, psycopg.errors.DeadlockDetected)
    return isinstance(exc, refused) or isinstance(exc.__cause__, refused)


def _concurrent_change_text() -> str:
    return _(
        "The organisation's data changed while the file was being imported (for example "
        "a client with one of the file's codes was created at the same time); nothing was "
        "imported. Run the import again."
    )


def _import_checked(
    organisation: Organisation,
    plan: _Plan,
    errors: _Errors,
    actor: Any,
    result: ImportResult,
    request: Any,
    today: dt.date,
    at: Callable[[str, float], None],
) -> bool:
    """Inside the import's transaction: match the organisation's data and write the
    file; False (nothing written) when matching finds errors."""
    # One import (or demo load) per organisation at a time; no table is locked.
    lock_organisation_for_bulk_write(organisation.pk)
    matched = _match_existing(organisation, plan, errors)
    if errors.count():
        return False
    at("importing", _MATCH)
    with BulkWrite() as bulk:
        _write_plan(
            organisation,
            plan,
            matched,
            actor,
            result,
            bulk,
            today,
            lambda f: at("importing", _MATCH + (_WRITE - _MATCH) * f),
        )
        # Inside the block: the entries' foreign keys (organisation, user) are the
        # sessions' organisation_id and created_by_id, which the block's check locks and
        # proves, so the per-row triggers it switches off lose nothing here.
        _log_written_clients(organisation, bulk.ranges.get(Session), actor, request)
    if matched.to_close:
        _close(organisation, matched.to_close, actor, request)
        result.episodes_closed = len(matched.to_close)
    if matched.touched:
        # Existing episodes with new sessions: a few statements for all of them, not a
        # handful per episode (a later extract touches most open episodes).
        sessions_renumber(matched.touched)
        episodes_alerts_refresh(organisation, matched.touched)
        _starts_move(organisation, matched.touched, matched.named_by)
    # The import as a whole (also when every line was already there); the clients are
    # in the per-client entries above. No count in object_id: it holds ids only.
    access_log_write(
        actor=actor,
        organisation=organisation,
        action=Action.IMPORT,
        object_type="sessions",
        role=Role.SYSTEM_OWNER,
        request=request,
    )
    _notify(organisation, plan, matched.changed)
    at("importing", _COMMIT)
    return True


def _close(
    organisation: Organisation, to_close: dict[int, dt.date], actor: Any, request: Any
) -> None:
    """Close existing open episodes as clients.services.episode_close does (status,
    closing date, no alerts, one access-log entry each); the dates were checked."""
    by_date: dict[dt.date, list[int]] = defaultdict(list)
    for eid, closed_on in to_close.items():
        by_date[closed_on].append(eid)
    episodes = Episode.objects.for_org(organisation)
    for closed_on, ids in by_date.items():
        episodes.filter(pk__in=ids, status=Episode.Status.OPEN).update(
            status=Episode.Status.CLOSED, closed_on=closed_on, alerts=[]
        )
    for ep in episodes.filter(pk__in=list(to_close)):
        access_log_write(
            actor=actor,
            organisation=organisation,
            action=Action.CLOSE,
            obj=ep,
            role=Role.SYSTEM_OWNER,
            request=request,
        )


# The clients of the sessions this import wrote (ids in its reserved block): created, or
# existing ones whose episodes got sessions. Skipped (identical) lines change nothing.
_WRITTEN_CLIENTS_SQL = (
    "SELECT DISTINCT e.client_id AS client_id FROM measures_session s "
    "JOIN clients_episode e ON e.id = s.episode_id "
    "WHERE s.organisation_id = %s AND s.id BETWEEN %s AND %s"
)


def _log_written_clients(
    organisation: Organisation, written: tuple[int, int] | None, actor: Any, request: Any
) -> None:
    """One ``import`` entry per client whose data the import created or changed, so that
    each client's own log (the right of access) shows it; one INSERT … SELECT from the
    sessions just written, inside the import's transaction (the import runs only for the
    organisation's system owner: that is the role logged, also from the task and the
    command, which have no request)."""
    if written is None:
        return
    access_log_write_from_query(
        actor=actor,
        organisation=organisation,
        action=Action.IMPORT,
        object_type="client",
        client_ids_sql=_WRITTEN_CLIENTS_SQL,
        params=[organisation.pk, written[0], written[1]],
        role=Role.SYSTEM_OWNER,
        request=request,
    )


def _write_plan(
    organisation: Organisation,
    plan: _Plan,
    matched: _Matched,
    actor: Any,
    result: ImportResult,
    bulk: BulkWrite,
    today: dt.date,
    tick: Callable[[float], None],
) -> None:
    skip = matched.skip
    w = plan.df.copy()
    w["client_id"] = matched.client_id.to_numpy()
    w["episode_id"] = matched.episode_id.to_numpy()
    keep = ~skip
    result.sessions_skipped = int(skip.sum())
    w = w.loc[keep].reset_index(drop=True)
    ors = {k: v[keep] for k, v in plan.ors.items()}
    srs = {k: v[keep] for k, v in plan.srs.items()}
    now = timezone.now().isoformat()
    actor_id = actor.pk if getattr(actor, "is_authenticated", False) else None
    existing = w["episode_id"].notna().to_numpy()

    new_c = w.loc[w["client_id"].isna()].drop_duplicates("code_key")
    new_rows = w.loc[~existing]
    planned = (
        len(new_c)
        + new_rows["ep_key"].nunique()
        + len(w)
        + int(ors["has"].sum() + srs["has"].sum())
    )
    written = [0]

    def wrote(rows: int) -> None:
        written[0] += rows
        tick(written[0] / max(planned, 1))

    # New clients.
    if len(new_c):
        ids = reserve_ids(Client, len(new_c))
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
            bulk,
            wrote,
        )
        w["client_id"] = w["client_id"].fillna(
            w["code_key"].map(pd.Series(ids, index=new_c["code_key"].to_numpy()))
        )
        result.clients_created = len(new_c)
    w["client_id"] = w["client_id"].astype("int64")

    # Session numbers by date (and same-day order) within the episode. Sessions of
    # existing episodes get a temporary offset (unique meanwhile) and are renumbered
    # after the insert, by date and id: ids are therefore given in the same order.
    new_rows = w.loc[~existing]
    if len(new_rows):
        g = new_rows.groupby("ep_key", sort=False)
        first = g.first()
        ep_ids = reserve_ids(Episode, len(first))
        w.loc[~existing, "episode_id"] = new_rows["ep_key"].map(
            pd.Series(ep_ids, index=first.index)
        )
    w["episode_id"] = w["episode_id"].astype("int64")
    order = np.lexsort(
        (
            np.arange(len(w)),
            w["order"].to_numpy(),
            w["date"].to_numpy(),
            w["episode_id"].to_numpy(),
        )
    )
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
        _write(Episode, ep_frame, bulk, wrote)
        result.episodes_created = len(first)

    n = len(w)
    sids = np.empty(n, dtype=np.int64)
    sids[order] = reserve_ids(Session, n)
    _write(
        Session,
        pd.DataFrame(
            {
                "id": sids,
                "organisation_id": organisation.pk,
                "episode_id": w["episode_id"].to_numpy(),
                "date": w["date_str"].to_numpy(),
                "number": number,
                "imported_on": w["date_str"].to_numpy(),
                "imported_order": w["order"].to_numpy(),
                "created_by_id": actor_id,
                "created_at": now,
                "updated_at": now,
            }
        ).iloc[order],  # in id order: every index grows at its right edge
        bulk,
        wrote,
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
    scores = scores.iloc[np.argsort(scores["session_id"].to_numpy(), kind="stable")]
    scores.insert(0, "id", reserve_ids(Score, len(scores)))
    _write(Score, scores, bulk, wrote)


def _starts_move(organisation: Any, episode_ids: list[int], named_by: dict[int, str]) -> None:
    """An existing episode that got a session before its start starts on that date."""
    from django.db.models import Min

    for chunk in id_chunks(episode_ids):
        firsts = dict(
            Session.objects.for_org(organisation)
            .filter(episode_id__in=chunk)
            .values("episode_id")
            .annotate(first=Min("date"))
            .values_list("episode_id", "first")
        )
        episodes = Episode.objects.for_org(organisation).filter(pk__in=chunk)
        moved = [
            # An unnamed episode's name was its start date: it keeps the name the file
            # gave it.
            Episode(pk=pk, started_on=firsts[pk], label=label or named_by.get(pk, ""))
            for pk, started_on, label in episodes.values_list("pk", "started_on", "label")
            if pk in firsts and firsts[pk] < started_on
        ]
        Episode.dangerously_unscoped.bulk_update(moved, ["started_on", "label"], batch_size=1000)


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


def _notify(organisation: Organisation, plan: _Plan, changed: np.ndarray) -> None:
    from .signals import episode_data_changed

    w = plan.df.loc[changed]
    unit_ids = sorted({int(u) for u in w["unit_id"].dropna().unique()})
    therapist_ids = sorted({int(t) for t in w["therapist_id"].dropna().unique()})
    org_id = organisation.pk
    transaction.on_commit(
        lambda: episode_data_changed.send(
            sender=Session, organisation_id=org_id, unit_ids=unit_ids, therapist_ids=therapist_ids
        )
    )
