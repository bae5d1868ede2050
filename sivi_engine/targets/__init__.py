"""Targets. Every module in this package that is not shared infrastructure registers its
targets in :data:`TARGETS`; all of them are imported here, so adding a target is adding one file."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from sivi_engine.settings import resolve
from sivi_engine.targets.base import Target
from sivi_engine.targets.registry import TARGETS

_INFRASTRUCTURE = {"base", "capabilities", "registry"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def make_target(name: str, overrides: Mapping[str, Any] | None = None) -> Target:
    """Build the registered target ``name`` with its settings overridden by ``overrides``."""
    cls = TARGETS[name]
    return cls(resolve(cls.Settings, overrides or {}, prefix="target."))


__all__ = ["TARGETS", "Target", "make_target"]
