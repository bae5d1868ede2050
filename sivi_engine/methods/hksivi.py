"""Hierarchical kernel SIVI (hksivi): a stack of Langevin-initialised conditional layers, each
trained with KSIVI's kernel Stein discrepancy against an annealed target.

The hierarchy follows HSIVI (Yu, Xie, Zhu, Yang, Zhang & Zhang, "Hierarchical Semi-Implicit
Variational Inference with Application to Diffusion Model Acceleration", NeurIPS 2023): the
layers bridge a simple base to p through auxiliary targets p_{β_1}, ..., p_{β_T} = p, and layer t
is trained to match p_{β_t}. Here each layer's objective is KSIVI's KSD² (Cheng, Zhang, Yu &
Zhang, ICLR 2024) instead of HSIVI's score-matching or ELBO objectives:

    x_0 ~ N(0, s_0² I),
    x_t = x_{t−1} + η_t ⊙ ∇log p_{β_t}(x_{t−1}) + r_t(x_{t−1}) + σ_t ⊙ ε_t,   ε_t ~ N(0, I),
    p_β ∝ p_0^{1−β} p^β   (geometric path from the base p_0 = N(0, s_0² I)),   β_t = (t/T)^γ.

At initialisation r_t ≡ 0 (zero output layer), η_t = η/β_t and σ_t = sqrt(2η_t), so every layer
*is* an unadjusted Langevin step towards p_{β_t}. The step η/β_t follows annealed Langevin
dynamics (Song & Ermon 2019, Alg. 1: step ∝ the annealed target's variance, ≈ var_p/β here):
early layers, whose targets are wide, take long steps, and every layer's step is as stable as
the last one's (η_t × curvature of p_{β_t} ≈ η × curvature of p). The wide base and the annealed
drift spread q's mass over all modes of a multi-modal target before any training, which the
KSD, nearly blind to the weights of well-separated modes, could not do by itself. η_t (diagonal),
r_t and σ_t are trained.

Layer t is conditionally Gaussian given x_{t−1}, so ∇log q_t(x_t | x_{t−1}) = −ε_t/σ_t takes the
place of KSIVI's conditional score, with x_{t−1} as the mixing variable (the unbiasedness argument
of Cheng et al. 2024, Prop. 3.1, holds for any mixing distribution). The loss is

    L = (1/T) Σ_t KSD²(q_t ‖ p_{β_t}),   with Stein residual f_t = ∇log p_{β_t}(x_t) + ε_t/σ_t,

estimated as in KSIVI (V-statistic over two independent batches, or U-statistic), with each
layer's input x_{t−1} detached: layer t learns to carry the current distribution of x_{t−1} to
p_{β_t}, and a later layer's loss never moves an earlier layer. This is HSIVI's "matching the
auxiliary distributions one layer after another", with all stages trained concurrently by one
optimiser; the traced loss is L. Back-propagating every loss through the whole stack instead let
the mass drift between the modes of ring8 (1500 steps of batch 200, seeds 0-2: mode masses
0.10-0.17 against 0.12-0.13 with detached inputs; 1/8 is exact).

The fitted q's ELBO sandwich (:func:`~sivi_engine.families.semi_implicit.elbo_sandwich`) is
reported in the diagnostics, with the last layer's input x_{T−1} as the mixing variable.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from sivi_engine.families.semi_implicit import (
    MixtureDraw,
    diagonal_normal_log_normaliser,
    elbo_sandwich,
    mlp,
    pairwise_conditional_log_prob,
)
from sivi_engine.kernels import KernelSettings, quadratic_form
from sivi_engine.methods.base import CommonSettings, FitResult, Method
from sivi_engine.methods.registry import METHODS
from sivi_engine.methods.training import optimise
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target


@dataclasses.dataclass(frozen=True)
class HKSIVISettings(CommonSettings):
    """Defaults for 2-D multi-modal targets such as ring8; optimiser, estimator, kernel: KSIVI's.

    ``layers`` T = 10: HSIVI's 10-step setting (its CIFAR-10 script, ``n_discrete_steps 11``).
    ``step_size`` η = 0.1: the last layer's Langevin step; unadjusted Langevin on a Gaussian of
    sd s is stable for η < 2s², so η = 0.1 suits targets whose narrowest direction has sd > 0.22
    (ring8's components have sd 0.3); lower it for stiffer targets.
    ``base_scale`` s_0 = 4: a base wide enough to reach modes a few units from the origin.
    ``anneal_power`` γ = 1: a linear β schedule (HSIVI's "uniform" time grid).
    ``hidden``: residual MLPs d→50→50→d, KSIVI's widths. ``min_sigma``: lower clamp on σ_t.
    """

    estimator: Literal["vstat", "ustat"] = "vstat"
    layers: int = 10
    step_size: float = 0.1
    base_scale: float = 4.0
    anneal_power: float = 1.0
    hidden: tuple[int, ...] = (50, 50)
    min_sigma: float = 1e-3
    kernel: KernelSettings = KernelSettings()

    def validate(self) -> None:
        super().validate()
        if self.estimator == "ustat" and self.batch_size < 2:
            raise SettingsError("setting 'batch_size': the U-statistic needs at least 2")
        if self.layers < 1:
            raise SettingsError(f"setting 'layers': must be >= 1, got {self.layers}")
        for name in ("step_size", "base_scale", "anneal_power", "min_sigma"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"setting {name!r}: must be > 0, got {getattr(self, name)}")
        if any(h < 1 for h in self.hidden):
            raise SettingsError(f"setting 'hidden': sizes must be >= 1, got {self.hidden}")
        if self.min_sigma > math.sqrt(2 * self.step_size):
            raise SettingsError("setting 'min_sigma': must be <= sqrt(2 * step_size)")


def annealing_schedule(layers: int, power: float) -> list[float]:
    """β_t = (t / T)^γ for t = 1..T, so β_T = 1."""
    return [(t / layers) ** power for t in range(1, layers + 1)]


def annealed_score(target_score: Tensor, x: Tensor, beta: float, base_scale: float) -> Tensor:
    """∇log p_β(x) = β ∇log p(x) − (1 − β) x / s_0² for p_β ∝ N(0, s_0² I)^{1−β} p^β."""
    return beta * target_score - (1.0 - beta) / base_scale**2 * x


class LayerDraw(NamedTuple):
    """A layer's output x_t, its conditional score −ε_t/σ_t and the target score ∇log p(x_t)."""

    x: Tensor
    conditional_score: Tensor
    target_score: Tensor


class LangevinLayer(nn.Module):
    """x' = x + η ⊙ s(x) + r(x) + σ ⊙ ε, initialised at r ≡ 0 and σ = sqrt(2η)."""

    def __init__(
        self, dim: int, hidden: tuple[int, ...], step_size: float, min_sigma: float
    ) -> None:
        super().__init__()
        self.log_step = nn.Parameter(torch.full((dim,), math.log(step_size)))
        self.log_sigma = nn.Parameter(torch.full((dim,), 0.5 * math.log(2 * step_size)))
        self.min_log_sigma = math.log(min_sigma)
        self.residual = mlp((dim, *hidden, dim))
        nn.init.zeros_(self.residual[-1].weight)
        nn.init.zeros_(self.residual[-1].bias)

    def sigma(self) -> Tensor:
        return self.log_sigma.clamp_min(self.min_log_sigma).exp()

    def mean(self, x: Tensor, drift_score: Tensor) -> Tensor:
        """The conditional mean x + η ⊙ s(x) + r(x), given s(x) = ``drift_score``."""
        return x + self.log_step.exp() * drift_score + self.residual(x)

    def forward(self, x: Tensor, drift_score: Tensor) -> tuple[Tensor, Tensor]:
        """A draw x' ~ q(x' | x) and its conditional score ∇_{x'} log q(x' | x) = −ε/σ."""
        eps = torch.randn_like(x)
        sigma = self.sigma()
        return self.mean(x, drift_score) + sigma * eps, -eps / sigma


class HierarchicalLangevin(nn.Module):
    """The hierarchical semi-implicit q for one target: base N(0, s_0² I), then T Langevin
    layers whose drifts use that target's score."""

    def __init__(self, target: Target, settings: HKSIVISettings) -> None:
        super().__init__()
        self.target, self.dim, self.base_scale = target, target.dim, settings.base_scale
        self.betas = annealing_schedule(settings.layers, settings.anneal_power)
        self.layers = nn.ModuleList(
            LangevinLayer(self.dim, settings.hidden, settings.step_size / beta, settings.min_sigma)
            for beta in self.betas
        )

    def base(self, n: int) -> Tensor:
        """n draws x_0 ~ N(0, s_0² I) in the parameters' dtype and device."""
        like = self.layers[0].log_sigma
        return self.base_scale * torch.randn(n, self.dim, dtype=like.dtype, device=like.device)

    def rsample_layers(self, x: Tensor, layers: int | None = None) -> Iterator[LayerDraw]:
        """Run chains from x = x_0 through the first ``layers`` layers (all by default), yielding
        every layer's draws. Each layer's input is detached, so a layer's draws are
        differentiable in that layer's parameters only."""
        score = self.target.score(x)
        for beta, layer in list(zip(self.betas, self.layers))[:layers]:
            x, conditional_score = layer(x, annealed_score(score, x, beta, self.base_scale))
            score = self.target.score(x)
            yield LayerDraw(x, conditional_score, score)
            x, score = x.detach(), score.detach()

    @torch.no_grad()
    def sample(self, n: int, chunk: int = 65536) -> Tensor:
        """n draws from the last layer's marginal q_T, without gradients."""
        return torch.cat([
            last(self.rsample_layers(self.base(min(chunk, n - i)))).x for i in range(0, n, chunk)
        ])

    @torch.no_grad()
    def mixture_draws(self, n: int, k: int) -> MixtureDraw:
        """n draws of q_T with log q_T(xᵢ | z₀ᵢ) and log q_T(xᵢ | z_k) for K fresh z_k, where the
        mixing variable z = x_{T−1} is the last layer's input (the interface of
        :func:`~sivi_engine.families.semi_implicit.elbo_sandwich`)."""
        z = self.base(n + k)
        for draw in self.rsample_layers(z, len(self.layers) - 1):
            z = draw.x
        layer = self.layers[-1]
        drift = annealed_score(self.target.score(z), z, self.betas[-1], self.base_scale)
        means, sigma = layer.mean(z, drift), layer.sigma()
        eps = torch.randn_like(means[:n])
        x = means[:n] + sigma * eps
        own = -0.5 * eps.square().sum(-1) + diagonal_normal_log_normaliser(sigma)
        return MixtureDraw(x=x, own=own, others=pairwise_conditional_log_prob(x, means[n:], sigma))


def last(draws: Iterator[LayerDraw]) -> LayerDraw:
    """The final item of ``draws``."""
    *_, final = draws
    return final


@METHODS.register("hksivi")
class HKSIVI(Method):
    name = "hksivi"
    Settings = HKSIVISettings

    def fit(self, target: Target, settings: HKSIVISettings, device: torch.device) -> FitResult:
        dtype = settings.torch_dtype
        q = HierarchicalLangevin(target, settings).to(device=device, dtype=dtype)
        n = settings.batch_size
        exclude_diagonal = settings.estimator == "ustat"
        batches = 1 if exclude_diagonal else 2  # the V-statistic pairs two independent batches

        def layer_loss(draw: LayerDraw, beta: float) -> Tensor:
            """KSD² of one layer against p_β, with f = ∇log p_β(x) − ∇log q(x | x_prev)."""
            f = annealed_score(draw.target_score, draw.x, beta, settings.base_scale)
            f = f - draw.conditional_score
            x, y = draw.x[:n], draw.x[-n:]
            return quadratic_form(x, f[:n], y, f[-n:], settings.kernel, exclude_diagonal)

        def loss(step: int) -> Tensor:
            draws = q.rsample_layers(q.base(batches * n))
            return torch.stack([layer_loss(d, beta) for d, beta in zip(draws, q.betas)]).mean()

        trace = optimise(loss, q.parameters(), settings, description=f"hksivi on {target.name}")
        return FitResult(
            samples=q.sample(settings.num_draws), trace=trace, diagnostics=elbo_sandwich(q, target)
        )
