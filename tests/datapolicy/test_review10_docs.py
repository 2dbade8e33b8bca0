"""Review 10: what docs/datapolicy.md promises, tried against the code.

Each test names the doc's statement it checks; each failed before its fix.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.urls import reverse

from datapolicy.models import Report
from datapolicy.reports import report_create
from tests.conftest import OrgPersonas, add_therapist, make_episode, record

CPR = "010190-1234"


# --- "No CPR numbers": searches are "refused with the reason, the value never echoed or
# kept" (the access-log search: user name and client code alike). -----------------------


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["username", "client_code"])
def test_access_log_search_refuses_a_cpr_number_without_echoing_it(
    client: Any, org1: OrgPersonas, field: str
) -> None:
    client.force_login(org1.dp_admin)
    response = client.post(reverse("dp_access_log"), {field: CPR})
    # Refused on the page (never redirected into a URL, where server logs keep it) ...
    assert response.status_code == 200
    body = response.content.decode()
    assert "CPR" in body
    # ... and the value is not shown back in the form.
    assert CPR not in body
    assert "0101901234" not in body


@pytest.mark.django_db
def test_access_log_search_by_user_name_still_works(client: Any, org1: OrgPersonas) -> None:
    client.force_login(org1.dp_admin)
    response = client.post(reverse("dp_access_log"), {"username": org1.therapist_a.username})
    assert response.status_code == 302
    assert "username=alpha-therapist_a" in response["Location"]


# --- Reports: a note is free text; "Any text that looks like a CPR number is rejected in
# every free-text field ... with a clear message saying why" (a report step's note). --


NOW = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
ORG_H1 = {"scope": "org", "period": "2026-H1"}


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _episodes(p: OrgPersonas, therapists: list[Any], per_therapist: int = 2) -> None:
    """Episodes with two ORS and an SRS each in 2026-H1, spread over ``therapists``."""
    n = 0
    for therapist in therapists:
        for _i in range(per_therapist):
            e = make_episode(p, therapist=therapist, code=f"N-{n}", started_on=dt.date(2026, 5, 1))
            record(e, dt.date(2026, 5, 4), ors=str(10 + n), srs="30")
            record(e, dt.date(2026, 6, 1), ors=str(18 + n), srs="34")
            n += 1


def _three_therapists(p: OrgPersonas) -> list[Any]:
    return [p.therapist_a, p.therapist_b, add_therapist(p, "therapist_c")]


@pytest.mark.django_db
def test_a_cpr_number_in_a_report_note_is_refused_and_nothing_happens(
    client: Any, org1: OrgPersonas, frozen: Any
) -> None:
    _episodes(org1, _three_therapists(org1))
    report = report_create(
        actor=org1.analyst, organisation=org1.org, title="Halvår", selection=ORG_H1
    )
    org1.org.report_approvers.add(org1.dp_admin)
    client.force_login(org1.dp_admin)
    response = client.post(
        reverse("dp_report_approve", kwargs={"pk": report.pk}), {"note": f"ok {CPR}"}, follow=True
    )
    report.refresh_from_db()
    assert report.status == Report.Status.DRAFT
    assert not report.events.filter(action="approved").exists()
    body = response.content.decode()
    assert "CPR" in body and CPR not in body
    # Without the number the same step goes through, with its note.
    client.post(reverse("dp_report_approve", kwargs={"pk": report.pk}), {"note": "ok"})
    report.refresh_from_db()
    assert report.status == Report.Status.APPROVED
    assert report.events.get(action="approved").note == "ok"


# --- Anonymisation, rule 8: "a unit or organisation selection ... whose episodes have 1
# or 2 distinct therapists is not shown at all to roles without identity rights" — the
# report is such a selection, seen by the analyst and meant to leave the organisation. --


@pytest.mark.django_db
@pytest.mark.parametrize("n_therapists", [1, 2])
def test_a_report_of_fewer_than_three_therapists_shows_no_figures(
    client: Any, org1: OrgPersonas, frozen: Any, n_therapists: int
) -> None:
    therapists = [org1.therapist_a, org1.therapist_b][:n_therapists]
    _episodes(org1, therapists, per_therapist=6)
    report = report_create(actor=org1.analyst, organisation=org1.org, title="Få", selection=ORG_H1)
    figures = report.figures
    assert figures["rows"] == [] and figures["trajectory"] == []
    assert figures["hidden_reason"]
    client.force_login(org1.analyst)
    body = client.get(reverse("dp_report", kwargs={"pk": report.pk})).content.decode()
    assert "For få behandlere" in body
    # Approved and exported, the workbook says the same and holds no figures.
    import io

    from openpyxl import load_workbook

    from datapolicy.reports import report_approve

    org1.org.report_approvers.add(org1.dp_admin)
    report_approve(actor=org1.dp_admin, report=report)
    xlsx = client.get(reverse("dp_report_export", kwargs={"pk": report.pk})).content
    rows = list(load_workbook(io.BytesIO(xlsx)).active.iter_rows(values_only=True))
    assert any(str(r[0]).startswith("For få behandlere") for r in rows)
    assert not any(r[0] in ("Aktive", "Inaktive") for r in rows)


@pytest.mark.django_db
def test_a_report_of_three_therapists_shows_its_figures(org1: OrgPersonas, frozen: Any) -> None:
    _episodes(org1, _three_therapists(org1))
    report = report_create(actor=org1.analyst, organisation=org1.org, title="Tre", selection=ORG_H1)
    assert "hidden_reason" not in report.figures
    active = next(r for r in report.figures["rows"] if r["active"])
    assert active["values"]["episodes"] == 6 and active["hidden"] == []


@pytest.mark.django_db
def test_a_unit_report_counts_the_therapists_of_the_unit(org1: OrgPersonas, frozen: Any) -> None:
    """Three therapists in the organisation, one of them in the other unit: the unit
    with two is hidden, the organisation is shown."""
    c = add_therapist(org1, "therapist_c", unit=org1.other_unit)
    _episodes(org1, [org1.therapist_a, org1.therapist_b], per_therapist=3)
    e = make_episode(
        org1, therapist=c, code="O-1", unit=org1.other_unit, started_on=dt.date(2026, 5, 1)
    )
    record(e, dt.date(2026, 5, 4), ors="12", srs="30")
    unit = report_create(
        actor=org1.analyst,
        organisation=org1.org,
        title="Enhed",
        selection={"scope": "unit", "unit_id": org1.unit.pk, "period": "2026-H1"},
    )
    assert unit.figures["rows"] == [] and unit.figures["hidden_reason"]


# --- Grants and consent: "a therapist records one for their own client
# (`clients.selectors.own_clients`: a colleague's client, even one shared for
# supervision, reads as unknown)". -----------------------------------------------------


@pytest.mark.django_db
def test_a_colleagues_shared_client_reads_as_unknown_on_the_consents_page(
    client: Any, org1: OrgPersonas
) -> None:
    from django.utils import timezone

    from datapolicy.models import Consent
    from datapolicy.services import grant_create

    episode = make_episode(org1, code="SUP-1")
    now = timezone.now()
    grant_create(
        actor=org1.therapist_a,
        organisation=org1.org,
        kind="client_graph",
        grantee=org1.therapist_b,
        episode=episode,
        purpose="supervision",
        starts_at=now - dt.timedelta(hours=1),
        expires_at=now + dt.timedelta(days=7),
    )
    client.force_login(org1.therapist_b)
    # The grant is live: the colleague reads the episode ...
    assert client.get(reverse("episode_detail", kwargs={"pk": episode.pk})).status_code == 200
    # ... but on the consents page the client is as unknown as any other's.
    response = client.post(
        reverse("dp_consents"),
        {"client_code": "SUP-1", "purpose": "forskning", "given_on": "2026-01-02"},
    )
    unknown = client.post(
        reverse("dp_consents"),
        {"client_code": "NOPE-9", "purpose": "forskning", "given_on": "2026-01-02"},
    )
    assert response.status_code == unknown.status_code == 200
    assert "Ingen af dine klienter har denne kode." in response.content.decode()
    assert not Consent.objects.for_org(org1.org).exists()


# --- Access log: "a list read writes one `list` entry per client shown" — the share form
# lists the therapist's own clients by code (its episode choices). ---------------------


@pytest.mark.django_db
def test_the_share_form_logs_the_clients_it_lists(client: Any, org1: OrgPersonas) -> None:
    from datapolicy.models import AccessLog

    mine = [make_episode(org1, code=f"G-{i}") for i in range(2)]
    make_episode(org1, therapist=org1.therapist_b, code="G-other")
    client.force_login(org1.therapist_a)
    body = client.get(reverse("dp_grant_create")).content.decode()
    assert "G-0" in body and "G-1" in body and "G-other" not in body
    logged = AccessLog.objects.filter(
        organisation=org1.org, user=org1.therapist_a, action="list", object_type="grant"
    )
    assert sorted(logged.values_list("client_id", flat=True)) == sorted(e.client_id for e in mine)
    assert set(logged.values_list("role", flat=True)) == {"therapist"}
    # The data-policy admin's form lists no client (episodes by number only): no client.
    client.force_login(org1.dp_admin)
    client.get(reverse("dp_grant_create"))
    assert not AccessLog.objects.filter(user=org1.dp_admin, client_id__isnull=False).exists()


# --- Access log, "Which role": "reading a colleague's client through a supervision grant
# [is logged] as `unit_leader` where the user holds that role ... per client, also within
# one ... list" — the shares page lists both the own and the received shares. ----------


@pytest.mark.django_db
def test_the_shares_page_logs_each_client_under_the_role_that_brought_it(
    client: Any, org1: OrgPersonas
) -> None:
    from django.utils import timezone

    from datapolicy.models import AccessLog, Membership, Role
    from datapolicy.services import grant_create

    lead = org1.leader  # a unit leader who also treats clients
    Membership.objects.create(organisation=org1.org, user=lead, unit=org1.unit, role=Role.THERAPIST)
    own = make_episode(org1, therapist=lead, code="W-1")
    colleagues = make_episode(org1, code="W-2")
    now = timezone.now()
    for episode, grantee in ((own, org1.therapist_b), (colleagues, lead)):
        grant_create(
            actor=episode.therapist,
            organisation=org1.org,
            kind="client_graph",
            grantee=grantee,
            episode=episode,
            purpose="supervision",
            starts_at=now - dt.timedelta(minutes=1),
            expires_at=now + dt.timedelta(days=1),
        )
    client.force_login(lead)
    assert client.get(reverse("dp_grants")).status_code == 200

    def roles(client_id: int) -> set[str]:
        return set(
            AccessLog.objects.filter(
                user=lead, client_id=client_id, action="list", object_type="grant"
            ).values_list("role", flat=True)
        )

    assert roles(own.client_id) == {"therapist"}
    assert roles(colleagues.client_id) == {"unit_leader"}
