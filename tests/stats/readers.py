"""What an attacker reads: the statistics API's answer and a dashboard export, as a
logged-in user (shared by the round-11 attacker tests)."""

from __future__ import annotations

import csv
import datetime as dt
from typing import Any

from django.urls import reverse


def months_back(reference: dt.date, back: int, day: int) -> dt.date:
    """Day ``day`` of the month ``back`` months before ``reference``'s month."""
    y, m = reference.year, reference.month - back
    while m < 1:
        y, m = y - 1, m + 12
    return dt.date(y, m, day)


def api_figures(client: Any, user: Any, kind: str, scope_id: int) -> dict[str, Any]:
    """The statistics API's answer for a scope (200 asserted)."""
    client.force_login(user)
    r = client.get(reverse("api_stats_scope", kwargs={"scope": kind, "scope_id": scope_id}))
    assert r.status_code == 200, r.content
    body: dict[str, Any] = r.json()
    return body


def export_rows(client: Any, user: Any, kind: str, scope_id: int, table: str) -> list[list[str]]:
    """A dashboard table's CSV export as rows (header first; 200 asserted)."""
    client.force_login(user)
    url = reverse(
        "stats_export", kwargs={"kind": kind, "scope_id": scope_id, "table": table, "fmt": "csv"}
    )
    r = client.get(url)
    assert r.status_code == 200
    return list(csv.reader(r.content.decode("utf-8-sig").splitlines(), delimiter=";"))
