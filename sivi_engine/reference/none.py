"""No reference: for a target whose posterior no sampler here can draw at a trustworthy length
(the large UCI data sets: a full-batch gradient step costs seconds on protein).

The engine writes ReferenceDraws holding zero draws. The evaluation then scores what needs no
reference, the held-out predictive scores, and says so: no sample metric, no curve against a
reference, no sanity gate (:func:`sivi_engine.steps.evaluate.evaluate`).
"""

from __future__ import annotations

import numpy as np

from sivi_engine.reference.base import ENGINES, ReferenceEngine, ReferenceResult, ReferenceSettings
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target
from sivi_engine.targets.capabilities import HeldOutData

#: What the ReferenceDraws' diagnostics record, and the report repeats.
NO_REFERENCE = "no reference drawn: held-out predictive scores only"


@ENGINES.register("none")
class NoReference(ReferenceEngine):
    name = "none"

    def check(self, target: Target, settings: ReferenceSettings) -> None:
        if not isinstance(target, HeldOutData):
            raise SettingsError(
                f"reference engine 'none': target {target.name!r} has no held-out data, so "
                "without a reference nothing could score its runs; choose exact, stan or sgld"
            )

    def run(self, target: Target, settings: ReferenceSettings) -> ReferenceResult:
        draws = np.empty((1, 0, target.dim), dtype=np.float64)
        return ReferenceResult(draws=draws, diagnostics={"reference": NO_REFERENCE})

    def stored_draws(self, settings: ReferenceSettings) -> int:
        """None: the config's ``num_draws`` (meant for the other engines) sizes nothing here."""
        return 0
