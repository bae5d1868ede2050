"""Stein variational gradient descent (SVGD; Liu & Wang, NeurIPS 2016).

n particles move along the kernelised Stein direction

    φ(xᵢ) = (1/n) Σⱼ [ k(xⱼ, xᵢ) ∇log p(xⱼ) + ∇_{xⱼ} k(xⱼ, xᵢ) ],

the steepest descent direction of KL(q‖p) in the unit ball of the kernel's RKHS: a step
xᵢ ← xᵢ + ε φ(xᵢ) (or an adaptive version of it) per iteration. The first term drives the
particles to high density, the second repels them from each other.

Kernels. A kernel here maps the current particles x to v ↦ [Σⱼ k(xⱼ, xᵢ) vⱼ]ᵢ and the
repulsion Rᵢ = Σⱼ ∇_{xⱼ} k(xⱼ, xᵢ), with its data-dependent constants (a median bandwidth, a
mean and a covariance) computed from the particles and then held fixed, as Liu & Wang do with
the bandwidth. The default Gaussian kernel with the median heuristic h² = med²/(2 log(n + 1))
and :func:`affine_kernel` have closed-form repulsions; any other differentiable kernel gets
its repulsion by automatic differentiation (:func:`autodiff_kernel`). The constant kernels of
:mod:`sivi_engine.kernels` are chosen through ``kernel``; any kernel can be passed to
:func:`run_svgd`.

Draws. SVGD's q is the empirical measure of its n particles. The m = ``num_draws`` draws are
the particles taken in turn, x₀, x₁, …, x_{n−1}, x₀, …: exactly the particles when m = n, the
first m of them when m < n (the particles are exchangeable), and each particle ⌊m/n⌋ or
⌈m/n⌉ times when m > n (duplicates, which the k-NN metrics drop). ``batch_size`` is not
used: every step moves all particles.

Trace. The recorded loss is (1/n) Σᵢ ‖φ(xᵢ)‖², which is zero exactly at SVGD's fixed points.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import ClassVar, Literal, NamedTuple

import torch
from torch import Tensor, nn

from sivi_engine.kernels import (
    KernelSettings,
    gram,
    median_heuristic_bandwidth_squared,
    pairwise_squared_distances,
)
from sivi_engine.methods.base import CommonSettings, FitResult, Method, Trace
from sivi_engine.methods.registry import METHODS
from sivi_engine.methods.training import optimise
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target

GramFn = Callable[[Tensor, Tensor], Tensor]
"""(y, x) ↦ the Gram matrix [k(yⱼ, xᵢ)]ⱼᵢ of shape (len(y), len(x))."""


class KernelAtParticles(NamedTuple):
    """A kernel k evaluated at the particles x₁ … xₙ.

    ``smooth(v)ᵢ = Σⱼ k(xⱼ, xᵢ) vⱼ`` for v of shape (n, d), and the repulsion
    ``Rᵢ = Σⱼ ∇_{xⱼ} k(xⱼ, xᵢ)``, shape (n, d). ``smooth`` is a function, so that a low-rank
    kernel need not build the n×n Gram matrix.
    """

    smooth: Callable[[Tensor], Tensor]
    repulsion: Tensor


ParticleKernel = Callable[[Tensor], KernelAtParticles]
"""Particles ↦ the kernel at them, its constants (a bandwidth, a mean) computed from them."""


@dataclasses.dataclass(frozen=True)
class SVGDSettings(CommonSettings):
    """Defaults of Liu & Wang's reference code (github.com/DartML/Stein-Variational-Gradient-
    Descent, ``svgd.py``): Gaussian kernel with the median bandwidth, AdaGrad with momentum
    (α = 0.9, fudge 1e-6), step size 1e-2 (their demo's) without decay, particles from N(0, I).
    1000 particles and 5000 iterations are sized for 2-D targets. AdaGrad's normalised steps
    keep the particles jittering by about ``lr`` around the fixed point; ``lr_decay`` < 1
    damps that."""

    families: ClassVar[tuple[str, ...]] = ("training", "initial_scale")

    iterations: int = 5000
    lr: float = 1e-2
    lr_decay: float = 1.0
    num_particles: int = 1000
    init_scale: float = 1.0
    optimizer: Literal["adagrad", "adam", "sgd"] = "adagrad"
    adagrad_alpha: float = 0.9
    kernel: KernelSettings = KernelSettings()

    def validate(self) -> None:
        super().validate()
        if self.num_particles < 2:
            raise SettingsError(f"setting 'num_particles': must be >= 2, got {self.num_particles}")
        if self.init_scale <= 0:
            raise SettingsError(f"setting 'init_scale': must be > 0, got {self.init_scale}")
        if not 0 <= self.adagrad_alpha < 1:
            raise SettingsError(
                f"setting 'adagrad_alpha': must lie in [0, 1), got {self.adagrad_alpha}"
            )


def median_gaussian_kernel(x: Tensor) -> KernelAtParticles:
    """k(a, b) = exp(−‖a − b‖² / 2h²) with h² = ½ median ‖xᵢ − xⱼ‖² / log(n + 1) over the
    particles x, and its repulsion Rᵢ = Σⱼ (xᵢ − xⱼ) k(xⱼ, xᵢ) / h² (as Liu & Wang's code)."""
    sq = pairwise_squared_distances(x, x)
    h2 = median_heuristic_bandwidth_squared(sq, x.shape[0])
    k = torch.exp(-sq / (2.0 * h2))
    return KernelAtParticles(lambda v: k.T @ v, (x * k.sum(0, keepdim=True).T - k.T @ x) / h2)


def affine_kernel(x: Tensor) -> KernelAtParticles:
    """k(a, b) = 1 + (a − μ)ᵀ Σ⁻¹ (b − μ), μ and Σ the particles' mean and (1/n) covariance,
    held fixed. With wᵢ = L⁻¹(xᵢ − μ), Σ = LLᵀ: smooth(v)ᵢ = Σⱼ vⱼ + (Σⱼ vⱼ wⱼᵀ) wᵢ, and the
    repulsion is Rᵢ = n Σ⁻¹(xᵢ − μ); O(n d²), no Gram matrix.

    The neural tangent kernel of the Gaussian reparameterisation x = μ + Aε: SVGD with it is
    BBVI of a Gaussian (Chu, Minami & Fukumizu 2020).
    """
    n = x.shape[0]
    centred = x - x.mean(0)
    chol = torch.linalg.cholesky(centred.T @ centred / n)
    white = torch.linalg.solve_triangular(chol, centred.T, upper=False).T  # rows wᵢ
    precision_centred = torch.linalg.solve_triangular(chol.T, white.T, upper=True).T  # Σ⁻¹(xᵢ − μ)
    return KernelAtParticles(lambda v: v.sum(0) + white @ (white.T @ v), n * precision_centred)


def repulsion(gram_fn: GramFn, x: Tensor) -> Tensor:
    """Rᵢ = Σⱼ ∇_{xⱼ} k(xⱼ, xᵢ), shape (n, d): the Jacobian R of t ↦ F(t) = [Σⱼ k(xⱼ + t, xᵢ)]ᵢ
    at 0.

    Shifting every first argument by one t ∈ R^d sums the gradients over j. One backward pass
    gives the vector-Jacobian product g(u) = Rᵀu, linear in u ∈ R^n; the c-th column of R is
    ∂g_c/∂u, one more backward pass per coordinate (double backward; d + 1 passes in all).
    """
    with torch.enable_grad():
        shift = x.new_zeros(x.shape[1], requires_grad=True)
        weights = x.new_ones(x.shape[0], requires_grad=True)
        column_sums = gram_fn(x + shift, x).sum(0)
        (rt_u,) = torch.autograd.grad(column_sums @ weights, shift, create_graph=True)
        columns = [
            torch.autograd.grad(rt_u[c], weights, retain_graph=True)[0] for c in range(x.shape[1])
        ]
    return torch.stack(columns, dim=1)


def autodiff_kernel(gram_fn: GramFn) -> ParticleKernel:
    """Any differentiable kernel with constant parameters; the repulsion by :func:`repulsion`."""

    def at(x: Tensor) -> KernelAtParticles:
        k = gram_fn(x, x)
        return KernelAtParticles(lambda v: k.T @ v, repulsion(gram_fn, x))

    return at


def kernel_from_settings(settings: KernelSettings) -> ParticleKernel:
    """The Gaussian kernel with the median bandwidth, or a constant kernel of :mod:`kernels`."""
    if settings.name == "gaussian" and settings.bandwidth is None:
        return median_gaussian_kernel
    return autodiff_kernel(functools.partial(gram, settings=settings))


def stein_direction(score: Tensor, kernel: KernelAtParticles) -> Tensor:
    """φ(xᵢ) = (1/n) Σⱼ [k(xⱼ, xᵢ) ∇log p(xⱼ) + ∇_{xⱼ} k(xⱼ, xᵢ)] for all particles, (n, d)."""
    return (kernel.smooth(score) + kernel.repulsion) / score.shape[0]


def ascent_surrogate(particles: Tensor, phi: Tensor) -> Tensor:
    """A scalar whose gradient in ``particles`` is −φ, so a minimiser's step moves them along +φ;
    its value is (1/n) Σᵢ ‖φ(xᵢ)‖²."""
    linear = -(phi * particles).sum()
    return phi.square().sum(1).mean() + (linear - linear.detach())


class MomentumAdagrad(torch.optim.Optimizer):
    """Liu & Wang's "AdaGrad with momentum": v ← g² at the first step, v ← α v + (1 − α) g² after;
    x ← x − lr · g / (1e-6 + √v), elementwise."""

    def __init__(self, params, lr: float, alpha: float = 0.9, fudge: float = 1e-6) -> None:
        super().__init__(params, {"lr": lr, "alpha": alpha, "fudge": fudge})

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                alpha = group["alpha"]
                if "square_avg" in state:
                    state["square_avg"].mul_(alpha).addcmul_(p.grad, p.grad, value=1 - alpha)
                else:
                    state["square_avg"] = p.grad.square()
                p.addcdiv_(
                    p.grad, state["square_avg"].sqrt().add_(group["fudge"]), value=-group["lr"]
                )


OPTIMISERS = {
    "adagrad": lambda params, s: MomentumAdagrad(params, lr=s.lr, alpha=s.adagrad_alpha),
    "adam": lambda params, s: torch.optim.Adam(params, lr=s.lr, betas=tuple(s.betas)),
    "sgd": lambda params, s: torch.optim.SGD(params, lr=s.lr),
}


def run_svgd(
    target: Target, initial: Tensor, kernel: ParticleKernel, settings: SVGDSettings
) -> tuple[Tensor, Trace]:
    """Move the particles ``initial`` (n, d) for ``settings.iterations`` steps; returns them
    and the trace."""
    particles = nn.Parameter(initial.clone())

    def loss(step: int) -> Tensor:
        x = particles.detach()
        phi = stein_direction(target.score(x), kernel(x))
        return ascent_surrogate(particles, phi)

    trace = optimise(
        loss,
        [particles],
        settings,
        description=f"svgd on {target.name}",
        optimiser=OPTIMISERS[settings.optimizer]([particles], settings),
        sample=lambda m: particle_draws(particles.detach(), m),
    )
    return particles.detach(), trace


def particle_draws(particles: Tensor, num_draws: int) -> Tensor:
    """Draws x_{i mod n}, i = 0 … num_draws − 1 (see the module docstring)."""
    return particles[torch.arange(num_draws, device=particles.device) % particles.shape[0]]


@METHODS.register("svgd")
class SVGD(Method):
    name = "svgd"
    Settings = SVGDSettings
    smoke_settings = {"num_particles": 20}

    def memory_need(self, settings: SVGDSettings, dim: int) -> tuple[str, int]:
        """The particles' Gram matrix and squared distances: 2 n² float64 entries."""
        return "num_particles", 2 * 8 * settings.num_particles**2

    def fit(self, target: Target, settings: SVGDSettings, device: torch.device) -> FitResult:
        dtype = settings.torch_dtype
        shape = (settings.num_particles, target.dim)
        initial = settings.init_scale * torch.randn(shape, device=device, dtype=dtype)
        particles, trace = run_svgd(
            target, initial, kernel_from_settings(settings.kernel), settings
        )
        return FitResult(samples=particle_draws(particles, settings.num_draws), trace=trace)
