"""Shared fixtures: the fixed personas of two organisations (style.md guideline 7).

Per organisation: two therapists (A, B) in one unit, a unit leader, an analyst
(management-information officer), a data-policy admin and a system owner; plus a
platform operator. Tests read like the data policy: "therapist A opens B's client: 404".
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings

from datapolicy.models import Membership, Organisation, Role, Unit, User

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_report_header(config: Any) -> list[str]:
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    redis = settings.TEST_REDIS_URL or "not reachable"
    lines = [f"fitplatform: database={db}, redis={redis}"]
    if not settings.TEST_USES_POSTGRES:
        lines.append(
            "fitplatform: NOT COVERED on SQLite: PostgreSQL-only tests (access-log trigger, "
            "COPY paths, constraints as PostgreSQL enforces them) are skipped"
        )
    if not settings.TEST_REDIS_URL:
        lines.append(
            "fitplatform: NOT COVERED without Redis: the real Celery worker integration tests"
        )
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Repeat at the end what this run did not cover, so nobody mistakes it for CI."""
    for line in pytest_report_header(None):
        if "NOT COVERED" in line:
            terminalreporter.write_line(line, yellow=True, bold=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: Any, nextitem: Any) -> None:
    """After the last test, before pytest-django drops the test database: end every other
    connection to it. A query run inside Playwright's event loop gets a connection of its
    own (asgiref's context), which no test closes when the loop is gone; it kept the test
    database from being dropped ("accessed by other users"). The known ones are closed
    where they are opened (tests/browser/test_import_job_page.py); this catches the rest."""
    if nextitem is not None:
        return
    from django.db import connection

    name = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor != "postgresql" or not name.startswith("test_"):
        return
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params["dbname"] = "postgres"
    # The test's own connection stays: its teardown (rollback, flush) follows this hook.
    own = connection.connection.info.backend_pid if connection.connection is not None else 0
    try:
        with psycopg.connect(**params, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid() AND pid <> %s"
                " AND backend_type = 'client backend' AND state = 'idle'",
                [name, own],
            )
    except psycopg.Error:
        pass  # the teardown then reports what it cannot drop, as before


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    _serialized_rollback_for_every_transactional_test(items)
    _skip_or_fail_without_services(items)


def _serialized_rollback_for_every_transactional_test(items: list[Any]) -> None:
    """Every transactional test gets serialized rollback, so that no order of the tests
    can break one (tests/foundation/test_transactional_db.py checks it).

    A transactional test ends with a flush of every table. With serialized rollback the
    test starts by writing back the rows the migrations left (content types, permissions,
    the scales), and the flush at its end leaves the tables empty (no post_migrate).
    Without it the flush sends post_migrate, which writes the content types and
    permissions again under new ids; the next serialized test (the browser tests) then
    collides with them while it writes the migrated rows back (IntegrityError, duplicate
    key in django_content_type). So every transactional test starts from the migrated
    database and leaves an empty one, whatever ran before it.
    """
    from django.test import TestCase, TransactionTestCase
    from pytest_django.fixtures import validate_django_db

    for item in items:
        cls = getattr(item, "cls", None)
        if cls is not None and issubclass(cls, TransactionTestCase):
            if not issubclass(cls, TestCase) and not cls.serialized_rollback:
                raise pytest.UsageError(
                    f"{item.nodeid}: a TransactionTestCase needs serialized_rollback = True"
                    " (see tests/conftest.py)"
                )
            continue
        marker = item.get_closest_marker("django_db")
        fixtures = getattr(item, "fixturenames", ())
        transaction, reset_sequences, databases, serialized, available_apps = (
            validate_django_db(marker) if marker else (False, False, None, False, None)
        )
        if serialized or not (
            transaction
            or reset_sequences
            or "transactional_db" in fixtures
            or "live_server" in fixtures
        ):
            continue
        if marker is not None and "serialized_rollback" in marker.kwargs:
            raise pytest.UsageError(
                f"{item.nodeid}: a transactional test cannot turn serialized rollback off"
                " (see tests/conftest.py)"
            )
        # The closest marker is the one pytest-django reads: put this one first.
        item.add_marker(
            pytest.mark.django_db(
                transaction=True,
                reset_sequences=reset_sequences,
                databases=databases,
                serialized_rollback=True,
                available_apps=available_apps,
            ),
            append=False,
        )


def _skip_or_fail_without_services(items: list[Any]) -> None:
    """Skip service-bound tests outside CI with a reason; in CI they must run, so a missing
    service fails the run instead of silently skipping."""
    missing = []
    if not settings.TEST_USES_POSTGRES:
        missing.append("postgres")
    if not settings.TEST_REDIS_URL:
        missing.append("redis")
    if not missing:
        return
    if IN_CI:
        raise pytest.UsageError(
            f"CI=true but {', '.join(missing)} is not reachable: "
            "CI must test against the real services"
        )
    for item in items:
        for name in missing:
            if item.get_closest_marker(name):
                item.add_marker(pytest.mark.skip(reason=f"needs {name} (not reachable here)"))


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Each test starts with an empty (local-memory) cache: counters kept there, such as
    the reset mails per user and hour, are keyed by ids, which SQLite reuses from one
    test to the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _default_language() -> Any:
    """Each test starts in the default language (Danish): a request made in English by an
    earlier test must not leak its activated language into the next one."""
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@dataclass
class OrgPersonas:
    org: Organisation
    unit: Unit
    other_unit: Unit
    therapist_a: User
    therapist_b: User
    leader: User
    analyst: User
    dp_admin: User
    owner: User

    def by_role(self) -> dict[str, User]:
        return {
            "therapist_a": self.therapist_a,
            "therapist_b": self.therapist_b,
            "leader": self.leader,
            "analyst": self.analyst,
            "dp_admin": self.dp_admin,
            "owner": self.owner,
        }


def make_org(slug: str) -> OrgPersonas:
    org = Organisation.objects.create(slug=slug, name=f"{slug.capitalize()} Kommune")
    unit = Unit.objects.create(organisation=org, code="ung", name="Ungeenheden")
    other = Unit.objects.create(organisation=org, code="rus", name="Rusmiddelcentret")

    def user(name: str, role: str, unit_: Unit | None) -> User:
        u = User.objects.create_user(
            username=f"{slug}-{name}",
            password="pw",
            first_name=name.capitalize(),
            last_name=f"{slug.capitalize()}sen",
        )
        Membership.objects.create(organisation=org, user=u, unit=unit_, role=role)
        return u

    return OrgPersonas(
        org=org,
        unit=unit,
        other_unit=other,
        therapist_a=user("therapist_a", Role.THERAPIST, unit),
        therapist_b=user("therapist_b", Role.THERAPIST, unit),
        leader=user("leader", Role.UNIT_LEADER, unit),
        analyst=user("analyst", Role.MI_OFFICER, None),
        dp_admin=user("dp_admin", Role.DP_ADMIN, None),
        owner=user("owner", Role.SYSTEM_OWNER, None),
    )


@pytest.fixture
def org1(db: Any) -> OrgPersonas:
    return make_org("alpha")


@pytest.fixture
def org2(db: Any) -> OrgPersonas:
    return make_org("beta")


@pytest.fixture
def operator(db: Any) -> User:
    return User.objects.create_user(username="operator", password="pw", is_platform_operator=True)


@pytest.fixture
def login(client: Any) -> Any:
    def _login(user: User) -> Any:
        client.force_login(user)
        return client

    return _login


def add_therapist(personas: OrgPersonas, name: str, unit: Unit | None = None) -> User:
    """One more therapist (anonymised unit figures need at least 3 therapists)."""
    slug = personas.org.slug
    u = User.objects.create_user(
        username=f"{slug}-{name}",
        password="pw",
        first_name=name.capitalize(),
        last_name=f"{slug.capitalize()}sen",
    )
    Membership.objects.create(
        organisation=personas.org, user=u, unit=unit or personas.unit, role=Role.THERAPIST
    )
    return u


def make_episode(
    personas: OrgPersonas,
    *,
    therapist: User | None = None,
    code: str = "AB-1001",
    age_group: str = "adult",
    started_on: dt.date | None = None,
    unit: Unit | None = None,
) -> Any:
    from clients.services import client_create_with_episode

    therapist = therapist or personas.therapist_a
    return client_create_with_episode(
        actor=therapist,
        organisation=personas.org,
        unit=unit or personas.unit,
        code=code,
        age_group=age_group,
        started_on=started_on or dt.date.today() - dt.timedelta(days=60),
    )


def _historical_session(episode: Any, date: dt.date) -> Any:
    from measures.models import Session
    from measures.services import _renumber

    session = Session.objects.create(
        organisation_id=episode.organisation_id, episode=episode, date=date, number=10001
    )
    _renumber(episode)
    if date < episode.started_on:
        episode.started_on = date
        episode.save(update_fields=["started_on"])
    session.refresh_from_db(fields=["number"])
    return session


def record(
    episode: Any, date: dt.date, ors: str | None = None, srs: str | None = None, **kw: Any
) -> Any:
    """Record a session with totals (test helper over the real service). Without any
    score: a session as an import of historical data writes it (the service, like the
    pages and the API, records a session only with a score)."""
    from measures.services import ScoreInput, session_record

    if ors is None and srs is None:
        return _historical_session(episode, date)
    return session_record(
        actor=episode.therapist,
        episode=episode,
        date=date,
        ors=ScoreInput(total=Decimal(ors)) if ors is not None else None,
        srs=ScoreInput(total=Decimal(srs)) if srs is not None else None,
        **kw,
    )


@pytest.fixture
def run_on_commit_at_once(monkeypatch: Any) -> None:
    """Run work queued for after commit at once: a test's transaction never commits, and
    what a request queues (e.g. an e-mail with a password link) would never happen."""
    from django.db import transaction

    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())


def team_of_three(personas: OrgPersonas) -> list[User]:
    """Therapists A, B and a third one of the unit (created once): an anonymised
    selection (a dashboard, a report) needs at least 3 therapists (datapolicy.md, rule 8)."""
    third = User.objects.filter(username=f"{personas.org.slug}-therapist_c").first()
    return [
        personas.therapist_a,
        personas.therapist_b,
        third or add_therapist(personas, "therapist_c"),
    ]


# --- Redis that does not answer (a closed port: every call fails at once) ---------------
REDIS_DOWN_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
_DOWN_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
_PAGES_DOWN = {
    "BACKEND": "django_redis.cache.RedisCache",
    "LOCATION": REDIS_DOWN_URL,
    "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
}
REDIS_DOWN = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_DOWN_URL,
        "OPTIONS": _DOWN_OPTIONS,
    },
    # as in fitplatform/settings/base.py with REDIS_URL
    "pages": _PAGES_DOWN,
    "template_fragments": _PAGES_DOWN,
}


@pytest.fixture
def redis_down(settings: Any) -> None:
    """The caches (default, pages, template fragments) on a Redis that does not answer."""
    settings.CACHES = REDIS_DOWN


@pytest.fixture
def broker_down(settings: Any) -> Any:
    """Tasks go to a broker that does not answer, as in production with Redis down."""
    from fitplatform.celery import app

    # Read before the settings change: app.conf is loaded from them at first use.
    saved = (
        app.conf.task_always_eager,
        app.conf.broker_url,
        app.conf.broker_transport_options,
        app.conf.broker_connection_timeout,
    )
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    app.conf.broker_url = REDIS_DOWN_URL
    # Give up soon instead of retrying the connection for seconds.
    app.conf.broker_transport_options = {"max_retries": 1, "interval_start": 0}
    app.conf.broker_connection_timeout = 0.5
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        from kombu import pools

        # kombu keeps its pools in a registry by connection: a pool closed but left
        # there would be handed to the next test that uses the same broker URL.
        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None
        app.conf.task_always_eager, app.conf.broker_url = saved[0], saved[1]
        app.conf.broker_transport_options = saved[2]
        app.conf.broker_connection_timeout = saved[3]
