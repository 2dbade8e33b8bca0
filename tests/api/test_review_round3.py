"""Found by running the documentation's examples (2026-12-02)."""

from __future__ import annotations

from django.utils import translation
from rest_framework.test import APIClient

from datapolicy.api_auth import apikey_create
from tests.conftest import OrgPersonas

SCOPE_EN = "This API key does not have the scope for this request."


def test_the_key_scope_message_follows_the_request_language(org1: OrgPersonas) -> None:
    """It was translated once, when the module was imported (a class attribute), so it
    stayed in the language of that moment whatever the caller asked for."""
    _key, raw = apikey_create(
        actor=org1.therapist_a,
        organisation=org1.org,
        name="k",
        user=org1.therapist_a,
        scopes=["read"],
    )
    with translation.override("da"):
        scope_da = translation.gettext(SCOPE_EN)
    assert scope_da != SCOPE_EN
    c = APIClient(raise_request_exception=False)
    c.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    url = "/api/v1/clients/"
    for language, text in (("en", SCOPE_EN), ("da", scope_da), ("en", SCOPE_EN)):
        c.cookies["django_language"] = language  # the language chosen on the pages
        r = c.post(url, {}, format="json")
        assert r.status_code == 403
        assert r.json() == {"detail": text}
