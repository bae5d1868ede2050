"""Deep ensembles (Lakshminarayanan, Pritzel & Blundell 2017, "Simple and scalable predictive
uncertainty estimation using deep ensembles"): the non-Bayesian baseline of the BNN experiments.

M members θ_1 … θ_M start from independent draws N(0, s² I) (s = ``init_scale``) and each
climbs to a mode of log p: one (M, d) parameter tensor minimises

    L(θ_1, …, θ_M) = −Σ_m log p(θ_m)

by Adam (``log_prob`` is batched over the rows, so the members train together but each only
feels its own term; Adam's per-coordinate steps make the sum's scale irrelevant). On a BNN
target log p is the log posterior, so each member is a MAP network (a weight-decayed fit, the
prior's λ as the decay); the original's adversarial training is left out, as in most
BNN benchmarks' ensembles. ``batch_size`` is not used.

Draws. q is the equal-weight mixture of point masses at the members: draw i is member i mod M,
as SVGD's particles (:func:`.svgd.particle_draws`), so ``num_draws`` = M stores each member once
(the default, M = 10) and a multiple of M stores each as often; other counts would weight the
members unequally and are refused. Metrics that need draws from a density (the k-NN and
density KLs) see M distinct points at most.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import Tensor, nn

from sivi_engine.methods.base import CommonSettings, FitResult, Method
from sivi_engine.methods.registry import METHODS
from sivi_engine.methods.svgd import particle_draws
from sivi_engine.methods.training import optimise
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target


@dataclasses.dataclass(frozen=True)
class EnsembleSettings(CommonSettings):
    """``members`` M = 10 and as many stored draws (Lakshminarayanan et al. used M = 5 on the
    UCI regression sets); initial members N(0, s² I) with s = ``init_scale`` (1, as SVGD's
    particles and GVI's q, unless the target sets its own, as bnn_digits does)."""

    families: ClassVar[tuple[str, ...]] = ("training", "initial_scale")

    members: int = 10
    num_draws: int = 10
    init_scale: float = 1.0

    def validate(self) -> None:
        super().validate()
        if self.members < 1:
            raise SettingsError(f"setting 'members': must be >= 1, got {self.members}")
        if self.init_scale <= 0:
            raise SettingsError(f"setting 'init_scale': must be > 0, got {self.init_scale}")
        if self.num_draws % self.members:
            raise SettingsError(
                f"setting 'num_draws': {self.num_draws} draws would weight the {self.members} "
                "members (setting 'members') unequally; give a multiple of members"
            )


def ensemble_loss(target: Target, members: Tensor) -> Tensor:
    """−Σ_m log p(θ_m) over the rows θ_m of ``members`` (M, d)."""
    return -target.log_prob(members).sum()


@METHODS.register("ensemble")
class DeepEnsemble(Method):
    name = "ensemble"
    Settings = EnsembleSettings

    def fit(self, target: Target, settings: EnsembleSettings, device: torch.device) -> FitResult:
        shape = (settings.members, target.dim)
        initial = torch.randn(shape, device=device, dtype=settings.torch_dtype)
        members = nn.Parameter(settings.init_scale * initial)
        trace = optimise(
            lambda step: ensemble_loss(target, members),
            [members],
            settings,
            description=f"ensemble on {target.name}",
            sample=lambda m: particle_draws(members.detach(), m),
        )
        return FitResult(samples=particle_draws(members.detach(), settings.num_draws), trace=trace)
