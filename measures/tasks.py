"""Celery tasks of the measures app. Tasks take ids only and are idempotent."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from .importer import import_sessions
from .models import ImportJob


@shared_task(name="measures.import_run")
def import_run(job_id: int) -> str:
    """Validate and import an uploaded file (all or nothing), recording progress on the
    job. A finished job is not run again; a job interrupted mid-way rolled back and can
    run again (re-import skips identical sessions)."""
    # A job is looked up by id across organisations: the row fixes the organisation.
    job = ImportJob.dangerously_unscoped.select_related("organisation", "created_by").get(pk=job_id)
    if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
        return job.status

    def progress(stage: str, done: int, total: int) -> None:
        status = (
            ImportJob.Status.VALIDATING if stage == "validating" else ImportJob.Status.IMPORTING
        )
        ImportJob.dangerously_unscoped.filter(pk=job_id).update(
            status=status, processed_lines=done, total_lines=total
        )

    ImportJob.dangerously_unscoped.filter(pk=job_id).update(status=ImportJob.Status.VALIDATING)
    with job.file.open("rb") as fh:
        data = fh.read()
    result = import_sessions(
        actor=job.created_by, organisation=job.organisation, data=data, progress=progress
    )
    ImportJob.dangerously_unscoped.filter(pk=job_id).update(
        status=ImportJob.Status.DONE if result.ok else ImportJob.Status.FAILED,
        total_lines=result.lines,
        processed_lines=result.lines,
        errors=[e.as_dict() for e in result.errors],
        result=result.summary(),
        finished_at=timezone.now(),
    )
    # SECURITY: the upload holds client codes and scores; once processed only the
    # summary and the error report are kept.
    job.file.delete(save=False)
    ImportJob.dangerously_unscoped.filter(pk=job_id).update(file="")
    return ImportJob.Status.DONE if result.ok else ImportJob.Status.FAILED
