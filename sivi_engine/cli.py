"""Command line: ``python -m sivi_engine {list,reference,train,evaluate,report} ...``.

This is the public contract the Snakemake rules call. Settings are overridden with repeated
``--set key=value`` (dotted keys for nested settings, ``target.KEY`` for target settings).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from sivi_engine.artifacts import ArtifactError
from sivi_engine.registry import UnknownNameError
from sivi_engine.runtime import keep_freed_memory
from sivi_engine.settings import SettingsError, parse_assignments
from sivi_engine.target_labels import NAME_PATTERN

#: Command → the module that runs it, imported when the command runs: a static import would
#: put every step's code into every job's code hash (:mod:`sivi_engine.provenance`).
STEP_MODULES = {
    "reference": "sivi_engine.steps.reference",
    "train": "sivi_engine.steps.train",
    "evaluate": "sivi_engine.steps.evaluate",
    "describe": "sivi_engine.steps.describe",
    "report": "sivi_engine.report",
    "check": "sivi_engine.steps.check",
}

REGISTRY_MODULES = {
    "targets": ("sivi_engine.targets", "TARGETS"),
    "methods": ("sivi_engine.methods", "METHODS"),
    "engines": ("sivi_engine.reference", "ENGINES"),
    "metrics": ("sivi_engine.metrics", "METRICS"),
}


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting (repeatable; dotted keys)",
    )
    parser.add_argument(
        "--threads",
        type=_integer_from(1),
        default=None,
        help="CPU threads for torch (default: torch's choice)",
    )


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True)
    parser.add_argument(
        "--target-label",
        type=_name,
        default=None,
        help="config label of this target variant, its stores' key (default: --target)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sivi_engine", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser(
        "list", help="list registered targets, methods, engines or metrics"
    )
    listing.add_argument("what", choices=sorted(REGISTRY_MODULES))
    commands.add_parser(
        "spec", help="the registries as JSON: modules, settings and declarations (the workflow's)"
    )
    commands.add_parser(
        "check",
        help="check a workflow's plan (JSON on standard input) before any job: exit 2 and one "
        "line per refused entry",
    )

    ref = commands.add_parser("reference", help="draw reference draws of a target")
    _add_target(ref)
    ref.add_argument("--out", required=True, type=Path)
    ref.add_argument("--engine", default="exact")
    _add_common(ref)

    describe = commands.add_parser(
        "describe", help="store what the report shows of a target (capabilities, density grid)"
    )
    _add_target(describe)
    describe.add_argument("--out", required=True, type=Path)
    _add_common(describe)

    train = commands.add_parser("train", help="train a method on a target with one seed")
    train.add_argument("--method", required=True)
    _add_target(train)
    train.add_argument("--seed", required=True, type=_integer_from(0))  # as the config schema
    train.add_argument("--out", required=True, type=Path)
    train.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    train.add_argument(
        "--label", type=_name, default=None, help="config label of this method variant"
    )
    _add_common(train)

    evaluate = commands.add_parser("evaluate", help="score a SampleSet against ReferenceDraws")
    evaluate.add_argument("--samples", required=True, type=Path)
    evaluate.add_argument("--reference", required=True, type=Path)
    evaluate.add_argument("--out", required=True, type=Path)
    evaluate.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    _add_common(evaluate)

    report = commands.add_parser("report", help="tables, figures and pages from MetricSets")
    report.add_argument(
        "--metrics", required=True, nargs="+", type=Path, help="every run's MetricSet"
    )
    report.add_argument(
        "--samples", required=True, nargs="+", type=Path, help="every run's SampleSet"
    )
    report.add_argument(
        "--references", required=True, nargs="+", type=Path, help="every target's ReferenceDraws"
    )
    report.add_argument(
        "--descriptions",
        required=True,
        nargs="+",
        type=Path,
        help="every target's TargetDescription",
    )
    report.add_argument("--out", required=True, type=Path)
    report.add_argument(
        "--table",
        type=Path,
        default=None,
        help="also write the combined MetricSet here (and a CSV beside it)",
    )
    report.add_argument(
        "--config", type=Path, default=None, help="config file to show in the report"
    )
    report.add_argument(
        "--anchors",
        nargs="*",
        type=Path,
        default=[],
        help="anchors file(s) (benchmarks/results/anchors.csv): the official codes' scored runs"
        " for the reproduction table",
    )
    report.add_argument(
        "--benchmarks",
        nargs="*",
        type=Path,
        default=[],
        help="Snakemake benchmark files (ROOT/RULE/JOB.tsv) for the cost section",
    )
    report.add_argument(
        "--benchmark-root",
        type=Path,
        default=None,
        help="directory holding the benchmark files' RULE folders",
    )
    return parser


def _list(args: argparse.Namespace, overrides: dict) -> None:
    module, name = REGISTRY_MODULES[args.what]
    print("\n".join(getattr(importlib.import_module(module), name).names()))


def _spec(args: argparse.Namespace, overrides: dict) -> None:
    from sivi_engine.spec import collect

    print(json.dumps(collect(), sort_keys=True))


def _check(args: argparse.Namespace, overrides: dict) -> int:
    plan = json.load(sys.stdin)
    problems = _step("check").check_plan(plan)
    print("\n".join(problems) or f"ok: {len(plan['targets'])} targets, {len(plan['runs'])} runs")
    return 2 if problems else 0


def _integer_from(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer ≥ ``minimum`` (a bad one is a usage error naming the
    option)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text}")
        return value

    return parse


def _name(text: str) -> str:
    """An argparse type: a label that can be a path component (letters, digits, underscores,
    starting with a letter, at most 64)."""
    if not NAME_PATTERN.match(text):
        raise argparse.ArgumentTypeError(
            f"expected letters, digits and underscores starting with a letter, got {text!r}"
        )
    return text


def _step(command: str):
    return importlib.import_module(STEP_MODULES[command])


def _reference(args: argparse.Namespace, overrides: dict) -> None:
    _step("reference").reference(args.target, args.out, args.engine, overrides, args.target_label)


def _describe(args: argparse.Namespace, overrides: dict) -> None:
    _step("describe").describe(args.target, args.out, overrides, args.target_label)


def _train(args: argparse.Namespace, overrides: dict) -> None:
    _step("train").train(
        args.method,
        args.target,
        args.seed,
        args.out,
        args.device,
        overrides,
        args.label,
        args.target_label,
    )


def _evaluate(args: argparse.Namespace, overrides: dict) -> None:
    _step("evaluate").evaluate(args.samples, args.reference, args.out, overrides, args.device)


def _report(args: argparse.Namespace, overrides: dict) -> None:
    report = _step("report")
    stores = report.ReportStores(args.metrics, args.samples, args.references, args.descriptions)
    report.build_report(
        stores,
        args.out,
        table_path=args.table,
        config_path=args.config,
        anchor_paths=args.anchors,
        benchmark_paths=args.benchmarks,
        benchmark_root=args.benchmark_root,
    )


HANDLERS = {
    "list": _list,
    "spec": _spec,
    "check": _check,
    "reference": _reference,
    "describe": _describe,
    "train": _train,
    "evaluate": _evaluate,
    "report": _report,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    try:
        status = HANDLERS[args.command](args, parse_assignments(getattr(args, "assignments", [])))
    except (SettingsError, UnknownNameError, ArtifactError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return status or 0
