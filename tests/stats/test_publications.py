"""Anonymised figures per closed month: published once, frozen, checked across dates
(stats.publications, docs/datapolicy.md "Publication per closed month").

The attack each test tries: subtract two reference dates' anonymised figures to get the
clients who came, left or changed in between."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
import time_machine
from django.urls import reverse
from django.utils.translation import gettext

from stats.engine import StatsSettings
from stats.publications import (
    REASON_CHANGED,
    States,
    change_grid,
    changed_episodes,
    episode_states,
    held_between,
    others_changed,
)
from stats.services import stats_recompute_all
from stats.siblings import Tree, family_masks
from tests.conftest import OrgPersonas, add_therapist, make_episode, record

K = 5
TREE = Tree(("organisation", 1), {10: None, 11: None})  # two top-level units


def states(rows: list[tuple[int, int, str, bool, int]], org: int = 1) -> States:
    """(episode, unit, age, active, state hash) rows → a publication's states."""
    codes = {"adult": 1, "youth": 2, "child": 3}
    rows = sorted(rows)
    return States(
        np.array([r[0] for r in rows], dtype=np.uint64),
        np.full(len(rows), org, dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([codes[r[2]] for r in rows], dtype=np.uint8),
        np.array([r[3] for r in rows], dtype=bool),
        np.array([r[4] for r in rows], dtype=np.uint64),
    )


# Unit 10: 12 active adult episodes; unit 11: 6.
BASE = [(i, 10, "adult", True, 1000 + i) for i in range(12)] + [
    (100 + i, 11, "adult", True, 2000 + i) for i in range(6)
]


def test_two_new_clients_in_one_unit_are_held_back_with_the_organisation() -> None:
    """Hand-computed: unit 11 gains 2 episodes. Its change (2) and the organisation's (2)
    are 1 … k−1, so both are held back (active side and the sum of both sides); unit 10
    did not change (0) and stays; nothing on the inactive side changed."""
    new = states([*BASE, (200, 11, "adult", True, 1), (201, 11, "adult", True, 2)])
    grid = change_grid(changed_episodes(states(BASE), new), TREE)
    assert grid.loc[("unit:11", "all"), "values"] == 2
    assert grid.loc[("unit:11", "adult"), "active"] == 2
    assert grid.loc[("organisation:1", "all"), "values"] == 2
    assert grid.loc[("unit:10", "all")].sum() == 0
    assert grid.loc[("unit:11", "youth")].sum() == 0
    held = held_between(states(BASE), new, TREE, k=K)
    assert held == {
        ("unit:11", "all"): {"active", "values"},
        ("unit:11", "adult"): {"active", "values"},
        ("organisation:1", "all"): {"active", "values"},
        ("organisation:1", "adult"): {"active", "values"},
    }


def test_k_new_clients_are_not_held_back() -> None:
    new = states([*BASE, *[(200 + i, 11, "adult", True, i) for i in range(K)]])
    assert held_between(states(BASE), new, TREE, k=K) == {}


def test_an_unchanged_publication_holds_nothing_back() -> None:
    assert held_between(states(BASE), states(BASE), TREE, k=K) == {}


def test_moving_to_inactive_changes_the_sides_but_not_their_sum() -> None:
    """Two of unit 10's episodes became inactive (no new session: same state). Active −2,
    inactive +2: both sides held back, their sum (values) unchanged."""
    moved = [(i, 10, "adult", i >= 2, 1000 + i) for i in range(12)] + BASE[12:]
    held = held_between(states(BASE), states(moved), TREE, k=K)
    assert held[("unit:10", "all")] == {"active", "inactive"}
    assert held[("organisation:1", "all")] == {"active", "inactive"}
    assert ("unit:11", "all") not in held


def test_two_deleted_episodes_are_held_back() -> None:
    """Retention deleted two of unit 11's (inactive) episodes: the inactive side and the
    sum changed by 2 — old minus new would be their figures."""
    old = [*BASE, (300, 11, "adult", False, 7), (301, 11, "adult", False, 8)]
    held = held_between(states(old), states(BASE), TREE, k=K)
    assert held[("unit:11", "all")] == {"inactive", "values"}


def test_one_changed_score_is_held_back() -> None:
    """One episode of unit 10 had another session (its state changed): 1 client."""
    changed = [(0, 10, "adult", True, 9999), *BASE[1:]]
    held = held_between(states(BASE), states(changed), TREE, k=K)
    assert held[("unit:10", "all")] == {"active", "values"}


def test_a_small_change_hidden_in_one_unit_is_complemented_in_the_change_grid() -> None:
    """Three units; unit 11 gains 2 (hidden), unit 12 gains 6, the organisation 8. Without
    a complement, organisation's change − unit 12's = unit 11's: one more is held back."""
    tree = Tree(("organisation", 1), {10: None, 11: None, 12: None})
    new = states(
        [
            *BASE,
            (200, 11, "adult", True, 1),
            (201, 11, "adult", True, 2),
            *[(300 + i, 12, "adult", True, i) for i in range(6)],
        ]
    )
    held = held_between(states(BASE), new, tree, k=K)
    assert "values" in held[("unit:11", "all")]
    # the smallest visible non-zero sibling: unit 12 (6) rather than the organisation (8)
    assert "values" in held[("unit:12", "all")]
    assert ("organisation:1", "all") not in held


def test_a_held_unit_is_hidden_in_the_new_grid_with_a_complement() -> None:
    """The new date's own grid: unit 11 held back (8 episodes, not small by itself), so
    unit 10 (12) is hidden as its complement and the organisation (20) stays."""

    def payload(n: int) -> dict[str, Any]:
        side = {"episodes": n, "sessions": 2 * n, "n_ors_start": n, "ors_start": 15.0}
        return {"table": {"active": side}, "n_therapists": 3, "n_therapists_direct": 0}

    parts = {
        ("organisation", 1, "all"): payload(20),
        ("unit", 10, "all"): payload(12),
        ("unit", 11, "all"): payload(8),
    }
    masks = family_masks(
        parts, TREE, k=K, held={("unit:11", "all"): {"values"}}, held_reason=REASON_CHANGED
    )
    assert masks[("unit", 11, "all")]["table"]["active"]["episodes"] == REASON_CHANGED
    assert masks[("unit", 11, "all")]["table"]["inactive"]["episodes"] == REASON_CHANGED
    assert masks[("unit", 10, "all")]["table"]["active"]["episodes"]  # a complement
    assert not masks[("organisation", 1, "all")]["table"]["active"]
    assert masks[("unit", 11, "all")]["hidden_scope"] is False


def test_others_changed_leaves_out_the_viewers_organisation() -> None:
    old = states([(1, 10, "adult", True, 1)], org=1)
    new_rows = [(1, 10, "adult", True, 1), (2, 10, "adult", True, 2), (3, 10, "adult", True, 3)]
    new = states(new_rows, org=1)
    new.org[:] = [1, 2, 2]  # episode 2 and 3 belong to organisation 2
    assert others_changed(old, new, 1)["values"] == 2
    assert others_changed(old, new, 2)["values"] == 0


def test_episode_states_follow_the_reference_date() -> None:
    """A session after the date does not change the state at the date; one before does;
    an episode without a session for more than 90 days is inactive."""

    def frame(rows: list[tuple[int, str, float]]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "org_id": 1,
                "unit_id": 10,
                "therapist_id": 7,
                "episode_id": [r[0] for r in rows],
                "age_group": "adult",
                "closed_on": pd.NaT,
                "session_date": pd.to_datetime([r[1] for r in rows]),
                "session_number": [
                    sum(1 for q in rows[: i + 1] if q[0] == r[0]) for i, r in enumerate(rows)
                ],
                "ors": [r[2] for r in rows],
                "srs": np.nan,
            }
        )

    at = dt.date(2026, 3, 31)
    key = b"k" * 32
    base = [(1, "2026-03-01", 12.0), (2, "2025-11-01", 20.0)]
    s0 = episode_states(frame(base), as_of=at, key=key, settings={1: StatsSettings()})
    later = episode_states(
        frame([*base, (1, "2026-04-02", 30.0)]), as_of=at, key=key, settings={1: StatsSettings()}
    )
    earlier = episode_states(
        frame([*base, (1, "2026-03-20", 30.0)]), as_of=at, key=key, settings={1: StatsSettings()}
    )
    assert changed_episodes(s0, later).empty
    assert len(changed_episodes(s0, earlier)) == 1
    by_digest = dict(zip(s0.digest.tolist(), s0.active.tolist(), strict=True))
    assert sorted(by_digest.values()) == [False, True]  # episode 2: 150 days without a session


# --- Through the pages and the API, with the clock moved --------------------------------


def _episode(personas: OrgPersonas, code: str, therapist: Any, unit: Any, *dates: dt.date) -> None:
    ep = make_episode(personas, code=code, therapist=therapist, unit=unit, started_on=dates[0])
    for i, day in enumerate(dates):
        record(ep, day, ors=f"{12 + 4 * i}.0", srs="36.0")


def _api(client: Any, user: Any, kind: str, scope_id: int, **params: Any) -> Any:
    client.force_login(user)
    return client.get(
        reverse("api_stats_scope", kwargs={"scope": kind, "scope_id": scope_id}), params
    )


def _at(day: dt.date) -> Any:
    return time_machine.travel(
        dt.datetime(day.year, day.month, day.day, 10, tzinfo=dt.UTC), tick=False
    )


@pytest.mark.django_db
def test_a_month_end_is_frozen_and_the_next_one_hides_a_small_change(
    client: Any, org1: OrgPersonas
) -> None:
    a_team = [org1.therapist_a, org1.therapist_b, add_therapist(org1, "pub_a3")]
    b_team = [add_therapist(org1, f"pub_b{i}", unit=org1.other_unit) for i in range(3)]
    unit_a, unit_b = ("unit", org1.unit.pk), ("unit", org1.other_unit.pk)
    with _at(dt.date(2026, 3, 5)):
        for i in range(12):
            _episode(
                org1, f"PA-{i}", a_team[i % 3], org1.unit, dt.date(2026, 2, 2), dt.date(2026, 2, 16)
            )
        for i in range(6):
            _episode(
                org1,
                f"PB-{i}",
                b_team[i % 3],
                org1.other_unit,
                dt.date(2026, 2, 3),
                dt.date(2026, 2, 17),
            )
        feb = _api(client, org1.analyst, *unit_b).json()
        assert feb["as_of"] == "2026-02-28" and feb["active"]["episodes"] == 6
        # Entered late for February, after the nightly job: February stays as published.
        _episode(org1, "PB-late", b_team[0], org1.other_unit, dt.date(2026, 2, 20))
        stats_recompute_all()
        assert _api(client, org1.analyst, *unit_b).json()["active"]["episodes"] == 6
        assert _api(client, org1.analyst, "organisation", org1.org.pk).json()["active"][
            "episodes"
        ] == (18)
    with _at(dt.date(2026, 4, 6)):
        # March: two new clients in unit B; with the late one, B has 3 more episodes than
        # at the end of February — 9 − 6 would be their figures. Held back.
        for i in range(2):
            _episode(org1, f"PB-new-{i}", b_team[i], org1.other_unit, dt.date(2026, 3, 10))
        mar = _api(client, org1.analyst, *unit_b).json()
        assert mar["as_of"] == "2026-03-31"
        assert mar["active"]["episodes"] is None and mar["active"]["ors_start"] is None
        assert mar["suppressed"]["active"]["episodes"] == REASON_CHANGED
        org = _api(client, org1.analyst, "organisation", org1.org.pk).json()
        assert org["active"]["episodes"] is None  # 21 − 18 = B's 3 as well
        # Unit A did not change: shown (B and the organisation are both hidden, so A is
        # not needed as a complement).
        assert _api(client, org1.leader, *unit_a).json()["active"]["episodes"] == 12
        # The page explains it and offers no "until today" for anonymised figures.
        client.force_login(org1.leader)
        page = client.get(
            reverse("stats_unit", kwargs={"unit_id": org1.unit.pk}),
            {"period": "all"},
        ).content.decode()
        assert gettext("Until today") not in page
        assert "31. marts 2026" in page
        assert "offentliggøres pr. afsluttet måned" in page  # Danish (publications.json)


@pytest.mark.django_db
def test_anonymised_figures_are_not_offered_for_today(client: Any, org1: OrgPersonas) -> None:
    today = dt.date.today().isoformat()
    r = _api(client, org1.leader, "unit", org1.unit.pk, as_of=today)
    assert r.status_code == 400 and "as_of" in r.json()
    own = _api(client, org1.therapist_a, "therapist", org1.therapist_a.pk, as_of=today)
    assert own.status_code == 200 and own.json()["as_of"] == today
    client.force_login(org1.therapist_a)
    assert gettext("Until today") in client.get(reverse("stats_mine")).content.decode()


@pytest.mark.django_db
def test_the_nightly_job_publishes_the_closed_month_once(org1: OrgPersonas) -> None:
    from stats.models import Publication
    from stats.services import stats_publish_closed_month

    with _at(dt.date(2026, 3, 1)):
        _episode(org1, "NJ-1", org1.therapist_a, org1.unit, dt.date(2026, 2, 10))
        created = stats_publish_closed_month()
        assert created == 2  # the organisation and the platform
        pub = Publication.objects.get(organisation_id=org1.org.pk, period_key="2026-02-28")
        assert pub.episodes == 1
        assert stats_publish_closed_month() == 0  # already published: nothing more
