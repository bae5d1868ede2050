"""The contract every official-code driver keeps (``official*.py``), shared without torch,
TensorFlow or JAX: each driver runs under the interpreter of its own repository.

A driver is called as ``DRIVER --repo --script --config --seed --draws --out [--logp-at
POINTS.npy] [--set KEY=VALUE ...]`` in a scratch working directory laid out like the checkout,
and writes into ``--out``: ``draws.npy`` (float64, (N, d)), ``run.json`` (at least seed,
wall_seconds, threads, iterations, official_target, device, changed, official_config) and,
for a 2-D target with ``--logp-at``, ``official_logp.npy``: the official log-density there.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np


def parser(
    description: str, scripts: Iterable[str] | None, config_help: str
) -> argparse.ArgumentParser:
    """The drivers' command line; ``scripts`` are the allowed ``--script`` values (None: any)."""
    parsed = argparse.ArgumentParser(description=description)
    parsed.add_argument("--repo", type=Path, required=True)
    choices = sorted(scripts) if scripts is not None else None
    parsed.add_argument("--script", required=True, choices=choices)
    parsed.add_argument("--config", required=True, help=config_help)
    parsed.add_argument("--seed", type=int, required=True)
    parsed.add_argument("--draws", type=int, required=True)
    parsed.add_argument("--out", type=Path, required=True)
    parsed.add_argument("--logp-at", type=Path, default=None, help="points (.npy) for logp")
    parsed.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return parsed


def write_outputs(
    out: Path, draws: np.ndarray, record: Mapping[str, object], logp: np.ndarray | None = None
) -> None:
    """``draws.npy``, ``run.json`` and, when given, ``official_logp.npy`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "draws.npy", np.asarray(draws, dtype=np.float64))
    if logp is not None:
        np.save(out / "official_logp.npy", np.asarray(logp, dtype=np.float64))
    (out / "run.json").write_text(json.dumps(record, indent=1, default=str), "utf-8")
