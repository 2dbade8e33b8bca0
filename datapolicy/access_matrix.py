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
