"""Fixes from the second review of the import and export (2026-12-02): every case here
was a reproduction that failed before its fix."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import override

from clients.models import Client, Episode
from clients.services import episode_close, episode_start
from datapolicy.models import Membership, Role
from measures.exporter import export_sessions
from measures.importer import episode_keys, import_sessions
from measures.models import Session
from measures.services import ScoreInput
from tests.conftest import OrgPersonas, make_episode, make_org, record

D = dt.date


# --------------------------------------------------------------- episode names (export)


def test_episode_keys_follow_labels_then_start_dates_made_unique() -> None:
    keys = episode_keys(
        [
            (1, 7, "", D(2025, 1, 1)),
            (2, 7, "2025-01-01", D(2025, 3, 1)),  # a label equal to episode 1's start
            (3, 7, "", D(2025, 1, 1)),  # started the same day as episode 1
            (4, 7, "", D(2024, 6, 1)),
            (5, 8, "", D(2025, 1, 1)),  # another client: its own names
        ]
    )
    assert keys == {
        2: "2025-01-01",
        4: "2024-06-01",
        1: "2025-01-01 (2)",
        3: "2025-01-01 (3)",
        5: "2025-01-01",
    }


def _other_org_for(org1: OrgPersonas, slug: str) -> Any:
    other = make_org(slug)
    Membership.objects.create(
        organisation=other.org, user=org1.therapist_a, unit=other.unit, role=Role.THERAPIST
    )
    return other


def _round_trip(org1: OrgPersonas, slug: str) -> tuple[str, Any]:
    text = export_sessions(actor=None, organisation=org1.org)
    other = _other_org_for(org1, slug)
    into_empty = import_sessions(actor=None, organisation=other.org, data=text.encode())
    assert into_empty.ok, into_empty.errors
    again = import_sessions(actor=None, organisation=org1.org, data=text.encode())
    assert again.ok, again.errors
    assert again.sessions_created == 0
    assert again.sessions_skipped == Session.objects.for_org(org1.org).count()
    return text, other


def test_two_unlabelled_episodes_started_on_one_day_round_trip(org1: OrgPersonas) -> None:
    ep = make_episode(org1, code="AB-9", started_on=D(2025, 1, 1))
    record(ep, D(2025, 1, 1), ors="10.0")
    episode_close(actor=org1.therapist_a, episode=ep, closed_on=D(2025, 1, 1))
    ep2 = episode_start(
        actor=org1.therapist_a, client=ep.client, unit=org1.unit, started_on=D(2025, 1, 1)
    )
    record(ep2, D(2025, 1, 1), ors="20.0")
    text, other = _round_trip(org1, "delta")
    assert ",2025-01-01," in text and ",2025-01-01 (2)," in text
    labels = set(Episode.objects.for_org(other.org).values_list("label", flat=True))
    assert labels == {"2025-01-01", "2025-01-01 (2)"}
    closed = Episode.objects.for_org(other.org).get(label="2025-01-01")
    assert closed.status == "closed" and closed.sessions.get().scores.get().total == 10


def test_a_label_equal_to_another_episodes_start_date_round_trips(org1: OrgPersonas) -> None:
    ep = make_episode(org1, code="AB-9", started_on=D(2025, 1, 1))
    record(ep, D(2025, 1, 5), ors="10.0")
    episode_close(actor=org1.therapist_a, episode=ep, closed_on=D(2025, 2, 1))
    ep2 = episode_start(
        actor=org1.therapist_a, client=ep.client, unit=org1.unit, started_on=D(2025, 3, 1)
    )
    # A date as label: typed before the pages refused it, or written by an import.
    Episode.objects.for_org(org1.org).filter(pk=ep2.pk).update(label="2025-01-01")
    record(ep2, D(2025, 3, 2), ors="20.0")
    _text, other = _round_trip(org1, "delta")
    assert Episode.objects.for_org(other.org).count() == 2


def test_an_episode_without_sessions_still_names_the_others(org1: OrgPersonas) -> None:
    # A closed episode with a session, then a new one that has no session yet (common).
    ep = make_episode(org1, code="AB-9", started_on=D(2025, 1, 1))
    record(ep, D(2025, 1, 5), ors="10.0")
    episode_close(actor=org1.therapist_a, episode=ep, closed_on=D(2025, 2, 1))
    episode_start(
        actor=org1.therapist_a, client=ep.client, unit=org1.unit, started_on=D(2025, 3, 1)
    )
    text, _other = _round_trip(org1, "delta")
    assert ",2025-01-01," in text  # named, although only one episode has sessions


def test_a_client_with_one_episode_is_exported_without_a_name(org1: OrgPersonas) -> None:
    ep = make_episode(org1, code="AB-9", started_on=D(2025, 1, 1))
    record(ep, D(2025, 1, 5), ors="10.0")
    _text, other = _round_trip(org1, "delta")
    assert Episode.objects.for_org(other.org).get().label == ""
    assert Client.objects.for_org(other.org).get().code == "AB-9"


# --------------------------------------------------------------- numbers


HEAD = "client_code;therapist;unit;session_date;ors_total\n"


def _line(code: str, total: str) -> str:
    return f"{code};alpha-therapist_a;ung;2025-01-10;{total}\n"


@pytest.mark.parametrize("typed", ["1_0", "\u0661\u0660", "1e1", "inf", "0x1"])
def test_a_score_is_a_number_by_one_rule_whatever_the_other_lines(
    org1: OrgPersonas, typed: str
) -> None:
    alone = import_sessions(
        actor=None, organisation=org1.org, data=(HEAD + _line("N-1", typed)).encode()
    )
    mixed = HEAD + _line("N-1", typed) + _line("N-2", "abc") + _line("N-3", "12,5")
    both = import_sessions(actor=None, organisation=org1.org, data=mixed.encode())
    assert [(e.line, e.column) for e in alone.errors] == [(2, "ors_total")]
    assert [(e.line, e.column) for e in both.errors] == [(2, "ors_total"), (3, "ors_total")]
    assert not Session.objects.for_org(org1.org).exists()
    with pytest.raises(ValidationError):
        ScoreInput.parse(None, typed, field="ors")


def test_ordinary_numbers_still_read() -> None:
    assert ScoreInput.parse(None, "12,5", field="ors").total == Decimal("12.5")
    assert ScoreInput.parse(None, ".5", field="ors").total == Decimal("0.5")
    assert ScoreInput.parse(None, Decimal("7.0"), field="ors").total == Decimal("7.0")


# --------------------------------------------------------------- odd files


def _errors(org1: OrgPersonas, text: str) -> list[tuple[int, str, str]]:
    result = import_sessions(actor=None, organisation=org1.org, data=text.encode())
    assert not result.ok
    assert not Session.objects.for_org(org1.org).exists()  # nothing written
    return [(e.line, e.column, e.message) for e in result.errors]


@pytest.mark.parametrize("char", ["\x00", "\x01", "\t", "\x1b", "\x85"])
def test_a_control_character_is_a_line_error(org1: OrgPersonas, char: str) -> None:
    text = "client_code,therapist,unit,session_date,episode,ors_total\n"
    text += "AB-1,alpha-therapist_a,ung,2025-01-10,first,10\n"
    text += f"AB-2,alpha-therapist_a,ung,2025-01-10,x{char}y,10\n"
    errors = _errors(org1, text)
    assert [(line, column) for line, column, _m in errors] == [(3, "episode")]
    assert errors[0][2] == _("The value contains a control character (such as a tab or NUL).")


def test_a_cpr_number_in_a_long_header_name_is_not_repeated_in_part(org1: OrgPersonas) -> None:
    text = "client_code;therapist;unit;session_date;kommentar til forloeb, klient: 0101901234\n"
    text += "AB-1;alpha-therapist_a;ung;2025-01-10;x\n"
    errors = _errors(org1, text)
    assert errors and all("01019" not in f"{c} {m}" for _line, c, m in errors)
    assert [(line, c) for line, c, _m in errors] == [(1, "")]


def test_a_value_longer_than_the_csv_limit_is_not_called_an_open_quote(
    org1: OrgPersonas,
) -> None:
    text = "client_code,therapist,unit,session_date,ors_total\n"
    text += "AB-1,alpha-therapist_a,ung,2025-01-10,10\n"
    text += "AB-2," + "t" * 140_000 + ",ung,2025-01-10,10\n"
    errors = _errors(org1, text)
    assert len(errors) == 1 and errors[0][0] == 3
    assert errors[0][2] == _("A value on this line is longer than %(limit)s characters.") % {
        "limit": 131072
    }


@pytest.mark.parametrize("body", ["", "\n\n\n", ";;;\n"])
def test_a_file_without_sessions_is_an_error_not_an_empty_success(
    org1: OrgPersonas, body: str
) -> None:
    from datapolicy.models import AccessLog

    errors = _errors(org1, "client_code;therapist;unit;session_date\n" + body)
    assert [(line, column) for line, column, _m in errors] == [(1, "")]
    assert not AccessLog.objects.filter(organisation=org1.org, action="import").exists()


def test_a_bad_closing_date_gets_one_message(org1: OrgPersonas) -> None:
    text = "client_code;therapist;unit;session_date;ors_total;episode_closed_on\n"
    text += "AB-1;alpha-therapist_a;ung;2025-01-10;10;2025-02-30\n"
    text += "AB-1;alpha-therapist_a;ung;2025-01-17;10;\n"
    assert [(line, column) for line, column, _m in _errors(org1, text)] == [
        (2, "episode_closed_on")
    ]


def test_unit_codes_match_without_regard_to_case_where_unambiguous(org1: OrgPersonas) -> None:
    text = "client_code;therapist;unit;session_date;ors_total\n"
    text += "AB-1;alpha-therapist_a;UNG;2025-01-10;10\n"
    result = import_sessions(actor=None, organisation=org1.org, data=text.encode())
    assert result.ok, result.errors
    assert Episode.objects.for_org(org1.org).get().unit == org1.unit


# --------------------------------------------------------------- the upload


@pytest.mark.parametrize("name", ["010190+1234.csv", "010190-1234.csv", "mine (1).csv"])
def test_the_stored_upload_never_has_the_uploaded_name(
    client: Any,
    org1: OrgPersonas,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    tmp_path: Any,
    name: str,
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from datapolicy.validators import looks_like_cpr
    from measures.models import ImportJob

    settings.MEDIA_ROOT = tmp_path
    client.force_login(org1.owner)
    with django_capture_on_commit_callbacks(execute=False):
        r = client.post(
            reverse("import_upload"), {"file": SimpleUploadedFile(name, b"client_code\n")}
        )
    assert r.status_code == 302
    job = ImportJob.objects.for_org(org1.org).get()
    assert job.file.name.startswith("imports/") and job.file.name.endswith(".csv")
    assert "mine" not in job.file.name and "0101" not in job.file.name
    assert not any(looks_like_cpr(p.name) for p in tmp_path.rglob("*"))
    assert job.original_name == ("mine (1).csv" if name.startswith("mine") else "upload.csv")


def test_the_job_page_and_its_json_give_every_stored_error_and_the_count(
    client: Any,
    org1: OrgPersonas,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    tmp_path: Any,
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from measures.importer import MAX_ERRORS
    from measures.models import ImportJob

    settings.MEDIA_ROOT = tmp_path
    bad = MAX_ERRORS + 300
    text = HEAD + "".join(_line(f"N-{i}", "55") for i in range(bad))
    client.force_login(org1.owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("import_upload"), {"file": SimpleUploadedFile("old.csv", text.encode())}
        )
    job = ImportJob.objects.for_org(org1.org).get()
    assert job.status == "failed" and len(job.errors) == MAX_ERRORS
    status = client.get(reverse("import_job_status", kwargs={"pk": job.pk})).json()
    assert len(status["errors"]) == MAX_ERRORS and status["error_count"] == bad
    page = client.get(reverse("import_job", kwargs={"pk": job.pk}), HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    with override("da"):  # the page's language (the user's, Danish by default)
        said = _("{count} errors in all; the first {shown} are listed.")
    assert said.format(count=bad, shown=MAX_ERRORS) in html
    assert html.count('<td class="num">') == MAX_ERRORS


# --------------------------------------------------------------- one round of corrections


def test_errors_against_the_organisations_data_come_with_the_files_own(
    org1: OrgPersonas,
) -> None:
    ep = make_episode(org1, code="AB-1", started_on=D(2025, 1, 1))
    record(ep, D(2025, 1, 10), ors="10.0")
    text = HEAD
    text += _line("NEW-1", "10").replace("2025-01-10", "2025-02-30")  # line 2: the file
    text += _line("AB-1", "12")  # line 3: another score than the stored session's
    text += _line("NEW-2", "11,55")  # line 4: the file
    text += _line("NEW-3", "20")  # line 5: fine
    result = import_sessions(actor=None, organisation=org1.org, data=text.encode())
    errors = [(e.line, e.column, e.message) for e in result.errors]
    assert [(line, column) for line, column, _m in errors] == [
        (2, "session_date"),
        (3, "session_date"),
        (4, "ors_total"),
    ]
    differs = _("A different session of this episode on this date exists already.")
    assert errors[1][2] == differs
    # Only read for the report: nothing locked, nothing written.
    assert Session.objects.for_org(org1.org).count() == 1


def test_the_report_of_the_organisations_data_counts_beyond_the_listed(
    org1: OrgPersonas,
) -> None:
    from measures.importer import MAX_ERRORS
    from measures.models import Scale, Score

    ep = make_episode(org1, code="AB-1", started_on=D(2022, 1, 1))
    text = HEAD + _line("NEW-1", "55")  # a file error: the report pass runs
    n = MAX_ERRORS + 5
    days = [D(2022, 1, 2) + dt.timedelta(days=i) for i in range(n)]
    sessions = Session.objects.bulk_create(
        Session(organisation=org1.org, episode=ep, date=day, number=i + 1)
        for i, day in enumerate(days)
    )
    ors = Scale.objects.get(code="ORS")
    Score.objects.bulk_create(
        Score(organisation=org1.org, session=s, scale=ors, kind="outcome", total=10)
        for s in sessions
    )
    for day in days:
        text += _line("AB-1", "12").replace("2025-01-10", day.isoformat())
    result = import_sessions(actor=None, organisation=org1.org, data=text.encode())
    assert result.error_count == n + 1 and len(result.errors) == MAX_ERRORS
    assert result.errors[0].line == 2 and result.errors[1].line == 3


# --------------------------------------------------------------- CSV injection


def test_export_guards_formulas_and_the_import_takes_the_guard_off(org1: OrgPersonas) -> None:
    ep = make_episode(org1, code="-AB-9", started_on=D(2025, 1, 1))
    Episode.objects.for_org(org1.org).filter(pk=ep.pk).update(label='=HYPERLINK("http://x","y")')
    record(ep, D(2025, 1, 5), ors="10.0")
    ep2 = make_episode(org1, code="AB-10", started_on=D(2025, 1, 1))
    Episode.objects.for_org(org1.org).filter(pk=ep2.pk).update(label="+1 @2 plain")
    record(ep2, D(2025, 1, 5), ors="11.0")
    text = export_sessions(actor=None, organisation=org1.org)
    # No cell a spreadsheet would run as a formula (read as a spreadsheet reads CSV).
    values = [v for row in list(csv.reader(io.StringIO(text)))[1:] for v in row]
    assert not [v for v in values if v[:1] in ("=", "+", "-", "@")]
    assert "'=HYPERLINK" in text and "'-AB-9" in text and "'+1 @2 plain" in text
    _text, other = _round_trip(org1, "delta")
    assert set(Episode.objects.for_org(other.org).values_list("label", flat=True)) == {
        '=HYPERLINK("http://x","y")',
        "+1 @2 plain",
    }
    assert set(Client.objects.for_org(other.org).values_list("code", flat=True)) == {
        "-AB-9",
        "AB-10",
    }


# --------------------------------------------------------------- a job delivered twice


@pytest.mark.postgres
def test_a_job_running_in_another_worker_is_not_run_again(
    org1: OrgPersonas, settings: Any, tmp_path: Any
) -> None:
    import psycopg
    from django.core.files.base import ContentFile
    from django.db import connection

    from measures.models import ImportJob
    from measures.tasks import JOB_LOCK_SPACE, import_run

    settings.MEDIA_ROOT = tmp_path
    job = ImportJob(organisation=org1.org, created_by=org1.owner, original_name="a.csv")
    job.file.save("a.csv", ContentFile((HEAD + _line("AB-1", "10")).encode()), save=False)
    job.save()
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as other:  # the other worker
        other.execute("SELECT pg_advisory_lock(%s, %s)", [JOB_LOCK_SPACE, job.pk])
        assert import_run(job.pk) == "queued"
        job.refresh_from_db()
        assert job.status == "queued" and job.file  # untouched, the upload kept
        assert not Session.objects.for_org(org1.org).exists()
    # That worker's connection is gone (as when it crashes): the job runs. The server
    # ends the closed connection's backend (and its lock) asynchronously: wait for it.
    import time

    with connection.cursor() as cursor:
        for _ in range(100):
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid = %s AND objid = %s AND objsubid = 2",
                [JOB_LOCK_SPACE, job.pk],
            )
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.05)
    assert import_run(job.pk) == "done"
    assert Session.objects.for_org(org1.org).count() == 1


# --------------------------------------------------------------- names that move


def test_a_label_that_is_a_date_is_refused_on_the_pages_and_the_api(org1: OrgPersonas) -> None:
    ep = make_episode(org1, code="AB-9", started_on=D(2025, 1, 1))
    episode_close(actor=org1.therapist_a, episode=ep, closed_on=D(2025, 1, 2))
    for label in ("2025-03-01", "2025-03-01 (2)"):
        with pytest.raises(ValidationError) as exc:
            episode_start(actor=org1.therapist_a, client=ep.client, unit=org1.unit, label=label)
        assert "label" in exc.value.message_dict
    ok = episode_start(
        actor=org1.therapist_a, client=ep.client, unit=org1.unit, label="forløb 2025-03-01"
    )
    assert ok.label == "forløb 2025-03-01"


def _two_unlabelled(org1: OrgPersonas) -> tuple[Any, Any]:
    ep1 = make_episode(org1, code="AB-9", started_on=D(2024, 6, 1))
    record(ep1, D(2024, 6, 2), ors="10.0")
    episode_close(actor=org1.therapist_a, episode=ep1, closed_on=D(2024, 7, 1))
    ep2 = episode_start(
        actor=org1.therapist_a, client=ep1.client, unit=org1.unit, started_on=D(2025, 1, 10)
    )
    record(ep2, D(2025, 1, 10), ors="20.0")
    return ep1, ep2


def test_an_episode_whose_start_the_import_moves_keeps_the_files_name(org1: OrgPersonas) -> None:
    _ep1, ep2 = _two_unlabelled(org1)
    text = "client_code;therapist;unit;session_date;episode;ors_total\n"
    text += "AB-9;alpha-therapist_a;ung;2025-01-05;2025-01-10;15\n"  # before its start
    first = import_sessions(actor=None, organisation=org1.org, data=text.encode())
    assert first.ok and first.sessions_created == 1 and first.episodes_created == 0
    ep2.refresh_from_db()
    assert ep2.started_on == D(2025, 1, 5) and ep2.label == "2025-01-10"
    again = import_sessions(actor=None, organisation=org1.org, data=text.encode())
    assert again.ok and again.sessions_created == 0 and again.episodes_created == 0
    assert Episode.objects.for_org(org1.org).count() == 2


def test_a_date_name_no_episode_has_now_is_refused_not_a_new_episode(org1: OrgPersonas) -> None:
    from measures.services import ScoreInput, session_record

    _ep1, ep2 = _two_unlabelled(org1)
    old_export = export_sessions(actor=None, organisation=org1.org)
    assert ",2025-01-10," in old_export
    # The therapist adds an earlier session on the page: the start date moves.
    session_record(
        actor=org1.therapist_a, episode=ep2, date=D(2025, 1, 3), ors=ScoreInput(total=Decimal("9"))
    )
    result = import_sessions(actor=None, organisation=org1.org, data=old_export.encode())
    assert [(e.column, "2025-01-10" in e.message) for e in result.errors] == [("episode", True)]
    assert Episode.objects.for_org(org1.org).count() == 2
    # A new client may be named by a date (an export imported into another organisation).
    text = "client_code;therapist;unit;session_date;episode;ors_total\n"
    text += "NEW-1;alpha-therapist_a;ung;2025-01-05;2025-01-05;15\n"
    assert import_sessions(actor=None, organisation=org1.org, data=text.encode()).ok


# --------------------------------------------------------------- second review


@pytest.mark.parametrize("label", ["'=x", "'-1", "'", "''=x", "'plain"])
def test_a_label_starting_with_an_apostrophe_round_trips(org1: OrgPersonas, label: str) -> None:
    ep = make_episode(org1, code="AB-9", started_on=D(2025, 1, 1))
    Episode.objects.for_org(org1.org).filter(pk=ep.pk).update(label=label)
    record(ep, D(2025, 1, 5), ors="10.0")
    _text, other = _round_trip(org1, "delta")
    assert list(Episode.objects.for_org(other.org).values_list("label", flat=True)) == [label]


def test_score_messages_quote_the_value_as_typed_and_short(org1: OrgPersonas) -> None:
    text = HEAD + _line("N-1", "1" * 5000) + _line("N-2", "1 ,0") + _line("N-3", "40,5")
    messages = [e.message for e in _import_errors(org1, text)]
    assert len(messages) == 3 and all(len(m) < 200 for m in messages)
    assert "1 ,0" in messages[1] and "40,5" in messages[2]


def _import_errors(org1: OrgPersonas, text: str) -> list[Any]:
    result = import_sessions(actor=None, organisation=org1.org, data=text.encode())
    assert not result.ok
    return result.errors


def test_a_long_file_name_is_checked_whole_for_a_cpr_number() -> None:
    from measures.models import safe_upload_name

    assert safe_upload_name("x" * 194 + "0101901234.csv") == "upload.csv"
    assert safe_upload_name("x" * 300) == "x" * 200


def test_a_unit_code_that_fits_two_units_by_case_is_called_ambiguous(org1: OrgPersonas) -> None:
    from datapolicy.models import Unit

    Unit.objects.create(organisation=org1.org, code="UNG", name="Andet")
    text = "client_code;therapist;unit;session_date;ors_total\n"
    text += "AB-1;alpha-therapist_a;Ung;2025-01-10;10\n"
    errors = _import_errors(org1, text)
    assert [(e.line, e.column) for e in errors] == [(2, "unit")]
    assert errors[0].message == _(
        "%(code)s matches several units whose codes differ only in case; use the exact code."
    ) % {"code": "Ung"}


def test_dates_before_1990_are_refused_on_every_path(org1: OrgPersonas) -> None:
    from measures.services import session_record

    ep = make_episode(org1, code="AB-9", started_on=D(2025, 1, 1))
    with pytest.raises(ValidationError) as exc:
        session_record(
            actor=org1.therapist_a,
            episode=ep,
            date=D(1989, 12, 5),
            ors=ScoreInput(total=Decimal("9")),
        )
    assert "date" in exc.value.message_dict
    episode_close(actor=org1.therapist_a, episode=ep, closed_on=D(2025, 1, 2))
    with pytest.raises(ValidationError) as exc:
        episode_start(
            actor=org1.therapist_a, client=ep.client, unit=org1.unit, started_on=D(1989, 12, 5)
        )
    assert "started_on" in exc.value.message_dict
    text = HEAD + _line("N-1", "10").replace("2025-01-10", "1989-12-05")
    assert [(e.line, e.column) for e in _import_errors(org1, text)] == [(2, "session_date")]


def test_client_codes_are_unique_without_regard_to_case_in_the_database(
    org1: OrgPersonas,
) -> None:
    from django.db import IntegrityError, transaction

    Client.objects.create(organisation=org1.org, code="AB-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        # What a race between the form's check and another insert would write.
        Client.objects.create(organisation=org1.org, code="ab-1")
    other = make_org("delta")
    Client.objects.create(organisation=other.org, code="ab-1")  # per organisation


def test_a_pin_and_a_report_year_are_ascii_digits(org1: OrgPersonas) -> None:
    from datapolicy.reports import period_bounds
    from measures.clientmode import user_pin_set

    with pytest.raises(ValidationError):
        user_pin_set(actor=org1.therapist_a, pin="\u00b2\u00b2\u00b2\u00b2")
    user_pin_set(actor=org1.therapist_a, pin="2468")
    with pytest.raises(ValueError):
        period_bounds("\u0662\u0660\u0662\u0666")
    assert period_bounds("2026") == (D(2026, 1, 1), D(2026, 12, 31))


def test_the_session_service_records_a_session_only_with_a_score(org1: OrgPersonas) -> None:
    from measures.services import session_record

    ep = make_episode(org1, code="AB-9", started_on=D(2025, 1, 1))
    with pytest.raises(ValidationError):
        session_record(actor=org1.therapist_a, episode=ep, date=D(2025, 1, 5))
    assert not Session.objects.for_org(org1.org).exists()
