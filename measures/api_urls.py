"""API routes of the measures app (under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("sessions", api.SessionViewSet, basename="api-session")
router.register("alerts", api.AlertViewSet, basename="api-alert")

urlpatterns = router.urls
