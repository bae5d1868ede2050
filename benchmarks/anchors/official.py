"""Train one official script at one of its shipped configs with a given seed, and write its
final draws.

    python benchmarks/anchors/official.py --repo PATH --script NAME --config NAME.yml \\
        --seed S --draws N --out DIR

Run by :mod:`run` in a scratch working directory laid out like the checkout (``configs``,
``datasets``, the SGLD traces), because the official scripts read everything relative to the
working directory. The script's module is imported from ``--repo`` (its ``__main__`` block,
which fixes the seed to 2022, does not run); this driver does what that block does with the
given seed instead, switches plotting off (:class:`scripts.OfficialScript`), calls ``learn()``
and draws ``--draws`` points from the trained generator with its own ``sampling()``.

Writes ``DIR/draws.npy`` (float64, (N, d)), ``DIR/run.json`` (seed, wall seconds of
``learn()``, threads, iterations, the official target and the config as parsed) and, for a
2-D target, ``DIR/official_logp.npy``: the official ``logp`` at the points in ``--logp-at``
(an ``.npy`` of (M, 2) points), for the runner's density check.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import random
import sys
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import driver  # noqa: E402
from scripts import SCRIPTS, OfficialScript  # noqa: E402


def load_script(repo: Path, spec: OfficialScript) -> ModuleType:
    """Import the official script as a module (not as ``__main__``) with the checkout first on
    ``sys.path``, so its own ``models``/``utils`` packages are the ones found."""
    sys.path.insert(0, str(repo))
    module_spec = importlib.util.spec_from_file_location(Path(spec.script).stem, repo / spec.script)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def parse_official_config(module: ModuleType, spec: OfficialScript, config: str) -> object:
    """The script's config namespace, built by the script's own ``parse_config`` from argv."""
    parser_module = importlib.import_module(spec.config_module) if spec.config_module else module
    saved = sys.argv
    sys.argv = [spec.script, "--config", config, *spec.argv]
    try:
        return parser_module.parse_config()
    finally:
        sys.argv = saved


def seed_everything(seed: int) -> None:
    """What the scripts' ``__main__`` blocks do, with ``seed`` for their fixed 2022."""
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    np.random.seed(seed)
    random.seed(seed)
    torch.backends.cudnn.deterministic = True


def plots_off(module: ModuleType, spec: OfficialScript, config: object) -> dict[str, object]:
    """Switch the script's plotting off; returns what was changed, for the run record."""
    changed: dict[str, object] = {}
    if spec.plots_every_visual_time:
        before = config.sampling.visual_time
        config.sampling.visual_time = config.train.num_epochs + 1
        changed["sampling.visual_time"] = [before, config.sampling.visual_time]
    target_class = module.target_distribution[config.target_score]
    for name in spec.plots:
        for klass in target_class.__mro__:
            if name in vars(klass):
                setattr(klass, name, lambda self, *args, **kwargs: None)
        changed[f"{target_class.__name__}.{name}"] = "no-op"
    return changed


def apply_overrides(config: object, assignments: list[str]) -> dict[str, object]:
    """Set ``KEY=VALUE`` (dotted keys into the namespace, YAML values) on the parsed config,
    for an option the shipped config offers in a comment (e.g. ``train.ustat=true``);
    returns ``{key: [before, after]}``."""
    import yaml

    changed: dict[str, object] = {}
    for assignment in assignments:
        key, _, text = assignment.partition("=")
        *path, leaf = key.split(".")
        node = config
        for part in path:
            node = getattr(node, part)
        if not hasattr(node, leaf):
            raise SystemExit(f"--set {key}: the config has no such key")
        value = yaml.safe_load(text)
        changed[key] = [getattr(node, leaf), value]
        setattr(node, leaf, value)
    return changed


def official_logp(task: object, points: np.ndarray) -> np.ndarray:
    """The official target's ``logp`` at ``points`` (float32, as the scripts compute)."""
    with torch.no_grad():
        x = torch.as_tensor(points, dtype=torch.float32, device=task.device)
        return task.target_model.logp(x).reshape(-1).double().cpu().numpy()


def held_out(task: object, draws: torch.Tensor) -> dict[str, object]:
    """For a BNN script (its target has ``rmse_llk``): the official code's own test RMSE and
    log-likelihood of ``draws`` on its own split, and the split's numbers the project needs to
    score the draws itself (log γ, log λ, the training response's mean and sd, the sizes);
    nothing for other scripts."""
    target = getattr(task, "target_model", None)
    if not hasattr(target, "rmse_llk") or not hasattr(task, "X_test"):
        return {}
    with torch.no_grad():
        rmse, llk = target.rmse_llk(
            draws.to(task.device), task.X_test, task.y_test, task.y_train_mean, task.y_train_std
        )
    return {
        "official_scores": {"rmse": rmse, "test_log_likelihood": llk, "draws": len(draws)},
        "official_data": {
            "log_noise_precision": float(task.loggamma_hyp),
            "log_prior_precision": float(task.loglambda_hyp),
            "y_train_mean": float(task.y_train_mean.item()),
            "y_train_sd": float(task.y_train_std.item()),
            "train_rows": int(task.X_train.shape[0]),
            "dev_rows": int(task.X_dev.shape[0]),
            "test_rows": int(task.X_test.shape[0]),
            "sto_batchsize": int(task.trainpara.sto_batchsize),
        },
    }


def main(argv: list[str] | None = None) -> None:
    description = __doc__.splitlines()[0]
    args = driver.parser(description, SCRIPTS, "a config under configs/").parse_args(argv)

    spec = SCRIPTS[args.script]
    repo = args.repo.resolve()
    module = load_script(repo, spec)
    config = parse_official_config(module, spec, args.config)
    config.log_path = str(Path("anchor_logs") / config.target_score)
    Path(config.log_path).mkdir(parents=True, exist_ok=True)
    # KSIVI's learn() logs through a module-level `logger` its __main__ block creates; it goes
    # to stdout too, so that its held-out figures (the BNN's) land in the runner's log
    logging.basicConfig(
        level=logging.INFO,
        handlers=[
            logging.FileHandler(Path(config.log_path) / "final.log"),
            logging.StreamHandler(sys.stdout),
        ],
    )
    module.logger = logging.getLogger(spec.script)
    changed = plots_off(module, spec, config) | apply_overrides(config, args.set)
    for name, value in spec.config_attrs:
        setattr(config, name, value)
        changed[name] = value

    seed_everything(args.seed)
    task_class = getattr(module, spec.task)
    task = task_class("", config=config) if spec.task_takes_date else task_class(config)
    start = time.perf_counter()
    task.learn()
    wall = time.perf_counter() - start
    # SIVI-SM draws its generator's input as sigma_ini · N(0, I) (1 in every shipped config)
    sigma = {"sigma": config.train.sigma_ini} if hasattr(config.train, "sigma_ini") else {}
    with torch.no_grad():
        draws32 = task.SemiVInet.sampling(num=args.draws, **sigma)
    draws = draws32.double().cpu().numpy()

    logp = official_logp(task, np.load(args.logp_at)) if args.logp_at is not None else None
    record = {
        "seed": args.seed,
        "wall_seconds": wall,
        "threads": torch.get_num_threads(),
        "iterations": int(task.num_iters),
        "official_target": config.target_score,
        "device": str(task.device),
        "changed": changed,
        "official_config": _plain(config),
    } | held_out(task, draws32)
    driver.write_outputs(args.out, draws, record, logp)


def _plain(namespace: object) -> object:
    """A config namespace as plain JSON values (nested namespaces become dicts)."""
    if isinstance(namespace, argparse.Namespace | SimpleNamespace):
        return {k: _plain(v) for k, v in vars(namespace).items() if k != "logger"}
    if isinstance(namespace, (bool, int, float, str)) or namespace is None:
        return namespace
    return str(namespace)


if __name__ == "__main__":
    main()
