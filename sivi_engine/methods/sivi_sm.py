"""Semi-implicit variational inference via score matching (SIVI-SM; Yu & Zhang, ICLR 2023).

SIVI-SM minimises the Fisher divergence E_q‖∇log p(x) − ∇log q(x)‖² of the semi-implicit q_φ
through its variational form with a score network f_ψ:

    min_φ max_ψ  E_{q_φ(x, z)} [ 2 f_ψ(x)ᵀ (∇log p(x) − ∇log q_φ(x | z)) − ‖f_ψ(x)‖² ],

where ∇log q_φ(x | z) = −ε/σ. For fixed φ the ψ-objective equals
E‖g‖² − E‖f_ψ − g‖² with g = ∇log p − ∇log q_φ (the marginal score: the conditional one averages
to it given x, as in denoising score matching), so its maximiser is f_ψ = g and its maximum is the
Fisher divergence.

Each outer iteration takes ``inner_steps`` Adam ascent steps on ψ, each on a fresh batch drawn
with φ frozen, then one Adam descent step on φ on another fresh batch (the reference code,
longinYu/SIVISM ``sivism_2d.py``, alternates the same way, with the φ-step before the ψ-steps;
here the ψ-steps come first so that the first φ-step already sees a trained f). ψ has its own
Adam with the common β and step decay, stepped once per outer iteration (the reference code
steps it per ψ-step, which differs only when ``inner_steps`` > 1). The traced loss is the
φ-objective, an estimate of the Fisher divergence from below (exact at the inner optimum).

Two options of the reference code: score annealing replaces ∇log p by w_t ∇log p with
w_t = min(1, ``anneal_start`` + t / ``anneal_iterations``) (``utils/annealing.py``; on for the
multimodal target, T = 25,000 of 50,000 steps); and the "TransTrick" of ``sivism_lr.py``
parameterises the critic as f = f_ψ(x) + c_t w_t ∇log p(x), c_t = ``score_offset`` ·
``score_offset_decay``^⌊t / ``score_offset_every``⌋ (waveform: c₀ = 1, ×1/1.004 every 100 steps),
so that f_ψ only has to learn the part of g that the target score does not carry.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from sivi_engine.families.semi_implicit import (
    SANDWICH_DIAGNOSTICS,
    ConditionalDraw,
    SemiImplicitGaussian,
    elbo_sandwich,
    mlp,
)
from sivi_engine.methods.base import FitResult, Method
from sivi_engine.methods.registry import METHODS
from sivi_engine.methods.semi_implicit_common import SemiImplicitSettings, build_family
from sivi_engine.methods.training import fit_variational
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target


@dataclasses.dataclass(frozen=True)
class SIVISMSettings(SemiImplicitSettings):
    """Defaults of the paper's 2-D experiments (longinYu/SIVISM ``configs/banana.yml``):
    z_dim 3, mean MLP 3→50→50→d and score MLP d→128→128→d (ReLU), batch 500, lr 1e-3 for φ and
    2e-3 for ψ, Adam β = (0.9, 0.99), ×0.9 decay every 1000 steps for both, one ψ-step per φ-step,
    no annealing, no score offset (``multimodal.yml``: ``anneal_iterations: 25000``;
    ``LRwaveform.yml``: z_dim 10, hidden [100, 100], f_hidden [256, 256], batch 100, lr_f 3e-3,
    lr_decay_every 3000, 20,000 steps, ``score_offset: 1``). The reference code's log-variance
    floor of −6 is ``min_sigma`` = e⁻³ ≈ 0.0498.
    """

    f_hidden: tuple[int, ...] = (128, 128)
    lr_f: float = 2e-3
    inner_steps: int = 1
    anneal_iterations: int = 0
    anneal_start: float = 0.1
    score_offset: float = 0.0
    score_offset_decay: float = 1 / 1.004
    score_offset_every: int = 100

    def validate(self) -> None:
        super().validate()
        if any(h < 1 for h in self.f_hidden):
            raise SettingsError("setting 'f_hidden' must be positive")
        if self.lr_f <= 0:
            raise SettingsError(f"setting 'lr_f': must be > 0, got {self.lr_f}")
        if self.inner_steps < 1:
            raise SettingsError(f"setting 'inner_steps': must be >= 1, got {self.inner_steps}")
        if self.anneal_iterations < 0:
            raise SettingsError(
                "setting 'anneal_iterations': must be >= 0 (0 disables annealing), "
                f"got {self.anneal_iterations}"
            )
        if not 0 <= self.anneal_start <= 1:
            raise SettingsError(
                f"setting 'anneal_start': must lie in [0, 1], got {self.anneal_start}"
            )
        if self.score_offset < 0:
            raise SettingsError(f"setting 'score_offset': must be >= 0, got {self.score_offset}")
        if not 0 < self.score_offset_decay <= 1:
            raise SettingsError(
                f"setting 'score_offset_decay': must lie in (0, 1], got {self.score_offset_decay}"
            )
        if self.score_offset_every < 1:
            raise SettingsError(
                f"setting 'score_offset_every': must be >= 1, got {self.score_offset_every}"
            )


def annealing_weight(step: int, settings: SIVISMSettings) -> float:
    """w_t = min(1, anneal_start + (t + 1) / anneal_iterations), 1 when annealing is off."""
    if settings.anneal_iterations == 0:
        return 1.0
    return min(1.0, settings.anneal_start + (step + 1) / settings.anneal_iterations)


def score_offset(step: int, settings: SIVISMSettings) -> float:
    """c_t = score_offset · score_offset_decay^⌊t / score_offset_every⌋."""
    decays = step // settings.score_offset_every
    return settings.score_offset * settings.score_offset_decay**decays


def minimax_objective(f: Tensor, residual: Tensor) -> Tensor:
    """Batch mean of 2 fᵀr − ‖f‖² = fᵀ(2r − f), with r = ∇log p(x) − ∇log q(x | z)."""
    return (f * (2 * residual - f)).sum(-1).mean()


def score_residual(
    target: Target, x: Tensor, conditional_score: Tensor, weight: float = 1.0
) -> Tensor:
    """r(x, z) = w ∇log p(x) − ∇log q(x | z)."""
    return weight * target.score(x) - conditional_score


def draw_objective(
    score_net: nn.Module,
    target: Target,
    draw: ConditionalDraw,
    weight: float = 1.0,
    offset: float = 0.0,
) -> Tensor:
    """The minimax objective on one batch of draws (x, z) of q, with annealing weight w on
    ∇log p and the critic f = f_ψ(x) + c w ∇log p(x) (c = ``offset``)."""
    weighted_score = weight * target.score(draw.x)
    residual = weighted_score - draw.conditional_score
    return minimax_objective(score_net(draw.x) + offset * weighted_score, residual)


def score_net_step(
    q: SemiImplicitGaussian,
    score_net: nn.Module,
    target: Target,
    optimiser: torch.optim.Optimizer,
    n: int,
    weight: float = 1.0,
    offset: float = 0.0,
) -> None:
    """One ascent step of the ψ-objective on a fresh batch of n draws, φ frozen."""
    with torch.no_grad():
        draw = q.rsample(n)
    optimiser.zero_grad(set_to_none=True)
    (-draw_objective(score_net, target, draw, weight, offset)).backward()
    optimiser.step()


def score_network(dim: int, hidden: tuple[int, ...]) -> nn.Sequential:
    """f_ψ: R^d → R^d, an MLP with ReLU activations."""
    return mlp((dim, *hidden, dim))


@METHODS.register("sivi_sm")
class SIVISM(Method):
    name = "sivi_sm"
    Settings = SIVISMSettings
    diagnostics = SANDWICH_DIAGNOSTICS

    def fit(self, target: Target, settings: SIVISMSettings, device: torch.device) -> FitResult:
        dtype = settings.torch_dtype
        q = build_family(target.dim, settings, device)
        f = score_network(target.dim, settings.f_hidden).to(device=device, dtype=dtype)
        f_optimiser = torch.optim.Adam(
            f.parameters(), lr=settings.lr_f, betas=tuple(settings.betas)
        )
        f_schedule = torch.optim.lr_scheduler.StepLR(
            f_optimiser, step_size=settings.lr_decay_every, gamma=settings.lr_decay
        )
        n = settings.batch_size

        def loss(step: int) -> Tensor:
            weight, offset = annealing_weight(step, settings), score_offset(step, settings)
            for _ in range(settings.inner_steps):
                score_net_step(q, f, target, f_optimiser, n, weight, offset)
            f_schedule.step()  # ψ's learning rate decays per outer iteration, in step with φ's
            # φ descends the same objective; the gradients this leaves on ψ are cleared by the
            # next ψ-step's zero_grad.
            return draw_objective(f, target, q.rsample(n), weight, offset)

        return fit_variational(
            q, loss, f"sivi_sm on {target.name}", settings, lambda: elbo_sandwich(q, target)
        )
