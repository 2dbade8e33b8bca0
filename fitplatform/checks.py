"""Deployment checks of our own (`manage.py check --deploy`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def email_configured(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Links to choose a password go by e-mail; production without EMAIL_URL sends none."""
    if settings.EMAIL_BACKEND.endswith(("dummy.EmailBackend", "console.EmailBackend")):
        return [
            Warning(
                "No e-mail is sent: set EMAIL_URL (e.g. smtp+tls://user:password@host:587).",
                hint="Users who forgot their password, and new users, get their link by e-mail.",
                id="fitplatform.W001",
            )
        ]
    return []
