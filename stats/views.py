"""Statistics pages: therapist "Mine tal", unit and organisation dashboards, benchmark,
exports. Thin: authorisation in stats.permissions, figures from stats.selectors."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from datapolicy.models import Role
from datapolicy.scoping import TenantPageMixin
from datapolicy.services import Action, access_log_write

from . import charts, exports
from .anonymise import (
    MIN_THERAPISTS_FOR_SCOPE,
    REASON_COMPLEMENTARY,
    REASON_FEW_THERAPISTS,
    reason_small,
    spread_min_therapists,
)
from .frames import org_stats_settings
from .models import ScopeKind
from .permissions import (
    DASHBOARD_ROLES,
    ScopeAccess,
    dashboard_units,
    scope_access,
    small_cell_k,
)
from .publications import REASON_CHANGED
from .reasons import HIDDEN_CODE, hidden_note, public_code
from .selectors import (
    AGE_FILTERS,
    ANONYMISED_PERIODS,
    MASK_RULES,
    MIN_BENCHMARK_ORGANISATIONS,
    PERIODS,
    REASON_FEW_ORGANISATIONS,
    REASON_OTHERS_SMALL,
    Figures,
    benchmark_figures,
    etr_unjudged_anonymised,
    figures_for,
    figures_version,
    period_as_of,
    snapshot_get,
)
from .templatetags.stats_format import COUNT_COLUMNS


def _export_base(kind: str, scope_id: int) -> str:
    """The export URL without "<table>.<fmt>" (the template appends them)."""
    url = reverse(
        "stats_export", kwargs={"kind": kind, "scope_id": scope_id, "table": "t", "fmt": "csv"}
    )
    return url[: -len("t.csv")]


def period_choices(anonymised: bool = False) -> list[tuple[str, str]]:
    """The periods a page offers: anonymised figures only at closed month-ends
    (stats.publications), one's own also until today.

    A dashboard period is a reference date, not a window (statistics.md: the reference
    date is "today, or the end of the chosen period"): "last year" is every episode with
    sessions up to and including last 31 December, as of that day. The labels say so
    and name the date, so that nobody reads them as "the sessions of last year" (which is
    what a report's period means, datapolicy.reports)."""
    from django.utils.formats import date_format

    def until(text: str, period: str) -> str:
        return text % {"date": date_format(period_as_of(period)[1], "j. F Y")}

    labels = {
        "all": lambda: _("Until today"),
        "month": lambda: until(_("Everything up to the end of last month (%(date)s)"), "month"),
        "quarter": lambda: until(
            _("Everything up to the end of last quarter (%(date)s)"), "quarter"
        ),
        "year": lambda: until(_("Everything up to the end of last year (%(date)s)"), "year"),
    }
    return [(p, labels[p]()) for p in (ANONYMISED_PERIODS if anonymised else PERIODS)]


def age_choices() -> list[tuple[str, str]]:
    labels = {
        "all": _("All age groups"),
        "adult": _("Adults"),
        "youth": _("Youth"),
        "child": _("Children"),
    }
    return [(a, labels[a]) for a in AGE_FILTERS]


def _filters(request: HttpRequest, anonymised: bool = False) -> tuple[str, str]:
    """(period, age group) of the request; an anonymised page falls back to the last
    closed month (it has no "until today")."""
    offered = ANONYMISED_PERIODS if anonymised else PERIODS
    default = offered[0]
    period = request.GET.get("period", default)
    age = request.GET.get("age", "all")
    return (period if period in offered else default, age if age in AGE_FILTERS else "all")


class StatsMixin(TenantPageMixin):
    allowed_roles = DASHBOARD_ROLES
    scope = "org"

    # The cross-organisation benchmark compares all ages only: the platform's age groups
    # add up, so a per-age comparison could be subtracted (docs/datapolicy.md).
    all_ages_only = False

    def load(
        self, access: ScopeAccess, *, kind: str | None = None, scope_id: int | None = None
    ) -> tuple[Figures, dict[str, Any]]:
        period, age = _filters(self.request, access.anonymised)
        if self.all_ages_only:
            age = "all"
        period_key, as_of = period_as_of(period)
        snap = snapshot_get(
            kind=kind or access.kind,
            organisation_id=access.organisation_id,
            scope_id=access.scope_id if scope_id is None else scope_id,
            period_key=period_key,
            as_of=as_of,
            age_group=age,
        )
        if access.via_grant:
            access_log_write(
                actor=self.request.user,
                organisation=self.organisation,
                action=Action.VIEW,
                object_type="therapist_figures",
                object_id=access.scope_id,
                role=self.acting_role,
                request=self.request,
            )
        k = small_cell_k(self.organisation)
        # Anonymised figures depend on every sibling snapshot (stats.siblings): their
        # version is part of the fragment cache key (two small queries, no payload).
        version, family = figures_version(snap, anonymised=access.anonymised)
        # Lazy: with the panels' fragment cached, a request neither unpacks the payload nor
        # builds tables and figures (the dashboard must cost about a primary-key lookup).
        figs: Any = SimpleLazyObject(
            lambda: figures_for(snap, anonymised=access.anonymised, k=k, family=family)
        )

        def chart(build: Any, rows: str, show: str | None = None) -> Any:
            def make() -> Any:
                data = getattr(figs, rows)
                if not data or (show and not getattr(figs, show)):
                    return None
                return build(data)

            return make

        ctx = {
            "figures": figs,
            "k": k,
            "access": access,
            "period": period,
            "age": age,
            "periods": period_choices(access.anonymised),
            "ages": age_choices(),
            "published": access.anonymised,
            "computed_at": snap.computed_at,
            "as_of": snap.as_of,
            "table_rows": lambda: _table_rows(figs),
            "outcome_rows": lambda: _outcome_rows(figs),
            "trajectory_fig": lambda: self.trajectory_fig(figs.trajectory, age),
            "implementation_fig": chart(charts.implementation_figure, "implementation"),
            "spread_fig": chart(charts.spread_figure, "spread", "show_spread"),
            "spread_view": lambda: _spread_view(figs),
            "spread_applies": access.kind in (ScopeKind.UNIT, ScopeKind.ORGANISATION),
            "etr_view": lambda: _etr_view(figs),
            "quality_rows": lambda: _quality_rows(figs),
            # the fragment cache key of the panels (a new computation changes computed_at)
            # ("r10": fragments cached before the ETR panel's anonymised unjudged count;
            # MASK_RULES: before the siblings' rules last changed)
            "panels_key": f"r10-{MASK_RULES}-{snap.pk}-{version}-{access.anonymised}-{k}",
            "export_tables": exports.TABLES,
            "query": self.request.GET.urlencode(),
        }
        return figs, ctx

    def trajectory_fig(self, points: list[dict[str, Any]], age: str) -> dict[str, Any]:
        """The median trajectory with the organisation's cutoffs (its settings)."""
        settings = org_stats_settings(self.organisation)
        return charts.trajectory_figure(
            points,
            ors_cutoffs=settings.ors_cutoffs,
            srs_cutoff=settings.srs_cutoff,
            age_group=age,
        )


def display_number(value: float, decimals: int) -> str:
    """Round half away from zero, then format in the active language (Django's
    number_format alone truncates: 66.67 would show as 66,6)."""
    from decimal import ROUND_HALF_UP, Decimal

    quantum = Decimal(1).scaleb(-decimals)
    rounded = Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP)
    return str(number_format(rounded, decimals))


def reason_text(reason: str) -> str:
    """A suppression reason in the active language. The reasons are stored and compared
    as stable English keys (stats.anonymise, stats.publications, stats.selectors; the API
    gives them as they are) and translated here, when a page or an export shows them."""
    import re

    m = re.fullmatch(r"fewer than (\d+) clients", reason or "")
    if m:
        return _("fewer than %(k)s clients") % {"k": m.group(1)}
    texts = {
        REASON_COMPLEMENTARY: lambda: _(
            "hidden so that a suppressed neighbouring figure cannot be recovered by subtraction"
        ),
        REASON_FEW_THERAPISTS: lambda: (
            _(
                "fewer than %(n)s therapists in this selection: one therapist's figures could be "
                "derived"
            )
            % {"n": MIN_THERAPISTS_FOR_SCOPE}
        ),
        REASON_CHANGED: lambda: _(
            "hidden so that this month-end cannot be subtracted from an earlier published one"
        ),
        REASON_FEW_ORGANISATIONS: lambda: (
            _(
                "fewer than %(n)s organisations with episodes here: the others' figures would be "
                "one organisation's"
            )
            % {"n": MIN_BENCHMARK_ORGANISATIONS}
        ),
        REASON_OTHERS_SMALL: lambda: _(
            "hidden: the other organisations' part of this figure rests on too few clients"
        ),
    }
    text = texts.get(reason)
    return text() if text is not None else str(reason)


def is_small(reason: str | None, k: int) -> bool:
    """Hidden because the figure itself rests on 1 … k−1 clients (for the record only:
    never shown per cell, see :func:`shown_reason`)."""
    return reason == reason_small(k)


def shown_reason(reason: str, k: int) -> str:
    """A hidden cell's reason as the pages, exports and the statistics API show it.

    SECURITY (review round 10): a small cell, its complement and a benchmark cell whose
    other organisations' part is small read alike — one note (stats.reasons.hidden_note)
    — since telling them apart says "this one is not small", and with a shown total and
    shown parts that gives hidden counts back. Whole-selection reasons and a change since
    a publication keep their own text (stats.reasons.CELL_CODES)."""
    if public_code(reason) == HIDDEN_CODE:
        return hidden_note(k)
    return reason_text(reason)


def _text(figs: Figures, side: str, col: str, decimals: int) -> tuple[str, str | None]:
    """A cell as display text: a localised number; "hidden" when hidden, whatever the
    reason (the table explains it in a footnote; a small cell and its complement read
    alike, :func:`shown_reason`); "–" when empty."""
    reason = figs.suppressed[side].get(col)
    value = figs.table[side].get(col)
    if value is None:
        if not reason:
            return "–", None
        return _("hidden"), reason
    return display_number(value, decimals), None


def _cell(figs: Figures, side: str, col: str, decimals: int = 1) -> dict[str, Any]:
    text, reason = _text(figs, side, col, decimals)
    return {"value": figs.table[side].get(col), "text": text, "reason": reason}


class DisplayRows(list[dict[str, Any]]):
    """Table rows with ``notes``: the reasons of the hidden cells as shown
    (:func:`shown_reason`), numbered; each such cell carries its ``mark`` (shown next to "hidden"
    and explained under the table — a title tooltip is never seen on an iPad)."""

    notes: list[dict[str, Any]]


def _with_notes(
    rows: list[dict[str, Any]], k: int, sides: tuple[str, ...] = ("active", "inactive")
) -> DisplayRows:
    out = DisplayRows(rows)
    out.notes = []
    marks: dict[str, int] = {}
    for row in out:
        for side in sides:
            cell = row[side]
            reason = cell.get("reason")
            cell["mark"] = None
            if reason:
                # SECURITY: the shown reason, never the exact one (shown_reason)
                text = cell["reason"] = shown_reason(reason, k)
                if text not in marks:
                    marks[text] = len(marks) + 1
                    out.notes.append({"mark": marks[text], "text": text})
                cell["mark"] = marks[text]
    return out


def _table_rows(figs: Figures) -> DisplayRows:
    """The seed's table as display rows (formatted here, not by template includes: a
    dashboard request must stay cheap)."""
    rows = [
        {
            "label": label,
            "active": _cell(figs, "active", col, 0 if col in COUNT_COLUMNS else 1),
            "inactive": _cell(figs, "inactive", col, 0 if col in COUNT_COLUMNS else 1),
        }
        for col, label in exports.table_label_rows()
    ]
    effect: dict[str, Any] = {"label": _("Effect size") + " (d / %)"}
    for side in ("active", "inactive"):
        d_text, d_reason = _text(figs, side, "effect_size_d", 1)
        p_text, p_reason = _text(figs, side, "effect_size_pct", 1)
        if d_reason and p_reason:
            # both hidden: one mark for the cell, not "hidden / hidden %"
            effect[side] = {"text": d_text, "reason": d_reason}
        else:
            pct = f"{p_text} %" if p_reason is None and p_text != "–" else p_text
            effect[side] = {"text": f"{d_text} / {pct}", "reason": d_reason or p_reason}
    rows.append(effect)
    return _with_notes(rows, figs.k)


def _quality_rows(figs: Figures) -> DisplayRows:
    """The data-quality counts as display rows (one cell, ``value``), hidden cells as the
    statistics table shows them: "hidden" with a numbered note under the table, a small
    cell and a complement alike (:func:`shown_reason`)."""
    rows = []
    for col, label in exports.quality_label_rows():
        if col not in figs.quality:
            continue
        value = figs.quality[col]
        reason = figs.quality_suppressed.get(col)
        if value is None and reason:
            text = _("hidden")
        elif value is None:
            text = "–"
        else:
            text, reason = display_number(value, 0), None
        rows.append({"label": label, "value": {"value": value, "text": text, "reason": reason}})
    return _with_notes(rows, figs.k, sides=("value",))


def _quality_export_text(figs: Figures, col: str) -> str:
    reason = figs.quality_suppressed[col]
    return _("hidden") + f" ({shown_reason(reason, figs.k)})"


def _etr_view(figs: Figures) -> dict[str, str]:
    """ETR figures as display strings ("hidden" with the shown reason when hidden — a
    small cell and a complement alike, :func:`shown_reason` — "–" when not available)."""
    e, hidden = figs.etr, figs.etr_suppressed
    if figs.anonymised:
        # SECURITY: the unjudged counts as an anonymised view may show them, also for
        # figures that did not come through the selectors (idempotent on those that did).
        e, hidden = dict(e), dict(hidden)
        etr_unjudged_anonymised(figs.table, e, hidden, k=figs.k)

    def mark(col: str) -> str:
        return f"{_('hidden')} ({shown_reason(hidden[col], figs.k)})"

    def count_share(count: str, share: str) -> str:
        if count in hidden:
            return mark(count)
        if e.get(share) is None:
            return "–"
        return f"{e.get(count)} ({display_number(e[share] * 100, 1)} %)"

    rel = e.get("relative_effect_size")
    # The ended episodes that cannot be judged: on identified figures both counts; on
    # anonymised ones only those without an expected response, which are the difference
    # of two shown figures there (stats.selectors.etr_unjudged_anonymised); the ones with
    # a single ORS are not (docs/datapolicy.md, Anonymisation rule 6).
    if figs.anonymised:
        unjudged = {
            "ended_no_etr": mark("ended_no_etr")
            if "ended_no_etr" in hidden
            else str(e.get("ended_no_etr", "–"))
        }
    else:
        unjudged = {c: str(e.get(c, "–")) for c in ("ended_single_ors", "ended_no_etr")}
    return {
        **unjudged,
        "ended_evaluable": mark("ended_evaluable")
        if "ended_evaluable" in hidden
        else str(e.get("ended_evaluable", "–")),
        "reaching_target": count_share("reaching_target", "reaching_target_share"),
        "dropout": count_share("dropout", "dropout_share"),
        "relative_effect_size": mark("relative_effect_size")
        if "relative_effect_size" in hidden
        else ("–" if rel is None else display_number(rel, 1)),
    }


def _spread_view(figs: Figures) -> dict[str, Any]:
    """The spread's summary as display text (the chart has no hover on a touch device),
    or the notice why it is not shown."""
    s = figs.spread
    if s:
        return {
            "text": _(
                "%(n)s therapists. Median %(median)s; half of the therapists lie between "
                "%(q1)s and %(q3)s (the middle 50 %%, interquartile range)."
            )
            % {
                "n": s["n_therapists"],
                "median": display_number(s["median"], 1),
                "q1": display_number(s["q1"], 1),
                "q3": display_number(s["q3"], 1),
            }
        }
    if figs.spread_notice == "held":
        return {
            "notice": _(
                "The spread between therapists is not shown for this month-end: a "
                "therapist's figures changed by too few clients since an earlier published "
                "month-end."
            )
        }
    return {
        "notice": _(
            "The spread between therapists is shown only with at least %(n)s therapists who "
            "each have at least %(k)s clients with two ORS: with fewer, one therapist's "
            "figures could be worked out."
        )
        % {"n": spread_min_therapists(figs.k), "k": figs.k}
    }


def _outcome_rows(figs: Figures) -> DisplayRows:
    out = []
    for col, label in exports.outcome_label_rows():
        row: dict[str, Any] = {"label": label}
        for side in ("active", "inactive"):
            c = _cell(figs, side, col, 0)
            n = figs.table[side].get("n_classified")
            if c["value"] is not None and n and col != "n_classified":
                c["text"] += f" ({display_number(c['value'] / n * 100, 1)} %)"
            row[side] = c
        out.append(row)
    return _with_notes(out, figs.k)


class StatsIndexView(StatsMixin, TemplateView):
    """The dashboards this user may open."""

    template_name = "stats/index.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        ctx["units"] = dashboard_units(self.request.user, self.organisation, self.roles)
        ctx["is_therapist"] = Role.THERAPIST in self.roles
        return ctx


class TherapistFiguresView(StatsMixin, TemplateView):
    """ "Mine tal": a therapist's own figures (or shared ones under a live grant)."""

    template_name = "stats/therapist.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        user_id = kwargs.get("user_id", self.request.user.pk)
        access = scope_access(
            user=self.request.user,
            organisation=self.organisation,
            roles=self.roles,
            kind=ScopeKind.THERAPIST,
            scope_id=user_id,
        )
        _figs, data = self.load(access)
        ctx.update(data)
        ctx["export_base"] = _export_base("therapist", access.scope_id)
        return ctx


class MyFiguresView(TherapistFiguresView):
    allowed_roles = frozenset({Role.THERAPIST})


class _ScopeDashboardView(StatsMixin, TemplateView):
    """An anonymised unit or organisation dashboard (the scope decides who may see it)."""

    template_name = "stats/dashboard.html"
    kind: str = ""

    def scope_id(self, kwargs: dict[str, Any]) -> int:
        raise NotImplementedError

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        access = scope_access(
            user=self.request.user,
            organisation=self.organisation,
            roles=self.roles,
            kind=self.kind,
            scope_id=self.scope_id(kwargs),
        )
        _figs, data = self.load(access)
        ctx.update(data)
        ctx["export_base"] = _export_base(self.kind, access.scope_id)
        return ctx


class UnitDashboardView(_ScopeDashboardView):
    kind = ScopeKind.UNIT

    def scope_id(self, kwargs: dict[str, Any]) -> int:
        return int(kwargs["unit_id"])


class OrganisationDashboardView(_ScopeDashboardView):
    kind = ScopeKind.ORGANISATION

    def scope_id(self, kwargs: dict[str, Any]) -> int:
        return int(self.organisation.pk)


class BenchmarkView(StatsMixin, TemplateView):
    """The organisation against all organisations on the platform (anonymised)."""

    template_name = "stats/benchmark.html"
    all_ages_only = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        org = self.organisation
        access = scope_access(
            user=self.request.user,
            organisation=org,
            roles=self.roles,
            kind=ScopeKind.ORGANISATION,
            scope_id=org.pk,
        )
        own, data = self.load(access)
        platform_access = ScopeAccess(ScopeKind.PLATFORM, org.pk, 0, True, _("All organisations"))
        period, _age = _filters(self.request, anonymised=True)
        period_key, as_of = period_as_of(period)
        platform = benchmark_figures(
            organisation=org,
            period_key=period_key,
            as_of=as_of,
            k=small_cell_k(org),
            own_snapshot=own.snapshot,
        )
        ctx.update(data)
        ctx["ages"] = [(key, label) for key, label in data.get("ages", []) if key == "all"]
        ctx["platform"] = platform
        ctx["platform_rows"] = _table_rows(platform)
        ctx["platform_access"] = platform_access
        ctx["benchmark_fig"] = charts.benchmark_figure(
            own.trajectory, platform.trajectory, org.name
        )
        return ctx


PLATFORM_K = 5  # docs/datapolicy.md: the default small-cell threshold


class PlatformBenchmarkView(LoginRequiredMixin, TemplateView):
    """The platform operator: only the cross-organisation figures, anonymised."""

    template_name = "stats/platform.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if request.user.is_authenticated and not getattr(
            request.user, "is_platform_operator", False
        ):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        period, age = _filters(self.request, anonymised=True)
        period_key, as_of = period_as_of(period)
        snap = snapshot_get(
            kind=ScopeKind.PLATFORM,
            organisation_id=0,
            scope_id=0,
            period_key=period_key,
            as_of=as_of,
            age_group=age,
        )
        # Across organisations: the default k (no organisation's setting applies).
        k = PLATFORM_K
        figs = figures_for(snap, anonymised=True, k=k)
        ctx.update(
            {
                "figures": figs,
                "k": k,
                "table_rows": _table_rows(figs),
                # Across organisations: the cutoffs of statistics.md (the defaults).
                "trajectory_fig": charts.trajectory_figure(figs.trajectory, age_group=age),
                "computed_at": snap.computed_at,
                "as_of": snap.as_of,
                "period": period,
                "age": age,
                "periods": period_choices(anonymised=True),
                "ages": age_choices(),
                "published": True,
            }
        )
        return ctx


class ExportView(StatsMixin, View):
    """CSV/XLSX of one table of a scope, with the page's suppression."""

    def get(
        self, request: HttpRequest, kind: str, scope_id: int, table: str, fmt: str
    ) -> HttpResponse:
        if table not in exports.TABLES or fmt not in ("csv", "xlsx"):
            raise Http404
        if kind not in (ScopeKind.THERAPIST, ScopeKind.UNIT, ScopeKind.ORGANISATION):
            raise Http404
        access = scope_access(
            user=request.user,
            organisation=self.organisation,
            roles=self.roles,
            kind=kind,
            scope_id=scope_id,
        )
        figs, _ctx = self.load(access)
        # the reasons of hidden cells in the active language (stored as English keys)
        # (``figs`` is lazy: copy its fields rather than dataclasses.replace it)
        fields = {f.name: getattr(figs, f.name) for f in dataclass_fields(Figures)}
        # SECURITY: as the page shows them (shown_reason: a small cell and a complement alike)
        fields["suppressed"] = {
            side: {c: shown_reason(r, figs.k) for c, r in cells.items()}
            for side, cells in figs.suppressed.items()
        }
        # hidden data-quality counts as the page shows them: "hidden (reason)", a small count
        # and a complement alike
        fields["quality"] = {
            c: _quality_export_text(figs, c) if c in figs.quality_suppressed else v
            for c, v in figs.quality.items()
        }
        figs = Figures(**fields)
        rows = exports.rows_for(figs, table)
        name = f"{kind}-{scope_id}-{table}-{figs.snapshot.as_of.isoformat()}"
        if fmt == "csv":
            response = HttpResponse(exports.to_csv(rows), content_type="text/csv; charset=utf-8")
        else:
            response = HttpResponse(
                exports.to_xlsx(rows, table),
                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
        return response
