"""MetricSets as the evaluation builds them, for tests that write their own: every metric any
producer declares (the metric groups, the targets' held-out scores, the evaluation's status and
every registered method's diagnostics) carries its metadata."""

from __future__ import annotations

from typing import Any

import xarray as xr

from sivi_engine import artifacts, metric_catalogue
from sivi_engine.methods import METHODS
from sivi_engine.metric_metadata import union
from sivi_engine.steps.evaluate import STATUS

#: Metadata of every declared metric, in the evaluation's legend order.
DESCRIBE = metric_catalogue.describer(STATUS, union(METHODS[name].diagnostics for name in METHODS))


def metric_set(*args: Any, **kwargs: Any) -> xr.Dataset:
    """:func:`sivi_engine.artifacts.metric_set` with :data:`DESCRIBE`."""
    return artifacts.metric_set(*args, describe=DESCRIBE, **kwargs)
