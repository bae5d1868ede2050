"""The method interface: (target, settings, seed, device) -> posterior draws + training trace."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from sivi_engine.metric_metadata import Catalogue
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target

#: Most draws a run may store: 10⁷ draws of a 751-D BNN are 60 GB in float64, and memory is
#: checked against the target's dimension before training (``steps.train``).
MAX_DRAWS = 10_000_000


@dataclasses.dataclass(frozen=True)
class CommonSettings:
    """Settings every method understands (names fixed across methods).

    Optimiser defaults follow KSIVI (Cheng et al. 2024): Adam β = (0.9, 0.99), lr 1e-3, step
    decay ×0.9 every 1000 iterations.

    Checkpoints: after each iteration in ``checkpoints`` (empty: the 1-2-5 schedule 1, 2, 5,
    10, 20, 50, …; the last iteration always) the loop stores ``checkpoint_draws`` draws of
    the current q (at most ``num_draws``). ``budget_seconds`` bounds the training loop's
    wall-clock time: it stops at the first checkpoint reached with that much loop time spent,
    ``iterations`` staying the cap.
    """

    #: The families of per-target defaults these settings take (``Target.method_setting_groups``).
    families: ClassVar[tuple[str, ...]] = ("training",)

    iterations: int = 50_000
    batch_size: int = 500
    lr: float = 1e-3
    num_draws: int = 10_000
    betas: tuple[float, ...] = (0.9, 0.99)
    lr_decay: float = 0.9
    lr_decay_every: int = 1000
    trace_every: int = 10
    dtype: Literal["float32", "float64"] = "float32"
    checkpoints: tuple[int, ...] = ()
    checkpoint_draws: int = 2000
    budget_seconds: float | None = None

    def validate(self) -> None:
        for name in (
            "iterations",
            "batch_size",
            "num_draws",
            "lr_decay_every",
            "trace_every",
            "checkpoint_draws",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"setting {name!r}: must be >= 1, got {getattr(self, name)}")
        outside = [c for c in self.checkpoints if not 1 <= c <= self.iterations]
        if outside:
            raise SettingsError(
                "setting 'checkpoints': iterations must lie in "
                f"1..{self.iterations} (the setting 'iterations'), got {outside}"
            )
        if self.budget_seconds is not None and self.budget_seconds <= 0:
            raise SettingsError(
                f"setting 'budget_seconds': must be > 0 or null, got {self.budget_seconds}"
            )
        if self.lr <= 0:
            raise SettingsError(f"setting 'lr': must be > 0, got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise SettingsError(f"setting 'lr_decay': must lie in (0, 1], got {self.lr_decay}")
        if self.num_draws > MAX_DRAWS:
            raise SettingsError(
                f"setting 'num_draws': at most {MAX_DRAWS} (the draws are held in memory), "
                f"got {self.num_draws}"
            )
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise SettingsError(f"setting 'betas': two numbers in [0, 1), got {self.betas}")

    @property
    def torch_dtype(self) -> torch.dtype:
        """``dtype`` as a torch dtype."""
        return getattr(torch, self.dtype)

    @property
    def draws_per_checkpoint(self) -> int:
        """Draws stored at each checkpoint: ``checkpoint_draws``, at most ``num_draws``."""
        return min(self.checkpoint_draws, self.num_draws)


@dataclasses.dataclass
class Trace:
    """Training trace: mean loss over each block of ``trace_every`` steps and the loop's
    wall-clock time at its end; the checkpoints, K of them: their iterations (K,), loop seconds
    (K,) and draws (K, m, d) in float64; the seconds spent drawing them (not counted in the
    loop's time); whether the loop stopped on ``budget_seconds``; the method's own diagnostics
    of q at each checkpoint, name → (K,) (e.g. an exact KL where q's density is explicit)."""

    step: np.ndarray
    loss: np.ndarray
    elapsed: np.ndarray
    status: Literal["ok", "diverged"]
    iterations: int
    checkpoint_iteration: np.ndarray
    checkpoint_seconds: np.ndarray
    checkpoint_samples: np.ndarray
    checkpoint_overhead_seconds: float
    stopped_on_budget: bool
    checkpoint_diagnostics: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class FitResult:
    """Draws of the fitted q, the training trace, and scalar diagnostics of q computed at fit
    time (e.g. the ELBO sandwich of a semi-implicit q), which are reported with the metrics."""

    samples: Tensor
    trace: Trace
    diagnostics: dict[str, float] = dataclasses.field(default_factory=dict)


class Method(abc.ABC):
    """A variational method; subclasses declare ``Settings`` and implement :meth:`fit`.

    ``unsupported_targets`` maps the registered targets the method cannot run to the reason (any
    expression): the workflow reads it from the registry spec (:mod:`sivi_engine.spec`, without
    importing torch), leaves those runs out of the grid and the report lists them with the
    reason; ``train`` refuses them.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[CommonSettings]] = CommonSettings
    unsupported_targets: ClassVar[dict[str, str]] = {}
    #: The registered target and the settings (over the contract suite's short-run settings)
    #: of a short run that exercises the method: the shared contract tests run every
    #: registered method this way, so a new method needs no test list edited.
    smoke_target: ClassVar[str] = "banana"
    smoke_settings: ClassVar[Mapping[str, Any]] = {}
    #: The diagnostics a fit reports (``FitResult.diagnostics``, ``Trace.checkpoint_diagnostics``)
    #: with their metadata: ``always`` those every fit reports, ``sometimes`` and ``numbered``
    #: the rest (:class:`~sivi_engine.metric_metadata.Catalogue`; the contract suite checks both).
    diagnostics: ClassVar[Catalogue] = Catalogue()

    def memory_need(self, settings: CommonSettings, dim: int) -> tuple[str, int] | None:
        """The setting that sizes this method's largest working array on a ``dim``-dimensional
        target, and that array's bytes, where it grows faster than the draws (``train``
        refuses the run before it starts when it would not fit); None by default."""
        return None

    @abc.abstractmethod
    def fit(self, target: Target, settings: CommonSettings, device: torch.device) -> FitResult:
        """Train on ``target`` and return ``settings.num_draws`` draws of the fitted q.

        The caller seeds torch's generators before calling.
        """
