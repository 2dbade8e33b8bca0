"""The cache of what can be computed again: a Redis that does not answer is a miss.

The dashboards keep their suppressed figures and rendered panels in the cache
(``stats.selectors``, ``{% cache %}`` in templates/stats/_panels.html). Those are only
copies: without Redis the page computes them again, more slowly, instead of failing
with a server error. :func:`page_cache` is that cache ("pages", also Django's
"template_fragments"): django-redis with ``IGNORE_EXCEPTIONS`` (settings), whose reads
miss and whose writes are dropped while Redis fails. The default cache stays Django's
strict one, because the shared counters (``datapolicy.counters``) must know when they
cannot count (docs/operations.md, "While Redis does not answer").

django-redis logs every ignored failure with its traceback; :class:`OncePerMinute`
(attached to its logger in ``LOGGING``) turns that into one warning a minute per process
that names the error's type only.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import BaseCache, caches

ALIAS = "pages"
LOGGER = "fitplatform.cache"  # settings.DJANGO_REDIS_LOGGER


def page_cache() -> BaseCache:
    """The "pages" cache where configured (settings), else the default one (a test's own
    CACHES)."""
    return caches[ALIAS] if ALIAS in settings.CACHES else caches["default"]


class OncePerMinute(logging.Filter):
    """Let one record through a minute; rewrite it to the failure's type, no traceback.

    No key and no exception text in the message: keys name snapshots, not people, but
    the rule is simple — the error's type only."""

    every = 60.0  # seconds

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self._last = float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self._last < self.every:
            return False
        self._last = now
        exc = record.exc_info[1] if record.exc_info else None
        cause = exc.__cause__ if exc is not None and exc.__cause__ is not None else exc
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg = "page cache unavailable (%s); pages are computed without it"
        record.args = (type(cause).__name__ if cause is not None else "unknown",)
        record.exc_info = record.exc_text = None
        return True
