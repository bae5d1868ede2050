"""Bayesian neural-network classification of images: scikit-learn's digits, or a user's MNIST.

A fully connected ReLU network on pixel values in [0, 1] with a softmax output over C classes:

    h₀ = x,  h_l = relu(W_lᵀ h_{l−1} + b_l) (l < L),  f_θ(x) = W_Lᵀ h_{L−1} + b_L ∈ R^C,
    y_i | x_i, θ ~ Categorical(softmax f_θ(x_i)),       θ ~ N(0, I/λ),

so log p(θ | y) = Σ_i log softmax(f_θ(x_i))_{y_i} + log N(θ; 0, I/λ) + const. The default
widths (100, 50) on the 8 × 8 digits (D = 64, C = 10) give 64·100 + 100 + 100·50 + 50 + 50·10 +
10 = 12 060 weights. θ is one vector, layer by layer: W_l row-major (``Wl[i,j]``, input i,
unit j), then ``bl[j]``.

The digits (1797 images, pixel values 0–16 divided by 16) are split by a seeded permutation
(:func:`.datasets.permuted_split`, ``split_seed``) into 1438 training and 359 test images. A
user's MNIST (``data_file``) is an ``.npz`` with keras' ``mnist.npz`` layout: ``x_train``
(n, h, w), ``y_train`` (n,), ``x_test``, ``y_test``, the split as stored; images are flattened
and divided by the training images' largest pixel value (255 for keras' uint8 file).

As in :mod:`.bnn`, methods train on minibatches of ``data_batch_size`` training points with the
log-likelihood scaled by N/B (:class:`.bnn.SubsampledLikelihood`); scores use every point.

Out-of-distribution images, for ``ood_auroc``: the test images rotated by 90° (counter-clockwise,
``numpy.rot90``), strokes of the same ink and scale in orientations no training digit has.

:class:`BnnClassificationHierarchical` replaces the Gaussian prior by a Gamma–Gaussian hierarchy
whose marginal is a Cauchy prior on every weight (DSIVI's BNN experiment).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sivi_engine.metric_metadata import Catalogue, higher
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import SettingsGroup, Target
from sivi_engine.targets.bnn import (
    KSIVI_FAMILY,
    KSIVI_TRAINING,
    SubsampledLikelihood,
    check_data_batch_size,
)
from sivi_engine.targets.capabilities import (
    ACCURACY,
    TEST_LOG_LIKELIHOOD,
    HeldOutData,
    SemiImplicitDensity,
)
from sivi_engine.targets.datasets import SPLIT_READERS, DataFileError, Split, permuted_split
from sivi_engine.targets.registry import TARGETS
from sivi_engine.targets.scale_mixture import (
    conditional_normal_log_density,
    coordinatewise_mixture_estimate,
    log_precision_log_density,
    sample_log_precision,
    student_t_log_density,
)
from sivi_engine.targets.uci import DATA_BATCH_SIZE, PAPER_SIGMA, SVGD_RECIPE

#: Share of the 1797 digits held out: 359 test, 1438 training images.
TEST_FRACTION = 0.2
#: Largest pixel value of scikit-learn's digits (4-bit counts of an 8 × 8 grid of 4 × 4 blocks).
DIGITS_MAX_PIXEL = 16.0
#: The arrays of an MNIST file, as keras' ``mnist.npz`` names them.
MNIST_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
#: Float64 entries of one chunk's hidden activations in :meth:`BnnClassification.predictive`
#: (draws × test images × widest layer): 2²⁴ entries = 128 MiB.
PREDICTIVE_ELEMENTS = 2**24
#: sd s of every method's initial draws N(0, s² I) on this target (GVI's q at μ = 0, SVGD's
#: particles, the ensemble's members), below He et al.'s ReLU scale √(2/64) = 0.18: mean-field
#: GVI started at 0.18 fell into the optimum where q is the prior (chance accuracy, ELBO −3600
#: after 19 000 steps), started at 0.05 it kept a network (97 % accuracy, ELBO −1850 after
#: 1100); N(0, I) would start the logits in the hundreds.
INIT_SCALE = 0.05
#: Stored draws: 100 (KSIVI's ``sampling.num`` for its BNNs); the default 10⁴ draws of 12 060
#: weights would be 0.96 GB per run, and as much again per 1000 checkpoint draws.
DRAWS = {"num_draws": 100}
#: LIVI at this scale (``log_det`` keys the group to LIVI): the entropy from the 10 leading
#: singular values of the generator's 12 060 × 50 Jacobian by Jacobian-vector products, never
#: forming it, and 10 generator draws per step — this project's choice; 0.19 s per step on two
#: shared CPU cores (the exact log-determinant of the same generator: 0.31 s).
LIVI_AT_SCALE = {"z_dim": 50, "log_det": "low_rank", "rank": 10, "batch_size": 10}


@dataclasses.dataclass(frozen=True)
class ImageData:
    """Flattened images in [0, 1] (``split.X_*``, (n, h·w)), integer class labels
    (``split.y_*``), the image shape (h, w) and the number of classes C."""

    split: Split
    image_shape: tuple[int, int]
    classes: int


def load_digits_data(seed: int) -> ImageData:
    """scikit-learn's digits, pixels / 16, split 1438 / 359 by ``default_rng(seed)``."""
    from sklearn.datasets import load_digits  # ~0.5 s import, only where needed

    digits = load_digits()
    images = digits.images.reshape(len(digits.images), -1) / DIGITS_MAX_PIXEL
    split = permuted_split(images, digits.target, TEST_FRACTION, seed)
    return ImageData(split, digits.images.shape[1:], int(digits.target.max()) + 1)


def _images(arrays: Mapping[str, np.ndarray], name: str, path: str) -> np.ndarray:
    array = arrays[name]
    if array.ndim != 3 or 0 in array.shape or not np.issubdtype(array.dtype, np.number):
        raise DataFileError(
            f"data file {path!r}: array {name!r} must hold numeric images (n, height, width); "
            f"found shape {array.shape}, dtype {array.dtype}"
        )
    if not (np.isfinite(array).all() and array.min() >= 0):
        raise DataFileError(f"data file {path!r}: array {name!r} must hold finite pixels >= 0")
    return array.astype(np.float64)


def _labels(arrays: Mapping[str, np.ndarray], name: str, path: str, n: int) -> np.ndarray:
    array = arrays[name]
    integral = np.issubdtype(array.dtype, np.number) and np.all(np.mod(array, 1) == 0)
    if array.shape != (n,) or not integral or array.min() < 0:
        raise DataFileError(
            f"data file {path!r}: array {name!r} must hold {n} class labels 0, 1, … (one per "
            f"image of 'x_{name[2:]}'); found shape {array.shape}, dtype {array.dtype}"
        )
    return array.astype(np.int64)


def load_mnist_file(path: str) -> ImageData:
    """A user's MNIST-like ``.npz`` (keras' layout, module docstring), checked array by array."""
    arrays = SPLIT_READERS[".npz"](Path(path))
    missing = [name for name in MNIST_ARRAYS if name not in arrays]
    if missing:
        raise DataFileError(
            f"data file {path!r}: missing array {missing[0]!r} (an MNIST file holds "
            f"{', '.join(MNIST_ARRAYS)}, as keras' mnist.npz; found {', '.join(sorted(arrays))})"
        )
    x_train, x_test = (_images(arrays, name, path) for name in ("x_train", "x_test"))
    if x_test.shape[1:] != x_train.shape[1:]:
        raise DataFileError(
            f"data file {path!r}: array 'x_test' holds images of shape {x_test.shape[1:]}, "
            f"'x_train' of shape {x_train.shape[1:]}"
        )
    y_train = _labels(arrays, "y_train", path, len(x_train))
    y_test = _labels(arrays, "y_test", path, len(x_test))
    classes = int(y_train.max()) + 1
    if y_test.max() >= classes:
        raise DataFileError(
            f"data file {path!r}: array 'y_test' holds label {y_test.max()}, which no training "
            f"image has (labels 0..{classes - 1})"
        )
    scale = x_train.max()
    if scale <= 0:
        raise DataFileError(f"data file {path!r}: array 'x_train' holds only zero pixels")
    split = Split(
        X_train=x_train.reshape(len(x_train), -1) / scale,
        y_train=y_train,
        X_test=x_test.reshape(len(x_test), -1) / scale,
        y_test=y_test,
    )
    return ImageData(split, x_train.shape[1:], classes)


def rotated(images: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """Flattened images (n, h·w) rotated by 90° counter-clockwise, flattened again."""
    square = images.reshape(-1, *image_shape)
    return np.rot90(square, axes=(1, 2)).reshape(len(images), -1).copy()


def layer_shapes(sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    """(inputs, outputs) of each layer of a network with layer widths ``sizes`` (D, …, C)."""
    return list(zip(sizes[:-1], sizes[1:]))


def unflatten(theta: Tensor, sizes: tuple[int, ...]) -> list[tuple[Tensor, Tensor]]:
    """Split θ (n, d) into each layer's W_l (n, inputs, outputs), row-major, and b_l (n,
    outputs)."""
    shapes = layer_shapes(sizes)
    parts = theta.split([i * o + o for i, o in shapes], dim=-1)
    return [
        (part[:, : i * o].reshape(-1, i, o), part[:, i * o :])
        for part, (i, o) in zip(parts, shapes)
    ]


def logits(layers: list[tuple[Tensor, Tensor]], x: Tensor) -> Tensor:
    """f_θ(x) for every θ of the batch: (n, N, C) from inputs x (N, D)."""
    h = x
    for k, (weight, bias) in enumerate(layers):
        h = torch.matmul(h, weight) + bias[:, None, :]
        if k < len(layers) - 1:
            h = torch.relu(h)
    return h


def log_posterior_predictive(log_probs: list[Tensor], draws: int) -> Tensor:
    """log p̄ = log((1/S) Σ_s p_s) from chunks of per-draw log-probabilities (s, M, C)."""
    per_chunk = torch.stack([torch.logsumexp(chunk, dim=0) for chunk in log_probs])
    return torch.logsumexp(per_chunk, dim=0) - math.log(draws)


def predictive_entropy(log_predictive: Tensor) -> Tensor:
    """H(p̄ᵢ) = −Σ_k p̄ᵢₖ log p̄ᵢₖ for each row of log p̄ (M, C)."""
    return -(log_predictive.exp() * log_predictive).sum(-1)


def classification_scores(
    log_predictive: Tensor, labels: Tensor, log_predictive_ood: Tensor
) -> dict[str, float | np.ndarray]:
    """Held-out scores of the posterior predictive p̄ (log p̄, (M, C)) of labels y* (M,):

    - ``test_log_likelihood`` = (1/M) Σᵢ log p̄ᵢ(y*ᵢ), the negative NLL;
    - ``accuracy``: share of i with argmaxₖ p̄ᵢₖ = y*ᵢ;
    - ``probabilities`` = maxₖ p̄ᵢₖ and ``correct`` = 1[argmaxₖ p̄ᵢₖ = y*ᵢ], (M,), for the
      top-label calibration (:mod:`sivi_engine.metrics.predictive`);
    - ``ood_auroc``: AUROC of the predictive entropy H(p̄) separating the out-of-distribution
      images (``log_predictive_ood``, positives) from the test images (negatives).
    """
    from sivi_engine.metrics.auroc import auroc  # the metrics package: only when scoring

    confidence, top = log_predictive.exp().max(-1)
    correct = (top == labels).double()
    entropy, entropy_ood = (predictive_entropy(lp) for lp in (log_predictive, log_predictive_ood))
    return {
        "test_log_likelihood": float(log_predictive.gather(-1, labels[:, None]).mean()),
        "accuracy": float(correct.mean()),
        "ood_auroc": auroc(entropy.cpu().numpy(), entropy_ood.cpu().numpy()),
        "probabilities": confidence.cpu().numpy(),
        "correct": correct.cpu().numpy(),
    }


@dataclasses.dataclass(frozen=True)
class ImageClassifierSettings:
    """``split_seed`` seeds the digits' 1438 / 359 split (unused with ``data_file``, whose split
    is stored). ``hidden``: widths of the hidden ReLU layers. ``data_file``: an MNIST ``.npz``
    in keras' layout replacing the digits. ``data_batch_size``: training points per
    log-density evaluation while a method trains (None: all); 100 as the UCI BNNs'."""

    split_seed: int = 0
    hidden: tuple[int, ...] = (100, 50)
    data_file: str | None = None
    data_batch_size: int | None = DATA_BATCH_SIZE

    def validate(self) -> None:
        if self.split_seed < 0:
            raise SettingsError(f"setting 'split_seed' must be >= 0, got {self.split_seed!r}")
        if not self.hidden or min(self.hidden) < 1:
            raise SettingsError(f"setting 'hidden': widths >= 1, at least one, got {self.hidden!r}")
        check_data_batch_size(self.data_batch_size)
        if self.data_file is not None and not Path(self.data_file).is_file():
            raise SettingsError(f"setting 'data_file': no such file {self.data_file!r}")


@dataclasses.dataclass(frozen=True)
class GaussianPriorSettings(ImageClassifierSettings):
    """``prior_precision`` λ of the N(0, I/λ) prior; 1, a standard normal on every weight, as
    :class:`.bnn.BnnSettings`."""

    prior_precision: float = 1.0

    def validate(self) -> None:
        super().validate()
        if not self.prior_precision > 0:
            raise SettingsError(
                f"setting 'prior_precision' must be > 0, got {self.prior_precision!r}"
            )


@TARGETS.register("bnn_digits")
class BnnClassification(SubsampledLikelihood, Target, HeldOutData):
    """The module's classifier. Attributes: ``X_train`` (N, D), ``X_test`` (M, D) and
    ``X_ood`` (M, D, the rotated test images) float64; ``y_train``, ``y_test`` int64 labels;
    ``sizes`` = (D, hidden…, C)."""

    predictive_metrics = Catalogue(
        always={
            "test_log_likelihood": TEST_LOG_LIKELIHOOD,
            "accuracy": ACCURACY,
            "ood_auroc": higher(
                "AUROC of the posterior predictive's entropy separating shifted test inputs"
                " (the rotated test images) from the test inputs"
            ).shown(("predictive", 4)),
        }
    )

    name = "bnn_digits"
    Settings = GaussianPriorSettings
    normalised = False

    def __init__(self, settings: object | None = None) -> None:
        super().__init__(settings)
        file = self.settings.data_file
        data = load_digits_data(self.settings.split_seed) if file is None else load_mnist_file(file)
        split = data.split
        self.X_train, self.X_test = torch.as_tensor(split.X_train), torch.as_tensor(split.X_test)
        self.X_ood = torch.as_tensor(rotated(split.X_test, data.image_shape))
        self.y_train = torch.as_tensor(split.y_train, dtype=torch.int64)
        self.y_test = torch.as_tensor(split.y_test, dtype=torch.int64)
        self.sizes = (self.X_train.shape[1], *self.settings.hidden, data.classes)

    @property
    def dim(self) -> int:
        return sum(i * o + o for i, o in layer_shapes(self.sizes))

    def param_names(self) -> list[str]:
        names = []
        for layer, (n_in, n_out) in enumerate(layer_shapes(self.sizes), start=1):
            names += [f"W{layer}[{i},{j}]" for i in range(n_in) for j in range(n_out)]
            names += [f"b{layer}[{j}]" for j in range(n_out)]
        return names

    def log_likelihood(self, x: Tensor) -> Tensor:
        """Σ_i log softmax(f_θ(x_i))_{y_i} for each row θ of x (N/B times a minibatch's sum on
        the training view)."""
        inputs, labels, factor = self.likelihood_data()
        log_probs = torch.log_softmax(logits(unflatten(x, self.sizes), inputs.to(x)), dim=-1)
        rows = torch.arange(len(labels), device=x.device)
        picked = log_probs[:, rows, labels.to(x.device)]  # (n, B)
        return factor * picked.sum(-1)

    def log_prior(self, x: Tensor) -> Tensor:
        """log N(θ; 0, I/λ) = (d/2) log(λ/2π) − (λ/2) ‖θ‖²."""
        precision = self.settings.prior_precision
        return 0.5 * x.shape[-1] * math.log(precision / (2 * math.pi)) - 0.5 * precision * (
            x**2
        ).sum(-1)

    def log_prob(self, x: Tensor) -> Tensor:
        """log-likelihood + log prior of each row θ of x."""
        return self.log_likelihood(x) + self.log_prior(x)

    def test_response(self) -> np.ndarray:
        return self.y_test.numpy().copy()

    def predictive(self, samples: Tensor | np.ndarray) -> dict[str, float | np.ndarray]:
        """:func:`classification_scores` of the Monte-Carlo posterior predictive
        p̄ᵢ = (1/S) Σ_s softmax(f_{θ_s}(x*ᵢ)) on the test and the rotated test images."""
        theta = torch.as_tensor(samples).to(torch.float64)
        chunk = max(1, PREDICTIVE_ELEMENTS // (len(self.y_test) * max(self.sizes)))
        log_predictive = [
            log_posterior_predictive(
                [
                    torch.log_softmax(logits(unflatten(part, self.sizes), images), dim=-1)
                    for part in theta.split(chunk)
                ],
                theta.shape[0],
            )
            for images in (self.X_test.to(theta), self.X_ood.to(theta))
        ]
        return classification_scores(log_predictive[0], self.y_test, log_predictive[1])

    def method_setting_groups(self) -> tuple[SettingsGroup, ...]:
        """100 stored draws (:data:`DRAWS`); KSIVI's BNN schedule; every method's initial draws
        (GVI's q, the ensemble's members) N(0, s² I) with s = :data:`INIT_SCALE`; KSIVI's
        SIMINet with the UCI configs' σ₀ (:data:`.uci.PAPER_SIGMA`); LIVI's generator
        (:data:`LIVI_AT_SCALE`)."""
        return (
            SettingsGroup("training", DRAWS | KSIVI_TRAINING),
            SettingsGroup("initial_scale", {"init_scale": INIT_SCALE}),
            SettingsGroup("semi_implicit", KSIVI_FAMILY | PAPER_SIGMA),
            SettingsGroup("livi", LIVI_AT_SCALE),
        )

    def method_recipes(self) -> Mapping[str, Mapping[str, Any]]:
        """SVGD's own BNN settings (:data:`.uci.SVGD_RECIPE`: 100 particles, AdaGrad 1e-3,
        2000 iterations), its particles from N(0, s² I), s = :data:`INIT_SCALE`."""
        return {"svgd": SVGD_RECIPE | {"init_scale": INIT_SCALE}}


#: Degrees of freedom of the hierarchical prior's Student-t marginal: ν = 1, the Cauchy.
PRIOR_DF = 1.0


@TARGETS.register("bnn_digits_hierarchical")
class BnnClassificationHierarchical(BnnClassification, SemiImplicitDensity):
    """The digits BNN with the hierarchical prior of DSIVI's BNN (Molchanov et al. 2019,
    "Doubly semi-implicit variational inference", §5): w_j | α_j ~ N(0, 1/α_j),
    α_j ~ Gamma(½, ½) independently, whose marginal is the standard Cauchy (:data:`GAMMA_SHAPE`).
    ``log_prob`` uses that closed-form marginal; as a :class:`SemiImplicitDensity` the mixing
    variable is u = log α ∈ R^d and the explicit factor the (minibatch) likelihood."""

    name = "bnn_digits_hierarchical"
    Settings = ImageClassifierSettings

    @property
    def mixing_dim(self) -> int:
        return self.dim

    def log_prior(self, x: Tensor) -> Tensor:
        """Σ_j log Cauchy(w_j), the prior's exact marginal."""
        return student_t_log_density(x, PRIOR_DF)

    def exact_semi_implicit_log_prob(self, x: Tensor) -> Tensor:
        """The prior's closed form (the ELBO's KL term)."""
        return self.log_prior(x)

    def explicit_log_prob(self, x: Tensor) -> Tensor:
        return self.log_likelihood(x)

    def sample_mixing(self, n: int, like: Tensor) -> Tensor:
        return sample_log_precision((n, self.dim), PRIOR_DF, like)

    def mixing_log_prob(self, u: Tensor) -> Tensor:
        return log_precision_log_density(u, PRIOR_DF)

    def conditional_log_prob(self, x: Tensor, u: Tensor) -> Tensor:
        return conditional_normal_log_density(x, u)

    def log_prob_estimate(self, x: Tensor, k: int) -> Tensor:
        """log-likelihood + Σ_j log((1/K) Σ_k N(w_j; 0, 1/α_kj)): the prior factorises, so
        each coordinate's average is unbiased for its Cauchy density and the Jensen gap is d
        one-dimensional ones (an (n, K, d) array)."""
        return self.explicit_log_prob(x) + coordinatewise_mixture_estimate(x, k, PRIOR_DF)
