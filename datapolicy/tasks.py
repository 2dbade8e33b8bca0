"""Data-policy jobs: nightly ones (Celery beat), which take no data and are idempotent,
and the e-mails with a link to choose a password (user ids only)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(name="datapolicy.retention_nightly")
def retention_nightly() -> list[int]:
    """Apply every organisation's retention; returns the RetentionRun ids. First the
    system owner's export files past ``EXPORT_FILE_HOURS`` are deleted (health data at
    rest; measures.exports), whatever happens to the retention runs after."""
    from measures.exports import export_files_expire

    from .retention import retention_run_all

    export_files_expire()
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


@shared_task(name="datapolicy.password_link_mail")
def password_link_mail(
    kind: str,
    user_ids: list[int],
    organisation_id: int | None,
    domain: str,
    use_https: bool,
    language: str,
) -> int:
    """Send users their one-time link to choose a password (datapolicy.accounts)."""
    from .accounts import link_mail_send
    from .models import Organisation

    name = Organisation.objects.get(pk=organisation_id).name if organisation_id else ""
    return link_mail_send(
        kind=kind,
        user_ids=user_ids,
        organisation_name=name,
        domain=domain,
        use_https=use_https,
        language=language,
    )
