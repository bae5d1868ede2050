"""The pre-flight check: every job a config plans, resolved as its step will resolve it, before
any job starts, so that a bad setting, a missing data folder or a target an engine cannot draw
from is one message naming the config entry, not a job failing after others have run.

The plan is the workflow's (:mod:`sivi_engine.preflight`): per target label its registered
target, target settings, reference engine with its options and evaluation settings; per run
(target label, method label) its method and method settings. Each is handed to the step's own
``prepare`` (:func:`sivi_engine.steps.reference.prepare`,
:func:`sivi_engine.steps.train.prepare`) or settings class, so nothing here restates a rule."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sivi_engine.registry import UnknownNameError
from sivi_engine.settings import SettingsError, resolve

if TYPE_CHECKING:
    from sivi_engine.targets.base import Target

#: What a refused entry raises: a setting's or a registry's error, each naming what is wrong.
REFUSALS = (SettingsError, UnknownNameError)


#: Entries named in full before a refusal they share is summarised (``… and N more``).
NAMED_ENTRIES = 3


def _problem(where: str, attempt: Callable[..., object], *args: Any) -> list[tuple[str, str]]:
    """``[(where, message)]`` when ``attempt(*args)`` refuses, else none."""
    try:
        attempt(*args)
    except REFUSALS as error:
        return [(where, str(error))]
    return []


def summarise(problems: Sequence[tuple[str, str]]) -> list[str]:
    """One line per distinct message, in order of first appearance, naming the entries that
    share it: all of them up to :data:`NAMED_ENTRIES`, else the first few and how many more
    (20 splits of a data set without its data folder are one line)."""
    entries: dict[str, list[str]] = {}
    for where, message in problems:
        entries.setdefault(message, []).append(where)
    lines = []
    for message, wheres in entries.items():
        named = ", ".join(wheres[:NAMED_ENTRIES])
        more = len(wheres) - NAMED_ENTRIES
        lines.append(f"{named}{f' and {more} more' if more > 0 else ''}: {message}")
    return lines


def check_plan(plan: Mapping[str, Any]) -> list[str]:
    """The problems of ``plan``, each prefixed with the config entry it comes from (``targets.X
    (reference)``, ``targets.X (evaluation)``, ``targets.X, methods.Y``); none when every step
    accepts every job. A target whose reference is refused (bad target settings, missing data,
    an engine that cannot draw from it) is named once, not again for each of its runs."""
    from sivi_engine.metrics.context import EvaluationSettings
    from sivi_engine.steps import reference, train
    from sivi_engine.targets import make_target

    built: dict[str, Target] = {}

    def make(name: str, settings: Mapping[str, Any]) -> Target:
        """Each target once: its runs share it (and its defaults' mode search)."""
        key = json.dumps([name, settings], sort_keys=True, default=str)
        if key not in built:
            built[key] = make_target(name, settings)
        return built[key]

    problems: list[tuple[str, str]] = []
    refused_targets = set()
    for label, entry in plan["targets"].items():
        options = {**entry["reference_options"], "target": entry["settings"]}
        refused = _problem(
            f"targets.{label} (reference)",
            reference.prepare,
            entry["target"],
            entry["engine"],
            options,
            make,
        )
        problems += refused
        refused_targets |= {label} if refused else set()
        problems += _problem(
            f"targets.{label} (evaluation)", resolve, EvaluationSettings, entry["evaluation"]
        )
    for run in plan["runs"]:
        if run["target"] in refused_targets:  # its runs would repeat the target's refusal
            continue
        target = plan["targets"][run["target"]]
        overrides = {**run["settings"], "target": target["settings"]}
        problems += _problem(
            f"targets.{run['target']}, methods.{run['label']}",
            train.prepare,
            run["method"],
            target["target"],
            overrides,
            make,
        )
    return summarise(problems)
