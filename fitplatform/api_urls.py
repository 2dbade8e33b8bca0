"""The REST API under /api/v1/ and its OpenAPI schema; each app contributes its routes."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file (no inline script: CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("v1/", include("clients.api_urls")),
    path("v1/", include("measures.api_urls")),
    path("v1/", include("stats.api_urls")),
    path("v1/", include("datapolicy.api_urls")),
]
