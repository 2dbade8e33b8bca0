"""The platform never stores a CPR number (datapolicy.md, "No CPR numbers").

Anything that looks like one is refused in every free-text field on every entry path:
DDMMYY-XXXX (with "-", "/", ".", a space or nothing between the parts) where DDMMYY is
a real calendar date. Ten digits that do not start with a date (a case number, say) pass.
"""

from __future__ import annotations

import calendar
import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Six digits, an optional separator, four digits, not part of a longer digit run. The
# separators are those a client code may contain ("-", "/", ".", space): "010190/1234"
# and "010190.1234" are CPR numbers too. The date check below keeps false positives low.
_CPR_SHAPE = re.compile(r"(?<!\d)(\d{2})(\d{2})(\d{2})[-\s/.]?\d{4}(?!\d)")

CPR_MESSAGE = _(
    "This looks like a CPR number (date of birth followed by four digits). The platform "
    "must never hold CPR numbers: use the organisation's client code instead."
)


def _is_date(day: int, month: int, yy: int) -> bool:
    if not 1 <= month <= 12 or day < 1:
        return False
    # Any century: 29 February is possible when the two-digit year can be a leap year.
    leap = yy % 4 == 0
    days = 29 if (month == 2 and leap) else calendar.monthrange(2001, month)[1]
    return day <= days


def looks_like_cpr(text: str | None) -> bool:
    if not text:
        return False
    for match in _CPR_SHAPE.finditer(str(text)):
        day, month, yy = (int(g) for g in match.groups())
        if _is_date(day, month, yy):
            return True
    return False


def reject_cpr(value: str | None) -> None:
    """Model/form/serializer validator: raise if ``value`` contains a CPR-shaped number."""
    if looks_like_cpr(value):
        raise ValidationError(CPR_MESSAGE, code="cpr")


_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")


def reject_control_characters(value: str | None) -> None:
    """Validator of one-line names (an episode's label): no tab, line break or other
    control character. The CSV import refuses them too; a carriage return inside a value
    would split an exported row in a spreadsheet, past the formula guard."""
    if value and _CONTROL_CHARACTER.search(value):
        raise ValidationError(
            _("The text contains a control character (such as a tab or a line break)."),
            code="control",
        )


MAX_ID = 2**63 - 1  # PostgreSQL's bigint


def ascii_id(text: str | None) -> int | None:
    """``text`` as a database id (ASCII digits, 1 .. 2**63-1), else None. Neither
    ``str.isdigit`` (it takes '²') nor ``int`` alone (it takes other scripts' digits,
    and refuses more than 4300 digits with a ValueError) is enough."""
    if not text or len(text) > 19 or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None
