"""Figures are rounded for display only, and rounded, not truncated (statistics.md:
"Round for display only (one decimal), never before computing")."""

import pytest
from django.utils import translation

from stats.views import display_number


@pytest.mark.parametrize(
    ("value", "decimals", "danish"),
    [
        (4 / 6 * 100, 1, "66,7"),  # 66.666… : truncation would show 66,6
        (1 / 15 * 100, 1, "6,7"),
        (8.7 / 16.1667 * 100, 1, "53,8"),  # the seed's worked check
        (4.96, 1, "5,0"),
        (0.125, 2, "0,13"),  # half up
        (-1.05, 1, "-1,1"),
        (18.0, 1, "18,0"),
    ],
)
def test_display_rounds_half_up_in_danish(value: float, decimals: int, danish: str) -> None:
    with translation.override("da"):
        assert display_number(value, decimals) == danish


def test_display_in_english_uses_a_point() -> None:
    with translation.override("en"):
        assert display_number(2 / 3, 2) == "0.67"
