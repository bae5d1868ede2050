"""Gaussian mixtures p(x) = Σ_k w_k N(x; μ_k, Σ_k), and the targets built on them.

One code path serves every mixture (a single Gaussian is a mixture of one component):
log p is a logsumexp over components, the score is Σ_k r_k(x) (−Σ_k⁻¹ (x − μ_k)) with
responsibilities r_k(x) = w_k N(x; μ_k, Σ_k) / p(x), and draws pick a component with
``torch.multinomial`` and then add L_k z to μ_k, with L_k the Cholesky factor of Σ_k.
"""

from __future__ import annotations

import abc
import dataclasses
import math

import numpy as np
import torch
from torch import Tensor

from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target
from sivi_engine.targets.capabilities import MixtureComponents
from sivi_engine.targets.registry import TARGETS

#: Half-width of the plotting box around each component, in component standard deviations;
#: a Gaussian puts 2Φ(−5) ≈ 5.7e-7 of its mass beyond 5 sd in each coordinate.
BOX_SDS = 5.0


@dataclasses.dataclass(frozen=True)
class Components:
    """Mixture parameters: weights (K,), means (K, d), covariances (K, d, d), all float64."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray


class GaussianMixture(Target, MixtureComponents):
    """A normalised Gaussian mixture; subclasses supply :meth:`components`."""

    normalised = True

    def __init__(self, settings: object | None = None) -> None:
        super().__init__(settings)
        comps = self.components()
        self._weights = torch.as_tensor(comps.weights, dtype=torch.float64)
        self._means = torch.as_tensor(comps.means, dtype=torch.float64)
        self._covariances = torch.as_tensor(comps.covariances, dtype=torch.float64)
        self._chol = torch.linalg.cholesky(self._covariances)
        self._precisions = torch.cholesky_inverse(self._chol)
        # log w_k − (d/2) log 2π − ½ log det Σ_k
        half_log_det = torch.log(torch.diagonal(self._chol, dim1=-2, dim2=-1)).sum(-1)
        self._log_norm = (
            torch.log(self._weights) - 0.5 * self.dim * math.log(2 * math.pi) - half_log_det
        )

    @abc.abstractmethod
    def components(self) -> Components:
        """The mixture's weights, means and covariances."""

    @property
    def dim(self) -> int:
        return self._means.shape[1]

    def component_weights(self) -> np.ndarray:
        """Mixture weights w_k, shape (K,)."""
        return self._weights.numpy().copy()

    def component_means(self) -> np.ndarray:
        """Component means μ_k, shape (K, d)."""
        return self._means.numpy().copy()

    def component_covariances(self) -> np.ndarray:
        """Component covariances Σ_k, shape (K, d, d)."""
        return self._covariances.numpy().copy()

    def _joint_terms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """log(w_k N(x; μ_k, Σ_k)) of shape (n, K) and Σ_k⁻¹(x − μ_k) of shape (n, K, d)."""
        diff = x[:, None, :] - self._means.to(x)
        prec_diff = torch.einsum("kij,nkj->nki", self._precisions.to(x), diff)
        log_joint = self._log_norm.to(x) - 0.5 * (diff * prec_diff).sum(-1)
        return log_joint, prec_diff

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) = logsumexp_k [log w_k + log N(x; μ_k, Σ_k)]."""
        log_joint, _ = self._joint_terms(x)
        return torch.logsumexp(log_joint, dim=1)

    def score(self, x: Tensor) -> Tensor:
        """∇ log p(x) = −Σ_k r_k(x) Σ_k⁻¹(x − μ_k)."""
        log_joint, prec_diff = self._joint_terms(x)
        resp = torch.softmax(log_joint, dim=1)
        return -(resp[..., None] * prec_diff).sum(1)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Component k ~ Categorical(w), then x = μ_k + L_k z with z ~ N(0, I)."""
        which = torch.multinomial(self._weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        noise = torch.einsum("kij,nj->nki", self._chol, z)  # L_k z for every k: (n, K, d)
        return self._means[which] + noise[torch.arange(n), which]

    def plot_bounds(self) -> tuple[tuple[float, float], ...]:
        """Per coordinate, from min_k (μ_k − 5 sd_k) to max_k (μ_k + 5 sd_k)."""
        sds = torch.sqrt(torch.diagonal(self._covariances, dim1=-2, dim2=-1))
        low = (self._means - BOX_SDS * sds).min(0).values
        high = (self._means + BOX_SDS * sds).max(0).values
        return tuple((float(lo), float(hi)) for lo, hi in zip(low, high))


def isotropic(
    means: list[list[float]] | np.ndarray, weights: list[float], sd: float = 1.0
) -> Components:
    """Components with the given means and weights and common covariance sd² I."""
    centres = np.asarray(means, dtype=np.float64)
    k, d = centres.shape
    covariances = np.broadcast_to(sd**2 * np.eye(d), (k, d, d)).copy()
    return Components(np.asarray(weights, dtype=np.float64), centres, covariances)


@TARGETS.register("x_shaped")
class XShaped(GaussianMixture):
    """½ N(0, [[2, 1.8], [1.8, 2]]) + ½ N(0, [[2, −1.8], [−1.8, 2]])."""

    name = "x_shaped"

    def components(self) -> Components:
        covariances = np.array([[[2.0, 1.8], [1.8, 2.0]], [[2.0, -1.8], [-1.8, 2.0]]])
        return Components(np.array([0.5, 0.5]), np.zeros((2, 2)), covariances)


@TARGETS.register("multimodal")
class Multimodal(GaussianMixture):
    """½ N((2, 0), I) + ½ N((−2, 0), I)."""

    name = "multimodal"

    def components(self) -> Components:
        return isotropic([[2.0, 0.0], [-2.0, 0.0]], [0.5, 0.5])


@TARGETS.register("multimodal4")
class Multimodal4(GaussianMixture):
    """Weights 1/8, 1/8, 1/2, 1/4 at (2, 2), (−2, −2), (2, −2), (−2, 2); covariance I."""

    name = "multimodal4"

    def components(self) -> Components:
        means = [[2.0, 2.0], [-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0]]
        return isotropic(means, [0.125, 0.125, 0.5, 0.25])


@dataclasses.dataclass(frozen=True)
class Ring8Settings:
    """Radius of the circle of centres and the standard deviation of each component."""

    radius: float = 3.0
    sd: float = 0.3

    def validate(self) -> None:
        for field in ("radius", "sd"):
            if not getattr(self, field) > 0:
                raise SettingsError(f"setting {field!r} must be > 0, got {getattr(self, field)!r}")


@TARGETS.register("ring8")
class Ring8(GaussianMixture):
    """(1/8) Σ_k N(r (cos 2πk/8, sin 2πk/8), sd² I), k = 0..7."""

    name = "ring8"
    Settings = Ring8Settings

    def components(self) -> Components:
        angles = 2 * np.pi * np.arange(8) / 8
        means = self.settings.radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        return isotropic(means, [1 / 8] * 8, sd=self.settings.sd)


@TARGETS.register("gmm1d")
class Gmm1d(GaussianMixture):
    """One-dimensional 0.3 N(−2, 1) + 0.7 N(2, 1)."""

    name = "gmm1d"

    def components(self) -> Components:
        return isotropic([[-2.0], [2.0]], [0.3, 0.7])


@dataclasses.dataclass(frozen=True)
class GaussianSettings:
    """N(mean·1, Σ) on R^dim.

    Σ = (1 − ρ) I + ρ 11ᵀ (unit variances, equicorrelation ρ = ``correlation``) unless
    ``random_covariance``, in which case W = default_rng(seed).normal(size=(d, d)) and
    Σ = W Wᵀ / d + 0.5 I (dense, symmetric positive definite, eigenvalues ≥ 0.5).
    """

    dim: int = 2
    correlation: float = 0.8
    random_covariance: bool = False
    seed: int = 0
    mean: float = 0.0

    def validate(self) -> None:
        if self.dim < 1:
            raise SettingsError(f"setting 'dim' must be >= 1, got {self.dim!r}")
        lower = -1.0 / (self.dim - 1) if self.dim > 1 else -math.inf
        if not self.random_covariance and not lower < self.correlation < 1:
            raise SettingsError(
                f"setting 'correlation' must lie in ({lower:g}, 1) for dim {self.dim} "
                f"(else the covariance is not positive definite), got {self.correlation!r}"
            )


def gaussian_covariance(settings: GaussianSettings) -> np.ndarray:
    """The covariance Σ described in :class:`GaussianSettings`."""
    d = settings.dim
    if settings.random_covariance:
        w = np.random.default_rng(settings.seed).normal(size=(d, d))
        return w @ w.T / d + 0.5 * np.eye(d)
    rho = settings.correlation
    return (1 - rho) * np.eye(d) + rho * np.ones((d, d))


@TARGETS.register("gaussian")
class Gaussian(GaussianMixture):
    """A multivariate normal N(mean·1, Σ), Σ as in :class:`GaussianSettings`."""

    name = "gaussian"
    Settings = GaussianSettings

    def components(self) -> Components:
        mean = np.full((1, self.settings.dim), self.settings.mean)
        return Components(np.ones(1), mean, gaussian_covariance(self.settings)[None])

    def mean_vector(self) -> np.ndarray:
        """The mean, shape (d,)."""
        return self.component_means()[0]

    def covariance(self) -> np.ndarray:
        """The covariance Σ, shape (d, d)."""
        return self.component_covariances()[0]
