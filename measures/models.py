"""Scale definitions (as data), sessions and scores."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from datapolicy.tenancy import TenantModel, TenantQuerySet, organisation_field
from datapolicy.validators import looks_like_cpr

ITEM_MIN = Decimal("0.0")
ITEM_MAX = Decimal("10.0")
TOTAL_MAX = Decimal("40.0")
SAFE_UPLOAD_NAME = "upload.csv"


class ScaleKind(models.TextChoices):
    OUTCOME = "outcome", _("Outcome (ORS/CORS)")
    ALLIANCE = "alliance", _("Alliance (SRS/CSRS)")


class Scale(models.Model):
    """A rating scale: four 10 cm lines. Wording and cutoffs are data, not code.

    ``items`` is a list of four dicts ``{"label": {"da": .., "en": ..},
    "left": {"da": .., "en": ..}, "right": {"da": .., "en": ..}}``; ``cutoffs`` maps an
    age group (or ``"all"``) to the clinical cutoff of the total.
    """

    code = models.CharField(max_length=8, unique=True)  # ORS, SRS, CORS, CSRS
    name = models.JSONField(default=dict)
    kind = models.CharField(max_length=8, choices=ScaleKind.choices)
    age_groups = models.JSONField(default=list)
    items = models.JSONField(default=list)
    cutoffs = models.JSONField(default=dict)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def cutoff_for(self, age_group: str) -> Decimal | None:
        value = self.cutoffs.get(age_group, self.cutoffs.get("all"))
        return None if value is None else Decimal(str(value))


def _item_field(n: int) -> models.DecimalField:
    return models.DecimalField(
        _("item %(n)s") % {"n": n}, max_digits=3, decimal_places=1, null=True, blank=True
    )


class Session(TenantModel):
    """One meeting in an episode, numbered 1, 2, 3 ... by date."""

    # Served by the indexes below (organisation, ...) and (episode, number): a single-
    # column index of its own would only slow down every insert (the bulk import).
    organisation = organisation_field(db_index=False)
    episode = models.ForeignKey(
        "clients.Episode", on_delete=models.CASCADE, related_name="sessions", db_index=False
    )
    date = models.DateField(_("date"))
    number = models.PositiveSmallIntegerField(_("session number"))
    # The date the line of an import file gave (measures.importer), kept when the date
    # is corrected in the platform, so that importing that file again recognises the
    # session instead of adding it a second time. Empty for sessions entered here.
    imported_on = models.DateField(_("date in the import file"), null=True, editable=False)
    # Its same-day order in that file (1, 2 ... among the file's sessions of the episode
    # on that date): with imported_on, where the file put it, whatever changed since.
    imported_order = models.PositiveSmallIntegerField(
        _("same-day order in the import file"), null=True, editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["episode", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["episode", "number"],
                name="session_number_unique_in_episode",
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="session_number_positive"),
        ]
        indexes = [
            models.Index(fields=["organisation", "episode", "date"]),
            models.Index(fields=["organisation", "date"]),
        ]

    @classmethod
    def visible_to(
        cls, qs: TenantQuerySet, *, user: Any, roles: set[str], organisation: Any
    ) -> TenantQuerySet:
        from datapolicy.access import episode_visibility_q

        return qs.filter(episode_visibility_q(user, roles, organisation, prefix="episode__"))


class Score(TenantModel):
    """A filled-in scale at a session. Items are optional (a total typed from paper);
    when given, the total is their sum. One outcome and one alliance score per session."""

    # Served by (organisation, session) and (session, kind). Scales are reference data
    # that is never deleted, so the PROTECT check needs no index on ``scale``.
    organisation = organisation_field(db_index=False)
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="scores", db_index=False
    )
    scale = models.ForeignKey(Scale, on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(max_length=8, choices=ScaleKind.choices)
    item1 = _item_field(1)
    item2 = _item_field(2)
    item3 = _item_field(3)
    item4 = _item_field(4)
    total = models.DecimalField(_("total"), max_digits=3, decimal_places=1)

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["session", "kind"], name="score_one_per_kind_per_session"
            ),
            models.CheckConstraint(
                condition=Q(total__gte=ITEM_MIN, total__lte=TOTAL_MAX), name="score_total_range"
            ),
            *[
                models.CheckConstraint(
                    condition=Q(**{f"item{i}__isnull": True})
                    | Q(**{f"item{i}__gte": ITEM_MIN, f"item{i}__lte": ITEM_MAX}),
                    name=f"score_item{i}_range",
                )
                for i in range(1, 5)
            ],
            models.CheckConstraint(
                condition=Q(
                    item1__isnull=True, item2__isnull=True, item3__isnull=True, item4__isnull=True
                )
                | Q(
                    item1__isnull=False,
                    item2__isnull=False,
                    item3__isnull=False,
                    item4__isnull=False,
                    # Within half a decimal: exact on PostgreSQL (NUMERIC); SQLite stores
                    # floats, whose sums are off in the 15th digit.
                    total__gte=F("item1") + F("item2") + F("item3") + F("item4") - Decimal("0.05"),
                    total__lte=F("item1") + F("item2") + F("item3") + F("item4") + Decimal("0.05"),
                ),
                name="score_items_all_or_none_and_sum",
            ),
        ]
        indexes = [models.Index(fields=["organisation", "session"])]

    @property
    def items(self) -> list[Decimal | None]:
        return [self.item1, self.item2, self.item3, self.item4]


class SessionDraft(TenantModel):
    """An interrupted entry: what was marked so far, to finish or discard later."""

    episode = models.ForeignKey("clients.Episode", on_delete=models.CASCADE, related_name="drafts")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    data = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["episode", "created_by"], name="one_draft_per_episode_user"
            )
        ]


def import_upload_path(instance: Any, filename: str) -> str:
    """Where an uploaded import file is kept while its task runs: a random name, never
    the uploaded one (a file may be named after what it holds, e.g. a CPR number). About
    one random hex name in a thousand holds ten digits that read as a CPR number: such a
    name is drawn again."""
    while True:
        name = f"imports/{uuid.uuid4().hex}.csv"
        if not _cpr_in_name(name):
            return name


def _cpr_in_name(name: str) -> bool:
    # Also the name with every mark between the digits removed ("010190+1234",
    # "010190_1234" -> "0101901234"): storage keeps marks such as "_" that looks_like_cpr
    # does not take as a separator.
    return looks_like_cpr(name) or looks_like_cpr(re.sub(r"[\W_]", "", name))


def safe_upload_name(name: str) -> str:
    """An uploaded file's name to show, at most 200 characters: checked whole (a cut could
    keep part of a CPR number) and replaced by SAFE_UPLOAD_NAME when it holds one."""
    return SAFE_UPLOAD_NAME if _cpr_in_name(name) else name[:200]


def job_percent(done: int, total: int) -> int:
    """A job's progress bar value (0-100): the import's lines, the export's sessions."""
    return min(100, round(100 * done / total)) if total else 0


class ImportJob(TenantModel):
    """A CSV import of historical sessions, run by a Celery task."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        VALIDATING = "validating", _("Validating")
        IMPORTING = "importing", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    file = models.FileField(upload_to=import_upload_path)
    original_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    total_lines = models.PositiveIntegerField(default=0)
    processed_lines = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list)
    result = models.JSONField(default=dict)

    def save(self, *args: Any, **kwargs: Any) -> None:
        # SECURITY: a file named after a CPR number would store that number in this row;
        # such a file is shown as "upload.csv" (the stored file has a random name).
        if _cpr_in_name(self.original_name):
            self.original_name = SAFE_UPLOAD_NAME
        super().save(*args, **kwargs)


EXPORT_DIR = "exports"  # under MEDIA_ROOT


def export_file_path(instance: Any, filename: str) -> str:
    """Where an export's CSV is kept until it expires: a random name under MEDIA_ROOT
    (private storage; the platform serves no media URL), never one with client data.
    A random name that reads as a CPR number is drawn again, as for uploads."""
    while True:
        name = f"{EXPORT_DIR}/{uuid.uuid4().hex}.csv"
        if not _cpr_in_name(name):
            return name


class ExportJob(TenantModel):
    """The system owner's export of all the organisation's sessions (CSV in the import
    format), built by a Celery task and downloaded through ``export_job_download``.

    The file holds client codes and scores: it is deleted ``settings.EXPORT_FILE_HOURS``
    after the task finished (at download and by the nightly clean-up,
    ``measures.exports.export_files_expire``); the row then keeps the counts only."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Writing the file")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    file = models.FileField(upload_to=export_file_path, blank=True)
    # When the file was deleted (expired); the counts below stay.
    file_deleted_at = models.DateTimeField(null=True, blank=True)
    sessions = models.PositiveIntegerField(default=0)
    clients = models.PositiveIntegerField(default=0)
    size = models.PositiveBigIntegerField(default=0)
    # Progress while the task writes (after each batch, from a connection of its own:
    # measures.exports.export_job_run): sessions written so far of the total counted at
    # the start. When done, both are the file's sessions.
    sessions_written = models.PositiveIntegerField(default=0)
    sessions_total = models.PositiveIntegerField(default=0)
    downloads = models.PositiveIntegerField(default=0)
    # The platform's own message when the job failed (never the data's).
    message = models.CharField(max_length=300, blank=True)

    def expires_at(self) -> Any:
        """When the file stops being offered (None before it is written)."""
        import datetime as dt

        if self.finished_at is None or self.status != self.Status.DONE:
            return None
        return self.finished_at + dt.timedelta(hours=settings.EXPORT_FILE_HOURS)

    def is_expired(self, now: Any = None) -> bool:
        from django.utils import timezone

        if self.status != self.Status.DONE:
            return False
        if not self.file or self.file_deleted_at is not None:
            return True
        expires = self.expires_at()
        return expires is not None and (now or timezone.now()) >= expires

    def percent(self) -> int:
        """How far the task is (0-100), for the progress bar."""
        if self.status == self.Status.DONE:
            return 100
        return job_percent(self.sessions_written, self.sessions_total)
