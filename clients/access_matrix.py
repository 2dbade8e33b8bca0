"""Permission-matrix rows for the clients app's pages (see datapolicy/matrix.py)."""

from datapolicy.matrix import Row

THERAPISTS = ("therapist_a", "therapist_b")

ROWS = [
    Row("caseload", "own caseload", "read", THERAPISTS),
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
]
