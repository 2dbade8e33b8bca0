"""The bulk read parses the COPY stream while it arrives (a reader thread feeds pyarrow
from a pipe). An empty result is an empty frame, and a failing query raises its own error
instead of hanging or returning a partial frame."""

from __future__ import annotations

import pytest
from django.db import connection

from stats.frames import FRAME_COLUMNS, FRAME_SQL, _copy_frame

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.fail("needs PostgreSQL")


def test_empty_result_is_an_empty_typed_frame():
    df = _copy_frame(FRAME_SQL.format(where="FALSE"))
    assert list(df.columns) == FRAME_COLUMNS
    assert len(df) == 0


def test_rows_are_parsed_with_their_types():
    sql = (
        "SELECT 1, 2, 3, 4, 'adult', NULL::date, DATE '2026-01-05', 1, 21.5, NULL::numeric "
        "UNION ALL "
        "SELECT 1, 2, 3, 4, 'child', DATE '2026-02-01', DATE '2026-01-19', 2, NULL, 38.1"
    )
    df = _copy_frame(sql)
    assert df["episode_id"].tolist() == [4, 4]
    assert df["session_number"].dtype == "int64"
    assert df["ors"].isna().tolist() == [False, True]
    assert df.loc[0, "ors"] == 21.5 and df.loc[1, "srs"] == 38.1
    assert str(df.loc[1, "closed_on"].date()) == "2026-02-01" and df["closed_on"].isna()[0]
    assert list(df["age_group"].astype(str)) == ["adult", "child"]


def test_a_failing_query_raises_and_does_not_hang():
    with pytest.raises(Exception, match="division by zero"):
        _copy_frame("SELECT 1 / (g - 50000) FROM generate_series(1, 100000) g")


def test_the_batched_read_gives_the_same_frame_as_the_copy():
    """An organisation's frame is read as server-built CSV chunks (stats.frames.
    _batched_frame): same rows, same types, NULLs kept in their columns."""
    import pandas as pd

    from stats.frames import _batched_frame

    sql = (
        "SELECT 1, 2, 3, g, CASE WHEN g % 3 = 0 THEN 'child' ELSE 'adult' END, "
        "CASE WHEN g % 2 = 0 THEN DATE '2026-02-01' END, DATE '2026-01-05' + g, g % 7 + 1, "
        "CASE WHEN g % 5 <> 0 THEN (g % 400) / 10.0 END, CASE WHEN g % 4 <> 0 THEN 38.1 END "
        "FROM generate_series(1, 3000) g"
    )
    a = _copy_frame(sql).sort_values("episode_id").reset_index(drop=True)
    b = _batched_frame(sql).sort_values("episode_id").reset_index(drop=True)
    assert len(b) == 3000 and b["ors"].isna().sum() == 600 and b["closed_on"].isna().sum() == 1500
    pd.testing.assert_frame_equal(a, b, check_categorical=False)
    empty = _batched_frame(FRAME_SQL.format(where="FALSE"))
    assert list(empty.columns) == FRAME_COLUMNS and len(empty) == 0
