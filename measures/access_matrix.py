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
        "session_edit",
        "saved session (correction form)",
        "read",
        OWNER,
        kwargs=lambda w: {"pk": w.session.pk},
        overrides=HIDDEN,
    ),
    Row(
        "session_edit",
        "saved session: date and scores",
        "update",
        OWNER,
        method="post",
        kwargs=lambda w: {"pk": w.session.pk},
        data=lambda w: {"date": w.session.date.isoformat(), "ors_total": "19,5"},
        ok_status=302,
        overrides=HIDDEN,
    ),
    Row(
        "session_delete",
        "saved session (confirmation)",
        "read",
        OWNER,
        kwargs=lambda w: {"pk": w.session.pk},
        overrides=HIDDEN,
    ),
    Row(
        "session_delete",
        "saved session",
        "delete",
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

# API (issue 6) ---------------------------------------------------------------------
_THERAPISTS = ("therapist_a", "therapist_b")
_A_ONLY = ("therapist_a",)
_HIDDEN = {"therapist_b": 404}


ROWS += [
    Row(
        "api-session-list",
        "sessions of own episodes (a unit leader: of episodes shared with them)",
        "list",
        (*_THERAPISTS, "leader"),
        api=True,
    ),
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
        overrides={**_HIDDEN, "leader": 404},
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
        "api-session-detail",
        "session (correct date/scores)",
        "update",
        _A_ONLY,
        method="patch",
        kwargs=lambda w: {"pk": w.session.pk},
        data=lambda w: {"ors": {"total": "21,5"}},
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


def _export_job(w: object) -> dict[str, int]:
    """A finished export job of org 1 with its file (made on first use)."""
    job = getattr(w, "_export_job", None)
    if job is None:
        from django.core.files.base import ContentFile
        from django.utils import timezone

        from measures.models import ExportJob

        job = ExportJob(
            organisation=w.org1.org,  # type: ignore[attr-defined]
            created_by=w.org1.owner,  # type: ignore[attr-defined]
            status=ExportJob.Status.DONE,
            finished_at=timezone.now(),
        )
        job.file.save("export.csv", ContentFile(b"client_code\r\n"), save=False)
        job.save()
        object.__setattr__(w, "_export_job", job)
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
    # The export is a job (measures.exports): GET leads to the import page's button.
    Row("export_sessions", "export of all sessions (button)", "read", _OWNER, ok_status=302),
    Row(
        "export_sessions",
        "export job: all sessions as CSV",
        "create",
        _OWNER,
        method="post",
        ok_status=302,
    ),
    Row(
        "export_job",
        "export job (status, download link)",
        "read",
        _OWNER,
        kwargs=_export_job,
        overrides={"other_org": 403},  # a therapist elsewhere: wrong role before the object
    ),
    Row(
        "export_job_status",
        "export job status (JSON)",
        "read",
        _OWNER,
        kwargs=_export_job,
        overrides={"other_org": 403},
    ),
    Row(
        "export_job_download",
        "all sessions as CSV (the export job's file; logged)",
        "export",
        _OWNER,
        kwargs=_export_job,
        overrides={"other_org": 403},
    ),
]
