"""Findings of a review of the administration pages: date fields lost their defaults in
Danish, pickers showed bare usernames, therapists were offered as report approvers."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import OrgPersonas

pytestmark = pytest.mark.django_db


def test_date_fields_keep_their_defaults_in_danish(client: Any, org1: OrgPersonas) -> None:
    # A date field's value must be ISO: the browser drops "03.12.2026" and the default
    # (today; a share's start and end) vanished, leaving a required field empty.
    client.force_login(org1.dp_admin)
    page = client.get(reverse("dp_consents")).content.decode()
    assert f'value="{timezone.localdate().isoformat()}"' in page
    client.force_login(org1.therapist_a)
    page = client.get(reverse("dp_grant_create")).content.decode()
    now = timezone.localtime()
    assert f'value="{now:%Y-%m-%d}T' in page


def test_people_are_picked_by_name(client: Any, org1: OrgPersonas) -> None:
    org1.leader.first_name, org1.leader.last_name = "Lise", "Leder"
    org1.leader.save()
    client.force_login(org1.therapist_a)
    page = client.get(reverse("dp_grant_create")).content.decode()
    assert f"Lise Leder ({org1.leader.username})" in page


def test_only_those_who_can_open_reports_are_offered_as_approvers(
    client: Any, org1: OrgPersonas
) -> None:
    client.force_login(org1.dp_admin)
    form = client.get(reverse("dp_settings")).context["form"]
    offered = set(form.fields["approvers"].queryset)
    assert {org1.leader, org1.analyst, org1.dp_admin, org1.owner} <= offered
    assert org1.therapist_a not in offered and org1.therapist_b not in offered
    response = client.post(
        reverse("dp_settings"),
        {"retention_days": 3650, "small_cell_k": 5, "approvers": [org1.therapist_a.pk]},
    )
    assert "approvers" in response.context["form"].errors
    assert org1.therapist_a not in org1.org.report_approvers.all()
