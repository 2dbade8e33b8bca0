"""Review round 6 of the data policy: each test tries the forbidden thing and is refused.

1. a system owner gives themselves no role (CSV import, (de)activation);
2. a share counts only while its grantee holds a role that may receive it;
3. the import logs every client it created or changed, with the role; exports log the role;
4. the caseload, consents and shares pages log a read per client shown;
5. CPR-shaped searches are refused and never echoed;
6. the Django admin refuses CPR-shaped user, unit and organisation names;
7. "/" and "." between the date and the four digits are CPR numbers too;
8. OPTIONS answers no more than GET for another organisation's object;
9. the caseload's filter is a GET and its search post-redirect-get (Back works).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from clients.models import Client
from clients.services import client_create
from clients.views import CASELOAD_SEARCH_KEY
from datapolicy.access import granted_episode_ids, therapists_sharing_with
from datapolicy.models import AccessLog, Membership, Organisation, Role, Unit, User
from datapolicy.services import consent_record, grant_create, membership_set_active
from datapolicy.user_import import users_import_csv
from datapolicy.validators import CPR_MESSAGE, looks_like_cpr
from measures.exporter import export_sessions
from measures.importer import import_sessions
from measures.models import safe_upload_name
from tests.conftest import OrgPersonas, make_episode, record

CPR = "010190-1234"
OWN_ROLES_MESSAGE = (
    "You cannot change your own roles; another system owner of the organisation must do it."
)


def _entries(org: Any, **kw: Any) -> list[dict[str, Any]]:
    rows = AccessLog.objects.filter(organisation=org.org, **kw).order_by("pk")
    return [dict(r) for r in rows.values("action", "object_type", "object_id", "client_id", "role")]


# --- 1. No roles for oneself -----------------------------------------------------------


@pytest.mark.django_db
class TestOwnerGivesThemselvesNoRole:
    @pytest.mark.parametrize("role", ["dp_admin", "therapist", "unit_leader"])
    def test_csv_import_of_a_role_for_oneself_is_refused(
        self, org1: OrgPersonas, client: Any, role: str
    ) -> None:
        owner = org1.owner
        owner.email = "owner@alpha.example"
        owner.save()
        unit = org1.unit.code if role != "dp_admin" else ""
        csv = f"name,email,unit,role\nOwner Self,OWNER@alpha.example,{unit},{role}\n"
        client.force_login(owner)
        response = client.post(
            reverse("dp_user_import"),
            {"file": SimpleUploadedFile("u.csv", csv.encode(), content_type="text/csv")},
        )
        assert response.status_code == 200  # the form again, with the line's error
        assert "Linje 2" in response.content.decode()
        mine = set(
            Membership.objects.for_org(org1.org)
            .filter(user=owner, is_active=True)
            .values_list("role", flat=True)
        )
        assert mine == {Role.SYSTEM_OWNER}

    def test_csv_import_is_all_or_nothing_with_an_own_line(self, org1: OrgPersonas) -> None:
        org1.owner.email = "owner@alpha.example"
        org1.owner.save()
        text = (
            "name,email,unit,role\n"
            "Mette Holm,mette@example.dk,ung,therapist\n"
            "Owner Self,owner@alpha.example,ung,therapist\n"
        )
        result = users_import_csv(actor=org1.owner, organisation=org1.org, text=text)
        assert len(result.errors) == 1 and result.errors[0].startswith("Linje 3")
        assert not User.objects.filter(email="mette@example.dk").exists()

    def test_another_system_owner_may_import_the_role(self, org1: OrgPersonas) -> None:
        """Control: the four-eyes rule, not a ban on the person."""
        second = User.objects.create_user(username="alpha-owner2", password="pw")
        Membership.objects.create(organisation=org1.org, user=second, role=Role.SYSTEM_OWNER)
        org1.owner.email = "owner@alpha.example"
        org1.owner.save()
        text = "name,email,unit,role\nOwner Self,owner@alpha.example,ung,therapist\n"
        result = users_import_csv(actor=second, organisation=org1.org, text=text)
        assert result.errors == []
        assert (
            Membership.objects.for_org(org1.org)
            .filter(user=org1.owner, role=Role.THERAPIST, is_active=True)
            .exists()
        )

    def test_reactivating_an_own_role_is_refused(self, org1: OrgPersonas, client: Any) -> None:
        m = Membership.objects.create(
            organisation=org1.org,
            user=org1.owner,
            unit=org1.unit,
            role=Role.THERAPIST,
            is_active=False,
        )
        client.force_login(org1.owner)
        response = client.post(
            reverse("dp_membership_active", args=[m.pk]), {"active": "1"}, follow=True
        )
        m.refresh_from_db()
        assert m.is_active is False
        # The reason, in the page's language (Danish once the catalogue is compiled).
        assert gettext(OWN_ROLES_MESSAGE) in response.content.decode()
        with pytest.raises(ValidationError):
            membership_set_active(actor=org1.owner, membership=m, active=True)

    def test_deactivating_an_own_role_is_refused(self, org1: OrgPersonas) -> None:
        m = Membership.objects.create(
            organisation=org1.org, user=org1.owner, unit=org1.unit, role=Role.THERAPIST
        )
        with pytest.raises(ValidationError):
            membership_set_active(actor=org1.owner, membership=m, active=False)
        m.refresh_from_db()
        assert m.is_active

    def test_the_page_offers_no_button_for_own_roles(self, org1: OrgPersonas, client: Any) -> None:
        own = Membership.objects.for_org(org1.org).get(user=org1.owner)
        other = Membership.objects.for_org(org1.org).get(user=org1.therapist_b)
        client.force_login(org1.owner)
        body = client.get(reverse("dp_memberships")).content.decode()
        assert reverse("dp_membership_active", args=[own.pk]) not in body
        assert reverse("dp_membership_active", args=[other.pk]) in body


# --- 2. A share needs the grantee's role -------------------------------------------------


def _share(p: OrgPersonas, grantee: Any, **kw: Any) -> Any:
    now = timezone.now()
    args: dict[str, Any] = {
        "actor": p.therapist_a,
        "organisation": p.org,
        "kind": "own_figures",
        "grantee": grantee,
        "purpose": "Supervision",
        "starts_at": now - dt.timedelta(hours=1),
        "expires_at": now + dt.timedelta(days=30),
    }
    args.update(kw)
    return grant_create(**args)


def _figures(client: Any, p: OrgPersonas) -> tuple[int, int]:
    page = client.get(reverse("stats_therapist", args=[p.therapist_a.pk]))
    api = client.get(f"/api/v1/stats/therapist/{p.therapist_a.pk}/")
    return page.status_code, api.status_code


@pytest.mark.django_db
class TestShareNeedsTheGranteesRole:
    @pytest.mark.parametrize("other_role", [Role.MI_OFFICER, Role.DP_ADMIN, Role.SYSTEM_OWNER])
    @pytest.mark.parametrize("how", ["deactivated", "removed"])
    def test_leader_who_lost_the_role_no_longer_sees_the_figures(
        self, org1: OrgPersonas, client: Any, other_role: str, how: str
    ) -> None:
        make_episode(org1)
        leader = org1.leader
        Membership.objects.create(organisation=org1.org, user=leader, role=other_role)
        _share(org1, leader)
        client.force_login(leader)
        assert _figures(client, org1) == (200, 200)  # control: the share works
        m = Membership.objects.for_org(org1.org).get(user=leader, role=Role.UNIT_LEADER)
        if how == "deactivated":
            membership_set_active(actor=org1.owner, membership=m, active=False)
        else:
            m.delete()
        assert _figures(client, org1) == (403, 403)
        assert therapists_sharing_with(leader, org1.org) == []

    def test_the_share_counts_again_when_the_role_is_back(
        self, org1: OrgPersonas, client: Any
    ) -> None:
        """The role is checked on each request; the grant itself is not changed."""
        make_episode(org1)
        Membership.objects.create(organisation=org1.org, user=org1.leader, role=Role.MI_OFFICER)
        _share(org1, org1.leader)
        m = Membership.objects.for_org(org1.org).get(user=org1.leader, role=Role.UNIT_LEADER)
        membership_set_active(actor=org1.owner, membership=m, active=False)
        client.force_login(org1.leader)
        assert _figures(client, org1) == (403, 403)
        membership_set_active(actor=org1.owner, membership=m, active=True)
        assert _figures(client, org1) == (200, 200)

    def test_a_client_graph_share_ends_with_the_role(self, org1: OrgPersonas, client: Any) -> None:
        episode = make_episode(org1)
        Membership.objects.create(organisation=org1.org, user=org1.leader, role=Role.DP_ADMIN)
        _share(org1, org1.leader, kind="client_graph", episode=episode)
        assert granted_episode_ids(org1.leader, org1.org) == [episode.pk]
        m = Membership.objects.for_org(org1.org).get(user=org1.leader, role=Role.UNIT_LEADER)
        membership_set_active(actor=org1.owner, membership=m, active=False)
        assert granted_episode_ids(org1.leader, org1.org) == []
        client.force_login(org1.leader)
        assert client.get(reverse("episode_detail", args=[episode.pk])).status_code in (403, 404)


# --- 3. The import and the exports in the access log -------------------------------------

IMPORT = (
    "client_code;therapist;unit;session_date;ors_total;srs_total\n"
    "IM-1;alpha-therapist_a;ung;2025-01-10;12;38\n"
    "IM-1;alpha-therapist_a;ung;2025-01-17;14;38\n"
    "IM-2;alpha-therapist_b;ung;2025-01-11;14;37\n"
)


@pytest.mark.django_db
class TestImportAndExportLog:
    def test_import_logs_each_client_with_the_role(self, org1: OrgPersonas) -> None:
        # As the Celery task and the command call it: no request.
        result = import_sessions(actor=org1.owner, organisation=org1.org, data=IMPORT.encode())
        assert result.ok, result.errors
        ids = dict(Client.objects.for_org(org1.org).values_list("code", "pk"))
        per_client = _entries(org1, action="import", object_type="client")
        assert sorted(e["client_id"] for e in per_client) == sorted([ids["IM-1"], ids["IM-2"]])
        entries = _entries(org1)
        assert entries and all(e["role"] == Role.SYSTEM_OWNER for e in entries)
        # The summary entry holds no count where an id belongs.
        summary = _entries(org1, action="import", object_type="sessions")
        assert len(summary) == 1 and summary[0]["object_id"] is None
        assert AccessLog.objects.filter(organisation=org1.org, action="import").filter(
            user=org1.owner
        ).count() == len(entries)

    def test_reimport_changes_nothing_and_logs_no_client(self, org1: OrgPersonas) -> None:
        import_sessions(actor=org1.owner, organisation=org1.org, data=IMPORT.encode())
        before = len(_entries(org1, object_type="client"))
        result = import_sessions(actor=org1.owner, organisation=org1.org, data=IMPORT.encode())
        assert result.ok and result.sessions_created == 0
        assert len(_entries(org1, object_type="client")) == before

    def test_import_into_an_existing_client_logs_that_client(self, org1: OrgPersonas) -> None:
        episode = make_episode(org1, code="EX-1")
        record(episode, dt.date.today() - dt.timedelta(days=30), ors="20.0", srs="37.0")
        data = (
            "client_code;therapist;unit;session_date;ors_total;srs_total;episode_closed_on\n"
            f"EX-1;alpha-therapist_a;ung;{dt.date.today() - dt.timedelta(days=10)};"
            f"21;38;{dt.date.today() - dt.timedelta(days=5)}\n"
        )
        result = import_sessions(actor=org1.owner, organisation=org1.org, data=data.encode())
        assert result.ok, result.errors
        mine = _entries(org1, client_id=episode.client_id, action__in=["import", "close"])
        assert {e["action"] for e in mine} == {"import", "close"}
        assert all(e["role"] == Role.SYSTEM_OWNER for e in mine)

    def test_export_command_logs_the_role(self, org1: OrgPersonas, tmp_path: Any) -> None:
        episode = make_episode(org1)
        record(episode, dt.date.today() - dt.timedelta(days=3), ors="20.0", srs="37.0")
        before = AccessLog.objects.count()
        call_command("export_sessions", "--org", org1.org.slug, "--output", str(tmp_path / "x"))
        new = list(AccessLog.objects.order_by("pk")[before:].values("role", "client_id"))
        assert new and {e["role"] for e in new} == {Role.SYSTEM_OWNER}
        assert episode.client_id in {e["client_id"] for e in new}

    def test_export_service_names_the_role_without_a_request(self, org1: OrgPersonas) -> None:
        episode = make_episode(org1)
        record(episode, dt.date.today() - dt.timedelta(days=3), ors="20.0", srs="37.0")
        export_sessions(actor=org1.owner, organisation=org1.org)
        assert {e["role"] for e in _entries(org1, action="export")} == {Role.SYSTEM_OWNER}


# --- 4. Pages log a read per client shown -------------------------------------------------


@pytest.mark.django_db
class TestPagesLogPerClient:
    def test_caseload_logs_each_client_shown(self, org1: OrgPersonas, client: Any) -> None:
        shown = make_episode(org1, code="CL-1")
        other = make_episode(org1, code="CL-2")
        colleague = make_episode(org1, code="CL-B", therapist=org1.therapist_b)
        client.force_login(org1.therapist_a)
        body = client.get(reverse("caseload")).content.decode()
        assert "CL-1" in body and "CL-2" in body
        for ep in (shown, other):
            entries = _entries(org1, client_id=ep.client_id, action="list")
            assert [(e["object_type"], e["role"]) for e in entries] == [("caseload", "therapist")]
        assert _entries(org1, client_id=colleague.client_id, action="list") == []

    def test_a_search_logs_only_the_clients_shown(self, org1: OrgPersonas, client: Any) -> None:
        hit = make_episode(org1, code="SR-1")
        miss = make_episode(org1, code="QQ-2")
        client.force_login(org1.therapist_a)
        client.post(reverse("caseload"), {"q": "sr-", "status": "active"}, follow=True)
        assert len(_entries(org1, client_id=hit.client_id, action="list")) == 1
        assert _entries(org1, client_id=miss.client_id, action="list") == []

    def test_empty_caseload_is_one_entry(self, org1: OrgPersonas, client: Any) -> None:
        client.force_login(org1.therapist_a)
        client.get(reverse("caseload"))
        assert _entries(org1, object_type="caseload") == [
            {
                "action": "list",
                "object_type": "caseload",
                "object_id": None,
                "client_id": None,
                "role": "therapist",
            }
        ]

    @pytest.mark.parametrize("persona", ["dp_admin", "therapist_a"])
    def test_consents_page_logs_each_client_shown(
        self, org1: OrgPersonas, client: Any, persona: str
    ) -> None:
        ep = make_episode(org1)
        consent_record(
            actor=org1.therapist_a,
            organisation=org1.org,
            client=ep.client,
            purpose="Research",
            given_on=timezone.localdate(),
        )
        client.force_login(org1.by_role()[persona])
        before = len(_entries(org1, client_id=ep.client_id))
        assert ep.client.code in client.get(reverse("dp_consents")).content.decode()
        new = _entries(org1, client_id=ep.client_id)[before:]
        assert [(e["action"], e["object_type"]) for e in new] == [("list", "consent")]

    @pytest.mark.parametrize("persona", ["therapist_a", "leader", "dp_admin"])
    def test_shares_page_logs_the_client_of_a_graph_share(
        self, org1: OrgPersonas, client: Any, persona: str
    ) -> None:
        ep = make_episode(org1)
        _share(org1, org1.leader, kind="client_graph", episode=ep)
        client.force_login(org1.by_role()[persona])
        before = len(_entries(org1, client_id=ep.client_id, action="list"))
        assert client.get(reverse("dp_grants")).status_code == 200
        new = _entries(org1, client_id=ep.client_id, action="list")[before:]
        assert [e["object_type"] for e in new] == ["grant"]

    def test_api_list_still_logs_each_client(self, org1: OrgPersonas, client: Any) -> None:
        """Control: the API's list read, now through the same service."""
        ep = make_episode(org1)
        client.force_login(org1.therapist_a)
        assert client.get("/api/v1/episodes/").status_code == 200
        assert len(_entries(org1, client_id=ep.client_id, action="list")) == 1


# --- 5. CPR-shaped searches ---------------------------------------------------------------


@pytest.mark.django_db
class TestCprInSearches:
    @pytest.mark.parametrize("value", [CPR, "0101901234", "010190/1234", "010190.1234"])
    def test_caseload_search_refuses_and_never_echoes(
        self, org1: OrgPersonas, client: Any, value: str
    ) -> None:
        make_episode(org1)
        client.force_login(org1.therapist_a)
        response = client.post(reverse("caseload"), {"q": value, "status": "all"}, follow=True)
        body = response.content.decode()
        assert response.status_code == 200
        assert value not in body
        assert str(CPR_MESSAGE)[:30] in body
        # Not kept for the next page either.
        assert client.session[CASELOAD_SEARCH_KEY]["q"] == ""
        assert value not in client.get(reverse("caseload")).content.decode()

    def test_api_client_search_refuses_it(self, org1: OrgPersonas, client: Any) -> None:
        make_episode(org1)
        client.force_login(org1.therapist_a)
        response = client.post(
            "/api/v1/clients/search/", {"code": CPR}, content_type="application/json"
        )
        assert response.status_code == 400
        assert CPR not in response.content.decode()
        assert "CPR" in response.content.decode()

    def test_api_client_search_works(self, org1: OrgPersonas, client: Any) -> None:
        """Control."""
        make_episode(org1, code="AB-1001")
        client.force_login(org1.therapist_a)
        response = client.post(
            "/api/v1/clients/search/", {"code": "ab-10"}, content_type="application/json"
        )
        assert response.status_code == 200 and "AB-1001" in response.content.decode()


# --- 6. CPR-shaped text in the Django admin ------------------------------------------------


def _user_change(client: Any, user: Any, **fields: str) -> Any:
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
    }
    data.update(fields)
    return client.post(f"/admin/datapolicy/user/{user.pk}/change/", data)


@pytest.mark.django_db
class TestCprInAdmin:
    @pytest.mark.parametrize("field", ["first_name", "last_name", "username", "email"])
    def test_user_fields_refuse_cpr(self, org1: OrgPersonas, client: Any, field: str) -> None:
        client.force_login(org1.owner)
        value = f"{CPR}@x.dk" if field == "email" else CPR if field != "first_name" else f"A {CPR}"
        response = _user_change(client, org1.therapist_a, **{field: value})
        assert response.status_code == 200  # the form again, with the error
        assert "CPR" in response.content.decode()
        org1.therapist_a.refresh_from_db()
        assert CPR not in getattr(org1.therapist_a, field)

    def test_user_change_works(self, org1: OrgPersonas, client: Any) -> None:
        """Control: the same form saves an ordinary name."""
        client.force_login(org1.owner)
        assert _user_change(client, org1.therapist_a, last_name="Hansen").status_code == 302
        org1.therapist_a.refresh_from_db()
        assert org1.therapist_a.last_name == "Hansen"

    @pytest.mark.parametrize(
        "data",
        [
            {"name": f"Team {CPR}", "code": "team9", "parent": ""},
            {"name": "Team 9", "code": "010190-1234", "parent": ""},
        ],
    )
    def test_unit_refuses_cpr(self, org1: OrgPersonas, client: Any, data: dict[str, str]) -> None:
        client.force_login(org1.owner)
        response = client.post("/admin/datapolicy/unit/add/", data)
        assert response.status_code == 200
        assert not Unit.objects.for_org(org1.org).filter(code=data["code"]).exists()

    def test_organisation_name_refuses_cpr(self, org1: OrgPersonas, client: Any) -> None:
        client.force_login(org1.owner)
        org = org1.org
        data = {
            "name": f"Kommune {CPR}",
            "inactivity_days": org.inactivity_days,
            "small_cell_k": org.small_cell_k,
            "reliable_change": org.reliable_change,
            "srs_cutoff": org.srs_cutoff,
        }
        response = client.post(f"/admin/datapolicy/organisation/{org.pk}/change/", data)
        assert response.status_code == 200
        org.refresh_from_db()
        assert CPR not in org.name

    def test_model_validation_covers_every_form(self, org1: OrgPersonas) -> None:
        with pytest.raises(ValidationError):
            Unit(organisation=org1.org, name=f"Team {CPR}", code="t9").full_clean()
        with pytest.raises(ValidationError):
            Organisation(name=CPR, slug="x").full_clean()
        with pytest.raises(ValidationError):
            User(username="u1", last_name=CPR).full_clean()


# --- 7. More separators --------------------------------------------------------------------


class TestCprSeparators:
    @pytest.mark.parametrize("text", ["010190/1234", "010190.1234", "Anna 290296.1234"])
    def test_slash_and_dot_are_separators(self, text: str) -> None:
        assert looks_like_cpr(text)

    @pytest.mark.parametrize(
        "text", ["123456/7890", "AB/1234", "2024/0001", "320190.1234", "10.5", "010190.12345"]
    )
    def test_no_date_no_cpr(self, text: str) -> None:
        """Same rule as before: a valid date, then four digits and no more."""
        assert not looks_like_cpr(text)

    @pytest.mark.parametrize(
        "name", ["010190.1234.csv", "010190/1234.csv", "010190_1234.csv", "x 010190.1234 y.csv"]
    )
    def test_upload_names(self, name: str) -> None:
        assert safe_upload_name(name) == "upload.csv"

    def test_ordinary_upload_name_is_kept(self) -> None:
        assert safe_upload_name("sessions 2025.csv") == "sessions 2025.csv"

    @pytest.mark.django_db
    @pytest.mark.parametrize("code", ["010190/1234", "010190.1234"])
    def test_client_code_is_refused(self, org1: OrgPersonas, code: str) -> None:
        with pytest.raises(ValidationError):
            client_create(
                actor=org1.therapist_a, organisation=org1.org, code=code, age_group="adult"
            )

    @pytest.mark.django_db
    def test_import_refuses_it_too(self, org1: OrgPersonas) -> None:
        data = (
            "client_code;therapist;unit;session_date;ors_total;srs_total\n"
            "010190.1234;alpha-therapist_a;ung;2025-01-10;12;38\n"
        )
        result = import_sessions(actor=org1.owner, organisation=org1.org, data=data.encode())
        assert not result.ok
        assert "010190.1234" not in str([e.as_dict() for e in result.errors])


# --- 8. OPTIONS ------------------------------------------------------------------------------


@pytest.mark.django_db
class TestOptions:
    @pytest.mark.parametrize(
        "url", ["/api/v1/episodes/{pk}/", "/api/v1/episodes/{pk}/close/", "/api/v1/clients/{c}/"]
    )
    def test_api_other_organisations_object_is_404(
        self, org1: OrgPersonas, org2: OrgPersonas, client: Any, url: str
    ) -> None:
        other = make_episode(org2)
        client.force_login(org1.therapist_a)
        assert client.options(url.format(pk=other.pk, c=other.client_id)).status_code == 404

    def test_api_colleagues_object_is_404(self, org1: OrgPersonas, client: Any) -> None:
        colleague = make_episode(org1, therapist=org1.therapist_b)
        client.force_login(org1.therapist_a)
        assert client.options(f"/api/v1/episodes/{colleague.pk}/").status_code == 404

    def test_api_own_object_and_lists_keep_options(self, org1: OrgPersonas, client: Any) -> None:
        own = make_episode(org1)
        client.force_login(org1.therapist_a)
        assert client.options(f"/api/v1/episodes/{own.pk}/").status_code == 200
        assert client.options("/api/v1/episodes/").status_code == 200

    @pytest.mark.parametrize(
        "url", ["/clients/episodes/{pk}/", "/measures/episodes/{pk}/paper/", "/clients/"]
    )
    def test_pages_refuse_options_alike(
        self, org1: OrgPersonas, org2: OrgPersonas, client: Any, url: str
    ) -> None:
        own = make_episode(org1)
        other = make_episode(org2, code="BE-1")
        client.force_login(org1.therapist_a)
        assert client.options(url.format(pk=own.pk)).status_code == 405
        assert client.options(url.format(pk=other.pk)).status_code == 405
        assert client.options(url.format(pk=999999)).status_code == 405


# --- 9. The caseload's filter and search without form resubmission ---------------------


@pytest.mark.django_db
class TestCaseloadNavigation:
    def test_status_filter_is_a_get(self, org1: OrgPersonas, client: Any) -> None:
        make_episode(org1, code="NY-0001", started_on=dt.date.today())
        client.force_login(org1.therapist_a)
        body = client.get(reverse("caseload") + "?status=inactive").content.decode()
        assert "NY-0001" not in body
        assert '<form method="get"' in body and 'value="inactive" aria-pressed="true"' in body

    def test_search_redirects_and_keeps_the_term_off_the_url(
        self, org1: OrgPersonas, client: Any
    ) -> None:
        make_episode(org1, code="ZX-7001")
        make_episode(org1, code="QQ-1234")
        client.force_login(org1.therapist_a)
        response = client.post(reverse("caseload"), {"q": "zx-70", "status": "all"})
        assert response.status_code == 302
        assert response["Location"] == reverse("caseload") + "?status=all"
        # The GET after the redirect (and Back to it) shows the search result.
        body = client.get(response["Location"]).content.decode()
        assert "ZX-7001" in body and "QQ-1234" not in body
        assert 'value="zx-70"' in body
        # Changing the filter keeps the search; clearing it shows everyone again.
        assert "QQ-1234" not in client.get(reverse("caseload")).content.decode()
        client.post(reverse("caseload"), {"q": "", "status": "all"})
        assert "QQ-1234" in client.get(reverse("caseload")).content.decode()

    def test_a_code_in_the_query_string_is_ignored(self, org1: OrgPersonas, client: Any) -> None:
        make_episode(org1, code="ZX-7001")
        make_episode(org1, code="QQ-1234")
        client.force_login(org1.therapist_a)
        body = client.get(reverse("caseload") + "?q=ZX-7001&status=all").content.decode()
        assert "QQ-1234" in body

    def test_the_search_belongs_to_one_organisation(self, org1: OrgPersonas, client: Any) -> None:
        make_episode(org1, code="ZX-7001")
        make_episode(org1, code="QQ-1234")
        client.force_login(org1.therapist_a)
        session = client.session
        session[CASELOAD_SEARCH_KEY] = {"org": org1.org.pk + 1000, "q": "zx"}
        session.save()
        assert "QQ-1234" in client.get(reverse("caseload")).content.decode()
