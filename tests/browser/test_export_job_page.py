"""The export job page's script in real headless Chromium: it polls the job while the
task writes the file (the progress bar and "n af N sessioner" follow the task's
batches), and when the job is done the page offers the download, whose file the browser
receives as an attachment."""

from __future__ import annotations

import os
from typing import Any

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import expect, sync_playwright

from tests.browser.test_ipad_entry import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_page_shows_the_download_when_the_task_is_done(
    live_server: Any, settings: Any, tmp_path: Any
) -> None:
    from django.db import connections
    from django.urls import reverse

    from measures.models import ExportJob
    from tests.conftest import make_org

    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.MEDIA_ROOT = tmp_path
    org = make_org("alpha")
    job = ExportJob.objects.create(
        organisation=org.org, created_by=org.owner, status=ExportJob.Status.RUNNING
    )
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "x.csv").write_bytes(b"client_code,therapist\r\n")
    base = live_server.url
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(locale="da-DK", accept_downloads=True)
            page.goto(base + "/login/")
            page.fill("#id_username", org.owner.username)
            page.fill("#id_password", "pw")
            page.click("button[type=submit]")
            page.wait_for_load_state()
            page.goto(base + reverse("export_job", kwargs={"pk": job.pk}))
            assert page.locator("#job-download").count() == 0
            # The task's progress after a batch: the bar and "n of N sessions" follow it.
            ExportJob.objects.for_org(org.org).filter(pk=job.pk).update(
                sessions_written=300, sessions_total=1200
            )
            # (expect polls from Python: wait_for_function's string would need
            # 'unsafe-eval', which the page's CSP refuses.)
            expect(page.locator("#job-progress-text")).to_have_text(
                "300 af 1200 sessioner", timeout=15_000
            )
            assert page.locator("#job-progress").evaluate("e => e.value") == 25
            # The task finishes while the page is open.
            from django.utils import timezone

            ExportJob.objects.for_org(org.org).filter(pk=job.pk).update(
                status=ExportJob.Status.DONE,
                file="exports/x.csv",
                sessions=1,
                clients=1,
                finished_at=timezone.now(),
            )
            page.wait_for_selector("#job-download", timeout=15_000)
            with page.expect_download() as info:
                page.click("#job-download")
            download = info.value
            assert download.suggested_filename.startswith("alpha-sessions-")
            with open(download.path(), "rb") as fh:
                assert fh.read() == b"client_code,therapist\r\n"
        finally:
            browser.close()
            # As in test_import_job_page: the connection Django opened inside
            # Playwright's event loop is closed, or the test database cannot be dropped.
            connections.close_all()
