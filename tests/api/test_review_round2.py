"""Second API review: access log per client, score rules, query-parameter and JSON
robustness, key delegation, key scopes and rate limit on every view, visible episodes,
JSON errors outside the views, the error shape."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.cache import cache
from django.test import RequestFactory, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from clients.services import episode_close, episode_start, episode_transfer
from datapolicy.api_auth import ApiKeyRateThrottle, ApiKeyScope, apikey_create
from datapolicy.models import AccessLog, ApiKey, Membership, Role, User
from datapolicy.scoping import ImproperlyConfiguredView, TenantAPIMixin
from fitplatform.api_errors import server_error
from tests.conftest import OrgPersonas, make_episode, record

TODAY = dt.date.today()


def session_client(user: Any) -> APIClient:
    c = APIClient(raise_request_exception=False)
    c.force_login(user)
    return c


def key_client(raw: str) -> APIClient:
    c = APIClient(raise_request_exception=False)
    c.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return c


def own_key(p: OrgPersonas, scopes: list[str]) -> str:
    _key, raw = apikey_create(
        actor=p.therapist_a, organisation=p.org, name="k", user=p.therapist_a, scopes=scopes
    )
    return raw


@pytest.fixture
def episode(org1: OrgPersonas) -> Any:
    ep = make_episode(org1, code="AL-1234")
    record(ep, TODAY - dt.timedelta(days=10), ors="15.0", srs="36.0")
    return ep


def list_logs(org1: OrgPersonas, object_type: str) -> list[Any]:
    return list(
        AccessLog.objects.filter(organisation=org1.org, action="list", object_type=object_type)
        .order_by("client_id")
        .values_list("client_id", flat=True)
    )


# --- 1. access log: one entry per client on the page ----------------------------------


class TestListsAreLoggedPerClient:
    def test_session_list_of_an_episode_is_in_the_clients_log(
        self, org1: OrgPersonas, episode: Any
    ) -> None:
        r = key_client(own_key(org1, ["read"])).get(
            reverse("api-session-list"), {"episode": episode.pk}
        )
        assert r.status_code == 200
        assert list_logs(org1, "session") == [episode.client_id]

    def test_every_client_on_the_page_is_logged_once(self, org1: OrgPersonas, episode: Any) -> None:
        other = make_episode(org1, code="AL-2000")
        record(other, TODAY - dt.timedelta(days=3), ors="20.0")
        record(other, TODAY - dt.timedelta(days=2), ors="21.0")
        colleague = make_episode(org1, code="AL-3000", therapist=org1.therapist_b)
        c = session_client(org1.therapist_a)
        assert c.get(reverse("api-session-list")).json()["count"] == 3
        assert list_logs(org1, "session") == sorted([episode.client_id, other.client_id])
        c.get(reverse("api-client-list"))
        assert list_logs(org1, "client") == sorted([episode.client_id, other.client_id])
        c.get(reverse("api-episode-list"))
        assert list_logs(org1, "episode") == sorted([episode.client_id, other.client_id])
        c.post(reverse("api-client-search"), {"code": "2000"}, format="json")
        assert list_logs(org1, "client")[-1:] == [other.client_id]
        assert colleague.client_id not in list_logs(org1, "session") + list_logs(org1, "client")

    def test_an_empty_page_is_one_entry_without_a_client(self, org1: OrgPersonas) -> None:
        r = session_client(org1.therapist_a).get(reverse("api-session-list"))
        assert r.json()["count"] == 0
        assert list_logs(org1, "session") == [None]


# --- 2, 3. a session always has a score; {} is not a removal ---------------------------


class TestScores:
    def test_a_session_without_any_score_is_refused(self, org1: OrgPersonas, episode: Any) -> None:
        c = session_client(org1.therapist_a)
        day = (TODAY - dt.timedelta(days=2)).isoformat()
        r = c.post(reverse("api-session-list"), {"episode": episode.pk, "date": day}, format="json")
        assert r.status_code == 400
        assert isinstance(r.json()["detail"], str)
        r = c.post(
            reverse("api-session-list"),
            {"episode": episode.pk, "date": day, "ors": None, "srs": {}},
            format="json",
        )
        assert r.status_code == 400 and "srs" in r.json(), r.json()
        assert episode.sessions.count() == 1

    def test_patch_with_an_empty_object_keeps_the_score(
        self, org1: OrgPersonas, episode: Any
    ) -> None:
        s = episode.sessions.get()
        c = session_client(org1.therapist_a)
        r = c.patch(reverse("api-session-detail", kwargs={"pk": s.pk}), {"ors": {}}, format="json")
        assert r.status_code == 400 and "ors" in r.json(), r.json()
        assert s.scores.filter(kind="outcome").exists()
        # An explicit null still removes it.
        r = c.patch(
            reverse("api-session-detail", kwargs={"pk": s.pk}), {"ors": None}, format="json"
        )
        assert r.status_code == 200 and r.json()["ors"] is None


# --- 4. query parameters --------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["²", "-1", "1.0", " 1", "0", "١", "x", str(2**63), "9" * 5000, "0" * 5000 + "1"]
)
def test_a_bad_episode_filter_is_400(org1: OrgPersonas, episode: Any, value: str) -> None:
    r = session_client(org1.therapist_a).get(reverse("api-session-list"), {"episode": value})
    assert r.status_code == 400 and "episode" in r.json(), (value, r.content)


def test_the_episode_filter_takes_an_id(org1: OrgPersonas, episode: Any) -> None:
    r = session_client(org1.therapist_a).get(reverse("api-session-list"), {"episode": episode.pk})
    assert r.status_code == 200 and r.json()["count"] == 1


@pytest.mark.parametrize("value", ["20260101", "2026-W01-1", "2026-01-0²"])
def test_stats_as_of_is_strictly_a_date(org1: OrgPersonas, value: str) -> None:
    r = session_client(org1.therapist_a).get(
        reverse("api_stats_scope", kwargs={"scope": "therapist", "scope_id": org1.therapist_a.pk}),
        {"as_of": value},
    )
    assert r.status_code == 400 and "as_of" in r.json(), r.content


# --- 5. JSON nested too deeply --------------------------------------------------------


def test_deeply_nested_json_is_400(org1: OrgPersonas) -> None:
    r = session_client(org1.therapist_a).post(
        reverse("api-session-list"),
        "[" * 100000 + "]" * 100000,
        content_type="application/json",
    )
    assert r.status_code == 400 and isinstance(r.json()["detail"], str)


# --- 6. delegated key of a deactivated creator ----------------------------------------


def test_a_delegated_key_stops_when_its_creator_is_deactivated(org1: OrgPersonas) -> None:
    svc = User.objects.create_user(username="svc", password="pw")
    Membership.objects.create(organisation=org1.org, user=svc, unit=None, role=Role.MI_OFFICER)
    Membership.objects.create(
        organisation=org1.org, user=org1.owner, unit=None, role=Role.MI_OFFICER
    )
    _k, raw = apikey_create(
        actor=org1.owner, organisation=org1.org, name="k", user=svc, scopes=["read"]
    )
    url = reverse("api_stats_scope", kwargs={"scope": "organisation", "scope_id": org1.org.pk})
    assert key_client(raw).get(url).status_code == 200
    User.objects.filter(pk=org1.owner.pk).update(is_active=False)
    assert key_client(raw).get(url).status_code in (401, 403)


# --- 7. key scope on every API view ---------------------------------------------------


def test_statistics_honour_the_key_scopes(org1: OrgPersonas) -> None:
    raw = own_key(org1, ["read"])
    ApiKey.objects.for_org(org1.org).update(scopes=[])
    url = reverse("api_stats_scope", kwargs={"scope": "therapist", "scope_id": org1.therapist_a.pk})
    assert key_client(raw).get(url).status_code == 403


def _api_views(patterns: Any, prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            found += _api_views(p.url_patterns, route)
        elif isinstance(p, URLPattern) and route.startswith("api/v1/"):
            view = getattr(p.callback, "cls", None) or getattr(p.callback, "view_class", None)
            found.append((route, view))
    return found


def test_every_api_view_checks_the_key_scope() -> None:
    """Every view under /api/v1/ is a TenantAPIMixin view and its permissions include the
    key-scope check (the schema and Swagger UI under /api/ hold no data)."""
    views = _api_views(get_resolver().url_patterns)
    assert len(views) > 10
    for route, view in views:
        assert view is not None and issubclass(view, TenantAPIMixin), route
        classes = [type(p) for p in view().get_permissions()]
        assert ApiKeyScope in classes, route


def test_an_api_view_cannot_override_the_permission_checks() -> None:
    with pytest.raises(ImproperlyConfiguredView):

        class Careless(TenantAPIMixin):
            def get_permissions(self) -> list[Any]:
                return []


# --- 8. refused key calls are rate-limited too -----------------------------------------


def test_refused_key_calls_are_rate_limited(
    org1: OrgPersonas, episode: Any, monkeypatch: Any
) -> None:
    cache.clear()
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    c = key_client(own_key(org1, ["read"]))
    codes = [c.post(reverse("api-session-list"), {}, format="json").status_code for _ in range(5)]
    assert codes == [403, 403, 403, 429, 429]


def test_a_call_is_counted_once(org1: OrgPersonas, episode: Any, monkeypatch: Any) -> None:
    cache.clear()
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    c = key_client(own_key(org1, ["read"]))
    codes = [c.get(reverse("api-episode-list")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_options_counts_once(org1: OrgPersonas, episode: Any, monkeypatch: Any) -> None:
    # DRF's metadata checks permissions again on a clone of the request (as POST).
    cache.clear()
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    c = key_client(own_key(org1, ["read", "write"]))
    first = c.options(reverse("api-session-list"))
    assert first.status_code == 200 and "actions" in first.json()
    assert c.get(reverse("api-session-list")).status_code == 200
    assert c.get(reverse("api-session-list")).status_code == 429


# --- 10. client detail: only visible episodes ------------------------------------------


def test_client_detail_lists_only_the_episodes_the_caller_sees(
    org1: OrgPersonas, episode: Any
) -> None:
    second = episode_start(actor=org1.therapist_a, client=episode.client, unit=org1.unit, label="2")
    episode_transfer(actor=org1.therapist_a, episode=second, to_therapist=org1.therapist_b)
    url = reverse("api-client-detail", kwargs={"pk": episode.client_id})
    assert session_client(org1.therapist_b).get(url).json()["episodes"] == [second.pk]
    assert session_client(org1.therapist_a).get(url).json()["episodes"] == [episode.pk]
    listed = session_client(org1.therapist_b).get(reverse("api-client-list")).json()
    assert [c["episodes"] for c in listed["results"]] == [[second.pk]]


# --- 11. JSON errors outside the views -------------------------------------------------


def test_unknown_api_url_is_json_404_and_pages_stay_html(org1: OrgPersonas) -> None:
    c = session_client(org1.therapist_a)
    r = c.get("/api/v1/nonexistent/")
    assert r.status_code == 404 and r["Content-Type"].startswith("application/json")
    assert isinstance(r.json()["detail"], str)
    r = c.get("/nonexistent-page/")
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_a_body_too_large_is_json_400(org1: OrgPersonas, episode: Any) -> None:
    r = session_client(org1.therapist_a).post(
        reverse("api-session-list"),
        "episode=1&date=" + "x" * 500,
        content_type="application/x-www-form-urlencoded",
    )
    assert r.status_code == 400 and r["Content-Type"].startswith("application/json")
    assert isinstance(r.json()["detail"], str)


def test_server_error_under_api_is_json(db: Any) -> None:
    r = server_error(RequestFactory().get("/api/v1/sessions/"))
    assert r.status_code == 500 and r["Content-Type"].startswith("application/json")
    assert server_error(RequestFactory().get("/clients/"))["Content-Type"].startswith("text/html")


# --- 12. error shape ------------------------------------------------------------------


def test_a_unit_the_therapist_does_not_work_in_is_an_error_on_unit(org1: OrgPersonas) -> None:
    c = session_client(org1.therapist_a)
    r = c.post(
        reverse("api-client-list"), {"code": "X2", "unit": org1.other_unit.pk}, format="json"
    )
    assert r.status_code == 400 and list(r.json()) == ["unit"], r.json()


def test_an_error_not_tied_to_a_field_is_one_detail_string(org1: OrgPersonas, episode: Any) -> None:
    episode_close(actor=org1.therapist_a, episode=episode, closed_on=TODAY)
    r = session_client(org1.therapist_a).post(
        reverse("api-episode-close", kwargs={"pk": episode.pk}),
        {"closed_on": TODAY.isoformat()},
        format="json",
    )
    assert r.status_code == 400 and isinstance(r.json()["detail"], str), r.json()


# --- cheap extras: no-store under a script prefix, control characters in a key ---------


def test_no_store_also_under_a_script_prefix(org1: OrgPersonas, episode: Any) -> None:
    r = session_client(org1.therapist_a).get(reverse("api-episode-list"), SCRIPT_NAME="/fit")
    assert r.status_code == 200 and r["Cache-Control"] == "no-store"


@pytest.mark.parametrize("raw", ["abc\x00.def", "ab\x01c.def", "abc.d\x00ef"])
def test_a_key_with_control_characters_is_refused(org1: OrgPersonas, raw: str) -> None:
    r = key_client(raw).get(reverse("api-episode-list"))
    assert r.status_code in (401, 403)


@pytest.mark.parametrize("user_id", ["²", "١", str(2**64), "9" * 5000])
def test_key_page_with_a_non_ascii_or_huge_user_id_is_400(
    client: Any, org1: OrgPersonas, user_id: str
) -> None:
    client.force_login(org1.owner)
    r = client.post(reverse("api_keys_page"), {"name": "Sag", "user": user_id, "scopes": ["read"]})
    assert r.status_code == 400
    assert not ApiKey.objects.for_org(org1.org).exists()


# --- 9. a unit leader reads a shared episode through the API as on the page ------------


def _share(org1: OrgPersonas, episode: Any, days: int = 3) -> Any:
    from django.utils import timezone

    from datapolicy.services import grant_create

    now = timezone.now()
    return grant_create(
        actor=org1.therapist_a,
        organisation=org1.org,
        kind="client_graph",
        grantee=org1.leader,
        episode=episode,
        purpose="Supervision",
        starts_at=now - dt.timedelta(days=1),
        expires_at=now + dt.timedelta(days=days),
    )


def test_leader_with_a_grant_reads_the_episode_and_sessions_like_the_page(
    org1: OrgPersonas, episode: Any
) -> None:
    c = session_client(org1.leader)
    detail = reverse("api-episode-detail", kwargs={"pk": episode.pk})
    session = episode.sessions.get()
    # Without a grant: 404 as the page (the episode's existence does not leak).
    assert c.get(f"/clients/episodes/{episode.pk}/").status_code == 404
    assert c.get(detail).status_code == 404
    assert c.get(reverse("api-session-detail", kwargs={"pk": session.pk})).status_code == 404
    assert c.get(reverse("api-session-list")).json()["count"] == 0
    grant = _share(org1, episode)
    assert c.get(f"/clients/episodes/{episode.pk}/").status_code == 200
    r = c.get(detail)
    assert r.status_code == 200 and r.json()["id"] == episode.pk
    log = AccessLog.objects.filter(organisation=org1.org, action="view").order_by("-id").first()
    assert log is not None and (log.role, log.client_id) == ("unit_leader", episode.client_id)
    r = c.get(reverse("api-session-list"), {"episode": episode.pk})
    assert [s["id"] for s in r.json()["results"]] == [session.pk]
    assert c.get(reverse("api-session-detail", kwargs={"pk": session.pk})).status_code == 200
    # Reads only: the rest stays the therapist's, as on the pages.
    assert c.get(reverse("api-episode-list")).status_code == 403
    assert c.get(reverse("api-client-list")).status_code == 403
    r = c.post(
        reverse("api-episode-close", kwargs={"pk": episode.pk}),
        {"closed_on": TODAY.isoformat()},
        format="json",
    )
    assert r.status_code == 403
    r = c.patch(
        reverse("api-session-detail", kwargs={"pk": session.pk}), {"ors": None}, format="json"
    )
    assert r.status_code == 403
    # Revoked: the next request is refused again.
    from datapolicy.services import grant_revoke

    grant_revoke(actor=org1.therapist_a, grant=grant)
    assert c.get(detail).status_code == 404
