"""Settings and construction shared by the methods that train a semi-implicit Gaussian family
(KSIVI, SIVI, SIVI-SM, UIVI): defaults of KSIVI's 2-D experiments (Cheng et al. 2024)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from sivi_engine.families.semi_implicit import SemiImplicitGaussian
from sivi_engine.methods.base import CommonSettings
from sivi_engine.settings import SettingsError

#: The conditional's covariance: diag σ² or a learned full LLᵀ.
COVARIANCES = ("diagonal", "full")


@dataclasses.dataclass(frozen=True)
class SemiImplicitSettings(CommonSettings):
    """Mean MLP z_dim→50→50→d (ReLU), global diagonal σ from ``init_sigma``, clamped below at
    ``min_sigma``. ``z_dim`` (None: :func:`latent_dim`) is 3 on the 2-D targets, as in the
    papers, and d above: q = ∫ N(μ(z), diag σ²) N(z; 0, I) dz holds a dense d-dimensional
    covariance only when z_dim ≥ d (a linear μ(z) = Az gives AAᵀ + diag σ², of rank-z_dim
    correlation), which the 22-D to 100-D posteriors need. ``learn_sigma`` False keeps σ fixed at
    ``init_sigma`` (SIVI's 2-D code: σ = 0.1, not learned). ``covariance`` "full" gives the
    conditional a learned shared Cholesky factor instead of diag σ (SIVI's logistic-regression
    code)."""

    families: ClassVar[tuple[str, ...]] = ("training", "semi_implicit")

    z_dim: int | None = None
    hidden: tuple[int, ...] = (50, 50)
    init_sigma: float = 1.0
    min_sigma: float = 1e-3
    learn_sigma: bool = True
    covariance: str = "diagonal"

    def validate(self) -> None:
        super().validate()
        if self.covariance not in COVARIANCES:
            raise SettingsError(
                f"setting 'covariance' must be one of {', '.join(COVARIANCES)}, "
                f"got {self.covariance!r}"
            )
        if (self.z_dim is not None and self.z_dim < 1) or any(h < 1 for h in self.hidden):
            raise SettingsError("settings 'z_dim' and 'hidden' must be positive")
        if not 0 < self.min_sigma <= self.init_sigma:
            raise SettingsError("settings: need 0 < min_sigma <= init_sigma")


#: Smallest default latent dimension (the papers' z_dim on 2-D targets).
MIN_DEFAULT_Z_DIM = 3


def latent_dim(settings: SemiImplicitSettings, dim: int) -> int:
    """``settings.z_dim``, or max(3, d) when unset."""
    return settings.z_dim if settings.z_dim is not None else max(MIN_DEFAULT_Z_DIM, dim)


def build_family(
    dim: int, settings: SemiImplicitSettings, device: torch.device
) -> SemiImplicitGaussian:
    """The semi-implicit family for a d-dimensional target, on ``device`` in ``settings.dtype``."""
    family = SemiImplicitGaussian(
        dim,
        latent_dim(settings, dim),
        settings.hidden,
        settings.init_sigma,
        settings.min_sigma,
        settings.learn_sigma,
        full_covariance=settings.covariance == "full",
    )
    return family.to(device=device, dtype=settings.torch_dtype)
