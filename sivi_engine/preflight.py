"""The workflow's pre-flight check, torch-free: hand the plan of a config (every target and run
with the settings its jobs will get) to ``python -m sivi_engine check`` once, before any job,
and stop the workflow with its messages when it refuses something
(:mod:`sivi_engine.steps.check`). A plan that passed is remembered per package source
(``$XDG_CACHE_HOME/sivi_engine/check-<sha256>``), so a rerun with the same config and code
starts without the check's subprocess."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from sivi_engine.spec import cache_dir, source_fingerprint


class ConfigError(ValueError):
    """A config whose jobs a step would refuse: every refusal, one per line."""


def plan_key(plan: Mapping[str, Any]) -> str:
    """sha256 of the package source and the plan (canonical JSON)."""
    text = source_fingerprint() + json.dumps(plan, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check(plan: Mapping[str, Any]) -> None:
    """Refuse the plan (a :class:`ConfigError` listing every problem) unless every step accepts
    every job of it; a plan that passed before with this package source is not checked again."""
    marker = cache_dir() / f"check-{plan_key(plan)}"
    if marker.is_file():
        return
    done = subprocess.run(
        [sys.executable, "-m", "sivi_engine", "check"],
        input=json.dumps(plan, default=str),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 2:
        problems = done.stdout.strip() or done.stderr.strip()
        raise ConfigError(f"config: refused before any job ran:\n{problems}")
    if done.returncode != 0:
        raise RuntimeError(f"python -m sivi_engine check failed:\n{done.stderr[-2000:]}")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(done.stdout, "utf-8")
