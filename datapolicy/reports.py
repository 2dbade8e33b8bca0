"""Reports: management information for use outside the organisation.

A report is a saved dashboard selection (scope, fixed period, age group) whose figures
are computed once, anonymised with the organisation's k, and frozen. Draft -> approved
by a named approver (never the report's author: four eyes) -> exportable (XLSX);
withdrawn at any time. Every step is a ReportEvent and an access-log entry.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import pandas as pd
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .access import roles_of, unit_descendant_ids
from .differencing import Fingerprint, build_fingerprint, decode, fingerprint_of, first_conflict
from .models import AgeGroup, Organisation, Report, ReportEvent, Role, Unit
from .services import Action, access_log_write

REPORT_FIGURE_COLUMNS = (
    "episodes",
    "sessions_per_episode",
    "treatment_months",
    "ors_start",
    "ors_change",
    "effect_size_d",
    "srs_start",
    "srs_change",
    "n_classified",
    "reliable_improvement",
    "reliable_deterioration",
    "no_reliable_change",
    "clinically_significant",
)


COLUMN_LABELS = {
    "episodes": gettext_lazy("Episodes"),
    "sessions_per_episode": gettext_lazy("Sessions per episode"),
    "treatment_months": gettext_lazy("Months in treatment"),
    "ors_start": gettext_lazy("ORS at start"),
    "ors_change": gettext_lazy("ORS change"),
    "effect_size_d": gettext_lazy("Effect size"),
    "srs_start": gettext_lazy("SRS at start"),
    "srs_change": gettext_lazy("SRS change"),
    "n_classified": gettext_lazy("Episodes with two or more ORS"),
    "reliable_improvement": gettext_lazy("Reliable improvement"),
    "reliable_deterioration": gettext_lazy("Reliable deterioration"),
    "no_reliable_change": gettext_lazy("No reliable change"),
    "clinically_significant": gettext_lazy("Clinically significant change"),
}


# What a report hidden by rule 8 says instead of its figures (the dashboards' words).
FEW_THERAPISTS_TEXT = gettext_lazy(
    "Too few therapists to show anonymised figures: with fewer than 3 therapists in this "
    "selection, one therapist's figures could be worked out."
)


def column_label(name: str) -> str:
    return str(COLUMN_LABELS.get(name, name))


def hidden_note(k: int) -> str:
    """What a hidden cell of a report means, on the page and in the export alike.

    Every hidden cell reads the same ("hidden" with this note), whether it rests on
    1 … k−1 clients or was hidden as a complement: the complement is never a small cell
    (it is chosen among the shown non-zero cells), so telling the two apart says "this
    one holds k or more" — and with a total and the other parts shown that can give the
    small one back (docs/datapolicy.md, Reports). "< k" is not claimed either: it would
    be false for a complement, which may hold many clients. The same note as the
    dashboards, their exports and the statistics API (stats.reasons.hidden_note)."""
    from stats.reasons import hidden_note as note

    return note(k)


class ReportNotApproved(PermissionDenied):
    """Only an approved report may leave the organisation."""


# --- Fixed periods ------------------------------------------------------------------
#
# SECURITY: only whole calendar years, halves and quarters are offered (no free date
# ranges), so that two overlapping selections cannot be differenced to isolate one
# person's episodes; scopes are the organisation or one unit with everything below it.


def period_bounds(code: str) -> tuple[dt.date, dt.date]:
    """'2026' / '2026-H1' / '2026-Q3' -> (first day, last day). ValueError otherwise."""
    year_text, _sep, part = code.partition("-")
    if not (year_text.isascii() and year_text.isdigit() and len(year_text) == 4):
        raise ValueError(code)
    year = int(year_text)
    if not part:
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    months = {"H1": (1, 6), "H2": (7, 12), "Q1": (1, 3), "Q2": (4, 6), "Q3": (7, 9), "Q4": (10, 12)}
    if part not in months:
        raise ValueError(code)
    first, last = months[part]
    end = dt.date(year + (last == 12), 1 if last == 12 else last + 1, 1) - dt.timedelta(days=1)
    return dt.date(year, first, 1), end


def period_choices(today: dt.date, years: int = 3) -> list[tuple[str, str]]:
    """The fixed periods that have ended (their last day before ``today``) of this year
    and ``years``-1 back, the most recently ended first (the longer of two that end on
    the same day first). An unfinished period (the current quarter, half or year) is not
    offered: its frozen figures would be a part-period under a whole period's name."""
    ended: list[tuple[dt.date, dt.date, str]] = []
    for year in range(today.year, today.year - years, -1):
        for part in ("", "-H2", "-H1", "-Q4", "-Q3", "-Q2", "-Q1"):
            code = f"{year}{part}"
            start, end = period_bounds(code)
            if end < today:
                ended.append((end, start, code))
    ended.sort(key=lambda p: (-p[0].toordinal(), p[1]))
    return [(code, code) for _end, _start, code in ended]


# --- Figures ------------------------------------------------------------------------


def _clean_selection(organisation: Organisation, selection: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    scope = selection.get("scope") or "org"
    unit_id = selection.get("unit_id")
    if scope == "unit":
        try:
            unit = Unit.objects.for_org(organisation).get(pk=int(unit_id or 0))
            unit_id = unit.pk
        except (Unit.DoesNotExist, ValueError, TypeError):
            errors["unit_id"] = _("Choose a unit of the organisation.")
    elif scope == "org":
        unit_id = None
    else:
        errors["scope"] = _("Choose the organisation or a unit.")
    period = str(selection.get("period") or "")
    if period not in dict(period_choices(timezone.localdate())):
        errors["period"] = _("Choose one of the fixed periods.")
    age_group = selection.get("age_group") or ""
    if age_group and age_group not in AgeGroup.values:
        errors["age_group"] = _("Unknown age group.")
    if errors:
        raise ValidationError(errors)
    return {"scope": scope, "unit_id": unit_id, "period": period, "age_group": age_group}


def _selection_frames(
    organisation: Organisation, selection: dict[str, Any], as_of: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The sessions (up to ``as_of``) of the episodes the selection counts, and their
    episode frame as of ``as_of`` (None when there are none)."""
    from stats.engine import episode_frame
    from stats.frames import org_stats_settings, sessions_frame_for_org

    start, _end = period_bounds(selection["period"])
    frame = sessions_frame_for_org(organisation.pk)
    if selection.get("scope") == "unit":
        units = unit_descendant_ids(organisation, [int(selection["unit_id"])])
        frame = frame.loc[frame["unit_id"].isin(list(units))]
    if selection.get("age_group"):
        frame = frame.loc[frame["age_group"] == selection["age_group"]]
    frame = frame.loc[frame["session_date"] <= pd.Timestamp(as_of)]
    in_period = frame.loc[frame["session_date"] >= pd.Timestamp(start), "episode_id"].unique()
    frame = frame.loc[frame["episode_id"].isin(in_period)]
    if frame.empty:
        return frame, None
    settings = org_stats_settings(organisation)
    return frame, episode_frame(frame, as_of=as_of, settings=settings)


def report_figures(*, organisation: Organisation, selection: dict[str, Any]) -> dict[str, Any]:
    """Anonymised figures for a selection, computed now through the statistics engine."""
    return _figures_and_fingerprint(organisation, selection)[0]


def _figures_and_fingerprint(
    organisation: Organisation, selection: dict[str, Any]
) -> tuple[dict[str, Any], bytes]:
    """Anonymised figures for a selection, computed now through the statistics engine,
    and the internal episode fingerprint of its published cells (``differencing``).

    Episodes with at least one session in the period, as of the period's end (or today
    if earlier). The table is suppressed with the organisation's k (complementary
    suppression across active/inactive); trajectory points below k are dropped. The
    figures hold aggregates only: no ids of clients, episodes or therapists. The
    fingerprint (keyed digests, never exported or shown) is stored apart from them.
    """
    from stats.anonymise import (
        MIN_THERAPISTS_FOR_SCOPE,
        REASON_FEW_THERAPISTS,
        suppress_table,
        suppress_trajectory,
    )
    from stats.engine import json_scalar, median_trajectory, statistics_table
    from stats.reasons import reason_code

    start, end = period_bounds(selection["period"])
    as_of = min(end, timezone.localdate())
    k = organisation.small_cell_k
    frame, episodes = _selection_frames(organisation, selection, as_of)
    figures: dict[str, Any] = {
        "k": k,
        "as_of": as_of.isoformat(),
        "period": [start.isoformat(), end.isoformat()],
        "columns": list(REPORT_FIGURE_COLUMNS),
        "rows": [],
        "trajectory": [],
    }
    if episodes is None:
        return figures, build_fingerprint(organisation, figures, frame, episodes)
    # SECURITY: rule 8 of docs/datapolicy.md: a selection whose episodes have 1 or 2
    # therapists is not shown to roles without identity rights; one therapist's figures
    # would leave the organisation as "anonymised" (and a colleague's follow from one's
    # own). Nothing is published, so there is nothing to compare either (differencing).
    if int(frame["therapist_id"].nunique()) < MIN_THERAPISTS_FOR_SCOPE:
        figures["hidden_reason"] = REASON_FEW_THERAPISTS
        return figures, build_fingerprint(organisation, figures, frame, episodes)
    table = statistics_table(episodes)
    shown, reasons = suppress_table(table, k=k)
    for active, row in shown.iterrows():
        hidden = [c for c in REPORT_FIGURE_COLUMNS if pd.notna(reasons.loc[active, c])]
        figures["rows"].append(
            {
                "active": bool(active),
                "values": {c: json_scalar(row[c]) for c in REPORT_FIGURE_COLUMNS},
                "hidden": hidden,
                # Why each cell is hidden (stats.reasons codes: small_cell, complement),
                # for the record. SECURITY: never shown or exported per cell — telling
                # the small cell from its complement can give a hidden count back
                # (docs/datapolicy.md, Reports); every hidden cell reads alike.
                "reasons": {c: reason_code(reasons.loc[active, c]) for c in hidden},
            }
        )
    traj = suppress_trajectory(median_trajectory(frame, as_of=as_of), k=k)
    for number, point in traj.iterrows():
        figures["trajectory"].append(
            {
                "session_number": int(number),  # type: ignore[call-overload]
                "ors_median": json_scalar(point["ors_median"]),
                "srs_median": json_scalar(point["srs_median"]),
                "n_ors": json_scalar(point["n_ors"]),
                "n_srs": json_scalar(point["n_srs"]),
            }
        )
    return figures, build_fingerprint(organisation, figures, frame, episodes)


# --- Life cycle ---------------------------------------------------------------------


def _event(report: Report, actor: Any, action: str, note: str = "") -> None:
    ReportEvent.objects.create(
        organisation_id=report.organisation_id,
        report=report,
        actor=actor,
        action=action,
        note=note[:300],
    )


def _log(actor: Any, report: Report, action: str, request: HttpRequest | None) -> None:
    roles = roles_of(actor, report.organisation_id)
    role = next((r for r in (Role.MI_OFFICER, Role.DP_ADMIN, Role.UNIT_LEADER) if r in roles), "")
    access_log_write(
        actor=actor,
        organisation=report.organisation_id,
        action=action,
        object_type="report",
        object_id=report.pk,
        role=str(role) if role else (sorted(roles)[0] if roles else ""),
        request=request,
    )


def _lock_reports_of(organisation: Organisation) -> Organisation:
    """Serialise report creation and approval within one organisation (row lock on the
    organisation until the transaction ends), so that two reports checked at the same
    time cannot both pass the differencing check against each other."""
    return Organisation.objects.select_for_update().get(pk=organisation.pk)


def _refuse_small_differences(
    organisation: Organisation,
    figures: dict[str, Any],
    fingerprint: Fingerprint,
    *,
    exclude_pk: int | None,
) -> None:
    """ValidationError when the report could be subtracted from another report of the
    organisation to reveal 1 … k−1 episodes in a published cell. The message names the
    other report and k, never the size of the difference."""
    conflict = first_conflict(organisation, figures, fingerprint, exclude_pk=exclude_pk)
    if conflict is not None:
        others, k = conflict
        if len(others) == 1:
            message = _(
                "The report could be subtracted from the report «%(title)s» and reveal "
                "fewer than %(k)s episodes; choose another period or selection."
            ) % {"title": others[0].title, "k": k}
        elif not others:
            message = _(
                "The report would reveal fewer than %(k)s episodes; choose another period "
                "or selection."
            ) % {"k": k}
        else:
            message = _(
                "Together with the reports %(titles)s the report would reveal fewer than "
                "%(k)s episodes (by adding and subtracting their figures); choose another "
                "period or selection."
            ) % {"titles": ", ".join(f"«{o.title}»" for o in others), "k": k}
        raise ValidationError(message, code="report_differencing")


@transaction.atomic
def report_create(
    *,
    actor: Any,
    organisation: Organisation,
    title: str,
    selection: dict[str, Any],
    request: HttpRequest | None = None,
) -> Report:
    """A draft with its anonymised figures frozen now (the management-information
    officer's step)."""
    if Role.MI_OFFICER not in roles_of(actor, organisation):
        raise PermissionDenied
    title = (title or "").strip()
    from .validators import reject_cpr

    if not title:
        raise ValidationError({"title": _("Give the report a title.")})
    try:
        reject_cpr(title)
    except ValidationError as exc:
        raise ValidationError({"title": exc.messages}) from None
    clean = _clean_selection(organisation, selection)
    organisation = _lock_reports_of(organisation)
    figures, fingerprint = _figures_and_fingerprint(organisation, clean)
    # SECURITY: refuse a report that could be subtracted from another one to a small group.
    _refuse_small_differences(organisation, figures, decode(fingerprint), exclude_pk=None)
    report = Report.objects.create(
        organisation=organisation,
        title=title,
        selection=clean,
        figures=figures,
        episode_fingerprint=fingerprint,
        created_by=actor,
    )
    _event(report, actor, "created")
    _log(actor, report, Action.CREATE, request)
    return report


def may_approve(actor: Any, report: Report) -> bool:
    """A named approver of the organisation who did not write the report (four eyes)."""
    return (
        report.created_by_id != actor.pk
        and report.organisation.report_approvers.filter(pk=actor.pk).exists()
        and bool(roles_of(actor, report.organisation_id))
    )


def may_withdraw(actor: Any, report: Report) -> bool:
    """The report's author, a named approver or a data-policy admin (the page shows the
    button only to them)."""
    return (
        report.created_by_id == actor.pk
        or Role.DP_ADMIN in roles_of(actor, report.organisation_id)
        or report.organisation.report_approvers.filter(pk=actor.pk).exists()
    )


@transaction.atomic
def report_approve(
    *, actor: Any, report: Report, note: str = "", request: HttpRequest | None = None
) -> Report:
    # SECURITY: only the organisation's named approvers, and never the author.
    if not may_approve(actor, report):
        raise PermissionDenied
    if report.status != Report.Status.DRAFT:
        raise ValidationError(_("Only a draft can be approved."))
    # SECURITY: again at approval — k may have been raised, and a report created
    # concurrently (or before this check existed) may now stand beside this one.
    organisation = _lock_reports_of(report.organisation)
    _refuse_small_differences(
        organisation, report.figures, fingerprint_of(report), exclude_pk=report.pk
    )
    report.status = Report.Status.APPROVED
    report.save(update_fields=["status"])
    _event(report, actor, "approved", note)
    _log(actor, report, Action.APPROVE, request)
    return report


@transaction.atomic
def report_withdraw(
    *, actor: Any, report: Report, note: str = "", request: HttpRequest | None = None
) -> Report:
    """The author, a named approver or a data-policy admin withdraws a report."""
    if not may_withdraw(actor, report):
        raise PermissionDenied
    if report.status == Report.Status.WITHDRAWN:
        raise ValidationError(_("The report is already withdrawn."))
    report.status = Report.Status.WITHDRAWN
    report.save(update_fields=["status"])
    _event(report, actor, "withdrawn", note)
    _log(actor, report, Action.WITHDRAW, request)
    return report


@transaction.atomic
def report_export(*, actor: Any, report: Report, request: HttpRequest | None = None) -> bytes:
    """The approved report as an XLSX workbook. Refused unless approved."""
    if not roles_of(actor, report.organisation_id) & {Role.MI_OFFICER, Role.DP_ADMIN}:
        raise PermissionDenied
    # SECURITY: an unapproved (draft or withdrawn) report never leaves the organisation.
    if report.status != Report.Status.APPROVED:
        raise ReportNotApproved(_("Only an approved report can be exported."))
    data = report_xlsx(report)
    _event(report, actor, "exported")
    _log(actor, report, Action.EXPORT, request)
    return data


def spreadsheet_text(value: Any) -> Any:
    """A text value a spreadsheet would run as a formula (it starts with = + - @, a tab
    or a carriage return — OWASP's CSV-injection list — or an apostrophe) gets a leading
    apostrophe: the session export's guard (``measures.importer.FORMULA_START``), so
    every export guards alike. Other values are returned unchanged."""
    from measures.importer import FORMULA_START

    if isinstance(value, str) and re.match(FORMULA_START, value):
        return "'" + value
    return value


def report_xlsx(report: Report) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Rapport"

    def append(values: list[Any]) -> None:
        # SECURITY: every text cell guarded (the title and names are free text).
        ws.append([spreadsheet_text(str(v) if isinstance(v, Promise) else v) for v in values])

    figures = report.figures
    append([report.title])
    append([_("Period"), report.selection.get("period", "")])
    append([_("Computed as of"), figures.get("as_of", "")])
    append([_("Small-cell threshold k"), figures.get("k", "")])
    if figures.get("hidden_reason"):
        append([str(FEW_THERAPISTS_TEXT)])
    approved = report.events.filter(action="approved").select_related("actor").last()
    if approved is not None:
        append([_("Approved by"), approved.actor.get_full_name(), approved.at.isoformat()])
    append([])
    append(["", *[column_label(c) for c in figures.get("columns", [])]])
    any_hidden = False
    for row in figures.get("rows", []):
        label = _("Active") if row["active"] else _("Inactive")
        # SECURITY: every hidden cell alike, whatever its reason (hidden_note).
        cells = [
            _("hidden") if c in row["hidden"] else row["values"].get(c)
            for c in figures.get("columns", [])
        ]
        any_hidden = any_hidden or bool(row["hidden"])
        append([label, *cells])
    if any_hidden:
        append([])
        append([f"{_('hidden')}: {hidden_note(figures['k'])}"])
    if figures.get("trajectory"):
        ws2 = wb.create_sheet("Forløb")
        ws2.append(["session_number", "ors_median", "srs_median", "n_ors", "n_srs"])
        for p in figures["trajectory"]:
            ws2.append(
                [p["session_number"], p["ors_median"], p["srs_median"], p["n_ors"], p["n_srs"]]
            )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
