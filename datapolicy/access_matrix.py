"""Permission-matrix rows for the datapolicy app's pages (see datapolicy/matrix.py)."""

from datapolicy.matrix import Row

ROWS = [
    Row(
        "home",
        "start page",
        "read",
        ("therapist_a", "therapist_b", "leader", "analyst", "dp_admin", "owner"),
        ok_status=302,
        overrides={"operator": 302, "other_org": 302},
    ),
    Row("leader_home", "dashboards start", "read", ("leader", "analyst"), anonymised=True),
    Row("admin_home", "administration start", "read", ("dp_admin", "owner")),
    Row(
        "operator_home",
        "platform benchmark start",
        "read",
        ("operator",),
        overrides={"other_org": 403},
    ),
]

# API (issue 6) ---------------------------------------------------------------------
_OWNER = ("owner",)


def _api_key_id(w: object) -> dict[str, int]:
    """An API key of org 1 (made on first use: the World fixture has none)."""
    key = getattr(w, "_api_key", None)
    if key is None:
        from datapolicy.api_auth import apikey_create

        key, _raw = apikey_create(
            actor=w.org1.owner,  # type: ignore[attr-defined]
            organisation=w.org1.org,  # type: ignore[attr-defined]
            name="Fagsystem",
            user=w.org1.therapist_a,  # type: ignore[attr-defined]
            scopes=["read"],
        )
        object.__setattr__(w, "_api_key", key)
    return {"pk": key.pk}


ROWS += [
    Row("api-key-list", "API keys (no secrets)", "list", _OWNER, api=True),
    Row(
        "api-key-list",
        "API key (shown once)",
        "create",
        _OWNER,
        method="post",
        data=lambda w: {"name": "Fagsystem", "user": w.org1.therapist_a.pk, "scopes": ["read"]},
        ok_status=201,
        api=True,
    ),
    Row(
        "api-key-detail",
        "API key",
        "read",
        _OWNER,
        kwargs=_api_key_id,
        overrides={"other_org": 403},  # a therapist elsewhere: wrong role before the object
        api=True,
    ),
    Row(
        "api-key-revoke",
        "API key",
        "revoke",
        _OWNER,
        method="post",
        kwargs=_api_key_id,
        overrides={"other_org": 403},
        api=True,
    ),
]
ROWS += [
    Row("api_keys_page", "API keys page", "read", _OWNER),
    Row(
        "api_keys_page",
        "API key (shown once)",
        "create",
        _OWNER,
        method="post",
        data=lambda w: {"name": "Fagsystem", "user": w.org1.therapist_a.pk, "scopes": ["read"]},
    ),
    Row(
        "api_key_revoke_page",
        "API key",
        "revoke",
        _OWNER,
        method="post",
        kwargs=_api_key_id,
        ok_status=302,
        overrides={"other_org": 403},
    ),
]
