"""Bulk-add users from a CSV file (system owner): name, email, unit, role.

The whole file is validated first; any error is reported with its line number and
nothing is created. A user whose e-mail already exists gets the new membership only if
they have no membership yet or belong to this organisation alone: a user of another
organisation is never attached here (their password and e-mail would then be editable
by this organisation's system owner), the platform operator adds them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.http import HttpRequest
from django.utils.translation import gettext as _

from .access import roles_of
from .accounts import link_mail_after_commit
from .models import Membership, Organisation, Role, Unit, User
from .services import Action, access_log_write, membership_subject
from .validators import looks_like_cpr

COLUMNS = ("name", "email", "unit", "role")
MAX_ROWS = 2000
UNIT_ROLES = {Role.THERAPIST, Role.UNIT_LEADER}


@dataclass
class ImportRow:
    line: int
    name: str
    email: str
    unit: Unit | None
    role: str


@dataclass
class ImportResult:
    created_users: int
    created_memberships: int
    errors: list[str]


def _parse(
    organisation: Organisation, text: str, actor: Any = None
) -> tuple[list[ImportRow], list[str]]:
    errors: list[str] = []
    rows: list[ImportRow] = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=_sniff(text))
    lines = list(reader)
    if not lines:
        return [], [_("The file is empty.")]
    header = [h.strip().lower() for h in lines[0]]
    if tuple(header) != COLUMNS:
        return [], [_("Line 1: the columns must be %(cols)s.") % {"cols": ", ".join(COLUMNS)}]
    if len(lines) - 1 > MAX_ROWS:
        return [], [_("At most %(n)s users per file.") % {"n": MAX_ROWS}]
    units = {u.code.lower(): u for u in Unit.objects.for_org(organisation)}
    units.update({u.name.lower(): u for u in units.values()})
    emails = {c[1].strip().lower() for c in lines[1:] if len(c) == len(COLUMNS)}
    elsewhere = _users_elsewhere(organisation, emails)
    taken = _usernames_taken(emails)
    own = _actors_emails(organisation, emails, actor)
    seen: set[tuple[str, str, int | None]] = set()
    for number, cells in enumerate(lines[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(COLUMNS):
            errors.append(
                _("Line %(line)s: expected %(n)s columns.") % {"line": number, "n": len(COLUMNS)}
            )
            continue
        name, email, unit_text, role = (c.strip() for c in cells)
        problems: list[str] = []
        if any(looks_like_cpr(c) for c in cells):
            # SECURITY: the message says which line, never echoes the value.
            problems.append(_("contains something that looks like a CPR number"))
        if not name:
            problems.append(_("the name is missing"))
        try:
            validate_email(email)
        except Exception:
            problems.append(_("the e-mail address is not valid"))
        else:
            if email.lower() in elsewhere:
                # SECURITY: attaching another organisation's user would hand their
                # account (password, e-mail) to this organisation's system owner.
                problems.append(
                    _(
                        "this e-mail address belongs to a user of another organisation; "
                        "the platform operator or that organisation's system owner must "
                        "add them"
                    )
                )
            elif email.lower() in taken:
                # A new user's user name is their address; another account has it (an
                # account whose e-mail changed since it was added): not a server error.
                problems.append(
                    _(
                        "this e-mail address is another account's user name; the "
                        "platform operator must add them"
                    )
                )
            if email.lower() in own:
                # SECURITY: nobody gives themselves a role (four eyes): a system owner
                # with a therapist role would read client data.
                problems.append(
                    _(
                        "this is your own e-mail address; you cannot add a role for "
                        "yourself (another system owner must do it)"
                    )
                )
        if role not in Role.values:
            problems.append(
                _("unknown role (use one of %(roles)s)") % {"roles": ", ".join(Role.values)}
            )
        unit = units.get(unit_text.lower()) if unit_text else None
        if unit_text and unit is None:
            problems.append(_("unknown unit"))
        if role in UNIT_ROLES and unit is None:
            problems.append(_("this role needs a unit"))
        key = (email.lower(), role, unit.pk if unit else None)
        if key in seen:
            problems.append(_("the same user, unit and role appear twice in the file"))
        seen.add(key)
        if problems:
            errors.append(
                _("Line %(line)s: %(problems)s.")
                % {"line": number, "problems": "; ".join(problems)}
            )
            continue
        rows.append(ImportRow(number, name, email, unit, role))
    return rows, errors


def not_attachable(organisation: Organisation) -> Q:
    """Users no organisation's system owner may attach (and then edit): those holding a
    membership in another organisation, and the platform's own accounts (the platform
    operator, superusers), which have no membership yet belong to no organisation."""
    other = Membership.dangerously_unscoped.exclude(organisation=organisation)
    return Q(pk__in=other.values("user_id")) | Q(is_platform_operator=True) | Q(is_superuser=True)


def _users_elsewhere(organisation: Organisation, emails: set[str]) -> set[str]:
    """Those of ``emails`` (lower-cased) that belong to a user holding a membership in
    another organisation, or to a platform account (``not_attachable``)."""
    # A genuine cross-organisation check: only the file's e-mails are looked up.
    return set(
        User.objects.annotate(email_lower=Lower("email"))
        .filter(not_attachable(organisation), email_lower__in=emails - {""})
        .values_list("email_lower", flat=True)
    )


def _usernames_taken(emails: set[str]) -> set[str]:
    """Those of ``emails`` (lower-cased) whose user could not be created: no account has
    the address as its e-mail (so the import would create one, with the address as user
    name), but an account already has it as its user name."""
    names = {e[:150]: e for e in emails - {""}}
    used = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    known = set(
        User.objects.annotate(email_lower=Lower("email"))
        .filter(email_lower__in=emails - {""})
        .values_list("email_lower", flat=True)
    )
    return {names[u] for u in used} - known


def _actors_emails(organisation: Organisation, emails: set[str], actor: Any) -> set[str]:
    """Those of ``emails`` (lower-cased) that ``_matching_user`` would resolve to the
    acting user (only the actor's own address can)."""
    own = (getattr(actor, "email", "") or "").lower()
    if not own or own not in emails:
        return set()
    match = _matching_user(organisation, own)
    return {own} if match is not None and match.pk == actor.pk else set()


def _matching_user(organisation: Organisation, email: str) -> User | None:
    """An existing user with this e-mail who has no membership or only this
    organisation's (users of other organisations, and platform accounts, were refused
    by ``_parse``)."""
    return (
        User.objects.filter(email__iexact=email)
        .exclude(not_attachable(organisation))
        .order_by("pk")
        .first()
    )


def _sniff(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    return ";" if first.count(";") > first.count(",") else ","


def users_import_csv(
    *, actor: Any, organisation: Organisation, text: str, request: HttpRequest | None = None
) -> ImportResult:
    """Create users and memberships from ``text``; all or nothing."""
    if Role.SYSTEM_OWNER not in roles_of(actor, organisation):
        raise PermissionDenied
    rows, errors = _parse(organisation, text, actor)
    if errors:
        return ImportResult(0, 0, errors)
    created_users = created_memberships = 0
    # What the import did, for its log entry: who was created and which roles were
    # given (names, e-mail addresses, role and unit codes; never a password).
    users_created: list[str] = []
    memberships_created: list[dict[str, str]] = []
    new_user_ids: list[int] = []
    with transaction.atomic():
        for row in rows:
            user = _matching_user(organisation, row.email)
            if user is not None and user.pk == actor.pk:
                # SECURITY: refused per line by _parse; never reached (fail closed).
                raise PermissionDenied
            if user is None:
                first, _sep, last = row.name.partition(" ")
                user = User(
                    username=row.email.lower()[:150],
                    email=row.email.lower(),
                    first_name=first[:150],
                    last_name=last[:150],
                )
                # A new user chooses a password through the link of the welcome e-mail
                # (sent below, after commit) or of "forgotten password".
                user.set_unusable_password()
                user.save()
                created_users += 1
                users_created.append(user.username)
                new_user_ids.append(user.pk)
            membership, made = Membership.objects.for_org(organisation).get_or_create(
                organisation=organisation, user=user, unit=row.unit, role=row.role
            )
            created_memberships += int(made)
            if made:
                memberships_created.append(membership_subject(membership))
        access_log_write(
            actor=actor,
            organisation=organisation,
            action=Action.IMPORT,
            object_type="membership",
            role=Role.SYSTEM_OWNER,
            request=request,
            details={
                "users_created": users_created,
                "memberships_created": memberships_created,
            },
        )
        if request is not None and new_user_ids:
            # The welcome e-mails, once the users exist for everyone (after commit).
            link_mail_after_commit(request, "welcome", new_user_ids, organisation.pk)
    return ImportResult(created_users, created_memberships, [])
