"""Permission-matrix rows for the measures app (see datapolicy/matrix.py)."""

from datapolicy.matrix import Row

ROWS: list[Row] = []

# API (issue 6) ---------------------------------------------------------------------
_THERAPISTS = ("therapist_a", "therapist_b")
_A_ONLY = ("therapist_a",)
_HIDDEN = {"therapist_b": 404}


def _today() -> str:
    import datetime as dt

    return dt.date.today().isoformat()


ROWS += [
    Row("api-session-list", "sessions of own episodes", "list", _THERAPISTS, api=True),
    Row(
        "api-session-list",
        "session with ORS/SRS",
        "create",
        _A_ONLY,
        method="post",
        data=lambda w: {
            "episode": w.episode.pk,
            "date": _today(),
            "ors": {"items": ["4,1", "5", "6", "7"]},
            "srs": {"total": "38.5"},
            "confirm_same_date": True,
        },
        ok_status=201,
        overrides={**_HIDDEN, "other_org": 404},
        api=True,
    ),
    Row(
        "api-session-detail",
        "session",
        "read",
        _A_ONLY,
        kwargs=lambda w: {"pk": w.session.pk},
        overrides=_HIDDEN,
        api=True,
    ),
    Row(
        "api-session-detail",
        "session",
        "delete",
        _A_ONLY,
        method="delete",
        kwargs=lambda w: {"pk": w.session.pk},
        ok_status=204,
        overrides=_HIDDEN,
        api=True,
    ),
    Row(
        "api-session-scores",
        "score (add SRS, correct)",
        "update",
        _A_ONLY,
        method="post",
        kwargs=lambda w: {"pk": w.session.pk},
        data=lambda w: {"kind": "srs", "total": "37.0", "replace": True},
        overrides=_HIDDEN,
        api=True,
    ),
    Row("api-alert-list", "own alerts", "list", _THERAPISTS, api=True),
]
