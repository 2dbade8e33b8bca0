"""GET /api/v1/stats/<scope>/<id>/?as_of=YYYY-MM-DD — the statistics contract.

Unrounded numbers. Roles and scopes as on the pages (stats.permissions). For anonymised
scopes (unit, organisation) hidden values are null and ``suppressed`` says why (in the
request's language) with a stable code in ``suppressed_codes``; a scope of fewer than 3
therapists is hidden as a whole (``hidden_reason``, ``hidden_code``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.exceptions import PermissionDenied as DRFPermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from datapolicy.scoping import TenantAPIMixin
from datapolicy.services import Action, access_log_write

from .models import CURRENT, ScopeKind
from .permissions import DASHBOARD_ROLES, scope_access, small_cell_k
from .reasons import REASON_CODES, public_code
from .selectors import (
    AGE_FILTERS,
    ANONYMISED_PERIODS,
    Figures,
    benchmark_figures,
    figures_for,
    period_as_of,
    snapshot_get,
)
from .views import shown_reason

ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

SIDE_FIELDS = [
    "episodes",
    "sessions",
    "sessions_per_episode",
    "treatment_months",
    "srs_start",
    "ors_start",
    "srs_change",
    "ors_change",
    "effect_size_d",
    "effect_size_pct",
    "n_classified",
    "reliable_improvement",
    "reliable_deterioration",
    "no_reliable_change",
    "clinically_significant",
]


class SideSerializer(serializers.Serializer):
    episodes = serializers.IntegerField(allow_null=True)
    sessions = serializers.IntegerField(allow_null=True)
    sessions_per_episode = serializers.FloatField(allow_null=True)
    treatment_months = serializers.FloatField(allow_null=True)
    srs_start = serializers.FloatField(allow_null=True)
    ors_start = serializers.FloatField(allow_null=True)
    srs_change = serializers.FloatField(allow_null=True)
    ors_change = serializers.FloatField(allow_null=True)
    effect_size_d = serializers.FloatField(allow_null=True)
    effect_size_pct = serializers.FloatField(allow_null=True)
    n_classified = serializers.IntegerField(allow_null=True)
    reliable_improvement = serializers.IntegerField(allow_null=True)
    reliable_deterioration = serializers.IntegerField(allow_null=True)
    no_reliable_change = serializers.IntegerField(allow_null=True)
    clinically_significant = serializers.IntegerField(allow_null=True)


class TrajectoryPointSerializer(serializers.Serializer):
    session_number = serializers.IntegerField()
    ors_median = serializers.FloatField(allow_null=True)
    srs_median = serializers.FloatField(allow_null=True)
    n_ors = serializers.IntegerField(allow_null=True)
    n_srs = serializers.IntegerField(allow_null=True)


class StatsResponseSerializer(serializers.Serializer):
    scope = serializers.CharField()
    id = serializers.IntegerField()
    as_of = serializers.DateField()
    computed_at = serializers.DateTimeField()
    anonymised = serializers.BooleanField()
    k = serializers.IntegerField(allow_null=True)
    active = SideSerializer()
    inactive = SideSerializer()
    trajectory = TrajectoryPointSerializer(many=True)
    suppressed = serializers.DictField(
        child=serializers.DictField(child=serializers.CharField()),
        help_text="active/inactive -> field -> why the value is null, as text in the "
        "request's language (Danish unless English is chosen); compare suppressed_codes, "
        "not these texts",
    )
    suppressed_codes = serializers.DictField(
        child=serializers.DictField(child=serializers.ChoiceField(choices=REASON_CODES)),
        help_text="active/inactive -> field -> stable code of the reason: hidden (fewer than "
        "k clients, or hidden so that such a figure cannot be worked out from the figures "
        "shown; which of the two is not said, since that could give a hidden figure back), "
        "few_therapists, changed_since_publication, few_organisations, other. Since review "
        "round 10 small_cell, complement and others_small are no longer sent (privacy fix: "
        "they are all 'hidden'); they stay in the enum for old clients",
    )
    hidden_reason = serializers.CharField(
        allow_null=True,
        help_text="set when the whole scope is hidden (anonymised, fewer than 3 therapists "
        "in this selection); every figure is then null. Text in the request's language",
    )
    hidden_code = serializers.ChoiceField(
        choices=REASON_CODES,
        allow_null=True,
        help_text="stable code of hidden_reason (null when the scope is shown)",
    )


def _int_or_none(v: Any) -> int | None:
    return None if v is None else int(v)


def figures_to_contract(figs: Figures, kind: str, scope_id: int) -> dict[str, Any]:
    def side(name: str) -> dict[str, Any]:
        row = figs.table[name]
        return {f: row.get(f) for f in SIDE_FIELDS}

    return {
        "scope": kind,
        "id": scope_id,
        "as_of": figs.snapshot.as_of,
        "computed_at": figs.snapshot.computed_at,
        "anonymised": figs.anonymised,
        "k": figs.k if figs.anonymised else None,
        "active": side("active"),
        "inactive": side("inactive"),
        "trajectory": [
            {
                "session_number": int(p["session_number"]),
                "ors_median": p.get("ors_median"),
                "srs_median": p.get("srs_median"),
                "n_ors": _int_or_none(p.get("n_ors")),
                "n_srs": _int_or_none(p.get("n_srs")),
            }
            for p in figs.trajectory
        ],
        # the reasons in the active language (stored as English keys), with stable codes;
        # SECURITY: a small cell and its complement read alike (views.shown_reason,
        # reasons.public_code: review round 10)
        "suppressed": {
            s: {
                f: shown_reason(r, figs.k or 0)
                for f, r in figs.suppressed[s].items()
                if f in SIDE_FIELDS
            }
            for s in ("active", "inactive")
        },
        "suppressed_codes": {
            s: {f: public_code(r) for f, r in figs.suppressed[s].items() if f in SIDE_FIELDS}
            for s in ("active", "inactive")
        },
        "hidden_reason": shown_reason(figs.hidden_reason, figs.k or 0)
        if figs.hidden_reason
        else None,
        "hidden_code": public_code(figs.hidden_reason) if figs.hidden_reason else None,
    }


class StatsScopeAPIView(TenantAPIMixin, APIView):  # type: ignore[misc]
    allowed_roles = DASHBOARD_ROLES
    scope = "org"

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "as_of",
                str,
                description=(
                    "reference date YYYY-MM-DD (default: today for own figures, the end of "
                    "the last closed month for anonymised ones)"
                ),
            ),
            OpenApiParameter("age_group", str, enum=list(AGE_FILTERS)),
        ],
        responses=StatsResponseSerializer,
    )
    def get(self, request: Request, scope: str, scope_id: int) -> Response:
        if scope not in ScopeKind.values:
            raise NotFound
        today = timezone.localdate()
        raw = request.query_params.get("as_of")
        as_of: dt.date | None = None
        if raw:
            try:
                # Strictly YYYY-MM-DD: fromisoformat alone also reads '20260101' and
                # ISO week dates ('2026-W01-1').
                if not ISO_DATE.fullmatch(raw):
                    raise ValueError(raw)
                as_of = dt.date.fromisoformat(raw)
            except ValueError:
                raise ValidationError({"as_of": [_("Use the format YYYY-MM-DD.")]}) from None
            if as_of > today:
                raise ValidationError({"as_of": [_("The reference date cannot be in the future.")]})
        age = request.query_params.get("age_group", "all")
        if age not in AGE_FILTERS:
            raise ValidationError(
                {"age_group": [_("One of %(values)s.") % {"values": ", ".join(AGE_FILTERS)}]}
            )
        org = self.organisation
        try:
            access = scope_access(
                user=request.user, organisation=org, roles=self.roles, kind=scope, scope_id=scope_id
            )
        except Http404:
            raise NotFound from None
        except PermissionDenied:
            raise DRFPermissionDenied from None
        if access.anonymised:
            # SECURITY: anonymised figures only at the closed month-ends the pages offer,
            # published once (stats.publications); today or arbitrary dates could be
            # subtracted from them to isolate the clients who came in between.
            allowed = {period_as_of(p, today)[1] for p in ANONYMISED_PERIODS}
            if as_of is None:
                as_of = period_as_of(ANONYMISED_PERIODS[0], today)[1]
            if as_of not in allowed:
                dates = ", ".join(sorted(d.isoformat() for d in allowed))
                raise ValidationError(
                    {
                        "as_of": [
                            _(
                                "Anonymised figures are published for closed months only, "
                                "at these reference dates: %(dates)s"
                            )
                            % {"dates": dates}
                        ]
                    }
                )
            period_key = as_of.isoformat()
        else:
            as_of = as_of or today
            period_key = CURRENT if as_of == today else as_of.isoformat()
        if access.kind == ScopeKind.PLATFORM:
            # The cross-organisation benchmark, as this organisation may compare with it:
            # all ages only (the platform's age groups add up; docs/datapolicy.md).
            if age != "all":
                raise ValidationError(
                    {"age_group": [_("The benchmark across organisations is for all ages only.")]}
                )
            figs = benchmark_figures(
                organisation=org, period_key=period_key, as_of=as_of, k=small_cell_k(org)
            )
            return Response(StatsResponseSerializer(figures_to_contract(figs, scope, 0)).data)
        snap = snapshot_get(
            kind=access.kind,
            organisation_id=access.organisation_id,
            scope_id=access.scope_id,
            period_key=period_key,
            as_of=as_of,
            age_group=age,
        )
        if access.via_grant:
            access_log_write(
                actor=request.user,
                organisation=org,
                action=Action.VIEW,
                object_type="therapist_figures",
                object_id=access.scope_id,
                role=self.acting_role,
                request=request._request,
            )
        figs = figures_for(snap, anonymised=access.anonymised, k=small_cell_k(org))
        data = figures_to_contract(figs, scope, access.scope_id)
        return Response(StatsResponseSerializer(data).data)
