"""Import of historical sessions: format, the all-or-nothing error report, idempotence."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils.translation import override

from clients.models import Client, Episode
from measures.importer import import_sessions
from measures.models import Score, Session
from tests.conftest import OrgPersonas, make_episode, record

HEADER = (
    "client_code;therapist;unit;session_date;age_group;episode;"
    "ors_1;ors_2;ors_3;ors_4;ors_total;srs_total;episode_closed_on"
)
GOOD = [
    "AB-1;alpha-therapist_a;ung;2025-01-10;adult;;4,5;5;6;7;;38,0;",
    "AB-1;alpha-therapist_a;ung;2025-01-20;adult;;;;;;25,2;39;",
    "AB-1;alpha-therapist_a;ung;2025-01-03;adult;;;;;;12;;",
    "CD-2;alpha-therapist_b;ung;2025-02-01;youth;x;;;;;12;;2025-03-01",
    "CD-2;alpha-therapist_b;ung;2025-02-15;youth;x;;;;;19,5;37,5;2025-03-01",
    "CD-2;alpha-therapist_b;ung;2025-04-15;youth;y;;;;;21;;",
]


def csv(*lines: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def run(org: OrgPersonas, data: bytes) -> Any:
    with override("en"):
        return import_sessions(actor=org.owner, organisation=org.org, data=data)


def test_good_file_is_imported(org1: OrgPersonas) -> None:
    result = run(org1, csv(*GOOD))
    assert result.ok, result.errors
    assert result.summary() == {
        "lines": 6,
        "clients_created": 2,
        "episodes_created": 3,
        "episodes_closed": 0,
        "sessions_created": 6,
        "sessions_skipped": 0,
        "errors": 0,
    }
    ab = Client.objects.for_org(org1.org).get(code="AB-1")
    ep = Episode.objects.for_org(org1.org).get(client=ab)
    assert ep.started_on == dt.date(2025, 1, 3) and ep.status == "open"
    sessions = list(ep.sessions.order_by("number").values_list("date", "number"))
    assert sessions == [
        (dt.date(2025, 1, 3), 1),
        (dt.date(2025, 1, 10), 2),
        (dt.date(2025, 1, 20), 3),
    ]
    s2 = ep.sessions.get(number=2)
    ors = Score.objects.for_org(org1.org).get(session=s2, kind="outcome")
    assert ors.items == [Decimal("4.5"), Decimal("5.0"), Decimal("6.0"), Decimal("7.0")]
    assert ors.total == Decimal("22.5")  # the sum of the items
    assert Score.objects.for_org(org1.org).get(session=s2, kind="alliance").total == Decimal("38.0")
    x = Episode.objects.for_org(org1.org).get(label="x")
    assert (x.status, x.closed_on, x.age_group, x.therapist_id) == (
        "closed",
        dt.date(2025, 3, 1),
        "youth",
        org1.therapist_b.pk,
    )
    assert (
        Score.objects.for_org(org1.org).get(session__episode=x, session__number=1).scale.code
        == "ORS"
    )


def test_comma_separated_with_quoted_decimal_comma_and_email(org1: OrgPersonas) -> None:
    org1.therapist_a.email = "Anna@Example.dk"
    org1.therapist_a.save()
    data = (
        b"client_code,therapist,unit,session_date,age_group,srs_total\n"
        b'KI-7,anna@example.dk,ung,2025-03-01,child,"35,5"\n'
    )
    result = run(org1, data)
    assert result.ok, result.errors
    score = Score.objects.for_org(org1.org).get()
    assert (score.scale.code, score.total) == ("CSRS", Decimal("35.5"))


def test_bad_line_7_reports_line_7_and_imports_nothing(org1: OrgPersonas) -> None:
    lines = [*GOOD[:5], "EF-3;alpha-therapist_a;ung;2025-02-01;adult;;;;;;41;;", GOOD[5]]
    result = run(org1, csv(*lines))
    assert not result.ok
    assert [(e.line, e.column) for e in result.errors] == [(7, "ors_total")]
    assert "outside the allowed range" in result.errors[0].message
    assert not Session.objects.for_org(org1.org).exists()
    assert not Client.objects.for_org(org1.org).exists()


def test_every_kind_of_error_is_reported_with_line_and_column(org1: OrgPersonas) -> None:
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    lines = [
        "AB-1;alpha-therapist_a;ung;2025-01-10;adult;;4;5;6;11;;;",  # 2 item range
        "010190-1234;alpha-therapist_a;ung;2025-01-10;adult;;;;;;12;;",  # 3 CPR
        "AB-2;nobody;ung;2025-01-10;adult;;;;;;12;;",  # 4 unknown therapist
        "AB-3;alpha-therapist_a;nope;2025-01-10;adult;;;;;;12;;",  # 5 unknown unit
        "AB-4;alpha-therapist_a;ung;10-01-2025;adult;;;;;;12;;",  # 6 bad date
        f"AB-5;alpha-therapist_a;ung;{future};adult;;;;;;12;;",  # 7 future
        "AB-6;alpha-therapist_a;ung;2025-01-10;adult;;;;;;12;;",  # 8
        "AB-6;alpha-therapist_a;ung;2025-01-10;adult;;;;;;13;;",  # 9 duplicate of 8
        "AB-7;alpha-therapist_a;ung;2025-01-10;adult;;1;1;1;1;5;;",  # 10 sum mismatch
        "AB-8;alpha-therapist_a;rus;2025-01-10;adult;;;;;;12;;",  # 11 not in unit
        "AB-9;alpha-therapist_a;ung;2025-01-10;adult;;1;2;;;;;",  # 12 partial items
        "AB-10;alpha-therapist_a;ung;2025-01-10;elder;;;;;;12,25;;",  # 13 age, decimals
    ]
    result = run(org1, csv(*lines))
    got = {(e.line, e.column) for e in result.errors}
    assert got == {
        (2, "ors_4"),
        (3, "client_code"),
        (4, "therapist"),
        (5, "unit"),
        (6, "session_date"),
        (7, "session_date"),
        (9, "session_date"),
        (10, "ors_total"),
        (11, "therapist"),
        (12, "ors_1"),
        (13, "age_group"),
        (13, "ors_total"),
    }, result.errors
    messages = {(e.line, e.column): e.message for e in result.errors}
    assert "CPR" in messages[(3, "client_code")]
    assert "010190" not in str(messages)  # the CPR-shaped value is not repeated
    assert "line 8" in messages[(9, "session_date")]
    assert "does not match the sum" in messages[(10, "ors_total")]
    assert not Session.objects.for_org(org1.org).exists()


def test_reimport_changes_nothing_and_a_conflict_is_an_error(org1: OrgPersonas) -> None:
    assert run(org1, csv(*GOOD)).ok
    again = run(org1, csv(*GOOD))
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 6)
    assert Session.objects.for_org(org1.org).count() == 6
    assert Episode.objects.for_org(org1.org).count() == 3
    changed = [GOOD[0].replace(";38,0;", ";30,0;"), *GOOD[1:]]
    conflict = run(org1, csv(*changed))
    assert [(e.line, e.column) for e in conflict.errors] == [(2, "session_date")]
    assert Session.objects.for_org(org1.org).count() == 6


def test_new_sessions_continue_an_existing_episode(org1: OrgPersonas) -> None:
    ep = make_episode(org1, code="AB-1", started_on=dt.date(2025, 1, 1))
    record(ep, dt.date(2025, 1, 15), ors="20.0")
    result = run(org1, csv(*GOOD[:3]))
    assert result.ok, result.errors
    assert result.clients_created == 0 and result.episodes_created == 0
    assert list(ep.sessions.order_by("number").values_list("date", "number")) == [
        (dt.date(2025, 1, 3), 1),
        (dt.date(2025, 1, 10), 2),
        (dt.date(2025, 1, 15), 3),
        (dt.date(2025, 1, 20), 4),
    ]


def test_other_organisations_units_and_therapists_are_unknown(
    org1: OrgPersonas, org2: OrgPersonas
) -> None:
    result = run(org2, csv(*GOOD[:1]))
    assert {e.column for e in result.errors} == {"therapist"}
    assert not Session.objects.for_org(org2.org).exists()


def test_missing_column_and_extra_field(org1: OrgPersonas) -> None:
    result = run(org1, b"client_code,therapist,session_date\nAB-1,x,2025-01-01\n")
    assert [(e.line, e.column) for e in result.errors] == [(1, "unit")]
    result = run(
        org1,
        b"client_code,therapist,unit,session_date,ors_total\n"
        b"AB-1,alpha-therapist_a,ung,2025-01-01,12\n"
        b"AB-1,alpha-therapist_a,ung,2025-01-02,12,5\n",
    )
    assert [e.line for e in result.errors] == [3]


def test_blank_lines_keep_line_numbers(org1: OrgPersonas) -> None:
    data = csv(GOOD[0], "", "AB-2;alpha-therapist_a;ung;2025-01-10;adult;;;;;;45;;")
    result = run(org1, data)
    assert [e.line for e in result.errors] == [4]


def test_command(org1: OrgPersonas, tmp_path: Any, capsys: Any) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv(GOOD[0], "AB-2;alpha-therapist_a;ung;2025-01-10;adult;;;;;;45;;"))
    with override("en"), pytest.raises(CommandError):
        call_command("import_sessions", "--org", "alpha", str(bad))
    assert "line 3, ors_total" in capsys.readouterr().err
    good = tmp_path / "good.csv"
    good.write_bytes(csv(*GOOD))
    call_command("import_sessions", "--org", "alpha", str(good))
    assert Session.objects.for_org(org1.org).count() == 6


def test_not_numbers_are_reported(org1: OrgPersonas) -> None:
    lines = [
        "AB-1;alpha-therapist_a;ung;2025-01-10;adult;;;;;;abc;;",
        "AB-2;alpha-therapist_a;ung;2025-01-10;adult;;;;;;inf;;",
        "AB-3;alpha-therapist_a;ung;2025-01-10;adult;;;;;;nan;;",
        "AB-4;alpha-therapist_a;ung;2025-01-10;adult;;;;;;12,5;;",
    ]
    result = run(org1, csv(*lines))
    assert [(e.line, e.column) for e in result.errors] == [
        (2, "ors_total"),
        (3, "ors_total"),
        (4, "ors_total"),
    ]
    assert "not a number" in result.errors[0].message


def test_header_only_and_empty_files(org1: OrgPersonas) -> None:
    # A header without sessions is most likely the wrong file: said, not "0 imported".
    result = run(org1, csv())
    assert [(e.line, e.column) for e in result.errors] == [(1, "")]
    assert not run(org1, b"").ok
    bad = run(org1, b"\xff\xfe" + csv(*GOOD))
    assert [(e.line, e.column) for e in bad.errors] == [(1, "")]
