"""Property-based tests of the whole API against its generated OpenAPI schema
(schemathesis): no 5xx and no response that violates the schema, authenticated as a
therapist (session) and as an API key. Deterministic (derandomised), few examples per
operation so that it runs in about a minute."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any

import pytest
import schemathesis
from django.conf import settings as dj_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from datapolicy.api_auth import apikey_create
from fitplatform.wsgi import application
from tests.conftest import OrgPersonas, make_episode, record

EXAMPLES = 30
CSRF = "s" * 32
STATUSES: dict[int, int] = {}  # an unmasked CSRF secret, sent as cookie and header
OPS: dict[tuple[str, str, int], int] = {}  # (method, path, status) -> calls
# The health-data write must be reached on its success and its same-date conflict path.
SESSION_WRITE = [("POST", "/api/v1/sessions/", 201), ("POST", "/api/v1/sessions/", 409)]


def _schema(client: Any) -> Any:
    r = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert r.status_code == 200
    return schemathesis.openapi.from_dict(json.loads(r.content))


def _world(org1: OrgPersonas) -> dict[str, int]:
    """Objects of therapist A; returns the ids that path parameters may point at."""
    ep = make_episode(org1, code="AL-1001")
    record(ep, dt.date.today() - dt.timedelta(days=20), ors="12.0", srs="33.0")
    session = record(ep, dt.date.today() - dt.timedelta(days=5), ors="10.0", srs="39.0")
    return {
        "/clients/": ep.client_id,
        "/episodes/": ep.pk,
        "/sessions/": session.pk,
        "unit": org1.unit.pk,
    }


def _real_id(ids: dict[str, int], path: str) -> int | None:
    for prefix, pk in ids.items():
        if prefix in path:
            return pk
    return None


@contextlib.contextmanager
def _keep_test_connection() -> Any:
    """Like Django's test client: the WSGI handler must not close the test transaction's
    database connection at the end of each request."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _real_refs(case: Any, ids: dict[str, int]) -> Any:
    if isinstance(case.body, dict):
        # The therapist's own unit too: a client or an episode is created only there, and
        # a session only with a score, so generated bodies otherwise rarely succeed.
        for field, prefix in (("episode", "/episodes/"), ("client", "/clients/"), ("unit", "unit")):
            if field in case.body:
                case.body[field] = ids[prefix]
        if case.path.endswith("/sessions/"):
            case.body["ors"] = {"total": "20.0"}  # a valid score; the date stays generated
    return case


def _run(
    schema: Any, *, headers: dict[str, str], cookies: dict[str, str], ids: dict[str, int]
) -> int:
    with _keep_test_connection():
        return _run_all(schema, headers=headers, cookies=cookies, ids=ids)


def _run_all(
    schema: Any, *, headers: dict[str, str], cookies: dict[str, str], ids: dict[str, int]
) -> int:
    calls = 0
    strategies = []
    for result in schema.get_all_operations():
        operation = result.ok()
        strategies.append(operation.as_strategy())
        # Also with the id of a real object, so that the success paths are exercised.
        real = _real_id(ids, operation.path) if "{id}" in operation.path else None
        if real is not None:
            strategies.append(operation.as_strategy(path_parameters={"id": real}))
        if operation.method.upper() == "POST" and "{id}" not in operation.path:
            # Bodies that reference real objects (a session for a real episode ...).
            strategies.append(operation.as_strategy().map(lambda c: _real_refs(c, ids)))
    for strategy in strategies:

        @hsettings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def check(case: Any) -> None:
            nonlocal calls
            response = case.call(app=application, headers=headers, cookies=cookies)
            calls += 1
            STATUSES[response.status_code] = STATUSES.get(response.status_code, 0) + 1
            op = (case.method.upper(), case.operation.path, response.status_code)
            OPS[op] = OPS.get(op, 0) + 1
            case.validate_response(
                response,
                checks=[not_a_server_error, response_schema_conformance],
                headers=headers,
            )

        check()
    return calls


@pytest.mark.postgres
@pytest.mark.django_db(transaction=False)
def test_api_as_therapist_session(client: Any, org1: OrgPersonas, monkeypatch: Any) -> None:
    monkeypatch.setattr(dj_settings, "ALLOWED_HOSTS", ["*"])
    ids = _world(org1)
    schema = _schema(client)
    client.force_login(org1.therapist_a)
    cookies = {
        dj_settings.SESSION_COOKIE_NAME: client.cookies["sessionid"].value,
        "csrftoken": CSRF,
    }
    STATUSES.clear()
    OPS.clear()
    calls = _run(schema, headers={"X-CSRFToken": CSRF}, cookies=cookies, ids=ids)
    assert calls > 100
    # Not only refusals: the generated requests reach the endpoints' success paths too.
    assert STATUSES.get(200, 0) > 20 and STATUSES.get(201, 0) > 0, STATUSES
    assert all(OPS.get(op, 0) > 0 for op in SESSION_WRITE), OPS


@pytest.mark.postgres
@pytest.mark.django_db(transaction=False)
def test_api_as_api_key(client: Any, org1: OrgPersonas, monkeypatch: Any) -> None:
    monkeypatch.setattr(dj_settings, "ALLOWED_HOSTS", ["*"])
    from datapolicy.api_auth import ApiKeyRateThrottle

    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "100000/min"})
    ids = _world(org1)
    schema = _schema(client)
    _key, raw = apikey_create(
        actor=org1.therapist_a,  # a key acts with at most its creator's roles
        organisation=org1.org,
        name="Fagsystem",
        user=org1.therapist_a,
        scopes=["read", "write"],
    )
    STATUSES.clear()
    OPS.clear()
    calls = _run(schema, headers={"Authorization": f"Api-Key {raw}"}, cookies={}, ids=ids)
    assert calls > 100
    assert STATUSES.get(200, 0) > 20 and STATUSES.get(201, 0) > 0, STATUSES
    assert all(OPS.get(op, 0) > 0 for op in SESSION_WRITE), OPS
