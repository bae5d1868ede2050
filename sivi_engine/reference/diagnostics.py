"""MCMC convergence diagnostics and the reference gate.

Implemented in numpy, vectorised over parameters, for draws shaped (chain, draw, param):

- rank-normalised split-R̂, bulk-ESS and tail-ESS: Vehtari, Gelman, Simpson, Carpenter &
  Bürkner (2021), "Rank-normalization, folding, and localization: an improved R̂ for assessing
  convergence of MCMC", Bayesian Analysis 16(2), §3-4 and Appendix A (the same estimators as
  Stan and the R package ``posterior``);
- E-BFMI: Betancourt (2016), "Diagnosing suboptimal cotangent disintegrations in Hamiltonian
  Monte Carlo", arXiv:1604.00695, eq. (9) as estimated by Stan.

The gate (:func:`gate_failures`) turns a diagnostics summary into the list of violated rules,
each naming the diagnostic, its value and the threshold setting.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

from sivi_engine.reference.base import ReferenceSettings
from sivi_engine.settings import SettingsError

#: Tail-ESS uses the indicators of these quantiles (Vehtari et al. 2021, §4.3).
TAIL_QUANTILES = (0.05, 0.95)
#: Fewest draws per chain for which split-R̂ and ESS are defined (two per half for R̂, four
#: per split chain for the first autocorrelation pair); with fewer they are NaN.
MIN_DRAWS_PER_CHAIN = 8


def split_chains(draws: np.ndarray) -> np.ndarray:
    """(chain, draw, ...) -> (2·chain, ⌊draw/2⌋, ...): each chain cut into halves; for an odd
    number of draws the middle one is dropped."""
    half = draws.shape[1] // 2
    return np.concatenate([draws[:, :half], draws[:, draws.shape[1] - half :]], axis=0)


def rank_normalise(draws: np.ndarray) -> np.ndarray:
    """z = Φ⁻¹((r − 3/8) / (S + 1/4)), r the average rank over all S = chain·draw draws of each
    parameter (Vehtari et al. 2021, eq. 14; Blom's offset)."""
    chains, n = draws.shape[:2]
    ranks = rankdata(draws.reshape(chains * n, -1), axis=0, method="average")
    return ndtri((ranks - 0.375) / (chains * n + 0.25)).reshape(draws.shape)


def basic_rhat(draws: np.ndarray) -> np.ndarray:
    """R̂ = sqrt(var⁺ / W), var⁺ = (N−1)/N W + B/N, W the mean within-chain variance and
    B/N the variance of the chain means (Gelman et al., BDA3 eq. 11.3-11.4); per parameter."""
    n = draws.shape[1]
    within = draws.var(axis=1, ddof=1).mean(axis=0)
    between_over_n = draws.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # chains that never move: R̂ = ∞
        return np.sqrt(((n - 1) / n * within + between_over_n) / within)


def split_rhat(draws: np.ndarray) -> np.ndarray:
    """Rank-normalised split-R̂: max of the R̂ of the rank-normalised split chains and of their
    folded version |θ − median θ| (Vehtari et al. 2021, §4.2); per parameter."""
    split = split_chains(draws)
    folded = np.abs(split - np.median(split, axis=(0, 1)))
    return np.maximum(basic_rhat(rank_normalise(split)), basic_rhat(rank_normalise(folded)))


def _autocovariance(draws: np.ndarray) -> np.ndarray:
    """Biased autocovariance γ_m(t) = (1/N) Σᵢ (θᵢ − θ̄)(θᵢ₊ₜ − θ̄) of each chain via FFT,
    shape (chain, lag, param)."""
    n = draws.shape[1]
    centred = draws - draws.mean(axis=1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    return np.fft.irfft(spectrum * spectrum.conj(), n=size, axis=1)[:, :n] / n


def ess(draws: np.ndarray) -> np.ndarray:
    """Effective sample size of (chain, draw, param) draws, per parameter (no splitting).

    ρ̂ₜ = 1 − (W − mean_m γ_m(t)) / var⁺ (Vehtari et al. 2021, eq. 10), summed in pairs
    Pₖ = ρ̂₂ₖ + ρ̂₂ₖ₊₁ up to the first non-positive pair (Geyer's initial positive sequence)
    and made monotone (initial monotone sequence); τ̂ = −1 + 2 Σₖ Pₖ + ρ̂ at the truncation lag
    (Stan's improved estimate for antithetic chains), floored at 1/log₁₀(S);
    ESS = S / τ̂ with S = chain·draw.
    """
    chains, n = draws.shape[:2]
    total = chains * n
    acov = _autocovariance(draws)
    within = acov[:, 0].mean(axis=0) * n / (n - 1)
    var_plus = within * (n - 1) / n
    if chains > 1:
        var_plus = var_plus + draws.mean(axis=1).var(axis=0, ddof=1)
    constant = var_plus <= 0
    var_plus = np.where(constant, 1.0, var_plus)
    rho = 1 - (within - acov.mean(axis=0)) / var_plus  # (lag, param)
    rho[0] = 1.0  # by definition (the estimate above is 1 − W/(N·var⁺))
    num_pairs = (n - 2) // 2  # Stan's loop looks at lags < N − 3
    if num_pairs < 1:  # fewer than 4 draws per chain: undefined
        return np.full(draws.shape[2:], np.nan)
    pairs = rho[0 : 2 * num_pairs : 2] + rho[1 : 2 * num_pairs : 2]  # (pair, param)
    non_positive = pairs <= 0
    stop = np.where(non_positive.any(axis=0), non_positive.argmax(axis=0), num_pairs - 1)
    columns = np.arange(pairs.shape[1])
    last_kept = (stop == 0) | (pairs[stop, columns] >= 0)
    rho_at_stop = rho[2 * stop, columns]
    tail = np.where((rho_at_stop > 0) | last_kept, rho_at_stop, 0.0)
    monotone = np.minimum.accumulate(pairs, axis=0)
    summed = np.where(np.arange(num_pairs)[:, None] < stop, monotone, 0.0).sum(axis=0)
    tau = np.maximum(-1 + 2 * summed + tail, 1 / np.log10(total))
    return np.where(constant, np.nan, total / tau)


def bulk_ess(draws: np.ndarray) -> np.ndarray:
    """ESS of the rank-normalised split chains (Vehtari et al. 2021, §4.1)."""
    return ess(rank_normalise(split_chains(draws)))


def tail_ess(draws: np.ndarray) -> np.ndarray:
    """min over q ∈ {5%, 95%} of the ESS of the split-chain indicators I(θ ≤ θ̂_q)
    (Vehtari et al. 2021, §4.3)."""
    split = split_chains(draws)
    indicators = [
        (split <= np.quantile(split, q, axis=(0, 1))).astype(np.float64) for q in TAIL_QUANTILES
    ]
    return np.minimum(*(ess(ind) for ind in indicators))


def mean_ess(draws: np.ndarray) -> np.ndarray:
    """ESS for the posterior mean: ESS of the split chains on the original scale."""
    return ess(split_chains(draws))


def mcse_mean(draws: np.ndarray) -> np.ndarray:
    """Monte-Carlo standard error of the posterior mean, sd / sqrt(ESS_mean), per parameter."""
    sd = draws.reshape(-1, draws.shape[-1]).std(axis=0, ddof=1)
    return sd / np.sqrt(mean_ess(draws))


def ebfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI of each chain, energy shaped (chain, draw):
    Σₙ (Eₙ − Eₙ₋₁)² / Σₙ (Eₙ − Ē)² with the numerator averaged over N−1 differences and the
    denominator over N draws, as in Stan (Betancourt 2016, eq. 9)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # constant energy: NaN, fails the gate
        return np.square(np.diff(energy, axis=1)).mean(axis=1) / energy.var(axis=1)


def summarise(
    draws: np.ndarray, energy: np.ndarray | None = None, divergent: np.ndarray | None = None
) -> dict[str, float]:
    """The gate's diagnostics: worst split-R̂, bulk/tail ESS over parameters, and — for HMC —
    the number of divergent transitions and the smallest per-chain E-BFMI. R̂ and ESS are NaN
    (failing the gate) for chains shorter than MIN_DRAWS_PER_CHAIN."""
    defined = draws.shape[1] >= MIN_DRAWS_PER_CHAIN
    summary = {
        "max_rhat": float(np.max(split_rhat(draws))) if defined else float("nan"),
        "min_bulk_ess": float(np.min(bulk_ess(draws))) if defined else float("nan"),
        "min_tail_ess": float(np.min(tail_ess(draws))) if defined else float("nan"),
    }
    if divergent is not None:
        summary["divergences"] = int(np.sum(divergent))
    if energy is not None:
        summary["min_ebfmi"] = float(np.min(ebfmi(energy)))
    return summary


@dataclasses.dataclass(frozen=True)
class GatedSettings(ReferenceSettings):
    """Reference settings of a chain sampler plus the posteriordb-grade gate thresholds
    (docs/architecture.md#reference-engines). ``num_draws`` is the total kept, split evenly over
    ``chains``."""

    chains: int = 4
    rhat_max: float = 1.01  # max split-R̂ must be < this
    ess_min: float = 1000.0  # min bulk- and tail-ESS must be ≥ this
    max_divergences: int = 0  # divergent transitions must be ≤ this
    ebfmi_min: float = 0.2  # min E-BFMI must be > this (Betancourt 2016's warning level)

    def validate(self) -> None:
        if not self.rhat_max > 1:
            raise SettingsError(f"setting 'rhat_max' must be > 1, got {self.rhat_max!r}")
        for field in ("ess_min", "max_divergences", "ebfmi_min"):
            if getattr(self, field) < 0:
                raise SettingsError(f"setting {field!r} must be ≥ 0, got {getattr(self, field)!r}")
        for field in ("chains", "num_draws"):
            if getattr(self, field) < 1:
                raise SettingsError(f"setting {field!r} must be ≥ 1, got {getattr(self, field)!r}")
        if self.num_draws % self.chains:
            raise SettingsError(
                f"setting 'num_draws' ({self.num_draws}) must be a multiple of 'chains' "
                f"({self.chains}): every chain keeps num_draws / chains draws"
            )

    @property
    def draws_per_chain(self) -> int:
        return self.num_draws // self.chains


@dataclasses.dataclass(frozen=True)
class GateRule:
    """``diagnostic <relation> settings.<setting>`` must hold."""

    diagnostic: str
    setting: str
    relation: str
    holds: Callable[[float, float], bool]


GATE_RULES = (
    GateRule("max_rhat", "rhat_max", "<", operator.lt),
    GateRule("min_bulk_ess", "ess_min", "≥", operator.ge),
    GateRule("min_tail_ess", "ess_min", "≥", operator.ge),
    GateRule("divergences", "max_divergences", "≤", operator.le),
    GateRule("min_ebfmi", "ebfmi_min", ">", operator.gt),
)


def gate_failures(summary: Mapping[str, Any], settings: GatedSettings) -> list[str]:
    """The violated gate rules among the diagnostics present in ``summary`` (a NaN fails)."""
    return [
        f"{rule.diagnostic} = {summary[rule.diagnostic]:.4g} "
        f"(needs {rule.relation} {rule.setting} = {getattr(settings, rule.setting):g})"
        for rule in GATE_RULES
        if rule.diagnostic in summary
        and not rule.holds(summary[rule.diagnostic], getattr(settings, rule.setting))
    ]


def gate_record(
    summary: Mapping[str, Any], settings: GatedSettings, enforced: bool
) -> dict[str, Any]:
    """The gate's entry in an artifact's diagnostics: thresholds, failures, verdict."""
    failures = gate_failures(summary, settings)
    return {
        "enforced": enforced,
        "passed": not failures,
        "failures": failures,
        "thresholds": {rule.setting: getattr(settings, rule.setting) for rule in GATE_RULES},
    }


class DiagnosticsGateError(SettingsError):
    """A reference whose draws failed the diagnostics gate.

    A :class:`SettingsError` because the remedy is a setting (more warmup or draws, a higher
    ``adapt_delta``, a smaller SGLD step) and so that the CLI reports it and exits non-zero.
    """


def enforce_gate(summary: Mapping[str, Any], settings: GatedSettings, what: str) -> None:
    """Raise :class:`DiagnosticsGateError` naming every failing diagnostic of ``what``."""
    failures = gate_failures(summary, settings)
    if failures:
        raise DiagnosticsGateError(
            f"{what} failed the diagnostics gate: "
            + "; ".join(failures)
            + ". No reference was written; raise warmup/num_draws/thin (R̂, ESS) or "
            "adapt_delta (divergences), or reparameterise the model (E-BFMI, divergences)."
        )
