"""The REST API beyond the permission matrix: API keys (scopes, revocation, last use,
throttling), error format, no-store, access log, the self-hosted Swagger UI."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from datapolicy.api_auth import ApiKeyRateThrottle, apikey_create, apikey_revoke
from datapolicy.models import AccessLog, ApiKey
from tests.conftest import OrgPersonas, make_episode, record

TODAY = dt.date.today()


def key_for(p: OrgPersonas, scopes: list[str], user: Any = None) -> tuple[ApiKey, str]:
    user = user or p.therapist_a
    # A key acts with at most its creator's roles: the therapist authorises it.
    return apikey_create(
        actor=user,
        organisation=p.org,
        name="Fagsystem",
        user=user,
        scopes=scopes,
    )


def key_client(raw: str) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return c


@pytest.fixture
def episode(org1: OrgPersonas) -> Any:
    ep = make_episode(org1, code="AL-1234")
    record(ep, TODAY - dt.timedelta(days=10), ors="15.0", srs="36.0")
    return ep


class TestKeys:
    def test_created_key_is_shown_once_and_stored_hashed(self, org1: OrgPersonas) -> None:
        c = APIClient()
        c.force_login(org1.owner)
        r = c.post(
            reverse("api-key-list"),
            {"name": "Sag", "user": org1.owner.pk, "scopes": ["read"]},
            format="json",
        )
        assert r.status_code == 201
        raw = r.json()["key"]
        key = ApiKey.objects.for_org(org1.org).get()
        assert raw.startswith(key.prefix + ".")
        assert raw not in key.key_hash and key.key_hash.startswith("sha256$")
        listing = c.get(reverse("api-key-list")).json()
        assert listing["count"] == 1
        assert "key" not in listing["results"][0]
        assert raw not in str(listing)

    def test_owner_cannot_mint_a_key_acting_as_a_therapist(self, org1: OrgPersonas) -> None:
        """A key never acts with roles its creator lacks: the system owner, who may not
        see client data, cannot create a key that reads a therapist's clients."""
        c = APIClient()
        c.force_login(org1.owner)
        r = c.post(
            reverse("api-key-list"),
            {"name": "Sag", "user": org1.therapist_a.pk, "scopes": ["read"]},
            format="json",
        )
        assert r.status_code == 400
        assert "user" in r.json()
        assert not ApiKey.objects.for_org(org1.org).exists()

    def test_key_must_act_as_a_member_of_the_organisation(
        self, org1: OrgPersonas, org2: OrgPersonas
    ) -> None:
        c = APIClient()
        c.force_login(org1.owner)
        r = c.post(
            reverse("api-key-list"),
            {"name": "Sag", "user": org2.therapist_a.pk, "scopes": ["read"]},
            format="json",
        )
        assert r.status_code == 400
        assert "user" in r.json()
        assert not ApiKey.objects.for_org(org1.org).exists()

    def test_read_key_reads_as_its_user_and_cannot_write(
        self, org1: OrgPersonas, episode: Any
    ) -> None:
        make_episode(org1, code="AL-9999", therapist=org1.therapist_b)
        _key, raw = key_for(org1, ["read"])
        c = key_client(raw)
        r = c.get(reverse("api-client-list"))
        assert r.status_code == 200
        assert [x["code"] for x in r.json()["results"]] == ["AL-1234"]
        r = c.post(
            reverse("api-session-list"),
            {"episode": episode.pk, "date": TODAY.isoformat(), "ors": {"total": "20"}},
            format="json",
        )
        assert r.status_code == 403
        assert episode.sessions.count() == 1

    def test_write_key_records_a_session(self, org1: OrgPersonas, episode: Any) -> None:
        _key, raw = key_for(org1, ["read", "write"])
        r = key_client(raw).post(
            reverse("api-session-list"),
            {
                "episode": episode.pk,
                "date": TODAY.isoformat(),
                "ors": {"items": ["4,5", "5.0", "6", "7.5"]},
            },
            format="json",
        )
        assert r.status_code == 201, r.json()
        assert r.json()["ors"] == {
            "scale": "ORS",
            "items": ["4.5", "5.0", "6.0", "7.5"],
            "total": "23.0",
        }
        assert r.json()["number"] == 2

    def test_revoked_key_is_refused_at_once(self, org1: OrgPersonas, episode: Any) -> None:
        key, raw = key_for(org1, ["read"])
        c = key_client(raw)
        assert c.get(reverse("api-episode-list")).status_code == 200
        apikey_revoke(actor=org1.owner, key=key)
        r = c.get(reverse("api-episode-list"))
        assert r.status_code in (401, 403)
        assert "revoked" in r.json()["detail"].lower() or "tilbagekaldt" in r.json()["detail"]

    def test_wrong_secret_is_refused(self, org1: OrgPersonas, episode: Any) -> None:
        key, _raw = key_for(org1, ["read"])
        r = key_client(f"{key.prefix}.not-the-secret").get(reverse("api-episode-list"))
        assert r.status_code in (401, 403)
        r = key_client("garbage").get(reverse("api-episode-list"))
        assert r.status_code in (401, 403)

    def test_key_of_other_organisation_gets_404(
        self, org1: OrgPersonas, org2: OrgPersonas, episode: Any
    ) -> None:
        _key, raw = key_for(org2, ["read", "write"])
        c = key_client(raw)
        assert c.get(reverse("api-episode-detail", kwargs={"pk": episode.pk})).status_code == 404
        assert (
            c.get(reverse("api-client-detail", kwargs={"pk": episode.client_id})).status_code == 404
        )
        r = c.post(
            reverse("api-session-list"),
            {"episode": episode.pk, "date": TODAY.isoformat(), "ors": {"total": "20"}},
            format="json",
        )
        assert r.status_code == 404

    def test_last_used_is_recorded(self, org1: OrgPersonas, episode: Any) -> None:
        key, raw = key_for(org1, ["read"])
        assert key.last_used_at is None
        key_client(raw).get(reverse("api-episode-list"))
        key.refresh_from_db()
        assert key.last_used_at is not None

    def test_a_key_cannot_manage_keys(self, org1: OrgPersonas) -> None:
        _key, raw = key_for(org1, ["read", "write"], user=org1.owner)
        c = key_client(raw)
        assert c.get(reverse("api-key-list")).status_code == 403
        r = c.post(
            reverse("api-key-list"),
            {"name": "x", "user": org1.owner.pk, "scopes": ["read", "write"]},
            format="json",
        )
        assert r.status_code == 403
        assert ApiKey.objects.for_org(org1.org).count() == 1

    def test_key_calls_are_rate_limited_sessions_are_not(
        self, org1: OrgPersonas, episode: Any, monkeypatch: Any
    ) -> None:
        from django.core.cache import cache

        cache.clear()
        monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
        _key, raw = key_for(org1, ["read"])
        c = key_client(raw)
        codes = [c.get(reverse("api-alert-list")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        s = APIClient()
        s.force_login(org1.therapist_a)
        assert all(s.get(reverse("api-alert-list")).status_code == 200 for _ in range(5))


class TestResponses:
    def test_errors_are_json_per_field_and_nothing_is_saved(
        self, org1: OrgPersonas, episode: Any
    ) -> None:
        c = APIClient()
        c.force_login(org1.therapist_a)
        r = c.post(
            reverse("api-session-list"),
            {
                "episode": episode.pk,
                "date": TODAY.isoformat(),
                "ors": {"items": ["11", "1", "1", "1"]},
            },
            format="json",
        )
        assert r.status_code == 400
        assert list(r.json()) == ["ors_1"]
        r = c.post(
            reverse("api-session-list"),
            {
                "episode": episode.pk,
                "date": TODAY.isoformat(),
                "srs": {"items": ["9", "9", "9", "9"], "total": "35"},
            },
            format="json",
        )
        assert r.status_code == 400 and "srs_total" in r.json()
        r = c.post(reverse("api-session-list"), {"date": "2024-13-01"}, format="json")
        assert r.status_code == 400 and {"episode", "date"} <= set(r.json())
        assert episode.sessions.count() == 1

    def test_same_date_is_409_until_confirmed(self, org1: OrgPersonas, episode: Any) -> None:
        c = APIClient()
        c.force_login(org1.therapist_a)
        body = {
            "episode": episode.pk,
            "date": (TODAY - dt.timedelta(days=10)).isoformat(),
            "ors": {"total": "17"},
        }
        r = c.post(reverse("api-session-list"), body, format="json")
        assert r.status_code == 409
        assert r.json()["confirm_same_date"] is True and "date" in r.json()
        r = c.post(reverse("api-session-list"), {**body, "confirm_same_date": True}, format="json")
        assert r.status_code == 201
        assert episode.sessions.count() == 2

    def test_no_store_and_access_log(self, org1: OrgPersonas, episode: Any) -> None:
        c = APIClient()
        c.force_login(org1.therapist_a)
        before = AccessLog.objects.filter(organisation=org1.org).count()
        r = c.get(reverse("api-episode-detail", kwargs={"pk": episode.pk}))
        assert r["Cache-Control"] == "no-store"
        log = AccessLog.objects.filter(organisation=org1.org).order_by("-id").first()
        assert log is not None and (log.action, log.object_id) == ("view", episode.pk)
        assert log.client_id == episode.client_id
        c.get(reverse("api-client-list"))
        log = AccessLog.objects.filter(organisation=org1.org).order_by("-id").first()
        assert log is not None and (log.action, log.object_type) == ("list", "client")
        assert AccessLog.objects.filter(organisation=org1.org).count() == before + 2

    def test_search_by_code_in_the_body(self, org1: OrgPersonas, episode: Any) -> None:
        c = APIClient()
        c.force_login(org1.therapist_a)
        r = c.post(reverse("api-client-search"), {"code": "1234"}, format="json")
        assert [x["code"] for x in r.json()["results"]] == ["AL-1234"]
        assert c.get(reverse("api-client-search")).status_code == 405

    def test_close_and_transfer(self, org1: OrgPersonas, episode: Any) -> None:
        c = APIClient()
        c.force_login(org1.therapist_a)
        url = reverse("api-episode-transfer", kwargs={"pk": episode.pk})
        r = c.post(url, {"therapist": org1.leader.pk}, format="json")
        assert r.status_code == 400 and "therapist" in r.json()
        r = c.post(
            reverse("api-episode-close", kwargs={"pk": episode.pk}),
            {"closed_on": (TODAY - dt.timedelta(days=20)).isoformat()},
            format="json",
        )
        assert r.status_code == 400 and "closed_on" in r.json()
        r = c.post(
            reverse("api-episode-close", kwargs={"pk": episode.pk}),
            {"closed_on": TODAY.isoformat()},
            format="json",
        )
        assert r.status_code == 200 and r.json()["status"] == "closed"

    def test_pagination_on_lists(self, org1: OrgPersonas, episode: Any) -> None:
        c = APIClient()
        c.force_login(org1.therapist_a)
        for name in ("api-client-list", "api-episode-list", "api-session-list", "api-alert-list"):
            body = c.get(reverse(name)).json()
            assert {"count", "next", "previous", "results"} <= set(body), name


def test_swagger_ui_is_served_from_own_static_files(client: Any, db: Any) -> None:
    html = client.get(reverse("api-docs")).content.decode()
    assert "swagger-ui" in html
    # Its start-up script is a file of ours too (the Content-Security-Policy forbids
    # inline scripts): the page names it, and it loads the schema from our own URL.
    assert "<script>" not in html and "script=" in html
    script = client.get(reverse("api-docs") + "?script=").content.decode()
    assert reverse("api-schema") in script
    for text in (html, script):
        for cdn in ("cdn.jsdelivr", "unpkg.com", "cdnjs", "http://", "https://"):
            assert cdn not in text, cdn


def test_schema_describes_the_key_scheme(client: Any, db: Any) -> None:
    r = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json")
    text = r.content.decode()
    assert "ApiKey" in text and "/api/v1/sessions/" in text


class TestKeyPages:
    def test_create_shows_the_key_once_and_revoke(
        self, client: Any, org1: OrgPersonas, episode: Any
    ) -> None:
        client.force_login(org1.owner)
        r = client.post(
            reverse("api_keys_page"),
            {"name": "Sag", "user": org1.owner.pk, "scopes": ["read", "write"]},
        )
        assert r.status_code == 200 and r["Cache-Control"] == "no-store"
        raw = r.context["raw_key"]
        assert raw in r.content.decode()
        key = ApiKey.objects.for_org(org1.org).get()
        assert key.scopes == ["read", "write"]
        listing = client.get(reverse("api_keys_page")).content.decode()
        assert key.prefix in listing and raw not in listing
        # The owner's key reads what the owner may: the organisation's statistics.
        stats_url = reverse(
            "api_stats_scope", kwargs={"scope": "organisation", "scope_id": org1.org.pk}
        )
        assert key_client(raw).get(stats_url).status_code == 200
        r = client.post(reverse("api_key_revoke_page", kwargs={"pk": key.pk}))
        assert r.status_code == 302
        assert key_client(raw).get(stats_url).status_code in (401, 403)

    def test_bad_input_and_other_organisation(
        self, client: Any, org1: OrgPersonas, org2: OrgPersonas
    ) -> None:
        client.force_login(org1.owner)
        r = client.post(reverse("api_keys_page"), {"name": "", "user": "x", "scopes": ["admin"]})
        assert r.status_code == 400
        assert not ApiKey.objects.for_org(org1.org).exists()
        key, _raw = key_for(org2, ["read"])
        r = client.post(reverse("api_key_revoke_page", kwargs={"pk": key.pk}))
        assert r.status_code == 404
        key.refresh_from_db()
        assert key.revoked_at is None


def test_second_episode_with_the_same_label_is_a_clear_error(org1: OrgPersonas) -> None:
    ep = make_episode(org1, code="AL-5555")
    c = APIClient()
    c.force_login(org1.therapist_a)
    body = {"client": ep.client_id, "unit": org1.unit.pk, "label": "B"}
    assert c.post(reverse("api-episode-list"), body, format="json").status_code == 201
    r = c.post(reverse("api-episode-list"), body, format="json")
    assert r.status_code == 400 and "label" in r.json()
    r = c.post(reverse("api-episode-list"), {**body, "label": "010190-1234"}, format="json")
    assert r.status_code == 400 and "label" in r.json()


class TestTherapistKeys:
    """A therapist authorises an integration to act as themselves (their own clients)."""

    def test_therapist_creates_a_key_acting_as_themselves(
        self, client: Any, org1: OrgPersonas, episode: Any
    ) -> None:
        client.force_login(org1.therapist_a)
        # Even when the form names someone else, the key acts as the therapist.
        r = client.post(
            reverse("api_keys_page"),
            {"name": "Journal", "user": org1.owner.pk, "scopes": ["read", "write"]},
        )
        assert r.status_code == 200
        key = ApiKey.objects.for_org(org1.org).get()
        assert key.user_id == org1.therapist_a.pk
        listing = key_client(r.context["raw_key"]).get(reverse("api-episode-list")).json()
        assert [e["id"] for e in listing["results"]] == [episode.pk]

    def test_therapist_sees_and_revokes_only_own_keys(self, client: Any, org1: OrgPersonas) -> None:
        own, _raw = key_for(org1, ["read"], user=org1.therapist_a)
        other, _raw2 = key_for(org1, ["read"], user=org1.therapist_b)
        client.force_login(org1.therapist_a)
        page = client.get(reverse("api_keys_page")).content.decode()
        assert own.prefix in page and other.prefix not in page
        r = client.post(reverse("api_key_revoke_page", kwargs={"pk": other.pk}))
        assert r.status_code == 404
        other.refresh_from_db()
        assert other.revoked_at is None
