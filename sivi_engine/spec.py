"""The registries as data: every registered method, target and reference engine with its
module and what it declares (a method's unsupported targets with their reasons, its
diagnostics with their metadata and its smoke run; each one's settings and defaults), read
from the classes themselves.

The workflow builds its grid at every Snakemake start (and on every cluster node) and must not
import torch there, so it reads this spec as JSON: ``python -m sivi_engine spec`` writes it
from the imported registries, and :func:`registry_spec` caches that output under the package
source's fingerprint (``$XDG_CACHE_HOME/sivi_engine/spec-<sha256>.json``), so the registries
are imported once per change to the package, in a subprocess, and never parsed from source.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from sivi_engine.settings import as_dict

PACKAGE_ROOT = Path(__file__).resolve().parent
#: Registry kind → (module holding the registry, its name); the spec's top-level keys.
REGISTRIES = {
    "methods": ("sivi_engine.methods", "METHODS"),
    "targets": ("sivi_engine.targets", "TARGETS"),
    "reference": ("sivi_engine.reference", "ENGINES"),
}


def source_fingerprint(root: Path = PACKAGE_ROOT) -> str:
    """SHA-256 of every ``.py`` file of the package (relative path and content)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def collect() -> dict[str, Any]:
    """The spec, from the imported registries (imports torch)."""
    import importlib

    spec: dict[str, Any] = {}
    for kind, (module, name) in REGISTRIES.items():
        registry = getattr(importlib.import_module(module), name)
        spec[kind] = {entry: _describe(kind, registry[entry]) for entry in registry.names()}
    return spec


def _describe(kind: str, cls: type) -> dict[str, Any]:
    entry: dict[str, Any] = {"module": cls.__module__}
    settings_cls = getattr(cls, "Settings", None)
    if settings_cls is not None:
        entry["settings"] = as_dict(settings_cls())
    if kind == "methods":
        entry |= {
            "unsupported_targets": dict(cls.unsupported_targets),
            "diagnostics": cls.diagnostics.as_dict(),
            "smoke_target": cls.smoke_target,
            "smoke_settings": dict(cls.smoke_settings),
        }
    return entry


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/sivi_engine`` (``~/.cache/sivi_engine`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sivi_engine"


@functools.cache
def registry_spec() -> dict[str, Any]:
    """The spec of the package as it is on disk: from the cache when its fingerprint matches,
    else from ``python -m sivi_engine spec`` in a subprocess (written to the cache atomically,
    so concurrent jobs may race to write it)."""
    path = cache_dir() / f"spec-{source_fingerprint()}.json"
    if path.is_file():
        return json.loads(path.read_text("utf-8"))
    done = subprocess.run(
        [sys.executable, "-m", "sivi_engine", "spec"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"python -m sivi_engine spec failed:\n{done.stderr[-2000:]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    partial.write_text(done.stdout, "utf-8")
    partial.replace(path)
    return json.loads(done.stdout)


def registered_modules(kind: str) -> dict[str, str]:
    """Registered name → defining module for one registry (``methods``, ``targets``,
    ``reference``)."""
    return {name: entry["module"] for name, entry in registry_spec()[kind].items()}


def unsupported_targets() -> dict[str, dict[str, str]]:
    """Method → {target: reason} for every method that declares targets it cannot run."""
    return {
        name: entry["unsupported_targets"]
        for name, entry in registry_spec()["methods"].items()
        if entry["unsupported_targets"]
    }
