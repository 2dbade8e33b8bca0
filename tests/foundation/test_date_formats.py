"""Dates in tables read as each language writes them: Danish "4. okt 2026" (Django's
"j. M Y" gave "4. Okt 2026"), English "4 Oct 2026" (it gave "4. Oct 2026")."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import formats, translation

from tests.conftest import OrgPersonas, make_episode

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 10, 4)


@pytest.mark.parametrize("language,expected", [("da", "4. okt 2026"), ("en", "4 Oct 2026")])
def test_short_dates_per_language(language: str, expected: str) -> None:
    with translation.override(language):
        assert formats.date_format(DAY, "SHORT_DATE_FORMAT") == expected
        assert (
            formats.date_format(dt.datetime(2026, 10, 4, 9, 5), "SHORT_DATETIME_FORMAT")
            == f"{expected} 09:05"
        )


@pytest.mark.django_db
def test_the_episode_page_writes_the_start_date_in_danish(org1: OrgPersonas, client: Any) -> None:
    ep = make_episode(org1, code="DT-1001", started_on=DAY)
    client.force_login(org1.therapist_a)
    page = client.get(reverse("episode_detail", kwargs={"pk": ep.pk})).content.decode()
    assert "4. okt 2026" in page and "Okt" not in page


def test_no_template_hard_codes_a_title_cased_month_format() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "templates").rglob("*.html")
        if '"j. M Y' in p.read_text()
    ]
    assert offenders == []
