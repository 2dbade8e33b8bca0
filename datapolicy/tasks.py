"""Nightly data-policy jobs (Celery beat). They take no data and are idempotent."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(name="datapolicy.retention_nightly")
def retention_nightly() -> list[int]:
    """Apply every organisation's retention; returns the RetentionRun ids."""
    from .retention import retention_run_all

    return retention_run_all(timezone.localdate())


@shared_task(name="datapolicy.grant_permissions_cleanup")
def grant_permissions_cleanup_nightly() -> int:
    """Drop guardian rows of expired shares (access is refused without this anyway)."""
    from .models import Organisation
    from .services import grant_permissions_cleanup

    return sum(
        grant_permissions_cleanup(organisation=org)
        for org in Organisation.objects.filter(is_active=True)
    )
