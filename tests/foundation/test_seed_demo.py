"""The demo organisation: realistic, deterministic, isolated, no CPR-shaped values."""

import datetime as dt
import io

import pandas as pd
from django.core.management import call_command

from clients.models import Client, Episode
from datapolicy.models import Membership, Organisation, Role
from datapolicy.validators import looks_like_cpr
from stats.engine import StatsSettings, episode_frame, statistics_table
from stats.frames import sessions_frame_for_org


def _load(seed: int = 7):
    call_command("seed_demo", "--seed", str(seed), stdout=io.StringIO())
    return Organisation.objects.get(slug="demo"), Organisation.objects.get(slug="nabo")


def test_demo_has_the_roles_and_units(db) -> None:
    demo, nabo = _load()
    roles = list(Membership.objects.for_org(demo).values_list("role", flat=True))
    assert roles.count(Role.THERAPIST) == 13  # 12 active + one who left (a "ghost")
    assert {Role.UNIT_LEADER, Role.MI_OFFICER, Role.DP_ADMIN, Role.SYSTEM_OWNER} <= set(roles)
    assert Membership.objects.for_org(nabo).filter(role=Role.THERAPIST).count() == 2
    assert Episode.objects.for_org(demo).filter(therapist__memberships__is_active=False).exists()


def test_demo_data_looks_like_a_real_service(db) -> None:
    demo, _ = _load()
    frame = sessions_frame_for_org(demo.pk)
    episodes = episode_frame(frame, as_of=dt.date.today(), settings=StatsSettings())
    table = statistics_table(episodes, by=[])
    n_per_episode = frame.groupby("episode_id").size()
    assert n_per_episode.max() <= 20 and n_per_episode.min() >= 1
    assert table.loc[True, "episodes"] >= 60  # active caseloads of about 5-15 per therapist
    assert 14 <= table.loc[False, "ors_start"] <= 21
    assert 2 <= table.loc[False, "ors_change"] <= 10
    assert 33 <= table.loc[False, "srs_start"] <= 39
    assert table.loc[False, "reliable_deterioration"] > 0  # a minority deteriorate
    ages = set(frame["age_group"])
    assert {"adult", "youth", "child"} <= ages


def test_seed_is_deterministic() -> None:
    """The generator behind seed_demo gives the same data for the same --seed."""
    import numpy as np

    from measures.demo import generate

    def run(seed: int):
        return generate(
            np.random.default_rng(seed),
            n_episodes=300,
            therapist_keys=np.array([1, 2, 3]),
            therapist_units=np.array([10, 10, 20]),
            unit_age_weights={10: (0.5, 0.3, 0.2), 20: (1.0, 0.0, 0.0)},
            today=dt.date(2026, 1, 31),
        )

    a, b, c = run(11), run(11), run(12)
    pd.testing.assert_frame_equal(a.sessions, b.sessions)
    pd.testing.assert_frame_equal(a.episodes, b.episodes)
    assert not a.sessions["ors_total"].equals(c.sessions["ors_total"])


def test_no_cpr_shaped_values(db) -> None:
    demo, nabo = _load()
    for org in (demo, nabo):
        codes = Client.objects.for_org(org).values_list("code", "note")
        assert not any(looks_like_cpr(c) or looks_like_cpr(n) for c, n in codes)


def test_if_empty_does_not_load_twice(db) -> None:
    _load()
    call_command("seed_demo", "--if-empty", stdout=io.StringIO())
    assert Organisation.objects.filter(slug="demo").count() == 1


def test_bulk_mode_loads_many_sessions(db) -> None:
    call_command("seed_demo", "--sessions", "5000", "--organisations", "2", stdout=io.StringIO())
    orgs = Organisation.objects.filter(slug__startswith="bench-")
    assert orgs.count() == 2
    from measures.models import Session

    total = sum(Session.objects.for_org(o).count() for o in orgs)
    assert 4500 <= total <= 5500  # "about" the number asked for


def test_the_demo_shows_the_cross_organisation_benchmark(db, client) -> None:
    """Three organisations with active and inactive episodes: the benchmark (at least 3
    organisations per side, docs/datapolicy.md) has something to show in the demo."""
    from django.urls import reverse

    from datapolicy.models import User
    from stats.services import stats_recompute_all

    _load()
    assert Organisation.objects.filter(slug="fjord").exists()
    stats_recompute_all()
    client.force_login(User.objects.get(username="leder-ung"))
    body = client.get(reverse("api_stats_scope", kwargs={"scope": "platform", "scope_id": 0}))
    data = body.json()
    assert not data["hidden_reason"]
    assert data["active"]["episodes"] and data["inactive"]["episodes"]
