"""Conditioned diffusion (the Langevin-posterior benchmark of SIVI-SM and KSIVI; the target
table: docs/architecture.md#targets).

Latent states u₁..u₁₀₀ of the Euler–Maruyama discretisation of
dx = f(x) dt + dW on t ∈ [0, 1], f(x) = 10 (x − x³) / (1 + x²), dt = 0.01, u₀ = 0:

    u_k | u_{k−1} ~ N(u_{k−1} + f(u_{k−1}) dt, dt),   k = 1..100,
    y_j | u ~ N(u_{5j}, 0.1²),                         j = 1..20.

With m_k = u_{k−1} + f(u_{k−1}) dt and r_k = u_k − m_k, the unnormalised log posterior and its
gradient are

    log p(u | y) = −Σ_k r_k² / (2 dt) − Σ_j (y_j − u_{5j})² / (2 · 0.1²),
    ∂/∂u_k = −r_k / dt + 1[k < 100] · r_{k+1} (1 + f′(u_k) dt) / dt + 1[k = 5j] (y_j − u_k) / 0.1²,

computed for all k at once with shifted copies of u. The observed path is one Euler–Maruyama
path from u₀ = 0 with noise from ``default_rng(data_seed)``; its drift is f (``drift="design"``)
or 10 u (1 − u²) (``drift="ksivi"``, as KSIVI's code simulates it; the model's drift stays f, as
in KSIVI's log density).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import SettingsGroup, Target
from sivi_engine.targets.capabilities import LatentPath, StanModel
from sivi_engine.targets.laplace import sigma_settings
from sivi_engine.targets.registry import TARGETS

#: Number of latent states and time step: t_k = k · DT, k = 1..N_STEPS.
N_STEPS, DT = 100, 0.01
#: An observation every OBS_EVERY steps (u₅, u₁₀, ..., u₁₀₀) with noise sd OBS_SD.
OBS_EVERY, OBS_SD = 5, 0.1
#: Drift strength: f(x) = DRIFT_SCALE · (x − x³) / (1 + x²).
DRIFT_SCALE = 10.0
#: KSIVI's conditioned-diffusion experiment (longinYu/KSIVI,
#: ``configs/kernel_sivi_langevin_post.yml``): 1000 epochs × 100 steps, batch 128, decay ×0.9
#: every 10000 steps ...
KSIVI_TRAINING = {"iterations": 100_000, "batch_size": 128, "lr_decay_every": 10_000}
#: ... and its SIMINet (``models/networks.py``): z_dim 100, two hidden layers of h_dim 128,
#: trained with Adam lr 2e-4 (the semi-implicit methods' optimiser only: ``lr`` means a
#: different step elsewhere, e.g. SVGD's AdaGrad).
KSIVI_FAMILY = {"z_dim": 100, "hidden": (128, 128), "lr": 2e-4}
#: LIVI's generator (``log_det`` keys the group to LIVI: no other method declares it). Its
#: default z_dim = d = 100 costs ~0.3 s per iteration (a 100 × 100 Gram matrix and its Cholesky
#: factor per draw, 128 draws), 8 hours for KSIVI's 100 000 iterations; m = 50 latent
#: dimensions cost ~30 ms and keep the entropy exact, q spreading along 50 of the 100
#: directions (``low_rank`` with m = 100, r = 20 costs ~60 ms for 20).
LIVI_GENERATOR = {"z_dim": 50, "log_det": "exact"}

Array = Tensor | np.ndarray


def design_drift(x: Array) -> Array:
    """f(x) = 10 (x − x³) / (1 + x²)."""
    return DRIFT_SCALE * (x - x**3) / (1 + x**2)


def design_drift_derivative(x: Array) -> Array:
    """f′(x) = 10 (1 − 4x² − x⁴) / (1 + x²)²."""
    return DRIFT_SCALE * (1 - 4 * x**2 - x**4) / (1 + x**2) ** 2


def ksivi_drift(x: Array) -> Array:
    """10 x (1 − x²), the drift of the path KSIVI's code simulates."""
    return DRIFT_SCALE * x * (1 - x**2)


#: Drift used to simulate the observed path, by the ``drift`` setting.
SIMULATION_DRIFTS: dict[str, Callable[[Array], Array]] = {
    "design": design_drift,
    "ksivi": ksivi_drift,
}


def observation_indices() -> np.ndarray:
    """0-based positions of u₅, u₁₀, ..., u₁₀₀ in the latent vector: 4, 9, ..., 99."""
    return np.arange(OBS_EVERY, N_STEPS + 1, OBS_EVERY) - 1


def simulate_path(drift: Callable[[Array], Array], rng: np.random.Generator) -> np.ndarray:
    """u_k = u_{k−1} + drift(u_{k−1}) dt + √dt z_k, u₀ = 0, z_k ~ N(0, 1); returns u₁..u₁₀₀."""
    increments = math.sqrt(DT) * rng.standard_normal(N_STEPS)
    path = np.empty(N_STEPS)
    state = 0.0
    for k, noise in enumerate(increments):
        state = state + drift(state) * DT + noise
        path[k] = state
    return path


@dataclasses.dataclass(frozen=True)
class DiffusionSettings:
    """``data_seed`` seeds the simulated path and observation noise (``default_rng``: first the
    100 path increments, then the 20 observation errors); ``drift`` picks the simulation drift."""

    data_seed: int = 0
    drift: Literal["design", "ksivi"] = "design"

    def validate(self) -> None:
        if self.data_seed < 0:
            raise SettingsError(f"setting 'data_seed' must be >= 0, got {self.data_seed!r}")


@TARGETS.register("diffusion")
class Diffusion(Target, StanModel, LatentPath):
    """Posterior of the 100 latent states of a conditioned diffusion given 20 noisy observations."""

    name = "diffusion"
    Settings = DiffusionSettings
    normalised = False
    stan_program = "diffusion.stan"

    def __init__(self, settings: object | None = None) -> None:
        super().__init__(settings)
        rng = np.random.default_rng(self.settings.data_seed)
        self._path = simulate_path(SIMULATION_DRIFTS[self.settings.drift], rng)
        noise = OBS_SD * rng.standard_normal(len(observation_indices()))
        self._observations = self._path[observation_indices()] + noise
        self._obs_index = torch.as_tensor(observation_indices())
        self._obs_values = torch.as_tensor(self._observations)

    @property
    def dim(self) -> int:
        return N_STEPS

    def param_names(self) -> list[str]:
        """``u[1]`` ... ``u[100]``: u[k] is the state at time t = k · dt."""
        return [f"u[{k}]" for k in range(1, N_STEPS + 1)]

    def times(self) -> np.ndarray:
        """t_k = k · dt of the latent states, shape (100,)."""
        return DT * np.arange(1, N_STEPS + 1)

    def true_path(self) -> np.ndarray:
        """The simulated path u₁..u₁₀₀ the observations were drawn from, shape (100,)."""
        return self._path.copy()

    def observation_times(self) -> np.ndarray:
        """Times of y₁..y₂₀, shape (20,)."""
        return self.times()[observation_indices()]

    def observations(self) -> np.ndarray:
        """y₁..y₂₀, shape (20,); y_j observes ``true_path()[observation_indices()[j − 1]]``."""
        return self._observations.copy()

    def _residuals(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """Previous states u_{k−1} (with u₀ = 0) and r_k = u_k − u_{k−1} − f(u_{k−1}) dt."""
        previous = torch.cat([torch.zeros_like(u[:, :1]), u[:, :-1]], dim=1)
        return previous, u - previous - design_drift(previous) * DT

    def _observation_residuals(self, u: Tensor) -> Tensor:
        """(y_j − u_{5j}), shape (n, 20)."""
        return self._obs_values.to(u) - u[:, self._obs_index.to(u.device)]

    def log_prob(self, x: Tensor) -> Tensor:
        """−Σ_k r_k² / (2 dt) − Σ_j (y_j − u_{5j})² / (2 · 0.1²)."""
        _, residuals = self._residuals(x)
        obs = self._observation_residuals(x)
        return -(residuals**2).sum(-1) / (2 * DT) - (obs**2).sum(-1) / (2 * OBS_SD**2)

    def score(self, x: Tensor) -> Tensor:
        """−r_k/dt + r_{k+1} (1 + f′(u_k) dt)/dt (k < 100) + observation terms (k = 5j)."""
        _, residuals = self._residuals(x)
        forward = residuals[:, 1:] * (1 + design_drift_derivative(x[:, :-1]) * DT) / DT
        transition = -residuals / DT + torch.cat([forward, torch.zeros_like(x[:, :1])], dim=1)
        obs_grad = torch.zeros_like(x).index_add(
            1, self._obs_index.to(x.device), self._observation_residuals(x) / OBS_SD**2
        )
        return transition + obs_grad

    def method_setting_groups(self) -> tuple[SettingsGroup, ...]:
        """KSIVI's settings and LIVI's generator (:data:`LIVI_GENERATOR`), with ``init_sigma``
        the narrowest Laplace sd of this posterior
        (:func:`.laplace.sigma_settings`; 0.0464 for ``data_seed`` 0). KSIVI's ``log_var_ini`` −2
        is σ₀ = e^−1 = 0.37, above even the widest Laplace sd (0.27): q would start wider than
        the posterior in every direction."""
        start = torch.zeros(self.dim, dtype=torch.float64)
        return (
            SettingsGroup("training", KSIVI_TRAINING),
            SettingsGroup("semi_implicit", KSIVI_FAMILY | sigma_settings(self, start)),
            SettingsGroup("livi", LIVI_GENERATOR),
        )

    def stan_data(self) -> dict[str, int | float | np.ndarray]:
        """Data block of ``diffusion.stan``: K, dt, drift_scale, J, obs_index (1-based), y,
        obs_sd."""
        return {
            "K": N_STEPS,
            "dt": DT,
            "drift_scale": DRIFT_SCALE,
            "J": len(self._observations),
            "obs_index": observation_indices() + 1,
            "y": self._observations.copy(),
            "obs_sd": OBS_SD,
        }
