"""Rotating DJANGO_SECRET_KEY (docs/operations.md): the previous keys and the access
log's own key are read from the environment (they were documented but not read), and an
erased client stays findable by code across a rotation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.test import override_settings

from datapolicy.selectors import client_ids_for_code
from tests.conftest import OrgPersonas
from tests.datapolicy.test_review_round8 import _erase
from tests.foundation.test_settings import _manage

ROOT = Path(__file__).resolve().parents[2]
OLD = "old-key-q8#v!4s2-long-production-like-secret-key-9f3k2l1m0n-aaaa"
NEW = "new-key-z7%p@1x9-long-production-like-secret-key-0a9b8c7d6e-bbbb"
PRINT = (
    "from django.conf import settings; "
    "print(repr((settings.SECRET_KEY_FALLBACKS, settings.FITPLATFORM['ACCESS_LOG_KEY'])))"
)


def test_the_environment_sets_the_fallbacks_and_the_log_key() -> None:
    base = {"DJANGO_SETTINGS_MODULE": "fitplatform.settings.base", "DJANGO_SECRET_KEY": NEW}
    result = _manage(
        "shell",
        "-c",
        PRINT,
        **base,
        DJANGO_SECRET_KEY_FALLBACKS=f"{OLD}, older-key",
        DJANGO_ACCESS_LOG_KEY="log-key",
    )
    assert result.stdout.strip().splitlines()[-1] == repr(([OLD, "older-key"], "log-key")), (
        result.stderr
    )
    unset = _manage("shell", "-c", PRINT, **base)
    assert unset.stdout.strip().splitlines()[-1] == repr(([], "")), unset.stderr


def test_compose_hands_the_keys_to_every_app_container() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("web", "worker", "beat", "migrate"):
        env = services[name]["environment"]
        assert "DJANGO_SECRET_KEY_FALLBACKS" in env and "DJANGO_ACCESS_LOG_KEY" in env, name


@pytest.mark.django_db
def test_an_erased_client_is_found_after_a_rotation_with_the_old_key_as_fallback(
    org1: OrgPersonas,
) -> None:
    with override_settings(SECRET_KEY=OLD):
        client_id = _erase(org1, "ROT-1")
        assert client_ids_for_code(organisation=org1.org, code="ROT-1") == [client_id]
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD]):
        assert client_ids_for_code(organisation=org1.org, code="rot-1") == [client_id]
    # Without the fallback the hash cannot be matched: why the docs say to keep it.
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[]):
        assert client_ids_for_code(organisation=org1.org, code="ROT-1") == []


@pytest.mark.django_db
def test_a_dedicated_log_key_survives_a_rotation_without_fallbacks(org1: OrgPersonas) -> None:
    from django.conf import settings

    keyed = {**settings.FITPLATFORM, "ACCESS_LOG_KEY": "dedicated-log-key"}
    with override_settings(SECRET_KEY=OLD, FITPLATFORM=keyed):
        client_id = _erase(org1, "ROT-2")
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[], FITPLATFORM=keyed):
        assert client_ids_for_code(organisation=org1.org, code="ROT-2") == [client_id]
