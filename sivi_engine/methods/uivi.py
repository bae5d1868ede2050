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
the trace records. All chains of a batch run at once; the step size is shared and adapted between
outer iterations (never inside a chain, so every chain is an exact HMC chain for q_φ(z | x)):
log δ ← log δ + rate · (mean acceptance probability − target acceptance).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from sivi_engine.families.semi_implicit import SemiImplicitGaussian, elbo_sandwich
from sivi_engine.methods.base import FitResult, Method
from sivi_engine.methods.registry import METHODS
from sivi_engine.methods.semi_implicit_common import SemiImplicitSettings, build_family
from sivi_engine.methods.training import optimise
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target

LogDensity = Callable[[Tensor], Tensor]


@dataclasses.dataclass(frozen=True)
class UIVISettings(SemiImplicitSettings):
    """Family and optimiser as KSIVI (z_dim 3, MLP 3→50→50→d, batch 500, lr 1e-3, Adam β = (0.9,
    0.99), ×0.9 every 1000 steps). HMC after Titsias & Ruiz (2019, §4): ``hmc_steps`` = 5
    iterations per draw of which the first ``hmc_burn_in`` = 4 are discarded, 5 leapfrog steps.
    The step-size rule (start 0.1, target acceptance 0.9, rate 0.5 per outer iteration) is ours.

    Short chains keep the kept z correlated with z₀, which biases q toward over-dispersion: on a
    10-D Gaussian with z_dim 10 the paper's 5 iterations gave variances 2-18 % too large after
    1000 steps, 10-15 iterations none visible. Raise ``hmc_steps`` with the dimension of z.
    """

    hmc_steps: int = 5
    hmc_burn_in: int = 4
    leapfrog_steps: int = 5
    hmc_step_size: float = 0.1
    hmc_target_accept: float = 0.9
    hmc_adapt_rate: float = 0.5

    def validate(self) -> None:
        super().validate()
        if self.leapfrog_steps < 1:
            raise SettingsError("setting 'leapfrog_steps' must be >= 1")
        if not 0 <= self.hmc_burn_in < self.hmc_steps:
            raise SettingsError("settings: need 0 <= hmc_burn_in < hmc_steps (keep one draw)")
        if self.hmc_step_size <= 0:
            raise SettingsError(f"setting 'hmc_step_size': must be > 0, got {self.hmc_step_size}")
        if not 0 < self.hmc_target_accept < 1:
            raise SettingsError("setting 'hmc_target_accept': must lie in (0, 1)")
        if self.hmc_adapt_rate < 0:
            raise SettingsError("setting 'hmc_adapt_rate': must be >= 0 (0 disables adaptation)")


class HMCDraws(NamedTuple):
    """States after each HMC iteration, shape (iterations, n, z_dim), and the Metropolis
    acceptance probabilities min(1, exp(−ΔH)), shape (iterations, n)."""

    states: Tensor
    accept_prob: Tensor


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


def hmc(
    log_density: LogDensity, z0: Tensor, step_size: Tensor, iterations: int, leapfrog_steps: int
) -> HMCDraws:
    """``iterations`` HMC transitions (identity mass, fresh momentum each) of all chains at once."""
    z = z0.detach()
    value, grad = value_and_grad(log_density, z)
    states, accept_probs = [], []
    for _ in range(iterations):
        p = torch.randn_like(z)
        z_new, p_new, value_new, grad_new = leapfrog(
            log_density, z, p, grad, step_size, leapfrog_steps
        )
        log_ratio = (value_new - 0.5 * p_new.square().sum(-1)) - (value - 0.5 * p.square().sum(-1))
        log_ratio = torch.nan_to_num(log_ratio, nan=-torch.inf).clamp_max(0.0)
        accept = torch.rand_like(log_ratio).log() < log_ratio
        z = torch.where(accept[:, None], z_new, z)
        value = torch.where(accept, value_new, value)
        grad = torch.where(accept[:, None], grad_new, grad)
        states.append(z)
        accept_probs.append(log_ratio.exp())
    return HMCDraws(torch.stack(states), torch.stack(accept_probs))


def marginal_score(
    q: SemiImplicitGaussian, x: Tensor, z0: Tensor, step_size: Tensor, settings: UIVISettings
) -> tuple[Tensor, Tensor]:
    """HMC estimate of ∇_x log q_φ(x) = E_{q(z|x)}[−(x − μ_φ(z)) / σ²], averaging the draws
    kept after burn-in; returns it (no graph) with the mean acceptance probability."""
    log_density = reverse_conditional(q, x)
    draws = hmc(log_density, z0, step_size, settings.hmc_steps, settings.leapfrog_steps)
    kept = draws.states[settings.hmc_burn_in:]
    with torch.no_grad():
        mean = q.mean(kept.flatten(0, 1)).unflatten(0, kept.shape[:2]).mean(0)
        score = -(x.detach() - mean) / q.sigma().square()
    return score, draws.accept_prob.mean()


def adapted_step_size(step_size: Tensor, accept_prob: Tensor, settings: UIVISettings) -> Tensor:
    """log δ ← log δ + rate · (acceptance − target): larger steps when accepting too often."""
    log_change = settings.hmc_adapt_rate * (accept_prob - settings.hmc_target_accept)
    return step_size * torch.exp(log_change)


@METHODS.register("uivi")
class UIVI(Method):
    name = "uivi"
    Settings = UIVISettings

    def fit(self, target: Target, settings: UIVISettings, device: torch.device) -> FitResult:
        dtype = settings.torch_dtype
        q = build_family(target.dim, settings, device)
        step_size = torch.tensor(settings.hmc_step_size, device=device, dtype=dtype)
        accept_total = torch.zeros((), device=device, dtype=torch.float64)

        def loss(step: int) -> Tensor:
            nonlocal step_size, accept_total
            draw = q.rsample(settings.batch_size)
            score, accept_prob = marginal_score(q, draw.x, draw.z, step_size, settings)
            step_size = adapted_step_size(step_size, accept_prob, settings)
            accept_total = accept_total + accept_prob
            # value 0, gradient the entropy term's E[ŝᵀ ∂x/∂φ]
            entropy_surrogate = (score * (draw.x - draw.x.detach())).sum(-1)
            return (entropy_surrogate - target.log_prob(draw.x)).mean()

        trace = optimise(loss, q.parameters(), settings, description=f"uivi on {target.name}")
        diagnostics = elbo_sandwich(q, target) | {
            "hmc_accept_rate": (accept_total / trace.iterations).item(),
            "hmc_step_size": step_size.item(),
        }
        return FitResult(samples=q.sample(settings.num_draws), trace=trace, diagnostics=diagnostics)
