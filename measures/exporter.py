"""Export of an organisation's sessions as CSV in the import format (round trip:
export, import into an empty organisation, identical statistics).

Therapists are written by username, units by code, decimals with a point, comma
separated. ``same_day_order`` numbers several sessions of one episode on one date (empty
for a date with one session). An episode's label is written as its label; an unlabelled
episode of a client with several episodes (counting those without sessions) gets its
start date as label, made unique among the client's episodes
(``measures.importer.episode_keys``, the rule the importer matches by), so that
episodes stay apart.

The export runs in a Celery task (the page's export job, ``measures.exports``) or in the
command; see docs/import.md.
"""

from __future__ import annotations

import io
from typing import Any, NamedTuple

import pandas as pd
from django.db import connection

from clients.models import Episode
from datapolicy.models import Organisation, Role
from datapolicy.services import Action, access_log_write, access_log_write_many

from .importer import COLUMNS, FORMULA_START, TEXT_COLUMNS, _fmt, episode_keys

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
    with connection.cursor() as cur:
        cur.execute(_SQL, [organisation.pk])
        rows = cur.fetchall()
    df = pd.DataFrame.from_records(rows, columns=_RAW)
    # Every episode of the organisation counts, also one without sessions yet: a client
    # with several episodes has each named (episode_keys, the importer's own rule).
    episodes = list(
        Episode.objects.for_org(organisation).values_list("id", "client_id", "label", "started_on")
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
    return df[[*COLUMNS, "client_id"]] if with_client_ids else df[list(COLUMNS)]


def _iso(values: pd.Series) -> pd.Series:
    """Dates as YYYY-MM-DD, empty for none."""
    return pd.to_datetime(values).dt.strftime("%Y-%m-%d").fillna("")


class Export(NamedTuple):
    text: str
    sessions: int
    clients: int


def export_sessions(
    *, actor: Any, organisation: Organisation, request: Any = None, role: str = Role.SYSTEM_OWNER
) -> str:
    """The organisation's sessions as CSV text (logged in the access log).

    The migration export is the system owner's alone (docs/datapolicy.md): the page's
    export job and the command act as that role, which every entry names."""
    return export_sessions_counted(
        actor=actor, organisation=organisation, request=request, role=role
    ).text


def export_sessions_counted(
    *, actor: Any, organisation: Organisation, request: Any = None, role: str = Role.SYSTEM_OWNER
) -> Export:
    """``export_sessions`` with the number of sessions (lines) and clients it wrote."""
    role = role or Role.SYSTEM_OWNER
    df = export_frame(organisation, with_client_ids=True)
    client_ids = df.pop("client_id").unique()
    buf = io.StringIO()
    # CRLF line ends (RFC 4180): a value holding a line break or carriage return is then
    # quoted, so a spreadsheet keeps it in its row (and behind the formula guard).
    df.to_csv(buf, index=False, lineterminator="\r\n")
    access_log_write(
        actor=actor,
        organisation=organisation,
        action=Action.EXPORT,
        object_type="sessions",
        role=role,
        request=request,
    )
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
    return Export(buf.getvalue(), len(df), len(client_ids))
