"""The system owner's export job through a real Celery worker process (Redis, PostgreSQL):
the page queues the task with the job id, the worker (its own interpreter, base
settings, the pytest test database) writes the file under MEDIA_ROOT, the page offers
it, and the download equals ``export_sessions``' text. The worker fixture is the
statistics tests' (tests/integration/test_stats_worker.py): a queue of its own."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from measures.exporter import export_sessions
from measures.exports import export_file_expire
from measures.importer import import_sessions
from measures.models import ExportJob
from tests.conftest import make_org
from tests.integration.test_stats_worker import _wait_for, worker  # noqa: F401

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.mark.django_db(transaction=True)
def test_worker_writes_the_export_and_the_page_offers_it(
    worker: str,  # noqa: F811
    client: Any,
    settings: Any,
) -> None:
    # The worker reads MEDIA_ROOT from the base settings (the project's media/): the
    # same directory as this process, where the test settings leave it alone.
    settings.EXPORT_TASK_QUEUE = worker
    personas = make_org("epsilon")
    text = (
        "client_code;therapist;unit;session_date;ors_total;srs_total\n"
        "EP-1;epsilon-therapist_a;ung;2025-01-10;12,5;38\n"
        "EP-2;epsilon-therapist_a;ung;2025-01-11;20;36\n"
    )
    assert import_sessions(actor=personas.owner, organisation=personas.org, data=text.encode()).ok
    client.force_login(personas.owner)
    r = client.post(reverse("export_sessions"))
    job = ExportJob.objects.for_org(personas.org).get()
    assert r["Location"] == reverse("export_job", kwargs={"pk": job.pk})

    def done() -> ExportJob | None:
        job.refresh_from_db()
        return job if job.status in ("done", "failed") else None

    _wait_for(done, "the worker's export")
    try:
        assert job.status == "done" and (job.sessions, job.clients) == (2, 2)
        assert (job.sessions_written, job.sessions_total) == (2, 2)
        page = client.get(reverse("export_job", kwargs={"pk": job.pk})).content.decode()
        url = reverse("export_job_download", kwargs={"pk": job.pk})
        assert f'href="{url}"' in page
        body = b"".join(client.get(url).streaming_content)
        expected = export_sessions(actor=personas.owner, organisation=personas.org)
        assert body == expected.encode("utf-8")
    finally:
        export_file_expire(job)
