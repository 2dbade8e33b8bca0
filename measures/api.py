"""REST API for sessions with ORS/SRS scores, and the therapist's current alerts.

Scores go through the one write path (``measures.services``): ``ScoreInput.parse``
checks ranges, one decimal and item/total agreement with field names (``ors_2``,
``srs_total`` ...); a second session on the same date is 409 with
``confirm_same_date: true`` until the caller repeats the request with that flag.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clients.api import EpisodeSerializer, TherapistAPIMixin, id_field, validate_date
from clients.models import Episode
from datapolicy.validators import ascii_id

from . import services
from .models import ScaleKind, Score, Session
from .services import ScoreInput


class ScoreOutSerializer(serializers.Serializer):
    scale = serializers.CharField(help_text="ORS, SRS, CORS or CSRS")
    items = serializers.ListField(
        child=serializers.CharField(), allow_null=True, help_text="Four item marks, or null"
    )
    total = serializers.CharField(help_text="Total with one decimal, e.g. 23.4")


def _score_data(score: Score | None) -> dict[str, Any] | None:
    if score is None:
        return None
    items = score.items
    return {
        "scale": score.scale.code,
        "items": None if items[0] is None else [f"{v:.1f}" for v in items],
        "total": f"{score.total:.1f}",
    }


class SessionSerializer(serializers.ModelSerializer):
    ors = serializers.SerializerMethodField()
    srs = serializers.SerializerMethodField()

    class Meta:
        model = Session
        fields = ["id", "episode", "date", "number", "ors", "srs"]
        read_only_fields = fields

    def _kind(self, obj: Session, kind: str) -> dict[str, Any] | None:
        for score in obj.scores.all():
            if score.kind == kind:
                return _score_data(score)
        return None

    @extend_schema_field(ScoreOutSerializer(allow_null=True))
    def get_ors(self, obj: Session) -> dict[str, Any] | None:
        return self._kind(obj, ScaleKind.OUTCOME)

    @extend_schema_field(ScoreOutSerializer(allow_null=True))
    def get_srs(self, obj: Session) -> dict[str, Any] | None:
        return self._kind(obj, ScaleKind.ALLIANCE)


class ScoreInSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=serializers.CharField(max_length=20, allow_blank=True),
        min_length=4,
        max_length=4,
        required=False,
        allow_null=True,
        help_text="Four item marks 0.0-10.0 (decimal point or comma), or leave out",
    )
    total = serializers.CharField(
        max_length=20,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="Total 0.0-40.0; when items are given it must equal their sum",
    )


class SessionCreateSerializer(serializers.Serializer):
    episode = id_field()
    date = serializers.DateField(validators=[validate_date])
    ors = ScoreInSerializer(required=False, allow_null=True)
    srs = ScoreInSerializer(required=False, allow_null=True)
    confirm_same_date = serializers.BooleanField(default=False)


class SessionCorrectSerializer(serializers.Serializer):
    """A correction: fields left out keep their saved value; ``ors``/``srs`` null removes
    that score (one must remain)."""

    date = serializers.DateField(required=False, validators=[validate_date])
    ors = ScoreInSerializer(required=False, allow_null=True)
    srs = ScoreInSerializer(required=False, allow_null=True)
    confirm_same_date = serializers.BooleanField(default=False)


class ScoreSetSerializer(ScoreInSerializer):
    kind = serializers.ChoiceField(choices=[("ors", "ORS"), ("srs", "SRS")])
    replace = serializers.BooleanField(default=False)


def _parse(data: dict[str, Any] | None, field: str) -> ScoreInput | None:
    """A score from its JSON object. Only ``null`` means "no score" (in a correction:
    remove it); an object without items and total is an error under the field's name
    (ScoreInput.parse), never a silent removal."""
    if data is None:
        return None
    return ScoreInput.parse(data.get("items"), data.get("total"), field=field)


def id_param(request: Request, name: str) -> int | None:
    """An id from the query string: ASCII digits, 1..2**63-1; anything else is 400
    (``str.isdigit`` would take '²', which ``int`` then refuses: a 500)."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    value = ascii_id(raw)
    if value is None:
        raise serializers.ValidationError({name: [_("Give an id (a positive whole number).")]})
    return value


SAME_DATE_CONFLICT = inline_serializer(
    "SameDateConflict",
    {
        "date": serializers.ListField(child=serializers.CharField()),
        "confirm_same_date": serializers.BooleanField(),
    },
)


class SessionViewSet(  # type: ignore[misc]
    TherapistAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Sessions of the therapist's episodes, with their scores."""

    model = Session
    serializer_class = SessionSerializer
    log_object_type = "session"
    # As the episode page, which shows the sessions: a unit leader under a live grant.
    leader_read_actions = frozenset({"list", "retrieve"})

    def filter_scoped_queryset(self, queryset: Any) -> Any:
        return (
            queryset.select_related("episode")
            .prefetch_related("scores__scale")
            .order_by("episode_id", "number")
        )

    def filter_queryset(self, queryset: Any) -> Any:
        episode = id_param(self.request, "episode")  # type: ignore[arg-type]
        if episode is not None:
            queryset = queryset.filter(episode_id=episode)
        return queryset

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "episode", int, description="Only this episode's sessions (an id, not a code)"
            )
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        obj = self.get_object()
        self.log_view(obj)
        return Response(SessionSerializer(obj).data)

    @extend_schema(
        request=SessionCreateSerializer,
        responses={201: SessionSerializer, 409: SAME_DATE_CONFLICT},
    )
    def create(self, request: Request) -> Response:
        """Record a session with its ORS and/or SRS (items or totals)."""
        s = SessionCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        episode = self.visible(Episode, d["episode"])
        session = services.session_record(
            actor=request.user,
            episode=episode,
            date=d["date"],
            ors=_parse(d.get("ors"), "ors"),
            srs=_parse(d.get("srs"), "srs"),
            confirm_same_date=d["confirm_same_date"],
            request=request,
        )
        return Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=SessionCorrectSerializer,
        responses={200: SessionSerializer, 409: SAME_DATE_CONFLICT},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Correct a saved session (its date and/or scores), checked like a new entry."""
        session = self.get_object()
        s = SessionCorrectSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        saved = {score.kind: score for score in session.scores.all()}

        def value(field: str, kind: str) -> ScoreInput | None:
            if field in d:
                return _parse(d[field], field)
            score = saved.get(kind)
            if score is None:
                return None
            items = tuple(score.items) if score.item1 is not None else None
            return ScoreInput(items=items, total=score.total)  # type: ignore[arg-type]

        services.session_correct(
            actor=request.user,
            session=session,
            date=d.get("date", session.date),
            ors=value("ors", ScaleKind.OUTCOME),
            srs=value("srs", ScaleKind.ALLIANCE),
            confirm_same_date=d["confirm_same_date"],
            request=request,
        )
        return Response(SessionSerializer(self.get_queryset().get(pk=session.pk)).data)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        services.session_delete(actor=request.user, session=self.get_object(), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ScoreSetSerializer, responses={200: SessionSerializer})
    @action(detail=True, methods=["post"])
    def scores(self, request: Request, pk: str | None = None) -> Response:
        """Add the SRS at the end of the session (or correct a score with ``replace``)."""
        session = self.get_object()
        s = ScoreSetSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        kind = ScaleKind.OUTCOME if d["kind"] == "ors" else ScaleKind.ALLIANCE
        value = ScoreInput.parse(d.get("items"), d.get("total"), field=d["kind"])
        services.score_set(
            actor=request.user,
            session=session,
            kind=kind,
            value=value,
            replace=d["replace"],
            request=request,
        )
        session = self.get_queryset().get(pk=session.pk)
        return Response(SessionSerializer(session).data)


class AlertViewSet(TherapistAPIMixin, mixins.ListModelMixin, viewsets.GenericViewSet):  # type: ignore[misc]
    """The therapist's open episodes that have alerts now (deterioration, off track,
    low alliance, no contact)."""

    model = Episode
    serializer_class = EpisodeSerializer
    log_object_type = "alerts"

    def filter_scoped_queryset(self, queryset: Any) -> Any:
        return (
            queryset.filter(status=Episode.Status.OPEN)
            .exclude(alerts=[])
            .select_related("client")
            .order_by("client__code", "pk")
        )
