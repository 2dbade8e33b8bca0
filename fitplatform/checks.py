"""Deployment checks of our own (`manage.py check --deploy`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.http.request import validate_host

from fitplatform.settings.env import base_url_problem


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


@register(Tags.security, deploy=True)
def base_url_configured(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Links in account e-mails should lead to the platform's configured address
    (DJANGO_BASE_URL), not to whichever allowed host the request that caused them used."""
    base = getattr(settings, "FITPLATFORM_BASE_URL", "")
    if not base:
        if settings.DEBUG:
            return []
        return [
            Warning(
                "DJANGO_BASE_URL is not set: the links in password e-mails take the address "
                "of the request that asked for them.",
                hint="Set DJANGO_BASE_URL to the platform's address, e.g. https://fit.example.dk.",
                id="fitplatform.W002",
            )
        ]
    problem = base_url_problem(base, require_https=not settings.DEBUG)
    if problem:
        return [Error(f"DJANGO_BASE_URL {problem}.", id="fitplatform.E002")]
    host = urlsplit(base).hostname or ""
    if not validate_host(f"[{host}]" if ":" in host else host, settings.ALLOWED_HOSTS):
        return [
            Warning(
                "DJANGO_BASE_URL's host is not in DJANGO_ALLOWED_HOSTS: the links in password "
                "e-mails would be refused (Bad Request).",
                id="fitplatform.W003",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def allowed_hosts_named(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A catch-all DJANGO_ALLOWED_HOSTS lets any Host header through: links the platform
    builds from the request (API pagination, e-mails without DJANGO_BASE_URL) could
    then point at another site."""
    if not settings.DEBUG and "*" in settings.ALLOWED_HOSTS:
        return [
            Error(
                "DJANGO_ALLOWED_HOSTS contains '*': name the platform's host names.",
                hint="e.g. DJANGO_ALLOWED_HOSTS=fit.example.dk (the health probes need no "
                "entry: they answer before the host check).",
                id="fitplatform.E004",
            )
        ]
    return []


# FITPLATFORM limits that must be a positive whole number (a setting written in a
# settings module rather than read through env_int, which refuses a bad value itself).
POSITIVE_LIMITS = {
    "RESET_MAILS_PER_HOUR": "DJANGO_RESET_MAILS_PER_HOUR",
    "CLIENT_MODE_MAX_PIN_ATTEMPTS": None,
}


@register()
def limits_positive(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A limit of 0, a negative one or a non-number would refuse every mail or unlock,
    or fail at the first request: refuse it at start-up (every manage.py command)."""
    config = getattr(settings, "FITPLATFORM", {}) or {}
    errors: list[CheckMessage] = []
    for name, env in POSITIVE_LIMITS.items():
        if name not in config:
            continue
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            source = f" (environment {env})" if env else ""
            errors.append(
                Error(
                    f"FITPLATFORM[{name!r}]{source} is {value!r}: it must be a positive "
                    "whole number.",
                    id="fitplatform.E005",
                )
            )
    return errors
