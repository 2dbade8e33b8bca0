"""API routes of the datapolicy app (under /api/v1/)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api  # also registers the API-key schema extension

router = SimpleRouter()
router.register("api-keys", api.ApiKeyViewSet, basename="api-key")

urlpatterns = router.urls

# HTML pages for the system owner (included from fitplatform/urls.py under /api-keys/).
page_urlpatterns = [
    path("", api.ApiKeysPage.as_view(), name="api_keys_page"),
    path("<int:pk>/revoke/", api.ApiKeyRevokePage.as_view(), name="api_key_revoke_page"),
]
