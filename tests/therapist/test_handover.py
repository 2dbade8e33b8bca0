"""Handing over the open episodes of a colleague who has left (the data-quality panel's
"ghost" episodes): the system owner for any unit, a unit leader for their own; no client
codes on the page; every episode transferred, logged, its shares ended — or none."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext, override

from clients.forms import receiver_label
from clients.models import Episode
from clients.services import (
    episode_close,
    episode_start,
    episode_transfer,
    episodes_hand_over,
    handover_spread,
)
from clients.views import handover_message
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
            to_therapists=[org1.therapist_a],
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
            to_therapists=[outsider],
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
            to_therapists=[org1.therapist_a],
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


# ---------------------------------------------------------------------------------------
# Several receivers: the open episodes are shared out evenly (episodes_hand_over with
# to_therapists; handover_spread decides who gets which).


@pytest.fixture
def spread(org1: OrgPersonas) -> dict[str, Any]:
    """Therapist C leaves Ungeenheden with 7 open episodes of 6 clients: SP-1001 …
    SP-1006, and SP-1003 has a second open episode (created last, so the highest id).
    The three colleagues who could take them: Therapist_a with 2 open episodes in the
    unit, Therapist_b and Therapist_e with none."""
    c = add_therapist(org1, "therapist_c")
    e = add_therapist(org1, "therapist_e")
    eps = [make_episode(org1, therapist=c, code=f"SP-100{i}") for i in range(1, 7)]
    eps.append(episode_start(actor=c, client=eps[2].client, unit=org1.unit, label="2"))
    own_a = [make_episode(org1, therapist=org1.therapist_a, code=f"OA-100{i}") for i in (1, 2)]
    c.is_active = False
    c.save(update_fields=["is_active"])
    return {"user": c, "e": e, "episodes": eps, "own_a": own_a}


def _post_many(
    client: Any, org1: OrgPersonas, departed_user: Any, receiver_ids: list[Any], **extra: Any
) -> Any:
    return client.post(
        URL,
        {
            "unit": org1.unit.pk,
            "from_therapist": departed_user.pk,
            "to_therapist": receiver_ids,
            **extra,
        },
    )


def _owners(episodes: list[Any]) -> list[int]:
    for ep in episodes:
        ep.refresh_from_db()
    return [ep.therapist_id for ep in episodes]


def _messages(client: Any) -> list[str]:
    return [str(m) for m in client.get(URL).context["messages"]]


def test_the_page_shows_each_receivers_open_episodes_as_a_checkbox(
    org1: OrgPersonas, spread: dict[str, Any], client: Any
) -> None:
    client.force_login(org1.leader)
    page = client.get(URL)
    text = page.content.decode()
    (row,) = page.context["rows"]
    assert row.open_episodes == 7
    assert row.receiver_open == {org1.therapist_a.pk: 2, org1.therapist_b.pk: 0, spread["e"].pk: 0}
    boxes = row.form["to_therapist"]
    assert [(c.data["value"], c.choice_label) for c in boxes] == [
        (org1.therapist_a.pk, receiver_label(org1.therapist_a, 2)),
        (org1.therapist_b.pk, receiver_label(org1.therapist_b, 0)),
        (spread["e"].pk, receiver_label(spread["e"], 0)),
    ]
    assert "Therapist_a Alphasen (2" in text
    assert text.count('type="checkbox" name="to_therapist"') == 3
    assert 'class="check"' in text and "<fieldset" in text
    for code in [f"SP-100{i}" for i in range(1, 7)] + ["OA-1001", "OA-1002"]:
        assert code not in text


@pytest.mark.parametrize("persona", ["owner", "leader"])
def test_seven_episodes_of_six_clients_to_three_receivers(
    org1: OrgPersonas, spread: dict[str, Any], client: Any, persona: str
) -> None:
    """By hand. Loads before: A 2, B 0, E 0. The client with two episodes first:
    SP-1003 (2) → B (B and E tie at 0, B by name): A 2, B 2, E 0.
    Then the single clients by their episode's id:
    SP-1001 → E (0): E 1.  SP-1002 → E (1 < 2): E 2.
    SP-1004 → A (all at 2, A by name): A 3.  SP-1005 → B (2): B 3.  SP-1006 → E (2): E 3.
    So A gets 1, B gets 3, E gets 3, and everyone ends with 3 open episodes in the unit."""
    actor = getattr(org1, persona)
    a, b, e = org1.therapist_a, org1.therapist_b, spread["e"]
    client.force_login(actor)
    # Posted in a different order than the page's: the name order decides, not the post.
    r = _post_many(client, org1, spread["user"], [e.pk, a.pk, b.pk])
    assert r.status_code == 302 and r["Location"] == URL
    ep1, ep2, ep3, ep4, ep5, ep6, ep3b = spread["episodes"]
    assert _owners([ep1, ep2, ep3, ep4, ep5, ep6, ep3b]) == [
        e.pk, e.pk, b.pk, a.pk, b.pk, e.pk, b.pk
    ]  # fmt: skip
    assert ep3.client_id == ep3b.client_id  # the client's two episodes stayed together
    # Every episode moved is access-logged as a transfer, by the actor, once.
    logged = AccessLog.objects.filter(organisation=org1.org, action="transfer", user=actor)
    assert sorted(logged.values_list("object_id", flat=True)) == sorted(
        ep.pk for ep in spread["episodes"]
    )
    messages = _messages(client)
    expected = handover_message([(a, 1), (b, 3), (e, 3)])
    assert expected in messages, messages
    assert all(name in expected for name in ("Therapist_a", "Therapist_b", "Therapist_e"))
    assert client.get(URL).context["rows"] == []


def test_the_spread_balances_and_breaks_ties_by_name(org1: OrgPersonas) -> None:
    """Pure: 5 single clients to 2 receivers with loads 0 and 3. By hand:
    1 → A (0): A 1.  2 → A (1): A 2.  3 → A (2): A 3.  4 → A (3 = 3, A by name): A 4.
    5 → B (3 < 4): B 4."""
    a, b = org1.therapist_a, org1.therapist_b

    class Ep:
        def __init__(self, pk: int) -> None:
            self.pk = self.client_id = pk

    eps = [Ep(pk) for pk in (11, 12, 13, 14, 15)]
    plan = handover_spread(episodes=eps, receivers=[b, a], open_counts={b.pk: 3})  # type: ignore[arg-type]
    assert [(ep.pk, r.pk) for ep, r in plan] == [
        (11, a.pk), (12, a.pk), (13, a.pk), (14, a.pk), (15, b.pk)
    ]  # fmt: skip


def test_a_client_a_receiver_already_treats_goes_to_that_receiver(
    org1: OrgPersonas, client: Any
) -> None:
    """Client KN-1001 has two open episodes in the unit, one already with B. By hand:
    KN-1001 → B (known), whatever the loads: A 0, B 2.  KN-1002 → A (0 < 2).
    Without that rule both would go to A (A 0 < B 1, then A 1 = B 1, A by name)."""
    c = add_therapist(org1, "therapist_c")
    known = make_episode(org1, therapist=c, code="KN-1001")
    with_b = episode_start(actor=c, client=known.client, unit=org1.unit, label="b")
    episode_transfer(actor=c, episode=with_b, to_therapist=org1.therapist_b)
    other = make_episode(org1, therapist=c, code="KN-1002")
    c.is_active = False
    c.save(update_fields=["is_active"])
    client.force_login(org1.leader)
    r = _post_many(client, org1, c, [org1.therapist_a.pk, org1.therapist_b.pk])
    assert r.status_code == 302
    assert _owners([known, other]) == [org1.therapist_b.pk, org1.therapist_a.pk]


def test_one_receiver_chosen_among_several_gets_all_with_todays_message(
    org1: OrgPersonas, spread: dict[str, Any], client: Any
) -> None:
    client.force_login(org1.leader)
    r = _post_many(client, org1, spread["user"], [spread["e"].pk])
    assert r.status_code == 302
    assert set(_owners(spread["episodes"])) == {spread["e"].pk}
    # Today's message, in Danish ("7 forløb tilhører nu …") once make messages has run.
    with override("da"):
        expected = ngettext(
            "%(n)s episode now belongs to %(name)s.", "%(n)s episodes now belong to %(name)s.", 7
        ) % {"n": 7, "name": "Therapist_e Alphasen"}
    assert expected in _messages(client)


def test_a_receiver_who_gets_nothing_is_not_named(org1: OrgPersonas, client: Any) -> None:
    """One client to two receivers: only the one who got it is in the message."""
    c = add_therapist(org1, "therapist_c")
    ep = make_episode(org1, therapist=c, code="ON-1001")
    c.is_active = False
    c.save(update_fields=["is_active"])
    client.force_login(org1.owner)
    r = _post_many(client, org1, c, [org1.therapist_a.pk, org1.therapist_b.pk])
    assert r.status_code == 302
    assert _owners([ep]) == [org1.therapist_a.pk]
    (message,) = _messages(client)
    assert "Therapist_a" in message and "Therapist_b" not in message


def test_no_receiver_chosen_is_a_clear_message_and_nothing_moves(
    org1: OrgPersonas, spread: dict[str, Any], client: Any
) -> None:
    client.force_login(org1.leader)
    r = _post_many(client, org1, spread["user"], [])
    assert r.status_code == 400
    with override("da"):
        assert gettext("Choose at least one colleague.") in r.content.decode()
    assert set(_owners(spread["episodes"])) == {spread["user"].pk}
    assert not AccessLog.objects.filter(organisation=org1.org, action="transfer").exists()
    with pytest.raises(ValidationError):
        episodes_hand_over(
            actor=org1.leader,
            organisation=org1.org,
            unit=org1.unit,
            from_therapist=spread["user"],
            to_therapists=[],
        )


@pytest.mark.parametrize("forged", ["other_unit", "deactivated", "departed", "unknown"])
def test_a_forged_receiver_among_good_ones_is_refused_and_nothing_moves(
    org1: OrgPersonas, org2: OrgPersonas, spread: dict[str, Any], client: Any, forged: str
) -> None:
    outsider = add_therapist(org1, "therapist_x", unit=org1.other_unit)
    asleep = add_therapist(org1, "therapist_z")
    asleep.is_active = False  # still a member of the unit, but deactivated
    asleep.save(update_fields=["is_active"])
    forged_user = {
        "other_unit": outsider,
        "deactivated": asleep,
        "departed": spread["user"],
        "unknown": org2.therapist_a,
    }[forged]
    client.force_login(org1.leader)
    r = _post_many(client, org1, spread["user"], [org1.therapist_a.pk, forged_user.pk])
    assert r.status_code == 400
    assert set(_owners(spread["episodes"])) == {spread["user"].pk}
    assert not AccessLog.objects.filter(organisation=org1.org, action="transfer").exists()
    if forged == "unknown":
        return  # another organisation's user: the service is never asked with one
    # The service itself refuses before anything moves.
    with pytest.raises(ValidationError):
        episodes_hand_over(
            actor=org1.leader,
            organisation=org1.org,
            unit=org1.unit,
            from_therapist=spread["user"],
            to_therapists=[org1.therapist_a, forged_user],
        )
    assert set(_owners(spread["episodes"])) == {spread["user"].pk}


def test_a_transfer_that_fails_midway_moves_nothing(
    org1: OrgPersonas, spread: dict[str, Any]
) -> None:
    """All or none: the database refuses the fifth episode's move (a trigger), after four
    episodes have moved and been logged; every one of them is rolled back."""
    fifth = spread["episodes"][4]
    table = Episode._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""CREATE FUNCTION refuse_handover_test() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'refused by the test'; END; $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_handover_test BEFORE UPDATE ON {table}
            FOR EACH ROW WHEN (OLD.id = {int(fifth.pk)}) EXECUTE FUNCTION refuse_handover_test();"""
        )
    with pytest.raises(DatabaseError):
        episodes_hand_over(
            actor=org1.leader,
            organisation=org1.org,
            unit=org1.unit,
            from_therapist=spread["user"],
            to_therapists=[org1.therapist_a, org1.therapist_b, spread["e"]],
        )
    assert set(_owners(spread["episodes"])) == {spread["user"].pk}
    assert not AccessLog.objects.filter(organisation=org1.org, action="transfer").exists()


def test_several_receivers_other_roles_403_other_unit_leader_403_other_org_404(
    org1: OrgPersonas, org2: OrgPersonas, spread: dict[str, Any], client: Any
) -> None:
    receivers = [org1.therapist_a.pk, org1.therapist_b.pk]
    for persona in ("therapist_a", "analyst", "dp_admin"):
        client.force_login(getattr(org1, persona))
        assert _post_many(client, org1, spread["user"], receivers).status_code == 403, persona
    other_leader = add_therapist(org1, "leader_rus", unit=org1.other_unit)
    Membership.objects.for_org(org1.org).filter(user=other_leader).update(role=Role.UNIT_LEADER)
    client.force_login(other_leader)
    assert _post_many(client, org1, spread["user"], receivers).status_code == 403
    client.force_login(org2.owner)
    assert _post_many(client, org1, spread["user"], receivers).status_code == 404
    assert set(_owners(spread["episodes"])) == {spread["user"].pk}
    assert not AccessLog.objects.filter(action="transfer").exists()


def test_the_message_says_how_many_went_to_whom(org1: OrgPersonas) -> None:
    a, b, lead = org1.therapist_a, org1.therapist_b, org1.leader
    with override("en"):
        assert handover_message([(a, 1), (b, 3), (lead, 0)]) == (
            "Handed over: 1 episode to Therapist_a Alphasen and 3 episodes to Therapist_b Alphasen."
        )
        assert (
            handover_message([(a, 0), (b, 2)]) == "2 episodes now belong to Therapist_b Alphasen."
        )
