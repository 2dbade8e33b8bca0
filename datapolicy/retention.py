"""Retention: inactive episodes past the organisation's retention are deleted.

We delete rather than anonymise: an episode's sessions and scores are health data tied
to a pseudonymous client code, and a "anonymised" copy of a single course of treatment
can still be recognised. Deleting the episode cascades to its sessions, scores, drafts,
grants and guardian rows (clients.EpisodeUserObjectPermission has a direct foreign key);
a client left without episodes is deleted with its consents. The access log keeps only
numeric ids and is itself kept (it is the record that the deletion happened): every
deleted client gets a "delete" entry by "retention" (with a keyed hash of the client's
code, so that the log is still found by the code, which is gone), and so does every
deleted episode of a client who keeps another episode (object "episode", the client's
id).

An episode is past retention when its last activity (the latest of its last session,
its closing date and its start) is more than ``retention_days`` before ``today`` and it
is inactive (closed, or without a session within the inactivity window, which is never
longer than retention: see ``organisation_policy_update``; the job itself also applies
at least the inactivity window, ``effective_retention_days``). Runs work in batches, are
idempotent (a second run finds nothing) and record counts only in a RetentionRun.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import DateField, Max, Value
from django.db.models.functions import Coalesce, Greatest

from .models import AccessLog, Organisation, RetentionRun
from .services import Action, access_log_write, client_code_hash

BATCH_SIZE = 500


def effective_retention_days(organisation: Organisation) -> int | None:
    """The retention the job applies: the setting, but never shorter than the
    inactivity window. ``organisation_policy_update`` refuses a shorter one; this guard
    holds even if a bad value reached the database another way (an active episode,
    one with a session within the inactivity window, is never past retention)."""
    if not organisation.retention_days:
        return None
    return max(organisation.retention_days, organisation.inactivity_days)


def retention_cutoff(organisation: Organisation, today: dt.date) -> dt.date | None:
    days = effective_retention_days(organisation)
    if days is None:
        return None
    return today - dt.timedelta(days=days)


def episodes_past_retention(*, organisation: Organisation, today: dt.date) -> Any:
    """Ids of the organisation's episodes whose last activity is before the cutoff."""
    from clients.models import Episode

    cutoff = retention_cutoff(organisation, today)
    if cutoff is None:
        return Episode.objects.for_org(organisation).none()
    far_past = Value(dt.date(1900, 1, 1), output_field=DateField())
    return (
        Episode.objects.for_org(organisation)
        .annotate(
            last_activity=Greatest(
                Coalesce(Max("sessions__date"), far_past),
                Coalesce("closed_on", far_past),
                "started_on",
            )
        )
        .filter(last_activity__lt=cutoff)
        .order_by("pk")
    )


def retention_run(
    *,
    organisation: Organisation,
    today: dt.date,
    actor: Any = None,
    batch_size: int = BATCH_SIZE,
    role: str = "",
    request: Any = None,
) -> RetentionRun:
    """Delete what is past retention, in batches; record and announce what was done.

    A manual run (``actor``, from the settings page) is logged with the role it was run
    in and the request's address and path."""
    from clients.models import Client, Episode

    cutoff = retention_cutoff(organisation, today)
    episodes_deleted = clients_deleted = batches = 0
    unit_ids: set[int] = set()
    therapist_ids: set[int] = set()
    if cutoff is not None:
        while True:
            batch = list(
                episodes_past_retention(organisation=organisation, today=today).values_list(
                    "pk", "unit_id", "therapist_id", "client_id"
                )[:batch_size]
            )
            if not batch:
                break
            batches += 1
            with transaction.atomic():
                ids = [row[0] for row in batch]
                client_ids = {row[3] for row in batch}
                Episode.objects.for_org(organisation).filter(pk__in=ids).delete()
                episodes_deleted += len(ids)
                # The codes are read before the deletion: the erasure entry keeps a
                # keyed hash of each (never the code), so the log is found by code.
                orphans = dict(
                    Client.objects.for_org(organisation)
                    .filter(pk__in=client_ids, episodes__isnull=True)
                    .values_list("pk", "code")
                )
                orphan_ids = sorted(orphans)
                if orphan_ids:
                    Client.objects.for_org(organisation).filter(pk__in=orphan_ids).delete()
                    clients_deleted += len(orphan_ids)
                # A client who keeps another episode gets an entry per deleted episode,
                # so that their log export (right of access) shows that erasure too.
                _log_erasures(
                    organisation,
                    [("client", c, c, orphans[c]) for c in orphan_ids]
                    + [("episode", row[0], row[3], None) for row in batch if row[3] not in orphans],
                )
            unit_ids.update(row[1] for row in batch)
            therapist_ids.update(row[2] for row in batch)
    with transaction.atomic():
        run = RetentionRun.objects.create(
            organisation=organisation,
            cutoff=cutoff or today,
            episodes_deleted=episodes_deleted,
            clients_deleted=clients_deleted,
            details={
                "retention_days": organisation.retention_days,
                "batches": batches,
                "mode": "delete",
                "manual": actor is not None,
            },
        )
        if actor is not None:
            access_log_write(
                actor=actor,
                organisation=organisation,
                action=Action.RETENTION,
                object_type="retentionrun",
                object_id=run.pk,
                role=role,
                request=request,
            )
        if episodes_deleted:
            _announce(organisation.pk, sorted(unit_ids), sorted(therapist_ids))
    return run


def _log_erasures(
    organisation: Organisation, erased: list[tuple[str, int, int, str | None]]
) -> None:
    """One access-log entry per deleted client, and per deleted episode of a client who
    keeps another one, so that the client's log export (right of access) shows the
    erasure. ``erased``: (object type, object id, client id, the deleted client's code or
    None). Written in bulk (inserts only: the append-only guard in AccessLog.save
    concerns updates); ids only, by "retention".

    SECURITY: a deleted client's entry keeps a keyed hash of organisation and code
    (``client_code_hash``), never the code: the data-policy admin can still answer "who
    looked at client X" by typing X, and the log holds no pseudonym in clear."""
    if not erased:
        return
    AccessLog.objects.bulk_create(
        [
            AccessLog(
                organisation=organisation,
                user=None,
                username="retention",
                role="",
                action=Action.DELETE,
                object_type=object_type,
                object_id=object_id,
                client_id=client_id,
                client_code_hash=(
                    client_code_hash(organisation_id=organisation.pk, code=code)
                    if code is not None
                    else None
                ),
            )
            for object_type, object_id, client_id, code in erased
        ],
        batch_size=BATCH_SIZE,
    )


def _announce(organisation_id: int, unit_ids: list[int], therapist_ids: list[int]) -> None:
    """Statistics snapshots are recomputed afterwards: the same signal every change of
    episode data sends (stats listens and queues a de-duplicated recompute)."""
    from measures.signals import episode_data_changed

    transaction.on_commit(
        lambda: episode_data_changed.send(
            sender=RetentionRun,
            organisation_id=organisation_id,
            unit_ids=unit_ids,
            therapist_ids=therapist_ids,
        )
    )


def retention_run_all(today: dt.date) -> list[int]:
    """The nightly job: every active organisation with a retention setting."""
    runs = []
    for org in Organisation.objects.filter(is_active=True, retention_days__isnull=False):
        runs.append(retention_run(organisation=org, today=today).pk)
    return runs
