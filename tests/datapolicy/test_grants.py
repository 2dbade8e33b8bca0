"""Grants (shares) and consents: who may give them, the guardian rows behind them, and
that start, expiry and revocation take effect on the very next request."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from clients.models import Client, Episode, EpisodeUserObjectPermission
from datapolicy.access import granted_episode_ids, therapists_sharing_with
from datapolicy.models import AccessLog, Grant
from datapolicy.services import (
    consent_record,
    consent_withdraw,
    grant_create,
    grant_permissions_cleanup,
    grant_revoke,
)
from tests.conftest import make_episode

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _graph_grant(org1: Any, episode: Any, **kw: Any) -> Grant:
    args = {
        "actor": org1.therapist_a,
        "organisation": org1.org,
        "kind": "client_graph",
        "grantee": org1.leader,
        "episode": episode,
        "purpose": "Supervision",
        "starts_at": T0 + dt.timedelta(days=1),
        "expires_at": T0 + dt.timedelta(days=10),
    }
    args.update(kw)
    return grant_create(**args)


def _leader_sees(org1: Any, episode: Any) -> bool:
    return Episode.objects.for_user(org1.leader, org1.org).filter(pk=episode.pk).exists()


def _perm_rows(episode_id: int) -> int:
    return EpisodeUserObjectPermission.objects.filter(content_object_id=episode_id).count()


@pytest.mark.django_db
class TestPeriodAndRevocation:
    def test_before_start_during_and_after_expiry(self, org1: Any) -> None:
        with time_machine.travel(T0, tick=False):
            episode = make_episode(org1)
            _graph_grant(org1, episode)
            assert not _leader_sees(org1, episode)  # not started yet
        with time_machine.travel(T0 + dt.timedelta(days=1, seconds=1), tick=False):
            assert _leader_sees(org1, episode)
            assert granted_episode_ids(org1.leader, org1.org) == [episode.pk]
        with time_machine.travel(T0 + dt.timedelta(days=10), tick=False):
            # The expiry instant itself is already outside the grant.
            assert not _leader_sees(org1, episode)
            assert granted_episode_ids(org1.leader, org1.org) == []

    def test_revocation_refuses_the_very_next_request(self, org1: Any, client: Any) -> None:
        with time_machine.travel(T0, tick=False):
            episode = make_episode(org1)
            grant = _graph_grant(org1, episode, starts_at=T0 - dt.timedelta(hours=1))
            assert _leader_sees(org1, episode)
            assert _perm_rows(episode.pk) == 1
            client.force_login(org1.therapist_a)
            response = client.post(reverse("dp_grant_revoke", args=[grant.pk]))
            assert response.status_code == 302
            assert not _leader_sees(org1, episode)
            grant.refresh_from_db()
            assert grant.revoked_at == T0 and grant.revoked_by == org1.therapist_a
            # guardian's row went with the last grant that needed it
            assert _perm_rows(episode.pk) == 0

    def test_own_figures_share_expires(self, org1: Any) -> None:
        with time_machine.travel(T0, tick=False):
            grant_create(
                actor=org1.therapist_a,
                organisation=org1.org,
                kind="own_figures",
                grantee=org1.leader,
                purpose="Annual talk",
                starts_at=T0,
                expires_at=T0 + dt.timedelta(days=1),
            )
            assert therapists_sharing_with(org1.leader, org1.org) == [org1.therapist_a.pk]
        with time_machine.travel(T0 + dt.timedelta(days=1, seconds=1), tick=False):
            assert therapists_sharing_with(org1.leader, org1.org) == []

    def test_revoking_one_of_two_grants_keeps_the_permission(self, org1: Any) -> None:
        with time_machine.travel(T0, tick=False):
            episode = make_episode(org1)
            first = _graph_grant(org1, episode, starts_at=T0 - dt.timedelta(hours=1))
            _graph_grant(org1, episode, starts_at=T0 - dt.timedelta(hours=1), purpose="Case")
            assert _perm_rows(episode.pk) == 1  # one guardian row per (grantee, episode)
            grant_revoke(actor=org1.dp_admin, grant=first)
            assert _leader_sees(org1, episode)
            assert _perm_rows(episode.pk) == 1

    def test_cleanup_drops_rows_of_expired_grants_only(self, org1: Any) -> None:
        with time_machine.travel(T0, tick=False):
            old = make_episode(org1, code="OLD-1")
            live = make_episode(org1, code="LIVE-1")
            _graph_grant(org1, old, expires_at=T0 + dt.timedelta(days=2))
            _graph_grant(org1, live)
        with time_machine.travel(T0 + dt.timedelta(days=3), tick=False):
            assert grant_permissions_cleanup(organisation=org1.org) == 1
            assert _perm_rows(old.pk) == 0 and _perm_rows(live.pk) == 1
            assert grant_permissions_cleanup(organisation=org1.org) == 0  # idempotent


@pytest.mark.django_db
class TestWhoMayShare:
    def test_therapist_cannot_share_a_colleagues_episode(self, org1: Any) -> None:
        colleague = make_episode(org1, therapist=org1.therapist_b, code="B-1")
        with time_machine.travel(T0, tick=False), pytest.raises(ValidationError) as exc:
            _graph_grant(org1, colleague)
        assert "episode" in exc.value.message_dict
        assert _perm_rows(colleague.pk) == 0

    def test_therapist_cannot_share_on_behalf_of_another(self, org1: Any) -> None:
        with time_machine.travel(T0, tick=False), pytest.raises(PermissionDenied):
            grant_create(
                actor=org1.therapist_a,
                grantor=org1.therapist_b,
                organisation=org1.org,
                kind="own_figures",
                grantee=org1.leader,
                purpose="x",
                starts_at=T0,
                expires_at=T0 + dt.timedelta(days=1),
            )

    @pytest.mark.parametrize("role", ["analyst", "dp_admin", "owner"])
    def test_only_leaders_and_therapists_receive_shares(self, org1: Any, role: str) -> None:
        with time_machine.travel(T0, tick=False), pytest.raises(ValidationError) as exc:
            grant_create(
                actor=org1.therapist_a,
                organisation=org1.org,
                kind="own_figures",
                grantee=org1.by_role()[role],
                purpose="x",
                starts_at=T0,
                expires_at=T0 + dt.timedelta(days=1),
            )
        assert "grantee" in exc.value.message_dict
        assert not Grant.objects.for_org(org1.org).exists()

    def test_grantee_of_another_organisation_is_refused(self, org1: Any, org2: Any) -> None:
        with time_machine.travel(T0, tick=False), pytest.raises(ValidationError):
            grant_create(
                actor=org1.therapist_a,
                organisation=org1.org,
                kind="own_figures",
                grantee=org2.leader,
                purpose="x",
                starts_at=T0,
                expires_at=T0 + dt.timedelta(days=1),
            )

    def test_bad_period_and_cpr_purpose(self, org1: Any) -> None:
        with time_machine.travel(T0, tick=False), pytest.raises(ValidationError) as exc:
            grant_create(
                actor=org1.therapist_a,
                organisation=org1.org,
                kind="own_figures",
                grantee=org1.leader,
                purpose="Klient 010190-1234",
                starts_at=T0,
                expires_at=T0 - dt.timedelta(days=1),
            )
        assert {"purpose", "expires_at"} <= set(exc.value.message_dict)

    def test_dp_admin_creates_on_behalf_and_colleague_cannot_revoke(
        self, org1: Any, client: Any
    ) -> None:
        with time_machine.travel(T0, tick=False):
            episode = make_episode(org1)
            grant = _graph_grant(
                org1, episode, actor=org1.dp_admin, grantor=org1.therapist_a, starts_at=T0
            )
            assert grant.created_by == org1.dp_admin and grant.grantor == org1.therapist_a
            with pytest.raises(PermissionDenied):
                grant_revoke(actor=org1.therapist_b, grant=grant)
            client.force_login(org1.therapist_b)
            assert client.post(reverse("dp_grant_revoke", args=[grant.pk])).status_code == 404
            assert _leader_sees(org1, episode)

    def test_global_permission_alone_gives_nothing(self, org1: Any) -> None:
        from django.contrib.auth.models import Permission

        episode = make_episode(org1)
        perm = Permission.objects.get(codename="view_episode_graph")
        org1.leader.user_permissions.add(perm)
        assert not _leader_sees(org1, episode)

    def test_grants_are_access_logged(self, org1: Any) -> None:
        with time_machine.travel(T0, tick=False):
            episode = make_episode(org1)
            grant = _graph_grant(org1, episode)
            grant_revoke(actor=org1.therapist_a, grant=grant)
        actions = list(
            AccessLog.objects.filter(organisation=org1.org, object_type="grant").values_list(
                "action", "object_id", "client_id"
            )
        )
        assert actions == [
            ("grant", grant.pk, episode.client_id),
            ("revoke", grant.pk, episode.client_id),
        ]


@pytest.mark.django_db
class TestNoOrphans:
    def test_deleting_an_episode_removes_its_permissions_and_grants(self, org1: Any) -> None:
        with time_machine.travel(T0, tick=False):
            episode = make_episode(org1)
            _graph_grant(org1, episode)
            assert _perm_rows(episode.pk) == 1
            pk = episode.pk
            Episode.objects.for_org(org1.org).filter(pk=pk).delete()
        assert _perm_rows(pk) == 0
        assert not Grant.objects.for_org(org1.org).filter(episode_id=pk).exists()

    def test_deleting_a_client_removes_its_permissions(self, org1: Any) -> None:
        with time_machine.travel(T0, tick=False):
            episode = make_episode(org1)
            _graph_grant(org1, episode)
            Client.objects.for_org(org1.org).filter(pk=episode.client_id).delete()
        assert EpisodeUserObjectPermission.objects.count() == 0
        assert not Grant.objects.for_org(org1.org).exists()


@pytest.mark.django_db
class TestGrantPages:
    def test_therapist_sees_own_shares_only(self, org1: Any, client: Any) -> None:
        with time_machine.travel(T0, tick=False):
            mine = make_episode(org1, code="MINE-1")
            theirs = make_episode(org1, therapist=org1.therapist_b, code="THEIRS-1")
            _graph_grant(org1, mine)
            _graph_grant(org1, theirs, actor=org1.therapist_b)
        client.force_login(org1.therapist_a)
        body = client.get(reverse("dp_grants")).content.decode()
        assert "MINE-1" in body and "THEIRS-1" not in body

    def test_dp_admin_sees_history_without_client_codes(self, org1: Any, client: Any) -> None:
        with time_machine.travel(T0, tick=False):
            episode = make_episode(org1, code="HIDE-9")
            grant = _graph_grant(org1, episode)
            grant_revoke(actor=org1.therapist_a, grant=grant)
        client.force_login(org1.dp_admin)
        body = client.get(reverse("dp_grants")).content.decode()
        assert f'data-grant="{grant.pk}"' in body
        assert "HIDE-9" not in body
        assert f"#{episode.pk}" in body

    def test_dp_admin_creates_graph_share_by_episode_number(self, org1: Any, client: Any) -> None:
        episode = make_episode(org1)
        client.force_login(org1.dp_admin)
        response = client.post(
            reverse("dp_grant_create"),
            {
                "kind": "client_graph",
                "grantor": org1.therapist_a.pk,
                "grantee": org1.leader.pk,
                "episode_number": episode.pk,
                "purpose": "Supervision",
                "starts_at": "2020-01-01T08:00",
                "expires_at": "2099-01-01T08:00",
            },
        )
        assert response.status_code == 302
        assert _leader_sees(org1, episode)

    def test_invalid_share_form_saves_nothing(self, org1: Any, client: Any) -> None:
        colleague = make_episode(org1, therapist=org1.therapist_b, code="B-2")
        client.force_login(org1.therapist_a)
        response = client.post(
            reverse("dp_grant_create"),
            {
                "kind": "client_graph",
                "grantee": org1.leader.pk,
                "episode": colleague.pk,  # not in the therapist's choices
                "purpose": "x",
                "starts_at": "2020-01-01T08:00",
                "expires_at": "2099-01-01T08:00",
            },
        )
        assert response.status_code == 200
        assert not Grant.objects.for_org(org1.org).exists()


@pytest.mark.django_db
class TestConsents:
    def test_record_and_withdraw_are_logged(self, org1: Any) -> None:
        episode = make_episode(org1)
        consent = consent_record(
            actor=org1.therapist_a,
            organisation=org1.org,
            client=episode.client,
            purpose="Research",
            given_on=dt.date.today(),
        )
        consent_withdraw(actor=org1.dp_admin, consent=consent)
        consent.refresh_from_db()
        assert consent.withdrawn_on == dt.date.today()
        with pytest.raises(ValidationError):
            consent_withdraw(actor=org1.dp_admin, consent=consent)
        logged = AccessLog.objects.filter(organisation=org1.org, object_type="consent")
        assert list(logged.values_list("action", "client_id")) == [
            ("create", episode.client_id),
            ("withdraw", episode.client_id),
        ]

    def test_therapist_cannot_record_for_a_colleagues_client(self, org1: Any, client: Any) -> None:
        make_episode(org1, therapist=org1.therapist_b, code="COLL-1")
        client.force_login(org1.therapist_a)
        response = client.post(
            reverse("dp_consents"),
            {"client_code": "COLL-1", "purpose": "x", "given_on": "2024-01-01"},
        )
        assert response.status_code == 200
        assert not response.context["consents"]
        from datapolicy.models import Consent

        assert not Consent.objects.for_org(org1.org).exists()

    def test_future_consent_date_refused(self, org1: Any) -> None:
        episode = make_episode(org1)
        with pytest.raises(ValidationError):
            consent_record(
                actor=org1.therapist_a,
                organisation=org1.org,
                client=episode.client,
                purpose="x",
                given_on=dt.date.today() + dt.timedelta(days=1),
            )


@pytest.mark.django_db
def test_leader_lists_received_shares_only(org1: Any, client: Any) -> None:
    with time_machine.travel(T0, tick=False):
        episode = make_episode(org1, code="REC-1")
        received = _graph_grant(org1, episode)
        other = _graph_grant(org1, episode, grantee=org1.therapist_b)
    client.force_login(org1.leader)
    response = client.get(reverse("dp_grants"))
    assert [g.pk for g in response.context["grants"]] == [received.pk]
    assert other.pk != received.pk
    body = response.content.decode()
    assert "REC-1" not in body and reverse("dp_grant_create") not in body
    assert client.get(reverse("dp_grant_create")).status_code == 403


@pytest.mark.django_db
def test_consent_services_refuse_a_colleagues_client(org1: Any) -> None:
    colleague = make_episode(org1, therapist=org1.therapist_b, code="COLL-2")
    with pytest.raises(PermissionDenied):
        consent_record(
            actor=org1.therapist_a,
            organisation=org1.org,
            client=colleague.client,
            purpose="x",
            given_on=dt.date.today(),
        )
    consent = consent_record(
        actor=org1.therapist_b,
        organisation=org1.org,
        client=colleague.client,
        purpose="x",
        given_on=dt.date.today(),
    )
    with pytest.raises(PermissionDenied):
        consent_withdraw(actor=org1.therapist_a, consent=consent)
    with pytest.raises(PermissionDenied):
        consent_withdraw(actor=org1.leader, consent=consent)
