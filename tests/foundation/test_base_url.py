"""DJANGO_BASE_URL: the links in account e-mails lead to the configured address.

Without it a reset or welcome link takes the address of the request that caused the mail
(any of ALLOWED_HOSTS: an internal name, a second domain, a load balancer's name). With
it, every link uses its scheme and host, whatever the request said. `check --deploy`
warns when production has none, and a malformed value is refused.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse

from datapolicy.accounts import link_mail_send
from fitplatform.checks import base_url_configured
from fitplatform.settings.env import env_base_url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_on_commit_at_once")]

HOSTS = ["fit.example.dk", "intern.kommune.local"]
LINK = re.compile(r"(\S+)/password/reset/[^/\s]+/[^/\s]+/")


def _origins() -> list[str]:
    found = [LINK.search(m.body) for m in mail.outbox]
    assert all(found), [m.body for m in mail.outbox]
    return [f.group(1) for f in found if f]


def _ask_for_a_reset(email: str, host: str) -> None:
    r = Client().post(reverse("password_reset"), {"email": email}, HTTP_HOST=host)
    assert r.status_code == 302


@override_settings(ALLOWED_HOSTS=HOSTS, FITPLATFORM_BASE_URL="https://fit.example.dk")
def test_a_reset_asked_through_another_host_links_to_the_base_url(org1: Any) -> None:
    org1.therapist_a.email = "anna@alpha.example"
    org1.therapist_a.save()
    _ask_for_a_reset("anna@alpha.example", "intern.kommune.local")  # plain http, too
    assert _origins() == ["https://fit.example.dk"]
    assert "intern.kommune.local" not in mail.outbox[0].body


@override_settings(ALLOWED_HOSTS=HOSTS, FITPLATFORM_BASE_URL="https://fit.example.dk")
def test_welcome_mails_of_an_import_link_to_the_base_url(org1: Any) -> None:
    client = Client(HTTP_HOST="intern.kommune.local")
    client.force_login(org1.owner)
    csv = "name,email,unit,role\nMette Holm,mette@alpha.example,ung,therapist\n"
    r = client.post(reverse("dp_user_import"), {"file": SimpleUploadedFile("u.csv", csv.encode())})
    assert r.status_code == 302
    assert [m.to for m in mail.outbox] == [["mette@alpha.example"]]
    assert _origins() == ["https://fit.example.dk"]


@override_settings(ALLOWED_HOSTS=HOSTS, FITPLATFORM_BASE_URL="")
def test_without_it_the_link_takes_the_requests_address(org1: Any) -> None:
    org1.therapist_a.email = "anna@alpha.example"
    org1.therapist_a.save()
    _ask_for_a_reset("anna@alpha.example", "intern.kommune.local")
    assert _origins() == ["http://intern.kommune.local"]


@override_settings(FITPLATFORM_BASE_URL="https://fit.example.dk:8443")
def test_a_mail_queued_with_another_address_still_links_to_the_base_url(org1: Any) -> None:
    """A task queued before the setting was made (or by any other caller) carries a
    request's address; the worker uses the configured one."""
    org1.therapist_a.email = "anna@alpha.example"
    org1.therapist_a.save()
    link_mail_send(
        kind="reset",
        user_ids=[org1.therapist_a.pk],
        organisation_name="",
        domain="old-name.example",
        use_https=False,
        language="da",
    )
    assert _origins() == ["https://fit.example.dk:8443"]


# --- the deployment check ----------------------------------------------------------


def _ids(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return [m.id or "" for m in base_url_configured()]


def test_check_warns_when_production_has_no_base_url() -> None:
    assert _ids(DEBUG=False, FITPLATFORM_BASE_URL="") == ["fitplatform.W002"]
    assert _ids(DEBUG=True, FITPLATFORM_BASE_URL="") == []  # a development machine


def test_check_is_quiet_for_a_good_base_url() -> None:
    assert (
        _ids(DEBUG=False, FITPLATFORM_BASE_URL="https://fit.example.dk", ALLOWED_HOSTS=HOSTS) == []
    )
    assert _ids(DEBUG=True, FITPLATFORM_BASE_URL="http://localhost:8000", ALLOWED_HOSTS=["*"]) == []


@pytest.mark.parametrize(
    "value",
    [
        "http://fit.example.dk",  # not https in production
        "https://fit.example.dk/fit/",  # a path
        "https://fit.example.dk/?next=x",  # a query
        "https://user:pw@fit.example.dk",  # credentials
        "fit.example.dk",  # no scheme
    ],
)
def test_check_refuses_a_malformed_base_url(value: str) -> None:
    assert _ids(DEBUG=False, FITPLATFORM_BASE_URL=value, ALLOWED_HOSTS=HOSTS) == [
        "fitplatform.E002"
    ]


def test_check_warns_when_the_base_urls_host_is_not_allowed() -> None:
    ids = _ids(DEBUG=False, FITPLATFORM_BASE_URL="https://fit.example.dk", ALLOWED_HOSTS=["x.dk"])
    assert ids == ["fitplatform.W003"]


# --- reading it from the environment --------------------------------------------------


def test_the_environment_value_is_checked_and_normalised(monkeypatch: Any) -> None:
    monkeypatch.delenv("X_BASE", raising=False)
    assert env_base_url("X_BASE", require_https=True) == ""
    for raw, expected in [
        ("https://Fit.Example.dk/", "https://fit.example.dk"),
        ("https://fit.example.dk:8443", "https://fit.example.dk:8443"),
        (" https://fit.example.dk ", "https://fit.example.dk"),
    ]:
        monkeypatch.setenv("X_BASE", raw)
        assert env_base_url("X_BASE", require_https=True) == expected
    monkeypatch.setenv("X_BASE", "http://localhost:8000")
    assert env_base_url("X_BASE", require_https=False) == "http://localhost:8000"
    for bad in [
        "http://fit.example.dk",
        "https://fit.example.dk/fit",
        "https://fit.example.dk?x=1",
        "https://fit.example.dk#x",
        "https://fit.example.dk:port",
        "ftp://fit.example.dk",
        "https://",
    ]:
        monkeypatch.setenv("X_BASE", bad)
        with pytest.raises(ImproperlyConfigured, match="X_BASE"):
            env_base_url("X_BASE", require_https=True)
