"""Hierarchical kernel SIVI (hksivi): a stack of Langevin-initialised conditional layers, each
trained with KSIVI's kernel Stein discrepancy against an annealed target.

The hierarchy follows HSIVI (Yu, Xie, Zhu, Yang, Zhang & Zhang, "Hierarchical Semi-Implicit
Variational Inference with Application to Diffusion Model Acceleration", NeurIPS 2023): the
layers bridge a simple base to p through auxiliary targets p_{β_1}, ..., p_{β_T} = p, and layer t
is trained to match p_{β_t}. Here each layer's objective is KSIVI's KSD² (Cheng, Zhang, Yu &
Zhang, ICLR 2024) instead of HSIVI's score-matching or ELBO objectives:

    x_0 ~ N(0, s_0² I),
    x_t = x_{t−1} + clip(η_t ⊙ ∇log p_{β_t}(x_{t−1}), ±κσ_t) + r_t(x_{t−1}) + σ_t ⊙ ε_t,
    p_β ∝ p_0^{1−β} p^β   (geometric path from the base p_0 = N(0, s_0² I)),   β_t = (t/T)^γ,

with ε_t ~ N(0, I) and the clip taken coordinatewise. At initialisation r_t ≡ 0 (zero output
layer) and σ_t = sqrt(2η_t), so every layer *is* an unadjusted Langevin step towards p_{β_t}.
Its step η_t = h_t is tuned per layer before training (:func:`tuned_steps`): a population of
base draws is carried along the path by adaptive MALA moves, and h_t is the step at which the
Metropolis-adjusted version of layer t's kernel accepts a* = 0.9 of its moves from near
p_{β_t}. Unadjusted Langevin is stable only below 2 / (the largest curvature), which a single
step cannot meet on stiff targets (banana's curvature grows with x₁², the conditioned
diffusion's is ~1/dt = 100, the BNN's larger still); the MALA acceptance measures the
curvature where p_{β_t} has its mass, so early, wide layers take long steps and late ones
short steps (h_1 → h_T, seed 0: banana 0.11 → 0.012, ring8 0.27 → 0.043, diffusion with
s_0 = 1: 6e-3 → 4e-4). a* = 0.9 rather than MALA's optimal 0.574 (Roberts & Rosenthal 1998)
because the layer runs without the Metropolis correction, whose rejections measure how far
the unadjusted kernel is from leaving p_β invariant: on banana (300 steps of batch 100, seeds
0-1) a* = 0.574 ends with mean errors 0.96-1.01 and x₂ sd ratios 0.31-0.34, a* = 0.9 with
0.65-0.68 and 0.46-0.48; ring8 keeps 8/8 with masses 0.107-0.138 either way. The clip at κ = 3
noise sds σ_t bounds every move, so the draws that the base puts where the curvature is far
above the tuned one (banana's |x₁| > 3) cannot diverge (the coordinatewise clip plays the
part of the taming of Brosse, Durmus, Moulines & Sabanis 2019, but leaves the kernel exactly
Langevin wherever it does not bind); training may raise η_t to at most 4 h_t.

The wide base and the annealed drift spread q's mass over all modes of a multi-modal target
before any training, which the KSD, nearly blind to the weights of well-separated modes, could
not do by itself. η_t (diagonal), r_t and σ_t are trained.

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
from collections.abc import Callable, Iterator
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from sivi_engine.families.semi_implicit import (
    SANDWICH_DIAGNOSTICS,
    MixtureDraw,
    diagonal_normal_log_normaliser,
    elbo_sandwich,
    mlp,
    pairwise_conditional_log_prob,
)
from sivi_engine.kernels import KernelSettings, quadratic_form
from sivi_engine.methods.base import CommonSettings, FitResult, Method
from sivi_engine.methods.registry import METHODS
from sivi_engine.methods.training import fit_variational
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target


@dataclasses.dataclass(frozen=True)
class HKSIVISettings(CommonSettings):
    """Defaults for 2-D multi-modal targets such as ring8; optimiser, estimator, kernel: KSIVI's.

    ``layers`` T = 10: HSIVI's 10-step setting (its CIFAR-10 script, ``n_discrete_steps 11``).
    ``base_scale`` s_0 = 4: a base wide enough to reach modes a few units from the origin; set it
    to the target's scale (e.g. the prior's sd) where that is known.
    ``anneal_power`` γ = 1: a linear β schedule (HSIVI's "uniform" time grid).
    ``target_acceptance`` a* = 0.9: the MALA acceptance rate each layer's initial step is tuned
    to (see the module docstring for why not MALA's optimal 0.574). ``drift_clip`` κ = 3: the
    drift moves a coordinate by at most κ noise sds σ_t. ``max_step_growth``: training may raise
    a layer's step η_t to at most this multiple of its tuned value.
    ``hidden``: residual MLPs d→50→50→d, KSIVI's widths. ``min_sigma``: lower clamp on σ_t.
    """

    estimator: Literal["vstat", "ustat"] = "vstat"
    layers: int = 10
    base_scale: float = 4.0
    anneal_power: float = 1.0
    target_acceptance: float = 0.9
    drift_clip: float = 3.0
    max_step_growth: float = 4.0
    hidden: tuple[int, ...] = (50, 50)
    min_sigma: float = 1e-4
    kernel: KernelSettings = KernelSettings()

    def validate(self) -> None:
        super().validate()
        if self.estimator == "ustat" and self.batch_size < 2:
            raise SettingsError("setting 'batch_size': the U-statistic needs at least 2")
        if self.layers < 1:
            raise SettingsError(f"setting 'layers': must be >= 1, got {self.layers}")
        for name in ("base_scale", "anneal_power", "drift_clip", "min_sigma"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"setting {name!r}: must be > 0, got {getattr(self, name)}")
        if not 0 < self.target_acceptance < 1:
            raise SettingsError(
                f"setting 'target_acceptance': must be in (0, 1), got {self.target_acceptance}"
            )
        if not self.max_step_growth >= 1:
            raise SettingsError(
                f"setting 'max_step_growth': must be >= 1, got {self.max_step_growth}"
            )
        if any(h < 1 for h in self.hidden):
            raise SettingsError(f"setting 'hidden': sizes must be >= 1, got {self.hidden}")


def annealing_schedule(layers: int, power: float) -> list[float]:
    """β_t = (t / T)^γ for t = 1..T, so β_T = 1."""
    return [(t / layers) ** power for t in range(1, layers + 1)]


def annealed_score(target_score: Tensor, x: Tensor, beta: float, base_scale: float) -> Tensor:
    """∇log p_β(x) = β ∇log p(x) − (1 − β) x / s_0² for p_β ∝ N(0, s_0² I)^{1−β} p^β."""
    return beta * target_score - (1.0 - beta) / base_scale**2 * x


def annealed_log_prob(target_log_prob: Tensor, x: Tensor, beta: float, base_scale: float) -> Tensor:
    """log p_β(x) = β log p(x) − (1 − β) ‖x‖² / (2 s_0²), up to a constant."""
    return beta * target_log_prob - (1.0 - beta) / (2 * base_scale**2) * x.square().sum(-1)


def clipped_drift(step: Tensor | float, score: Tensor, bound: Tensor | float) -> Tensor:
    """η ⊙ s with every coordinate clipped to [−bound, bound]."""
    return torch.clamp(step * score, -bound, bound)


class AnnealedTarget(NamedTuple):
    """p_β ∝ N(0, s_0² I)^{1−β} p^β, by its log density and score."""

    target: Target
    beta: float
    base_scale: float

    def log_prob(self, x: Tensor) -> Tensor:
        return annealed_log_prob(self.target.log_prob(x), x, self.beta, self.base_scale)

    def score(self, x: Tensor) -> Tensor:
        return annealed_score(self.target.score(x), x, self.beta, self.base_scale)


def clipped_langevin_proposal(
    x: Tensor, score: Tensor, step: float, clip: float, eps: Tensor
) -> Tensor:
    """y = x + clip(h s(x), ±κ sqrt(2h)) + sqrt(2h) ε: a layer's kernel at initialisation."""
    sigma = math.sqrt(2 * step)
    return x + clipped_drift(step, score, clip * sigma) + sigma * eps


class Population(NamedTuple):
    """Draws x with their log p_β(x) and ∇log p_β(x)."""

    x: Tensor
    log_prob: Tensor
    score: Tensor


def evaluate(density: AnnealedTarget, x: Tensor) -> Population:
    """x with its log density and score under p_β."""
    return Population(x, density.log_prob(x), density.score(x))


def mala_proposal(
    density: AnnealedTarget, current: Population, step: float, clip: float, eps: Tensor
) -> tuple[Population, Tensor]:
    """The proposal y of :func:`clipped_langevin_proposal` from every draw and its
    Metropolis–Hastings log ratio toward p_β (MALA, Roberts & Tweedie 1996, with the clipped
    drift): with m(x) the proposal mean and σ² = 2h,

        log α = log p_β(y) − log p_β(x) − ‖x − m(y)‖² / (2σ²) + ‖ε‖² / 2,

    a ratio that is not a number counting as −∞ (rejected)."""
    y = clipped_langevin_proposal(current.x, current.score, step, clip, eps)
    proposed = evaluate(density, y)
    back = current.x - clipped_langevin_proposal(
        y, proposed.score, step, clip, torch.zeros_like(eps)
    )
    log_alpha = (
        proposed.log_prob - current.log_prob
        - back.square().sum(-1) / (4 * step) + eps.square().sum(-1) / 2
    )  # fmt: skip
    return proposed, log_alpha.nan_to_num(nan=-math.inf)


def mean_acceptance(log_alpha: Tensor) -> float:
    """E[min(1, α)] over the draws."""
    return log_alpha.clamp(max=0).exp().mean().item()


def adaptive_mala(
    density: AnnealedTarget, current: Population, step: float, settings: HKSIVISettings
) -> tuple[Population, float]:
    """:data:`TUNING_MOVES` MALA moves of the population toward p_β, the step adapted after
    each by log h ← log h + (mean acceptance − a*) (Robbins–Monro with a constant gain);
    returns the moved population and the last step."""
    for _ in range(TUNING_MOVES):
        eps = torch.randn_like(current.x)
        proposed, log_alpha = mala_proposal(density, current, step, settings.drift_clip, eps)
        accept = torch.rand_like(log_alpha).log() < log_alpha
        current = Population(
            *(
                torch.where(accept.view(-1, *[1] * (old.dim() - 1)), new, old)
                for old, new in zip(current, proposed)
            )
        )
        step *= math.exp(mean_acceptance(log_alpha) - settings.target_acceptance)
    return current, step


def tuned_step(density: AnnealedTarget, current: Population, settings: HKSIVISettings) -> float:
    """The step at which one MALA move from the population accepts ``target_acceptance`` of
    its proposals on average, by bisection with common random numbers."""
    eps = torch.randn_like(current.x)

    def is_small(step: float) -> bool:
        _, log_alpha = mala_proposal(density, current, step, settings.drift_clip, eps)
        return mean_acceptance(log_alpha) >= settings.target_acceptance

    return geometric_bisection(is_small, *STEP_BRACKET, STEP_ROUNDS)


#: Bracket and rounds of the geometric bisection for a layer's step: 12 halvings of
#: log(1e2 / 1e-8) = 23 leave the step known within a factor exp(23 / 4096) ≈ 1.006.
STEP_BRACKET, STEP_ROUNDS = (1e-8, 1e2), 12
#: Adaptive MALA moves per layer before its step is fixed (see :func:`tuned_steps`).
TUNING_MOVES = 10


def geometric_bisection(
    is_small: Callable[[float], bool], low: float, high: float, rounds: int
) -> float:
    """The boundary between steps for which ``is_small`` holds (below) and fails (above),
    by bisection of [log low, log high]; the lower end is returned."""
    for _ in range(rounds):
        middle = math.sqrt(low * high)
        low, high = (middle, high) if is_small(middle) else (low, middle)
    return low


@torch.no_grad()
def tuned_steps(target: Target, x: Tensor, settings: HKSIVISettings) -> list[float]:
    """Initial steps h_1..h_T along an annealed adaptive MALA run of the population x ~ q_0:
    for each β_t, :data:`TUNING_MOVES` adaptive moves bring the population (near p_{β_{t−1}})
    near p_{β_t}, then h_t is the step at which a Metropolis-adjusted move of layer t's initial
    kernel (:func:`clipped_langevin_proposal`) accepts ``target_acceptance`` of its proposals
    (:func:`tuned_step`). The first adaptation starts from the step tuned on x itself."""
    densities = [
        AnnealedTarget(target, beta, settings.base_scale)
        for beta in annealing_schedule(settings.layers, settings.anneal_power)
    ]
    step = tuned_step(densities[0], evaluate(densities[0], x), settings)
    steps = []
    for density in densities:
        current, step = adaptive_mala(density, evaluate(density, x), step, settings)
        x, step = current.x, tuned_step(density, current, settings)
        steps.append(step)
    return steps


class LayerDraw(NamedTuple):
    """A layer's output x_t, its conditional score −ε_t/σ_t and the target score ∇log p(x_t)."""

    x: Tensor
    conditional_score: Tensor
    target_score: Tensor


class LangevinLayer(nn.Module):
    """x' = x + clip(η ⊙ s(x), ±κσ) + r(x) + σ ⊙ ε, initialised at r ≡ 0 and σ = sqrt(2η);
    log η is clamped above at log(growth · η_init) and log σ below at log(min_sigma)."""

    def __init__(self, dim: int, step_size: float, settings: HKSIVISettings) -> None:
        super().__init__()
        self.log_step = nn.Parameter(torch.full((dim,), math.log(step_size)))
        self.log_sigma = nn.Parameter(torch.full((dim,), 0.5 * math.log(2 * step_size)))
        self.max_log_step = math.log(settings.max_step_growth * step_size)
        self.min_log_sigma = math.log(settings.min_sigma)
        self.clip = settings.drift_clip
        self.residual = mlp((dim, *settings.hidden, dim))
        nn.init.zeros_(self.residual[-1].weight)
        nn.init.zeros_(self.residual[-1].bias)

    def sigma(self) -> Tensor:
        return self.log_sigma.clamp_min(self.min_log_sigma).exp()

    def step(self) -> Tensor:
        return self.log_step.clamp_max(self.max_log_step).exp()

    def mean(self, x: Tensor, drift_score: Tensor) -> Tensor:
        """The conditional mean x + clip(η ⊙ s(x), ±κσ) + r(x), given s(x) = ``drift_score``."""
        drift = clipped_drift(self.step(), drift_score, self.clip * self.sigma())
        return x + drift + self.residual(x)

    def forward(self, x: Tensor, drift_score: Tensor) -> tuple[Tensor, Tensor]:
        """A draw x' ~ q(x' | x) and its conditional score ∇_{x'} log q(x' | x) = −ε/σ."""
        eps = torch.randn_like(x)
        sigma = self.sigma()
        return self.mean(x, drift_score) + sigma * eps, -eps / sigma


class HierarchicalLangevin(nn.Module):
    """The hierarchical semi-implicit q for one target: base N(0, s_0² I), then T Langevin
    layers whose drifts use that target's score, with initial steps ``steps`` (one per β_t)."""

    def __init__(self, target: Target, settings: HKSIVISettings, steps: list[float]) -> None:
        super().__init__()
        self.target, self.dim, self.base_scale = target, target.dim, settings.base_scale
        self.betas = annealing_schedule(settings.layers, settings.anneal_power)
        self.layers = nn.ModuleList(LangevinLayer(self.dim, h, settings) for h in steps)

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
        return torch.cat(
            [last(self.rsample_layers(self.base(min(chunk, n - i)))).x for i in range(0, n, chunk)]
        )

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
        normaliser = diagonal_normal_log_normaliser(sigma)
        own = -0.5 * eps.square().sum(-1) + normaliser
        others = pairwise_conditional_log_prob(x, means[n:], lambda v: v / sigma, normaliser)
        return MixtureDraw(x=x, own=own, others=others)


def initial_model(
    target: Target, settings: HKSIVISettings, n: int, device: torch.device
) -> HierarchicalLangevin:
    """The untrained q, its steps tuned by :func:`tuned_steps` from n draws of the base."""
    dtype = settings.torch_dtype
    x = settings.base_scale * torch.randn(n, target.dim, dtype=dtype, device=device)
    steps = tuned_steps(target, x, settings)
    return HierarchicalLangevin(target, settings, steps).to(device=device, dtype=dtype)


def last(draws: Iterator[LayerDraw]) -> LayerDraw:
    """The final item of ``draws``."""
    *_, final = draws
    return final


@METHODS.register("hksivi")
class HKSIVI(Method):
    name = "hksivi"
    Settings = HKSIVISettings
    smoke_settings = {"layers": 2}
    diagnostics = SANDWICH_DIAGNOSTICS

    def fit(self, target: Target, settings: HKSIVISettings, device: torch.device) -> FitResult:
        n = settings.batch_size
        exclude_diagonal = settings.estimator == "ustat"
        batches = 1 if exclude_diagonal else 2  # the V-statistic pairs two independent batches
        q = initial_model(target, settings, batches * n, device)

        def layer_loss(draw: LayerDraw, beta: float) -> Tensor:
            """KSD² of one layer against p_β, with f = ∇log p_β(x) − ∇log q(x | x_prev)."""
            f = annealed_score(draw.target_score, draw.x, beta, settings.base_scale)
            f = f - draw.conditional_score
            x, y = draw.x[:n], draw.x[-n:]
            return quadratic_form(x, f[:n], y, f[-n:], settings.kernel, exclude_diagonal)

        def loss(step: int) -> Tensor:
            draws = q.rsample_layers(q.base(batches * n))
            return torch.stack([layer_loss(d, beta) for d, beta in zip(draws, q.betas)]).mean()

        return fit_variational(
            q, loss, f"hksivi on {target.name}", settings, lambda: elbo_sandwich(q, target)
        )
