"""Cross-organisation account takeover (review finding A): an organisation's system owner
must never get hold of the account of a user who also belongs to another organisation."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import translation

from datapolicy.models import Membership, Role, User
from datapolicy.user_import import users_import_csv
from tests.conftest import make_episode

PASSWORD = "Takeover-9876!"


def _victim(org1: Any) -> User:
    victim: User = org1.therapist_a
    victim.email = "anna@alpha.dk"
    victim.save()
    return victim


@pytest.mark.django_db
class TestUserImport:
    def test_other_org_user_is_a_line_error_and_nothing_is_created(
        self, org1: Any, org2: Any
    ) -> None:
        victim = _victim(org1)
        text = (
            "name,email,unit,role\n"
            "Ny Person,ny@beta.dk,,mi_officer\n"
            "Anna X,ANNA@alpha.dk,,mi_officer\n"
        )
        users_before = User.objects.count()
        with translation.override("en"):
            result = users_import_csv(actor=org2.owner, organisation=org2.org, text=text)
        assert len(result.errors) == 1
        assert result.errors[0].startswith("Line 3:")
        assert "another organisation" in result.errors[0]
        assert (result.created_users, result.created_memberships) == (0, 0)
        assert User.objects.count() == users_before
        assert not Membership.dangerously_unscoped.filter(
            user=victim, organisation=org2.org
        ).exists()

    def test_users_without_membership_or_of_this_org_are_still_matched(self, org1: Any) -> None:
        loose = User.objects.create_user(username="loose", email="loose@example.dk")
        own = org1.therapist_b
        own.email = "own@alpha.dk"
        own.save()
        text = (
            "name,email,unit,role\n"
            "Loose,loose@example.dk,,mi_officer\n"
            "Own,own@alpha.dk,,mi_officer\n"
        )
        result = users_import_csv(actor=org1.owner, organisation=org1.org, text=text)
        assert result.errors == []
        assert (result.created_users, result.created_memberships) == (0, 2)
        assert Membership.objects.for_org(org1.org).filter(user__in=[loose, own]).count() == 3


@pytest.mark.django_db
class TestAdmin:
    def _multi_org_user(self, org1: Any, org2: Any) -> User:
        """org1's therapist who (legitimately) also holds a membership in org2."""
        victim = _victim(org1)
        Membership.objects.for_org(org2.org).create(
            organisation=org2.org, user=victim, role=Role.MI_OFFICER
        )
        return victim

    def test_password_change_of_multi_org_user_is_refused(self, org1: Any, org2: Any) -> None:
        victim = self._multi_org_user(org1, org2)
        c = HttpClient()
        c.force_login(org2.owner)
        url = f"/admin/datapolicy/user/{victim.pk}/password/"
        assert c.get(url).status_code in (302, 404)
        r = c.post(url, {"password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"})
        assert r.status_code in (302, 404)
        victim.refresh_from_db()
        assert not victim.check_password(PASSWORD)
        # Nor the change form (username, e-mail, active).
        change = f"/admin/datapolicy/user/{victim.pk}/change/"
        r = c.post(change, {"username": "taken", "email": "evil@beta.dk", "is_active": ""})
        assert r.status_code in (302, 404)
        victim.refresh_from_db()
        assert (victim.username, victim.email, victim.is_active) == (
            "alpha-therapist_a",
            "anna@alpha.dk",
            True,
        )
        # Not listed either.
        listing = c.get("/admin/datapolicy/user/").content.decode()
        assert "alpha-therapist_a" not in listing
        assert "beta-analyst" in listing

    def test_own_single_org_user_password_can_still_be_set(self, org1: Any, org2: Any) -> None:
        c = HttpClient()
        c.force_login(org2.owner)
        user = org2.analyst
        url = f"/admin/datapolicy/user/{user.pk}/password/"
        assert c.get(url).status_code == 200
        r = c.post(url, {"password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"})
        assert r.status_code == 302
        user.refresh_from_db()
        assert user.check_password(PASSWORD)

    def test_membership_user_choices_exclude_multi_org_users(self, org1: Any, org2: Any) -> None:
        victim = self._multi_org_user(org1, org2)
        loose = User.objects.create_user(username="loose-user")
        c = HttpClient()
        c.force_login(org2.owner)
        page = c.get("/admin/datapolicy/membership/add/").content.decode()
        assert f'value="{victim.pk}"' not in page
        assert f'value="{loose.pk}"' in page
        assert f'value="{org2.analyst.pk}"' in page
        # Existing memberships keep their user read-only (the form stays valid).
        m = Membership.objects.for_org(org2.org).get(user=victim)
        r = c.get(f"/admin/datapolicy/membership/{m.pk}/change/")
        assert r.status_code == 200
        assert 'name="user"' not in r.content.decode()

    def test_review_takeover_scenario_is_refused(self, org1: Any, org2: Any) -> None:
        """The reviewer's takeover proof, now asserting the refusal."""
        make_episode(org1)
        victim = _victim(org1)
        c = HttpClient()
        c.force_login(org2.owner)
        f = SimpleUploadedFile(
            "u.csv",
            b"name,email,unit,role\nAnna X,anna@alpha.dk,,mi_officer\n",
            content_type="text/csv",
        )
        c.post("/policy/memberships/import/", {"file": f})
        assert not Membership.dangerously_unscoped.filter(
            user=victim, organisation=org2.org
        ).exists()
        url = f"/admin/datapolicy/user/{victim.pk}/password/"
        assert c.get(url).status_code in (302, 404)
        c.post(url, {"password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"})
        c2 = HttpClient()
        c2.post(reverse("login"), {"username": victim.username, "password": PASSWORD})
        assert "_auth_user_id" not in c2.session
