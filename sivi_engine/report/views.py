"""Per-target views of the report: what appears under a target's metric table.

A :class:`View` is a predicate on the target's :class:`TargetData` and a builder that turns it
into report blocks (figures, tables). Both read declared artifacts only: the target's
TargetDescription (its declared capabilities, density grid, path), its ReferenceDraws, its
runs' MetricSets and SampleSets. :data:`VIEWS` lists them in reading order:

- predictive table — targets with held-out data (capability ``held_out_data``), the reference
  row from the MetricSets' ``reference_*`` scores;
- density figure — targets whose description holds a density grid (1-D and 2-D);
- correlation scatter — targets whose runs' MetricSets store their pairwise correlations
  (``pair_*``: 3 to 100 parameters; Spearman's where the variance is infinite);
- reliability diagram — classifiers, from the MetricSets' ``reliability_*`` curves;
- posterior paths — path-valued targets (capability ``latent_path``);
- the seed papers' own experiments (:mod:`sivi_engine.report.seed_experiments`): bounds per
  stage of a sequential fit, KL along training of an explicit q, the ELBO table — targets
  whose runs store those diagnostics;
- training-loss curves — every target.

Figures show each label's first-seed run (:func:`~sivi_engine.report.runs.first_seed_runs`).

:data:`HEADLINE_VIEWS` make the report's headline section, quality along training, from the
MetricSets' per-checkpoint curves (:mod:`sivi_engine.report.curves`), over all ok seeds:

- time-to-quality table and metric curves against iterations and seconds — every target;
- setting comparisons — per method with several labels (KSIVI's V- against U-statistic
  ``estimator``, DSIVI's mixing draws K, ...), those labels along training, the legend naming
  the settings they differ in.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from sivi_engine import artifacts
from sivi_engine.report import curves, legend, seed_experiments, summaries, tables
from sivi_engine.report import figures as fig
from sivi_engine.report import runs as rn
from sivi_engine.report.render import Block, Collapsed, Image, Paragraph, TableBlock

FIGURE_DIR = "figures"
#: What the report says of a target whose reference engine drew nothing (``none``).
NO_REFERENCE_NOTE = (
    "no reference draws (reference engine none), so no sample metric and no sanity gate: the "
    "held-out predictive scores stand alone"
)
#: Central credible level of the diffusion's path bands (2.5 and 97.5 percentiles).
PATH_BAND_LEVEL = 0.95


@dataclasses.dataclass
class TargetData:
    """One target's runs, its slice of the combined MetricSet (dims method, seed), the label
    colours, and its TargetDescription and ReferenceDraws stores; the stores and the
    first-seed samples are read once, lazily."""

    name: str
    runs: tuple[rn.Run, ...]
    metrics: xr.Dataset
    colour: Mapping[str, str]
    description_path: Path

    @functools.cached_property
    def description(self) -> xr.Dataset:
        """The target's TargetDescription."""
        return artifacts.read(self.description_path, artifacts.TARGET_DESCRIPTION)

    @property
    def capabilities(self) -> list[str]:
        """The capabilities the target declares (:mod:`sivi_engine.targets.capabilities`)."""
        return json.loads(self.description.attrs["capabilities"])

    @property
    def dim(self) -> int:
        return int(self.description.attrs["dim"])

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

    @property
    def has_reference(self) -> bool:
        """Reference draws exist (the ``none`` engine stores none)."""
        return self.reference.shape[0] > 0

    @functools.cached_property
    def first_seed(self) -> list[tuple[rn.Run, np.ndarray]]:
        """Each label's first-seed run and its samples, in label order."""
        return [(run, rn.read_samples(run)) for run in rn.first_seed_runs(self.runs).values()]

    @functools.cached_property
    def correlation_pairs(self) -> list[tuple[rn.Run, summaries.CorrelationPairs]]:
        """Each label's first-seed run and the pairwise correlations its MetricSet stores, with
        the run's r and slope of the same kind; runs that stored none are left out."""
        found = (
            (run, stored_correlation_pairs(rn.read_pairs(run), self.run_metrics(run)))
            for run in rn.first_seed_runs(self.runs).values()
        )
        return [(run, pairs) for run, pairs in found if pairs is not None]

    def run_metrics(self, run: rn.Run) -> xr.Dataset:
        """The run's slice of the target's MetricSet."""
        return self.metrics.sel({"method": run.label, "seed": run.seed})

    @property
    def labels(self) -> list[str]:
        return list(rn.unique(r.label for r in self.runs))

    @property
    def seeds_shown(self) -> str:
        return ", ".join(sorted({str(run.seed) for run, _ in self.first_seed}))

    def image(self, kind: str, caption: str, figure: Figure) -> Image:
        """``figures/{target}_{kind}.png``."""
        return Image(f"{FIGURE_DIR}/{self.name}_{kind}.png", caption, fig.png_bytes(figure))


#: The correlations a MetricSet may store pairs of: Pearson's, or Spearman's (``rank_corr``) on
#: a target without finite variance.
CORRELATION_KINDS = ("corr", "rank_corr")


def stored_correlation_pairs(
    pairs: Mapping[str, np.ndarray], run_metrics: xr.Dataset
) -> summaries.CorrelationPairs | None:
    """The pairs a run stored (``read_pairs``) with its stored ``<kind>_pearson_r`` and
    ``<kind>_slope`` (NaN where undefined); None where it stored none."""
    kind = next((k for k in CORRELATION_KINDS if f"{k}_samples" in pairs), None)
    if kind is None:
        return None

    def metric(name: str) -> float:
        return float(run_metrics[name]) if name in run_metrics.data_vars else math.nan

    return summaries.CorrelationPairs(
        reference=pairs[f"{kind}_reference"],
        method=pairs[f"{kind}_samples"],
        pearson_r=metric(f"{kind}_pearson_r"),
        slope=metric(f"{kind}_slope"),
        kind=kind,
    )


@dataclasses.dataclass(frozen=True)
class View:
    """Blocks shown under a target's table when ``applies(data)``."""

    name: str
    applies: Callable[[TargetData], bool]
    build: Callable[[TargetData], list[Block]]


def panel_title(run: rn.Run) -> str:
    """The label, with the run's condition (diverged, suspect) when it is not ok."""
    return run.label if run.condition == "ok" else f"{run.label} ({run.condition})"


# --- views --------------------------------------------------------------------------------------


def reference_scores(ds: xr.Dataset) -> dict[str, float]:
    """The reference's predictive scores: each ``reference_<metric>`` of the target's runs,
    averaged over the runs that have it (every run scores the same reference subsample)."""
    prefix = "reference_"
    return {
        name[len(prefix) :]: float(ds[name].mean(skipna=True))
        for name in ds.data_vars
        if name.startswith(prefix) and bool(ds[name].notnull().any())
    }


def calibration_bins(ds: xr.Dataset) -> int:
    """Bins of the target's reliability curves (the evaluation's ``calibration_bins``): the
    bins any of its runs has a count in (the combined table pads every target to the longest
    curve in the report)."""
    count = ds[f"{artifacts.RELIABILITY_PREFIX}count"]
    return int(count.notnull().any([d for d in count.dims if d != "calibration_bin"]).sum())


def is_classifier(ds: xr.Dataset) -> bool:
    """Some run of the target has a reliability curve (in a combined table every target has
    the variables, NaN where its runs have none)."""
    return tables.has_values(ds, f"{artifacts.RELIABILITY_PREFIX}frequency")


def predictive_blocks(data: TargetData) -> list[Block]:
    """Held-out predictive metrics: the reference row from the MetricSets' ``reference_*``
    scores, then each label's seed cells from its MetricSets."""
    reference = reference_scores(data.metrics)
    title = data.reference_title if data.has_reference else None
    table = tables.predictive_table(title, reference, data.metrics, data.labels)
    meanings = [
        f"{metric}: {legend.entry(data.metrics, metric).description}"
        for metric in legend.with_role(data.metrics, "predictive")
        if metric in reference or tables.has_values(data.metrics, metric)
    ]
    what = "; ".join(meanings)
    if is_classifier(data.metrics):
        what += f"; ECE on {calibration_bins(data.metrics)} equal-width bins"
    rows = (
        "the reference row from as many reference draws as each run is scored on, method rows"
        if data.has_reference
        else f"{NO_REFERENCE_NOTE}; rows"
    )
    caption = (
        f"{data.name}: held-out predictive performance on the test split ({what}); {rows} "
        "mean ± sd over seeds as in the metric table."
    )
    return [Paragraph(caption), TableBlock(table)]


def density_grid(description: xr.Dataset) -> fig.DensityGrid | None:
    """The description's density grid, or None where it has none."""
    if "density_2d" in description.data_vars:
        axes = (description["grid_x"].values, description["grid_y"].values)
        return fig.DensityGrid(axes, description["density_2d"].values)
    if "density_1d" in description.data_vars:
        return fig.DensityGrid((description["grid_x"].values,), description["density_1d"].values)
    return None


def density_blocks(data: TargetData) -> list[Block]:
    """Target density with the reference draws and each label's first-seed samples (1-D, 2-D)."""
    grid = density_grid(data.description)
    plot = fig.DENSITY_FIGURES[len(grid.axes)]
    panels = [fig.Panel(data.reference_title, data.reference)]
    panels += [fig.Panel(panel_title(run), samples) for run, samples in data.first_seed]
    caption = (
        f"{data.name}: target density with reference draws and each method's samples "
        f"(seed {data.seeds_shown})"
    )
    return [data.image("density", caption, plot(grid, panels))]


def correlation_panels(data: TargetData) -> list[fig.Series[summaries.CorrelationPairs]]:
    """Per label (first seed): the stored pairwise correlations of its samples and of the
    reference, with the run's ``corr_pearson_r`` and ``corr_slope`` of the two."""
    return [
        fig.Series(panel_title(run), data.colour[run.label], pairs)
        for run, pairs in data.correlation_pairs
    ]


def correlation_blocks(data: TargetData) -> list[Block]:
    """Scatter of each method's pairwise posterior correlations against the reference's."""
    ranked = any(pairs.kind == "rank_corr" for _, pairs in data.correlation_pairs)
    what = "Spearman rank correlations" if ranked else "correlations"
    caption = (
        f"{data.name}: pairwise posterior {what}, each method (seed "
        f"{data.seeds_shown}) against the {data.reference_title}, one point per pair, as the "
        "evaluation scored them; titles: Pearson r and least-squares slope of the method's on "
        "the reference's"
    )
    return [data.image("correlation", caption, fig.correlation_figure(correlation_panels(data)))]


def stored_reliability(run_metrics: xr.Dataset, prefix: str = "") -> summaries.ReliabilityLine:
    """A run's stored reliability curve (non-empty bins) and ECE: q's, or the reference's with
    ``prefix`` ``"reference_"``."""

    def values(name: str) -> np.ndarray:
        return run_metrics[f"{artifacts.RELIABILITY_PREFIX}{prefix}{name}"].values

    curve = summaries.ReliabilityCurve(values("confidence"), values("frequency"), values("count"))
    ece = run_metrics[f"{prefix}ece"].values if f"{prefix}ece" in run_metrics else math.nan
    return summaries.ReliabilityLine(curve.filled(), float(ece))


def reliability_lines(data: TargetData) -> list[fig.Series[summaries.ReliabilityLine]]:
    """Reliability curve and ECE of the posterior predictive on the test split, as the
    evaluation stored them: the reference's (from the first run that has one), then each
    label's first-seed run's (a run without a curve, e.g. diverged, is left out)."""
    lines = []
    reference_drawn = False
    for run in rn.first_seed_runs(data.runs).values():
        run_metrics = data.run_metrics(run)
        if bool(np.isnan(run_metrics[f"{artifacts.RELIABILITY_PREFIX}count"].values).all()):
            continue
        if not reference_drawn:
            line = stored_reliability(run_metrics, "reference_")
            lines.append(fig.Series(data.reference_title, fig.REFERENCE_COLOUR, line))
            reference_drawn = True
        line = stored_reliability(run_metrics)
        lines.append(fig.Series(panel_title(run), data.colour[run.label], line))
    return lines


def reliability_blocks(data: TargetData) -> list[Block]:
    """Reliability diagram of the reference's and each method's posterior predictive."""
    caption = (
        f"{data.name}: reliability diagram of the posterior predictive on the test split "
        f"({calibration_bins(data.metrics)} equal-width bins of P(y = 1)), reference and each "
        f"method (seed {data.seeds_shown}); legend: expected calibration error"
    )
    return [data.image("reliability", caption, fig.reliability_figure(reliability_lines(data)))]


def path_panels(
    data: TargetData,
) -> tuple[fig.Series[summaries.PathBand], list[fig.Series[summaries.PathBand]]]:
    """Pointwise mean and :data:`PATH_BAND_LEVEL` band of the reference draws and of each
    label's first-seed samples."""
    reference = fig.Series(
        data.reference_title,
        fig.REFERENCE_COLOUR,
        summaries.path_band(data.reference, PATH_BAND_LEVEL),
    )
    panels = [
        fig.Series(
            panel_title(run),
            data.colour[run.label],
            summaries.path_band(samples, PATH_BAND_LEVEL),
        )
        for run, samples in data.first_seed
    ]
    return reference, panels


def path_blocks(data: TargetData) -> list[Block]:
    """Each method's posterior mean path and pointwise band against the reference's, with the
    true path and the observations."""
    description = data.description
    path_data = fig.PathData(
        *(
            description[name].values
            for name in ("path_time", "true_path", "observation_time", "observation")
        )
    )
    reference, panels = path_panels(data)
    caption = (
        f"{data.name}: posterior mean path and pointwise {PATH_BAND_LEVEL:.0%} band "
        f"(2.5 and 97.5 percentiles) of each method (seed {data.seeds_shown}) against the "
        f"{data.reference_title} (dashed), the true path and the observations (points)"
    )
    return [data.image("paths", caption, fig.path_figure(path_data, reference, panels))]


def loss_blocks(data: TargetData) -> list[Block]:
    """Training-loss curves of every run of the target."""
    traces = [fig.Trace(r.label, *rn.read_loss(r)) for r in data.runs]
    caption = f"{data.name}: training loss against step, one line per seed"
    return [data.image("loss", caption, fig.loss_figure(traces, data.colour))]


VIEWS: tuple[View, ...] = (
    View("predictive", lambda d: "held_out_data" in d.capabilities, predictive_blocks),
    View("density", lambda d: density_grid(d.description) is not None, density_blocks),
    View("correlation", lambda d: bool(d.correlation_pairs), correlation_blocks),
    View("reliability", lambda d: is_classifier(d.metrics), reliability_blocks),
    View("paths", lambda d: "latent_path" in d.capabilities, path_blocks),
    View("stage_bounds", seed_experiments.has_stage_bounds, seed_experiments.stage_bound_blocks),
    View("exact_kl", seed_experiments.has_exact_kl, seed_experiments.exact_kl_blocks),
    View("elbo", seed_experiments.has_elbo, seed_experiments.elbo_blocks),
    View("loss", lambda d: True, loss_blocks),
)


# --- quality along training -----------------------------------------------------------------

#: The clocks curves are drawn against: MetricSet variable and axis label.
CLOCKS = ((curves.ITERATION, "iteration"), (curves.SECONDS, "training-loop seconds"))
#: How many of the target's curve metrics (in their curve rank) a setting comparison shows.
COMPARISON_METRICS = 2


def curve_levels(ds: xr.Dataset, metric: str) -> dict[str, float]:
    """The horizontal line of a curve panel, median over the target's runs: the threshold τ on
    the time-to-quality metric (τ scales its floor, which an unbiased MMD² puts near 0 or
    below), the reference floor on the others."""
    if metric == curves.QUALITY_METRIC:
        return {fig.THRESHOLD_LEVEL: curves.median_threshold(ds)}
    return {fig.FLOOR_LEVEL: curves.floor_value(ds, metric)}


def curve_lines(
    data: TargetData, metric: str, clock: str, titles: Mapping[str, str]
) -> list[fig.Series[curves.SeedBand]]:
    """Per label of ``titles`` (label → legend entry): its :func:`curves.label_band`, where it
    has one."""
    lines = [
        fig.Series(title, data.colour[label], curves.label_band(data.metrics, label, metric, clock))
        for label, title in titles.items()
    ]
    return [line for line in lines if line.data.x.size]


def headline_blocks(data: TargetData) -> list[Block]:
    """The target's compact headline table (:func:`curves.headline_table`), then, folded, the
    iterations and thresholds behind its time to quality; a note alone for a target without
    reference draws."""
    if not data.has_reference:
        return [Paragraph(f"{data.name}: {NO_REFERENCE_NOTE}.")]
    caption = (
        f"{data.name}: final scores, mean ± sd over ok seeds (diverged and suspect runs are "
        "counted, not used); the discrepancies are the ones that stay consistent in any "
        "dimension (every metric: the folded table under Results per target, and "
        "results/metrics.csv)"
    )
    blocks: list[Block] = [
        Paragraph(caption),
        TableBlock(curves.headline_table(data.metrics, data.labels)),
    ]
    if curves.has_quality_inputs(data.metrics):
        detail = (
            Paragraph(f"{curves.QUALITY_RULE}; τ is the median over the label's runs."),
            TableBlock(curves.time_to_quality_table(data.metrics, data.labels)),
        )
        blocks.append(Collapsed("time to quality: iterations and thresholds", detail))
    return blocks


def curve_panels(data: TargetData) -> list[fig.CurvePanel]:
    """Per curve metric, row by row: against iterations, then against training-loop seconds,
    one line per label."""
    titles = {label: label for label in data.labels}
    return [
        fig.CurvePanel(
            legend.header_cell(data.metrics, metric),
            xlabel,
            curve_lines(data, metric, clock, titles),
            curve_levels(data.metrics, metric),
        )
        for metric in curves.curve_metrics(data.metrics)
        for clock, xlabel in CLOCKS
    ]


def curve_blocks(data: TargetData) -> list[Block]:
    """Each curve metric against iterations and against training-loop seconds, every label."""
    panels = curve_panels(data)
    if not panels:
        return []
    metrics = curves.curve_metrics(data.metrics)
    caption = (
        f"{data.name}: {', '.join(metrics)} at every checkpoint, against iterations "
        "(left) and training-loop seconds (right, checkpoint sampling excluded; each "
        "checkpoint at the median over seeds); per method the mean over its ok seeds "
        "(line) and the min–max band over them, a run stopped on its wall-clock budget "
        "leaving both after its last checkpoint; dotted: the reference floor, dashed: the "
        "time-to-quality threshold τ; log x axes, log y where every value is positive "
        "(symlog where signs mix, linear where none is positive)"
    )
    return [data.image("curves", caption, fig.curve_figure(panels, ncols=len(CLOCKS)))]


#: Most settings a comparison's legend names (labels differing in more are named alone).
LEGEND_SETTINGS = 3


@dataclasses.dataclass(frozen=True)
class SettingComparison:
    """The labels of one method on a target, and the settings they differ in: label → its
    values of those settings, in label order."""

    method: str
    settings: tuple[str, ...]
    values: dict[str, dict[str, Any]]

    def legend(self, label: str) -> str:
        """``label (setting = value, …)``, or the label alone when they differ in many."""
        if len(self.settings) > LEGEND_SETTINGS:
            return label
        values = ", ".join(f"{key} = {value}" for key, value in self.values[label].items())
        return f"{label} ({values})"


def setting_comparisons(runs: Sequence[rn.Run]) -> list[SettingComparison]:
    """Per method with two or more labels on the target (e.g. KSIVI's V- and U-statistic
    ``estimator``), the settings its labels differ in."""
    settings: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        settings.setdefault(run.method, {}).setdefault(run.label, run.settings)
    comparisons = []
    for method, by_label in settings.items():
        if len(by_label) < 2:
            continue
        keys = sorted(set().union(*(s.keys() for s in by_label.values())))
        differing = tuple(
            key
            for key in keys
            if len({json.dumps(s.get(key), sort_keys=True) for s in by_label.values()}) > 1
        )
        values = {label: {key: s.get(key) for key in differing} for label, s in by_label.items()}
        comparisons.append(SettingComparison(method, differing, values))
    return comparisons


def comparison_panels(data: TargetData, comparison: SettingComparison) -> list[fig.CurvePanel]:
    """The comparison's labels along training (:data:`COMPARISON_METRICS` leading curve metrics
    against iterations), the legend naming the settings they differ in."""
    titles = {label: comparison.legend(label) for label in comparison.values}
    present = curves.curve_metrics(data.metrics)
    return [
        fig.CurvePanel(
            legend.header_cell(data.metrics, metric),
            "iteration",
            curve_lines(data, metric, curves.ITERATION, titles),
            curve_levels(data.metrics, metric),
        )
        for metric in present[:COMPARISON_METRICS]
    ]


def comparison_blocks(data: TargetData) -> list[Block]:
    """Per method with several labels: those labels along training."""
    blocks: list[Block] = []
    for comparison in setting_comparisons(data.runs):
        panels = [p for p in comparison_panels(data, comparison) if p.lines]
        if not panels:
            continue
        metrics = " and ".join(p.ylabel.split()[0] for p in panels)
        differ = ", ".join(comparison.settings) or "no setting (seeds or budgets only)"
        caption = (
            f"{data.name}: the {comparison.method} labels, which differ in {differ}: "
            f"{metrics} against iterations; mean over ok seeds and min–max band, dotted: the "
            "reference floor, dashed: the threshold τ"
        )
        figure = fig.curve_figure(panels, ncols=len(panels))
        blocks.append(data.image(f"{comparison.method}_labels", caption, figure))
    return blocks


HEADLINE_VIEWS: tuple[View, ...] = (
    View("headline", lambda d: True, headline_blocks),
    View("curves", lambda d: True, curve_blocks),
    View("setting_comparisons", lambda d: bool(setting_comparisons(d.runs)), comparison_blocks),
)


def applicable_views(data: TargetData, views: Sequence[View] = VIEWS) -> list[str]:
    """Names of the views shown for the target of ``data``."""
    return [view.name for view in views if view.applies(data)]


def target_data(
    runs: Sequence[rn.Run],
    summary: rn.RunSummary,
    combined: xr.Dataset,
    descriptions: Mapping[str, Path],
) -> dict[str, TargetData]:
    """Target name → its :class:`TargetData` (runs, MetricSet slice, label colours, and its
    TargetDescription from ``descriptions``, target name → store)."""
    colour = fig.colours(summary.labels)
    return {
        name: TargetData(
            name,
            tuple(r for r in runs if r.target == name),
            combined.sel(target=name),
            colour,
            rn.lookup(descriptions, name, "TargetDescription", "--descriptions"),
        )
        for name in summary.targets
    }


def target_views(
    data: Mapping[str, TargetData], views: Sequence[View] = VIEWS
) -> dict[str, list[Block]]:
    """Target name → the blocks of its applicable views, in ``views`` order."""
    return {
        name: [block for view in views if view.applies(one) for block in view.build(one)]
        for name, one in data.items()
    }
