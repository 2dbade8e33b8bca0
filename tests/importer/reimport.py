"""Shared helpers of the re-import tests: one client (AB-1) of therapist_a in unit "ung"
of ``org1``, one line per session, the same-day order as the last column."""

from __future__ import annotations

from typing import Any

from django.utils.translation import override

from measures.importer import import_sessions
from tests.conftest import OrgPersonas

HEADER = "client_code;therapist;unit;session_date;episode;ors_total;srs_total;same_day_order"


def csv_of(*lines: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def line(date: str, ors: str, srs: str = "", order: str = "", episode: str = "") -> str:
    return f"AB-1;alpha-therapist_a;ung;{date};{episode};{ors};{srs};{order}"


def run_import(org: OrgPersonas, data: bytes) -> Any:
    with override("en"):
        return import_sessions(actor=org.owner, organisation=org.org, data=data)
