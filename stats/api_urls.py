from django.urls import path

from .api import StatsScopeAPIView

urlpatterns = [
    path(
        "stats/<str:scope>/<int:scope_id>/",
        StatsScopeAPIView.as_view(),
        name="api_stats_scope",
    ),
]
