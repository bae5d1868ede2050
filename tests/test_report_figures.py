"""Figure axes: the y scale (log, symlog, linear) follows the plotted values' signs."""

from __future__ import annotations

import numpy as np
import pytest

from sivi_engine.report import curves
from sivi_engine.report import figures as fig
from sivi_engine.report.figures import Series, Trace, loss_figure


@pytest.mark.parametrize(("offset", "scale"), [(0.0, "log"), (0.5, "symlog")])
def test_loss_axis_is_log_when_positive_else_symlog(offset: float, scale: str) -> None:
    step = np.arange(100)
    trace = Trace("a", step, np.exp(-step / 20.0) - offset)
    assert loss_figure([trace], {"a": "black"}).axes[0].get_yscale() == scale


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        ([1e-2, 1e-3, 2e-4], "log"),
        ([1e-2, 1e-3, -2e-4], "symlog"),  # an unbiased MMD² or kNN KL dipping below 0
        ([-0.7, -0.5, -0.3], "linear"),  # held-out log-likelihoods
    ],
)
def test_curve_axis_scale_follows_the_signs(values, scale) -> None:
    band = curves.seed_band(np.array([[1.0, 10.0, 100.0]]), np.array([values]))
    panel = fig.CurvePanel("m", "iteration", [Series("a", "black", band)], {})
    ax = fig.curve_figure([panel], ncols=1).axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", scale)
