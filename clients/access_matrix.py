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
