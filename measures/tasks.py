"""Celery tasks of the measures app. Tasks take ids only and are idempotent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
from django.utils import timezone
from django.utils.translation import gettext as _

from .importer import import_sessions
from .models import ImportJob

logger = logging.getLogger(__name__)


@shared_task(name="measures.import_run")
def import_run(job_id: int) -> str:
    """Validate and import an uploaded file (all or nothing), recording progress on the
    job. A finished job is not run again, nor one that another worker is running (a
    session-level advisory lock); a job interrupted mid-way rolled back and can run again
    (re-import skips identical sessions). An unexpected error fails the job
    with a generic message instead of leaving it "validating" for ever."""
    # A job is looked up by id across organisations: the row fixes the organisation.
    jobs = ImportJob.dangerously_unscoped.select_related("organisation", "created_by")
    job = jobs.get(pk=job_id)
    if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
        return job.status
    if not _claim(job_id):
        # The same job runs in another worker (the broker delivered the message again,
        # e.g. after its visibility timeout): that run finishes it.
        logger.info("Import job %s runs elsewhere", job_id)
        return job.status
    try:
        job = jobs.get(pk=job_id)  # as the other run may have left it meanwhile
        if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
            return job.status
        return _run(job)
    except Exception as exc:
        # SECURITY: an exception's text may quote the file (client codes, scores): the
        # log gets the job id and the exception type only, the job a generic message.
        logger.error("Import job %s failed unexpectedly (%s)", job_id, type(exc).__name__)
        import_fail(
            job,
            _(
                "The import stopped because of an unexpected error; nothing was "
                "imported. Please try again or contact the platform operator."
            ),
        )
        return ImportJob.Status.FAILED
    finally:
        _release(job_id)


def queue_job(kind: str, job_id: int, send: Callable[[], Any], fail: Callable[[], None]) -> None:
    """Queue a job's task with ``send()``; while the broker (Redis) does not answer, log
    it (the job's kind and id, the error's type) and ``fail()`` the job at once, so that
    its page says why instead of a server error or a job that waits for ever."""
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    try:
        send()
    except (OperationalError, RedisError, OSError) as exc:
        logger.warning(
            "%s job %s not queued: the broker does not answer (%s)",
            kind,
            job_id,
            type(exc).__name__,
        )
        fail()


# pg_try_advisory_lock(JOB_LOCK_SPACE, job id), held by the session running the job:
# released when the run ends, or by the server when a crashed worker's connection
# closes (then the broker's redelivery may run the job again, see import_run).
JOB_LOCK_SPACE = 0x496D_704A


# The same for export jobs (measures.exports), whose ids are counted apart.
EXPORT_LOCK_SPACE = 0x4578_704A


def _claim(job_id: int, space: int = JOB_LOCK_SPACE) -> bool:
    if connection.vendor != "postgresql":
        return True  # embedded mode: tasks run inline, one at a time
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [space, job_id])
        return bool(cur.fetchone()[0])


def _release(job_id: int, space: int = JOB_LOCK_SPACE) -> None:
    if connection.vendor != "postgresql":
        return
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s, %s)", [space, job_id])
    except DatabaseError:  # the connection is gone, and the lock with it
        logger.warning("Job %s: its lock could not be released", job_id)


def job_fields_writer(
    model: type[Any], job_id: int
) -> tuple[Callable[..., None], Callable[[], None]]:
    """(write, close): ``write(field=value, ...)`` stores a job's progress fields at once,
    for the job's page to read while the job's work is still in its transaction.

    Progress written through that transaction's connection would stay invisible to the
    polling page until the end. On PostgreSQL ``write`` therefore uses a database
    connection of its own (autocommit); elsewhere (SQLite, embedded mode: one writer at
    a time) the job's connection. Progress only informs: when its row stays locked (a
    caller whose own transaction changed the row) or the write fails, it is logged (the
    job's id) and the work goes on."""
    table = model._meta.db_table
    own = (
        connections.create_connection(DEFAULT_DB_ALIAS)
        if connection.vendor == "postgresql"
        else None
    )
    if own is not None:
        with own.cursor() as cur:
            cur.execute("SET lock_timeout = '2s'")

    def write(**fields: Any) -> None:
        if own is None:
            model.dangerously_unscoped.filter(pk=job_id).update(**fields)
            return
        columns = ", ".join(f"{model._meta.get_field(name).column} = %s" for name in fields)
        try:
            with own.cursor() as cur:
                cur.execute(
                    f"UPDATE {table} SET {columns} WHERE id = %s",  # noqa: S608
                    [*fields.values(), job_id],
                )
        except DatabaseError as exc:
            logger.warning("Job %s: its progress was not stored (%s)", job_id, type(exc).__name__)

    def close() -> None:
        if own is not None:
            own.close()

    return write, close


def job_progress(job_id: int) -> tuple[Callable[[str, int, int], None], Callable[[], None]]:
    """(progress callback, close) that store an import's progress on its job at once
    (``job_fields_writer``)."""
    write, close = job_fields_writer(ImportJob, job_id)

    def progress(stage: str, done: int, total: int) -> None:
        status = (
            ImportJob.Status.VALIDATING if stage == "validating" else ImportJob.Status.IMPORTING
        )
        write(status=str(status), processed_lines=done, total_lines=total)

    return progress, close


def _run(job: ImportJob) -> str:
    job_id = job.pk
    ImportJob.dangerously_unscoped.filter(pk=job_id).update(status=ImportJob.Status.VALIDATING)
    with job.file.open("rb") as fh:
        data = fh.read()
    progress, close = job_progress(job_id)
    try:
        result = import_sessions(
            actor=job.created_by, organisation=job.organisation, data=data, progress=progress
        )
    finally:
        close()
    ImportJob.dangerously_unscoped.filter(pk=job_id).update(
        status=ImportJob.Status.DONE if result.ok else ImportJob.Status.FAILED,
        total_lines=result.lines,
        processed_lines=result.lines,
        errors=[e.as_dict() for e in result.errors],
        result=result.summary(),
        finished_at=timezone.now(),
    )
    _discard_upload(job)
    return ImportJob.Status.DONE if result.ok else ImportJob.Status.FAILED


def import_fail(job: ImportJob, message: str) -> None:
    """End a job that could not run: failed, with one message of the platform's (never
    the file's), and its upload deleted."""
    ImportJob.dangerously_unscoped.filter(pk=job.pk).update(
        status=ImportJob.Status.FAILED,
        errors=[{"line": 0, "column": "", "message": message}],
        finished_at=timezone.now(),
    )
    _discard_upload(job)


def _discard_upload(job: ImportJob) -> None:
    # SECURITY: the upload holds client codes and scores; once processed (or failed)
    # only the summary and the error report are kept.
    if job.file:
        try:
            job.file.delete(save=False)
        except OSError:
            logger.error("Import job %s: the uploaded file could not be deleted", job.pk)
    ImportJob.dangerously_unscoped.filter(pk=job.pk).update(file="")


@shared_task(name="measures.export_run")
def export_run(job_id: int) -> str:
    """Write an export job's CSV file (measures.exports.export_job_run). The job's id is
    its only argument; a finished job is not run again, nor one that another worker is
    running (an advisory lock, as for imports): the access log gets one export's entries."""
    from .exports import export_job_run

    if not _claim(job_id, EXPORT_LOCK_SPACE):
        logger.info("Export job %s runs elsewhere", job_id)
        return "running"
    try:
        return export_job_run(job_id)
    finally:
        _release(job_id, EXPORT_LOCK_SPACE)
