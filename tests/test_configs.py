"""The shipped configs: every per-experiment block names its source and resolves to valid
settings of its method and target; every reproduction row points at a configured run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from metric_fixtures import DESCRIBE

from sivi_engine.methods import METHODS
from sivi_engine.report.reproduction import parse_rows
from sivi_engine.settings import resolve
from sivi_engine.targets import make_target

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "config").glob("*.yaml"))
#: Keys of a per-target method block or label that are not settings (workflow/rules/common.smk).
NOT_SETTINGS = {"source", "method", "targets"}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text("utf-8"))


def settings_of(block: dict) -> dict:
    return {key: value for key, value in block.items() if key not in NOT_SETTINGS}


def per_target_blocks(config: dict):
    for target, entry in config["targets"].items():
        for method, block in (entry or {}).get("methods", {}).items():
            yield target, method, block


def test_every_paper_block_cites_its_source() -> None:
    blocks = list(per_target_blocks(load(ROOT / "config/paper.yaml")))
    assert len(blocks) >= 15  # KSIVI, SIVI-SM, SIVI and UIVI experiments on toys and data targets
    missing = [(target, method) for target, method, block in blocks if not block.get("source")]
    assert not missing, f"per-target blocks without a source: {missing}"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_block_resolves_to_valid_settings(path: Path) -> None:
    """A misspelt key or a value outside the allowed set in any shipped config fails here, not
    after hours of a paper-scale run."""
    config = load(path)
    for target, method, block in per_target_blocks(config):
        assert method in METHODS, f"{path.name}: targets.{target}.methods.{method} is not a method"
        entry = config["targets"][target]
        # A user's data file (config/mnist.yaml) is not here: the target's own data stand in.
        settings = {k: v for k, v in entry.get("settings", {}).items() if k != "data_file"}
        target_obj = make_target(entry.get("target", target), settings)
        merged = {
            **target_obj.method_defaults(METHODS[method].Settings, method),
            **config.get("method_settings", {}),
            **settings_of(block),
        }
        resolve(METHODS[method].Settings, merged)
    for spec in config["methods"].values():
        resolve(
            METHODS[spec["method"]].Settings,
            {**config.get("method_settings", {}), **settings_of(spec)},
        )


def test_paper_reproduction_rows_point_at_configured_runs() -> None:
    config = load(ROOT / "config/paper.yaml")
    rows = parse_rows(config)
    assert rows
    for row in rows:
        assert row.target in config["targets"], row
        spec = config["methods"][row.method]
        assert row.target in spec.get("targets", config["targets"]), row
        DESCRIBE.info(row.metric)  # raises UndeclaredMetricError where no one declares it


def test_anchored_rows_name_an_official_configuration_the_suite_runs() -> None:
    """A row's (anchor_repo, anchor_config) is a configuration of benchmarks/anchors/suite.py,
    and the anchors file the report reads is committed."""
    sys.path.insert(0, str(ROOT / "benchmarks" / "anchors"))
    from suite import ANCHORS

    known = {(a.repository, "+".join([a.config, *a.assignments])) for a in ANCHORS}
    config = load(ROOT / "config/paper.yaml")
    anchored = [row for row in parse_rows(config) if row.anchor_repo]
    assert anchored
    for row in anchored:
        assert (row.anchor_repo, row.anchor_config) in known, row
    assert (ROOT / config["anchors"]).is_file()
