"""The BNN scripts' own data split, rebuilt here, and their draws scored this project's way.

KSIVI's ``sivistein_bnn.py`` and SIVI-SM's ``sivism_bnn.py`` split the UCI table with
scikit-learn's ``train_test_split(X, y, test_size=1 - 0.9, random_state=42)``, hold out the
last ``min(round(0.1 · n_train), 500)`` training rows as a development set (used only to
initialise KSIVI's generator), and standardise features and response on the remaining
training rows with ``torch.std`` (ddof 1). For Boston: 455 / 51 rows, of which 409 train the
network and 46 are the development set. :func:`official_split` rebuilds that split without
scikit-learn (``ShuffleSplit`` is ``RandomState(42).permutation``, the test rows first).

:func:`predictive_scores` scores draws θ_s of the network's weights (the official θ layout is
the project's: W1 row-major (D, H), b1, W2, b2) on the test rows with the project's
``network``/``unflatten``:

- ``rmse`` = √[(1/M) Σ_i (y*_i − (1/S) Σ_s ŷ_s(x*_i))²], ŷ = ȳ_train + sd_train · f_θ(x);
- ``test_log_likelihood`` = (1/M) Σ_i log[(1/S) Σ_s N(y*_i; ŷ_s(x*_i), σ²)],

with σ = 1 / √γ on the original scale (:func:`official_noise_sd`): the official codes' own
``rmse_llk`` convention, which the project's UCI targets follow for KSIVI's γ, so the project's
scores of official draws reproduce the official figures.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import torch

from sivi_engine.targets.bnn import network, regression_scores, unflatten

#: The scripts' ``train_ratio``; ``test_size = 1 - train_ratio`` (0.09999999999999998).
TRAIN_RATIO = 0.9
#: ``random_state`` of their ``train_test_split``.
RANDOM_STATE = 42
#: Share of the training rows held out as the development set, and its cap.
DEV_FRACTION = 0.1
DEV_MAX = 500


@dataclasses.dataclass(frozen=True)
class OfficialSplit:
    """Row indices into the table (train, dev, test: disjoint, in the official order), the
    standardised training features and response, the standardised test features, the test
    response on the original scale, and the training response's mean and sd (ddof 1)."""

    train: np.ndarray
    dev: np.ndarray
    test: np.ndarray
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    y_mean: float
    y_sd: float


def split_indices(n: int, random_state: int = RANDOM_STATE) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) rows of ``train_test_split(..., test_size=1 - 0.9, random_state)``:
    ``ShuffleSplit`` takes ⌈test_size · n⌉ test rows and the rest for training, the test rows
    first in ``RandomState(random_state).permutation(n)``."""
    test_size = 1 - TRAIN_RATIO
    n_test = math.ceil(test_size * n)
    order = np.random.RandomState(random_state).permutation(n)
    return order[n_test:], order[:n_test]


def official_split(x: np.ndarray, y: np.ndarray, random_state: int = RANDOM_STATE) -> OfficialSplit:
    """The BNN scripts' split of features ``x`` (n, D) and response ``y`` (n,)."""
    train, test = split_indices(len(x), random_state)
    n_dev = min(int(np.round(DEV_FRACTION * len(train))), DEV_MAX)
    train, dev = train[:-n_dev], train[-n_dev:]
    x_mean, x_sd = x[train].mean(0), x[train].std(0, ddof=1)
    y_mean, y_sd = float(y[train].mean()), float(y[train].std(ddof=1))
    return OfficialSplit(
        train=train,
        dev=dev,
        test=test,
        X_train=(x[train] - x_mean) / x_sd,
        y_train=(y[train] - y_mean) / y_sd,
        X_test=(x[test] - x_mean) / x_sd,
        y_test=y[test].astype(np.float64),
        y_mean=y_mean,
        y_sd=y_sd,
    )


def official_noise_sd(log_noise_precision: float) -> float:
    """σ = 1 / √γ: the noise the official ``rmse_llk`` puts on the original scale, and the
    project's (:meth:`sivi_engine.targets.uci.UciBnn.predictive_noise_sd`) for KSIVI's γ."""
    return math.exp(-0.5 * log_noise_precision)


def predictive_scores(
    draws: np.ndarray, split: OfficialSplit, noise_sd: float, hidden_units: int = 50
) -> dict[str, float]:
    """Test RMSE and log-likelihood of draws θ_s (S, D·H + 2H + 1) on the split's test rows
    (module docstring), in float64."""
    theta = torch.as_tensor(np.asarray(draws, dtype=np.float64))
    x_test = torch.as_tensor(split.X_test, dtype=torch.float64)
    f = network(unflatten(theta, x_test.shape[1], hidden_units), x_test)  # (S, M)
    predictions = split.y_mean + split.y_sd * f
    y = torch.as_tensor(split.y_test, dtype=torch.float64)
    return regression_scores(predictions, y, noise_sd)


#: The held-out line both scripts print (KSIVI logs it): ``... test_loglik -2.5475, rmse 3.0283``.
PRINTED = re.compile(r"test_loglik (-?[\d.]+(?:e[-+]?\d+)?), rmse (-?[\d.]+(?:e[-+]?\d+)?)")


def printed_scores(log: str) -> dict[str, float] | None:
    """The last held-out figures the official script printed (its final epoch: its own
    ``sampling.num`` draws, 100 in the Boston configs), or None when it printed none."""
    found = PRINTED.findall(log)
    if not found:
        return None
    llk, rmse = found[-1]
    return {"rmse": float(rmse), "test_log_likelihood": float(llk)}


class SplitMismatch(RuntimeError):
    """The rebuilt split or the draws' layout does not reproduce the official code's figures."""


#: Largest relative difference between the official code's float32 figures (its split's
#: response mean and sd, its ``rmse_llk`` of the draws) and this module's float64 ones that
#: still counts as the same split, data and θ layout: float32 round-off is ~1e-7 relative;
#: another split or layout moves the RMSE by percents.
AGREEMENT = 1e-4


def anchor_scores(
    draws: np.ndarray,
    record: dict,
    x: np.ndarray,
    y: np.ndarray,
    *,
    hidden_units: int = 50,
    scored_draws: int | None = None,
) -> dict[str, object]:
    """Score an official BNN run's draws on its rebuilt split.

    ``record`` is the driver's ``run.json`` (``official_data``: log γ, the split's sizes and
    response mean and sd as the official code computed them; ``official_scores``: its own
    ``rmse_llk`` of these draws). The rebuilt split must have the official sizes, mean and sd,
    and this module's scores of all the draws with the official noise (σ = 1/√γ) must equal the
    official ones within :data:`AGREEMENT`: that checks the data, the split, the
    standardisation and the θ layout at once (:class:`SplitMismatch` otherwise). Returns the
    project's scores of the first ``scored_draws`` draws (``rmse``, ``test_log_likelihood``,
    σ = 1/√γ as the project's UCI targets have it), the official ones (``official_rmse``,
    ``official_test_log_likelihood``) and the check."""
    data, official = record["official_data"], record["official_scores"]
    split = official_split(x, y)
    sizes = (len(split.train), len(split.dev), len(split.test))
    if sizes != (data["train_rows"], data["dev_rows"], data["test_rows"]):
        raise SplitMismatch(
            f"rebuilt split has train/dev/test rows {sizes}; the official code had "
            f"{(data['train_rows'], data['dev_rows'], data['test_rows'])}"
        )
    log_gamma = float(data["log_noise_precision"])
    rescored = predictive_scores(draws, split, official_noise_sd(log_gamma), hidden_units)
    differences = {
        "y_train_mean": _relative(split.y_mean, data["y_train_mean"]),
        "y_train_sd": _relative(split.y_sd, data["y_train_sd"]),
        "rmse": _relative(rescored["rmse"], official["rmse"]),
        "test_log_likelihood": _relative(
            rescored["test_log_likelihood"], official["test_log_likelihood"]
        ),
    }
    worst = max(differences, key=differences.get)
    if not differences[worst] <= AGREEMENT:
        raise SplitMismatch(
            f"the rebuilt split does not reproduce the official {worst}: relative difference "
            f"{differences[worst]:.3g} (> {AGREEMENT:g}); all: {differences}"
        )
    n = len(draws) if scored_draws is None else min(scored_draws, len(draws))
    noise_sd = official_noise_sd(log_gamma)
    project = predictive_scores(draws[:n], split, noise_sd, hidden_units)
    return project | {
        "official_rmse": float(official["rmse"]),
        "official_test_log_likelihood": float(official["test_log_likelihood"]),
        "scored_draws": n,
        "noise_sd": noise_sd,
        "official_noise_sd": official_noise_sd(log_gamma),
        "check": {
            "draws": len(draws),
            "rescored_official_noise": rescored,
            "relative_differences": differences,
        },
    }


def _relative(ours: float, theirs: float) -> float:
    return abs(float(ours) - float(theirs)) / max(abs(float(theirs)), 1e-12)
