"""Tenant scoping by construction.

Every tenant-owned model inherits :class:`TenantModel`: a non-null ``organisation`` and
a default manager that refuses unscoped queries. ``Model.objects.filter(...)`` raises
:class:`UnscopedQueryError`; code must say ``Model.objects.for_org(org)`` or
``Model.objects.for_user(user, org)``. The escape hatch, for migrations, bulk jobs that
really span organisations (nightly recompute, retention) and Django internals, is named
``Model.dangerously_unscoped`` so that it stands out in review.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models

if TYPE_CHECKING:
    from datapolicy.models import Organisation

M = TypeVar("M", bound=models.Model)


class UnscopedQueryError(RuntimeError):
    """Raised when a tenant-owned model is queried without an organisation."""


class TenantQuerySet(models.QuerySet):
    def for_org(self, organisation: Organisation | int | None) -> TenantQuerySet:
        # SECURITY: fail closed: no organisation means no rows, never all rows.
        if organisation is None:
            raise UnscopedQueryError("for_org() needs an organisation")
        return self.filter(organisation=organisation)


class ScopedManager(models.Manager):
    """Default manager of tenant-owned models: only scoped entry points."""

    _queryset_class = TenantQuerySet

    def get_queryset(self) -> TenantQuerySet:
        raise UnscopedQueryError(
            f"{self.model.__name__}.objects must be scoped: use .for_org(org) or "
            ".for_user(user, org); cross-organisation jobs use .dangerously_unscoped"
        )

    def _base(self) -> TenantQuerySet:
        return self._queryset_class(model=self.model, using=self._db, hints=self._hints)  # type: ignore[attr-defined]

    def for_org(self, organisation: Organisation | int | None) -> TenantQuerySet:
        return self._base().for_org(organisation)

    def for_user(self, user: Any, organisation: Organisation | int | None) -> TenantQuerySet:
        """Rows of ``organisation`` that ``user`` may see in their roles there.

        The model's ``visible_to`` classmethod holds the role rules; without it only
        the organisation is applied. A user without a membership sees nothing.
        """
        from datapolicy.access import roles_of

        qs = self.for_org(organisation)
        roles = roles_of(user, organisation)
        if not roles:
            return qs.none()
        visible_to = getattr(self.model, "visible_to", None)
        if visible_to is None:
            return qs
        return visible_to(qs, user=user, roles=roles, organisation=organisation)

    def create(self, **kwargs: Any) -> Any:
        if kwargs.get("organisation") is None and kwargs.get("organisation_id") is None:
            raise UnscopedQueryError(f"{self.model.__name__} needs an organisation")
        return self._base().create(**kwargs)

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> Any:
        return self._base().bulk_create(objs, *args, **kwargs)


def organisation_field(*, db_index: bool = True) -> Any:
    """The tenant column. ``db_index=False`` where an index starting with
    ``organisation`` already serves lookups by it (every index is paid on each insert;
    tests/importer/test_bulkload.py::test_every_foreign_key_column_is_served_by_an_index
    checks the cover)."""
    return models.ForeignKey(
        "datapolicy.Organisation", on_delete=models.CASCADE, related_name="+", db_index=db_index
    )


class TenantModel(models.Model):
    """Base of every row of personal or clinical data: it belongs to one organisation."""

    organisation = organisation_field()

    # Declared first so that it is Django's default manager even for a subclass that
    # forgets to inherit Meta.
    dangerously_unscoped = models.Manager()
    objects = ScopedManager()

    class Meta:
        abstract = True
        # Django internals (related managers, admin lookups, deletion) use this; they
        # start from an object that was itself fetched through a scoped query.
        default_manager_name = "dangerously_unscoped"
        base_manager_name = "dangerously_unscoped"
