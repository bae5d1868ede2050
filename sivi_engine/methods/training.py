"""The shared optimisation loop: Adam with step decay, a device-side loss trace, checkpoints of
q (:mod:`sivi_engine.methods.checkpoints`), an optional wall-clock budget, a progress bar."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Protocol

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from sivi_engine.methods.base import CommonSettings, FitResult, Trace
from sivi_engine.methods.checkpoints import (
    CheckpointRecorder,
    LoopClock,
    Monitor,
    Sampler,
    checkpoint_iterations,
)

#: How often (in steps) the loop looks at the loss on the host, to stop a diverged run.
DIVERGENCE_CHECK_EVERY = 500


def progress_enabled() -> bool:
    """Progress bars only on an interactive terminal, never under CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def optimise(
    loss_fn: Callable[[int], Tensor],
    parameters: Iterable[torch.nn.Parameter],
    settings: CommonSettings,
    description: str = "training",
    optimiser: torch.optim.Optimizer | None = None,
    sample: Sampler | None = None,
    monitor: Monitor | None = None,
) -> Trace:
    """Minimise ``loss_fn(step)`` over ``parameters`` for ``settings.iterations`` Adam steps
    (or steps of ``optimiser``, built by the caller over the same parameters).

    Losses stay on the device during training (no host round-trip per step); the host reads
    them every ``DIVERGENCE_CHECK_EVERY`` steps to stop on a non-finite loss.

    After each checkpoint iteration (:func:`checkpoint_iterations`) and the last one run,
    ``sample(m)`` gives the stored draws of the current q, m = ``settings.draws_per_checkpoint``;
    without ``sample`` none are stored. ``monitor()``, where given, is recorded at the same
    checkpoints (its time, like the draws', is off the loop's clock). With
    ``settings.budget_seconds`` the loop looks at its clock at every checkpoint and every
    ``trace_every`` steps, and stops at the first look past the budget, which becomes its last
    checkpoint: a log-spaced schedule alone would overshoot a budget by up to 2.5×.
    """
    parameters = list(parameters)
    if optimiser is None:
        optimiser = torch.optim.Adam(parameters, lr=settings.lr, betas=tuple(settings.betas))
    schedule = torch.optim.lr_scheduler.StepLR(
        optimiser, step_size=settings.lr_decay_every, gamma=settings.lr_decay
    )
    device = parameters[0].device
    losses = torch.zeros(settings.iterations, dtype=torch.float64, device=device)
    block = settings.trace_every
    stamps = np.zeros(-(-settings.iterations // block))
    marks = set(checkpoint_iterations(settings))
    recorder = CheckpointRecorder(sample, settings.draws_per_checkpoint, device, monitor)
    budget = settings.budget_seconds
    status, on_budget = "ok", False
    done = 0
    clock = LoopClock()
    with tqdm(
        total=settings.iterations, desc=description, disable=not progress_enabled(), mininterval=1.0
    ) as bar:
        for step in range(settings.iterations):
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(step)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses[step] = loss.detach()
            done = step + 1
            finished = done == settings.iterations
            if done % DIVERGENCE_CHECK_EVERY == 0 and not torch.isfinite(losses[step]).item():
                status, finished = "diverged", True
            if budget is not None and not finished and (done in marks or done % block == 0):
                on_budget = finished = recorder.seconds_now(clock) >= budget
            if done in marks or finished:
                recorder.record(done, clock)
            if done % block == 0 or finished:
                stamps[(done - 1) // block] = clock.seconds()
                bar.update(done - bar.n)
            if finished:
                break
    return _trace(losses[:done].cpu().numpy(), stamps, block, status, done, recorder, on_budget)


class Variational(Protocol):
    """A trainable q: its torch parameters and a sampler of n draws (n, d) without gradients."""

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...

    def sample(self, n: int) -> Tensor: ...


def fit_variational(
    q: Variational,
    loss_fn: Callable[[int], Tensor],
    description: str,
    settings: CommonSettings,
    diagnose: Callable[[], Mapping[str, float]] | None = None,
    optimiser: torch.optim.Optimizer | None = None,
) -> FitResult:
    """The ending every method that trains one q shares: :func:`optimise` over q's parameters
    (storing q's draws at the checkpoints), then ``settings.num_draws`` draws of the fitted q
    and its diagnostics ``diagnose()`` (none by default), computed without gradients."""
    trace = optimise(
        loss_fn, q.parameters(), settings, description, optimiser=optimiser, sample=q.sample
    )
    samples = q.sample(settings.num_draws)
    with torch.no_grad():
        diagnostics = dict(diagnose()) if diagnose is not None else {}
    return FitResult(samples=samples, trace=trace, diagnostics=diagnostics)


def _trace(
    losses: np.ndarray,
    stamps: np.ndarray,
    block: int,
    status: str,
    done: int,
    recorder: CheckpointRecorder,
    on_budget: bool,
) -> Trace:
    if not np.isfinite(losses).all():
        status = "diverged"
    blocks = -(-done // block)
    padded = np.full(blocks * block, np.nan)
    padded[:done] = losses
    mean_loss = np.nanmean(padded.reshape(blocks, block), axis=1)
    step = np.minimum(np.arange(1, blocks + 1) * block, done)
    return Trace(
        step=step,
        loss=mean_loss,
        elapsed=stamps[:blocks],
        status=status,
        iterations=done,
        checkpoint_iteration=np.asarray(recorder.iterations, dtype=np.int64),
        checkpoint_seconds=np.asarray(recorder.seconds, dtype=np.float64),
        checkpoint_samples=recorder.samples_array(),
        checkpoint_diagnostics=recorder.diagnostics_arrays(),
        checkpoint_overhead_seconds=recorder.overhead_seconds,
        stopped_on_budget=on_budget,
    )


def chain_traces(traces: list[Trace]) -> Trace:
    """One trace of consecutive training loops (e.g. the stages of a sequential fit): steps and
    checkpoint iterations run on from one loop's last iteration, loop seconds from its last
    second; the status is "diverged" if any loop diverged. Checkpoint diagnostics are kept where
    every loop recorded them."""
    ends = [float(t.elapsed[-1]) if len(t.elapsed) else 0.0 for t in traces]
    iteration_offsets = np.cumsum([0] + [t.iterations for t in traces[:-1]])
    second_offsets = np.cumsum([0.0] + ends[:-1])
    shared = set.intersection(*(set(t.checkpoint_diagnostics) for t in traces))

    def joined(field: str, offsets: np.ndarray | None = None) -> np.ndarray:
        parts = [getattr(t, field) for t in traces]
        if offsets is not None:
            parts = [part + offset for part, offset in zip(parts, offsets)]
        return np.concatenate(parts)

    return Trace(
        step=joined("step", iteration_offsets),
        loss=joined("loss"),
        elapsed=joined("elapsed", second_offsets),
        status="diverged" if any(t.status == "diverged" for t in traces) else "ok",
        iterations=sum(t.iterations for t in traces),
        checkpoint_iteration=joined("checkpoint_iteration", iteration_offsets),
        checkpoint_seconds=joined("checkpoint_seconds", second_offsets),
        checkpoint_samples=joined("checkpoint_samples"),
        checkpoint_overhead_seconds=sum(t.checkpoint_overhead_seconds for t in traces),
        stopped_on_budget=traces[-1].stopped_on_budget,
        checkpoint_diagnostics={
            name: np.concatenate([t.checkpoint_diagnostics[name] for t in traces])
            for name in sorted(shared)
        },
    )
