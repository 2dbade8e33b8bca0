"""Review round 8: the administration review's open findings.

1. an erased client's log is found by the client's code (a keyed hash of organisation
   and code on the entry that records the erasure; never the code in clear);
2. administrative changes say what changed (CSV user import, membership activation,
   organisation settings in the settings page and the Django admin), shown on the log page;
3. the spreadsheet formula guard also treats a leading tab and carriage return, on every
   export that uses it (session CSV, report XLSX, the client's access-log CSV);
4. the API-key page's scope checkboxes sit with their labels, touch-sized.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse
from django.utils import timezone

from datapolicy.models import AccessLog, Membership, User
from datapolicy.reports import period_choices, report_approve, report_create, spreadsheet_text
from datapolicy.retention import retention_run
from datapolicy.services import (
    access_log_write,
    membership_set_active,
    organisation_policy_update,
)
from datapolicy.user_import import users_import_csv
from tests.conftest import OrgPersonas, make_episode, record

TODAY = timezone.localdate()


def _erase(personas: OrgPersonas, code: str) -> int:
    """A client whose only episode is past retention; the nightly job deletes it.
    Returns the erased client's number."""
    from clients.models import Client

    ep = make_episode(personas, code=code, started_on=TODAY - dt.timedelta(days=900))
    record(ep, TODAY - dt.timedelta(days=890), ors="20")
    access_log_write(
        actor=personas.therapist_a,
        organisation=personas.org,
        action="view",
        obj=ep,
        role="therapist",
    )
    personas.org.retention_days = 365
    personas.org.save(update_fields=["retention_days"])
    run = retention_run(organisation=personas.org, today=TODAY)
    assert run.clients_deleted >= 1
    assert not Client.objects.for_org(personas.org).filter(pk=ep.client_id).exists()
    return int(ep.client_id)


def _search(client: Any, **params: str) -> tuple[Any, list[int]]:
    """POST the log search; returns the result page and the client numbers in its URL."""
    response = client.post(reverse("dp_access_log"), params)
    assert response.status_code == 302
    location = response["Location"]
    for value in params.values():
        assert value.lower() not in location.lower()  # never a code in a URL
    numbers = [int(n) for n in parse_qs(urlparse(location).query).get("client", [])]
    return client.get(location), numbers


# --- 1. an erased client's log by code --------------------------------------------


@pytest.mark.django_db
class TestErasedClientByCode:
    def test_the_code_finds_the_log_after_erasure(self, org1: OrgPersonas, client: Any) -> None:
        client_id = _erase(org1, "ERA-1")
        client.force_login(org1.dp_admin)
        page, numbers = _search(client, client_code="era-1")  # case as the pages compare
        assert numbers == [client_id]
        seen = {(e.username, e.action, e.object_type) for e in page.context["entries"]}
        assert (org1.therapist_a.username, "view", "episode") in seen  # who looked
        assert ("retention", "delete", "client") in seen  # and that it was erased
        assert all(e.client_id == client_id for e in page.context["entries"])
        # The search itself is logged for that client, as for a live one.
        assert AccessLog.objects.filter(
            organisation=org1.org, action="search", client_id=client_id
        ).exists()
        # The export of that log (right of access) works from the page's link.
        assert f"?client={client_id}" in page.content.decode()
        export = client.get(reverse("dp_access_log_export"), {"client": client_id})
        assert export.status_code == 200

    def test_the_log_keeps_no_code_in_clear(self, org1: OrgPersonas) -> None:
        _erase(org1, "ERA-CLEAR-7")
        rows = list(AccessLog.objects.filter(organisation=org1.org).values())
        assert rows
        text = repr(rows).lower()
        assert "era-clear-7" not in text
        erasure = AccessLog.objects.get(
            organisation=org1.org, action="delete", object_type="client"
        )
        # A keyed hash (HMAC-SHA256, hex), not a plain digest of the code.
        import hashlib

        assert re.fullmatch(r"[0-9a-f]{64}", erasure.client_code_hash or "")
        for plain in ("ERA-CLEAR-7", "era-clear-7", f"{org1.org.pk}:ERA-CLEAR-7"):
            assert erasure.client_code_hash != hashlib.sha256(plain.encode()).hexdigest()
        # Only the entry that records the erasure carries it.
        assert (
            AccessLog.objects.filter(organisation=org1.org, client_code_hash__isnull=False).count()
            == 1
        )

    def test_another_organisations_erased_client_is_not_found(
        self, org1: OrgPersonas, org2: OrgPersonas, client: Any
    ) -> None:
        foreign = _erase(org2, "ERA-2")
        mine = _erase(org1, "ERA-2")  # the same code in both organisations
        hashes = set(
            AccessLog.objects.filter(client_code_hash__isnull=False).values_list(
                "client_code_hash", flat=True
            )
        )
        assert len(hashes) == 2  # keyed with the organisation too
        client.force_login(org1.dp_admin)
        page, numbers = _search(client, client_code="ERA-2")
        assert numbers == [mine]
        assert {e.organisation_id for e in page.context["entries"]} == {org1.org.pk}
        assert foreign not in {e.client_id for e in page.context["entries"]}
        # The other organisation's erased client by number: 404, as before.
        response = client.get(reverse("dp_access_log_export"), {"client": foreign})
        assert response.status_code == 404

    def test_a_code_given_again_after_erasure_finds_both_clients(
        self, org1: OrgPersonas, client: Any
    ) -> None:
        old = _erase(org1, "ERA-3")
        new = make_episode(org1, code="ERA-3").client_id
        client.force_login(org1.dp_admin)
        page, numbers = _search(client, client_code="ERA-3")
        assert sorted(numbers) == sorted([old, new])
        assert {e.client_id for e in page.context["entries"]} == {old, new}
        html = page.content.decode()
        assert f"?client={old}" in html and f"?client={new}" in html  # one export each

    def test_unknown_code_still_finds_nothing(self, org1: OrgPersonas, client: Any) -> None:
        _erase(org1, "ERA-4")
        client.force_login(org1.dp_admin)
        page, numbers = _search(client, client_code="ERA-5")
        assert numbers == [0]
        assert list(page.context["entries"]) == []

    @pytest.mark.parametrize("persona", ["therapist_a", "leader", "analyst", "owner"])
    def test_only_the_dp_admin_searches(self, org1: OrgPersonas, client: Any, persona: str) -> None:
        client.force_login(org1.by_role()[persona])
        response = client.post(reverse("dp_access_log"), {"client_code": "ERA-1"})
        assert response.status_code == 403

    def test_the_search_is_an_indexed_lookup(self, org1: OrgPersonas) -> None:
        indexes = {
            tuple(i.fields): i for i in AccessLog._meta.indexes if "client_code_hash" in i.fields
        }
        index = indexes[("organisation", "client_code_hash")]
        assert index.condition is not None  # partial: only erasure entries carry a hash

    def test_the_import_still_logs_in_one_statement(self, org1: OrgPersonas) -> None:
        """The import's INSERT … SELECT is unchanged: one statement for all clients."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from datapolicy.services import access_log_write_from_query

        eps = [make_episode(org1, code=f"IMP-{i}") for i in range(3)]
        ids = ",".join(str(e.client_id) for e in eps)
        with CaptureQueriesContext(connection) as queries:
            n = access_log_write_from_query(
                actor=org1.owner,
                organisation=org1.org,
                action="import",
                object_type="client",
                client_ids_sql=f"SELECT id AS client_id FROM clients_client WHERE id IN ({ids})",  # noqa: S608
                params=[],
                role="system_owner",
            )
        assert n == 3 and len(queries) == 1


# --- 2. administrative changes say what changed -----------------------------------


def _admin_entry(org: Any, **filters: Any) -> AccessLog:
    return AccessLog.objects.filter(organisation=org, **filters).order_by("-pk").first()  # type: ignore[return-value]


def _page_details(client: Any, personas: OrgPersonas) -> str:
    client.force_login(personas.dp_admin)
    return client.get(reverse("dp_access_log")).content.decode()


@pytest.mark.django_db
class TestAdminChangeDetails:
    def test_membership_deactivation_says_whose_role(self, org1: OrgPersonas, client: Any) -> None:
        m = Membership.objects.for_org(org1.org).get(user=org1.therapist_b)
        client.force_login(org1.owner)
        response = client.post(reverse("dp_membership_active", args=[m.pk]), {"active": "0"})
        assert response.status_code == 302
        entry = _admin_entry(org1.org, object_type="membership", object_id=m.pk)
        assert entry.details == {
            "user": org1.therapist_b.username,
            "role": "therapist",
            "unit": org1.unit.code,
            "changes": {"is_active": [True, False]},
        }
        membership_set_active(actor=org1.owner, membership=m, active=True)
        again = _admin_entry(org1.org, object_type="membership", object_id=m.pk)
        assert again.details["changes"] == {"is_active": [False, True]}
        html = _page_details(client, org1)
        assert org1.therapist_b.username in html
        assert "Aktiv: Ja → Nej" in html  # Danish by default

    def test_user_import_names_users_and_roles(self, org1: OrgPersonas, client: Any) -> None:
        text = (
            "name,email,unit,role\n"
            "Mette Holm,mette@example.dk,ung,therapist\n"
            "Sara Nør,sara@example.dk,,mi_officer\n"
        )
        result = users_import_csv(actor=org1.owner, organisation=org1.org, text=text)
        assert result.errors == []
        entry = _admin_entry(org1.org, action="import", object_type="membership")
        assert entry.details == {
            "users_created": ["mette@example.dk", "sara@example.dk"],
            "memberships_created": [
                {"user": "mette@example.dk", "role": "therapist", "unit": "ung"},
                {"user": "sara@example.dk", "role": "mi_officer", "unit": ""},
            ],
        }
        assert "password" not in repr(entry.details).lower()
        html = _page_details(client, org1)
        assert "mette@example.dk" in html and "sara@example.dk" in html

    def test_policy_settings_give_old_and_new_values(self, org1: OrgPersonas, client: Any) -> None:
        client.force_login(org1.dp_admin)
        response = client.post(
            reverse("dp_settings"),
            {"retention_days": "400", "small_cell_k": "7", "approvers": [org1.analyst.pk]},
        )
        assert response.status_code == 302
        entry = _admin_entry(org1.org, object_type="organisation", action="update")
        assert entry.details == {
            "changes": {
                "retention_days": [None, 400],
                "small_cell_k": [5, 7],
                "report_approvers": [[], [org1.analyst.username]],
            }
        }
        # Saving again without a change names no field.
        organisation_policy_update(
            actor=org1.dp_admin,
            organisation=org1.org,
            retention_days=400,
            small_cell_k=7,
            approvers=[org1.analyst],
        )
        assert _admin_entry(org1.org, object_type="organisation").details == {"changes": {}}
        html = _page_details(client, org1)
        assert "5 → 7" in html and "– → 400" in html

    def test_django_admin_organisation_change_gives_old_and_new_values(
        self, org1: OrgPersonas, client: Any
    ) -> None:
        org = org1.org
        client.force_login(org1.owner)
        response = client.post(
            f"/admin/datapolicy/organisation/{org.pk}/change/",
            {
                "name": org.name,
                "inactivity_days": 120,
                "reliable_change": "6.5",
                "srs_cutoff": org.srs_cutoff,
            },
        )
        assert response.status_code == 302
        entry = _admin_entry(org, object_type="organisation", action="update")
        assert entry.details == {
            "changes": {"inactivity_days": [90, 120], "reliable_change": ["5.0", "6.5"]}
        }
        html = _page_details(client, org1)
        assert "90 → 120" in html and "5.0 → 6.5" in html

    def test_django_admin_membership_change_names_the_role(
        self, org1: OrgPersonas, client: Any
    ) -> None:
        m = Membership.objects.for_org(org1.org).get(user=org1.therapist_b)
        client.force_login(org1.owner)
        response = client.post(
            f"/admin/datapolicy/membership/{m.pk}/change/",
            {"role": "unit_leader", "unit": org1.other_unit.pk, "is_active": "on"},
        )
        assert response.status_code == 302
        entry = _admin_entry(org1.org, object_type="membership", action="update")
        assert entry.details == {
            "user": org1.therapist_b.username,
            "role": "unit_leader",
            "unit": org1.other_unit.code,
            "changes": {
                "role": ["therapist", "unit_leader"],
                "unit": [org1.unit.code, org1.other_unit.code],
            },
        }

    def test_a_password_set_in_the_admin_is_named_never_stored(
        self, org1: OrgPersonas, client: Any
    ) -> None:
        client.force_login(org1.owner)
        secret = "x-Very-long-pass-77"
        response = client.post(
            f"/admin/datapolicy/user/{org1.therapist_b.pk}/password/",
            {"password1": secret, "password2": secret},
        )
        assert response.status_code == 302
        entry = _admin_entry(org1.org, object_type="user_password")
        assert entry.details == {"user": org1.therapist_b.username, "changed": ["password"]}
        org1.therapist_b.refresh_from_db()
        everything = repr(list(AccessLog.objects.values("details")))
        assert secret not in everything and org1.therapist_b.password not in everything

    def test_api_key_details_hold_no_secret(self, org1: OrgPersonas, client: Any) -> None:
        client.force_login(org1.owner)
        response = client.post(
            reverse("api_keys_page"),
            {"name": "Journal", "user": org1.owner.pk, "scopes": ["read"]},
        )
        raw = response.context["raw_key"]
        entry = _admin_entry(org1.org, object_type="apikey", action="create")
        assert entry.details == {
            "name": "Journal",
            "user": org1.owner.username,
            "scopes": ["read"],
        }
        prefix, _dot, secret = raw.partition(".")
        assert secret not in repr(entry.details) and prefix not in repr(entry.details)

    def test_details_refuse_secrets_and_client_codes(self, org1: OrgPersonas) -> None:
        for bad in ({"password": "x"}, {"changes": {"key_hash": ["a", "b"]}}, {"client_code": "A"}):
            with pytest.raises(ValueError, match="must not"):
                access_log_write(
                    actor=org1.owner,
                    organisation=org1.org,
                    action="update",
                    object_type="user",
                    details=bad,
                )


# --- 3. the spreadsheet formula guard: tab and carriage return --------------------


@pytest.mark.parametrize(
    ("value", "guarded"),
    [
        ("\t=1+2", "'\t=1+2"),
        ("\r=1+2", "'\r=1+2"),
        ("\tplain", "'\tplain"),
        ("=1", "'=1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("'x", "''x"),
        ("plain", "plain"),
        ("a\tb", "a\tb"),
    ],
)
def test_spreadsheet_text_guards_the_owasp_list(value: str, guarded: str) -> None:
    assert spreadsheet_text(value) == guarded


def _labelled_sessions(personas: OrgPersonas, labels: list[str]) -> None:
    """One client per label with one session; the label stored as it is (the pages and
    the API strip leading whitespace: a stored value may still carry it)."""
    from clients.models import Episode

    for i, label in enumerate(labels):
        ep = make_episode(personas, code=f"TAB-{i}", started_on=dt.date(2025, 1, 1))
        Episode.objects.for_org(personas.org).filter(pk=ep.pk).update(label=label)
        record(ep, dt.date(2025, 1, 5), ors="10.0")


@pytest.mark.django_db
def test_session_export_guards_tab_and_carriage_return(org1: OrgPersonas) -> None:
    from measures.exporter import export_frame, export_sessions

    _labelled_sessions(org1, ["\t=1+2", "\r@SUM(1)"])
    # The guard on the exported values (the frame the CSV is written from).
    assert set(export_frame(org1.org)["episode"]) == {"'\t=1+2", "'\r@SUM(1)"}
    # A leading tab end to end, read as a spreadsheet reads CSV.
    text = export_sessions(actor=None, organisation=org1.org)
    rows = list(csv.reader(io.StringIO(text.replace("\r", ""), newline="")))[1:]
    assert "'\t=1+2" in [v for row in rows for v in row]


@pytest.mark.django_db
def test_session_export_quotes_a_carriage_return(org1: OrgPersonas) -> None:
    """A label stored before labels refused control characters (below): the export's
    CRLF line ends make the csv writer quote it, so it stays in its row."""
    from measures.exporter import export_sessions

    _labelled_sessions(org1, ["\r@SUM(1)"])
    text = export_sessions(actor=None, organisation=org1.org)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 2
    assert not [v for row in rows[1:] for v in row if v[:1] in ("=", "+", "-", "@")]


@pytest.mark.parametrize("title", ["\t=1+2", "\r=1+2"])
@pytest.mark.django_db
def test_report_xlsx_guards_tab_and_carriage_return(
    org1: OrgPersonas, client: Any, title: str
) -> None:
    from openpyxl import load_workbook

    rep = report_create(
        actor=org1.analyst,
        organisation=org1.org,
        title="Kvartal",
        selection={
            "scope": "org",
            "unit_id": None,
            "period": period_choices(TODAY)[0][0],
            "age_group": "",
        },
    )
    # The service strips the title; a stored one may still start with a tab or CR.
    type(rep).objects.for_org(org1.org).filter(pk=rep.pk).update(title=title)
    org1.org.report_approvers.set([org1.dp_admin])
    rep.refresh_from_db()
    report_approve(actor=org1.dp_admin, report=rep)
    client.force_login(org1.dp_admin)
    response = client.get(reverse("dp_report_export", args=[rep.pk]))
    assert response.status_code == 200
    ws = load_workbook(io.BytesIO(response.content))["Rapport"]
    # (XML reads a lone CR back as a line feed.)
    assert ws["A1"].data_type == "s" and ws["A1"].value in ("'" + title, "'\n=1+2")
    assert [c for row in ws.iter_rows() for c in row if c.data_type == "f"] == []


@pytest.mark.django_db
def test_access_log_csv_guards_tab_and_carriage_return(org1: OrgPersonas, client: Any) -> None:
    ep = make_episode(org1, code="TABLOG-1")
    for name in ("\t=1+2", "\r-3"):
        user = User.objects.create_user(username=name, password="pw")
        access_log_write(actor=user, organisation=org1.org, action="view", obj=ep.client)
    client.force_login(org1.dp_admin)
    response = client.get(reverse("dp_access_log_export"), {"client": ep.client_id})
    rows = list(csv.reader(io.StringIO(response.content.decode(), newline="")))[1:]
    names = {r[1] for r in rows}
    assert {"'\t=1+2", "'\r-3"} <= names
    assert not [v for r in rows for v in r if v[:1] in ("=", "+", "-", "@", "\t", "\r")]


# --- 4. the API-key form: checkbox with its label, touch-sized --------------------


@pytest.mark.django_db
def test_api_key_scopes_sit_with_their_labels(org1: OrgPersonas, client: Any) -> None:
    client.force_login(org1.owner)
    html = client.get(reverse("api_keys_page")).content.decode()
    fieldset = re.search(r"<fieldset[^>]*>(.*?)</fieldset>", html, re.S)
    assert fieldset is not None
    labels = re.findall(r'<label class="check">\s*(<input[^>]*>)\s*([^<]+?)\s*</label>', html)
    assert [(re.search(r'value="(\w+)"', i).group(1), t) for i, t in labels] == [  # type: ignore[union-attr]
        ("read", "læse"),
        ("write", "skrive"),
    ]
    assert all('type="checkbox"' in i for i, _t in labels)
    # The rule that makes a checkbox label one touch-sized row is in a stylesheet the page
    # loads (app.css: every page), not only in the entry pages' stylesheet.
    assert "css/app.css" in html
    css = (Path(__file__).resolve().parents[2] / "static" / "css" / "app.css").read_text()
    rule = re.search(r"label\.check\s*\{([^}]*)\}", css)
    assert rule is not None and "display: flex" in rule.group(1)
    assert "min-height: var(--touch)" in rule.group(1)
    box = re.search(r"label\.check input[^{]*\{([^}]*)\}", css)
    assert box is not None and "width: 28px" in box.group(1)


@pytest.mark.django_db
def test_an_episode_label_with_a_control_character_is_refused(org1: OrgPersonas) -> None:
    """Labels come from the page, the API and the import; none takes a line break."""
    from django.core.exceptions import ValidationError

    from clients.services import episode_close, episode_start

    episode = make_episode(org1, code="CR-1001")
    episode_close(actor=org1.therapist_a, episode=episode, closed_on=episode.started_on)
    for label in ("\r@SUM(1)", "a\tb", "two\nlines"):
        with pytest.raises(ValidationError) as err:
            episode_start(
                actor=org1.therapist_a, client=episode.client, unit=org1.unit, label=label
            )
        assert err.value.message_dict["label"] == [
            "Teksten indeholder et kontroltegn (fx en tabulator eller et linjeskift)."
        ]
