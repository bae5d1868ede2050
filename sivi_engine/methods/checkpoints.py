"""Checkpoints along training: the iterations at which draws of q are stored, and a recorder
that stores them without touching the training's random numbers or its clock.

A checkpoint's draws are made inside :func:`torch.random.fork_rng`, which restores the host's
and the device's generators afterwards: a run follows the same path with or without
checkpoints, and a run stopped on a wall-clock budget is a prefix of the run without one. The
time spent drawing them is taken off the loop's clock and reported on its own, so that the
seconds along a curve are training time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import Tensor

from sivi_engine.methods.base import CommonSettings

Sampler = Callable[[int], Tensor]
"""n ↦ n draws (n, d) of the current q."""

Monitor = Callable[[], Mapping[str, float]]
"""Scalar diagnostics of the current q (e.g. an exact KL where q's density is explicit),
recorded at every checkpoint beside its draws."""

#: Mantissas of the default schedule: 1, 2, 5 × 10^k.
LOG_SCHEDULE_MANTISSAS = (1, 2, 5)


def log_schedule(iterations: int) -> tuple[int, ...]:
    """1, 2, 5, 10, 20, 50, … (1, 2, 5 × 10^k) below ``iterations``, then ``iterations``."""
    marks: list[int] = []
    scale = 1
    while scale < iterations:
        marks += [m * scale for m in LOG_SCHEDULE_MANTISSAS if m * scale < iterations]
        scale *= 10
    return (*marks, iterations)


def checkpoint_iterations(settings: CommonSettings) -> tuple[int, ...]:
    """A run's checkpoints: ``settings.checkpoints`` (empty: :func:`log_schedule`) and the last
    iteration, increasing, without repeats."""
    chosen = settings.checkpoints or log_schedule(settings.iterations)
    return tuple(sorted({*chosen, settings.iterations}))


class LoopClock:
    """Wall-clock seconds since the loop started, less the seconds excluded from it."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._excluded = 0.0

    def seconds(self) -> float:
        return time.perf_counter() - self._start - self._excluded

    def exclude(self, seconds: float) -> None:
        self._excluded += seconds


def isolated_draws(sample: Sampler, n: int, device: torch.device) -> np.ndarray:
    """``sample(n)`` as a float64 host copy, without an autograd graph, with torch's generators
    (the host's and ``device``'s) restored afterwards."""
    forked = [] if device.type == "cpu" else [device]
    with torch.random.fork_rng(devices=forked, device_type=device.type), torch.no_grad():
        return sample(n).to("cpu", torch.float64, copy=True).numpy()


def isolated_monitor(monitor: Monitor, device: torch.device) -> dict[str, float]:
    """``monitor()`` as floats, without an autograd graph, with torch's generators restored."""
    forked = [] if device.type == "cpu" else [device]
    with torch.random.fork_rng(devices=forked, device_type=device.type), torch.no_grad():
        return {name: float(value) for name, value in monitor().items()}


def synchronise(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a no-op on the CPU, which runs eagerly)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class CheckpointRecorder:
    """Stores ``draws`` draws of ``sample`` at each checkpoint, with its iteration, the loop's
    seconds and the values of ``monitor``; without a sampler it stores nothing and only reads
    the clock."""

    def __init__(
        self,
        sample: Sampler | None,
        draws: int,
        device: torch.device,
        monitor: Monitor | None = None,
    ) -> None:
        self.sample, self.draws, self.device, self.monitor = sample, draws, device, monitor
        self.iterations: list[int] = []
        self.seconds: list[float] = []
        self.samples: list[np.ndarray] = []
        self.diagnostics: dict[str, list[float]] = {}
        self.overhead_seconds = 0.0

    def seconds_now(self, clock: LoopClock) -> float:
        """The loop's seconds once the device's queued steps have run."""
        synchronise(self.device)
        return clock.seconds()

    def record(self, iteration: int, clock: LoopClock) -> None:
        """Store a checkpoint after ``iteration`` at the loop's seconds there (after the
        device's queued steps have run). The draws' time is taken off ``clock``."""
        loop_seconds = self.seconds_now(clock)
        if self.sample is None:
            return
        start = time.perf_counter()
        self.samples.append(isolated_draws(self.sample, self.draws, self.device))
        if self.monitor is not None:
            for name, value in isolated_monitor(self.monitor, self.device).items():
                self.diagnostics.setdefault(name, []).append(value)
        spent = time.perf_counter() - start
        clock.exclude(spent)
        self.overhead_seconds += spent
        self.iterations.append(iteration)
        self.seconds.append(loop_seconds)

    def diagnostics_arrays(self) -> dict[str, np.ndarray]:
        """The monitored values, one array of length K per name."""
        return {name: np.asarray(values) for name, values in self.diagnostics.items()}

    def samples_array(self) -> np.ndarray:
        """The stored draws, (K, m, d); (0, 0, 0) when none were stored."""
        return np.stack(self.samples) if self.samples else np.zeros((0, 0, 0))
