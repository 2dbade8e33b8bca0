"""Stable, machine-readable codes of the suppression reasons.

The reasons themselves are stored and compared as English keys (stats.anonymise,
stats.publications, stats.selectors) and translated when a page shows them
(stats.views.reason_text). The codes are what an integration compares (the statistics
API's ``suppressed_codes`` / ``hidden_code``) and what a stored report keeps per hidden
cell (datapolicy.reports). No Django views here, so that services can import it.
"""

from __future__ import annotations

import re

from .anonymise import REASON_COMPLEMENTARY, REASON_FEW_THERAPISTS
from .publications import REASON_CHANGED
from .selectors import REASON_FEW_ORGANISATIONS, REASON_OTHERS_SMALL

REASON_CODES = (
    "small_cell",
    "complement",
    "few_therapists",
    "changed_since_publication",
    "few_organisations",
    "others_small",
    "other",
)


def reason_code(reason: str | None) -> str:
    """The code of a stored reason (one of ``REASON_CODES``; "other" for an unknown one)."""
    if re.fullmatch(r"fewer than (\d+) clients", reason or ""):
        return "small_cell"
    return {
        REASON_COMPLEMENTARY: "complement",
        REASON_FEW_THERAPISTS: "few_therapists",
        REASON_CHANGED: "changed_since_publication",
        REASON_FEW_ORGANISATIONS: "few_organisations",
        REASON_OTHERS_SMALL: "others_small",
    }.get(reason or "", "other")


__all__ = ["REASON_CODES", "reason_code"]
