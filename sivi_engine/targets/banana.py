"""Banana-shaped two-dimensional targets."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sivi_engine.targets.base import Target
from sivi_engine.targets.registry import TARGETS

#: Correlation ρ of the Gaussian behind ``banana``: y ~ N(0, [[1, ρ], [ρ, 1]]).
RHO = 0.9
#: Standard deviation of x₁ in ``banana_sivi``.
SIVI_SD1 = 2.0


def _bivariate_normal_log_prob(y1: Tensor, y2: Tensor, rho: float) -> Tensor:
    """log N((y₁, y₂); 0, [[1, ρ], [ρ, 1]])."""
    det = 1 - rho**2
    quad = (y1**2 - 2 * rho * y1 * y2 + y2**2) / det
    return -math.log(2 * math.pi) - 0.5 * math.log(det) - 0.5 * quad


@TARGETS.register("banana")
class Banana(Target):
    """(x₁, x₂ + x₁² + 1) ~ N(0, [[1, 0.9], [0.9, 1]]).

    The map x ↦ y = (x₁, x₂ + x₁² + 1) has unit Jacobian, so p(x) = N(y(x); 0, C) and
    ∇ₓ log p = Jᵀ ∇_y log N(y) with J = [[1, 0], [2x₁, 1]].
    Mean (0, −2), covariance [[1, 0.9], [0.9, 3]].
    """

    name = "banana"
    normalised = True

    @property
    def dim(self) -> int:
        return 2

    @staticmethod
    def _transform(x: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, 0], x[:, 1] + x[:, 0] ** 2 + 1

    def log_prob(self, x: Tensor) -> Tensor:
        """log N(y(x); 0, C)."""
        return _bivariate_normal_log_prob(*self._transform(x), RHO)

    def score(self, x: Tensor) -> Tensor:
        """g = −C⁻¹ y, then ∇ₓ log p = (g₁ + 2x₁ g₂, g₂)."""
        y1, y2 = self._transform(x)
        det = 1 - RHO**2
        g1 = -(y1 - RHO * y2) / det
        g2 = -(y2 - RHO * y1) / det
        return torch.stack([g1 + 2 * x[:, 0] * g2, g2], dim=1)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """y = L z with L the Cholesky factor of C, then x = (y₁, y₂ − y₁² − 1)."""
        z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        y1 = z[:, 0]
        y2 = RHO * z[:, 0] + math.sqrt(1 - RHO**2) * z[:, 1]
        return torch.stack([y1, y2 - y1**2 - 1], dim=1)

    def plot_bounds(self) -> tuple[tuple[float, float], ...]:
        """Holds all but ≈ 7.5e-5 of the mass (computed by 1-D quadrature over x₁)."""
        return ((-4.0, 4.0), (-20.0, 3.0))


@TARGETS.register("banana_sivi")
class BananaSivi(Target):
    """x₁ ~ N(0, 2²), x₂ | x₁ ~ N(x₁²/4, 1).

    Mean (0, 1), covariance diag(4, 3): Var x₂ = 1 + Var(x₁²)/16 = 1 + 2·2⁴/16.
    """

    name = "banana_sivi"
    normalised = True

    @property
    def dim(self) -> int:
        return 2

    def log_prob(self, x: Tensor) -> Tensor:
        """log N(x₁; 0, 4) + log N(x₂; x₁²/4, 1)."""
        x1, x2 = x[:, 0], x[:, 1]
        resid = x2 - x1**2 / 4
        return (
            -math.log(2 * math.pi)
            - math.log(SIVI_SD1)
            - 0.5 * (x1 / SIVI_SD1) ** 2
            - 0.5 * resid**2
        )

    def score(self, x: Tensor) -> Tensor:
        """(−x₁/4 + (x₂ − x₁²/4) x₁/2, −(x₂ − x₁²/4))."""
        x1, x2 = x[:, 0], x[:, 1]
        resid = x2 - x1**2 / 4
        return torch.stack([-x1 / SIVI_SD1**2 + resid * x1 / 2, -resid], dim=1)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """x₁ = 2 z₁, x₂ = x₁²/4 + z₂."""
        z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        x1 = SIVI_SD1 * z[:, 0]
        return torch.stack([x1, x1**2 / 4 + z[:, 1]], dim=1)

    def plot_bounds(self) -> tuple[tuple[float, float], ...]:
        """Holds all but ≈ 1.7e-5 of the mass (computed by 1-D quadrature over x₁)."""
        return ((-9.0, 9.0), (-4.0, 22.0))
