from django.conf import settings
from django.urls import path

from . import views

urlpatterns = [
    path("", views.StatsIndexView.as_view(), name="stats_index"),
    path("mine/", views.MyFiguresView.as_view(), name="stats_mine"),
    path("therapist/<int:user_id>/", views.TherapistFiguresView.as_view(), name="stats_therapist"),
    path("unit/<int:unit_id>/", views.UnitDashboardView.as_view(), name="stats_unit"),
    path("organisation/", views.OrganisationDashboardView.as_view(), name="stats_organisation"),
    path("benchmark/", views.BenchmarkView.as_view(), name="stats_benchmark"),
    path("platform/", views.PlatformBenchmarkView.as_view(), name="stats_platform"),
    path(
        "export/<str:kind>/<int:scope_id>/<str:table>.<str:fmt>",
        views.ExportView.as_view(),
        name="stats_export",
    ),
]

if getattr(settings, "STATS_BENCH_VIEWS", False):  # bench/stats_bench.py only
    from .bench_views import BenchPkLookupView

    urlpatterns.append(
        path("bench/pk/<int:pk>/", BenchPkLookupView.as_view(), name="stats_bench_pk")
    )
