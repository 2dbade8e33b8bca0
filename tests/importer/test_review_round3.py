"""Third review of the import (2026-12-02): re-import after a date correction
(``Session.imported_on`` / ``imported_order``) and conflicts reported only for lines
that add a session.

The first group reproduced defects of the first version (the file's place counted by
id among the sessions imported with that date; each line claimed the session in its
place first); their docstrings describe the defect as found, and each failed before the
fix (``measures.importer._claim_identical``, the stored same-day order). The second
group, "passes: guards", pins tricky cases that worked already."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from clients.models import Episode
from clients.services import episode_close, episode_transfer
from datapolicy.models import Membership, Role
from measures.exporter import export_sessions
from measures.importer import import_sessions
from measures.models import Session
from measures.services import ScoreInput, session_correct, session_delete, session_record
from tests.conftest import OrgPersonas, make_episode, make_org
from tests.importer.reimport import HEADER, csv_of, line, run_import

D = dt.date


def _rows(org: OrgPersonas) -> list[tuple[dt.date, Decimal | None, dt.date | None]]:
    """(date, ORS total, imported_on) of every session, by episode and number."""
    rows = Session.objects.for_org(org.org).order_by("episode_id", "number")
    out = []
    for s in rows.prefetch_related("scores"):
        ors = next((x.total for x in s.scores.all() if x.kind == "outcome"), None)
        out.append((s.date, ors, s.imported_on))
    return out


def _session(org: OrgPersonas, imported_on: dt.date, nth: int = 1) -> Session:
    """The nth session (by id) that the import gave ``imported_on``."""
    return list(Session.objects.for_org(org.org).filter(imported_on=imported_on).order_by("id"))[
        nth - 1
    ]


def _correct(
    org: OrgPersonas,
    session: Session,
    *,
    date: dt.date | None = None,
    ors: str | None = None,
) -> None:
    """Correct a session's date and/or ORS total on the page (the SRS stays)."""
    session = Session.objects.for_org(org.org).get(pk=session.pk)
    old_ors = session.scores.filter(kind="outcome").first()
    srs = session.scores.filter(kind="alliance").first()
    session_correct(
        actor=session.episode.therapist,
        session=session,
        date=date or session.date,
        ors=ScoreInput(total=Decimal(ors) if ors else old_ors.total) if (ors or old_ors) else None,
        srs=ScoreInput(total=srs.total) if srs else None,
        confirm_same_date=True,
    )


# ============================================ defects found by the review (fixed)


def test_identical_scores_chain_of_corrections_adds_nothing(org1: OrgPersonas) -> None:
    """Two imported sessions with the same score (e.g. an SRS of 40 only, or the same
    ORS twice), both moved one week on by corrections (the later one first, so no
    same-day question is ever asked): 01-10 -> 01-17, then 01-03 -> 01-10.

    Re-importing the old file: the line of 01-10 finds the *first* session (now on
    01-10, identical) in its place and claims it; the line of 01-03 then finds its own
    session (imported on 01-03) claimed, is neither skipped nor an error, and is added
    a second time. The session imported on 01-10 (now 01-17) is matched by no line.

    Expected (docs/import.md, "importing the old file again adds nothing"): 0 created,
    2 skipped."""
    old = csv_of(line("2025-01-03", "20"), line("2025-01-10", "20"))
    assert run_import(org1, old).ok
    first, second = _session(org1, D(2025, 1, 3)), _session(org1, D(2025, 1, 10))
    _correct(org1, second, date=D(2025, 1, 17))
    _correct(org1, first, date=D(2025, 1, 10))
    again = run_import(org1, old)
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 2)
    assert len(_rows(org1)) == 2


def test_identical_scores_corrected_onto_the_date_of_another_adds_nothing(
    org1: OrgPersonas,
) -> None:
    """The same with a session corrected onto the date of another (confirmed on the
    page): the 01-03 session (ORS 20) really was a second session on 01-10, where the
    other session also has ORS 20. On 01-10 the corrected one comes first (lower id),
    so the old file's line "01-10, order 1" claims it by place; the line of 01-03
    finds its own session claimed and is added again.

    Expected: 0 created, 2 skipped (each line has its own imported session)."""
    old = csv_of(line("2025-01-03", "20", "38"), line("2025-01-10", "20", "38"))
    assert run_import(org1, old).ok
    _correct(org1, _session(org1, D(2025, 1, 3)), date=D(2025, 1, 10))
    again = run_import(org1, old)
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 2)
    assert len(_rows(org1)) == 2


def test_identical_scores_corrected_in_a_closed_episode_old_file_imports(
    org1: OrgPersonas,
) -> None:
    """The previous case in an episode closed since: the wrongly unmatched line now
    "adds a session" to a closed episode, and the whole (unchanged, already imported)
    file is refused with "The episode is closed in the platform".

    Expected: the old file imports again with 0 created, 2 skipped."""
    old = csv_of(
        "AB-1;alpha-therapist_a;ung;2025-01-03;;20;;",
        "AB-1;alpha-therapist_a;ung;2025-01-10;;20;;",
    )
    assert run_import(org1, old).ok
    first, second = _session(org1, D(2025, 1, 3)), _session(org1, D(2025, 1, 10))
    _correct(org1, second, date=D(2025, 1, 17))
    _correct(org1, first, date=D(2025, 1, 10))
    episode = Episode.objects.for_org(org1.org).get()
    episode_close(actor=org1.therapist_a, episode=episode, closed_on=D(2025, 1, 20))
    again = run_import(org1, old)
    assert again.ok, [e.message for e in again.errors]
    assert (again.sessions_created, again.sessions_skipped) == (0, 2)


def test_origin_session_with_other_scores_on_the_lines_own_date_is_an_error(
    org1: OrgPersonas,
) -> None:
    """Two sessions on 01-10 (orders 1 and 2). On the page the first one's date is
    corrected to 01-08, and the second one's ORS is corrected from 22 to 23.

    Re-importing the old file: line "01-10 order 1" (ORS 20.5) is the moved session
    (skipped, right). Line "01-10 order 2" (ORS 22): nothing is in place 2 of 01-10
    now, and the session the import gave that place is still on 01-10 but with ORS 23.
    The "corrected to ..." error is given only when the origin session's *date* moved,
    and the "different session" error only for a session in the line's current place,
    so the line is silently ADDED: 01-10 now has ORS 23 and a new ORS 22.

    Expected (docs: "other scores -> an error"; "nothing is overwritten", and a
    different session there is an error): an error on line 3, nothing written."""
    old = csv_of(line("2025-01-10", "20.5", "38", "1"), line("2025-01-10", "22", "39", "2"))
    assert run_import(org1, old).ok
    _correct(org1, _session(org1, D(2025, 1, 10), 1), date=D(2025, 1, 8))
    _correct(org1, _session(org1, D(2025, 1, 10), 2), ors="23")
    again = run_import(org1, old)
    assert [(e.line, e.column) for e in again.errors] == [(3, "session_date")], _rows(org1)
    assert len(_rows(org1)) == 2


def test_origin_session_with_other_scores_behind_a_corrected_one_is_an_error(
    org1: OrgPersonas,
) -> None:
    """Variant with a session corrected onto the date of another: sessions of 01-03
    (ORS 12) and 01-10 (ORS 22). The 01-03 one is corrected to 01-10 (confirmed; it
    comes first there, lower id) and the 01-10 one's ORS is corrected to 23.

    Re-importing: line 01-03 is the moved session (skipped). Line 01-10 (ORS 22) finds
    in its place the moved session, claimed by line 01-03, so no "different session"
    error; its own imported session (still on 01-10, ORS 23) differs but did not move,
    so no "corrected" error either: the line is added as a third session.

    Expected: an error on line 3 (its session exists with other scores)."""
    old = csv_of(line("2025-01-03", "12"), line("2025-01-10", "22"))
    assert run_import(org1, old).ok
    _correct(org1, _session(org1, D(2025, 1, 3)), date=D(2025, 1, 10))
    _correct(org1, _session(org1, D(2025, 1, 10)), ors="23")
    again = run_import(org1, old)
    assert [(e.line, e.column) for e in again.errors] == [(3, "session_date")], _rows(org1)
    assert len(_rows(org1)) == 2


def test_page_session_first_then_imported_second_session_corrected(org1: OrgPersonas) -> None:
    """The therapist typed the session of 01-10 (ORS 20) on the page; the old
    system's extract has that session and a second one the same day (order 2, ORS 22).
    The import skips line 1 (identical, in place) and adds line 2 with imported_on
    01-10. The added session's date is then corrected to 01-12.

    Re-importing the same extract: line "01-10 order 2" has nothing in its place, and
    the origin place is counted among sessions *imported* with 01-10 only, where the
    added session is number 1, not 2: no match, and the session is added a second time.

    Expected: 0 created, 2 skipped (the file's same-day order counts every session of
    the date, so the origin order must count the same way, or the file's order must be
    stored)."""
    episode = make_episode(org1, code="AB-1", started_on=D(2025, 1, 1))
    session_record(
        actor=org1.therapist_a,
        episode=episode,
        date=D(2025, 1, 10),
        ors=ScoreInput(total=Decimal("20")),
    )
    extract = csv_of(line("2025-01-10", "20", "", "1"), line("2025-01-10", "22", "", "2"))
    first = run_import(org1, extract)
    assert first.ok, first.errors
    assert (first.sessions_created, first.sessions_skipped) == (1, 1)
    _correct(org1, _session(org1, D(2025, 1, 10)), date=D(2025, 1, 12))
    again = run_import(org1, extract)
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 2), _rows(org1)


def test_first_of_two_same_day_sessions_deleted_second_corrected(org1: OrgPersonas) -> None:
    """Two sessions on 01-10 (ORS 20.5 order 1, ORS 22 order 2). The first is deleted
    in the platform (measures.services.session_delete); the second is corrected to
    01-12.

    Re-importing the old file: the origin place (01-10, order 1) is counted among the
    sessions imported with 01-10 that still exist, so after the deletion it is the
    ORS 22 session, and line 2 (ORS 20.5) gets "This session was imported before, and
    its date has been corrected to 2025-01-12; its scores differ" - about a session
    that is not this line's - and the file is refused. Line 3, which *is* the corrected
    session, finds nothing and would be added.

    Expected: line 3 is skipped (its session, moved to 01-12); line 2, whose session
    was deleted, is added again as any deleted session of a re-imported file is (or at
    worst an error that does not misname another session). Needs the file's same-day
    order stored with imported_on (e.g. Session.imported_order)."""
    old = csv_of(line("2025-01-10", "20.5", "38", "1"), line("2025-01-10", "22", "39", "2"))
    assert run_import(org1, old).ok
    s1, s2 = _session(org1, D(2025, 1, 10), 1), _session(org1, D(2025, 1, 10), 2)
    session_delete(actor=org1.therapist_a, session=s1)
    _correct(org1, s2, date=D(2025, 1, 12))
    again = run_import(org1, old)
    assert again.ok, [(e.line, e.message) for e in again.errors]
    assert (again.sessions_created, again.sessions_skipped) == (1, 1)
    assert [(d, t) for d, t, _i in _rows(org1)] == [
        (D(2025, 1, 10), Decimal("20.5")),
        (D(2025, 1, 12), Decimal("22.0")),
    ]


# ============================================================ passing tricky cases


def test_swap_of_two_dates_with_different_scores(org1: OrgPersonas) -> None:
    """passes: guards a swap. The sessions of 01-03 (ORS 12) and 01-10 (ORS 22) had
    their dates swapped in the platform; each line's place holds the other session
    (different scores), its origin its own: both skipped, no "different session"
    error, nothing added."""
    old = csv_of(line("2025-01-03", "12"), line("2025-01-10", "22"))
    assert run_import(org1, old).ok
    a, b = _session(org1, D(2025, 1, 3)), _session(org1, D(2025, 1, 10))
    _correct(org1, a, date=D(2025, 1, 5))
    _correct(org1, b, date=D(2025, 1, 3))
    _correct(org1, a, date=D(2025, 1, 10))
    again = run_import(org1, old)
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 2)


def test_different_scores_corrected_onto_the_date_of_another(org1: OrgPersonas) -> None:
    """passes: guards a correction onto another session's date with distinct scores:
    01-03 (ORS 12) moved onto 01-10 (ORS 22), where it comes first. Line 01-10 finds
    ORS 12 in its place but its own session at its origin; line 01-03 its moved one.
    The export after the correction (01-10 orders 1 and 2) is matched by place."""
    old = csv_of(line("2025-01-03", "12"), line("2025-01-10", "22"))
    assert run_import(org1, old).ok
    _correct(org1, _session(org1, D(2025, 1, 3)), date=D(2025, 1, 10))
    again = run_import(org1, old)
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 2)
    exported = export_sessions(actor=None, organisation=org1.org)
    assert ",2025-01-10," in exported
    by_export = run_import(org1, exported.encode())
    assert by_export.ok, by_export.errors
    assert (by_export.sessions_created, by_export.sessions_skipped) == (0, 2)


def test_deleted_session_whose_place_is_taken_by_a_corrected_one_comes_back(
    org1: OrgPersonas,
) -> None:
    """passes: guards claims. 01-03 (ORS 12) is corrected onto 01-10, whose own
    session (ORS 22) is deleted. Line 01-03 claims the moved session by its origin, so
    line 01-10 (ORS 22) finds only a claimed session in its place: no error, and the
    deleted session is added again (as a deleted session of a re-imported file is)."""
    old = csv_of(line("2025-01-03", "12"), line("2025-01-10", "22"))
    assert run_import(org1, old).ok
    session_delete(actor=org1.therapist_a, session=_session(org1, D(2025, 1, 10)))
    _correct(org1, _session(org1, D(2025, 1, 3)), date=D(2025, 1, 10))
    again = run_import(org1, old)
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (1, 1)
    assert [(d, t) for d, t, _i in _rows(org1)] == [
        (D(2025, 1, 10), Decimal("12.0")),
        (D(2025, 1, 10), Decimal("22.0")),
    ]
    third = run_import(org1, old)
    assert (third.ok, third.sessions_created, third.sessions_skipped) == (True, 0, 2)


def test_every_session_of_an_episode_deleted_then_reimported(org1: OrgPersonas) -> None:
    """passes: guards a crash. The episode exists with no sessions at all (every one
    deleted): the matching reads an empty frame of existing sessions; the file's
    sessions are added again, with their file dates."""
    old = csv_of(line("2025-01-03", "12"), line("2025-01-10", "22"))
    assert run_import(org1, old).ok
    for s in list(Session.objects.for_org(org1.org)):
        session_delete(actor=org1.therapist_a, session=s)
    again = run_import(org1, old)
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (2, 0)
    assert [i for _d, _t, i in _rows(org1)] == [D(2025, 1, 3), D(2025, 1, 10)]


def test_page_sessions_only_episode_is_matched_by_place(org1: OrgPersonas) -> None:
    """passes: guards a crash. An existing episode whose sessions were all typed on the
    page (imported_on empty on every row): the origin lookup has nothing; an identical
    line is skipped by place, another is added."""
    episode = make_episode(org1, code="AB-1", started_on=D(2025, 1, 1))
    session_record(
        actor=org1.therapist_a,
        episode=episode,
        date=D(2025, 1, 10),
        ors=ScoreInput(total=Decimal("20")),
    )
    result = run_import(org1, csv_of(line("2025-01-10", "20"), line("2025-01-11", "21")))
    assert result.ok, result.errors
    assert (result.sessions_created, result.sessions_skipped) == (1, 1)


def test_correction_closed_episode_transfer_then_old_file(org1: OrgPersonas) -> None:
    """passes: guards both behaviours together. After the import a date is corrected,
    the episode is handed to therapist B and closed. The old file (old therapist,
    with the old system's closing date = the platform's) imports again adding nothing;
    a new line for that episode is refused (closed, and another therapist)."""
    lines = [line("2025-01-03", "12"), line("2025-01-10", "22")]
    header = HEADER + ";episode_closed_on"
    data = ("\n".join([header, *(x + ";2025-01-31" for x in lines)]) + "\n").encode()
    assert run_import(org1, csv_of(*lines)).ok
    _correct(org1, _session(org1, D(2025, 1, 10)), date=D(2025, 1, 12))
    episode = Episode.objects.for_org(org1.org).get()
    episode_transfer(actor=org1.therapist_a, episode=episode, to_therapist=org1.therapist_b)
    episode.refresh_from_db()
    episode_close(actor=org1.therapist_b, episode=episode, closed_on=D(2025, 1, 31))
    again = run_import(org1, data)
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped, again.episodes_closed) == (0, 2, 0)
    more = data.decode() + line("2025-01-20", "25") + ";2025-01-31\n"
    refused = run_import(org1, more.encode())
    assert sorted((e.line, e.column) for e in refused.errors) == [
        (4, "episode"),
        (4, "therapist"),
    ]


def test_skipped_line_after_transfer_in_a_labelled_episode_of_several(
    org1: OrgPersonas,
) -> None:
    """passes: guards the conflicts per line. A client with two labelled episodes;
    episode "b" is handed to therapist B. The old file: its lines of "b" are skipped
    (also the one whose date was corrected since), its lines of "a" are skipped too;
    only a new line of "b" is a therapist conflict."""
    lines = [
        line("2025-01-03", "12", episode="a"),
        line("2025-01-04", "13", episode="b"),
        line("2025-01-11", "14", episode="b"),
    ]
    assert run_import(org1, csv_of(*lines)).ok
    _correct(org1, _session(org1, D(2025, 1, 11)), date=D(2025, 1, 12))
    b = Episode.objects.for_org(org1.org).get(label="b")
    episode_transfer(actor=org1.therapist_a, episode=b, to_therapist=org1.therapist_b)
    again = run_import(org1, csv_of(*lines))
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 3)
    refused = run_import(org1, csv_of(*lines, line("2025-01-20", "15", episode="b")))
    assert [(e.line, e.column) for e in refused.errors] == [(5, "therapist")]


def test_round_trip_after_a_correction_into_a_new_organisation(org1: OrgPersonas) -> None:
    """passes: guards the round trip. Import, correct a date (onto a date with another
    session), export; the export imported into a new organisation records the
    corrected dates as its file dates; a correction there and the same export imported
    again adds nothing; the export imported into the first organisation adds nothing."""
    old = csv_of(
        line("2025-01-03", "12"),
        line("2025-01-10", "20.5", "", "1"),
        line("2025-01-10", "22", "", "2"),
    )
    assert run_import(org1, old).ok
    _correct(org1, _session(org1, D(2025, 1, 3)), date=D(2025, 1, 10))
    text = export_sessions(actor=None, organisation=org1.org)
    other = make_org("gamma")
    Membership.objects.create(
        organisation=other.org, user=org1.therapist_a, unit=other.unit, role=Role.THERAPIST
    )
    into_new = import_sessions(actor=None, organisation=other.org, data=text.encode())
    assert into_new.ok, into_new.errors
    assert (
        sorted(Session.objects.for_org(other.org).values_list("date", "imported_on"))
        == [(D(2025, 1, 10), D(2025, 1, 10))] * 3
    )
    moved = Session.objects.for_org(other.org).order_by("id")[1]
    _correct(other, moved, date=D(2025, 1, 11))
    again_new = import_sessions(actor=None, organisation=other.org, data=text.encode())
    assert again_new.ok, again_new.errors
    assert (again_new.sessions_created, again_new.sessions_skipped) == (0, 3)
    again_old = run_import(org1, text.encode())
    assert again_old.ok, again_old.errors
    assert (again_old.sessions_created, again_old.sessions_skipped) == (0, 3)
    old_again = run_import(org1, old)
    assert old_again.ok, old_again.errors
    assert (old_again.sessions_created, old_again.sessions_skipped) == (0, 3)


def test_a_line_never_claims_a_session_another_line_skipped(org1: OrgPersonas) -> None:
    """passes: guards "a session matched by one line is never matched by another"
    (counts): however the corrections fall, skipped + created equals the lines and
    no session is counted twice (sessions in the platform = distinct matches)."""
    old = csv_of(line("2025-01-03", "12"), line("2025-01-10", "22"), line("2025-01-17", "30"))
    assert run_import(org1, old).ok
    _correct(org1, _session(org1, D(2025, 1, 17)), date=D(2025, 1, 10))
    _correct(org1, _session(org1, D(2025, 1, 3)), date=D(2025, 1, 17))
    again = run_import(org1, old)
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 3)
    assert Session.objects.for_org(org1.org).count() == 3


def test_correction_moves_the_start_and_a_labelled_episode_is_started_on_the_page(
    org1: OrgPersonas,
) -> None:
    """passes: guards labelled vs unlabelled. The first session is corrected to an
    earlier date (the unlabelled episode's start moves back) and the client gets a
    second, labelled episode on the page: the old file's unlabelled lines still match
    the client's only unlabelled episode and add nothing; a labelled line is matched
    to the labelled episode (a new session there)."""
    from clients.services import episode_start

    old = csv_of(line("2025-01-03", "12"), line("2025-01-10", "22"))
    assert run_import(org1, old).ok
    _correct(org1, _session(org1, D(2025, 1, 3)), date=D(2025, 1, 2))
    episode = Episode.objects.for_org(org1.org).get()
    assert episode.started_on == D(2025, 1, 2)
    episode_close(actor=org1.therapist_a, episode=episode, closed_on=D(2025, 1, 10))
    episode_start(
        actor=org1.therapist_a,
        client=episode.client,
        unit=org1.unit,
        started_on=D(2025, 2, 1),
        label="ny",
    )
    again = run_import(org1, old)
    assert again.ok, again.errors
    assert (again.sessions_created, again.sessions_skipped) == (0, 2)
    more = run_import(org1, csv_of(line("2025-02-01", "15", episode="ny")))
    assert more.ok, more.errors
    assert more.sessions_created == 1


def test_report_with_other_errors_names_the_corrected_date(org1: OrgPersonas) -> None:
    """passes: guards the read-only report path (_check_existing_for_report): a file
    with a line error of its own still reports the corrected session with other scores
    ("corrected to <current date>") and skips nothing silently."""
    old = csv_of(line("2025-01-03", "12"), line("2025-01-10", "22"))
    assert run_import(org1, old).ok
    _correct(org1, _session(org1, D(2025, 1, 10)), date=D(2025, 1, 12))
    bad = csv_of(line("2025-01-03", "41"), line("2025-01-10", "23"))
    result = run_import(org1, bad)
    assert [(e.line, e.column) for e in result.errors] == [(2, "ors_total"), (3, "session_date")]
    assert "corrected to 2025-01-12" in result.errors[1].message
