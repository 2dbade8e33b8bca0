"""System-owner pages: upload a CSV of historical sessions (imported by a Celery task,
with a progress bar and an error report), and download the organisation's data."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from datapolicy.models import Role
from datapolicy.scoping import TenantPageMixin

from .exporter import export_sessions
from .models import ImportJob, safe_upload_name

logger = logging.getLogger(__name__)
MAX_UPLOAD = 200 * 1024 * 1024  # 200 MB: a million lines are about 80 MB


class _OwnerPage(TenantPageMixin):
    allowed_roles = frozenset({Role.SYSTEM_OWNER})
    scope = "org"
    model = ImportJob


class ImportUploadView(_OwnerPage, TemplateView):
    template_name = "measures/import.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        jobs = self.scoped_queryset().order_by("-created_at")[:20]
        return {**super().get_context_data(**kwargs), "jobs": jobs}

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
    """Queue the job's task. While the broker (Redis) does not answer the job fails at
    once with a message that says so, and the upload is deleted like after any run: the
    page shows why instead of a server error or a job that waits for ever."""
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    from .tasks import import_fail, import_run

    try:
        import_run.delay(job.pk)
    except (OperationalError, RedisError, OSError) as exc:
        logger.warning(
            "Import job %s not queued: the broker does not answer (%s)", job.pk, type(exc).__name__
        )
        import_fail(
            job,
            _(
                "The import could not be started because the platform's task queue does "
                "not answer; nothing was imported. Upload the file again later."
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
                "percent": round(100 * job.processed_lines / total) if total else 0,
                "finished": job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED),
                "result": job.result,
                # Every stored error (at most importer.MAX_ERRORS) and the full count.
                "errors": job.errors,
                "error_count": _error_count(job),
            }
        )


class ExportView(_OwnerPage, View):
    """The organisation's sessions as CSV in the import format (logged)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        text = export_sessions(
            actor=request.user,
            organisation=self.organisation,
            request=request,
            role=self.acting_role,
        )
        name = f"{self.organisation.slug}-sessions-{timezone.localdate().isoformat()}.csv"
        response = HttpResponse(text, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
