"""System-owner pages: upload a CSV of historical sessions (imported by a Celery task,
with a progress bar and an error report), and export the organisation's data (written
by a Celery task, downloaded from the export job's page until it expires)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.generic import TemplateView

from datapolicy.models import Role
from datapolicy.scoping import TenantPageMixin
from datapolicy.services import access_log_write

from .exports import export_file_expire, export_start
from .models import ExportJob, ImportJob, job_percent, safe_upload_name

logger = logging.getLogger(__name__)
MAX_UPLOAD = 200 * 1024 * 1024  # 200 MB: a million lines are about 80 MB


class _OwnerPage(TenantPageMixin):
    allowed_roles = frozenset({Role.SYSTEM_OWNER})
    scope = "org"
    model: type[ImportJob] | type[ExportJob] = ImportJob


class ImportUploadView(_OwnerPage, TemplateView):
    template_name = "measures/import.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        jobs = self.scoped_queryset().order_by("-created_at")[:20]
        exports = self.scoped_queryset(ExportJob).order_by("-created_at")[:20]
        return {**super().get_context_data(**kwargs), "jobs": jobs, "export_jobs": exports}

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        upload = request.FILES.get("file")
        error = ""
        if upload is None:
            error = _("Choose a CSV file.")
        elif upload.size is not None and upload.size > MAX_UPLOAD:
            error = _("The file is too large (at most 200 MB).")
        if error:
            context = self.get_context_data(error=error)
            return self.render_to_response(context, status=400)
        job = ImportJob.objects.create(
            organisation=self.organisation,
            created_by=request.user,
            file=upload,
            # Checked whole for a CPR number before it is cut to the column's length.
            original_name=safe_upload_name(upload.name or ""),  # type: ignore[union-attr]
        )
        transaction.on_commit(lambda: _start(job))
        return redirect("import_job", pk=job.pk)


def _start(job: ImportJob) -> None:
    """Queue the job's task; without a broker the job fails with a message and its upload
    is deleted like after any run (measures.tasks.queue_job)."""
    from .tasks import import_fail, import_run, queue_job

    queue_job(
        "Import",
        job.pk,
        lambda: import_run.delay(job.pk),
        lambda: import_fail(
            job,
            _(
                "The import could not be started because the platform's task queue does "
                "not answer; nothing was imported. Upload the file again later."
            ),
        ),
    )


class ImportJobView(_OwnerPage, TemplateView):
    template_name = "measures/import_job.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        job = self.get_scoped_object(pk=self.kwargs["pk"])
        count = _error_count(job)
        more = _more_errors_text()
        return {
            **super().get_context_data(**kwargs),
            "job": job,
            "percent": job_percent(job.processed_lines, job.total_lines),
            "more_errors_text": more,
            "more_errors": (
                more.format(count=count, shown=len(job.errors)) if count > len(job.errors) else ""
            ),
        }


def _error_count(job: ImportJob) -> int:
    return int((job.result or {}).get("errors", len(job.errors)))


def _more_errors_text() -> str:
    # {count} and {shown} are filled in here and by static/js/import.js.
    return _("{count} errors in all; the first {shown} are listed.")


class ImportJobStatusView(_OwnerPage, View):
    """Small JSON for the progress bar (polled by the job page)."""

    def get(self, request: HttpRequest, pk: int) -> JsonResponse:
        job = self.get_scoped_object(pk=pk)
        total = job.total_lines or 0
        return JsonResponse(
            {
                "status": job.status,
                "status_label": str(job.get_status_display()),
                "total_lines": total,
                "processed_lines": job.processed_lines,
                "percent": job_percent(job.processed_lines, total),
                "finished": job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED),
                "result": job.result,
                # Every stored error (at most importer.MAX_ERRORS) and the full count.
                "errors": job.errors,
                "error_count": _error_count(job),
            }
        )


class ExportView(_OwnerPage, View):
    """Start an export of the organisation's sessions (CSV in the import format): an
    export job whose Celery task writes the file (measures.exports); the job's page
    offers the download."""

    def get(self, request: HttpRequest) -> HttpResponse:
        # The export is started by a POST (it creates a job); the address once gave the
        # file itself, so a bookmark leads to the page with the button and the jobs.
        return redirect(reverse("import_upload") + "#exports")

    def post(self, request: HttpRequest) -> HttpResponse:
        job = ExportJob.objects.create(organisation=self.organisation, created_by=request.user)
        transaction.on_commit(lambda: export_start(job))
        return redirect("export_job", pk=job.pk)


class _ExportPage(_OwnerPage):
    model = ExportJob


class ExportJobView(_ExportPage, TemplateView):
    template_name = "measures/export_job.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        job = self.get_scoped_object(pk=self.kwargs["pk"])
        return {**super().get_context_data(**kwargs), **_export_context(job)}


class ExportJobStatusView(_ExportPage, View):
    """Small JSON for the export job's page (polled until the job is finished)."""

    def get(self, request: HttpRequest, pk: int) -> JsonResponse:
        job = self.get_scoped_object(pk=pk)
        finished = job.status in (ExportJob.Status.DONE, ExportJob.Status.FAILED)
        expired = job.is_expired()
        available = job.status == ExportJob.Status.DONE and not expired
        return JsonResponse(
            {
                "status": job.status,
                "status_label": str(job.get_status_display()),
                "finished": finished,
                "percent": job.percent(),
                "sessions_written": job.sessions_written,
                "sessions_total": job.sessions_total,
                "progress_text": _export_progress_text(job),
                "sessions": job.sessions,
                "clients": job.clients,
                "expired": expired,
                "download_url": reverse("export_job_download", args=[job.pk]) if available else "",
                "message": job.message,
            }
        )


class ExportDownloadView(_ExportPage, View):
    """The export's file, as an attachment, while it has not expired; each download is
    logged. After its time the file is deleted and the page says it expired (410)."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponseBase:
        job = self.get_scoped_object(pk=pk)
        if job.status != ExportJob.Status.DONE:
            return redirect("export_job", pk=job.pk)
        if job.is_expired():
            if job.file:
                export_file_expire(job)
            return _expired_page(request, job)
        try:
            fh = job.file.open("rb")
        except FileNotFoundError:
            logger.error("Export job %s: its file is missing", job.pk)
            export_file_expire(job)
            return _expired_page(request, job)
        access_log_write(
            actor=request.user,
            organisation=self.organisation,
            action="download",
            obj=job,
            role=Role.SYSTEM_OWNER,
            request=request,
        )
        ExportJob.objects.for_org(self.organisation).filter(pk=job.pk).update(
            downloads=F("downloads") + 1
        )
        # The organisation's short name and the date the file was written: no client data.
        day = timezone.localdate(job.finished_at).isoformat()
        response = FileResponse(
            fh,
            as_attachment=True,
            filename=f"{self.organisation.slug}-sessions-{day}.csv",
            content_type="text/csv; charset=utf-8",
        )
        response["Cache-Control"] = "no-store"
        return response


def _expired_page(request: HttpRequest, job: ExportJob) -> HttpResponse:
    from django.template.response import TemplateResponse

    context = {**_export_context(job), "expired": True}
    return TemplateResponse(request, "measures/export_job.html", context, status=410).render()


def _export_progress_text(job: ExportJob) -> str:
    """The "n of N sessions" under the progress bar (empty before the task counted them)."""
    if not job.sessions_total:
        return ""
    return ngettext(
        "{written} of {total} session", "{written} of {total} sessions", job.sessions_total
    ).format(written=job.sessions_written, total=job.sessions_total)


def _export_context(job: ExportJob) -> dict[str, Any]:
    return {
        "job": job,
        "percent": job.percent(),
        "progress_text": _export_progress_text(job),
        "expired": job.is_expired(),
        "export_file_hours": settings.EXPORT_FILE_HOURS,
    }
