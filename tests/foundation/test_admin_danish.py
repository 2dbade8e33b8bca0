"""The system owner's Django admin speaks Danish: model names, field labels, headings."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_the_admin_names_its_models_and_fields_in_danish(login: Any, org1: Any) -> None:
    c = login(org1.owner)
    index = c.get("/admin/").content.decode()
    assert "Administration af organisationen" in index
    for name in ("Organisationer", "Enheder", "Medlemskaber", "Brugere"):
        assert name in index, name
    for english in ("Organisations", "Units", "Memberships"):
        assert english not in index, english
    unit_form = c.get("/admin/datapolicy/unit/add/").content.decode()
    assert "Overordnet enhed" in unit_form and "Parent" not in unit_form
    membership_form = c.get("/admin/datapolicy/membership/add/").content.decode()
    assert "Bruger" in membership_form and "Enhed" in membership_form
    user_form = c.get(f"/admin/datapolicy/user/{org1.therapist_a.pk}/change/").content.decode()
    assert "<h2>Person</h2>" in user_form or ">Person<" in user_form
