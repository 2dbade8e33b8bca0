"""A supervision grant gives read access, never write access (review findings).

Therapist A shares one episode's graph with colleague B. B may look at it, but every
write path (pages, API, services, consents) refuses B, and a transfer ends the share.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from clients.services import episode_close, episode_start, episode_transfer
from datapolicy.access import granted_episode_ids
from datapolicy.models import Consent, Grant
from datapolicy.services import consent_record, grant_create
from measures.models import Score, Session
from measures.services import ScoreInput, score_set, session_record
from tests.conftest import make_episode, record

TODAY = dt.date.today()


def _share(org1, episode, grantee):
    now = timezone.now()
    return grant_create(
        actor=org1.therapist_a,
        organisation=org1.org,
        kind="client_graph",
        grantee=grantee,
        episode=episode,
        purpose="Supervision",
        starts_at=now - dt.timedelta(hours=1),
        expires_at=now + dt.timedelta(days=5),
    )


@pytest.fixture
def shared(org1):
    ep = make_episode(org1)
    session = record(ep, TODAY - dt.timedelta(days=10), ors="20.0")
    _share(org1, ep, org1.therapist_b)
    assert ep.pk in granted_episode_ids(org1.therapist_b, org1.org)  # B may read it
    return ep, session


def test_services_refuse_the_grant_holder(org1, shared) -> None:
    ep, session = shared
    b = org1.therapist_b
    with pytest.raises(PermissionDenied):
        session_record(actor=b, episode=ep, date=TODAY, ors=ScoreInput(total=Decimal("5.0")))
    with pytest.raises(PermissionDenied):
        score_set(
            actor=b,
            session=session,
            kind="outcome",
            value=ScoreInput(total=Decimal("39")),
            replace=True,
        )
    with pytest.raises(PermissionDenied):
        episode_close(actor=b, episode=ep, closed_on=TODAY)
    with pytest.raises(PermissionDenied):
        episode_start(actor=b, client=ep.client, unit=org1.unit)
    with pytest.raises(PermissionDenied):
        episode_transfer(actor=b, episode=ep, to_therapist=b)
    assert Session.objects.for_org(org1.org).count() == 1
    assert Score.objects.for_org(org1.org).get().total == Decimal("20.0")


def test_api_refuses_the_grant_holder(client, org1, shared) -> None:
    ep, session = shared
    client.force_login(org1.therapist_b)
    calls = [
        (
            "/api/v1/sessions/",
            {"episode": ep.pk, "date": TODAY.isoformat(), "ors": {"total": "5.0"}},
        ),
        (
            f"/api/v1/sessions/{session.pk}/scores/",
            {"kind": "ors", "total": "39.0", "replace": True},
        ),
        ("/api/v1/episodes/", {"client": ep.client_id, "unit": org1.unit.pk}),
        (f"/api/v1/episodes/{ep.pk}/transfer/", {"therapist": org1.therapist_b.pk}),
        (f"/api/v1/episodes/{ep.pk}/close/", {"closed_on": TODAY.isoformat()}),
    ]
    for url, body in calls:
        response = client.post(url, body, content_type="application/json")
        assert response.status_code in (403, 404), (url, response.status_code)
    ep.refresh_from_db()
    assert ep.therapist_id == org1.therapist_a.pk and ep.status == "open"
    assert Session.objects.for_org(org1.org).count() == 1


def test_consents_are_for_own_clients_only(org1, shared) -> None:
    ep, _session = shared
    with pytest.raises(PermissionDenied):
        consent_record(
            actor=org1.therapist_b,
            organisation=org1.org,
            client=ep.client,
            purpose="Forskning",
            given_on=TODAY,
        )
    consent_record(
        actor=org1.therapist_a,
        organisation=org1.org,
        client=ep.client,
        purpose="Forskning",
        given_on=TODAY,
    )
    assert Consent.objects.for_org(org1.org).count() == 1


def test_transfer_ends_the_shares_of_the_episode(org1) -> None:
    ep = make_episode(org1)
    _share(org1, ep, org1.leader)
    assert ep.pk in granted_episode_ids(org1.leader, org1.org)
    episode_transfer(actor=org1.therapist_a, episode=ep, to_therapist=org1.therapist_b)
    assert ep.pk not in granted_episode_ids(org1.leader, org1.org)
    assert Grant.objects.for_org(org1.org).get().revoked_at is not None


def test_the_unit_leader_may_transfer_for_a_colleague_who_left(org1) -> None:
    ep = make_episode(org1)
    episode_transfer(actor=org1.leader, episode=ep, to_therapist=org1.therapist_b)
    ep.refresh_from_db()
    assert ep.therapist_id == org1.therapist_b.pk
    with pytest.raises(PermissionDenied):
        episode_transfer(actor=org1.analyst, episode=ep, to_therapist=org1.therapist_a)


def test_drafts_are_logged_once_and_on_discard(org1) -> None:
    from datapolicy.models import AccessLog
    from measures.services import session_draft_discard, session_draft_save

    ep = make_episode(org1)
    for marks in (["1.0"], ["1.0", "2.0"]):
        session_draft_save(
            actor=org1.therapist_a, episode=ep, data={"kind": "outcome", "items": marks}
        )
    session_draft_discard(actor=org1.therapist_a, episode=ep)
    actions = list(
        AccessLog.objects.filter(object_type="sessiondraft").values_list("action", flat=True)
    )
    assert actions == ["create", "delete"]
    with pytest.raises(PermissionDenied):
        session_draft_save(actor=org1.therapist_b, episode=ep, data={"items": ["1.0"]})
