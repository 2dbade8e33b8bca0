"""Clients (under a code, never a CPR number) and their episodes of treatment."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.utils import formats
from django.utils.translation import gettext_lazy as _
from guardian.models import UserObjectPermissionBase

from datapolicy.models import AgeGroup
from datapolicy.tenancy import TenantModel, TenantQuerySet, organisation_field
from datapolicy.validators import reject_control_characters, reject_cpr

# The earliest date of an episode or a session anywhere (pages, API, import): earlier
# dates are typos (FIT's scales are from the 2000s).
EARLIEST_DATE = dt.date(1990, 1, 1)


def too_early_text() -> str:
    from django.utils.translation import gettext

    return gettext("Dates before %(date)s are not accepted.") % {
        "date": formats.date_format(EARLIEST_DATE)
    }


code_validator = RegexValidator(
    r"^[\w.\-/ ]{1,40}$",
    _("Use letters, digits, spaces and . - / only (at most 40 characters)."),
)
# How the export names an unlabelled episode of a client with several episodes (its
# start date, "YYYY-MM-DD (2)" where taken: measures.importer.episode_keys). A label typed
# in this form could take the name of an unlabelled episode that an older file uses.
DATE_NAME_RE = r"^\d{4}-\d{2}-\d{2}(?: \(\d+\))?$"
date_name_validator = RegexValidator(
    DATE_NAME_RE,
    _(
        "A label that is a date (YYYY-MM-DD) is how exports name unlabelled episodes; "
        'choose another label, e.g. "episode from 2025-03-01".'
    ),
    inverse_match=True,
)


class Client(TenantModel):
    # Served by the unique (organisation, code).
    organisation = organisation_field(db_index=False)
    code = models.CharField(
        _("client code"), max_length=40, validators=[code_validator, reject_cpr]
    )
    age_group = models.CharField(
        _("age group"), max_length=5, choices=AgeGroup.choices, default=AgeGroup.ADULT
    )
    birth_year = models.PositiveSmallIntegerField(
        _("birth year"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1900), MaxValueValidator(2100)],
    )
    note = models.CharField(_("note"), max_length=500, blank=True, validators=[reject_cpr])
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(TenantModel.Meta):
        constraints = [
            # Codes are unique without regard to case, as client_create and the import
            # compare them: a code created meanwhile in another case is refused by the
            # database too (no "AB-1" beside "ab-1" after a race).
            models.UniqueConstraint(
                F("organisation"), Upper("code"), name="client_code_unique_in_org"
            )
        ]
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    @classmethod
    def visible_to(
        cls, qs: TenantQuerySet, *, user: Any, roles: set[str], organisation: Any
    ) -> TenantQuerySet:
        """Client-level data: a therapist sees the clients of their own episodes; others
        only clients with a live supervision grant on one of the client's episodes."""
        from datapolicy.access import episode_visibility_q

        visible = episode_visibility_q(user, roles, organisation)
        return qs.filter(pk__in=Episode.dangerously_unscoped.filter(visible).values("client_id"))


class Episode(TenantModel):
    """One client's course of treatment with one primary therapist in one unit."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    # Served by the (organisation, ...) indexes below.
    organisation = organisation_field(db_index=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="episodes")
    therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="episodes"
    )
    unit = models.ForeignKey("datapolicy.Unit", on_delete=models.PROTECT, related_name="episodes")
    # Age group at the start of the episode decides the scale and cutoff used.
    age_group = models.CharField(max_length=5, choices=AgeGroup.choices, default=AgeGroup.ADULT)
    label = models.CharField(
        _("label"),
        max_length=40,
        blank=True,
        validators=[reject_cpr, reject_control_characters, date_name_validator],
    )
    started_on = models.DateField(_("started"))
    closed_on = models.DateField(_("closed on"), null=True, blank=True)
    status = models.CharField(max_length=6, choices=Status.choices, default=Status.OPEN)
    # Alerts as of the last change, recomputed synchronously by measures.services.
    alerts = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        permissions = [("view_episode_graph", "Can view the episode's graph (supervision grant)")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="open", closed_on__isnull=True)
                | Q(status="closed", closed_on__isnull=False),
                name="episode_status_matches_closed_on",
            ),
            models.UniqueConstraint(
                fields=["organisation", "client", "label"],
                condition=~Q(label=""),
                name="episode_label_unique_per_client",
            ),
        ]
        indexes = [
            models.Index(fields=["organisation", "therapist", "status"]),
            models.Index(fields=["organisation", "unit"]),
            models.Index(fields=["organisation", "client"]),
        ]

    def __str__(self) -> str:
        return f"{self.client.code} #{self.pk}"

    @classmethod
    def visible_to(
        cls, qs: TenantQuerySet, *, user: Any, roles: set[str], organisation: Any
    ) -> TenantQuerySet:
        """Client-level episode data: own episodes for therapists, plus live grants."""
        from datapolicy.access import episode_visibility_q

        return qs.filter(episode_visibility_q(user, roles, organisation))


class EpisodeUserObjectPermission(UserObjectPermissionBase):
    """Direct-foreign-key guardian table: deleting an episode deletes its grants' rows."""

    content_object = models.ForeignKey(Episode, on_delete=models.CASCADE)
