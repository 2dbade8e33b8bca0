"""Client and episode services (write side). Each takes the acting user and assumes the
caller has checked that the actor may act in ``organisation`` (the scoping base does)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from datapolicy.access import memberships_of
from datapolicy.models import Membership, Organisation, Role, Unit
from datapolicy.services import Action, access_log_write

from .models import EARLIEST_DATE, Client, Episode, too_early_text
from .selectors import open_episode_counts


def _today() -> dt.date:
    return timezone.localdate()


def require_own_episode(actor: Any, episode: Episode) -> None:
    """SECURITY: only the episode's own therapist changes it or records its scores.

    A supervision grant lets its holder read the episode, never write to it; every write
    service calls this, so no page or API path can forget it.
    """
    if getattr(actor, "pk", None) != episode.therapist_id:
        raise PermissionDenied


def _check_therapist_in_unit(organisation: Organisation, therapist: Any, unit: Unit) -> None:
    ok = (
        Membership.objects.for_org(organisation)
        .filter(user=therapist, unit=unit, role=Role.THERAPIST, is_active=True)
        .exists()
    )
    if not ok:
        raise ValidationError(
            {"therapist": _("The therapist is not an active therapist in this unit.")}
        )


@transaction.atomic
def client_create(
    *,
    actor: Any,
    organisation: Organisation,
    code: str,
    age_group: str,
    birth_year: int | None = None,
    note: str = "",
    request: Any = None,
) -> Client:
    """Create a client under a code. Rejects CPR-shaped codes/notes and duplicates."""
    code = (code or "").strip()
    client = Client(
        organisation=organisation,
        code=code,
        age_group=age_group,
        birth_year=birth_year,
        note=note,
        created_by=actor,
    )
    client.full_clean(exclude=["organisation", "created_by"], validate_unique=False)
    exists = {"code": _("A client with this code already exists.")}
    if Client.objects.for_org(organisation).filter(code__iexact=code).exists():
        raise ValidationError(exists)
    try:
        with transaction.atomic():
            client.save()
    except IntegrityError:
        # Created meanwhile by another transaction (e.g. an import that was writing it:
        # this insert waited for it to commit).
        raise ValidationError(exists) from None
    access_log_write(
        actor=actor, organisation=organisation, action=Action.CREATE, obj=client, request=request
    )
    return client


@transaction.atomic
def episode_start(
    *,
    actor: Any,
    client: Client,
    unit: Unit,
    therapist: Any = None,
    started_on: dt.date | None = None,
    label: str = "",
    request: Any = None,
) -> Episode:
    """Start an episode for ``client`` with ``therapist`` (default: the actor) in ``unit``."""
    therapist = therapist or actor
    organisation = client.organisation
    # SECURITY: a therapist starts episodes for themselves, for a new client or a client
    # they already treat; never for a colleague's client (seen, at most, under a grant).
    if therapist.pk != getattr(actor, "pk", None) or (
        client.episodes.exists() and not client.episodes.filter(therapist=actor).exists()
    ):
        raise PermissionDenied
    if unit.organisation_id != organisation.pk:
        raise ValidationError({"unit": _("Unknown unit.")})
    _check_therapist_in_unit(organisation, therapist, unit)
    started_on = started_on or _today()
    if started_on > _today():
        raise ValidationError({"started_on": _("The start date cannot be in the future.")})
    if started_on < EARLIEST_DATE:
        raise ValidationError({"started_on": too_early_text()})
    episode = Episode(
        organisation=organisation,
        client=client,
        therapist=therapist,
        unit=unit,
        age_group=client.age_group,
        started_on=started_on,
        label=label,
    )
    episode.full_clean(
        exclude=["organisation", "client", "therapist", "unit"], validate_constraints=False
    )
    episode.save()
    access_log_write(
        actor=actor, organisation=organisation, action=Action.CREATE, obj=episode, request=request
    )
    return episode


@transaction.atomic
def client_create_with_episode(
    *,
    actor: Any,
    organisation: Organisation,
    unit: Unit,
    code: str,
    age_group: str,
    birth_year: int | None = None,
    started_on: dt.date | None = None,
    request: Any = None,
) -> Episode:
    """The therapist's one step: a new client and their first episode."""
    client = client_create(
        actor=actor,
        organisation=organisation,
        code=code,
        age_group=age_group,
        birth_year=birth_year,
        request=request,
    )
    return episode_start(
        actor=actor, client=client, unit=unit, started_on=started_on, request=request
    )


@transaction.atomic
def episode_close(
    *, actor: Any, episode: Episode, closed_on: dt.date, request: Any = None
) -> Episode:
    require_own_episode(actor, episode)
    if episode.status == Episode.Status.CLOSED:
        raise ValidationError(_("The episode is already closed."))
    if closed_on > _today():
        raise ValidationError({"closed_on": _("The closing date cannot be in the future.")})
    if closed_on < episode.started_on:
        raise ValidationError({"closed_on": _("The closing date is before the episode started.")})
    last = episode.sessions.order_by("-date").values_list("date", flat=True).first()
    if last and closed_on < last:
        raise ValidationError({"closed_on": _("The closing date is before the last session.")})
    episode.closed_on = closed_on
    episode.status = Episode.Status.CLOSED
    episode.alerts = []
    episode.save(update_fields=["closed_on", "status", "alerts"])
    access_log_write(
        actor=actor,
        organisation=episode.organisation_id,
        action=Action.CLOSE,
        obj=episode,
        request=request,
    )
    _changed(episode)
    return episode


def later_episodes(episode: Episode) -> Any:
    """The client's other episodes that stand in the way of reopening this one: those
    started on or after it, and any open one."""
    return (
        Episode.objects.for_org(episode.organisation_id)
        .filter(client_id=episode.client_id)
        .exclude(pk=episode.pk)
        .filter(Q(started_on__gte=episode.started_on) | Q(status=Episode.Status.OPEN))
    )


@transaction.atomic
def episode_reopen(*, actor: Any, episode: Episode, request: Any = None) -> Episode:
    """Undo a closing (closed by mistake, or the client came back soon): the same
    episode goes on. Not when the client has a later episode: continue in that one."""
    from measures.services import episode_alerts_refresh

    require_own_episode(actor, episode)
    if episode.status != Episode.Status.CLOSED:
        raise ValidationError(_("The episode is open."))
    if later_episodes(episode).exists():
        raise ValidationError(
            _("The client has a later episode; continue in that one instead of reopening.")
        )
    episode.closed_on = None
    episode.status = Episode.Status.OPEN
    episode.save(update_fields=["closed_on", "status"])
    episode_alerts_refresh(episode)
    access_log_write(
        actor=actor,
        organisation=episode.organisation_id,
        action=Action.REOPEN,
        obj=episode,
        request=request,
    )
    _changed(episode)
    return episode


@transaction.atomic
def episode_transfer(
    *, actor: Any, episode: Episode, to_therapist: Any, request: Any = None
) -> Episode:
    """Hand an episode to another therapist of the same unit (a colleague leaves).

    The episode's therapist hands it over; so may the unit's leader or the system owner
    (the colleague may already have left). Supervision shares of the episode end.
    """
    from datapolicy.services import grants_end_for_episode

    if getattr(actor, "pk", None) != episode.therapist_id:
        roles = {(m.role, m.unit_id) for m in memberships_of(actor, episode.organisation_id)}
        if (Role.UNIT_LEADER, episode.unit_id) not in roles and not any(
            r == Role.SYSTEM_OWNER for r, _u in roles
        ):
            raise PermissionDenied
    if to_therapist.pk == episode.therapist_id:
        raise ValidationError({"therapist": _("The episode already belongs to this therapist.")})
    _check_therapist_in_unit(episode.organisation, to_therapist, episode.unit)
    from_id = episode.therapist_id
    episode.therapist = to_therapist
    episode.save(update_fields=["therapist"])
    grants_end_for_episode(actor=actor, episode=episode, request=request)
    access_log_write(
        actor=actor,
        organisation=episode.organisation_id,
        action=Action.TRANSFER,
        obj=episode,
        request=request,
    )
    _changed(episode, extra_therapist_ids=[from_id])
    return episode


def may_hand_over(actor: Any, organisation: Organisation | int, unit_id: int) -> bool:
    """The system owner (any unit) and the unit's own leader may hand a departed
    colleague's episodes over (the same rule as episode_transfer's for others' episodes)."""
    roles = {(m.role, m.unit_id) for m in memberships_of(actor, organisation)}
    return (Role.UNIT_LEADER, unit_id) in roles or any(r == Role.SYSTEM_OWNER for r, _u in roles)


def has_left_unit(organisation: Organisation | int, therapist: Any, unit_id: int) -> bool:
    """The therapist's user is deactivated, or they are no longer an active therapist of
    the unit (left the organisation, or moved to another unit)."""
    if not therapist.is_active:
        return True
    return not (
        Membership.objects.for_org(organisation)
        .filter(user=therapist, unit_id=unit_id, role=Role.THERAPIST, is_active=True)
        .exists()
    )


def receiver_order_key(user: Any) -> tuple[str, str, str, int]:
    """The tie-break of the spread: by name as the handover page lists the receivers
    (first name, last name, username), then id."""
    return (user.first_name, user.last_name, user.username, user.pk)


def handover_spread(
    *,
    episodes: Sequence[Episode],
    receivers: Sequence[Any],
    open_counts: dict[int, int],
    known: dict[int, int] | None = None,
) -> list[tuple[Episode, Any]]:
    """Who gets which of a departed colleague's open episodes (pure; deterministic).

    The episodes of one client stay together. A client whom one of the receivers
    already treats in the unit (``known``: client id → receiver id) goes to that
    receiver. The other clients go, those with the most open episodes first (then by
    their oldest episode), each to the receiver with the fewest open episodes in the
    unit at that moment (``open_counts``, by receiver id, updated as episodes are
    given); ties go by name, then id (``receiver_order_key``)."""
    ranked = sorted({r.pk: r for r in receivers}.values(), key=receiver_order_key)
    by_pk = {r.pk: r for r in ranked}
    load = {r.pk: open_counts.get(r.pk, 0) for r in ranked}
    clients: dict[int, list[Episode]] = {}
    for episode in sorted(episodes, key=lambda e: e.pk):
        clients.setdefault(int(episode.client_id), []).append(episode)
    plan: list[tuple[Episode, Any]] = []

    def give(group: list[Episode], receiver: Any) -> None:
        plan.extend((episode, receiver) for episode in group)
        load[receiver.pk] += len(group)

    rest = []
    for client_id, group in clients.items():
        known_pk = (known or {}).get(client_id)
        if known_pk in by_pk:
            give(group, by_pk[known_pk])
        else:
            rest.append(group)
    for group in sorted(rest, key=lambda g: (-len(g), g[0].pk)):
        give(group, min(ranked, key=lambda r: (load[r.pk], receiver_order_key(r))))
    return plan


@transaction.atomic
def episodes_hand_over(
    *,
    actor: Any,
    organisation: Organisation,
    unit: Unit,
    from_therapist: Any,
    to_therapists: Sequence[Any],
    request: Any = None,
) -> list[tuple[Any, int]]:
    """Hand every open episode of a therapist who has left ``unit`` to one or more
    colleagues there (``to_therapists``, spread by ``handover_spread``), in one
    transaction (all or none). Each episode goes through ``episode_transfer``: its
    shares end, it is access-logged, the statistics are told.
    Returns each receiver (in name order) with how many episodes they got.

    Assumes nothing of the caller: the actor must be the system owner or the unit's
    leader, and every receiver an active therapist of the unit (checked before anything
    moves). Only for a colleague who has left: a therapist who still works in the unit
    hands over their own clients, one by one, knowing each."""
    if unit.organisation_id != organisation.pk:
        raise PermissionDenied
    if not may_hand_over(actor, organisation, unit.pk):
        raise PermissionDenied
    if not has_left_unit(organisation, from_therapist, unit.pk):
        raise ValidationError(
            _(
                "%(name)s still works in this unit; a therapist hands over their own "
                "episodes from the client's page."
            )
            % {"name": from_therapist.get_full_name() or from_therapist.username}
        )
    receivers = sorted(
        {r.pk: r for r in to_therapists}.values(),
        key=receiver_order_key,
    )
    if not receivers:
        raise ValidationError({"to_therapist": _("Choose at least one colleague.")})
    for receiver in receivers:
        # SECURITY: refused before anything moves (episode_transfer checks the
        # membership again, but not that the user is still active).
        if has_left_unit(organisation, receiver, unit.pk):
            raise ValidationError(
                {
                    "to_therapist": _("%(name)s is not an active therapist in this unit.")
                    % {"name": receiver.get_full_name() or receiver.username}
                }
            )
    episodes = list(
        Episode.objects.for_org(organisation)
        .filter(unit=unit, therapist=from_therapist, status=Episode.Status.OPEN)
        .select_for_update()
        .order_by("pk")
    )
    if not episodes:
        raise ValidationError(_("There are no open episodes to hand over."))
    receiver_ids = {r.pk for r in receivers}
    counts = open_episode_counts(
        organisation=organisation, unit_ids={unit.pk}, therapist_ids=receiver_ids
    )
    known: dict[int, int] = {}
    for client_id, therapist_id in (
        Episode.objects.for_org(organisation)
        .filter(
            unit=unit,
            status=Episode.Status.OPEN,
            therapist_id__in=receiver_ids,
            client_id__in={e.client_id for e in episodes},
        )
        .order_by("pk")
        .values_list("client_id", "therapist_id")
    ):
        known.setdefault(int(client_id), int(therapist_id))  # the oldest episode's therapist
    plan = handover_spread(
        episodes=episodes,
        receivers=receivers,
        open_counts={t: n for (t, _u), n in counts.items()},
        known=known,
    )
    given = dict.fromkeys(receiver_ids, 0)
    for episode, receiver in plan:
        episode_transfer(actor=actor, episode=episode, to_therapist=receiver, request=request)
        given[receiver.pk] += 1
    return [(r, given[r.pk]) for r in receivers]


def _changed(episode: Episode, extra_therapist_ids: list[int] | None = None) -> None:
    """Tell the statistics that an episode's figures changed (after commit)."""
    from measures.signals import episode_data_changed

    transaction.on_commit(
        lambda: episode_data_changed.send(
            sender=Episode,
            organisation_id=episode.organisation_id,
            unit_ids=[episode.unit_id],
            therapist_ids=[episode.therapist_id, *(extra_therapist_ids or [])],
        )
    )
