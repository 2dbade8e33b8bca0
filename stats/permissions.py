"""Who may see which statistics scope (shared by the pages and the API).

* therapist scope: the therapist (own figures, unsuppressed) or a named user holding a
  live own_figures grant from them (consent; logged) while they are an active therapist
  or unit leader of the organisation; everybody else 403.
* unit scope: unit leaders of that unit or a unit above it, therapists of that unit (or
  above), the management-information officer, data-policy admin and system owner —
  all anonymised.
* organisation scope and benchmark: every role of the organisation, anonymised.
Another organisation's therapist or unit is 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from datapolicy.access import (
    GRANTEE_ROLES,
    therapists_sharing_with,
    unit_descendant_ids,
    units_of,
)
from datapolicy.models import Membership, Organisation, Role, Unit

from .models import ScopeKind

ORG_WIDE_ROLES = frozenset({Role.MI_OFFICER, Role.DP_ADMIN, Role.SYSTEM_OWNER})
DASHBOARD_ROLES = frozenset(
    {Role.THERAPIST, Role.UNIT_LEADER, Role.MI_OFFICER, Role.DP_ADMIN, Role.SYSTEM_OWNER}
)


def dashboard_units(user: Any, organisation: Organisation, roles: frozenset[str]) -> Any:
    """The units whose dashboard the user may open, by name: every unit for the
    organisation-wide roles; for leaders and therapists their units and the units below
    (the unit scope's rule above)."""
    units = Unit.objects.for_org(organisation).order_by("name")
    if roles & ORG_WIDE_ROLES:
        return units
    mine: set[int] = set()
    for role in (Role.UNIT_LEADER, Role.THERAPIST):
        if role in roles:
            mine |= unit_descendant_ids(
                organisation, [u.pk for u in units_of(user, organisation, role)]
            )
    return units.filter(pk__in=mine)


@dataclass(frozen=True)
class ScopeAccess:
    kind: str
    organisation_id: int
    scope_id: int
    anonymised: bool
    label: str
    via_grant: bool = False


def scope_access(
    *, user: Any, organisation: Organisation, roles: frozenset[str], kind: str, scope_id: int | None
) -> ScopeAccess:
    """Resolve and authorise a scope; raise Http404 / PermissionDenied."""
    org_id = organisation.pk
    if kind == ScopeKind.THERAPIST:
        # SECURITY: the therapist must belong to this organisation, else 404.
        member = (
            Membership.objects.for_org(organisation)
            .filter(user_id=scope_id, role=Role.THERAPIST)
            .select_related("user")
            .first()
        )
        if member is None:
            raise Http404
        if scope_id == user.pk and Role.THERAPIST in roles:
            return ScopeAccess(kind, org_id, int(scope_id), False, member.user.get_full_name())
        # SECURITY: a share counts only while its grantee holds a role that may receive
        # it (access.live_grants checks the membership too); an MI officer, data-policy
        # admin or system owner never sees one therapist's figures.
        if roles & GRANTEE_ROLES and scope_id in therapists_sharing_with(user, organisation):
            return ScopeAccess(
                kind, org_id, int(scope_id), False, member.user.get_full_name(), via_grant=True
            )
        raise PermissionDenied
    if kind == ScopeKind.UNIT:
        unit = Unit.objects.for_org(organisation).filter(pk=scope_id).first()
        if unit is None:
            raise Http404
        if not (roles & ORG_WIDE_ROLES):
            own = [
                u.pk
                for role in (Role.UNIT_LEADER, Role.THERAPIST)
                if role in roles
                for u in units_of(user, organisation, role)
            ]
            # The user's own unit needs no walk of the unit tree (the common case).
            if unit.pk not in own and unit.pk not in unit_descendant_ids(organisation, own):
                raise PermissionDenied
        return ScopeAccess(kind, org_id, unit.pk, True, unit.name)
    if kind == ScopeKind.ORGANISATION:
        if scope_id is None or int(scope_id) != org_id:
            raise Http404  # another organisation's (or no) organisation: not revealed
        if not (roles & DASHBOARD_ROLES):
            raise PermissionDenied
        return ScopeAccess(kind, org_id, org_id, True, organisation.name)
    if kind == ScopeKind.PLATFORM:
        # The anonymised cross-organisation benchmark (id 0): every role may compare.
        if scope_id != 0 or not (roles & DASHBOARD_ROLES):
            raise Http404
        return ScopeAccess(kind, org_id, 0, True, "platform")
    raise Http404


def small_cell_k(organisation: Organisation) -> int:
    return max(3, int(organisation.small_cell_k))
