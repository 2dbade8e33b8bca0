"""Permission-matrix rows for the clients app's pages (see datapolicy/matrix.py)."""

from datapolicy.matrix import Row

THERAPISTS = ("therapist_a", "therapist_b")

ROWS = [
    Row("caseload", "own caseload", "read", THERAPISTS),
]
