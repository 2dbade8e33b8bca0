"""The forgotten-password mail is queued after commit, not sent while the page waits (an
address with an account would otherwise answer an SMTP round-trip later than one
without); the worker makes the token, so no task argument carries it."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_reset_mail_leaves_after_the_answer(
    org1: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    from datapolicy import tasks

    queued: list[tuple[Any, ...]] = []
    real = tasks.password_link_mail.delay
    monkeypatch.setattr(tasks.password_link_mail, "delay", lambda *a: queued.append(a))
    org1.therapist_a.email = "anna@alpha.example"
    org1.therapist_a.save()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = Client().post(reverse("password_reset"), {"email": "anna@alpha.example"})
        unknown = Client().post(reverse("password_reset"), {"email": "nobody@alpha.example"})
    assert r.status_code == unknown.status_code == 302
    assert mail.outbox == [] and len(callbacks) == 1  # nothing sent during the request
    callbacks[0]()
    assert queued == [("reset", [org1.therapist_a.pk], None, "testserver", False, "da")]
    real(*queued[0])  # the worker (eager in tests) sends it
    assert [m.to for m in mail.outbox] == [["anna@alpha.example"]]
