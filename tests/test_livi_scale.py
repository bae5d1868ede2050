"""LIVI's ``low_rank`` entropy (sivi_engine.methods.livi): Jacobian-vector products through the
generator, the bound against the exact Gaussian entropy of a linear generator at d = 600, its
gradient, and the settings that size it.

A linear generator g(z) = Az + b (no hidden layer) makes q = N(b, AAᵀ + σ²I_d) exactly, so the
linearised entropy is the true one. A is built from a chosen SVD, singular values s_i = 10 · 2^−i:
subspace iteration then converges by (s_{r+1}/s_r)² = 1/4 per step, and after 25 steps the
Ritz values are exact to float64 round-off.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sivi_engine.methods.livi import (
    LIVI,
    LinearisedGenerator,
    LIVISettings,
    leading_right_singular_subspace,
    linearised_entropy,
)
from sivi_engine.settings import SettingsError, resolve

F64 = torch.float64
D, M, SIGMA = 600, 20, 1e-3
#: Enough subspace iterations for the 2^−i spectrum to converge to round-off (module docstring).
CONVERGED = 25


def linear_generator(seed: int = 0) -> tuple[LinearisedGenerator, np.ndarray]:
    """g(z) = Az + b with A = U diag(10 · 2^−i) Wᵀ (U, W random orthonormal), and A's singular
    values."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((D, M)))
    w, _ = np.linalg.qr(rng.standard_normal((M, M)))
    s = 10.0 * 2.0 ** -np.arange(M)
    q = LinearisedGenerator(dim=D, z_dim=M, hidden=(), sigma=SIGMA).double()
    with torch.no_grad():
        q.layers[0].weight.copy_(torch.as_tensor(u * s @ w.T))
        q.layers[0].bias.copy_(torch.as_tensor(rng.standard_normal(D)))
    return q, s


def gaussian_entropy(log_det: float) -> float:
    """H(N(·, Σ)) on R^D from log det Σ."""
    return 0.5 * D * math.log(2 * math.pi * math.e) + 0.5 * log_det


def low_rank_entropy(q: LinearisedGenerator, rank: int, iterations: int) -> torch.Tensor:
    torch.manual_seed(1)
    _, projected = q.draw_with_projected_jacobian(4, rank, iterations)
    return linearised_entropy(projected, SIGMA, "low_rank")


def test_push_forward_and_pull_back_are_products_with_the_jacobian():
    """J V and Jᵀ U through an ELU generator equal the products with the dense Jacobian
    (float64 round-off, ~1e-16 measured)."""
    q = LinearisedGenerator(dim=40, z_dim=12, hidden=(20, 16), sigma=SIGMA).double()
    gen = torch.Generator().manual_seed(0)
    z, v, u = (
        torch.randn(*shape, generator=gen, dtype=F64) for shape in ((3, 12), (3, 12, 4), (3, 40, 4))
    )
    _, jac = q.value_and_jacobian(z)
    _, slopes = q.value_and_slopes(z)
    first = q.layers[0].weight
    torch.testing.assert_close(q.push_forward(slopes, first @ v), jac @ v, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(q.pull_back(slopes, u), jac.mT @ u, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("rank", [M, M + 7])
def test_low_rank_with_rank_at_least_m_is_the_exact_gaussian_entropy(rank):
    """r ≥ m: V spans R^m and the estimate is H(N(b, AAᵀ + σ²I)) of the dense 600 × 600
    covariance (numpy's slogdet). Measured error 3e-10 nats on an entropy of ~−3300; 1e-8
    allows round-off of slogdet on a covariance of condition 1e8."""
    q, _ = linear_generator()
    a = q.layers[0].weight.detach().numpy()
    _, dense = np.linalg.slogdet(a @ a.T + SIGMA**2 * np.eye(D))
    estimate = low_rank_entropy(q, rank, iterations=1).item()
    assert estimate == pytest.approx(gaussian_entropy(dense), abs=1e-8)
    _, jac = q.draw_with_jacobian(4)
    assert linearised_entropy(jac, SIGMA, "exact").item() == pytest.approx(estimate, abs=1e-8)


@pytest.mark.parametrize("rank", [1, 5, 12])
def test_low_rank_is_the_leading_singular_values_and_a_lower_bound(rank):
    """r < m: once V converges, ½ Σ_{i≤r} log(σ² + s_i²) + ½ (d − r) log σ² from numpy's SVD of
    A (round-off: 1e-9 nats); with one iteration, unconverged, still below the exact entropy."""
    q, _ = linear_generator()
    s = np.linalg.svd(q.layers[0].weight.detach().numpy(), compute_uv=False)
    expected = np.log(SIGMA**2 + s[:rank] ** 2).sum() + (D - rank) * math.log(SIGMA**2)
    exact = np.log(SIGMA**2 + s**2).sum() + (D - M) * math.log(SIGMA**2)
    converged = low_rank_entropy(q, rank, CONVERGED).item()
    assert converged == pytest.approx(gaussian_entropy(expected), abs=1e-9)
    assert converged < gaussian_entropy(exact)
    assert low_rank_entropy(q, rank, iterations=1).item() <= converged + 1e-9


def test_low_rank_gradient_is_the_exact_gradient():
    """∇_A of the estimate: with r ≥ m, that of the exact entropy, (AAᵀ + σ²I)⁻¹A = Σ_i
    s_i/(σ² + s_i²) u_i w_iᵀ; with r = 5 and V converged, the same sum over i ≤ 5 (V held
    fixed costs nothing at the leading subspace). The bias's gradient is 0. Round-off: σ²I +
    AᵀA has condition ~1e8 and entries reach 39, so ~1e-16 · 1e8 · 39 ≈ 4e-7; measured 5e-10
    (low_rank, r = m), 6e-16 (r = 5), 2.8e-7 (exact); 1e-6 allowed."""
    q, _ = linear_generator()
    u, s, wt = np.linalg.svd(q.layers[0].weight.detach().numpy(), full_matrices=False)
    for rank, iterations in ((M, 1), (5, CONVERGED)):
        q.zero_grad()
        low_rank_entropy(q, rank, iterations).backward()
        expected = (u[:, :rank] * (s[:rank] / (SIGMA**2 + s[:rank] ** 2))) @ wt[:rank]
        np.testing.assert_allclose(q.layers[0].weight.grad.numpy(), expected, rtol=0, atol=1e-6)
        assert q.layers[0].bias.grad is None or not q.layers[0].bias.grad.any()
    q.zero_grad()
    _, jac = q.draw_with_jacobian(4)
    linearised_entropy(jac, SIGMA, "exact").backward()
    full = (u * (s / (SIGMA**2 + s**2))) @ wt
    np.testing.assert_allclose(q.layers[0].weight.grad.numpy(), full, rtol=0, atol=1e-6)


def test_subspace_iteration_returns_an_orthonormal_basis_of_the_leading_subspace():
    """VᵀV = I, and V spans the top-3 right singular vectors of a 30 × 8 matrix with singular
    values 2^−i (projector error after 25 steps ~ 4^−25 ≈ 1e-15; 1e-10 allowed)."""
    rng = np.random.default_rng(2)
    u, _ = np.linalg.qr(rng.standard_normal((30, 8)))
    w, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    jac = torch.as_tensor(u * 2.0 ** -np.arange(8) @ w.T)[None]
    start = torch.randn(1, 8, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    basis = leading_right_singular_subspace(lambda v: jac @ v, lambda x: jac.mT @ x, start, 25)
    torch.testing.assert_close(basis.mT @ basis, torch.eye(3, dtype=F64)[None], atol=1e-12, rtol=0)
    top = torch.as_tensor(w[:, :3])
    torch.testing.assert_close(basis[0] @ basis[0].T, top @ top.T, atol=1e-10, rtol=0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"log_det": "low_rank", "rank": 0}, "setting 'rank'.*must be >= 1, got 0"),
        ({"rank": -3}, "setting 'rank'.*must be >= 1, got -3"),
        ({"subspace_iterations": 0}, "setting 'subspace_iterations': must be >= 1, got 0"),
    ],
)
def test_rank_and_iterations_out_of_range_are_refused(overrides, message):
    with pytest.raises(SettingsError, match=message):
        resolve(LIVISettings, overrides)


def test_memory_need_is_the_projected_jacobian_for_low_rank():
    """low_rank holds batch × d × min(r, m) entries, exact batch × d × m (float32: 4 bytes)."""
    low = resolve(LIVISettings, {"log_det": "low_rank", "rank": 10, "batch_size": 8})
    exact = resolve(LIVISettings, {"batch_size": 8, "z_dim": 50})
    assert LIVI().memory_need(low, 10**6) == ("rank", 8 * 10**6 * 10 * 4)
    assert LIVI().memory_need(exact, 10**6) == ("z_dim", 8 * 10**6 * 50 * 4)
