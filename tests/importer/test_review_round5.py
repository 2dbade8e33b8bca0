"""Fifth review of the re-import matching (review of 833b953): reproductions. Tests whose
docstring starts with "passes: guards" pin behaviour that is right now; the others failed
on 833b953, describe the defect as found, and pass since the fix (every session of a
file place a candidate; every line with a sound place in the report's matching; score
errors beyond MAX_ERRORS keep their column; lines with score errors choose last)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from clients.models import Episode
from clients.services import episode_transfer
from measures.exporter import export_sessions
from measures.models import Session
from measures.services import ScoreInput, session_correct, session_delete
from tests.conftest import OrgPersonas
from tests.importer.reimport import csv_of, line, run_import

D = dt.date


def _move(org: OrgPersonas, session: Session, to: dt.date) -> None:
    """Correct ``session``'s date on the page (scores kept)."""
    s = Session.objects.for_org(org.org).get(pk=session.pk)
    ors = s.scores.filter(kind="outcome").first()
    srs = s.scores.filter(kind="alliance").first()
    session_correct(
        actor=s.episode.therapist,
        session=s,
        date=to,
        ors=ScoreInput(total=ors.total) if ors else None,
        srs=ScoreInput(total=srs.total) if srs else None,
        confirm_same_date=True,
    )


def _by_ors(org: OrgPersonas, total: str) -> Session:
    return Session.objects.for_org(org.org).get(
        scores__kind="outcome", scores__total=Decimal(total)
    )


def _errs(result: object) -> list[tuple[int, str]]:
    return sorted((e.line, e.column) for e in result.errors)  # type: ignore[attr-defined]


# ===================================================================== real defects


def test_second_session_of_a_shared_file_place_moved_then_same_file_duplicates(
    org1: OrgPersonas,
) -> None:
    """The round-4 state (01-03 ORS 12 corrected to 01-10; the export plus a new line
    01-03 ORS 15 imported, so two sessions hold file place 01-03/1), then the new
    session (ORS 15) is corrected to 01-20. The same file imported again: its 01-03 line
    has no session in its place, and the origin lookup keeps only the *oldest* session
    of the place (ORS 12, claimed by the 01-10 line), so the ORS 15 session is no
    candidate and the line is added again: a silent duplicate (docs: importing the old
    file again adds nothing, also after chains of corrections)."""
    assert run_import(org1, csv_of(line("2025-01-03", "12"))).ok
    _move(org1, _by_ors(org1, "12"), D(2025, 1, 10))
    export_plus = csv_of(line("2025-01-10", "12"), line("2025-01-03", "15"))
    first = run_import(org1, export_plus)
    assert (first.ok, first.sessions_created, first.sessions_skipped) == (True, 1, 1)
    _move(org1, _by_ors(org1, "15"), D(2025, 1, 20))
    again = run_import(org1, export_plus)
    assert (again.ok, again.sessions_created, again.sessions_skipped) == (True, 0, 2), (
        again.sessions_created,
        again.errors,
    )
    assert Session.objects.for_org(org1.org).count() == 2


def test_report_line_with_a_therapist_typo_still_invents_a_different_session_error(
    org1: OrgPersonas,
) -> None:
    """round 4's last scenario (01-03 ORS 12 corrected onto 01-10, whose own session
    ORS 22 was deleted), but line 2's error is a typo in the therapist, not in a score.
    Only score-only lines take part (``rows_with_errors(besides=SCORE_COLUMNS)``), so
    line 2 is left out, nobody claims the moved session, and line 3 gets "A different
    session ... exists already", which disappears once line 2 is fixed. Line 2's
    scores and place are valid, so it could take part (as itself or as a wild line)."""
    old = csv_of(line("2025-01-03", "12"), line("2025-01-10", "22"))
    assert run_import(org1, old).ok
    session_delete(actor=org1.therapist_a, session=_by_ors(org1, "22"))
    _move(org1, _by_ors(org1, "12"), D(2025, 1, 10))
    fixed = run_import(org1, old)
    assert (fixed.ok, fixed.sessions_created) == (True, 1)  # the corrected file imports
    session_delete(actor=org1.therapist_a, session=_by_ors(org1, "22"))
    typo = line("2025-01-03", "12").replace("alpha-therapist_a", "alpha-therapist_x")
    result = run_import(org1, csv_of(typo, line("2025-01-10", "22")))
    assert _errs(result) == [(2, "therapist")], result.errors


def test_report_score_errors_beyond_max_errors_are_left_out_again(org1: OrgPersonas) -> None:
    """The same scenario with the score typo (SRS 41) on line 1003, after 1,000 other
    lines with SRS 41 (new clients). ``_score_check`` spells out the first MAX_ERRORS
    bad lines and only ``flag``s the rest; flagged rows have no column, so
    ``rows_with_errors(besides=SCORE_COLUMNS)`` counts them as bad in every column and
    line 1003 is left out instead of taking part as a wild line: line 2 gets the
    invented "A different session ... exists already" and the count is one too high
    (the docs: the count is complete)."""
    old = csv_of(line("2025-01-03", "12"), line("2025-01-10", "22"))
    assert run_import(org1, old).ok
    session_delete(actor=org1.therapist_a, session=_by_ors(org1, "22"))
    _move(org1, _by_ors(org1, "12"), D(2025, 1, 10))
    filler = [f"X-{i};alpha-therapist_a;ung;2025-01-01;;10;41;" for i in range(1000)]
    data = csv_of(line("2025-01-10", "22"), *filler, line("2025-01-03", "12", "41"))
    result = run_import(org1, data)
    assert result.error_count == 1001
    assert (2, "session_date") not in _errs(result)


def test_report_wild_line_takes_the_session_of_a_line_already_imported(
    org1: OrgPersonas,
) -> None:
    """01-03 (ORS 12) imported and corrected to 01-10; an export made then names it on
    01-10 (therapist A). The user adds a new session 01-03 with a typo (ORS 155, meant
    15); the episode has since been handed to therapist B. The wild 01-03 line counts
    as identical to its origin (the moved session) and, origin first, takes it from the
    01-10 line, which then looks like a new session of B's episode: the report says
    line 2 (already imported) "exists already with another therapist". With the typo
    fixed, line 2 is skipped and the error is on line 3 instead: the report moved an
    error onto a line that has none. Wild lines should only take sessions no other
    line can (lowest priority in the matching)."""
    assert run_import(org1, csv_of(line("2025-01-03", "12"))).ok
    _move(org1, _by_ors(org1, "12"), D(2025, 1, 10))
    episode = Episode.objects.for_org(org1.org).get()
    episode_transfer(actor=org1.therapist_a, episode=episode, to_therapist=org1.therapist_b)
    fixed = run_import(org1, csv_of(line("2025-01-10", "12"), line("2025-01-03", "15")))
    assert _errs(fixed) == [(3, "therapist")]
    typo = run_import(org1, csv_of(line("2025-01-10", "12"), line("2025-01-03", "155")))
    assert _errs(typo) == [(3, "ors_total")], typo.errors


# ================================================================== passing guards


def test_report_every_line_with_score_errors(org1: OrgPersonas) -> None:
    """passes: guards the early return: an existing client, every line with a score
    error (bad number, too precise, out of range, three items): only those errors."""
    assert run_import(org1, csv_of(line("2025-01-03", "12"), line("2025-01-10", "22"))).ok
    data = csv_of(
        line("2025-01-03", "x"),
        line("2025-01-10", "12.34"),
        line("2025-01-17", "41"),
        line("2025-01-24", "", "NaN"),
    )
    result = run_import(org1, data)
    assert _errs(result) == [
        (2, "ors_total"),
        (3, "ors_total"),
        (4, "ors_total"),
        (5, "srs_total"),
    ]


def test_report_wild_lines_with_nan_scores_and_mixed_errors(org1: OrgPersonas) -> None:
    """passes: guards wild lines whose scores parse to nothing (NaN, inf, 1e999), a line
    with errors in a score and another column (left out), next to a clean line that
    conflicts (episode handed to another therapist) and a wild line of a new client."""
    assert run_import(org1, csv_of(line("2025-01-03", "12"), line("2025-01-10", "22"))).ok
    episode = Episode.objects.for_org(org1.org).get()
    episode_transfer(actor=org1.therapist_a, episode=episode, to_therapist=org1.therapist_b)
    data = csv_of(
        line("2025-01-03", "nan"),  # wild, here identical-or-not
        line("2025-01-10", "inf", "1e999"),  # wild
        line("2025-01-17", "30"),  # clean, new -> therapist conflict
        line("2025-01-24", "41").replace(";ung;", ";rus;"),  # score + unit: left out
        "NEW-1;alpha-therapist_a;ung;2025-01-03;;41;;",  # wild, new client
    )
    result = run_import(org1, data)
    assert (4, "therapist") in _errs(result)
    assert (2, "session_date") not in _errs(result)
    assert (3, "session_date") not in _errs(result)
    assert result.error_count == len(result.errors)


def test_report_drop_rows_keeps_other_lines_errors_that_name_a_wild_line(
    org1: OrgPersonas,
) -> None:
    """passes: guards ``drop_rows`` indexing. The client's only (unlabelled) episode is
    named once by "" and once by its start date: two lines of one session. The first
    (wild) line's findings are dropped, the second (clean) keeps "Duplicate session:
    line 2 ...", with the wild line's number; a third wild line's own conflict goes."""
    assert run_import(org1, csv_of(line("2025-01-03", "12"))).ok
    data = csv_of(
        line("2025-01-10", "41"),
        line("2025-01-10", "22", episode="2025-01-03"),
        line("2025-01-17", "41", episode="2025-01-03"),
    )
    result = run_import(org1, data)
    assert _errs(result) == [(2, "ors_total"), (3, "session_date"), (4, "ors_total")]
    dup = next(e for e in result.errors if e.column == "session_date")
    assert "line 2" in dup.message


def test_plain_export_after_a_swap_of_identical_sessions_adds_nothing(
    org1: OrgPersonas,
) -> None:
    """passes: guards the origin preference against an export: three sessions with
    identical scores rotated (01-03 -> 01-10 -> 01-17 -> 01-03), so every export line's
    origin is another line's session; the export imports with nothing added."""
    lines = [line(d, "20") for d in ("2025-01-03", "2025-01-10", "2025-01-17")]
    assert run_import(org1, csv_of(*lines)).ok
    ids = list(Session.objects.for_org(org1.org).order_by("date").values_list("pk", flat=True))
    s = {pk: Session.objects.for_org(org1.org).get(pk=pk) for pk in ids}
    _move(org1, s[ids[2]], D(2025, 1, 24))
    _move(org1, s[ids[1]], D(2025, 1, 17))
    _move(org1, s[ids[0]], D(2025, 1, 10))
    _move(org1, s[ids[2]], D(2025, 1, 3))
    exported = export_sessions(actor=None, organisation=org1.org)
    again = run_import(org1, exported.encode())
    assert (again.ok, again.sessions_created, again.sessions_skipped) == (True, 0, 3)
    old = run_import(org1, csv_of(*lines))
    assert (old.ok, old.sessions_created, old.sessions_skipped) == (True, 0, 3)
