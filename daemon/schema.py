"""Typed YAML: build frozen dataclasses from parsed YAML, with errors naming the key path."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, Literal

from daemon.yamlsafe import quote
from models.errors import GenredError

Chooser = Callable[[Any, str], tuple[type, Any]]
"""(data, key path) -> (the concrete dataclass to build, the data to build it from)."""


class ConfigError(GenredError, ValueError):
    """A configuration value is wrong; the message names its key path and the fix."""


def check(ok: bool, path: str, rule: str, value: Any) -> None:
    """Raise ConfigError('path: rule, got value') unless ok."""
    if not ok:
        raise ConfigError(f"{path}: {rule}, got {quote(value)}")


def _convert(value: Any, kind: Any, path: str, choose: dict[type, Chooser]) -> Any:
    """Check/convert one YAML value against a type annotation."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(value, option, path, choose)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else
                          f"{path}: expected {_type_name(kind)}, got {quote(value)}")
    if origin is Literal:
        check(value in typing.get_args(kind), path,
               f"must be one of {list(typing.get_args(kind))}", value)
        return value
    if origin is list:
        check(isinstance(value, list), path, "must be a list", value)
        (item_kind,) = typing.get_args(kind)
        return [_convert(item, item_kind, f"{path}[{i}]", choose)
                for i, item in enumerate(value)]
    if dataclasses.is_dataclass(kind):
        return build_dataclass(kind, value, path, choose)
    return _convert_scalar(value, kind, path)


def _convert_scalar(value: Any, kind: type, path: str) -> Any:
    """bool/int/float/str with YAML's looseness removed (no bool-as-int, int ok as float)."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{path}: expected {kind.__name__}, got {quote(value)}")
    check(isinstance(value, kind), path, f"expected {kind.__name__}", value)
    return value


def _key_name(key: Any) -> str:
    """A mapping key as shown in a key path (bounded; non-strings quoted)."""
    return quote(key)[1:-1] if isinstance(key, str) else quote(key)


def _type_name(kind: Any) -> str:
    """Readable name of a type annotation."""
    return " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(kind))


def build_dataclass(cls: type, data: Any, path: str,
                    choose: dict[type, Chooser] | None = None) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, refusing unknown keys.

    ``choose`` maps a base dataclass to a function picking the subclass to build.
    """
    choose = choose or {}
    if cls in choose:
        cls, data = choose[cls](data, path)
    where = path or "config"
    check(isinstance(data, dict), where, "must be a mapping", data)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted((k for k in data if k not in fields), key=str)
    if unknown:
        raise ConfigError(f"{path + '.' if path else ''}{_key_name(unknown[0])}: unknown key "
                          f"(known keys: {', '.join(fields)})")
    values = {}
    for name, item in data.items():
        values[name] = _convert(item, hints[name], f"{path + '.' if path else ''}{name}", choose)
    missing = [n for n, f in fields.items() if n not in values and
               f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    check(not missing, f"{where}.{missing[0]}" if missing else where, "is required", None)
    return cls(**values)
