"""The registry of experiments by name.

To add one: write an :class:`~recoworld.experiments.base.Experiment` subclass in its own module
of this package (heavy imports inside ``run_one`` and ``plot``, so that listing stays cheap),
put its scenario in ``envs/``, and add an instance to :data:`EXPERIMENTS` below.
"""

from __future__ import annotations

import difflib

from recoworld.errors import ConfigError
from recoworld.experiments.base import Experiment
from recoworld.experiments.cascade import CascadeTheory
from recoworld.experiments.echo_chamber import EchoChamber
from recoworld.experiments.filter_bubble import FilterBubble
from recoworld.experiments.herding import Herding
from recoworld.experiments.misinformation import Misinformation

__all__ = ["EXPERIMENTS", "get_experiment", "list_experiments"]

#: Every experiment by name, in listing order.
EXPERIMENTS: dict[str, Experiment] = {
    e.name: e for e in (CascadeTheory(), FilterBubble(), EchoChamber(), Herding(), Misinformation())
}


def list_experiments() -> list[Experiment]:
    """The registered experiments, in listing order."""
    return list(EXPERIMENTS.values())


def get_experiment(name: str) -> Experiment:
    """The experiment registered as ``name``; an unknown name raises :class:`ConfigError` with
    the closest registered name."""
    if name in EXPERIMENTS:
        return EXPERIMENTS[name]
    close = difflib.get_close_matches(name, list(EXPERIMENTS), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"no experiment named {name!r}.{hint} Experiments: {', '.join(EXPERIMENTS)} "
        "(recoworld experiment --list)"
    )
