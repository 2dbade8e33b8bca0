"""Session and score services: the one write path for scores (pages, API, import).

Validation happens here, on the server, before anything is written; a session and its
scores are saved in one transaction, the access log is written, the episode's alerts are
recomputed at once, and the statistics are told after commit.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from clients.models import EARLIEST_DATE, Episode, too_early_text
from clients.services import require_own_episode
from datapolicy.services import Action, access_log_write
from datapolicy.validators import CPR_MESSAGE, looks_like_cpr

from .models import ITEM_MAX, ITEM_MIN, TOTAL_MAX, Scale, ScaleKind, Score, Session, SessionDraft

ONE_DECIMAL = Decimal("0.1")
# A typed score (after a decimal comma became a point): ASCII digits with an optional
# sign and decimal point. Python's Decimal and float also read "1_0", "1e1", "١٠" and
# "inf"; the form, the API and the import accept only this.
NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


class SameDateSession(ValidationError):
    """The episode already has a session on that date: ask before adding another."""


@dataclass(frozen=True)
class ScoreInput:
    """Four item values (0.0-10.0) or a total (0.0-40.0), or both (then they must agree)."""

    items: tuple[Decimal, Decimal, Decimal, Decimal] | None = None
    total: Decimal | None = None

    @classmethod
    def parse(
        cls, items: list[Any] | None = None, total: Any = None, *, field: str = ""
    ) -> ScoreInput:
        """Parse user input (strings with decimal point or comma, numbers). Raises a
        ValidationError naming the field and the allowed range, for every bad value at
        once (a therapist fixes the whole form in one round)."""
        errors: dict[str, list[str]] = {}

        def value(v: Any, name: str, high: Decimal) -> Decimal | None:
            try:
                return _decimal(v, name, ITEM_MIN, high)
            except ValidationError as exc:
                for key, messages_ in exc.message_dict.items():
                    errors.setdefault(key, []).extend(messages_)
                return None

        parsed_items = None
        if items is not None and any(v not in (None, "") for v in items):
            if len(items) != 4 or any(v in (None, "") for v in items):
                errors[field or "items"] = [_("Give all four item values, or none.")]
            else:
                values = [
                    value(v, f"{field}_{i}" if field else f"item{i}", ITEM_MAX)
                    for i, v in enumerate(items, start=1)
                ]
                if not errors:
                    parsed_items = cast(tuple[Decimal, Decimal, Decimal, Decimal], tuple(values))
        parsed_total = None
        if total not in (None, ""):
            parsed_total = value(total, f"{field}_total" if field else "total", TOTAL_MAX)
        if errors:
            raise ValidationError(errors)
        if parsed_items is None and parsed_total is None:
            raise ValidationError({field or "total": _("Give the four item values or the total.")})
        if parsed_items is not None:
            item_sum = sum(parsed_items, Decimal("0"))
            if parsed_total is not None and parsed_total != item_sum:
                raise ValidationError(
                    {
                        (f"{field}_total" if field else "total"): _(
                            "The total %(total)s does not match the sum of the items, %(sum)s."
                        )
                        % {"total": shown_number(parsed_total), "sum": shown_number(item_sum)}
                    }
                )
            parsed_total = item_sum
        return cls(items=parsed_items, total=parsed_total)  # type: ignore[arg-type]


def shown_number(number: Decimal) -> str:
    """A score as messages show it: one decimal, in the language's notation (Danish
    "10,0", English "10.0")."""
    return formats.number_format(number, 1)


def _decimal(value: Any, field: str, low: Decimal, high: Decimal) -> Decimal:
    typed = str(value).strip()
    text = typed.replace(",", ".")
    if looks_like_cpr(text):
        # Never repeat a CPR-shaped value back (it would end up in error reports).
        raise ValidationError({field: CPR_MESSAGE})
    # Messages quote the value as typed, at most 20 characters of it.
    shown = typed if len(typed) <= 20 else typed[:20] + "…"
    try:
        if isinstance(value, str) and not NUMBER_RE.fullmatch(text):
            raise InvalidOperation
        number = Decimal(text)
    except InvalidOperation:
        raise ValidationError({field: _("%(value)s is not a number.") % {"value": shown}}) from None
    if not number.is_finite():
        raise ValidationError({field: _("%(value)s is not a number.") % {"value": shown}})
    if number < low or number > high:
        # Never clipped: out of range is an error with the allowed range in the message.
        raise ValidationError(
            {
                field: _("%(value)s is outside the allowed range %(low)s-%(high)s.")
                % {"value": shown, "low": shown_number(low), "high": shown_number(high)}
            }
        )
    if number != number.quantize(ONE_DECIMAL):
        raise ValidationError({field: _("Use at most one decimal (the mark in cm, e.g. 6.4).")})
    return number.quantize(ONE_DECIMAL)


def scale_for(episode: Episode, kind: str) -> Scale:
    """ORS/SRS for adults and youth, CORS/CSRS for children."""
    child = episode.age_group == "child"
    codes: dict[tuple[str, bool], str] = {
        (ScaleKind.OUTCOME, False): "ORS",
        (ScaleKind.OUTCOME, True): "CORS",
        (ScaleKind.ALLIANCE, False): "SRS",
        (ScaleKind.ALLIANCE, True): "CSRS",
    }
    code = codes[(kind, child)]
    return Scale.objects.get(code=code)


def _score_obj(session: Session, kind: str, value: ScoreInput) -> Score:
    items = value.items or (None, None, None, None)
    return Score(
        organisation_id=session.organisation_id,
        session=session,
        scale=scale_for(session.episode, kind),
        kind=kind,
        item1=items[0],
        item2=items[1],
        item3=items[2],
        item4=items[3],
        total=value.total,  # type: ignore[misc]  # parse() always sets it
    )


def _renumber(episode: Episode) -> None:
    """Number the episode's sessions 1, 2, 3 ... by date (a back-dated session shifts the
    later ones)."""
    sessions_renumber([episode.pk])


# Episode ids per statement: PostgreSQL takes at most 65,535 parameters in one query.
_CHUNK = 5000


def id_chunks(ids: list[int]) -> Any:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def sessions_renumber(episode_ids: Any) -> int:
    """Number the sessions of these episodes 1, 2, 3 ... by date (and id) in two
    statements per 5,000 episodes, however many: the episodes whose numbers change are
    first moved out of the way (+10000), then every session of them is set to its place
    (``row_number()`` over the episode), so that the unique (episode, number) constraint
    holds at every statement. The import's touched episodes and a single session's save
    share it. Returns how many sessions got their number written.

    Plain SQL rather than ``bulk_update``: its ``CASE WHEN`` per row took 8.8 s for an
    extract of 3,069 lines into as many episodes (of 40,000 sessions), these 0.8 s.
    Both PostgreSQL and SQLite (3.33+: ``UPDATE … FROM``, the embedded mode) run it."""
    table = Session._meta.db_table
    wanted = (
        "SELECT id AS sid, episode_id AS eid, number AS old, "  # noqa: S608 (model name)
        "row_number() OVER (PARTITION BY episode_id ORDER BY date, id) AS n "
        f"FROM {table} WHERE episode_id IN ({{ids}})"
    )
    written = 0
    with connection.cursor() as cursor:
        for chunk in id_chunks(sorted({int(i) for i in episode_ids})):
            ids = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET number = number + 10000 WHERE episode_id IN "  # noqa: S608
                f"(SELECT w.eid FROM ({wanted.format(ids=ids)}) AS w WHERE w.old <> w.n)",
                chunk,
            )
            if not cursor.rowcount:
                continue
            cursor.execute(
                f"UPDATE {table} SET number = w.n FROM ({wanted.format(ids=ids)}) AS w "  # noqa: S608
                f"WHERE {table}.id = w.sid AND {table}.number <> w.n",
                chunk,
            )
            written += cursor.rowcount
    return written


def session_date_check(
    *,
    episode: Episode,
    date: dt.date,
    confirm_same_date: bool = False,
    correcting: Session | None = None,
) -> None:
    """The checks of a new session's date, also asked before the client gets the iPad.

    Raises ValidationError for a closed episode or a future date, and SameDateSession
    when the episode has a session on that date and ``confirm_same_date`` is not set.
    ``correcting``: the date of this saved session is being corrected; a closed episode
    then allows it (a typo found after closing) up to the closing date, and the session
    does not count as "another session on that date".
    """
    if correcting is None and episode.status == Episode.Status.CLOSED:
        raise ValidationError(_("The episode is closed; start a new episode to continue."))
    if date > timezone.localdate():
        raise ValidationError({"date": _("The session date cannot be in the future.")})
    if date < EARLIEST_DATE:
        raise ValidationError({"date": too_early_text()})
    if correcting is not None and episode.closed_on and date > episode.closed_on:
        raise ValidationError(
            {
                "date": _("The session date cannot be after the episode was closed (%(date)s).")
                % {"date": formats.date_format(episode.closed_on)}
            }
        )
    others = episode.sessions.filter(date=date)
    if correcting is not None:
        others = others.exclude(pk=correcting.pk)
    if not confirm_same_date and others.exists():
        raise SameDateSession(
            {
                "date": _("This episode already has a session on %(date)s. Add another one anyway?")
                % {"date": formats.date_format(date)}
            },
            code="same_date",
        )


@transaction.atomic
def session_record(
    *,
    actor: Any,
    episode: Episode,
    date: dt.date,
    ors: ScoreInput | None = None,
    srs: ScoreInput | None = None,
    confirm_same_date: bool = False,
    request: Any = None,
) -> Session:
    """Record a session with its ORS and/or SRS (the other may come later via
    score_set).

    Raises ValidationError (nothing saved) without any score, for a future date, a
    closed episode, or a second session on the same date unless ``confirm_same_date``.
    (Sessions without scores come only from an import of historical data.)
    """
    require_own_episode(actor, episode)
    if ors is None and srs is None:
        raise ValidationError(_("Give an ORS, an SRS or both."))
    episode = Episode.dangerously_unscoped.select_for_update().get(pk=episode.pk)
    session_date_check(episode=episode, date=date, confirm_same_date=confirm_same_date)
    session = Session.objects.create(
        organisation_id=episode.organisation_id,
        episode=episode,
        date=date,
        number=episode.sessions.count() + 10001,  # placeholder, renumbered below
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    _renumber(episode)
    session.refresh_from_db(fields=["number"])
    scores = []
    if ors is not None:
        scores.append(_score_obj(session, ScaleKind.OUTCOME, ors))
    if srs is not None:
        scores.append(_score_obj(session, ScaleKind.ALLIANCE, srs))
    for score in scores:
        score.full_clean(exclude=["organisation", "session", "scale"], validate_unique=False)
    Score.objects.bulk_create(scores)
    if date < episode.started_on:
        episode.started_on = date
        episode.save(update_fields=["started_on"])
    SessionDraft.objects.for_org(episode.organisation_id).filter(
        episode=episode, created_by=actor
    ).delete()
    access_log_write(
        actor=actor,
        organisation=episode.organisation_id,
        action=Action.CREATE,
        obj=session,
        client_id=episode.client_id,
        request=request,
    )
    _after_change(episode)
    return session


@transaction.atomic
def score_set(
    *,
    actor: Any,
    session: Session,
    kind: str,
    value: ScoreInput,
    replace: bool = False,
    request: Any = None,
) -> Score:
    """Add the SRS at the end of a session (or correct a score with ``replace``)."""
    episode = session.episode
    require_own_episode(actor, episode)
    if episode.status == Episode.Status.CLOSED:
        raise ValidationError(_("The episode is closed; start a new episode to continue."))
    existing = (
        Score.objects.for_org(session.organisation_id).filter(session=session, kind=kind).first()
    )
    if existing and not replace:
        label = "ORS" if kind == ScaleKind.OUTCOME else "SRS"
        raise ValidationError(_("This session already has an %(scale)s.") % {"scale": label})
    score = _score_obj(session, kind, value)
    score.full_clean(exclude=["organisation", "session", "scale"], validate_unique=False)
    if existing:
        existing.delete()
    score.save()
    access_log_write(
        actor=actor,
        organisation=session.organisation_id,
        action=Action.UPDATE if existing else Action.CREATE,
        obj=score,
        client_id=episode.client_id,
        request=request,
    )
    _after_change(episode)
    return score


def _same_score(score: Score, value: ScoreInput) -> bool:
    items = tuple(value.items) if value.items else (None, None, None, None)
    return score.total == value.total and tuple(score.items) == items


@transaction.atomic
def session_correct(
    *,
    actor: Any,
    session: Session,
    date: dt.date,
    ors: ScoreInput | None,
    srs: ScoreInput | None,
    confirm_same_date: bool = False,
    request: Any = None,
) -> Session:
    """Correct a saved session: its date and both scores as they should have been typed.

    A scale given as ``None`` is removed from the session; at least one must remain
    (otherwise delete the session). Works in a closed episode too (a typo found after
    closing), but not past its closing date. Nothing changes when a check fails
    (ValidationError / SameDateSession); one access-log entry records the correction.
    """
    episode = session.episode
    require_own_episode(actor, episode)
    episode = Episode.dangerously_unscoped.select_for_update().get(pk=episode.pk)
    if ors is None and srs is None:
        raise ValidationError(
            _("Give an ORS, an SRS or both (to remove the whole session, delete it).")
        )
    if date != session.date:
        session_date_check(
            episode=episode, date=date, confirm_same_date=confirm_same_date, correcting=session
        )
        session.date = date
        session.save(update_fields=["date", "updated_at"])
        _renumber(episode)
        if date < episode.started_on:
            episode.started_on = date
            episode.save(update_fields=["started_on"])
    existing = {
        s.kind: s for s in Score.objects.for_org(session.organisation_id).filter(session=session)
    }
    for kind, value in ((ScaleKind.OUTCOME, ors), (ScaleKind.ALLIANCE, srs)):
        old = existing.get(kind)
        if value is None:
            if old is not None:
                old.delete()
            continue
        if old is not None and _same_score(old, value):
            continue
        score = _score_obj(session, kind, value)
        score.full_clean(exclude=["organisation", "session", "scale"], validate_unique=False)
        if old is not None:
            old.delete()
        score.save()
    access_log_write(
        actor=actor,
        organisation=session.organisation_id,
        action=Action.UPDATE,
        obj=session,
        client_id=episode.client_id,
        request=request,
    )
    _after_change(episode)
    session.refresh_from_db()
    return session


@transaction.atomic
def session_delete(*, actor: Any, session: Session, request: Any = None) -> None:
    episode = session.episode
    require_own_episode(actor, episode)
    access_log_write(
        actor=actor,
        organisation=session.organisation_id,
        action=Action.DELETE,
        obj=session,
        client_id=episode.client_id,
        request=request,
    )
    session.delete()
    _renumber(episode)
    _after_change(episode)


def _after_change(episode: Episode) -> None:
    from clients.services import _changed

    episode_alerts_refresh(episode)
    _changed(episode)


ALERT_NAMES = ("alliance", "off_track", "deterioration", "no_contact")


def alert_lists(
    frame: Any, *, organisation: Any, as_of: dt.date, etr_model: Any = None
) -> dict[int, list[str]]:
    """Alert names per active episode of a sessions frame (episodes without alerts are
    left out). The one place that turns the engine's flags into what Episode.alerts
    stores: used after a session, after a bulk load, nightly and by the import.

    "Off track" is judged with the organisation's ETR (its own model with the platform
    fallback, as its statistics: ``stats.selectors.etr_model_for``), read once per call —
    one organisation's frame, never once per episode — and only when some session at
    number 3 or later has an ORS (before that nothing is judged). ``etr_model``: the
    model when the caller has it already."""
    from stats.engine import episode_alerts
    from stats.frames import org_stats_settings
    from stats.selectors import etr_model_for

    if etr_model is None and len(frame):
        judged = (frame["session_number"].to_numpy() >= 3) & frame["ors"].notna().to_numpy()
        if judged.any():
            etr_model = etr_model_for(organisation)
    flags = episode_alerts(
        frame, as_of=as_of, settings=org_stats_settings(organisation), etr_model=etr_model
    )
    if flags.empty:
        return {}
    names = list(ALERT_NAMES)
    values = flags[names].to_numpy(dtype=bool)
    return {
        int(eid): [n for n, on in zip(names, row, strict=True) if on]
        for eid, row in zip(flags.index.to_numpy(), values, strict=True)
        if row.any()
    }


def episode_alerts_refresh(episode: Episode) -> list[str]:
    """Recompute the episode's alerts now (not in a background job) and store them."""
    alerts = episodes_alerts_refresh(episode.organisation, [episode.pk]).get(episode.pk, [])
    episode.alerts = alerts
    return alerts


def episodes_alerts_refresh(organisation: Any, episode_ids: Any) -> dict[int, list[str]]:
    """Recompute and store the alerts of these episodes of one organisation (closed ones
    have none) in a few statements, however many episodes; returns every episode's
    alerts. The organisation's ETR model is read at most once."""
    from stats.frames import sessions_frame_for_episodes

    ids = sorted({int(i) for i in episode_ids})
    episodes = {
        pk: (status, alerts)
        for chunk in id_chunks(ids)
        for pk, status, alerts in Episode.objects.for_org(organisation)
        .filter(pk__in=chunk)
        .values_list("pk", "status", "alerts")
    }
    open_ids = [pk for pk, (status, _old) in episodes.items() if status != Episode.Status.CLOSED]
    etr_model: Any = None
    if len(open_ids) > _CHUNK:
        from stats.selectors import etr_model_for

        etr_model = etr_model_for(organisation)  # several chunks: read once, not per chunk
    today = timezone.localdate()
    found: dict[int, list[str]] = {}
    for chunk in id_chunks(open_ids):
        found.update(
            alert_lists(
                sessions_frame_for_episodes(chunk),
                organisation=organisation,
                as_of=today,
                etr_model=etr_model,
            )
        )
    result = {pk: found.get(pk, []) for pk in episodes}
    # One UPDATE per distinct list of alerts (at most 16), not a CASE per episode.
    stale: dict[tuple[str, ...], list[int]] = {}
    for pk, (_status, old) in episodes.items():
        if result[pk] != old:
            stale.setdefault(tuple(result[pk]), []).append(pk)
    for alerts, pks in stale.items():
        for chunk in id_chunks(pks):
            Episode.dangerously_unscoped.filter(pk__in=chunk).update(alerts=list(alerts))
    return result


def alerts_refresh_for_org(organisation: Any) -> int:
    """Recompute the alerts of every open episode of an organisation in one pass
    (after a bulk load, and nightly, because "no contact" changes with the calendar)."""
    from stats.frames import sessions_frame_for_org

    current = alert_lists(
        sessions_frame_for_org(organisation.pk, open_only=True),
        organisation=organisation,
        as_of=timezone.localdate(),
    )
    episodes = list(
        Episode.objects.for_org(organisation)
        .filter(status=Episode.Status.OPEN)
        .only("pk", "alerts")
    )
    changed = []
    for ep in episodes:
        new = current.get(ep.pk, [])
        if new != ep.alerts:
            ep.alerts = new
            changed.append(ep)
    Episode.dangerously_unscoped.bulk_update(changed, ["alerts"], batch_size=1000)
    return len(changed)


def session_draft_save(*, actor: Any, episode: Episode, data: dict[str, Any]) -> SessionDraft:
    """Keep what was marked so far (one draft per episode and user; the latest wins).

    Only the scale kind, the date, the session id, the therapist's "another session on
    this date" answer and item marks are kept: nothing else from the request is stored.
    """
    require_own_episode(actor, episode)
    clean = {
        "kind": str(data.get("kind", ""))[:8],
        "date": str(data.get("date", ""))[:10],
        "session_id": data.get("session_id") if isinstance(data.get("session_id"), int) else None,
        "confirm_same_date": data.get("confirm_same_date") is True,
        "items": [str(v)[:5] for v in (data.get("items") or [])][:4],
    }
    draft, created = SessionDraft.objects.for_org(episode.organisation_id).update_or_create(
        organisation_id=episode.organisation_id,
        episode=episode,
        created_by=actor,
        defaults={"data": clean},
    )
    if created:  # autosave runs at every mark: the log records the draft once
        access_log_write(
            actor=actor,
            organisation=episode.organisation_id,
            action=Action.CREATE,
            object_type="sessiondraft",
            object_id=draft.pk,
            client_id=episode.client_id,
        )
    return draft


def session_draft_discard(*, actor: Any, episode: Episode) -> int:
    """Throw away the actor's interrupted entry for the episode."""
    require_own_episode(actor, episode)
    deleted, _rows = (
        SessionDraft.objects.for_org(episode.organisation_id)
        .filter(episode=episode, created_by=actor)
        .delete()
    )
    if deleted:
        access_log_write(
            actor=actor,
            organisation=episode.organisation_id,
            action=Action.DELETE,
            object_type="sessiondraft",
            client_id=episode.client_id,
        )
    return int(deleted)
