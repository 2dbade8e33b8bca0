"""The one write path for scores: validation on the server, nothing half-saved."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from clients.services import episode_close
from datapolicy.models import AccessLog
from measures.models import Score, Session
from measures.services import SameDateSession, ScoreInput, score_set
from tests.conftest import make_episode, record

TODAY = dt.date.today()


def days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def test_items_give_the_total(org1) -> None:
    value = ScoreInput.parse(["6,4", "5.0", "7.1", "4"])
    assert value.total == Decimal("22.5")
    assert value.items == (Decimal("6.4"), Decimal("5.0"), Decimal("7.1"), Decimal("4.0"))


@pytest.mark.parametrize(
    ("items", "total", "fragment"),
    [
        (["10.1", "1", "1", "1"], None, "uden for det tilladte interval 0,0-10,0"),
        (["-0.1", "1", "1", "1"], None, "uden for det tilladte interval"),
        (None, "40.5", "uden for det tilladte interval 0,0-40,0"),
        (["1", "2", "3", "4"], "11", "passer ikke med summen"),
        (["1", "2", "", "4"], None, "alle fire"),
        (["1.25", "2", "3", "4"], None, "højst én decimal"),
        (None, "abc", "er ikke et tal"),
        (None, None, "fire værdier eller totalen"),
    ],
)
def test_bad_scores_are_refused_with_a_message(items, total, fragment) -> None:
    """Messages are Danish by default (the interface language)."""
    with pytest.raises(ValidationError) as err:
        ScoreInput.parse(items, total)
    assert fragment in str(err.value)


def test_session_numbers_follow_dates(org1) -> None:
    ep = make_episode(org1)
    s2 = record(ep, days_ago(10), ors="20.0")
    s1 = record(ep, days_ago(20), ors="18.0")  # back-dated: becomes number 1
    s2.refresh_from_db()
    s1.refresh_from_db()
    assert (s1.number, s2.number) == (1, 2)


def test_future_date_is_refused_and_nothing_saved(org1) -> None:
    ep = make_episode(org1)
    with pytest.raises(ValidationError):
        record(ep, TODAY + dt.timedelta(days=1), ors="20.0")
    assert Session.objects.for_org(org1.org).count() == 0


def test_second_session_same_date_asks_first(org1) -> None:
    ep = make_episode(org1)
    record(ep, days_ago(1), ors="20.0")
    with pytest.raises(SameDateSession):
        record(ep, days_ago(1), ors="21.0")
    assert Session.objects.for_org(org1.org).count() == 1
    record(ep, days_ago(1), ors="21.0", confirm_same_date=True)
    assert Session.objects.for_org(org1.org).count() == 2


def test_srs_without_ors_is_allowed(org1) -> None:
    ep = make_episode(org1)
    s = record(ep, days_ago(1), srs="38.0")
    assert list(s.scores.values_list("kind", flat=True)) == ["alliance"]


def test_srs_added_at_the_end_and_not_twice(org1) -> None:
    ep = make_episode(org1)
    s = record(ep, days_ago(1), ors="20.0")
    score_set(
        actor=org1.therapist_a, session=s, kind="alliance", value=ScoreInput(total=Decimal("37.0"))
    )
    with pytest.raises(ValidationError):
        score_set(
            actor=org1.therapist_a,
            session=s,
            kind="alliance",
            value=ScoreInput(total=Decimal("30.0")),
        )
    assert Score.objects.for_org(org1.org).get(session=s, kind="alliance").total == Decimal("37.0")


def test_closed_episode_takes_no_sessions(org1) -> None:
    ep = make_episode(org1)
    record(ep, days_ago(5), ors="20.0")
    episode_close(actor=org1.therapist_a, episode=ep, closed_on=days_ago(1))
    with pytest.raises(ValidationError):
        record(ep, days_ago(0), ors="21.0")


def test_child_episode_uses_child_scales(org1) -> None:
    ep = make_episode(org1, age_group="child", code="C-1")
    s = record(ep, days_ago(1), ors="30.0", srs="35.0")
    assert sorted(s.scores.values_list("scale__code", flat=True)) == ["CORS", "CSRS"]


def test_changes_are_logged_without_scores(org1) -> None:
    ep = make_episode(org1)
    record(ep, days_ago(1), ors="20.0")
    entry = AccessLog.objects.filter(object_type="session").get()
    assert (entry.user, entry.action, entry.client_id) == (org1.therapist_a, "create", ep.client_id)


def test_alerts_update_at_once(org1) -> None:
    ep = make_episode(org1)
    record(ep, days_ago(14), ors="20.0", srs="38.0")
    ep.refresh_from_db()
    assert "alliance" not in ep.alerts
    record(ep, days_ago(7), ors="14.0", srs="33.0")  # ORS 6 points worse, SRS below 36
    ep.refresh_from_db()
    assert "alliance" in ep.alerts
    assert "deterioration" in ep.alerts


class TestDatabaseConstraints:
    """The database refuses what the forms refuse (not only form validation)."""

    def _score(self, org1, **fields):
        ep = make_episode(org1)
        s = record(ep, days_ago(1))
        from measures.models import Scale

        base = dict(
            organisation=org1.org, session=s, scale=Scale.objects.get(code="ORS"), kind="outcome"
        )
        base.update(fields)
        return Score.dangerously_unscoped.create(**base)

    @pytest.mark.parametrize(
        "fields",
        [
            dict(total=Decimal("40.1")),
            dict(total=Decimal("-1.0")),
            dict(item1=Decimal("10.5"), item2=1, item3=1, item4=1, total=Decimal("13.5")),
            dict(item1=1, item2=1, item3=1, item4=1, total=Decimal("5.0")),  # sum mismatch
            dict(item1=1, total=Decimal("1.0")),  # items all or none
        ],
    )
    def test_score_constraints(self, org1, fields) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            self._score(org1, **fields)

    def test_one_ors_per_session(self, org1) -> None:
        ep = make_episode(org1)
        s = record(ep, days_ago(1), ors="20.0")
        from measures.models import Scale

        with pytest.raises(IntegrityError), transaction.atomic():
            Score.dangerously_unscoped.create(
                organisation=org1.org,
                session=s,
                scale=Scale.objects.get(code="ORS"),
                kind="outcome",
                total=Decimal("21.0"),
            )
