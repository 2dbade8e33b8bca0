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
    "hidden",
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


# The per-cell reasons that are never told apart where anonymised figures are shown
# (review round 10): a small cell (1 … k−1 clients), its complement (chosen among the shown
# non-zero cells, so ≥ k or a 0 of a hidden row) and, in the benchmark, a cell whose other
# organisations' part is small. Telling them apart says "this one is not small", and with
# a shown total and shown parts that gives hidden counts back (docs/datapolicy.md,
# "Hidden cells read alike"). The whole-selection reasons (few_therapists,
# few_organisations) and changed_since_publication stay distinct: they are chosen from the
# number of therapists / organisations or from the change since a publication, never
# from the cell's own count, so they bound no cell (docs/datapolicy.md, same section).
CELL_CODES = frozenset({"small_cell", "complement", "others_small"})
HIDDEN_CODE = "hidden"


def public_code(reason: str | None) -> str:
    """The code shown for a hidden cell (the statistics API's ``suppressed_codes`` and
    ``hidden_code``): ``hidden`` for every per-cell reason of ``CELL_CODES``, the reason's
    own code otherwise. ``reason_code`` keeps the exact code for the record (reports)."""
    code = reason_code(reason)
    return HIDDEN_CODE if code in CELL_CODES else code


def hidden_note(k: int) -> str:
    """What a hidden cell means, wherever anonymised figures are shown (dashboards, their
    exports, the statistics API's ``suppressed``, reports): one text for a small cell and
    a complement alike — "< k" would be false for a complement, and telling the two apart
    can give a hidden figure back."""
    from django.utils.translation import gettext as _

    return _(
        "fewer than %(k)s clients, or hidden so that such a figure cannot be worked out "
        "from the figures shown. Which of the two is not said per figure: together with "
        "the figures shown, that could give a hidden figure back."
    ) % {"k": k}


__all__ = [
    "CELL_CODES",
    "HIDDEN_CODE",
    "REASON_CODES",
    "hidden_note",
    "public_code",
    "reason_code",
]
