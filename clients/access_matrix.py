"""Permission-matrix rows for the clients app's pages (see datapolicy/matrix.py).

Client-level pages of therapist A's episode: a colleague (therapist B) and a unit leader
without a supervision grant get 404 (the client's existence does not leak); roles that
never see client data get 403; another organisation gets 404.
"""

import datetime as dt

from datapolicy.matrix import Row

THERAPISTS = ("therapist_a", "therapist_b")
HIDDEN = {"therapist_b": 404}
HIDDEN_FROM_LEADER = {"therapist_b": 404, "leader": 404}


def _episode(w):  # type: ignore[no-untyped-def]
    return {"pk": w.episode.pk}


ROWS = [
    Row("caseload", "own caseload", "read", THERAPISTS),
    Row(
        "caseload",
        "own caseload, search by code (POST, then redirect: codes never in URLs)",
        "search",
        THERAPISTS,
        method="post",
        data=lambda w: {"q": "AL-47", "status": "all"},
        ok_status=302,
    ),
    Row("client_new", "new client form", "read", THERAPISTS),
    Row(
        "client_new",
        "client + first episode",
        "create",
        THERAPISTS,
        method="post",
        data=lambda w: {
            "code": "NY-2001",
            "age_group": "adult",
            "started_on": dt.date.today().isoformat(),
        },
        ok_status=302,
    ),
    Row(
        "episode_detail",
        "client episode, graph, sessions",
        "read",
        ("therapist_a", "leader"),
        kwargs=_episode,
        overrides=HIDDEN_FROM_LEADER,
        fields="code, age group, sessions, scores, alerts, graph",
    ),
    Row(
        "episode_detail",
        "client episode shared for supervision (live grant to the leader)",
        "read",
        ("therapist_a", "leader"),
        kwargs=lambda w: {"pk": w.grant_episode.pk},
        overrides={"therapist_b": 404},
        fields="as above, for the grant holder while the grant is live",
    ),
    Row(
        "episode_close",
        "episode",
        "close",
        ("therapist_a",),
        method="post",
        kwargs=_episode,
        data=lambda w: {"closed_on": dt.date.today().isoformat()},
        ok_status=302,
        overrides=HIDDEN,
    ),
    Row(
        "episode_reopen",
        "episode (undo a closing)",
        "update",
        ("therapist_a",),
        method="post",
        kwargs=_episode,
        ok_status=302,
        overrides=HIDDEN,
    ),
    Row(
        "episode_restart",
        "episode (new for a closed one)",
        "create",
        ("therapist_a",),
        method="post",
        kwargs=_episode,
        data=lambda w: {"started_on": dt.date.today().isoformat()},
        ok_status=302,
        overrides=HIDDEN,
    ),
    Row(
        "episode_transfer",
        "episode transfer form",
        "read",
        ("therapist_a",),
        kwargs=_episode,
        overrides=HIDDEN,
    ),
    Row(
        "episode_transfer",
        "episode",
        "transfer",
        ("therapist_a",),
        method="post",
        kwargs=_episode,
        data=lambda w: {"to_therapist": w.org1.therapist_b.pk},
        ok_status=302,
        overrides=HIDDEN,
    ),
]

# API (issue 6) ---------------------------------------------------------------------
# Client-level endpoints: therapists only; a colleague's client/episode is 404.
_A_ONLY = ("therapist_a",)
_HIDDEN = {"therapist_b": 404}


def _today() -> str:
    import datetime as dt

    return dt.date.today().isoformat()


ROWS += [
    Row("api-client-list", "own clients", "list", THERAPISTS, api=True),
    Row(
        "api-client-list",
        "client + first episode",
        "create",
        THERAPISTS,
        method="post",
        data=lambda w: {"code": "NY-2001", "unit": w.org1.unit.pk},
        ok_status=201,
        overrides={"other_org": 400},  # org 1's unit is unknown in org 2
        api=True,
    ),
    Row(
        "api-client-search",
        "own clients by code (in the body)",
        "list",
        THERAPISTS,
        method="post",
        data=lambda w: {"code": "AL-47"},
        api=True,
    ),
    Row(
        "api-client-detail",
        "client",
        "read",
        _A_ONLY,
        kwargs=lambda w: {"pk": w.episode.client_id},
        overrides=_HIDDEN,
        api=True,
    ),
    Row("api-episode-list", "own episodes", "list", THERAPISTS, api=True),
    Row(
        "api-episode-list",
        "episode",
        "start",
        _A_ONLY,
        method="post",
        data=lambda w: {"client": w.episode.client_id, "unit": w.org1.unit.pk, "label": "2"},
        ok_status=201,
        overrides={**_HIDDEN, "other_org": 404},
        api=True,
    ),
    Row(
        "api-episode-detail",
        "episode",
        "read",
        _A_ONLY,
        kwargs=lambda w: {"pk": w.episode.pk},
        overrides=HIDDEN_FROM_LEADER,
        api=True,
    ),
    Row(
        "api-episode-detail",
        "episode shared for supervision (live grant to the leader), as the page",
        "read",
        ("therapist_a", "leader"),
        kwargs=lambda w: {"pk": w.grant_episode.pk},
        overrides=_HIDDEN,
        api=True,
    ),
    Row(
        "api-episode-close",
        "episode",
        "close",
        _A_ONLY,
        method="post",
        kwargs=lambda w: {"pk": w.episode.pk},
        data=lambda w: {"closed_on": _today()},
        overrides=_HIDDEN,
        api=True,
    ),
    Row(
        "api-episode-transfer",
        "episode",
        "transfer",
        _A_ONLY,
        method="post",
        kwargs=lambda w: {"pk": w.episode.pk},
        data=lambda w: {"therapist": w.org1.therapist_b.pk},
        overrides=_HIDDEN,
        api=True,
    ),
    Row(
        "episode_handover",
        "open episodes of colleagues who have left (staff names and counts, no client codes)",
        "read",
        ("leader", "owner"),
        fields="unit, therapist who has left, number of open episodes",
    ),
    Row(
        "episode_handover",
        "hand over a departed colleague's open episodes to one or more colleagues "
        "(therapist B still works there: refused with a message)",
        "transfer",
        ("leader", "owner"),
        method="post",
        data=lambda w: {
            "unit": w.episode.unit_id,
            "from_therapist": w.org1.therapist_b.pk,
            "to_therapist": w.org1.therapist_a.pk,
        },
        ok_status=302,
    ),
]
