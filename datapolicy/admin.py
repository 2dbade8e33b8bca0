"""Django admin for the system owner, limited to their own organisation.

The default admin site is restricted: only a user with the system-owner role in the
active organisation (or a superuser with such a role) gets in, and every list, form and
foreign-key choice is scoped to that organisation. Superuser status alone does not show
other organisations' data.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .models import Membership, Organisation, Role, Unit, User
from .services import (
    FORBIDDEN_DETAIL_KEYS,
    Action,
    access_log_write,
    changes_of,
    membership_subject,
)


def _is_system_owner(request: HttpRequest) -> bool:
    return (
        request.user.is_active
        and getattr(request, "organisation", None) is not None
        and Role.SYSTEM_OWNER in getattr(request, "roles", ())
    )


def _has_permission(request: HttpRequest) -> bool:
    return _is_system_owner(request)


def _users_elsewhere(organisation: Any) -> Any:
    """Ids of users no system owner of ``organisation`` may edit: those holding a
    membership in another organisation, and the platform's own accounts (operator,
    superusers) — the rule the CSV user import follows (``user_import.not_attachable``)."""
    from .user_import import not_attachable

    return User.objects.filter(not_attachable(organisation)).values("pk")


def _editable_users(request: HttpRequest) -> Any:
    """This organisation's users whose account it alone holds."""
    org = request.organisation  # type: ignore[attr-defined]
    # SECURITY: a user with memberships in other organisations too is left out, or this
    # owner could set their password and act as them in the other organisation.
    return (
        User.objects.filter(memberships__organisation=org)
        .exclude(pk__in=_users_elsewhere(org))
        .distinct()
    )


admin.site.has_permission = _has_permission  # type: ignore[method-assign]
admin.site.site_header = "fitplatform"
admin.site.index_title = _("Organisation administration")
admin.site.site_title = "fitplatform"


def _initial_value(form: Any, name: str) -> Any:
    """A field's value before the change, as an object where the form holds an id (a
    foreign key's initial value is its primary key)."""
    from django import forms

    field = form.fields[name]
    value = form.get_initial_for_field(field, name)
    queryset = getattr(field, "queryset", None)
    if isinstance(field, forms.ModelMultipleChoiceField) and queryset is not None:
        pks = [getattr(v, "pk", v) for v in value or []]
        return list(queryset.filter(pk__in=pks))
    if isinstance(field, forms.ModelChoiceField) and queryset is not None:
        if value in (None, "") or hasattr(value, "pk"):
            return value
        return queryset.filter(pk=value).first() or f"#{value}"
    return value


def _form_changes(form: Any, add: bool) -> dict[str, Any]:
    """What an admin form changed: ``{"changes": {field: [old, new]}}`` and, for secret
    fields (any password field), only their names in ``"changed"``."""
    changes: dict[str, Any] = {}
    secret: list[str] = []
    for name in form.changed_data:
        # SECURITY: a password (or anything named like a secret) is named, never kept.
        if "password" in name or name.lower() in FORBIDDEN_DETAIL_KEYS:
            label = "password" if "password" in name else name
            if label not in secret:
                secret.append(label)
            continue
        old = None if add else _initial_value(form, name)
        changes.update(changes_of({name: old}, {name: form.cleaned_data.get(name)}))
    details: dict[str, Any] = {"changes": changes}
    if secret:
        details["changed"] = secret
    return details


class AccessLoggedAdmin(admin.ModelAdmin):
    """Every change made in the admin also goes into the append-only access log (the
    admin's own LogEntry table can be edited by the database owner and is not searched
    by the data-policy admin), with what changed: field: old -> new (``details``). A
    password set by the system owner is logged as its own object type,
    ``user_password``: the one admin action that could be used to act as someone else,
    so the data-policy admin can find it; its value is never logged."""

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> Any:
        # Called just before log_addition / log_change, while the form still holds the
        # values before the change (form.initial).
        request._fit_admin_details = _form_changes(form, add)  # type: ignore[attr-defined]
        return super().construct_change_message(request, form, formsets, add)

    def _details(self, request: HttpRequest, obj: Any) -> dict[str, Any]:
        details = dict(request.__dict__.pop("_fit_admin_details", None) or {})
        if isinstance(obj, Membership):
            return {**membership_subject(obj), **details}
        if isinstance(obj, User):
            return {"user": obj.username, **details}
        return details

    def _log(
        self,
        request: HttpRequest,
        obj: Any,
        action: str,
        object_type: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        access_log_write(
            actor=request.user,
            organisation=request.organisation,  # type: ignore[attr-defined]
            action=action,
            obj=obj,
            object_type=object_type or None,
            role=Role.SYSTEM_OWNER,
            request=request,
            details=details,
        )

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        self._log(request, obj, Action.CREATE, details=self._details(request, obj))
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        password = isinstance(obj, User) and "password" in str(message)
        details = self._details(request, obj)
        if password:
            # The password form's fields are all secret: the entry names the change only.
            details = {"user": obj.username, "changed": ["password"]}
        self._log(request, obj, Action.UPDATE, "user_password" if password else "", details=details)
        return super().log_change(request, obj, message)


class OrgScopedAdmin(AccessLoggedAdmin):
    """Every row is the active organisation's; new rows get it automatically."""

    exclude = ("organisation",)

    def get_queryset(self, request: HttpRequest) -> Any:
        return self.model.objects.for_org(request.organisation)  # type: ignore[attr-defined]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_system_owner(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_system_owner(request)

    has_change_permission = has_view_permission
    has_add_permission = has_module_permission  # type: ignore[assignment]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead; deletion goes through retention

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.organisation = request.organisation  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        model = db_field.related_model
        if model is Unit:
            kwargs["queryset"] = Unit.objects.for_org(request.organisation)  # type: ignore[attr-defined]
        elif model is User:
            kwargs["queryset"] = User.objects.filter(
                memberships__organisation=request.organisation  # type: ignore[attr-defined]
            ).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Unit)
class UnitAdmin(OrgScopedAdmin):
    list_display = ("name", "code", "parent")
    search_fields = ("name", "code")


@admin.register(Membership)
class MembershipAdmin(OrgScopedAdmin):
    list_display = ("user", "role", "unit", "is_active")
    list_filter = ("role", "is_active")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user":
            # A new colleague has no membership yet: offer users without any
            # organisation plus this organisation's users, never another's staff.
            from django.db.models import Q

            org = request.organisation  # type: ignore[attr-defined]
            kwargs["queryset"] = (
                User.objects.filter(Q(memberships__organisation=org) | Q(memberships__isnull=True))
                .exclude(pk__in=_users_elsewhere(org))
                .exclude(pk=request.user.pk or 0)  # no roles for oneself (see below)
                .distinct()
            )
            return admin.ModelAdmin.formfield_for_foreignkey(self, db_field, request, **kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # SECURITY: nobody changes their own roles (four eyes): a system owner who gave
        # themselves the therapist role would gain client-level access.
        if obj is not None and obj.user_id == request.user.pk:
            return False
        return _is_system_owner(request)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if obj.user_id == request.user.pk:
            raise PermissionDenied
        super().save_model(request, obj, form, change)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # An existing membership keeps its user (who may also belong to another
        # organisation and so is not among the choices above).
        return ("user",) if obj is not None else ()


@admin.register(Organisation)
class OrganisationAdmin(AccessLoggedAdmin):
    """The system owner edits their own organisation's settings, nothing else."""

    fields = (
        "name",
        "inactivity_days",
        "small_cell_k",
        "reliable_change",
        "ors_cutoff_adult",
        "ors_cutoff_youth",
        "ors_cutoff_child",
        "srs_cutoff",
        "retention_days",
    )
    # SECURITY: retention and k are the data-policy admin's, set on the settings page
    # through organisation_policy_update (retention >= inactivity window, k >= 3).
    # Changed here they would bypass those rules (a retention of one day would delete
    # active episodes), so the system owner only sees them. The inactivity window (a
    # statistics setting, like the cutoffs) stays the system owner's: the retention job
    # never deletes within it, whatever the stored retention (datapolicy.retention).
    readonly_fields = ("small_cell_k", "retention_days")

    def get_queryset(self, request: HttpRequest) -> Any:
        org = getattr(request, "organisation", None)
        return Organisation.objects.filter(pk=org.pk if org else -1)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_system_owner(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_system_owner(request)

    has_change_permission = has_view_permission

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(AccessLoggedAdmin, BaseUserAdmin):
    """Users of the active organisation (and new users, to give them a membership)."""

    list_display = ("username", "first_name", "last_name", "email", "is_active")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Person"), {"fields": ("first_name", "last_name", "email")}),
        (_("Status"), {"fields": ("is_active",)}),
    )

    def get_queryset(self, request: HttpRequest) -> Any:
        # Also limits the password-change view (it looks the user up through this).
        return _editable_users(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_system_owner(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_system_owner(request)

    has_change_permission = has_view_permission
    has_add_permission = has_module_permission  # type: ignore[assignment]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
