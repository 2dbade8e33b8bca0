"""The permission matrix, tried: every row x every persona, plus coverage of all URLs.

Cases are generated from ``datapolicy.matrix`` (the same data that docs/datapolicy.md
shows). A new URL pattern without a matrix row makes ``test_every_url_is_in_the_matrix``
fail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from datapolicy.matrix import EXEMPT, EXEMPT_PREFIXES, LOGIN, PERSONAS, all_rows, markdown_table
from tests.conftest import OrgPersonas, add_therapist, make_episode, make_org, record

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class World:
    org1: OrgPersonas
    org2: OrgPersonas
    operator: Any
    episode: Any  # therapist_a's episode in org 1
    session: Any
    colleague_episode: Any  # therapist_b's episode in org 1
    other_episode: Any  # an episode in org 2
    # datapolicy: a live share of the graph of a separate episode of therapist_a (so that
    # the visibility of ``episode`` stays as other rows expect) with the leader, a consent
    # for that client, a draft report by the analyst and an approved one (dp_admin is a
    # named approver of org 1).
    grant_episode: Any = None
    grant: Any = None
    consent: Any = None
    report: Any = None
    approved_report: Any = None

    def user(self, persona: str) -> Any:
        if persona == "other_org":
            return self.org2.therapist_a
        if persona == "operator":
            return self.operator
        if persona == "anonymous":
            return None
        return self.org1.by_role()[persona]

    def identities(self) -> list[str]:
        """Strings that must never appear in an anonymised response."""
        codes = [self.episode.client.code, self.colleague_episode.client.code, "AL-4713"]
        if self.grant_episode is not None:
            codes.append(self.grant_episode.client.code)
        names = [u.get_full_name() for u in (self.org1.therapist_a, self.org1.therapist_b)]
        names += ["Therapist_c Alphasen", "alpha-therapist_c"]
        return codes + names + [self.org1.therapist_a.username, self.org1.therapist_b.username]


@pytest.fixture
def world(db: Any) -> World:
    from datapolicy.models import User

    org1, org2 = make_org("alpha"), make_org("beta")
    episode = make_episode(org1, code="AL-4711", therapist=org1.therapist_a)
    session = record(episode, dt.date.today() - dt.timedelta(days=3), ors="18.0", srs="35.0")
    colleague = make_episode(org1, code="AL-4712", therapist=org1.therapist_b)
    record(colleague, dt.date.today() - dt.timedelta(days=2), ors="22.0", srs="39.0")
    # A third therapist of the unit: anonymised figures of a unit of fewer than 3
    # therapists are hidden as a whole, and the identity check below must see the panels.
    third = add_therapist(org1, "therapist_c")
    record(
        make_episode(org1, code="AL-4713", therapist=third),
        dt.date.today() - dt.timedelta(days=4),
        ors="16.0",
        srs="36.0",
    )
    other = make_episode(org2, code="BE-0815", therapist=org2.therapist_a)
    operator = User.objects.create_user(
        username="operator", password="pw", is_platform_operator=True
    )
    w = World(org1, org2, operator, episode, session, colleague, other)
    _add_datapolicy_objects(w)
    return w


def _add_datapolicy_objects(w: World) -> None:
    from django.utils import timezone

    from datapolicy.models import Report
    from datapolicy.services import consent_record, grant_create

    org = w.org1.org
    now = timezone.now()
    w.grant_episode = make_episode(w.org1, code="AL-4719", therapist=w.org1.therapist_a)
    w.grant = grant_create(
        actor=w.org1.therapist_a,
        organisation=org,
        kind="client_graph",
        grantee=w.org1.leader,
        episode=w.grant_episode,
        purpose="Supervision",
        starts_at=now - dt.timedelta(days=1),
        expires_at=now + dt.timedelta(days=30),
    )
    w.consent = consent_record(
        actor=w.org1.therapist_a,
        organisation=org,
        client=w.grant_episode.client,
        purpose="Research",
        given_on=dt.date.today(),
    )
    org.report_approvers.add(w.org1.dp_admin)
    period = str(dt.date.today().year)
    sel = {"scope": "org", "unit_id": None, "period": period, "age_group": ""}
    w.report = Report.objects.create(
        organisation=org, title="Draft", selection=sel, created_by=w.org1.analyst
    )
    w.approved_report = Report.objects.create(
        organisation=org,
        title="Approved",
        selection=sel,
        status=Report.Status.APPROVED,
        created_by=w.org1.analyst,
    )


CASES = [(row, persona) for row in all_rows() for persona in PERSONAS]


@pytest.mark.parametrize(
    ("row", "persona"),
    CASES,
    ids=[f"{r.method}-{r.url_name}-{r.action}-{p}" for r, p in CASES],
)
def test_matrix(client: Any, world: World, row: Any, persona: str) -> None:
    url = reverse(row.url_name, kwargs=row.kwargs(world) if row.kwargs else None)
    user = world.user(persona)
    if user is not None:
        client.force_login(user)
    data = row.data(world) if row.data else None
    call = getattr(client, row.method)
    if row.api and data is not None:
        response = call(url, data=data, content_type="application/json")
    else:
        response = call(url, data=data) if data is not None else call(url)
    expected = row.expected(persona)
    if expected == LOGIN:
        assert response.status_code == 302, (persona, response.status_code)
        assert reverse("login") in response["Location"]
        return
    assert response.status_code == expected, (persona, response.status_code)
    if row.anonymised and response.status_code == 200:
        body = response.content.decode(errors="replace")
        for identity in world.identities():
            assert identity not in body, f"{identity!r} leaked into anonymised {row.url_name}"


def _walk(patterns: list[Any], prefix: str = "") -> list[str]:
    names: list[str] = []
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{p.namespace}:" if p.namespace else ""
            names.extend(_walk(p.url_patterns, prefix + ns))
        elif isinstance(p, URLPattern) and p.name:
            names.append(prefix + p.name)
        elif isinstance(p, URLPattern):
            names.append(prefix + f"<unnamed {p.pattern}>")
    return names


def test_every_url_is_in_the_matrix() -> None:
    covered = {row.url_name for row in all_rows()}
    missing = []
    for name in _walk(get_resolver().url_patterns):
        if name in covered or name in EXEMPT:
            continue
        if any(name.startswith(prefix) for prefix in EXEMPT_PREFIXES):
            continue
        missing.append(name)
    assert not missing, f"URL patterns without permission-matrix rows: {sorted(set(missing))}"


def test_docs_show_the_current_matrix() -> None:
    doc = (ROOT / "docs" / "datapolicy.md").read_text(encoding="utf-8")
    assert markdown_table() in doc, (
        "docs/datapolicy.md is stale: run `manage.py access_matrix --write`"
    )


OBJECT_CASES = [
    (row, persona) for row in all_rows() if row.kwargs is not None for persona in PERSONAS
]


@pytest.mark.parametrize(
    ("row", "persona"),
    OBJECT_CASES,
    ids=[f"options-{r.url_name}-{r.action}-{p}" for r, p in OBJECT_CASES],
)
def test_options_on_object_urls(client: Any, world: World, row: Any, persona: str) -> None:
    """OPTIONS on every object URL as every persona: pages refuse it alike (405); the API
    answers it where the row admits the persona, and where the row refuses, the answer
    is a refusal that is the same for a nonexistent object (no existence oracle)."""
    kwargs = row.kwargs(world)
    missing = {k: (999_999_999 if isinstance(v, int) else v) for k, v in kwargs.items()}
    user = world.user(persona)
    if user is not None:
        client.force_login(user)
    answer = client.options(reverse(row.url_name, kwargs=kwargs)).status_code
    if not row.api:
        assert answer == 405, (persona, answer)
        return
    expected = row.expected(persona)
    if expected in (403, 404):
        assert answer in (403, 404, 405), (persona, answer)
        nothing = client.options(reverse(row.url_name, kwargs=missing)).status_code
        assert answer == nothing, (persona, answer, nothing)
    else:
        assert answer in (200, 403, 405), (persona, answer)
