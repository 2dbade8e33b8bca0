"""Start pages: where each role lands after login, and the organisation chooser."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views import View
from django.views.generic import TemplateView

from .access import organisations_of
from .middleware import SESSION_KEY
from .models import Role
from .scoping import TenantPageMixin


class HomeView(LoginRequiredMixin, View):
    """Role-aware start page: each role lands where its work is."""

    def get(self, request: HttpRequest) -> HttpResponse:
        roles: frozenset[str] = getattr(request, "roles", frozenset())
        if getattr(request, "organisation", None) is None:
            if request.user.is_platform_operator:  # type: ignore[union-attr]
                return redirect("operator_home")
            if organisations_of(request.user):
                return redirect("choose_organisation")
            raise PermissionDenied
        if Role.THERAPIST in roles:
            return redirect("caseload")
        if Role.UNIT_LEADER in roles or Role.MI_OFFICER in roles:
            return redirect("leader_home")
        if Role.DP_ADMIN in roles or Role.SYSTEM_OWNER in roles:
            return redirect("admin_home")
        raise PermissionDenied


class ChooseOrganisationView(LoginRequiredMixin, View):
    """Pick the active organisation explicitly (a user may serve several)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(
            request,
            "datapolicy/choose_organisation.html",
            {"organisations": organisations_of(request.user)},
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        wanted = request.POST.get("organisation")
        for org in organisations_of(request.user):
            if str(org.pk) == wanted:
                request.session[SESSION_KEY] = org.pk
                return redirect("home")
        raise PermissionDenied


class LeaderHomeView(TenantPageMixin, TemplateView):
    """Leaders and the management-information officer start at the dashboards."""

    template_name = "datapolicy/leader_home.html"
    allowed_roles = frozenset({Role.UNIT_LEADER, Role.MI_OFFICER})
    scope = "org"


class AdminHomeView(TenantPageMixin, TemplateView):
    """Data-policy admins and system owners start at their administration pages."""

    template_name = "datapolicy/admin_home.html"
    allowed_roles = frozenset({Role.DP_ADMIN, Role.SYSTEM_OWNER})
    scope = "org"


class OperatorHomeView(LoginRequiredMixin, TemplateView):
    """The platform operator sees only the cross-organisation benchmark."""

    template_name = "datapolicy/operator_home.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.is_authenticated and not request.user.is_platform_operator:  # type: ignore[union-attr]
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)
