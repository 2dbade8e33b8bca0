"""Celery tasks of the statistics (ids only, idempotent, acks_late from settings)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

DEBOUNCE_KEY = "stats:recompute-queued"
DEBOUNCE_SECONDS = 3


def queue_name() -> str:
    return str(getattr(settings, "STATS_TASK_QUEUE", "celery"))


def enqueue_recompute() -> bool:
    """Queue ONE recompute for a burst of changes: the first change within the debounce
    window queues the task (with a short countdown); later ones only add dirty marks,
    which the queued task picks up. Returns whether a task was queued.

    Redis down (the cache's lock or the broker): nothing is queued and the change that
    caused it still succeeds (this runs after its commit); its dirty marks stay in the
    database for the next queued recompute, and the nightly one recomputes everything."""
    try:
        if not cache.add(DEBOUNCE_KEY, 1, timeout=DEBOUNCE_SECONDS * 10):
            return False
        countdown = 0 if settings.CELERY_TASK_ALWAYS_EAGER else DEBOUNCE_SECONDS
        stats_recompute_dirty_task.apply_async(countdown=countdown, queue=queue_name())
    except (RedisError, OSError, OperationalError) as exc:
        logger.warning(
            "statistics recompute not queued: Redis (REDIS_URL) does not answer (%s); "
            "the changes wait for the next recompute",
            type(exc).__name__,
        )
        with contextlib.suppress(RedisError, OSError):
            cache.delete(DEBOUNCE_KEY)  # a later change may queue it again
        return False
    return True


@shared_task(acks_late=True, ignore_result=True)
def stats_recompute_dirty_task() -> int:
    from .services import stats_recompute_dirty

    # Release the debounce lock before reading the marks: a change after this point
    # queues a new task, a change before it is among the marks read below.
    cache.delete(DEBOUNCE_KEY)
    return stats_recompute_dirty()


@shared_task(acks_late=True, ignore_result=True)
def stats_recompute_all_task() -> int:
    from .services import stats_recompute_all

    return stats_recompute_all()


@shared_task(acks_late=True, ignore_result=True)
def stats_publish_task() -> int:
    from .services import stats_publish_closed_month

    return stats_publish_closed_month()


@shared_task(acks_late=True, ignore_result=True)
def stats_refresh_alerts_task() -> int:
    from .services import stats_refresh_alerts_all

    return stats_refresh_alerts_all()


def on_episode_data_changed(
    sender: Any = None,
    *,
    organisation_id: int,
    unit_ids: Any = (),
    therapist_ids: Any = (),
    **kwargs: Any,
) -> None:
    """Receiver of measures.signals.episode_data_changed (sent after commit)."""
    from .services import stats_mark_dirty

    stats_mark_dirty(
        organisation_id=organisation_id, unit_ids=unit_ids or (), therapist_ids=therapist_ids or ()
    )
    enqueue_recompute()
