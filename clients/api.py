"""REST API for the therapist workflow: clients and episodes (start, close, transfer).

Thin: the scoping base (TenantAPIMixin) picks the rows, the services in
``clients.services`` do the work, every read of client-level data is access-logged.
Client codes never travel in a URL: a search by code is ``POST /clients/search/``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from datapolicy.api_auth import api_permissions
from datapolicy.models import AgeGroup, Role, Unit, User
from datapolicy.scoping import TenantAPIMixin
from datapolicy.services import Action, access_log_write

from . import services
from .models import Client, Episode

# Dates before this are refused (typing errors; the statistics cannot place them).
EARLIEST_DATE = dt.date(1990, 1, 1)
MAX_ID = 2**63 - 1


def validate_date(value: dt.date) -> None:
    if value < EARLIEST_DATE:
        raise serializers.ValidationError(
            _("Dates before %(date)s are not accepted.") % {"date": EARLIEST_DATE.isoformat()}
        )


def id_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class EpisodeSerializer(serializers.ModelSerializer):
    client_code = serializers.CharField(source="client.code", read_only=True)
    alerts = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Episode
        fields = [
            "id",
            "client",
            "client_code",
            "therapist",
            "unit",
            "age_group",
            "label",
            "started_on",
            "closed_on",
            "status",
            "alerts",
        ]
        read_only_fields = fields


class ClientSerializer(serializers.ModelSerializer):
    episodes = serializers.SerializerMethodField()

    class Meta:
        model = Client
        fields = ["id", "code", "age_group", "birth_year", "episodes"]
        read_only_fields = fields

    def get_episodes(self, obj: Client) -> list[int]:
        return sorted(e.pk for e in obj.episodes.all())


class ClientCreateSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=40)
    age_group = serializers.ChoiceField(choices=AgeGroup.choices, default=AgeGroup.ADULT)
    birth_year = serializers.IntegerField(
        min_value=1900, max_value=2100, required=False, allow_null=True
    )
    unit = id_field(help_text="Unit id (the therapist must work there)")
    started_on = serializers.DateField(required=False, validators=[validate_date])


class ClientSearchSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=40, help_text="Part of a client code")


class EpisodeStartSerializer(serializers.Serializer):
    client = id_field()
    unit = id_field()
    started_on = serializers.DateField(required=False, validators=[validate_date])
    label = serializers.CharField(  # type: ignore[assignment]
        max_length=40, required=False, allow_blank=True, default=""
    )


class EpisodeCloseSerializer(serializers.Serializer):
    closed_on = serializers.DateField(validators=[validate_date])


class EpisodeTransferSerializer(serializers.Serializer):
    therapist = id_field(help_text="User id of a therapist in the episode's unit")


class TherapistAPIMixin(TenantAPIMixin):
    """Client-level endpoints: therapists, their own clients (plus live grants)."""

    allowed_roles = frozenset({Role.THERAPIST})
    permission_classes = api_permissions()  # type: ignore[assignment]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request data
            return self.model.dangerously_unscoped.none()  # type: ignore[union-attr]
        return super().get_queryset()

    def log_list(self, object_type: str) -> None:
        access_log_write(
            actor=self.request.user,
            organisation=self.organisation,
            action=Action.LIST,
            object_type=object_type,
            role=self.acting_role,
            request=self.request,
        )

    def log_view(self, obj: Any) -> None:
        access_log_write(
            actor=self.request.user,
            organisation=self.organisation,
            action=Action.VIEW,
            obj=obj,
            role=self.acting_role,
            request=self.request,
        )

    def paginated(self, queryset: Any, serializer_class: Any) -> Response:
        page = self.paginate_queryset(queryset)  # type: ignore[attr-defined]
        data = serializer_class(page, many=True).data
        return self.get_paginated_response(data)  # type: ignore[attr-defined,no-any-return]

    def visible(self, model: Any, pk: int) -> Any:
        """A referenced object the user may see, else 404 (not revealing existence)."""
        qs = model.objects.for_user(self.request.user, self.organisation)
        obj = qs.filter(pk=pk).first()
        if obj is None:
            raise NotFound
        return obj

    def unit(self, pk: int) -> Unit:
        unit = Unit.objects.for_org(self.organisation).filter(pk=pk).first()
        if unit is None:
            raise serializers.ValidationError({"unit": [_("Unknown unit.")]})
        return unit


class ClientViewSet(  # type: ignore[misc]
    TherapistAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The therapist's clients (those of their own episodes)."""

    model = Client
    serializer_class = ClientSerializer

    def filter_scoped_queryset(self, queryset: Any) -> Any:
        return queryset.prefetch_related("episodes").order_by("code", "pk")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.log_list("client")
        return super().list(request, *args, **kwargs)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        obj = self.get_object()
        self.log_view(obj)
        return Response(ClientSerializer(obj).data)

    @extend_schema(request=ClientCreateSerializer, responses={201: ClientSerializer})
    def create(self, request: Request) -> Response:
        """A new client and their first episode with the calling therapist."""
        s = ClientCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        episode = services.client_create_with_episode(
            actor=request.user,
            organisation=self.organisation,
            unit=self.unit(d["unit"]),
            code=d["code"],
            age_group=d["age_group"],
            birth_year=d.get("birth_year"),
            started_on=d.get("started_on"),
            request=request,
        )
        return Response(ClientSerializer(episode.client).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ClientSearchSerializer, responses={200: ClientSerializer(many=True)})
    @action(detail=False, methods=["post"])
    def search(self, request: Request) -> Response:
        """Find own clients by (part of) the code, sent in the body: never in a URL."""
        s = ClientSearchSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        self.log_list("client")
        qs = self.get_queryset().filter(code__icontains=s.validated_data["code"].strip())
        return self.paginated(qs, ClientSerializer)


class EpisodeViewSet(  # type: ignore[misc]
    TherapistAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Episodes: list, read, start, close, transfer."""

    model = Episode
    serializer_class = EpisodeSerializer

    def filter_scoped_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("client").order_by("client__code", "pk")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.log_list("episode")
        return super().list(request, *args, **kwargs)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        obj = self.get_object()
        self.log_view(obj)
        return Response(EpisodeSerializer(obj).data)

    @extend_schema(request=EpisodeStartSerializer, responses={201: EpisodeSerializer})
    def create(self, request: Request) -> Response:
        """Start a new episode for one of the therapist's clients."""
        s = EpisodeStartSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        client = self.visible(Client, d["client"])
        label = (d.get("label") or "").strip()
        if (
            label
            and Episode.objects.for_org(self.organisation)
            .filter(client=client, label=label)
            .exists()
        ):
            raise serializers.ValidationError(
                {"label": [_("The client already has an episode with this label.")]}
            )
        episode = services.episode_start(
            actor=request.user,
            client=client,
            unit=self.unit(d["unit"]),
            started_on=d.get("started_on"),
            label=label,
            request=request,
        )
        return Response(EpisodeSerializer(episode).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EpisodeCloseSerializer, responses={200: EpisodeSerializer})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str | None = None) -> Response:
        episode = self.get_object()
        s = EpisodeCloseSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        episode = services.episode_close(
            actor=request.user,
            episode=episode,
            closed_on=s.validated_data["closed_on"],
            request=request,
        )
        return Response(EpisodeSerializer(episode).data)

    @extend_schema(request=EpisodeTransferSerializer, responses={200: EpisodeSerializer})
    @action(detail=True, methods=["post"])
    def transfer(self, request: Request, pk: str | None = None) -> Response:
        """Hand the episode to another therapist of its unit."""
        episode = self.get_object()
        s = EpisodeTransferSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        to = User.objects.filter(pk=s.validated_data["therapist"], is_active=True).first()
        if to is None:
            raise serializers.ValidationError(
                {"therapist": [_("The therapist is not an active therapist in this unit.")]}
            )
        episode = services.episode_transfer(
            actor=request.user, episode=episode, to_therapist=to, request=request
        )
        return Response(EpisodeSerializer(episode).data)
