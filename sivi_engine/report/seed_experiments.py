"""Views of the seed papers' own experiments that the generic tables do not show, each built
from the variables its runs store (none applies to a target whose runs lack them):

- sequential approximation (DSIVI §5.2): the bounds on KL(q_s‖p) after every stage, per label
  (``kl_lower_stage<s>``, ``kl_upper_stage<s>``), as a table and a figure;
- KL over training of an explicit q (DSIVI §5.1): ``curve_kl_qp_exact`` against iterations,
  with the family's optimum by quadrature (``kl_qp_family_optimum``) as the reference line,
  and the final KL by quadrature;
- ELBO table (DSIVI §5.3): the metrics of the ``elbo`` role (the marginal ELBO and its KL term,
  joint VI's own bound) and of the ``predictive`` role, per label.

Cells are mean ± sd over a label's ok seeds (:func:`~sivi_engine.report.curves.ok_seeds`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from sivi_engine.report import curves, legend, tables
from sivi_engine.report import figures as fig
from sivi_engine.report.render import Block, Paragraph, TableBlock

if TYPE_CHECKING:
    from sivi_engine.report.views import TargetData

STAGE_PATTERN = re.compile(r"kl_upper_stage(\d+)")
EXACT_KL = "kl_qp_exact"


def ok_values(ds: xr.Dataset, label: str, variable: str) -> np.ndarray:
    """``variable`` of ``label``'s ok seeds."""
    return ds[variable].sel({"method": label, "seed": curves.ok_seeds(ds, label)}).values


def summary_cell(values: np.ndarray) -> str:
    """mean ± sd (the mean alone for one value), or the missing mark."""
    mean, sd, n = tables.mean_sd(values)
    if n == 0:
        return tables.MISSING
    if n == 1:
        return tables.format_number(mean)
    return f"{tables.format_number(mean)} ± {tables.format_number(sd)}"


def labels_with(data: TargetData, variable: str) -> list[str]:
    """The target's labels with a finite ``variable`` on some ok seed."""
    if variable not in data.metrics.data_vars:
        return []
    return [
        label
        for label in data.labels
        if np.isfinite(ok_values(data.metrics, label, variable)).any()
    ]


def stages(ds: xr.Dataset) -> list[int]:
    """The stage numbers with bounds in ``ds``, increasing."""
    return sorted(int(m[1]) for name in ds.data_vars if (m := STAGE_PATTERN.fullmatch(str(name))))


def has_stage_bounds(data: TargetData) -> bool:
    return bool(stages(data.metrics)) and bool(labels_with(data, "kl_upper_stage1"))


def stage_bound_blocks(data: TargetData) -> list[Block]:
    """Per label and stage: lower – upper bound on KL(q_s‖p), means over seeds; the figure."""
    numbers, labels = stages(data.metrics), labels_with(data, "kl_upper_stage1")
    rows, lines = [], []
    for label in labels:
        lower = [ok_values(data.metrics, label, f"kl_lower_stage{s}") for s in numbers]
        upper = [ok_values(data.metrics, label, f"kl_upper_stage{s}") for s in numbers]
        lo, hi = (np.array([tables.mean_sd(v)[0] for v in side]) for side in (lower, upper))
        cells = [f"{tables.format_number(a)} – {tables.format_number(b)}" for a, b in zip(lo, hi)]
        rows.append((label, *cells))
        bounds = fig.StageBounds(np.asarray(numbers), lo, hi)
        lines.append(fig.Series(label, data.colour[label], bounds))
    caption = (
        f"{data.name}: DSIVI's sequential approximation (Molchanov et al. 2019, §5.2): q₁ "
        "fitted to the target, each q_s to q_{s−1} as a semi-implicit target; per stage the "
        "lower – upper bound on KL(q_s‖p) against the original target (−U_K and −L_K with the "
        "method's bound_draws mixing draws), mean over ok seeds. The labels differ in the K of "
        "training: a small K lets the bias of each stage's bound accumulate along the chain."
    )
    table = tables.Table(("method", *(f"stage {s}" for s in numbers)), tuple(rows))
    figure = data.image("stage_bounds", caption, fig.stage_bound_figure(lines))
    return [Paragraph(caption), TableBlock(table), figure]


def has_exact_kl(data: TargetData) -> bool:
    return bool(labels_with(data, curves.curve_name(EXACT_KL)))


def exact_kl_blocks(data: TargetData) -> list[Block]:
    """KL(q‖p) along training against iterations, the family's optimum as a line, and the
    final KL by quadrature per label."""
    labels = labels_with(data, curves.curve_name(EXACT_KL))
    optimum = (
        float(np.nanmedian(data.metrics["kl_qp_family_optimum"].values))
        if "kl_qp_family_optimum" in data.metrics.data_vars
        else float("nan")
    )
    lines = [
        fig.Series(
            label,
            data.colour[label],
            curves.label_band(data.metrics, label, EXACT_KL, curves.ITERATION),
        )
        for label in labels
    ]
    panel = fig.CurvePanel(
        legend.header_cell(data.metrics, EXACT_KL), "iteration", lines, {fig.OPTIMUM_LEVEL: optimum}
    )
    caption = (
        f"{data.name}: KL(q‖p) along training, by Monte Carlo with both exact log-densities at "
        "every checkpoint (DSIVI §5.1: a Laplace q trained only through its scale-mixture "
        "form); mean over ok seeds and min–max band; dash-dotted: the least KL in q's family, "
        "by quadrature"
    )
    columns = [c for c in ("kl_qp_quadrature", EXACT_KL) if c in data.metrics.data_vars]
    rows = tuple(
        (label, *(summary_cell(ok_values(data.metrics, label, c)) for c in columns))
        for label in labels
    )
    table = tables.Table(("method", *(legend.header_cell(data.metrics, c) for c in columns)), rows)
    note = Paragraph(
        f"{data.name}: final KL(q‖p), mean ± sd over ok seeds; the family's optimum by "
        f"quadrature is {tables.format_number(optimum, 4)}."
    )
    figure = data.image("exact_kl", caption, fig.curve_figure([panel], ncols=1))
    return [figure, note, TableBlock(table)]


def has_elbo(data: TargetData) -> bool:
    return bool(labels_with(data, "elbo"))


def elbo_blocks(data: TargetData) -> list[Block]:
    """Per label: the bounds of the ``elbo`` role (the marginal ELBO, its KL term, joint VI's
    bound) and the held-out scores, as their metadata ranks them."""
    ds = data.metrics
    columns = [
        c
        for role in ("elbo", "predictive")
        for c in legend.with_role(ds, role)
        if tables.has_values(ds, c)
    ]
    rows = tuple(
        (label, *(summary_cell(ok_values(data.metrics, label, c)) for c in columns))
        for label in labels_with(data, "elbo")
    )
    caption = (
        f"{data.name}: the marginal ELBO of each explicit q(x) under the closed-form target "
        "(for a hierarchical prior, the marginal prior), its KL term, joint VI's own bound "
        "on (x, u), and the held-out scores, mean ± sd over ok seeds (DSIVI §5.3's table), for "
        "the methods whose q has an explicit density (Gaussian VI, joint VI, DSIVI with a "
        "Gaussian q)"
    )
    table = tables.Table(("method", *(legend.header_cell(data.metrics, c) for c in columns)), rows)
    return [Paragraph(caption), TableBlock(table)]
