"""What each metric of a MetricSet means, which way is better, what kind of quantity it is and
its unit, for the metrics package, the evaluation's run status, the methods' diagnostics and
the targets' held-out scores, and stored with the metric: every MetricSet variable carries
:func:`variable_attrs` from its construction (:func:`sivi_engine.artifacts.metric_set`), the
schema requires them, and the report reads those attributes only
(``sivi_engine/report/legend.py``), never this module. Pure Python: the artifacts module
imports it, torch and scipy unloaded.

Kinds: ``score`` (how good q is: the tables' columns), ``diagnostic`` (a method's or an
estimator's own quantity, e.g. the ELBO sandwich, the MMD bandwidth), ``status`` (about the run
rather than q: its flags, draw counts, the reference's own scores and noise floors)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    """Legend entry: a one-line description and the direction in which the metric improves;
    ``bound``: the least value the estimated quantity can take (0 for a divergence, whose
    estimates can dip below it by noise), None when unbounded."""

    description: str
    better: str
    hint: str  # short marker for table headers: ↓, ↑, ≈1, ...
    bound: float | None = None
    kind: str = "score"
    unit: str = ""
    #: Where the report shows the metric beyond its tables: role → rank among that role's
    #: metrics (:data:`ROLES`); ``title`` heads its column where a table wants a short name.
    roles: tuple[tuple[str, int], ...] = ()
    title: str = ""

    def marked(self, kind: str, unit: str = "") -> MetricInfo:
        """This entry as another kind (and unit)."""
        return dataclasses.replace(self, kind=kind, unit=unit or self.unit)

    def shown(self, *roles: tuple[str, int], title: str = "") -> MetricInfo:
        """This entry with report roles (and a column title)."""
        return dataclasses.replace(self, roles=self.roles + roles, title=title or self.title)


#: The report's roles: ``headline``, the compact table that heads a target's section — the
#: discrepancies that are consistent in any dimension and measured worse for a q with sds 0.7×
#: or 1.4× the truth or a mean 0.5 sd off than for exact draws, in 2-D and in 22-D
#: (tests/test_metrics.py; the kNN KL is not among them: at d ≫ 2 its bias exceeds the
#: differences it should show, −1.8 for SVGD on the waveform); ``curve``, the figure of quality
#: along training; ``predictive``, the held-out table; ``split``, the table over random splits
#: of a data set.
ROLES = ("headline", "curve", "predictive", "split")


def _lower(description: str) -> MetricInfo:
    return MetricInfo(description, "lower", "↓")


def _divergence(description: str) -> MetricInfo:
    return MetricInfo(description, "lower", "↓", bound=0.0)


def _higher(description: str) -> MetricInfo:
    return MetricInfo(description, "higher", "↑")


def _ideal(description: str, value: float) -> MetricInfo:
    return MetricInfo(description, f"closest to {value:g}", f"≈{value:g}")


def _coverage(level: float) -> MetricInfo:
    return _ideal(
        f"fraction of reference draws inside q's central {level:.0%} marginal interval,"
        " mean over coordinates",
        level,
    )


#: Metrics in the order the tables show them; metrics not listed follow in alphabetical order.
METRIC_INFO: dict[str, MetricInfo] = {
    "kl_qp_knn": _divergence(
        "KL(q‖p), k-nearest-neighbour estimate from samples (can dip below 0)"
    ),
    "kl_pq_knn": _divergence(
        "KL(p‖q), k-nearest-neighbour estimate from samples (can dip below 0)"
    ),
    "kl_qp_density": (
        _divergence(
            "KL(q‖p) = −Ĥ(q) − mean log p: Kozachenko–Leonenko entropy of q's samples and the"
            " normalised target density (d ≤ 2; can dip below 0)"
        )
    ).shown(("headline", 3), ("curve", 2)),
    "mmd2": (
        _divergence(
            "unbiased squared MMD between q and reference draws, Gaussian kernel (can dip below 0)"
        )
    ).shown(("headline", 0), ("curve", 0)),
    "mmd2_multiscale": (
        _divergence(
            "unbiased squared MMD with the mean of Gaussian kernels of widths ⅛, ¼, ½, 1 and 2 ×"
            " the median bandwidth (sees local shape in d > 2 as well; can dip below 0)"
        )
    ).shown(("headline", 1)),
    "sliced_w1": (
        MetricInfo(
            "sliced 1-Wasserstein distance between q and the reference over 200 random"
            " directions, coordinates in reference sds (for a Gaussian, sds off by a factor s"
            " score 0.8·|1 − s|)",
            "lower",
            "↓",
            bound=0.0,
        )
    ).shown(("headline", 2), ("curve", 1)),
    "mmd_bandwidth": (
        MetricInfo(
            "Gaussian-kernel bandwidth used by mmd2 (median heuristic on the reference)", "—", ""
        )
    ).marked("diagnostic"),
    "corr_max_abs_diff": _lower("largest |Δρ| over all pairwise correlations, q vs reference"),
    "corr_pearson_r": _ideal(
        "Pearson r between the pairwise correlations of q and of the reference (d ≥ 3)", 1
    ),
    "corr_slope": _ideal(
        "least-squares slope of q's pairwise correlations on the reference's (d ≥ 3)", 1
    ),
    "rank_corr_max_abs_diff": _lower(
        "largest |Δρ_S| over all pairwise Spearman rank correlations, q vs reference"
        " (infinite-variance targets)"
    ),
    "rank_corr_pearson_r": _ideal(
        "Pearson r between the pairwise Spearman correlations of q and of the reference (d ≥ 3)", 1
    ),
    "rank_corr_slope": _ideal(
        "least-squares slope of q's pairwise Spearman correlations on the reference's (d ≥ 3)", 1
    ),
    "coverage_50": _coverage(0.50),
    "coverage_80": _coverage(0.80),
    "coverage_90": _coverage(0.90),
    "coverage_95": _coverage(0.95),
    "coverage_error": _lower("mean over levels 0.5, 0.8, 0.9, 0.95 of |coverage − level|"),
    "mean_error_std": (
        _lower("largest |mean_q − mean_p| / sd_p over coordinates (mean error in reference sds)")
    ).shown(("curve", 3)),
    "sd_ratio_log_max": _lower("largest |log(sd_q / sd_p)| over coordinates"),
    "sd_ratio_mean": _ideal("mean of sd_q / sd_p over coordinates", 1),
    "median_error_iqr": (
        _lower("largest |median_q − median_p| / IQR_p over coordinates (infinite-variance targets)")
    ).shown(("curve", 4)),
    "iqr_ratio_log_max": _lower(
        "largest |log(IQR_q / IQR_p)| over coordinates (infinite-variance targets)"
    ),
    "tail_ratio_log_max": _lower(
        "largest |log ratio| of the distances of the 1, 5, 95, 99 % quantiles from the median,"
        " q vs reference, over coordinates (infinite-variance targets)"
    ),
    "mode_coverage": _ideal(
        "fraction of the target's modes holding at least mode_min_share × their weight of q's mass",
        1,
    ),
    "test_log_likelihood": (
        _higher(
            "held-out log predictive density, mean over test points (original scale for regression)"
        )
    ).shown(("curve", 5), ("predictive", 0), ("split", 1), title="test log-likelihood"),
    "accuracy": (_higher("held-out accuracy of the posterior predictive (classification)")).shown(
        ("predictive", 1)
    ),
    "rmse": (
        _lower("held-out RMSE of the posterior predictive mean, original scale (regression)")
    ).shown(("predictive", 2), ("split", 0), title="test RMSE"),
    "ece": (
        _lower(
            "expected calibration error of the posterior predictive on held-out data (of the"
            " top label's probability for a multi-class classifier)"
        )
    ).shown(("predictive", 3)),
    "ood_auroc": (
        _higher(
            "AUROC of the posterior predictive's entropy separating shifted test inputs (the"
            " target's out-of-distribution set, e.g. rotated images) from the test inputs"
        )
    ).shown(("predictive", 4)),
    "suspect": (
        _lower(
            "1 when the run diverged or failed the sanity gate (reasons in the MetricSet attribute"
            " suspect_reasons), else 0"
        )
    ).marked("status"),
    "diverged": (_lower("1 when training did not end ok or left non-finite draws, else 0")).marked(
        "status"
    ),
    "scored_draws": (
        MetricInfo("number of q's draws scored (evaluation setting num_draws)", "—", "")
    ).marked("status"),
    "reference_test_log_likelihood": (
        MetricInfo("test_log_likelihood of the reference draws (as many as q's)", "—", "")
    ).marked("status"),
    "reference_accuracy": (
        MetricInfo("accuracy of the reference draws (as many as q's)", "—", "")
    ).marked("status"),
    "reference_rmse": (MetricInfo("rmse of the reference draws (as many as q's)", "—", "")).marked(
        "status"
    ),
    "reference_ece": (MetricInfo("ece of the reference draws (as many as q's)", "—", "")).marked(
        "status"
    ),
    "reference_ood_auroc": (
        MetricInfo("ood_auroc of the reference draws (as many as q's)", "—", "")
    ).marked("status"),
    "wall_seconds": (_lower("training wall-clock time in seconds")).marked("score", "s"),
    "hmc_accept_rate": (
        MetricInfo("UIVI: mean HMC acceptance rate of the reverse conditional", "—", "")
    ).marked("diagnostic"),
    "hmc_step_size": (MetricInfo("UIVI: adapted HMC step size", "—", "")).marked("diagnostic"),
    "kl_qp_exact": (
        _divergence(
            "KL(q‖p) by Monte Carlo over q's draws with both exact log-densities (an explicit q: "
            "DSIVI's Laplace family; method setting kl_samples draws)"
        )
    ).marked("diagnostic"),
    "kl_qp_quadrature": _divergence(
        "KL(q‖p) of the fitted explicit 1-D q by adaptive quadrature (exact up to 1e-8)"
    ),
    "kl_qp_family_optimum": (
        MetricInfo(
            "least KL(q‖p) over q's family by quadrature and Nelder–Mead: the floor any fit of "
            "that family can reach",
            "—",
            "",
            bound=0.0,
        )
    ).marked("diagnostic"),
    "elbo": (
        _higher(
            "ELBO(q) = E_q[log p(x)] + H(q) of an explicit Gaussian q by Monte Carlo, with the "
            "target's closed-form density (the marginal ELBO of a hierarchical model)"
        )
    ).marked("diagnostic"),
    "elbo_kl_term": (
        _lower(
            "the ELBO's KL term KL(q‖π) against the closed-form semi-implicit factor π (a prior)"
        )
    ).marked("diagnostic"),
    "joint_elbo": (
        _higher(
            "joint VI's objective E[log ℓ(x) + log π(x | u) + log π(u)] + H(q(x)) + H(q(u)), a "
            "lower bound on the marginal ELBO"
        )
    ).marked("diagnostic"),
}

#: Families of numbered metrics: name pattern → legend entry built from the number.
PATTERNS: dict[str, Callable[[str], MetricInfo]] = {
    r"mode_mass_(\d+)": lambda k: MetricInfo(
        f"share of q's mass assigned to target mode {k} (nearest centre within 3 sds)",
        "≈ weight",
        "",
    ),
    r"elbo_lower_k(\d+)": lambda k: _higher(
        f"SIVI lower bound on the ELBO with K = {k} mixing draws (Yin & Zhou; DSIVI)"
    ).marked("diagnostic", "nats"),
    r"elbo_upper_k(\d+)": lambda k: MetricInfo(
        f"DSIVI upper bound on the ELBO with K = {k} mixing draws",
        "closest to the lower bound",
        "",
        kind="diagnostic",
        unit="nats",
    ),
    r"kl_lower_stage(\d+)": lambda s: MetricInfo(
        f"DSIVI's sequential approximation: lower bound on KL(q_{s}‖p) after stage {s} "
        "(−U_K, K = bound_draws)",
        "lower",
        "↓",
        bound=0.0,
        kind="diagnostic",
        unit="nats",
    ),
    r"kl_upper_stage(\d+)": lambda s: MetricInfo(
        f"DSIVI's sequential approximation: upper bound on KL(q_{s}‖p) after stage {s} "
        "(−L_K, K = bound_draws)",
        "lower",
        "↓",
        bound=0.0,
        kind="diagnostic",
        unit="nats",
    ),
}

UNKNOWN = MetricInfo("(no description)", "—", "")


def info(name: str) -> MetricInfo:
    """The legend entry of ``name``; metrics the report does not know get a neutral entry."""
    if name in METRIC_INFO:
        return METRIC_INFO[name]
    for pattern, build in PATTERNS.items():
        match = re.fullmatch(pattern, name)
        if match:
            return build(match[1])
    return UNKNOWN


def _pattern_key(name: str) -> tuple[int, int]:
    for rank, pattern in enumerate(PATTERNS):
        match = re.fullmatch(pattern, name)
        if match:
            return rank, int(match[1])
    return len(PATTERNS), 0


def ordered(names: Iterable[str]) -> list[str]:
    """``names`` in legend order: metrics listed above first, then the numbered families
    (by family, then number), then the rest sorted."""
    names = set(names)
    rest = sorted(names - METRIC_INFO.keys(), key=lambda n: (*_pattern_key(n), n))
    return [n for n in METRIC_INFO if n in names] + rest


#: What a MetricSet variable's prefix says of it: a curve is its metric at every checkpoint, a
#: floor the reference's own value of the metric at a checkpoint's draw count.
CURVE_PREFIX, FLOOR_PREFIX, RELIABILITY_PREFIX = "curve_", "floor_", "reliability_"
#: The clocks of the curves (``curve_iteration``, ``curve_seconds``).
CLOCKS = {
    "iteration": MetricInfo("training iteration of each checkpoint", "—", "", kind="status"),
    "seconds": MetricInfo(
        "training-loop seconds at each checkpoint", "—", "", kind="status", unit="s"
    ),
}


def variable_info(name: str) -> MetricInfo:
    """The entry of a MetricSet variable: a metric's own, a curve's (its metric's, or a clock's),
    a floor's (a status: the reference's noise floor of its metric), a reliability curve's."""
    if name.startswith(CURVE_PREFIX):
        metric = name.removeprefix(CURVE_PREFIX)
        return CLOCKS.get(metric) or info(metric)
    if name.startswith(FLOOR_PREFIX):
        metric = name.removeprefix(FLOOR_PREFIX)
        return dataclasses.replace(
            info(metric),
            description=f"{metric} of disjoint reference draws, as many as a checkpoint's: the "
            "noise floor an exact q would score",
            kind="status",
            roles=(),
        )
    if name.startswith(RELIABILITY_PREFIX):
        return MetricInfo(
            f"reliability curve per calibration bin: {name.removeprefix(RELIABILITY_PREFIX)}",
            "—",
            "",
            kind="status",
        )
    return info(name)


def variable_attrs(name: str) -> dict[str, str | float | int]:
    """The attributes every MetricSet variable carries: ``description``, ``better``, ``hint``,
    ``kind``, ``unit``, ``bound`` (NaN when unbounded), ``legend_rank`` (its place in the
    legend's order), ``roles`` (JSON: report role → rank, :data:`ROLES`) and ``title``."""
    entry = variable_info(name)
    base = name.removeprefix(CURVE_PREFIX).removeprefix(FLOOR_PREFIX)
    return {
        "description": entry.description,
        "better": entry.better,
        "hint": entry.hint,
        "kind": entry.kind,
        "unit": entry.unit,
        "bound": float("nan") if entry.bound is None else entry.bound,
        "legend_rank": legend_rank(base),
        "roles": json.dumps(dict(entry.roles)),
        "title": entry.title or base,
    }


def legend_rank(name: str) -> int:
    """Position in the legend: listed metrics first in :data:`METRIC_INFO` order, then the
    numbered families by family and number, then the rest (alphabetically, by the reader)."""
    if name in METRIC_INFO:
        return list(METRIC_INFO).index(name)
    family, number = _pattern_key(name)
    return len(METRIC_INFO) + 1000 * family + min(number, 999)
