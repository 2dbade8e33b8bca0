"""Client mode: while the client holds the iPad, the browser session shows only the form.

The state lives in the server-side Django session (``SESSION_KEY``), so hiding menus is
not what protects the therapist's pages: :class:`ClientModeMiddleware` sends every
request of that session, except the client-mode URLs and static files, back to the form.
Leaving client mode needs the therapist's PIN (or password when no PIN is set); after
``CLIENT_MODE_MAX_PIN_ATTEMPTS`` wrong tries the user is logged out. The tries are
counted in a shared atomic counter keyed by the browser session (``datapolicy.counters``,
Redis in production), not in the session itself: requests sent at the same moment would
each read the session's old count and so get extra tries.

Without that counter (Redis down) a PIN would have no limit, so no PIN is checked then
(fail closed); the unlock screen asks for the login password instead, which
:func:`user_unlock_check`'s password path checks like a login: django-axes counts a
wrong one in the database and refuses the username while it is locked. The therapist
is never shown a server error and keeps a way back to their pages.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _

from datapolicy.counters import CounterUnavailable, counter_clear, counter_incr, counter_value

SESSION_KEY = "fit_client_mode"
# The only URL names a session in client mode may reach.
CLIENT_MODE_URL_NAMES = ("client_mode_form", "client_mode_draft", "client_mode_unlock")


def client_mode_state(request: HttpRequest) -> dict[str, Any] | None:
    state = request.session.get(SESSION_KEY)
    return state if isinstance(state, dict) else None


def client_mode_enter(
    request: HttpRequest,
    *,
    episode_id: int,
    kind: str,
    date: str,
    session_id: int | None = None,
    confirm_same_date: bool = False,
    items: list[str] | None = None,
) -> None:
    """Lock this browser session to the client form of one episode and scale."""
    request.session[SESSION_KEY] = {
        "episode_id": episode_id,
        "kind": kind,
        "date": date,
        "session_id": session_id,
        "confirm_same_date": confirm_same_date,
        "items": items or [],
        "saved": False,
    }
    _forget_attempts(request)


def client_mode_update(request: HttpRequest, **changes: Any) -> None:
    state = client_mode_state(request) or {}
    state.update(changes)
    request.session[SESSION_KEY] = state


def client_mode_leave(request: HttpRequest) -> dict[str, Any] | None:
    state = client_mode_state(request)
    request.session.pop(SESSION_KEY, None)
    _forget_attempts(request)
    return state


def _forget_attempts(request: HttpRequest) -> None:
    # Client mode still starts and ends without Redis: a count left over can only leave
    # the session fewer tries later (it expires with SESSION_COOKIE_AGE), never more.
    with contextlib.suppress(CounterUnavailable):
        counter_clear(_attempts_key(request))


def max_attempts() -> int:
    return int(settings.FITPLATFORM.get("CLIENT_MODE_MAX_PIN_ATTEMPTS", 5))


def user_pin_set(*, actor: Any, pin: str) -> None:
    """Store the therapist's client-mode PIN, hashed (never in clear)."""
    pin = (pin or "").strip()
    if not (pin.isascii() and pin.isdigit()) or not 4 <= len(pin) <= 8:
        raise ValidationError({"pin": _("The PIN must be 4 to 8 digits.")})
    actor.client_mode_pin = make_password(pin)
    actor.save(update_fields=["client_mode_pin"])


def user_unlock_check(*, actor: Any, secret: str, request: HttpRequest | None = None) -> bool:
    """The PIN if the therapist has set one, otherwise the login password — checked as a
    login would be (``password_matches``: django-axes counts a wrong one against the
    therapist's username and refuses while it is locked), so the unlock screen is no
    way round the login throttling."""
    if actor.client_mode_pin:
        return bool(secret) and check_password(secret, actor.client_mode_pin)
    if request is None:
        return bool(secret) and bool(actor.check_password(secret))
    from datapolicy.accounts import password_matches

    return password_matches(request, actor, secret)


def _attempts_key(request: HttpRequest) -> str:
    """The counter of wrong tries of this browser session. The session key is a
    credential (the cookie's value), so the counter's name carries a hash of it."""
    if not request.session.session_key:
        request.session.save()
    digest = hashlib.sha256(str(request.session.session_key).encode()).hexdigest()
    return f"clientmode-attempts:{digest[:40]}"


# What client_mode_unlock() answers.
UNLOCK_OK = "ok"
UNLOCK_WRONG = "wrong"
UNLOCK_LOGGED_OUT = "logged_out"
UNLOCK_PIN_UNAVAILABLE = "pin_unavailable"


def client_mode_unlock(request: HttpRequest, secret: str, *, typed: str = "pin") -> str:
    """Try to leave client mode. Returns ``UNLOCK_OK``, ``UNLOCK_WRONG``,
    ``UNLOCK_LOGGED_OUT`` or, while the attempt counter does not answer,
    ``UNLOCK_PIN_UNAVAILABLE`` (a PIN was typed and is not checked). ``typed`` is what the
    page asked for, ``"pin"`` or ``"password"``; it only matters without the counter."""
    # SECURITY: the try is counted before the secret is checked, atomically: of any
    # number of requests sent at once, at most max_attempts() ever get their PIN checked
    # (checking first would test every PIN of a burst before the first logout).
    try:
        attempts = counter_incr(_attempts_key(request), timeout=settings.SESSION_COOKIE_AGE)
    except CounterUnavailable:
        return _unlock_without_counter(request, secret, typed=typed)
    if attempts > max_attempts():
        logout(request)
        return UNLOCK_LOGGED_OUT
    if user_unlock_check(actor=request.user, secret=secret, request=request):
        return UNLOCK_OK
    if attempts >= max_attempts():
        # SECURITY: too many wrong PINs: end the session; the therapist logs in again.
        logout(request)
        return UNLOCK_LOGGED_OUT
    return UNLOCK_WRONG


def _unlock_without_counter(request: HttpRequest, secret: str, *, typed: str) -> str:
    """SECURITY: fail closed. Without the counter, PINs could be tried without limit, so
    no PIN is checked; only the login password is, through ``authenticate()`` (django-
    axes, in the database: a wrong one counts as a failed login, a locked username is
    refused with the lock-out page)."""
    if typed != "password":
        return UNLOCK_PIN_UNAVAILABLE
    from datapolicy.accounts import password_matches

    return UNLOCK_OK if password_matches(request, request.user, secret) else UNLOCK_WRONG


def attempts_left(request: HttpRequest) -> int | None:
    """PIN tries left in this session; None while the counter does not answer (the
    unlock screen then asks for the password)."""
    try:
        return max(0, max_attempts() - counter_value(_attempts_key(request)))
    except CounterUnavailable:
        return None


class ClientModeMiddleware:
    """SECURITY: the server-side guard of client mode (menus are merely not drawn)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    @staticmethod
    def allowed(request: HttpRequest) -> bool:
        if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
            return True
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return False
        return match.url_name in CLIENT_MODE_URL_NAMES

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if (
            session is not None
            and SESSION_KEY in session
            and request.user.is_authenticated
            and not self.allowed(request)
        ):
            return redirect("client_mode_form")
        return self.get_response(request)
