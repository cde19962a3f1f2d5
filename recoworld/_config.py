"""Strict conversion between plain mappings (YAML, CLI) and typed frozen dataclasses.

One mechanism serves every config in recoworld: :func:`from_mapping` builds a dataclass from a
mapping, rejecting unknown keys (with a did-you-mean hint), wrong types and — through each
dataclass's ``__post_init__`` — impossible values; :func:`to_mapping` turns it back into plain
data (for the run manifest); :func:`override` applies dotted ``key=value`` overrides.

Errors are :class:`~recoworld.errors.ConfigError` and name the dotted key and what was expected.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

from recoworld.errors import ConfigError

__all__ = ["check", "from_mapping", "override", "to_mapping"]

T = TypeVar("T")


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        inner = _describe(args[0]) if args else "value"
        return f"a list of {inner}"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{path}: expected {_describe(tp)}, got {value!r}")
    if origin in (types.UnionType, typing.Union):
        errors = []
        for arg in get_args(tp):
            try:
                return _convert(value, arg, path)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"{path}: expected {_describe(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{path}: expected null, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(tp, type) and isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
        return from_mapping(tp, value, path=path)  # type: ignore[arg-type]
    if origin is tuple:
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected {_describe(tp)}, got {value!r}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        return tuple(_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        key_tp, val_tp = get_args(tp) or (Any, Any)
        return {
            _convert(k, key_tp, f"{path}.{k}"): _convert(v, val_tp, f"{path}.{k}")
            for k, v in value.items()
        }
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{path}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    raise ConfigError(f"{path}: unsupported config type {tp!r}")  # pragma: no cover


def from_mapping(cls: type[T], data: Mapping[str, Any], *, path: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``data``, strictly.

    Unknown keys, wrong types and impossible values raise :class:`ConfigError` naming the key.
    Missing keys take the dataclass defaults.
    """
    if not dataclasses.is_dataclass(cls):  # pragma: no cover - programming error
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{path}.{key}" if path else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{full}: unknown key.{hint} Expected one of: {', '.join(sorted(fields))}"
            )
        kwargs[key] = _convert(value, hints[key], full)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if path and not str(exc).startswith(path):
            raise ConfigError(f"{path}.{exc}") from None
        raise


def to_mapping(obj: Any) -> Any:
    """Plain-data form of a config (dataclasses → dicts, tuples → lists), for manifests."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_mapping(v) for k, v in obj.items()}
    return obj


def override(obj: T, updates: Mapping[str, Any]) -> T:
    """Return a copy of ``obj`` with dotted keys replaced, validated like a scenario file.

    >>> override(cfg, {"world.n_users": 1000, "seed": 3})  # doctest: +SKIP
    """
    data = to_mapping(obj)
    for dotted, value in updates.items():
        node = data
        parts = dotted.split(".")
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"{where}: unknown section (in override '{dotted}')")
            node = node[part]
        # A copy: a later dotted key (policy.params.lam) writes into this value, which must not
        # be the caller's own mapping.
        node[parts[-1]] = copy.deepcopy(value)
    return from_mapping(type(obj), data)


def check(condition: bool, key: str, expected: str, value: Any) -> None:
    """Raise :class:`ConfigError` ``"key: expected EXPECTED, got VALUE"`` unless ``condition``."""
    if not condition:
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")
