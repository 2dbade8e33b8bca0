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

# Import and export pages (issue 6): system owner only.
_OWNER = ("owner",)


def _import_job(w: object) -> dict[str, int]:
    """An import job of org 1 (made on first use: the World fixture has none)."""
    job = getattr(w, "_import_job", None)
    if job is None:
        from django.core.files.base import ContentFile

        from measures.models import ImportJob

        job = ImportJob(
            organisation=w.org1.org,  # type: ignore[attr-defined]
            created_by=w.org1.owner,  # type: ignore[attr-defined]
            original_name="old.csv",
            status=ImportJob.Status.FAILED,
            errors=[{"line": 7, "column": "ors_total", "message": "x"}],
        )
        job.file.save("old.csv", ContentFile(b"client_code\n"), save=False)
        job.save()
        object.__setattr__(w, "_import_job", job)
    return {"pk": job.pk}


def _upload(w: object) -> dict[str, object]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"file": SimpleUploadedFile("new.csv", b"client_code,therapist,unit,session_date\n")}


ROWS += [
    Row("import_upload", "import of historical data", "read", _OWNER),
    Row(
        "import_upload",
        "import of historical data",
        "create",
        _OWNER,
        method="post",
        data=_upload,
        ok_status=302,
    ),
    Row(
        "import_job",
        "import job (progress, error report)",
        "read",
        _OWNER,
        kwargs=_import_job,
        overrides={"other_org": 403},  # a therapist elsewhere: wrong role before the object
    ),
    Row(
        "import_job_status",
        "import job progress (JSON)",
        "read",
        _OWNER,
        kwargs=_import_job,
        overrides={"other_org": 403},
    ),
    Row("export_sessions", "all sessions as CSV", "export", _OWNER),
]
