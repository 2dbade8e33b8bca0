"""Counters that every web process shares, incremented atomically.

They live in Django's cache: Redis in production (``REDIS_URL``), where ``INCR`` is one
atomic command, so two requests at the same moment always get two different values;
embedded mode's local-memory cache increments under a lock within its one process. A
count read from the session instead (read, add one, write back at the end of the
request) lets requests that run at the same time each start from the old value.

When the cache does not answer (Redis down or unreachable), every function here raises
:class:`CounterUnavailable` after one operator-facing warning in the log (the operation
and the error's type; never the key); the callers decide what a limit means without its
count — the limits that guard a secret refuse rather than allow (fail closed).

Keys hold no personal data: callers pass ids or a hash, never a name or a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

PREFIX = "fit:count:"
T = TypeVar("T")


class CounterUnavailable(Exception):
    """The shared counters' store (Redis) does not answer."""


def _guarded(operation: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except (RedisError, OSError) as exc:
        # SECURITY: no key in the message (a user id or a session hash); the error's
        # type only: its text names the Redis host.
        logger.warning(
            "shared counters unavailable: %s failed (%s); the cache (REDIS_URL) does not answer",
            operation,
            type(exc).__name__,
        )
        raise CounterUnavailable(operation) from exc


def counter_incr(key: str, *, timeout: int) -> int:
    """Add one to the counter ``key`` and return the new value. A counter starts at the
    first increment and is gone ``timeout`` seconds later (increments do not extend it)."""
    full = PREFIX + key

    def incr() -> int:
        for _ in range(3):
            cache.add(full, 0, timeout)
            try:
                return int(cache.incr(full))
            except ValueError:
                # Expired between add and incr: start it again.
                continue
        raise RuntimeError("the counter could not be incremented")

    return _guarded("increment", incr)


def counter_value(key: str) -> int:
    return _guarded("read", lambda: int(cache.get(PREFIX + key) or 0))


def counter_clear(key: str) -> None:
    _guarded("clear", lambda: cache.delete(PREFIX + key))
