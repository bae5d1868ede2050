"""Exact i.i.d. reference draws for targets with an analytic sampler."""

from __future__ import annotations

import torch

from sivi_engine.reference.base import ENGINES, ReferenceEngine, ReferenceResult, ReferenceSettings
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target


@ENGINES.register("exact")
class ExactEngine(ReferenceEngine):
    name = "exact"

    def check(self, target: Target, settings: ReferenceSettings) -> None:
        if not target.has_exact_sampler:
            raise SettingsError(
                f"reference engine 'exact': target {target.name!r} has no exact sampler"
            )

    def run(self, target: Target, settings: ReferenceSettings) -> ReferenceResult:
        generator = torch.Generator().manual_seed(settings.seed)
        draws = target.sample(settings.num_draws, generator).double().numpy()
        return ReferenceResult(draws=draws[None], diagnostics={"iid": True})
