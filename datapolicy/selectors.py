"""Read side of the data policy: the access log, grants, consents, memberships."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import AccessLog, Consent, Grant, Membership, Organisation, Role


def client_ids_for_code(*, organisation: Organisation, code: str) -> list[int]:
    """The client numbers behind a code, within ``organisation`` only (case-insensitive):
    the client who has it now, and every erased client who had it (their erasure entry
    in the log keeps a keyed hash of organisation and code, never the code). A code
    given again after an erasure names more than one client."""
    from clients.models import Client

    from .services import client_code_hashes

    code = (code or "").strip()
    if not code:
        return []
    live = (
        Client.objects.for_org(organisation).filter(code__iexact=code).values_list("pk", flat=True)
    )
    # SECURITY: scoped by hand (AccessLog outlives clients); the hash is keyed with the
    # organisation too, so another organisation's erased client never matches.
    erased = (
        AccessLog.objects.filter(
            organisation=organisation,
            client_code_hash__in=client_code_hashes(organisation_id=organisation.pk, code=code),
        )
        .exclude(client_id=None)
        .values_list("client_id", flat=True)
    )
    return sorted({int(i) for i in live} | {int(i) for i in erased if i is not None})


def client_ids_for_number(*, organisation: Organisation, client_id: int) -> list[int]:
    """``[client_id]`` if it is a client of ``organisation`` or has log entries there
    (an erased client's log stays readable for the right of access), else ``[]``."""
    from clients.models import Client

    from .models import AccessLog

    exists = (
        Client.objects.for_org(organisation).filter(pk=client_id).exists()
        or AccessLog.objects.filter(organisation=organisation, client_id=client_id).exists()
    )
    return [client_id] if exists else []


def access_log_search(
    *,
    organisation: Organisation,
    username: str = "",
    client_ids: list[int] | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    action: str = "",
) -> QuerySet[AccessLog]:
    """Entries of ``organisation`` (never another's), newest first."""
    # SECURITY: AccessLog is not a TenantModel (it outlives clients); scope it by hand.
    qs = AccessLog.objects.filter(organisation=organisation)
    if username:
        qs = qs.filter(username__iexact=username.strip())
    if client_ids is not None:
        qs = qs.filter(client_id__in=client_ids)
    tz = timezone.get_current_timezone()
    if date_from:
        qs = qs.filter(at__gte=dt.datetime.combine(date_from, dt.time.min, tzinfo=tz))
    if date_to:
        qs = qs.filter(
            at__lt=dt.datetime.combine(date_to, dt.time.min, tzinfo=tz) + dt.timedelta(days=1)
        )
    if action:
        qs = qs.filter(action=action)
    return qs.order_by("-at", "-pk")


def access_log_actions(*, organisation: Organisation) -> list[str]:
    return sorted(
        AccessLog.objects.filter(organisation=organisation)
        .values_list("action", flat=True)
        .distinct()
    )


def grants_for(*, user: Any, roles: frozenset[str] | set[str], organisation: Organisation) -> Any:
    """Grants a user may see: all of the organisation (history included) for the
    data-policy admin; a therapist's own given and received shares otherwise."""
    qs = Grant.objects.for_org(organisation).select_related(
        "grantor", "grantee", "episode__client", "revoked_by", "created_by"
    )
    if Role.DP_ADMIN in roles:
        return qs.order_by("-created_at", "-pk")
    return qs.filter(Q(grantor=user) | Q(grantee=user)).order_by("-created_at", "-pk")


def grant_state(grant: Grant, now: dt.datetime | None = None) -> str:
    now = now or timezone.now()
    if grant.revoked_at is not None:
        return "revoked"
    if grant.expires_at <= now:
        return "expired"
    if grant.starts_at > now:
        return "pending"
    return "live"


def consents_for(*, user: Any, roles: frozenset[str] | set[str], organisation: Organisation) -> Any:
    """All consents for the data-policy admin; a therapist's own clients' otherwise."""
    qs = Consent.objects.for_org(organisation).select_related("client", "recorded_by")
    if Role.DP_ADMIN in roles:
        return qs.order_by("-given_on", "-pk")
    from clients.selectors import own_clients

    visible = own_clients(therapist=user, organisation=organisation).values("pk")
    return qs.filter(client__in=visible).order_by("-given_on", "-pk")


def grantee_choices(*, organisation: Organisation, exclude_user: Any = None) -> Any:
    from .access import GRANTEE_ROLES
    from .models import User

    ids = (
        Membership.objects.for_org(organisation)
        .filter(role__in=GRANTEE_ROLES, is_active=True)
        .values("user_id")
    )
    qs = User.objects.filter(pk__in=ids, is_active=True)
    if exclude_user is not None:
        qs = qs.exclude(pk=exclude_user.pk)
    return qs.order_by("first_name", "last_name", "username")


def therapist_choices(*, organisation: Organisation) -> Any:
    from .models import User

    ids = (
        Membership.objects.for_org(organisation)
        .filter(role=Role.THERAPIST, is_active=True)
        .values("user_id")
    )
    return User.objects.filter(pk__in=ids, is_active=True).order_by("first_name", "last_name")


# Who may open the report pages, and so approve a report.
REPORT_APPROVER_ROLES = frozenset(
    {Role.UNIT_LEADER, Role.MI_OFFICER, Role.DP_ADMIN, Role.SYSTEM_OWNER}
)


def member_choices(*, organisation: Organisation) -> Any:
    """The people who may be named report approvers: active members in a role that can
    open the report pages (a therapist cannot)."""
    from .models import User

    ids = (
        Membership.objects.for_org(organisation)
        .filter(is_active=True, role__in=REPORT_APPROVER_ROLES)
        .values("user_id")
    )
    return User.objects.filter(pk__in=ids, is_active=True).order_by("first_name", "last_name")


def memberships_by_unit(*, organisation: Organisation) -> list[tuple[Any, list[Membership]]]:
    """(unit or None for organisation-wide roles, memberships) in unit-name order."""
    rows = list(
        Membership.objects.for_org(organisation)
        .select_related("user", "unit")
        .order_by("unit__name", "role", "user__last_name", "user__first_name")
    )
    groups: dict[Any, list[Membership]] = {}
    for m in rows:
        groups.setdefault(m.unit, []).append(m)
    return sorted(groups.items(), key=lambda kv: (kv[0] is not None, str(kv[0] or "")))
