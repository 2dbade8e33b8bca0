"""Anonymisation across selections (docs/datapolicy.md, "Anonymisation", rules 7–8).

Each test builds data where the forbidden subtraction would work on independently
suppressed selections, then plays the attacker on what the anonymised API returns: for
every sum the attacker knows (all ages = adult + youth + child; organisation = its
top-level units; parent unit = its child units + its own episodes) no hidden non-zero
figure may be the only unknown. Counts are checked, and the sums n × mean that the API
reveals (sessions, treatment months × clients).

Danish is the default language of requests, so pages are checked in Danish.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.urls import reverse
from django.utils.translation import gettext

from datapolicy.models import Unit, User
from stats.anonymise import REASON_COMPLEMENTARY
from stats.selectors import _figures_data, period_as_of
from stats.siblings import Tree, family_masks
from tests.conftest import OrgPersonas, add_therapist, make_episode, record

# Anonymised figures are published at closed month-ends (stats.publications): the data
# lies before the last one, which the pages and the API show by default.
T = period_as_of("month")[1]
TOO_FEW = (
    "Too few therapists to show anonymised figures: with fewer than 3 therapists in this "
    "selection, one therapist's figures could be worked out."
)
AGES = ("all", "adult", "youth", "child")
SIDES = ("active", "inactive")
# Additive quantities the API shows (directly, or as n × mean with n = clients).
COUNTS = (
    "episodes",
    "sessions",
    "n_classified",
    "reliable_improvement",
    "reliable_deterioration",
    "no_reliable_change",
    "clinically_significant",
)


def days(n: int) -> dt.date:
    return T - dt.timedelta(days=n)


@pytest.fixture(autouse=True)
def _no_debounce_left_over() -> Any:
    """The recompute's debounce lock lives in the process-wide cache: never inherit it."""
    from django.core.cache import cache

    from stats.tasks import DEBOUNCE_KEY

    cache.delete(DEBOUNCE_KEY)
    yield
    cache.delete(DEBOUNCE_KEY)


def add_episodes(
    personas: OrgPersonas,
    prefix: str,
    n: int,
    therapists: list[User],
    *,
    unit: Unit | None = None,
    age: str = "adult",
) -> None:
    """n active episodes with two ORS/SRS sessions each, spread over the therapists."""
    for i in range(n):
        ep = make_episode(
            personas,
            code=f"{prefix}-{i}",
            therapist=therapists[i % len(therapists)],
            unit=unit,
            age_group=age,
            started_on=days(70),
        )
        first = 10 + i % 7
        record(ep, days(50 - i % 5), ors=f"{first}.0", srs="34.0")
        record(ep, days(20 - i % 5), ors=f"{first + 3 + i % 6}.0", srs=f"{35 + i % 3}.0")


def api(client: Any, user: User, kind: str, scope_id: int, age: str = "all") -> dict[str, Any]:
    client.force_login(user)
    r = client.get(
        reverse("api_stats_scope", kwargs={"scope": kind, "scope_id": scope_id}),
        {"age_group": age},
    )
    assert r.status_code == 200, r.content
    body: dict[str, Any] = r.json()
    return body


def quantities(body: dict[str, Any]) -> dict[tuple[str, str], float | None]:
    """(side, quantity) -> value the attacker reads (None = hidden)."""
    out: dict[tuple[str, str], float | None] = {}
    for side in SIDES:
        row = body[side]
        for c in COUNTS:
            out[(side, c)] = row[c]
        months, n = row["treatment_months"], row["episodes"]
        out[(side, "months_sum")] = None if months is None or n is None else months * n
    return out


def leaks(
    seen: dict[Any, dict[tuple[str, str], float | None]],
    relations: list[tuple[Any, list[Any]]],
    secret: dict[Any, dict[tuple[str, str], float]] | None = None,
) -> list[str]:
    """Every relation total = Σ parts in which a hidden (or unpublished ``secret``) non-zero
    figure is the only unknown, i.e. could be recovered by subtraction."""
    secret = secret or {}
    found = []
    for total, parts in relations:
        for q in seen[total]:
            members = [total, *parts]
            # unpublished members (a parent's own episodes) are unknown to the attacker
            values = {m: seen.get(m, {}).get(q) for m in members}
            unknown = [m for m, v in values.items() if v is None]
            if len(unknown) != 1:
                continue
            (m,) = unknown
            known = sum((v or 0) for p, v in values.items() if p in parts and v is not None)
            recovered = (values[total] - known) if m != total else known
            if abs(recovered) > 1e-9:
                true = secret.get(m, {}).get(q)
                found.append(f"{m} {q} = {recovered} (true {true})")
    return found


def read_all(
    client: Any, user: User, scopes: list[tuple[str, int]]
) -> dict[Any, dict[tuple[str, str], float | None]]:
    return {
        (kind, sid, age): quantities(api(client, user, kind, sid, age))
        for kind, sid in scopes
        for age in AGES
    }


def age_relations(scopes: list[tuple[str, int]]) -> list[tuple[Any, list[Any]]]:
    return [
        ((kind, sid, "all"), [(kind, sid, a) for a in ("adult", "youth", "child")])
        for kind, sid in scopes
    ]


def unit_relations(total: tuple[str, int], parts: list[tuple[str, int]]) -> list[Any]:
    return [((*total, age), [(*p, age) for p in parts]) for age in AGES]


@pytest.fixture
def team(org1: OrgPersonas) -> list[User]:
    """Three therapists of org 1's unit (A, B and a new C)."""
    return [org1.therapist_a, org1.therapist_b, add_therapist(org1, "therapist_c")]


def test_youth_cannot_be_recovered_as_all_minus_adults_minus_children(
    client: Any, org1: OrgPersonas, team: list[User]
) -> None:
    add_episodes(org1, "AD", 12, team, age="adult")
    add_episodes(org1, "CH", 6, team, age="child")
    add_episodes(org1, "YO", 3, team, age="youth")  # a small cell: 3 < k = 5
    scopes = [("unit", org1.unit.pk), ("organisation", org1.org.pk)]
    seen = read_all(client, org1.analyst, scopes)
    unit = ("unit", org1.unit.pk)
    # The attack would work on independent suppression: 21 − 12 − 6 = 3 (each ≥ k shown).
    assert seen[(*unit, "youth")][("active", "episodes")] is None
    assert seen[(*unit, "all")][("active", "episodes")] == 21
    assert seen[(*unit, "adult")][("active", "episodes")] == 12
    # ... but the next-smallest sibling (children, 6) is hidden in every view of it.
    assert seen[(*unit, "child")][("active", "episodes")] is None
    relations = age_relations(scopes) + unit_relations(
        ("organisation", org1.org.pk), [unit, ("unit", org1.other_unit.pk)]
    )
    seen.update(read_all(client, org1.analyst, [("unit", org1.other_unit.pk)]))
    assert leaks(seen, relations) == []
    # Hidden as a complement; the API, the page and the export show it as every hidden
    # cell (review round 10: telling it from the small youth cell gave counts back).
    body = api(client, org1.analyst, *unit, age="child")
    assert body["suppressed_codes"]["active"]["episodes"] == "hidden"
    youth = api(client, org1.analyst, *unit, age="youth")
    assert youth["suppressed"]["active"]["episodes"] == body["suppressed"]["active"]["episodes"]
    client.force_login(org1.analyst)
    url = reverse(
        "stats_export",
        kwargs={"kind": "unit", "scope_id": org1.unit.pk, "table": "statistics", "fmt": "csv"},
    )
    rows = client.get(url, {"age": "child"}).content.decode("utf-8-sig").splitlines()
    assert rows[1].startswith("Klienter;skjult")
    page = client.get(reverse("stats_unit", kwargs={"unit_id": org1.unit.pk}), {"age": "child"})
    assert "hidden-cell" in page.content.decode()


def test_organisation_minus_one_unit_does_not_give_the_other(
    client: Any, org1: OrgPersonas, team: list[User]
) -> None:
    other = [
        add_therapist(org1, f"rus_{i}", unit=org1.other_unit) for i in range(3)
    ]  # unit B has three therapists of its own
    add_episodes(org1, "UA", 12, team)
    add_episodes(org1, "UB", 3, other, unit=org1.other_unit)  # small: 3 < 5
    a, b = ("unit", org1.unit.pk), ("unit", org1.other_unit.pk)
    org = ("organisation", org1.org.pk)
    seen = read_all(client, org1.analyst, [a, b, org])
    assert seen[(*b, "all")][("active", "episodes")] is None
    assert seen[(*org, "all")][("active", "episodes")] == 15
    # org − A = B was the attack: A (the smaller sibling of B) is hidden as a complement
    assert seen[(*a, "all")][("active", "episodes")] is None
    assert leaks(seen, unit_relations(org, [a, b]) + age_relations([a, b, org])) == []
    # The unit leader of A sees the same (the same grid for everybody).
    assert api(client, org1.leader, *a)["active"]["episodes"] is None


def test_a_parent_units_own_episodes_count_as_a_sibling(
    client: Any, org1: OrgPersonas, team: list[User]
) -> None:
    parent = org1.unit
    c1 = Unit.objects.create(organisation=org1.org, code="c1", name="Team 1", parent=parent)
    c2 = Unit.objects.create(organisation=org1.org, code="c2", name="Team 2", parent=parent)
    t1 = [add_therapist(org1, f"t1_{i}", unit=c1) for i in range(3)]
    t2 = [add_therapist(org1, f"t2_{i}", unit=c2) for i in range(3)]
    add_episodes(org1, "PD", 3, team)  # attached to the parent itself: a small cell
    add_episodes(org1, "C1", 10, t1, unit=c1)
    add_episodes(org1, "C2", 8, t2, unit=c2)
    p, u1, u2 = ("unit", parent.pk), ("unit", c1.pk), ("unit", c2.pk)
    org = ("organisation", org1.org.pk)
    b = ("unit", org1.other_unit.pk)
    seen = read_all(client, org1.analyst, [p, u1, u2, org, b])
    # parent − team 1 − team 2 = the parent's own 3 episodes: one of the three is hidden
    shown = [seen[(*s, "all")][("active", "episodes")] for s in (p, u1, u2)]
    assert shown.count(None) >= 1, shown
    assert seen[(*u2, "all")][("active", "episodes")] is None  # the smallest: 8
    direct = ("direct", parent.pk)
    relations = [
        ((*p, age), [(*u1, age), (*u2, age), (*direct, age)]) for age in AGES
    ] + unit_relations(org, [p, b])
    secret = {(*direct, age): {("active", "episodes"): 3.0} for age in AGES}
    assert leaks(seen, relations, secret) == []
    # Check the check: had team 2 been shown, the parent's own 3 episodes would follow.
    assert leaks(
        {**seen, (*u2, "all"): {("active", "episodes"): 8.0}},
        [((*p, "all"), [(*u1, "all"), (*u2, "all"), (*direct, "all")])],
        secret,
    ) == [f"{(*direct, 'all')} ('active', 'episodes') = 3.0 (true 3.0)"]


def test_a_unit_of_two_therapists_is_hidden_but_own_figures_are_shown(
    client: Any, org1: OrgPersonas, django_capture_on_commit_callbacks: Any
) -> None:
    two = [org1.therapist_a, org1.therapist_b]
    add_episodes(org1, "TW", 10, two)  # 5 each: every cell >= k, only 2 therapists
    unit = ("unit", org1.unit.pk)
    for viewer in (org1.leader, org1.analyst, org1.therapist_a):
        body = api(client, viewer, *unit)
        assert body["hidden_reason"] and body["hidden_code"] == "few_therapists"
        assert all(v is None for side in SIDES for v in body[side].values())
        assert body["trajectory"] == []
        assert body["suppressed_codes"]["active"]["ors_change"] == "few_therapists"
    # The organisation has the same two therapists: hidden too.
    assert api(client, org1.analyst, "organisation", org1.org.pk)["hidden_reason"]
    client.force_login(org1.leader)
    page = client.get(reverse("stats_unit", kwargs={"unit_id": org1.unit.pk})).content.decode()
    assert gettext(TOO_FEW) in page  # Danish (locale/da/siblings.json)
    csv_text = client.get(
        reverse(
            "stats_export",
            kwargs={"kind": "unit", "scope_id": org1.unit.pk, "table": "statistics", "fmt": "csv"},
        )
    ).content.decode("utf-8-sig")
    assert csv_text.splitlines()[1].startswith("Klienter;skjult")
    assert ";5;" not in csv_text and ";10;" not in csv_text
    # Therapist A's own figures (identified) are unchanged: 5 episodes.
    own = api(client, org1.therapist_a, "therapist", org1.therapist_a.pk)
    assert own["anonymised"] is False and own["active"]["episodes"] == 5
    assert own["hidden_reason"] is None
    # A third therapist's episode entered late for the same month: the published
    # month-end does not change (stats.publications; the next month-end counts it).
    with django_capture_on_commit_callbacks(execute=True):
        add_episodes(org1, "TC", 1, [add_therapist(org1, "therapist_c")])
    assert api(client, org1.leader, *unit)["hidden_reason"]


def test_a_unit_of_three_therapists_is_shown(client: Any, org1: OrgPersonas) -> None:
    three = [org1.therapist_a, org1.therapist_b, add_therapist(org1, "therapist_c")]
    add_episodes(org1, "TH", 11, three)
    body = api(client, org1.leader, "unit", org1.unit.pk)
    assert body["hidden_reason"] is None
    assert body["active"]["episodes"] == 11
    client.force_login(org1.leader)
    page = client.get(reverse("stats_unit", kwargs={"unit_id": org1.unit.pk})).content.decode()
    assert gettext(TOO_FEW) not in page


def test_a_hidden_two_therapist_unit_counts_for_complementary_suppression(
    client: Any, org1: OrgPersonas, team: list[User]
) -> None:
    pair = [add_therapist(org1, f"rus_{i}", unit=org1.other_unit) for i in range(2)]
    add_episodes(org1, "UA", 12, team)
    add_episodes(org1, "UB", 10, pair, unit=org1.other_unit)  # 10 clients, 2 therapists
    a, b = ("unit", org1.unit.pk), ("unit", org1.other_unit.pk)
    org = ("organisation", org1.org.pk)
    assert api(client, org1.analyst, *b)["hidden_reason"]
    seen = read_all(client, org1.analyst, [a, b, org])
    assert seen[(*org, "all")][("active", "episodes")] == 22
    assert seen[(*a, "all")][("active", "episodes")] is None  # else org − A = B
    assert leaks(seen, unit_relations(org, [a, b]) + age_relations([a, b, org])) == []


def test_trajectory_complement_keeps_the_median_but_hides_its_n() -> None:
    """Pure: organisation = A + B at session 1 (n 10 + 3). B's point is dropped (3 < k);
    A's n could then be subtracted (13 − 10 = 3), so A keeps its median, loses its n."""

    def payload(n_ors: int) -> dict[str, Any]:
        point = {"session_number": 1, "ors_median": 15.0, "srs_median": None}
        return {
            "trajectory": [{**point, "n_ors": n_ors, "n_srs": 0}],
            "n_therapists": 3,
            "n_therapists_direct": 0,
        }

    tree = Tree(("organisation", 1), {10: None, 11: None})
    parts = {
        ("organisation", 1, "all"): payload(13),
        ("unit", 10, "all"): payload(10),
        ("unit", 11, "all"): payload(3),
    }
    masks = family_masks(parts, tree, k=5)
    assert masks[("unit", 11, "all")]["trajectory"][1]["n_ors"] == "fewer than 5 clients"
    assert masks[("unit", 10, "all")]["trajectory"][1]["n_ors"] == REASON_COMPLEMENTARY
    assert 1 not in masks[("organisation", 1, "all")]["trajectory"]

    def shown(unit: int) -> list[dict[str, Any]]:
        key = ("unit", unit, "all")
        data = _figures_data(parts[key], anonymised=True, k=5, mask=masks[key])
        trajectory: list[dict[str, Any]] = data["trajectory"]
        return trajectory

    point = {"session_number": 1, "ors_median": 15.0, "srs_median": None, "n_srs": None}
    assert shown(10) == [{**point, "n_ors": None}]
    assert shown(11) == []
