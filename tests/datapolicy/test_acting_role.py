"""The access log's "which role" for a user who holds two roles: reading or changing
one's own client is done as therapist; reading a colleague's client through a
supervision grant is done as unit leader (before: the alphabetically first role,
"therapist", for both)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from datapolicy.models import AccessLog, Membership, Role
from datapolicy.services import consent_record, grant_create
from tests.conftest import OrgPersonas, make_episode

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead_therapist(org1: OrgPersonas) -> Any:
    """The unit leader who also treats clients (common in small units)."""
    Membership.objects.create(
        organisation=org1.org, user=org1.leader, unit=org1.unit, role=Role.THERAPIST
    )
    return org1.leader


def _grant_graph(org1: OrgPersonas, episode: Any, grantee: Any) -> None:
    now = timezone.now()
    grant_create(
        actor=episode.therapist,
        organisation=org1.org,
        kind="client_graph",
        grantee=grantee,
        episode=episode,
        purpose="supervision",
        starts_at=now - dt.timedelta(minutes=1),
        expires_at=now + dt.timedelta(days=1),
    )


def _roles(org1: OrgPersonas, user: Any, client_id: int, action: str, **kw: Any) -> set[str]:
    return set(
        AccessLog.objects.filter(
            organisation=org1.org, user=user, client_id=client_id, action=action, **kw
        ).values_list("role", flat=True)
    )


def test_pages_log_the_role_that_brought_the_access(
    client: Any, org1: OrgPersonas, lead_therapist: Any
) -> None:
    own = make_episode(org1, code="AR-1", therapist=lead_therapist)
    colleagues = make_episode(org1, code="AR-2", therapist=org1.therapist_a)
    _grant_graph(org1, colleagues, lead_therapist)
    client.force_login(lead_therapist)
    for episode in (own, colleagues):
        url = reverse("episode_detail", kwargs={"pk": episode.pk})
        assert client.get(url).status_code == 200
    assert _roles(org1, lead_therapist, own.client_id, "view") == {"therapist"}
    assert _roles(org1, lead_therapist, colleagues.client_id, "view") == {"unit_leader"}


def test_api_lists_log_each_client_under_its_role(
    client: Any, org1: OrgPersonas, lead_therapist: Any
) -> None:
    own = make_episode(org1, code="AR-3", therapist=lead_therapist)
    colleagues = make_episode(org1, code="AR-4", therapist=org1.therapist_a)
    _grant_graph(org1, colleagues, lead_therapist)
    client.force_login(lead_therapist)
    response = client.get("/api/v1/episodes/")
    assert response.status_code == 200
    assert _roles(org1, lead_therapist, own.client_id, "list") == {"therapist"}
    assert _roles(org1, lead_therapist, colleagues.client_id, "list") == {"unit_leader"}
    response = client.get(f"/api/v1/episodes/{colleagues.pk}/")
    assert response.status_code == 200
    assert _roles(org1, lead_therapist, colleagues.client_id, "view") == {"unit_leader"}


def test_a_therapist_who_is_also_dp_admin_records_own_consent_as_therapist(
    org1: OrgPersonas,
) -> None:
    Membership.objects.create(organisation=org1.org, user=org1.therapist_a, role=Role.DP_ADMIN)
    own = make_episode(org1, code="AR-5", therapist=org1.therapist_a)
    colleagues = make_episode(org1, code="AR-6", therapist=org1.therapist_b)
    for episode in (own, colleagues):
        consent_record(
            actor=org1.therapist_a,
            organisation=org1.org,
            client=episode.client,
            purpose="research",
            given_on=timezone.localdate(),
        )
    consent = {"object_type": "consent"}
    assert _roles(org1, org1.therapist_a, own.client_id, "create", **consent) == {"therapist"}
    # The colleague's client: only the data-policy admin role allows it.
    assert _roles(org1, org1.therapist_a, colleagues.client_id, "create", **consent) == {"dp_admin"}
