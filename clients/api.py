"""REST API for the therapist workflow: clients and episodes (start, close, transfer).

Thin: the scoping base (TenantAPIMixin) picks the rows, the services in
``clients.services`` do the work, every read of client-level data is access-logged.
Client codes never travel in a URL: a search by code is ``POST /clients/search/``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, ClassVar

from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from datapolicy.access import units_of
from datapolicy.api_auth import api_permissions
from datapolicy.models import AgeGroup, Role, Unit, User
from datapolicy.scoping import TenantAPIMixin
from datapolicy.services import Action, access_log_list_per_role, access_log_write
from datapolicy.validators import MAX_ID, reject_cpr

from . import services
from .models import EARLIEST_DATE, Client, Episode, too_early_text


def validate_date(value: dt.date) -> None:
    if value < EARLIEST_DATE:
        raise serializers.ValidationError(too_early_text())


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
        # SECURITY: only the episodes the caller may see (a client transferred in part
        # has episodes of a colleague); filled by ClientViewSet's scoped prefetch.
        return sorted(e.pk for e in obj.visible_episodes)  # type: ignore[attr-defined]


class ClientCreateSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=40)
    age_group = serializers.ChoiceField(choices=AgeGroup.choices, default=AgeGroup.ADULT)
    birth_year = serializers.IntegerField(
        min_value=1900, max_value=2100, required=False, allow_null=True
    )
    unit = id_field(help_text="Unit id (the therapist must work there)")
    started_on = serializers.DateField(required=False, validators=[validate_date])


class ClientSearchSerializer(serializers.Serializer):
    # SECURITY: a CPR-shaped search is refused with the reason (400), never run.
    code = serializers.CharField(
        max_length=40, help_text="Part of a client code", validators=[reject_cpr]
    )


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


def client_id_of(row: Any) -> int:
    """The client a listed row belongs to (Client, Episode or Session)."""
    if isinstance(row, Client):
        return int(row.pk)
    if isinstance(row, Episode):
        return int(row.client_id)
    return int(row.episode.client_id)


class TherapistAPIMixin(TenantAPIMixin):
    """Client-level endpoints: therapists, their own clients (plus live grants).

    Writes are the therapist's (and the services check that the episode is their own).
    Reads listed in ``leader_read_actions`` also admit a unit leader, as the episode
    page does: the scoped queryset then shows them only episodes under a live
    supervision grant (others are 404, as on the page).
    """

    allowed_roles = frozenset({Role.THERAPIST})
    leader_read_actions: ClassVar[frozenset[str]] = frozenset()
    permission_classes = api_permissions()
    # The object type of list entries in the access log.
    log_object_type: ClassVar[str] = ""

    def get_allowed_roles(self) -> frozenset[str]:
        action = getattr(self, "action", None)
        if action in self.leader_read_actions and self.request.method in permissions.SAFE_METHODS:
            return self.allowed_roles | {Role.UNIT_LEADER}
        return self.allowed_roles

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request data
            return self.model.dangerously_unscoped.none()  # type: ignore[union-attr]
        return super().get_queryset()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())  # type: ignore[attr-defined]
        return self.paginated(queryset, self.get_serializer_class())  # type: ignore[attr-defined]

    def log_list(self, rows: Iterable[Any]) -> None:
        """Access-log a list read: one entry per client on the page, as the pages'
        views do (``access_log_list_per_role``)."""
        access_log_list_per_role(
            actor=self.request.user,
            organisation=self.organisation,
            object_type=self.log_object_type,
            roles=self.acting_roles_for(client_id_of(row) for row in rows),
            empty_role=self.acting_role,  # an empty page: one entry for the call itself
            request=self.request,
        )

    def log_view(self, obj: Any) -> None:
        access_log_write(
            actor=self.request.user,
            organisation=self.organisation,
            action=Action.VIEW,
            obj=obj,
            role=self.acting_role_for(client_id_of(obj)),
            request=self.request,
        )

    def paginated(self, queryset: Any, serializer_class: Any) -> Response:
        """One page of ``queryset``, access-logged per client on it."""
        page = self.paginate_queryset(queryset)  # type: ignore[attr-defined]
        rows = list(queryset if page is None else page)
        self.log_list(rows)
        data = serializer_class(rows, many=True).data
        if page is None:
            return Response(data)
        return self.get_paginated_response(data)  # type: ignore[attr-defined,no-any-return]

    def visible(self, model: Any, pk: int) -> Any:
        """A referenced object the user may see, else 404 (not revealing existence)."""
        qs = model.objects.for_user(self.request.user, self.organisation)
        obj = qs.filter(pk=pk).first()
        if obj is None:
            raise NotFound
        return obj

    def therapist_unit(self, pk: int) -> Unit:
        """A unit of the organisation where the caller works as a therapist (the page
        offers only those); errors under ``unit``, the field the caller sent."""
        unit = Unit.objects.for_org(self.organisation).filter(pk=pk).first()
        if unit is None:
            raise serializers.ValidationError({"unit": [_("Unknown unit.")]})
        own = units_of(self.request.user, self.organisation, Role.THERAPIST)
        if unit.pk not in {u.pk for u in own}:
            raise serializers.ValidationError(
                {"unit": [_("You are not an active therapist in this unit.")]}
            )
        return unit


class ClientViewSet(  # type: ignore[misc]
    TherapistAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The therapist's clients (those of their own episodes)."""

    model = Client
    serializer_class = ClientSerializer
    log_object_type = "client"

    def filter_scoped_queryset(self, queryset: Any) -> Any:
        # SECURITY: a client's episodes as far as the caller may see them.
        visible = Episode.objects.for_user(self.request.user, self.organisation)
        return queryset.prefetch_related(
            Prefetch(
                "episodes", queryset=visible.only("pk", "client_id"), to_attr="visible_episodes"
            )
        ).order_by("code", "pk")

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
            unit=self.therapist_unit(d["unit"]),
            code=d["code"],
            age_group=d["age_group"],
            birth_year=d.get("birth_year"),
            started_on=d.get("started_on"),
            request=request,
        )
        client = self.get_queryset().get(pk=episode.client_id)
        return Response(ClientSerializer(client).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ClientSearchSerializer, responses={200: ClientSerializer(many=True)})
    @action(detail=False, methods=["post"])
    def search(self, request: Request) -> Response:
        """Find own clients by (part of) the code, sent in the body: never in a URL."""
        s = ClientSearchSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        qs = self.get_queryset().filter(code__icontains=s.validated_data["code"].strip())
        return self.paginated(qs, ClientSerializer)


class EpisodeViewSet(  # type: ignore[misc]
    TherapistAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Episodes: list, read, start, close, transfer."""

    model = Episode
    serializer_class = EpisodeSerializer
    log_object_type = "episode"
    # As the episode page: a unit leader with a live supervision grant reads it.
    leader_read_actions = frozenset({"retrieve"})

    def filter_scoped_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("client").order_by("client__code", "pk")

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
            unit=self.therapist_unit(d["unit"]),
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
