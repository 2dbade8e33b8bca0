"""Permission-matrix rows for the statistics pages and API (see datapolicy/matrix.py)."""

from datapolicy.matrix import Row

ALL_ORG = ("therapist_a", "therapist_b", "leader", "analyst", "dp_admin", "owner")


def _unit(w):  # type: ignore[no-untyped-def]
    return {"unit_id": w.org1.unit.pk}


def _therapist(w):  # type: ignore[no-untyped-def]
    return {"user_id": w.org1.therapist_a.pk}


ROWS = [
    Row(
        "stats_index",
        "list of dashboards",
        "read",
        ALL_ORG,
        anonymised=True,
        fields="links to the dashboards the user may open (unit names)",
    ),
    Row(
        "stats_mine",
        "own figures (Mine tal)",
        "read",
        ("therapist_a", "therapist_b"),
        fields="own statistics table, trajectory, outcome classes, ETR (unsuppressed)",
    ),
    Row(
        "stats_therapist",
        "a therapist's figures",
        "read",
        ("therapist_a",),
        kwargs=_therapist,
        fields="the therapist's own figures; others only under a live own_figures grant",
    ),
    Row(
        "stats_unit",
        "unit dashboard",
        "read",
        ALL_ORG,
        kwargs=_unit,
        anonymised=True,
        fields="anonymised table, trajectory, implementation, data quality (k-suppressed)",
    ),
    Row(
        "stats_organisation",
        "organisation dashboard",
        "read",
        ALL_ORG,
        anonymised=True,
        fields="anonymised table, trajectory, implementation, data quality (k-suppressed)",
    ),
    Row(
        "stats_benchmark",
        "organisation vs all organisations",
        "read",
        ALL_ORG,
        anonymised=True,
        fields="anonymised figures of the organisation and of the platform",
    ),
    Row(
        "stats_platform",
        "cross-organisation benchmark",
        "read",
        ("operator",),
        anonymised=True,
        fields="anonymised platform figures only",
    ),
    Row(
        "stats_export",
        "unit table export",
        "export",
        ALL_ORG,
        kwargs=lambda w: {
            "kind": "unit",
            "scope_id": w.org1.unit.pk,
            "table": "statistics",
            "fmt": "csv",
        },
        anonymised=True,
        fields="the page's table as CSV/XLSX with the same suppression",
    ),
    Row(
        "api_stats_scope",
        "unit statistics (API)",
        "read",
        ALL_ORG,
        kwargs=lambda w: {"scope": "unit", "scope_id": w.org1.unit.pk},
        anonymised=True,
        api=True,
        fields="active/inactive figures, outcome counts, trajectory; null + reason when hidden",
    ),
]
