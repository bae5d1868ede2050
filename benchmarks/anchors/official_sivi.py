"""Train one of SIVI's TensorFlow 1 scripts (mingzhang-yin/SIVI) on one of its targets with a
given seed, and write its final draws: :mod:`official`'s contract for a repository of flat
scripts with no functions, no config files and no seed.

    python benchmarks/anchors/official_sivi.py --repo PATH --script SIVI_2d.py \\
        --config xshape --seed S --draws N --out DIR [--logp-at POINTS.npy] \\
        [--set iterations=200]

Run by :mod:`run` with the TensorFlow 2 interpreter the user names (``--python``; it needs
numpy, tensorflow and tf_slim only): TensorFlow 1, which the scripts were written for, has no
wheel for Python 3.8 or later. The script is read from ``--repo`` and executed as
``__main__`` in the working directory (laid out like the checkout's ``data/`` for SIVI_LR.py,
which reads ``./waveform.mat``). What this driver changes, in memory only (every change is
listed in ``run.json``'s ``changed``):

- ``import tensorflow as tf`` gets ``tensorflow.compat.v1`` with v2 behaviour disabled; the
  ``tf.contrib`` names the scripts use are supplied: ``slim`` is ``tf_slim``,
  ``fill_triangular`` a re-implementation of contrib's documented layout
  (:func:`fill_triangular`), the distributions SIVI_LR.py builds and never uses stand-ins;
- ``seaborn``, imported for the plots, is a stand-in when it is not installed;
- the target: the line ``data_number = "9"`` names the config's entry of the script's own
  ``data_p`` table (SIVI_2d.py's only switch between its targets);
- the seed: ``tf.set_random_seed(seed)`` and ``np.random.seed(seed)`` before the script runs
  (the script sets none, so the official runs are not reproducible);
- the source is cut where the plotting starts (``X,Y = np.mgrid`` in SIVI_2d.py, ``def
  evaluate(`` in SIVI_LR.py), after the script's own final draws (``r_sivi``, ``theta_hive``);
- ``--set iterations=N`` (for tests only) shortens the training loop ``for i in range(5000)``.

The final draws are the script's own, topped up with further batches of its ``z_sample`` (each
row an independent draw of q) to ``--draws``. With ``--logp-at``, ``official_logp.npy`` holds
the script's ``log_P`` evaluated at those points by feeding them as ``z_sample``.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import time
import types
from pathlib import Path

import driver
import numpy as np

#: The training loop: the ``for`` whose body starts with the ``train_op1`` step.
TRAINING_LOOP = re.compile(
    r"^for i in range\((\d+)\):(?=\n\s*_,\s*cost\s*=\s*sess\.run\(\[train_op1)", re.M
)
#: Where each script's plotting tail starts (everything from here on is cut).
PLOT_TAILS = {"SIVI_2d.py": "X,Y = np.mgrid", "SIVI_LR.py": "def evaluate("}
#: The script's own final draws, by script.
FINAL_DRAWS = {"SIVI_2d.py": "r_sivi", "SIVI_LR.py": "theta_hive"}
#: Scalars of the script's namespace recorded as its config.
SETTINGS = ("data_number", "target", "noise_dim", "K", "alpha", "N", "P")


def replace_once(source: str, old: str, new: str) -> str:
    """``source`` with its one occurrence of ``old`` replaced; fails loudly otherwise."""
    if source.count(old) != 1:
        raise SystemExit(f"expected one {old!r} in the script, found {source.count(old)}")
    return source.replace(old, new)


def fill_triangular(x: object) -> object:
    """contrib's ``fill_triangular`` (lower): the vector ``x`` of length n(n+1)/2 laid out as
    in its documentation, ``[1, ..., 6]`` -> ``[[4, 0, 0], [6, 5, 0], [3, 2, 1]]``: the tail
    ``x[n:]`` followed by ``x`` reversed, read row by row, upper triangle zeroed."""
    import tensorflow.compat.v1 as tf

    length = int(x.shape[-1])
    n = int((np.sqrt(8 * length + 1) - 1) / 2)
    square = tf.reshape(tf.concat([x[n:], tf.reverse(x, [0])], 0), [n, n])
    return tf.linalg.band_part(square, -1, 0)


def _unused(name: str) -> object:
    def stand_in(*args: object, **kwargs: object) -> None:
        return None

    stand_in.__name__ = name
    return stand_in


def install_tf1(threads: int) -> tuple[object, dict[str, str]]:
    """Make ``import tensorflow as tf`` (and the scripts' ``tf.contrib`` names) resolve to
    ``tensorflow.compat.v1`` with ``threads`` threads; returns it and what was changed."""
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[name] = str(threads)
    from importlib.metadata import version

    import tensorflow.compat.v1 as tf
    import tf_slim

    tf.disable_v2_behavior()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    unused = ("Exponential", "Normal", "MultivariateNormalDiag", "Bernoulli")
    distributions = types.ModuleType("tensorflow.contrib.distributions")
    distributions.fill_triangular = fill_triangular
    for name in unused:
        setattr(distributions, name, _unused(name))
    contrib = types.ModuleType("tensorflow.contrib")
    contrib.slim, contrib.distributions = tf_slim, distributions
    tf.contrib = contrib
    sys.modules |= {
        "tensorflow": tf,
        "tensorflow.contrib": contrib,
        "tensorflow.contrib.distributions": distributions,
    }
    changed = {
        "tensorflow": "tensorflow.compat.v1 with v2 behaviour disabled (TensorFlow 1 has no "
        f"wheel for Python >= 3.8); {tf.version.VERSION}, {threads} thread(s)",
        "tf.contrib.slim": f"tf_slim {version('tf-slim')}",
        "tf.contrib.distributions.fill_triangular": "re-implemented: contrib's documented "
        "lower layout (tail x[n:], then x reversed, row by row)",
        "tf.contrib.distributions." + "/".join(unused): "stand-ins (built, never used)",
    }
    return tf, changed


def install_seaborn() -> dict[str, str]:
    """A stand-in ``seaborn`` when it is not installed (only the cut plotting tail uses it)."""
    try:
        import seaborn  # noqa: F401
    except ImportError:
        sys.modules["seaborn"] = types.ModuleType("seaborn")
        return {"seaborn": "stand-in module (only the plotting tail, which is cut, uses it)"}
    return {}


def cut_at(source: str, marker: str) -> str:
    """``source`` up to its one occurrence of ``marker``."""
    if source.count(marker) != 1:
        raise SystemExit(f"expected one {marker!r} in the script, found {source.count(marker)}")
    return source[: source.index(marker)]


def select_target(source: str, config: str) -> tuple[str, dict[str, object]]:
    """Point ``data_number`` at the entry of the script's ``data_p`` named ``config`` (case
    aside); a script without ``data_p`` has one target, named by any config."""
    table = re.search(r"^data_p = (\{.*\})$", source, re.M)
    if table is None:
        return source, {}
    targets = ast.literal_eval(table.group(1))
    numbers = [number for number, name in targets.items() if name.lower() == config.lower()]
    if len(numbers) != 1:
        raise SystemExit(f"--config {config!r} names none of the script's targets {targets}")
    line = re.search(r'^data_number = "(\w+)"$', source, re.M)
    if line is None:
        raise SystemExit('the script has no line data_number = "..."')
    new = f'data_number = "{numbers[0]}"'
    return replace_once(source, line.group(0), new), {"data_number": [line.group(1), numbers[0]]}


def shortened(source: str, assignments: list[str]) -> tuple[str, int, dict[str, object]]:
    """Apply ``--set iterations=N`` to the training loop; returns the source, the iteration
    count it trains for and what was changed."""
    loop = TRAINING_LOOP.search(source)
    if loop is None:
        raise SystemExit("no training loop `for i in range(N):` stepping train_op1 found")
    iterations = shipped = int(loop.group(1))
    for assignment in assignments:
        key, _, value = assignment.partition("=")
        if key != "iterations":
            raise SystemExit(f"--set {key}: only iterations=N can be set")
        iterations = int(value)
    if iterations == shipped:
        return source, shipped, {}
    new = f"for i in range({iterations}):"
    source = source[: loop.start()] + new + source[loop.end() :]
    return source, iterations, {"iterations": [shipped, iterations]}


def official_source(script: Path, config: str, assignments: list[str]) -> tuple[str, int, dict]:
    """The script's source with this driver's changes; also its iteration count and the
    changes made."""
    source = script.read_text("utf-8")
    source, changed = select_target(source, config)
    source, iterations, more = shortened(source, assignments)
    changed |= more
    tail = PLOT_TAILS[script.name]
    source = cut_at(source, tail)
    changed["plots"] = f"source cut at {tail!r} (the plotting tail)"
    return source, iterations, changed


def final_draws(namespace: dict, script: str, n: int) -> np.ndarray:
    """The script's own final draws, topped up with batches of its ``z_sample`` to ``n``."""
    draws = [np.asarray(namespace[FINAL_DRAWS[script]], np.float64)]
    while sum(len(block) for block in draws) < n:
        draws.append(np.asarray(namespace["sess"].run(namespace["z_sample"]), np.float64))
    return np.concatenate(draws)[:n]


def official_logp(namespace: dict, points: np.ndarray) -> np.ndarray:
    """The script's ``log_P`` at ``points``, fed as ``z_sample`` in batches of its size."""
    z_sample, log_p = namespace["z_sample"], namespace["log_P"]
    batch = int(z_sample.shape[0])
    padded = np.concatenate([points, np.zeros((-len(points) % batch, points.shape[1]))])
    values = [
        namespace["sess"].run(log_p, {z_sample: padded[start : start + batch]}).reshape(-1)
        for start in range(0, len(padded), batch)
    ]
    return np.concatenate(values)[: len(points)].astype(np.float64)


def main(argv: list[str] | None = None) -> None:
    config_help = "banana, xshape, gmm2d or waveform (--set iterations=N: tests only)"
    parser = driver.parser(__doc__.splitlines()[0], PLOT_TAILS, config_help)
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count())
    script = args.repo.resolve() / args.script
    source, iterations, changed = official_source(script, args.config, args.set)
    tf, more = install_tf1(threads)
    changed |= more | install_seaborn()
    tf.set_random_seed(args.seed)
    np.random.seed(args.seed)
    changed["seed"] = f"tf.set_random_seed({args.seed}), np.random.seed({args.seed}) (none set)"

    namespace = {"__name__": "__main__", "__file__": str(script)}
    start = time.perf_counter()
    exec(compile(source, str(script), "exec", dont_inherit=True), namespace)
    wall = time.perf_counter() - start
    draws = final_draws(namespace, args.script, args.draws)
    if len(draws) != len(namespace[FINAL_DRAWS[args.script]]):
        changed["draws"] = (
            f"{FINAL_DRAWS[args.script]} ({len(namespace[FINAL_DRAWS[args.script]])} draws) "
            f"topped up with batches of z_sample / cut to {args.draws}"
        )

    logp = None if args.logp_at is None else official_logp(namespace, np.load(args.logp_at))
    settings = {
        name: namespace[name]
        for name in SETTINGS
        if isinstance(namespace.get(name), bool | int | float | str)
    }
    record = {
        "seed": args.seed,
        "wall_seconds": wall,
        "threads": threads,
        "iterations": iterations,
        "official_target": namespace.get("target", args.config),
        "device": "cpu",
        "changed": changed,
        "official_config": settings | {"iterations": iterations, "script": args.script},
    }
    driver.write_outputs(args.out, draws, record, logp)


if __name__ == "__main__":
    main()
