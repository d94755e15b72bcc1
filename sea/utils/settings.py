"""Settings dataclasses read from a config section: unknown keys and values of the wrong type are a
one-line `SeaError` naming the key (`align.train.lr must be a number, got 'abc'`). The defaults live in
conf/ only: a settings class has none, so a missing key is an error too."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

from sea.errors import SeaError

T = TypeVar("T")

_WHAT = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}


def _coerce(value: Any, hint: Any, key: str) -> Any:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        args = typing.get_args(hint)
    if is_dataclass(hint):
        return settings_from(hint, value, key)
    if typing.get_origin(hint) is tuple:
        if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != len(args):
            raise SeaError(f"{key} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    ok = {
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        bool: isinstance(value, bool),
        str: isinstance(value, str),
    }.get(hint, True)
    if not ok:
        raise SeaError(f"{key} must be {_WHAT[hint]}, got {value!r}")
    return float(value) if hint is float else value


def settings_from(cls: type[T], section: Mapping[str, Any] | None, where: str) -> T:
    """`cls(**section)` with unknown and missing keys refused and every value checked against its field's
    type; a field whose type is a settings dataclass reads the nested section the same way."""
    c = dict(section or {})
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(c) - known)
    if unknown:
        raise SeaError(f"unknown {where} keys {unknown}; known: {sorted(known)}")
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]  # type: ignore[arg-type]
    missing = [k for k in required if k not in c]
    if missing:
        raise SeaError(f"{where} is missing keys {missing} (their defaults live in conf/)")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}") for k, v in c.items()})


def require(ok: bool, key: str, rule: str, value: Any) -> None:
    """A range check: `SeaError('<key> must be <rule>, got <value>')` unless `ok`."""
    if not ok:
        raise SeaError(f"{key} must be {rule}, got {value!r}")
