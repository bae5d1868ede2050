"""Typed settings: frozen dataclasses with defaults, overridden by (dotted) ``key=value`` pairs.

Every configurable object (method, target, reference engine) declares its settings as a frozen
dataclass. :func:`resolve` merges overrides into the defaults, coercing each value to the declared
type and rejecting unknown keys or values outside a ``Literal`` with a message that names the field
and the allowed values.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

import yaml

S = TypeVar("S")


class SettingsError(ValueError):
    """An invalid setting: unknown key, wrong type or a value outside the allowed set."""


def parse_assignments(assignments: Iterable[str]) -> dict[str, Any]:
    """Turn ``["a=1", "b.c=gaussian"]`` into a nested dict; values are parsed as YAML scalars."""
    nested: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SettingsError(f"--set expects key=value, got {item!r}")
        node = nested
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SettingsError(f"--set {key}: {part!r} is both a value and a group")
        node[leaf] = _parse_value(raw, key.strip())
    return nested


def _parse_value(raw: str, key: str = "") -> Any:
    """A YAML scalar or list; ``1e-3`` (a string to YAML 1.1) is read as the number it means."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SettingsError(f"--set {key}={raw}: not a YAML value ({mark})") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _coerce(value: Any, annotation: Any, field: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise SettingsError(
                f"setting {field!r}: {value!r} is not allowed; allowed values: "
                + ", ".join(repr(a) for a in allowed)
            )
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(value, option, field)
            except SettingsError as error:
                errors.append(error)
        if len(errors) == 1:  # an optional value: say what is wrong with it
            raise errors[0]
        raise SettingsError(f"setting {field!r}: {value!r} fits none of {annotation}")
    if origin is tuple:
        (item_type, *_) = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise SettingsError(f"setting {field!r}: expected a list, got {value!r}")
        return tuple(_coerce(v, item_type, field) for v in value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"setting {field!r}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise SettingsError(f"setting {field!r}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise SettingsError(f"setting {field!r}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise SettingsError(f"setting {field!r}: expected a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise SettingsError(f"setting {field!r}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise SettingsError(f"setting {field!r}: expected a group of settings, got {value!r}")
        return resolve(annotation, value, prefix=f"{field}.")
    return value


def resolve(cls: type[S], overrides: Mapping[str, Any] | None = None, *, prefix: str = "") -> S:
    """Instantiate settings class ``cls`` with ``overrides`` merged into its defaults."""
    overrides = dict(overrides or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise SettingsError(
            f"unknown setting '{prefix}{unknown[0]}' for {cls.__name__}; valid settings: "
            + ", ".join(prefix + name for name in sorted(fields))
        )
    values = {name: _coerce(value, hints[name], prefix + name) for name, value in overrides.items()}
    instance = cls(**values)
    check = getattr(instance, "validate", None)
    if check is not None:
        check()
    return instance


def as_dict(settings: Any) -> dict[str, Any]:
    """Plain nested dict of a settings dataclass (tuples become lists)."""
    return json.loads(to_json(settings))


def to_json(settings: Any) -> str:
    """Canonical JSON of a settings dataclass, used in artifact provenance."""
    return json.dumps(dataclasses.asdict(settings), sort_keys=True)


def split_target_overrides(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate ``target.*`` overrides from the rest (method or engine settings)."""
    rest = dict(overrides)
    target = rest.pop("target", {}) or {}
    if not isinstance(target, Mapping):
        raise SettingsError("setting 'target' must be a group: use --set target.NAME=VALUE")
    return dict(target), rest
