"""Review round 10: the ETR panel's ended episodes that cannot be judged on anonymised
figures — those without an expected response exactly where they are the difference of two
shown figures (the inactive classified minus the ended that can be judged), hidden when
1 … k−1 or with either figure; those with one ORS never — and two findings of the same
review, fixed: every hidden cell reads alike (a small cell and its complement), and a
lone hidden part within a row hides the row's total. Hand-computed figures."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pandas as pd
import pytest
from django.urls import reverse
from django.utils import timezone

from clients.services import episode_close
from stats import views
from stats.anonymise import REASON_COMPLEMENTARY, reason_small, suppress_table
from stats.models import StatsSnapshot
from stats.selectors import Figures, _figures_data, period_as_of
from tests.conftest import OrgPersonas, add_therapist, make_episode, record

K = 5
MASK: dict[str, Any] = {"hidden_scope": False, "spread_hidden": False, "table": {}}


def _figs(
    *,
    classified: int,
    no_etr: int,
    table_mask: dict[str, Any] | None = None,
    etr_mask: dict[str, str] | None = None,
    anonymised: bool = True,
) -> Figures:
    """An inactive side of 20 episodes with ``classified`` of them with two ORS; ETR: 20
    ended, 7 judged (all 7 reached the target), 3 with a single ORS, ``no_etr`` without an
    expected response."""
    payload = {
        "table": {
            "active": {"episodes": 0, "n_classified": 0},
            "inactive": {"episodes": 20, "sessions": 60, "n_classified": classified},
        },
        "etr": {
            "ended": 20,
            "ended_evaluable": 7,
            "reaching_target": 7,
            "reaching_target_share": 1.0,
            "dropout": 0,
            "dropout_share": 0.0,
            "ended_single_ors": 3,
            "ended_no_etr": no_etr,
            "n_relative_effect": 0,
            "relative_effect_size": None,
        },
    }
    mask = {**MASK, "table": table_mask or {}, "etr": etr_mask or {}} if anonymised else None
    data = _figures_data(payload, anonymised=anonymised, k=K, mask=mask)
    return Figures(
        snapshot=StatsSnapshot(as_of=dt.date(2026, 11, 30), computed_at=timezone.now()),
        anonymised=anonymised,
        k=K,
        **data,
    )


# every hidden cell reads alike, a small cell and a complement (stats.reasons.hidden_note)
HIDDEN_AS_COMPLEMENT = "skjult (færre end 5 klienter, eller skjult så et sådant tal"


def test_no_expected_response_is_shown_where_it_is_a_shown_difference() -> None:
    """12 classified inactive − 7 judged = 5 without an expected response: shown as 5.
    The 3 with a single ORS and the 20 ended leave the server as nothing."""
    figs = _figs(classified=12, no_etr=5)
    view = views._etr_view(figs)
    assert view["ended_no_etr"] == "5"
    assert view["ended_evaluable"] == "7"
    assert "ended_single_ors" not in view
    assert figs.etr["ended_single_ors"] is None and figs.etr["ended"] is None


def test_a_small_count_without_expected_response_reads_as_every_hidden_cell() -> None:
    """9 − 7 = 2 < 5: hidden (the figure rests on two clients), and read as every hidden
    cell — not "< 5", which would tell it from a complement (review round 10)."""
    figs = _figs(classified=9, no_etr=2)
    assert figs.etr["ended_no_etr"] is None
    assert figs.etr_suppressed["ended_no_etr"] == reason_small(K)
    assert views._etr_view(figs)["ended_no_etr"].startswith(HIDDEN_AS_COMPLEMENT)


def test_hidden_with_the_judged_base() -> None:
    """The 7 judged are hidden as a complement (the siblings' grid): 12 − 5 would give
    them back, so the 5 are hidden too — "skjult" with the reason, never the 5."""
    figs = _figs(
        classified=12,
        no_etr=5,
        etr_mask={"ended_evaluable": REASON_COMPLEMENTARY},
    )
    assert figs.etr["ended_no_etr"] is None
    assert figs.etr_suppressed["ended_no_etr"] == REASON_COMPLEMENTARY
    assert views._etr_view(figs)["ended_no_etr"].startswith(HIDDEN_AS_COMPLEMENT)


def test_hidden_with_the_inactive_classified() -> None:
    """The inactive side's 12 classified hidden (as a complement): 5 + 7 would give them
    back, so the 5 are hidden."""
    figs = _figs(
        classified=12,
        no_etr=5,
        table_mask={"inactive": {"n_classified": REASON_COMPLEMENTARY}},
    )
    assert figs.table["inactive"]["n_classified"] is None
    assert figs.etr["ended_no_etr"] is None
    assert views._etr_view(figs)["ended_no_etr"].startswith(HIDDEN_AS_COMPLEMENT)


def test_hidden_when_it_is_not_the_difference() -> None:
    """Stored 4 where 12 − 7 = 5 (never expected): not shown — fail closed."""
    figs = _figs(classified=12, no_etr=4)
    assert figs.etr["ended_no_etr"] is None
    assert views._etr_view(figs)["ended_no_etr"].startswith("skjult")


def test_identified_figures_show_both_counts() -> None:
    figs = _figs(classified=12, no_etr=5, anonymised=False)
    view = views._etr_view(figs)
    assert (view["ended_single_ors"], view["ended_no_etr"]) == ("3", "5")


# --- The dashboards, end to end ------------------------------------------------------------

NO_ETR_LABEL = "Afsluttet uden forventet respons for deres session (kan ikke vurderes)"
SINGLE_LABEL = "Afsluttet med kun én ORS (kan ikke vurderes)"


def _closed(p: OrgPersonas, code: str, therapist: Any, end: dt.date, ors: list[str]) -> Any:
    e = make_episode(p, code=code, therapist=therapist, started_on=end - dt.timedelta(days=40))
    for i, score in enumerate(ors):
        record(e, end - dt.timedelta(days=40 - 20 * i), ors=score)
    episode_close(actor=therapist, episode=e, closed_on=end - dt.timedelta(days=15))
    return e


def _etr_value(page: str, label: str) -> str | None:
    m = re.search(re.escape(label) + r"</dt><dd>([^<]*)</dd>", page)
    return None if m is None else m.group(1)


@pytest.mark.django_db
def test_the_organisation_page_shows_those_without_expected_response(
    client: Any, org1: OrgPersonas
) -> None:
    """Three therapists with two closed episodes each, ORS 10 -> 12, and two closed
    episodes of therapist A with a single ORS, before the last month-end. Far too few
    episodes for an expected response (30 per session number), so none can be judged:
    inactive classified 6, judged 0, without an expected response 6 — shown as 6. The
    single-ORS row is not on the page; no client code, no therapist name."""
    end = period_as_of("month")[1]
    team = [org1.therapist_a, org1.therapist_b, add_therapist(org1, "r10")]
    episodes = [_closed(org1, f"E-{i}", team[i % 3], end, ["10", "12"]) for i in range(6)] + [
        _closed(org1, f"S-{i}", org1.therapist_a, end, ["10"]) for i in range(2)
    ]
    client.force_login(org1.leader)
    page = client.get(reverse("stats_organisation"), {"period": "month"}).content.decode()
    assert _etr_value(page, "Afsluttede forløb, der kan vurderes") == "0"
    assert _etr_value(page, NO_ETR_LABEL) == "6"
    assert SINGLE_LABEL not in page
    assert "På anonymiserede tal vises de afsluttede forløb med kun én ORS ikke" in page
    for e in episodes:
        assert e.client.code not in page
    for t in team:
        assert t.get_full_name() not in page
    # A's own figures (identified, until today) still show both: 2 and 2.
    client.force_login(org1.therapist_a)
    own = client.get(reverse("stats_mine")).content.decode()
    assert _etr_value(own, SINGLE_LABEL) == "2"
    assert _etr_value(own, NO_ETR_LABEL) == "2"


@pytest.mark.django_db
def test_a_small_count_is_not_on_the_page(client: Any, org1: OrgPersonas) -> None:
    """Three therapists with one closed episode with two ORS and one with a single ORS
    each: inactive 6 (shown), classified 3 (< 5: hidden), judged 0, without an expected
    response 3 — hidden with the classified, never "3"."""
    end = period_as_of("month")[1]
    team = [org1.therapist_a, org1.therapist_b, add_therapist(org1, "r10")]
    for i, t in enumerate(team):
        _closed(org1, f"E-{i}", t, end, ["10", "12"])
        _closed(org1, f"S-{i}", t, end, ["10"])
    client.force_login(org1.analyst)
    page = client.get(reverse("stats_organisation"), {"period": "month"}).content.decode()
    shown = _etr_value(page, NO_ETR_LABEL)
    assert shown is not None and shown.startswith(HIDDEN_AS_COMPLEMENT)
    assert "3" not in shown


# --- Two findings of review round 10 (docs/datapolicy.md), fixed -------------------------------

OUTCOMES = pd.DataFrame(
    {
        "episodes": [16, 20],
        "sessions": [32, 40],
        "n_classified": [16, 20],
        "reliable_improvement": [1, 8],
        "reliable_deterioration": [5, 6],
        "no_reliable_change": [10, 6],
        "clinically_significant": [0, 3],
    },
    index=pd.Index([True, False], name="active"),
)


def test_the_dashboards_do_not_tell_the_small_class_from_its_complement() -> None:
    """Active: 16 classified, improvement 1, deterioration 5, no change 10. Improvement is
    a small cell, no change its complement (the preferred one, round 11; before, the
    smallest: deterioration); 16 and 5 are shown. Shown as "< 5" and "skjult",
    improvement + no change = 11 with no change ≥ 5 (a complement is never small) would
    bound both. Both read alike now: "skjult" with the one note."""
    _out, reasons = suppress_table(OUTCOMES, k=K)
    mask = {
        **MASK,
        "table": {
            side: {c: r for c, r in reasons.loc[active].items() if pd.notna(r)}
            for side, active in (("active", True), ("inactive", False))
        },
    }
    payload = {
        "table": {
            side: OUTCOMES.loc[active].to_dict()
            for side, active in (("active", True), ("inactive", False))
        }
    }
    figs = Figures(
        snapshot=StatsSnapshot(as_of=dt.date(2026, 11, 30), computed_at=timezone.now()),
        anonymised=True,
        k=K,
        **_figures_data(payload, anonymised=True, k=K, mask=mask),
    )
    rows = views._outcome_rows(figs)  # n_classified, improvement, no change, deterioration, …
    assert rows[0]["active"]["text"] == "16" and rows[3]["active"]["text"].startswith("5")
    assert rows[1]["active"]["text"] == rows[2]["active"]["text"] == "skjult"
    assert rows[1]["active"]["mark"] == rows[2]["active"]["mark"] == 1
    assert rows[1]["active"]["reason"] == rows[2]["active"]["reason"]
    assert len(rows.notes) == 1 and "< 5" not in str(list(rows))


def _hidden(table: pd.DataFrame) -> dict[bool, list[str]]:
    _out, reasons = suppress_table(table, k=K)
    return {bool(a): sorted(reasons.columns[reasons.loc[a].notna()]) for a in reasons.index}


def test_a_hidden_class_is_never_the_shown_total_minus_shown_parts() -> None:
    """Inactive: 6 classified, all 6 improved (hidden as the complement of the active
    side's improvement of 1), no deterioration, no change: 6 − 0 − 0 gave the 6 back.
    No other non-zero class can be hidden with it, so the total (6) is hidden, and with it
    every class of that side (as stats.publications.complement_parts holds the total);
    the active total (16) is then hidden as its complement across the sides (rule 3:
    active + inactive classified may be shown as the organisation's), and with it the
    active classes. Episodes and sessions stay shown (6 and 16 clients)."""
    table = OUTCOMES.copy()
    table.loc[False, ["episodes", "sessions", "n_classified"]] = [6, 12, 6]
    table.loc[False, ["reliable_improvement", "reliable_deterioration"]] = [6, 0]
    table.loc[False, ["no_reliable_change", "clinically_significant"]] = [0, 0]
    classes = [
        "clinically_significant",
        "n_classified",
        "no_reliable_change",
        "reliable_deterioration",
        "reliable_improvement",
    ]
    assert _hidden(table) == {True: classes, False: classes}


def test_an_ordinary_row_hides_no_more_than_before() -> None:
    """The fix only acts where no shown class is non-zero. OUTCOMES by hand (k = 5; a bare
    table, so active + inactive is a sum here, the default partition level): active
    improvement 1 is small; its complement within the row is the preferred class, no
    change 10 (1 + 10 ≥ 5, two non-zero). Across the sides the inactive improvement 8
    complements the active 1 and the inactive no change 6 the active 10 (two non-zero
    each, 9 and 16 ≥ 5); the inactive row then holds two hidden classes, 8 + 6 ≥ 5.
    Inactive clinically significant 3 is small (the active 0 cannot complement it: rule 3
    takes non-zero cells only). The totals 16 and 20 and the deteriorations 5 and 6 stay
    shown."""
    assert _hidden(OUTCOMES) == {
        True: ["no_reliable_change", "reliable_improvement"],
        False: ["clinically_significant", "no_reliable_change", "reliable_improvement"],
    }
