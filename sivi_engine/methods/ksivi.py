"""Kernel semi-implicit variational inference (KSIVI; Cheng, Zhang, Yu & Zhang, ICLR 2024).

KSIVI minimises the squared kernel Stein discrepancy between the semi-implicit q_φ and p,

    KSD²(q‖p) = E_{x, x' ~ q} [ k(x, x') f(x)ᵀ f(x') ],   f = ∇log p − ∇log q,

and replaces the intractable marginal score ∇log q(x) by the conditional score
∇log q(x | z) = −ε/σ: for a kernel that does not depend on z this leaves the objective unbiased
(Cheng et al. 2024, Prop. 3.1). Two estimators of the double expectation:

- ``vstat``: two independent batches x, x' of size n, mean of all n² terms;
- ``ustat``: one batch, mean of the n(n − 1) off-diagonal terms.

Training options of the official code (github.com/longinYu/KSIVI, ``sivistein_2d.py`` and
``sivistein_t_student.py``), all off by default:

- score annealing: ∇log p is scaled by a(t) = min(1, (t + 1)/T_a), T_a = ``anneal_iterations``
  (the official multimodal and Student-t configs anneal over half the run, T_a = 25k of 50k);
- ``residual_weighting: inverse_covariance`` (its ``affine_invariant``, Student-t recipe): the
  inner product fᵢ·f'ⱼ becomes fᵢᵀ P f'ⱼ with P = (Ĉov(x) + 10⁻⁸ I)⁻¹, the unbiased covariance
  of the first batch, held constant (a matrix-valued kernel k(x, x')·P);
- a log-density term (Student-t recipe): − λ a(t) · (1/n) Σᵢ log p(xᵢ) is added to the loss for
  the first T_λ steps, λ = ``log_density_weight`` (0.05 there), T_λ = ``log_density_iterations``
  (its code: 1-based t < 20000). For a heavy-tailed p both scores decay like 1/‖x‖ far out,
  so the KSD of a q much wider than p is small; this pull towards high density counters the
  drift outwards while a(t) is small.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from sivi_engine.families.semi_implicit import SANDWICH_DIAGNOSTICS, elbo_sandwich
from sivi_engine.kernels import KernelSettings, quadratic_form
from sivi_engine.methods.base import FitResult, Method
from sivi_engine.methods.registry import METHODS
from sivi_engine.methods.semi_implicit_common import SemiImplicitSettings, build_family
from sivi_engine.methods.training import fit_variational
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target


@dataclasses.dataclass(frozen=True)
class KSIVISettings(SemiImplicitSettings):
    """Paper defaults for 2-D targets: z_dim 3, MLP 3→50→50→d (ReLU), batch 500, 50k steps.

    The official Student-t recipe: ``kernel.name: riesz``, ``anneal_iterations`` = half the run,
    ``residual_weighting: inverse_covariance``, ``log_density_weight: 0.05``,
    ``log_density_iterations: 20000`` (of 50k).
    """

    estimator: Literal["vstat", "ustat"] = "vstat"
    anneal_iterations: int = 0
    residual_weighting: Literal["identity", "inverse_covariance"] = "identity"
    log_density_weight: float = 0.0
    log_density_iterations: int = 0
    kernel: KernelSettings = KernelSettings()

    def validate(self) -> None:
        super().validate()
        if self.estimator == "ustat" and self.batch_size < 2:
            raise SettingsError("setting 'batch_size': the U-statistic needs at least 2")
        for name in ("anneal_iterations", "log_density_weight", "log_density_iterations"):
            if getattr(self, name) < 0:
                raise SettingsError(f"setting {name!r}: must be >= 0, got {getattr(self, name)}")


def stein_residual(target: Target, x: Tensor, conditional_score: Tensor, weight: float) -> Tensor:
    """f(x, z) = w·∇log p(x) − ∇log q(x | z)."""
    return weight * target.score(x) - conditional_score


def annealing_weight(step: int, anneal_iterations: int) -> float:
    """Score-annealing factor min(1, (t + 1) / T); 1 when annealing is off (T = 0)."""
    return 1.0 if anneal_iterations <= 0 else min(1.0, (step + 1) / anneal_iterations)


def inverse_batch_covariance(x: Tensor, jitter: float = 1e-8) -> Tensor:
    """P = (Ĉov(x) + jitter · I)⁻¹, Ĉov the unbiased (n − 1) covariance of the rows; no gradient."""
    with torch.no_grad():
        cov = torch.cov(x.T).reshape(x.shape[1], x.shape[1])
        return torch.linalg.inv(
            cov + jitter * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        )


#: ``residual_weighting`` → (batch x, residuals f) ↦ f P, so that (f P)ᵢ·gⱼ = fᵢᵀ P gⱼ.
RESIDUAL_WEIGHTINGS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "identity": lambda x, f: f,
    "inverse_covariance": lambda x, f: f @ inverse_batch_covariance(x),
}


def log_density_factor(step: int, weight: float, settings: KSIVISettings) -> float:
    """λ a(t) during the first ``log_density_iterations`` steps, 0 after."""
    return settings.log_density_weight * weight if step < settings.log_density_iterations else 0.0


def ksivi_loss(
    target: Target, x: Tensor, conditional_score: Tensor, step: int, settings: KSIVISettings
) -> Tensor:
    """The loss at step t on draws x with conditional scores ∇log q(x | z): the KSD² estimate
    from the first and last n = ``batch_size`` rows (two batches for ``vstat``, one for
    ``ustat``), minus the log-density term when it is on."""
    n = settings.batch_size
    exclude_diagonal = settings.estimator == "ustat"
    weight = annealing_weight(step, settings.anneal_iterations)
    f = stein_residual(target, x, conditional_score, weight)
    f_x = RESIDUAL_WEIGHTINGS[settings.residual_weighting](x[:n], f[:n])
    ksd = quadratic_form(x[:n], f_x, x[-n:], f[-n:], settings.kernel, exclude_diagonal)
    factor = log_density_factor(step, weight, settings)
    return ksd - factor * target.log_prob(x[:n]).mean() if factor else ksd


@METHODS.register("ksivi")
class KSIVI(Method):
    name = "ksivi"
    Settings = KSIVISettings
    diagnostics = SANDWICH_DIAGNOSTICS

    def fit(self, target: Target, settings: KSIVISettings, device: torch.device) -> FitResult:
        q = build_family(target.dim, settings, device)
        batches = 1 if settings.estimator == "ustat" else 2  # vstat: two independent batches

        def loss(step: int) -> Tensor:
            draw = q.rsample(batches * settings.batch_size)
            return ksivi_loss(target, draw.x, draw.conditional_score, step, settings)

        return fit_variational(
            q, loss, f"ksivi on {target.name}", settings, lambda: elbo_sandwich(q, target)
        )
