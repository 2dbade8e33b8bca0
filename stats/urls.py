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
