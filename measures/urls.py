from django.urls import path

from . import views

urlpatterns = [
    path("episodes/<int:pk>/session/new/", views.SessionNewView.as_view(), name="session_new"),
    path("episodes/<int:pk>/paper/", views.PaperEntryView.as_view(), name="paper_entry"),
    path("episodes/<int:pk>/draft/resume/", views.DraftResumeView.as_view(), name="draft_resume"),
    path(
        "episodes/<int:pk>/draft/discard/",
        views.DraftDiscardView.as_view(),
        name="draft_discard",
    ),
    path("sessions/<int:pk>/srs/", views.SrsStartView.as_view(), name="srs_start"),
    path("sessions/<int:pk>/edit/", views.SessionEditView.as_view(), name="session_edit"),
    path("sessions/<int:pk>/delete/", views.SessionDeleteView.as_view(), name="session_delete"),
    path("pin/", views.PinView.as_view(), name="client_mode_pin"),
    # Client mode: the only URLs reachable while the client holds the iPad.
    path("client/", views.ClientModeFormView.as_view(), name="client_mode_form"),
    path(
        "client/episodes/<int:pk>/draft/",
        views.ClientModeDraftView.as_view(),
        name="client_mode_draft",
    ),
    path("client/unlock/", views.ClientModeUnlockView.as_view(), name="client_mode_unlock"),
]

from . import import_views  # noqa: E402

# Import and export (issue 6).
urlpatterns += [
    path("import/", import_views.ImportUploadView.as_view(), name="import_upload"),
    path("import/<int:pk>/", import_views.ImportJobView.as_view(), name="import_job"),
    path(
        "import/<int:pk>/status/",
        import_views.ImportJobStatusView.as_view(),
        name="import_job_status",
    ),
    path("export/", import_views.ExportView.as_view(), name="export_sessions"),
    path("export/<int:pk>/", import_views.ExportJobView.as_view(), name="export_job"),
    path(
        "export/<int:pk>/status/",
        import_views.ExportJobStatusView.as_view(),
        name="export_job_status",
    ),
    path(
        "export/<int:pk>/download/",
        import_views.ExportDownloadView.as_view(),
        name="export_job_download",
    ),
]
