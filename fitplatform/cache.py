"""The cache of what can be computed again: a Redis that does not answer is a miss.

The dashboards keep their suppressed figures and rendered panels in the cache
(``stats.selectors``, ``{% cache %}`` in templates/stats/_panels.html). Those are only
copies: without Redis the page computes them again, more slowly, instead of failing
with a server error. :func:`page_cache` is that cache ("pages", also Django's
"template_fragments"); the default cache stays strict, because the shared counters
(``datapolicy.counters``) must know when they cannot count (docs/operations.md, "While
Redis does not answer").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
T = TypeVar("T")
ALIAS = "pages"
_WARN_EVERY = 60.0  # seconds: one warning a minute per process, not one per request
_last_warning = 0.0


def page_cache() -> BaseCache:
    """The "pages" cache where configured (settings), else the default one (a test's own
    CACHES)."""
    return caches[ALIAS] if ALIAS in settings.CACHES else caches["default"]


def _tolerant(operation: str, call: Callable[[], T], fallback: T) -> T:
    global _last_warning
    try:
        return call()
    except (RedisError, OSError) as exc:
        now = time.monotonic()
        if now - _last_warning >= _WARN_EVERY:
            _last_warning = now
            # No key in the message: keys name snapshots, not people, but the rule is
            # simple — the operation and the error's type only.
            logger.warning(
                "page cache unavailable: %s failed (%s); pages are computed without it",
                operation,
                type(exc).__name__,
            )
        return fallback


class PageCache(RedisCache):
    """RedisCache whose reads miss and whose writes are dropped while Redis fails."""

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return _tolerant("get", lambda: super(PageCache, self).get(key, default, version), default)

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        return _tolerant("get_many", lambda: super(PageCache, self).get_many(keys, version), {})

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        _tolerant("set", lambda: super(PageCache, self).set(key, value, timeout, version), None)

    def set_many(
        self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        return _tolerant(
            "set_many", lambda: super(PageCache, self).set_many(data, timeout, version), []
        )

    def delete(self, key: Any, version: int | None = None) -> bool:
        return _tolerant("delete", lambda: super(PageCache, self).delete(key, version), False)
