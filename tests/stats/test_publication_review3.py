"""A third review's attack on complement_parts, kept as a regression test."""

from __future__ import annotations

from tests.stats.test_publications import MARCH, TREE, episode, held

RI, RD, NRC = 0b1111 | 1 << 4, 0b1111 | 1 << 5, 0b1111 | 1 << 6


def test_part_added_by_complement_parts_is_derivable_from_its_column() -> None:
    old = [episode(i, 10, bits=NRC) for i in range(5)] + [
        episode(5 + i, 10, bits=RI) for i in range(7)
    ]
    old += [episode(100 + i, 11, bits=RI) for i in range(6)]
    new = list(old)
    new += [episode(200 + i, 10, bits=RD, **MARCH) for i in range(9)]  # u10: +9 RD
    new += [episode(220 + i, 10, bits=RI, **MARCH) for i in range(9)]  # u10: +9 RI
    new.append(episode(300, 11, bits=RD, **MARCH))  # u11: +1 RD (the client)
    new += [episode(310 + i, 11, bits=NRC, **MARCH) for i in range(9)]  # u11: +9 NRC
    out = held(old, new)
    u11 = out[("unit:11", "all")]
    assert "active:reliable_deterioration" in u11  # the 1-client change: held
    assert "active:no_reliable_change" in u11  # its rule-2 complement
    assert "active:n_classified" not in u11  # the row total stays shown
    # NRC changed at u11 (9) and the organisation (9) only; u10 unchanged. Held only at u11:
    #   NRC_11 = NRC_org - NRC_10 (both shown) ; RD_11 = nc_11 - RI_11 - NRC_11  -> the client.
    org = out.get(("organisation:1", "all"), set())
    assert "active:no_reliable_change" in org, out


def test_within_date_grid_does_not_rescue_it() -> None:
    """March levels of the scenario above through family_masks with the held tokens:
    the cells for RD_11 = nc_11 - RI_11 - (NRC_org - NRC_10) must not all be shown."""
    from stats.publications import REASON_CHANGED
    from stats.siblings import family_masks

    def payload(ri: int, rd: int, nrc: int) -> dict:
        n = ri + rd + nrc
        side = {
            "episodes": n,
            "sessions": 2 * n,
            "n_ors_start": n,
            "ors_start": 15.0,
            "n_ors_change": n,
            "ors_change": 3.0,
            "n_classified": n,
            "reliable_improvement": ri,
            "reliable_deterioration": rd,
            "no_reliable_change": nrc,
            "clinically_significant": 0,
        }
        return {"table": {"active": side}, "n_therapists": 3, "n_therapists_direct": 0}

    old = [episode(i, 10, bits=NRC) for i in range(5)] + [
        episode(5 + i, 10, bits=RI) for i in range(7)
    ]
    old += [episode(100 + i, 11, bits=RI) for i in range(6)]
    new = list(old)
    new += [episode(200 + i, 10, bits=RD, **MARCH) for i in range(9)]
    new += [episode(220 + i, 10, bits=RI, **MARCH) for i in range(9)]
    new.append(episode(300, 11, bits=RD, **MARCH))
    new += [episode(310 + i, 11, bits=NRC, **MARCH) for i in range(9)]
    h = held(old, new)
    parts = {
        ("organisation", 1, "all"): payload(22, 10, 14),
        ("unit", 10, "all"): payload(16, 9, 5),
        ("unit", 11, "all"): payload(6, 1, 9),
    }
    m = family_masks(parts, TREE, k=5, held=h, held_reason=REASON_CHANGED)
    shown = lambda kind, sid, c: c not in m[(kind, sid, "all")]["table"]["active"]  # noqa: E731
    # NRC_10 (5 in Feb and March: unchanged, Feb showed it), RI_11 (6, unchanged):
    # with the organisation's NRC and unit 11's classified both shown,
    # RD_11 = 16 - 6 - (14 - 5) = 1, the one client's deterioration. One must be hidden.
    assert not (
        shown("organisation", 1, "no_reliable_change") and shown("unit", 11, "n_classified")
    )
