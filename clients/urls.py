from django.urls import path

from . import views

urlpatterns = [
    path("", views.CaseloadView.as_view(), name="caseload"),
    path("new/", views.ClientCreateView.as_view(), name="client_new"),
    path("episodes/<int:pk>/", views.EpisodeDetailView.as_view(), name="episode_detail"),
    path("episodes/<int:pk>/close/", views.EpisodeCloseView.as_view(), name="episode_close"),
    path("episodes/<int:pk>/reopen/", views.EpisodeReopenView.as_view(), name="episode_reopen"),
    path("episodes/<int:pk>/restart/", views.EpisodeRestartView.as_view(), name="episode_restart"),
    path(
        "episodes/<int:pk>/transfer/",
        views.EpisodeTransferView.as_view(),
        name="episode_transfer",
    ),
    path("handover/", views.HandoverView.as_view(), name="episode_handover"),
]
