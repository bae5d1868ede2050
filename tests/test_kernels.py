"""Kernels of KSIVI's official code against hand-computed Gram matrices and median rules."""

from __future__ import annotations

import math

import pytest
import torch

from sivi_engine.kernels import (
    KernelSettings,
    gram,
    median_heuristic_bandwidth_squared,
    quadratic_form,
)

F64 = torch.float64
LOG4 = math.log(4.0)  # log(n + 1) for n = 3 points

#: Points a = (0, 0), b = (1, 0), c = (0, 2): squared distances ab 1, ac 4, bc 5. The 3×3
#: matrix holds 0, 0, 0, 1, 1, 4, 4, 5, 5, so its lower median (5th of 9) is 1.
TRIANGLE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], dtype=F64)

#: Points with L1 norms 2, 3, 4 and L1 distances 3 (pq), 4 (pr), 7 (qr).
OFF_AXIS = torch.tensor([[1.0, 1.0], [2.0, -1.0], [-1.0, 3.0]], dtype=F64)


def test_median_rule_gaussian_bandwidth():
    """h² = ½ · median(d²)/log(n + 1) = ½ · 1/log 4, so k(a, b) = exp(−1/(2h²)) = exp(−log 4)
    = 1/4 and k(a, c) = exp(−4 log 4) = 1/256, k(b, c) = 4⁻⁵."""
    sq = torch.tensor([[0.0, 1.0, 4.0], [1.0, 0.0, 5.0], [4.0, 5.0, 0.0]], dtype=F64)
    assert median_heuristic_bandwidth_squared(sq, 3).item() == pytest.approx(0.5 / LOG4, rel=1e-15)
    expected = torch.tensor([[1, 4**-1, 4**-4], [4**-1, 1, 4**-5], [4**-4, 4**-5, 1]], dtype=F64)
    torch.testing.assert_close(
        gram(TRIANGLE, TRIANGLE, KernelSettings()), expected, rtol=1e-14, atol=0
    )


def test_imq_gram_with_the_median_rule():
    """IMQ (1 + d²/h²)^(−½) with h² = median(d²)/log(n + 1) = 1/log 4 (no ½):
    k(a, b) = (1 + log 4)^(−½) = 0.647348…, k(a, c) = (1 + 4 log 4)^(−½) = 0.390876…,
    k(b, c) = (1 + 5 log 4)^(−½) = 0.355077…"""
    ab, ac, bc = ((1 + s * LOG4) ** -0.5 for s in (1, 4, 5))
    assert (ab, ac, bc) == pytest.approx((0.647348, 0.390876, 0.355077), abs=1e-6)
    expected = torch.tensor([[1, ab, ac], [ab, 1, bc], [ac, bc, 1]], dtype=F64)
    torch.testing.assert_close(
        gram(TRIANGLE, TRIANGLE, KernelSettings(name="imq")), expected, rtol=1e-14, atol=0
    )


def test_imq_gram_with_a_fixed_bandwidth_and_exponent():
    """h = 2: (1 + 5/4)^(−½) = 2/3 for x = (0, 0), y = (1, 2); with β = −¾, (9/4)^(−¾) and for
    y = (0, 0) itself 1. The cross Gram is 1 × 2."""
    x = torch.zeros(1, 2, dtype=F64)
    y = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=F64)
    torch.testing.assert_close(
        gram(x, y, KernelSettings(name="imq", bandwidth=2.0)),
        torch.tensor([[2 / 3, 1.0]], dtype=F64),
        rtol=1e-15,
        atol=0,
    )
    settings = KernelSettings(name="imq", bandwidth=2.0, imq_beta=-0.75)
    torch.testing.assert_close(
        gram(x, y, settings), torch.tensor([[2.25**-0.75, 1.0]], dtype=F64), rtol=1e-15, atol=0
    )


def test_riesz_gram_uses_the_l1_norm_and_its_median_scale():
    """Numerator N = ‖x‖₁ + ‖y‖₁ − ‖x − y‖₁: diagonal 2‖x‖₁ = 4, 6, 8; pq 2 + 3 − 3 = 2,
    pr 2 + 4 − 4 = 2, qr 3 + 4 − 7 = 0. Entries 0, 0, 2, 2, 2, 2, 4, 6, 8: median 2, so
    h = 2/log 4 and K = N · log 4 / 2 = N · log 2. (The Euclidean norm would give pq
    √2 + √5 − √5 ≠ 2.)"""
    numerator = torch.tensor([[4.0, 2.0, 2.0], [2.0, 6.0, 0.0], [2.0, 0.0, 8.0]], dtype=F64)
    torch.testing.assert_close(
        gram(OFF_AXIS, OFF_AXIS, KernelSettings(name="riesz")),
        numerator * math.log(2.0),
        rtol=1e-14,
        atol=0,
    )
    torch.testing.assert_close(
        gram(OFF_AXIS, OFF_AXIS, KernelSettings(name="riesz", bandwidth=0.5)),
        2.0 * numerator,
        rtol=1e-15,
        atol=0,
    )


def kernel_value(name: str, a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """One kernel entry from its formula, with a constant scale (h² for Gaussian and IMQ, h for
    Riesz)."""
    if name == "gaussian":
        return torch.exp(-((a - b) ** 2).sum() / (2 * scale))
    if name == "imq":
        return (1 + ((a - b) ** 2).sum() / scale) ** -0.5
    return (a.abs().sum() + b.abs().sum() - (a - b).abs().sum()) / scale


def median_rule_scale(name: str, x: torch.Tensor, y: torch.Tensor) -> float:
    """The median-rule constant of each kernel, from a sorted list of the n·m entries."""
    pairs = [(a, b) for a in x for b in y]
    if name == "riesz":
        values = [float(a.abs().sum() + b.abs().sum() - (a - b).abs().sum()) for a, b in pairs]
    else:
        values = [float(((a - b) ** 2).sum()) for a, b in pairs]
    median = sorted(values)[(len(values) - 1) // 2]
    return median / math.log(x.shape[0] + 1) * (0.5 if name == "gaussian" else 1.0)


@pytest.mark.parametrize("name", ["gaussian", "imq", "riesz"])
def test_quadratic_form_equals_a_direct_double_sum(name):
    """Q = (1/nm) Σᵢ Σⱼ k(xᵢ, yⱼ) fᵢ·gⱼ from the scalar formulas and a constant median-rule scale.
    Values and gradients in f, g agree for every kernel. Gradients in x, y agree for IMQ and
    Riesz, whose scale is detached (as in KSIVI's code); the Gaussian's differ, since its
    bandwidth is differentiated through (the fused path is checked against autograd in
    test_ksivi). float64 round-off."""
    gen = torch.Generator().manual_seed(3)
    x, f, y, g = (
        torch.randn(n, 2, generator=gen, dtype=F64, requires_grad=True) for n in (7, 7, 5, 5)
    )
    settings = KernelSettings(name=name)
    scale = median_rule_scale(name, x.detach(), y.detach())
    direct = (
        sum(
            kernel_value(name, x[i], y[j], scale) * (f[i] @ g[j])
            for i in range(7)
            for j in range(5)
        )
        / 35
    )
    q = quadratic_form(x, f, y, g, settings, exclude_diagonal=False)
    torch.testing.assert_close(q, direct, rtol=1e-12, atol=0)
    grads_q = torch.autograd.grad(q, [x, f, y, g])
    grads_direct = torch.autograd.grad(direct, [x, f, y, g])
    for k in (1, 3):
        torch.testing.assert_close(grads_q[k], grads_direct[k], rtol=1e-10, atol=1e-14)
    for k in (0, 2):
        if name == "gaussian":
            assert not torch.allclose(grads_q[k], grads_direct[k], rtol=1e-6, atol=0)
        else:
            torch.testing.assert_close(grads_q[k], grads_direct[k], rtol=1e-10, atol=1e-14)
