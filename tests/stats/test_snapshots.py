"""Snapshots through the real service layer: sessions recorded with session_record, the
recompute queued after commit (inline in tests), figures read via the pages and the API.

Scenario (therapist A of org 1, today = T; every number worked out by hand):

* E1 adult: T-40 ORS 15.0 SRS 34.0; T-20 ORS 26.0 SRS 37.0 → active, ORS change 11.0
  (reliable improvement; 15 < 25 ≤ 26 → clinically significant), SRS change 3.0.
* E2 adult: T-10 ORS 20.0 SRS 36.0 → active, single session (start means only).
* E3 adult: T-200 ORS 10.0 SRS 30.0; T-150 ORS 12.0 SRS 33.0 → last session 150 > 90 days
  ago → inactive, change 2.0 (no reliable change).
* E4 youth: T-5 SRS 38.0; T-3 SRS 39.0 → active, SRS only (never in an ORS row).

Active: episodes 3; sessions 2+1+2 = 5; per episode 5/3; months (20+0+2)/3/30.4375;
SRS start (34+36+38)/3 = 36.0; ORS start (15+20)/2 = 17.5; SRS change (3+1)/2 = 2.0;
ORS change 11.0; d NaN (one episode with two ORS); % = 11/17.5·100 = 62.857142857…
Inactive: episodes 1, sessions 2, ORS start 10.0, change 2.0, % = 20.0, SRS change 3.0.
Trajectory: n=1 ORS [15,20,10] → 15 (n 3), SRS [34,36,30,38] → 35 (n 4);
n=2 ORS [26,12] → 19 (n 2), SRS [37,33,39] → 37 (n 3).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import override

from stats.models import DirtyScope, RecomputeRun, ScopeKind, StatsSnapshot
from tests.conftest import OrgPersonas, make_episode, record

T = dt.date.today()


def days(n: int) -> dt.date:
    return T - dt.timedelta(days=n)


@pytest.fixture(autouse=True)
def _no_debounce_left_over() -> Any:
    """The debounce lock lives in the (process-wide) cache: never let it leak across tests."""
    from django.core.cache import cache

    from stats.tasks import DEBOUNCE_KEY

    cache.delete(DEBOUNCE_KEY)
    yield
    cache.delete(DEBOUNCE_KEY)


@pytest.fixture
def scenario(
    org1: OrgPersonas, org2: OrgPersonas, django_capture_on_commit_callbacks: Any
) -> dict[str, Any]:
    # The test transaction never commits: run the after-commit hooks (the signal) here.
    with django_capture_on_commit_callbacks(execute=True):
        e1 = make_episode(org1, code="AL-1001", started_on=days(45))
        record(e1, days(40), ors="15.0", srs="34.0")
        record(e1, days(20), ors="26.0", srs="37.0")
        e2 = make_episode(org1, code="AL-1002", started_on=days(12))
        record(e2, days(10), ors="20.0", srs="36.0")
        e3 = make_episode(org1, code="AL-1003", started_on=days(210))
        record(e3, days(200), ors="10.0", srs="30.0")
        record(e3, days(150), ors="12.0", srs="33.0")
        e4 = make_episode(org1, code="AL-1004", age_group="youth", started_on=days(6))
        record(e4, days(5), srs="38.0")
        record(e4, days(3), srs="39.0")
        other = make_episode(org2, code="BE-2001")
        record(other, days(4), ors="30.0", srs="39.0")
    return {"org1": org1, "org2": org2}


@pytest.fixture
def three_therapists(scenario: dict[str, Any], django_capture_on_commit_callbacks: Any) -> None:
    """Therapists B and C each get one inactive episode without scores in the unit: an
    anonymised unit of fewer than 3 therapists is hidden as a whole (not cell by cell), so
    the tests of cell suppression need three. Active figures and the trajectory are
    unchanged; inactive episodes become 1 + 2 = 3."""
    from tests.conftest import add_therapist

    org1 = scenario["org1"]
    with django_capture_on_commit_callbacks(execute=True):
        for i, t in enumerate((org1.therapist_b, add_therapist(org1, "therapist_c"))):
            ep = make_episode(org1, code=f"AL-20{i}", therapist=t, started_on=days(310))
            record(ep, days(300))


def _api(client: Any, user: Any, scope: str, scope_id: int, **params: str) -> Any:
    client.force_login(user)
    return client.get(
        reverse("api_stats_scope", kwargs={"scope": scope, "scope_id": scope_id}), params
    )


def test_change_queues_recompute_and_snapshot_has_hand_computed_figures(
    scenario: dict[str, Any],
) -> None:
    org1 = scenario["org1"]
    snap = StatsSnapshot.objects.get(
        scope_kind=ScopeKind.THERAPIST,
        organisation_id=org1.org.pk,
        scope_id=org1.therapist_a.pk,
        period_key="current",
        age_group="all",
    )
    act = snap.payload["table"]["active"]
    ina = snap.payload["table"]["inactive"]
    assert act["episodes"] == 3 and act["sessions"] == 5
    assert act["sessions_per_episode"] == pytest.approx(5 / 3)
    assert act["treatment_months"] == pytest.approx(22 / 3 / 30.4375)
    assert act["srs_start"] == pytest.approx(36.0)
    assert act["ors_start"] == pytest.approx(17.5)
    assert act["srs_change"] == pytest.approx(2.0)
    assert act["ors_change"] == pytest.approx(11.0)
    assert act["effect_size_d"] is None
    assert act["effect_size_pct"] == pytest.approx(11 / 17.5 * 100)
    assert (act["reliable_improvement"], act["clinically_significant"], act["n_classified"]) == (
        1,
        1,
        1,
    )
    assert ina["episodes"] == 1 and ina["sessions"] == 2
    assert ina["ors_change"] == pytest.approx(2.0)
    assert ina["effect_size_pct"] == pytest.approx(20.0)
    assert ina["no_reliable_change"] == 1
    traj = {p["session_number"]: p for p in snap.payload["trajectory"]}
    assert traj[1] == {
        "session_number": 1,
        "ors_median": 15.0,
        "srs_median": 35.0,
        "n_ors": 3,
        "n_srs": 4,
    }
    assert traj[2] == {
        "session_number": 2,
        "ors_median": 19.0,
        "srs_median": 37.0,
        "n_ors": 2,
        "n_srs": 3,
    }
    # the unit and organisation scopes were refreshed by the same changes; org 2 apart
    unit = StatsSnapshot.objects.get(
        scope_kind=ScopeKind.UNIT, scope_id=org1.unit.pk, period_key="current", age_group="all"
    )
    assert unit.payload["table"]["active"]["episodes"] == 3
    org = StatsSnapshot.objects.get(
        scope_kind=ScopeKind.ORGANISATION, scope_id=org1.org.pk, period_key="current"
    )
    assert org.payload["table"]["active"]["sessions"] == 5
    assert not DirtyScope.objects.exists()
    assert RecomputeRun.objects.filter(kind="incremental").exists()


def test_api_own_figures_unrounded_and_as_of_reproduces_the_past(
    client: Any, scenario: dict[str, Any]
) -> None:
    org1 = scenario["org1"]
    r = _api(client, org1.therapist_a, "therapist", org1.therapist_a.pk)
    assert r.status_code == 200
    body = r.json()
    assert body["anonymised"] is False
    assert body["active"]["effect_size_pct"] == pytest.approx(62.857142857142854)
    assert body["active"]["effect_size_d"] is None
    assert body["suppressed"] == {"active": {}, "inactive": {}}
    assert {
        "session_number": 1,
        "ors_median": 15.0,
        "srs_median": 35.0,
        "n_ors": 3,
        "n_srs": 4,
    } in body["trajectory"]
    # As of T-100 only E3 existed (last session T-150, 50 days before): active.
    r = _api(
        client, org1.therapist_a, "therapist", org1.therapist_a.pk, as_of=days(100).isoformat()
    )
    past = r.json()
    assert past["as_of"] == days(100).isoformat()
    assert past["active"]["episodes"] == 1 and past["inactive"]["episodes"] == 0
    assert past["active"]["ors_change"] == pytest.approx(2.0)
    # as of T-175 E3 had one session only: start, no change
    r = _api(
        client, org1.therapist_a, "therapist", org1.therapist_a.pk, as_of=days(175).isoformat()
    )
    assert r.json()["active"]["ors_start"] == pytest.approx(10.0)
    assert r.json()["active"]["ors_change"] is None


def test_api_bad_input(client: Any, scenario: dict[str, Any]) -> None:
    org1 = scenario["org1"]
    # Errors are a list of messages per field (docs/api.md), in Danish by default.
    r = _api(client, org1.therapist_a, "therapist", org1.therapist_a.pk, as_of="31-12-2025")
    assert r.status_code == 400 and r.json() == {"as_of": ["Brug formatet ÅÅÅÅ-MM-DD."]}
    tomorrow = (T + dt.timedelta(days=1)).isoformat()
    r = _api(client, org1.therapist_a, "therapist", org1.therapist_a.pk, as_of=tomorrow)
    assert r.status_code == 400 and isinstance(r.json()["as_of"], list)
    r = _api(client, org1.therapist_a, "therapist", org1.therapist_a.pk, age_group="senior")
    assert r.status_code == 400
    assert r.json() == {"age_group": ["En af all, adult, youth, child."]}


def test_leader_sees_unit_anonymised_with_reasons(
    client: Any, scenario: dict[str, Any], three_therapists: None
) -> None:
    org1 = scenario["org1"]
    r = _api(client, org1.leader, "unit", org1.unit.pk)
    assert r.status_code == 200
    body = r.json()
    assert body["anonymised"] is True and body["k"] == 5
    # 3 active episodes < k = 5: the whole active row is hidden, with the reason
    assert body["active"]["episodes"] is None and body["active"]["ors_change"] is None
    # (as every hidden cell: review round 10 — never told apart from a complement)
    assert body["suppressed"]["active"]["episodes"].startswith(
        "færre end 5 klienter, eller skjult så et sådant tal"
    )
    assert body["suppressed_codes"]["active"]["episodes"] == "hidden"
    assert body["hidden_reason"] is None
    # trajectory points rest on < 5 episodes each: none is shown
    assert body["trajectory"] == []
    page = client.get(reverse("stats_unit", kwargs={"unit_id": org1.unit.pk}))
    assert page.status_code == 200
    html = page.content.decode()
    for secret in (
        "AL-1001",
        "AL-1003",
        org1.therapist_a.get_full_name(),
        org1.therapist_a.username,
    ):
        assert secret not in html


def test_forbidden_scopes(client: Any, scenario: dict[str, Any]) -> None:
    org1, org2 = scenario["org1"], scenario["org2"]
    # a colleague's own figures: 403; another organisation's unit or therapist: 404
    assert _api(client, org1.therapist_b, "therapist", org1.therapist_a.pk).status_code == 403
    assert _api(client, org1.leader, "therapist", org1.therapist_a.pk).status_code == 403
    assert _api(client, org1.leader, "unit", org2.unit.pk).status_code == 404
    assert _api(client, org1.analyst, "therapist", org2.therapist_a.pk).status_code == 404
    # a leader of another unit of the same organisation: 403 on this unit
    assert _api(client, org1.leader, "unit", org1.other_unit.pk).status_code == 403
    client.force_login(org1.therapist_b)
    assert (
        client.get(reverse("stats_therapist", kwargs={"user_id": org1.therapist_a.pk})).status_code
        == 403
    )


def test_own_figures_grant_lets_named_leader_see_them_and_is_logged(
    client: Any, scenario: dict[str, Any]
) -> None:
    from datapolicy.models import AccessLog, Grant

    org1 = scenario["org1"]
    now = timezone.now()
    Grant.objects.create(
        organisation=org1.org,
        kind=Grant.Kind.OWN_FIGURES,
        grantor=org1.therapist_a,
        grantee=org1.leader,
        purpose="supervision",
        starts_at=now - dt.timedelta(hours=1),
        expires_at=now + dt.timedelta(days=7),
        created_by=org1.therapist_a,
    )
    r = _api(client, org1.leader, "therapist", org1.therapist_a.pk)
    assert r.status_code == 200
    assert r.json()["active"]["episodes"] == 3  # shared own figures are not suppressed
    assert (
        AccessLog.objects.filter(
            organisation=org1.org, user=org1.leader, object_type="therapist_figures"
        ).count()
        == 1
    )


def test_therapist_page_and_exports(client: Any, scenario: dict[str, Any]) -> None:
    import io

    from openpyxl import load_workbook

    org1 = scenario["org1"]
    client.force_login(org1.therapist_a)
    with override("en"):
        page = client.get(reverse("stats_mine"))
        assert page.status_code == 200
        html = page.content.decode()
        # Requests follow the user's language (Danish by default), not override().
        assert "Gennemsnitlig ORS ændring" in html and "Beregnet" in html
        assert "plotly.min.js" in html
        url = reverse(
            "stats_export",
            kwargs={
                "kind": "therapist",
                "scope_id": org1.therapist_a.pk,
                "table": "statistics",
                "fmt": "csv",
            },
        )
        csv_text = client.get(url).content.decode("utf-8-sig")
    lines = csv_text.splitlines()
    assert lines[1].split(";") == ["Klienter", "3", "1"]
    assert lines[2].split(";") == ["Sessioner", "5", "2"]
    # Figures as the page shows them, in Danish notation (a Danish spreadsheet reads
    # "1.6666666666666667" as text or a wrong number): active 5 sessions / 3 episodes =
    # 1.67 -> "1,7"; inactive 2 / 1 = 2 -> "2"; ORS at start active (15 + 20) / 2 = 17.5,
    # inactive 10.
    assert lines[3].split(";")[1:] == ["1,7", "2"]
    assert lines[6].split(";")[1:] == ["17,5", "10"]
    xlsx = client.get(url.replace(".csv", ".xlsx"))
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.cell(row=2, column=2).value == 3
    assert sheet.cell(row=4, column=2).value == 1.7
    assert sheet.cell(row=4, column=2).number_format == "0.0"
    assert client.get(url.replace("statistics.csv", "nope.csv")).status_code == 404


def test_leader_export_applies_the_same_suppression(
    client: Any, scenario: dict[str, Any], three_therapists: None
) -> None:
    org1 = scenario["org1"]
    client.force_login(org1.leader)
    url = reverse(
        "stats_export",
        kwargs={"kind": "unit", "scope_id": org1.unit.pk, "table": "statistics", "fmt": "csv"},
    )
    # The export follows the page's language (Danish by default), reasons included.
    rows = client.get(url).content.decode("utf-8-sig").splitlines()
    clients_row = rows[1].split(";")
    assert clients_row[0] == "Klienter"
    # every hidden cell alike (review round 10): "skjult" with the one note
    note = "skjult (færre end 5 klienter, eller skjult så et sådant tal"
    assert clients_row[1].startswith(note)
    assert clients_row[2] == clients_row[1]  # 3 inactive: small cell too
    assert "terapeut" not in rows[1]
    client.cookies["django_language"] = "en"
    rows = client.get(url).content.decode("utf-8-sig").splitlines()
    assert rows[1].startswith("Clients;hidden (fewer than 5 clients, or hidden so that")


def test_dashboards_filters_and_benchmark_render(client: Any, scenario: dict[str, Any]) -> None:
    org1 = scenario["org1"]
    client.force_login(org1.analyst)
    for name in ("stats_organisation", "stats_benchmark", "stats_index"):
        for query in ("", "?period=quarter&age=youth", "?period=bogus&age=??"):
            r = client.get(reverse(name) + query)
            assert r.status_code == 200, (name, query)
    # a past period is computed on demand and stored under its own key
    assert StatsSnapshot.objects.filter(
        scope_kind=ScopeKind.ORGANISATION, age_group="youth"
    ).exists()


def test_debounce_queues_one_task_for_a_burst(
    scenario: dict[str, Any], settings: Any, monkeypatch: Any
) -> None:
    from django.core.cache import cache

    from stats import tasks

    org1 = scenario["org1"]
    settings.CELERY_TASK_ALWAYS_EAGER = False
    cache.delete(tasks.DEBOUNCE_KEY)
    queued: list[Any] = []
    monkeypatch.setattr(
        tasks.stats_recompute_dirty_task, "apply_async", lambda **kw: queued.append(kw)
    )
    for _ in range(50):
        tasks.on_episode_data_changed(
            organisation_id=org1.org.pk,
            unit_ids=[org1.unit.pk],
            therapist_ids=[org1.therapist_a.pk],
        )
    assert len(queued) == 1
    assert queued[0]["countdown"] == tasks.DEBOUNCE_SECONDS
    # the marks are de-duplicated too: one per scope
    assert DirtyScope.objects.count() == 3


def test_a_crash_mid_recompute_leaves_the_marks_and_the_next_run_heals(
    scenario: dict[str, Any], monkeypatch: Any
) -> None:
    from stats import services

    org1 = scenario["org1"]
    services.stats_mark_dirty(
        organisation_id=org1.org.pk, unit_ids=[org1.unit.pk], therapist_ids=[org1.therapist_a.pk]
    )

    def boom(*a: Any, **kw: Any) -> int:
        raise RuntimeError("worker died")

    monkeypatch.setattr(services, "snapshots_store", boom)
    with pytest.raises(RuntimeError):
        services.stats_recompute_dirty()
    assert DirtyScope.objects.count() == 3
    monkeypatch.undo()
    assert services.stats_recompute_dirty() == 3
    assert not DirtyScope.objects.exists()


def test_full_recompute_is_idempotent_and_covers_every_scope(scenario: dict[str, Any]) -> None:
    from stats.services import stats_recompute_all

    n1 = stats_recompute_all()
    first = {
        (s.scope_kind, s.organisation_id, s.scope_id): s.payload
        for s in StatsSnapshot.objects.all()
    }
    n2 = stats_recompute_all()
    second = {
        (s.scope_kind, s.organisation_id, s.scope_id): s.payload
        for s in StatsSnapshot.objects.all()
    }
    assert n1 == n2 == len(first)
    assert first == second
    # 2 therapists with sessions (one per org), 2 units, 2 organisations, 1 platform
    kinds = sorted(k for k, _, _ in first)
    assert kinds.count("therapist") == 2 and kinds.count("platform") == 1
    platform = first[("platform", 0, 0)]
    assert platform["table"]["active"]["episodes"] == 4  # 3 in org 1 + 1 in org 2
    assert math.isclose(platform["table"]["active"]["ors_start"], (15 + 20 + 30) / 3)


def test_etr_model_for_reads_the_stored_model(scenario: dict[str, Any], monkeypatch: Any) -> None:
    from stats import selectors
    from stats.services import stats_recompute_all

    org1 = scenario["org1"]
    stats_recompute_all()

    def no_live_fit(*a: Any, **kw: Any) -> Any:
        raise AssertionError("fitted live although a snapshot exists")

    monkeypatch.setattr(selectors, "sessions_frame_for_org", no_live_fit)
    model = selectors.etr_model_for(org1.org)
    assert model.min_n == 30
    assert set(model.points["age_group"].astype(str)) <= {"adult", "youth", "child"}


def test_a_marked_scope_without_sessions_gets_empty_figures(scenario: dict[str, Any]) -> None:
    from stats.services import stats_mark_dirty, stats_recompute_dirty

    org1 = scenario["org1"]
    # therapist B has no sessions: their figures are zeros, not missing or stale
    stats_mark_dirty(organisation_id=org1.org.pk, therapist_ids=[org1.therapist_b.pk])
    stats_recompute_dirty()
    snap = StatsSnapshot.objects.get(
        scope_kind=ScopeKind.THERAPIST, scope_id=org1.therapist_b.pk, period_key="current"
    )
    assert snap.payload["table"]["active"]["episodes"] == 0
    assert snap.payload["table"]["active"]["ors_change"] is None


def test_platform_benchmark_api_is_anonymised(client: Any, scenario: dict[str, Any]) -> None:
    org1 = scenario["org1"]
    r = _api(client, org1.analyst, "platform", 0)
    assert r.status_code == 200
    body = r.json()
    # 4 active episodes on the platform (3 + 1) < k = 5: hidden, with the reason
    assert body["anonymised"] is True and body["active"]["episodes"] is None
    assert body["suppressed"]["active"]["episodes"]
    assert _api(client, org1.analyst, "platform", 7).status_code == 404
    assert _api(client, org1.analyst, "nonsense", 1).status_code == 404
