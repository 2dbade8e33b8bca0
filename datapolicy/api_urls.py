"""API routes of the datapolicy app (under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from . import api  # also registers the API-key schema extension

router = SimpleRouter()
router.register("api-keys", api.ApiKeyViewSet, basename="api-key")

urlpatterns = router.urls
