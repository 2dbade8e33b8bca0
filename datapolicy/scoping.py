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
from django.http import Http404, HttpRequest, HttpResponse
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

    @property
    def acting_role(self) -> str:
        """The role under which this request acts (for the access log)."""
        held = sorted(self.roles & self.allowed_roles)
        return held[0] if held else ""

    def check_roles(self) -> None:
        # SECURITY: fail closed: a view that names no roles admits nobody.
        if not (self.roles & self.allowed_roles):
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
