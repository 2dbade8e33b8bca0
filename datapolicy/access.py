"""Who holds which role where, and what that lets them see (selectors).

This module is the one place that turns memberships and grants into visibility.
Everything fails closed: no membership, no rows.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .models import Grant, Membership, Organisation, Role, Unit

# Roles that see client-level data of their own clients.
CLIENT_DATA_ROLES = {Role.THERAPIST}
# Roles that see anonymised aggregates of units and the organisation.
AGGREGATE_ROLES = {
    Role.THERAPIST,
    Role.UNIT_LEADER,
    Role.MI_OFFICER,
    Role.DP_ADMIN,
    Role.SYSTEM_OWNER,
}

# Roles that may receive a share (own figures, one client's graph): a unit leader or a
# supervising therapist. The analyst, the data-policy admin and the system owner never
# see one therapist's figures.
GRANTEE_ROLES = frozenset({Role.THERAPIST, Role.UNIT_LEADER})


def _org_id(organisation: Organisation | int | None) -> int | None:
    if organisation is None:
        return None
    return organisation if isinstance(organisation, int) else organisation.pk


def memberships_of(user: Any, organisation: Organisation | int | None) -> list[Membership]:
    """Active memberships of ``user`` in ``organisation`` (cached on the user object)."""
    org_id = _org_id(organisation)
    if org_id is None or not getattr(user, "is_authenticated", False):
        return []
    cache: dict[int, list[Membership]] = user.__dict__.setdefault("_fit_memberships", {})
    if org_id not in cache:
        cache[org_id] = list(
            Membership.objects.for_org(org_id)
            .filter(user=user, is_active=True)
            .select_related("unit")
        )
    return cache[org_id]


def roles_of(user: Any, organisation: Organisation | int | None) -> set[str]:
    return {m.role for m in memberships_of(user, organisation)}


def organisations_of(user: Any) -> list[Organisation]:
    """Organisations where ``user`` holds an active membership."""
    if not getattr(user, "is_authenticated", False):
        return []
    ids = Membership.dangerously_unscoped.filter(user=user, is_active=True).values(
        "organisation_id"
    )
    return list(Organisation.objects.filter(pk__in=ids, is_active=True))


def units_of(user: Any, organisation: Organisation | int | None, role: str) -> list[Unit]:
    return [m.unit for m in memberships_of(user, organisation) if m.role == role and m.unit]


def unit_descendant_ids(organisation: Organisation | int, unit_ids: list[int]) -> set[int]:
    """``unit_ids`` and every unit nested below them (units nest: department -> team)."""
    rows = list(Unit.objects.for_org(organisation).values_list("id", "parent_id"))
    children: dict[int | None, list[int]] = {}
    for uid, parent in rows:
        children.setdefault(parent, []).append(uid)
    result: set[int] = set()
    stack = list(unit_ids)
    while stack:
        uid = stack.pop()
        if uid in result:
            continue
        result.add(uid)
        stack.extend(children.get(uid, []))
    return result


def live_grants(user: Any, organisation: Organisation | int, kind: str) -> Any:
    """Grants to ``user`` that are in force now (started, not expired, not revoked) and
    whose grantee still holds a role that may receive them (an active therapist or
    unit-leader membership in the organisation).

    Checked on every request, so revocation, expiry and the loss of the role take effect
    on the next one.
    """
    now = timezone.now()
    # SECURITY: a share is given to a person *as* leader or supervising therapist. Once
    # that membership is deactivated or removed it no longer counts, even if the person
    # keeps another role (MI officer, data-policy admin, system owner) that may never
    # see one therapist's figures or a client's graph.
    may_receive = Membership.objects.for_org(organisation).filter(
        user_id=OuterRef("grantee_id"), role__in=GRANTEE_ROLES, is_active=True
    )
    return Grant.objects.for_org(organisation).filter(
        Exists(may_receive),
        grantee=user,
        kind=kind,
        starts_at__lte=now,
        expires_at__gt=now,
        revoked_at__isnull=True,
    )


def granted_episode_ids(user: Any, organisation: Organisation | int) -> list[int]:
    """Episodes whose graph ``user`` may see under a live supervision grant.

    SECURITY: both the live Grant row and guardian's object permission must exist;
    global permissions are not accepted.
    """
    from guardian.shortcuts import get_objects_for_user

    from clients.models import Episode

    ids = list(
        live_grants(user, organisation, Grant.Kind.CLIENT_GRAPH).values_list(
            "episode_id", flat=True
        )
    )
    if not ids:
        return []
    allowed = get_objects_for_user(
        user,
        "clients.view_episode_graph",
        klass=Episode.objects.for_org(organisation).filter(pk__in=ids),
        accept_global_perms=False,
    )
    return list(allowed.values_list("pk", flat=True))


def episode_visibility_q(
    user: Any, roles: set[str], organisation: Organisation | int, *, prefix: str = ""
) -> Q:
    """Q over episodes (``prefix`` leads from another model) that ``user`` may read."""
    cond = Q(pk__in=[]) if not prefix else Q(**{f"{prefix}pk__in": []})
    if Role.THERAPIST in roles:
        cond |= Q(**{f"{prefix}therapist": user})
    granted = granted_episode_ids(user, organisation)
    if granted:
        cond |= Q(**{f"{prefix}pk__in": granted})
    return cond


def therapists_sharing_with(user: Any, organisation: Organisation | int) -> list[int]:
    """Therapists whose own figures ``user`` may see under a live grant (consent)."""
    return list(
        live_grants(user, organisation, Grant.Kind.OWN_FIGURES).values_list("grantor_id", flat=True)
    )
