"""Resolve the active organisation and the user's roles in it, once per request.

The active organisation is chosen explicitly (stored in the session) and never guessed:
a user with exactly one organisation has it chosen for them (there is nothing to
guess); a user with several must pick one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.utils.translation import ngettext

from .access import organisations_of, roles_of
from .api_auth import KEYWORD
from .models import Organisation

SESSION_KEY = "fit_org_id"


def resolve_organisation(request: HttpRequest) -> Organisation | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    orgs = organisations_of(user)
    chosen = request.session.get(SESSION_KEY)
    for org in orgs:
        if org.pk == chosen:
            return org
    if len(orgs) == 1:
        request.session[SESSION_KEY] = orgs[0].pk
        return orgs[0]
    return None


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        org = resolve_organisation(request)
        request.organisation = org  # type: ignore[attr-defined]
        request.roles = frozenset(roles_of(request.user, org)) if org else frozenset()  # type: ignore[attr-defined]
        return self.get_response(request)


class DanishFirstMiddleware:
    """The interface is Danish unless the user chose English (language cookie/switch).

    Django's LocaleMiddleware would follow the browser's Accept-Language, and a shared
    municipal iPad may well be set to English; the platform is Danish first, so the
    browser preference is ignored and only an explicit choice counts.

    An integration calling the API with a key is no shared iPad: it states its language
    the standard HTTP way, so ``Accept-Language`` counts for it (after the language
    cookie, before the Danish default). Browser calls to the API follow the pages.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api_key_call(request):
            request.META.pop("HTTP_ACCEPT_LANGUAGE", None)
        return self.get_response(request)


def is_api_key_call(request: HttpRequest) -> bool:
    """An ``/api/`` request that carries an API key (valid or not: the answer to a bad
    key is also in the caller's language)."""
    return request.path.startswith("/api/") and request.META.get(
        "HTTP_AUTHORIZATION", ""
    ).startswith(KEYWORD + " ")


IDLE_KEY = "fit_last_seen"


class IdleLogoutMiddleware:
    """A login left untouched for ``SESSION_IDLE_MINUTES`` ends (a shared iPad put down
    in a corridor does not stay open on a therapist's caseload for the rest of the day);
    ``SESSION_COOKIE_AGE`` still bounds every login. Pages then go to the login page, which
    says why and leads back; API calls continue unauthenticated (403). The time of the
    last request is written to the session at most once a minute."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        minutes = int(settings.SESSION_IDLE_MINUTES)
        if minutes > 0 and request.user.is_authenticated:
            now = int(time.time())
            last = request.session.get(IDLE_KEY)
            if last is not None and now - int(last) > minutes * 60:
                logout(request)
                if not request.path.startswith("/api/"):
                    messages.info(
                        request,
                        ngettext(
                            "You were logged out after %(minutes)s minute without activity.",
                            "You were logged out after %(minutes)s minutes without activity.",
                            minutes,
                        )
                        % {"minutes": minutes},
                    )
                    return redirect_to_login(request.get_full_path())
            elif last is None or now - int(last) >= 60:
                request.session[IDLE_KEY] = now
        return self.get_response(request)
