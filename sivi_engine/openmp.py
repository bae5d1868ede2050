"""OpenMP wait policy for the command line, set before torch (and its libgomp) is loaded.

torch's CPU kernels run in libgomp parallel regions. Between regions, KSIVI's step runs serial
work (the host median selection, Python dispatch) that outlasts libgomp's default spin period,
so idle workers go to sleep and every next region pays a futex wake-up. ``OMP_WAIT_POLICY=ACTIVE``
keeps them spinning: on banana at paper settings with 2 threads this took KSIVI from 3.0–4.6 s
(bimodal, run to run) to 3.3–3.6 s per 1000 iterations (``benchmarks/results/ksivi_goal.json``).
Spinning workers hold their cores, so this suits a job that owns the cores it uses (one
Snakemake job per ``threads_per_job`` cores, one SLURM task per ``cpus_per_task``); a value the
user has set is kept.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

#: libgomp's settings for the command line: spin rather than sleep between parallel regions.
WAIT_POLICY = {"OMP_WAIT_POLICY": "ACTIVE"}


def prefer_spinning_workers(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set :data:`WAIT_POLICY` in ``environ`` where unset; must run before ``import torch``."""
    for name, value in WAIT_POLICY.items():
        environ.setdefault(name, value)
