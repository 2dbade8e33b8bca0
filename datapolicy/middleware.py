"""Resolve the active organisation and the user's roles in it, once per request.

The active organisation is chosen explicitly (stored in the session) and never guessed:
a user with exactly one organisation has it chosen for them (there is nothing to
guess); a user with several must pick one.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .access import organisations_of, roles_of
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
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.META.pop("HTTP_ACCEPT_LANGUAGE", None)
        return self.get_response(request)
