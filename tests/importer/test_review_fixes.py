"""Import defects found in review (issue 6): closing existing episodes, same-date
sessions, therapist look-up, malformed CSV structure, line numbers, score precision,
duplicates after matching. Each bad file names the right line and column and writes
nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils.translation import override

from clients.models import Client, Episode
from datapolicy.models import AccessLog, Membership, Role, User
from measures.exporter import export_sessions
from measures.importer import import_sessions
from measures.models import Score, Session
from measures.services import ScoreInput, session_record
from tests.conftest import OrgPersonas, make_episode, make_org, record

H = "client_code,therapist,unit,session_date,ors_total"
T = "alpha-therapist_a"


def run(org: OrgPersonas, text: str | bytes) -> Any:
    data = text.encode() if isinstance(text, str) else text
    with override("en"):
        return import_sessions(actor=org.owner, organisation=org.org, data=data)


def where(result: Any) -> list[tuple[int, str]]:
    return [(e.line, e.column) for e in result.errors]


def nothing_written(org: OrgPersonas) -> bool:
    return not Session.objects.for_org(org.org).exists() and not (
        Client.objects.for_org(org.org).exists()
    )


# ------------------------------------------------------------ 3: closing existing episodes

CLOSE_H = "client_code,therapist,unit,session_date,ors_total,episode_closed_on"


def test_closing_date_closes_a_matched_open_episode(org1: OrgPersonas) -> None:
    ep = make_episode(org1, code="EX-1", started_on=dt.date(2024, 1, 1))
    record(ep, dt.date(2024, 1, 5), ors="10")
    text = f"{CLOSE_H}\nEX-1,{T},ung,2024-01-12,12,2024-01-20\n"
    result = run(org1, text)
    assert result.ok, result.errors
    assert (result.sessions_created, result.episodes_closed) == (1, 1)
    ep.refresh_from_db()
    assert (ep.status, ep.closed_on, ep.alerts) == ("closed", dt.date(2024, 1, 20), [])
    assert ep.sessions.count() == 2
    closes = AccessLog.objects.filter(organisation=org1.org, action="close", object_id=ep.pk)
    assert closes.count() == 1
    # Importing the same file again changes nothing (the episode is closed on that date).
    again = run(org1, text)
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped, again.episodes_closed) == (0, 1, 0)


def test_a_later_extract_closes_an_episode_whose_sessions_are_all_there(
    org1: OrgPersonas,
) -> None:
    ep = make_episode(org1, code="EX-1", started_on=dt.date(2024, 1, 1))
    record(ep, dt.date(2024, 1, 5), ors="10.0")
    result = run(org1, f"{CLOSE_H}\nEX-1,{T},ung,2024-01-05,10.0,2024-02-01\n")
    assert result.ok, result.errors
    assert (result.sessions_created, result.sessions_skipped, result.episodes_closed) == (0, 1, 1)
    ep.refresh_from_db()
    assert (ep.status, ep.closed_on) == ("closed", dt.date(2024, 2, 1))


def test_closing_before_a_session_in_the_platform_is_an_error(org1: OrgPersonas) -> None:
    ep = make_episode(org1, code="EX-1", started_on=dt.date(2024, 1, 1))
    record(ep, dt.date(2024, 3, 1), ors="10")
    result = run(org1, f"{CLOSE_H}\nEX-1,{T},ung,2024-01-12,12,2024-02-01\n")
    assert where(result) == [(2, "episode_closed_on")]
    assert "before the last session" in result.errors[0].message
    ep.refresh_from_db()
    assert ep.status == "open" and ep.sessions.count() == 1


def test_closing_counts_from_the_start_moved_back_by_the_file(
    org1: OrgPersonas,
) -> None:
    ep = make_episode(org1, code="EX-1", started_on=dt.date(2024, 3, 1))
    result = run(org1, f"{CLOSE_H}\nEX-1,{T},ung,2024-01-12,12,2024-01-20\n")
    # The session moves the start back to 2024-01-12; the closing date is after it.
    assert result.ok, result.errors
    ep.refresh_from_db()
    assert (ep.started_on, ep.status) == (dt.date(2024, 1, 12), "closed")


def test_a_closed_episode_with_another_closing_date_is_an_error(org1: OrgPersonas) -> None:
    from clients.services import episode_close

    ep = make_episode(org1, code="EX-1", started_on=dt.date(2024, 1, 1))
    record(ep, dt.date(2024, 1, 5), ors="10.0")
    episode_close(actor=org1.therapist_a, episode=ep, closed_on=dt.date(2024, 1, 31))
    result = run(org1, f"{CLOSE_H}\nEX-1,{T},ung,2024-01-05,10.0,2024-02-15\n")
    assert where(result) == [(2, "episode_closed_on")]
    ep.refresh_from_db()
    assert ep.closed_on == dt.date(2024, 1, 31)


# ------------------------------------------------------------ 4: same-date sessions

ORDER_H = "client_code,therapist,unit,session_date,ors_total,same_day_order"


def _two_on_one_date(org: OrgPersonas) -> Episode:
    ep = make_episode(org, code="AB-1", started_on=dt.date(2025, 1, 1))
    record(ep, dt.date(2025, 1, 5), ors="10")
    session_record(
        actor=org.therapist_a,
        episode=ep,
        date=dt.date(2025, 1, 5),
        ors=ScoreInput(total=Decimal("12")),
        confirm_same_date=True,
    )
    record(ep, dt.date(2025, 1, 9), ors="14")
    return ep


def test_same_date_sessions_survive_the_round_trip(org1: OrgPersonas) -> None:
    _two_on_one_date(org1)
    text = export_sessions(actor=None, organisation=org1.org)
    lines = text.splitlines()
    assert lines[0].endswith(",episode_closed_on,same_day_order")
    assert [line.rsplit(",", 1)[1] for line in lines[1:]] == ["1", "2", ""]
    other = make_org("delta")
    Membership.objects.create(
        organisation=other.org, user=org1.therapist_a, unit=other.unit, role=Role.THERAPIST
    )
    result = import_sessions(actor=None, organisation=other.org, data=text.encode())
    assert result.ok, result.errors
    scores = list(
        Score.objects.for_org(other.org).order_by("session__number").values_list("total", flat=True)
    )
    assert scores == [Decimal("10.0"), Decimal("12.0"), Decimal("14.0")]
    assert export_sessions(actor=None, organisation=other.org) == text
    again = import_sessions(actor=None, organisation=org1.org, data=text.encode())
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 3)
    # The second session of the date is matched as the second, not compared with the first.
    changed = text.replace("2025-01-05,adult,,,,,,12.0", "2025-01-05,adult,,,,,,13.0")
    assert changed != text
    conflict = import_sessions(actor=None, organisation=org1.org, data=changed.encode())
    assert [(e.line, e.column) for e in conflict.errors] == [(3, "session_date")]


def test_a_file_adds_the_second_session_of_a_date(org1: OrgPersonas) -> None:
    ep = make_episode(org1, code="AB-1", started_on=dt.date(2025, 1, 1))
    record(ep, dt.date(2025, 1, 5), ors="10.0")
    text = f"{ORDER_H}\nAB-1,{T},ung,2025-01-05,10.0,1\nAB-1,{T},ung,2025-01-05,12.0,2\n"
    result = run(org1, text)
    assert result.ok, result.errors
    assert (result.sessions_created, result.sessions_skipped) == (1, 1)
    got = list(ep.sessions.order_by("number").values_list("number", "scores__total"))
    assert got == [(1, Decimal("10.0")), (2, Decimal("12.0"))]
    again = run(org1, text)
    assert (again.sessions_created, again.sessions_skipped) == (0, 2)


def test_same_date_without_the_order_column_is_still_a_duplicate(org1: OrgPersonas) -> None:
    result = run(org1, f"{H}\nAB-1,{T},ung,2025-01-05,10\nAB-1,{T},ung,2025-01-05,12\n")
    assert where(result) == [(3, "session_date")]
    assert "line 2" in result.errors[0].message
    assert nothing_written(org1)


def test_bad_same_day_orders(org1: OrgPersonas) -> None:
    text = (
        f"{ORDER_H}\n"
        f"AB-1,{T},ung,2025-01-05,10,1\n"
        f"AB-1,{T},ung,2025-01-05,12,3\n"  # 3: a gap (no 2)
        f"AB-2,{T},ung,2025-01-05,12,x\n"  # 4: not a number
        f"AB-3,{T},ung,2025-01-05,12,0\n"  # 5: not 1-99
        f"AB-4,{T},ung,2025-01-05,12,\n"  # 6: empty is the first ...
        f"AB-4,{T},ung,2025-01-05,13,1\n"  # 7: ... so 1 is its duplicate
    )
    result = run(org1, text)
    assert where(result) == [
        (3, "same_day_order"),
        (4, "same_day_order"),
        (5, "same_day_order"),
        (7, "session_date"),
    ]
    assert nothing_written(org1)


# ------------------------------------------------------------ 5: therapist look-up


def test_capitalised_email_username_round_trip(org1: OrgPersonas) -> None:
    u = User.objects.create_user(username="Anna.Hansen@kommune.dk", password="pw")
    Membership.objects.create(organisation=org1.org, user=u, unit=org1.unit, role=Role.THERAPIST)
    ep = make_episode(org1, therapist=u, code="AB-1", started_on=dt.date(2025, 1, 1))
    record(ep, dt.date(2025, 1, 5), ors="10")
    text = export_sessions(actor=None, organisation=org1.org)
    assert "Anna.Hansen@kommune.dk" in text
    again = run(org1, text)
    assert again.ok, again.errors
    assert again.sessions_skipped == 1
    # Without regard to case, the username is found too.
    other = run(org1, f"{H}\nAB-2,anna.hansen@KOMMUNE.dk,ung,2025-01-05,10\n")
    assert other.ok, other.errors
    assert Episode.objects.for_org(org1.org).get(client__code="AB-2").therapist == u


def test_case_insensitive_username(org1: OrgPersonas) -> None:
    result = run(org1, f"{H}\nAB-1,ALPHA-Therapist_A,ung,2025-01-05,10\n")
    assert result.ok, result.errors
    assert Episode.objects.for_org(org1.org).get().therapist == org1.therapist_a


def test_an_email_shared_by_two_therapists_is_ambiguous(org1: OrgPersonas) -> None:
    for t in (org1.therapist_a, org1.therapist_b):
        t.email = "team@kommune.dk"
        t.save()
    text = (
        f"{H}\nAB-1,alpha-therapist_a,ung,2025-01-05,10\nAB-2,Team@kommune.dk,ung,2025-01-05,10\n"
    )
    result = run(org1, text)
    assert where(result) == [(3, "therapist")]
    assert "several users" in result.errors[0].message
    assert nothing_written(org1)


def test_username_of_one_and_email_of_another_is_ambiguous(org1: OrgPersonas) -> None:
    u = User.objects.create_user(username="Bo@kommune.dk", password="pw")
    Membership.objects.create(organisation=org1.org, user=u, unit=org1.unit, role=Role.THERAPIST)
    org1.therapist_b.email = "bo@kommune.dk"
    org1.therapist_b.save()
    # Not the exact username: the username (other case) and b's e-mail both fit.
    result = run(org1, f"{H}\nAB-1,bo@kommune.dk,ung,2025-01-05,10\n")
    assert where(result) == [(2, "therapist")]
    # The exact username is unambiguous (usernames are unique; the export writes them).
    exact = run(org1, f"{H}\nAB-1,Bo@kommune.dk,ung,2025-01-05,10\n")
    assert exact.ok, exact.errors
    assert Episode.objects.for_org(org1.org).get().therapist == u


# ------------------------------------------------------------ 7, 8, 9: CSV structure


def test_duplicate_column_names_are_a_line_1_error(org1: OrgPersonas) -> None:
    for header in (f"{H},ORS_TOTAL", f"{H}, ors_total "):
        result = run(org1, f"{header}\nAB-1,{T},ung,2024-02-10,12,30\n")
        assert where(result) == [(1, "ors_total")], result.errors
        assert "more than once" in result.errors[0].message
    assert nothing_written(org1)


def test_a_header_column_without_a_name(org1: OrgPersonas) -> None:
    result = run(org1, f"{H},\nAB-1,{T},ung,2024-02-10,12,\n")
    assert where(result) == [(1, "")]
    assert "no name" in result.errors[0].message


def test_more_fields_than_the_header_on_the_first_data_line(org1: OrgPersonas) -> None:
    for first in (f"AB-1,{T},ung,2024-02-10,12,", f"AB-1,{T},ung,2024-02-10,12,5"):
        result = run(org1, f"{H}\n{first}\nAB-2,{T},ung,2024-02-10,12\n")
        assert where(result) == [(2, "")], result.errors
        assert "more fields than the header" in result.errors[0].message
    # Every such line is listed, with blank lines counted.
    result = run(org1, f"{H}\nAB-1,{T},ung,2024-02-10,12,\n\nAB-2,{T},ung,2024-02-10,1,2\n")
    assert where(result) == [(2, ""), (4, "")]
    assert result.error_count == 2
    assert nothing_written(org1)


def test_fewer_fields_than_the_header_is_an_error(org1: OrgPersonas) -> None:
    text = (
        "client_code,therapist,unit,session_date,ors_total,srs_total\n"
        f"AB-1,{T},ung,2024-02-10,12,30\n"
        f"AB-2,{T},ung,2024-02-10,12\n"  # 3: the SRS column is missing
        "\n"
        ",,,,,\n"  # 5: separators only: a blank line
        "   \n"  # 6: spaces only: a blank line
    )
    result = run(org1, text)
    assert where(result) == [(3, "")]
    assert "fewer fields than the header (5 instead of 6)" in result.errors[0].message
    assert nothing_written(org1)


def test_duplicate_cites_the_real_line_after_blank_lines(org1: OrgPersonas) -> None:
    result = run(org1, f"{H}\n\n\nAB-1,{T},ung,2024-02-10,12\nAB-1,{T},ung,2024-02-10,12\n")
    assert where(result) == [(5, "session_date")]
    assert "line 4 " in result.errors[0].message


def test_quoted_line_break_does_not_shift_later_lines(org1: OrgPersonas) -> None:
    text = (
        f"{H}\n"
        f'AB-1,{T},ung,2024-02-10,"1\n2"\n'  # lines 2-3: one record
        f"AB-2,{T},ung,2024-02-30,12\n"  # line 4: bad date
        f'AB-3,"alpha-\ntherapist_a",ung,2024-02-11,12\n'  # lines 5-6
        f"AB-4,{T},ung,2024-02-11,99\n"  # line 7
    )
    result = run(org1, text)
    assert set(where(result)) == {
        (2, "ors_total"),
        (4, "session_date"),
        (5, "therapist"),
        (7, "ors_total"),
    }, result.errors
    breaks = [(e.line, e.column) for e in result.errors if "line break" in e.message]
    assert breaks == [(2, "ors_total"), (5, "therapist")]
    assert nothing_written(org1)


def test_unclosed_quote_names_the_line_where_it_opens(org1: OrgPersonas) -> None:
    text = (
        f"{H}\n"
        f"AB-1,{T},ung,2024-02-10,12\n"
        f'AB-2,"x\ny",ung,2024-02-11,12\n'  # lines 3-4, closed properly
        f'AB-3,{T},ung,"2024-02-12,12\n'  # line 5: never closed
        f"AB-4,{T},ung,2024-02-13,12\n"
    )
    result = run(org1, text)
    assert where(result) == [(5, "")]
    assert "never closed" in result.errors[0].message
    assert nothing_written(org1)
    bad = run(org1, f'{H}\nAB-1,{T},ung,"2024"-02-10,12\n')
    assert where(bad) == [(2, "")]


# ------------------------------------------------------------ 14 and score precision


def test_labelled_and_unlabelled_line_of_one_episode_on_one_date(org1: OrgPersonas) -> None:
    ep = make_episode(org1, code="EX-1", started_on=dt.date(2024, 1, 1))
    text = (
        "client_code,therapist,unit,session_date,episode,ors_total\n"
        f"EX-1,{T},ung,2024-01-05,,10\n"
        f"EX-1,{T},ung,2024-01-05,2024-01-01,11\n"
    )
    result = run(org1, text)
    assert where(result) == [(3, "session_date")]
    assert "line 2" in result.errors[0].message
    assert not ep.sessions.exists()


def test_more_than_one_decimal_is_refused_however_small(org1: OrgPersonas) -> None:
    text = (
        "client_code,therapist,unit,session_date,ors_1,ors_2,ors_3,ors_4,srs_total\n"
        f"AB-1,{T},ung,2024-02-10,,,,,10.0000001\n"
        f"AB-2,{T},ung,2024-02-10,1.00000001,2,3,4,\n"
        f"AB-3,{T},ung,2024-02-10,1e-7,2,3,4,\n"
        f'AB-4,{T},ung,2024-02-10,,,,,"12,50"\n'  # 12.50 is 12.5: fine
    )
    result = run(org1, text)
    assert where(result) == [(2, "srs_total"), (3, "ors_1"), (4, "ors_1")]
    assert "at most one decimal" in result.errors[0].message
    assert nothing_written(org1)
    assert run(
        org1, text.replace("10.0000001", "10.0").replace("1.00000001", "1").replace("1e-7", "1")
    ).ok


# ------------------------------------------------------------ 10: progress


@pytest.mark.django_db(transaction=True)
def test_progress_is_visible_to_others_while_the_import_runs(
    org1: OrgPersonas, monkeypatch: Any
) -> None:
    from django.db import connection, connections

    from measures import importer
    from measures.models import ImportJob
    from measures.tasks import job_progress

    monkeypatch.setattr(importer, "CHUNK", 3)  # a report every 3 lines
    job = ImportJob.objects.create(
        organisation=org1.org, created_by=org1.owner, file="imports/x.csv"
    )
    progress, close = job_progress(job.pk)
    watcher = connections.create_connection("default")  # what the polling page sees
    seen = []

    def spy(stage: str, done: int, total: int) -> None:
        progress(stage, done, total)
        with watcher.cursor() as cur:
            cur.execute(
                "SELECT status, processed_lines, total_lines FROM measures_importjob WHERE id = %s",
                [job.pk],
            )
            seen.append((stage, done, total, connection.in_atomic_block, cur.fetchone()))

    # Quoted codes: pandas' chunked reader (a quote-free file of full lines is read by
    # arrow in one pass and reports once).
    lines = "".join(f'"AB-{i}",{T},ung,2024-02-{i + 1:02d},12\n' for i in range(10))
    try:
        result = import_sessions(
            actor=org1.owner, organisation=org1.org, data=f"{H}\n{lines}".encode(), progress=spy
        )
    finally:
        close()
        watcher.close()
    assert result.ok, result.errors
    # Every report was visible at once, also those made inside the import's transaction.
    for stage, done, total, _atomic, row in seen:
        status = "validating" if stage == "validating" else "importing"
        assert row == (status, done, total)
    validating = [s for s in seen if s[0] == "validating"]
    writing = [s for s in seen if s[0] == "importing" and s[3]]
    assert len(validating) >= 4 + 5  # 4 chunks read, then the groups of checks
    assert len(writing) >= 4  # e.g. sessions written 3 at a time
    done = [s[1] for s in seen]
    assert done == sorted(done) and done[-1] == 10
