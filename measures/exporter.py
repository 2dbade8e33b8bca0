"""Export of an organisation's sessions as CSV in the import format (round trip:
export, import into an empty organisation, identical statistics).

Therapists are written by username, units by code, decimals with a point, comma
separated. ``same_day_order`` numbers several sessions of one episode on one date (empty
for a date with one session). An episode's label is written as its label; an unlabelled
episode of a client with several episodes (counting those without sessions) gets its
start date as label, made unique among the client's episodes
(``measures.importer.episode_keys``, the rule the importer matches by), so that
episodes stay apart.

The export is written in chunks (``export_chunks``: the header, then one per batch of
about ``settings.EXPORT_BATCH_SESSIONS`` sessions), so that the memory it needs is bounded
by the batch, not by the organisation; ``export_sessions`` joins them. It runs in a Celery
task (the page's export job, ``measures.exports``, which writes the chunks to a file) or in
the command; see docs/import.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from django.conf import settings
from django.db import connection, transaction

from clients.models import Episode
from datapolicy.models import Organisation, Role
from datapolicy.services import Action, access_log_write, access_log_write_many

from .importer import COLUMNS, FORMULA_START, TEXT_COLUMNS, _fmt, episode_keys
from .models import Session

_SQL = """
SELECT c.code, u.username, un.code, s.date, e.age_group, e.label,
       e.closed_on, e.id, e.client_id,
       o.item1, o.item2, o.item3, o.item4, o.total,
       r.item1, r.item2, r.item3, r.item4, r.total
FROM measures_session s
JOIN clients_episode e ON e.id = s.episode_id
JOIN clients_client c ON c.id = e.client_id
JOIN datapolicy_user u ON u.id = e.therapist_id
JOIN datapolicy_unit un ON un.id = e.unit_id
LEFT JOIN measures_score o ON o.session_id = s.id AND o.kind = 'outcome'
LEFT JOIN measures_score r ON r.session_id = s.id AND r.kind = 'alliance'
WHERE s.organisation_id = %s
ORDER BY c.code, e.id, s.date, s.number
"""
_RAW = [
    "client_code",
    "therapist",
    "unit",
    "session_date",
    "age_group",
    "label",
    "episode_closed_on",
    "episode_id",
    "client_id",
    *[f"ors_{i}" for i in range(1, 5)],
    "ors_total",
    *[f"srs_{i}" for i in range(1, 5)],
    "srs_total",
]


def export_frame(organisation: Organisation, *, with_client_ids: bool = False) -> pd.DataFrame:
    """The whole export as one frame (tests and small organisations; the file itself is
    written batch by batch, ``export_chunks``)."""
    frames = list(_frames(organisation, _batch_size(None)))
    df = pd.concat(frames, ignore_index=True) if frames else _frame(organisation, [])
    return df if with_client_ids else df[list(COLUMNS)]


def _batch_size(size: int | None) -> int:
    return max(1, int(size or settings.EXPORT_BATCH_SESSIONS))


def _frames(organisation: Organisation, size: int) -> Iterator[pd.DataFrame]:
    """The export's rows, a frame per batch of about ``size`` sessions (columns COLUMNS
    and ``client_id``).

    One query in one server-side cursor (``chunked_cursor``: a named cursor on
    PostgreSQL, one snapshot of the data), read ``size`` rows at a time; a batch ends at
    a client's last session, so that everything computed per client (episode names) or
    per episode (same-day order) sees all its rows. The worker holds one batch (at most
    one client's sessions more), whatever the organisation's size."""
    with connection.chunked_cursor() as cur:
        cur.execute(_SQL, [organisation.pk])
        for rows in _client_batches(cur, size):
            yield _frame(organisation, rows)


_CLIENT = _RAW.index("client_id")


def _client_batches(cur: Any, size: int) -> Iterator[list[Any]]:
    """The cursor's rows (ordered by client: its code) in lists that end with a client's
    last row: what ``size`` rows read bring, the last client's rows kept back for the next
    list; so a list holds fewer than ``size`` rows plus one client's sessions."""
    pending: list[Any] = []
    while rows := cur.fetchmany(size):
        pending.extend(rows)
        last = pending[-1][_CLIENT]
        cut = len(pending)
        while cut and pending[cut - 1][_CLIENT] == last:
            cut -= 1  # the last client's sessions may go on in the next rows
        if cut:
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        yield pending


def _frame(organisation: Organisation, rows: list[Any]) -> pd.DataFrame:
    """One batch of rows as the export's columns (the one formatting of the export)."""
    df = pd.DataFrame.from_records(rows, columns=_RAW)
    # Every episode of the batch's clients counts, also one without sessions yet: a
    # client with several episodes has each named (episode_keys, the importer's own rule).
    episodes = list(
        Episode.objects.for_org(organisation)
        .filter(client_id__in=[int(c) for c in df["client_id"].unique()])
        .values_list("id", "client_id", "label", "started_on")
    )
    keys = pd.Series(episode_keys(episodes), dtype=object)
    per_client = pd.Series([e[1] for e in episodes], dtype="int64").value_counts()
    several = df["client_id"].map(per_client).fillna(0) > 1
    df["episode"] = df["episode_id"].map(keys).where(several | (df["label"] != ""), "")
    # Several sessions of one episode on one date (confirmed on the page) are numbered
    # 1, 2 ... in the order of their session numbers; a single session leaves it empty.
    same_day = df.groupby(["episode_id", "session_date"], sort=False)["client_code"]
    order = same_day.cumcount() + 1
    df["same_day_order"] = order.astype(str).where(same_day.transform("size") > 1, "")
    for col in TEXT_COLUMNS:
        # CSV injection: a spreadsheet runs "=..." (also + - @) as a formula; "'=..." it
        # shows as text, and the import removes the apostrophe (round trip).
        text = df[col].astype(str)
        df[col] = text.where(~text.str.contains(FORMULA_START, regex=True), "'" + text)
    for col in ("session_date", "episode_closed_on"):
        df[col] = _iso(df[col])
    for col in [c for c in _RAW if c.startswith(("ors_", "srs_"))]:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        df[col] = pd.Series(_fmt(values), index=df.index).fillna("")
    return df[[*COLUMNS, "client_id"]]


def _iso(values: pd.Series) -> pd.Series:
    """Dates as YYYY-MM-DD, empty for none."""
    return pd.to_datetime(values).dt.strftime("%Y-%m-%d").fillna("")


@dataclass
class ExportCounts:
    """What ``export_chunks`` has written so far: ``total`` sessions (counted before the
    first batch), ``sessions`` and ``clients`` written."""

    total: int = 0
    sessions: int = 0
    clients: int = 0


def export_sessions(
    *, actor: Any, organisation: Organisation, request: Any = None, role: str = Role.SYSTEM_OWNER
) -> str:
    """The organisation's sessions as CSV text (logged in the access log): the joined
    chunks of ``export_chunks``, in one transaction (the entries are written with it).

    The migration export is the system owner's alone (docs/datapolicy.md): the page's
    export job and the command act as that role, which every entry names."""
    with transaction.atomic():
        return "".join(
            export_chunks(actor=actor, organisation=organisation, request=request, role=role)
        )


def export_chunks(
    *,
    actor: Any,
    organisation: Organisation,
    request: Any = None,
    role: str = Role.SYSTEM_OWNER,
    counts: ExportCounts | None = None,
    batch_size: int | None = None,
) -> Iterator[str]:
    """The organisation's sessions as CSV, in chunks: the header, then one chunk per
    batch of about ``batch_size`` sessions (``settings.EXPORT_BATCH_SESSIONS``); joined,
    the export's text (``export_sessions``). ``counts`` (if given) is filled in as the
    chunks go: the total before the first chunk, the sessions and clients written after
    each.

    Access (system owner's role, the caller checked it): the access log gets one
    ``export`` ``sessions`` entry and one ``export`` entry per client, written as the
    batches go. Run it inside a transaction and commit only after the last chunk is
    written, so that an export that stops leaves no entries (``export_sessions`` and
    ``measures.exports.export_job_run`` do)."""
    role = role or Role.SYSTEM_OWNER
    counts = counts if counts is not None else ExportCounts()
    counts.total = Session.objects.for_org(organisation).count()
    access_log_write(
        actor=actor,
        organisation=organisation,
        action=Action.EXPORT,
        object_type="sessions",
        role=role,
        request=request,
    )
    yield _csv(pd.DataFrame(columns=list(COLUMNS)), header=True)
    for df in _frames(organisation, _batch_size(batch_size)):
        client_ids = df.pop("client_id").unique()
        # Each exported client's own log shows the export (right of access).
        access_log_write_many(
            actor=actor,
            organisation=organisation,
            action=Action.EXPORT,
            object_type="client",
            client_ids=client_ids,
            role=role,
            request=request,
        )
        counts.sessions += len(df)
        counts.clients += len(client_ids)
        yield _csv(df, header=False)


def _csv(df: pd.DataFrame, *, header: bool) -> str:
    # CRLF line ends (RFC 4180): a value holding a line break or carriage return is then
    # quoted, so a spreadsheet keeps it in its row (and behind the formula guard).
    return str(df.to_csv(index=False, header=header, lineterminator="\r\n"))
