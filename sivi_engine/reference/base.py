"""The reference-engine interface: a target -> draws (chain, draw, param) + diagnostics."""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import numpy as np

from sivi_engine.registry import Registry
from sivi_engine.targets.base import Target


@dataclasses.dataclass(frozen=True)
class ReferenceSettings:
    """Settings every engine understands: how many draws in total, and the seed."""

    num_draws: int = 10_000
    seed: int = 0


@dataclasses.dataclass
class ReferenceResult:
    draws: np.ndarray  # (chain, draw, param), float64
    diagnostics: dict[str, Any]
    #: Per-transition sampler statistics, each (chain, draw), under ArviZ's names (e.g. NUTS
    #: ``diverging``, ``lp``); stored with the dtypes of the ReferenceDraws schema.
    sample_stats: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    #: Engine label recorded in the artifact (e.g. "stan-nuts/pystan"); None: the registered name.
    engine: str | None = None


class ReferenceEngine(abc.ABC):
    name: ClassVar[str]
    Settings: ClassVar[type[ReferenceSettings]] = ReferenceSettings

    def check(self, target: Target, settings: ReferenceSettings) -> None:
        """Refuse, before any work, a target or settings this engine cannot run (a
        ``SettingsError`` naming what is missing); nothing by default. :meth:`run` may assume
        it passed."""
        return None

    @abc.abstractmethod
    def run(self, target: Target, settings: ReferenceSettings) -> ReferenceResult:
        """Draw ``settings.num_draws`` reference draws of ``target``."""

    def stored_draws(self, settings: ReferenceSettings) -> int:
        """How many draws :meth:`run` holds in memory (checked against the machine's before it
        starts): ``settings.num_draws``."""
        return settings.num_draws


ENGINES: Registry[type[ReferenceEngine]] = Registry("reference engine")
