"""One's own account: change the password; a forgotten (or first) password by e-mail.

Tried as the user would, and the forbidden things: the old password is required, other
logins end, the page is out of reach while the client holds the iPad, the reset page
does not tell who has an account, a deactivated user gets no link, a link works once.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from datapolicy.models import User
from measures.clientmode import SESSION_KEY

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_on_commit_at_once")]

NEW = "Havregrød-og-kaffe-42"


def _change(client: Any, old: str, new: str, new2: str | None = None) -> Any:
    return client.post(
        reverse("password_change"),
        {"old_password": old, "new_password1": new, "new_password2": new2 or new},
    )


def _can_log_in(username: str, password: str) -> bool:
    c = Client()
    c.post(reverse("login"), {"username": username, "password": password})
    return "_auth_user_id" in c.session


def test_a_user_changes_their_password_and_other_logins_end(org1: Any) -> None:
    user = org1.therapist_a
    other_ipad = Client()
    other_ipad.force_login(user)
    assert other_ipad.get(reverse("caseload")).status_code == 200
    client = Client()
    client.force_login(user)
    page = client.get(reverse("caseload")).content.decode()
    assert f'href="{reverse("password_change")}"' in page  # the name in the top bar
    page = client.get(reverse("password_change")).content.decode()
    assert "Skift adgangskode" in page and 'name="old_password"' in page
    # Wrong old password, mismatch, too common: clear messages, nothing changed.
    r = _change(client, "not-it", NEW)
    assert r.status_code == 200 and "gamle adgangskode" in r.content.decode()
    r = _change(client, "pw", NEW, NEW + "x")
    assert r.status_code == 200 and "var ikke identiske" in r.content.decode()
    r = _change(client, "pw", "password")
    assert r.status_code == 200 and "for almindelig" in r.content.decode()
    user.refresh_from_db()
    assert user.check_password("pw")
    r = _change(client, "pw", NEW)
    assert r.status_code == 302 and r["Location"] == reverse("password_change_done")
    assert client.get(reverse("caseload")).status_code == 200  # this login stays
    assert other_ipad.get(reverse("caseload")).status_code == 302  # the other one ended
    assert _can_log_in(user.username, NEW) and not _can_log_in(user.username, "pw")


def test_change_needs_a_login_and_is_out_of_reach_in_client_mode(org1: Any) -> None:
    r = Client().get(reverse("password_change"))
    assert r.status_code == 302 and r["Location"].startswith(reverse("login"))
    client = Client()
    client.force_login(org1.therapist_a)
    session = client.session
    session[SESSION_KEY] = {"episode_id": 1, "kind": "ors", "date": "2026-03-02"}
    session.save()
    # The client holding the iPad cannot reach the therapist's account.
    for method in (client.get, client.post):
        r = method(reverse("password_change"))
        assert r.status_code == 302 and r["Location"] == reverse("client_mode_form")
    org1.therapist_a.refresh_from_db()
    assert org1.therapist_a.check_password("pw")


def _link(message: Any) -> str:
    found = re.search(r"https?://[^/\s]+(/password/reset/[^/\s]+/[^/\s]+/)", message.body)
    assert found, message.body
    return found.group(1)


def test_a_forgotten_password_is_set_through_a_one_time_link(org1: Any) -> None:
    user = org1.therapist_a
    user.email = "anna@alpha.example"
    user.save()
    client = Client()
    page = client.get(reverse("login")).content.decode()
    assert reverse("password_reset") in page
    r = client.post(reverse("password_reset"), {"email": "ANNA@alpha.example "})
    assert r.status_code == 302 and r["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["anna@alpha.example"]
    assert message.subject == "fitplatform: vælg en ny adgangskode"
    assert user.username in message.body and "72 timer" in message.body
    link = _link(message)
    r = client.get(link)  # the token leaves the URL before the form is shown
    assert r.status_code == 302 and "set-password" in r["Location"]
    form_url = r["Location"]
    r = client.post(form_url, {"new_password1": NEW, "new_password2": NEW})
    assert r.status_code == 302 and r["Location"] == reverse("password_reset_complete")
    assert _can_log_in(user.username, NEW)
    # The link works once.
    again = Client().get(link, follow=True).content.decode()
    assert "Linket kan ikke bruges" in again


def test_the_reset_page_does_not_tell_who_has_an_account(org1: Any) -> None:
    known = org1.therapist_a
    known.email = "anna@alpha.example"
    known.save()
    gone = org1.therapist_b
    gone.email = "former@alpha.example"
    gone.is_active = False
    gone.save()
    answers = []
    for email in ("anna@alpha.example", "nobody@alpha.example", "former@alpha.example"):
        r = Client().post(reverse("password_reset"), {"email": email}, follow=True)
        answers.append((r.status_code, r.redirect_chain))
    assert answers[0] == answers[1] == answers[2]
    assert [m.to for m in mail.outbox] == [["anna@alpha.example"]]  # not the deactivated


def test_a_new_user_from_the_import_sets_a_first_password(org1: Any) -> None:
    """Users added by the CSV user import have no usable password; Django's own reset
    form would ignore them, ours sends their link."""
    user = User.objects.create_user(username="new@alpha.example", email="new@alpha.example")
    user.set_unusable_password()
    user.save()
    client = Client()
    client.post(reverse("password_reset"), {"email": "new@alpha.example"})
    assert len(mail.outbox) == 1
    r = client.get(_link(mail.outbox[0]))
    client.post(r["Location"], {"new_password1": NEW, "new_password2": NEW})
    assert _can_log_in("new@alpha.example", NEW)


def test_the_mail_follows_the_page_language(org1: Any) -> None:
    org1.leader.email = "leader@alpha.example"
    org1.leader.save()
    client = Client()
    client.cookies["django_language"] = "en"
    client.post(reverse("password_reset"), {"email": "leader@alpha.example"})
    assert mail.outbox[0].subject == "fitplatform: choose a new password"
    assert "within 72 hours" in mail.outbox[0].body


def test_users_added_by_the_import_get_a_welcome_mail_with_their_link(
    org1: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    existing = org1.therapist_b  # already has a password and a membership elsewhere here
    existing.email = "bo@alpha.example"
    existing.save()
    client = Client()
    client.force_login(org1.owner)
    csv = (
        "name,email,unit,role\n"
        "Mette Holm,mette@alpha.example,ung,therapist\n"
        "Lars Berg,lars@alpha.example,Rusmiddelcentret,unit_leader\n"
        f"Bo Bek,{existing.email},,mi_officer\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            reverse("dp_user_import"), {"file": SimpleUploadedFile("u.csv", csv.encode())}
        )
    assert r.status_code == 302
    page = client.get(r["Location"]).content.decode()
    assert "e-mail med et link" in page
    # One mail per new user, in Danish, with the organisation's name and their username;
    # the colleague who already has a password gets none.
    assert sorted(m.to[0] for m in mail.outbox) == ["lars@alpha.example", "mette@alpha.example"]
    mette = next(m for m in mail.outbox if m.to == ["mette@alpha.example"])
    assert mette.subject == "Velkommen til fitplatform: vælg din adgangskode"
    assert "Hej Mette Holm" in mette.body and org1.org.name in mette.body
    assert "mette@alpha.example" in mette.body and "72 timer" in mette.body
    assert "bed om et nyt på log ind-siden" in mette.body
    # The link sets her first password.
    new = Client()
    r = new.get(_link(mette))
    new.post(r["Location"], {"new_password1": NEW, "new_password2": NEW})
    assert _can_log_in("mette@alpha.example", NEW)
    # A file with an error creates nobody and sends nothing.
    mail.outbox.clear()
    bad = "name,email,unit,role\nKim Ny,kim@alpha.example,ung,therapist\nBo,x,ung,therapist\n"
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            reverse("dp_user_import"), {"file": SimpleUploadedFile("u.csv", bad.encode())}
        )
    assert r.status_code == 200 and mail.outbox == []


def test_no_welcome_mail_for_a_user_who_chose_a_password_meanwhile(org1: Any) -> None:
    from datapolicy.accounts import link_mail_send

    user = User.objects.create_user(username="x@alpha.example", email="x@alpha.example")
    user.set_unusable_password()
    user.save()
    chose = User.objects.create_user(username="y@alpha.example", email="y@alpha.example")
    chose.set_password(NEW)
    chose.save()
    sent = link_mail_send(
        kind="welcome",
        user_ids=[user.pk, chose.pk],
        organisation_name="Alpha",
        domain="fit.example.dk",
        use_https=True,
        language="en",
    )
    assert sent == 1 and [m.to for m in mail.outbox] == [["x@alpha.example"]]
    assert mail.outbox[0].subject == "Welcome to fitplatform: choose your password"
    assert "https://fit.example.dk/password/reset/" in mail.outbox[0].body
