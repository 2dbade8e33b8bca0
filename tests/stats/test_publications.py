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
    change_tokens,
    complement_parts,
    decode,
    encode,
    episode_states,
    held_between,
    others_changed,
)
from stats.services import stats_recompute_all
from stats.siblings import Tree, family_masks
from tests.conftest import OrgPersonas, add_therapist, make_episode, record

K = 5
TREE = Tree(("organisation", 1), {10: None, 11: None})  # two top-level units
FEB = 2026 * 12 + 1  # the older publication's month (months since year 0)
TWO_ORS = 0b1111  # ORS and SRS at start, ORS and SRS change (bits of stats.publications)


def states(rows: list[dict[str, Any]], month: int = FEB + 1) -> States:
    """Hand-made publication states: per episode a dict with ``id``, ``unit``, ``active``
    and optionally ``therapist``, ``age``, ``org``, ``bits``, ``ors`` (the ORS change
    value hash), ``sessions`` (session-number bitmask), ``first``/``last`` month."""
    codes = {"adult": 1, "youth": 2, "child": 3}
    rows = sorted(rows, key=lambda r: r["id"])

    def col(name: str, default: Any, dtype: Any) -> np.ndarray:
        return np.array([r.get(name, default) for r in rows], dtype=dtype)

    ident = col("id", 0, np.uint64)
    ors = col("ors", 0, np.uint64)
    return States(
        {
            "digest": ident,
            "org": col("org", 1, np.int64),
            "unit": col("unit", 10, np.int64),
            "age": np.array([codes[r.get("age", "adult")] for r in rows], dtype=np.uint8),
            "active": col("active", True, np.uint8),
            "therapist": col("therapist", 1, np.uint64),
            "state": ident * np.uint64(1000) + ors,
            "bits": col("bits", TWO_ORS, np.uint16),
            "h_episodes": col("sessions", 0b11, np.uint64),
            "h_ors_start": col("start", 12, np.uint64),
            "h_srs_start": np.zeros(len(rows), np.uint64),
            "h_ors_change": ors,
            "h_srs_change": np.zeros(len(rows), np.uint64),
            "h_rel": np.zeros(len(rows), np.uint64),
            "ors_bits": col("sessions", 0b11, np.uint64),
            "srs_bits": col("sessions", 0b11, np.uint64),
            "first_month": col("first", FEB, np.int32),
            "last_month": col("last", FEB, np.int32),
            "n_duplicate_dates": col("dup", 0, np.uint16),
            "n_srs_without_ors": np.zeros(len(rows), np.uint16),
            **month_hashes(rows, month),
            **point_hashes(rows),
        },
        month,
    )


def month_hashes(rows: list[dict[str, Any]], month: int) -> dict[str, np.ndarray]:
    """Per month back from the publication's, a hash of the episode's sessions there:
    its months are first … last; the hash follows its id and ORS value."""
    out = {f"m{i}": np.zeros(len(rows), np.uint32) for i in range(24)}
    for j, r in enumerate(rows):
        for m in range(r.get("first", FEB), r.get("last", FEB) + 1):
            if 0 <= month - m < 24:
                out[f"m{month - m}"][j] = 1 + r["id"] * 7 + r.get("ors", 0)
    return out


def point_hashes(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per session number, a hash of the ORS (SRS) there: the second ORS follows the
    episode's ``ors`` value (its change)."""
    out = {f"{p}{n}": np.zeros(len(rows), np.uint32) for p in "os" for n in range(1, 25)}
    for j, r in enumerate(rows):
        for n in range(1, 25):
            if r.get("sessions", 0b11) >> (n - 1) & 1:
                out[f"o{n}"][j] = 1 + r["id"] * 13 + n + (r.get("ors", 0) if n == 2 else 0)
                out[f"s{n}"][j] = 1 + r["id"] * 17 + n
    return out


def episode(i: int, unit: int, **kw: Any) -> dict[str, Any]:
    return {"id": i, "unit": unit, "therapist": 1 + i % 3, **kw}


# Unit 10: 12 active adult episodes; unit 11: 6; three therapists each.
BASE = [episode(i, 10) for i in range(12)] + [episode(100 + i, 11) for i in range(6)]
MARCH = {"first": FEB + 1, "last": FEB + 1}


def held(old: list[dict[str, Any]], new: list[dict[str, Any]], **kw: Any) -> Any:
    return held_between(states(old, FEB), states(new), kw.pop("tree", TREE), k=K, **kw)


def test_two_new_clients_in_one_unit_are_held_back_with_the_organisation() -> None:
    """Unit 11 gains 2 episodes (two sessions with ORS each): every figure they enter
    changed by 2 — in unit 11 and in the organisation; unit 10 did not change."""
    out = held(BASE, [*BASE, episode(200, 11, **MARCH), episode(201, 11, **MARCH)])
    for node in ("unit:11", "organisation:1"):
        for age in ("all", "adult"):
            tokens = out[(node, age)]
            assert {"active:episodes", "values:episodes", "active:ors_change"} <= tokens
            assert {"traj:ors:1", "traj:ors:2", "spread"} <= tokens
            assert not any(t.startswith("inactive:") for t in tokens)
    assert ("unit:10", "all") not in out


def test_k_new_clients_of_three_therapists_are_not_held_back() -> None:
    """9 new clients, 3 per therapist: 9 ≥ k, and 9 − 3 (one therapist's) ≥ k."""
    new = [*BASE, *[episode(200 + i, 11, **MARCH) for i in range(9)]]
    out = held(BASE, new)
    # ... only the per-therapist spread: each therapist's own row changed by 3 < k.
    assert out and all(tokens == {"spread"} for tokens in out.values())


def test_one_therapists_new_clients_are_held_back_from_the_others() -> None:
    """7 new clients, 5 of them one therapist's: 7 ≥ k, but that therapist could take
    their own 5 away and see the other 2."""
    new = [*BASE, *[episode(200 + i, 11, therapist=9, **MARCH) for i in range(5)]]
    new += [episode(210, 11, therapist=1, **MARCH), episode(211, 11, therapist=2, **MARCH)]
    assert "values:episodes" in held(BASE, new)[("unit:11", "all")]


def test_one_new_second_ors_among_many_new_clients_is_held_back() -> None:
    """The review's attack: 5 new clients from three therapists; 4 have an intake ORS
    only, 1 has two. The episodes changed by 5, the ORS change by 1: n 6 → 7 and both
    means shown would give that client's change. Counted per figure: held back."""
    new = [*BASE]
    new += [episode(200 + i, 11, bits=0b1, sessions=0b1, **MARCH) for i in range(4)]
    new.append(episode(210, 11, **MARCH))
    tokens = held(BASE, new)[("unit:11", "all")]
    assert {"active:ors_change", "values:ors_change", "active:n_classified"} <= tokens


def test_moving_to_inactive_changes_the_sides_but_not_their_sum() -> None:
    """Two of unit 10's episodes became inactive (no new session: same state)."""
    moved = [{**e, "active": e["id"] >= 2} if e["unit"] == 10 else e for e in BASE]
    tokens = held(BASE, moved)[("unit:10", "all")]
    assert {"active:episodes", "inactive:episodes"} <= tokens
    assert not any(t.startswith("values:") for t in tokens)


def test_two_deleted_episodes_are_held_back() -> None:
    """Retention deleted two of unit 11's (inactive) episodes."""
    old = [*BASE, episode(300, 11, active=False), episode(301, 11, active=False)]
    tokens = held(old, BASE)[("unit:11", "all")]
    assert {"inactive:episodes", "values:episodes"} <= tokens
    assert "active:episodes" not in tokens


def test_one_corrected_score_is_held_back_where_it_counts() -> None:
    """One episode's ORS change was corrected (same sessions): the ORS-change family and
    its February month changed; the episode count did not."""
    changed = [{**BASE[0], "ors": 7}, *BASE[1:]]
    tokens = held(BASE, changed)[("unit:10", "all")]
    assert {"values:ors_change", "active:ors_change", "impl:2026-02"} <= tokens
    assert "values:episodes" not in tokens
    assert "traj:ors:2" in tokens and "traj:ors:1" not in tokens  # its second score moved


def test_a_session_count_of_data_quality_counts_its_episodes_only() -> None:
    """Nine new clean clients and one old episode with a second session on the same date:
    the duplicate-date count changed by one episode's sessions — held back; the nine do
    not dilute it (they add none)."""
    new = [*[{**e, "dup": 1} if e["id"] == 3 else e for e in BASE]]
    new += [episode(200 + i, 10, **MARCH) for i in range(9)]
    tokens = held(BASE, new)[("unit:10", "all")]
    assert "quality:duplicate_same_date_sessions" in tokens
    assert "quality:srs_without_ors" not in tokens


def test_a_later_session_leaves_the_earlier_months_alone() -> None:
    """Every episode of unit 10 had another session in March (their state changed); their
    February sessions did not: February's implementation row is not held back."""
    later = [
        {**e, "ors": 3, "sessions": 0b111, "last": FEB + 1} if e["unit"] == 10 else e for e in BASE
    ]
    # the month hashes follow the ORS value: keep February's as it was
    old, new = states(BASE, FEB), states(later)
    new.columns["m1"][:] = states(BASE).columns["m1"]
    out = held_between(old, new, TREE, k=K)
    assert not any("impl:2026-02" in tokens for tokens in out.values())
    # Nor the trajectory's first two points (their scores stand); the third point gained
    # 12 episodes of three therapists (4 each: 12 − 4 ≥ k): shown.
    assert not any(t.startswith("traj:") for tokens in out.values() for t in tokens)


def test_a_small_change_hidden_in_one_unit_is_complemented_in_the_change_grid() -> None:
    """Three units; unit 11 gains 2 (hidden), unit 12 gains 9 (3 per therapist), the
    organisation 11. Without a complement, organisation − unit 12 = unit 11."""
    tree = Tree(("organisation", 1), {10: None, 11: None, 12: None})
    new = [*BASE, episode(200, 11, **MARCH), episode(201, 11, **MARCH)]
    new += [episode(300 + i, 12, **MARCH) for i in range(9)]
    out = held(BASE, new, tree=tree)
    assert "values:episodes" in out[("unit:11", "all")]
    # the smallest visible non-zero sibling: unit 12 (9) rather than the organisation (11)
    assert "values:episodes" in out[("unit:12", "all")]
    assert "values:episodes" not in out.get(("organisation:1", "all"), set())


def test_a_moved_unit_counts_where_it_was() -> None:
    """A unit with 2 episodes moved from under unit 10 to under unit 11, no data change:
    with each date's own tree, both parents changed by 2."""
    old_tree = Tree(("organisation", 1), {10: None, 11: None, 12: 10})
    new_tree = Tree(("organisation", 1), {10: None, 11: None, 12: 11})
    rows = [*BASE, episode(400, 12), episode(401, 12)]
    out = held(rows, rows, tree=new_tree, old_tree=old_tree)
    assert "values:episodes" in out[("unit:10", "all")]
    assert "values:episodes" in out[("unit:11", "all")]


def test_held_back_figures_are_hidden_in_the_new_grid_with_a_complement() -> None:
    """The new date's own grid: unit 11's episodes held back (8, not small by itself),
    so unit 10 (12) is hidden as its complement and the organisation (20) stays."""

    def payload(n: int) -> dict[str, Any]:
        side = {"episodes": n, "sessions": 2 * n, "n_ors_start": n, "ors_start": 15.0}
        return {"table": {"active": side}, "n_therapists": 3, "n_therapists_direct": 0}

    parts = {
        ("organisation", 1, "all"): payload(20),
        ("unit", 10, "all"): payload(12),
        ("unit", 11, "all"): payload(8),
    }
    masks = family_masks(
        parts,
        TREE,
        k=K,
        held={("unit:11", "all"): {"values:episodes", "spread"}},
        held_reason=REASON_CHANGED,
    )
    assert masks[("unit", 11, "all")]["table"]["active"]["episodes"] == REASON_CHANGED
    assert masks[("unit", 11, "all")]["table"]["inactive"]["episodes"] == REASON_CHANGED
    assert masks[("unit", 11, "all")]["spread_hidden"] is True
    assert masks[("unit", 10, "all")]["table"]["active"]["episodes"]  # a complement
    assert not masks[("organisation", 1, "all")]["table"]["active"]
    assert masks[("unit", 11, "all")]["hidden_scope"] is False


def test_others_changed_leaves_out_the_viewers_organisation() -> None:
    old = [episode(1, 10, org=1)]
    new = [*old, episode(2, 10, org=2, **MARCH), episode(3, 10, org=2, **MARCH)]
    assert "values:episodes" in others_changed(states(old, FEB), states(new), 1, k=K)
    assert others_changed(states(old, FEB), states(new), 2, k=K) == set()


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
    cfg = {1: StatsSettings()}
    s0 = episode_states(frame(base), as_of=at, key=key, settings=cfg)
    later = episode_states(frame([*base, (1, "2026-04-02", 30.0)]), as_of=at, key=key, settings=cfg)
    earlier = episode_states(
        frame([*base, (1, "2026-03-20", 30.0)]), as_of=at, key=key, settings=cfg
    )
    assert change_tokens(s0, later).place.empty  # nothing changed at the date
    changes = change_tokens(s0, earlier)
    sure = {t for t, hit in zip(changes.tokens, changes.sure.any(axis=0), strict=True) if hit}
    assert {"values:ors_change", "traj:ors:2", "values:episodes"} <= sure
    assert "values:ors_start" not in sure  # the intake did not change
    assert sorted(s0.columns["active"].tolist()) == [0, 1]  # episode 2: 150 days without
    assert decode(encode(s0)).columns["state"].tolist() == s0.columns["state"].tolist()


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
        assert mar["suppressed_codes"]["active"]["episodes"] == "changed_since_publication"
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


def test_held_parts_of_a_row_are_complemented_like_rule_2() -> None:
    """Hand-worked: within a row the classes add up to the classified."""
    changes = pd.Series(
        {
            "active:no_reliable_change": 1.0,  # a small change (held)
            "active:reliable_improvement": 9.0,
            "active:reliable_deterioration": 0.0,
            "etr:dropout": 1.0,
            "etr:reaching_target": 6.0,
        }
    )
    out = complement_parts({"active:no_reliable_change"}, changes, K)
    # + improvement (the smallest changed class): 1 + 9 ≥ k; deterioration unchanged
    assert out == {"active:no_reliable_change", "active:reliable_improvement"}
    alone = pd.Series({"active:reliable_deterioration": 1.0})
    out = complement_parts({"active:reliable_deterioration"}, alone, K)
    assert "active:n_classified" in out  # no changed class to hide with it: the total
    assert complement_parts({"active:n_classified"}, changes, K) >= {
        f"active:{c}" for c in ("reliable_improvement", "reliable_deterioration")
    }
    assert complement_parts({"etr:dropout"}, changes, K) == {"etr:dropout", "etr:reaching_target"}
