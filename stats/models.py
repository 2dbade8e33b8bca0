"""Statistics snapshots: computed figures per scope and reference date (no client data).

A snapshot holds aggregates only (unrounded, unsuppressed); small-cell suppression is
applied when a snapshot is read, per the caller's role (stats.selectors), because a
therapist sees their own figures unsuppressed while leaders see anonymised ones.
"""

from __future__ import annotations

from django.db import models


class ScopeKind(models.TextChoices):
    THERAPIST = "therapist", "therapist"
    UNIT = "unit", "unit"
    ORGANISATION = "organisation", "organisation"
    PLATFORM = "platform", "platform"


CURRENT = "current"  # period key of the snapshot kept up to date (as_of = today)


class StatsSnapshot(models.Model):
    """One scope's figures as of one reference date, for one age-group filter.

    Not a TenantModel: the platform scope has no organisation, and the rows hold only
    aggregates; every read goes through stats.selectors which checks the scope against
    the caller's organisation and roles.
    """

    scope_kind = models.CharField(max_length=12, choices=ScopeKind.choices)
    scope_id = models.BigIntegerField()  # therapist user id, unit id, organisation id, 0
    # 0 for the platform scope (a plain id, so that the unique constraint holds for it).
    organisation_id = models.BigIntegerField(db_index=True)
    # "current" (as_of = the day of computation, kept fresh) or the ISO date of a fixed
    # reference date (end of a month/quarter/year, or an API as_of).
    period_key = models.CharField(max_length=16, default=CURRENT)
    age_group = models.CharField(max_length=8, default="all")  # all | adult | youth | child
    as_of = models.DateField()
    computed_at = models.DateTimeField()
    payload = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope_kind", "organisation_id", "scope_id", "period_key", "age_group"],
                name="stats_snapshot_unique_scope",
            )
        ]

    def __str__(self) -> str:
        return f"{self.scope_kind}:{self.scope_id} {self.period_key}/{self.age_group}"


class DirtyScope(models.Model):
    """A scope whose current snapshot is stale (set after commit, claimed by the task).

    The task reads the marks, computes, and deletes only the marks it has read (same
    ``marked_at``) in the transaction that writes the snapshots: a worker that dies
    mid-way leaves the marks, so the next run or the nightly job recomputes them, and a
    mark set again during the computation survives for the next run.
    """

    scope_kind = models.CharField(max_length=12, choices=ScopeKind.choices)
    scope_id = models.BigIntegerField()
    organisation_id = models.BigIntegerField()
    marked_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope_kind", "organisation_id", "scope_id"], name="stats_dirty_unique"
            )
        ]

    def __str__(self) -> str:
        return f"dirty {self.scope_kind}:{self.scope_id}"


class RecomputeRun(models.Model):
    """One run of a recompute (counted by the burst test, shown to operators)."""

    kind = models.CharField(max_length=12)  # incremental | full | on_demand
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True)
    scopes = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.kind} run {self.started_at:%Y-%m-%d %H:%M:%S}"


class Publication(models.Model):
    """An organisation's (or, with ``organisation_id`` 0, the platform's) anonymised
    figures at one closed month-end, published once (stats.publications).

    Created the first time the figures of that reference date are shown to anyone; from
    then on the unit, organisation and platform snapshots of that date are frozen (never
    recomputed), and the suppression of the figures takes every earlier publication of
    the same organisation into account. ``fingerprint`` is internal (keyed digests of the
    episodes and of their state, never episode ids or scores) and never shown or exported.
    """

    organisation_id = models.BigIntegerField()  # 0 = the platform
    period_key = models.CharField(max_length=16)  # the ISO month-end
    as_of = models.DateField()
    created_at = models.DateTimeField()
    episodes = models.PositiveIntegerField(default=0)
    fingerprint = models.BinaryField()
    # What this publication holds back against the earlier ones, per k (computed once: the
    # earlier publications never change): {"5": [[node, age, [change columns]], ...]}.
    held = models.JSONField(default=dict)
    # The organisation's unit tree when published ({unit id: parent id}): an episode's
    # place at this date is worked out with it, even after units are moved.
    unit_tree = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation_id", "period_key"], name="stats_publication_unique"
            )
        ]
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"publication {self.organisation_id}@{self.period_key}"
