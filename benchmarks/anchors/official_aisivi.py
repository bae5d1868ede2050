"""Train one AISIVI experiment (tpielok/AISIVI) at one of its shipped configs with a given seed,
and write its final draws: :mod:`official`'s contract for a repository laid out differently.

    python benchmarks/anchors/official_aisivi.py --repo PATH \\
        --script experiments/toy_examples/run.py --config banana/bsivi.yml \\
        --seed S --draws N --out DIR [--logp-at POINTS.npy] [--set num_epochs=30]

Run by :mod:`run` in a scratch working directory laid out like the experiment's folder
(``configs``, ``datasets``). The experiment's ``run.py`` is imported from ``--repo`` with the
checkout's root first on ``sys.path`` (it imports the package ``aisivi``, which needs PyPI's
``normflows``); its ``__main__`` block, which fixes the seed to 2022, does not run. From the
outside, this driver:

- builds the config as ``__main__`` does: ``aisivi.utils.parse_config(<config>,
  argparse.Namespace)`` (it sets the ``train:`` and ``sampling:`` keys as attributes of the
  class ``argparse.Namespace`` itself, one flat namespace) and ``config.method`` = the config
  file's stem (``aisivi`` or ``bsivi``);
- seeds torch, numpy and random and makes cudnn deterministic, with ``--seed`` for 2022;
- switches plotting off: ``visual_time`` past the last epoch, so the block that plots, logs KL
  estimates from fresh target draws and saves the model never runs (it does no training);
- keeps the trained model: ``main()`` returns nothing, so the module's ``AISivi`` is replaced
  by a subclass whose ``__init__`` records the instance and changes nothing else;
- calls ``main(config, res_path[, log_file])`` and draws with the model's own ``sample(n)``.

Outputs as :mod:`official`: ``draws.npy``, ``run.json`` and, with ``--logp-at``,
``official_logp.npy``.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import driver  # noqa: E402
from official import apply_overrides, seed_everything  # noqa: E402


def load_experiment(repo: Path, script: str) -> ModuleType:
    """Import ``experiments/<name>/run.py`` as a module, the checkout's root on ``sys.path``."""
    sys.path.insert(0, str(repo))
    name = "aisivi_" + Path(script).parent.name
    module_spec = importlib.util.spec_from_file_location(name, repo / script)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def record_instances(module: ModuleType, name: str) -> list:
    """Replace ``module.<name>`` by a subclass that appends every instance it builds to the
    returned list; nothing else about the class changes."""
    base = getattr(module, name)
    built: list = []

    def __init__(self, *args, **kwargs):  # noqa: N807
        base.__init__(self, *args, **kwargs)
        built.append(self)

    setattr(module, name, type(base.__name__, (base,), {"__init__": __init__}))
    return built


def main(argv: list[str] | None = None) -> None:
    parser = driver.parser(__doc__.splitlines()[0], None, "e.g. banana/bsivi.yml")
    # parsed before parse_config runs: it sets class attributes on argparse.Namespace
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["TQDM_DISABLE"] = "1"
    import torch

    repo = args.repo.resolve()
    module = load_experiment(repo, args.script)
    built = record_instances(module, "AISivi")
    import aisivi.utils

    config = aisivi.utils.parse_config(Path(args.config), argparse.Namespace)
    config.method = Path(args.config).stem
    changed: dict[str, object] = {"AISivi": "subclass recording the instance", "TQDM_DISABLE": 1}
    changed |= apply_overrides(config, args.set)
    before = config.visual_time
    config.visual_time = int(config.num_epochs) + 1
    changed["visual_time"] = [before, config.visual_time]

    res_path = Path("results") / Path(args.config).with_suffix("")
    res_path.mkdir(parents=True, exist_ok=True)
    takes_log = "log_file" in inspect.signature(module.main).parameters
    seed_everything(args.seed)
    start = time.perf_counter()
    if takes_log:
        module.main(config, res_path, res_path / "log.txt")
    else:
        module.main(config, res_path)
    wall = time.perf_counter() - start
    if len(built) != 1:
        raise SystemExit(f"expected main() to build one AISivi model, it built {len(built)}")
    model = built[0]
    with torch.no_grad():
        draws = model.sample(args.draws)[0].double().cpu().numpy()

    logp = None
    if args.logp_at is not None:
        target = module.target_distribution[config.target_score](model.device)
        with torch.no_grad():
            x = torch.as_tensor(np.load(args.logp_at), dtype=torch.float32, device=model.device)
            logp = target.logp(x).reshape(-1).double().cpu().numpy()
    outer = int(getattr(config, "outer_loop", 1))
    plain = (bool, int, float, str, type(None))
    record = {
        "seed": args.seed,
        "wall_seconds": wall,
        "threads": torch.get_num_threads(),
        "iterations": int(config.num_epochs) * outer,
        "official_target": config.target_score,
        "device": str(model.device),
        "changed": changed,
        "official_config": {  # config is the class argparse.Namespace, keys set on it
            key: value if isinstance(value, plain) else str(value)
            for key, value in vars(config).items()
            if not key.startswith("_") and not callable(value)
        },
    }
    driver.write_outputs(args.out, draws, record, logp)


if __name__ == "__main__":
    main()
