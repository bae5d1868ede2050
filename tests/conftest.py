"""Shared fixtures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sivi_engine import artifacts

# pytest runs with -n 2 on 2 cores: one torch thread per worker avoids oversubscription, which
# slows these small-tensor workloads several-fold.
torch.set_num_threads(1)


@pytest.fixture
def sample_set_ds():
    """A small valid SampleSet dataset, with 3 checkpoints of 10 draws."""
    rng = np.random.default_rng(0)
    return artifacts.sample_set(
        rng.normal(size=(50, 2)),
        ["x[0]", "x[1]"],
        step=np.array([10, 20]),
        loss=np.array([1.0, 0.5]),
        elapsed=np.array([0.1, 0.2]),
        checkpoint_samples=rng.normal(size=(3, 10, 2)),
        checkpoint_iteration=np.array([1, 10, 20]),
        checkpoint_seconds=np.array([0.01, 0.1, 0.2]),
        method="ksivi",
        label="ksivi",
        target="banana",
        target_settings="{}",
        seed=0,
        settings="{}",
        code_hash="abc",
        device="cpu",
        wall_seconds=0.2,
        iterations=20,
        status="ok",
        stopped_on_budget=0,
        checkpoint_overhead_seconds=0.001,
        diagnostics="{}",
        diagnostics_metadata="{}",
        versions="{}",
        created="2026-01-01T00:00:00+00:00",
    )
