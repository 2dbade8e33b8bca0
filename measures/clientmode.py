"""Client mode: while the client holds the iPad, the browser session shows only the form.

The state lives in the server-side Django session (``SESSION_KEY``), so hiding menus is
not what protects the therapist's pages: :class:`ClientModeMiddleware` sends every
request of that session, except the client-mode URLs and static files, back to the form.
Leaving client mode needs the therapist's PIN (or password when no PIN is set); after
``CLIENT_MODE_MAX_PIN_ATTEMPTS`` wrong tries the user is logged out.
"""

from __future__ import annotations

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

SESSION_KEY = "fit_client_mode"
ATTEMPTS_KEY = "fit_client_mode_attempts"
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
    request.session[ATTEMPTS_KEY] = 0


def client_mode_update(request: HttpRequest, **changes: Any) -> None:
    state = client_mode_state(request) or {}
    state.update(changes)
    request.session[SESSION_KEY] = state


def client_mode_leave(request: HttpRequest) -> dict[str, Any] | None:
    state = client_mode_state(request)
    request.session.pop(SESSION_KEY, None)
    request.session.pop(ATTEMPTS_KEY, None)
    return state


def max_attempts() -> int:
    return int(settings.FITPLATFORM.get("CLIENT_MODE_MAX_PIN_ATTEMPTS", 5))


def user_pin_set(*, actor: Any, pin: str) -> None:
    """Store the therapist's client-mode PIN, hashed (never in clear)."""
    pin = (pin or "").strip()
    if not (pin.isascii() and pin.isdigit()) or not 4 <= len(pin) <= 8:
        raise ValidationError({"pin": _("The PIN must be 4 to 8 digits.")})
    actor.client_mode_pin = make_password(pin)
    actor.save(update_fields=["client_mode_pin"])


def user_unlock_check(*, actor: Any, secret: str) -> bool:
    """The PIN if the therapist has set one, otherwise the login password."""
    if actor.client_mode_pin:
        return bool(secret) and check_password(secret, actor.client_mode_pin)
    return bool(secret) and bool(actor.check_password(secret))


def client_mode_unlock(request: HttpRequest, secret: str) -> str:
    """Try to leave client mode. Returns "ok", "wrong" or "logged_out"."""
    user = request.user
    if user_unlock_check(actor=user, secret=secret):
        return "ok"
    attempts = int(request.session.get(ATTEMPTS_KEY, 0)) + 1
    request.session[ATTEMPTS_KEY] = attempts
    if attempts >= max_attempts():
        # SECURITY: too many wrong PINs: end the session; the therapist logs in again.
        logout(request)
        return "logged_out"
    return "wrong"


def attempts_left(request: HttpRequest) -> int:
    return max(0, max_attempts() - int(request.session.get(ATTEMPTS_KEY, 0)))


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
