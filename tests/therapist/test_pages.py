"""The therapist's pages with the personas: caseload, new client, episode page and the
episode actions. Other therapists and leaders without a grant cannot see these clients."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from clients.models import Client, Episode
from datapolicy.models import AccessLog, Grant
from tests.conftest import OrgPersonas, make_episode, record

pytestmark = pytest.mark.django_db
TODAY = dt.date.today()


@pytest.fixture
def episode(org1: OrgPersonas) -> Any:
    ep = make_episode(org1, code="PG-1")
    record(ep, TODAY - dt.timedelta(days=14), ors="18.0", srs="38.0")
    return ep


def _as(client: Any, user: Any) -> Any:
    client.cookies["django_language"] = "en"
    client.force_login(user)
    return client


def _grant_graph(org: OrgPersonas, episode: Any, grantee: Any) -> Grant:
    from guardian.shortcuts import assign_perm

    now = timezone.now()
    grant = Grant.objects.create(
        organisation=org.org,
        kind=Grant.Kind.CLIENT_GRAPH,
        grantor=org.therapist_a,
        grantee=grantee,
        episode=episode,
        purpose="supervision",
        starts_at=now - dt.timedelta(hours=1),
        expires_at=now + dt.timedelta(days=7),
        created_by=org.therapist_a,
    )
    assign_perm("clients.view_episode_graph", grantee, episode)
    return grant


def test_caseload_links_to_the_episode_and_offers_a_new_client(
    client: Any, org1: OrgPersonas, episode: Any
) -> None:
    body = _as(client, org1.therapist_a).get(reverse("caseload")).content.decode()
    assert reverse("episode_detail", kwargs={"pk": episode.pk}) in body
    assert reverse("client_new") in body
    assert "PG-1" in body and "18.0" in body and "38.0" in body


def test_caseload_shows_only_own_clients(client: Any, org1: OrgPersonas, episode: Any) -> None:
    make_episode(org1, code="PG-B", therapist=org1.therapist_b)
    body = _as(client, org1.therapist_a).get(reverse("caseload")).content.decode()
    assert "PG-1" in body and "PG-B" not in body


def test_caseload_query_count_does_not_grow_with_clients(
    client: Any, org1: OrgPersonas, django_assert_max_num_queries: Any
) -> None:
    for i in range(12):
        ep = make_episode(org1, code=f"Q-{i:02d}")
        record(ep, TODAY - dt.timedelta(days=3), ors="20.0", srs="37.0")
    _as(client, org1.therapist_a)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("caseload"))
    assert response.content.decode().count('data-episode="') == 12


def test_create_a_client_and_episode_in_one_step(client: Any, org1: OrgPersonas) -> None:
    _as(client, org1.therapist_a)
    response = client.post(
        reverse("client_new"),
        {"code": "NEW-1", "age_group": "youth", "birth_year": "2010", "started_on": TODAY},
    )
    assert response.status_code == 302
    episode = Episode.objects.for_org(org1.org).get(client__code="NEW-1")
    assert response["Location"] == reverse("episode_detail", kwargs={"pk": episode.pk})
    assert episode.therapist == org1.therapist_a and episode.unit == org1.unit
    assert episode.age_group == "youth" and episode.client.birth_year == 2010


@pytest.mark.parametrize(
    "data,message",
    [
        ({"code": "010190-1234"}, "CPR"),
        ({"code": "PG-1"}, "already exists"),
        ({"code": "NEW-2", "started_on": (TODAY + dt.timedelta(days=2)).isoformat()}, "future"),
        ({"code": "NEW-3", "birth_year": "1800"}, "1900"),
    ],
)
def test_create_client_refuses_bad_input(
    client: Any, org1: OrgPersonas, episode: Any, data: dict[str, str], message: str
) -> None:
    _as(client, org1.therapist_a)
    before = Client.objects.for_org(org1.org).count()
    response = client.post(
        reverse("client_new"), {"age_group": "adult", "started_on": TODAY.isoformat(), **data}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Client.objects.for_org(org1.org).count() == before


def test_the_episode_page_shows_facts_graph_and_sessions_and_is_logged(
    client: Any, org1: OrgPersonas, episode: Any
) -> None:
    _as(client, org1.therapist_a)
    response = client.get(reverse("episode_detail", kwargs={"pk": episode.pk}))
    body = response.content.decode()
    assert response.status_code == 200
    assert "PG-1" in body and 'id="graph"' in body and "New session" in body
    assert response["Cache-Control"] == "no-store"
    log = AccessLog.objects.filter(organisation=org1.org, action="view").latest("id")
    assert (log.user, log.object_type, log.object_id, log.client_id, log.role) == (
        org1.therapist_a,
        "episode",
        episode.pk,
        episode.client_id,
        "therapist",
    )


@pytest.mark.parametrize("persona", ["therapist_b", "leader"])
def test_a_colleague_or_leader_without_grant_gets_404(
    client: Any, org1: OrgPersonas, episode: Any, persona: str
) -> None:
    _as(client, getattr(org1, persona))
    for name in ("episode_detail", "session_new", "paper_entry", "episode_transfer"):
        response = client.get(reverse(name, kwargs={"pk": episode.pk}))
        assert response.status_code in (404, 403), name
        assert "PG-1" not in response.content.decode()
    assert client.get(reverse("episode_detail", kwargs={"pk": episode.pk})).status_code == 404


def test_a_colleague_cannot_write(client: Any, org1: OrgPersonas, episode: Any) -> None:
    _as(client, org1.therapist_b)
    assert (
        client.post(
            reverse("episode_close", kwargs={"pk": episode.pk}), {"closed_on": TODAY.isoformat()}
        ).status_code
        == 404
    )
    assert (
        client.post(
            reverse("paper_entry", kwargs={"pk": episode.pk}),
            {"date": TODAY.isoformat(), "ors_total": "30"},
        ).status_code
        == 404
    )
    session = episode.sessions.get()
    assert client.post(reverse("srs_start", kwargs={"pk": session.pk})).status_code == 404
    episode.refresh_from_db()
    assert episode.status == "open" and episode.sessions.count() == 1


def test_another_organisation_gets_404(client: Any, org2: OrgPersonas, episode: Any) -> None:
    _as(client, org2.therapist_a)
    assert client.get(reverse("episode_detail", kwargs={"pk": episode.pk})).status_code == 404


def test_a_leader_with_a_live_grant_sees_the_graph_but_cannot_act(
    client: Any, org1: OrgPersonas, episode: Any
) -> None:
    grant = _grant_graph(org1, episode, org1.leader)
    _as(client, org1.leader)
    body = client.get(reverse("episode_detail", kwargs={"pk": episode.pk})).content.decode()
    assert 'id="graph"' in body and "New session" not in body and "Close episode" not in body
    assert (
        client.post(
            reverse("episode_close", kwargs={"pk": episode.pk}), {"closed_on": TODAY.isoformat()}
        ).status_code
        == 403
    )
    grant.revoked_at = timezone.now()
    grant.save()
    assert client.get(reverse("episode_detail", kwargs={"pk": episode.pk})).status_code == 404


def test_a_colleague_with_a_grant_may_read_but_not_write(
    client: Any, org1: OrgPersonas, episode: Any
) -> None:
    _grant_graph(org1, episode, org1.therapist_b)
    _as(client, org1.therapist_b)
    assert client.get(reverse("episode_detail", kwargs={"pk": episode.pk})).status_code == 200
    assert (
        client.post(
            reverse("episode_close", kwargs={"pk": episode.pk}), {"closed_on": TODAY.isoformat()}
        ).status_code
        == 404
    )
    assert client.get(reverse("session_new", kwargs={"pk": episode.pk})).status_code == 404


@pytest.mark.parametrize("persona", ["analyst", "dp_admin", "owner"])
def test_roles_without_client_data_get_403(
    client: Any, org1: OrgPersonas, episode: Any, persona: str
) -> None:
    _as(client, getattr(org1, persona))
    assert client.get(reverse("episode_detail", kwargs={"pk": episode.pk})).status_code == 403


def test_close_and_start_a_new_episode(client: Any, org1: OrgPersonas, episode: Any) -> None:
    _as(client, org1.therapist_a)
    url = reverse("episode_close", kwargs={"pk": episode.pk})
    client.post(url, {"closed_on": (TODAY - dt.timedelta(days=20)).isoformat()})
    episode.refresh_from_db()
    assert episode.status == "open"  # before the last session: refused
    client.post(url, {"closed_on": TODAY.isoformat()})
    episode.refresh_from_db()
    assert episode.status == "closed" and episode.closed_on == TODAY
    assert AccessLog.objects.filter(
        organisation=org1.org, action="close", object_id=episode.pk
    ).exists()
    page = client.get(reverse("episode_detail", kwargs={"pk": episode.pk})).content.decode()
    assert "Start a new episode" in page and "New session" not in page
    response = client.post(
        reverse("episode_restart", kwargs={"pk": episode.pk}), {"started_on": TODAY.isoformat()}
    )
    new = Episode.objects.for_org(org1.org).exclude(pk=episode.pk).get(client=episode.client)
    assert response["Location"] == reverse("episode_detail", kwargs={"pk": new.pk})
    assert new.status == "open" and new.therapist == org1.therapist_a


def test_restart_refuses_an_open_episode(client: Any, org1: OrgPersonas, episode: Any) -> None:
    _as(client, org1.therapist_a)
    client.post(reverse("episode_restart", kwargs={"pk": episode.pk}), {"started_on": TODAY})
    assert Episode.objects.for_org(org1.org).filter(client=episode.client).count() == 1


def test_transfer_to_a_colleague_is_logged(client: Any, org1: OrgPersonas, episode: Any) -> None:
    _as(client, org1.therapist_a)
    page = client.get(reverse("episode_transfer", kwargs={"pk": episode.pk})).content.decode()
    assert org1.therapist_b.get_full_name() in page
    assert org1.leader.get_full_name() not in page  # only therapists of the unit
    response = client.post(
        reverse("episode_transfer", kwargs={"pk": episode.pk}),
        {"to_therapist": org1.therapist_b.pk},
    )
    assert response["Location"] == reverse("caseload")
    episode.refresh_from_db()
    assert episode.therapist == org1.therapist_b
    log = AccessLog.objects.filter(organisation=org1.org, action="transfer").get()
    assert log.user == org1.therapist_a and log.object_id == episode.pk
    # Now it is B's: A no longer sees it.
    assert client.get(reverse("episode_detail", kwargs={"pk": episode.pk})).status_code == 404


def test_transfer_refuses_someone_outside_the_unit(
    client: Any, org1: OrgPersonas, org2: OrgPersonas, episode: Any
) -> None:
    _as(client, org1.therapist_a)
    for target in (org1.leader, org2.therapist_b, org1.therapist_a):
        response = client.post(
            reverse("episode_transfer", kwargs={"pk": episode.pk}), {"to_therapist": target.pk}
        )
        assert response.status_code == 400
    episode.refresh_from_db()
    assert episode.therapist == org1.therapist_a


def _figure(body: str) -> dict[str, Any]:
    import json

    raw = body.split('id="graph-figure" type="application/json">')[1].split("</script>")[0]
    return json.loads(raw)


@pytest.mark.parametrize(
    ("age_group", "cutoff"), [("adult", 25.0), ("youth", 28.0), ("child", 32.0)]
)
def test_the_graph_uses_the_age_groups_cutoff(
    client: Any, org1: OrgPersonas, age_group: str, cutoff: float
) -> None:
    ep = make_episode(org1, code=f"CUT-{age_group}", age_group=age_group)
    record(ep, TODAY - dt.timedelta(days=2), ors="20.0", srs="35.0")
    _as(client, org1.therapist_a)
    figure = _figure(client.get(reverse("episode_detail", kwargs={"pk": ep.pk})).content.decode())
    cut = next(t for t in figure["data"] if t["name"].startswith("Clinical cutoff"))
    assert cut["y"] == [cutoff, cutoff]
    srs_line = next(t for t in figure["data"] if t["name"].startswith("Alliance limit"))
    assert srs_line["y"] == [36.0, 36.0]


def test_the_graph_uses_the_organisations_override(
    client: Any, org1: OrgPersonas, episode: Any
) -> None:
    org1.org.ors_cutoff_adult = 24
    org1.org.save()
    _as(client, org1.therapist_a)
    figure = _figure(
        client.get(reverse("episode_detail", kwargs={"pk": episode.pk})).content.decode()
    )
    cut = next(t for t in figure["data"] if t["name"].startswith("Clinical cutoff"))
    assert cut["y"] == [24.0, 24.0]
