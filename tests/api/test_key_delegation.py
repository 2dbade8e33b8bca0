"""Who a key may act as: role names are organisation-wide, so holding "therapist"
somewhere must not let anyone mint a key acting as a colleague therapist; and a key
acting as another user stops working when its creator loses the roles it was made with."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from datapolicy.api_auth import apikey_create
from datapolicy.models import ApiKey, Membership, Role
from tests.conftest import OrgPersonas, make_episode

pytestmark = pytest.mark.django_db


def _key_client(raw: str) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return c


def test_an_owner_who_is_also_a_therapist_cannot_act_as_a_colleague(
    org1: OrgPersonas,
) -> None:
    Membership.objects.create(
        organisation=org1.org, user=org1.owner, unit=org1.other_unit, role=Role.THERAPIST
    )
    make_episode(org1, therapist=org1.therapist_b, code="BB-77")
    c = APIClient()
    c.force_login(org1.owner)
    r = c.post(
        reverse("api-key-list"),
        {"name": "Fagsystem", "user": org1.therapist_b.pk, "scopes": ["read"]},
        format="json",
    )
    assert r.status_code == 400
    assert "user" in r.json()
    assert not ApiKey.objects.for_org(org1.org).exists()
    # A therapist cannot act as a colleague either (both hold the role name "therapist").
    with pytest.raises(ValidationError):
        apikey_create(
            actor=org1.therapist_a,
            organisation=org1.org,
            name="x",
            user=org1.therapist_b,
            scopes=["read"],
        )


def test_a_key_as_oneself_reads_only_ones_own_clients(org1: OrgPersonas) -> None:
    make_episode(org1, therapist=org1.therapist_b, code="BB-77")
    make_episode(org1, therapist=org1.therapist_a, code="AA-11")
    _key, raw = apikey_create(
        actor=org1.therapist_a,
        organisation=org1.org,
        name="Journal",
        user=org1.therapist_a,
        scopes=["read"],
    )
    codes = [x["code"] for x in _key_client(raw).get(reverse("api-client-list")).json()["results"]]
    assert codes == ["AA-11"]


def test_a_delegated_key_stops_when_its_creator_loses_the_role(org1: OrgPersonas) -> None:
    """An analyst service account's key made by an owner who also holds the analyst
    role works, and stops working once that owner's analyst membership ends."""
    Membership.objects.create(
        organisation=org1.org, user=org1.owner, unit=None, role=Role.MI_OFFICER
    )
    _key, raw = apikey_create(
        actor=org1.owner,
        organisation=org1.org,
        name="Ledelsesinformation",
        user=org1.analyst,
        scopes=["read"],
    )
    url = reverse("api_stats_scope", kwargs={"scope": "organisation", "scope_id": org1.org.pk})
    assert _key_client(raw).get(url).status_code == 200
    Membership.objects.for_org(org1.org).filter(user=org1.owner, role=Role.MI_OFFICER).update(
        is_active=False
    )
    # The key's user (the analyst) still holds the analyst role: only the creator's
    # lost role can refuse the call.
    assert org1.analyst.memberships.filter(is_active=True).exists()
    assert _key_client(raw).get(url).status_code in (401, 403)


def test_a_key_as_oneself_follows_ones_own_memberships(org1: OrgPersonas) -> None:
    make_episode(org1, therapist=org1.therapist_a, code="AA-11")
    _key, raw = apikey_create(
        actor=org1.therapist_a,
        organisation=org1.org,
        name="Journal",
        user=org1.therapist_a,
        scopes=["read"],
    )
    c: Any = _key_client(raw)
    assert c.get(reverse("api-client-list")).status_code == 200
    Membership.objects.for_org(org1.org).filter(user=org1.therapist_a).update(is_active=False)
    assert c.get(reverse("api-client-list")).status_code in (401, 403)
