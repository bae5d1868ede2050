"""Unbiased implicit variational inference (UIVI; Titsias & Ruiz, AISTATS 2019).

UIVI follows the reparameterised gradient of KL(q_φ‖p) = E_q[log q_φ(x) − log p(x)] for the
semi-implicit q_φ (x = μ_φ(z) + σ ⊙ ε). The entropy part needs the marginal score, which is
an expectation under the reverse conditional q_φ(z | x) ∝ N(z; 0, I) q_φ(x | z):

    ∇_φ E_q[log q_φ(x)] = E_q[ ∇_x log q_φ(x)ᵀ ∂x/∂φ ],
    ∇_x log q_φ(x) = E_{q_φ(z | x)}[ ∇_x log q_φ(x | z) ] = E_{q_φ(z | x)}[ −(x − μ_φ(z)) / σ² ]

(Titsias & Ruiz 2019, §3). For each draw (x, z₀) the expectation is estimated by HMC on
z | x started at z₀, which is an exact draw of q_φ(z | x), so the chain starts in stationarity;
burn-in only serves to decorrelate the kept draws from z₀ (which ∂x/∂φ depends on). The
gradient of the batch loss

    −log p(x) + ŝ(x)ᵀ (x − stopgrad(x)),   ŝ = stopgrad(HMC estimate of ∇_x log q_φ(x)),

is then an estimate of ∇_φ KL; its value is the cross-entropy term −E_q log p(x), which is what
the trace records.

The sampler is the authors' (franrruiz/uivi ``src/main_demo.m``): ``burn_in`` HMC transitions,
then ``kept_draws`` transitions whose states are averaged into ŝ, ``leapfrog_steps`` leapfrog
steps each. The step size δ adapts after every burn-in transition and is frozen for the kept
draws (so those are exact HMC transitions for q_φ(z | x)); the adapted δ carries over to the next
outer iteration. The rule is that of the same authors' batched HMC (franrruiz/vcd_divergence
``mcmc/hmc_vae.m``; UIVI's own ``src/mcmc`` is not in the public copy): δ ← δ (1 + η (a − a*) / a*),
with a the mean acceptance over the batch of chains (here the mean Metropolis probability
min(1, e^{−ΔH}), the expectation of the 0/1 indicator the MATLAB code averages),
a* = ``target_acceptance``, η = ``adapt_rate``. All chains of a batch run at once and share δ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from sivi_engine.families.semi_implicit import (
    SANDWICH_DIAGNOSTICS,
    SemiImplicitGaussian,
    elbo_sandwich,
)
from sivi_engine.methods.base import FitResult, Method
from sivi_engine.methods.registry import METHODS
from sivi_engine.methods.semi_implicit_common import SemiImplicitSettings, build_family
from sivi_engine.methods.training import fit_variational
from sivi_engine.metric_metadata import Catalogue, neutral
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target

LogDensity = Callable[[Tensor], Tensor]


@dataclasses.dataclass(frozen=True)
class UIVISettings(SemiImplicitSettings):
    """Family and optimiser as KSIVI (z_dim 3, MLP 3→50→50→d, batch 500, lr 1e-3, Adam β = (0.9,
    0.99), ×0.9 every 1000 steps). HMC as the authors' code (``main_demo.m``): 5 burn-in and 5
    kept transitions of 5 leapfrog steps, initial δ = 0.2, adapted during burn-in with η = 0.01
    toward acceptance 0.9. (Their toys also use one draw per step, σ₀ = 0.5 and an RMSProp-type
    optimiser, lr 0.01 for μ_φ and 2e-3 for σ, ×0.9 every 3000 steps, 50k steps.)
    """

    burn_in: int = 5
    kept_draws: int = 5
    leapfrog_steps: int = 5
    hmc_step_size: float = 0.2
    target_acceptance: float = 0.9
    adapt_rate: float = 0.01

    def validate(self) -> None:
        super().validate()
        if self.covariance != "diagonal":
            raise SettingsError(
                "setting 'covariance': UIVI's HMC on z uses the diagonal conditional; "
                "allowed: diagonal"
            )
        if self.burn_in < 0:
            raise SettingsError(f"setting 'burn_in': must be >= 0, got {self.burn_in}")
        for name in ("kept_draws", "leapfrog_steps"):
            if getattr(self, name) < 1:
                raise SettingsError(f"setting {name!r}: must be >= 1, got {getattr(self, name)}")
        if self.hmc_step_size <= 0:
            raise SettingsError(f"setting 'hmc_step_size': must be > 0, got {self.hmc_step_size}")
        if not 0 < self.target_acceptance < 1:
            raise SettingsError(
                f"setting 'target_acceptance': must lie in (0, 1), got {self.target_acceptance}"
            )
        if self.adapt_rate < 0:
            raise SettingsError(
                f"setting 'adapt_rate': must be >= 0 (0 disables adaptation), got {self.adapt_rate}"
            )


class HMCDraws(NamedTuple):
    """The kept states, shape (kept_draws, n, z_dim), the Metropolis acceptance probabilities
    min(1, exp(−ΔH)) of every transition, shape (burn_in + kept_draws, n), and the step size
    after the burn-in adaptation."""

    kept: Tensor
    accept_prob: Tensor
    step_size: Tensor


class ChainState(NamedTuple):
    """HMC states of a batch of chains: z (n, z_dim), log π(z) (n,) and ∇log π(z) (n, z_dim)."""

    z: Tensor
    value: Tensor
    grad: Tensor


def reverse_conditional(q: SemiImplicitGaussian, x: Tensor) -> LogDensity:
    """z ↦ log N(z; 0, I) + log q_φ(x | z) up to a constant, for a batch x (n, d); no graph is
    kept to φ through x or σ (μ_φ's parameters are only differentiated through, never w.r.t.)."""
    x, sigma = x.detach(), q.sigma().detach()

    def log_density(z: Tensor) -> Tensor:
        return -0.5 * (z.square().sum(-1) + ((x - q.mean(z)) / sigma).square().sum(-1))

    return log_density


def value_and_grad(log_density: LogDensity, z: Tensor) -> tuple[Tensor, Tensor]:
    """log π(z) and ∇_z log π(z) for a batch of states, by autograd on the batch."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        value = log_density(z)
        (grad,) = torch.autograd.grad(value.sum(), z)
    return value.detach(), grad


def leapfrog(
    log_density: LogDensity, z: Tensor, p: Tensor, grad: Tensor, step_size: Tensor, steps: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``steps`` leapfrog steps of H(z, p) = −log π(z) + ½‖p‖²; returns (z, p, log π, ∇log π)."""
    for _ in range(steps):
        p = p + 0.5 * step_size * grad
        z = z + step_size * p
        value, grad = value_and_grad(log_density, z)
        p = p + 0.5 * step_size * grad
    return z, p, value, grad


def hmc_transition(
    log_density: LogDensity, state: ChainState, step_size: Tensor, leapfrog_steps: int
) -> tuple[ChainState, Tensor]:
    """One HMC transition (identity mass, fresh momentum) of all chains at once: the new states
    and the acceptance probabilities min(1, exp(−ΔH))."""
    z, value, grad = state
    p = torch.randn_like(z)
    z_new, p_new, value_new, grad_new = leapfrog(log_density, z, p, grad, step_size, leapfrog_steps)
    log_ratio = (value_new - 0.5 * p_new.square().sum(-1)) - (value - 0.5 * p.square().sum(-1))
    log_ratio = torch.nan_to_num(log_ratio, nan=-torch.inf).clamp_max(0.0)
    accept = torch.rand_like(log_ratio).log() < log_ratio
    moved = accept[:, None]
    state = ChainState(
        torch.where(moved, z_new, z),
        torch.where(accept, value_new, value),
        torch.where(moved, grad_new, grad),
    )
    return state, log_ratio.exp()


def adapted_step_size(step_size: Tensor, accept_rate: Tensor, settings: UIVISettings) -> Tensor:
    """δ (1 + η (a − a*) / a*): larger steps when accepting more often than the target a*."""
    relative_gap = (accept_rate - settings.target_acceptance) / settings.target_acceptance
    return step_size * (1 + settings.adapt_rate * relative_gap)


def hmc(log_density: LogDensity, z0: Tensor, step_size: Tensor, settings: UIVISettings) -> HMCDraws:
    """``burn_in`` transitions adapting the shared step size after each, then ``kept_draws``
    transitions at the adapted step size, whose states are kept."""
    z0 = z0.detach()
    state = ChainState(z0, *value_and_grad(log_density, z0))
    kept, accept_probs = [], []
    for _ in range(settings.burn_in):
        state, accept_prob = hmc_transition(log_density, state, step_size, settings.leapfrog_steps)
        step_size = adapted_step_size(step_size, accept_prob.mean(), settings)
        accept_probs.append(accept_prob)
    for _ in range(settings.kept_draws):
        state, accept_prob = hmc_transition(log_density, state, step_size, settings.leapfrog_steps)
        kept.append(state.z)
        accept_probs.append(accept_prob)
    return HMCDraws(torch.stack(kept), torch.stack(accept_probs), step_size)


def marginal_score(
    q: SemiImplicitGaussian, x: Tensor, z0: Tensor, step_size: Tensor, settings: UIVISettings
) -> tuple[Tensor, HMCDraws]:
    """HMC estimate of ∇_x log q_φ(x) = E_{q(z|x)}[−(x − μ_φ(z)) / σ²], averaging μ_φ over the
    kept draws as the authors' code does; returns it (no graph) with the chains' draws."""
    draws = hmc(reverse_conditional(q, x), z0, step_size, settings)
    with torch.no_grad():
        kept = draws.kept
        mean = q.mean(kept.flatten(0, 1)).unflatten(0, kept.shape[:2]).mean(0)
        score = -(x.detach() - mean) / q.sigma().square()
    return score, draws


@METHODS.register("uivi")
class UIVI(Method):
    name = "uivi"
    Settings = UIVISettings
    diagnostics = SANDWICH_DIAGNOSTICS | Catalogue(
        always={
            "hmc_accept_rate": neutral(
                "UIVI: mean HMC acceptance rate of the reverse conditional", "diagnostic"
            ),
            "hmc_step_size": neutral("UIVI: adapted HMC step size", "diagnostic"),
        }
    )

    def fit(self, target: Target, settings: UIVISettings, device: torch.device) -> FitResult:
        dtype = settings.torch_dtype
        q = build_family(target.dim, settings, device)
        step_size = torch.tensor(settings.hmc_step_size, device=device, dtype=dtype)
        accept_total = torch.zeros((), device=device, dtype=torch.float64)
        steps = 0

        def loss(step: int) -> Tensor:
            nonlocal step_size, accept_total, steps
            draw = q.rsample(settings.batch_size)
            score, draws = marginal_score(q, draw.x, draw.z, step_size, settings)
            step_size = draws.step_size
            accept_total = accept_total + draws.accept_prob.mean()
            steps += 1
            # value 0, gradient the entropy term's E[ŝᵀ ∂x/∂φ]
            entropy_surrogate = (score * (draw.x - draw.x.detach())).sum(-1)
            return (entropy_surrogate - target.log_prob(draw.x)).mean()

        def diagnose() -> dict[str, float]:
            return elbo_sandwich(q, target) | {
                "hmc_accept_rate": (accept_total / steps).item(),
                "hmc_step_size": step_size.item(),
            }

        return fit_variational(q, loss, f"uivi on {target.name}", settings, diagnose)
