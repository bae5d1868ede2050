"""The reproduction table on a hand-built combined MetricSet: verdicts against a paper's
figure and against runs of the official code (anchors), and the checks of the config's
rows and of an anchors file."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from metric_fixtures import DESCRIBE, metric_set

from sivi_engine import artifacts
from sivi_engine.report import legend, reproduction, tables
from sivi_engine.settings import SettingsError


def hand_built_table() -> xr.Dataset:
    """Target t: label a with seeds 0–2 at 1.0, 1.2, 1.4 (mean 1.2, sd 0.2) and a suspect seed 3
    at 50; label d with seed 0 at 1.0 and a diverged seed 1. Target u: label c only."""
    runs = [("t", "a", s, v, 0.0, 0.0) for s, v in enumerate([1.0, 1.2, 1.4])]
    runs += [
        ("t", "a", 3, 50.0, 1.0, 0.0),
        ("t", "d", 0, 1.0, 0.0, 0.0),
        ("t", "d", 1, np.nan, 0.0, 1.0),
        ("u", "c", 0, 3.0, 0.0, 0.0),
    ]
    sets = [
        metric_set({"mmd_bandwidth": v, "suspect": suspect, "diverged": diverged}, t, label, seed)
        for t, label, seed, v, suspect, diverged in runs
    ]
    return artifacts.combine_metric_sets(sets)


def reproduction_row(method: str, paper: float, target: str = "t", **extra) -> dict:
    return {
        "experiment": f"{target}/{method} at {paper}",
        "target": target,
        "method": method,
        "metric": "mmd_bandwidth",
        "paper": paper,
        "source": "Table 2",
        **extra,
    }


def test_reproduction_verdicts() -> None:
    """|1.5 − 1.2| = 0.3 ≤ 2 · 0.2 = 0.4: within; |1.7 − 1.2| = 0.5 > 0.4: outside (the suspect 50
    would move the mean to 13.4 and the sd to 24.5, putting both within)."""
    config = {
        "reproduction": [
            reproduction_row("a", 1.5, paper_sd=0.1, note="n"),
            reproduction_row("a", 1.7),
            reproduction_row("d", 1.0),
            reproduction_row("c", 3.0),  # c ran on u only
            reproduction_row("b", 1.0),
            reproduction_row("c", 3.0, target="u"),
        ]
    }
    table = reproduction.reproduction_table(reproduction.parse_rows(config), hand_built_table())
    assert table.header[4:8] == (
        "paper",
        "official code here (mean ± sd over seeds)",
        "this project (mean ± sd over seeds)",
        "verdict",
    )
    assert table.rows[0] == (
        "t/a at 1.5",
        "t",
        "a",
        "mmd_bandwidth",
        "1.5 ± 0.1",
        "—",
        "1.20 ± 0.200 (n=3; 1 suspect)",
        "within seed spread",
        "Table 2",
        "n",
    )
    assert table.rows[1][4:8] == ("1.7", "—", "1.20 ± 0.200 (n=3; 1 suspect)", "outside")
    assert table.rows[2][6:8] == ("1.00 (n=1; 1 diverged)", "n < 2")
    assert table.rows[3][6:8] == ("—", "not run")
    assert table.rows[4][6:8] == ("—", "not run")
    assert table.rows[5][6:8] == ("3.00 (n=1)", "n < 2")


def anchor_lines(
    values: list[float], metric: str = "mmd_bandwidth", **flags: list[float]
) -> list[dict]:
    """Anchors-file rows of official runs of (repo o/r, config c.yml) on target t, one seed per
    value, with optional per-seed flags (suspect, diverged)."""
    lines = []
    for seed, value in enumerate(values):
        common = {"repo": "o/r", "commit": "0123456789abcdef", "script": "s.py", "config": "c.yml"}
        common |= {"target": "t", "seed": str(seed), "wall_seconds": "1", "threads": "1"}
        lines.append(common | {"metric": metric, "value": str(value)})
        for flag, per_seed in flags.items():
            lines.append(common | {"metric": flag, "value": str(per_seed[seed])})
    return lines


@pytest.mark.parametrize(
    ("metric", "official", "verdict"),
    [
        # project a: 1.0, 1.2, 1.4 (mean 1.2, sd 0.2). Official sd 0.2 too: s_pooled = 0.2
        ("mmd_bandwidth", [1.3, 1.5, 1.7], "matches"),  # |1.2 − 1.5| = 0.3 ≤ 0.4
        ("mmd2", [1.6, 1.8, 2.0], "better"),  # 0.6 > 0.4, and lower is better
        ("mmd2", [0.4, 0.6, 0.8], "worse"),
        ("mmd_bandwidth", [0.4, 0.6, 0.8], "differs"),  # a metric without a direction
        ("test_log_likelihood", [0.4, 0.6, 0.8], "better"),  # higher is better
        ("corr_pearson_r", [0.4, 0.6, 0.8], "better"),  # 1.2 is 0.2 from 1, 0.6 is 0.4 from it
        # s_pooled = √(2·0.04 / 4) = 0.141; |1.2 − 0.9| = 0.3 > 0.283; 0.9 is nearer 1 than 1.2
        ("corr_pearson_r", [0.9, 0.9, 0.9], "worse"),
    ],
)
def test_anchored_verdict_rule(metric, official, verdict) -> None:
    # the hand-built table holds mmd_bandwidth only (a metric without a direction): the same
    # values stand for the metric under test, with that metric's metadata
    combined = hand_built_table()
    if metric != "mmd_bandwidth":
        combined = combined.rename({"mmd_bandwidth": metric})
        combined[metric].attrs = DESCRIBE(metric)
    row = reproduction_row("a", 0.0, metric=metric, anchor_repo="o/r", anchor_config="c.yml")
    table = reproduction.reproduction_table(
        reproduction.parse_rows({"reproduction": [row]}), combined, anchor_lines(official, metric)
    )
    assert table.rows[0][7] == verdict
    assert table.rows[0][5].endswith("(n=3) @0123456")


def entry(name: str) -> legend.LegendEntry:
    """The metadata a MetricSet carries for ``name``."""
    return legend.entry(metric_set({name: 0.0}, "t", "m", 0), name)


def test_anchored_verdict_boundary_and_pooled_sd() -> None:
    project = tables.SeedSummary(1.0, 0.1, 4, ())
    official = tables.SeedSummary(1.5, 0.3, 2, ())
    # ((4−1)·0.01 + (2−1)·0.09) / (4 + 2 − 2) = 0.03 → s_pooled = 0.1732
    assert reproduction.pooled_sd(project, official) == pytest.approx(0.03**0.5)
    mmd2, lpd = entry("mmd2"), entry("test_log_likelihood")
    assert reproduction.anchored_verdict(official, project, mmd2) == "better"  # 0.5 > 0.346
    close = tables.SeedSummary(1.3, 0.3, 2, ())
    assert reproduction.anchored_verdict(close, project, mmd2) == "matches"  # 0.3 ≤ 0.346
    assert reproduction.anchored_verdict(close, project, lpd) == "matches"
    one = tables.SeedSummary(1.3, math.nan, 1, ())
    assert reproduction.anchored_verdict(one, project, mmd2) == "n < 2"
    # two MMD² estimates at the noise floor: 4e-4 apart, 4 pooled sds, both below the bound 0
    at_floor = tables.SeedSummary(-5e-4, 1e-4, 3, ())
    near_floor = tables.SeedSummary(-1e-4, 1e-4, 3, ())
    assert reproduction.anchored_verdict(at_floor, near_floor, mmd2) == "matches"
    assert reproduction.anchored_verdict(at_floor, near_floor, lpd) == "better"


def test_official_runs_flagged_suspect_are_counted_not_averaged() -> None:
    row = reproduction_row("a", 0.0, anchor_repo="o/r", anchor_config="c.yml")
    lines = anchor_lines([1.1, 1.3, 90.0, 1.2], suspect=[0, 0, 1, 0], diverged=[0, 0, 0, 0])
    table = reproduction.reproduction_table(
        reproduction.parse_rows({"reproduction": [row]}), hand_built_table(), lines
    )
    assert table.rows[0][5] == "1.20 ± 0.100 (n=3; 1 suspect) @0123456"
    assert table.rows[0][7] == "matches"


def test_a_bad_anchors_file_is_named(tmp_path) -> None:
    with pytest.raises(SettingsError, match="anchors file .*nope.csv not found"):
        reproduction.read_anchors(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("repo,commit,config,target,seed,metric\no/r,c,x.yml,t,0,m\n")
    with pytest.raises(SettingsError, match=r"missing column\(s\) \['value'\]"):
        reproduction.read_anchors(bad)


def test_an_anchor_without_official_runs_says_so() -> None:
    row = reproduction_row("a", 0.0, anchor_repo="o/r", anchor_config="other.yml")
    del row["paper"]
    row["note"] = "plot only"
    table = reproduction.reproduction_table(
        reproduction.parse_rows({"reproduction": [row]}), hand_built_table(), anchor_lines([1.0])
    )
    assert table.rows[0][5:8] == ("—", "1.20 ± 0.200 (n=3; 1 suspect)", "official not run")
    del row["anchor_config"]
    with pytest.raises(SettingsError, match="'anchor_repo' and 'anchor_config' go together"):
        reproduction.parse_rows({"reproduction": [row]})


def test_a_row_without_a_paper_figure_shows_the_project_alone() -> None:
    """A paper that reports the quantity only in a plot: the row keeps the project's figure and
    says so instead of judging it against a number nobody quoted."""
    row = reproduction_row("a", 1.0, note="shown only as a plot")
    del row["paper"]
    table = reproduction.reproduction_table(
        reproduction.parse_rows({"reproduction": [row]}), hand_built_table()
    )
    assert table.rows[0][4:9] == (
        "—",
        "—",
        "1.20 ± 0.200 (n=3; 1 suspect)",
        "no paper figure",
        "Table 2",
    )
    del row["note"]
    with pytest.raises(SettingsError, match=r"without 'paper' needs a 'note'"):
        reproduction.parse_rows({"reproduction": [row]})


def test_reproduction_rows_name_a_bad_field() -> None:
    assert reproduction.parse_rows({}) == [] and reproduction.parse_rows({"reproduction": []}) == []
    bad = reproduction_row("a", 1.0)
    del bad["source"]
    with pytest.raises(SettingsError, match=r"reproduction\[1\]: missing \['source'\]"):
        reproduction.parse_rows({"reproduction": [reproduction_row("a", 1.0), bad]})
    with pytest.raises(SettingsError, match=r"unknown \['paper_se'\].*paper_sd"):
        reproduction.parse_rows({"reproduction": [reproduction_row("a", 1.0, paper_se=0.1)]})
