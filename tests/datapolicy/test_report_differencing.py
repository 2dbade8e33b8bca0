"""Reports that could be subtracted from each other to a small group are refused.

A year and its fourth quarter end on the same day: year − Q4 = the episodes with
sessions in January–September only. "All ages" − "adults", the organisation − one unit
and a unit − its sub-unit likewise. Each test builds the two selections so that they
differ by a known number of episodes and tries to publish both (k = 5 unless said)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import numpy as np
import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse

from clients.models import Episode
from clients.services import episode_close
from datapolicy.differencing import (
    CELL_FAMILIES,
    Fingerprint,
    decode,
    fingerprint_of,
    isolated_groups,
    small_differences,
)
from datapolicy.models import Report, Unit
from datapolicy.reports import (
    REPORT_FIGURE_COLUMNS,
    report_approve,
    report_create,
    report_export,
    report_withdraw,
)
from tests.conftest import OrgPersonas, make_episode, record, team_of_three

NOW = dt.datetime(2027, 1, 15, 12, 0, tzinfo=dt.UTC)
YEAR = {"scope": "org", "period": "2026"}
Q4 = {"scope": "org", "period": "2026-Q4"}


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


_serial = iter(range(1, 10_000))


def improving(
    p: OrgPersonas,
    first: dt.date,
    second: dt.date,
    *,
    unit: Unit | None = None,
    age_group: str = "adult",
    closed_on: dt.date | None = None,
    second_srs: bool = True,
) -> Any:
    """An episode with two sessions: ORS 10 -> 18 (reliable improvement, not clinically
    significant), SRS 30 -> 34 (or no SRS at the second session)."""
    n = next(_serial)
    # Three therapists in turn: a report of fewer than 3 shows nothing (rule 8).
    therapist = team_of_three(p)[n % 3]
    e = make_episode(p, therapist=therapist, code=f"D-{n}", age_group=age_group, started_on=first)
    record(e, first, ors="10", srs="30")
    record(e, second, ors="18", srs="34" if second_srs else None)
    if closed_on is not None:
        episode_close(actor=therapist, episode=e, closed_on=closed_on)
    if unit is not None:
        Episode.objects.for_org(p.org).filter(pk=e.pk).update(unit=unit)
    return e


def common_to_year_and_q4(p: OrgPersonas) -> None:
    """Six episodes active on 31 December and five closed in November, all with sessions
    in October–December: in the year and in Q4 alike (both sides shown with k = 5)."""
    for _ in range(6):
        improving(p, dt.date(2026, 11, 2), dt.date(2026, 12, 1))
    for _ in range(5):
        improving(p, dt.date(2026, 10, 5), dt.date(2026, 11, 2), closed_on=dt.date(2026, 11, 10))


def january_to_september_only(p: OrgPersonas, n: int, **kw: Any) -> None:
    """n episodes in the year but not in Q4 (inactive on 31 December)."""
    for _ in range(n):
        improving(p, dt.date(2026, 3, 2), dt.date(2026, 4, 6), **kw)


def create(p: OrgPersonas, title: str, selection: dict[str, Any]) -> Report:
    return report_create(actor=p.analyst, organisation=p.org, title=title, selection=selection)


def refused(p: OrgPersonas, title: str, selection: dict[str, Any]) -> str:
    before = Report.objects.for_org(p.org).count()
    with pytest.raises(ValidationError) as info:
        create(p, title, selection)
    assert Report.objects.for_org(p.org).count() == before  # nothing saved
    return " ".join(info.value.messages)


def _row(report: Report, active: bool) -> dict[str, Any]:
    return next(r for r in report.figures["rows"] if r["active"] is active)


@pytest.mark.django_db
class TestNestedPeriods:
    def test_year_and_q4_differing_by_two_episodes_are_refused(
        self, org1: OrgPersonas, frozen: Any
    ) -> None:
        common_to_year_and_q4(org1)
        january_to_september_only(org1, 2)
        q4 = create(org1, "Fjerde kvartal", Q4)
        # Hand count: Q4 inactive 5, the year's 7 — both shown, so year − Q4 would be
        # the two January–September episodes with their means.
        assert _row(q4, False)["values"]["episodes"] == 5
        message = refused(org1, "Hele året", YEAR)
        assert "Fjerde kvartal" in message and "5" in message
        assert "2" not in message  # the size of the difference is never told
        # The same the other way round, and for the second half-year.
        Report.objects.for_org(org1.org).filter(pk=q4.pk).update(status="withdrawn")
        create(org1, "Hele året", YEAR)
        refused(org1, "Fjerde kvartal", Q4)
        refused(org1, "Andet halvår", {"scope": "org", "period": "2026-H2"})

    def test_year_and_q4_differing_by_k_are_allowed(self, org1: OrgPersonas, frozen: Any) -> None:
        common_to_year_and_q4(org1)
        january_to_september_only(org1, 5)
        q4 = create(org1, "Fjerde kvartal", Q4)
        year = create(org1, "Hele året", YEAR)
        assert (_row(q4, False)["values"]["episodes"], _row(year, False)["values"]["episodes"]) == (
            5,
            10,
        )
        org1.org.report_approvers.add(org1.leader)
        report_approve(actor=org1.leader, report=q4)
        report_approve(actor=org1.leader, report=year)
        assert year.status == q4.status == Report.Status.APPROVED

    def test_both_sides_differing_by_k_are_allowed(self, org1: OrgPersonas, frozen: Any) -> None:
        org1.org.inactivity_days = 120  # a September session is still active on 31 December
        org1.org.save()
        common_to_year_and_q4(org1)
        january_to_september_only(org1, 5)  # inactive
        for _ in range(5):  # active, but no session in Q4
            improving(org1, dt.date(2026, 8, 3), dt.date(2026, 9, 7))
        q4 = create(org1, "Fjerde kvartal", Q4)
        year = create(org1, "Hele året", YEAR)
        assert _row(q4, True)["values"]["episodes"] == 6
        assert _row(year, True)["values"]["episodes"] == 11
        assert _row(year, False)["values"]["episodes"] == 10

    def test_a_small_difference_on_one_side_is_refused(
        self, org1: OrgPersonas, frozen: Any
    ) -> None:
        """Seven episodes differ in all, but only two of them on the active side."""
        org1.org.inactivity_days = 120
        org1.org.save()
        common_to_year_and_q4(org1)
        january_to_september_only(org1, 5)
        for _ in range(2):
            improving(org1, dt.date(2026, 8, 3), dt.date(2026, 9, 7))
        q4 = create(org1, "Fjerde kvartal", Q4)
        assert _row(q4, True)["values"]["episodes"] == 6  # shown: 6 active in Q4, 8 in the year
        message = refused(org1, "Hele året", YEAR)
        assert "2" not in message and "7" not in message

    def test_a_small_difference_within_one_column_family_is_refused(
        self, org1: OrgPersonas, frozen: Any
    ) -> None:
        """Five episodes differ (inactive side), but only two of them have a second SRS:
        the SRS change of the year minus that of Q4 would be those two episodes'."""
        common_to_year_and_q4(org1)
        january_to_september_only(org1, 3, second_srs=False)
        january_to_september_only(org1, 2)
        q4 = create(org1, "Fjerde kvartal", Q4)
        message = refused(org1, "Hele året", YEAR)
        assert "2" not in message and "3" not in message
        # Which cells: the SRS change (and the SRS trajectory point at session 2), not
        # the episode counts or ORS figures, which differ by five.
        from datapolicy.reports import _figures_and_fingerprint

        year_figures, year_blob = _figures_and_fingerprint(org1.org, YEAR)
        assert _row(Report(figures=year_figures), False)["values"]["episodes"] == 10
        cells = small_differences(decode(year_blob), fingerprint_of(q4), 5)
        assert sorted(cells) == ["inactive:srs_change", "trajectory:srs:2"]

    def test_cells_hidden_in_either_report_are_not_compared(
        self, org1: OrgPersonas, frozen: Any
    ) -> None:
        """Q4 with three inactive episodes hides its inactive cells (and, complementary,
        the active ones); the year has two more inactive episodes, without scores (so the
        trajectory's counts are the same): nothing published differs by 1 … k−1."""
        for _ in range(6):
            improving(org1, dt.date(2026, 11, 2), dt.date(2026, 12, 1))
        for _ in range(3):
            improving(
                org1, dt.date(2026, 10, 5), dt.date(2026, 11, 2), closed_on=dt.date(2026, 11, 10)
            )
        for i in range(2):
            e = make_episode(org1, code=f"NS-{i}", started_on=dt.date(2026, 3, 2))
            record(e, dt.date(2026, 3, 2))
        q4 = create(org1, "Fjerde kvartal", Q4)
        assert "episodes" in _row(q4, False)["hidden"] and "episodes" in _row(q4, True)["hidden"]
        year = create(org1, "Hele året", YEAR)  # allowed
        assert _row(year, False)["values"]["episodes"] == 5

    def test_the_trajectory_counts_are_compared_too(self, org1: OrgPersonas, frozen: Any) -> None:
        """As above, but the two extra episodes have scores: the trajectory's per-session
        counts (active and inactive alike, shown in both) would differ by two."""
        for _ in range(6):
            improving(org1, dt.date(2026, 11, 2), dt.date(2026, 12, 1))
        for _ in range(3):
            improving(
                org1, dt.date(2026, 10, 5), dt.date(2026, 11, 2), closed_on=dt.date(2026, 11, 10)
            )
        january_to_september_only(org1, 2)
        q4 = create(org1, "Fjerde kvartal", Q4)
        assert {p["session_number"] for p in q4.figures["trajectory"]} == {1, 2}
        refused(org1, "Hele året", YEAR)

    def test_refused_again_at_approval_when_k_was_raised(
        self, org1: OrgPersonas, frozen: Any
    ) -> None:
        org1.org.small_cell_k = 3
        org1.org.save()
        common_to_year_and_q4(org1)
        january_to_september_only(org1, 4)
        q4 = create(org1, "Fjerde kvartal", Q4)
        year = create(org1, "Hele året", YEAR)  # differs by 4 >= k = 3
        org1.org.small_cell_k = 5
        org1.org.save()
        org1.org.report_approvers.add(org1.leader)
        with pytest.raises(ValidationError) as info:
            report_approve(actor=org1.leader, report=year)
        assert "Fjerde kvartal" in " ".join(info.value.messages)
        assert "4" not in " ".join(info.value.messages)
        year.refresh_from_db()
        assert year.status == Report.Status.DRAFT
        assert not year.events.filter(action="approved").exists()
        with pytest.raises(ValidationError):
            report_approve(actor=org1.leader, report=q4)
        report_withdraw(actor=org1.analyst, report=q4)  # never exported
        report_approve(actor=org1.leader, report=year)

    def test_refused_at_approval_after_a_concurrent_creation(
        self, org1: OrgPersonas, frozen: Any
    ) -> None:
        """Two drafts that slipped past each other (emulated: the year's creation did not
        see Q4, as a concurrent transaction would not without the organisation lock) are
        caught when either is approved."""
        common_to_year_and_q4(org1)
        january_to_september_only(org1, 2)
        q4 = create(org1, "Fjerde kvartal", Q4)
        Report.objects.for_org(org1.org).filter(pk=q4.pk).update(status="withdrawn")
        year = create(org1, "Hele året", YEAR)
        Report.objects.for_org(org1.org).filter(pk=q4.pk).update(status="draft")
        q4.refresh_from_db()
        org1.org.report_approvers.add(org1.leader)
        for report, other in ((year, "Fjerde kvartal"), (q4, "Hele året")):
            with pytest.raises(ValidationError) as info:
                report_approve(actor=org1.leader, report=report)
            assert other in " ".join(info.value.messages)
            report.refresh_from_db()
            assert report.status == Report.Status.DRAFT

    def test_a_withdrawn_report_does_not_block(self, org1: OrgPersonas, frozen: Any) -> None:
        common_to_year_and_q4(org1)
        january_to_september_only(org1, 2)
        q4 = create(org1, "Fjerde kvartal", Q4)
        report_withdraw(actor=org1.analyst, report=q4, note="Forkert periode")
        year = create(org1, "Hele året", YEAR)
        org1.org.report_approvers.add(org1.leader)
        report_approve(actor=org1.leader, report=year)

    def test_a_report_exported_before_withdrawal_still_blocks(
        self, org1: OrgPersonas, frozen: Any
    ) -> None:
        """Its figures have left the organisation; withdrawing does not call them back."""
        common_to_year_and_q4(org1)
        january_to_september_only(org1, 2)
        q4 = create(org1, "Fjerde kvartal", Q4)
        org1.org.report_approvers.add(org1.leader)
        report_approve(actor=org1.leader, report=q4)
        report_export(actor=org1.analyst, report=q4)
        report_withdraw(actor=org1.analyst, report=q4)
        assert "Fjerde kvartal" in refused(org1, "Hele året", YEAR)

    def test_the_same_episodes_with_a_late_session_are_refused(
        self, org1: OrgPersonas, frozen: Any
    ) -> None:
        """Same selection, same episodes, but one episode's figures changed between the
        two freezes (a session entered late for the quarter): the two reports would
        subtract to that one client's change. The fingerprint is value-aware."""
        common_to_year_and_q4(org1)
        late = improving(org1, dt.date(2026, 11, 2), dt.date(2026, 12, 1))
        create(org1, "Fjerde kvartal", Q4)
        create(org1, "Fjerde kvartal (kopi)", Q4)  # identical figures: no difference
        record(late, dt.date(2026, 12, 20), ors="25")
        refused(org1, "Fjerde kvartal igen", Q4)

    def test_a_report_frozen_without_fingerprint_is_recomputed(
        self, org1: OrgPersonas, frozen: Any
    ) -> None:
        """A report frozen before the check existed (empty fingerprint) still blocks."""
        common_to_year_and_q4(org1)
        january_to_september_only(org1, 2)
        q4 = create(org1, "Fjerde kvartal", Q4)
        Report.objects.for_org(org1.org).filter(pk=q4.pk).update(episode_fingerprint=b"")
        refused(org1, "Hele året", YEAR)


@pytest.mark.django_db
class TestOtherSelections:
    def test_age_siblings(self, org1: OrgPersonas, frozen: Any) -> None:
        for _ in range(6):
            improving(org1, dt.date(2026, 11, 2), dt.date(2026, 12, 1))
        for _ in range(2):
            improving(org1, dt.date(2026, 11, 2), dt.date(2026, 12, 1), age_group="youth")
        create(org1, "Alle aldre", YEAR)
        message = refused(org1, "Voksne", {**YEAR, "age_group": "adult"})
        assert "Alle aldre" in message and "2" not in message
        # The youth report on its own hides everything (two episodes of two therapists:
        # rule 8): nothing to subtract.
        youth = create(org1, "Unge", {**YEAR, "age_group": "youth"})
        assert youth.figures["rows"] == [] and youth.figures["hidden_reason"]

    def test_organisation_and_unit(self, org1: OrgPersonas, frozen: Any) -> None:
        for _ in range(6):
            improving(org1, dt.date(2026, 11, 2), dt.date(2026, 12, 1))
        for _ in range(2):
            improving(org1, dt.date(2026, 11, 2), dt.date(2026, 12, 1), unit=org1.other_unit)
        create(org1, "Kommunen", YEAR)
        refused(org1, "Ungeenheden", {**YEAR, "scope": "unit", "unit_id": org1.unit.pk})
        # Two units with no episode in common are not a difference of each other.
        create(org1, "Rusmiddelcentret", {**YEAR, "scope": "unit", "unit_id": org1.other_unit.pk})

    def test_unit_and_sub_unit(self, org1: OrgPersonas, frozen: Any) -> None:
        team = Unit.objects.create(
            organisation=org1.org, code="team", name="Team", parent=org1.unit
        )
        for _ in range(6):
            improving(org1, dt.date(2026, 11, 2), dt.date(2026, 12, 1), unit=team)
        for _ in range(2):
            improving(org1, dt.date(2026, 11, 2), dt.date(2026, 12, 1))
        create(org1, "Afdelingen", {**YEAR, "scope": "unit", "unit_id": org1.unit.pk})
        message = refused(org1, "Teamet", {**YEAR, "scope": "unit", "unit_id": team.pk})
        assert "Afdelingen" in message

    def test_three_reports_together_are_checked(self, org1: OrgPersonas, frozen: Any) -> None:
        """Organisation (14) − unit A (6) − unit B (6) = unit C's 2 episodes. Each pair
        differs by 8 or 12 (≥ k): only the three together isolate unit C."""
        unit_c = Unit.objects.create(organisation=org1.org, code="c", name="Enhed C")
        for unit, n in ((org1.unit, 6), (org1.other_unit, 6), (unit_c, 2)):
            for _ in range(n):
                improving(org1, dt.date(2026, 11, 2), dt.date(2026, 12, 1), unit=unit)
        create(org1, "Kommunen", YEAR)
        create(org1, "Enhed A", {**YEAR, "scope": "unit", "unit_id": org1.unit.pk})
        message = refused(org1, "Enhed B", {**YEAR, "scope": "unit", "unit_id": org1.other_unit.pk})
        assert "Kommunen" in message and "Enhed A" in message  # Danish: "Sammen med …"
        assert "Sammen med rapporterne" in message and "2" not in message

    def test_another_organisations_reports_never_matter(
        self, org1: OrgPersonas, org2: OrgPersonas, frozen: Any
    ) -> None:
        common_to_year_and_q4(org1)
        january_to_september_only(org1, 2)
        q4 = create(org1, "Fjerde kvartal", Q4)
        # The very same (conflicting) report, but in the other organisation.
        Report.objects.create(
            organisation=org2.org,
            title="Fremmed",
            selection=q4.selection,
            figures=q4.figures,
            episode_fingerprint=bytes(q4.episode_fingerprint),
            created_by=org2.analyst,
        )
        report_withdraw(actor=org1.analyst, report=q4)
        create(org1, "Hele året", YEAR)
        # The control: had it been this organisation's, it would have blocked.
        Report.objects.create(
            organisation=org1.org,
            title="Kopi",
            selection=q4.selection,
            figures=q4.figures,
            episode_fingerprint=bytes(q4.episode_fingerprint),
            created_by=org1.analyst,
        )
        refused(org1, "Andet halvår", {"scope": "org", "period": "2026-H2"})


@pytest.mark.django_db
class TestPagesAndSecrecy:
    def _conflict(self, org1: OrgPersonas) -> Report:
        common_to_year_and_q4(org1)
        january_to_september_only(org1, 2)
        return create(org1, "Fjerde kvartal", Q4)

    def test_create_page_says_why(self, org1: OrgPersonas, client: Any, frozen: Any) -> None:
        self._conflict(org1)
        client.force_login(org1.analyst)
        response = client.post(
            reverse("dp_report_create"), {"title": "Hele året", "scope": "org", "period": "2026"}
        )
        assert response.status_code == 200
        body = response.content.decode()
        assert "Fjerde kvartal" in body and "&lt;" not in body.split("Fjerde kvartal")[1][:80]
        assert Report.objects.for_org(org1.org).count() == 1

    def test_approve_page_says_why(self, org1: OrgPersonas, client: Any, frozen: Any) -> None:
        q4 = self._conflict(org1)
        Report.objects.for_org(org1.org).filter(pk=q4.pk).update(status="withdrawn")
        year = create(org1, "Hele året", YEAR)
        Report.objects.for_org(org1.org).filter(pk=q4.pk).update(status="draft")
        org1.org.report_approvers.add(org1.leader)
        client.force_login(org1.leader)
        response = client.post(reverse("dp_report_approve", args=[year.pk]), follow=True)
        assert "Fjerde kvartal" in response.content.decode()
        year.refresh_from_db()
        assert year.status == Report.Status.DRAFT

    def test_fingerprint_holds_no_ids_and_never_leaves(
        self, org1: OrgPersonas, client: Any, frozen: Any
    ) -> None:
        from openpyxl import load_workbook

        common_to_year_and_q4(org1)
        report = create(org1, "Fjerde kvartal", Q4)
        fp = decode(bytes(report.episode_fingerprint))
        ids = set(Episode.objects.for_org(org1.org).values_list("pk", flat=True))
        assert len(fp.digests) == len(ids) == 11
        assert not ids & {int(d) for d in fp.digests}  # digests, not ids
        assert "inactive:episodes" in fp.cells and "trajectory:ors:1" in fp.cells
        assert "fingerprint" not in str(report.figures) and "digest" not in str(report.figures)
        org1.org.report_approvers.add(org1.leader)
        report_approve(actor=org1.leader, report=report)
        client.force_login(org1.analyst)
        page = client.get(reverse("dp_report", args=[report.pk])).content.decode()
        listing = client.get(reverse("dp_reports")).content.decode()
        xlsx = client.get(reverse("dp_report_export", args=[report.pk])).content
        cells = {
            str(c)
            for ws in load_workbook(io.BytesIO(xlsx)).worksheets
            for row in ws.iter_rows(values_only=True)
            for c in row
            if c is not None
        }
        for d in fp.digests[:5]:
            for text in (str(int(d)), f"{int(d):x}"):
                assert text not in page and text not in listing and text not in cells
        # Not editable: it never appears in a model form or the Django admin.
        assert not Report._meta.get_field("episode_fingerprint").editable


def test_every_report_column_belongs_to_exactly_one_family() -> None:
    from stats.anonymise import STAT_FAMILIES

    owners = [
        f for c in REPORT_FIGURE_COLUMNS for f, (cols, _m) in CELL_FAMILIES.items() if c in cols
    ]
    assert len(owners) == len(REPORT_FIGURE_COLUMNS)
    # The grouping agrees with the suppression families (a column outside them belongs
    # to the episodes family there too).
    for column in REPORT_FIGURE_COLUMNS:
        family = next(f for f, (cols, _m) in CELL_FAMILIES.items() if column in cols)
        suppression = next(
            (name for name, (_n, members) in STAT_FAMILIES.items() if column in members),
            "episodes",
        )
        assert family == suppression


def _fp(cells: dict[str, list[int]]) -> Fingerprint:
    """A hand-made fingerprint: cell → the digests of its episodes."""
    digests = np.array(sorted({d for ds in cells.values() for d in ds}), dtype=np.uint64)
    members = np.array([[d in set(ds) for ds in cells.values()] for d in digests.tolist()])
    return Fingerprint("key", tuple(cells), digests, members.reshape(len(digests), len(cells)))


def test_isolated_groups_hand_computed() -> None:
    """Organisation {1..13}, unit A {1..6}, unit B {7..11}: org − A − B = {12, 13}."""
    org = _fp({"active:episodes": list(range(1, 14))})
    unit_a = _fp({"active:episodes": list(range(1, 7))})
    unit_b = _fp({"active:episodes": list(range(7, 12))})
    found = isolated_groups([org, unit_a, unit_b], k=5)
    assert found == [(("episodes", frozenset({12, 13})), {0, 1, 2})]
    # Two of them only: atoms {1..6} and {7..13}, 6 and 7 >= k — nothing isolated.
    assert isolated_groups([org, unit_a], k=5) == []
    # A published cell of its own (its report's suppression decided it) is not a finding,
    # nor are cells of different families combined.
    small = _fp({"active:episodes": [1, 2, 3]})
    assert isolated_groups([small, _fp({"active:ors_start": [1]})], k=5) == []
    # Sides of one family combine: X's active + inactive − Y's active = {13, 14}.
    x = _fp({"active:episodes": list(range(1, 7)), "inactive:episodes": list(range(7, 15))})
    y = _fp({"active:episodes": list(range(1, 13))})
    assert isolated_groups([x, y], k=5) == [(("episodes", frozenset({13, 14})), {0, 1})]


@pytest.mark.django_db
def test_three_changed_episodes_are_three_differences(org1: OrgPersonas, frozen: Any) -> None:
    """(From a review.) The same Q4 after late December sessions for 3 of its clients:
    the two reports would subtract to those 3 clients' changes. Each changed episode is
    one difference (not an old and a new one: 6 ≥ k would have let it pass)."""
    active = [improving(org1, dt.date(2026, 11, 2), dt.date(2026, 12, 1)) for _ in range(6)]
    for _ in range(5):
        improving(org1, dt.date(2026, 10, 5), dt.date(2026, 11, 2), closed_on=dt.date(2026, 11, 10))
    create(org1, "Fjerde kvartal", Q4)
    for e in active[:3]:
        record(e, dt.date(2026, 12, 20), ors="30", srs="36")
    refused(org1, "Fjerde kvartal igen", Q4)
