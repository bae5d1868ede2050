"""Doubly semi-implicit variational inference (DSIVI; Molchanov, Kharitonov, Sobolev & Vetrov,
AISTATS 2019, "Doubly semi-implicit variational inference").

Both q and the target may be semi-implicit. With K mixing draws on each side, DSIVI maximises

    L_K(φ) = E[log p̂_K(x) − log((1/(K+1)) (q(x | ψ₀) + Σ_{k=1..K} q(x | ψ_k)))],
    log p̂_K(x) = log ℓ(x) + log((1/K) Σ_{k=1..K} π(x | ζ_k)),   ζ_k ~ π(ζ),

where x ~ q(x | ψ₀): the q-side term is SIVI's upper estimate of log q(x) and the target side
a Jensen lower estimate of log p(x), so L_K ≤ ELBO(q) (and → ELBO as K → ∞). A target with a
semi-implicit factor declares :class:`~sivi_engine.targets.capabilities.SemiImplicitDensity`
and the method trains on its ``log_prob_estimate`` (``prior_draws`` draws); on any other
target the p-side term is ``log_prob`` and DSIVI is SIVI.

``family`` picks q (:data:`FAMILIES`): the semi-implicit Gaussian of the other SIVI methods;
``laplace``, the Laplace distribution written as ∫ N(x | μ, τ) Exp(τ | λ) dτ and trained through
that mixture only (the paper's §5.1; its closed-form density gives the exact KL(q‖p) at every
checkpoint, ``curve_kl_qp_exact``, and KL by quadrature in 1-D); ``gaussian``, an explicit
mean-field Gaussian (the hierarchical-prior BNN of §5.3, where only the prior is
semi-implicit).

``stages`` > 1 is the paper's sequential approximation (§5.2): q₁ is fitted to the target, then
each q_s, a fresh member of the family, to q_{s−1} as a semi-implicit target, for ``iterations``
steps per stage with the learning-rate schedule restarted. After each stage the bounds
−U_K ≤ KL(q_s‖p) ≤ −L_K against the original, normalised target (``bound_draws`` mixing
draws, :func:`~sivi_engine.families.semi_implicit.elbo_sandwich`) are the diagnostics
``kl_lower_stage{s}`` and ``kl_upper_stage{s}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from sivi_engine.families.gaussian import ELBO_DIAGNOSTICS, GaussianFamily, elbo_terms
from sivi_engine.families.laplace_mixture import (
    LaplaceScaleMixture,
    best_laplace_kl,
    laplace_kl_by_quadrature,
)
from sivi_engine.families.semi_implicit import SANDWICH_DIAGNOSTICS, elbo_sandwich
from sivi_engine.methods.base import FitResult, Method, Trace
from sivi_engine.methods.registry import METHODS
from sivi_engine.methods.semi_implicit_common import SemiImplicitSettings, build_family
from sivi_engine.methods.sivi import log_mixture_estimate
from sivi_engine.methods.training import chain_traces, optimise
from sivi_engine.metric_metadata import Catalogue, MetricInfo, divergence
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target
from sivi_engine.targets.capabilities import SemiImplicitDensity

LogDensity = Callable[[Tensor], Tensor]


@dataclasses.dataclass(frozen=True)
class DSIVISettings(SemiImplicitSettings):
    """K = 100 mixing draws on both sides unless ``prior_draws`` says otherwise; the family's
    and optimiser's settings as SIVI's (:class:`~sivi_engine.methods.sivi.SIVISettings`).
    ``init_scale``: the ``gaussian`` family's initial sd. ``bound_draws`` / ``bound_samples``:
    the mixing draws and the x draws of the sequential bounds (the paper evaluates with
    K = 10⁴); ``kl_samples``: draws of the Monte-Carlo KL of an explicit q (10⁴ in §5.1)."""

    families: ClassVar[tuple[str, ...]] = ("training", "semi_implicit", "initial_scale")

    family: Literal["semi_implicit", "laplace", "gaussian"] = "semi_implicit"
    mixing_draws: int = 100
    prior_draws: int | None = None
    stages: int = 1
    init_scale: float = 1.0
    bound_draws: int = 10_000
    bound_samples: int = 1000
    kl_samples: int = 10_000

    def validate(self) -> None:
        super().validate()
        for name in ("mixing_draws", "stages", "bound_draws", "bound_samples", "kl_samples"):
            if getattr(self, name) < 1:
                raise SettingsError(f"setting {name!r}: must be >= 1, got {getattr(self, name)}")
        if self.prior_draws is not None and self.prior_draws < 1:
            raise SettingsError(
                f"setting 'prior_draws': must be >= 1 or null, got {self.prior_draws}"
            )
        if self.init_scale <= 0:
            raise SettingsError(f"setting 'init_scale': must be > 0, got {self.init_scale}")
        if self.stages > 1 and self.family == "gaussian":
            raise SettingsError(
                "setting 'stages': a sequential fit needs a semi-implicit family "
                "('family': semi_implicit or laplace), got family 'gaussian'"
            )

    @property
    def target_draws(self) -> int:
        """K of the target's semi-implicit factor."""
        return self.prior_draws if self.prior_draws is not None else self.mixing_draws


class SurrogateDraw(NamedTuple):
    """Reparameterised draws x with an estimate of log q(x) per row whose mean bounds
    E_q[log q] from above (exact for an explicit q)."""

    x: Tensor
    log_q: Tensor


def semi_implicit_surrogate(q: nn.Module, n: int, k: int) -> SurrogateDraw:
    """SIVI's estimate log((1/(K+1)) Σ_{k=0..K} q(x | ψ_k)) with ψ₀ the draw's own."""
    draw = q.mixture_draws(n, k)
    return SurrogateDraw(draw.x, log_mixture_estimate(draw.own, draw.others))


def gaussian_surrogate(q: GaussianFamily, n: int, k: int) -> SurrogateDraw:
    """x = μ + Sε and −H(q) for every row (E_q[log q] = −H(q) exactly)."""
    x = q.rsample(n)
    return SurrogateDraw(x, -q.entropy().expand(n))


class Family(NamedTuple):
    """How to build a q of the family and draw from it with its log-density estimate."""

    build: Callable[[int, DSIVISettings], nn.Module]
    surrogate: Callable[[nn.Module, int, int], SurrogateDraw]


FAMILIES: dict[str, Family] = {
    "semi_implicit": Family(
        lambda dim, s: build_family(dim, s, torch.device("cpu")), semi_implicit_surrogate
    ),
    "laplace": Family(lambda dim, s: LaplaceScaleMixture(dim), semi_implicit_surrogate),
    "gaussian": Family(
        lambda dim, s: GaussianFamily.standard(dim, "diagonal", s.init_scale), gaussian_surrogate
    ),
}


def target_estimate(target: Target, k: int) -> LogDensity:
    """log p̂_K: the target's ``log_prob_estimate`` when it has a semi-implicit factor, else its
    ``log_prob``."""
    if isinstance(target, SemiImplicitDensity):
        return lambda x: target.log_prob_estimate(x, k)
    return target.log_prob


def fitted_estimate(q: nn.Module, k: int) -> LogDensity:
    """log q̂_K(x) = log((1/K) Σ_k q(x | ψ_k)) of a fitted, frozen q (a sequential stage's
    target); no gradient reaches q."""
    return lambda x: q.log_prob_estimate(x, k)


def stage_bound_info(side: str) -> Callable[[str], MetricInfo]:
    """The entry of ``kl_<side>_stage<s>``."""

    def build(stage: str) -> MetricInfo:
        bound = "−U_K" if side == "lower" else "−L_K"
        return MetricInfo(
            f"DSIVI's sequential approximation: {side} bound on KL(q_{stage}‖p) after stage "
            f"{stage} ({bound}, K = bound_draws)",
            "lower",
            "↓",
            bound=0.0,
            kind="diagnostic",
            unit="nats",
        )

    return build


#: The diagnostics of a DSIVI fit by family: the ELBO sandwich of a semi-implicit or Laplace q,
#: the Laplace's exact KL (at every checkpoint too) and, in 1-D, its KL by quadrature and the
#: family's optimum; the Gaussian family's exact ELBO; the bounds after each stage.
DIAGNOSTICS = Catalogue(
    sometimes={
        **SANDWICH_DIAGNOSTICS.named,
        **ELBO_DIAGNOSTICS.named,
        "kl_qp_exact": divergence(
            "KL(q‖p) by Monte Carlo over q's draws with both exact log-densities (an explicit q:"
            " DSIVI's Laplace family; method setting kl_samples draws)"
        ).marked("diagnostic", "nats"),
        "kl_qp_quadrature": divergence(
            "KL(q‖p) of the fitted explicit 1-D q by adaptive quadrature (exact up to 1e-8)"
        ),
        "kl_qp_family_optimum": MetricInfo(
            "least KL(q‖p) over q's family by quadrature and Nelder–Mead: the floor any fit of"
            " that family can reach",
            "—",
            "",
            bound=0.0,
            kind="diagnostic",
            unit="nats",
        ),
    },
    numbered={
        **SANDWICH_DIAGNOSTICS.numbered,
        r"kl_lower_stage(\d+)": stage_bound_info("lower"),
        r"kl_upper_stage(\d+)": stage_bound_info("upper"),
    },
)


def exact_kl_monitor(q: LaplaceScaleMixture, target: Target, n: int) -> dict[str, float]:
    """KL(q‖p) ≈ mean of log q(x) − log p(x) over n draws of q (exact log-densities)."""
    x = q.sample(n)
    return {"kl_qp_exact": float((q.log_prob(x) - target.log_prob(x)).mean())}


def laplace_diagnostics(
    q: LaplaceScaleMixture, target: Target, settings: DSIVISettings
) -> dict[str, float]:
    """The Monte-Carlo KL of the fitted Laplace, and for a 1-D normalised target the same KL by
    quadrature and the family's best KL (its optimum by quadrature), the reference line of the
    paper's §5.1."""
    out = exact_kl_monitor(q, target, settings.kl_samples)
    if target.dim == 1 and target.normalised:

        def log_p(points: np.ndarray) -> np.ndarray:
            x = torch.as_tensor(points, dtype=torch.float64)[:, None]
            return target.log_prob(x).numpy()

        loc, scale = float(q.loc.detach()[0]), float(q.scale().detach()[0])
        out["kl_qp_quadrature"] = laplace_kl_by_quadrature(loc, scale, log_p)
        out["kl_qp_family_optimum"] = best_laplace_kl(log_p)[0]
    return out


def stage_bounds(
    q: nn.Module, target: Target, settings: DSIVISettings, stage: int
) -> dict[str, float]:
    """−U_K ≤ KL(q‖p) ≤ −L_K with K = ``bound_draws`` (exact for a normalised target)."""
    k = settings.bound_draws
    bounds = elbo_sandwich(q, target, ks=(k,), num_samples=settings.bound_samples)
    return {
        f"kl_lower_stage{stage}": -bounds[f"elbo_upper_k{k}"],
        f"kl_upper_stage{stage}": -bounds[f"elbo_lower_k{k}"],
    }


@METHODS.register("dsivi")
class DSIVI(Method):
    name = "dsivi"
    Settings = DSIVISettings
    smoke_settings = {"mixing_draws": 5}
    diagnostics = DIAGNOSTICS

    def fit_stage(
        self,
        log_p: LogDensity,
        target: Target,
        settings: DSIVISettings,
        device: torch.device,
        description: str,
    ) -> tuple[nn.Module, Trace]:
        """One DSIVI fit of a fresh q to ``log_p``."""
        family = FAMILIES[settings.family]
        q = family.build(target.dim, settings).to(device=device, dtype=settings.torch_dtype)

        def loss(step: int) -> Tensor:
            """−L_K on a batch: mean of log q̂(x) − log p̂(x)."""
            draw = family.surrogate(q, settings.batch_size, settings.mixing_draws)
            return (draw.log_q - log_p(draw.x)).mean()

        monitor = None
        if settings.family == "laplace" and target.normalised:
            monitor = lambda: exact_kl_monitor(q, target, settings.kl_samples)  # noqa: E731
        trace = optimise(
            loss, q.parameters(), settings, description, sample=q.sample, monitor=monitor
        )
        return q, trace

    def fit(self, target: Target, settings: DSIVISettings, device: torch.device) -> FitResult:
        log_p = target_estimate(target, settings.target_draws)
        traces, diagnostics = [], {}
        for stage in range(1, settings.stages + 1):
            description = f"dsivi on {target.name}, stage {stage}/{settings.stages}"
            q, trace = self.fit_stage(log_p, target, settings, device, description)
            traces.append(trace)
            q.requires_grad_(False)
            if settings.stages > 1 and target.normalised:
                with torch.no_grad():
                    diagnostics |= stage_bounds(q, target, settings, stage)
            log_p = fitted_estimate(q, settings.target_draws)
        with torch.no_grad():
            if settings.family == "laplace" and target.normalised:
                diagnostics |= laplace_diagnostics(q, target, settings)
            if settings.family == "gaussian":
                diagnostics |= elbo_terms(q, target, settings.kl_samples)
            else:
                diagnostics |= elbo_sandwich(q, target)
        samples = q.sample(settings.num_draws)
        return FitResult(samples=samples, trace=chain_traces(traces), diagnostics=diagnostics)
