"""Counters that every web process shares, incremented atomically.

They live in Django's cache: Redis in production (``REDIS_URL``), where ``INCR`` is one
atomic command, so two requests at the same moment always get two different values;
embedded mode's local-memory cache increments under a lock within its one process. A
count read from the session instead (read, add one, write back at the end of the
request) lets requests that run at the same time each start from the old value.

Keys hold no personal data: callers pass ids or a hash, never a name or a secret.
"""

from __future__ import annotations

from django.core.cache import cache

PREFIX = "fit:count:"


def counter_incr(key: str, *, timeout: int) -> int:
    """Add one to the counter ``key`` and return the new value. A counter starts at the
    first increment and is gone ``timeout`` seconds later (increments do not extend it)."""
    full = PREFIX + key
    for _ in range(3):
        cache.add(full, 0, timeout)
        try:
            return int(cache.incr(full))
        except ValueError:
            # Expired between add and incr: start it again.
            continue
    raise RuntimeError("the counter could not be incremented")


def counter_value(key: str) -> int:
    return int(cache.get(PREFIX + key) or 0)


def counter_clear(key: str) -> None:
    cache.delete(PREFIX + key)
