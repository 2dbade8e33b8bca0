"""Login, the role-aware start page, the caseload and the admin, tried as every persona."""

import datetime as dt
from typing import Any

import pytest
from django.urls import reverse

from tests.conftest import make_episode, record


def test_login_page_is_danish_by_default(client, db) -> None:
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert "Log ind" in response.content.decode()


def test_browser_language_does_not_override_danish(client, db) -> None:
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert "Log ind" in response.content.decode()


def test_english_when_chosen(client, db) -> None:
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("login")})
    assert response.status_code == 302
    body = client.get(reverse("login")).content.decode()
    assert "Log in" in body and "Log ind" not in body


def test_login_and_logout(client, org1) -> None:
    response = client.post(reverse("login"), {"username": "alpha-therapist_a", "password": "pw"})
    assert response.status_code == 302
    assert client.get(reverse("caseload")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("caseload")).status_code == 302


@pytest.mark.parametrize(
    ("persona", "target"),
    [
        ("therapist_a", "caseload"),
        ("leader", "leader_home"),
        ("analyst", "leader_home"),
        ("dp_admin", "admin_home"),
        ("owner", "admin_home"),
    ],
)
def test_start_page_is_role_aware(login, org1, persona, target) -> None:
    c = login(org1.by_role()[persona])
    response = c.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse(target)


def test_operator_lands_on_benchmark(login, operator) -> None:
    c = login(operator)
    assert c.get(reverse("home"))["Location"] == reverse("operator_home")
    assert c.get(reverse("operator_home")).status_code == 200


def test_anonymous_is_sent_to_login(client, db) -> None:
    for name in ("home", "caseload", "leader_home", "admin_home"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_caseload_shows_only_own_clients(login, org1, org2) -> None:
    ep_a = make_episode(org1, code="AA-1", therapist=org1.therapist_a)
    make_episode(org1, code="BB-1", therapist=org1.therapist_b)
    make_episode(org2, code="CC-1", therapist=org2.therapist_a)
    record(ep_a, dt.date.today() - dt.timedelta(days=2), ors="17.5", srs="33.0")
    body = login(org1.therapist_a).get(reverse("caseload")).content.decode()
    assert "AA-1" in body
    assert "BB-1" not in body and "CC-1" not in body
    assert "17,5" in body  # latest ORS, Danish decimal comma
    assert "badge-alliance" in body  # SRS below 36


def test_caseload_is_for_therapists_only(login, org1) -> None:
    for persona in ("leader", "analyst", "dp_admin", "owner"):
        assert login(org1.by_role()[persona]).get(reverse("caseload")).status_code == 403


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("leader_home", {"leader", "analyst"}),
        ("admin_home", {"dp_admin", "owner"}),
    ],
)
def test_role_pages_refuse_other_roles(login, org1, name, allowed) -> None:
    for persona, user in org1.by_role().items():
        status = login(user).get(reverse(name)).status_code
        assert status == (200 if persona in allowed else 403), (persona, status)


def test_operator_page_refuses_organisation_staff(login, org1) -> None:
    assert login(org1.leader).get(reverse("operator_home")).status_code == 403


def test_user_in_two_organisations_must_choose(client, org1, org2) -> None:
    from datapolicy.models import Membership, Role

    Membership.objects.create(
        organisation=org2.org, user=org1.therapist_a, unit=org2.unit, role=Role.THERAPIST
    )
    client.force_login(org1.therapist_a)
    assert client.get(reverse("caseload"))["Location"] == reverse("choose_organisation")
    # Choosing an organisation the user does not belong to is refused.
    from datapolicy.models import Organisation

    stranger = Organisation.objects.create(slug="gamma", name="Gamma")
    assert (
        client.post(reverse("choose_organisation"), {"organisation": stranger.pk}).status_code
        == 403
    )
    client.post(reverse("choose_organisation"), {"organisation": org2.org.pk})
    assert client.get(reverse("caseload")).status_code == 200


class TestAdmin:
    """Django admin: the system owner, for their own organisation only."""

    def test_system_owner_sees_own_units_only(self, login, org1, org2) -> None:
        c = login(org1.owner)
        body = c.get("/admin/datapolicy/unit/").content.decode()
        assert "Ungeenheden" in body
        assert c.get(f"/admin/datapolicy/unit/{org1.unit.pk}/change/").status_code == 200
        assert c.get(f"/admin/datapolicy/unit/{org2.unit.pk}/change/").status_code in (302, 404)
        assert c.get(f"/admin/datapolicy/organisation/{org2.org.pk}/change/").status_code in (
            302,
            404,
        )

    def test_other_roles_are_kept_out(self, login, org1) -> None:
        for persona in ("therapist_a", "leader", "analyst", "dp_admin"):
            response = login(org1.by_role()[persona]).get("/admin/datapolicy/unit/")
            assert response.status_code == 302 and "/admin/login/" in response["Location"]

    def test_new_unit_gets_the_owner_organisation(self, login, org1) -> None:
        from datapolicy.models import Unit

        c = login(org1.owner)
        c.post("/admin/datapolicy/unit/add/", {"name": "Nyt team", "code": "nyt"})
        assert Unit.objects.for_org(org1.org).filter(code="nyt").exists()

    def test_an_owner_cannot_give_themselves_a_role(self, login, org1) -> None:
        """Four eyes: a system owner with a therapist role would read clients; another
        owner (or the data-policy admin's user import) must grant it."""
        from datapolicy.models import Membership

        c = login(org1.owner)
        before = Membership.objects.for_org(org1.org).filter(user=org1.owner).count()
        response = c.post(
            "/admin/datapolicy/membership/add/",
            {"user": org1.owner.pk, "role": "therapist", "unit": org1.unit.pk, "is_active": "on"},
        )
        assert response.status_code == 200  # the form comes back: the owner is no choice
        assert "user" in response.context["adminform"].form.errors
        assert Membership.objects.for_org(org1.org).filter(user=org1.owner).count() == before
        own = Membership.objects.for_org(org1.org).get(user=org1.owner)
        page = c.post(
            f"/admin/datapolicy/membership/{own.pk}/change/",
            {"role": "therapist", "unit": org1.unit.pk, "is_active": "on"},
        )
        assert page.status_code == 403
        own.refresh_from_db()
        assert own.role == "system_owner"
        # A colleague can still be given a role.
        ok = c.post(
            "/admin/datapolicy/membership/add/",
            {"user": org1.analyst.pk, "role": "therapist", "unit": org1.unit.pk, "is_active": "on"},
        )
        assert ok.status_code == 302

    def test_admin_changes_and_passwords_go_into_the_access_log(self, login, org1) -> None:
        from datapolicy.models import AccessLog

        c = login(org1.owner)
        c.post("/admin/datapolicy/unit/add/", {"name": "Nyt team", "code": "nyt"})
        assert AccessLog.objects.filter(
            organisation=org1.org, user=org1.owner, action="create", object_type="unit"
        ).exists()
        response = c.post(
            f"/admin/datapolicy/user/{org1.therapist_b.pk}/password/",
            {"password1": "x-Very-long-pass-77", "password2": "x-Very-long-pass-77"},
        )
        assert response.status_code == 302
        entry = AccessLog.objects.get(organisation=org1.org, object_type="user_password")
        assert (entry.user_id, entry.object_id, entry.action) == (
            org1.owner.pk,
            org1.therapist_b.pk,
            "update",
        )

    def test_users_list_shows_own_organisation(self, login, org1, org2) -> None:
        body = login(org1.owner).get("/admin/datapolicy/user/").content.decode()
        assert "alpha-therapist_a" in body and "beta-therapist_a" not in body


def test_caseload_search_is_posted_not_in_the_url(login, org1) -> None:
    make_episode(org1, code="ZX-7001")
    make_episode(org1, code="QQ-1234")
    c = login(org1.therapist_a)
    response = c.post(reverse("caseload"), {"q": "zx-70", "status": "all"}, follow=True)
    body = response.content.decode()
    assert "ZX-7001" in body and "QQ-1234" not in body
    assert 'method="post"' in body
    # Post-redirect-get: the search term is kept in the session, not in the URL.
    assert response.redirect_chain == [(reverse("caseload") + "?status=all", 302)]
    c.post(reverse("caseload"), {"q": "", "status": "all"})
    # A code in the query string is ignored: the URL never carries client codes.
    body = c.get(reverse("caseload") + "?q=ZX-7001&status=all").content.decode()
    assert "QQ-1234" in body


def test_new_client_without_sessions_is_active(login, org1) -> None:
    make_episode(org1, code="NY-0001", started_on=dt.date.today())
    c = login(org1.therapist_a)
    assert "NY-0001" in c.get(reverse("caseload")).content.decode()
    assert "NY-0001" not in c.get(reverse("caseload") + "?status=inactive").content.decode()


def test_the_menu_leads_each_role_to_its_work(client: Any, org1: Any) -> None:
    """Every role reaches the dashboards from the menu; leaders their received shares,
    administrators their pages (before: a leader's menu was empty)."""
    expected = {
        "therapist_a": {"caseload", "stats_index", "dp_grants"},
        "leader": {"stats_index", "dp_grants", "dp_reports"},
        "analyst": {"stats_index", "dp_reports"},
        "dp_admin": {"stats_index", "admin_home"},
        "owner": {"stats_index", "admin_home"},
    }
    every = {"caseload", "stats_index", "dp_grants", "dp_reports", "admin_home"}
    for persona, names in expected.items():
        client.force_login(getattr(org1, persona))
        # The same menu on the start page and on the dashboards (their own header).
        for url in (reverse("home"), reverse("stats_index")):
            page = client.get(url, follow=True).content.decode()
            menu = page.split('class="mainnav"')[1].split("</nav>")[0]
            for name in every:
                assert (f'href="{reverse(name)}"' in menu) == (name in names), (persona, name)


def test_the_leaders_start_page_counts_what_is_shared_without_names(client: Any, org1: Any) -> None:
    from django.utils import timezone

    from datapolicy.services import grant_create
    from tests.conftest import make_episode

    client.force_login(org1.leader)
    page = client.get(reverse("leader_home")).content.decode()
    assert "Nothing is shared with you" in page or "Intet er delt med dig" in page
    now = timezone.now()
    episode = make_episode(org1, code="LH-1")
    for kind, extra in (("own_figures", {}), ("client_graph", {"episode": episode})):
        grant_create(
            actor=org1.therapist_a,
            organisation=org1.org,
            kind=kind,
            grantee=org1.leader,
            purpose="supervision",
            starts_at=now - dt.timedelta(minutes=1),
            expires_at=now + dt.timedelta(days=1),
            **extra,
        )
    client.cookies["django_language"] = "en"
    page = client.get(reverse("leader_home")).content.decode()
    assert "1 therapist shares their own figures with you." in page
    assert "1 client graph is shared with you for supervision." in page
    # Anonymised: neither the therapist's name nor the client's code.
    assert org1.therapist_a.get_full_name() not in page and "LH-1" not in page


def test_every_page_offers_the_other_language(client: Any, org1: Any) -> None:
    """English is available everywhere, also on the anonymised dashboards (whose header
    is their own and used to lack the switch)."""
    client.force_login(org1.leader)
    for url in (reverse("leader_home"), reverse("stats_index"), reverse("stats_organisation")):
        page = client.get(url).content.decode()
        assert 'name="language" value="en"' in page, url


def test_a_leader_opens_what_is_shared_from_the_shares_page(client: Any, org1: Any) -> None:
    from django.utils import timezone

    from datapolicy.services import grant_create

    now = timezone.now()
    episode = make_episode(org1, code="LS-1")
    for kind, extra in (("own_figures", {}), ("client_graph", {"episode": episode})):
        grant_create(
            actor=org1.therapist_a,
            organisation=org1.org,
            kind=kind,
            grantee=org1.leader,
            purpose="supervision",
            starts_at=now - dt.timedelta(minutes=1),
            expires_at=now + dt.timedelta(days=1),
            **extra,
        )
    client.force_login(org1.leader)
    page = client.get(reverse("dp_grants")).content.decode()
    figures = reverse("stats_therapist", kwargs={"user_id": org1.therapist_a.pk})
    graph = reverse("episode_detail", kwargs={"pk": episode.pk})
    assert f'href="{figures}"' in page and f'href="{graph}"' in page
    assert client.get(figures).status_code == 200 and client.get(graph).status_code == 200
    # The sharing therapist's own page has no such links (they are not the grantee).
    client.force_login(org1.therapist_a)
    page = client.get(reverse("dp_grants")).content.decode()
    assert f'href="{figures}"' not in page


def test_the_leaders_start_page_links_straight_to_their_dashboards(
    client: Any, org1: Any, org2: Any
) -> None:
    """One tap from the start page to a figure (before: start page → index → dashboard).
    A unit leader gets their unit's dashboard, the organisation's and the benchmark — not
    another unit's (which would answer 403) and nothing of another organisation; the
    management-information officer every unit of the organisation. Every link opens."""
    import re

    def links(user: Any) -> list[str]:
        client.force_login(user)
        page = client.get(reverse("leader_home")).content.decode()
        ul = re.search(r'<ul class="dashboard-links">(.*?)</ul>', page, re.S)
        assert ul is not None, page
        return re.findall(r'href="([^"]+)"', ul.group(1))

    unit = reverse("stats_unit", args=[org1.unit.pk])
    other = reverse("stats_unit", args=[org1.other_unit.pk])
    org_wide = [reverse("stats_organisation"), reverse("stats_benchmark")]
    assert links(org1.leader) == [unit, *org_wide]
    assert client.get(other).status_code == 403  # the link it does not get
    assert reverse("stats_unit", args=[org2.unit.pk]) not in links(org1.leader)
    # the officer: both units, by name (Rusmiddelcentret, Ungeenheden)
    assert links(org1.analyst) == [other, unit, *org_wide]
    for url in links(org1.analyst):
        assert client.get(url).status_code == 200, url
