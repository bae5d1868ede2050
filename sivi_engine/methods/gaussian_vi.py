"""Gaussian black-box variational inference (ADVI; Kucukelbir et al. 2017): ``gvi_mf``, ``gvi_fr``.

q = N(μ, S Sᵀ) maximises the reparameterised evidence lower bound

    ELBO(μ, S) = E_ε[log p(μ + S ε)] + H(q),   H(q) = (d/2) log(2πe) + log |det S|,

with the expectation estimated by ``batch_size`` fresh draws ε ~ N(0, I) per step and the
entropy analytic. ``gvi_mf`` uses a diagonal S (mean field), ``gvi_fr`` a full-rank S, by
default the Cholesky factor; see :mod:`sivi_engine.families.gaussian` for the parametrisations.

With ``scale: square`` and ``optimizer: sgd``, gradient ascent on (μ, A) moves every draw
x = μ + Aε exactly as SVGD moves its particles under the kernel 1 + (x − μ)ᵀΣ⁻¹(y − μ)
(Chu, Minami & Fukumizu 2020; derivation in tests/test_svgd_gvi_livi.py).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar, Literal

import torch
from torch import Tensor

from sivi_engine.families.gaussian import ELBO_DIAGNOSTICS, GaussianFamily, elbo_terms
from sivi_engine.methods.base import CommonSettings, FitResult, Method, Trace
from sivi_engine.methods.registry import METHODS
from sivi_engine.methods.training import optimise
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target


@dataclasses.dataclass(frozen=True)
class GaussianVISettings(CommonSettings):
    """Initialisation N(0, init_scale² I) as ADVI (μ = 0, ω = log σ = 0). The optimiser, batch
    and schedule are the shared defaults (Adam lr 1e-3, batch 500), so that every method of the
    benchmark gets the same budget; ADVI itself used one draw and an adaptive step sequence.
    ``elbo_samples`` draws estimate the fitted q's ELBO (diagnostics ``elbo``, and
    ``elbo_kl_term`` on a target with a closed-form hierarchical prior)."""

    families: ClassVar[tuple[str, ...]] = ("training", "initial_scale")

    init_scale: float = 1.0
    optimizer: Literal["adam", "sgd"] = "adam"
    elbo_samples: int = 1000

    def validate(self) -> None:
        super().validate()
        if self.init_scale <= 0:
            raise SettingsError(f"setting 'init_scale': must be > 0, got {self.init_scale}")
        if self.elbo_samples < 1:
            raise SettingsError(f"setting 'elbo_samples': must be >= 1, got {self.elbo_samples}")


@dataclasses.dataclass(frozen=True)
class FullRankSettings(GaussianVISettings):
    """``scale``: ``cholesky`` (Σ = LLᵀ, L lower triangular with exp-diagonal; ADVI's full-rank
    family) or ``square`` (Σ = AAᵀ, A unconstrained; the BBVI ≡ SVGD parametrisation)."""

    scale: Literal["cholesky", "square"] = "cholesky"


def elbo(q: GaussianFamily, target: Target, eps: Tensor) -> Tensor:
    """Reparameterised ELBO estimate mean_ε log p(μ + Sε) + H(q) over the rows of ``eps``."""
    return target.log_prob(q.transform(eps)).mean() + q.entropy()


OPTIMISERS = {
    "adam": lambda params, s: torch.optim.Adam(params, lr=s.lr, betas=tuple(s.betas)),
    "sgd": lambda params, s: torch.optim.SGD(params, lr=s.lr),
}


class GaussianVI(Method):
    """Shared fit of both Gaussian families; subclasses name the scale parametrisation."""

    Settings: ClassVar[type[GaussianVISettings]] = GaussianVISettings
    diagnostics = ELBO_DIAGNOSTICS

    @staticmethod
    @abc.abstractmethod
    def parametrisation(settings: GaussianVISettings) -> str:
        """The scale parametrisation's name in :data:`~sivi_engine.families.gaussian.SCALES`."""

    def fit_family(
        self, target: Target, settings: GaussianVISettings, device: torch.device
    ) -> tuple[GaussianFamily, Trace]:
        """Maximise the ELBO; returns the fitted q (its μ and Σ are readable) and the trace."""
        q = GaussianFamily.standard(target.dim, self.parametrisation(settings), settings.init_scale)
        q = q.to(device=device, dtype=settings.torch_dtype)
        like = {"device": device, "dtype": q.loc.dtype}

        def loss(step: int) -> Tensor:
            return -elbo(q, target, torch.randn(settings.batch_size, target.dim, **like))

        params = list(q.parameters())
        trace = optimise(
            loss,
            params,
            settings,
            description=f"{self.name} on {target.name}",
            optimiser=OPTIMISERS[settings.optimizer](params, settings),
            sample=q.sample,
        )
        return q, trace

    def fit(self, target: Target, settings: GaussianVISettings, device: torch.device) -> FitResult:
        q, trace = self.fit_family(target, settings, device)
        with torch.no_grad():
            diagnostics = elbo_terms(q, target, settings.elbo_samples)
        return FitResult(samples=q.sample(settings.num_draws), trace=trace, diagnostics=diagnostics)


@METHODS.register("gvi_mf")
class MeanFieldGaussianVI(GaussianVI):
    name = "gvi_mf"
    Settings = GaussianVISettings

    @staticmethod
    def parametrisation(settings: GaussianVISettings) -> str:
        return "diagonal"


@METHODS.register("gvi_fr")
class FullRankGaussianVI(GaussianVI):
    name = "gvi_fr"
    Settings = FullRankSettings

    @staticmethod
    def parametrisation(settings: FullRankSettings) -> str:
        return settings.scale
