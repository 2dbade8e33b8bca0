"""Handing over the open episodes of a colleague who has left (the data-quality panel's
"ghost" episodes): the system owner for any unit, a unit leader for their own; no client
codes on the page; every episode transferred, logged, its shares ended — or none."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from clients.models import Episode
from clients.services import episode_close, episodes_hand_over
from datapolicy.models import AccessLog, Grant, Membership, Role
from datapolicy.services import grant_create
from tests.conftest import OrgPersonas, add_therapist, make_episode

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
URL = "/clients/handover/"


@pytest.fixture
def departed(org1: OrgPersonas) -> dict[str, Any]:
    """Therapist C leaves Ungeenheden with two open episodes (one shared with the
    leader for supervision) and one closed episode."""
    c = add_therapist(org1, "therapist_c")
    open1 = make_episode(org1, therapist=c, code="GH-1001")
    open2 = make_episode(org1, therapist=c, code="GH-1002")
    closed = make_episode(org1, therapist=c, code="GH-1003")
    episode_close(actor=c, episode=closed, closed_on=TODAY)
    now = timezone.now()
    grant_create(
        actor=c,
        organisation=org1.org,
        kind="client_graph",
        grantee=org1.leader,
        episode=open1,
        purpose="supervision",
        starts_at=now - dt.timedelta(minutes=1),
        expires_at=now + dt.timedelta(days=1),
    )
    c.is_active = False
    c.save(update_fields=["is_active"])
    return {"user": c, "open": [open1, open2], "closed": closed}


def _post(client: Any, org1: OrgPersonas, departed_user: Any, to: Any, unit: Any = None) -> Any:
    return client.post(
        URL,
        {
            "unit": (unit or org1.unit).pk,
            "from_therapist": departed_user.pk,
            "to_therapist": to.pk,
        },
    )


def test_url_is_the_named_one() -> None:
    assert reverse("episode_handover") == URL


@pytest.mark.parametrize("persona", ["owner", "leader"])
def test_the_page_lists_counts_and_staff_never_client_codes(
    org1: OrgPersonas, departed: dict[str, Any], client: Any, persona: str
) -> None:
    client.force_login(getattr(org1, persona))
    page = client.get(URL)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Therapist_c" in text  # the colleague who has left
    rows = page.context["rows"]
    assert [(r.therapist.pk, r.unit.pk, r.open_episodes) for r in rows] == [
        (departed["user"].pk, org1.unit.pk, 2)  # the closed episode is not counted
    ]
    # Receivers: the unit's active therapists only.
    assert {u.pk for u in rows[0].receivers} == {org1.therapist_a.pk, org1.therapist_b.pk}
    for code in ("GH-1001", "GH-1002", "GH-1003"):
        assert code not in text


@pytest.mark.parametrize("persona", ["owner", "leader"])
def test_hand_over_moves_every_open_episode_logs_and_ends_shares(
    org1: OrgPersonas, departed: dict[str, Any], client: Any, persona: str
) -> None:
    actor = getattr(org1, persona)
    client.force_login(actor)
    r = _post(client, org1, departed["user"], org1.therapist_b)
    assert r.status_code == 302 and r["Location"] == URL
    for ep in departed["open"]:
        ep.refresh_from_db()
        assert ep.therapist_id == org1.therapist_b.pk
    departed["closed"].refresh_from_db()
    assert departed["closed"].therapist_id == departed["user"].pk  # closed stays
    logged = AccessLog.objects.filter(
        organisation=org1.org, action="transfer", user=actor
    ).values_list("object_id", flat=True)
    assert sorted(int(i) for i in logged) == sorted(ep.pk for ep in departed["open"])
    assert not Grant.objects.for_org(org1.org).filter(revoked_at__isnull=True).exists()
    messages = [str(m) for m in client.get(URL).context["messages"]]
    assert any("2" in m and "Therapist_b" in m for m in messages), messages
    assert client.get(URL).context["rows"] == []


def test_a_colleague_who_moved_to_another_unit_is_listed(org1: OrgPersonas, client: Any) -> None:
    mover = add_therapist(org1, "therapist_m")
    make_episode(org1, therapist=mover, code="MV-1001")
    Membership.objects.for_org(org1.org).filter(user=mover, unit=org1.unit).update(is_active=False)
    Membership.objects.create(
        organisation=org1.org, user=mover, unit=org1.other_unit, role=Role.THERAPIST
    )
    client.force_login(org1.owner)
    rows = client.get(URL).context["rows"]
    assert [(r.therapist.pk, r.unit.pk) for r in rows] == [(mover.pk, org1.unit.pk)]


def test_a_therapist_who_still_works_there_is_refused_and_nothing_moves(
    org1: OrgPersonas, client: Any
) -> None:
    ep = make_episode(org1, therapist=org1.therapist_b, code="ST-1001")
    client.force_login(org1.owner)
    r = _post(client, org1, org1.therapist_b, org1.therapist_a)
    assert r.status_code == 302
    ep.refresh_from_db()
    assert ep.therapist_id == org1.therapist_b.pk
    with pytest.raises(ValidationError):
        episodes_hand_over(
            actor=org1.owner,
            organisation=org1.org,
            unit=org1.unit,
            from_therapist=org1.therapist_b,
            to_therapist=org1.therapist_a,
        )


def test_a_receiver_outside_the_unit_moves_nothing(
    org1: OrgPersonas, departed: dict[str, Any], client: Any
) -> None:
    outsider = add_therapist(org1, "therapist_x", unit=org1.other_unit)
    client.force_login(org1.owner)
    r = _post(client, org1, departed["user"], outsider)
    assert r.status_code == 400  # not a choice on the form
    # The service itself: the first transfer's refusal rolls every one back.
    with pytest.raises(ValidationError):
        episodes_hand_over(
            actor=org1.owner,
            organisation=org1.org,
            unit=org1.unit,
            from_therapist=departed["user"],
            to_therapist=outsider,
        )
    assert set(
        Episode.objects.for_org(org1.org)
        .filter(pk__in=[e.pk for e in departed["open"]])
        .values_list("therapist_id", flat=True)
    ) == {departed["user"].pk}


def test_a_leader_of_another_unit_gets_403_and_sees_nothing(
    org1: OrgPersonas, departed: dict[str, Any], client: Any
) -> None:
    other_leader = add_therapist(org1, "leader_rus", unit=org1.other_unit)
    Membership.objects.for_org(org1.org).filter(user=other_leader).update(role=Role.UNIT_LEADER)
    client.force_login(other_leader)
    assert client.get(URL).context["rows"] == []
    r = _post(client, org1, departed["user"], org1.therapist_a)
    assert r.status_code == 403
    with pytest.raises(PermissionDenied):
        episodes_hand_over(
            actor=other_leader,
            organisation=org1.org,
            unit=org1.unit,
            from_therapist=departed["user"],
            to_therapist=org1.therapist_a,
        )


@pytest.mark.parametrize("persona", ["therapist_a", "analyst", "dp_admin"])
def test_other_roles_get_403(
    org1: OrgPersonas, departed: dict[str, Any], client: Any, persona: str
) -> None:
    client.force_login(getattr(org1, persona))
    assert client.get(URL).status_code == 403
    assert _post(client, org1, departed["user"], org1.therapist_a).status_code == 403


def test_another_organisations_unit_is_404(
    org1: OrgPersonas, org2: OrgPersonas, departed: dict[str, Any], client: Any
) -> None:
    client.force_login(org2.owner)
    assert client.get(URL).context["rows"] == []  # org1's colleague is not listed
    r = _post(client, org1, departed["user"], org1.therapist_a, unit=org1.unit)
    assert r.status_code == 404
    for ep in departed["open"]:
        ep.refresh_from_db()
        assert ep.therapist_id == departed["user"].pk


def test_the_home_pages_link_to_it(org1: OrgPersonas, client: Any) -> None:
    for persona, page in (("owner", "admin_home"), ("leader", "leader_home")):
        client.force_login(getattr(org1, persona))
        assert URL in client.get(reverse(page)).content.decode(), persona
