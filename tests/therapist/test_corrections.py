"""Correcting and deleting a saved session from the episode page: the date and both
scores, validated like a new entry (nothing half-saved), renumbered, logged, and only
by the episode's own therapist (a supervision grant reads, never writes)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from datapolicy.models import AccessLog, Grant
from measures.models import Score, Session
from tests.conftest import OrgPersonas, make_episode, record

pytestmark = pytest.mark.django_db
TODAY = dt.date.today()


@pytest.fixture
def episode(org1: OrgPersonas) -> Any:
    return make_episode(org1, code="KO-1")


@pytest.fixture
def therapist(client: Any, org1: OrgPersonas) -> Any:
    client.cookies["django_language"] = "en"
    client.force_login(org1.therapist_a)
    return client


def _scores(session: Session) -> dict[str, Score]:
    return {
        s.kind: s for s in Score.objects.for_org(session.organisation_id).filter(session=session)
    }


def _sessions(episode: Any) -> list[tuple[int, dt.date]]:
    return list(
        Session.objects.for_org(episode.organisation)
        .filter(episode=episode)
        .order_by("number")
        .values_list("number", "date")
    )


def _edit(client: Any, session: Session, **data: str) -> Any:
    return client.post(reverse("session_edit", kwargs={"pk": session.pk}), data)


def test_the_episode_page_links_each_session_to_its_correction(
    therapist: Any, episode: Any
) -> None:
    s = record(episode, TODAY - dt.timedelta(days=7), ors="18.0", srs="35.0")
    page = therapist.get(reverse("episode_detail", kwargs={"pk": episode.pk})).content.decode()
    assert reverse("session_edit", kwargs={"pk": s.pk}) in page


def test_the_form_shows_what_was_saved(therapist: Any, episode: Any, client: Any) -> None:
    from measures.services import ScoreInput, session_record

    s = session_record(
        actor=episode.therapist,
        episode=episode,
        date=TODAY - dt.timedelta(days=3),
        ors=ScoreInput.parse(["4.2", "5", "6.8", "0"]),
        srs=ScoreInput(total=Decimal("36.5")),
    )
    page = therapist.get(reverse("session_edit", kwargs={"pk": s.pk})).content.decode()
    assert 'value="4.2"' in page and 'value="6.8"' in page  # the items as marked
    assert 'value="36.5"' in page  # the SRS total typed from paper
    assert (TODAY - dt.timedelta(days=3)).isoformat() in page
    # Danish (the default) shows the decimal comma a Danish therapist types.
    client.cookies["django_language"] = "da"
    assert (
        'value="4,2"' in client.get(reverse("session_edit", kwargs={"pk": s.pk})).content.decode()
    )


def test_a_mistyped_total_is_corrected_and_the_statistics_follow(
    therapist: Any, episode: Any
) -> None:
    s = record(episode, TODAY - dt.timedelta(days=7), ors="18.0", srs="35.0")
    response = _edit(therapist, s, date=s.date.isoformat(), ors_total="28,0", srs_total="35.0")
    assert response.status_code == 302 and response["Location"].endswith("#graph-card")
    scores = _scores(s)
    assert scores["outcome"].total == Decimal("28.0")
    assert scores["alliance"].total == Decimal("35.0")
    log = AccessLog.objects.filter(object_type="session", object_id=s.pk, action="update")
    assert log.count() == 1
    assert log.get().user_id == episode.therapist_id


def test_items_replace_a_total_and_must_add_up(therapist: Any, episode: Any) -> None:
    s = record(episode, TODAY - dt.timedelta(days=7), ors="18.0")
    bad = _edit(
        therapist,
        s,
        date=s.date.isoformat(),
        ors_1="1",
        ors_2="2",
        ors_3="3",
        ors_4="4",
        ors_total="11",
    )
    assert bad.status_code == 400
    assert "does not match the sum of the items" in bad.content.decode()
    assert _scores(s)["outcome"].total == Decimal("18.0")  # unchanged
    ok = _edit(therapist, s, date=s.date.isoformat(), ors_1="1", ors_2="2", ors_3="3", ors_4="4")
    assert ok.status_code == 302
    score = _scores(s)["outcome"]
    assert score.items == [Decimal("1.0"), Decimal("2.0"), Decimal("3.0"), Decimal("4.0")]
    assert score.total == Decimal("10.0")


def test_out_of_range_values_change_nothing(therapist: Any, episode: Any) -> None:
    day = TODAY - dt.timedelta(days=7)
    s = record(episode, day, ors="18.0", srs="35.0")
    response = _edit(
        therapist,
        s,
        date=(day - dt.timedelta(days=1)).isoformat(),  # a valid date change ...
        ors_total="41",  # ... with an impossible total: nothing may be saved
        srs_total="35",
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "40" in body  # the message names the allowed range
    assert _sessions(episode) == [(1, day)]
    assert _scores(s)["outcome"].total == Decimal("18.0")


def test_moving_the_date_renumbers_and_asks_about_a_same_date(therapist: Any, episode: Any) -> None:
    d1, d2, d3 = (TODAY - dt.timedelta(days=n) for n in (21, 14, 7))
    record(episode, d1, ors="15.0")
    s2 = record(episode, d2, ors="17.0")
    record(episode, d3, ors="19.0")
    # Session 2 was really the first meeting: it moves before session 1.
    earlier = d1 - dt.timedelta(days=2)
    assert _edit(therapist, s2, date=earlier.isoformat(), ors_total="17").status_code == 302
    assert _sessions(episode) == [(1, earlier), (2, d1), (3, d3)]
    s2.refresh_from_db()
    assert s2.number == 1
    episode.refresh_from_db()
    assert episode.started_on <= earlier
    # Onto the date of another session: asked first, then allowed.
    asked = _edit(therapist, s2, date=d3.isoformat(), ors_total="17")
    assert asked.status_code == 400 and "already has a session on" in asked.content.decode()
    assert _sessions(episode)[0] == (1, earlier)
    confirmed = _edit(therapist, s2, date=d3.isoformat(), ors_total="17", confirm_same_date="on")
    assert confirmed.status_code == 302
    assert [d for _n, d in _sessions(episode)] == [d1, d3, d3]
    # Keeping its own date is no "second session on the same date".
    assert _edit(therapist, s2, date=d3.isoformat(), ors_total="17.5").status_code == 302


def test_a_future_date_is_refused(therapist: Any, episode: Any) -> None:
    s = record(episode, TODAY - dt.timedelta(days=1), ors="18.0")
    tomorrow = TODAY + dt.timedelta(days=1)
    response = _edit(therapist, s, date=tomorrow.isoformat(), ors_total="18")
    assert response.status_code == 400 and "future" in response.content.decode()
    assert _sessions(episode) == [(1, TODAY - dt.timedelta(days=1))]


def test_emptying_a_scale_removes_that_score_but_not_both(therapist: Any, episode: Any) -> None:
    s = record(episode, TODAY - dt.timedelta(days=7), ors="18.0", srs="35.0")
    assert _edit(therapist, s, date=s.date.isoformat(), ors_total="18").status_code == 302
    assert set(_scores(s)) == {"outcome"}
    nothing = _edit(therapist, s, date=s.date.isoformat())
    assert nothing.status_code == 400 and "delete it" in nothing.content.decode()
    assert set(_scores(s)) == {"outcome"}


def test_a_closed_episode_can_be_corrected_up_to_its_closing_date(
    therapist: Any, episode: Any, org1: OrgPersonas
) -> None:
    from clients.services import episode_close

    s = record(episode, TODAY - dt.timedelta(days=10), ors="18.0")
    episode_close(actor=org1.therapist_a, episode=episode, closed_on=TODAY - dt.timedelta(days=5))
    fixed = _edit(therapist, s, date=s.date.isoformat(), ors_total="21")
    assert fixed.status_code == 302
    assert _scores(s)["outcome"].total == Decimal("21.0")
    late = _edit(therapist, s, date=(TODAY - dt.timedelta(days=2)).isoformat(), ors_total="21")
    assert late.status_code == 400 and "after the episode was closed" in late.content.decode()
    assert _sessions(episode) == [(1, TODAY - dt.timedelta(days=10))]


def test_delete_asks_first_then_renumbers_and_logs(therapist: Any, episode: Any) -> None:
    d1, d2 = TODAY - dt.timedelta(days=14), TODAY - dt.timedelta(days=7)
    s1 = record(episode, d1, ors="15.0", srs="30.0")
    record(episode, d2, ors="17.0")
    url = reverse("session_delete", kwargs={"pk": s1.pk})
    views_before = AccessLog.objects.filter(action="view", object_id=episode.pk).count()
    confirm = therapist.get(url)
    assert confirm.status_code == 200 and "cannot be undone" in confirm.content.decode()
    # The page shows the client code: reading it is logged like the episode page.
    views_after = AccessLog.objects.filter(action="view", object_id=episode.pk).count()
    assert views_after == views_before + 1
    assert len(_sessions(episode)) == 2  # a GET deletes nothing
    response = therapist.post(url)
    assert response.status_code == 302
    assert _sessions(episode) == [(1, d2)]
    assert not Score.objects.for_org(episode.organisation).filter(session_id=s1.pk).exists()
    assert AccessLog.objects.filter(
        object_type="session", object_id=s1.pk, action="delete"
    ).exists()


def test_only_the_own_therapist_corrects(
    client: Any, episode: Any, org1: OrgPersonas, org2: OrgPersonas
) -> None:
    """A colleague with a supervision grant sees the graph but cannot open, change or
    delete a session (404: the write path does not show the session exists); a leader
    gets 403; another organisation's therapist 404."""
    from guardian.shortcuts import assign_perm

    s = record(episode, TODAY - dt.timedelta(days=7), ors="18.0")
    now = timezone.now()
    Grant.objects.create(
        organisation=org1.org,
        kind=Grant.Kind.CLIENT_GRAPH,
        grantor=org1.therapist_a,
        grantee=org1.therapist_b,
        episode=episode,
        purpose="supervision",
        starts_at=now - dt.timedelta(hours=1),
        expires_at=now + dt.timedelta(days=7),
        created_by=org1.therapist_a,
    )
    assign_perm("clients.view_episode_graph", org1.therapist_b, episode)
    edit = reverse("session_edit", kwargs={"pk": s.pk})
    delete = reverse("session_delete", kwargs={"pk": s.pk})
    client.force_login(org1.therapist_b)
    assert client.get(reverse("episode_detail", kwargs={"pk": episode.pk})).status_code == 200
    assert client.get(edit).status_code == 404
    assert client.post(edit, {"date": s.date.isoformat(), "ors_total": "1"}).status_code == 404
    assert client.post(delete).status_code == 404
    client.force_login(org1.leader)
    assert client.post(delete).status_code == 403
    client.force_login(org2.therapist_a)
    assert client.post(delete).status_code == 404
    assert _scores(s)["outcome"].total == Decimal("18.0")
    assert len(_sessions(episode)) == 1
