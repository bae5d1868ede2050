"""Reference engines. Every module in this package that is not shared infrastructure registers
its engine in :data:`ENGINES`; all of them are imported here (found on disk, so that a job's code
hash follows its own engine's module only)."""

import importlib
import pkgutil

from sivi_engine.reference.base import ENGINES, ReferenceEngine, ReferenceResult, ReferenceSettings

_INFRASTRUCTURE = {"base", "diagnostics"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ENGINES", "ReferenceEngine", "ReferenceResult", "ReferenceSettings"]
