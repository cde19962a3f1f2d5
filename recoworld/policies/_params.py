"""Checks of policy parameters: a bad value raises ConfigError naming ``policy.params.<key>``."""

from __future__ import annotations

import math
from collections.abc import Callable

from recoworld.errors import ConfigError

__all__ = ["integer", "number"]


def number(key: str, value: object, expected: str, ok: Callable[[float], bool]) -> float:
    """``value`` as a float if it is a finite number satisfying ``ok``, else ConfigError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not ok(float(value))
    ):
        raise ConfigError(f"policy.params.{key}: expected {expected}, got {value!r}")
    return float(value)


def integer(key: str, value: object, expected: str, low: int) -> int:
    """``value`` as an int if it is an integer ``>= low``, else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"policy.params.{key}: expected {expected}, got {value!r}")
    return int(value)
