"""Review round 6 (statistics): the ETR in the stored alerts, the therapist ETR counts in
nested units, one platform fallback in every path, the client graph's ETR band, the ETR
reference data, the cutoffs on the median trajectory, the no-contact boundary and the
display of effect sizes.

Expected values are computed by hand from statistics.md; the arithmetic is in the
comments. The reference population used throughout (``_reference``): 40 adult episodes,
intake x_i = 10 + 0.5·i (i = 0 … 39), ORS at session 3 = x_i + 9 + e_i with
e_i = −1 for even i and +1 for odd i (session 2: x_i + 4.5 + e_i; all within 0–40).

OLS of the session-3 ORS on the intake, by hand:
  x̄ = 10 + 0.5·19.5 = 19.75; ē = 0, so ȳ = 28.75.
  Sxx = 0.25 · Σ(i − 19.5)² = 0.25 · 40·(40² − 1)/12 = 0.25 · 5330 = 1332.5.
  Σ(x_i − x̄)·e_i = 0.5·(Σ odd i − Σ even i) = 0.5·(400 − 380) = 10.
  slope = 1 + 10/1332.5 = 1.0075047; intercept = 28.75 − 1.0075047·19.75 = 8.8517824.
  target(intake 15) = 8.8517824 + 15.112570 = 23.964353;
  target(intake 20) = 8.8517824 + 20.150094 = 29.001876.
  residuals r_i = e_i − 0.0075047·(x_i − 19.75); the 20 lowest are the even i, sorted
  by i = 38, 36, …; the 25th percentile sits at position 0.25·39 = 9.75: between i = 20
  (r = −1 − 0.0075047·0.25 = −1.0018762) and i = 18 (r = −1 + 0.0075047·0.75 =
  −0.9943715): −1.0018762 + 0.75·0.0075047 = −0.9962477.
  boundary(intake 15) = 23.964353 − 0.996248 = 22.968105.
With gain 0 instead of 9 (``gain3=0``) the slope and residuals are the same and the
intercept is 19.75 − 1.0075047·19.75 = −0.1482176: target(15) = 14.964353.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from django.utils import timezone, translation

from stats.engine import StatsSettings, episode_alerts, sessions_frame
from stats.etr import EtrModel, etr_expected, etr_fit
from tests.conftest import OrgPersonas, make_episode, record

AS_OF = dt.date(2024, 6, 30)
TARGET_15 = 23.964353  # hand: see the module docstring
BOUNDARY_15 = 22.968105

# An organisation's statistics settings as stats.frames.org_stats_settings reads them.
ORG_SETTINGS = SimpleNamespace(
    inactivity_days=90,
    small_cell_k=5,
    reliable_change=5,
    srs_cutoff=36,
    ors_cutoff_adult=None,
    ors_cutoff_youth=None,
    ors_cutoff_child=None,
)


def _episode(
    episode_id: int,
    ors: list[float | None],
    *,
    org: int = 1,
    unit: int = 1,
    therapist: int = 1,
    age: str = "adult",
    closed_on: dt.date | None = None,
    start: dt.date = dt.date(2024, 5, 1),
    srs: float = 38.0,
) -> list[dict[str, Any]]:
    """One episode, a session a week from ``start``."""
    return [
        {
            "org_id": org,
            "unit_id": unit,
            "therapist_id": therapist,
            "episode_id": episode_id,
            "age_group": age,
            "closed_on": closed_on,
            "session_date": start + dt.timedelta(days=7 * i),
            "ors": np.nan if score is None else score,
            "srs": srs,
        }
        for i, score in enumerate(ors)
    ]


def _reference(
    *, gain3: float = 9.0, first_id: int = 1000, therapist: int = 1, unit: int = 1
) -> list[list[dict[str, Any]]]:
    """The 40 reference episodes of the module docstring (sessions 1, 8, 15 May 2024:
    active on 30 June, 46 days after the last session)."""
    out = []
    for i in range(40):
        x = 10.0 + 0.5 * i
        e = 1.0 if i % 2 else -1.0
        out.append(
            _episode(
                first_id + i,
                [x, x + gain3 / 2 + e, x + gain3 + e],
                therapist=therapist,
                unit=unit,
            )
        )
    return out


def _frame(*episodes: list[dict[str, Any]]) -> Any:
    return sessions_frame([row for ep in episodes for row in ep])


def test_the_hand_computed_reference_model() -> None:
    model = etr_fit(_frame(*_reference()), as_of=AS_OF)
    target, boundary = etr_expected(model, "adult", 15.0, 3)
    assert float(target) == pytest.approx(TARGET_15, abs=1e-5)
    assert float(boundary) == pytest.approx(BOUNDARY_15, abs=1e-5)


# --------------------------------------------------------------- 1. off track with the ETR


def test_stored_off_track_is_the_red_zone_when_an_etr_exists() -> None:
    from measures.services import alert_lists

    model = etr_fit(_frame(*_reference()), as_of=AS_OF)
    # Intake 15, session 3 ORS 21: +6 is a reliable improvement (the rule without ETR
    # would say "on track"), but 21 < boundary 22.968 → red → off track.
    client = _episode(1, [15.0, 18.0, 21.0], start=dt.date(2024, 6, 14))
    alerts = alert_lists(_frame(client), organisation=ORG_SETTINGS, as_of=AS_OF, etr_model=model)
    assert alerts.get(1) == ["off_track"]


def test_stored_off_track_is_not_raised_in_the_green_zone() -> None:
    from measures.services import alert_lists

    model = etr_fit(_frame(*_reference(gain3=0.0)), as_of=AS_OF)
    # Reference clients do not change: target(15) = 14.964. Session 3 ORS 16 ≥ target →
    # green, although +1 is no reliable improvement (the rule without ETR: off track).
    client = _episode(1, [15.0, 16.0, 16.0], start=dt.date(2024, 6, 14))
    alerts = alert_lists(_frame(client), organisation=ORG_SETTINGS, as_of=AS_OF, etr_model=model)
    assert "off_track" not in alerts.get(1, [])


def _db_reference(personas: OrgPersonas, *, end: dt.date, n: int = 40) -> None:
    """The docstring's 40 reference episodes in an organisation, sessions at end − 70,
    end − 63 and end − 56 days (active at ``end`` and up to 34 days later)."""
    d1, d2, d3 = (end - dt.timedelta(days=d) for d in (70, 63, 56))
    for i in range(n):
        x = 10.0 + 0.5 * i
        e = 1.0 if i % 2 else -1.0
        episode = make_episode(personas, code=f"RF-{i:04d}", started_on=d1)
        record(episode, d1, ors=f"{x:.1f}", srs="38.0")
        record(episode, d2, ors=f"{x + 4.5 + e:.1f}", srs="38.0")
        record(episode, d3, ors=f"{x + 9 + e:.1f}", srs="38.0")


def _db_client(
    personas: OrgPersonas, code: str, scores: tuple[float, ...], *, last: dt.date
) -> Any:
    """An episode of therapist B with a session a week, the last on ``last``."""
    first = last - dt.timedelta(days=7 * (len(scores) - 1))
    episode = make_episode(personas, therapist=personas.therapist_b, code=code, started_on=first)
    for i, score in enumerate(scores):
        record(episode, first + dt.timedelta(days=7 * i), ors=f"{score:.1f}", srs="38.0")
    episode.refresh_from_db()
    return episode


@pytest.mark.django_db
def test_the_session_service_stores_off_track_from_the_etr(org1: OrgPersonas) -> None:
    from stats.services import stats_recompute_all

    today = timezone.localdate()
    _db_reference(org1, end=today)
    stats_recompute_all(as_of=today)  # the organisation's model is stored
    # intake 15, then 18, 21: red at session 3 (hand: boundary 22.968), +6 reliable.
    episode = _db_client(org1, "CL-0001", (15.0, 18.0, 21.0), last=today)
    assert "off_track" in episode.alerts


@pytest.mark.django_db
def test_the_organisation_refresh_reads_the_model_once(org1: OrgPersonas, monkeypatch: Any) -> None:
    from measures.services import alerts_refresh_for_org
    from stats import selectors

    _db_reference(org1, end=timezone.localdate())
    calls = []
    real = selectors.etr_model_for

    def counting(organisation: Any) -> EtrModel:
        calls.append(organisation.pk)
        return real(organisation)

    monkeypatch.setattr(selectors, "etr_model_for", counting)
    alerts_refresh_for_org(org1.org)  # 40 open episodes with 3 ORS each
    assert calls == [org1.org.pk]


# ------------------------------------------------------ 2. therapist ETR in nested units


def test_therapist_etr_counts_are_not_multiplied_by_the_unit_depth() -> None:
    from stats.services import Context, compute_payloads

    closed = dt.date(2024, 6, 1)
    # Therapist 7's 40 active reference episodes in top unit 1; therapist 9's three
    # closed episodes in unit 3 (3 → 2 → 1).
    mine = [
        # hand: target(15) at session 3 = 23.96 → 39 green
        _episode(1, [15.0, 30.0, 39.0], therapist=9, unit=3, closed_on=closed),
        # target(20) = 29.00 → 39 green
        _episode(2, [20.0, 35.0, 39.0], therapist=9, unit=3, closed_on=closed),
        # 15 < boundary 22.97 → red: ended without reaching target → dropout
        _episode(3, [15.0, 15.0, 15.0], therapist=9, unit=3, closed_on=closed),
    ]
    sessions = _frame(*_reference(therapist=7), *mine)
    ctx = Context(
        settings={1: StatsSettings()},
        unit_parent={1: None, 2: 1, 3: 2},
        unit_org={1: 1, 2: 1, 3: 1},
    )
    payloads = compute_payloads(sessions, ctx, as_of=AS_OF)
    # hand: 3 ended episodes, 2 reach target, 1 dropout — in the therapist's scope and in
    # every unit on the path (the 40 reference episodes are active, not ended).
    for key in [("therapist", 1, 9), ("unit", 1, 3), ("unit", 1, 2), ("unit", 1, 1)]:
        etr = payloads[key]["etr"]
        assert (etr["ended"], etr["reaching_target"], etr["dropout"]) == (3, 2, 1), key
    assert payloads[("organisation", 1, 1)]["etr"]["ended"] == 3
    assert payloads[("therapist", 1, 9)]["etr"]["reaching_target_share"] == pytest.approx(2 / 3)


# ------------------------------------------------- 3. one platform fallback in every path


def _small_org_closed(personas: OrgPersonas, *, end: dt.date) -> None:
    """Three closed adult episodes (sessions end − 40, − 33, − 26; closed on the last).
    Judged with the reference model: 39 ≥ target(15) 23.96 green; 39 ≥ target(20) 29.00
    green; 15 < boundary 22.97 red → ended_evaluable 3, reaching target 2, dropout 1."""
    from clients.services import episode_close

    d1, d2, d3 = (end - dt.timedelta(days=d) for d in (40, 33, 26))
    for i, scores in enumerate([(15, 30, 39), (20, 35, 39), (15, 15, 15)]):
        episode = make_episode(personas, code=f"SM-{i:04d}", started_on=d1)
        for day, score in zip((d1, d2, d3), scores, strict=True):
            record(episode, day, ors=f"{score:.1f}", srs="38.0")
        episode.refresh_from_db()
        episode_close(actor=episode.therapist, episode=episode, closed_on=d3)


def _etr_of(kind: str, org_id: int, scope_id: int, period_key: str, age: str) -> dict[str, Any]:
    from stats.models import StatsSnapshot

    snap = StatsSnapshot.objects.get(
        scope_kind=kind,
        organisation_id=org_id,
        scope_id=scope_id,
        period_key=period_key,
        age_group=age,
    )
    etr: dict[str, Any] = snap.payload["etr"]
    return etr


@pytest.mark.django_db
def test_on_demand_scopes_use_the_platform_fallback(org1: OrgPersonas, org2: OrgPersonas) -> None:
    from stats.services import stats_compute_scope, stats_recompute_all

    today = timezone.localdate()
    _db_reference(org1, end=today)
    _small_org_closed(org2, end=today)
    stats_recompute_all(as_of=today)
    oid = org2.org.pk
    current = _etr_of("organisation", oid, oid, "current", "all")
    assert (current["ended_evaluable"], current["reaching_target"]) == (3, 2)
    # An API date / age filter: the same as_of, the same fallback, the same figures.
    for age in ("all", "adult"):
        stats_compute_scope(
            kind="organisation",
            organisation_id=oid,
            scope_id=oid,
            as_of=today,
            period_key=today.isoformat(),
            age_group=age,
        )
        etr = _etr_of("organisation", oid, oid, today.isoformat(), age)
        assert (etr["ended_evaluable"], etr["reaching_target"], etr["dropout"]) == (3, 2, 1)
    # A therapist's own figures with an age filter of the current period.
    stats_compute_scope(
        kind="therapist",
        organisation_id=oid,
        scope_id=org2.therapist_a.pk,
        as_of=today,
        period_key="current",
        age_group="adult",
    )
    etr = _etr_of("therapist", oid, org2.therapist_a.pk, "current", "adult")
    assert etr["ended_evaluable"] == 3


@pytest.mark.django_db
def test_a_published_month_end_uses_the_platform_fallback(
    org1: OrgPersonas, org2: OrgPersonas
) -> None:
    """A closed month-end without any stored platform figures (the platform model is
    fitted from the same data as of that date), then a therapist's figures of that
    date once the platform's are stored."""
    from stats.selectors import period_as_of
    from stats.services import family_required, publication_ensure, stats_compute_scope

    period_key, month_end = period_as_of("month")
    _db_reference(org1, end=month_end)
    _small_org_closed(org2, end=month_end)
    oid = org2.org.pk
    publication_ensure(
        organisation_id=oid,
        period_key=period_key,
        as_of=month_end,
        required=family_required(oid),
    )
    for age in ("all", "adult"):
        etr = _etr_of("organisation", oid, oid, period_key, age)
        assert (etr["ended_evaluable"], etr["reaching_target"], etr["dropout"]) == (3, 2, 1)
    publication_ensure(
        organisation_id=0, period_key=period_key, as_of=month_end, required=family_required(0)
    )
    stats_compute_scope(
        kind="therapist",
        organisation_id=oid,
        scope_id=org2.therapist_a.pk,
        as_of=month_end,
        period_key=period_key,
        age_group="all",
    )
    assert _etr_of("therapist", oid, org2.therapist_a.pk, period_key, "all")["dropout"] == 1


# ---------------------------------------------------------- 4. the client graph's fallback


@pytest.mark.django_db
def test_the_graph_of_a_small_organisation_uses_the_platform_model(
    org1: OrgPersonas, org2: OrgPersonas
) -> None:
    from clients.services import episode_close
    from measures.charts import episode_chart
    from stats.services import stats_recompute_all

    today = timezone.localdate()
    _db_reference(org1, end=today)
    stats_recompute_all(as_of=today)
    # org2 has a single episode: no ETR of its own; the platform's is the fallback.
    episode = _db_client(org2, "SM-9999", (15.0, 18.0, 21.0), last=today)
    assert "off_track" in episode.alerts  # judged with the platform model: red (hand)
    with translation.override("en"):
        chart = episode_chart(episode)
    assert chart.has_band
    assert "whole platform" in chart.note
    # hand: the band follows target(15) at session 3 = 23.964 → shown as 24.0
    ors_band = [t for t in chart.figure["data"] if t["name"] == "Expected trajectory (ETR)"]
    assert ors_band[0]["y"][0] == 15.0 and ors_band[0]["y"][2] == 24.0
    # 9a: once closed, the band ends at the last session (no points ahead).
    episode_close(actor=episode.therapist, episode=episode, closed_on=today)
    episode.refresh_from_db()
    with translation.override("en"):
        closed_chart = episode_chart(episode)
    band = [t for t in closed_chart.figure["data"] if t["name"] == "Expected trajectory (ETR)"]
    assert band[0]["x"][-1] == today.isoformat()


# ------------------------------------------------------------ 5. ETR reference episodes


def _stale() -> list[list[dict[str, Any]]]:
    """40 open episodes whose last session (15 January 2024) is 167 days before 30 June:
    neither closed nor active. They do not change at all (ORS x, x, x)."""
    return [_episode(5000 + i, [10.0 + 0.5 * i] * 3, start=dt.date(2024, 1, 1)) for i in range(40)]


def test_open_episodes_past_the_inactivity_window_are_not_reference_data() -> None:
    model = etr_fit(_frame(*_reference(), *_stale()), as_of=AS_OF)
    target, boundary = etr_expected(model, "adult", 15.0, 3)
    # hand: the 40 reference episodes only (with the stale ones, which stay at their
    # intake, the target would lie about halfway between 15 and 24)
    assert float(target) == pytest.approx(TARGET_15, abs=1e-5)
    assert float(boundary) == pytest.approx(BOUNDARY_15, abs=1e-5)
    # The n of the point counts the 40 reference episodes only.
    point = model.point("adult", 3)
    assert point is not None and point["n"] == 40


def test_the_recompute_fits_on_closed_and_active_episodes_only() -> None:
    from stats.services import Context, compute_payloads

    ctx = Context(settings={1: StatsSettings()}, unit_parent={1: None}, unit_org={1: 1})
    payloads = compute_payloads(_frame(*_reference(), *_stale()), ctx, as_of=AS_OF)
    for key in [("organisation", 1, 1), ("platform", 0, 0)]:
        model = EtrModel.from_dict(payloads[key]["etr_model"])
        target, _boundary = etr_expected(model, "adult", 15.0, 3)
        assert float(target) == pytest.approx(TARGET_15, abs=1e-5), key


# ------------------------------------------------------ 6. cutoffs on the median trajectory


def _cutoffs(fig: dict[str, Any]) -> dict[float, str]:
    """Cutoff line value → its label."""
    shapes = fig["layout"]["shapes"]
    labels = {a["y"]: a["text"] for a in fig["layout"]["annotations"]}
    assert all(s["x0"] == 0 and s["x1"] == 1 and s["xref"] == "paper" for s in shapes)
    return {s["y0"]: labels[s["y0"]] for s in shapes}


POINTS = [
    {"session_number": n, "ors_median": 18.0 + n, "srs_median": 37.0, "n_ors": 9, "n_srs": 9}
    for n in (1, 2, 3)
]


def test_the_trajectory_shows_every_age_groups_cutoff_when_ages_are_mixed() -> None:
    from stats.charts import trajectory_figure

    with translation.override("en"):
        lines = _cutoffs(trajectory_figure(POINTS))
    # statistics.md: ORS adult 25, youth 28, child 32; SRS 36
    assert sorted(lines) == [25.0, 28.0, 32.0, 36.0]
    assert "adults" in lines[25.0] and "youth" in lines[28.0] and "children" in lines[32.0]
    assert "Alliance" in lines[36.0]


def test_the_trajectory_of_one_age_group_shows_its_cutoff_from_the_settings() -> None:
    from stats.charts import trajectory_figure

    with translation.override("en"):
        fig = trajectory_figure(
            POINTS,
            ors_cutoffs={"adult": 24.0, "youth": 27.5, "child": 32.0},
            srs_cutoff=35.0,
            age_group="youth",
        )
        lines = _cutoffs(fig)
    assert sorted(lines) == [27.5, 35.0]
    assert "27.5" in lines[27.5]


@pytest.mark.django_db
def test_my_figures_page_draws_the_organisations_cutoffs(login: Any, org1: OrgPersonas) -> None:
    org1.org.ors_cutoff_adult = 24
    org1.org.save()
    episode = make_episode(org1, code="TR-0001")
    record(episode, timezone.localdate() - dt.timedelta(days=3), ors="18.0", srs="37.0")
    response = login(org1.therapist_a).get("/stats/mine/", {"age": "adult"})
    assert response.status_code == 200
    fig = response.context["trajectory_fig"]()
    assert sorted(s["y0"] for s in fig["layout"]["shapes"]) == [24.0, 36.0]


# ------------------------------------------------------------------- 7. no contact


def test_no_contact_after_exactly_30_days_without_a_session() -> None:
    # 31 May → 30 June: 30 days without a session → alert; 1 June: 29 days → none.
    sessions = _frame(
        _episode(1, [20.0, 21.0], start=AS_OF - dt.timedelta(days=37)),
        _episode(2, [20.0, 21.0], start=AS_OF - dt.timedelta(days=36)),
    )
    alerts = episode_alerts(sessions, as_of=AS_OF)
    assert alerts["days_since_last"].to_dict() == {1: 30, 2: 29}
    assert alerts["no_contact"].to_dict() == {1: True, 2: False}


# ------------------------------------------------------------------- 8. one decimal


def test_effect_sizes_are_displayed_with_one_decimal() -> None:
    from stats.models import StatsSnapshot
    from stats.selectors import Figures
    from stats.views import _etr_view, _table_rows

    row = {"effect_size_d": 0.8536, "effect_size_pct": 18.333}
    figs = Figures(
        snapshot=StatsSnapshot(),
        anonymised=False,
        k=5,
        table={"active": dict(row), "inactive": dict(row)},
        suppressed={"active": {}, "inactive": {}},
        trajectory=[],
        etr={"relative_effect_size": -0.26, "ended_evaluable": 12},
        etr_suppressed={},
        implementation=[],
        quality={},
        spread=[],
        show_spread=False,
    )
    with translation.override("da"):
        effect = _table_rows(figs)[-1]
        # 0.8536 → 0,9; 18.333 → 18,3 (one decimal, half up)
        assert effect["active"]["text"] == "0,9 / 18,3 %"
        # −0.26 → −0,3
        assert _etr_view(figs)["relative_effect_size"] == "-0,3"


# --------------------------------------------------------------- 9. the client graph


def _chart_sessions(*ors: float) -> list[Any]:
    from measures.charts import ChartSession

    start = dt.date(2026, 9, 1)
    return [
        ChartSession(date=start + dt.timedelta(days=7 * i), number=i + 1, ors=o, srs=38.0)
        for i, o in enumerate(ors)
    ]


def _line_model(numbers: tuple[int, ...], *, thin: dict[int, int] | None = None) -> EtrModel:
    """target = 5 + 0.9·intake, boundary = target − 4, intakes 5–35, at ``numbers``;
    ``thin``: session number → n of a point below the minimum (not available)."""
    points = [
        {
            "age_group": "adult",
            "session_number": n,
            "n": 40,
            "available": True,
            "intercept": 5.0,
            "slope": 0.9,
            "boundary_offset": -4.0,
            "intake_min": 5.0,
            "intake_max": 35.0,
        }
        for n in numbers
    ] + [
        {"age_group": "adult", "session_number": n, "n": count, "available": False}
        for n, count in (thin or {}).items()
    ]
    return EtrModel.from_dict(
        {
            "method": "test",
            "min_n": 30,
            "boundary_quantile": 0.25,
            "intake_sd": {},
            "intake_sd_n": {},
            "points": points,
        }
    )


def test_a_closed_episodes_band_ends_at_its_last_session() -> None:
    from measures.charts import etr_band_for

    sessions = _chart_sessions(20.0, 22.0, 24.0)
    with translation.override("en"):
        band, note = etr_band_for(
            model=_line_model((2, 3, 4, 5, 6)), age_group="adult", sessions=sessions, closed=True
        )
        open_band, _note = etr_band_for(
            model=_line_model((2, 3, 4, 5, 6)), age_group="adult", sessions=sessions
        )
    assert band is not None and open_band is not None
    assert band.numbers == [1, 2, 3] and not any(band.projected)
    # hand: target = 5 + 0.9·20 = 23.0 at sessions 2 and 3
    assert band.target == [20.0, 23.0, 23.0]
    assert "usual interval" not in note
    assert open_band.numbers == [1, 2, 3, 4, 5, 6]  # open: three sessions ahead


def test_the_note_says_why_the_band_ends_before_the_last_session() -> None:
    from measures.charts import etr_band_for

    sessions = _chart_sessions(20.0, 22.0, 24.0, 25.0, 26.0)
    with translation.override("en"):
        band, note = etr_band_for(
            model=_line_model((2, 3), thin={4: 12}), age_group="adult", sessions=sessions
        )
    assert band is not None and band.numbers == [1, 2, 3]
    assert "ends at session 3" in note
    assert "12 clients with an ORS at session 4" in note and "30" in note


def test_the_note_says_so_when_no_reference_client_reached_the_next_session() -> None:
    from measures.charts import etr_band_for

    sessions = _chart_sessions(20.0, 22.0, 24.0, 25.0)
    with translation.override("en"):
        _band, note = etr_band_for(model=_line_model((2,)), age_group="adult", sessions=sessions)
    assert "ends at session 2" in note and "0 clients with an ORS at session 3" in note


def test_value_labels_sit_on_the_side_away_from_the_cutoff() -> None:
    from measures.charts import ChartSession, episode_figure

    start = dt.date(2026, 9, 1)
    pairs = [(24.0, 36.0), (25.0, 35.9), (30.0, 37.0)]
    sessions = [
        ChartSession(date=start + dt.timedelta(days=7 * i), number=i + 1, ors=o, srs=s)
        for i, (o, s) in enumerate(pairs)
    ]
    fig = episode_figure(sessions=sessions, ors_cutoff=25.0, srs_cutoff=36.0)
    ors = next(t for t in fig["data"] if t["name"] == "ORS")
    srs = next(t for t in fig["data"] if t["name"] == "SRS")
    # ORS 24 is below the 25 line → its label below; 25 (on the line) and 30 above.
    assert ors["textposition"] == ["bottom center", "top center", "top center"]
    # SRS 36.0 on the 36 line → above it (not on the line); 35.9 below; 37 above.
    assert srs["textposition"] == ["top center", "bottom center", "top center"]
