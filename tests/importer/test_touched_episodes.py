"""A later extract adds sessions to existing episodes (docs/import.md, "Writing"): their
sessions are renumbered by date, their alerts recomputed and their start moved back in
a few statements for all of them, not a handful of queries per episode. The figures
are hand-computed from docs/statistics.md ("Alerts")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.translation import override

from clients.models import Episode
from measures.importer import import_sessions
from tests.conftest import OrgPersonas, make_episode, record

pytestmark = pytest.mark.django_db
H = "client_code,therapist,unit,session_date,ors_total,srs_total"
T = "alpha-therapist_a"


def _existing(org1: OrgPersonas, n: int, prefix: str) -> tuple[list[Any], str]:
    """n open episodes with two sessions (ORS 20 then 22, SRS 38 at both); the file
    adds to the even ones a back-dated first session (ORS 30) and to the odd ones a
    last session (ORS 23, SRS 34)."""
    today = timezone.localdate()
    day = lambda k: (today - dt.timedelta(days=k)).isoformat()  # noqa: E731
    episodes, lines = [], []
    for i in range(n):
        code = f"{prefix}-{i}"
        ep = make_episode(org1, code=code, started_on=today - dt.timedelta(days=20))
        record(ep, today - dt.timedelta(days=20), ors="20", srs="38")
        record(ep, today - dt.timedelta(days=10), ors="22", srs="38")
        episodes.append(ep)
        if i % 2 == 0:
            lines.append(f"{code},{T},ung,{day(25)},30,38")
        else:
            lines.append(f"{code},{T},ung,{day(5)},23,34")
    return episodes, "\n".join([H, *lines]) + "\n"


def _import(org1: OrgPersonas, text: str) -> Any:
    with override("en"):
        result = import_sessions(actor=org1.owner, organisation=org1.org, data=text.encode())
    assert result.ok, result.errors
    return result


def test_new_sessions_in_existing_episodes_are_numbered_alerted_and_move_the_start(
    org1: OrgPersonas,
) -> None:
    today = timezone.localdate()
    episodes, text = _existing(org1, 4, "TE")
    result = _import(org1, text)
    assert (result.sessions_created, result.episodes_created) == (4, 0)
    for i, ep in enumerate(episodes):
        ep.refresh_from_db()
        numbered = list(ep.sessions.order_by("number").values_list("number", "date"))
        if i % 2 == 0:
            # The back-dated session is the first: 25, 20 and 10 days ago -> 1, 2, 3.
            ages = [25, 20, 10]
            assert ep.started_on == today - dt.timedelta(days=25)
            # Intake 30, last 22: -8 <= -5, reliable deterioration; last SRS 38 (no
            # drop from 38): no alliance alert; a session 10 days ago: contact.
            assert "deterioration" in ep.alerts
            assert "alliance" not in ep.alerts
        else:
            ages = [20, 10, 5]
            assert ep.started_on == today - dt.timedelta(days=20)  # unchanged
            # Last SRS 34 < 36: alliance; intake 20, last 23: +3, no deterioration.
            assert "alliance" in ep.alerts
            assert "deterioration" not in ep.alerts
        assert "no_contact" not in ep.alerts
        assert numbered == [(k + 1, today - dt.timedelta(days=a)) for k, a in enumerate(ages)]


def test_the_statements_do_not_grow_with_the_touched_episodes(org1: OrgPersonas) -> None:
    """The same import into 2 and into 12 existing episodes runs the same number of
    queries (before: renumbering, alerts and the start date, four to six per episode)."""
    counts = []
    for n, prefix in ((2, "QA"), (12, "QB")):
        _episodes, text = _existing(org1, n, prefix)
        with CaptureQueriesContext(connection) as queries:
            _import(org1, text)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert Episode.objects.for_org(org1.org).filter(alerts__contains=["alliance"]).count() == 7


@pytest.mark.postgres
def test_a_big_import_refreshes_the_planner_statistics(org1: OrgPersonas, monkeypatch: Any) -> None:
    """After a big import the four tables are analysed (else the planner took a new
    organisation for empty and the next import read its sessions with a nested loop);
    not after a small one."""
    from measures import importer

    monkeypatch.setattr(importer, "ANALYZE_AFTER_SESSIONS", 3)
    analyses = []
    for n, prefix in ((2, "AN"), (4, "AM")):
        text = "\n".join([H, *(f"{prefix}-{i},{T},ung,2025-01-{10 + i},20,38" for i in range(n))])
        with CaptureQueriesContext(connection) as queries:
            _import(org1, text + "\n")
        analyses.append([q["sql"] for q in queries if q["sql"].startswith("ANALYZE")])
    assert analyses[0] == []
    assert analyses[1] == [
        "ANALYZE clients_client, clients_episode, measures_session, measures_score"
    ]
