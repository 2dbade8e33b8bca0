"""Tenancy by construction: unscoped queries fail, scoped ones see one organisation."""

import pytest

from clients.models import Client, Episode
from datapolicy.tenancy import UnscopedQueryError
from measures.models import Session
from tests.conftest import make_episode


def test_unscoped_query_raises(db) -> None:
    with pytest.raises(UnscopedQueryError):
        list(Client.objects.all())
    with pytest.raises(UnscopedQueryError):
        Episode.objects.filter(pk=1)
    with pytest.raises(UnscopedQueryError):
        Client.objects.for_org(None)


def test_create_without_organisation_raises(db) -> None:
    with pytest.raises(UnscopedQueryError):
        Client.objects.create(code="X")


def test_for_org_sees_only_its_organisation(org1, org2) -> None:
    make_episode(org1, code="A-1")
    make_episode(org2, code="B-1")
    assert list(Client.objects.for_org(org1.org).values_list("code", flat=True)) == ["A-1"]
    assert list(Client.objects.for_org(org2.org).values_list("code", flat=True)) == ["B-1"]


def test_for_user_therapist_sees_only_own_clients(org1) -> None:
    make_episode(org1, code="A-1", therapist=org1.therapist_a)
    make_episode(org1, code="B-1", therapist=org1.therapist_b)
    codes = lambda u: sorted(Client.objects.for_user(u, org1.org).values_list("code", flat=True))  # noqa: E731
    assert codes(org1.therapist_a) == ["A-1"]
    assert codes(org1.therapist_b) == ["B-1"]
    # Roles without client-level rights see no client rows at all.
    for user in (org1.leader, org1.analyst, org1.dp_admin, org1.owner):
        assert codes(user) == []


def test_for_user_in_another_organisation_sees_nothing(org1, org2) -> None:
    make_episode(org1, code="A-1")
    assert not Client.objects.for_user(org2.therapist_a, org1.org).exists()
    assert not Episode.objects.for_user(org2.therapist_a, org1.org).exists()


def test_sessions_follow_episode_visibility(org1) -> None:
    import datetime as dt

    from tests.conftest import record

    ep = make_episode(org1, code="A-1")
    record(ep, dt.date.today() - dt.timedelta(days=3), ors="20.0")
    assert Session.objects.for_user(org1.therapist_a, org1.org).count() == 1
    assert Session.objects.for_user(org1.therapist_b, org1.org).count() == 0
