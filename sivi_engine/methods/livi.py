"""Implicit VI with a locally linearised generator (LIVI; Uppal, Stensbo-Smidt, Boomsma & Frellsen,
NeurIPS 2023, "Implicit variational inference for high-dimensional posteriors").

q is a neural sampler with a little output noise,

    x = g_φ(z) + σ ε,   z ~ N(0, I_m),   ε ~ N(0, I_d),   σ fixed,

whose density is intractable. Linearising g around the z that produced x gives
q(x) ≈ N(x; g(z), J Jᵀ + σ² I_d) with J = ∂g/∂z (d × m), and with it the entropy
approximation H(q) ≈ E_z[H(N(g(z), JJᵀ + σ²I))], so

    ELBO ≈ E_{z,ε}[log p(g(z) + σε)] + (d/2) log(2πe) + ½ E_z[log det(JJᵀ + σ² I_d)].

The approximation is exact for an affine g; for a nonlinear g it is not a bound.

J is carried through the generator's layers alongside g(z) (forward mode by hand, batched).
The log-determinant uses the matrix determinant lemma,
log det(σ²I_d + JJᵀ) = (d − k) log σ² + log det(σ²I_k + G) with k = min(d, m) and G = JᵀJ
(m ≤ d) or JJᵀ (m > d), so only the k × k matrix σ²I_k + G is factorised. ``log_det``
chooses how its log-determinant is computed:

- ``exact``: from its Cholesky factor;
- ``min_singular_value``: the paper's approximation for models too large for J (tens of
  millions of weights): k log λ_min(σ²I_k + G) = k log(σ² + s²_min(J)), a lower bound. The
  paper's code (``accurate=False``) estimates s_min by a few Rayleigh–Ritz iterations of
  Jacobian-vector products, never forming J; here J is formed and λ_min is exact, so the
  setting reproduces the paper's large-model objective, not its memory savings. It is never
  switched on automatically: the exact term costs O(k³) per draw, small for every target of
  this benchmark.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sivi_engine.methods.base import CommonSettings, FitResult, Method
from sivi_engine.methods.registry import METHODS
from sivi_engine.methods.training import optimise
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target


@dataclasses.dataclass(frozen=True)
class LIVISettings(CommonSettings):
    """σ = 1e-3 and ELU activations as the paper's code (``small_noise``; the generators of
    ``implicit_train.py``; a ReLU generator can die into a point mass, where J = 0 and no
    gradient flows). Generator widths, batch and optimiser as KSIVI's 2-D defaults (hidden
    50, 50; batch 500; Adam lr 1e-3). ``z_dim`` defaults to the target's dimension d: with
    m < d, q lives within σ of an m-dimensional manifold; with m > d (e.g. KSIVI's 3 on 2-D
    targets) the generator can inflate J along the surplus latent directions without spreading
    q, and the linearised entropy overshoots (on a correlated 2-D Gaussian with m = 3, the
    approximate ELBO converged 1.2 nats above log Z, which no true ELBO can reach)."""

    z_dim: int | None = None
    hidden: tuple[int, ...] = (50, 50)
    sigma: float = 1e-3
    log_det: Literal["exact", "min_singular_value"] = "exact"

    def validate(self) -> None:
        super().validate()
        if (self.z_dim is not None and self.z_dim < 1) or any(h < 1 for h in self.hidden):
            raise SettingsError("settings 'z_dim' and 'hidden' must be positive")
        if self.sigma <= 0:
            raise SettingsError(f"setting 'sigma': must be > 0, got {self.sigma}")


def small_gram(jac: Tensor) -> Tensor:
    """G = JᵀJ (m ≤ d) or JJᵀ (m > d): k × k, k = min(d, m), eigenvalues the s² of J."""
    jt = jac.transpose(-1, -2)
    return jt @ jac if jac.shape[-1] <= jac.shape[-2] else jac @ jt


def exact_log_det(shifted: Tensor) -> Tensor:
    """log det(σ²I + G) from its Cholesky factor."""
    return 2.0 * torch.linalg.cholesky(shifted).diagonal(dim1=-2, dim2=-1).log().sum(-1)


def min_singular_value_bound(shifted: Tensor) -> Tensor:
    """k log λ_min(σ²I + G) = k log(σ² + s²_min(J)) ≤ log det(σ²I + G)."""
    return shifted.shape[-1] * torch.linalg.eigvalsh(shifted)[..., 0].log()


LOG_DETS = {"exact": exact_log_det, "min_singular_value": min_singular_value_bound}


def linearised_log_det(jac: Tensor, sigma: float, method: str) -> Tensor:
    """log det(JJᵀ + σ²I_d) for each (d, m) Jacobian of a batch, by the determinant lemma.

    The k × k matrix σ²I + G is formed and factorised in float64: with σ = 1e-3, σ² is below
    float32's resolution of G, and round-off could make it indefinite.
    """
    d, m = jac.shape[-2:]
    k = min(d, m)
    eye = torch.eye(k, dtype=torch.float64, device=jac.device)
    shifted = small_gram(jac.double()) + sigma**2 * eye
    return ((d - k) * math.log(sigma**2) + LOG_DETS[method](shifted)).to(jac.dtype)


def linearised_entropy(jac: Tensor, sigma: float, method: str) -> Tensor:
    """Mean over the batch of H(N(·, JJᵀ + σ²I_d)) = (d/2) log(2πe) + ½ log det(JJᵀ + σ²I_d)."""
    half_log_det = 0.5 * linearised_log_det(jac, sigma, method).mean()
    return 0.5 * jac.shape[-2] * math.log(2 * math.pi * math.e) + half_log_det


class LinearisedGenerator(nn.Module):
    """x = g_φ(z) + σ ε with g an MLP with ELU activations; training draws come with ∂g/∂z."""

    def __init__(self, dim: int, z_dim: int, hidden: tuple[int, ...], sigma: float) -> None:
        super().__init__()
        self.dim, self.z_dim, self.sigma = dim, z_dim, sigma
        sizes = (z_dim, *hidden, dim)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def _normal(self, n: int, k: int) -> Tensor:
        weight = self.layers[0].weight
        return torch.randn(n, k, device=weight.device, dtype=weight.dtype)

    def value_and_jacobian(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """g(z), (n, d), and J = ∂g/∂z, (n, d, m), carrying J through the layers (forward mode by
        hand): a linear layer maps J ↦ WJ, an ELU J ↦ diag(ELU'(h)) J with
        ELU'(h) = e^{min(h, 0)}."""
        first, *rest = self.layers
        h, jac = first(z), first.weight.expand(z.shape[0], -1, -1)
        for layer in rest:
            jac = layer.weight @ (h.clamp_max(0.0).exp().unsqueeze(-1) * jac)
            h = layer(F.elu(h))
        return h, jac

    def draw_with_jacobian(self, n: int) -> tuple[Tensor, Tensor]:
        """n draws x = g(z) + σε (differentiable in φ) and the Jacobians J at their z."""
        mean, jac = self.value_and_jacobian(self._normal(n, self.z_dim))
        return mean + self.sigma * self._normal(n, self.dim), jac

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """n draws without gradients."""
        return self.draw_with_jacobian(n)[0]


#: Why LIVI does not run on the high-dimensional targets (its entropy term costs O(d³) per draw).
JACOBIAN_COST = (
    "its entropy needs the exact d × d Jacobian of the generator for every draw: over 0.4 s per "
    "iteration at d = 100 (benchmarks/results/speed.json)"
)


@METHODS.register("livi")
class LIVI(Method):
    name = "livi"
    Settings = LIVISettings
    unsupported_targets = {
        "diffusion": JACOBIAN_COST,
        "bnn_diabetes": JACOBIAN_COST,
        "bnn_boston": JACOBIAN_COST,
        "bnn_concrete": JACOBIAN_COST,
        "bnn_energy": JACOBIAN_COST,
        "bnn_kin8nm": JACOBIAN_COST,
        "bnn_naval": JACOBIAN_COST,
        "bnn_power": JACOBIAN_COST,
        "bnn_protein": JACOBIAN_COST,
        "bnn_wine": JACOBIAN_COST,
        "bnn_yacht": JACOBIAN_COST,
    }

    def fit(self, target: Target, settings: LIVISettings, device: torch.device) -> FitResult:
        z_dim = settings.z_dim if settings.z_dim is not None else target.dim
        q = LinearisedGenerator(target.dim, z_dim, settings.hidden, settings.sigma)
        q = q.to(device=device, dtype=settings.torch_dtype)

        def loss(step: int) -> Tensor:
            x, jac = q.draw_with_jacobian(settings.batch_size)
            entropy = linearised_entropy(jac, settings.sigma, settings.log_det)
            return -(target.log_prob(x).mean() + entropy)

        trace = optimise(
            loss, q.parameters(), settings, description=f"livi on {target.name}", sample=q.sample
        )
        return FitResult(samples=q.sample(settings.num_draws), trace=trace)
