# Helpers only: the run grid, and config -> command-line arguments. No science here.

import json
import os
import shlex
import sys

import yaml

from sivi_engine import preflight, provenance, run_settings, spec
from sivi_engine.target_labels import expand_target_labels


envvars:
    "PATH",


# Rules call `python -m sivi_engine`; put the interpreter running Snakemake first on PATH so a
# virtualenv's snakemake works without activating the environment.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

#: Target label → its registered target, settings, reference options and method blocks (a
#: config entry with a `sweep` is one label per swept value: sivi_engine.target_labels).
TARGET_LABELS = expand_target_labels(config["targets"])
TARGETS = list(TARGET_LABELS)
LABELS = list(config["methods"])
SEEDS = [int(seed) for seed in config["seeds"]]


def target_name(target):
    """The registered target a target label runs."""
    return TARGET_LABELS[target].target


def label_targets(label):
    """The target labels a method label runs on: those of the config entries in its own
    `targets` list (or every one) whose `method_labels` (if given) name it."""
    keys = config["methods"][label].get("targets")
    return [
        t
        for t in TARGETS
        if (keys is None or TARGET_LABELS[t].key in keys) and TARGET_LABELS[t].runs(label)
    ]


def unsupported_reason(target, label):
    """Why the label's method cannot run on ``target`` (its ``unsupported_targets``), or None."""
    method = config["methods"][label]["method"]
    return spec.unsupported_targets().get(method, {}).get(target_name(target))


for _kind, _names in (
    ("targets", sorted({t.target for t in TARGET_LABELS.values()})),
    ("methods", [config["methods"][label]["method"] for label in LABELS]),
):
    _known = spec.registered_modules(_kind)
    for _name in _names:
        if _name not in _known:
            raise ValueError(
                f"config {_kind}: {_name!r} is not a registered "
                f"{_kind[:-1]}; registered: {', '.join(sorted(_known))}"
            )

for _target in TARGET_LABELS.values():
    _unknown = sorted(set(_target.method_labels or ()) - set(LABELS))
    if _unknown:
        raise ValueError(
            f"config targets.{_target.key}.method_labels: {_unknown} are not configured method "
            f"labels; configured: {', '.join(LABELS)}"
        )

for _label in LABELS:
    _unknown = sorted(set(config["methods"][_label].get("targets", ())) - set(config["targets"]))
    if _unknown:
        raise ValueError(
            f"config methods.{_label}.targets: {_unknown} are not configured targets; "
            f"configured targets: {', '.join(config['targets'])}"
        )
    _method = config["methods"][_label]["method"]
    for _target in label_targets(_label) if "targets" in config["methods"][_label] else ():
        if unsupported_reason(_target, _label):
            raise ValueError(
                f"config methods.{_label}.targets: {_target} cannot be run by method "
                f"{_method}: {unsupported_reason(_target, _label)}"
            )


#: Every (target, label, seed) run of the grid, in config order.
RUNS = [
    (target, label, seed)
    for target in TARGETS
    for label in LABELS
    if target in label_targets(label) and not unsupported_reason(target, label)
    for seed in SEEDS
]
#: The (target, label) pairs left out because the method declares it cannot run the target.
NOT_RUN = [
    {"target": target, "label": label, "reason": unsupported_reason(target, label)}
    for target in TARGETS
    for label in LABELS
    if target in label_targets(label) and unsupported_reason(target, label)
]


wildcard_constraints:
    target="|".join(TARGETS),
    label="|".join(LABELS),
    seed=r"\d+",


def set_args(settings, prefix=""):
    """Flatten nested settings into shell-quoted `--set key.sub=value` arguments."""
    args = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            args.append(set_args(value, prefix=f"{name}."))
        else:
            args.append("--set " + shlex.quote(f"{name}={json.dumps(value)}"))
    return " ".join(a for a in args if a)


def target_settings(target):
    return TARGET_LABELS[target].settings


def reference_options(target):
    """Global reference options with the target's own on top; `engine` is split off later."""
    return {**config["reference"], **TARGET_LABELS[target].reference}


def reference_engine(wildcards):
    return reference_options(wildcards.target)["engine"]


def engine_options(target):
    """The reference options the engine's settings resolve (`engine` itself split off)."""
    return {k: v for k, v in reference_options(target).items() if k != "engine"}


def reference_set_args(wildcards):
    options = engine_options(wildcards.target)
    return set_args({**options, "target": target_settings(wildcards.target)})


def method_name(wildcards):
    return config["methods"][wildcards.label]["method"]


def train_settings(target, label):
    """Method settings the config gives one run (sivi_engine/run_settings.py)."""
    return run_settings.config_method_settings(config, TARGET_LABELS[target], label)


def train_set_args(wildcards):
    settings = train_settings(wildcards.target, wildcards.label)
    return set_args({**settings, "target": target_settings(wildcards.target)})


def train_code_hash(wildcards):
    """Content hash of the code the job runs: editing it reruns the job, touching it does not."""
    return provenance.training_code_hash(method_name(wildcards), target_name(wildcards.target))


def reference_code_hash(wildcards):
    return provenance.reference_code_hash(
        reference_engine(wildcards), target_name(wildcards.target)
    )


def evaluation_code_hash(wildcards):
    return provenance.evaluation_code_hash(target_name(wildcards.target))


def description_code_hash(wildcards):
    return provenance.description_code_hash(target_name(wildcards.target))


def registered_target(wildcards):
    return target_name(wildcards.target)


def report_code_hash():
    return provenance.report_code_hash()


def scored_draws(target):
    """Draws every run on `target` is scored on, at most (sivi_engine/run_settings.py)."""
    labels = [
        label
        for label in LABELS
        if target in label_targets(label) and not unsupported_reason(target, label)
    ]
    return run_settings.scored_draws(config, TARGET_LABELS[target], labels)


def evaluation_settings(target):
    """Evaluation settings; `num_draws` defaults to the target's `scored_draws`."""
    draws = scored_draws(target)
    scored = {} if draws is None else {"num_draws": draws}
    return {**scored, **config["evaluation"]}


def evaluation_set_args(wildcards):
    return set_args(evaluation_settings(wildcards.target))


def all_metric_sets():
    return [f"results/runs/{t}/{l}/seed{s}/metrics.zarr" for t, l, s in RUNS]


def all_sample_sets():
    return [f"results/runs/{t}/{l}/seed{s}/samples.zarr" for t, l, s in RUNS]


def all_references():
    return expand("results/reference/{target}.zarr", target=TARGETS)


def all_descriptions():
    return expand("results/targets/{target}.zarr", target=TARGETS)


def description_set_args(wildcards):
    return set_args({"target": target_settings(wildcards.target)})


def anchor_files():
    """The committed anchors file the reproduction table reads (config key ``anchors``)."""
    return [config["anchors"]] if config.get("anchors") else []


def all_benchmarks():
    """Benchmark files of the reference, describe, training and evaluation jobs: the costs."""
    return [
        *(
            f"results/benchmarks/{step}/{t}.tsv"
            for step in ("reference", "describe_target")
            for t in TARGETS
        ),
        *(
            f"results/benchmarks/{step}/{t}/{l}/seed{s}.tsv"
            for step in ("train", "evaluate")
            for t, l, s in RUNS
        ),
    ]


def run_plan():
    """Every target and run of the grid with the settings its jobs get, for the pre-flight
    check (sivi_engine/preflight.py)."""
    targets = {
        t: {
            "target": target_name(t),
            "settings": target_settings(t),
            "engine": reference_options(t)["engine"],
            "reference_options": engine_options(t),
            "evaluation": evaluation_settings(t),
        }
        for t in TARGETS
    }
    pairs = dict.fromkeys((t, label) for t, label, _ in RUNS)
    runs = [
        {
            "target": t,
            "label": label,
            "method": config["methods"][label]["method"],
            "settings": train_settings(t, label),
        }
        for t, label in pairs
    ]
    return {"targets": targets, "runs": runs}


def config_snapshot():
    """The resolved config as YAML (defaults filled in) and the pairs left out of the grid
    (``not_run``, with the method's reason), read by the report."""
    return yaml.safe_dump({**config, "not_run": NOT_RUN}, sort_keys=False, allow_unicode=True)
