"""Attacks found by a review of stats.publications, kept as regression tests: each
reads two published month-ends and tries to subtract them to one client's figures."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
import time_machine
from django.urls import reverse

from stats.models import ScopeKind, StatsSnapshot
from stats.services import snapshots_store, stats_recompute_all, stats_recompute_dirty
from tests.conftest import OrgPersonas, add_therapist, make_episode, make_org, record


def _at(day: dt.date) -> Any:
    return time_machine.travel(
        dt.datetime(day.year, day.month, day.day, 10, tzinfo=dt.UTC), tick=False
    )


def _api(client: Any, user: Any, kind: str, scope_id: int, **params: Any) -> Any:
    client.force_login(user)
    r = client.get(reverse("api_stats_scope", kwargs={"scope": kind, "scope_id": scope_id}), params)
    assert r.status_code == 200, r.content
    return r.json()


def _ep(p: OrgPersonas, code: str, t: Any, unit: Any, sessions: list[tuple[dt.date, str]]) -> Any:
    ep = make_episode(p, code=code, therapist=t, unit=unit, started_on=sessions[0][0])
    for day, ors in sessions:
        record(ep, day, ors=ors, srs="36.0")
    return ep


def _setup_feb(p: OrgPersonas) -> tuple[list[Any], list[Any]]:
    a_team = [p.therapist_a, p.therapist_b, add_therapist(p, "ra3")]
    b_team = [add_therapist(p, f"rb{i}", unit=p.other_unit) for i in range(3)]
    for i in range(12):
        _ep(
            p,
            f"RA-{i}",
            a_team[i % 3],
            p.unit,
            [(dt.date(2026, 2, 2), "12.0"), (dt.date(2026, 2, 16), "16.0")],
        )
    for i in range(6):
        _ep(
            p,
            f"RB-{i}",
            b_team[i % 3],
            p.other_unit,
            [(dt.date(2026, 2, 3), "12.0"), (dt.date(2026, 2, 17), "16.0")],
        )
    return a_team, b_team


@pytest.mark.django_db
def test_one_clients_ors_change_recovered_when_k_others_changed_elsewhere(
    client: Any, org1: OrgPersonas
) -> None:
    """Change grid counts episodes per node x age x side, not per family: 5 new clients
    in unit B (>= k, nothing held), but only ONE of them has a second ORS. n_ors_change
    goes 6 -> 7, both means are shown, so 7*mean_mar - 6*mean_feb = that client's
    ORS change (and the outcome-class counts say whether they reliably improved)."""
    p = org1
    with _at(dt.date(2026, 3, 5)):
        _a, b_team = _setup_feb(p)
        feb = _api(client, p.analyst, "unit", p.other_unit.pk)
    with _at(dt.date(2026, 4, 6)):
        for i in range(4):  # 4 new clients with only an intake ORS
            _ep(p, f"RB-new-{i}", b_team[i % 3], p.other_unit, [(dt.date(2026, 3, 10), "20.0")])
        # the target: one new client with two ORS (change +17.5)
        _ep(
            p,
            "RB-target",
            b_team[0],
            p.other_unit,
            [(dt.date(2026, 3, 3), "8.5"), (dt.date(2026, 3, 24), "26.0")],
        )
        mar = _api(client, p.analyst, "unit", p.other_unit.pk)
    f, m = feb["active"], mar["active"]
    assert f["n_classified"] == 6 and f["ors_change"] is not None  # February: shown
    # March: the ORS-change family (n 6 -> 7, one client) is held back, n with it; the
    # episodes (5 new from three therapists, 2 + 2 + 1: 5 − 2 < k) too.
    assert m["ors_change"] is None and m["n_classified"] is None
    assert mar["suppressed"]["active"]["ors_change"]


@pytest.mark.django_db
def test_therapist_spread_is_not_held_back(client: Any, org1: OrgPersonas) -> None:
    """A node held back (1 new client since February) still shows the per-therapist
    spread chart on the dashboard: the changed therapist's mean ORS change moves, so
    with the caseload (known to a leader/colleague) the new client's change follows."""
    p = org1
    with _at(dt.date(2026, 3, 5)):
        b_team = [add_therapist(p, f"sb{i}", unit=p.other_unit) for i in range(3)]
        for i in range(15):
            _ep(
                p,
                f"SB-{i}",
                b_team[i % 3],
                p.other_unit,
                [(dt.date(2026, 2, 3), "12.0"), (dt.date(2026, 2, 17), f"{14 + i % 3}.0")],
            )
        client.force_login(p.analyst)
        feb_page = client.get(
            reverse("stats_unit", kwargs={"unit_id": p.other_unit.pk}), {"period": "month"}
        ).content.decode()
    with _at(dt.date(2026, 4, 6)):
        _ep(
            p,
            "SB-target",
            b_team[0],
            p.other_unit,
            [(dt.date(2026, 3, 3), "8.0"), (dt.date(2026, 3, 24), "30.0")],
        )
        mar = _api(client, p.analyst, "unit", p.other_unit.pk)
        assert mar["active"]["episodes"] is None  # the node IS held back (1 change)
        client.force_login(p.analyst)
        mar_page = client.get(
            reverse("stats_unit", kwargs={"unit_id": p.other_unit.pk}), {"period": "month"}
        ).content.decode()

    def spread(page: str) -> Any:
        m = re.search(r'<script id="fig-spread" type="application/json">(.*?)</script>', page, re.S)
        return None if m is None else json.loads(m.group(1))["data"][0]["y"]

    assert spread(mar_page) is None, (
        f"spread shown in a held node: {spread(feb_page)} -> {spread(mar_page)}"
    )


@pytest.mark.django_db
def test_therapist_subtracts_own_new_clients_from_unit_change(
    client: Any, org1: OrgPersonas
) -> None:
    """No 'others' rule on the change: unit A changes by 5 (>= k, nothing held), 4 of them
    therapist A's own clients. Therapist A (who may view unit A anonymised) knows their
    own 4 clients' scores, so unit(Mar) - unit(Feb) - own = colleague B's one new client."""
    p = org1
    with _at(dt.date(2026, 3, 5)):
        _setup_feb(p)
        feb = _api(client, p.therapist_a, "unit", p.unit.pk)
    with _at(dt.date(2026, 4, 6)):
        for i in range(4):  # therapist A's own: 10 -> 14 each (known to A)
            _ep(
                p,
                f"OWN-{i}",
                p.therapist_a,
                p.unit,
                [(dt.date(2026, 3, 2), "10.0"), (dt.date(2026, 3, 23), "14.0")],
            )
        _ep(
            p,
            "COLLEAGUE",
            p.therapist_b,
            p.unit,
            [(dt.date(2026, 3, 4), "6.0"), (dt.date(2026, 3, 25), "27.0")],
        )
        mar = _api(client, p.therapist_a, "unit", p.unit.pk)
    f, m = feb["active"], mar["active"]
    assert f["n_classified"] == 12 and f["ors_change"] is not None  # February: shown
    # March: 5 new clients, 4 of them therapist A's own: 5 − 4 < k — held back, else
    # A would take their own 4 away and see the colleague's client.
    assert m["ors_change"] is None and m["n_classified"] is None


@pytest.mark.django_db
def test_benchmark_other_orgs_single_client_change(
    client: Any, org1: OrgPersonas, org2: OrgPersonas
) -> None:
    org3 = make_org("gamma")
    orgs = [org1, org2, org3]
    with _at(dt.date(2026, 3, 5)):
        for j, p in enumerate(orgs):
            for i in range(6):
                t = p.therapist_a if i % 2 else p.therapist_b
                _ep(
                    p,
                    f"BM{j}-{i}",
                    t,
                    p.unit,
                    [(dt.date(2026, 2, 2), "12.0"), (dt.date(2026, 2, 16), "16.0")],
                )
        client.force_login(org1.analyst)
        feb = client.get(
            reverse("api_stats_scope", kwargs={"scope": "platform", "scope_id": 0})
        ).json()
    with _at(dt.date(2026, 4, 6)):
        for i in range(4):
            _ep(org2, f"BMn-{i}", org2.therapist_a, org2.unit, [(dt.date(2026, 3, 10), "20.0")])
        _ep(
            org2,
            "BM-target",
            org2.therapist_b,
            org2.unit,
            [(dt.date(2026, 3, 3), "7.0"), (dt.date(2026, 3, 24), "29.5")],
        )
        client.force_login(org1.analyst)
        mar = client.get(
            reverse("api_stats_scope", kwargs={"scope": "platform", "scope_id": 0})
        ).json()
    f, m = feb["active"], mar["active"]
    assert m["ors_change"] is None or f["ors_change"] is None, (
        "org2's one client's ORS change from org1's benchmark: "
        f"{m['n_classified'] * m['ors_change'] - f['n_classified'] * f['ors_change']:.2f}"
    )


@pytest.mark.django_db
def test_the_recompute_jobs_keep_unit_snapshots_of_fixed_dates(org1: OrgPersonas) -> None:
    """(Review: a recompute could delete a snapshot a concurrent publication had just
    frozen, and the next view would recompute it from today's data.) The jobs no longer
    delete unit, organisation or platform figures of fixed dates at all."""
    day = dt.date(2026, 2, 28)
    key = (ScopeKind.UNIT, org1.org.pk, org1.unit.pk)
    snapshots_store({key: {"table": {}}}, as_of=day, period_key=day.isoformat(), age_group="all")
    stats_recompute_all()
    stats_recompute_dirty()
    assert StatsSnapshot.objects.filter(
        scope_kind="unit", scope_id=org1.unit.pk, period_key=day.isoformat()
    ).exists()
