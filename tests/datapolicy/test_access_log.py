"""The access log: append-only in Python and, on PostgreSQL, in the database; search
and the per-client export (right of access) for the data-policy admin only."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.urls import reverse

from datapolicy.models import AccessLog, User
from datapolicy.services import access_log_write
from tests.conftest import make_episode


def _entry(org: Any, user: Any, **kw: Any) -> AccessLog:
    return access_log_write(actor=user, organisation=org, action=kw.pop("action", "view"), **kw)


@pytest.mark.django_db
class TestAppendOnly:
    def test_python_refuses_update_and_delete(self, org1: Any) -> None:
        entry = _entry(org1.org, org1.therapist_a, object_type="client", object_id=1)
        entry.action = "forged"
        with pytest.raises(RuntimeError):
            entry.save()
        with pytest.raises(RuntimeError):
            entry.delete()

    @pytest.mark.postgres
    def test_database_refuses_raw_update(self, org1: Any) -> None:
        entry = _entry(org1.org, org1.therapist_a, object_type="client", object_id=1)
        sql = "UPDATE datapolicy_accesslog SET action = 'forged' WHERE id = %s"
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [entry.pk])
        entry_again = AccessLog.objects.get(pk=entry.pk)
        assert entry_again.action == "view"

    @pytest.mark.postgres
    def test_database_refuses_raw_delete(self, org1: Any) -> None:
        entry = _entry(org1.org, org1.therapist_a, object_type="client", object_id=1)
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("DELETE FROM datapolicy_accesslog WHERE id = %s", [entry.pk])
        with pytest.raises(DatabaseError), transaction.atomic():
            AccessLog.objects.filter(pk=entry.pk).delete()  # the queryset path too
        with pytest.raises(DatabaseError), transaction.atomic():
            AccessLog.objects.filter(pk=entry.pk).update(username="someone else")
        assert AccessLog.objects.filter(pk=entry.pk, username=org1.therapist_a.username).exists()

    @pytest.mark.postgres
    def test_erasing_a_user_keeps_the_entry_and_the_name(self, org1: Any) -> None:
        user = User.objects.create_user(username="temp-user", password="pw")
        entry = _entry(org1.org, user, object_type="client", object_id=1)
        user.delete()  # SET_NULL: the only update the trigger lets through
        entry = AccessLog.objects.get(pk=entry.pk)
        assert entry.user_id is None and entry.username == "temp-user"


@pytest.mark.django_db
class TestSearch:
    def test_filters_and_organisation_scope(self, org1: Any, org2: Any, client: Any) -> None:
        mine = make_episode(org1, code="LOG-1")
        other = make_episode(org1, therapist=org1.therapist_b, code="LOG-2")
        with time_machine.travel(dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)):
            _entry(org1.org, org1.therapist_a, obj=mine.client, action="view")
        with time_machine.travel(dt.datetime(2026, 2, 5, 10, tzinfo=dt.UTC)):
            _entry(org1.org, org1.therapist_b, obj=other.client, action="update")
        make_episode(org2, code="LOG-1")  # the same code in another organisation
        client.force_login(org1.dp_admin)
        url = reverse("dp_access_log")

        def ids(**params: str) -> set[tuple[str, Any]]:
            # The search form is POSTed and redirects to a URL without the client code.
            response = client.post(url, params)
            assert response.status_code == 302
            assert all(v not in response["Location"] for v in params.values() if "-" in v[:4])
            page = client.get(response["Location"]).context["entries"]
            return {(e.action, e.client_id) for e in page}

        # The search for one client is itself logged first, so it shows in its result.
        assert ids(client_code="log-1") == {
            ("create", mine.client_id),
            ("view", mine.client_id),
            ("search", mine.client_id),
        }
        assert ids(username=org1.therapist_b.username, action="update") == {
            ("update", other.client_id)
        }
        assert ids(date_from="2026-02-01", date_to="2026-02-28") == {("update", other.client_id)}
        # Another organisation's entries are never listed.
        all_orgs = {e.organisation_id for e in client.get(url).context["entries"]}
        assert all_orgs == {org1.org.pk}
        # The search for one client was itself logged.
        assert AccessLog.objects.filter(
            organisation=org1.org, action="search", client_id=mine.client_id
        ).exists()

    def test_unknown_code_finds_nothing(self, org1: Any, client: Any) -> None:
        make_episode(org1, code="LOG-3")
        client.force_login(org1.dp_admin)
        response = client.post(reverse("dp_access_log"), {"client_code": "NOPE"}, follow=True)
        assert list(response.context["entries"]) == []

    def test_client_export_is_that_clients_log_and_is_logged(self, org1: Any, client: Any) -> None:
        mine = make_episode(org1, code="EXP-1")
        other = make_episode(org1, code="EXP-2")
        _entry(org1.org, org1.therapist_a, obj=mine, action="view")
        client.force_login(org1.dp_admin)
        client.cookies["django_language"] = "en"  # labels in the request's language
        response = client.get(reverse("dp_access_log_export"), {"client": mine.client_id})
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        # create client, create episode, view episode, this export; nothing of EXP-2.
        assert [r["Action"] for r in rows] == ["Created", "Created", "Viewed", "Exported"]
        assert {r["Object"] for r in rows} == {"Client", "Episode", "Access log"}
        assert "EXP-1" not in response.content.decode()  # ids only, never the code
        exported = AccessLog.objects.filter(
            organisation=org1.org, action="export", object_type="accesslog"
        ).get()
        assert exported.client_id == mine.client_id and exported.client_id != other.client_id

    def test_export_of_another_organisations_client_is_404(
        self, org1: Any, org2: Any, client: Any
    ) -> None:
        foreign = make_episode(org2, code="FOREIGN-1")
        client.force_login(org1.dp_admin)
        response = client.get(reverse("dp_access_log_export"), {"client": foreign.client_id})
        assert response.status_code == 404

    @pytest.mark.parametrize("persona", ["therapist_a", "leader", "analyst", "owner"])
    def test_only_the_dp_admin_reads_the_log(self, org1: Any, client: Any, persona: str) -> None:
        ep = make_episode(org1, code="EXP-3")
        client.force_login(org1.by_role()[persona])
        assert client.get(reverse("dp_access_log")).status_code == 403
        response = client.get(reverse("dp_access_log_export"), {"client": ep.client_id})
        assert response.status_code == 403
