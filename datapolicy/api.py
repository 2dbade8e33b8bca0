"""REST API for API keys (system owner): create (the key is shown once), list, revoke.

Keys themselves can never manage keys (``keys_allowed = False``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from .api_auth import SCOPES, api_permissions, apikey_create, apikey_revoke
from .models import ApiKey, Role, User
from .scoping import TenantAPIMixin
from .validators import ascii_id


class ApiKeySerializer(serializers.ModelSerializer):
    scopes = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "user",
            "prefix",
            "scopes",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once: store it now")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    user = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="The (service) user the key acts as"
    )
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=[(s, s) for s in SCOPES]), min_length=1
    )


class ApiKeyViewSet(  # type: ignore[misc]
    TenantAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The organisation's API keys (no secrets)."""

    allowed_roles = frozenset({Role.SYSTEM_OWNER})
    permission_classes = api_permissions()  # type: ignore[assignment]
    scope = "org"
    model = ApiKey
    serializer_class = ApiKeySerializer
    # SECURITY: a key cannot create or revoke keys, nor list them.
    keys_allowed = False

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request data
            return ApiKey.dangerously_unscoped.none()
        return super().get_queryset()

    def filter_scoped_queryset(self, queryset: Any) -> Any:
        return queryset.order_by("-created_at", "-pk")

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request: Request) -> Response:
        s = ApiKeyCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        key, raw = apikey_create(
            actor=request.user,
            organisation=self.organisation,
            name=d["name"],
            user=User.objects.filter(pk=d["user"]).first(),
            scopes=d["scopes"],
            request=request,
        )
        data = dict(ApiKeySerializer(key).data)
        data["key"] = raw
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ApiKeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        key = apikey_revoke(actor=request.user, key=self.get_object(), request=request)
        return Response(ApiKeySerializer(key).data)


class ApiKeySchema(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "datapolicy.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <prefix>.<secret>` (created by the system owner)",
        }


# --- pages: API keys for the system owner ------------------------------------------

from django.contrib import messages  # noqa: E402
from django.core.exceptions import ValidationError as DjangoValidationError  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.shortcuts import redirect  # noqa: E402
from django.utils.translation import gettext as _  # noqa: E402
from django.views import View  # noqa: E402
from django.views.generic import TemplateView  # noqa: E402

from .models import Membership  # noqa: E402
from .scoping import TenantPageMixin  # noqa: E402


class _KeyPageMixin(TenantPageMixin):
    """The system owner manages the organisation's keys; a therapist manages keys that
    act as themselves (an integration recording their own clients' scores), because a
    key never acts with a role its creator lacks."""

    allowed_roles = frozenset({Role.SYSTEM_OWNER, Role.THERAPIST})
    scope = "org"
    model = ApiKey

    @property
    def own_keys_only(self) -> bool:
        return Role.SYSTEM_OWNER not in self.roles

    def key_queryset(self) -> Any:
        qs = self.scoped_queryset()
        # SECURITY: a therapist sees and revokes only keys acting as themselves.
        return qs.filter(user=self.request.user) if self.own_keys_only else qs


class ApiKeysPage(_KeyPageMixin, TemplateView):
    """API keys: create (the key is shown once on the answer page), list (no secrets),
    revoke."""

    template_name = "datapolicy/api_keys.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        users = (
            User.objects.filter(
                pk__in=Membership.objects.for_org(self.organisation)
                .filter(is_active=True)
                .values("user_id")
            )
            .order_by("username")
            .only("pk", "username", "first_name", "last_name")
        )
        if self.own_keys_only:
            users = users.filter(pk=self.request.user.pk)  # type: ignore[misc]
        keys = self.key_queryset().select_related("user").order_by("-created_at", "-pk")
        return {
            **super().get_context_data(**kwargs),
            "keys": keys,
            "users": users,
            "scopes": SCOPES,
        }

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user_id = request.POST.get("user", "")
        pk = ascii_id(user_id)  # never int() on the raw value: '²' or 5,000 digits (500)
        user = User.objects.filter(pk=pk).first() if pk is not None else None
        if self.own_keys_only:
            user = request.user  # type: ignore[assignment]  # a therapist's key acts as them
        try:
            key, raw = apikey_create(
                actor=request.user,
                organisation=self.organisation,
                name=request.POST.get("name", ""),
                user=user,
                scopes=request.POST.getlist("scopes"),
                request=request,
            )
        except DjangoValidationError as exc:
            errors = [str(m) for ms in exc.message_dict.values() for m in ms]
            return self.render_to_response(self.get_context_data(errors=errors), status=400)
        # SECURITY: the key is shown on this answer only (never stored in clear, no
        # redirect that would need it in a URL or the session).
        return self.render_to_response(self.get_context_data(created=key, raw_key=raw))


class ApiKeyRevokePage(_KeyPageMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        key = self.get_scoped_object(self.key_queryset(), pk=pk)
        apikey_revoke(actor=request.user, key=key, request=request)
        messages.success(request, _("The key %(name)s is revoked.") % {"name": key.name})
        return redirect("api_keys_page")
