"""Every kind of page, as the persona who sees it: one list that the browser tests share.

``test_csp.py`` requires that no page breaks the Content-Security-Policy,
``test_accessibility.py`` that no page has an axe (WCAG 2.1 A/AA) violation, a wrong
``<html lang>`` or a missing title. Both walk :func:`tour` so that a page added here is
checked by both; a new kind of page belongs here.

A *leg* is one login (or none) and the pages that persona visits in order; a *stop* is
one page. Most stops are a GET of a path; a few pages are only reached by a form (the
client's form after "hand the iPad to the client", the lock-out page after failed
logins): their stop names the page to start from and the steps that lead on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Browser, Page, Response

# What a script draws (plotly's SVG), to wait for before a page is checked.
GRAPH = "#graph .main-svg"
FIGURE = "[data-figure] .main-svg"


@dataclass(frozen=True)
class Stop:
    """One page: ``path`` is fetched; ``steps`` (fill/click) then lead on to the page
    that is checked (``arrive``: its path), e.g. a page shown only after a POST.
    ``language``: the page is written in this language whatever the user chose."""

    name: str
    path: str
    status: int = 200
    wait_for: str | None = None
    steps: tuple[tuple[str, str, str], ...] = ()
    arrive: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Leg:
    """One persona (``None``: not logged in) and the pages they visit, in order."""

    persona: str | None
    user: Any
    stops: tuple[Stop, ...]


@dataclass
class Scene:
    """The data the tour's pages show: an organisation's personas with a client and
    its sessions, a share, a consent, a report, an import job, a platform operator and
    a user of two organisations."""

    org: Any
    episode: Any
    session: Any
    report: Any
    import_job: Any
    export_job: Any
    operator: Any
    two_orgs: Any
    reset_path: str


def make_scene() -> Scene:
    """Create the tour's data (in the test's database)."""
    from django.contrib.auth.tokens import default_token_generator
    from django.utils import timezone
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from datapolicy.models import Membership, Role, User
    from datapolicy.reports import period_choices, report_create
    from datapolicy.services import consent_record, grant_create
    from measures.models import ExportJob, ImportJob
    from tests.conftest import add_therapist, make_episode, make_org, record

    org = make_org("alpha")
    other = make_org("beta")
    # The unit dashboard shows figures from three therapists on (anonymisation).
    colleague = add_therapist(org, "therapist_c")
    episode = make_episode(org, code="CS-1001")
    today = dt.date.today()
    session = None
    for weeks, ors, srs in [(4, "14.0", "33.0"), (3, "17.5", "36.0"), (2, "21.0", "38.0")]:
        session = record(episode, today - dt.timedelta(weeks=weeks), ors=ors, srs=srs)
    # Colleagues' clients: with three therapists the dashboards show their figures.
    for n, therapist in enumerate([org.therapist_b, colleague]):
        other_episode = make_episode(org, therapist=therapist, code=f"CS-200{n}")
        for weeks, ors, srs in [(4, "15.0", "34.0"), (2, "19.5", "37.0")]:
            record(other_episode, today - dt.timedelta(weeks=weeks), ors=ors, srs=srs)
    # A colleague who has left with an open episode (the handover page's row and form).
    departed = add_therapist(org, "therapist_d")
    make_episode(org, therapist=departed, code="CS-3001")
    departed.is_active = False
    departed.save(update_fields=["is_active"])
    now = timezone.now()
    # Therapist A shares own figures with the leader (the leader's therapist page).
    grant_create(
        actor=org.therapist_a,
        organisation=org.org,
        kind="own_figures",
        grantee=org.leader,
        purpose="Supervision",
        starts_at=now,
        expires_at=now + dt.timedelta(days=30),
    )
    consent_record(
        actor=org.therapist_a,
        organisation=org.org,
        client=episode.client,
        purpose="Samarbejde med skolen",
        given_on=today,
    )
    report = report_create(
        actor=org.analyst,
        organisation=org.org,
        title="Kvartalsrapport",
        selection={
            "scope": "org",
            "unit_id": None,
            "period": period_choices(today)[0][0],
            "age_group": "",
        },
    )
    job = ImportJob.objects.create(
        organisation=org.org,
        created_by=org.owner,
        original_name="historik.csv",
        status=ImportJob.Status.FAILED,
        total_lines=3,
        processed_lines=3,
        errors=[{"line": 2, "column": "ors_total", "message": "Ugyldig score"}],
        result={"errors": 1},
    )
    # An export that has not run (no worker in the tour): the page polls its status.
    export = ExportJob.objects.create(organisation=org.org, created_by=org.owner)
    operator = User.objects.create_user(
        username="operator", password="pw", is_platform_operator=True
    )
    two = User.objects.create_user(username="two-orgs", password="pw", first_name="To")
    Membership.objects.create(organisation=org.org, user=two, unit=None, role=Role.DP_ADMIN)
    Membership.objects.create(organisation=other.org, user=two, unit=None, role=Role.DP_ADMIN)
    uid = urlsafe_base64_encode(force_bytes(org.therapist_b.pk))
    token = default_token_generator.make_token(org.therapist_b)
    return Scene(
        org=org,
        episode=episode,
        session=session,
        report=report,
        import_job=job,
        export_job=export,
        operator=operator,
        two_orgs=two,
        reset_path=f"/password/reset/{uid}/{token}/",
    )


def tour(scene: Scene) -> list[Leg]:
    """Every kind of page, grouped by the persona who sees it."""
    org, ep, se = scene.org, scene.episode.pk, scene.session.pk
    wrong = ("fill", "#id_password", "wrong")
    login_fail = (("fill", "#id_username", "nobody"), wrong, ("click", "button[type=submit]", ""))
    return [
        Leg(
            None,
            None,
            (
                Stop("login", "/login/"),
                Stop(
                    "login, wrong password",
                    "/login/",
                    steps=login_fail,
                    arrive="/login/",
                ),
                Stop("password reset", "/password/reset/"),
                Stop("password reset sent", "/password/reset/sent/"),
                Stop("password reset link", scene.reset_path),
                Stop("password reset complete", "/password/reset/complete/"),
                Stop("404 (not logged in)", "/no-such-page/", status=404),
                # Four more failed logins: the fifth locks the username (AXES_FAILURE_LIMIT).
                Stop(
                    "locked out",
                    "/login/",
                    steps=login_fail * 4,
                    arrive="/login/",
                ),
            ),
        ),
        Leg(
            "therapist_a",
            org.therapist_a,
            (
                Stop("caseload", "/clients/"),
                Stop("new client", "/clients/new/"),
                Stop(
                    "new client, with errors",
                    "/clients/new/",
                    steps=(("click", "button.primary[type=submit]", ""),),
                    arrive="/clients/new/",
                ),
                # The client's graph is drawn by plotly (graph.js).
                Stop("episode with graph", f"/clients/episodes/{ep}/", wait_for=GRAPH),
                Stop("paper entry", f"/measures/episodes/{ep}/paper/"),
                Stop("correct session", f"/measures/sessions/{se}/edit/"),
                Stop("delete session", f"/measures/sessions/{se}/delete/"),
                Stop("transfer episode", f"/clients/episodes/{ep}/transfer/"),
                Stop("new session", f"/measures/episodes/{ep}/session/new/"),
                Stop("client-mode PIN", "/measures/pin/"),
                Stop("my shares", "/policy/grants/"),
                Stop("new share", "/policy/grants/new/"),
                Stop("consents (therapist)", "/policy/consents/"),
                # The dashboards' figures are drawn by charts.js.
                Stop("my figures", "/stats/mine/", wait_for=FIGURE),
                Stop("change password", "/password/change/"),
                Stop("password changed", "/password/change/done/"),
                Stop("403", "/policy/log/", status=403),
                Stop("404", "/clients/episodes/999999/", status=404),
                # Swagger UI starts from a script file, reads the schema and draws; it and
                # the schema's texts are English only.
                Stop(
                    "API docs",
                    "/api/docs/",
                    wait_for=".swagger-ui .information-container",
                    language="en",
                ),
                # The client's form on the iPad (clientmode.js, scale.js); last, as client
                # mode keeps the browser on the form until the PIN is given.
                Stop(
                    "client mode: ORS form",
                    f"/measures/episodes/{ep}/session/new/",
                    wait_for=".scale-hit",
                    steps=(("click", "button.primary[type=submit]", ""),),
                    arrive="/measures/client/",
                ),
                Stop(
                    "client mode: unlock",
                    "/measures/client/",
                    steps=(("click", ".therapist-return a", ""),),
                    arrive="/measures/client/unlock/",
                ),
            ),
        ),
        Leg(
            "leader",
            org.leader,
            (
                Stop("leader home", "/leader/"),
                Stop("hand over episodes (leader)", "/clients/handover/"),
                Stop("dashboards", "/stats/"),
                Stop("unit dashboard", f"/stats/unit/{org.unit.pk}/", wait_for=FIGURE),
                Stop(
                    "a therapist's figures (shared)",
                    f"/stats/therapist/{org.therapist_a.pk}/",
                    wait_for=FIGURE,
                ),
                Stop("shares (leader)", "/policy/grants/"),
            ),
        ),
        Leg(
            "analyst",
            org.analyst,
            (
                Stop("organisation dashboard", "/stats/organisation/", wait_for=FIGURE),
                Stop("benchmark", "/stats/benchmark/", wait_for=FIGURE),
                Stop("reports", "/policy/reports/"),
                Stop("new report", "/policy/reports/new/"),
                Stop("report", f"/policy/reports/{scene.report.pk}/"),
            ),
        ),
        Leg(
            "dp_admin",
            org.dp_admin,
            (
                Stop("administration (data policy)", "/admin-home/"),
                Stop("access log", "/policy/log/"),
                Stop("policy settings", "/policy/settings/"),
                Stop("consents", "/policy/consents/"),
                Stop("shares (data policy)", "/policy/grants/"),
                Stop("new share (data policy)", "/policy/grants/new/"),
                Stop("users", "/policy/memberships/"),
                Stop("report to approve", f"/policy/reports/{scene.report.pk}/"),
            ),
        ),
        Leg(
            "owner",
            org.owner,
            (
                Stop("administration (system owner)", "/admin-home/"),
                Stop("Django admin", "/admin/"),
                Stop("Django admin: units", "/admin/datapolicy/unit/"),
                Stop("users (system owner)", "/policy/memberships/"),
                Stop("user import", "/policy/memberships/import/"),
                Stop("import", "/measures/import/"),
                Stop("import job", f"/measures/import/{scene.import_job.pk}/"),
                Stop("export job", f"/measures/export/{scene.export_job.pk}/"),
                Stop("API keys", "/api-keys/"),
                Stop("hand over episodes", "/clients/handover/"),
            ),
        ),
        Leg(
            "operator",
            scene.operator,
            (
                Stop("operator home", "/operator/"),
                Stop("platform benchmark", "/stats/platform/", wait_for=FIGURE),
            ),
        ),
        Leg("two organisations", scene.two_orgs, (Stop("choose organisation", "/organisation/"),)),
    ]


def login(page: Page, base: str, username: str) -> None:
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def arrive_at(page: Page, base: str, stop: Stop) -> Response | None:
    """Open ``stop``'s page; returns the response of a plain GET (``None`` when steps
    led there), after checking its status."""
    response = page.goto(base + stop.path)
    assert response is not None
    if stop.steps:
        for action, selector, value in stop.steps:
            if action == "fill":
                page.fill(selector, value)
            else:
                page.click(selector)
                page.wait_for_load_state("load")
        assert stop.arrive is not None
        page.wait_for_url(base + stop.arrive)
        response = None
    else:
        assert response.status == stop.status, (stop.name, stop.path, response.status)
    if stop.wait_for:
        page.wait_for_selector(stop.wait_for, timeout=15000)
    page.wait_for_load_state("networkidle")
    return response


def walk(
    browser: Browser,
    base: str,
    legs: list[Leg],
    *,
    context: Callable[[Browser], Any],
) -> Iterator[tuple[Leg, Stop, Page, Response | None]]:
    """Log in as each leg's persona in a fresh context (``context`` makes it) and open
    each of its pages in turn; yields each page once it is there."""
    for leg in legs:
        ctx = context(browser)
        try:
            page = ctx.new_page()
            if leg.user is not None:
                login(page, base, leg.user.username)
            for stop in leg.stops:
                response = arrive_at(page, base, stop)
                yield leg, stop, page, response
        finally:
            ctx.close()
