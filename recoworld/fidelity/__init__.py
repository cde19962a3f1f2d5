"""Simulator fidelity against real data (``docs/fidelity.md``): Agent4Rec's taste-discrimination
protocol and the :class:`Discriminator` interface (:mod:`recoworld.fidelity.protocol`), the
numeric user built from train interactions (:mod:`recoworld.fidelity.numeric`), rating and
behavioural realism (:mod:`recoworld.fidelity.realism`), the end-to-end run behind ``recoworld
fidelity`` (:mod:`recoworld.fidelity.report`), and the LLM user (:mod:`recoworld.fidelity.llm`).
Nothing loads at import: the names below load on first use."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recoworld.fidelity.numeric import NumericDiscriminator, NumericFidelityParams
    from recoworld.fidelity.protocol import (
        Discriminator,
        TasteLists,
        agent4rec_lists,
        evaluate,
        holdout_split,
    )
    from recoworld.fidelity.report import FidelityResult, run_fidelity

_WHERE = {
    "Discriminator": "protocol",
    "TasteLists": "protocol",
    "agent4rec_lists": "protocol",
    "evaluate": "protocol",
    "holdout_split": "protocol",
    "NumericDiscriminator": "numeric",
    "NumericFidelityParams": "numeric",
    "FidelityResult": "report",
    "run_fidelity": "report",
}

__all__ = [
    "Discriminator",
    "FidelityResult",
    "NumericDiscriminator",
    "NumericFidelityParams",
    "TasteLists",
    "agent4rec_lists",
    "evaluate",
    "holdout_split",
    "run_fidelity",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'recoworld.fidelity' has no attribute {name!r}")
    return getattr(import_module(f"recoworld.fidelity.{module}"), name)
