"""Train one (problem, algorithm) of pvi's experiments (jenninglim/pvi, JAX) with a given seed,
and write its final draws: :mod:`official`'s contract for a repository whose scripts loop over
a grid of problems, reruns and algorithms and save no draws of the toys.

    python benchmarks/anchors/official_pvi.py --repo PATH --script scripts/sec_5.2/run.py \\
        --config banana-sm --seed S --draws N --out DIR [--logp-at POINTS.npy] \\
        [--set experiment.n_updates=200]

Run by :mod:`run` with the JAX interpreter the user names (``--python``; the repository's
``Pipfile.lock`` pins, plus ``mmdfuse``, which ``run.py`` imports), in a working directory
laid out like the checkout (``runner.py`` reads ``./data/waveform/waveform.mat``). The
script's module is imported from ``--repo`` (its typer command does not run) and this driver
does, with the module's own functions and tables, what the command does for one grid cell:

- ``scripts/sec_5.2/run.py`` (``config/toy-paper-run.yaml``): rerun 0 of ``<problem>`` with
  ``<algorithm>``, with the keys ``run.py --seed S`` hands that cell (its loop splits one key
  chain over ``PROBLEMS`` x ``n_reruns`` x ``ALGORITHMS``, :func:`toy_keys`), trained by its
  ``trainer``; the draws are ``id.sample(split(m_key, 3)[0], N)``, the model draws of the
  script's ``compute_w1`` for that cell (10000 there); no metrics, plots or pickles;
- ``scripts/sec_5.3/runner.py`` (``config/waveform.yaml``): rerun 0 with ``experiment.seed``
  set to ``--seed`` (2 in the YAML), trained by its ``subsample_trainer``; the draws are
  ``id.sample(key, N)`` as the script's ``0_samples.npy`` (1000 there); no plots.

``--set KEY=VALUE`` sets a dotted key of the YAML (``experiment.n_updates=200``, for tests).
Threads: ``OMP_NUM_THREADS`` (set by the runner) becomes XLA's CPU thread count. Outputs as
:mod:`official`; ``official_logp.npy`` is the official target's ``log_prob`` at the points.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import driver
import numpy as np

#: The YAML each script runs in the paper (``run.sh``), by script.
CONFIG_FILES = {
    "scripts/sec_5.2/run.py": "toy-paper-run",
    "scripts/sec_5.3/runner.py": "waveform",
}
#: The project method of each pvi algorithm (pvi's ``sm`` is SIVI-SM, ``svi`` SIVI, ``uvi``
#: UIVI; PVI itself has no project counterpart).
METHODS = {"pvi": "pvi", "sm": "sivi_sm", "svi": "sivi", "uvi": "uivi"}


def single_threaded_xla(threads: int) -> None:
    """Limit XLA's CPU client to ``threads`` threads (before jax is imported)."""
    flags = f"intra_op_parallelism_threads={threads}"
    if threads == 1:
        flags = "--xla_cpu_multi_thread_eigen=false " + flags
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()


def load_script(repo: Path, script: str) -> ModuleType:
    """Import the official script as a module, the checkout's root first on ``sys.path`` (it
    imports ``src.*``, as under ``PYTHONPATH=.``)."""
    sys.path.insert(0, str(repo))
    name = "pvi_" + Path(script).parent.name.replace(".", "_")
    module_spec = importlib.util.spec_from_file_location(name, repo / script)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def apply_overrides(config: dict, assignments: list[str]) -> dict[str, object]:
    """Set ``KEY=VALUE`` (dotted keys into the YAML, YAML values); ``{key: [before, after]}``."""
    import yaml

    changed: dict[str, object] = {}
    for assignment in assignments:
        key, _, text = assignment.partition("=")
        *path, leaf = key.split(".")
        node = config
        for part in path:
            node = node[part]
        if leaf not in node:
            raise SystemExit(f"--set {key}: the config has no such key")
        value = yaml.safe_load(text)
        changed[key] = [node[leaf], value]
        node[leaf] = value
    return changed


def toy_keys(seed: int, module: ModuleType, n_reruns: int, problem: str, algorithm: str):
    """``(trainer_key, init_key, m_key)`` that ``run.py --seed seed`` gives rerun 0 of
    ``problem`` with ``algorithm``: its loop's splits, replayed without training."""
    import jax

    key = jax.random.PRNGKey(seed)
    for name in module.PROBLEMS:
        for rerun in range(n_reruns):
            trainer_key, init_key, key = jax.random.split(key, 3)
            for algo in module.ALGORITHMS:
                m_key, key = jax.random.split(key, 2)
                if (name, rerun, algo) == (problem, 0, algorithm):
                    return trainer_key, init_key, m_key
            _, key = jax.random.split(key, 2)  # visualize_key
    raise SystemExit(f"{problem}/{algorithm} is not in the script's grid")


def train_toy(module: ModuleType, config: dict, problem: str, algorithm: str, seed: int):
    """One cell of ``run.py``'s grid; returns the target, the trained model, the key of its
    draws, the iteration count and the wall seconds of ``trainer``."""
    import jax

    experiment = config["experiment"]
    trainer_key, init_key, m_key = toy_keys(
        seed, module, experiment["n_reruns"], problem, algorithm
    )
    target = module.PROBLEMS[problem]()
    parameters = module.config_to_parameters(config, algorithm)
    step, carry = module.make_step_and_carry(init_key, parameters, target)
    metrics = module.compute_w1 if experiment["compute_metrics"] else None
    start = time.perf_counter()
    _, carry = module.trainer(
        trainer_key,
        carry,
        target,
        None,
        step,
        experiment["n_updates"],
        metrics=metrics,
        use_jit=experiment["use_jit"],
    )
    wall = time.perf_counter() - start
    draw_key = jax.random.split(m_key, 3)[0]
    return target, carry.id, draw_key, int(experiment["n_updates"]), wall


def train_waveform(module: ModuleType, config: dict, problem: str, algorithm: str, seed: int):
    """``runner.py``'s rerun 0; returns as :func:`train_toy`."""
    import jax

    experiment = config["experiment"]
    if problem != experiment["problem_name"]:
        raise SystemExit(f"the config trains {experiment['problem_name']}, not {problem}")
    parameters = module.config_to_parameters(config, algorithm)
    n_subsample = experiment["n_subsample"]
    key = jax.random.PRNGKey(seed)
    trainer_key, init_key, key = jax.random.split(key, 3)
    target = module.PROBLEMS[problem]()
    max_epoch = math.ceil(experiment["n_updates"] / (target.train_size / n_subsample))
    step, carry = module.make_step_and_carry(init_key, parameters, target)
    start = time.perf_counter()
    _, carry = module.subsample_trainer(
        trainer_key,
        carry,
        target,
        None,
        step,
        max_epoch,
        n_subsample,
        metrics=None,
        use_jit=experiment["use_jit"],
    )
    wall = time.perf_counter() - start
    per_epoch = math.ceil(target.train_size / min(n_subsample, target.train_size))
    return target, carry.id, key, max_epoch * per_epoch, wall


TRAINERS = {"scripts/sec_5.2/run.py": train_toy, "scripts/sec_5.3/runner.py": train_waveform}
DRAWS_FROM = {
    "scripts/sec_5.2/run.py": "id.sample(split(m_key, 3)[0], N): the model draws of the "
    "script's compute_w1 for this cell (N = 10000 there); run.py saves no draws",
    "scripts/sec_5.3/runner.py": "id.sample(key, N) as the script's 0_samples.npy (N = 1000 there)",
}


def official_logp(target: object, points: np.ndarray) -> np.ndarray:
    """The official target's ``log_prob(x, None)`` at ``points`` (float32, vmapped as the
    script's ``visualize`` does)."""
    import jax
    import jax.numpy as jnp

    log_p = jax.vmap(lambda x: target.log_prob(x, None))(jnp.asarray(points, jnp.float32))
    return np.asarray(log_p, np.float64)


def main(argv: list[str] | None = None) -> None:
    parser = driver.parser(__doc__.splitlines()[0], TRAINERS, "<problem>-<algorithm>: banana-sm")
    args = parser.parse_args(argv)
    problem, _, algorithm = args.config.partition("-")
    if algorithm not in METHODS:
        raise SystemExit(f"--config {args.config}: the algorithm is one of {sorted(METHODS)}")
    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count())
    single_threaded_xla(threads)
    os.environ |= {"TQDM_DISABLE": "1", "MPLBACKEND": "Agg"}
    import jax

    repo = args.repo.resolve()
    module = load_script(repo, args.script)
    config_file = Path(args.script).parent / "config" / f"{CONFIG_FILES[args.script]}.yaml"
    config = module.parse_config(repo / config_file)
    changed = apply_overrides(config, args.set)
    if "seed" in config["experiment"]:  # runner.py's seed is the YAML's
        changed["experiment.seed"] = [config["experiment"]["seed"], args.seed]
        config["experiment"]["seed"] = args.seed
    else:  # run.py loops over a grid
        changed["grid"] = f"only rerun 0 of {problem} with {algorithm}"
    changed |= {"draws": DRAWS_FROM[args.script], "TQDM_DISABLE": 1}
    target, model, draw_key, iterations, wall = TRAINERS[args.script](
        module, config, problem, algorithm, args.seed
    )
    draws = np.asarray(model.sample(draw_key, args.draws, None), np.float64)

    logp = None if args.logp_at is None else official_logp(target, np.load(args.logp_at))
    record = {
        "seed": args.seed,
        "wall_seconds": wall,
        "threads": threads,
        "iterations": iterations,
        "official_target": type(target).__name__,
        "device": jax.default_backend(),
        "method": METHODS[algorithm],
        "changed": changed,
        "official_config": {
            "config_file": str(config_file),
            "problem": problem,
            "algorithm": algorithm,
            "rerun": 0,
            "experiment": config["experiment"],
            algorithm: config[algorithm],
        },
    }
    driver.write_outputs(args.out, draws, record, logp)


if __name__ == "__main__":
    main()
