from django.http import HttpRequest

from .models import Role


def tenancy(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    roles = set(getattr(request, "roles", ()) or ())
    return {
        "active_organisation": getattr(request, "organisation", None),
        "active_roles": roles,
        "role_labels": [Role(r).label for r in sorted(roles)],
        "is_therapist": Role.THERAPIST in roles,
        "is_leader": Role.UNIT_LEADER in roles,
        "is_mi": Role.MI_OFFICER in roles,
        "has_admin_pages": bool(roles & {Role.DP_ADMIN, Role.SYSTEM_OWNER}),
    }
