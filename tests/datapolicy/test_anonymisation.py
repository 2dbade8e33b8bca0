"""The anonymisation rules of docs/datapolicy.md, shown on the statistics functions with
the organisation's k (the dashboards apply the same functions; reports are tested in
test_reports.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from stats.anonymise import may_show_therapist_spread, suppress_table, suppress_trajectory


def _table(counts: dict[tuple[int, bool], int]) -> pd.DataFrame:
    index = pd.MultiIndex.from_tuples(list(counts), names=["unit_id", "active"])
    return pd.DataFrame({"episodes": list(counts.values())}, index=index)


@pytest.mark.django_db
class TestRules:
    def test_k_comes_from_the_organisation_and_is_at_least_3(self, org1: Any) -> None:
        from django.db import IntegrityError, transaction

        assert org1.org.small_cell_k == 5
        org1.org.small_cell_k = 2
        with pytest.raises(IntegrityError), transaction.atomic():
            org1.org.save()
        with pytest.raises(ValueError):
            suppress_table(_table({(1, True): 10}), k=2)

    def test_small_cell_hidden_at_org_k(self, org1: Any) -> None:
        k = org1.org.small_cell_k
        shown, reasons = suppress_table(_table({(1, True): 4, (1, False): 0}), k=k)
        assert "5" in str(reasons.loc[(1, True), "episodes"])
        assert np.isnan(shown.loc[(1, True), "episodes"])
        assert shown.loc[(1, False), "episodes"] == 0  # nobody to disclose

    def test_complementary_suppression_unit_cannot_be_recovered_from_total(self) -> None:
        # Unit 1 has 2 active episodes, units 2 and 3 have 7 and 9: the organisation's
        # total 18 is published, so hiding only unit 1 would leave 18 - 7 - 9 = 2.
        table = _table({(1, True): 2, (2, True): 7, (3, True): 9})
        shown, _reasons = suppress_table(table, k=5)
        hidden = shown["episodes"].isna()
        assert hidden.loc[(1, True)] and hidden.sum() >= 2
        # The smallest other unit is the complement; the largest stays visible.
        assert hidden.loc[(2, True)] and not hidden.loc[(3, True)]

    def test_trajectory_points_below_k(self) -> None:
        traj = pd.DataFrame(
            {
                "ors_median": [20.0, 22.0, 25.0],
                "srs_median": [35.0, 36.0, 38.0],
                "n_ors": [8, 5, 4],
                "n_srs": [8, 4, 4],
            },
            index=pd.Index([1, 2, 3], name="session_number"),
        )
        out = suppress_trajectory(traj, k=5)
        assert list(out.index) == [1, 2]  # session 3: both lines < 5
        assert out.loc[2, "ors_median"] == 22.0 and np.isnan(out.loc[2, "srs_median"])

    @pytest.mark.parametrize(("n", "shown"), [(1, False), (2, False), (3, True), (7, True)])
    def test_per_therapist_spread_needs_three_therapists(self, n: int, shown: bool) -> None:
        assert may_show_therapist_spread(n) is shown
