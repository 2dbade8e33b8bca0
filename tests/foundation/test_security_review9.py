"""Security review 9: the Content-Security-Policy, login throttling and own accounts.

Each finding is reproduced here as a test that failed on the code as reviewed; the
areas where nothing was found keep a test of what was tried, so they stay covered:

1. the old password on the password-change page (and on the client-mode PIN page) could
   be guessed without limit by whoever holds a login: now every wrong one counts in
   django-axes like a wrong login, and a locked pair is refused there too;
2. the CSV user import (and the Django admin's membership form) attached the platform
   operator's account to an organisation, whose system owner could then set its
   password or e-mail (and so take it over through the reset link);
3. gunicorn's access log wrote the reset link's token (``GET /password/reset/<uid>/
   <token>/``): the access lines now carry a placeholder instead of the token;
4. a reset or welcome link sent before the user was deactivated still set a password;
5. a CSV line whose e-mail is another account's user name was a server error.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from datapolicy.models import Membership, Role, User

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_on_commit_at_once")]

WRONG = "not-the-password"
NEW = "Havregrød-og-kaffe-42"
IP = "10.0.0.1"


def _logged_in(client: Any) -> bool:
    return "_auth_user_id" in client.session


def _login(client: Any, username: str, password: str, ip: str = IP) -> Any:
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def _link(message: Any) -> str:
    found = re.search(r"https?://[^/\s]+(/password/reset/[^/\s]+/[^/\s]+/)", message.body)
    assert found, message.body
    return found.group(1)


def _import(client: Any, csv: str, capture: Any) -> Any:
    with capture(execute=True):
        return client.post(
            reverse("dp_user_import"), {"file": SimpleUploadedFile("u.csv", csv.encode())}
        )


# --- 1. Old-password guessing on the account pages ------------------------------------


def test_password_change_old_password_guessing_is_throttled(org1: Any) -> None:
    """Whoever holds a therapist's login (a stolen session, an iPad left open) must not
    be able to find the password by guessing the "old password" without limit."""
    user = org1.therapist_a
    client = Client()
    client.force_login(user)
    for _ in range(5):
        client.post(
            reverse("password_change"),
            {"old_password": WRONG, "new_password1": NEW, "new_password2": NEW},
            REMOTE_ADDR=IP,
        )
    r = client.post(
        reverse("password_change"),
        {"old_password": "pw", "new_password1": NEW, "new_password2": NEW},
        REMOTE_ADDR=IP,
    )
    user.refresh_from_db()
    assert r.status_code == 429 and user.check_password("pw")
    # The guesses count like wrong logins: that username is locked at that address ...
    assert _login(Client(), user.username, "pw").status_code == 429
    # ... while the login itself is not ended (a colleague's iPad is not thrown out).
    assert client.get(reverse("caseload")).status_code == 200


def test_a_right_old_password_still_changes_it_and_wrong_ones_are_told(org1: Any) -> None:
    user = org1.therapist_a
    client = Client()
    client.force_login(user)
    r = client.post(
        reverse("password_change"),
        {"old_password": WRONG, "new_password1": NEW, "new_password2": NEW},
        REMOTE_ADDR=IP,
    )
    assert r.status_code == 200 and "gamle adgangskode" in r.content.decode()
    r = client.post(
        reverse("password_change"),
        {"old_password": "pw", "new_password1": NEW, "new_password2": NEW},
        REMOTE_ADDR=IP,
    )
    assert r.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW)
    assert client.get(reverse("caseload")).status_code == 200  # this login stays


def test_pin_page_password_guessing_is_throttled(org1: Any) -> None:
    """The PIN page asks for the password too: the same oracle as the change page."""
    user = org1.therapist_a
    client = Client()
    client.force_login(user)
    for _ in range(5):
        client.post(
            reverse("client_mode_pin"),
            {"pin": "4711", "pin_again": "4711", "password": WRONG},
            REMOTE_ADDR=IP,
        )
    r = client.post(
        reverse("client_mode_pin"),
        {"pin": "4711", "pin_again": "4711", "password": "pw"},
        REMOTE_ADDR=IP,
    )
    user.refresh_from_db()
    assert r.status_code == 429 and not user.client_mode_pin


# --- 1b. Login throttling: what was tried and holds ----------------------------------


def test_username_variants_do_not_bypass_the_lock(org1: Any) -> None:
    name = org1.therapist_a.username
    client = Client()
    for _ in range(5):
        _login(client, name, WRONG)
    # Whitespace is stripped by the form before axes sees the name; another case is
    # another (non-existent) user: neither logs in.
    for variant in (f" {name}", f"{name} ", f"\t{name}\n", name.upper(), name.title()):
        r = _login(Client(), variant, "pw")
        assert r.status_code in (200, 429) and "_auth_user_id" not in r.wsgi_request.session
    # The admin's login is the same lock.
    r = Client().post(
        reverse("admin:login"), {"username": f" {name} ", "password": "pw"}, REMOTE_ADDR=IP
    )
    assert r.status_code == 429


def test_a_forged_forwarded_for_does_not_give_a_new_address(org1: Any, settings: Any) -> None:
    settings.FITPLATFORM = {**settings.FITPLATFORM, "TRUSTED_PROXY_COUNT": 1}
    name = org1.therapist_a.username
    proxy = "172.18.0.2"
    for n in range(5):
        # The client writes its own X-Forwarded-For; the proxy appends the real address.
        Client().post(
            reverse("login"),
            {"username": name, "password": WRONG},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 198.51.100.7",
        )
    r = Client().post(
        reverse("login"),
        {"username": name, "password": "pw"},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="203.0.113.99, 198.51.100.7",
    )
    assert r.status_code == 429
    # Without a proxy (count 0) the header is ignored altogether.
    settings.FITPLATFORM = {**settings.FITPLATFORM, "TRUSTED_PROXY_COUNT": 0}
    for _ in range(5):
        _login(Client(), org1.leader.username, WRONG)
    r = Client().post(
        reverse("login"),
        {"username": org1.leader.username, "password": "pw"},
        REMOTE_ADDR=IP,
        HTTP_X_FORWARDED_FOR="198.51.100.200",
    )
    assert r.status_code == 429


def test_a_locked_out_user_keeps_a_valid_login_and_the_page_tells_nothing(org1: Any) -> None:
    user = org1.therapist_a
    session = Client()
    session.force_login(user)
    for _ in range(5):
        _login(Client(), user.username, WRONG)
    assert session.get(reverse("caseload"), REMOTE_ADDR=IP).status_code == 200
    # The lock-out page looks the same for an unknown username (no enumeration) and
    # echoes neither the username nor the password.
    for _ in range(5):
        _login(Client(), "nobody-here", WRONG)
    known = _login(Client(), user.username, "pw")
    unknown = _login(Client(), "nobody-here", "pw")
    assert known.status_code == unknown.status_code == 429

    def page(r: Any) -> str:
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", r.content.decode())

    assert page(known) == page(unknown)
    assert user.username not in known.content.decode()
    assert "Content-Security-Policy" in known


# --- 2. The platform operator's account is no organisation's to take over --------------


def test_the_user_import_does_not_attach_the_platform_operator(
    org1: Any, operator: User, django_capture_on_commit_callbacks: Any
) -> None:
    operator.email = "drift@platform.example"
    operator.save()
    client = Client()
    client.force_login(org1.owner)
    csv = f"name,email,unit,role\nDrift,{operator.email},ung,therapist\n"
    r = _import(client, csv, django_capture_on_commit_callbacks)
    assert r.status_code == 200 and "Linje 2" in r.content.decode()
    assert not Membership.dangerously_unscoped.filter(user=operator).exists()
    # Had it been attached, this organisation's system owner could set its password or
    # e-mail in the admin (and take it over through "forgotten password").
    assert client.get(reverse("admin:datapolicy_user_change", args=[operator.pk])).status_code in (
        302,
        404,
    )


def test_the_user_import_does_not_attach_a_superuser(
    org1: Any, django_capture_on_commit_callbacks: Any
) -> None:
    root = User.objects.create_superuser(username="root", email="root@platform.example")
    client = Client()
    client.force_login(org1.owner)
    r = _import(
        client,
        "name,email,unit,role\nRoot,ROOT@platform.example,,mi_officer\n",
        django_capture_on_commit_callbacks,
    )
    assert r.status_code == 200
    assert not Membership.dangerously_unscoped.filter(user=root).exists()


def test_the_admin_does_not_offer_the_platform_operator_for_a_membership(
    org1: Any, operator: User
) -> None:
    client = Client()
    client.force_login(org1.owner)
    page = client.get(reverse("admin:datapolicy_membership_add")).content.decode()
    assert f'value="{org1.therapist_a.pk}"' in page  # the form lists users ...
    assert f'value="{operator.pk}"' not in page  # ... but not the operator
    r = client.post(
        reverse("admin:datapolicy_membership_add"),
        {"user": operator.pk, "role": Role.THERAPIST, "unit": org1.unit.pk, "is_active": "on"},
    )
    assert not Membership.dangerously_unscoped.filter(user=operator).exists(), r.status_code


def test_the_import_never_attaches_another_organisations_user_nor_mails_them(
    org1: Any, org2: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """What was tried: the welcome mail cannot be pointed at an existing account."""
    victim = org2.therapist_a
    victim.email = "victim@beta.example"
    victim.save()
    client = Client()
    client.force_login(org1.owner)
    r = _import(
        client,
        "name,email,unit,role\nV,Victim@Beta.example,ung,therapist\n",
        django_capture_on_commit_callbacks,
    )
    assert r.status_code == 200 and mail.outbox == []
    assert not Membership.dangerously_unscoped.filter(user=victim, organisation=org1.org).exists()


# --- 3. Reset tokens in logs -------------------------------------------------------------


def test_gunicorn_access_log_does_not_write_the_reset_token(org1: Any) -> None:
    """The production image runs gunicorn with ``--access-logfile -``: every request
    line would carry a reset link's token, valid for three days."""
    import datetime as dt
    import logging
    import runpy
    import types
    from pathlib import Path

    from django.utils.module_loading import import_string
    from gunicorn.config import Config

    conf = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
    # gunicorn reads ./gunicorn.conf.py from its working directory (/app in the image).
    assert conf.exists()
    namespace = runpy.run_path(str(conf))
    cfg = Config()
    cfg.set("accesslog", "-")
    logger = import_string(namespace["logger_class"])(cfg)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger.access_log.handlers = [Collect()]
    token = "cyzbq8-0123456789abcdef0123456789abcdef"
    for uri in (
        f"/password/reset/MQ/{token}/",
        f"/login/?next=/password/reset/MQ/{token}/",
        f"/login/?next=%2Fpassword%2Freset%2FMQ%2F{token}%2F",
    ):
        path, _sep, query = uri.partition("?")
        environ = {
            "REQUEST_METHOD": "GET",
            "RAW_URI": uri,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "172.18.0.2",
            "HTTP_REFERER": f"https://fit.example.dk{uri}",
        }
        req = types.SimpleNamespace(headers=[("Referer", environ["HTTP_REFERER"])])
        resp = types.SimpleNamespace(status="302 Found", sent=0, headers=[])
        logger.access(resp, req, environ, dt.timedelta(seconds=0.01))
    assert len(lines) == 3, lines
    assert all(
        token not in line and "/password/reset/MQ" in line.replace("%2F", "/") for line in lines
    ), lines
    # Django's own placeholder (the page after the token left the URL) stays readable.
    lines.clear()
    environ.update(RAW_URI="/password/reset/MQ/set-password/", QUERY_STRING="")
    logger.access(resp, types.SimpleNamespace(headers=[]), environ, dt.timedelta(0))
    assert "/password/reset/MQ/set-password/" in lines[0]


def test_the_reset_flow_writes_no_token_to_the_application_log(org1: Any, caplog: Any) -> None:
    user = org1.therapist_a
    user.email = "anna@alpha.example"
    user.save()
    caplog.set_level("DEBUG")
    client = Client()
    client.post(reverse("password_reset"), {"email": "anna@alpha.example"})
    link = _link(mail.outbox[0])
    token = link.rstrip("/").rsplit("/", 1)[-1]
    r = client.get(link)
    client.post(r["Location"], {"new_password1": NEW, "new_password2": NEW})
    Client().get(link)  # a used link: an answer, no error logged with the URL
    Client().post(link, {})  # a POST straight to it (CSRF failure is logged: path only?)
    assert token not in caplog.text


# --- 4. Deactivated users and the link -------------------------------------------------


def test_a_link_sent_before_deactivation_no_longer_sets_a_password(org1: Any) -> None:
    user = org1.therapist_a
    user.email = "anna@alpha.example"
    user.save()
    Client().post(reverse("password_reset"), {"email": "anna@alpha.example"})
    link = _link(mail.outbox[0])
    user.is_active = False
    user.save()
    client = Client()
    r = client.get(link, follow=True)
    assert "Linket kan ikke bruges" in r.content.decode()
    final = r.redirect_chain[-1][0] if r.redirect_chain else link
    client.post(final, {"new_password1": NEW, "new_password2": NEW})
    user.refresh_from_db()
    assert user.check_password("pw")


def test_a_user_whose_memberships_are_all_inactive_can_reset_but_sees_nothing(
    org1: Any,
) -> None:
    """What was tried: a former colleague (role deactivated, account active) can still
    choose a password through the link, but the login then opens no page with data."""
    user = org1.therapist_a
    user.email = "anna@alpha.example"
    user.save()
    Membership.dangerously_unscoped.filter(user=user).update(is_active=False)
    client = Client()
    client.post(reverse("password_reset"), {"email": "anna@alpha.example"})
    r = client.get(_link(mail.outbox[0]))
    client.post(r["Location"], {"new_password1": NEW, "new_password2": NEW})
    _login(client, user.username, NEW)
    assert _logged_in(client)
    assert client.get(reverse("home")).status_code == 403
    for name in ("caseload", "leader_home", "admin_home", "dp_access_log"):
        assert client.get(reverse(name)).status_code in (302, 403, 404), name
    assert client.get("/api/v1/clients/").status_code in (403, 404)


# --- 5. A CSV line whose e-mail is another account's user name --------------------------


def test_an_import_line_whose_email_is_taken_as_a_username_is_a_line_error(
    org1: Any, org2: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """An account created by an import has the address as its user name; its e-mail may
    have changed since. A new line with that address was an IntegrityError (500)."""
    other = org2.therapist_b
    other.username = "bo@beta.example"
    other.email = "bo.new@beta.example"
    other.save()
    client = Client()
    client.force_login(org1.owner)
    client.raise_request_exception = False
    r = _import(
        client,
        "name,email,unit,role\nBo,bo@beta.example,ung,therapist\n",
        django_capture_on_commit_callbacks,
    )
    assert r.status_code == 200 and "Linje 2" in r.content.decode()
    assert "brugernavn for en anden konto" in r.content.decode()
    assert not User.objects.filter(email="bo@beta.example").exists()


# --- Host header, client mode, CSP on error pages: tried, hold ------------------------


def test_a_forged_host_gets_no_reset_mail(org1: Any) -> None:
    org1.therapist_a.email = "anna@alpha.example"
    org1.therapist_a.save()
    client = Client()
    client.raise_request_exception = False
    r = client.post(
        reverse("password_reset"), {"email": "anna@alpha.example"}, HTTP_HOST="evil.example"
    )
    assert r.status_code == 400 and mail.outbox == []
    r = client.post(
        reverse("password_reset"),
        {"email": "anna@alpha.example"},
        HTTP_X_FORWARDED_HOST="evil.example",
    )
    assert r.status_code == 302
    assert "evil.example" not in mail.outbox[0].body


def test_client_mode_blocks_the_account_pages(org1: Any) -> None:
    from measures.clientmode import SESSION_KEY

    client = Client()
    client.force_login(org1.therapist_a)
    session = client.session
    session[SESSION_KEY] = {"episode_id": 1, "kind": "ors", "date": "2026-03-02"}
    session.save()
    for url in (
        reverse("password_reset"),
        reverse("password_reset_done"),
        reverse("password_reset_confirm", args=["MQ", "set-password"]),
        reverse("password_change"),
        reverse("client_mode_pin"),
        reverse("admin:login"),
    ):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"] == reverse("client_mode_form"), url


def test_error_pages_carry_the_policy(client: Any, org1: Any, monkeypatch: Any) -> None:
    from measures import views as measure_views

    client.raise_request_exception = False
    assert "Content-Security-Policy" in client.get("/no-such-page/")
    assert "Content-Security-Policy" in client.get("/api/v1/no-such-endpoint/")
    client.force_login(org1.therapist_a)
    r = client.get(reverse("admin_home"))
    assert r.status_code == 403 and "Content-Security-Policy" in r
    r = client.get("/api/v1/reports/")
    assert "Content-Security-Policy" in r

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(measure_views.PinView, "get", boom)
    r = client.get(reverse("client_mode_pin"))
    assert r.status_code == 500 and "Content-Security-Policy" in r
