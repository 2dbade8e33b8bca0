"""A bench-only baseline view (mounted only with STATS_BENCH_VIEWS=true; see bench/).

Same middleware, session and role check as a dashboard, then one primary-key lookup:
the cheapest page the dashboards can be compared with in the same run.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views import View

from datapolicy.scoping import TenantPageMixin

from .models import StatsSnapshot
from .permissions import DASHBOARD_ROLES


class BenchPkLookupView(TenantPageMixin, View):
    allowed_roles = DASHBOARD_ROLES
    scope = "org"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        snap = StatsSnapshot.objects.only("pk", "computed_at").get(pk=pk)
        return HttpResponse(f"{snap.pk} {snap.computed_at:%H:%M:%S}", content_type="text/plain")
