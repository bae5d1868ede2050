"""Bayesian neural-network regression (the BNN benchmark of SVGD, SIVI-SM, KSIVI; the target
table: docs/architecture.md#targets).

One hidden layer of H = 50 ReLU units on standardised inputs x ∈ R^D predicting the
standardised response:

    f_θ(x) = W2ᵀ relu(W1ᵀ x + b1) + b2,     W1 ∈ R^{D×H}, b1 ∈ R^H, W2 ∈ R^H, b2 ∈ R,
    y_i | x_i, θ ~ N(f_θ(x_i), 1/γ),         θ ~ N(0, I/λ),

with fixed noise precision γ and prior precision λ. Unnormalised log posterior:

    log p(θ | y) = −(γ/2) Σ_i (y_i − f_θ(x_i))² − (λ/2) ‖θ‖².

With ``data_batch_size`` B < N the methods train on an unbiased estimate (KSIVI's
``sto_batchsize``; SVGD's and PBP's minibatches): each evaluation draws B training points
without replacement and scales their sum of squares by N/B. References and scores use all N.

θ is one vector, in this order: W1 row-major (``W1[i,j]``, input i, hidden unit j), ``b1[j]``,
``W2[j]``, ``b2`` — D·H + 2H + 1 entries (601 for diabetes). The score is autograd of
:meth:`BnnRegression.log_prob`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from sivi_engine.metric_metadata import Catalogue
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import SettingsGroup, Target
from sivi_engine.targets.capabilities import RMSE, TEST_LOG_LIKELIHOOD, HeldOutData, StanModel
from sivi_engine.targets.datasets import (
    Split,
    features_and_response,
    permuted_split,
    read_csv_table,
    standardise,
)
from sivi_engine.targets.laplace import sigma_settings
from sivi_engine.targets.registry import TARGETS

#: Hidden ReLU units.
HIDDEN_UNITS = 50
#: Share of the data held out for the predictive metrics (the 90/10 split).
TEST_FRACTION = 0.1
#: Posterior draws per chunk in :meth:`BnnRegression.predictive`: bounds the hidden
#: activations (draws × test points × H), e.g. 1000 × 44 × 50 float64 = 18 MB.
PREDICTIVE_CHUNK = 1000
#: KSIVI's BNN experiment (longinYu/KSIVI, ``configs/kernel_sivi_boston.yml``): 200 epochs × 100
#: steps, batch 100, Adam lr 1e-3 decayed ×0.9 every 3000 steps ...
KSIVI_TRAINING = {"iterations": 20_000, "batch_size": 100, "lr_decay_every": 3000}
#: ... and its SIMINet (``models/networks.py``): z_dim 3, two hidden layers of h_dim 10.
KSIVI_FAMILY = {"z_dim": 3, "hidden": (10, 10)}
#: LIVI's generator on the BNNs (``log_det`` keys the group to LIVI: no other method declares
#: it). Its default z_dim = d (401 to 1101) costs 2.5 s per iteration on yacht (a d × d Gram
#: matrix per draw); m = 10 latent dimensions cost 10 ms, below KSIVI's 22 ms, and keep the
#: entropy exact. ``low_rank`` with m = 50, r = 10 costs 20 ms for the same 10 rewarded
#: directions (benchmarks/results/livi_scale.md).
LIVI_GENERATOR = {"z_dim": 10, "log_det": "exact"}


def load_table(data_file: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Features and response: scikit-learn's diabetes data (442 × 10, unscaled, response =
    disease progression after one year) or a user CSV whose last column is the response."""
    if data_file is None:
        from sklearn.datasets import load_diabetes  # ~0.5 s import, only where needed

        return load_diabetes(return_X_y=True, scaled=False)
    path = Path(data_file)
    return features_and_response(read_csv_table(path), path)


def least_squares_precision(x: np.ndarray, y: np.ndarray) -> float:
    """1 / (mean squared residual) of ordinary least squares of y on [1, x]."""
    if len(x) <= x.shape[1] + 1:
        raise SettingsError(
            f"setting 'noise_precision': {len(x)} training points cannot fit least squares on "
            f"{x.shape[1]} features to set its default; give it explicitly"
        )
    design = np.concatenate([np.ones((len(x), 1)), x], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(1.0 / np.mean((y - design @ coef) ** 2))


def check_data_batch_size(value: int | None) -> None:
    if value is not None and value < 1:
        raise SettingsError(f"setting 'data_batch_size' must be >= 1 or null, got {value!r}")


@dataclasses.dataclass(frozen=True)
class BnnSettings:
    """``split_seed`` seeds the 90/10 split (``default_rng``; the repetition in the paper
    protocol). ``noise_precision`` γ on the standardised scale; ``None`` sets it per data set to
    1 / (mean squared residual of least squares on the standardised training split) — the noise
    level a linear model leaves, ≈ 2.1 for diabetes (R² ≈ 0.5). ``prior_precision`` λ = 1, a
    standard normal prior on every weight (KSIVI's log λ = 0). ``data_file``: a CSV file (last
    column the response) replacing the diabetes data. ``data_batch_size``: training points per
    log-density evaluation while a method trains (None: all; module docstring)."""

    split_seed: int = 0
    noise_precision: float | None = None
    prior_precision: float = 1.0
    data_file: str | None = None
    data_batch_size: int | None = None

    def validate(self) -> None:
        if self.split_seed < 0:
            raise SettingsError(f"setting 'split_seed' must be >= 0, got {self.split_seed!r}")
        check_data_batch_size(self.data_batch_size)
        if self.noise_precision is not None and not self.noise_precision > 0:
            raise SettingsError(
                f"setting 'noise_precision' must be > 0, got {self.noise_precision!r}"
            )
        if not self.prior_precision > 0:
            raise SettingsError(
                f"setting 'prior_precision' must be > 0, got {self.prior_precision!r}"
            )
        if self.data_file is not None and not Path(self.data_file).is_file():
            raise SettingsError(f"setting 'data_file': no such file {self.data_file!r}")


@dataclasses.dataclass(frozen=True)
class Weights:
    """A batch of network parameters: W1 (n, D, H), b1 (n, H), W2 (n, H), b2 (n,)."""

    W1: Tensor
    b1: Tensor
    W2: Tensor
    b2: Tensor


def unflatten(theta: Tensor, n_inputs: int, n_hidden: int) -> Weights:
    """Split θ (n, D·H + 2H + 1) into W1 (row-major), b1, W2, b2."""
    sizes = [n_inputs * n_hidden, n_hidden, n_hidden, 1]
    w1, b1, w2, b2 = theta.split(sizes, dim=-1)
    return Weights(w1.reshape(-1, n_inputs, n_hidden), b1, w2, b2[:, 0])


def network(weights: Weights, x: Tensor) -> Tensor:
    """f_θ(x) = W2ᵀ relu(W1ᵀ x + b1) + b2 for every θ in the batch: (n, N) from x (N, D)."""
    hidden = torch.relu(torch.matmul(x, weights.W1) + weights.b1[:, None, :])  # (n, N, H)
    return (hidden @ weights.W2[:, :, None])[..., 0] + weights.b2[:, None]


def regression_scores(predictions: Tensor, y: Tensor, noise_sd: float) -> dict[str, float]:
    """Held-out scores of predictions ŷ_s(x*_i), shape (S, M), of responses y* (M,):

    - ``rmse`` = √[(1/M) Σ_i (y*_i − (1/S) Σ_s ŷ_s(x*_i))²];
    - ``test_log_likelihood`` = (1/M) Σ_i log[(1/S) Σ_s N(y*_i; ŷ_s(x*_i), σ²)], σ = noise_sd.
    """
    rmse = torch.sqrt(((y - predictions.mean(0)) ** 2).mean())
    log_density = (
        -0.5 * ((y - predictions) / noise_sd) ** 2
        - math.log(noise_sd)
        - 0.5 * math.log(2 * math.pi)
    )
    log_mean = torch.logsumexp(log_density, dim=0) - math.log(predictions.shape[0])
    return {"rmse": float(rmse), "test_log_likelihood": float(log_mean.mean())}


class SubsampledLikelihood:
    """A likelihood that sums over training points ``X_train`` (N, D), ``y_train`` (N,), with
    the setting ``data_batch_size`` B: on :meth:`training_view` each evaluation draws B of the N
    points without replacement and scales their sum by N/B, an unbiased estimate of the full
    sum (module docstring)."""

    X_train: Tensor
    y_train: Tensor
    #: Training points per log-density evaluation: None on the target itself, the setting's B
    #: on its :meth:`training_view`.
    data_batch_size: int | None = None

    def training_view(self) -> Target:
        """This target with a stochastic likelihood of ``data_batch_size`` points per call;
        the target itself when the setting is None or ≥ N."""
        batch = self.settings.data_batch_size
        if batch is None or batch >= len(self.y_train):
            return self
        view = copy.copy(self)
        view.data_batch_size = batch
        return view

    def likelihood_data(self) -> tuple[Tensor, Tensor, float]:
        """Inputs, responses and the factor N/B of one likelihood evaluation: all N training
        points (factor 1), or B drawn without replacement from torch's generator."""
        if self.data_batch_size is None:
            return self.X_train, self.y_train, 1.0
        n = len(self.y_train)
        index = torch.randperm(n)[: self.data_batch_size]
        return self.X_train[index], self.y_train[index], n / self.data_batch_size


@TARGETS.register("bnn_diabetes")
class BnnRegression(SubsampledLikelihood, Target, StanModel, HeldOutData):
    """BNN regression on scikit-learn's diabetes data (or a user CSV), standardised on the
    training split of a seeded 90/10 split (398 / 44 points for diabetes).

    Attributes, float64 tensors: ``X_train`` (N, D) and ``y_train`` (N,) standardised,
    ``X_test`` (M, D) standardised with the training mean and sd, ``y_test`` (M,) on the
    original scale."""

    predictive_metrics = Catalogue(
        always={"test_log_likelihood": TEST_LOG_LIKELIHOOD, "rmse": RMSE}
    )

    name = "bnn_diabetes"
    Settings = BnnSettings
    normalised = False
    stan_program = "bnn.stan"
    #: Hidden ReLU units H.
    hidden_units: ClassVar[int] = HIDDEN_UNITS

    def __init__(self, settings: object | None = None) -> None:
        super().__init__(settings)
        self._set_data(*self.raw_split())

    def raw_split(self) -> tuple[Split, float | None, float]:
        """The unstandardised train/test split and the precisions γ (None: the least-squares
        default of :class:`BnnSettings`) and λ, from the settings."""
        x, y = load_table(self.settings.data_file)
        raw = permuted_split(x, y, TEST_FRACTION, self.settings.split_seed)
        return raw, self.settings.noise_precision, self.settings.prior_precision

    def _set_data(self, raw: Split, noise_precision: float | None, prior_precision: float) -> None:
        """Standardise a raw split on its training part and set the precisions."""
        x_train, x_test, _, _ = standardise(raw.X_train, raw.X_test)
        y_train, _, y_mean, y_sd = standardise(raw.y_train[:, None], raw.y_test[:, None])
        #: Response mean and sd of the training split: y = y_mean + y_sd · y_standardised.
        self.y_mean, self.y_sd = float(y_mean[0]), float(y_sd[0])
        self.noise_precision = (
            noise_precision
            if noise_precision is not None
            else least_squares_precision(x_train, y_train[:, 0])
        )
        #: λ of the N(0, I/λ) prior.
        self.prior_precision = prior_precision
        self.X_train, self.y_train = torch.as_tensor(x_train), torch.as_tensor(y_train[:, 0])
        self.X_test, self.y_test = torch.as_tensor(x_test), torch.as_tensor(raw.y_test)

    @property
    def n_inputs(self) -> int:
        return self.X_train.shape[1]

    @property
    def dim(self) -> int:
        return self.n_inputs * self.hidden_units + 2 * self.hidden_units + 1

    def param_names(self) -> list[str]:
        d, h = self.n_inputs, self.hidden_units
        return (
            [f"W1[{i},{j}]" for i in range(d) for j in range(h)]
            + [f"b1[{j}]" for j in range(h)]
            + [f"W2[{j}]" for j in range(h)]
            + ["b2"]
        )

    def log_prob(self, x: Tensor) -> Tensor:
        """−(γ/2) Σ_i (y_i − f_θ(x_i))² − (λ/2) ‖θ‖² for each row θ of x (the sum over a
        scaled minibatch on the training view)."""
        inputs, responses, factor = self.likelihood_data()
        predictions = network(unflatten(x, self.n_inputs, self.hidden_units), inputs.to(x))
        sse = ((responses.to(x) - predictions) ** 2).sum(-1)
        prior = 0.5 * self.prior_precision * (x**2).sum(-1)
        return -0.5 * self.noise_precision * factor * sse - prior

    def test_response(self) -> np.ndarray:
        return self.y_test.numpy().copy()

    def predictive(self, samples: Tensor | np.ndarray) -> dict[str, float]:
        """RMSE and test log-likelihood on the original scale from draws θ_s, s = 1..S.

        Predictions ŷ_s(x) = ȳ + s_y f_{θ_s}(x) (ȳ, s_y the training mean and sd of y); the
        predictive noise sd on the original scale is σ = :meth:`predictive_noise_sd`. Then

        - ``rmse`` = √[(1/M) Σ_i (y*_i − (1/S) Σ_s ŷ_s(x*_i))²];
        - ``test_log_likelihood`` = (1/M) Σ_i log[(1/S) Σ_s N(y*_i; ŷ_s(x*_i), σ²)].
        """
        theta = torch.as_tensor(samples).to(torch.float64)
        inputs = self.X_test.to(theta)
        f = torch.cat(
            [
                network(unflatten(chunk, self.n_inputs, self.hidden_units), inputs)
                for chunk in theta.split(PREDICTIVE_CHUNK)
            ]
        )
        predictions = self.y_mean + self.y_sd * f  # (S, M)
        return regression_scores(predictions, self.y_test.to(theta), self.predictive_noise_sd())

    def predictive_noise_sd(self) -> float:
        """σ of the posterior predictive on the original scale: the model's s_y / √γ."""
        return self.y_sd / math.sqrt(self.noise_precision)

    def method_setting_groups(self) -> tuple[SettingsGroup, ...]:
        """KSIVI's settings and LIVI's generator (:data:`LIVI_GENERATOR`), with ``init_sigma``
        the narrowest Laplace sd at a mode of this posterior (:func:`.laplace.sigma_settings`;
        0.0048 on diabetes; KSIVI's ``log_var_ini`` −8 is σ₀ = e^−4 = 0.018 for its Boston
        posterior). The mode search starts from a seeded
        prior draw: θ = 0 is a saddle of a ReLU network (no gradient reaches W1 or W2)."""
        generator = torch.Generator().manual_seed(0)
        start = torch.randn(self.dim, generator=generator, dtype=torch.float64)
        start = start / math.sqrt(self.prior_precision)
        return (
            SettingsGroup("training", KSIVI_TRAINING),
            SettingsGroup("semi_implicit", KSIVI_FAMILY | sigma_settings(self, start)),
            SettingsGroup("livi", LIVI_GENERATOR),
        )

    def stan_data(self) -> dict[str, int | float | np.ndarray]:
        """Data block of ``bnn.stan``: N, D, H, X (N, D), y (N,) standardised, the precisions."""
        return {
            "N": int(self.X_train.shape[0]),
            "D": self.n_inputs,
            "H": self.hidden_units,
            "X": self.X_train.numpy(),
            "y": self.y_train.numpy(),
            "noise_precision": self.noise_precision,
            "prior_precision": self.prior_precision,
        }
