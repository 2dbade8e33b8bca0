"""Signals other apps listen to. Carry ids only, never data."""

from django.dispatch import Signal

# Sent after commit when sessions/scores/episodes changed. kwargs: organisation_id,
# unit_ids, therapist_ids. ``stats`` queues a de-duplicated recompute of those scopes.
episode_data_changed = Signal()
