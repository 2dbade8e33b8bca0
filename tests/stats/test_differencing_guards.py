"""Guards against recovering suppressed figures (second review): data-quality counts are
suppressed too, anonymised API figures only for the fixed reference dates, and an
organisation scope id that is not the caller's organisation is 404."""

import datetime as dt

from django.urls import reverse

from stats.selectors import period_as_of
from tests.conftest import add_therapist, make_episode, record

TODAY = dt.date.today()
# The last closed month-end: anonymised figures are published there (stats.publications).
END = period_as_of("month")[1]


def test_quality_counts_are_suppressed_for_a_leader(org1, login) -> None:
    ep = make_episode(org1, code="QQ-1")
    record(ep, END - dt.timedelta(days=20), ors="33.0", srs="38.0")  # intake above cutoff
    record(ep, END - dt.timedelta(days=10), ors="35.0", srs="38.0")
    # Two more therapists' clients (below the cutoff): a unit of fewer than 3 therapists
    # would be hidden as a whole, and this test is about the quality count itself.
    for i, t in enumerate((org1.therapist_b, add_therapist(org1, "therapist_c"))):
        record(make_episode(org1, code=f"QQ-{i + 2}", therapist=t), END, ors="12.0")
    c = login(org1.leader)
    text = c.get(f"/stats/export/unit/{org1.unit.pk}/quality.csv").content.decode("utf-8-sig")
    # hidden, and read as every hidden cell (review round 10: never "< 5")
    assert "ORS ved start over cutoff;skjult (færre end 5 klienter, eller skjult" in text
    assert "ORS ved start over cutoff;1" not in text
    page = c.get(f"/stats/unit/{org1.unit.pk}/").content.decode()
    assert "&lt; 5" not in page and "færre end 5 klienter, eller skjult så" in page


def test_anonymised_api_refuses_arbitrary_reference_dates(org1, login) -> None:
    record(make_episode(org1, code="DD-1"), TODAY - dt.timedelta(days=10), ors="10.0")
    url = reverse("api_stats_scope", kwargs={"scope": "unit", "scope_id": org1.unit.pk})
    c = login(org1.leader)
    # A past date that is no fixed reference date (not a month's last day; the test
    # used to fail on days when three days back was a month end, e.g. 3 December).
    odd = TODAY - dt.timedelta(days=3)
    while (odd + dt.timedelta(days=1)).day == 1:
        odd -= dt.timedelta(days=1)
    year_end = dt.date(TODAY.year - 1, 12, 31)
    response = c.get(url, {"as_of": odd.isoformat()})
    assert response.status_code == 400
    assert "as_of" in response.json()
    assert c.get(url, {"as_of": year_end.isoformat()}).status_code == 200
    assert c.get(url).status_code == 200
    # A therapist's own (not anonymised) figures may be asked for any past date.
    own = reverse("api_stats_scope", kwargs={"scope": "therapist", "scope_id": org1.therapist_a.pk})
    assert login(org1.therapist_a).get(own, {"as_of": odd.isoformat()}).status_code == 200


def test_organisation_scope_of_another_id_is_404(org1, org2, login) -> None:
    c = login(org1.leader)
    for oid in (org2.org.pk, 999999):
        url = reverse("api_stats_scope", kwargs={"scope": "organisation", "scope_id": oid})
        assert c.get(url).status_code == 404
    own = reverse("api_stats_scope", kwargs={"scope": "organisation", "scope_id": org1.org.pk})
    assert c.get(own).status_code == 200
