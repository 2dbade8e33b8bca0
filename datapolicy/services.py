"""Data-policy services: the access log (and, later, grants, reports, retention)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .models import AccessLog, Organisation


class Action:
    VIEW = "view"
    LIST = "list"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    CLOSE = "close"
    TRANSFER = "transfer"
    EXPORT = "export"


def _client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def access_log_write(
    *,
    actor: Any,
    organisation: Organisation | int,
    action: str,
    obj: Any = None,
    object_type: str | None = None,
    object_id: int | None = None,
    client_id: int | None = None,
    role: str = "",
    request: HttpRequest | None = None,
) -> AccessLog:
    """Append one entry. Pass ``obj`` (a Client, Episode, Session ...) or type + id.

    Stores ids and the action only: never scores or client codes.
    """
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = obj.pk
        if client_id is None:
            client_id = _client_id_of(obj)
    org_id = organisation if isinstance(organisation, int) else organisation.pk
    role = role or _request_role(request)
    return AccessLog.objects.create(
        organisation_id=org_id,
        user=actor if getattr(actor, "is_authenticated", False) else None,
        username=getattr(actor, "username", "") or "",
        role=role,
        action=action,
        object_type=object_type or "",
        object_id=object_id,
        client_id=client_id,
        ip=_client_ip(request),
        path=(request.path[:300] if request is not None else ""),
    )


def _request_role(request: HttpRequest | None) -> str:
    """The role a page request acts under when the caller did not name one (services
    get the request, not the view's role): the therapist role where held, since only a
    client's own therapist changes client data."""
    roles = sorted(getattr(request, "roles", None) or ())
    if not roles:
        return ""
    return "therapist" if "therapist" in roles else roles[0]


def _client_id_of(obj: Any) -> int | None:
    name = obj._meta.model_name
    if name == "client":
        return obj.pk
    if name == "episode":
        return obj.client_id
    if name == "session":
        return obj.episode.client_id
    if name == "score":
        return obj.session.episode.client_id
    return None
