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
- ``min_singular_value``: the approximation of the paper's code for models too large for J
  (``accurate=False``): k log λ_min(σ²I_k + G) = k log(σ² + s²_min(J)), a lower bound. That code
  estimates s_min by 3 (classification) or 5 (regression) Rayleigh–Ritz iterations of
  Jacobian-vector products, never forming J; here J is formed and λ_min is exact, so the
  setting reproduces that objective, not its memory savings. With m above a hidden width,
  s_min = 0 and the bound is k log σ², constant in φ;
- ``low_rank``: the r = min(``rank``, m) leading singular values of J, never forming J. Each
  draw gets an orthonormal V (m × r) spanning approximately J's leading right singular vectors,
  by ``subspace_iterations`` q steps of subspace (block power) iteration V ← QR(Jᵀ(JV)) from a
  random start, without gradients; J V is pushed forward through the layers from W_1 V (instead
  of W_1: the Jacobian's path) and Jᵀ U pulled back through them. Then

      log det(σ²I_d + JJᵀ) ≈ log det(σ²I_d + JV(JV)ᵀ) = Σ_{i≤r} log(σ² + θ_i) + (d − r) log σ²,

  θ_i the Rayleigh–Ritz values, the eigenvalues of (JV)ᵀ(JV) (r × r), computed by the exact path
  on the d × r matrix JV. It is a lower bound for any orthonormal V (VVᵀ ⪯ I gives
  JVVᵀJᵀ ⪯ JJᵀ), equal to Σ_{i≤r} log(σ² + s_i²) + (d − r) log σ² once V spans the leading
  subspace, and exact when rank J ≤ r (r ≥ m: V spans R^m). Gradients flow through J V with V
  held fixed, as the paper's code holds its Ritz vectors fixed; at the leading subspace they
  equal the gradient of Σ_{i≤r} log(σ² + s_i²), since the derivative of an invariant
  subspace's Rayleigh quotient in V vanishes to first order. The paper's code bounds by the
  smallest singular value instead; this bound keeps the r largest, which a low-rank J (m or a
  hidden width below d) makes tight.

  Cost per draw, widths w_1..w_{L−1} and w_0 = m, w_L = d: 2q + 1 passes of r vectors through
  the layers, O(r Σ_l w_{l−1} w_l) time, plus O(q m r²) for the QR factorisations and
  O(d r²) for (JV)ᵀ(JV); memory O(r Σ_l w_l): O(r d) for JV, the largest, never the d × m J
  (``exact`` forms J in O(m Σ_l w_{l−1} w_l) time and O(d m) memory, and G in O(d m k)).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sivi_engine.methods.base import CommonSettings, FitResult, Method
from sivi_engine.methods.registry import METHODS
from sivi_engine.methods.training import fit_variational
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
    approximate ELBO converged 1.2 nats above log Z, which no true ELBO can reach).

    ``rank`` r and ``subspace_iterations`` q are read by ``log_det: low_rank`` only (module
    docstring); r ≥ m makes it exact."""

    families: ClassVar[tuple[str, ...]] = ("training", "livi")

    z_dim: int | None = None
    hidden: tuple[int, ...] = (50, 50)
    sigma: float = 1e-3
    log_det: Literal["exact", "min_singular_value", "low_rank"] = "exact"
    rank: int = 10
    subspace_iterations: int = 5

    def validate(self) -> None:
        super().validate()
        if (self.z_dim is not None and self.z_dim < 1) or any(h < 1 for h in self.hidden):
            raise SettingsError("settings 'z_dim' and 'hidden' must be positive")
        if self.sigma <= 0:
            raise SettingsError(f"setting 'sigma': must be > 0, got {self.sigma}")
        if self.rank < 1:
            raise SettingsError(
                f"setting 'rank': the number of singular values of the generator's Jacobian "
                f"kept by log_det 'low_rank' must be >= 1, got {self.rank}"
            )
        if self.subspace_iterations < 1:
            raise SettingsError(
                f"setting 'subspace_iterations': must be >= 1, got {self.subspace_iterations}"
            )


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


#: log det(σ²I + G) by ``log_det``; low_rank is exact on the projected Jacobian J V (module
#: docstring).
LOG_DETS = {
    "exact": exact_log_det,
    "min_singular_value": min_singular_value_bound,
    "low_rank": exact_log_det,
}


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
    """x = g_φ(z) + σ ε with g an MLP with ELU activations; training draws come with ∂g/∂z,
    in full or projected onto a few latent directions."""

    def __init__(self, dim: int, z_dim: int, hidden: tuple[int, ...], sigma: float) -> None:
        super().__init__()
        self.dim, self.z_dim, self.sigma = dim, z_dim, sigma
        sizes = (z_dim, *hidden, dim)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def _normal(self, *shape: int) -> Tensor:
        weight = self.layers[0].weight
        return torch.randn(*shape, device=weight.device, dtype=weight.dtype)

    def value_and_slopes(self, z: Tensor) -> tuple[Tensor, list[Tensor]]:
        """g(z), (n, d), and the ELU slopes ELU'(h) = e^{min(h, 0)} at each hidden layer's
        pre-activation h, (n, width): with them J = W_L D_{L−1} W_{L−1} ⋯ D_1 W_1, D = diag."""
        first, *rest = self.layers
        h, slopes = first(z), []
        for layer in rest:
            slopes.append(h.clamp_max(0.0).exp())
            h = layer(F.elu(h))
        return h, slopes

    def push_forward(self, slopes: list[Tensor], tangents: Tensor) -> Tensor:
        """J V, (n, d, k), from the first layer's tangents W_1 V, (n, width_1, k) (or (width_1,
        k), shared): forward mode through the layers, T ↦ W D T."""
        for layer, slope in zip(self.layers[1:], slopes):
            tangents = layer.weight @ (slope.unsqueeze(-1) * tangents)
        return tangents

    def pull_back(self, slopes: list[Tensor], cotangents: Tensor) -> Tensor:
        """Jᵀ U, (n, m, k), for U (n, d, k): reverse mode through the layers, U ↦ D Wᵀ U."""
        first, *rest = self.layers
        for layer, slope in zip(reversed(rest), reversed(slopes)):
            cotangents = slope.unsqueeze(-1) * (layer.weight.mT @ cotangents)
        return first.weight.mT @ cotangents

    def value_and_jacobian(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """g(z), (n, d), and J = ∂g/∂z, (n, d, m): :meth:`push_forward` of W_1 itself."""
        h, slopes = self.value_and_slopes(z)
        return h, self.push_forward(slopes, self.layers[0].weight.expand(z.shape[0], -1, -1))

    def value_and_projected_jacobian(
        self, z: Tensor, rank: int, iterations: int
    ) -> tuple[Tensor, Tensor]:
        """g(z), (n, d), and J V, (n, d, r), r = min(rank, m), with V (n, m, r) an orthonormal
        basis of J's leading right singular subspace (:func:`leading_right_singular_subspace`),
        found without gradients; J V carries the gradient in φ, V held fixed."""
        h, slopes = self.value_and_slopes(z)
        rank = min(rank, self.z_dim)
        with torch.no_grad():
            detached = [slope.detach() for slope in slopes]
            basis = leading_right_singular_subspace(
                lambda v: self.push_forward(detached, self.layers[0].weight @ v),
                lambda u: self.pull_back(detached, u),
                self._normal(z.shape[0], self.z_dim, rank),
                iterations,
            )
        return h, self.push_forward(slopes, self.layers[0].weight @ basis)

    def draw_with_jacobian(self, n: int) -> tuple[Tensor, Tensor]:
        """n draws x = g(z) + σε (differentiable in φ) and the Jacobians J at their z."""
        mean, jac = self.value_and_jacobian(self._normal(n, self.z_dim))
        return mean + self.sigma * self._normal(n, self.dim), jac

    def draw_with_projected_jacobian(
        self, n: int, rank: int, iterations: int
    ) -> tuple[Tensor, Tensor]:
        """n draws x = g(z) + σε (differentiable in φ) and the projected Jacobians J V at their
        z (:meth:`value_and_projected_jacobian`)."""
        mean, projected = self.value_and_projected_jacobian(
            self._normal(n, self.z_dim), rank, iterations
        )
        return mean + self.sigma * self._normal(n, self.dim), projected

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """n draws without gradients (no Jacobian)."""
        mean, _ = self.value_and_slopes(self._normal(n, self.z_dim))
        return mean + self.sigma * self._normal(n, self.dim)


def leading_right_singular_subspace(
    jvp: Callable[[Tensor], Tensor], vjp: Callable[[Tensor], Tensor], start: Tensor, iterations: int
) -> Tensor:
    """Orthonormal V, (n, m, r), spanning approximately the r leading right singular vectors of
    each J, by subspace (block power) iteration V ← QR(Jᵀ(J V)) from QR(``start``).

    The angle to the exact subspace shrinks as (s_{r+1}/s_r)^q after q iterations (Golub & Van
    Loan, Matrix Computations, §8.2.4); r ≥ rank J makes any orthonormal V span all of J's row
    space."""
    basis = torch.linalg.qr(start).Q
    for _ in range(iterations):
        basis = torch.linalg.qr(vjp(jvp(basis))).Q
    return basis


#: Bytes per entry of the settings' dtype.
ENTRY_BYTES = {"float32": 4, "float64": 8}


@METHODS.register("livi")
class LIVI(Method):
    name = "livi"
    Settings = LIVISettings

    def memory_need(self, settings: LIVISettings, dim: int) -> tuple[str, int]:
        """The batch's Jacobians, batch × d × m entries (exact, min_singular_value), or their
        projections J V, batch × d × min(r, m) (low_rank)."""
        z_dim = settings.z_dim if settings.z_dim is not None else dim
        if settings.log_det == "low_rank":
            setting, columns = "rank", min(settings.rank, z_dim)
        else:
            setting, columns = "z_dim", z_dim
        return setting, settings.batch_size * dim * columns * ENTRY_BYTES[settings.dtype]

    def fit(self, target: Target, settings: LIVISettings, device: torch.device) -> FitResult:
        z_dim = settings.z_dim if settings.z_dim is not None else target.dim
        q = LinearisedGenerator(target.dim, z_dim, settings.hidden, settings.sigma)
        q = q.to(device=device, dtype=settings.torch_dtype)

        def loss(step: int) -> Tensor:
            if settings.log_det == "low_rank":
                x, jac = q.draw_with_projected_jacobian(
                    settings.batch_size, settings.rank, settings.subspace_iterations
                )
            else:
                x, jac = q.draw_with_jacobian(settings.batch_size)
            entropy = linearised_entropy(jac, settings.sigma, settings.log_det)
            return -(target.log_prob(x).mean() + entropy)

        return fit_variational(q, loss, f"livi on {target.name}", settings)
