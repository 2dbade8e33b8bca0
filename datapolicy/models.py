"""Organisations, units, users and roles, grants, consents, the access log, reports and
API keys: everything about who may see what (see docs/datapolicy.md)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .tenancy import TenantModel
from .validators import reject_cpr


class Role(models.TextChoices):
    THERAPIST = "therapist", _("Therapist")
    UNIT_LEADER = "unit_leader", _("Unit leader")
    MI_OFFICER = "mi_officer", _("Management-information officer")
    DP_ADMIN = "dp_admin", _("Data-policy admin")
    SYSTEM_OWNER = "system_owner", _("System owner")


class AgeGroup(models.TextChoices):
    ADULT = "adult", _("Adult (18+)")
    YOUTH = "youth", _("Youth (13-17)")
    CHILD = "child", _("Child (6-12)")


class User(AbstractUser):
    """A person who logs in. Roles come from memberships, per organisation.

    The free-text fields refuse CPR-shaped text (model validators, so the Django admin
    and every other form path are covered, as the CSV user import is)."""

    username = models.CharField(
        _("username"),
        max_length=150,
        unique=True,
        help_text=_("Required. 150 characters or fewer. Letters, digits and @/./+/-/_ only."),
        validators=[AbstractUser.username_validator, reject_cpr],
        error_messages={"unique": _("A user with that username already exists.")},
    )
    first_name = models.CharField(
        _("first name"), max_length=150, blank=True, validators=[reject_cpr]
    )
    last_name = models.CharField(
        _("last name"), max_length=150, blank=True, validators=[reject_cpr]
    )
    email = models.EmailField(_("email address"), blank=True, validators=[reject_cpr])

    is_platform_operator = models.BooleanField(
        _("platform operator"),
        default=False,
        help_text=_("Hosts the installation; sees only the cross-organisation benchmark."),
    )
    # Hashed PIN the therapist types to leave client mode (never stored in clear).
    client_mode_pin = models.CharField(max_length=128, blank=True)

    class Meta(AbstractUser.Meta):  # type: ignore[name-defined]
        swappable = "AUTH_USER_MODEL"

    def display_name(self) -> str:
        return self.get_full_name() or self.username


class Organisation(models.Model):
    """A tenant: a municipality, region or private provider."""

    name = models.CharField(_("name"), max_length=200, validators=[reject_cpr])
    slug = models.SlugField(_("short name"), max_length=60, unique=True, validators=[reject_cpr])
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    # Statistics settings (defaults from statistics.md).
    inactivity_days = models.PositiveIntegerField(
        _("inactivity window (days)"), default=90, validators=[MinValueValidator(1)]
    )
    small_cell_k = models.PositiveIntegerField(
        _("small-cell threshold k"), default=5, validators=[MinValueValidator(3)]
    )
    reliable_change = models.DecimalField(
        _("reliable change (ORS points)"),
        max_digits=3,
        decimal_places=1,
        default=Decimal("5.0"),
        validators=[MinValueValidator(Decimal("0.1"))],
    )
    ors_cutoff_adult = models.DecimalField(
        _("ORS cutoff, adult"), max_digits=3, decimal_places=1, null=True, blank=True
    )
    ors_cutoff_youth = models.DecimalField(
        _("ORS cutoff, youth"), max_digits=3, decimal_places=1, null=True, blank=True
    )
    ors_cutoff_child = models.DecimalField(
        _("CORS cutoff, child"), max_digits=3, decimal_places=1, null=True, blank=True
    )
    srs_cutoff = models.DecimalField(
        _("SRS alliance cutoff"), max_digits=3, decimal_places=1, default=Decimal("36.0")
    )
    # Retention: inactive episodes older than this are anonymised/deleted nightly.
    retention_days = models.PositiveIntegerField(
        _("retention of inactive episodes (days)"), null=True, blank=True
    )
    report_approvers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="approver_for",
        verbose_name=_("report approvers"),
    )

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(small_cell_k__gte=3), name="org_k_at_least_3"),
            models.CheckConstraint(
                condition=Q(inactivity_days__gte=1), name="org_inactivity_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Unit(TenantModel):
    """A department or team; units may nest (department -> team)."""

    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        verbose_name=_("parent unit"),
    )
    name = models.CharField(_("name"), max_length=200, validators=[reject_cpr])
    code = models.SlugField(_("code"), max_length=60, validators=[reject_cpr])

    class Meta(TenantModel.Meta):
        verbose_name = _("unit")
        verbose_name_plural = _("units")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "code"], name="unit_code_unique_in_org")
        ]
        indexes = [models.Index(fields=["organisation", "parent"])]

    def __str__(self) -> str:
        return self.name


class Membership(TenantModel):
    """A user's role in an organisation (and, for unit-bound roles, a unit)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("user"),
    )
    unit = models.ForeignKey(
        Unit,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="memberships",
        verbose_name=_("unit"),
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta(TenantModel.Meta):
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "user", "unit", "role"],
                name="membership_unique",
                nulls_distinct=False,
            ),
            # Therapists and unit leaders belong to a unit.
            models.CheckConstraint(
                condition=~Q(role__in=["therapist", "unit_leader"]) | Q(unit__isnull=False),
                name="membership_unit_for_unit_roles",
            ),
        ]
        indexes = [models.Index(fields=["organisation", "user", "is_active"])]

    def __str__(self) -> str:
        return f"{self.user} {self.role} {self.unit or self.organisation}"


class AccessLog(models.Model):
    """Append-only record of every read of client-level data and every change.

    The application never updates or deletes rows; on PostgreSQL a trigger refuses
    UPDATE and DELETE. ``client_id`` is kept as a plain number (not a foreign key) so
    that the log outlives an erased client and can be exported for the right of access.

    ``client_code_hash`` is set only on the entry that records a client's erasure: a
    keyed hash of organisation and code (``services.client_code_hash``), so that the
    data-policy admin can still find that client's log by its code while the log keeps
    no code in clear. ``details`` says what an administrative change changed (who, which
    role, field: old -> new); never health data, passwords, key secrets or client codes
    (``services.access_log_write`` refuses such keys).
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150)
    role = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=40)
    object_type = models.CharField(max_length=40)
    object_id = models.BigIntegerField(null=True)
    client_id = models.BigIntegerField(null=True)
    at = models.DateTimeField(auto_now_add=True, db_index=False)
    ip = models.GenericIPAddressField(null=True)
    path = models.CharField(max_length=300, blank=True)
    # NULL on every entry but a client's erasure (a few per client ever), so that the
    # partial index below stays small; "" would be a value.
    client_code_hash = models.CharField(max_length=64, null=True, editable=False)  # noqa: DJ001
    details = models.JSONField(null=True, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "at"]),
            models.Index(fields=["organisation", "client_id", "at"]),
            models.Index(fields=["organisation", "user", "at"]),
            models.Index(
                fields=["organisation", "client_code_hash"],
                condition=Q(client_code_hash__isnull=False),
                name="accesslog_erased_client_code",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.action} {self.object_type}"

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.pk is not None:
            raise RuntimeError("The access log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("The access log is append-only")


class Grant(TenantModel):
    """A therapist's share of their own figures, or of one client's graph, with a named
    person, for a purpose and a period. Object permissions for client graphs are carried
    by django-guardian (clients.EpisodeUserObjectPermission)."""

    class Kind(models.TextChoices):
        OWN_FIGURES = "own_figures", _("Own figures")
        CLIENT_GRAPH = "client_graph", _("One client's graph")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    grantor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grants_given"
    )
    grantee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grants_received"
    )
    episode = models.ForeignKey(
        "clients.Episode", null=True, blank=True, on_delete=models.CASCADE, related_name="grants"
    )
    purpose = models.CharField(_("purpose"), max_length=300)
    starts_at = models.DateTimeField(_("starts"))
    expires_at = models.DateTimeField(_("expires"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta(TenantModel.Meta):
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("starts_at")), name="grant_period"
            ),
            models.CheckConstraint(
                condition=Q(kind="own_figures", episode__isnull=True)
                | Q(kind="client_graph", episode__isnull=False),
                name="grant_kind_object",
            ),
        ]
        indexes = [models.Index(fields=["organisation", "grantee", "expires_at"])]


class Consent(TenantModel):
    """A client's recorded consent to a use of their data, with its expiry."""

    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(_("purpose"), max_length=300)
    given_on = models.DateField(_("given on"))
    expires_on = models.DateField(_("expires on"), null=True, blank=True)
    withdrawn_on = models.DateField(_("withdrawn on"), null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        indexes = [models.Index(fields=["organisation", "client"])]


class Report(TenantModel):
    """Management information for use outside the organisation: a saved dashboard
    selection with its figures frozen, exportable only once approved."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        APPROVED = "approved", _("Approved")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    title = models.CharField(_("title"), max_length=200)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    selection = models.JSONField(default=dict)
    figures = models.JSONField(default=dict)
    # SECURITY: internal only — keyed digests (not ids) of the episodes behind each
    # published cell as of freezing, for the differencing check between reports
    # (datapolicy.differencing). Never exported, shown, sent by the API or in the admin.
    episode_fingerprint = models.BinaryField(
        _("internal episode fingerprint for the differencing check"),
        default=b"",
        blank=True,
        editable=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        indexes = [models.Index(fields=["organisation", "status"])]


class ReportEvent(TenantModel):
    """Who did what to a report, and when (kept for ever with the report)."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=20)
    note = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["at"]


class ApiKey(TenantModel):
    """A per-organisation key for an integration. Only a hash is stored; the key is
    shown once when created."""

    name = models.CharField(_("name"), max_length=100)
    # The key acts as this (service) user, with that user's memberships and roles in the
    # organisation: the API applies exactly the same data policy as the pages.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_keys"
    )
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=128)
    scopes = models.JSONField(default=list)  # ["read"], ["read", "write"]
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        indexes = [models.Index(fields=["organisation", "revoked_at"])]


class RetentionRun(TenantModel):
    """What a retention run did (counts only, no health data)."""

    ran_at = models.DateTimeField(auto_now_add=True)
    cutoff = models.DateField()
    episodes_deleted = models.PositiveIntegerField(default=0)
    clients_deleted = models.PositiveIntegerField(default=0)
    details = models.JSONField(default=dict)
