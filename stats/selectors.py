"""Read side of the statistics: snapshots for a scope, suppressed per the caller's role."""

from __future__ import annotations

import calendar
import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd
from django.utils import timezone

from .anonymise import (
    MIN_THERAPISTS_FOR_SCOPE,
    OUTCOME_FAMILIES,
    REASON_COMPLEMENTARY,
    REASON_FEW_THERAPISTS,
    may_show_therapist_spread,
    reason_small,
    spread_min_therapists,
    suppress_trajectory,
)
from .engine import STATISTICS_COLUMNS
from .etr import EtrModel, etr_fit, etr_with_fallback
from .frames import org_stats_settings, sessions_frame_for_org
from .models import CURRENT, Publication, ScopeKind, StatsSnapshot
from .publications import REASON_CHANGED
from .siblings import AGES, Tree, family_masks

PERIODS = ("all", "month", "quarter", "year")
# Anonymised figures (units, the organisation, the platform) exist at closed month-ends
# only: "all" (until today) is not offered (stats.publications).
ANONYMISED_PERIODS = ("month", "quarter", "year")
AGE_FILTERS = ("all", "adult", "youth", "child")


def etr_model_for(organisation: Any) -> EtrModel:
    """The ETR model the organisation's clients are judged with now (the client graph, the
    stored alerts): its own reference model — the one stored with its current snapshot,
    fitted live on its own closed and active episodes only when no snapshot exists yet —
    and, for an age group where that has no available point, the platform's current model
    (``borrowed`` says which), exactly as its current statistics use them
    (stats.services.platform_etr_model). Two small reads (the models only, not the
    payloads); call it once per organisation, not per episode."""
    from .services import platform_etr_model

    today = timezone.localdate()
    stored = (
        StatsSnapshot.objects.filter(
            scope_kind=ScopeKind.ORGANISATION,
            organisation_id=organisation.pk,
            scope_id=organisation.pk,
            period_key=CURRENT,
            age_group="all",
        )
        .values_list("payload__etr_model", flat=True)
        .first()
    )
    if stored:
        own = EtrModel.from_dict(stored)
    else:
        frame = sessions_frame_for_org(organisation.pk)
        own = etr_fit(frame, org_stats_settings(organisation), as_of=today)
    return etr_with_fallback(own, platform_etr_model(period_key=CURRENT, as_of=today))


def period_as_of(period: str, today: date | None = None) -> tuple[str, date]:
    """(period key, reference date) of a fixed period: "all" = today (the current,
    continuously refreshed snapshot); month/quarter/year = the end of the last completed
    calendar month/quarter/year."""
    today = today or timezone.localdate()
    if period == "month":
        end = today.replace(day=1) - timedelta(days=1)
    elif period == "quarter":
        q_start_month = 3 * ((today.month - 1) // 3) + 1
        end = today.replace(month=q_start_month, day=1) - timedelta(days=1)
    elif period == "year":
        end = date(today.year - 1, 12, 31)
    else:
        return CURRENT, today
    end = end.replace(day=calendar.monthrange(end.year, end.month)[1])
    return end.isoformat(), end


def snapshot_get(
    *, kind: str, organisation_id: int, scope_id: int, period_key: str, as_of: date, age_group: str
) -> StatsSnapshot:
    """The stored snapshot, computed on demand (and stored) when there is none yet."""
    org_key = 0 if kind == ScopeKind.PLATFORM else organisation_id
    snap = (
        StatsSnapshot.objects.filter(
            scope_kind=kind,
            organisation_id=org_key,
            scope_id=scope_id,
            period_key=period_key,
            age_group=age_group,
        )
        .defer("payload")
        .first()
    )  # the payload is read only when the figures are not cached
    # The current snapshot of an earlier day (before the nightly job) is recomputed.
    if snap is not None and (period_key != CURRENT or snap.as_of == as_of):
        return snap
    from .services import family_required, publication_ensure, stats_compute_scope, store_empty

    if period_key != CURRENT and kind != ScopeKind.THERAPIST:
        # An anonymised scope at a month-end: its figures are the publication's (made
        # now if need be, for the whole family from one read); a scope the publication
        # did not know (a unit created since) gets empty figures, never today's data.
        org_key = 0 if kind == ScopeKind.PLATFORM else organisation_id
        publication_ensure(
            organisation_id=org_key,
            period_key=period_key,
            as_of=as_of,
            required=family_required(org_key),
        )
        found = StatsSnapshot.objects.filter(
            scope_kind=kind,
            organisation_id=org_key,
            scope_id=scope_id,
            period_key=period_key,
            age_group=age_group,
        ).first()
        if found is not None:
            return found
        store_empty([(kind, org_key, scope_id, age_group)], as_of=as_of, period_key=period_key)
        return StatsSnapshot.objects.get(
            scope_kind=kind,
            organisation_id=org_key,
            scope_id=scope_id,
            period_key=period_key,
            age_group=age_group,
        )

    result = stats_compute_scope(
        kind=kind,
        organisation_id=organisation_id,
        scope_id=scope_id,
        as_of=as_of,
        period_key=period_key,
        age_group=age_group,
    )
    assert result is not None
    return result


@dataclass
class Figures:
    """A snapshot as a page or the API shows it (suppressed when ``anonymised``)."""

    snapshot: StatsSnapshot
    anonymised: bool
    k: int
    table: dict[str, dict[str, Any]]  # active/inactive -> column -> value (None = hidden)
    suppressed: dict[str, dict[str, str]]  # active/inactive -> column -> reason
    trajectory: list[dict[str, Any]]
    etr: dict[str, Any]
    etr_suppressed: dict[str, str]
    implementation: list[dict[str, Any]]
    quality: dict[str, Any]  # column -> count (None = hidden)
    # The spread between therapists as summary statistics only (never one therapist's
    # value): {"n_therapists", "median", "q1", "q3"}, rounded; {} when not shown.
    spread: dict[str, Any]
    show_spread: bool
    # set when the whole scope is hidden (fewer than 3 therapists in the selection)
    hidden_reason: str | None = None
    # why a unit/organisation shows no spread: "few" (fewer than spread_min_therapists(k)
    # therapists with values) or "held" (held back by a publication); None when shown
    spread_notice: str | None = None
    # column -> reason of a hidden data-quality count (as ``suppressed``)
    quality_suppressed: dict[str, str] = field(default_factory=dict)


def _nan_to_none(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and v != v) else v


FIGURES_CACHE_SECONDS = 60 * 60 * 24


# --- Siblings: every anonymised figure of a period is suppressed in one grid ------------


@dataclass(frozen=True)
class SiblingFamily:
    """The scopes whose anonymised figures of one period are suppressed together
    (stats.siblings): an organisation with all its units and age groups, or the platform
    with its age groups. ``version`` changes whenever any of their snapshots (or the unit
    tree) changes; it is part of every cache key of anonymised figures."""

    organisation_id: int  # 0 = the platform
    period_key: str
    as_of: date
    unit_parent: dict[int, int | None]
    version: str
    publication_id: int = 0  # stats.models.Publication of this date (0: none yet)

    @property
    def kinds(self) -> list[str]:
        if self.organisation_id == 0:
            return [ScopeKind.PLATFORM]
        return [ScopeKind.UNIT, ScopeKind.ORGANISATION]

    @property
    def tree(self) -> Tree:
        if self.organisation_id == 0:
            return Tree((ScopeKind.PLATFORM, 0), {})
        return Tree((ScopeKind.ORGANISATION, self.organisation_id), self.unit_parent)

    def required(self) -> set[tuple[str, int, str]]:
        return {(str(kind), int(sid), age) for kind, sid in self.tree.published for age in AGES}

    def snapshots(self) -> Any:
        return StatsSnapshot.objects.filter(
            scope_kind__in=self.kinds,
            organisation_id=self.organisation_id,
            period_key=self.period_key,
        )


def _family_version(
    family: SiblingFamily, rows: dict[tuple[str, int, str], tuple[date, Any]]
) -> str:
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"p{family.publication_id};".encode())
    for key in sorted(family.required()):
        at = rows.get(key, (None, None))[1]
        h.update(f"{key}={at.timestamp() if at else '-'};".encode())
    for uid, pid in sorted(family.unit_parent.items()):
        h.update(f"u{uid}<{pid};".encode())
    return h.hexdigest()[:20]


def sibling_family(snapshot: StatsSnapshot) -> SiblingFamily:
    """The family of an anonymised snapshot, with every sibling snapshot present and
    current (missing ones are computed in one go: stats.services.stats_compute_family).

    Two small queries when nothing is missing (the unit tree, and one row per sibling
    without its payload)."""
    from datapolicy.models import Unit

    from .services import publication_ensure

    if snapshot.period_key == CURRENT:
        # SECURITY: anonymised figures exist for closed month-ends only (two "today"s, or
        # today and a month-end, could be subtracted: stats.publications).
        raise ValueError("anonymised figures are published for closed month-ends only")
    platform = snapshot.scope_kind == ScopeKind.PLATFORM
    org_id = 0 if platform else int(snapshot.organisation_id)
    parent: dict[int, int | None] = (
        {} if platform else dict(Unit.objects.for_org(org_id).values_list("id", "parent_id"))
    )
    family = SiblingFamily(org_id, snapshot.period_key, snapshot.as_of, parent, "")
    publication = publication_ensure(
        organisation_id=org_id,
        period_key=snapshot.period_key,
        as_of=snapshot.as_of,
        required=family.required(),
    )
    family = SiblingFamily(
        org_id, snapshot.period_key, snapshot.as_of, parent, "", int(publication.pk)
    )

    def listing() -> dict[tuple[str, int, str], tuple[date, Any]]:
        return {
            (kind, int(sid), age): (as_of, at)
            for kind, sid, age, as_of, at in family.snapshots().values_list(
                "scope_kind", "scope_id", "age_group", "as_of", "computed_at"
            )
        }

    rows = listing()
    missing = family.required() - set(rows)
    if missing:
        # The publication computed every member it knew; a member missing now (a unit
        # created since) is not computed from today's data, which could be subtracted
        # from the frozen figures: it gets empty figures at that date.
        from .services import store_empty

        store_empty(
            [(kind, org_id, sid, age) for kind, sid, age in missing],
            as_of=snapshot.as_of,
            period_key=snapshot.period_key,
        )
        rows = listing()
    return SiblingFamily(
        org_id,
        snapshot.period_key,
        snapshot.as_of,
        parent,
        _family_version(family, rows),
        int(publication.pk),
    )


_PART_FIELDS = (
    "table",
    "trajectory",
    "etr",
    "implementation",
    "quality",
    "therapist_spread",
    "n_therapists",
    "n_therapists_direct",
)


# The version of the suppression rules (stats.siblings, stats.anonymise) in the cache keys
# of masks and anonymised figures: a change of the rules must not be served from masks
# cached under the old ones (round 11: the trajectory's session numbers coupled with the
# months and the start counts; no cross-side set for the outcome classes, "no reliable
# change" as the preferred complement; then every published column of a month checked
# for a lone non-zero hidden cell, rule 7). Change it with every change of the rules.
MASK_RULES = "r11c"


def _mask_key(family: SiblingFamily, version: str, k: int, part: tuple[str, int, str]) -> str:
    kind, sid, age = part
    fam = f"{family.organisation_id}:{family.period_key}:{k}:{version}"
    return f"stats:mask:{MASK_RULES}:{fam}:{kind}:{sid}:{age}"


def _family_masks(
    family: SiblingFamily, k: int
) -> tuple[dict[tuple[str, int, str], dict[str, Any]], dict[tuple[str, int, str], dict[str, Any]]]:
    """(masks, parts) of every scope × age group of the family, computed from one read of
    the siblings' payloads (only the keys needed; the masks are cached per part)."""
    from fitplatform.cache import page_cache

    cache = page_cache()

    parts: dict[tuple[str, int, str], dict[str, Any]] = {}
    computed: dict[tuple[str, int, str], tuple[date, Any]] = {}
    fields = [f"payload__{f}" for f in _PART_FIELDS]
    for kind, sid, age, as_of, at, *values in family.snapshots().values_list(
        "scope_kind", "scope_id", "age_group", "as_of", "computed_at", *fields
    ):
        key = (kind, int(sid), age)
        parts[key] = dict(zip(_PART_FIELDS, values, strict=True))
        computed[key] = (as_of, at)
    version = _family_version(family, computed)
    masks = family_masks(
        parts, family.tree, k=k, held=publication_held(family, k), held_reason=REASON_CHANGED
    )
    for key, mask in masks.items():
        at = computed.get(key, (None, None))[1]
        mask["computed_at"] = at.timestamp() if at else None
    cache.set_many(
        {_mask_key(family, version, k, key): m for key, m in masks.items()},
        FIGURES_CACHE_SECONDS,
    )
    return masks, parts


def _publication_tree(publication: Publication, fallback: Tree) -> Tree:
    """The unit tree of the publication's day (an episode's place then)."""
    if publication.organisation_id == 0 or not publication.unit_tree:
        return fallback
    return Tree(
        (ScopeKind.ORGANISATION, int(publication.organisation_id)),
        {int(u): (None if p is None else int(p)) for u, p in publication.unit_tree.items()},
    )


def _earlier(publication: Publication) -> Any:
    """The organisation's publications made before this one (publication_ensure makes one
    at a time per organisation, so the numbering is their order)."""
    return Publication.objects.filter(
        organisation_id=publication.organisation_id, pk__lt=publication.pk
    ).only("fingerprint", "unit_tree", "organisation_id")


def publication_held(family: SiblingFamily, k: int) -> dict[tuple[str, str], set[str]]:
    """What the family's publication must hold back so that it cannot be subtracted from
    any earlier publication of the organisation (stats.publications.held_between tokens),
    computed once per k and stored with the publication (the earlier ones never change)."""
    from .publications import decode, held_between, merge_held

    publication = Publication.objects.filter(pk=family.publication_id).first()
    if publication is None:
        return {}
    stored = (publication.held or {}).get(str(k))
    if stored is None:
        held: dict[tuple[str, str], set[str]] = {}
        new = decode(publication.fingerprint)
        tree = _publication_tree(publication, family.tree)
        for old in _earlier(publication):
            merge_held(
                held,
                held_between(
                    decode(old.fingerprint),
                    new,
                    tree,
                    k=k,
                    old_tree=_publication_tree(old, tree),
                ),
            )
        stored = [[node, age, sorted(cols)] for (node, age), cols in sorted(held.items())]
        Publication.objects.filter(pk=publication.pk).update(
            held={**(publication.held or {}), str(k): stored}
        )
    return {(str(node), str(age)): set(cols) for node, age, cols in stored}


def benchmark_held(publication: Publication, organisation_id: int, k: int) -> set[str]:
    """The benchmark's figures (stats.publications tokens) that a viewer from
    ``organisation_id`` must not see at this platform publication: where the *other*
    organisations' change since an earlier platform publication is small (the viewer
    knows their own change). Computed once per organisation and k, stored."""
    from .publications import decode, others_changed

    slot = f"o{int(organisation_id)}:{k}"
    stored = (publication.held or {}).get(slot)
    if stored is None:
        hidden: set[str] = set()
        new = decode(publication.fingerprint)
        for old in _earlier(publication):
            hidden |= others_changed(decode(old.fingerprint), new, organisation_id, k=k)
        stored = sorted(hidden)
        publication.held = {**(publication.held or {}), slot: stored}
        Publication.objects.filter(pk=publication.pk).update(held=publication.held)
    return set(stored)


def figures_for(
    snapshot: StatsSnapshot, *, anonymised: bool, k: int, family: SiblingFamily | None = None
) -> Figures:
    """The snapshot's figures as shown to a role, cached.

    Identified figures are cached per (snapshot, computed_at). Anonymised ones are
    suppressed together with their siblings (every unit and the organisation, every age
    group, of the same period: stats.siblings) and cached per (snapshot, family version,
    k): the version changes when any sibling snapshot changes. Suppression (pandas, some
    ms) would otherwise dominate a dashboard request."""
    from fitplatform.cache import page_cache

    cache = page_cache()

    if not anonymised:
        key = f"stats:fig4:{snapshot.pk}:{snapshot.computed_at.timestamp()}:0:{k}"
        cached = cache.get(key)
        if cached is None:
            cached = _figures_data(snapshot.payload, anonymised=False, k=k, mask=None)
            cache.set(key, cached, FIGURES_CACHE_SECONDS)
        return Figures(snapshot=snapshot, anonymised=False, k=k, **cached)
    if snapshot.scope_kind == ScopeKind.THERAPIST:
        # One therapist's figures are never shown anonymised (the role table: own only,
        # or with consent, identified); refuse rather than guess.
        raise ValueError("a therapist's figures have no anonymised form")
    family = family or sibling_family(snapshot)
    key = f"stats:fig4:{MASK_RULES}:{snapshot.pk}:{family.version}:1:{k}"
    cached = cache.get(key)
    if cached is None:
        part = (str(snapshot.scope_kind), int(snapshot.scope_id), snapshot.age_group)
        mask = cache.get(_mask_key(family, family.version, k, part))
        payload: Any = None
        if mask is not None:
            fresh = StatsSnapshot.objects.filter(pk=snapshot.pk).values_list(
                "computed_at", "payload"
            )
            row = fresh.first()
            if row is not None and row[0].timestamp() == mask.get("computed_at"):
                payload = row[1]
        if payload is None:  # no mask yet, or the snapshot changed since: one grid
            masks, parts = _family_masks(family, k)
            mask, payload = masks.get(part), parts.get(part)
            if mask is None or payload is None:  # vanished meanwhile: show nothing
                mask, payload = _HIDE_ALL, {}
        cached = _figures_data(payload, anonymised=True, k=k, mask=mask)
        cache.set(key, cached, FIGURES_CACHE_SECONDS)
    return Figures(snapshot=snapshot, anonymised=True, k=k, **cached)


def figures_version(snapshot: StatsSnapshot, *, anonymised: bool) -> tuple[str, Any]:
    """(cache version, family) of the figures a role sees: the pages put it into their
    fragment cache key. Identified: the snapshot's computed_at; anonymised: the family's
    version (every sibling snapshot)."""
    if not anonymised:
        return str(snapshot.computed_at.timestamp()), None
    family = sibling_family(snapshot)
    return family.version, family


_HIDE_ALL: dict[str, Any] = {"hidden_scope": True}


def _figures_data(
    p: Any, *, anonymised: bool, k: int, mask: dict[str, Any] | None
) -> dict[str, Any]:
    """Apply the role's suppression to a snapshot payload. Anonymised figures need the
    family's ``mask`` (stats.siblings.family_masks) for this scope and age group."""
    p = p or {}
    table = {side: dict((p.get("table") or {}).get(side, {})) for side in ("active", "inactive")}
    suppressed: dict[str, dict[str, str]] = {"active": {}, "inactive": {}}
    trajectory = list(p.get("trajectory") or [])
    etr = dict(p.get("etr") or {})
    etr_suppressed: dict[str, str] = {}
    implementation = list(p.get("implementation") or [])
    spread_rows = list(p.get("therapist_spread") or [])
    spread: dict[str, Any] = {}
    spread_notice: str | None = None
    quality = dict(p.get("quality") or {})
    quality_suppressed: dict[str, str] = {}
    show_spread = False
    hidden_reason: str | None = None
    if anonymised:
        if mask is None:
            raise ValueError("anonymised figures need the siblings' suppression mask")
        if mask.get("hidden_scope"):
            # Fewer than 3 therapists: nothing of this scope is shown (datapolicy.md).
            hidden_reason = REASON_FEW_THERAPISTS
            for side in ("active", "inactive"):
                table[side] = dict.fromkeys(STATISTICS_COLUMNS)
                suppressed[side] = dict.fromkeys(STATISTICS_COLUMNS, REASON_FEW_THERAPISTS)
            return dict(
                table=table,
                suppressed=suppressed,
                trajectory=[],
                etr={},
                etr_suppressed=dict.fromkeys(ETR_SHOWN, REASON_FEW_THERAPISTS),
                implementation=[],
                quality={},
                spread={},
                show_spread=False,
                hidden_reason=hidden_reason,
                spread_notice=None,
            )
        # The statistics table: primary and complementary suppression over the siblings.
        for side in ("active", "inactive"):
            row = {c: _nan_to_none(table[side].get(c)) for c in STATISTICS_COLUMNS}
            for c, why in (mask.get("table", {}).get(side) or {}).items():
                if c in row:
                    row[c] = None
                    suppressed[side][c] = why
            table[side] = row
        # SECURITY: data-quality counts are client counts too ("intake above the cutoff"
        # is health data): a count of 1..k-1 is hidden (shown as "< k"), never as the
        # number; the siblings' complements and held-back counts are hidden with their
        # own reason (shown as "hidden": such a count may well be k or more).
        q_mask = mask.get("quality") or {}
        for c, v in list(quality.items()):
            if 0 < int(v or 0) < k or c in q_mask:
                quality[c] = None
                quality_suppressed[c] = q_mask.get(c) or reason_small(k)
        if trajectory:
            tdf = pd.DataFrame(trajectory).set_index("session_number")
            tdf = suppress_trajectory(tdf, k=k).reset_index()
            t_mask = mask.get("trajectory") or {}
            trajectory = []
            for row in tdf.to_dict("records"):
                point = {c: _nan_to_none(v) for c, v in row.items()}
                hide = t_mask.get(int(point["session_number"])) or {}
                for n_col, median in (("n_ors", "ors_median"), ("n_srs", "srs_median")):
                    if n_col in hide:
                        point[n_col] = None  # a complement: the count could be subtracted
                        if hide[n_col] != REASON_COMPLEMENTARY:
                            point[median] = None
                if point.get("ors_median") is None and point.get("srs_median") is None:
                    continue
                trajectory.append(point)
        e_mask = mask.get("etr") or {}
        ended = int(etr.get("ended_evaluable") or 0)
        ended_hidden = 0 < ended < k or "ended_evaluable" in e_mask
        # reached target + dropout = the judged base: if one part is hidden (1 … k−1, or
        # by the grid), so is the other, or base minus one part would give it back
        parts_hidden = any(
            0 < int(etr.get(c) or 0) < k or c in e_mask for c in ("reaching_target", "dropout")
        )
        for count, members in (
            ("reaching_target", ("reaching_target", "reaching_target_share")),
            ("dropout", ("dropout", "dropout_share")),
        ):
            # a part of a hidden base is hidden; so is a part of 1 … k−1 clients
            part_small = 0 < int(etr.get(count) or 0) < k
            for c in members:
                if ended_hidden or part_small or parts_hidden or c in e_mask:
                    etr[c] = None
                    etr_suppressed[c] = e_mask.get(c) or e_mask.get(count) or reason_small(k)
        if "ended_evaluable" in e_mask:
            etr["ended_evaluable"] = None
            etr_suppressed["ended_evaluable"] = e_mask["ended_evaluable"]
        n_rel = int(etr.get("n_relative_effect") or 0)
        if 0 < n_rel < k or "relative_effect_size" in e_mask:
            etr["relative_effect_size"] = None
            etr_suppressed["relative_effect_size"] = e_mask.get(
                "relative_effect_size"
            ) or reason_small(k)
        etr_unjudged_anonymised(table, etr, etr_suppressed, k=k)
        i_mask = mask.get("implementation") or {}
        # A month of 1 or 2 active therapists would show their own registration figures.
        implementation = [
            r
            for r in implementation
            if not (0 < int(r["episodes"]) < k)
            and str(r["month"]) not in i_mask
            and int(r.get("active_therapists") or 0) >= MIN_THERAPISTS_FOR_SCOPE
        ]
        # The spread between therapists (active episodes, per therapist): only summary
        # statistics (median and quartiles, rounded), only with at least max(5, k)
        # therapists who each have k clients with two ORS, and not where one therapist's
        # row changed by 1 … k−1 clients since an earlier published month-end
        # (stats.publications). Each therapist's own value never leaves the server.
        spread, spread_notice = _spread_summary(
            spread_rows,
            k=k,
            n_therapists=int(p.get("n_therapists", 0)),
            held=bool(mask.get("spread_hidden")),
        )
        show_spread = bool(spread)
    return dict(
        table=table,
        suppressed=suppressed,
        trajectory=trajectory,
        etr=etr,
        etr_suppressed=etr_suppressed,
        implementation=implementation,
        quality=quality,
        spread=spread,
        show_spread=show_spread,
        hidden_reason=hidden_reason,
        spread_notice=spread_notice,
        quality_suppressed=quality_suppressed,
    )


def etr_unjudged_anonymised(
    table: dict[str, dict[str, Any]],
    etr: dict[str, Any],
    etr_suppressed: dict[str, str],
    *,
    k: int,
) -> None:
    """The ETR panel's ended episodes that cannot be judged, as an anonymised view may show
    them (in place; docs/datapolicy.md, Anonymisation rule 6).

    * ``ended_no_etr`` (ended with two or more ORS, no expected response at the last one)
      is exactly the inactive side's classified episodes minus the ended episodes that
      can be judged (both count the inactive episodes with ≥ 2 ORS). It is shown only
      where both figures are shown in this view, and only when it equals their
      difference: then it tells nothing that subtracting two shown figures does not, so
      no sibling, earlier publication or benchmark can gain from it. 1 … k−1 reads "< k"
      like every small count. Where either figure is hidden it is hidden too — it would
      give the hidden one back (the reason is the complement's).
    * ``ended_single_ors`` is not the difference of shown figures (its total, the ended
      episodes with at least one ORS, is never shown), and beside "Klienter" and the
      classified it would publish the ended episodes without any ORS; neither it nor
      ``ended`` leaves the server on anonymised figures.

    Run after the table's and the ETR's suppression (and again after the benchmark's)."""
    # SECURITY: shown only as a difference of two figures shown here; never single-ORS.
    for c in ("ended", "ended_single_ors"):
        if c in etr:
            etr[c] = None
    if "ended_no_etr" not in etr or "ended_no_etr" in etr_suppressed:
        return
    value = etr["ended_no_etr"]
    classified = table.get("inactive", {}).get("n_classified")
    judged = etr.get("ended_evaluable")
    if (
        value is None
        or classified is None
        or judged is None
        or int(value) != int(classified) - int(judged)
    ):
        etr["ended_no_etr"] = None
        etr_suppressed["ended_no_etr"] = REASON_COMPLEMENTARY
    elif 0 < int(value) < k:
        etr["ended_no_etr"] = None
        etr_suppressed["ended_no_etr"] = reason_small(k)


def _round1(value: float) -> float:
    """One decimal, half away from zero (as the pages display numbers)."""
    from decimal import ROUND_HALF_UP, Decimal

    return float(Decimal(repr(float(value))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _spread_summary(
    rows: list[dict[str, Any]], *, k: int, n_therapists: int, held: bool
) -> tuple[dict[str, Any], str | None]:
    """(summary, notice) of the per-therapist mean ORS change of active episodes.

    Only therapists with at least k clients with an ORS change count. The summary is the
    number of those therapists, the median and the quartiles (numpy's linear method),
    rounded to one decimal: no minimum or maximum, no single value. Shown only with at
    least ``spread_min_therapists(k)`` such therapists (with 3, min/median/max ARE the
    three values; a leader with two consented shares would get the third)."""
    import numpy as np

    values = [
        float(r["ors_change"])
        for r in rows
        if r.get("ors_change") is not None and int(r.get("n_ors_change") or 0) >= k
    ]
    if held:
        return {}, "held"
    if not may_show_therapist_spread(n_therapists) or len(values) < spread_min_therapists(k):
        return {}, "few"
    q1, median, q3 = (float(v) for v in np.percentile(values, [25, 50, 75]))
    return {
        "n_therapists": len(values),
        "median": _round1(median),
        "q1": _round1(q1),
        "q3": _round1(q3),
    }, None


ETR_SHOWN = (
    "ended_evaluable",
    "reaching_target",
    "dropout",
    "reaching_target_share",
    "dropout_share",
    "relative_effect_size",
)


# --- The cross-organisation benchmark --------------------------------------------------

# With two organisations, "all organisations" minus one's own IS the other one.
MIN_BENCHMARK_ORGANISATIONS = 3
REASON_FEW_ORGANISATIONS = (
    f"fewer than {MIN_BENCHMARK_ORGANISATIONS} organisations with episodes here: "
    "the others' figures would be one organisation's"
)
REASON_OTHERS_SMALL = (
    "hidden: the other organisations' part of this figure rests on too few clients"
)
_EPISODE_FAMILY = "episodes"


def benchmark_organisations(period_key: str, as_of: date) -> dict[str, int]:
    """Per side (active/inactive): how many organisations have episodes there, for one
    period (all ages). Reads each organisation's figures of that period; those of a
    fixed period that nobody has looked at yet are computed first (once)."""
    from datapolicy.models import Organisation

    def rows() -> dict[int, tuple[Any, Any]]:
        return {
            int(oid): (a, i)
            for oid, a, i in StatsSnapshot.objects.filter(
                scope_kind=ScopeKind.ORGANISATION, period_key=period_key, age_group="all"
            ).values_list(
                "organisation_id",
                "payload__table__active__episodes",
                "payload__table__inactive__episodes",
            )
        }

    have = rows()
    active_orgs = set(Organisation.objects.filter(is_active=True).values_list("pk", flat=True))
    missing = active_orgs - set(have)
    for oid in missing:
        snapshot_get(
            kind=ScopeKind.ORGANISATION,
            organisation_id=oid,
            scope_id=oid,
            period_key=period_key,
            as_of=as_of,
            age_group="all",
        )
    if missing:
        have = rows()
    return {
        "active": sum(1 for a, _i in have.values() if int(a or 0) > 0),
        "inactive": sum(1 for _a, i in have.values() if int(i or 0) > 0),
    }


def benchmark_figures(
    *,
    organisation: Any,
    period_key: str,
    as_of: date,
    k: int,
    own_snapshot: StatsSnapshot | None = None,
) -> Figures:
    """The platform's anonymised figures as ``organisation`` may compare with them.

    The platform is its own figures plus the other organisations'; a viewer knows their
    own organisation's exact figures, so platform minus own gives "the others". So: with
    fewer than three organisations with episodes on a side (active/inactive) that side
    is not shown (the others would be one named municipality), a platform cell is hidden
    where the others' part of it (platform count minus own count, per side and family of
    columns) is 1 … k−1 clients, and so is a trajectory point whose others' n is. All ages
    only: the platform's age groups add up, so per-age comparisons could be subtracted.
    """
    age_group = "all"
    from dataclasses import replace

    from .anonymise import STAT_FAMILIES

    psnap = snapshot_get(
        kind=ScopeKind.PLATFORM,
        organisation_id=0,
        scope_id=0,
        period_key=period_key,
        as_of=as_of,
        age_group=age_group,
    )
    platform = figures_for(psnap, anonymised=True, k=k)
    per_side = benchmark_organisations(period_key, as_of)
    if max(per_side.values()) < MIN_BENCHMARK_ORGANISATIONS:
        hidden = _figures_data({}, anonymised=True, k=k, mask=_HIDE_ALL)
        hidden["hidden_reason"] = REASON_FEW_ORGANISATIONS
        for side in ("active", "inactive"):
            hidden["suppressed"][side] = dict.fromkeys(STATISTICS_COLUMNS, REASON_FEW_ORGANISATIONS)
        return Figures(snapshot=psnap, anonymised=True, k=k, **hidden)
    # The organisation's snapshot of this period (all ages), when the caller has it.
    osnap = own_snapshot or snapshot_get(
        kind=ScopeKind.ORGANISATION,
        organisation_id=organisation.pk,
        scope_id=organisation.pk,
        period_key=period_key,
        as_of=as_of,
        age_group=age_group,
    )
    p_table = (psnap.payload or {}).get("table") or {}
    o_table = (osnap.payload or {}).get("table") or {}
    claimed = {c for _n, members in STAT_FAMILIES.values() for c in members}
    families = {
        _EPISODE_FAMILY: ("episodes", tuple(c for c in STATISTICS_COLUMNS if c not in claimed)),
        **STAT_FAMILIES,
    }

    def others_small(p: dict[str, Any], o: dict[str, Any], count: str) -> bool:
        rest = int(p.get(count) or 0) - int(o.get(count) or 0)
        return 0 < rest < k

    table = {side: dict(platform.table[side]) for side in ("active", "inactive")}
    suppressed = {side: dict(platform.suppressed[side]) for side in ("active", "inactive")}
    for side in ("active", "inactive"):
        if per_side[side] < MIN_BENCHMARK_ORGANISATIONS:
            for c in STATISTICS_COLUMNS:
                table[side][c] = None
                suppressed[side][c] = REASON_FEW_ORGANISATIONS
            continue
        p, o = p_table.get(side) or {}, o_table.get(side) or {}
        whole = others_small(p, o, "episodes")
        # The outcome classes are parts of the classified: one hidden hides them all
        # (else the others' classified minus their other classes would give it back).
        classes_small = any(others_small(p, o, c) for c in OUTCOME_FAMILIES)
        for name, (count, members) in families.items():
            if whole or others_small(p, o, count) or (classes_small and name in OUTCOME_FAMILIES):
                cols = STATISTICS_COLUMNS if whole else members
                for c in cols:
                    if c in table[side] and table[side][c] is not None:
                        table[side][c] = None
                        suppressed[side][c] = REASON_OTHERS_SMALL
                if name == "ors_start" and table[side].get("effect_size_pct") is not None:
                    table[side]["effect_size_pct"] = None  # the % reveals the start
                    suppressed[side]["effect_size_pct"] = REASON_OTHERS_SMALL
    # Across dates: the others' change since an earlier platform publication, per figure.
    publication = (
        Publication.objects.filter(organisation_id=0, period_key=period_key)
        .defer("fingerprint", "unit_tree")
        .first()
    )
    held = benchmark_held(publication, organisation.pk, k) if publication else set()
    for side in ("active", "inactive"):
        for name, (_count, members) in families.items():
            if {f"{side}:{name}", f"values:{name}"} & held:
                cols = STATISTICS_COLUMNS if name == _EPISODE_FAMILY else members
                for c in cols:
                    if table[side].get(c) is not None:
                        table[side][c] = None
                        suppressed[side][c] = REASON_CHANGED
                if name == "ors_start" and table[side].get("effect_size_pct") is not None:
                    table[side]["effect_size_pct"] = None
                    suppressed[side]["effect_size_pct"] = REASON_CHANGED
    etr = dict(platform.etr)
    etr_suppressed = dict(platform.etr_suppressed)
    etr_members = {
        "ended_evaluable": ETR_SHOWN,
        "reaching_target": ("reaching_target", "reaching_target_share", "dropout_share"),
        "dropout": ("dropout", "dropout_share", "reaching_target_share"),
        "n_relative_effect": ("relative_effect_size",),
    }
    for name, cols in etr_members.items():
        if f"etr:{name}" in held:
            for c in cols:
                if etr.get(c) is not None:
                    etr[c] = None
                    etr_suppressed[c] = REASON_CHANGED
    p_etr = (psnap.payload or {}).get("etr") or {}
    o_etr = (osnap.payload or {}).get("etr") or {}
    for count, members in (
        (
            "ended_evaluable",
            ("reaching_target", "dropout", "reaching_target_share", "dropout_share"),
        ),
        ("n_relative_effect", ("relative_effect_size",)),
    ):
        parts_small = count == "ended_evaluable" and any(
            others_small(p_etr, o_etr, c) for c in ("reaching_target", "dropout")
        )
        if others_small(p_etr, o_etr, count) or parts_small:
            for c in members:
                etr[c] = None
                etr_suppressed[c] = REASON_OTHERS_SMALL
    # Trajectory: a point's n of the others (platform n − own n) must not be 1 … k−1
    # either (with one's own scores known, the median would narrow down theirs).
    own_points = {
        int(pt["session_number"]): pt for pt in (osnap.payload or {}).get("trajectory") or []
    }
    p_points = {
        int(pt["session_number"]): pt for pt in (psnap.payload or {}).get("trajectory") or []
    }
    trajectory = []
    for point in platform.trajectory:
        point = dict(point)
        number = int(point["session_number"])
        full, own = p_points.get(number) or {}, own_points.get(number) or {}
        for scale in ("ors", "srs"):
            held_point = f"traj:{scale}:{min(number, 64)}" in held
            if others_small(full, own, f"n_{scale}") or held_point:
                point[f"n_{scale}"] = None
                point[f"{scale}_median"] = None
        if point.get("ors_median") is not None or point.get("srs_median") is not None:
            trajectory.append(point)
    # the others' hidden figures above hide what is derived from them
    etr_unjudged_anonymised(table, etr, etr_suppressed, k=k)
    return replace(
        platform,
        table=table,
        suppressed=suppressed,
        etr=etr,
        etr_suppressed=etr_suppressed,
        trajectory=trajectory,
    )
