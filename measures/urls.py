from django.urls import path

from . import import_views

urlpatterns: list = []

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
]
