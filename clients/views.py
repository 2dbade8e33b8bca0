"""Therapist pages: the caseload."""

from __future__ import annotations

from typing import Any

from django.views.generic import TemplateView

from datapolicy.models import Role
from datapolicy.scoping import TenantPageMixin
from datapolicy.services import Action, access_log_write

from .models import Episode
from .selectors import caseload

ALERT_ORDER = ("deterioration", "off_track", "alliance", "no_contact")


class CaseloadView(TenantPageMixin, TemplateView):
    """The therapist's start page: own episodes, what needs attention first."""

    template_name = "clients/caseload.html"
    allowed_roles = frozenset({Role.THERAPIST})
    model = Episode

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        status = self.request.GET.get("status", "active")
        if status not in {"active", "inactive", "all"}:
            status = "active"
        search = self.request.GET.get("q", "")[:40]
        episodes = list(
            caseload(
                therapist=self.request.user,
                organisation=self.organisation,
                status=status,
                search=search,
            )
        )
        # Attention first: more (and more serious) alerts first, then by code.
        episodes.sort(
            key=lambda e: (
                -len(e.alerts),
                min((ALERT_ORDER.index(a) for a in e.alerts if a in ALERT_ORDER), default=9),
                e.client.code,
            )
        )
        access_log_write(
            actor=self.request.user,
            organisation=self.organisation,
            action=Action.LIST,
            object_type="caseload",
            role=self.acting_role,
            request=self.request,
        )
        return {
            **super().get_context_data(**kwargs),
            "episodes": episodes,
            "status": status,
            "q": search,
        }
