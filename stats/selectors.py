"""Read side of the statistics (selectors)."""

from __future__ import annotations

from typing import Any

from .etr import EtrModel, etr_fit
from .frames import org_stats_settings, sessions_frame_for_org


def etr_model_for(organisation: Any) -> EtrModel:
    """The organisation's ETR reference model, fitted on its own episodes.

    Computed from the organisation's rows; the statistics snapshots store it so that a
    page reads it instead of fitting it (see stats.services).
    """
    frame = sessions_frame_for_org(organisation.pk)
    return etr_fit(frame, org_stats_settings(organisation))
