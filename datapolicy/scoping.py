"""The one base for pages and API views that does tenant scoping and role checks.

Pages subclass :class:`TenantPageMixin`; DRF views subclass :class:`TenantAPIView`
mixins. Both:

* refuse anonymous users and users without a role in the active organisation;
* refuse (403) a user none of whose roles is in ``allowed_roles`` (empty = nobody);
* build every queryset from ``Model.objects.for_org(org)`` (another organisation's
  object is therefore 404) and, for client-level models, ``for_user`` (an object of the
  organisation that the user may not see is 404 too: a colleague's client is not even
  shown to exist).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect

from .models import Organisation


class TenantContext:
    """What a request may act as: user, organisation, roles."""

    request: HttpRequest
    allowed_roles: ClassVar[frozenset[str]] = frozenset()
    # "user": rows the user may see by role rules and grants (client-level data);
    # "org": every row of the organisation (aggregates, admin pages).
    scope: ClassVar[str] = "user"
    model: type[models.Model] | None = None

    @property
    def organisation(self) -> Organisation:
        org = getattr(self.request, "organisation", None)
        if org is None:
            raise PermissionDenied("No active organisation")
        return org

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(getattr(self.request, "roles", frozenset()))

    def get_allowed_roles(self) -> frozenset[str]:
        """The roles admitted to this request (``allowed_roles``; an API view may widen
        it for some reads, as the page it mirrors does)."""
        return self.allowed_roles

    @property
    def acting_role(self) -> str:
        """The role under which this request acts (for the access log), where no client's
        data is concerned (see ``acting_role_for`` for that)."""
        held = sorted(self.roles & self.get_allowed_roles())
        return held[0] if held else ""

    def acting_roles_for(self, client_ids: Any) -> dict[int, str]:
        """The role under which this request reads each client's data, for the access
        log: "therapist" for the user's own clients; for any other client the role that
        brought the access (a supervision grant, received as unit leader where the user
        holds that role), so that a user who is both therapist and leader is logged as
        leader when reading a colleague's client. Without the therapist role among the
        view's roles: ``acting_role``."""
        from .models import Role

        ids = {int(cid) for cid in client_ids if cid is not None}
        held = self.roles & self.get_allowed_roles()
        if not ids or Role.THERAPIST not in held:
            return dict.fromkeys(ids, self.acting_role)
        from clients.selectors import own_clients

        own = set(
            own_clients(therapist=self.request.user, organisation=self.organisation)
            .filter(pk__in=ids)
            .values_list("pk", flat=True)
        )
        # Another's client is seen through a supervision grant, which a user holding the
        # unit-leader role receives as leader; without that role, as a colleague therapist.
        other = Role.UNIT_LEADER if Role.UNIT_LEADER in self.roles else Role.THERAPIST
        return {cid: str(Role.THERAPIST) if cid in own else str(other) for cid in ids}

    def acting_role_for(self, client_id: int | None) -> str:
        """``acting_roles_for`` for one client (or ``acting_role`` without one)."""
        if client_id is None:
            return self.acting_role
        return self.acting_roles_for([client_id])[int(client_id)]

    def check_roles(self) -> None:
        # SECURITY: fail closed: a view that names no roles admits nobody.
        if not (self.roles & self.get_allowed_roles()):
            raise PermissionDenied

    def scoped_queryset(self, model: type[models.Model] | None = None) -> Any:
        model = model or self.model
        if model is None:
            raise ImproperlyConfiguredView(f"{type(self).__name__} has no model")
        manager = model.objects  # type: ignore[attr-defined]
        if self.scope == "user":
            return manager.for_user(self.request.user, self.organisation)
        return manager.for_org(self.organisation)

    def get_scoped_object(self, queryset: Any = None, **lookup: Any) -> Any:
        qs = queryset if queryset is not None else self.scoped_queryset()
        try:
            return qs.get(**lookup)
        except (qs.model.DoesNotExist, ValueError, TypeError):
            raise Http404 from None


class ImproperlyConfiguredView(RuntimeError):
    pass


class TenantPageMixin(TenantContext, AccessMixin):
    """Base for every page that shows or changes an organisation's data."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "OPTIONS":
            # SECURITY: Django's View.options answers 200 without looking the object up,
            # also for another organisation's object; pages need no OPTIONS, so it is
            # refused alike for every page, user and object.
            return HttpResponseNotAllowed(
                [
                    m.upper()
                    for m in getattr(self, "http_method_names", ())
                    if m != "options" and hasattr(self, m)
                ]
            )
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if getattr(request, "organisation", None) is None:
            if request.user.memberships.filter(is_active=True).exists():  # type: ignore[attr-defined]
                return redirect("choose_organisation")
            raise PermissionDenied
        self.check_roles()
        response: HttpResponse = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        # SECURITY: pages with personal data must not be cached by browsers or proxies.
        response.setdefault("Cache-Control", "no-store")
        return response


# --- REST framework: the same scoping for API views --------------------------------

from rest_framework import permissions as drf_permissions  # noqa: E402
from rest_framework.exceptions import MethodNotAllowed, NotFound  # noqa: E402
from rest_framework.exceptions import PermissionDenied as DRFPermissionDenied  # noqa: E402


class HasRoleInOrganisation(drf_permissions.BasePermission):
    """DRF permission: the view's ``allowed_roles`` against the request's roles.

    Session-authenticated requests get their organisation and roles from the tenant
    middleware; API-key requests get them from the key's authentication class, which
    sets ``request.organisation`` and ``request.roles`` (see ``datapolicy.api_auth``).
    """

    def has_permission(self, request: Any, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        org = getattr(request, "organisation", None) or getattr(
            request._request, "organisation", None
        )
        if org is None:
            raise DRFPermissionDenied("No active organisation")
        request.organisation = org
        if not getattr(request, "roles", None):
            request.roles = getattr(request._request, "roles", frozenset())
        # SECURITY: fail closed: a view that names no roles admits nobody.
        allowed = (
            view.get_allowed_roles()
            if hasattr(view, "get_allowed_roles")
            else getattr(view, "allowed_roles", frozenset())
        )
        return bool(set(request.roles) & set(allowed))


# What no API view may override: the permission and throttle order of the base below.
_FINAL_API_METHODS = ("get_permissions", "check_permissions", "check_throttles", "initial")


class TenantAPIMixin(TenantContext):
    """Base of every API view: role check, key scope, rate limit, scoped querysets, 404
    for others' objects.

    Use with DRF generic views/viewsets. ``get_queryset`` and ``get_object`` are final:
    subclasses narrow the queryset with ``filter_scoped_queryset``. The permission
    classes always include ``datapolicy.api_auth.api_permissions()`` (role in the
    organisation, API-key scope), whatever a subclass sets, and key-authenticated calls
    are throttled *before* the permission checks, so refused calls count too.
    """

    permission_classes: Any = [HasRoleInOrganisation]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # SECURITY: the base owns permissions and throttling; a subclass that overrides
        # them could drop the key-scope check or the rate limit without anyone noticing.
        for name in _FINAL_API_METHODS:
            if name in cls.__dict__:
                raise ImproperlyConfiguredView(f"{cls.__name__} must not override {name}()")

    def get_permissions(self) -> list[Any]:
        from .api_auth import api_permissions

        classes = list(self.permission_classes)
        # SECURITY: the role and key-scope checks run on every API view, even where a
        # subclass names other permission classes.
        classes += [p for p in api_permissions() if p not in classes]
        return [permission() for permission in classes]

    def check_permissions(self, request: Any) -> None:
        # SECURITY: rate-limit first: otherwise (DRF checks permissions before
        # throttles) a key's refused calls would never be counted.
        self.check_throttles(request)
        super().check_permissions(request)  # type: ignore[misc]

    def check_throttles(self, request: Any) -> None:
        # Called by check_permissions and again by DRF's initial(), and for OPTIONS on a
        # clone of the request (DRF's metadata asks check_permissions as POST): count a
        # call once, marked on the one HttpRequest underneath them all.
        underlying = getattr(request, "_request", request)
        if getattr(underlying, "_fit_throttle_checked", False):
            return
        underlying._fit_throttle_checked = True
        super().check_throttles(request)  # type: ignore[misc]

    def options(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """OPTIONS (DRF's metadata) answers on an object URL as GET would for an object
        the caller may not see: DRF's metadata does not look the object up (and swallows
        the 404 where it does), so another organisation's object would answer 200."""
        if kwargs:
            lookup = getattr(self, "lookup_url_kwarg", None) or getattr(self, "lookup_field", "pk")
            if lookup in kwargs and hasattr(self, "get_object"):
                # SECURITY: 404 for an object outside the caller's scope, as for GET.
                self.get_object()
            else:
                # An object URL without a generic lookup (its view resolves the object
                # itself): no OPTIONS, alike for every object.
                raise MethodNotAllowed(request.method)
        return super().options(request, *args, **kwargs)  # type: ignore[misc]

    def get_queryset(self) -> Any:
        return self.filter_scoped_queryset(self.scoped_queryset())

    def filter_scoped_queryset(self, queryset: Any) -> Any:
        return queryset

    def get_object(self) -> Any:
        lookup = getattr(self, "lookup_url_kwarg", None) or getattr(self, "lookup_field", "pk")
        value = self.kwargs.get(lookup)  # type: ignore[attr-defined]
        try:
            obj = self.get_queryset().get(**{getattr(self, "lookup_field", "pk"): value})
        except Exception:
            raise NotFound from None
        self.check_object_permissions(self.request, obj)  # type: ignore[attr-defined]
        return obj
