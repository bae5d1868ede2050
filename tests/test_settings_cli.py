"""Typed settings and the command line: overrides, and errors that list the valid choices."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from typing import Literal

import pytest

from sivi_engine.cli import main
from sivi_engine.kernels import KernelSettings
from sivi_engine.methods import METHODS
from sivi_engine.methods.ksivi import KSIVISettings
from sivi_engine.settings import SettingsError, parse_assignments, resolve
from sivi_engine.targets import TARGETS


def test_assignments_parse_to_nested_yaml_values():
    parsed = parse_assignments(
        [
            "iterations=100",
            "lr=1e-3",
            "kernel.name=imq",
            "hidden=[8, 8]",
            "target.radius=2.5",
            "kernel.bandwidth=null",
        ]
    )
    assert parsed == {
        "iterations": 100,
        "lr": 1e-3,
        "hidden": [8, 8],
        "target": {"radius": 2.5},
        "kernel": {"name": "imq", "bandwidth": None},
    }


def test_resolve_coerces_and_nests():
    settings = resolve(
        KSIVISettings, parse_assignments(["hidden=[8, 8]", "kernel.name=riesz", "lr=2"])
    )
    assert settings.hidden == (8, 8) and settings.lr == 2.0 and isinstance(settings.lr, float)
    assert settings.kernel == KernelSettings(name="riesz")


def test_unknown_setting_lists_the_valid_ones():
    with pytest.raises(
        SettingsError, match="unknown setting 'iteratons'.*valid settings:.*iterations"
    ):
        resolve(KSIVISettings, {"iteratons": 5})
    with pytest.raises(SettingsError, match="unknown setting 'kernel.nme'.*kernel.name"):
        resolve(KSIVISettings, {"kernel": {"nme": "imq"}})


def test_literal_setting_lists_the_allowed_values():
    with pytest.raises(SettingsError, match="'estimator'.*'vstat', 'ustat'"):
        resolve(KSIVISettings, {"estimator": "both"})
    with pytest.raises(SettingsError, match="'kernel.name'.*'gaussian', 'imq', 'riesz'"):
        resolve(KSIVISettings, {"kernel": {"name": "laplace"}})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"iterations": "many"}, "expected an integer"),
        ({"iterations": 0}, "must be >= 1"),
        ({"lr": -1.0}, "'lr': must be > 0"),
        ({"kernel": {"imq_beta": 0.5}}, "imq_beta"),
    ],
)
def test_bad_values_name_the_field(override, message):
    with pytest.raises(SettingsError, match=message):
        resolve(KSIVISettings, override)


def test_optional_float_accepts_null_and_numbers():
    @dataclasses.dataclass(frozen=True)
    class S:
        h: float | None = None
        mode: Literal["a", "b"] = "a"

    assert resolve(S, {"h": 2}).h == 2.0
    assert resolve(S, {"h": None}).h is None


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sivi_engine", *args], capture_output=True, text=True
    )


def test_list_commands_name_the_registries():
    out = run_cli("list", "targets")
    assert out.returncode == 0
    assert out.stdout.split() == sorted(TARGETS)
    assert run_cli("list", "methods").stdout.split() == sorted(METHODS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--method", "ksivii", "--target", "banana"],
            "unknown method 'ksivii'; valid methods: " + re.escape(", ".join(sorted(METHODS))),
        ),
        (
            ["--method", "ksivi", "--target", "bananas"],
            "unknown target 'bananas'; valid targets: banana,",
        ),
        (
            ["--method", "ksivi", "--target", "banana", "--set", "batchsize=3"],
            "unknown setting 'batchsize'.*batch_size",
        ),
        (["--method", "ksivi", "--target", "ring8", "--set", "target.radius=-1"], "radius"),
    ],
)
def test_train_rejects_bad_names_with_the_valid_ones(tmp_path, capsys, args, message):
    out = tmp_path / "s.zarr"
    code = main(["train", *args, "--seed", "0", "--out", str(out)])
    assert code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()


def test_reference_engine_must_be_registered(tmp_path, capsys):
    assert (
        main(["reference", "--target", "banana", "--engine", "nuts", "--out", str(tmp_path / "r")])
        == 2
    )
    assert (
        "unknown reference engine 'nuts'; valid reference engines: exact, none, sgld, stan"
        in capsys.readouterr().err
    )


def test_command_line_sets_the_openmp_wait_policy_before_torch_loads(monkeypatch):
    """libgomp reads OMP_WAIT_POLICY once, when torch loads it: the CLI must set it first and
    keep a value the user chose."""
    from sivi_engine.openmp import prefer_spinning_workers

    environ = {"OMP_WAIT_POLICY": "PASSIVE"}
    prefer_spinning_workers(environ)
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE"}
    prefer_spinning_workers(environ := {})
    assert environ == {"OMP_WAIT_POLICY": "ACTIVE"}

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    light = "import sys, sivi_engine.openmp; print('torch' in sys.modules)"
    assert (
        subprocess.run(
            [sys.executable, "-c", light], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )
    probe = (
        "import runpy, sys; sys.argv = ['sivi_engine', 'list', 'methods']\n"
        "try: runpy.run_module('sivi_engine', run_name='__main__')\n"
        "except SystemExit: pass\n"
        "import os, torch; print(os.environ['OMP_WAIT_POLICY'])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "ACTIVE"
