"""API routes of the clients app (under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("clients", api.ClientViewSet, basename="api-client")
router.register("episodes", api.EpisodeViewSet, basename="api-episode")

urlpatterns = router.urls
