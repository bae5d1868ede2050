"""Target labels: config entries, their registered targets, and sweeps over target settings."""

from __future__ import annotations

import pytest

from sivi_engine.target_labels import expand_target_labels


def test_an_entry_without_target_or_sweep_is_its_own_label() -> None:
    labels = expand_target_labels({"banana": {}, "ring8": {"settings": {"radius": 3}}})
    assert list(labels) == ["banana", "ring8"]
    assert labels["banana"].target == "banana" and labels["banana"].settings == {}
    assert labels["ring8"].settings == {"radius": 3}


def test_a_sweep_gives_one_label_per_value_with_the_value_among_its_settings() -> None:
    entry = {
        "target": "bnn_yacht",
        "sweep": {"split": [0, 1, 12]},
        "settings": {"data_dir": "data"},
        "reference": {"engine": "sgld"},
        "methods": {"ksivi": {"iterations": 10}},
    }
    labels = expand_target_labels({"yacht": entry})
    assert list(labels) == ["yacht_split0", "yacht_split1", "yacht_split12"]
    for split, label in zip((0, 1, 12), labels.values()):
        assert label.target == "bnn_yacht" and label.key == "yacht"
        assert label.settings == {"data_dir": "data", "split": split}
        assert label.reference == {"engine": "sgld"}
        assert label.methods == {"ksivi": {"iterations": 10}}


def test_two_swept_settings_give_every_combination_in_order() -> None:
    labels = expand_target_labels({"t": {"sweep": {"a": [1, 2], "b": ["x", "y"]}}})
    assert list(labels) == ["t_a1_bx", "t_a1_by", "t_a2_bx", "t_a2_by"]
    assert labels["t_a2_by"].settings == {"a": 2, "b": "y"}


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({"y": {"sweep": {"split": []}}}, r"targets\.y\.sweep\.split: give a non-empty list"),
        ({"y": {"sweep": {"split": 3}}}, r"targets\.y\.sweep\.split: give a non-empty list"),
        ({"y": {"sweep": {"split": ["a/b"]}}}, r"value 'a/b' cannot be part of a label"),
        ({"y": {"sweep": {"split": [True]}}}, r"value True cannot be part of a label"),
        ({"y": {"sweep": {"split": [1, "1"]}}}, r"repeated values"),
        (
            {"y": {"sweep": {"split": [1]}, "settings": {"split": 2}}},
            r"targets\.y: \['split'\] given both in `settings` and in `sweep`",
        ),
        ({"y": {"sweep": {"s": ["x" * 70]}}}, r"label 'y_sx+' is not a valid name"),
        ({"y_s1": {}, "y": {"sweep": {"s": [1]}}}, r"label 'y_s1' is defined twice"),
    ],
)
def test_a_bad_sweep_is_an_error_naming_the_entry(targets, message) -> None:
    with pytest.raises(ValueError, match=message):
        expand_target_labels(targets)


def test_method_labels_restrict_the_methods_run_on_a_target_label() -> None:
    labels = expand_target_labels({"t": {"method_labels": ["a"]}, "u": {}})
    assert labels["t"].runs("a") and not labels["t"].runs("b")
    assert labels["u"].runs("a") and labels["u"].runs("b")


def test_a_runs_config_settings_layer_global_then_target_block_then_label() -> None:
    from sivi_engine.run_settings import config_method_settings, scored_draws

    config = {
        "method_settings": {"iterations": 10, "lr": 0.1, "kernel": {"name": "imq", "bandwidth": 1}},
        "targets": {"t": {"methods": {"ksivi": {"lr": 0.2, "source": "paper", "num_draws": 50}}}},
        "methods": {
            "a": {"method": "ksivi", "targets": ["t"], "kernel": {"bandwidth": 2}, "source": "x"},
            "b": {"method": "sivi", "num_draws": 80},
        },
    }
    labels = expand_target_labels(config["targets"])
    assert config_method_settings(config, labels["t"], "a") == {
        "iterations": 10,
        "lr": 0.2,
        "num_draws": 50,
        "kernel": {"name": "imq", "bandwidth": 2},
    }
    assert config_method_settings(config, labels["t"], "b") == {
        "iterations": 10,
        "lr": 0.1,
        "kernel": {"name": "imq", "bandwidth": 1},
        "num_draws": 80,
    }
    assert scored_draws(config, labels["t"], ["a", "b"]) == 50
    config["targets"]["t"]["methods"] = {}
    labels = expand_target_labels(config["targets"])
    assert scored_draws(config, labels["t"], ["a"]) is None  # the runs' own draws
