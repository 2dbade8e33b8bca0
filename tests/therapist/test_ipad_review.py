"""Findings of an iPad review of the therapist workflow (Playwright at iPad sizes),
each reproduced here first: what a therapist or a client would have hit."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.urls import reverse

from measures.clientmode import SESSION_KEY
from measures.models import Session, SessionDraft
from tests.conftest import OrgPersonas, make_episode, record

pytestmark = pytest.mark.django_db
TODAY = dt.date.today()
ITEMS = {"item1": "3.3", "item2": "4.4", "item3": "5", "item4": "6"}


@pytest.fixture
def episode(org1: OrgPersonas) -> Any:
    return make_episode(org1, code="IP-1")


@pytest.fixture
def therapist(client: Any, org1: OrgPersonas) -> Any:
    client.cookies["django_language"] = "en"
    client.force_login(org1.therapist_a)
    return client


def _start(client: Any, episode: Any, **extra: Any) -> Any:
    return client.post(
        reverse("session_new", kwargs={"pk": episode.pk}), {"date": TODAY.isoformat(), **extra}
    )


def _interrupt(client: Any, episode: Any) -> None:
    """The client made two marks; the therapist takes the iPad back."""
    response = client.post(
        reverse("client_mode_draft", kwargs={"pk": episode.pk}),
        data=json.dumps({"items": ["3.3", "4.4", "", ""]}),
        content_type="application/json",
    )
    assert response.status_code == 200
    client.post(reverse("client_mode_unlock"), {"secret": "pw"})
    assert SESSION_KEY not in client.session


def _sessions(episode: Any) -> int:
    return Session.objects.for_org(episode.organisation).filter(episode=episode).count()


def test_an_interrupted_second_session_of_the_day_can_be_finished(
    therapist: Any, episode: Any
) -> None:
    # Before: the therapist's "yes, another session on this date" was not kept with the
    # draft, so the client's every "Confirm" was refused with a question for the therapist.
    record(episode, TODAY, ors="20.0")
    _start(therapist, episode, confirm_same_date="on")
    _interrupt(therapist, episode)
    response = therapist.post(reverse("draft_resume", kwargs={"pk": episode.pk}))
    assert response["Location"] == reverse("client_mode_form")
    response = therapist.post(reverse("client_mode_form"), ITEMS)
    assert response.status_code == 302
    assert _sessions(episode) == 2
    assert not SessionDraft.objects.for_org(episode.organisation).filter(episode=episode).exists()


def test_a_session_added_meanwhile_is_asked_of_the_therapist_when_finishing(
    therapist: Any, episode: Any
) -> None:
    _start(therapist, episode)
    _interrupt(therapist, episode)
    # A session of that date arrives meanwhile, e.g. by an import of the old system's data
    # (the therapist's own entries discard the draft: it was the same session).
    record(episode, TODAY)
    response = therapist.post(reverse("draft_resume", kwargs={"pk": episode.pk}))
    # The question goes to the therapist, before the client gets the iPad.
    assert response.status_code == 200
    page = response.content.decode()
    assert "already has a session on" in page and 'name="confirm_same_date"' in page
    assert SESSION_KEY not in therapist.session
    response = therapist.post(
        reverse("draft_resume", kwargs={"pk": episode.pk}), {"confirm_same_date": "1"}
    )
    assert response["Location"] == reverse("client_mode_form")
    form = therapist.get(reverse("client_mode_form")).content.decode()
    assert 'value="3.3"' in form  # the marks are back
    therapist.post(reverse("client_mode_form"), ITEMS)
    assert _sessions(episode) == 2


def test_the_client_is_never_asked_the_therapists_question(therapist: Any, episode: Any) -> None:
    _start(therapist, episode)
    record(episode, TODAY, ors="20.0")  # added while the client holds the iPad
    response = therapist.post(reverse("client_mode_form"), ITEMS)
    page = response.content.decode()
    assert response.status_code == 409
    assert "hand the iPad back to your therapist" in page
    assert "already has a session" not in page and "Add another" not in page
    assert _sessions(episode) == 1
    # The client's marks are kept as a draft for the therapist to finish.
    draft = SessionDraft.objects.for_org(episode.organisation).get(episode=episode)
    assert draft.data["items"] == ["3.3", "4.4", "5", "6"]
    assert draft.data["confirm_same_date"] is False


def test_a_draft_of_a_closed_episode_is_not_handed_to_the_client(
    therapist: Any, episode: Any
) -> None:
    from clients.services import episode_close

    _start(therapist, episode)
    _interrupt(therapist, episode)
    episode_close(actor=episode.therapist, episode=episode, closed_on=TODAY)
    response = therapist.post(reverse("draft_resume", kwargs={"pk": episode.pk}), follow=True)
    assert SESSION_KEY not in therapist.session
    assert "The episode is closed" in response.content.decode()


def test_an_item_of_zero_is_not_called_total_only(therapist: Any, episode: Any) -> None:
    url = reverse("paper_entry", kwargs={"pk": episode.pk})
    date = TODAY - dt.timedelta(days=1)
    fields = {"ors_1": "0", "ors_2": "5,5", "ors_3": "6,1", "ors_4": "7"}
    assert therapist.post(url, {"date": date.isoformat(), **fields}).status_code == 302
    page = therapist.get(reverse("episode_detail", kwargs={"pk": episode.pk})).content.decode()
    assert "total only" not in page
    therapist.post(url, {"date": TODAY.isoformat(), "ors_total": "18.6"})
    page = therapist.get(reverse("episode_detail", kwargs={"pk": episode.pk})).content.decode()
    assert page.count("total only") == 1


def test_the_saved_message_is_shown_where_the_page_opens(therapist: Any, episode: Any) -> None:
    # After an entry the page opens at the graph; the confirmation used to be rendered
    # above the page head, out of view on an iPad.
    url = reverse("paper_entry", kwargs={"pk": episode.pk})
    response = therapist.post(url, {"date": TODAY.isoformat(), "ors_total": "18.6"})
    anchor = response["Location"].split("#")[1]
    page = therapist.get(response["Location"]).content.decode()
    start = page.index(f'id="{anchor}"')
    assert page.index('class="messages"') > start
    assert page.count('class="messages"') == 1


def test_the_unlock_field_fits_what_is_asked(therapist: Any, org1: OrgPersonas) -> None:
    from measures.clientmode import user_pin_set

    episode = make_episode(org1, code="IP-2")
    _start(therapist, episode)
    page = therapist.get(reverse("client_mode_unlock")).content.decode()
    # No PIN set: the password is asked for, labelled as such, full keyboard.
    assert "Therapist&#x27;s password" in page and 'inputmode="numeric"' not in page
    response = therapist.post(reverse("client_mode_unlock"), {"secret": "nope"})
    assert "Wrong password" in response.content.decode()
    user_pin_set(actor=org1.therapist_a, pin="2468")
    page = therapist.get(reverse("client_mode_unlock")).content.decode()
    assert "Therapist&#x27;s PIN" in page and 'inputmode="numeric"' in page
    response = therapist.post(reverse("client_mode_unlock"), {"secret": "1111"})
    assert "Wrong PIN" in response.content.decode()


def test_the_paper_form_shows_every_bad_value_at_once(therapist: Any, episode: Any) -> None:
    # Before: only the first bad value got a message (one round trip per mistake).
    url = reverse("paper_entry", kwargs={"pk": episode.pk})
    typed = {"ors_1": "10,5", "ors_2": "abc", "ors_3": "5,55", "ors_4": "5", "srs_total": "41"}
    response = therapist.post(url, {"date": TODAY.isoformat(), **typed})
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {"ors_1", "ors_2", "ors_3", "srs_total"}
    page = response.content.decode()
    assert page.count('aria-invalid="true"') == 4  # drawn red
    assert 'value="abc"' in page and 'value="41"' in page  # nothing typed is lost
    assert _sessions(episode) == 0


def test_danish_messages_use_danish_numbers_and_dates(client: Any, org1: OrgPersonas) -> None:
    episode = make_episode(org1, code="IP-3")
    client.force_login(org1.therapist_a)  # Danish, the default
    url = reverse("paper_entry", kwargs={"pk": episode.pk})
    fields = {"ors_1": "10,5", "ors_2": "1", "ors_3": "1", "ors_4": "1"}
    page = client.post(url, {"date": TODAY.isoformat(), **fields}).content.decode()
    assert "0,0-10,0" in page and "0.0-10.0" not in page
    fields = {"ors_1": "5", "ors_2": "5", "ors_3": "5", "ors_4": "5,5", "ors_total": "21"}
    page = client.post(url, {"date": TODAY.isoformat(), **fields}).content.decode()
    assert "21,0" in page and "20,5" in page
    record(episode, dt.date(2024, 3, 5), ors="20.0")
    page = client.post(url, {"date": "2024-03-05", "ors_total": "21"}).content.decode()
    assert "session den 5. marts 2024" in page and "session den 2024" not in page


def test_a_closing_is_confirmed_first_and_can_be_undone(
    therapist: Any, episode: Any, org1: OrgPersonas
) -> None:
    from datapolicy.models import AccessLog

    detail = reverse("episode_detail", kwargs={"pk": episode.pk})
    page = therapist.get(detail).content.decode()
    assert 'data-confirm="Close the episode?' in page and "js/confirm.js" in page
    record(episode, TODAY - dt.timedelta(days=40), ors="12.0")  # no contact for 40 days
    therapist.post(reverse("episode_close", kwargs={"pk": episode.pk}), {"closed_on": TODAY})
    episode.refresh_from_db()
    assert episode.status == "closed" and episode.alerts == []
    page = therapist.get(detail).content.decode()
    assert reverse("episode_reopen", kwargs={"pk": episode.pk}) in page
    response = therapist.post(reverse("episode_reopen", kwargs={"pk": episode.pk}), follow=True)
    assert "The episode is open again." in response.content.decode()
    episode.refresh_from_db()
    assert (episode.status, episode.closed_on) == ("open", None)
    assert episode.alerts == ["no_contact"]  # the alerts are back at once
    assert AccessLog.objects.filter(
        organisation=org1.org, action="reopen", object_id=episode.pk, role="therapist"
    ).exists()


def test_an_episode_with_a_later_one_is_not_reopened(
    therapist: Any, episode: Any, org1: OrgPersonas
) -> None:
    from clients.services import episode_close, episode_start

    record(episode, TODAY - dt.timedelta(days=30), ors="12.0")
    episode_close(actor=episode.therapist, episode=episode, closed_on=TODAY - dt.timedelta(days=20))
    later = episode_start(
        actor=episode.therapist,
        client=episode.client,
        unit=episode.unit,
        started_on=TODAY - dt.timedelta(days=10),
    )
    page = therapist.get(reverse("episode_detail", kwargs={"pk": episode.pk})).content.decode()
    assert reverse("episode_reopen", kwargs={"pk": episode.pk}) not in page
    response = therapist.post(reverse("episode_reopen", kwargs={"pk": episode.pk}), follow=True)
    assert "later episode" in response.content.decode()
    episode.refresh_from_db()
    later.refresh_from_db()
    assert episode.status == "closed" and later.status == "open"


def test_a_colleague_or_leader_cannot_reopen(client: Any, episode: Any, org1: OrgPersonas) -> None:
    from clients.services import episode_close

    episode_close(actor=episode.therapist, episode=episode, closed_on=TODAY)
    url = reverse("episode_reopen", kwargs={"pk": episode.pk})
    client.force_login(org1.therapist_b)
    assert client.post(url).status_code == 404
    client.force_login(org1.leader)
    assert client.post(url).status_code == 403
    episode.refresh_from_db()
    assert episode.status == "closed"


def test_no_colleague_is_preselected_for_a_transfer(
    therapist: Any, episode: Any, org1: OrgPersonas
) -> None:
    url = reverse("episode_transfer", kwargs={"pk": episode.pk})
    page = therapist.get(url).content.decode()
    assert '<option value="" selected>' in page
    response = therapist.post(url, {"to_therapist": ""})
    assert response.status_code == 400
    episode.refresh_from_db()
    assert episode.therapist_id == org1.therapist_a.pk


def test_the_srs_button_is_only_on_todays_session(therapist: Any, episode: Any) -> None:
    # Before: a big SRS button on every session without an SRS, so a client could rate
    # today's meeting into a session of two months ago.
    old = record(episode, TODAY - dt.timedelta(days=60), ors="20.0")
    today = record(episode, TODAY, ors="21.0")
    page = therapist.get(reverse("episode_detail", kwargs={"pk": episode.pk})).content.decode()
    assert reverse("srs_start", kwargs={"pk": today.pk}) in page
    assert reverse("srs_start", kwargs={"pk": old.pk}) not in page
    response = therapist.post(reverse("srs_start", kwargs={"pk": old.pk}), follow=True)
    assert SESSION_KEY not in therapist.session
    assert "paper form" in response.content.decode()
