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

# --- Data-policy administration ----------------------------------------------------

_T = ("therapist_a", "therapist_b")
_DP = ("dp_admin",)
_READERS = ("leader", "analyst", "dp_admin", "owner")

ROWS += [
    Row(
        "dp_grants",
        "shares (grants): own / all with history",
        "read",
        (*_T, "leader", "dp_admin"),
        fields="therapist: own given/received shares, own clients' codes; "
        "leader: received shares (episode numbers); "
        "dp_admin: all shares, episode numbers only (no client codes)",
    ),
    Row("dp_grant_create", "share form", "read", (*_T, "dp_admin")),
    Row(
        "dp_grant_create",
        "share own figures",
        "create",
        (*_T, "dp_admin"),
        method="post",
        # Every allowed persona posts the same valid data; a dp_admin names the grantor.
        data=lambda w: {
            "kind": "own_figures",
            "grantor": w.org1.therapist_a.pk,
            "grantee": w.org1.leader.pk,
            "purpose": "Supervision",
            "starts_at": "2020-01-01T08:00",
            "expires_at": "2099-01-01T08:00",
        },
        ok_status=302,
        overrides={"other_org": 200},  # the form again: the leader is no member there
    ),
    Row(
        "dp_grant_revoke",
        "share",
        "revoke",
        ("therapist_a", "dp_admin"),
        method="post",
        kwargs=lambda w: {"pk": w.grant.pk},
        ok_status=302,
        overrides={"therapist_b": 404},
    ),
    Row(
        "dp_consents",
        "consents: own clients' / all",
        "read",
        (*_T, "dp_admin"),
        fields="therapist: own clients' consents; dp_admin: all consents with client codes",
    ),
    Row(
        "dp_consents",
        "consent",
        "create",
        ("therapist_a", "dp_admin"),
        method="post",
        data=lambda w: {
            "client_code": w.episode.client.code,
            "purpose": "Evaluation",
            "given_on": "2024-01-01",
        },
        ok_status=302,
        # A colleague (or another organisation) cannot find the client: the form again.
        overrides={"therapist_b": 200, "other_org": 200},
    ),
    Row(
        "dp_consent_withdraw",
        "consent",
        "withdraw",
        ("therapist_a", "dp_admin"),
        method="post",
        kwargs=lambda w: {"pk": w.consent.pk},
        ok_status=302,
        overrides={"therapist_b": 404},
    ),
    Row(
        "dp_access_log",
        "access log",
        "search",
        _DP,
        method="post",
        data=lambda w: {"client_code": w.episode.client.code},
        ok_status=302,
        fields="time, user name, role, action, object type and id, client number, IP",
    ),
    Row(
        "dp_access_log_export",
        "one client's access log (CSV, right of access)",
        "export",
        _DP,
        data=lambda w: {"client": w.episode.client_id},
    ),
    Row(
        "dp_reports",
        "reports",
        "read",
        _READERS,
        anonymised=True,
        fields="title, period, status (aggregates only)",
    ),
    Row("dp_report_create", "report form", "read", ("analyst",), anonymised=True),
    Row(
        "dp_report_create",
        "report (draft, figures frozen)",
        "create",
        ("analyst",),
        method="post",
        # The last whole year: an unfinished period is not offered (period_choices).
        data=lambda w: {
            "title": "Året",
            "scope": "org",
            "period": str(_year() - 1),
            "age_group": "",
        },
        ok_status=302,
    ),
    Row(
        "dp_report",
        "report with frozen anonymised figures",
        "read",
        _READERS,
        kwargs=lambda w: {"pk": w.report.pk},
        anonymised=True,
        overrides={"other_org": 403},
        fields="suppressed aggregates (k), trajectory points with n >= k, history",
    ),
    Row(
        "dp_report_approve",
        "report",
        "approve",
        _DP,  # the named approver; the author (analyst) and other readers are refused
        method="post",
        kwargs=lambda w: {"pk": w.report.pk},
        ok_status=302,
        overrides={"other_org": 403},
    ),
    Row(
        "dp_report_withdraw",
        "report",
        "withdraw",
        ("analyst", "dp_admin"),
        method="post",
        kwargs=lambda w: {"pk": w.report.pk},
        ok_status=302,
        overrides={"other_org": 403},
    ),
    Row(
        "dp_report_export",
        "approved report (XLSX)",
        "export",
        ("analyst", "dp_admin"),
        kwargs=lambda w: {"pk": w.approved_report.pk},
        overrides={"other_org": 403},
    ),
    Row("dp_settings", "retention, k, report approvers", "read", _DP),
    Row(
        "dp_settings",
        "retention, k, report approvers",
        "update",
        _DP,
        method="post",
        data=lambda w: {"retention_days": "730", "small_cell_k": "5"},
        ok_status=302,
    ),
    Row("dp_retention_run", "retention run", "run", _DP, method="post", ok_status=302),
    Row(
        "dp_memberships",
        "users and roles per unit",
        "read",
        ("dp_admin", "owner"),
        fields="name, e-mail, unit, role",
    ),
    Row(
        "dp_membership_active",
        "membership (deactivate)",
        "update",
        ("owner",),
        method="post",
        kwargs=lambda w: {"pk": w.org1.therapist_b.memberships.get().pk},
        data=lambda w: {"active": "0"},
        ok_status=302,
        overrides={"other_org": 403},
    ),
    Row("dp_user_import", "CSV user import", "read", ("owner",)),
    Row(
        "dp_user_import",
        "CSV user import (invalid file: line-numbered errors, nothing created)",
        "create",
        ("owner",),
        method="post",
        data=lambda w: {"file": _csv_upload()},
    ),
]


def _year() -> int:
    import datetime as dt

    return dt.date.today().year


def _csv_upload() -> object:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("users.csv", b"name,email,unit,role\nX,not-an-email,ung,therapist\n")


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
            user=w.org1.owner,  # type: ignore[attr-defined]  # at most the creator's roles
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
        data=lambda w: {"name": "Fagsystem", "user": w.org1.owner.pk, "scopes": ["read"]},
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
# The key pages: the system owner manages the organisation's keys; a therapist only keys
# acting as themselves (a key never acts with a role its creator lacks).
_KEY_PAGE = ("owner", "therapist_a", "therapist_b")
ROWS += [
    Row(
        "api_keys_page",
        "API keys page",
        "read",
        _KEY_PAGE,
        fields="owner: all keys; therapist: own keys (no secrets)",
    ),
    Row(
        "api_keys_page",
        "API key (shown once)",
        "create",
        _KEY_PAGE,
        method="post",
        # A therapist's key always acts as the therapist; the owner's as the owner.
        data=lambda w: {"name": "Fagsystem", "user": w.org1.owner.pk, "scopes": ["read"]},
    ),
    Row(
        "api_key_revoke_page",
        "the system owner's API key",
        "revoke",
        _KEY_PAGE,
        method="post",
        kwargs=_api_key_id,
        ok_status=302,
        overrides={"therapist_a": 404, "therapist_b": 404},  # not their key
    ),
]
