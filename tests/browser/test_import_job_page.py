"""The import job page's script in real headless Chromium: it polls the job, and when the
job fails it lists every stored error and says how many there are in all."""

from __future__ import annotations

import os
from typing import Any

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import sync_playwright

from tests.browser.test_ipad_entry import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_failed_job_lists_every_stored_error_and_the_count(
    live_server: Any, settings: Any, tmp_path: Any
) -> None:
    from django.db import connections
    from django.urls import reverse

    from measures.importer import MAX_ERRORS
    from measures.models import ImportJob
    from tests.conftest import make_org

    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.MEDIA_ROOT = tmp_path
    org = make_org("alpha")
    job = ImportJob.objects.create(
        organisation=org.org,
        created_by=org.owner,
        original_name="old.csv",
        status=ImportJob.Status.VALIDATING,
        total_lines=2000,
        processed_lines=500,
    )
    base = live_server.url
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(locale="da-DK")
            page.goto(base + "/login/")
            page.fill("#id_username", org.owner.username)
            page.fill("#id_password", "pw")
            page.click("button[type=submit]")
            page.wait_for_load_state()
            page.goto(base + reverse("import_job", kwargs={"pk": job.pk}))
            assert page.locator("#job-errors").is_hidden()
            # The task finishes while the page is open: 1,300 errors, 1,000 stored.
            errors = [
                {"line": i + 2, "column": "ors_total", "message": f"fejl {i}"}
                for i in range(MAX_ERRORS)
            ]
            ImportJob.objects.for_org(org.org).filter(pk=job.pk).update(
                status=ImportJob.Status.FAILED,
                errors=errors,
                result={"errors": MAX_ERRORS + 300},
            )
            page.wait_for_selector("#job-errors:not([hidden])", timeout=15_000)
            assert page.locator("#job-error-rows tr").count() == MAX_ERRORS
            said = page.locator("#job-error-count").inner_text()
            assert "1300" in said and "1000" in said, said
            assert page.locator("#job-error-rows tr").last.inner_text().startswith("1001")
        finally:
            browser.close()
            # The update above ran inside Playwright's event loop, where Django gives the
            # thread a connection of its own (asgiref's context): close it here, or it
            # stays open and the test database cannot be dropped at the end of the run.
            connections.close_all()
