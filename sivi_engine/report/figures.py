"""Figures of the report, drawn with matplotlib's Agg canvas and returned as PNG bytes.

Every function here is pure: arrays in, a :class:`matplotlib.figure.Figure` or PNG bytes out;
writing files is left to the caller.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

if TYPE_CHECKING:  # annotations only
    from sivi_engine.report.curves import SeedBand
    from sivi_engine.report.summaries import CorrelationPairs, PathBand, ReliabilityLine

DPI = 110
MAX_POINTS = 2000
MAX_LINE_POINTS = 2000
PANEL_INCHES = 3.0
POINT_COLOUR = "#d62728"
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Panel:
    """One panel of a density figure: a title and the draws shown over the target density."""

    title: str
    points: np.ndarray  # (n, d)


@dataclasses.dataclass(frozen=True)
class Trace:
    """One training-loss curve."""

    label: str
    step: np.ndarray
    loss: np.ndarray


def png_bytes(fig: Figure) -> bytes:
    """Render ``fig`` to PNG at the report's resolution."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def colours(labels: Sequence[str]) -> dict[str, str]:
    """A fixed colour per method label, so that a label looks the same in every figure."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def evenly_spaced(points: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` finite rows of ``points``, spread evenly over the array."""
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) <= limit:
        return points
    return points[np.linspace(0, len(points) - 1, limit).astype(int)]


@dataclasses.dataclass(frozen=True)
class DensityGrid:
    """The target density on a grid (a TargetDescription's): the axes x (and y) and the values,
    shape (x,) or (y, x); the axes' ends are the figure's limits."""

    axes: tuple[np.ndarray, ...]
    density: np.ndarray


def _panel_axes(n: int, sharey: bool, width: float = PANEL_INCHES) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width * n, PANEL_INCHES + 0.4), layout="constrained")
    axes = fig.subplots(1, n, sharex=True, sharey=sharey, squeeze=False)[0]
    return fig, axes


def density_figure_2d(grid: DensityGrid, panels: Sequence[Panel]) -> Figure:
    """One panel per entry: filled contours of the target density with the panel's draws on top."""
    (gx, gy), density = grid.axes, grid.density
    levels = np.linspace(0.01, 1.0, 10) * density.max()
    (xlo, xhi), (ylo, yhi) = (gx[0], gx[-1]), (gy[0], gy[-1])
    fig, axes = _panel_axes(len(panels), sharey=True)
    for ax, panel in zip(axes, panels):
        ax.contourf(gx, gy, density, levels=levels, cmap="Blues", extend="max")
        ax.contour(gx, gy, density, levels=levels, colors="#08306b", linewidths=0.4, alpha=0.6)
        pts = evenly_spaced(panel.points, MAX_POINTS)
        ax.scatter(pts[:, 0], pts[:, 1], s=2.0, c=POINT_COLOUR, alpha=0.35, linewidths=0)
        ax.set(xlim=(xlo, xhi), ylim=(ylo, yhi), title=panel.title, xlabel="x[0]")
    axes[0].set_ylabel("x[1]")
    return fig


def density_figure_1d(grid: DensityGrid, panels: Sequence[Panel]) -> Figure:
    """One panel per entry: histogram of the panel's draws under the target density curve."""
    (gx,), density = grid.axes, grid.density
    lo, hi = gx[0], gx[-1]
    fig, axes = _panel_axes(len(panels), sharey=True)
    for ax, panel in zip(axes, panels):
        pts = evenly_spaced(panel.points, len(panel.points))[:, 0]
        ax.hist(pts, bins=60, range=(lo, hi), density=True, color=PALETTE[0], alpha=0.5)
        ax.plot(gx, density, color="black", linewidth=1.2)
        ax.set(xlim=(lo, hi), title=panel.title, xlabel="x[0]")
    axes[0].set_ylabel("density")
    return fig


#: Density figure by the grid's dimension.
DENSITY_FIGURES: dict[int, Callable[[DensityGrid, Sequence[Panel]], Figure]] = {
    1: density_figure_1d,
    2: density_figure_2d,
}


def _thin(step: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(loss)
    step, loss = step[keep], loss[keep]
    if len(loss) > MAX_LINE_POINTS:
        index = np.linspace(0, len(loss) - 1, MAX_LINE_POINTS).astype(int)
        step, loss = step[index], loss[index]
    return step, loss


def _set_loss_scale(ax: Axes, losses: np.ndarray) -> None:
    """Log scale when every loss is positive; symlog otherwise (KSD-type losses can be negative)."""
    if losses.size and (losses > 0).all():
        ax.set_yscale("log")
        return
    nonzero = np.abs(losses[losses != 0])
    ax.set_yscale("symlog", linthresh=float(np.quantile(nonzero, 0.1)) if nonzero.size else 1.0)


def loss_figure(traces: Sequence[Trace], colour: Mapping[str, str]) -> Figure:
    """Training loss against step, one thin line per seed, one colour per label."""
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    drawn: list[np.ndarray] = []
    for trace in traces:
        step, loss = _thin(trace.step, trace.loss)
        first = trace.label not in ax.get_legend_handles_labels()[1]
        ax.plot(
            step,
            loss,
            color=colour[trace.label],
            linewidth=0.8,
            alpha=0.8,
            label=trace.label if first else "_nolegend_",
        )
        drawn.append(loss)
    _set_loss_scale(ax, np.concatenate(drawn) if drawn else np.empty(0))
    ax.set(xlabel="step", ylabel="training loss")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize="small", frameon=False)
    return fig


# --- data targets ---------------------------------------------------------------------------

REFERENCE_COLOUR = "black"
TRUTH_COLOUR = "#2f2f2f"


@dataclasses.dataclass(frozen=True)
class Series(Generic[T]):
    """One method's (or the reference's) entry in a figure: title, colour and what is drawn."""

    title: str
    colour: str
    data: T


def _title_number(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:.3f}"


def correlation_figure(panels: Sequence[Series[CorrelationPairs]]) -> Figure:
    """One panel per method: its pairwise correlations ρ_q against the reference's ρ_p (one point
    per pair, at most MAX_POINTS shown), the identity line, and in the title Pearson r between
    ρ_q and ρ_p and the least-squares slope of ρ_q on ρ_p."""
    fig, axes = _panel_axes(len(panels), sharey=True)
    for ax, panel in zip(axes, panels):
        pairs = panel.data
        xy = evenly_spaced(np.column_stack([pairs.reference, pairs.method]), MAX_POINTS)
        ax.plot([-1, 1], [-1, 1], color="grey", linewidth=0.8, linestyle="--", zorder=1)
        ax.scatter(xy[:, 0], xy[:, 1], s=8.0, color=panel.colour, alpha=0.6, linewidths=0, zorder=2)
        title = (
            f"{panel.title}\nr = {_title_number(pairs.pearson_r)}, "
            f"slope = {_title_number(pairs.slope)}"
        )
        symbol = "ρ_S" if pairs.kind == "rank_corr" else "ρ"
        ax.set(
            xlim=(-1.05, 1.05),
            ylim=(-1.05, 1.05),
            aspect="equal",
            title=title,
            xlabel=f"reference {symbol}",
        )
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"method {'ρ_S' if panels[0].data.kind == 'rank_corr' else 'ρ'}")
    return fig


def reliability_figure(lines: Sequence[Series[ReliabilityLine]]) -> Figure:
    """Reliability diagram: per bin, observed frequency of y = 1 against mean predicted
    probability, one curve per entry with its ECE in the legend, and the diagonal on which a
    calibrated predictive lies."""
    fig = Figure(figsize=(4.8, 4.4), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--", label="calibrated")
    for line in lines:
        curve = line.data.curve
        ax.plot(
            curve.confidence,
            curve.frequency,
            marker="o",
            markersize=3.5,
            linewidth=1.2,
            color=line.colour,
            label=f"{line.title} (ECE {_title_number(line.data.ece)})",
        )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        aspect="equal",
        xlabel="mean predicted P(y = 1)",
        ylabel="observed frequency of y = 1",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", frameon=False, loc="upper left")
    return fig


@dataclasses.dataclass(frozen=True)
class PathData:
    """What a path figure shows besides the posteriors: the latent times, the true path, and the
    observation times and values."""

    times: np.ndarray
    truth: np.ndarray
    obs_times: np.ndarray
    observations: np.ndarray


def path_figure(
    data: PathData, reference: Series[PathBand], panels: Sequence[Series[PathBand]]
) -> Figure:
    """One panel per method: its posterior mean path and pointwise central band (filled) against
    the reference's (black: dashed mean, dotted band limits), the true path and the observations
    as points; one legend below the panels."""
    fig, axes = _panel_axes(len(panels), sharey=True, width=1.6 * PANEL_INCHES)
    ref = reference.data
    for ax, panel in zip(axes, panels):
        band = panel.data
        ax.fill_between(
            data.times,
            band.lower,
            band.upper,
            color=panel.colour,
            alpha=0.25,
            linewidth=0,
            label=f"method: {band.level:.0%} band",
        )
        ax.plot(data.times, band.mean, color=panel.colour, linewidth=1.4, label="method: mean")
        ax.plot(
            data.times,
            ref.mean,
            color=reference.colour,
            linewidth=1.1,
            linestyle="--",
            label=f"{reference.title}: mean",
        )
        ax.plot(
            data.times,
            ref.lower,
            color=reference.colour,
            linewidth=0.9,
            linestyle=":",
            label=f"{reference.title}: {ref.level:.0%} band",
        )
        ax.plot(data.times, ref.upper, color=reference.colour, linewidth=0.9, linestyle=":")
        ax.plot(
            data.times, data.truth, color=TRUTH_COLOUR, linewidth=0.8, alpha=0.6, label="true path"
        )
        ax.scatter(
            data.obs_times,
            data.observations,
            s=14.0,
            color=POINT_COLOUR,
            zorder=3,
            label="observations",
        )
        ax.set(title=panel.title, xlabel="t")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("u(t)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="outside lower center", ncols=3, fontsize="small", frameon=False
    )
    return fig


# --- quality along training -----------------------------------------------------------------

FLOOR_COLOUR = "black"


@dataclasses.dataclass(frozen=True)
class CurvePanel:
    """One panel of a curve figure: a metric against a clock, one band per label, and the
    horizontal lines ``levels`` (name → value; NaN values are not drawn)."""

    ylabel: str
    xlabel: str
    lines: Sequence[Series[SeedBand]]
    levels: Mapping[str, float]


#: The horizontal levels a curve panel can carry, and their line styles.
FLOOR_LEVEL, THRESHOLD_LEVEL = "reference floor", "threshold τ"
OPTIMUM_LEVEL = "best in q's family (quadrature)"
LEVEL_STYLES = {FLOOR_LEVEL: ":", THRESHOLD_LEVEL: "--", OPTIMUM_LEVEL: "-."}


def _set_curve_scale(ax: Axes, values: np.ndarray) -> None:
    """Log y when every value is positive, linear when none is (held-out log-likelihoods),
    symlog when signs are mixed (KL and MMD² estimates dip below 0 near convergence)."""
    if values.size and not (values > 0).any():
        return
    _set_loss_scale(ax, values)


def _draw_curve_panel(ax: Axes, panel: CurvePanel) -> None:
    drawn = []
    for line in panel.lines:
        band = line.data
        keep = band.x > 0  # log x axis
        ax.fill_between(
            band.x[keep],
            band.lower[keep],
            band.upper[keep],
            color=line.colour,
            alpha=0.2,
            linewidth=0,
        )
        ax.plot(
            band.x[keep],
            band.mean[keep],
            color=line.colour,
            linewidth=1.4,
            marker="o",
            markersize=2.5,
            label=line.title,
        )
        drawn += [band.lower[keep], band.upper[keep]]
    for name, value in panel.levels.items():
        if np.isfinite(value):
            ax.axhline(
                value, color=FLOOR_COLOUR, linewidth=0.9, linestyle=LEVEL_STYLES[name], label=name
            )
            drawn.append(np.array([value]))
    values = np.concatenate(drawn) if drawn else np.empty(0)
    _set_curve_scale(ax, values[np.isfinite(values)])
    ax.set_xscale("log")
    ax.set(xlabel=panel.xlabel, ylabel=panel.ylabel)
    ax.grid(alpha=0.3, which="both", linewidth=0.4)


def curve_figure(panels: Sequence[CurvePanel], ncols: int) -> Figure:
    """Panels row-major on a grid of ``ncols`` columns: per label its mean over seeds (line)
    and min–max band (filled) against a log x axis, the panel's levels as horizontal black
    lines; one legend below the panels."""
    nrows = -(-len(panels) // ncols)
    fig = Figure(
        figsize=(1.3 * PANEL_INCHES * ncols, 0.9 * PANEL_INCHES * nrows + 0.6), layout="constrained"
    )
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, panel in zip(axes, panels):
        _draw_curve_panel(ax, panel)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    legend: dict[str, object] = {}
    for ax in axes[: len(panels)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(
        list(legend.values()),
        list(legend),
        loc="outside lower center",
        ncols=min(len(legend), 5),
        fontsize="small",
        frameon=False,
    )
    return fig


@dataclasses.dataclass(frozen=True)
class StageBounds:
    """Bounds on KL(q_s‖p) per stage s of a sequential fit, each the mean over seeds."""

    stage: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def stage_bound_figure(lines: Sequence[Series[StageBounds]]) -> Figure:
    """Per label the band between the lower and upper KL bounds against the stage (log y)."""
    fig = Figure(figsize=(1.6 * PANEL_INCHES, PANEL_INCHES + 0.4), layout="constrained")
    ax = fig.subplots()
    for line in lines:
        bounds = line.data
        ax.fill_between(bounds.stage, bounds.lower, bounds.upper, color=line.colour, alpha=0.3)
        ax.plot(
            bounds.stage,
            bounds.upper,
            color=line.colour,
            marker="o",
            markersize=3,
            label=line.title,
        )
        ax.plot(bounds.stage, bounds.lower, color=line.colour, linestyle="--", linewidth=0.9)
    values = np.concatenate([np.r_[b.data.lower, b.data.upper] for b in lines])
    _set_curve_scale(ax, values[np.isfinite(values)])
    ax.set(
        xlabel="stage s (q_s fitted to q_{s−1})", ylabel="KL(q_s‖p): upper (solid), lower (dashed)"
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3, linewidth=0.4)
    ax.legend(fontsize="small", frameon=False)
    return fig
