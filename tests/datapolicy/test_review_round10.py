"""Review round 10: a stored report records why each of its cells is hidden, and shows
every hidden cell alike — "hidden" with one note, never "< k" for a cell that may hold
many clients, and never which hidden cell is the small one (that, with the figures shown,
gives a hidden count back). Figures hand-computed in the docstrings."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse

from clients.services import episode_close
from datapolicy.models import Report
from datapolicy.reports import REPORT_FIGURE_COLUMNS, report_approve, report_create
from tests.conftest import OrgPersonas, make_episode, record, team_of_three
from tests.datapolicy.test_reports import ORG_2026, six_episodes

NOW = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _row(report: Report, active: bool) -> dict[str, Any]:
    return next(r for r in report.figures["rows"] if r["active"] is active)


def _six_active_two_closed(p: OrgPersonas) -> Report:
    """Six active episodes (ORS 10+i -> 18+i) and two closed ones (ORS 15 -> 16), all in
    the first half of 2026: the inactive side rests on 2 < 5 episodes, so it is hidden as a
    small cell; the active side (6 episodes) is hidden as its complement, or it would come
    back as total − 6."""
    six_episodes(p)
    for i in range(2):
        e = make_episode(p, code=f"C-{i}", started_on=dt.date(2026, 3, 1))
        record(e, dt.date(2026, 3, 2), ors="15", srs="30")
        record(e, dt.date(2026, 4, 2), ors="16", srs="31")
        episode_close(actor=p.therapist_a, episode=e, closed_on=dt.date(2026, 4, 3))
    return report_create(actor=p.analyst, organisation=p.org, title="Halvår", selection=ORG_2026)


@pytest.mark.django_db
def test_a_report_records_why_each_cell_is_hidden(org1: OrgPersonas, frozen: Any) -> None:
    """Inactive: the row rests on 2 episodes, so every one of its figures is a small
    cell (its outcome counts 0 included: the row as a whole is fewer than k). Active: the
    6 episodes and everything resting on them (6 classified, 6 improved, 0 of the other
    classes) hidden as the complement."""
    report = _six_active_two_closed(org1)
    columns = list(REPORT_FIGURE_COLUMNS)
    assert _row(report, False)["hidden"] == columns
    assert _row(report, False)["reasons"] == dict.fromkeys(columns, "small_cell")
    assert _row(report, True)["hidden"] == columns
    assert _row(report, True)["reasons"] == dict.fromkeys(columns, "complement")


@pytest.mark.django_db
def test_no_reasons_for_a_report_without_hidden_cells(org1: OrgPersonas, frozen: Any) -> None:
    six_episodes(org1)
    report = report_create(
        actor=org1.analyst, organisation=org1.org, title="Åben", selection=ORG_2026
    )
    assert _row(report, True)["hidden"] == [] and _row(report, True)["reasons"] == {}


def _hidden_cells(body: str) -> list[str]:
    import re

    return re.findall(r'<td class="num">(<span class="hidden-cell">.*?</span>)</td>', body)


@pytest.mark.django_db
def test_the_page_shows_every_hidden_cell_alike(
    org1: OrgPersonas, client: Any, frozen: Any
) -> None:
    """13 small cells and 13 complements (the 6 active episodes): all read "skjult" with
    note 1; "< 5" nowhere (it was on all 26, false for the complements)."""
    report = _six_active_two_closed(org1)
    client.force_login(org1.leader)
    body = client.get(reverse("dp_report", args=[report.pk])).content.decode()
    cells = _hidden_cells(body)
    assert len(cells) == 26
    assert set(cells) == {'<span class="hidden-cell">skjult<sup class="note-mark">1</sup></span>'}
    assert "&lt; 5" not in body
    assert '<li value="1">skjult: færre end 5 klienter, eller skjult' in body
    for code in ("R-0", "C-0", "C-1"):
        assert code not in body
    assert org1.therapist_a.get_full_name() not in body
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    body = client.get(reverse("dp_report", args=[report.pk])).content.decode()
    assert "hidden: fewer than 5 clients, or hidden so that" in body


@pytest.mark.django_db
def test_the_small_class_and_its_complement_cannot_be_told_apart(
    org1: OrgPersonas, client: Any, frozen: Any
) -> None:
    """The attack the per-cell reason would open. Active: 16 episodes with two ORS — one
    improved by 5, five deteriorated by 5, ten unchanged. Improvement (1) is a small cell,
    no change (10) is hidden as its complement within the row (the preferred complement
    since round 11; before, the smallest: deterioration); 16 classified and 5
    deteriorated are shown. A complement is never a small cell (it is chosen among the
    shown non-zero counts), so "< 5" on one and "hidden (complement)" on the other would
    give improvement + no change = 16 − 5 = 11 with improvement 1 … 4 and no change ≥ 5
    (with deterioration as the complement, as before: exactly 1 and 5). The report records
    the reasons and shows both cells alike."""
    team = team_of_three(org1)  # rule 8: a report of fewer than 3 therapists shows nothing
    for i in range(16):
        e = make_episode(org1, therapist=team[i % 3], code=f"K-{i}", started_on=dt.date(2026, 5, 1))
        change = 5 if i == 0 else (-5 if i <= 5 else 0)
        record(e, dt.date(2026, 5, 4), ors="20", srs="35")
        record(e, dt.date(2026, 6, 1), ors=str(20 + change), srs="35")
    report = report_create(
        actor=org1.analyst, organisation=org1.org, title="Klasser", selection=ORG_2026
    )
    active = _row(report, True)
    assert active["values"]["n_classified"] == 16
    assert active["values"]["reliable_deterioration"] == 5
    assert active["reasons"]["reliable_improvement"] == "small_cell"
    assert active["reasons"]["no_reliable_change"] == "complement"
    client.force_login(org1.analyst)
    body = client.get(reverse("dp_report", args=[report.pk])).content.decode()
    row = body.split("<th>Aktive</th>", 1)[1].split("</tr>", 1)[0]
    cells = row.split('<td class="num">')[1:]
    position = {c: i for i, c in enumerate(REPORT_FIGURE_COLUMNS)}
    improved = cells[position["reliable_improvement"]]
    unchanged = cells[position["no_reliable_change"]]
    assert "skjult" in improved and improved == unchanged


@pytest.mark.django_db
def test_a_report_frozen_before_the_reasons_still_shows(
    org1: OrgPersonas, client: Any, frozen: Any
) -> None:
    """A report stored before this change has no "reasons": it reads exactly as a new one
    (the display never depended on them), "hidden" with the note, no "< 5"."""
    report = _six_active_two_closed(org1)
    figures = report.figures
    for row in figures["rows"]:
        del row["reasons"]
    Report.objects.for_org(org1.org).filter(pk=report.pk).update(figures=figures)
    client.force_login(org1.dp_admin)
    response = client.get(reverse("dp_report", args=[report.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert len(_hidden_cells(body)) == 26 and "&lt; 5" not in body
    assert '<li value="1">skjult: færre end 5 klienter' in body


@pytest.mark.django_db
def test_the_export_shows_every_hidden_cell_alike(
    org1: OrgPersonas, client: Any, frozen: Any
) -> None:
    from openpyxl import load_workbook

    report = _six_active_two_closed(org1)
    org1.org.report_approvers.add(org1.dp_admin)
    report_approve(actor=org1.dp_admin, report=report)
    client.force_login(org1.analyst)
    response = client.get(reverse("dp_report_export", args=[report.pk]))
    assert response.status_code == 200
    ws = load_workbook(io.BytesIO(response.content))["Rapport"]
    rows = [[c for c in row if c is not None] for row in ws.iter_rows(values_only=True)]
    by_label = {r[0]: r[1:] for r in rows if r}
    assert by_label["Aktive"] == ["skjult"] * 13
    assert by_label["Inaktive"] == ["skjult"] * 13
    assert not any(isinstance(v, str) and v.startswith("<") for r in rows for v in r)
    notes = [r[0] for r in rows if r and str(r[0]).startswith("skjult: ")]
    assert notes == [
        "skjult: færre end 5 klienter, eller skjult så et sådant tal ikke kan regnes ud af "
        "de viste tal. Hvilket af de to siges ikke for det enkelte tal: sammen med de viste "
        "tal kunne det give et skjult tal tilbage."
    ]
