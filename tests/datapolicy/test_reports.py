"""Reports: frozen anonymised figures (checked against hand-computed numbers), the
approval life cycle, and that nothing unapproved can be exported."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from clients.services import episode_close
from datapolicy.models import Report
from datapolicy.reports import (
    ReportNotApproved,
    period_bounds,
    period_choices,
    report_approve,
    report_create,
    report_export,
    report_withdraw,
)
from tests.conftest import make_episode, record, team_of_three

# Only ended periods are offered (review round 8): on 1 July the first half has ended.
NOW = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
ORG_2026 = {"scope": "org", "period": "2026-H1"}


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def six_episodes(p: Any, *, prefix: str = "R") -> list[Any]:
    """Six adult episodes: ORS 10+i -> 18+i (change 8), SRS 30 -> 34; two have a third
    session (ORS unchanged, SRS 36)."""
    episodes = []
    team = team_of_three(p)  # rule 8: a report of fewer than 3 therapists shows nothing
    for i in range(6):
        e = make_episode(
            p, therapist=team[i % 3], code=f"{prefix}-{i}", started_on=dt.date(2026, 5, 1)
        )
        record(e, dt.date(2026, 5, 4), ors=str(10 + i), srs="30")
        record(e, dt.date(2026, 6, 1), ors=str(18 + i), srs="34")
        if i < 2:
            record(e, dt.date(2026, 6, 8), ors=str(18 + i), srs="36")
        episodes.append(e)
    return episodes


def _row(report: Report, active: bool) -> dict[str, Any]:
    return next(r for r in report.figures["rows"] if r["active"] is active)


@pytest.mark.django_db
class TestFrozenFigures:
    def test_hand_computed_figures(self, org1: Any, frozen: Any) -> None:
        six_episodes(org1)
        report = report_create(
            actor=org1.analyst, organisation=org1.org, title="Halvår", selection=ORG_2026
        )
        active = _row(report, True)
        v = active["values"]
        assert active["hidden"] == []
        assert v["episodes"] == 6
        assert v["sessions_per_episode"] == pytest.approx(14 / 6)
        assert v["ors_start"] == pytest.approx(12.5)  # mean of 10..15
        assert v["ors_change"] == pytest.approx(8.0)
        assert v["srs_start"] == pytest.approx(30.0)
        assert v["srs_change"] == pytest.approx((4 * 4 + 2 * 6) / 6)  # 34-30 or 36-30
        assert (v["n_classified"], v["reliable_improvement"]) == (6, 6)
        assert (v["reliable_deterioration"], v["no_reliable_change"]) == (0, 0)
        assert v["clinically_significant"] == 0  # last ORS 18..23 stays below 25
        # Median trajectory: session 1 median of 10..15, session 2 of 18..23; session 3
        # has only two episodes (< k = 5) and is not drawn.
        traj = {p["session_number"]: p for p in report.figures["trajectory"]}
        assert set(traj) == {1, 2}
        assert traj[1]["ors_median"] == pytest.approx(12.5)
        assert traj[2]["ors_median"] == pytest.approx(20.5)
        assert traj[2]["srs_median"] == pytest.approx(34.0)

    def test_figures_are_frozen_and_hold_no_identities(self, org1: Any, frozen: Any) -> None:
        episodes = six_episodes(org1)
        report = report_create(
            actor=org1.analyst, organisation=org1.org, title="Frozen", selection=ORG_2026
        )
        before = report.figures
        record(episodes[3], dt.date(2026, 6, 10), ors="40", srs="40")
        report.refresh_from_db()
        assert report.figures == before
        text = json.dumps(report.figures)
        for e in episodes:
            assert e.client.code not in text
        for word in ("episode_id", "therapist", "unit_id", "client"):
            assert word not in text

    def test_complementary_suppression_across_active_and_inactive(
        self, org1: Any, frozen: Any
    ) -> None:
        six_episodes(org1)
        for i in range(2):
            e = make_episode(org1, code=f"C-{i}", started_on=dt.date(2026, 3, 1))
            record(e, dt.date(2026, 3, 2), ors="15", srs="30")
            record(e, dt.date(2026, 4, 2), ors="16", srs="31")
            episode_close(actor=org1.therapist_a, episode=e, closed_on=dt.date(2026, 4, 3))
        report = report_create(
            actor=org1.analyst, organisation=org1.org, title="Compl.", selection=ORG_2026
        )
        # Two inactive episodes (< 5) are hidden; the six active ones are hidden too, or
        # 2 = total (8, shown wherever the organisation's figure is shown) − 6.
        assert "episodes" in _row(report, False)["hidden"]
        assert "episodes" in _row(report, True)["hidden"]
        assert _row(report, True)["values"]["episodes"] is None

    def test_the_organisations_k_decides(self, org1: Any, frozen: Any) -> None:
        for i in range(4):
            e = make_episode(
                org1,
                therapist=team_of_three(org1)[i % 3],
                code=f"K-{i}",
                started_on=dt.date(2026, 5, 1),
            )
            record(e, dt.date(2026, 5, 4), ors="10", srs="30")
            record(e, dt.date(2026, 6, 1), ors="20", srs="34")
        hidden = report_create(
            actor=org1.analyst, organisation=org1.org, title="k5", selection=ORG_2026
        )
        assert hidden.figures["k"] == 5
        assert _row(hidden, True)["values"]["episodes"] is None
        assert hidden.figures["trajectory"] == []  # 4 episodes per point < 5
        org1.org.small_cell_k = 3
        org1.org.save()
        shown = report_create(
            actor=org1.analyst, organisation=org1.org, title="k3", selection=ORG_2026
        )
        assert _row(shown, True)["values"]["episodes"] == 4
        assert _row(shown, True)["values"]["ors_change"] == pytest.approx(10.0)
        assert [p["session_number"] for p in shown.figures["trajectory"]] == [1, 2]

    def test_unit_scope_and_period(self, org1: Any, frozen: Any) -> None:
        six_episodes(org1)
        unit_sel = {"scope": "unit", "unit_id": org1.other_unit.pk, "period": "2026-H1"}
        empty = report_create(
            actor=org1.analyst, organisation=org1.org, title="Other unit", selection=unit_sel
        )
        assert empty.figures["rows"] == []  # all six are in org1.unit
        q1 = report_create(
            actor=org1.analyst,
            organisation=org1.org,
            title="Q1",
            selection={"scope": "org", "period": "2026-Q1"},
        )
        assert q1.figures["rows"] == []  # no session in January-March


@pytest.mark.django_db
class TestSelectionIsFixed:
    def test_only_fixed_periods_are_offered(self) -> None:
        codes = [c for c, _label in period_choices(dt.date(2026, 6, 15))]
        # only ended periods: 2026, H1 and Q2 have not ended on 15 June
        assert codes[:4] == ["2026-Q1", "2025", "2025-H2", "2025-Q4"]
        for code in codes:
            start, end = period_bounds(code)
            assert start.day == 1 and start.month in (1, 4, 7, 10)
            assert (end + dt.timedelta(days=1)).day == 1
            assert (end + dt.timedelta(days=1)).month in (1, 4, 7, 10)

    @pytest.mark.parametrize(
        "selection",
        [
            {"scope": "org", "period": "2026-01-01..2026-03-15"},  # free range
            {"scope": "org", "period": "2026-M3"},
            {"scope": "org", "period": "2031"},  # not begun
            {"scope": "therapist", "period": "2026"},  # no per-person scope
            {"scope": "unit", "unit_id": 999999, "period": "2026"},
        ],
    )
    def test_other_selections_are_refused(
        self, org1: Any, frozen: Any, selection: dict[str, Any]
    ) -> None:
        with pytest.raises(ValidationError):
            report_create(actor=org1.analyst, organisation=org1.org, title="x", selection=selection)
        assert not Report.objects.for_org(org1.org).exists()

    def test_unit_of_another_organisation_is_refused(
        self, org1: Any, org2: Any, frozen: Any
    ) -> None:
        with pytest.raises(ValidationError):
            report_create(
                actor=org1.analyst,
                organisation=org1.org,
                title="x",
                selection={"scope": "unit", "unit_id": org2.unit.pk, "period": "2026"},
            )


@pytest.mark.django_db
class TestLifeCycle:
    def _draft(self, org1: Any) -> Report:
        return report_create(
            actor=org1.analyst, organisation=org1.org, title="Årsrapport", selection=ORG_2026
        )

    def test_only_the_analyst_creates(self, org1: Any, frozen: Any) -> None:
        for persona in ("dp_admin", "leader", "therapist_a", "owner"):
            with pytest.raises(PermissionDenied):
                report_create(
                    actor=org1.by_role()[persona],
                    organisation=org1.org,
                    title="x",
                    selection=ORG_2026,
                )

    def test_named_approver_but_not_the_author(self, org1: Any, frozen: Any) -> None:
        report = self._draft(org1)
        org1.org.report_approvers.add(org1.analyst, org1.leader)
        with pytest.raises(PermissionDenied):
            report_approve(actor=org1.analyst, report=report)  # four eyes
        with pytest.raises(PermissionDenied):
            report_approve(actor=org1.dp_admin, report=report)  # not named
        report_approve(actor=org1.leader, report=report, note="OK til byrådet")
        assert report.status == Report.Status.APPROVED
        with pytest.raises(ValidationError):
            report_approve(actor=org1.leader, report=report)

    def test_unapproved_reports_cannot_be_exported(self, org1: Any, frozen: Any) -> None:
        report = self._draft(org1)
        with pytest.raises(ReportNotApproved):
            report_export(actor=org1.analyst, report=report)
        org1.org.report_approvers.add(org1.dp_admin)
        report_approve(actor=org1.dp_admin, report=report)
        assert report_export(actor=org1.analyst, report=report)[:2] == b"PK"  # a zip (xlsx)
        report_withdraw(actor=org1.analyst, report=report, note="Fejl i udvalg")
        with pytest.raises(ReportNotApproved):
            report_export(actor=org1.analyst, report=report)
        history = list(report.events.values_list("action", "actor__username", "note"))
        assert history == [
            ("created", org1.analyst.username, ""),
            ("approved", org1.dp_admin.username, ""),
            ("exported", org1.analyst.username, ""),
            ("withdrawn", org1.analyst.username, "Fejl i udvalg"),
        ]

    def test_only_analyst_and_dp_admin_export(self, org1: Any, frozen: Any) -> None:
        report = self._draft(org1)
        org1.org.report_approvers.add(org1.leader)
        report_approve(actor=org1.leader, report=report)
        with pytest.raises(PermissionDenied):
            report_export(actor=org1.leader, report=report)
        assert report_export(actor=org1.dp_admin, report=report)

    def test_export_page_refuses_a_draft(self, org1: Any, client: Any, frozen: Any) -> None:
        report = self._draft(org1)
        for persona in ("analyst", "dp_admin"):
            client.force_login(org1.by_role()[persona])
            response = client.get(reverse("dp_report_export", args=[report.pk]))
            assert response.status_code == 403
        assert not report.events.filter(action="exported").exists()

    def test_exported_workbook_shows_suppressed_cells(
        self, org1: Any, client: Any, frozen: Any
    ) -> None:
        from openpyxl import load_workbook

        six_episodes(org1)
        report = self._draft(org1)
        org1.org.report_approvers.add(org1.dp_admin)
        report_approve(actor=org1.dp_admin, report=report)
        client.force_login(org1.analyst)
        response = client.get(reverse("dp_report_export", args=[report.pk]))
        assert response.status_code == 200
        ws = load_workbook(io.BytesIO(response.content))["Rapport"]
        values = [c for row in ws.iter_rows(values_only=True) for c in row if c is not None]
        assert 6 in values and 12.5 in values
        assert "R-0" not in values

    def test_withdraw_by_a_stranger_is_refused(self, org1: Any, frozen: Any) -> None:
        report = self._draft(org1)
        with pytest.raises(PermissionDenied):
            report_withdraw(actor=org1.leader, report=report)

    def test_other_organisations_report_is_404(
        self, org1: Any, org2: Any, client: Any, frozen: Any
    ) -> None:
        report = self._draft(org1)
        client.force_login(org2.analyst)
        assert client.get(reverse("dp_report", args=[report.pk])).status_code == 404
        assert client.get(reverse("dp_report_export", args=[report.pk])).status_code == 404


@pytest.mark.django_db
def test_report_page_shows_labels_and_hidden_cells(org1: Any, client: Any, frozen: Any) -> None:
    for i in range(4):
        e = make_episode(
            org1,
            therapist=team_of_three(org1)[i % 3],
            code=f"H-{i}",
            started_on=dt.date(2026, 5, 1),
        )
        record(e, dt.date(2026, 5, 4), ors="10", srs="30")
    report = report_create(
        actor=org1.analyst, organisation=org1.org, title="Skjult", selection=ORG_2026
    )
    from django.conf import settings

    client.force_login(org1.leader)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    body = client.get(reverse("dp_report", args=[report.pk])).content.decode()
    assert "Sessions per episode" in body  # a label, not the column name
    # four episodes: hidden, "hidden" with the note (never "< 5": review round 10)
    assert "hidden<sup" in body and "hidden: fewer than 5 clients, or" in body
    assert "H-0" not in body and org1.therapist_a.get_full_name() not in body
