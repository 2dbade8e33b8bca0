"""The permission matrix: role x resource x action, as data.

Each app lists its pages and endpoints in ``<app>/matrix.py`` as ``ROWS``; this module
collects them. ``tests/test_matrix.py`` generates a test case for every row and every
persona and calls the URL; it also fails when a URL pattern exists that no row (and no
entry of ``EXEMPT``) covers. ``manage.py access_matrix`` renders the table that
``docs/datapolicy.md`` shows (a test checks the doc is current).

Personas (see tests/conftest.py): ``therapist_a`` owns the test objects, ``therapist_b``
is a colleague in the same unit, ``leader`` leads that unit, ``analyst`` is the
management-information officer, ``dp_admin`` the data-policy admin, ``owner`` the system
owner; ``other_org`` is a therapist of another organisation, ``operator`` the platform
operator, ``anonymous`` is not logged in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

PERSONAS = (
    "therapist_a",
    "therapist_b",
    "leader",
    "analyst",
    "dp_admin",
    "owner",
    "other_org",
    "operator",
    "anonymous",
)
ORG_ROLES = ("therapist_a", "therapist_b", "leader", "analyst", "dp_admin", "owner")

# Outcomes: an HTTP status, or LOGIN (a redirect to the login page).
LOGIN = "login"
OK = 200


@dataclass(frozen=True)
class Row:
    """One page or endpoint, what it is for, and what each persona gets."""

    url_name: str
    resource: str
    action: str
    allowed: tuple[str, ...]
    method: str = "get"
    # Builds the URL kwargs from the test world (objects owned by therapist_a in org 1).
    kwargs: Callable[[Any], dict[str, Any]] | None = None
    data: Callable[[Any], dict[str, Any]] | None = None
    # Status for allowed personas (200, or 302 after a successful POST, 201 ...).
    ok_status: int = OK
    # Overrides for single personas (e.g. a colleague gets 404 on a client object).
    overrides: dict[str, Any] = field(default_factory=dict)
    # The response must contain no client codes and no therapist names.
    anonymised: bool = False
    api: bool = False
    fields: str = ""  # which fields the allowed roles see, for the doc

    def expected(self, persona: str) -> Any:
        if persona in self.overrides:
            return self.overrides[persona]
        if persona == "anonymous":
            return 403 if self.api else LOGIN
        if persona == "other_org":
            # Another organisation's object is 404; an object-less page behaves as for
            # the same role in the user's own organisation (a therapist).
            if self.kwargs is not None:
                return 404
            return self.ok_status if "therapist_a" in self.allowed else 403
        if persona in self.allowed:
            return self.ok_status
        return 403


# URL names that are not organisation data and need no matrix rows, with the reason.
EXEMPT: dict[str, str] = {
    "login": "public login page",
    "logout": "ends the session; no data",
    "set_language": "public language switch",
    "choose_organisation": "lists only the user's own memberships",
    "api-schema": "public OpenAPI schema, no data",
    "api-docs": "public Swagger UI, no data",
    "password_change": "one's own password only (tests/foundation/test_accounts.py)",
    "password_change_done": "confirmation, no data",
    "password_reset": "same answer for every address (tests/foundation/test_accounts.py)",
    "password_reset_done": "confirmation, no data",
    "password_reset_confirm": "one-time token sets that account's password only",
    "password_reset_complete": "confirmation, no data",
    "password_reset_invalid": "a link that cannot be used: a fixed notice, no data",
}
EXEMPT_PREFIXES: dict[str, str] = {
    "admin:": (
        "Django admin: system owner of the own organisation only "
        "(tests/foundation/test_pages.py::TestAdmin)"
    ),
}

APPS = ("datapolicy", "clients", "measures", "stats")


def all_rows() -> list[Row]:
    rows: list[Row] = []
    for app in APPS:
        try:
            module = import_module(f"{app}.access_matrix")
        except ModuleNotFoundError:
            continue
        rows.extend(module.ROWS)
    return rows


def markdown_table() -> str:
    """The matrix as a Markdown table (for docs/datapolicy.md)."""
    head = "| page / endpoint | resource | action | " + " | ".join(PERSONAS) + " |"
    sep = "|" + "---|" * (3 + len(PERSONAS))
    lines = [head, sep]
    for row in sorted(all_rows(), key=lambda r: (r.api, r.url_name, r.method)):
        cells = []
        for persona in PERSONAS:
            value = row.expected(persona)
            cells.append("→login" if value == LOGIN else str(value))
        name = f"`{row.method.upper()} {row.url_name}`" + (
            " (anonymised)" if row.anonymised else ""
        )
        lines.append(f"| {name} | {row.resource} | {row.action} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
