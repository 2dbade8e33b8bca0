"""The system owner's export job: all the organisation's sessions as CSV, built by a
Celery task (``measures.tasks.export_run``, the job id its only argument) into private
storage and downloaded through a view (``measures.import_views.ExportDownloadView``).

The file is exactly ``measures.exporter.export_sessions``' text (UTF-8), written in
chunks of a batch of sessions each (the worker's memory does not grow with the
organisation), with the job's progress stored after each batch; the access log gets that
function's entries (``export`` ``sessions`` and one per client, system owner's role) once
per job; each download writes one more entry. The file holds client
codes and scores, so it is deleted ``settings.EXPORT_FILE_HOURS`` after it was written:
a download after that time deletes it and says it expired, and the nightly clean-up
(``datapolicy.retention_nightly``) deletes every file past its time. The job row keeps
counts only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from datapolicy.models import Role

from .exporter import ExportCounts, export_chunks
from .models import EXPORT_DIR, ExportJob

logger = logging.getLogger(__name__)


def export_start(job: ExportJob) -> None:
    """Queue the job's task; without a broker the job fails at once with a message, as
    an import upload does (measures.tasks.queue_job)."""
    from .tasks import export_run, queue_job

    queue_job(
        "Export",
        job.pk,
        # The id only: never data in a task's arguments. The queue is a test hook
        # (tests/integration: a worker of its own), "celery" otherwise.
        lambda: export_run.apply_async((job.pk,), queue=export_queue_name()),
        lambda: export_fail(
            job.pk,
            _(
                "The export could not be started because the platform's task queue does "
                "not answer; nothing was exported. Start the export again later."
            ),
        ),
    )


def export_queue_name() -> str:
    return str(getattr(settings, "EXPORT_TASK_QUEUE", "celery"))


def export_fail(job_id: int, message: str) -> None:
    ExportJob.dangerously_unscoped.filter(pk=job_id).update(
        status=ExportJob.Status.FAILED, message=message[:300], finished_at=timezone.now()
    )


def export_job_run(job_id: int) -> str:
    """Write the job's file (the task's body; the caller holds the job's lock).

    The file is written in chunks (``export_chunks``, one per batch of sessions) to a
    temporary name beside its final one (``<name>.part`` under EXPORT_DIR) and renamed
    when complete, so that the worker's memory is bounded by the batch and a file under
    its final name is always whole. All of it runs in one transaction, which the
    access-log entries (written as the batches go) and the job's "done" commit together:
    when anything fails, the entries are rolled back (nothing left the database), the
    partial file is deleted, and the job fails with the platform's message, never the
    data's. A worker that dies leaves a ``.part`` file no job names: the nightly
    clean-up deletes it (``_orphans_delete``).

    Progress: after each batch the job's ``sessions_written`` of ``sessions_total`` (the
    count at the start) are stored through a database connection of its own
    (``measures.tasks.job_fields_writer``, as the import's progress), committed at once:
    the job's page sees them while this transaction is open, and the job row is not
    locked by it until the final update."""
    from .tasks import job_fields_writer

    # A job is looked up by id across organisations: the row fixes the organisation.
    job = ExportJob.dangerously_unscoped.select_related("organisation", "created_by").get(pk=job_id)
    if job.status in (ExportJob.Status.DONE, ExportJob.Status.FAILED):
        return str(job.status)
    ExportJob.dangerously_unscoped.filter(pk=job_id).update(
        status=ExportJob.Status.RUNNING, sessions_written=0, sessions_total=0
    )
    storage = job.file.storage
    name = ExportJob._meta.get_field("file").generate_filename(job, "export.csv")  # type: ignore[attr-defined]
    part = f"{name}.part"
    progress, close = job_fields_writer(ExportJob, job_id)
    counts = ExportCounts()
    try:
        with transaction.atomic():
            size = _write_chunks(
                storage.path(part),
                export_chunks(
                    actor=job.created_by,
                    organisation=job.organisation,
                    role=Role.SYSTEM_OWNER,
                    counts=counts,
                ),
                lambda: progress(sessions_written=counts.sessions, sessions_total=counts.total),
            )
            os.replace(storage.path(part), storage.path(name))
            ExportJob.dangerously_unscoped.filter(pk=job_id).update(
                status=ExportJob.Status.DONE,
                file=name,
                sessions=counts.sessions,
                clients=counts.clients,
                size=size,
                # Sessions written meanwhile are not in the file: done is the file's count.
                sessions_written=counts.sessions,
                sessions_total=counts.sessions,
                finished_at=timezone.now(),
            )
    except Exception as exc:
        # SECURITY: an exception's text may quote data (client codes): the log gets the
        # job id and the exception type only, the job a generic message.
        logger.error("Export job %s failed unexpectedly (%s)", job_id, type(exc).__name__)
        for path in (part, name):
            _delete_file(storage, path, job_id)
        export_fail(
            job_id,
            _(
                "The export stopped because of an unexpected error; nothing was "
                "exported. Please try again or contact the platform operator."
            ),
        )
        return str(ExportJob.Status.FAILED)
    finally:
        close()
    return str(ExportJob.Status.DONE)


def _write_chunks(path: str, chunks: Iterable[str], after_chunk: Callable[[], None]) -> int:
    """Write the chunks to a new file (UTF-8), calling ``after_chunk`` after each; returns
    the file's size in bytes. The storage is the file system (settings.STORAGES): the
    file is written and renamed under MEDIA_ROOT."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    size = 0
    with open(path, "xb") as fh:
        for chunk in chunks:
            data = chunk.encode("utf-8")
            fh.write(data)
            size += len(data)
            after_chunk()
    return size


def export_file_expire(job: ExportJob) -> None:
    """Delete one job's file (its time is up); the row keeps the counts."""
    if job.file and not _delete_file(job.file.storage, job.file.name, job.pk):
        return  # kept in the row: the next clean-up tries again (the download refuses it)
    ExportJob.dangerously_unscoped.filter(pk=job.pk).update(file="", file_deleted_at=timezone.now())
    job.file.name = ""  # type: ignore[assignment]
    job.file_deleted_at = timezone.now()


def export_files_expire(now: object = None) -> int:
    """Delete every export file written more than EXPORT_FILE_HOURS ago (all
    organisations: a nightly job); returns how many. Idempotent."""
    import datetime as dt

    now = now or timezone.now()
    cutoff = now - dt.timedelta(hours=settings.EXPORT_FILE_HOURS)  # type: ignore[operator]
    due = ExportJob.dangerously_unscoped.exclude(file="").filter(finished_at__lte=cutoff)
    count = 0
    for job in due.iterator():
        export_file_expire(job)
        count += 1
    # A file of a job that failed or never finished is not kept either.
    stale = ExportJob.dangerously_unscoped.exclude(file="").exclude(status=ExportJob.Status.DONE)
    for job in stale.filter(created_at__lte=cutoff).iterator():
        export_file_expire(job)
        count += 1
    return count + _orphans_delete(cutoff)


def _orphans_delete(cutoff: Any) -> int:
    """Delete the export files that no job names and that are older than the cutoff: a
    worker that died after writing its file and before its commit left one (the row
    rolled back, the file did not). Health data is not kept for want of a row."""
    from django.core.files.storage import default_storage

    try:
        _dirs, names = default_storage.listdir(EXPORT_DIR)
    except FileNotFoundError:
        return 0
    named = set(ExportJob.dangerously_unscoped.exclude(file="").values_list("file", flat=True))
    count = 0
    for name in names:
        path = f"{EXPORT_DIR}/{name}"
        if path in named or default_storage.get_modified_time(path) > cutoff:
            continue  # a job's file, or one being written now
        if _delete_file(default_storage, path, 0):
            count += 1
    return count


def _delete_file(storage: object, name: str, job_id: int) -> bool:
    try:
        storage.delete(name)  # type: ignore[attr-defined]
    except OSError:
        logger.error("Export job %s: its file could not be deleted", job_id)
        return False
    return True
