"""Per-target views of the report: what appears under a target's metric table.

A :class:`View` is a predicate on the target instance and a builder that turns the target's
runs (:class:`TargetData`) into report blocks (figures, tables). :data:`VIEWS` lists them in
reading order; a target gets the blocks of every view whose predicate holds:

- predictive table — targets with held-out data (``target.predictive``);
- density figure — 1-D and 2-D targets;
- correlation scatter and reliability diagram — Bayesian logistic regression;
- posterior paths — the conditioned diffusion;
- training-loss curves — every target.

Figures show each label's first-seed run (:func:`~sivi_engine.report.runs.first_seed_runs`).

:data:`HEADLINE_VIEWS` make the report's headline section, quality along training, from the
MetricSets' per-checkpoint curves (:mod:`sivi_engine.report.curves`), over all ok seeds:

- time-to-quality table and metric curves against iterations and seconds — every target;
- KSIVI's V- against U-statistic estimator — :data:`KSIVI_COMPARISON_TARGETS`, when both ran.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from sivi_engine.metrics.predictive import CALIBRATION_BINS, predictive_scores
from sivi_engine.report import curves, summaries, tables
from sivi_engine.report import figures as fig
from sivi_engine.report import runs as rn
from sivi_engine.report.render import Block, Image, Paragraph, TableBlock
from sivi_engine.targets import make_target
from sivi_engine.targets.base import Target
from sivi_engine.targets.diffusion import Diffusion, observation_indices
from sivi_engine.targets.logistic_regression import BayesianLogisticRegression

FIGURE_DIR = "figures"
#: Central credible level of the diffusion's path bands (2.5 and 97.5 percentiles).
PATH_BAND_LEVEL = 0.95


@dataclasses.dataclass
class TargetData:
    """One target's runs, its slice of the combined MetricSet (dims method, seed) and the label
    colours; the target, the reference draws and the first-seed samples are read once, lazily."""

    name: str
    runs: tuple[rn.Run, ...]
    metrics: xr.Dataset
    colour: Mapping[str, str]

    @functools.cached_property
    def target(self) -> Target:
        return make_target(self.name, self.runs[0].target_settings)

    @functools.cached_property
    def _reference(self) -> tuple[np.ndarray, str]:
        return rn.read_reference(self.runs[0].reference_path)

    @property
    def reference(self) -> np.ndarray:
        """Reference draws pooled over chains, (chain·draw, param)."""
        return self._reference[0]

    @property
    def reference_title(self) -> str:
        return f"reference ({self._reference[1]})"

    @functools.cached_property
    def first_seed(self) -> list[tuple[rn.Run, np.ndarray]]:
        """Each label's first-seed run and its samples, in label order."""
        return [(run, rn.read_samples(run)) for run in rn.first_seed_runs(self.runs).values()]

    @property
    def labels(self) -> list[str]:
        return list(rn.unique(r.label for r in self.runs))

    @property
    def seeds_shown(self) -> str:
        return ", ".join(sorted({str(run.seed) for run, _ in self.first_seed}))

    @functools.cached_property
    def reference_predictive(self) -> dict[str, Any]:
        """``target.predictive`` of the reference draws (computed once per target)."""
        return self.target.predictive(self.reference)

    def image(self, kind: str, caption: str, figure: Figure) -> Image:
        """``figures/{target}_{kind}.png``."""
        return Image(f"{FIGURE_DIR}/{self.name}_{kind}.png", caption, fig.png_bytes(figure))


@dataclasses.dataclass(frozen=True)
class View:
    """Blocks shown under a target's table when ``applies(target)``."""

    name: str
    applies: Callable[[Target], bool]
    build: Callable[[TargetData], list[Block]]


def panel_title(run: rn.Run) -> str:
    """The label, with the run's condition (diverged, suspect) when it is not ok."""
    return run.label if run.condition == "ok" else f"{run.label} ({run.condition})"


# --- views --------------------------------------------------------------------------------------


def predictive_blocks(data: TargetData) -> list[Block]:
    """Held-out predictive metrics: the reference row from ``target.predictive`` of the reference
    draws (+ ECE for a classifier), then each label's seed cells from its MetricSets."""
    labels = np.asarray(data.target.y_test)
    reference = predictive_scores(data.reference_predictive, labels, CALIBRATION_BINS)
    table = tables.predictive_table(data.reference_title, reference, data.metrics, data.labels)
    if "rmse" in reference:
        what = "BNN: RMSE and log-likelihood on the original scale"
    elif "probabilities" in data.reference_predictive:
        what = f"log predictive density per test point, accuracy, ECE on {CALIBRATION_BINS} bins"
    else:
        what = "log predictive density per test point"
    caption = (f"{data.name}: held-out predictive performance on the test split ({what}); "
               "the reference row from the reference draws, method rows mean ± sd over seeds "
               "as in the metric table.")
    return [Paragraph(caption), TableBlock(table)]


def density_blocks(data: TargetData) -> list[Block]:
    """Target density with the reference draws and each label's first-seed samples (1-D, 2-D)."""
    plot = fig.DENSITY_FIGURES[data.target.dim]
    panels = [fig.Panel(data.reference_title, data.reference)]
    panels += [fig.Panel(panel_title(run), samples) for run, samples in data.first_seed]
    caption = (f"{data.name}: target density with reference draws and each method's samples "
               f"(seed {data.seeds_shown})")
    return [data.image("density", caption, plot(data.target, panels))]


def correlation_panels(data: TargetData) -> list[fig.Series[summaries.CorrelationPairs]]:
    """Per label (first seed): the pairwise correlations of its samples and of the reference,
    with the ``corr_pearson_r`` and ``corr_slope`` of the two."""
    return [
        fig.Series(panel_title(run), data.colour[run.label],
                   summaries.correlation_pairs(samples, data.reference))
        for run, samples in data.first_seed
    ]


def correlation_blocks(data: TargetData) -> list[Block]:
    """Scatter of each method's pairwise posterior correlations against the reference's."""
    caption = (f"{data.name}: pairwise posterior correlations, each method (seed "
               f"{data.seeds_shown}) against the {data.reference_title}, one point per pair; "
               "titles: Pearson r and least-squares slope of the method's on the reference's")
    return [data.image("correlation", caption, fig.correlation_figure(correlation_panels(data)))]


def reliability_lines(data: TargetData) -> list[fig.Series[summaries.ReliabilityLine]]:
    """Reliability curve and ECE of the posterior predictive on the test split
    (:data:`CALIBRATION_BINS` bins): the reference draws, then each label's first-seed samples
    (their finite rows; a run without any is left out)."""
    labels = np.asarray(data.target.y_test)
    probabilities = data.reference_predictive["probabilities"]
    lines = [fig.Series(data.reference_title, fig.REFERENCE_COLOUR,
                        summaries.reliability_line(data.reference_title, probabilities, labels))]
    for run, samples in data.first_seed:
        draws = summaries.finite_rows(samples)
        if len(draws) == 0:
            continue
        probabilities = data.target.predictive(draws)["probabilities"]
        title = panel_title(run)
        lines.append(fig.Series(title, data.colour[run.label],
                                summaries.reliability_line(title, probabilities, labels)))
    return lines


def reliability_blocks(data: TargetData) -> list[Block]:
    """Reliability diagram of the reference's and each method's posterior predictive."""
    caption = (f"{data.name}: reliability diagram of the posterior predictive on the test split "
               f"({CALIBRATION_BINS} equal-width bins of P(y = 1)), reference and each method "
               f"(seed {data.seeds_shown}); legend: expected calibration error")
    return [data.image("reliability", caption, fig.reliability_figure(reliability_lines(data)))]


def path_panels(data: TargetData) -> tuple[fig.Series[summaries.PathBand],
                                             list[fig.Series[summaries.PathBand]]]:
    """Pointwise mean and :data:`PATH_BAND_LEVEL` band of the reference draws and of each
    label's first-seed samples."""
    reference = fig.Series(data.reference_title, fig.REFERENCE_COLOUR,
                           summaries.path_band(data.reference, PATH_BAND_LEVEL))
    panels = [fig.Series(panel_title(run), data.colour[run.label],
                         summaries.path_band(samples, PATH_BAND_LEVEL))
              for run, samples in data.first_seed]
    return reference, panels


def path_blocks(data: TargetData) -> list[Block]:
    """Each method's posterior mean path and pointwise band against the reference's, with the
    true path and the observations."""
    target = data.target
    times = target.times()
    path_data = fig.PathData(times, target.true_path(), times[observation_indices()],
                             target.observations())
    reference, panels = path_panels(data)
    caption = (f"{data.name}: posterior mean path and pointwise {PATH_BAND_LEVEL:.0%} band "
               f"(2.5 and 97.5 percentiles) of each method (seed {data.seeds_shown}) against the "
               f"{data.reference_title} (dashed), the true path and the observations (points)")
    return [data.image("paths", caption, fig.path_figure(path_data, reference, panels))]


def loss_blocks(data: TargetData) -> list[Block]:
    """Training-loss curves of every run of the target."""
    traces = [fig.Trace(r.label, *rn.read_loss(r)) for r in data.runs]
    caption = f"{data.name}: training loss against step, one line per seed"
    return [data.image("loss", caption, fig.loss_figure(traces, data.colour))]


def _has_predictive(target: Target) -> bool:
    return callable(getattr(target, "predictive", None))


VIEWS: tuple[View, ...] = (
    View("predictive", _has_predictive, predictive_blocks),
    View("density", lambda t: t.dim in fig.DENSITY_FIGURES, density_blocks),
    View("correlation", lambda t: isinstance(t, BayesianLogisticRegression), correlation_blocks),
    View("reliability", lambda t: isinstance(t, BayesianLogisticRegression), reliability_blocks),
    View("paths", lambda t: isinstance(t, Diffusion), path_blocks),
    View("loss", lambda t: True, loss_blocks),
)


# --- quality along training -----------------------------------------------------------------

#: The clocks curves are drawn against: MetricSet variable and axis label.
CLOCKS = ((curves.ITERATION, "iteration"),
          (curves.SECONDS, "training-loop seconds"))
#: Targets that get the KSIVI estimator figure, and what it shows (the KSIVI paper, Cheng et al.
#: 2024, compares its vanilla V-statistic and its U-statistic estimator along training).
KSIVI_COMPARISON_TARGETS = ("banana",)
KSIVI_ESTIMATORS = ("vstat", "ustat")
KSIVI_COMPARISON_METRICS = ("mmd2", "kl_qp_knn")


def curve_levels(ds: xr.Dataset, metric: str) -> dict[str, float]:
    """The horizontal line of a curve panel, median over the target's runs: the threshold τ on
    the time-to-quality metric (τ scales its floor, which an unbiased MMD² puts near 0 or
    below), the reference floor on the others."""
    if metric == curves.QUALITY_METRIC:
        return {fig.THRESHOLD_LEVEL: curves.median_threshold(ds)}
    return {fig.FLOOR_LEVEL: curves.floor_value(ds, metric)}


def curve_lines(data: TargetData, metric: str, clock: str,
                titles: Mapping[str, str]) -> list[fig.Series[curves.SeedBand]]:
    """Per label of ``titles`` (label → legend entry): its :func:`curves.label_band`, where it
    has one."""
    lines = [fig.Series(title, data.colour[label],
                        curves.label_band(data.metrics, label, metric, clock))
             for label, title in titles.items()]
    return [line for line in lines if line.data.x.size]


def time_to_quality_blocks(data: TargetData) -> list[Block]:
    """Seconds and iterations each label takes to get its MMD² within reach of the floor."""
    if not curves.has_quality_inputs(data.metrics):
        return []
    caption = (f"{data.name}: {curves.QUALITY_RULE}. Ok seeds only; diverged and suspect runs "
               "are counted, not used; τ is shown as the median over the label's runs.")
    return [Paragraph(caption),
            TableBlock(curves.time_to_quality_table(data.metrics, data.labels))]


def curve_panels(data: TargetData) -> list[fig.CurvePanel]:
    """Per curve metric, row by row: against iterations, then against training-loop seconds,
    one line per label."""
    titles = {label: label for label in data.labels}
    return [fig.CurvePanel(tables.header_cell(metric), xlabel,
                           curve_lines(data, metric, clock, titles),
                           curve_levels(data.metrics, metric))
            for metric in curves.curve_metrics(data.metrics) for clock, xlabel in CLOCKS]


def curve_blocks(data: TargetData) -> list[Block]:
    """Each curve metric against iterations and against training-loop seconds, every label."""
    panels = curve_panels(data)
    if not panels:
        return []
    metrics = curves.curve_metrics(data.metrics)
    caption = (f"{data.name}: {', '.join(metrics)} at every checkpoint, against iterations "
               "(left) and training-loop seconds (right, checkpoint sampling excluded; each "
               "checkpoint at the median over seeds); per method the mean over its ok seeds "
               "(line) and the min–max band over them, a run stopped on its wall-clock budget "
               "leaving both after its last checkpoint; dotted: the reference floor, dashed: the "
               "time-to-quality threshold τ; log x axes, log y where every value is positive "
               "(symlog where signs mix, linear where none is positive)")
    return [data.image("curves", caption, fig.curve_figure(panels, ncols=len(CLOCKS)))]


def ksivi_estimators(runs: Sequence[rn.Run]) -> dict[str, str]:
    """KSIVI label → its estimator (``vstat`` or ``ustat``), in label order, from the runs'
    settings."""
    return {run.label: run.settings["estimator"] for run in runs
            if run.method == "ksivi" and "estimator" in run.settings}


def ksivi_estimator_panels(data: TargetData) -> list[fig.CurvePanel]:
    """The KSIVI labels' MMD² and kNN KL against iterations, legend ``label (estimator)``;
    none unless both estimators ran on the target."""
    estimators = ksivi_estimators(data.runs)
    if not set(KSIVI_ESTIMATORS) <= set(estimators.values()):
        return []
    titles = {label: f"{label} ({estimator})" for label, estimator in estimators.items()}
    return [fig.CurvePanel(tables.header_cell(metric), "iteration",
                           curve_lines(data, metric, curves.ITERATION, titles),
                           curve_levels(data.metrics, metric))
            for metric in KSIVI_COMPARISON_METRICS if metric in curves.curve_metrics(data.metrics)]


def ksivi_estimator_blocks(data: TargetData) -> list[Block]:
    """KSIVI's V-statistic (vanilla) against its U-statistic estimator along training."""
    panels = ksivi_estimator_panels(data)
    if not panels:
        return []
    caption = (f"{data.name}: KSIVI with the V-statistic (vanilla) and the U-statistic estimator "
               f"of the kernel Stein discrepancy, {' and '.join(KSIVI_COMPARISON_METRICS)} "
               "against iterations, as the KSIVI paper compares them (Cheng et al. 2024); mean "
               "over ok seeds and min–max band, dotted: the reference floor, dashed: the "
               "threshold τ")
    return [data.image("ksivi_estimators", caption, fig.curve_figure(panels, ncols=len(panels)))]


HEADLINE_VIEWS: tuple[View, ...] = (
    View("time_to_quality", lambda t: True, time_to_quality_blocks),
    View("curves", lambda t: True, curve_blocks),
    View("ksivi_estimators", lambda t: t.name in KSIVI_COMPARISON_TARGETS, ksivi_estimator_blocks),
)


def applicable_views(target: Target, views: Sequence[View] = VIEWS) -> list[str]:
    """Names of the views shown for ``target``."""
    return [view.name for view in views if view.applies(target)]


def target_data(runs: Sequence[rn.Run], summary: rn.RunSummary,
                combined: xr.Dataset) -> dict[str, TargetData]:
    """Target name → its :class:`TargetData` (runs, MetricSet slice, label colours)."""
    colour = fig.colours(summary.labels)
    return {
        name: TargetData(name, tuple(r for r in runs if r.target == name),
                         combined.sel(target=name), colour)
        for name in summary.targets
    }


def target_views(data: Mapping[str, TargetData],
                 views: Sequence[View] = VIEWS) -> dict[str, list[Block]]:
    """Target name → the blocks of its applicable views, in ``views`` order."""
    return {
        name: [block for view in views if view.applies(one.target) for block in view.build(one)]
        for name, one in data.items()
    }
