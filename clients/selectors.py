"""Read side for clients and episodes. Every selector starts from a scoped query."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, DecimalField, F, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from datapolicy.models import Organisation

from .models import Episode

# Score totals as decimals with one decimal (SQLite would otherwise return floats).
TOTAL: DecimalField = DecimalField(max_digits=3, decimal_places=1)


def caseload(
    *,
    therapist: Any,
    organisation: Organisation,
    status: str = "active",
    search: str = "",
    as_of: dt.date | None = None,
) -> QuerySet[Episode]:
    """The therapist's own episodes with the figures the caseload shows (one query).

    ``status``: "active" (open and seen within the inactivity window), "inactive"
    (closed, or not seen for longer), or "all". Assumes ``therapist`` acts for
    themselves: scoped to episodes where they are the therapist.
    """
    from measures.models import Score

    as_of = as_of or timezone.localdate()
    latest = (
        Score.objects.for_org(organisation)
        .filter(session__episode=OuterRef("pk"))
        .order_by("-session__number")
    )
    qs = (
        Episode.objects.for_org(organisation)
        .filter(therapist=therapist)
        .select_related("client", "unit")
        .annotate(
            n_sessions=Count("sessions", distinct=True),
            last_session_on=Max("sessions__date"),
            # A new episode without sessions counts as seen on its start date.
            last_activity=Coalesce(Max("sessions__date"), F("started_on")),
            latest_ors=Subquery(
                latest.filter(kind="outcome").values("total")[:1], output_field=TOTAL
            ),
            latest_srs=Subquery(
                latest.filter(kind="alliance").values("total")[:1], output_field=TOTAL
            ),
        )
    )
    window_start = as_of - dt.timedelta(days=organisation.inactivity_days)
    if status == "active":
        qs = qs.filter(status=Episode.Status.OPEN, last_activity__gte=window_start)
    elif status == "inactive":
        qs = qs.filter(Q(status=Episode.Status.CLOSED) | Q(last_activity__lt=window_start))
    if search:
        qs = qs.filter(client__code__icontains=search.strip())
    return qs.order_by("client__code")


def transfer_candidates(*, episode: Episode) -> list[Any]:
    """Active therapists of the episode's unit other than its current therapist."""
    from datapolicy.models import Membership, Role

    memberships = (
        Membership.objects.for_org(episode.organisation_id)
        .filter(unit=episode.unit, role=Role.THERAPIST, is_active=True)
        .exclude(user_id=episode.therapist_id)
        .select_related("user")
        .order_by("user__first_name", "user__last_name", "user__username")
    )
    return [m.user for m in memberships]


def episode_sessions(*, episode: Episode) -> list[Any]:
    """The episode's sessions, newest first, each with ``ors``/``srs`` Score or None."""
    from measures.models import Session

    sessions = list(
        Session.objects.for_org(episode.organisation_id)
        .filter(episode=episode)
        .prefetch_related("scores")
        .order_by("-number")
    )
    for s in sessions:
        by_kind = {score.kind: score for score in s.scores.all()}
        s.ors = by_kind.get("outcome")  # type: ignore[attr-defined]
        s.srs = by_kind.get("alliance")  # type: ignore[attr-defined]
        s.srs_without_ors = s.srs is not None and s.ors is None  # type: ignore[attr-defined]
    return sessions


def own_clients(*, therapist: Any, organisation: Organisation | int) -> QuerySet:
    """Clients with at least one episode of ``therapist``: those they may act for.

    SECURITY: a supervision grant lets its holder *read* an episode; it never lets them
    change anything, so write paths use this, not ``Client.objects.for_user``.
    """
    from .models import Client

    return Client.objects.for_org(organisation).filter(episodes__therapist=therapist).distinct()


def open_episode_counts(
    *, organisation: Any, unit_ids: set[int] | None, therapist_ids: set[int] | None = None
) -> dict[tuple[int, int], int]:
    """Open episodes per (therapist, unit), one query: in ``unit_ids`` (``None``: every
    unit of the organisation), of ``therapist_ids`` if given. Counts only, no clients."""
    counts = (
        Episode.objects.for_org(organisation)
        .filter(status=Episode.Status.OPEN)
        .values("therapist_id", "unit_id")
        .annotate(n=Count("id"))
    )
    if unit_ids is not None:
        counts = counts.filter(unit_id__in=unit_ids)
    if therapist_ids is not None:
        counts = counts.filter(therapist_id__in=therapist_ids)
    return {(int(r["therapist_id"]), int(r["unit_id"])): int(r["n"]) for r in counts}


@dataclass
class HandoverRow:
    """A therapist who has left a unit but still has open episodes there: how many (no
    client codes), who in the unit could take them and how many open episodes each of
    those has there now (``receiver_open``, by user id), and ``form`` (set by the page)."""

    therapist: Any
    unit: Any
    open_episodes: int
    receivers: list[Any]
    receiver_open: dict[int, int] = field(default_factory=dict)
    form: Any = None


def handover_rows(*, organisation: Any, unit_ids: set[int] | None) -> list[HandoverRow]:
    """Open episodes of therapists who have left their unit (user deactivated, or no
    active therapist membership of that unit), per therapist and unit; ``unit_ids``
    limits the units (a leader's own), ``None`` is every unit (the system owner)."""
    from datapolicy.models import Membership, Role, Unit, User

    pairs = open_episode_counts(organisation=organisation, unit_ids=unit_ids)
    if not pairs:
        return []
    active_members: dict[int, list[Any]] = {}
    for m in (
        Membership.objects.for_org(organisation)
        .filter(
            unit_id__in={u for _t, u in pairs},
            role=Role.THERAPIST,
            is_active=True,
            user__is_active=True,
        )
        .select_related("user")
        .order_by("user__first_name", "user__last_name", "user__username")
    ):
        active_members.setdefault(int(m.unit_id), []).append(m.user)
    left = {
        (t, u): n
        for (t, u), n in pairs.items()
        if t not in {user.pk for user in active_members.get(u, [])}
    }
    users = User.objects.in_bulk({t for t, _u in left})
    units = Unit.objects.for_org(organisation).in_bulk({u for _t, u in left})
    rows = [
        HandoverRow(
            users[t],
            units[u],
            n,
            active_members.get(u, []),
            {r.pk: pairs.get((r.pk, u), 0) for r in active_members.get(u, [])},
        )
        for (t, u), n in left.items()
    ]
    return sorted(rows, key=lambda r: (r.unit.name, r.therapist.get_full_name(), r.therapist.pk))
