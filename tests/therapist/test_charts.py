"""The client graph's figure builder: pure functions, hand-made inputs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import translation

from measures.charts import ChartSession, EtrBand, episode_figure, etr_band_for
from stats.etr import EtrModel

D0 = dt.date(2026, 9, 1)


def _sessions(*ors_srs: tuple[float | None, float | None]) -> list[ChartSession]:
    return [
        ChartSession(date=D0 + dt.timedelta(days=7 * i), number=i + 1, ors=o, srs=s)
        for i, (o, s) in enumerate(ors_srs)
    ]


def _trace(fig: dict[str, Any], name_start: str) -> dict[str, Any]:
    matches = [t for t in fig["data"] if str(t["name"]).startswith(name_start)]
    assert len(matches) == 1, [t["name"] for t in fig["data"]]
    return matches[0]


def _model(*, available: bool = True, numbers: tuple[int, ...] = (2, 3, 4, 5, 6)) -> EtrModel:
    # target = 5 + 0.9 * intake; boundary = target - 4; intakes 5-35 in the reference data.
    points = [
        {
            "age_group": "adult",
            "session_number": n,
            "n": 40 if available else 7,
            "available": available,
            "intercept": 5.0 if available else None,
            "slope": 0.9 if available else None,
            "boundary_offset": -4.0 if available else None,
            "intake_min": 5.0 if available else None,
            "intake_max": 35.0 if available else None,
        }
        for n in numbers
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


@pytest.mark.parametrize(("cutoff"), [25.0, 28.0, 32.0])
def test_it_draws_the_cutoff_it_is_given(cutoff: float) -> None:
    with translation.override("en"):
        fig = episode_figure(
            sessions=_sessions((18.0, 35.0), (22.5, 38.0)), ors_cutoff=cutoff, srs_cutoff=36.0
        )
        line = _trace(fig, "Clinical cutoff")
    assert line["y"] == [cutoff, cutoff]
    assert line["line"]["dash"] == "dash"
    # The line spans the whole x range, beyond the first and last session.
    assert line["x"][0] < "2026-09-01" and line["x"][1] > "2026-09-08"


def test_it_plots_ors_and_srs_per_session_with_dates_and_value_labels() -> None:
    with translation.override("en"):
        fig = episode_figure(
            sessions=_sessions((18.0, 35.0), (None, 38.0), (22.5, None)),
            ors_cutoff=25.0,
            srs_cutoff=36.0,
        )
    ors = _trace(fig, "ORS")
    srs = _trace(fig, "SRS")
    assert ors["x"] == ["2026-09-01", "2026-09-15"]
    assert ors["y"] == [18.0, 22.5]
    assert ors["text"] == ["18.0", "22.5"]  # printed on the graph: no hover needed
    assert "text" in ors["mode"] and "markers" in ors["mode"]
    assert srs["x"] == ["2026-09-01", "2026-09-08"]
    assert srs["y"] == [35.0, 38.0]
    assert srs["yaxis"] == "y2"
    alliance = _trace(fig, "Alliance limit")
    assert alliance["y"] == [36.0, 36.0] and alliance["yaxis"] == "y2"
    assert fig["layout"]["xaxis2"]["type"] == "date"
    assert fig["layout"]["showlegend"] is True


def test_value_labels_use_the_danish_decimal_comma() -> None:
    with translation.override("da"):
        fig = episode_figure(sessions=_sessions((18.5, 35.0)), ors_cutoff=25, srs_cutoff=36)
    assert _trace(fig, "ORS")["text"] == ["18,5"]


def test_no_band_traces_without_a_band() -> None:
    with translation.override("en"):
        fig = episode_figure(sessions=_sessions((18.0, 35.0)), ors_cutoff=25, srs_cutoff=36)
    assert not [t for t in fig["data"] if "Expected" in str(t["name"])]


def test_the_band_is_drawn_between_boundary_and_target() -> None:
    band = EtrBand(
        dates=[D0, D0 + dt.timedelta(days=7)],
        numbers=[1, 2],
        target=[20.0, 23.0],
        boundary=[20.0, 19.0],
    )
    with translation.override("en"):
        fig = episode_figure(
            sessions=_sessions((20.0, 35.0)), ors_cutoff=25, srs_cutoff=36, band=band
        )
        names = [t["name"] for t in fig["data"]]
        target = _trace(fig, "Expected trajectory (ETR)")
        lower = _trace(fig, "Expected trajectory: lower boundary")
    assert names.index(lower["name"]) + 1 == names.index(target["name"])
    assert target["fill"] == "tonexty"
    assert target["y"] == [20.0, 23.0] and lower["y"] == [20.0, 19.0]


def test_etr_band_follows_the_model_from_the_intake() -> None:
    sessions = _sessions((20.0, 35.0), (24.0, 37.0))
    with translation.override("en"):
        band, note = etr_band_for(model=_model(), age_group="adult", sessions=sessions)
    assert band is not None
    # Intake 20: target 5 + 0.9*20 = 23.0, boundary 19.0, at sessions 2 (held) and 3, 4, 5
    # (projected one week apart, the episode's interval).
    assert band.numbers == [1, 2, 3, 4, 5]
    assert band.target == [20.0, 23.0, 23.0, 23.0, 23.0]
    assert band.boundary == [20.0, 19.0, 19.0, 19.0, 19.0]
    assert band.dates[1] == D0 + dt.timedelta(days=7)
    assert band.dates[2] == D0 + dt.timedelta(days=14)
    assert band.projected == [False, False, True, True, True]
    assert "expected trajectory" in note


def test_no_band_when_the_organisation_has_too_little_data() -> None:
    with translation.override("en"):
        band, note = etr_band_for(
            model=_model(available=False), age_group="adult", sessions=_sessions((20.0, None))
        )
    assert band is None
    assert "too few episodes" in note and "30" in note


def test_no_band_for_an_age_group_without_points() -> None:
    with translation.override("en"):
        band, note = etr_band_for(model=_model(), age_group="child", sessions=_sessions((20, 30)))
    assert band is None and "too few episodes" in note


def test_no_band_when_the_intake_is_outside_the_reference_range() -> None:
    with translation.override("en"):
        band, note = etr_band_for(
            model=_model(), age_group="adult", sessions=_sessions((38.0, None))
        )
    assert band is None and "outside the range" in note


def test_no_band_before_the_first_ors() -> None:
    with translation.override("en"):
        band, note = etr_band_for(
            model=_model(), age_group="adult", sessions=_sessions((None, 30.0))
        )
    assert band is None and "No ORS yet" in note
