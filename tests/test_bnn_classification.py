"""The classification BNN on the digits (or a user's MNIST), its hierarchical-prior variant and
their held-out scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import log_softmax

from sivi_engine.settings import SettingsError
from sivi_engine.targets import make_target
from sivi_engine.targets.datasets import DataFileError
from sivi_engine.targets.scale_mixture import log_precision_log_density


def numpy_logits(theta: np.ndarray, sizes: tuple[int, ...], x: np.ndarray) -> np.ndarray:
    """f_θ(x) from θ's documented layout (per layer: W row-major, then b), in numpy."""
    offset, h = 0, x
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        weight = theta[offset : offset + n_in * n_out].reshape(n_in, n_out)
        bias = theta[offset + n_in * n_out : offset + n_in * n_out + n_out]
        offset += n_in * n_out + n_out
        h = h @ weight + bias
        if layer < len(sizes) - 2:
            h = np.maximum(h, 0.0)
    assert offset == theta.size
    return h


def test_the_digits_split_sizes_and_weights() -> None:
    """1797 digits → 1438 train / 359 test, pixels /16 in [0, 1]; (100, 50) hidden units give
    64·100 + 100 + 100·50 + 50 + 50·10 + 10 = 12 060 weights, named layer by layer."""
    from sklearn.datasets import load_digits

    target = make_target("bnn_digits")
    assert target.dim == 12_060 and target.sizes == (64, 100, 50, 10)
    assert target.X_train.shape == (1438, 64) and target.X_test.shape == (359, 64)
    assert target.X_train.min() == 0.0 and target.X_train.max() == 1.0
    names = target.param_names()
    assert len(names) == 12_060
    assert names[:2] == ["W1[0,0]", "W1[0,1]"] and names[6400] == "b1[0]"
    assert names[6500] == "W2[0,0]" and names[-11:] == [
        "W3[49,9]",
        *(f"b3[{j}]" for j in range(10)),
    ]
    # train and test partition the data: the class counts add up to the data set's
    counts = np.bincount(target.y_train, minlength=10) + np.bincount(target.y_test, minlength=10)
    np.testing.assert_array_equal(counts, np.bincount(load_digits().target))
    other = make_target("bnn_digits", {"split_seed": 1})
    assert not torch.equal(other.y_test, target.y_test)


def test_log_prob_is_the_categorical_likelihood_and_the_gaussian_prior() -> None:
    """log p(θ) = Σ_i log softmax(f_θ(x_i))_{y_i} + (d/2) log(λ/2π) − (λ/2)‖θ‖², recomputed in
    numpy from θ's layout (float64 both ways: round-off only)."""
    target = make_target("bnn_digits", {"hidden": [7, 5], "prior_precision": 2.0})
    theta = np.random.default_rng(0).normal(0, 0.3, (3, target.dim))
    x, y = target.X_train.numpy(), target.y_train.numpy()
    expected = [
        log_softmax(numpy_logits(t, target.sizes, x), axis=1)[np.arange(len(y)), y].sum()
        + 0.5 * target.dim * math.log(2.0 / (2 * math.pi))
        - (t**2).sum()
        for t in theta
    ]
    np.testing.assert_allclose(target.log_prob(torch.as_tensor(theta)), expected, rtol=1e-12)


def test_the_training_view_subsamples_the_likelihood_without_bias() -> None:
    """B = 100 of the 1438 training images per call, their sum scaled by N/B: the mean over
    2000 calls lies within 4 standard errors of the full log-density (a false alarm about once
    in 16 000 runs), while single calls differ."""
    target = make_target("bnn_digits", {"hidden": [10]})
    view = target.training_view()
    assert view.data_batch_size == 100 and target.data_batch_size is None
    theta = 0.3 * torch.randn(2, target.dim, generator=torch.Generator().manual_seed(1))
    theta = theta.double()
    torch.manual_seed(0)
    calls = torch.stack([view.log_prob(theta) for _ in range(2000)])
    error = (calls.mean(0) - target.log_prob(theta)).abs()
    assert torch.all(error < 4 * calls.std(0) / math.sqrt(len(calls)))
    assert torch.all(calls.std(0) > 0)


def test_predictive_scores_average_the_softmax_over_draws() -> None:
    """Two draws: p̄ = (softmax f_θ₁ + softmax f_θ₂)/2 on the test images; test log-likelihood,
    accuracy, top-label confidence and correctness from it, and the OOD AUROC is sklearn's of
    the entropies of p̄ on the test (0) and the rotated test images (1)."""
    from sklearn.metrics import roc_auc_score

    target = make_target("bnn_digits", {"hidden": [20]})
    theta = np.random.default_rng(3).normal(0, 0.4, (2, target.dim))

    def mean_softmax(images: np.ndarray) -> np.ndarray:
        return np.mean(
            [np.exp(log_softmax(numpy_logits(t, target.sizes, images), 1)) for t in theta], 0
        )

    p, p_ood = mean_softmax(target.X_test.numpy()), mean_softmax(target.X_ood.numpy())
    y = target.test_response()
    scores = target.predictive(theta)
    assert scores["test_log_likelihood"] == pytest.approx(
        np.log(p[np.arange(len(y)), y]).mean(), rel=1e-10
    )
    correct = p.argmax(1) == y
    assert scores["accuracy"] == correct.mean()
    np.testing.assert_allclose(scores["probabilities"], p.max(1), rtol=1e-10)
    np.testing.assert_array_equal(scores["correct"], correct)
    entropy = [-(q * np.log(q)).sum(1) for q in (p, p_ood)]
    labels = np.r_[np.zeros(len(y)), np.ones(len(y))]
    assert scores["ood_auroc"] == pytest.approx(
        roc_auc_score(labels, np.concatenate(entropy)), rel=1e-10
    )


def test_the_ood_images_are_the_test_images_rotated_by_90_degrees() -> None:
    target = make_target("bnn_digits", {"hidden": [4]})
    test, ood = target.X_test.numpy().reshape(-1, 8, 8), target.X_ood.numpy().reshape(-1, 8, 8)
    np.testing.assert_array_equal(ood[5], np.rot90(test[5]))
    # the first image row becomes the first column, read upwards
    np.testing.assert_array_equal(ood[5][::-1, 0], test[5][0])


def write_mnist(path, rng, **replace) -> None:
    arrays = {
        "x_train": rng.integers(0, 256, (30, 6, 5)).astype(np.uint8),
        "y_train": rng.permutation(np.arange(30) % 4).astype(np.uint8),
        "x_test": rng.integers(0, 200, (12, 6, 5)).astype(np.uint8),
        "y_test": (np.arange(12) % 4).astype(np.uint8),
    }
    arrays |= replace
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})


def test_a_users_mnist_file_is_flattened_and_scaled_by_its_largest_pixel(tmp_path) -> None:
    """keras' layout with 6 × 5 images and 4 classes: inputs D = 30, one hidden layer of 8:
    30·8 + 8 + 8·4 + 4 = 284 weights; pixels divided by x_train's largest value."""
    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    write_mnist(path, rng)
    target = make_target("bnn_digits", {"data_file": str(path), "hidden": [8]})
    with np.load(path) as raw:
        scale = raw["x_train"].max()
        np.testing.assert_array_equal(
            target.X_train.numpy(), raw["x_train"].reshape(30, 30) / scale
        )
        np.testing.assert_array_equal(target.X_test.numpy(), raw["x_test"].reshape(12, 30) / scale)
        np.testing.assert_array_equal(target.y_test.numpy(), raw["y_test"])
        rotated = np.rot90(raw["x_test"][3] / scale)
    assert target.sizes == (30, 8, 4) and target.dim == 284
    np.testing.assert_array_equal(target.X_ood[3].numpy(), rotated.reshape(-1))
    scores = target.predictive(torch.zeros(2, 284))  # θ = 0: uniform predictive over 4 classes
    assert scores["test_log_likelihood"] == pytest.approx(-math.log(4), rel=1e-12)
    assert scores["ood_auroc"] == 0.5  # every entropy equals log 4: all ties


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        ({"y_test": None}, r"missing array 'y_test'"),
        ({"x_train": np.zeros((30, 30))}, r"array 'x_train' must hold numeric images"),
        ({"x_test": np.full((12, 6, 5), -1.0)}, r"array 'x_test' must hold finite pixels >= 0"),
        ({"x_test": np.zeros((12, 5, 6))}, r"array 'x_test' holds images of shape \(5, 6\)"),
        ({"y_train": np.full(30, 1.5)}, r"array 'y_train' must hold 30 class labels"),
        ({"y_test": np.arange(12)}, r"array 'y_test' holds label 11"),
    ],
)
def test_a_malformed_mnist_file_names_the_array(tmp_path, replace, message) -> None:
    path = tmp_path / "mnist.npz"
    write_mnist(path, np.random.default_rng(1), **replace)
    with pytest.raises(DataFileError, match=message):
        make_target("bnn_digits", {"data_file": str(path)})


def test_a_missing_or_unreadable_data_file_and_bad_settings_are_named(tmp_path) -> None:
    with pytest.raises(SettingsError, match=r"setting 'data_file': no such file"):
        make_target("bnn_digits", {"data_file": str(tmp_path / "absent.npz")})
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(DataFileError, match=r"is not an \.npz archive"):
        make_target("bnn_digits", {"data_file": str(tmp_path / "text.npz")})
    with pytest.raises(SettingsError, match=r"setting 'hidden'"):
        make_target("bnn_digits", {"hidden": []})
    with pytest.raises(SettingsError, match=r"setting 'prior_precision' must be > 0"):
        make_target("bnn_digits", {"prior_precision": 0.0})
    with pytest.raises(SettingsError, match=r"unknown setting 'target.prior_precision'"):
        make_target("bnn_digits_hierarchical", {"prior_precision": 1.0})


# ----------------------------------------------------------------------------- hierarchical prior


def hierarchical(**settings):
    return make_target("bnn_digits_hierarchical", {"hidden": [4]} | settings)


def test_the_hierarchical_prior_is_the_cauchy_marginal() -> None:
    """log p = log-likelihood + Σ_j log Cauchy(w_j), against scipy's Cauchy."""
    target = hierarchical()
    theta = torch.as_tensor(np.random.default_rng(0).standard_cauchy((3, target.dim)))
    expected = stats.cauchy.logpdf(theta.numpy()).sum(1)
    np.testing.assert_allclose(target.log_prior(theta), expected, rtol=1e-12)
    np.testing.assert_allclose(
        target.log_prob(theta), target.log_likelihood(theta).numpy() + expected, rtol=1e-12
    )
    assert target.mixing_dim == target.dim == 64 * 4 + 4 + 4 * 10 + 10


def test_the_mixing_density_is_the_log_gamma_with_its_jacobian() -> None:
    """log π(u) = log Gamma(eᵘ; ½, rate ½) + u, against scipy; one coordinate's density
    integrates to 1 on u ∈ [−80, 8] (mass outside: P(α < e⁻⁸⁰) ≈ 1e-18, P(α > e⁸) ≈ 1e-647)
    by the trapezoid rule on 2·10⁵ points (error far below 1e-8 for this smooth density)."""
    target = hierarchical()
    u = torch.as_tensor(np.random.default_rng(1).normal(0, 3, (4, target.dim)))
    expected = (stats.gamma(a=0.5, scale=2.0).logpdf(np.exp(u.numpy())) + u.numpy()).sum(1)
    np.testing.assert_allclose(target.mixing_log_prob(u), expected, rtol=1e-12)
    grid = torch.linspace(-80, 8, 200_001, dtype=torch.float64)
    assert float(
        torch.trapezoid(log_precision_log_density(grid[:, None], 1.0).exp(), grid)
    ) == pytest.approx(1, abs=1e-8)
    w = torch.as_tensor(np.random.default_rng(2).normal(0, 2, (4, target.dim)))
    conditional = stats.norm.logpdf(w.numpy(), scale=np.exp(-u.numpy() / 2)).sum(1)
    np.testing.assert_allclose(target.conditional_log_prob(w, u), conditional, rtol=1e-12)


def test_mixing_then_conditional_draws_are_cauchy() -> None:
    """u ~ π, then w | u ~ N(0, e^{−u}): 200 · 310 = 62 000 draws whose Kolmogorov–Smirnov
    distance to the standard Cauchy is below its 0.1 % critical value 1.95/√n (so a fixed seed
    fails with probability 0.001), while a normal of their sd is far from them."""
    target = hierarchical()
    torch.manual_seed(0)
    u = target.sample_mixing(200, torch.zeros((), dtype=torch.float64))  # (200, 310)
    w = (torch.randn_like(u) * torch.exp(-u / 2)).numpy().reshape(-1)
    critical = 1.95 / math.sqrt(w.size)
    assert stats.kstest(w, "cauchy").statistic < critical
    assert stats.kstest(w, "norm", args=(0, np.std(w))).statistic > 10 * critical


def test_the_per_coordinate_prior_estimate_approaches_the_log_prior_from_below() -> None:
    """log p̂_K = log-likelihood + Σ_j log((1/K) Σ_k N(w_j; 0, 1/α_kj)): by Jensen below log p
    in expectation, with a gap ≈ Σ_j Var_α[N(w_j; 0, 1/α)]/(2K Cauchy(w_j)²) that falls like
    1/K. Measured here: the mean of 200 estimates at K = 4 is below log p by more than 5 of its
    standard errors; at K = 20 000 a single estimate is within 1 % of the K = 4 gap."""
    target = hierarchical()
    theta = torch.as_tensor(np.random.default_rng(3).standard_cauchy((2, target.dim)))
    exact = target.log_prob(theta)
    torch.manual_seed(1)
    small = torch.stack([target.log_prob_estimate(theta, 4) for _ in range(200)])
    gap = exact - small.mean(0)
    assert torch.all(gap > 5 * small.std(0) / math.sqrt(len(small)))
    large = target.log_prob_estimate(theta, 20_000)
    assert torch.all((exact - large).abs() < 0.01 * gap)
    assert torch.all(target.explicit_log_prob(theta) == target.log_likelihood(theta))
