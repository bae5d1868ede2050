"""A correlated, heavy-tailed two-dimensional target: a linear map of iid Student-t variables."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target
from sivi_engine.targets.capabilities import SemiImplicitDensity
from sivi_engine.targets.registry import TARGETS
from sivi_engine.targets.scale_mixture import (
    conditional_normal_log_density,
    coordinatewise_mixture_estimate,
    log_precision_log_density,
    sample_log_precision,
    student_t_log_density,
)

#: Each coordinate of t lies inside ±q with probability 1 − 2·TAIL, q the t_df quantile; the
#: plotting box is the image bound of that square, so it holds at least (1 − 2·TAIL)² ≈ 99%.
TAIL = 0.0025


def mixing_matrix() -> np.ndarray:
    """A = inv(S Sᵀ) / det(inv(S Sᵀ)), S = RandomState(50).uniform(−1, 1, size=(2, 2))."""
    s = np.random.RandomState(50).uniform(-1, 1, size=(2, 2))
    a = np.linalg.inv(s @ s.T)
    return a / np.linalg.det(a)


@dataclasses.dataclass(frozen=True)
class StudentT2dSettings:
    """Degrees of freedom ν of each independent Student-t coordinate."""

    df: float = 2.0

    def validate(self) -> None:
        if not self.df > 0:
            raise SettingsError(f"setting 'df' must be > 0, got {self.df!r}")


@dataclasses.dataclass(frozen=True)
class StudentT1dSettings(StudentT2dSettings):
    """Degrees of freedom ν (DSIVI's experiment: ν = 1, the standard Cauchy)."""

    df: float = 1.0


@TARGETS.register("student_t2d")
class StudentT2d(Target):
    """x = A t with t₁, t₂ iid t_ν: p(x) = ∏ᵢ t_ν((A⁻¹x)ᵢ) / |det A|.

    Score: ∇ₓ log p = A⁻ᵀ g with gᵢ = −(ν+1) tᵢ / (ν + tᵢ²), t = A⁻¹x.
    With ν = 2 the variance is infinite; the median is 0 by symmetry.
    """

    name = "student_t2d"
    Settings = StudentT2dSettings
    normalised = True

    @property
    def infinite_variance(self) -> bool:  # type: ignore[override]
        """ν ≤ 2: the marginals of t, hence of x = A t, have no finite variance."""
        return self.settings.df <= 2

    def __init__(self, settings: object | None = None) -> None:
        super().__init__(settings)
        a = mixing_matrix()
        self._a = torch.as_tensor(a, dtype=torch.float64)
        self._a_inv = torch.as_tensor(np.linalg.inv(a), dtype=torch.float64)
        self._log_abs_det = float(np.linalg.slogdet(a)[1])

    @property
    def dim(self) -> int:
        return 2

    def mixing_matrix(self) -> np.ndarray:
        """The matrix A, shape (2, 2)."""
        return self._a.numpy().copy()

    def _latent(self, x: Tensor) -> Tensor:
        """t = A⁻¹x for each row of x."""
        return x @ self._a_inv.to(x).T

    def log_prob(self, x: Tensor) -> Tensor:
        """Σᵢ log t_ν((A⁻¹x)ᵢ) − log |det A|."""
        t = self._latent(x)
        return student_t_log_density(t, self.settings.df) - self._log_abs_det

    def score(self, x: Tensor) -> Tensor:
        """A⁻ᵀ g, gᵢ = −(ν+1) tᵢ / (ν + tᵢ²)."""
        df = self.settings.df
        t = self._latent(x)
        g = -(df + 1) * t / (df + t**2)
        return g @ self._a_inv.to(x)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """t from numpy's exact Student-t sampler, seeded from ``generator``; x = A t."""
        seed = int(torch.randint(2**63 - 1, (1,), generator=generator))
        t = np.random.default_rng(seed).standard_t(self.settings.df, size=(n, 2))
        return torch.as_tensor(t, dtype=torch.float64) @ self._a.T

    def plot_bounds(self) -> tuple[tuple[float, float], ...]:
        """±q Σⱼ|A_ij| per coordinate, q = t_ν quantile at 1 − TAIL: at least 99% of the mass.

        The tails are polynomial, so a box holding essentially all mass would dwarf the bulk.
        """
        from scipy import stats  # only figures and grid metrics need the box; keeps imports light

        q = float(stats.t.ppf(1 - TAIL, self.settings.df))
        half_widths = q * np.abs(self._a.numpy()).sum(1)
        return tuple((-float(h), float(h)) for h in half_widths)


#: Tail mass left outside each side of the 1-D plotting box (t_1 quantiles: ±12.7 hold 95 %).
TAIL_1D = 0.025


@TARGETS.register("student_t1d")
class StudentT1d(Target, SemiImplicitDensity):
    """The standard Student-t t_ν on R as a Gaussian scale mixture (:mod:`.scale_mixture`):
    DSIVI's semi-implicit prior example, p(x) = ∫ N(x | 0, α⁻¹) Gamma(α | ν/2, rate ν/2) dα
    (Molchanov et al. 2019, §5.1: ν = 1). ``log_prob`` is the closed form; the ``dsivi``
    method sees only the mixture (:class:`.capabilities.SemiImplicitDensity`)."""

    name = "student_t1d"
    Settings = StudentT1dSettings
    normalised = True

    @property
    def infinite_variance(self) -> bool:  # type: ignore[override]
        """ν ≤ 2: no finite variance."""
        return self.settings.df <= 2

    @property
    def dim(self) -> int:
        return 1

    @property
    def mixing_dim(self) -> int:
        return 1

    def log_prob(self, x: Tensor) -> Tensor:
        return student_t_log_density(x, self.settings.df)

    def explicit_log_prob(self, x: Tensor) -> Tensor:
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    def sample_mixing(self, n: int, like: Tensor) -> Tensor:
        return sample_log_precision((n, 1), self.settings.df, like)

    def mixing_log_prob(self, u: Tensor) -> Tensor:
        return log_precision_log_density(u, self.settings.df)

    def conditional_log_prob(self, x: Tensor, u: Tensor) -> Tensor:
        return conditional_normal_log_density(x, u)

    def log_prob_estimate(self, x: Tensor, k: int) -> Tensor:
        return coordinatewise_mixture_estimate(x, k, self.settings.df)

    def exact_semi_implicit_log_prob(self, x: Tensor) -> Tensor:
        return self.log_prob(x)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """numpy's exact Student-t sampler, seeded from ``generator``."""
        seed = int(torch.randint(2**63 - 1, (1,), generator=generator))
        t = np.random.default_rng(seed).standard_t(self.settings.df, size=(n, 1))
        return torch.as_tensor(t, dtype=torch.float64)

    def plot_bounds(self) -> tuple[tuple[float, float], ...]:
        """±q, q the t_ν quantile at 1 − TAIL_1D."""
        from scipy import stats  # figures and grid metrics only

        q = float(stats.t.ppf(1 - TAIL_1D, self.settings.df))
        return ((-q, q),)
