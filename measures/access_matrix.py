"""Permission-matrix rows for the entry screens (see datapolicy/matrix.py).

Only the episode's own therapist enters scores: a colleague gets 404 (the client is not
shown to exist), every other role 403, another organisation 404. The client-mode URLs
carry no object; without an active client mode they send the therapist back (302).
"""

import datetime as dt

from datapolicy.matrix import Row

THERAPISTS = ("therapist_a", "therapist_b")
OWNER = ("therapist_a",)
HIDDEN = {"therapist_b": 404}


def _episode(w):  # type: ignore[no-untyped-def]
    return {"pk": w.episode.pk}


def _today() -> str:
    return dt.date.today().isoformat()


ROWS = [
    Row("session_new", "new session (date)", "read", OWNER, kwargs=_episode, overrides=HIDDEN),
    Row(
        "session_new",
        "client mode for the ORS",
        "start",
        OWNER,
        method="post",
        kwargs=_episode,
        data=lambda w: {"date": _today()},
        ok_status=302,
        overrides=HIDDEN,
    ),
    Row("paper_entry", "scores from paper", "read", OWNER, kwargs=_episode, overrides=HIDDEN),
    Row(
        "paper_entry",
        "session with scores",
        "create",
        OWNER,
        method="post",
        kwargs=_episode,
        data=lambda w: {"date": _today(), "ors_total": "20,5"},
        ok_status=302,
        overrides=HIDDEN,
    ),
    Row(
        "srs_start",
        "client mode for the SRS",
        "start",
        OWNER,
        method="post",
        kwargs=lambda w: {"pk": w.session.pk},
        ok_status=302,
        overrides=HIDDEN,
    ),
    Row(
        "draft_resume",
        "interrupted entry",
        "resume",
        OWNER,
        method="post",
        kwargs=_episode,
        ok_status=302,
        overrides=HIDDEN,
    ),
    Row(
        "draft_discard",
        "interrupted entry",
        "delete",
        OWNER,
        method="post",
        kwargs=_episode,
        ok_status=302,
        overrides=HIDDEN,
    ),
    Row("client_mode_pin", "own client-mode PIN form", "read", THERAPISTS),
    Row(
        "client_mode_pin",
        "own client-mode PIN (hashed)",
        "update",
        THERAPISTS,
        method="post",
        data=lambda w: {"pin": "4711", "pin_again": "4711", "password": "pw"},
        ok_status=302,
    ),
    # Without an active client mode these send the therapist to the caseload.
    Row("client_mode_form", "client-mode form", "read", THERAPISTS, ok_status=302),
    Row(
        "client_mode_form",
        "client-mode form",
        "submit",
        THERAPISTS,
        method="post",
        data=lambda w: {"item1": "5"},
        ok_status=302,
    ),
    Row("client_mode_unlock", "leave client mode", "read", THERAPISTS, ok_status=302),
    # 409: the autosave is refused when the session is not in client mode for it.
    Row(
        "client_mode_draft",
        "draft autosave",
        "update",
        OWNER,
        method="post",
        kwargs=_episode,
        data=lambda w: {"items": "x"},
        ok_status=409,
        overrides=HIDDEN,
    ),
]
