"""Bulk-add users from CSV: all or nothing, with line-numbered errors."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from datapolicy.models import Membership, Role, User
from datapolicy.user_import import users_import_csv

GOOD = (
    "name,email,unit,role\n"
    "Mette Holm,mette@example.dk,ung,therapist\n"
    "Lars Berg,lars@example.dk,Rusmiddelcentret,unit_leader\n"
    "Sara Nør,sara@example.dk,,mi_officer\n"
)


@pytest.mark.django_db
class TestImport:
    def test_creates_users_and_memberships(self, org1: Any) -> None:
        result = users_import_csv(actor=org1.owner, organisation=org1.org, text=GOOD)
        assert result.errors == []
        assert (result.created_users, result.created_memberships) == (3, 3)
        mette = User.objects.get(email="mette@example.dk")
        assert (mette.first_name, mette.last_name) == ("Mette", "Holm")
        assert not mette.has_usable_password()
        m = Membership.objects.for_org(org1.org).get(user=mette)
        assert (m.role, m.unit) == (Role.THERAPIST, org1.unit)
        lars = Membership.objects.for_org(org1.org).get(user__email="lars@example.dk")
        assert lars.unit == org1.other_unit
        # Importing the same file again adds nothing.
        again = users_import_csv(actor=org1.owner, organisation=org1.org, text=GOOD)
        assert (again.created_users, again.created_memberships) == (0, 0)

    def test_errors_name_their_lines_and_nothing_is_created(self, org1: Any) -> None:
        text = (
            "name,email,unit,role\n"
            "Mette Holm,mette@example.dk,ung,therapist\n"
            "Bo,not-an-email,ung,therapist\n"
            "Ida,ida@example.dk,nowhere,therapist\n"
            "Per,per@example.dk,,therapist\n"
            "Kim,kim@example.dk,ung,boss\n"
            "Ane 010190-1234,ane@example.dk,ung,therapist\n"
        )
        users_before = User.objects.count()
        with translation.override("en"):
            result = users_import_csv(actor=org1.owner, organisation=org1.org, text=text)
        assert [e.split(":")[0] for e in result.errors] == [
            "Line 3",
            "Line 4",
            "Line 5",
            "Line 6",
            "Line 7",
        ]
        assert "e-mail" in result.errors[0]
        assert "unknown unit" in result.errors[1]
        assert "needs a unit" in result.errors[2]
        assert "unknown role" in result.errors[3]
        assert "CPR" in result.errors[4] and "010190" not in result.errors[4]
        assert User.objects.count() == users_before
        assert not User.objects.filter(email="mette@example.dk").exists()

    def test_wrong_header(self, org1: Any) -> None:
        with translation.override("en"):
            result = users_import_csv(
                actor=org1.owner, organisation=org1.org, text="navn;mail\nA;b\n"
            )
        assert result.errors and result.errors[0].startswith("Line 1")

    def test_semicolon_files_from_excel(self, org1: Any) -> None:
        text = "\ufeffname;email;unit;role\nMette Holm;mette@example.dk;ung;therapist\n"
        result = users_import_csv(actor=org1.owner, organisation=org1.org, text=text)
        assert result.errors == [] and result.created_users == 1

    @pytest.mark.parametrize("persona", ["dp_admin", "leader", "therapist_a"])
    def test_only_the_system_owner(self, org1: Any, persona: str) -> None:
        with pytest.raises(PermissionDenied):
            users_import_csv(actor=org1.by_role()[persona], organisation=org1.org, text=GOOD)

    def test_upload_page(self, org1: Any, client: Any) -> None:
        client.force_login(org1.owner)
        upload = SimpleUploadedFile("u.csv", GOOD.encode())
        response = client.post(reverse("dp_user_import"), {"file": upload})
        assert response.status_code == 302
        assert (
            Membership.objects.for_org(org1.org).filter(user__email__endswith="example.dk").count()
            == 3
        )
        bad = SimpleUploadedFile("u.csv", b"name,email,unit,role\nBo,x,ung,therapist\n")
        response = client.post(reverse("dp_user_import"), {"file": bad})
        assert response.status_code == 200
        assert "Linje 2" in response.content.decode()  # the page is Danish

    def test_memberships_page_groups_by_unit(self, org1: Any, client: Any) -> None:
        client.force_login(org1.dp_admin)
        response = client.get(reverse("dp_memberships"))
        assert response.status_code == 200
        units = [u for u, _members in response.context["groups"]]
        assert units == [None, org1.unit]
        assert not response.context["may_manage"]


@pytest.mark.django_db
class TestMembershipActive:
    def test_owner_deactivates_and_reactivates(self, org1: Any, client: Any) -> None:
        m = Membership.objects.for_org(org1.org).get(user=org1.therapist_b)
        client.force_login(org1.owner)
        url = reverse("dp_membership_active", args=[m.pk])
        assert client.post(url, {"active": "0"}).status_code == 302
        m.refresh_from_db()
        assert not m.is_active
        from datapolicy.access import roles_of

        assert roles_of(org1.therapist_b, org1.org) == set()
        client.post(url, {"active": "1"})
        m.refresh_from_db()
        assert m.is_active

    def test_owner_cannot_lock_themself_out(self, org1: Any, client: Any) -> None:
        m = Membership.objects.for_org(org1.org).get(user=org1.owner)
        client.force_login(org1.owner)
        client.post(reverse("dp_membership_active", args=[m.pk]), {"active": "0"})
        m.refresh_from_db()
        assert m.is_active

    def test_other_organisations_membership_is_404(self, org1: Any, org2: Any, client: Any) -> None:
        m = Membership.objects.for_org(org2.org).get(user=org2.therapist_a)
        client.force_login(org1.owner)
        response = client.post(reverse("dp_membership_active", args=[m.pk]), {"active": "0"})
        assert response.status_code == 404
        m.refresh_from_db()
        assert m.is_active
