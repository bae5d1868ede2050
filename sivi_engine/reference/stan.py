"""Stan NUTS reference draws, through CmdStan (cmdstanpy) or the Stan bundled with pystan.

A target that supports Stan names its program (``stan_program``, a file in
``sivi_engine/targets/stan/``) and returns the program's data block (``stan_data()``). The
program's first ``target.dim`` outputs — Stan writes the ``parameters`` block first, in
declaration order, arrays flattened column-major — must be the target's parameter vector in
order; a check of Stan's ``lp__`` against ``target.log_prob`` on a subset of draws (which must
differ by a constant) catches a program, a data set or an ordering that disagrees with the
torch target.

Backends (setting ``backend``): ``cmdstanpy`` when a CmdStan installation is found (the
``CMDSTAN`` variable or cmdstanpy's default ``~/.cmdstan``), ``pystan`` otherwise (Stan and
stanc ship in its wheels; a C++ compiler is needed). ``auto`` picks in that order.

Compile cache: compiled programs are reused by every job and keyed by program text, so a seed
or data change never recompiles. ``$SIVI_STAN_CACHE`` sets the cache root (default: httpstan's
own cache, ``$XDG_CACHE_HOME/httpstan``, for pystan and ``$XDG_CACHE_HOME/sivi_engine/cmdstan``
for cmdstanpy, with ``$XDG_CACHE_HOME`` defaulting to ``~/.cache``). Builds take a file lock in
the cache, so concurrent jobs compile a program once.

Draw counts: ``num_draws`` is the total number of kept draws; each of the ``chains`` chains
keeps ``num_draws / chains`` of them (``num_draws`` must be a multiple of ``chains``) and runs
``warmup`` adaptation iterations then ``thin · num_draws / chains`` sampling iterations.

pystan pitfall: pystan runs its own asyncio event loop (``asyncio.run``), so this engine works
from scripts and the CLI but not from inside a running event loop (e.g. a Jupyter cell; use
the CLI or the cmdstanpy backend there). httpstan also caches the fits of seeded runs on disk;
this engine deletes the fits it made, so nothing accumulates. (Sampling against a private fit
cache that links the compiled model instead loads the model library twice and aborts the
process at exit.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.metadata
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from sivi_engine.reference.base import ENGINES, ReferenceEngine, ReferenceResult
from sivi_engine.reference.diagnostics import (
    GatedSettings,
    enforce_gate,
    gate_record,
    summarise,
)
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target
from sivi_engine.targets.capabilities import StanModel

#: Stan programs of the targets.
PROGRAM_DIR = Path(__file__).resolve().parent.parent / "targets" / "stan"
#: Environment variable holding the compile-cache root.
CACHE_ENV = "SIVI_STAN_CACHE"
#: Stored sample statistic (ArviZ's name of it) -> Stan's output column.
SAMPLE_STATS = {
    "diverging": "divergent__",
    "tree_depth": "treedepth__",
    "n_steps": "n_leapfrog__",
    "step_size": "stepsize__",
    "acceptance_rate": "accept_stat__",
    "energy": "energy__",
    "lp": "lp__",
}
#: Draws (evenly spaced) on which Stan's lp__ is compared with target.log_prob.
LP_CHECK_DRAWS = 100
#: Largest accepted spread of lp__ − log_prob over those draws, relative to 1 + sd(lp__):
#: both are float64 evaluations of the same density up to a constant (Stan writes draws with
#: 17 significant digits here), so a disagreeing model or ordering is off by O(1) or more.
LP_CHECK_TOLERANCE = 1e-6


@dataclasses.dataclass(frozen=True)
class StanSettings(GatedSettings):
    """NUTS (diagonal metric, adapted) settings; defaults are Stan's, with 4 chains."""

    backend: Literal["auto", "pystan", "cmdstanpy"] = "auto"
    chains: int = 4
    warmup: int = 1000
    thin: int = 1
    adapt_delta: float = 0.8
    max_treedepth: int = 10

    def validate(self) -> None:
        super().validate()
        for field in ("thin", "max_treedepth"):
            if getattr(self, field) < 1:
                raise SettingsError(f"setting {field!r} must be ≥ 1, got {getattr(self, field)!r}")
        if self.warmup < 0:
            raise SettingsError(f"setting 'warmup' must be ≥ 0, got {self.warmup!r}")
        if not 0 < self.adapt_delta < 1:
            raise SettingsError(
                f"setting 'adapt_delta' must be in (0, 1), got {self.adapt_delta!r}"
            )


@dataclasses.dataclass
class StanRun:
    """What a backend returns: the target's coordinates and the sampler statistics."""

    draws: np.ndarray  # (chain, draw, param), float64
    sample_stats: dict[str, np.ndarray]  # SAMPLE_STATS keys, each (chain, draw), float64
    compile_seconds: float
    sampling_seconds: float


Backend = Callable[[str, Mapping[str, Any], int, StanSettings], StanRun]


def cache_root() -> Path | None:
    """``$SIVI_STAN_CACHE`` if set, else None (each backend's default)."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else None


@contextlib.contextmanager
def _environment(name: str, value: str | os.PathLike[str] | None) -> Iterator[None]:
    """Set (or, for None, leave) an environment variable for the duration of the block."""
    if value is None:
        yield
        return
    old = os.environ.get(name)
    os.environ[name] = str(value)
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing) between processes.

    A POSIX record lock (``lockf``), not ``flock``: httpstan forks worker processes while the
    lock is held, and an inherited ``flock`` would stay held by them after the block ends.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)
        yield


def _chain_major(flat: np.ndarray, chains: int) -> np.ndarray:
    """pystan's (..., draw·chain) with the chain index fastest -> (chain, draw, ...)."""
    stacked = flat.reshape(*flat.shape[:-1], -1, chains)
    return np.moveaxis(stacked, (-1, -2), (0, 1))


def run_pystan(program: str, data: Mapping[str, Any], dim: int, settings: StanSettings) -> StanRun:
    """NUTS through pystan 3 / httpstan; the compiled model is cached by program text."""
    with warnings.catch_warnings():  # pystan's plugin loader imports the deprecated pkg_resources
        warnings.filterwarnings(
            "ignore", message="pkg_resources is deprecated", category=UserWarning
        )
        import httpstan.cache
        import stan

    with _environment("XDG_CACHE_HOME", cache_root()):  # httpstan's cache follows appdirs
        start = time.perf_counter()
        with _file_lock(httpstan.cache.cache_directory() / "sivi_engine-build.lock"):
            model = stan.build(program, data=dict(data), random_seed=settings.seed)
        compile_seconds = time.perf_counter() - start
        fits = httpstan.cache.model_directory(model.model_name) / "fits"
        # httpstan stores every seeded fit in the shared cache; delete the ones made here (under
        # a per-model lock, so no concurrent job's fit is taken for ours).
        with _file_lock(fits.parent / "sivi_engine-sample.lock"):
            before = set(fits.glob("*"))
            start = time.perf_counter()
            fit = model.sample(
                num_chains=settings.chains,
                num_warmup=settings.warmup,
                num_samples=settings.draws_per_chain * settings.thin,
                num_thin=settings.thin,
                delta=settings.adapt_delta,
                max_depth=settings.max_treedepth,
            )
            sampling_seconds = time.perf_counter() - start
            for path in set(fits.glob("*")) - before:
                path.unlink()

    flat = np.concatenate(
        [fit[name].reshape(-1, fit[name].shape[-1], order="F") for name in fit.param_names]
    )
    return StanRun(
        draws=_chain_major(flat[:dim], settings.chains),
        sample_stats={
            name: _chain_major(fit[column][0], settings.chains).astype(np.float64)
            for name, column in SAMPLE_STATS.items()
        },
        compile_seconds=compile_seconds,
        sampling_seconds=sampling_seconds,
    )


def run_cmdstanpy(
    program: str, data: Mapping[str, Any], dim: int, settings: StanSettings
) -> StanRun:
    """NUTS through CmdStan; the executable is built once per program text in the cache."""
    import cmdstanpy

    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = cache_root() or user_cache / "sivi_engine"
    program_dir = root / "cmdstan" / hashlib.sha256(program.encode()).hexdigest()[:16]
    stan_file = program_dir / "model.stan"
    start = time.perf_counter()
    with _file_lock(program_dir / "build.lock"):
        if not stan_file.is_file():
            stan_file.write_text(program)
        model = cmdstanpy.CmdStanModel(stan_file=stan_file)  # compiles unless the exe is current
    compile_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="sivi-cmdstan-") as output_dir:
        start = time.perf_counter()
        fit = model.sample(
            data=dict(data),
            chains=settings.chains,
            seed=settings.seed,
            iter_warmup=settings.warmup,
            iter_sampling=settings.draws_per_chain * settings.thin,
            thin=settings.thin,
            adapt_delta=settings.adapt_delta,
            max_treedepth=settings.max_treedepth,
            sig_figs=18,  # full float64 in CmdStan's CSV (its default keeps 6 digits)
            output_dir=output_dir,
            show_progress=False,
        )
        sampling_seconds = time.perf_counter() - start
        table = np.moveaxis(fit.draws(), 0, 1)  # (chain, draw, column)
        columns = list(fit.column_names)
    outputs = [i for i, name in enumerate(columns) if not name.endswith("__")]
    return StanRun(
        draws=table[:, :, outputs[:dim]].astype(np.float64),
        sample_stats={
            name: table[:, :, columns.index(column)].astype(np.float64)
            for name, column in SAMPLE_STATS.items()
        },
        compile_seconds=compile_seconds,
        sampling_seconds=sampling_seconds,
    )


BACKENDS: dict[str, Backend] = {"pystan": run_pystan, "cmdstanpy": run_cmdstanpy}


def cmdstan_found() -> bool:
    """Whether cmdstanpy finds a valid CmdStan (``$CMDSTAN`` or ``~/.cmdstan``)."""
    try:
        import cmdstanpy

        cmdstanpy.cmdstan_path()
    except (ImportError, ValueError):
        return False
    return True


def resolve_backend(requested: str) -> str:
    """``auto`` -> cmdstanpy when CmdStan is found, else pystan; an explicit cmdstanpy needs
    CmdStan."""
    if requested == "auto":
        return "cmdstanpy" if cmdstan_found() else "pystan"
    if requested == "cmdstanpy" and not cmdstan_found():
        raise SettingsError(
            "setting 'backend': cmdstanpy needs a CmdStan installation (set CMDSTAN or run "
            "cmdstanpy's install_cmdstan); use backend=pystan or auto"
        )
    return requested


def stan_program(target: Target) -> tuple[str, str]:
    """(file name, program text) of the target's Stan program."""
    if not isinstance(target, StanModel):
        raise SettingsError(
            f"reference engine 'stan': target {target.name!r} has no Stan program (targets "
            "declare one by inheriting sivi_engine.targets.capabilities.StanModel)"
        )
    name = target.stan_program
    path = PROGRAM_DIR / name
    if not path.is_file():
        raise SettingsError(
            f"reference engine 'stan': target {target.name!r} names a missing Stan program {path}"
        )
    return name, path.read_text()


def lp_mismatch(target: Target, draws: np.ndarray, lp: np.ndarray) -> float:
    """Spread (max − min) of lp__ − target.log_prob over LP_CHECK_DRAWS evenly spaced draws,
    relative to 1 + sd(lp__); ≈ 0 when the Stan program and the torch target agree."""
    flat_draws = draws.reshape(-1, draws.shape[-1])
    flat_lp = lp.reshape(-1)
    pick = np.linspace(0, len(flat_lp) - 1, min(LP_CHECK_DRAWS, len(flat_lp))).round().astype(int)
    with torch.no_grad():
        torch_lp = target.log_prob(torch.as_tensor(flat_draws[pick])).numpy()
    offset = flat_lp[pick] - torch_lp
    return float(np.ptp(offset) / (1 + flat_lp[pick].std()))


@ENGINES.register("stan")
class StanEngine(ReferenceEngine):
    """NUTS draws of the target's Stan program, gated by R̂, ESS, divergences and E-BFMI."""

    name = "stan"
    Settings = StanSettings

    def check(self, target: Target, settings: StanSettings) -> None:  # type: ignore[override]
        stan_program(target)
        resolve_backend(settings.backend)

    def run(self, target: Target, settings: StanSettings) -> ReferenceResult:  # type: ignore[override]
        program_file, program = stan_program(target)
        backend = resolve_backend(settings.backend)
        run = BACKENDS[backend](program, target.stan_data(), target.dim, settings)
        label = f"stan-nuts/{backend}"
        stats = run.sample_stats
        summary = summarise(run.draws, energy=stats["energy"], divergent=stats["diverging"])
        mismatch = lp_mismatch(target, run.draws, stats["lp"])
        if not mismatch <= LP_CHECK_TOLERANCE:
            raise SettingsError(
                f"reference engine 'stan': Stan program {program_file} disagrees with target "
                f"{target.name!r} (lp__ − log_prob varies by {mismatch:.3g} relative to the lp "
                "scale): the program, its data or its parameter order differ from the target"
            )
        enforce_gate(summary, settings, f"{label} reference of {target.name!r}")
        diagnostics = summary | {
            "engine": label,
            "backend_version": importlib.metadata.version(backend),
            "stan_program": program_file,
            "stan_program_sha256": hashlib.sha256(program.encode()).hexdigest()[:16],
            "draws_per_chain": settings.draws_per_chain,
            "treedepth_saturated": int(np.sum(stats["tree_depth"] >= settings.max_treedepth)),
            "lp_mismatch": mismatch,
            "compile_seconds": run.compile_seconds,
            "sampling_seconds": run.sampling_seconds,
            "gate": gate_record(summary, settings, enforced=True),
        }
        return ReferenceResult(
            draws=run.draws, diagnostics=diagnostics, sample_stats=stats, engine=label
        )
