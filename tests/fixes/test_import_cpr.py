"""The import error report never repeats a CPR-shaped value (review finding B)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.translation import override

from datapolicy.validators import looks_like_cpr
from measures.importer import import_sessions
from measures.models import ImportJob, Session

CPR = "010190-1234"
HEADER = "client_code,therapist,unit,session_date,ors_total,episode_closed_on"


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


def _report(org1: Any, text: str) -> tuple[Any, str]:
    with override("en"):
        res = import_sessions(actor=org1.owner, organisation=org1.org, data=text.encode())
    return res, json.dumps([e.as_dict() for e in res.errors])


@pytest.mark.django_db
def test_reviewer_cases_no_cpr_in_the_report(org1: Any) -> None:
    t = org1.therapist_a.username
    text = (
        f"{HEADER}\n"
        f"AB-1,{CPR},ung,2024-01-05,12.0,\n"
        f"AB-2,{t},{CPR},2024-01-05,12.0,\n"
        f"AB-3,{t},ung,2024-01-05,{CPR},\n"
        f"AB-4,{t},ung,2024-01-05,12.0,{CPR}\n"
    )
    res, report = _report(org1, text)
    assert not res.ok
    assert CPR not in report and "0101901234" not in report
    assert not any(looks_like_cpr(str(e.as_dict())) for e in res.errors)
    # Each CPR cell is named as one, by line and column.
    cpr_errors = {(e.line, e.column) for e in res.errors if "CPR" in e.message}
    assert cpr_errors == {
        (2, "therapist"),
        (3, "unit"),
        (4, "ors_total"),
        (5, "episode_closed_on"),
    }
    assert not Session.objects.for_org(org1.org).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "column", ["session_date", "age_group", "episode", "ors_1", "srs_total", "client_code"]
)
def test_every_column_reports_cpr_without_the_value(org1: Any, column: str) -> None:
    t = org1.therapist_a.username
    row = {
        "client_code": "AB-1",
        "therapist": t,
        "unit": "ung",
        "session_date": "2024-01-05",
        "ors_total": "12.0",
    }
    row[column] = "0101901234" if column == "srs_total" else CPR
    if column == "ors_1":
        row["ors_total"] = ""
    cols = list(row)
    res, report = _report(org1, ",".join(cols) + "\n" + ",".join(row.values()) + "\n")
    assert "0101901234" not in report and CPR not in report
    assert any(e.column == column and "CPR" in e.message for e in res.errors)


@pytest.mark.django_db
def test_cpr_shaped_header_is_not_echoed(org1: Any) -> None:
    res, report = _report(org1, f"{HEADER},{CPR}\nAB-1,x,ung,2024-01-05,12,\n")
    assert not res.ok
    assert CPR not in report


@pytest.mark.django_db
def test_cpr_file_name_is_not_stored(
    client: Any, org1: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(org1.owner)
    with django_capture_on_commit_callbacks(execute=False):
        r = client.post(
            reverse("import_upload"),
            {"file": SimpleUploadedFile(f"{CPR}.csv", b"client_code\n")},
        )
    assert r.status_code == 302
    job = ImportJob.objects.for_org(org1.org).get()
    assert job.original_name == "upload.csv"
    assert not looks_like_cpr(job.file.name)
    assert job.file.name.startswith("imports/")


def test_a_random_upload_name_never_reads_as_a_cpr_number(monkeypatch: Any) -> None:
    """About 1 in 1,000 uuid4 hex names holds a CPR-shaped run of digits (this test's
    file name check then failed now and then). Such a draw is replaced."""
    import uuid

    from measures.models import import_upload_path

    cpr_shaped = uuid.UUID(hex="abcdef0101901234abcdefabcdefabcd")  # 010190-1234
    assert looks_like_cpr(cpr_shaped.hex)
    draws = iter([cpr_shaped, uuid.UUID(int=0xABCDEF)])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))
    name = import_upload_path(None, f"{CPR}.csv")
    assert name == f"imports/{uuid.UUID(int=0xABCDEF).hex}.csv"
    assert not looks_like_cpr(name)
