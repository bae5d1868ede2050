"""Bayesian logistic regression (the SIVI benchmark of Yin & Zhou 2018; KSIVI, Cheng et al. 2024).

    y_i | x_i, β ~ Bernoulli(σ(x_iᵀβ)),   β ~ N(0, 100 I),

x_i a row of the design matrix X (intercept column first). Unnormalised log posterior and score:

    log p(β | y) = yᵀXβ − Σ_i log(1 + exp(x_iᵀβ)) − ‖β‖² / 200,
    ∇ log p(β | y) = Xᵀ(y − σ(Xβ)) − β / 100,

both evaluated for a batch of β at once (one (n, d) × (d, N) matmul).
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn.functional import logsigmoid, softplus

from sivi_engine.metric_metadata import Catalogue
from sivi_engine.settings import SettingsError
from sivi_engine.targets import waveform
from sivi_engine.targets.base import SettingsGroup, Target
from sivi_engine.targets.capabilities import ACCURACY, TEST_LOG_LIKELIHOOD, HeldOutData, StanModel
from sivi_engine.targets.datasets import (
    DataFileError,
    Split,
    load_split,
    permuted_split,
    standardise,
    with_intercept,
)
from sivi_engine.targets.laplace import sigma_settings
from sivi_engine.targets.registry import TARGETS

#: Prior variance of every coefficient: β ~ N(0, PRIOR_VARIANCE · I).
PRIOR_VARIANCE = 100.0
#: Training and test sizes of the generated waveform data (the benchmark's split sizes).
WAVEFORM_TRAIN, WAVEFORM_TEST = 400, 4600
#: Share of scikit-learn's 569 breast-cancer points held out: 114 test, 455 train.
BREAST_CANCER_TEST_FRACTION = 0.2
#: Posterior draws per chunk in :meth:`BayesianLogisticRegression.predictive`: bounds the
#: (draws × test points) matrix, e.g. 1000 × 4600 float64 = 37 MB.
PREDICTIVE_CHUNK = 1000
#: KSIVI's waveform experiment (longinYu/KSIVI, ``configs/LRwaveform.yml``): 200 epochs × 100
#: steps, batch 100, Adam lr 1e-3 decayed ×0.9 every 3000 steps ...
KSIVI_TRAINING = {"iterations": 20_000, "batch_size": 100, "lr_decay_every": 3000}
#: ... and its SIMINet (``models/networks.py``): z_dim 10, two hidden layers of h_dim 100.
KSIVI_FAMILY = {"z_dim": 10, "hidden": (100, 100)}
#: SIVI-SM's own waveform experiment (longinYu/SIVISM ``configs/LRwaveform.yml``): KSIVI's
#: schedule and SIMINet, a 256-256 score network with lr 3e-3, the log-variance floor −6
#: (σ ≥ e⁻³) and the critic offset by the target score (TransTrick); its own σ₀. Handing SIVI-SM
#: KSIVI's σ₀ instead left the default run 14–57 posterior sds off.
SIVI_SM_OWN = {"f_hidden": (256, 256), "lr_f": 3e-3, "min_sigma": 0.0498, "score_offset": 1.0}
SIVI_SM_RECIPE = KSIVI_TRAINING | KSIVI_FAMILY | SIVI_SM_OWN
#: SIVI's own waveform experiment (mingzhang-yin/SIVI ``SIVI_LR.py``): 20-D noise, an
#: MLP 100-200-100, batch 50, K = 100, Adam lr 0.01 decayed every 100 steps, 5000 steps, a
#: shared learned full covariance (anchored: benchmarks/results/anchors.md).
SIVI_RECIPE = {
    "iterations": 5000,
    "batch_size": 50,
    "z_dim": 20,
    "hidden": (100, 200, 100),
    "mixing_draws": 100,
    "lr": 0.01,
    "lr_decay_every": 100,
    "covariance": "full",
}


def standardised_design(split: Split) -> Split:
    """Standardise features on the training split, then prepend the intercept column."""
    x_train, x_test, _, _ = standardise(split.X_train, split.X_test)
    return dataclasses.replace(
        split, X_train=with_intercept(x_train), X_test=with_intercept(x_test)
    )


def _check_binary(split: Split, source: str) -> None:
    for name in ("y_train", "y_test"):
        values = np.unique(getattr(split, name))
        if not np.isin(values, (0.0, 1.0)).all():
            raise DataFileError(
                f"data file {source!r}: array {name!r} must hold labels 0 and 1; "
                f"found values {values[:5].tolist()}"
            )


class BayesianLogisticRegression(Target, StanModel, HeldOutData):
    """β ~ N(0, 100 I), y ~ Bernoulli(σ(Xβ)) on a train split; predictive on the test split.

    Subclasses provide the data by :meth:`load_data` (the design matrices include the
    intercept column). Attributes, float64 tensors: ``X_train`` (N, d), ``y_train`` (N,) in
    {0, 1}, ``X_test`` (M, d), ``y_test`` (M,) in {0, 1}.
    """

    predictive_metrics = Catalogue(
        always={"test_log_likelihood": TEST_LOG_LIKELIHOOD, "accuracy": ACCURACY}
    )

    normalised = False
    stan_program = "logistic_regression.stan"

    def __init__(self, settings: object | None = None) -> None:
        super().__init__(settings)
        split = self.load_data()
        self.X_train, self.y_train, self.X_test, self.y_test = (
            torch.as_tensor(getattr(split, name), dtype=torch.float64)
            for name in ("X_train", "y_train", "X_test", "y_test")
        )

    @abc.abstractmethod
    def load_data(self) -> Split:
        """Train and test design matrices (intercept column included) and 0/1 labels."""

    @property
    def dim(self) -> int:
        return self.X_train.shape[1]

    def param_names(self) -> list[str]:
        return [f"beta[{i}]" for i in range(self.dim)]

    def log_prob(self, x: Tensor) -> Tensor:
        """yᵀXβ − Σ_i softplus(x_iᵀβ) − ‖β‖²/200 for each row β of x."""
        design, labels = self.X_train.to(x), self.y_train.to(x)
        logits = x @ design.T  # (n, N)
        log_lik = logits @ labels - softplus(logits).sum(-1)
        return log_lik - 0.5 * (x**2).sum(-1) / PRIOR_VARIANCE

    def score(self, x: Tensor) -> Tensor:
        """Xᵀ(y − σ(Xβ)) − β/100 for each row β of x."""
        design, labels = self.X_train.to(x), self.y_train.to(x)
        residual = labels - torch.sigmoid(x @ design.T)  # (n, N)
        return residual @ design - x / PRIOR_VARIANCE

    def test_response(self) -> np.ndarray:
        return self.y_test.numpy().copy()

    def predictive(self, samples: Tensor | np.ndarray) -> dict[str, float | np.ndarray]:
        """Posterior predictive on the test split from draws β_s, s = 1..S.

        - ``test_log_likelihood``: (1/M) Σ_i log[(1/S) Σ_s p(y*_i | x*_i, β_s)];
        - ``accuracy``: share of test points with 1[p̄_i > 0.5] = y*_i;
        - ``probabilities``: p̄_i = (1/S) Σ_s σ(x*_iᵀβ_s), shape (M,), for calibration metrics.
        """
        beta = torch.as_tensor(samples).to(torch.float64)
        design, labels = self.X_test.to(beta), self.y_test.to(beta)
        log_sums, prob_sums = [], []
        for chunk in beta.split(PREDICTIVE_CHUNK):
            logits = chunk @ design.T  # (s, M)
            # log p(y | logit) = y logσ(l) + (1 − y) logσ(−l) = logσ((2y − 1) l)
            log_lik = logsigmoid((2 * labels - 1) * logits)
            log_sums.append(torch.logsumexp(log_lik, dim=0))
            prob_sums.append(torch.sigmoid(logits).sum(0))
        n_draws = beta.shape[0]
        log_mean = torch.logsumexp(torch.stack(log_sums), dim=0) - math.log(n_draws)
        probabilities = torch.stack(prob_sums).sum(0) / n_draws
        accuracy = ((probabilities > 0.5).to(labels) == labels).double().mean()
        return {
            "test_log_likelihood": float(log_mean.mean()),
            "accuracy": float(accuracy),
            "probabilities": probabilities.cpu().numpy(),
        }

    def method_setting_groups(self) -> tuple[SettingsGroup, ...]:
        """KSIVI's waveform settings, with ``init_sigma`` the narrowest Laplace sd of this
        posterior (:func:`.laplace.sigma_settings`; 0.0709 on the generated waveform data,
        KSIVI's ``log_var_ini`` −5 is σ₀ = e^−2.5 = 0.082), so other data scales get theirs."""
        start = torch.zeros(self.dim, dtype=torch.float64)  # log p is concave: one mode
        return (
            SettingsGroup("training", KSIVI_TRAINING),
            SettingsGroup("semi_implicit", KSIVI_FAMILY | sigma_settings(self, start)),
        )

    def method_recipes(self) -> Mapping[str, Mapping[str, Any]]:
        """SIVI-SM's and SIVI's own logistic-regression settings (their waveform configs)."""
        return {"sivi_sm": SIVI_SM_RECIPE, "sivi": SIVI_RECIPE}

    def stan_data(self) -> dict[str, int | float | np.ndarray]:
        """Data block of ``logistic_regression.stan``: N, D, X (N, D), y (N,) int, prior_sd."""
        return {
            "N": int(self.X_train.shape[0]),
            "D": self.dim,
            "X": self.X_train.numpy(),
            "y": self.y_train.numpy().astype(np.int64),
            "prior_sd": math.sqrt(PRIOR_VARIANCE),
        }


@dataclasses.dataclass(frozen=True)
class WaveformSettings:
    """``data_seed`` seeds the generated data (``numpy.random.default_rng``); ``data_file``,
    when given, replaces the generated data by a split file (see :mod:`.datasets`) whose
    design matrices are used as stored (include the intercept column; 22 columns for the UCI
    waveform split) and whose labels are 0/1."""

    data_seed: int = 0
    data_file: str | None = None

    def validate(self) -> None:
        if self.data_seed < 0:
            raise SettingsError(f"setting 'data_seed' must be >= 0, got {self.data_seed!r}")
        if self.data_file is not None and not Path(self.data_file).is_file():
            raise SettingsError(f"setting 'data_file': no such file {self.data_file!r}")


def generated_waveform(seed: int) -> Split:
    """400 + 4600 points of :func:`waveform.generate` from ``default_rng(seed)`` (train first),
    binarised by :func:`waveform.binary_labels`, standardised on train, intercept prepended."""
    x, classes = waveform.generate(WAVEFORM_TRAIN + WAVEFORM_TEST, np.random.default_rng(seed))
    y = waveform.binary_labels(classes)
    split = Split(
        X_train=x[:WAVEFORM_TRAIN],
        y_train=y[:WAVEFORM_TRAIN],
        X_test=x[WAVEFORM_TRAIN:],
        y_test=y[WAVEFORM_TRAIN:],
    )
    return standardised_design(split)


@TARGETS.register("blr_waveform")
class BlrWaveform(BayesianLogisticRegression):
    """Logistic regression on Breiman's waveform data: 22 coefficients (intercept + 21
    standardised attributes), 400 train / 4600 test points; or on a user split file."""

    name = "blr_waveform"
    Settings = WaveformSettings

    def load_data(self) -> Split:
        if self.settings.data_file is None:
            return generated_waveform(self.settings.data_seed)
        split = load_split(self.settings.data_file)
        _check_binary(split, self.settings.data_file)
        return split


@dataclasses.dataclass(frozen=True)
class BreastCancerSettings:
    """``split_seed`` seeds the 455 / 114 train/test split (``numpy.random.default_rng``)."""

    split_seed: int = 0

    def validate(self) -> None:
        if self.split_seed < 0:
            raise SettingsError(f"setting 'split_seed' must be >= 0, got {self.split_seed!r}")


@TARGETS.register("blr_breast_cancer")
class BlrBreastCancer(BayesianLogisticRegression):
    """Logistic regression on scikit-learn's bundled Wisconsin breast-cancer data (569 points,
    30 features; y = 1 benign): 31 coefficients, seeded 455 / 114 split, features standardised
    on the training split."""

    name = "blr_breast_cancer"
    Settings = BreastCancerSettings

    def load_data(self) -> Split:
        from sklearn.datasets import load_breast_cancer  # ~0.5 s import, only where needed

        x, y = load_breast_cancer(return_X_y=True)
        split = permuted_split(
            x, y.astype(np.float64), BREAST_CANCER_TEST_FRACTION, self.settings.split_seed
        )
        return standardised_design(split)
