"""Data-policy services: the access log, grants, consents, organisation settings.

Reports live in ``datapolicy.reports``, retention in ``datapolicy.retention``, the CSV
user import in ``datapolicy.user_import``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from .access import GRANTEE_ROLES, roles_of
from .models import AccessLog, Consent, Grant, Membership, Organisation, Role
from .validators import CPR_MESSAGE, looks_like_cpr


class Action:
    VIEW = "view"
    LIST = "list"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    CLOSE = "close"
    REOPEN = "reopen"
    TRANSFER = "transfer"
    EXPORT = "export"
    GRANT = "grant"
    REVOKE = "revoke"
    WITHDRAW = "withdraw"
    APPROVE = "approve"
    SEARCH = "search"
    RETENTION = "retention"
    IMPORT = "import"


def _client_ip(request: HttpRequest | None) -> str | None:
    """The client's address: REMOTE_ADDR, or behind ``TRUSTED_PROXY_COUNT`` reverse
    proxies the X-Forwarded-For entry that the outermost trusted proxy appended."""
    # Imported here so that this fix touches this function only (parallel edits).
    import ipaddress

    from django.conf import settings

    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = int(settings.FITPLATFORM.get("TRUSTED_PROXY_COUNT", 0))
    if proxies <= 0:
        return remote
    # SECURITY: entries left of the trusted ones are written by the client and can be
    # forged; only the entry the outermost trusted proxy added (counting from the
    # right) is used, and only if it is an IP address.
    forwarded = [
        p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()
    ]
    if len(forwarded) < proxies:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-proxies]))
    except ValueError:
        return remote


# --- The keyed hash of a client code (erased clients' log) -------------------------

_CODE_HASH_SALT = "fitplatform.datapolicy.AccessLog.client_code_hash"


def _code_hash_secrets() -> list[str]:
    """The keys an erased client's code hash is made with: the first writes, all are
    tried when searching. ``FITPLATFORM["ACCESS_LOG_KEY"]`` (env
    ``DJANGO_ACCESS_LOG_KEY``) if set, then ``SECRET_KEY`` and its fallbacks, so that a
    rotated ``SECRET_KEY`` kept in ``SECRET_KEY_FALLBACKS`` (or set as the dedicated
    key) still finds the hashes written under it."""
    from django.conf import settings

    keys = [
        settings.FITPLATFORM.get("ACCESS_LOG_KEY") or "",
        settings.SECRET_KEY,
        *getattr(settings, "SECRET_KEY_FALLBACKS", []),
    ]
    return list(dict.fromkeys(k for k in keys if k))


def client_code_hash(*, organisation_id: int, code: str, secret: str | None = None) -> str:
    """HMAC-SHA256 (hex) of the organisation and the client code, as the pages compare
    codes (stripped, case-insensitive). SECURITY: keyed, because codes are guessable
    (initials + a number): without the key a leaked log does not give them back, nor
    link one organisation's entries to another's."""
    from django.utils.crypto import salted_hmac

    value = f"{int(organisation_id)}\x1f{(code or '').strip().upper()}"
    secret = secret or _code_hash_secrets()[0]
    return salted_hmac(_CODE_HASH_SALT, value, secret=secret, algorithm="sha256").hexdigest()


def client_code_hashes(*, organisation_id: int, code: str) -> list[str]:
    """The hashes of a typed code under every key in use (see ``_code_hash_secrets``)."""
    return [
        client_code_hash(organisation_id=organisation_id, code=code, secret=k)
        for k in _code_hash_secrets()
    ]


# --- Details of administrative changes --------------------------------------------

# SECURITY: never in an entry's details: secrets (a password, its hash, a PIN, an API
# key or its hash) and client codes (pseudonyms of health data).
FORBIDDEN_DETAIL_KEYS = frozenset(
    {
        "password",
        "password1",
        "password2",
        "client_mode_pin",
        "key",
        "raw_key",
        "key_hash",
        "prefix",
        "secret",
        "client_code",
        "client_codes",
    }
)


def _check_details(details: Any) -> None:
    """Refuse a forbidden key anywhere in ``details`` (fail closed: a caller that would
    log a secret or a client code is a bug, not something to store)."""
    if isinstance(details, dict):
        for key, value in details.items():
            if str(key).lower() in FORBIDDEN_DETAIL_KEYS:
                raise ValueError(f"access-log details must not hold {key!r}")
            _check_details(value)
    elif isinstance(details, list | tuple):
        for value in details:
            _check_details(value)


def plain_value(value: Any) -> Any:
    """A value as the log's details keep it (JSON): a person by user name, a unit by
    its code, other objects by their text; numbers, booleans and None as they are."""
    import decimal

    from django.db.models import Model, QuerySet

    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, decimal.Decimal | float):
        return str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, Model):
        for attribute in ("username", "code"):
            if hasattr(value, attribute):
                return str(getattr(value, attribute))
        return str(value)
    if isinstance(value, QuerySet | list | tuple | set | frozenset):
        return sorted((plain_value(v) for v in value), key=str)
    return str(value)


def changes_of(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for the fields whose plain values differ."""
    changes = {}
    for name, new in after.items():
        old_plain, new_plain = plain_value(before.get(name)), plain_value(new)
        if old_plain != new_plain:
            changes[name] = [old_plain, new_plain]
    return changes


def membership_subject(membership: Membership) -> dict[str, Any]:
    """Whose role a membership is, for the details of its log entries."""
    return {
        "user": membership.user.username,
        "role": membership.role,
        "unit": membership.unit.code if membership.unit is not None else "",
    }


def access_log_write(
    *,
    actor: Any,
    organisation: Organisation | int,
    action: str,
    obj: Any = None,
    object_type: str | None = None,
    object_id: int | None = None,
    client_id: int | None = None,
    role: str = "",
    request: HttpRequest | None = None,
    details: dict[str, Any] | None = None,
) -> AccessLog:
    """Append one entry. Pass ``obj`` (a Client, Episode, Session ...) or type + id.

    Stores ids and the action only: never scores or client codes. ``details``: what an
    administrative change changed (not health data; secrets and client codes refused).
    """
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = obj.pk
        if client_id is None:
            client_id = _client_id_of(obj)
    if details is not None:
        _check_details(details)
    org_id = organisation if isinstance(organisation, int) else organisation.pk
    role = role or _request_role(request)
    return AccessLog.objects.create(
        organisation_id=org_id,
        user=actor if getattr(actor, "is_authenticated", False) else None,
        username=getattr(actor, "username", "") or "",
        role=role,
        action=action,
        object_type=object_type or "",
        object_id=object_id,
        client_id=client_id,
        ip=_client_ip(request),
        path=(request.path[:300] if request is not None else ""),
        details=details,
    )


def _request_role(request: HttpRequest | None) -> str:
    """The role a page request acts under when the caller did not name one (services
    get the request, not the view's role): the therapist role where held, since only a
    client's own therapist changes client data."""
    roles = sorted(getattr(request, "roles", None) or ())
    if not roles:
        return ""
    return "therapist" if "therapist" in roles else roles[0]


def _client_id_of(obj: Any) -> int | None:
    name = obj._meta.model_name
    if name == "client":
        return obj.pk
    if name == "episode":
        return obj.client_id
    if name == "session":
        return obj.episode.client_id
    if name == "score":
        return obj.session.episode.client_id
    return None


# --- Grants (shares) --------------------------------------------------------------
#
# A therapist shares their own figures, or one client's graph, with a named leader or
# supervisor. The Grant row is the record (purpose, period, revocation, who did it);
# guardian's object permission carries the client-graph share on the episode. Access
# needs both, checked on every request (datapolicy.access.live_grants), so expiry needs
# no job and revocation takes effect on the next request.

GRAPH_PERM = "clients.view_episode_graph"
# GRANTEE_ROLES (datapolicy.access): the roles that may receive a share; a grant counts
# only while its grantee holds one of them (access.live_grants).


def _has_role(user: Any, organisation: Organisation, *roles: str) -> bool:
    return (
        Membership.objects.for_org(organisation)
        .filter(user=user, role__in=roles, is_active=True)
        .exists()
    )


@transaction.atomic
def grant_create(
    *,
    actor: Any,
    organisation: Organisation,
    kind: str,
    grantee: Any,
    purpose: str,
    starts_at: dt.datetime,
    expires_at: dt.datetime,
    episode: Any = None,
    grantor: Any = None,
    request: HttpRequest | None = None,
) -> Grant:
    """Share own figures or one episode's graph with ``grantee`` for a period.

    A therapist shares only their own figures and their own episodes; a data-policy
    admin may create a grant on behalf of a therapist (``grantor``) of the organisation.
    """
    grantor = grantor or actor
    actor_roles = roles_of(actor, organisation)
    # SECURITY: only the therapist themself, or a data-policy admin, may give a share.
    if Role.DP_ADMIN not in actor_roles and not (
        Role.THERAPIST in actor_roles and grantor.pk == actor.pk
    ):
        raise PermissionDenied
    errors: dict[str, Any] = {}
    if not _has_role(grantor, organisation, Role.THERAPIST):
        errors["grantor"] = _("Only a therapist of the organisation can share figures.")
    if grantee is None or grantee.pk == grantor.pk:
        errors["grantee"] = _("Choose another person to share with.")
    elif not _has_role(grantee, organisation, *GRANTEE_ROLES):
        errors["grantee"] = _(
            "Shares can only be given to a unit leader or a therapist of the organisation."
        )
    purpose = (purpose or "").strip()
    if not purpose:
        errors["purpose"] = _("State the purpose of the share.")
    elif looks_like_cpr(purpose):
        errors["purpose"] = CPR_MESSAGE
    if starts_at is None or expires_at is None or expires_at <= starts_at:
        errors["expires_at"] = _("The expiry must be after the start.")
    elif expires_at <= timezone.now():
        errors["expires_at"] = _("The expiry must be in the future.")
    if kind == Grant.Kind.CLIENT_GRAPH:
        if episode is None or episode.organisation_id != organisation.pk:
            errors["episode"] = _("Choose one of the therapist's episodes.")
        elif episode.therapist_id != grantor.pk:
            # SECURITY: nobody shares a colleague's client.
            errors["episode"] = _("Choose one of the therapist's episodes.")
    elif kind == Grant.Kind.OWN_FIGURES:
        episode = None
    else:
        errors["kind"] = _("Unknown kind of share.")
    if errors:
        raise ValidationError(errors)
    grant = Grant.objects.create(
        organisation=organisation,
        kind=kind,
        grantor=grantor,
        grantee=grantee,
        episode=episode,
        purpose=purpose,
        starts_at=starts_at,
        expires_at=expires_at,
        created_by=actor,
    )
    if episode is not None:
        from guardian.shortcuts import assign_perm

        # One guardian row per (grantee, episode), not per measurement.
        assign_perm(GRAPH_PERM, grantee, episode)
    access_log_write(
        actor=actor,
        organisation=organisation,
        action=Action.GRANT,
        object_type="grant",
        object_id=grant.pk,
        client_id=episode.client_id if episode is not None else None,
        role=_acting_role(actor_roles, own=grantor.pk == actor.pk),
        request=request,
    )
    return grant


@transaction.atomic
def grant_revoke(*, actor: Any, grant: Grant, request: HttpRequest | None = None) -> Grant:
    """Revoke a share now (the grantor or a data-policy admin)."""
    organisation = grant.organisation
    actor_roles = roles_of(actor, organisation)
    if Role.DP_ADMIN not in actor_roles and grant.grantor_id != actor.pk:
        raise PermissionDenied
    if grant.revoked_at is not None:
        raise ValidationError(_("The share is already revoked."))
    grant.revoked_at = timezone.now()
    grant.revoked_by = actor
    grant.save(update_fields=["revoked_at", "revoked_by"])
    _sync_graph_permission(grant)
    access_log_write(
        actor=actor,
        organisation=organisation,
        action=Action.REVOKE,
        object_type="grant",
        object_id=grant.pk,
        client_id=grant.episode.client_id if grant.episode is not None else None,
        role=_acting_role(actor_roles, own=grant.grantor_id == actor.pk),
        request=request,
    )
    return grant


def grants_end_for_episode(*, actor: Any, episode: Any, request: HttpRequest | None = None) -> int:
    """End every unrevoked supervision share of an episode (it changed hands).

    SECURITY: a share is the grantor's consent for *their* episode; when the episode is
    transferred, the new therapist has not agreed to it, so it ends at once.
    """
    grants = list(
        Grant.objects.for_org(episode.organisation_id).filter(
            episode=episode, revoked_at__isnull=True
        )
    )
    now = timezone.now()
    for grant in grants:
        grant.revoked_at = now
        grant.revoked_by = actor
        grant.save(update_fields=["revoked_at", "revoked_by"])
        _sync_graph_permission(grant)
        access_log_write(
            actor=actor,
            organisation=episode.organisation_id,
            action=Action.REVOKE,
            object_type="grant",
            object_id=grant.pk,
            client_id=episode.client_id,
            request=request,
        )
    return len(grants)


def _sync_graph_permission(grant: Grant) -> bool:
    """Remove guardian's row for (grantee, episode) unless another unrevoked, unexpired
    grant still needs it. Returns whether it was removed."""
    if grant.episode_id is None:
        return False
    still_needed = (
        Grant.objects.for_org(grant.organisation_id)
        .filter(
            kind=Grant.Kind.CLIENT_GRAPH,
            grantee_id=grant.grantee_id,
            episode_id=grant.episode_id,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .exists()
    )
    if still_needed:
        return False
    from clients.models import EpisodeUserObjectPermission

    deleted, _ignored = EpisodeUserObjectPermission.objects.filter(
        user_id=grant.grantee_id,
        content_object_id=grant.episode_id,
        permission__codename="view_episode_graph",
    ).delete()
    return bool(deleted)


def grant_permissions_cleanup(*, organisation: Organisation) -> int:
    """Drop guardian rows of expired grants (nightly; access is refused without it
    anyway, since every request checks the grant's period). Idempotent."""
    expired = Grant.objects.for_org(organisation).filter(
        kind=Grant.Kind.CLIENT_GRAPH, expires_at__lte=timezone.now()
    )
    return sum(_sync_graph_permission(g) for g in expired.select_related("organisation"))


# --- Consents ---------------------------------------------------------------------


@transaction.atomic
def consent_record(
    *,
    actor: Any,
    organisation: Organisation,
    client: Any,
    purpose: str,
    given_on: dt.date,
    expires_on: dt.date | None = None,
    request: HttpRequest | None = None,
) -> Consent:
    """Record a client's consent. A therapist records it for their own client (the
    caller resolves the client through ``Client.objects.for_user``); a data-policy admin
    for any client of the organisation."""
    if client.organisation_id != organisation.pk:
        raise PermissionDenied
    _check_may_act_for_client(actor, organisation.pk, client.pk)
    errors: dict[str, Any] = {}
    purpose = (purpose or "").strip()
    if not purpose:
        errors["purpose"] = _("State the purpose of the consent.")
    elif looks_like_cpr(purpose):
        errors["purpose"] = CPR_MESSAGE
    if given_on is None or given_on > timezone.localdate():
        errors["given_on"] = _("The date of consent cannot be in the future.")
    elif expires_on is not None and expires_on <= given_on:
        errors["expires_on"] = _("The expiry must be after the date of consent.")
    if errors:
        raise ValidationError(errors)
    consent = Consent.objects.create(
        organisation=organisation,
        client=client,
        purpose=purpose,
        given_on=given_on,
        expires_on=expires_on,
        recorded_by=actor,
    )
    access_log_write(
        actor=actor,
        organisation=organisation,
        action=Action.CREATE,
        object_type="consent",
        object_id=consent.pk,
        client_id=client.pk,
        role=_acting_role(
            roles_of(actor, organisation), own=_is_own_client(actor, organisation, client.pk)
        ),
        request=request,
    )
    return consent


@transaction.atomic
def consent_withdraw(
    *, actor: Any, consent: Consent, request: HttpRequest | None = None
) -> Consent:
    _check_may_act_for_client(actor, consent.organisation_id, consent.client_id)
    if consent.withdrawn_on is not None:
        raise ValidationError(_("The consent is already withdrawn."))
    consent.withdrawn_on = timezone.localdate()
    consent.save(update_fields=["withdrawn_on"])
    access_log_write(
        actor=actor,
        organisation=consent.organisation_id,
        action=Action.WITHDRAW,
        object_type="consent",
        object_id=consent.pk,
        client_id=consent.client_id,
        role=_acting_role(
            roles_of(actor, consent.organisation_id),
            own=_is_own_client(actor, consent.organisation_id, consent.client_id),
        ),
        request=request,
    )
    return consent


def _is_own_client(actor: Any, organisation: Any, client_id: int) -> bool:
    from clients.selectors import own_clients

    return bool(
        own_clients(therapist=actor, organisation=organisation).filter(pk=client_id).exists()
    )


def _check_may_act_for_client(actor: Any, organisation_id: int, client_id: int) -> None:
    """SECURITY: the data-policy admin acts for any client of the organisation; anyone
    else only for a client they may see (a therapist's own)."""
    if Role.DP_ADMIN in roles_of(actor, organisation_id):
        return
    from clients.selectors import own_clients

    # SECURITY: a supervision grant gives read access only; consents are recorded and
    # withdrawn by the client's own therapist (or the data-policy admin).
    if not own_clients(therapist=actor, organisation=organisation_id).filter(pk=client_id).exists():
        raise PermissionDenied


def _acting_role(roles: set[str], *, own: bool = False) -> str:
    """The role a change is logged under. ``own``: the actor acts on their own client or
    their own share, which a therapist does as therapist (also one who is data-policy
    admin as well); otherwise the organisation-wide role that allows it comes first."""
    if own and Role.THERAPIST in roles:
        return str(Role.THERAPIST)
    for role in (Role.DP_ADMIN, Role.THERAPIST, Role.SYSTEM_OWNER, Role.MI_OFFICER):
        if role in roles:
            return str(role)
    return ""


# --- Organisation settings --------------------------------------------------------


@transaction.atomic
def organisation_policy_update(
    *,
    actor: Any,
    organisation: Organisation,
    retention_days: int | None,
    small_cell_k: int,
    approvers: list[Any],
    request: HttpRequest | None = None,
) -> Organisation:
    """Retention, the small-cell threshold and the named report approvers."""
    errors: dict[str, Any] = {}
    if small_cell_k is None or small_cell_k < 3:
        errors["small_cell_k"] = _("The threshold k must be at least 3.")
    if retention_days is not None and retention_days < organisation.inactivity_days:
        errors["retention_days"] = _(
            "Retention must be at least the inactivity window (%(days)s days)."
        ) % {"days": organisation.inactivity_days}
    members = set(
        Membership.objects.for_org(organisation)
        .filter(is_active=True)
        .values_list("user_id", flat=True)
    )
    if any(a.pk not in members for a in approvers):
        errors["approvers"] = _("Approvers must be members of the organisation.")
    if errors:
        raise ValidationError(errors)
    # The values before the change as stored (the caller's object may be stale), read
    # under a lock so that two saves log each other's values correctly.
    stored = Organisation.objects.select_for_update().get(pk=organisation.pk)
    before = {
        "retention_days": stored.retention_days,
        "small_cell_k": stored.small_cell_k,
        "report_approvers": list(stored.report_approvers.all()),
    }
    organisation.retention_days = retention_days
    organisation.small_cell_k = small_cell_k
    organisation.save(update_fields=["retention_days", "small_cell_k"])
    organisation.report_approvers.set(approvers)
    access_log_write(
        actor=actor,
        organisation=organisation,
        action=Action.UPDATE,
        object_type="organisation",
        object_id=organisation.pk,
        role=_acting_role(roles_of(actor, organisation)),
        request=request,
        details={
            "changes": changes_of(
                before,
                {
                    "retention_days": retention_days,
                    "small_cell_k": small_cell_k,
                    "report_approvers": approvers,
                },
            )
        },
    )
    return organisation


# --- Memberships ------------------------------------------------------------------


@transaction.atomic
def membership_set_active(
    *, actor: Any, membership: Membership, active: bool, request: HttpRequest | None = None
) -> Membership:
    """The system owner (de)activates a role of another user; the user keeps their
    history. Assumes nothing of the caller: the actor's system-owner role is checked
    here, and a membership of the actor's own is refused."""
    organisation_id = membership.organisation_id
    if Role.SYSTEM_OWNER not in roles_of(actor, organisation_id):
        raise PermissionDenied
    if membership.user_id == actor.pk:
        # SECURITY: nobody changes their own roles (four eyes, as the Django admin): a
        # system owner who reactivated a therapist role of their own would read client
        # data, and deactivating their own system-owner role could leave the
        # organisation without user administration.
        raise ValidationError(
            _(
                "You cannot change your own roles; another system owner of the "
                "organisation must do it."
            )
        )
    # As stored (the caller's object may be stale), under a lock.
    was_active = (
        Membership.objects.for_org(organisation_id)
        .select_for_update()
        .values_list("is_active", flat=True)
        .get(pk=membership.pk)
    )
    membership.is_active = active
    membership.save(update_fields=["is_active"])
    access_log_write(
        actor=actor,
        organisation=organisation_id,
        action=Action.UPDATE,
        object_type="membership",
        object_id=membership.pk,
        role=Role.SYSTEM_OWNER,
        request=request,
        details={
            **membership_subject(membership),
            "changes": changes_of({"is_active": was_active}, {"is_active": active}),
        },
    )
    return membership


def access_log_write_many(
    *,
    actor: Any,
    organisation: Organisation | int,
    action: str,
    object_type: str,
    client_ids: Any,
    role: str = "",
    request: HttpRequest | None = None,
) -> int:
    """One entry per client for a bulk read (an export), in one insert, so that each
    client's own log (the right of access) shows that their data was exported."""
    org_id = organisation if isinstance(organisation, int) else organisation.pk
    common = {
        "organisation_id": org_id,
        "user": actor if getattr(actor, "is_authenticated", False) else None,
        "username": getattr(actor, "username", "") or "",
        "role": role or _request_role(request),
        "action": action,
        "object_type": object_type,
        "ip": _client_ip(request),
        "path": (request.path[:300] if request is not None else ""),
    }
    rows = [AccessLog(client_id=int(cid), **common) for cid in client_ids]
    AccessLog.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def access_log_list(
    *,
    actor: Any,
    organisation: Organisation | int,
    object_type: str,
    client_ids: Any,
    role: str = "",
    request: HttpRequest | None = None,
) -> int:
    """Access-log a list read of client-level data (a page or an API list): one ``list``
    entry per client shown, in one insert, so that each client's own log (the right of
    access) shows the read; an empty list is one entry without a client (the call
    itself). Returns the number of entries written."""
    ids = sorted({int(cid) for cid in client_ids})
    if ids:
        return access_log_write_many(
            actor=actor,
            organisation=organisation,
            action=Action.LIST,
            object_type=object_type,
            client_ids=ids,
            role=role,
            request=request,
        )
    access_log_write(
        actor=actor,
        organisation=organisation,
        action=Action.LIST,
        object_type=object_type,
        role=role,
        request=request,
    )
    return 1


def access_log_list_per_role(
    *,
    actor: Any,
    organisation: Organisation | int,
    object_type: str,
    roles: dict[int, str],
    empty_role: str,
    request: HttpRequest | None = None,
) -> int:
    """``access_log_list`` for a list whose clients are read under different roles
    (``roles``: client id -> the role that brought that client, e.g. one's own client as
    therapist, a colleague's through a grant as unit leader): one insert per role. An
    empty list is one entry without a client, under ``empty_role``."""
    if not roles:
        return access_log_list(
            actor=actor,
            organisation=organisation,
            object_type=object_type,
            client_ids=[],
            role=empty_role,
            request=request,
        )
    by_role: dict[str, list[int]] = {}
    for client_id, role in roles.items():
        by_role.setdefault(role, []).append(client_id)
    return sum(
        access_log_list(
            actor=actor,
            organisation=organisation,
            object_type=object_type,
            client_ids=client_ids,
            role=role,
            request=request,
        )
        for role, client_ids in sorted(by_role.items())
    )


def access_log_write_from_query(
    *,
    actor: Any,
    organisation: Organisation | int,
    action: str,
    object_type: str,
    client_ids_sql: str,
    params: list[Any],
    role: str,
    request: HttpRequest | None = None,
) -> int:
    """One entry per client id that ``client_ids_sql`` yields (a SELECT of one column
    named ``client_id``, distinct ids, with ``params``), written by one
    ``INSERT … SELECT`` inside the caller's transaction: for bulk changes whose client
    ids are in the database (the import of up to a million sessions), without loading
    them into Python. Returns the number of entries written. ``client_ids_sql`` is the
    caller's own fixed SQL."""
    from django.db import connection

    org_id = organisation if isinstance(organisation, int) else organisation.pk
    user_id = actor.pk if getattr(actor, "is_authenticated", False) else None
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    table = AccessLog._meta.db_table
    sql = (
        f"INSERT INTO {table} (organisation_id, user_id, username, role, action, "  # noqa: S608
        "object_type, object_id, client_id, at, ip, path) "
        f"SELECT %s, %s, %s, %s, %s, %s, NULL, ids.client_id, %s, %s, %s "
        f"FROM ({client_ids_sql}) ids"
    )
    common = [
        org_id,
        user_id,
        getattr(actor, "username", "") or "",
        role or _request_role(request),
        action,
        object_type,
        now,
        _client_ip(request),
        (request.path[:300] if request is not None else ""),
    ]
    with connection.cursor() as cur:
        cur.execute(sql, [*common, *params])
        return max(cur.rowcount, 0)
