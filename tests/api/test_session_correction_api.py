"""PATCH /api/v1/sessions/<id>/: correcting a saved session through the API, with the
same service and checks as the page (tests/therapist/test_corrections.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from datapolicy.api_auth import apikey_create
from measures.models import Score, Session
from tests.conftest import OrgPersonas, make_episode, record

pytestmark = pytest.mark.django_db
TODAY = dt.date.today()


@pytest.fixture
def session(org1: OrgPersonas) -> Session:
    ep = make_episode(org1, code="PA-1")
    record(ep, TODAY - dt.timedelta(days=20), ors="12.0")
    s: Session = record(ep, TODAY - dt.timedelta(days=10), ors="15.0", srs="36.0")
    return s


def _api(user: Any) -> APIClient:
    c = APIClient()
    c.force_login(user)
    return c


def _url(session: Session) -> str:
    return reverse("api-session-detail", kwargs={"pk": session.pk})


def _totals(session: Session) -> dict[str, Decimal]:
    return dict(
        Score.objects.for_org(session.organisation_id)
        .filter(session=session)
        .values_list("kind", "total")
    )


def test_fields_left_out_keep_their_saved_values(org1: OrgPersonas, session: Session) -> None:
    r = _api(org1.therapist_a).patch(
        _url(session), {"ors": {"items": ["4", "4", "4", "4,5"]}}, format="json"
    )
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["ors"]["items"] == ["4.0", "4.0", "4.0", "4.5"] and body["ors"]["total"] == "16.5"
    assert body["srs"]["total"] == "36.0"  # not given: unchanged
    assert body["date"] == (TODAY - dt.timedelta(days=10)).isoformat()
    assert _totals(session) == {"outcome": Decimal("16.5"), "alliance": Decimal("36.0")}


def test_a_new_date_renumbers_and_null_removes_a_score(org1: OrgPersonas, session: Session) -> None:
    earlier = TODAY - dt.timedelta(days=30)
    r = _api(org1.therapist_a).patch(
        _url(session), {"date": earlier.isoformat(), "srs": None}, format="json"
    )
    assert r.status_code == 200, r.json()
    assert r.json()["number"] == 1 and r.json()["srs"] is None
    assert _totals(session) == {"outcome": Decimal("15.0")}


def test_bad_values_are_field_errors_and_change_nothing(
    org1: OrgPersonas, session: Session
) -> None:
    c = _api(org1.therapist_a)
    r = c.patch(
        _url(session),
        {"date": (TODAY - dt.timedelta(days=5)).isoformat(), "ors": {"total": "40,5"}},
        format="json",
    )
    assert r.status_code == 400 and list(r.json()) == ["ors_total"]
    r = c.patch(_url(session), {"ors": None, "srs": None}, format="json")
    assert r.status_code == 400
    session.refresh_from_db()
    assert session.date == TODAY - dt.timedelta(days=10)
    assert _totals(session) == {"outcome": Decimal("15.0"), "alliance": Decimal("36.0")}


def test_the_same_date_as_another_session_is_409_until_confirmed(
    org1: OrgPersonas, session: Session
) -> None:
    c = _api(org1.therapist_a)
    other_day = (TODAY - dt.timedelta(days=20)).isoformat()
    r = c.patch(_url(session), {"date": other_day}, format="json")
    assert r.status_code == 409 and r.json()["confirm_same_date"] is True
    r = c.patch(_url(session), {"date": other_day, "confirm_same_date": True}, format="json")
    assert r.status_code == 200


def test_only_the_own_therapist_and_a_write_key_correct(
    org1: OrgPersonas, org2: OrgPersonas, session: Session
) -> None:
    body = {"ors": {"total": "1"}}
    assert _api(org1.therapist_b).patch(_url(session), body, format="json").status_code == 404
    assert _api(org1.leader).patch(_url(session), body, format="json").status_code == 403
    assert _api(org2.therapist_a).patch(_url(session), body, format="json").status_code == 404
    _key, raw = apikey_create(
        actor=org1.therapist_a,
        organisation=org1.org,
        name="Fagsystem",
        user=org1.therapist_a,
        scopes=["read"],
    )
    read_only = APIClient()
    read_only.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert read_only.patch(_url(session), body, format="json").status_code == 403
    assert _totals(session)["outcome"] == Decimal("15.0")
