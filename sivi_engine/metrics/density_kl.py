"""KL(q‖p) from q's samples and the normalised target density: −Ĥ(q) − mean log p(xᵢ).

KL(q‖p) = −H(q) − E_q log p. The entropy is estimated by Kozachenko & Leonenko (1987),
"Sample estimate of the entropy of a random vector", Probl. Inf. Transm. 23(2); the form with
the k-th neighbour is eq. (4) of Kraskov, Stögbauer & Grassberger (2004), Phys. Rev. E 69:

    Ĥ = ψ(n) − ψ(k) + log V_d + (d/n) Σᵢ log ρ_k(i),

ρ_k(i) the distance from xᵢ to its k-th nearest other sample, V_d = π^(d/2) / Γ(d/2 + 1) the
volume of the unit ball. The cross term is the plain Monte-Carlo mean of log p(xᵢ).

Why not a histogram of q against p on a grid: a density estimate of q smoothed with a global
bandwidth (Scott's rule) blurs a narrow mode or a curved ridge while p is not blurred, so exact
draws scored 1.38 on ``banana`` and 2.45 on ``ring8`` at n = 1000 (0.50 and 1.04 at n = 10 000),
and a q that drops half of ring8's modes (KL = log 2) scored better than exact draws. The
estimator here adapts to the local density through ρ_k and needs no box: exact draws score
−0.007 ± 0.057 (banana) and 0.013 ± 0.034 (ring8) at n = 1000, 0.007 ± 0.005 and
0.008 ± 0.019 at n = 10 000 (mean ± sd over 10 seeds, k = 1; gmm1d: 0.015 ± 0.040 and
−0.007 ± 0.012). k = 3 lowers the variance but
biases ring8 at n = 1000 (+0.053 ± 0.025), hence k = 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln

from sivi_engine.metric_metadata import Catalogue, divergence
from sivi_engine.metrics.arrays import as_samples

#: What :mod:`sivi_engine.metrics` names this module's estimate.
DECLARED = Catalogue(
    sometimes={
        "kl_qp_density": divergence(
            "KL(q‖p) = −Ĥ(q) − mean log p: Kozachenko–Leonenko entropy of q's samples and the"
            " normalised target density (d ≤ 2; can dip below 0)"
        ).shown(("headline", 3), ("curve", 2)),
    }
)


def kozachenko_leonenko_entropy(samples: np.ndarray, k: int = 1) -> float:
    """Ĥ = ψ(n) − ψ(k) + log V_d + (d/n) Σᵢ log ρ_k(i) (module docstring), in nats.

    Duplicate rows are removed first (n is the de-duplicated size), as for the kNN KL: a
    repeated draw, e.g. an SVGD particle handed out twice, would give ρ = 0 and Ĥ = −∞.
    """
    x = np.unique(as_samples(samples), axis=0)
    n, d = x.shape
    if k < 1 or n < k + 1:
        raise ValueError(f"k={k} needs at least {k + 1} distinct samples, got {n}")
    rho, _ = cKDTree(x).query(x, k=[k + 1], workers=-1)  # the nearest row to xᵢ is xᵢ itself
    log_unit_ball = 0.5 * d * math.log(math.pi) - gammaln(0.5 * d + 1)
    return float(digamma(n) - digamma(k) + log_unit_ball + d * np.mean(np.log(rho[:, 0])))


def density_kl_divergence(
    samples: np.ndarray, log_density: Callable[[np.ndarray], np.ndarray], k: int = 1
) -> float:
    """KL(q‖p) ≈ −Ĥ_KL(q) − (1/n) Σᵢ log p(xᵢ) for samples (n, d) of q and the *normalised*
    ``log_density`` of p (maps (N, d) → (N,)).

    For q = p the per-draw terms log p(xᵢ) and d log ρ(i) nearly cancel (n V_d ρᵈ p(xᵢ) is
    about Exp(1)), so the spread of the estimate is of order 1/√n (measured values in the
    module docstring). A draw where p vanishes gives +∞, which is the KL of such a q.
    """
    x = as_samples(samples)
    log_p = np.asarray(log_density(x), dtype=np.float64)
    return float(-kozachenko_leonenko_entropy(x, k) - np.mean(log_p))
