"""The cross-organisation benchmark cannot be turned into another organisation's figures:
with fewer than 3 organisations it is not shown, and a platform cell is hidden where
"all organisations minus my own" rests on 1 … k−1 clients (datapolicy.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.urls import reverse

from stats.selectors import period_as_of
from stats.services import stats_recompute_all
from tests.conftest import OrgPersonas, add_therapist, make_episode, make_org, record

pytestmark = pytest.mark.django_db
# Anonymised figures are published at closed month-ends (stats.publications): the data
# lies before the last one, which the pages and the API show by default.
T = period_as_of("month")[1]


def _episodes(p: OrgPersonas, n: int, prefix: str, *, ors: str = "15.0") -> None:
    therapists = [p.therapist_a, p.therapist_b, *getattr(p, "_extra", [])]
    for i in range(n):
        ep = make_episode(
            p, therapist=therapists[i % len(therapists)], code=f"{prefix}-{i}", started_on=T
        )
        record(ep, T - dt.timedelta(days=2), ors=ors, srs="36.0")


@pytest.fixture
def three(org1: OrgPersonas, org2: OrgPersonas) -> tuple[OrgPersonas, OrgPersonas, OrgPersonas]:
    org3 = make_org("gamma")
    for p in (org1, org2, org3):
        p._extra = [add_therapist(p, "third")]  # type: ignore[attr-defined]
    return org1, org2, org3


def _platform(client: Any, user: Any) -> dict[str, Any]:
    client.force_login(user)
    r = client.get(reverse("api_stats_scope", kwargs={"scope": "platform", "scope_id": 0}))
    assert r.status_code == 200, r.content
    body: dict[str, Any] = r.json()
    return body


def test_two_organisations_show_no_benchmark(
    client: Any, org1: OrgPersonas, org2: OrgPersonas
) -> None:
    _episodes(org1, 8, "A")
    _episodes(org2, 8, "B", ors="25.0")
    stats_recompute_all()
    body = _platform(client, org1.leader)
    # Without the rule: platform (16, mean 20.0) minus own (8, mean 15.0) = org 2 exactly.
    assert body["active"]["episodes"] is None and body["active"]["ors_start"] is None
    assert body["hidden_reason"]
    page = client.get(reverse("stats_benchmark")).content.decode()
    assert "mindst 3 organisationer" in page


def test_a_small_rest_is_hidden_and_a_large_rest_shown(
    client: Any, three: tuple[OrgPersonas, OrgPersonas, OrgPersonas]
) -> None:
    org1, org2, org3 = three
    _episodes(org1, 8, "A")
    _episodes(org2, 2, "B", ors="30.0")  # the others: 2 + 1 = 3 < k = 5
    _episodes(org3, 1, "C", ors="30.0")
    stats_recompute_all()
    body = _platform(client, org1.leader)
    # Platform 11 episodes: shown by its own suppression, but 11 − 8 = 3 others: hidden.
    assert body["active"]["episodes"] is None
    assert body["active"]["ors_start"] is None
    assert not body["hidden_reason"]
    # Org 2's view: 11 − 2 = 9 others (≥ k): the platform's figures are shown to it.
    body2 = _platform(client, org2.leader)
    assert body2["active"]["episodes"] == 11
    assert body2["active"]["ors_start"] == pytest.approx((8 * 15.0 + 3 * 30.0) / 11)
    # More data elsewhere, entered late for the same month: the published month-end is
    # frozen (stats.publications), so org 1 still sees nothing there; the new episodes
    # count from the next month-end's publication.
    _episodes(org3, 4, "D", ors="30.0")
    stats_recompute_all()
    body = _platform(client, org1.leader)
    assert body["active"]["episodes"] is None


def test_a_large_rest_is_shown(
    client: Any, three: tuple[OrgPersonas, OrgPersonas, OrgPersonas]
) -> None:
    org1, org2, org3 = three
    _episodes(org1, 8, "A")
    _episodes(org2, 2, "B", ors="30.0")
    _episodes(org3, 5, "C", ors="30.0")  # the others: 2 + 5 = 7 >= k
    stats_recompute_all()
    body = _platform(client, org1.leader)
    assert body["active"]["episodes"] == 15
    assert body["active"]["ors_start"] == pytest.approx((8 * 15.0 + 7 * 30.0) / 15)


def test_the_benchmark_is_for_all_ages_only(
    client: Any, three: tuple[OrgPersonas, OrgPersonas, OrgPersonas]
) -> None:
    """The platform's age groups add up: a per-age benchmark could be subtracted."""
    org1, _org2, _org3 = three
    client.force_login(org1.leader)
    url = reverse("api_stats_scope", kwargs={"scope": "platform", "scope_id": 0})
    r = client.get(url, {"age_group": "child"})
    assert r.status_code == 400 and "age_group" in r.json()
    page = client.get(reverse("stats_benchmark"), {"age": "child"}).content.decode()
    assert 'value="child"' not in page


def test_a_trajectory_point_with_few_others_is_hidden(
    client: Any, three: tuple[OrgPersonas, OrgPersonas, OrgPersonas]
) -> None:
    org1, org2, org3 = three
    for i in range(8):  # own: 8 episodes with two sessions
        ep = make_episode(
            org1,
            therapist=org1._extra[0] if i % 3 == 0 else org1.therapist_a,  # type: ignore[attr-defined]
            code=f"T-{i}",
            started_on=T - dt.timedelta(days=30),
        )
        record(ep, T - dt.timedelta(days=20), ors="15.0", srs="36.0")
        record(ep, T - dt.timedelta(days=10), ors="20.0", srs="37.0")
    _episodes(org2, 5, "B", ors="25.0")
    ep = make_episode(org2, code="B2-1", started_on=T - dt.timedelta(days=30))
    record(ep, T - dt.timedelta(days=20), ors="22.0", srs="36.0")
    record(ep, T - dt.timedelta(days=10), ors="31.0", srs="38.0")  # the only other 2nd session
    _episodes(org3, 5, "C", ors="25.0")
    stats_recompute_all()
    points = {p["session_number"]: p for p in _platform(client, org1.leader)["trajectory"]}
    assert points[1]["n_ors"] == 19  # others 11: shown
    assert 2 not in points  # platform n 9, own 8: the others' one client is not shown
    # Org 2 (own n 1 at session 2, others 8) sees the point.
    points2 = {p["session_number"]: p for p in _platform(client, org2.leader)["trajectory"]}
    assert points2[2]["n_ors"] == 9
