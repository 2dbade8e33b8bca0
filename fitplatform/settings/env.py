"""Typed environment helpers that fail loudly on bad values (healthchecks style).

django-environ parses URLs; these wrappers make a malformed value an error at start-up
instead of a silent default.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

_env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"Environment variable {name} is required")
    return value


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, 1/0)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_db(name: str, default: str) -> dict:
    raw = os.environ.get(name) or default
    try:
        config = _env.db_url_config(raw)
    except Exception as exc:  # django-environ raises several types
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from None
    if "." not in str(config.get("ENGINE", "")):
        raise ImproperlyConfigured(f"{name}: unsupported database scheme in {raw.split(':')[0]!r}")
    return config


def env_email(name: str, default: str) -> dict:
    """Django's EMAIL_* settings from an e-mail URL (smtp://, smtp+tls://, consolemail://,
    dummymail://, ...), as django-environ reads it."""
    raw = os.environ.get(name) or default
    try:
        config = _env.email_url_config(raw)
    except Exception as exc:  # django-environ raises several types
        raise ImproperlyConfigured(f"{name} is not a valid e-mail URL: {exc}") from None
    if "." not in str(config.get("EMAIL_BACKEND", "")):
        raise ImproperlyConfigured(f"{name}: unsupported e-mail scheme in {raw.split(':')[0]!r}")
    return config


def base_url_problem(value: str, *, require_https: bool) -> str | None:
    """What is wrong with ``value`` as the platform's own address (scheme and host, as
    ``https://fit.example.dk``), or None. Shared by :func:`env_base_url` (start-up) and
    the deployment check ``fitplatform.E002`` (a value set another way)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a port that is no number)
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be scheme and host, e.g. https://fit.example.dk"
    if require_https and parts.scheme != "https":
        return "must start with https:// (http:// only with DJANGO_DEBUG=true)"
    if parts.username is not None or parts.password is not None:
        return "must not contain a user name or password"
    if parts.path not in ("", "/") or parts.query or parts.fragment or value.endswith(("?", "#")):
        return "must be scheme and host only, without a path, query or fragment"
    return None


def env_base_url(name: str, *, require_https: bool) -> str:
    """The platform's own address (``https://host[:port]``), normalised without a trailing
    slash; "" when unset. A value with a path, query, user name, or (when
    ``require_https``) plain http stops start-up."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return ""
    problem = base_url_problem(raw, require_https=require_https)
    if problem:
        raise ImproperlyConfigured(f"{name}={raw!r} {problem}")
    parts = urlsplit(raw)
    return f"{parts.scheme}://{parts.netloc.lower()}"
