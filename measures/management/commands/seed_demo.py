"""Load the demo organisation (``seed_demo``) or national-scale benchmark data
(``seed_demo --sessions 1000000``). Deterministic with ``--seed``."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from clients.models import Client, Episode
from datapolicy.models import Membership, Organisation, Role, Unit, User
from measures.bulkload import copy_frame, lock_organisation_for_bulk_write, reserve_ids
from measures.demo import Generated, generate
from measures.models import Scale, Score, Session

UNUSABLE = "!"  # Django's marker for "no password can log in"
DEMO_PASSWORD = "fit-demo"  # noqa: S105 - printed for the demo; never used in production

# (slug, name, units[(code, name, parent, age weights)], therapist first names)
DEMO_ORG = (
    "demo",
    "Demo Kommune",
    [
        ("ung", "Ungeenheden", None, (0.2, 0.6, 0.2)),
        ("rus", "Rusmiddelcentret", None, (1.0, 0.0, 0.0)),
        ("rus-amb", "Rusmiddelcentret, ambulant team", "rus", (0.9, 0.1, 0.0)),
        ("psyk", "Socialpsykiatrien", None, (1.0, 0.0, 0.0)),
    ],
    [
        "anna",
        "bo",
        "clara",
        "david",
        "emma",
        "frederik",
        "gitte",
        "hans",
        "ida",
        "jonas",
        "karen",
        "lars",
    ],
)
NABO_ORG = (
    "nabo",
    "Nabo Kommune",
    [("familie", "Familiebehandlingen", None, (0.5, 0.3, 0.2))],
    ["nabo-mette", "nabo-niels"],
)

# A third organisation: the cross-organisation benchmark needs at least three
# (docs/datapolicy.md), and the demo should show it.
FJORD_ORG = (
    "fjord",
    "Fjord Kommune",
    [
        ("boern", "Børne- og Ungerådgivningen", None, (0.2, 0.5, 0.3)),
        ("voksen", "Voksenrådgivningen", None, (1.0, 0.0, 0.0)),
    ],
    ["fjord-ole", "fjord-pia", "fjord-rasmus", "fjord-sofie"],
)
DEMO_SLUGS = ("demo", "nabo", "fjord")


class Command(BaseCommand):
    help = "Create the demo organisations, or bulk-load benchmark data with --sessions."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--seed", type=int, default=2017)
        parser.add_argument(
            "--sessions", type=int, default=0, help="bulk-load about this many sessions"
        )
        parser.add_argument("--organisations", type=int, default=10)
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing if any organisation exists"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["if_empty"] and Organisation.objects.exists():
            self.stdout.write("Database already has data; demo not loaded.")
            return
        rng = np.random.default_rng(opts["seed"])
        started = time.perf_counter()
        if opts["sessions"]:
            n = self._bulk(rng, opts["sessions"], opts["organisations"])
            took = time.perf_counter() - started
            self.stdout.write(f"Loaded {n} sessions in {took:.1f} s")
            return
        if Organisation.objects.filter(slug__in=DEMO_SLUGS).exists():
            raise CommandError("The demo organisations exist already (use a fresh database).")
        with transaction.atomic():
            logins = self._demo_org(rng, DEMO_ORG, episodes_per_therapist=36, extra_roles=True)
            logins += self._demo_org(rng, NABO_ORG, episodes_per_therapist=10, extra_roles=True)
            logins += self._demo_org(rng, FJORD_ORG, episodes_per_therapist=15, extra_roles=True)
        from measures.services import alerts_refresh_for_org

        for org in Organisation.objects.filter(slug__in=DEMO_SLUGS):
            alerts_refresh_for_org(org)
        self.stdout.write(
            self.style.SUCCESS(f"Demo data loaded. Logins (password: {DEMO_PASSWORD}):")
        )
        for username, desc in logins:
            self.stdout.write(f"  {username:<22} {desc}")

    # -- demo organisations -------------------------------------------------------
    def _demo_org(
        self,
        rng: np.random.Generator,
        spec: tuple,
        *,
        episodes_per_therapist: int,
        extra_roles: bool,
    ) -> list:
        slug, name, units_spec, therapist_names = spec
        org = Organisation.objects.create(slug=slug, name=name)
        units: dict[str, Unit] = {}
        for code, uname, parent, _w in units_spec:
            units[code] = Unit.objects.create(
                organisation=org, code=code, name=uname, parent=units.get(parent)
            )
        logins: list[tuple[str, str]] = []
        therapists: list[User] = []
        unit_list = list(units.values())
        for i, first in enumerate(therapist_names):
            unit = unit_list[i % len(unit_list)]
            user = _user(first, first.split("-")[-1].capitalize(), "Behandler")
            Membership.objects.create(organisation=org, user=user, unit=unit, role=Role.THERAPIST)
            therapists.append(user)
            logins.append((user.username, f"therapist, {unit.name} ({name})"))
        prefix = "" if slug == "demo" else f"{slug}-"
        for unit in unit_list:
            if unit.parent_id:
                continue
            leader = _user(f"{prefix}leder-{unit.code}", "Leder", unit.name)
            Membership.objects.create(
                organisation=org, user=leader, unit=unit, role=Role.UNIT_LEADER
            )
            logins.append((leader.username, f"unit leader, {unit.name} ({name})"))
        for role, uname, label in [
            (Role.MI_OFFICER, f"{prefix}analytiker", "management-information officer"),
            (Role.DP_ADMIN, f"{prefix}datapolitik", "data-policy admin"),
            (Role.SYSTEM_OWNER, f"{prefix}systemansvarlig", "system owner"),
        ]:
            user = _user(uname, uname.split("-")[-1].capitalize(), name)
            Membership.objects.create(organisation=org, user=user, role=role)
            logins.append((user.username, f"{label} ({name})"))
            if role == Role.SYSTEM_OWNER:
                org.report_approvers.add(user)
        if slug == "demo":
            # A therapist who has left but still has open episodes: a "ghost" for the
            # data-quality panel (statistics.md).
            ghost = _user("tidligere-behandler", "Tidligere", "Behandler")
            ghost_m = Membership.objects.create(
                organisation=org, user=ghost, unit=units["psyk"], role=Role.THERAPIST
            )
            therapists.append(ghost)
            operator = _user("operatoer", "Platform", "Operatør")
            operator.is_platform_operator = True
            operator.save(update_fields=["is_platform_operator"])
            logins.append(("operatoer", "platform operator (cross-organisation benchmark only)"))
        keys = np.array([t.pk for t in therapists])
        unit_of = {
            m.user_id: m.unit_id
            for m in Membership.objects.for_org(org).filter(role=Role.THERAPIST)
        }
        t_units = np.array([unit_of[t.pk] for t in therapists])
        weights = {units[c].pk: w for c, _n, _p, w in units_spec}
        gen = generate(
            rng,
            n_episodes=episodes_per_therapist * len(therapists),
            therapist_keys=keys,
            therapist_units=t_units,
            unit_age_weights=weights,
            today=timezone.localdate(),
            years=1.0,
        )
        write_generated(org, gen, code_prefix=slug.upper()[:2])
        if slug == "demo":
            ghost_m.is_active = False
            ghost_m.save(update_fields=["is_active"])
        return logins

    # -- national scale -----------------------------------------------------------
    def _bulk(self, rng: np.random.Generator, n_sessions: int, n_orgs: int) -> int:
        """~1M sessions, ~200k episodes, ~2,000 therapists, ~100 units, 10 orgs."""
        # About four sessions per episode survive (future-dated ones are dropped).
        n_episodes = max(1, n_sessions // 4)
        n_therapists = max(n_orgs, n_sessions // 500)
        units_per_org = 10
        today = timezone.localdate()
        run = int(time.time())
        total = 0
        for o in range(n_orgs):
            org = Organisation.objects.create(
                slug=f"bench-{run}-{o}", name=f"Benchmark Kommune {o + 1}"
            )
            units = Unit.objects.bulk_create(
                [
                    Unit(organisation=org, code=f"u{u}", name=f"Enhed {u + 1}")
                    for u in range(units_per_org)
                ]
            )
            per_org = n_therapists // n_orgs
            users = User.objects.bulk_create(
                [
                    User(username=f"b{run}-{o}-{t}", first_name=f"B{t}", password=UNUSABLE)
                    for t in range(per_org)
                ]
            )
            t_units = np.array([units[t % units_per_org].pk for t in range(per_org)])
            Membership.objects.bulk_create(
                [
                    Membership(
                        organisation=org, user=u, unit_id=int(t_units[i]), role=Role.THERAPIST
                    )
                    for i, u in enumerate(users)
                ]
            )
            gen = generate(
                rng,
                n_episodes=n_episodes // n_orgs,
                therapist_keys=np.array([u.pk for u in users]),
                therapist_units=t_units,
                unit_age_weights={u.pk: (0.8, 0.15, 0.05) for u in units},
                today=today,
            )
            total += write_generated(org, gen, code_prefix=f"B{o}")
            self.stdout.write(f"  organisation {o + 1}/{n_orgs}: {len(gen.sessions)} sessions")
        return total


def _user(username: str, first: str, last: str) -> User:
    user = User(username=username, first_name=first, last_name=last)
    user.set_password(DEMO_PASSWORD)
    user.save()
    return user


@transaction.atomic
def write_generated(org: Organisation, gen: Generated, *, code_prefix: str) -> int:
    """Write generated episodes and sessions in bulk: COPY on PostgreSQL, bulk_create
    elsewhere. Returns the number of sessions written."""
    pg = connection.vendor == "postgresql"
    lock_organisation_for_bulk_write(org.pk)
    eps = gen.episodes.reset_index(drop=True)
    ses = gen.sessions
    n_ep = len(eps)
    client_ids = reserve_ids(Client, n_ep)
    episode_ids = reserve_ids(Episode, n_ep)
    letters = np.array(list("ABDEFGHJKLMNPRSTV"))
    rng = np.random.default_rng(n_ep)
    initials = np.char.add(
        letters[rng.integers(0, len(letters), n_ep)], letters[rng.integers(0, len(letters), n_ep)]
    )
    codes = [f"{code_prefix}-{ini}{i:05d}" for i, ini in zip(client_ids, initials, strict=True)]
    now = timezone.now()
    clients = pd.DataFrame(
        {
            "id": client_ids,
            "organisation_id": org.pk,
            "code": codes,
            "age_group": eps["age_group"],
            "birth_year": None,
            "note": "",
            "created_at": now,
            "created_by_id": None,
        }
    )
    closed = pd.notna(eps["closed_on"])
    episodes = pd.DataFrame(
        {
            "id": episode_ids,
            "organisation_id": org.pk,
            "client_id": client_ids,
            "therapist_id": eps["therapist_key"].astype("int64"),
            "unit_id": eps["unit_key"].astype("int64"),
            "age_group": eps["age_group"],
            "label": "",
            "started_on": eps["started_on"],
            "closed_on": pd.to_datetime(eps["closed_on"]).dt.date.where(closed, None),
            "status": np.where(closed, "closed", "open"),
            "alerts": "[]",
            "created_at": now,
        }
    )
    key_to_episode = pd.Series(episode_ids, index=eps["episode_key"].to_numpy())
    session_ids = reserve_ids(Session, len(ses))
    sessions = pd.DataFrame(
        {
            "id": session_ids,
            "organisation_id": org.pk,
            "episode_id": key_to_episode.reindex(ses["episode_key"].to_numpy()).to_numpy(),
            "date": ses["date"],
            "number": ses["number"],
            "created_by_id": None,
            "created_at": now,
            "updated_at": now,
        }
    )
    scales = dict(Scale.objects.values_list("code", "pk"))
    child = (
        eps.set_index("episode_key")["age_group"].reindex(ses["episode_key"].to_numpy()).to_numpy()
        == "child"
    )
    score_frames = []
    for kind, prefix, adult_code, child_code in (
        ("outcome", "ors", "ORS", "CORS"),
        ("alliance", "srs", "SRS", "CSRS"),
    ):
        mask = ses[f"has_{prefix}"].to_numpy()
        score_frames.append(
            pd.DataFrame(
                {
                    "organisation_id": org.pk,
                    "session_id": session_ids[mask],
                    "scale_id": np.where(child[mask], scales[child_code], scales[adult_code]),
                    "kind": kind,
                    "item1": ses[f"{prefix}_1"].to_numpy()[mask],
                    "item2": ses[f"{prefix}_2"].to_numpy()[mask],
                    "item3": ses[f"{prefix}_3"].to_numpy()[mask],
                    "item4": ses[f"{prefix}_4"].to_numpy()[mask],
                    "total": ses[f"{prefix}_total"].to_numpy()[mask],
                }
            )
        )
    scores = pd.concat(score_frames, ignore_index=True)
    scores.insert(0, "id", reserve_ids(Score, len(scores)))
    for col in ("item1", "item2", "item3", "item4", "total"):
        scores[col] = scores[col].map("{:.1f}".format)
    written: list[tuple[Any, pd.DataFrame]] = [
        (Client, clients),
        (Episode, episodes),
        (Session, sessions),
        (Score, scores),
    ]
    if pg:
        from measures.bulkload import BulkWrite

        with BulkWrite() as bulk:  # foreign keys checked per column, as in the import
            for model, frame in written:
                copy_frame(model._meta.db_table, frame)
                bulk.record(model, frame["id"].to_numpy())
    else:
        for model, frame in written:
            records = frame.astype(object).where(pd.notna(frame), None).to_dict("records")
            if model is Episode:
                for r in records:
                    r["alerts"] = []
            model.dangerously_unscoped.bulk_create([model(**r) for r in records], batch_size=2000)
    return len(sessions)
