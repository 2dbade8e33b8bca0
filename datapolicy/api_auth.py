"""API keys for integrations: services, authentication, scopes, throttling, and the
API-wide response rules (JSON errors, ``Cache-Control: no-store``).

A key belongs to one organisation and acts as a (service) user: the request gets that
organisation and the user's roles there, so the API applies exactly the data policy of
the pages. Only a SHA-256 hash of the key is stored; the key is shown once, at creation.
Keys look like ``<prefix>.<secret>``; the prefix (not secret) finds the row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from redis.exceptions import RedisError
from rest_framework import exceptions, permissions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.throttling import SimpleRateThrottle

from .access import roles_of
from .models import ApiKey, Membership, Organisation, Role
from .services import Action, access_log_write
from .validators import CPR_MESSAGE, looks_like_cpr

logger = logging.getLogger(__name__)

KEYWORD = "Api-Key"
SCOPES = ("read", "write")
# last_used_at is written at most this often per key (not on every call).
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def _hash(secret: str) -> str:
    # SECURITY: keys are 256 random bits, so a fast hash is enough (no dictionary to try).
    return "sha256$" + hashlib.sha256(secret.encode()).hexdigest()


# --- services ---------------------------------------------------------------------


# Roles that reach client-level data (own clients; a supervision grant's graph).
CLIENT_LEVEL_ROLES = frozenset({Role.THERAPIST, Role.UNIT_LEADER})


def key_delegation_problem(*, creator: Any, user: Any, organisation: Organisation) -> str:
    """Why ``creator`` may not (or no longer) have a key acting as ``user``; "" if fine.

    SECURITY: a key acting as oneself has exactly one's own rights. A key acting as
    *another* user (a service account for an integration) may only carry aggregate roles
    the creator holds too, never a client-level role: role names are organisation-wide,
    so "therapist" held by the creator would otherwise let them read any colleague's
    clients through a key acting as that colleague. Checked at creation and on every
    call, so a key stops working when its creator loses the roles it was made with.
    """
    if creator is None:
        return _("The key's creator no longer has an account.")
    if not creator.is_active:
        # SECURITY: a deactivated account authorises nothing any more, also not through
        # a key it made for another user (a service account).
        return _("The key's creator no longer has an active account.")
    if creator.pk == user.pk:
        return ""
    user_roles = roles_of(user, organisation)
    if user_roles & CLIENT_LEVEL_ROLES:
        return _(
            "A key acting as a therapist or unit leader can only be created by that "
            "person (on their own API-keys page)."
        )
    if not user_roles <= roles_of(creator, organisation):
        return _("A key can only act with roles you hold yourself.")
    return ""


@transaction.atomic
def apikey_create(
    *,
    actor: Any,
    organisation: Organisation,
    name: str,
    user: Any,
    scopes: list[str],
    request: Any = None,
) -> tuple[ApiKey, str]:
    """Create a key acting as ``user``; returns the row and the key (shown once)."""
    scopes = sorted(set(scopes or []))
    if not scopes or any(s not in SCOPES for s in scopes):
        raise DjangoValidationError({"scopes": _("Choose the scopes read and/or write.")})
    if "write" in scopes and "read" not in scopes:
        scopes = ["read", "write"]
    if not (name or "").strip():
        raise DjangoValidationError({"name": _("Give the key a name.")})
    if looks_like_cpr(name):
        raise DjangoValidationError({"name": CPR_MESSAGE})
    if (
        user is None
        or not Membership.objects.for_org(organisation).filter(user=user, is_active=True).exists()
    ):
        raise DjangoValidationError(
            {"user": _("The key must act as a user with a role in this organisation.")}
        )
    problem = key_delegation_problem(creator=actor, user=user, organisation=organisation)
    if problem:
        raise DjangoValidationError({"user": problem})
    prefix = secrets.token_hex(5)
    secret = secrets.token_urlsafe(32)
    raw = f"{prefix}.{secret}"
    key = ApiKey.objects.create(
        organisation=organisation,
        name=name.strip()[:100],
        user=user,
        prefix=prefix,
        key_hash=_hash(raw),
        scopes=scopes,
        created_by=actor,
    )
    access_log_write(
        actor=actor,
        organisation=organisation,
        action=Action.CREATE,
        obj=key,
        request=request,
        # SECURITY: what the key may do and as whom; never the key, its prefix or hash.
        details={"name": key.name, "user": user.username, "scopes": scopes},
    )
    return key, raw


@transaction.atomic
def apikey_revoke(*, actor: Any, key: ApiKey, request: Any = None) -> ApiKey:
    """Revoke at once: the next call with the key is refused."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        access_log_write(
            actor=actor,
            organisation=key.organisation_id,
            action="revoke",
            obj=key,
            request=request,
            details={"name": key.name, "user": key.user.username, "scopes": list(key.scopes)},
        )
    return key


def apikey_find(raw: str) -> ApiKey | None:
    """The live key for ``raw`` (constant-time comparison of the hash), or None."""
    prefix, _sep, _secret = raw.partition(".")
    if not prefix or not _secret or len(prefix) > 12:
        return None
    if not raw.isascii() or not raw.isprintable():
        # A key is printable ASCII; a NUL or other control character would otherwise
        # reach the database (PostgreSQL refuses NUL in text: a 500).
        return None
    # SECURITY: a key is looked up across organisations by its unique prefix; the row
    # then fixes the organisation the request acts in.
    key = (
        ApiKey.dangerously_unscoped.select_related("organisation", "user", "created_by")
        .filter(prefix=prefix)
        .first()
    )
    if key is None or not hmac.compare_digest(key.key_hash, _hash(raw)):
        return None
    return key


# --- authentication, scopes, throttling --------------------------------------------


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Api-Key <prefix>.<secret>``."""

    def authenticate(self, request: Any) -> tuple[Any, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith(KEYWORD + " "):
            return None
        key = apikey_find(header[len(KEYWORD) + 1 :].strip())
        if key is None:
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("This API key has been revoked."))
        org = key.organisation
        if not org.is_active or not key.user.is_active:
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.dangerously_unscoped.filter(pk=key.pk).update(last_used_at=now)
        # (a key acting as its creator, the common case, costs no extra query here)
        if key_delegation_problem(creator=key.created_by, user=key.user, organisation=org):
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        roles = frozenset(roles_of(key.user, org))
        # SECURITY: the organisation and roles come from the key, never from the request.
        for target in (request, request._request):
            target.organisation = org
            target.roles = roles
        return key.user, key

    def authenticate_header(self, request: Any) -> str:
        return KEYWORD


class ApiKeyScope(permissions.BasePermission):
    """A key-authenticated request needs "read" for safe and "write" for other methods;
    key management is never open to keys (a key cannot mint keys)."""

    # Lazy: translated per request (a class attribute is evaluated once, at import).
    message = gettext_lazy("This API key does not have the scope for this request.")

    def has_permission(self, request: Any, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        if getattr(view, "keys_allowed", True) is False:
            return False
        needed = "read" if request.method in permissions.SAFE_METHODS else "write"
        return needed in (key.scopes or [])


class RateCountUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = gettext_lazy("The service is temporarily unavailable. Try again later.")
    default_code = "unavailable"


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Rate limit for key-authenticated calls only, counted per key (in the cache:
    Redis). While Redis does not answer, a key-authenticated call is refused with 503
    (fail closed, like the other shared counters: no unlimited calls), not a 500."""

    scope = "api_key"

    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as exc:
            logger.warning(
                "API key call refused: its rate count is unavailable, the cache (REDIS_URL) "
                "does not answer (%s)",
                type(exc).__name__,
            )
            raise RateCountUnavailable() from exc

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not isinstance(request.auth, ApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}


# --- errors and caching -------------------------------------------------------------


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """JSON errors with a message per field, also for the services' Django
    ValidationErrors; a same-date session is 409 with ``confirm_same_date``."""
    # Imported here: this module is loaded by DRF's settings while DRF itself loads.
    from rest_framework.response import Response
    from rest_framework.views import exception_handler as drf_exception_handler

    from measures.services import SameDateSession

    if isinstance(exc, SameDateSession):
        data: dict[str, Any] = dict(_error_dict(exc))
        data["confirm_same_date"] = True
        return Response(data, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        return Response(_error_dict(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    return drf_exception_handler(exc, context)


def _error_dict(exc: DjangoValidationError) -> dict[str, Any]:
    """DRF's error shape: a list of messages per field, and errors not tied to a field
    as one string under ``detail`` (as DRF's own ``{"detail": "..."}``)."""
    if hasattr(exc, "error_dict"):
        data: dict[str, Any] = {}
        for field, messages in exc.message_dict.items():
            if field == "__all__":
                data["detail"] = " ".join(str(m) for m in messages)
            else:
                data[field] = [str(m) for m in messages]
        return data
    return {"detail": " ".join(str(m) for m in exc.messages)}


class ApiNoStoreMiddleware:
    """SECURITY: API responses (client codes, scores) must never be cached."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # path_info: the path inside the site, also when it is served under a prefix.
        if request.path_info.startswith("/api/v1/"):
            response["Cache-Control"] = "no-store"
        return response


def api_permissions() -> list[type[permissions.BasePermission]]:
    """Permission classes of every tenant API view: role in the organisation + key scope."""
    from .scoping import HasRoleInOrganisation

    return [HasRoleInOrganisation, ApiKeyScope]
