"""Importing a file again after a session's date was corrected in the platform: the
session is recognised by the date the import gave it (``Session.imported_on``), so it
is not added a second time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.models import Client
from clients.services import episode_transfer
from measures.exporter import export_sessions
from measures.importer import _claim_identical
from measures.models import Session
from measures.services import ScoreInput, session_correct, session_record
from tests.conftest import OrgPersonas
from tests.importer.reimport import csv_of, run_import

D = dt.date
LINES = [
    "AB-1;alpha-therapist_a;ung;2025-01-03;;12;;",
    "AB-1;alpha-therapist_a;ung;2025-01-10;;20,5;38;1",
    "AB-1;alpha-therapist_a;ung;2025-01-10;;22;39;2",  # a second session that day
    "AB-1;alpha-therapist_a;ung;2025-01-20;;25;39;",
]


def _sessions(org: OrgPersonas) -> list[tuple[dt.date, Decimal, dt.date | None]]:
    rows = Session.objects.for_org(org.org).order_by("number")
    return [
        (s.date, s.scores.get(kind="outcome").total, s.imported_on)
        for s in rows.prefetch_related("scores")
    ]


def _correct_date(org: OrgPersonas, ors_total: str, new_date: dt.date) -> None:
    session = Session.objects.for_org(org.org).get(scores__kind="outcome", scores__total=ors_total)
    srs = session.scores.filter(kind="alliance").first()
    session_correct(
        actor=org.therapist_a,
        session=session,
        date=new_date,
        ors=ScoreInput(total=Decimal(ors_total)),
        srs=ScoreInput(total=srs.total) if srs else None,
    )


def test_import_records_the_files_date(org1: OrgPersonas) -> None:
    assert run_import(org1, csv_of(*LINES)).ok
    assert [(d, i) for d, _t, i in _sessions(org1)] == [
        (D(2025, 1, 3), D(2025, 1, 3)),
        (D(2025, 1, 10), D(2025, 1, 10)),
        (D(2025, 1, 10), D(2025, 1, 10)),
        (D(2025, 1, 20), D(2025, 1, 20)),
    ]


def test_reimport_after_a_date_correction_adds_nothing(org1: OrgPersonas) -> None:
    assert run_import(org1, csv_of(*LINES)).ok
    # The second session of 2025-01-10 really took place on the 12th.
    _correct_date(org1, "22.0", D(2025, 1, 12))
    again = run_import(org1, csv_of(*LINES))
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 4)
    assert _sessions(org1) == [
        (D(2025, 1, 3), Decimal("12.0"), D(2025, 1, 3)),
        (D(2025, 1, 10), Decimal("20.5"), D(2025, 1, 10)),
        (D(2025, 1, 12), Decimal("22.0"), D(2025, 1, 10)),
        (D(2025, 1, 20), Decimal("25.0"), D(2025, 1, 20)),
    ]


def test_the_first_of_two_same_day_sessions_corrected(org1: OrgPersonas) -> None:
    assert run_import(org1, csv_of(*LINES)).ok
    _correct_date(org1, "20.5", D(2025, 1, 8))
    # In the old file's place of the first session of the 10th (order 1) is now the
    # second one, with other scores: the line is the moved session, not a conflict.
    again = run_import(org1, csv_of(*LINES))
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 4)
    # An export now names the second session the only one of the 10th (order 1).
    exported = export_sessions(actor=None, organisation=org1.org)
    assert run_import(org1, exported.encode()).sessions_skipped == 4
    assert [(d, t) for d, t, _i in _sessions(org1)] == [
        (D(2025, 1, 3), Decimal("12.0")),
        (D(2025, 1, 8), Decimal("20.5")),
        (D(2025, 1, 10), Decimal("22.0")),
        (D(2025, 1, 20), Decimal("25.0")),
    ]


def test_a_corrected_session_with_other_scores_in_the_file_is_an_error(
    org1: OrgPersonas,
) -> None:
    assert run_import(org1, csv_of(*LINES)).ok
    _correct_date(org1, "25.0", D(2025, 1, 21))
    changed = [*LINES[:3], LINES[3].replace(";25;", ";26;")]
    result = run_import(org1, csv_of(*changed))
    assert [(e.line, e.column) for e in result.errors] == [(5, "session_date")]
    assert "corrected to 2025-01-21" in result.errors[0].message
    assert len(_sessions(org1)) == 4


def test_an_export_after_the_correction_imports_again_into_the_same_organisation(
    org1: OrgPersonas,
) -> None:
    assert run_import(org1, csv_of(*LINES)).ok
    _correct_date(org1, "25.0", D(2025, 1, 21))
    exported = export_sessions(actor=None, organisation=org1.org)
    again = run_import(org1, exported.encode())
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 4)


def test_sessions_entered_in_the_platform_are_not_matched_by_another_date(
    org1: OrgPersonas,
) -> None:
    """Only imported sessions carry a file date: a session typed on the page on the 11th
    is not the file's session of the 10th."""
    assert run_import(org1, csv_of(LINES[0])).ok
    episode = Client.objects.for_org(org1.org).get(code="AB-1").episodes.get()
    session_record(
        actor=org1.therapist_a,
        episode=episode,
        date=D(2025, 1, 11),
        ors=ScoreInput(total=Decimal("20.5")),
        srs=ScoreInput(total=Decimal("38")),
    )
    assert Session.objects.for_org(org1.org).get(date=D(2025, 1, 11)).imported_on is None
    result = run_import(org1, csv_of(*LINES[:2]))
    assert result.ok, result.errors
    assert (result.sessions_created, result.sessions_skipped) == (1, 1)


# ------------------------------------------- an episode handed over after the import


def test_reimport_after_a_transfer_skips_and_refuses_only_new_sessions(
    org1: OrgPersonas,
) -> None:
    """A cumulative extract from the old system, imported again after the episode was
    handed to a colleague in the platform: the sessions imported already are skipped;
    a new session under the old therapist is still an error (whose episode is it?)."""
    assert run_import(org1, csv_of(*LINES)).ok
    episode = Client.objects.for_org(org1.org).get(code="AB-1").episodes.get()
    episode_transfer(actor=org1.therapist_a, episode=episode, to_therapist=org1.therapist_b)
    again = run_import(org1, csv_of(*LINES))
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 4)
    extended = run_import(org1, csv_of(*LINES, "AB-1;alpha-therapist_a;ung;2025-02-01;;27;39;"))
    assert [(e.line, e.column) for e in extended.errors] == [(6, "therapist")]
    assert "another therapist" in extended.errors[0].message
    assert len(_sessions(org1)) == 4


# ------------------------------------------------ which session each line is (pure)

NAN = float("nan")


def _claim(
    here: list[float],
    origin: list[float],
    same_here: list[bool],
    same_origin: list[bool],
    *,
    more: dict[int, list[float]] | None = None,
    last: list[bool] | None = None,
) -> list[int | None]:
    out = _claim_identical(
        np.array(here, dtype=float),
        np.array(origin, dtype=float),
        np.array(same_here),
        np.array(same_origin),
        more=more,
        last=None if last is None else np.array(last),
    )
    return [None if np.isnan(x) else int(x) for x in out]


def test_claim_isolated_lines_and_different_scores() -> None:
    # line 0: both candidates session 1; line 1: only its place (2); line 2: only the
    # session imported from it (3); line 3: candidates with other scores: none.
    assert _claim(
        [1, 2, NAN, 4], [1, NAN, 3, 5], [True, True, False, False], [True, False, True, False]
    ) == [1, 2, 3, None]


def test_claim_a_chain_of_corrections_matches_every_line() -> None:
    """Session 1 was imported from line 0 and moved into line 1's place; session 2,
    imported from line 1, moved elsewhere. Place first would give line 1 session 1 and
    leave line 0 with nothing (the old defect: a duplicate)."""
    assert _claim([NAN, 1], [1, 2], [False, True], [True, True]) == [1, 2]


def test_claim_prefers_the_origin_when_either_is_as_good() -> None:
    # One line, two identical candidates: the session imported from the line's place
    # (test_an_old_extract_naming_a_moved_session_and_a_new_one_on_its_date shows why).
    assert _claim([1], [2], [True], [True]) == [2]
    # A cycle: two sessions swapped dates; both assignments match both lines.
    assert _claim([1, 2], [2, 1], [True, True], [True, True]) == [2, 1]


def test_an_old_extract_naming_a_moved_session_and_a_new_one_on_its_date(
    org1: OrgPersonas,
) -> None:
    """The old system's first extract has 01-03 (ORS 20); the platform corrects it to
    01-10. Its next extract has 01-03 (ORS 20) again and a new session on 01-10 with the
    same ORS. The 01-03 line is the moved session (imported from there); the 01-10 line
    is the new one. (Giving the moved session to the 01-10 line, its place now, would
    add the old 01-03 session a second time.)"""
    first = csv_of("AB-1;alpha-therapist_a;ung;2025-01-03;;20;;")
    assert run_import(org1, first).ok
    _correct_date(org1, "20.0", D(2025, 1, 10))
    extract = csv_of(
        "AB-1;alpha-therapist_a;ung;2025-01-03;;20;;",
        "AB-1;alpha-therapist_a;ung;2025-01-10;;20;;",
    )
    result = run_import(org1, extract)
    assert (result.ok, result.sessions_created, result.sessions_skipped) == (True, 1, 1)
    assert [(d, i) for d, _t, i in _sessions(org1)] == [
        (D(2025, 1, 10), D(2025, 1, 3)),
        (D(2025, 1, 10), D(2025, 1, 10)),
    ]
    assert run_import(org1, extract).sessions_skipped == 2


def _max_matching_size(edges: dict[int, list[int]]) -> int:
    best = 0

    def go(lines: list[int], used: frozenset[int], size: int) -> None:
        nonlocal best
        best = max(best, size)
        if not lines:
            return
        first, rest = lines[0], lines[1:]
        go(rest, used, size)
        for s in edges[first]:
            if s not in used:
                go(rest, used | {s}, size + 1)

    go(sorted(edges), frozenset(), 0)
    return best


def test_claim_further_origins_of_a_place_held_twice() -> None:
    """Line 0's place was the origin of sessions 1 and 3 (a line was added there after
    session 1 had moved); session 1 goes to line 1 (its place), so line 0 is session 3."""
    assert _claim([NAN, 1], [1, NAN], [False, True], [True, False], more={0: [3.0]}) == [3, 1]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=7).flatmap(
        lambda n: st.tuples(
            st.permutations(list(range(n))),
            st.permutations(list(range(n))),
            st.lists(st.booleans(), min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n, max_size=n),
        )
    )
)
def test_claim_is_a_maximum_matching(case: Any) -> None:
    """Any graph the importer can meet (each session the place of one line at most and
    the origin of one line at most): every line gets one of its identical candidates or
    none, no session twice, and as many lines as a brute-force search finds; the lines
    chosen ``last`` (the report's lines with score errors) never cost another line its
    session: the others are matched as many as they would be alone."""
    here_p, origin_p, has_here, has_origin, same_here, same_origin, last = case
    here = [float(s) if h else NAN for s, h in zip(here_p, has_here, strict=True)]
    origin = [float(s) if h else NAN for s, h in zip(origin_p, has_origin, strict=True)]
    got = _claim(here, origin, same_here, same_origin, last=last)
    edges = {
        line: sorted(
            {
                int(c)
                for c, same in ((here[line], same_here[line]), (origin[line], same_origin[line]))
                if same and c == c
            }
        )
        for line in range(len(here))
    }
    assert all(s is None or s in edges[line] for line, s in enumerate(got))
    claimed = [s for s in got if s is not None]
    assert len(claimed) == len(set(claimed))
    assert len(claimed) == _max_matching_size(edges)
    first = {line: cands for line, cands in edges.items() if not last[line]}
    assert sum(got[line] is not None for line in first) == _max_matching_size(first)
