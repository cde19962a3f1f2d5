"""recoworld: a simulation environment for recommender systems.

Simulated users — fast numeric models and LLM-driven agents — review what they are shown item by
item, update their mindset, say what they want when they are about to leave (reflective
instructions), and come back or not (retention), over a social graph, with every impression logged.

Importing ``recoworld`` registers its Gymnasium ids and does nothing else: the names below load
on first use.

>>> import recoworld
>>> sim = recoworld.Simulation(recoworld.load_scenario("default"))  # doctest: +SKIP
>>> sim.run()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Simulation": "recoworld.schedule",
    "RunResult": "recoworld.schedule",
    "World": "recoworld.world",
    "ScenarioConfig": "recoworld.config",
    "override": "recoworld.config",
    "load_scenario": "recoworld.scenario",
    "list_scenarios": "recoworld.scenario",
    "make_policy": "recoworld.policies",
    "read_run": "recoworld.trajectory",
    "read_table": "recoworld.trajectory",
    "NumericUserModel": "recoworld.users",
    "RecoworldError": "recoworld.errors",
    "make": "recoworld.envs",
}

__all__ = ["__version__", *sorted(_LAZY)]


def _register() -> None:
    # Gymnasium ids are registered on import (the ecosystem's contract); only metadata with
    # string entry points — no recoworld module beyond the registry table is imported.
    try:
        from recoworld.envs.registration import register_envs
    except ImportError:  # pragma: no cover - gymnasium is a core dependency
        return
    register_envs()


_register()


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'recoworld' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
