"""The experiment interface: a shipped scenario, named conditions, one row per seed and condition.

An experiment studies one social phenomenon under a few **conditions** (feeds, parameters). It
names a shipped scenario (``envs/<scenario>.yaml``) and, per condition, a mapping of dotted
overrides in one namespace:

- keys of the scenario (``policy.name``, ``world.graph.mean_degree``, ...) change the scenario
  for that condition, validated like ``--set``;
- keys under ``params.`` set the experiment's own **parameters** — values the scenario has no
  key for, such as the cascade probability ``params.p`` or the number of cascades per seed
  ``params.runs``. Every parameter is declared, with its default, in :attr:`Experiment.params`;
  an undeclared one is an error.

The same namespace serves ``recoworld experiment NAME --set KEY=VALUE``, applied to every
condition (after the condition's own overrides), so the scenario files stay plain scenarios: no
``experiment:`` section, nothing a ``recoworld run`` would reject.

For each seed and condition the runner (:func:`recoworld.experiments.run_experiment`) builds the
condition's config with ``seed`` set to the run's seed, resolves the parameters, and calls
:meth:`Experiment.run_one` (in a worker process), which returns one results row and, optionally,
a ``series`` (per-tick or per-window curves for the plots). After all runs,
:meth:`Experiment.plot` draws from the collected results.
"""

from __future__ import annotations

import copy
import difflib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from recoworld.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from recoworld.config import ScenarioConfig

__all__ = [
    "PARAMS",
    "Condition",
    "Experiment",
    "Outcome",
    "Row",
    "pyplot",
    "resolve",
    "split_overrides",
]

#: Prefix of the dotted keys that set experiment parameters rather than scenario keys.
PARAMS = "params."

#: One results row: metric name → value (the runner adds ``experiment``, ``condition``, ``seed``).
Row = dict[str, float | int | str]


@dataclass(frozen=True, kw_only=True, slots=True)
class Condition:
    """One condition of one run, as :meth:`Experiment.run_one` sees it.

    Attributes:
        label: the condition's name (a key of :attr:`Experiment.conditions`).
        params: every experiment parameter, resolved: the declared defaults, then the
            condition's ``params.*`` values, then the command line's.
    """

    label: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """What one run returns: its ``row`` and, optionally, a ``series`` frame (any columns, e.g.
    ``window, hours, entropy``), written with ``condition`` and ``seed`` to ``series.csv``."""

    row: Row
    series: pd.DataFrame | None = None


class Experiment(ABC):
    """A social-phenomenon experiment (see the module docstring).

    Subclasses set the class attributes and implement :meth:`run_one`; :meth:`plot` is
    optional. An instance must be picklable (the runner sends it to worker processes), so keep
    state in class attributes.

    Attributes:
        name: the registry name (``recoworld experiment NAME``).
        version: bumped when a change alters the results of the same command.
        description: one line for ``recoworld experiment --list``.
        scenario: the shipped scenario (a name in ``envs/``) or a YAML path.
        conditions: condition label → dotted overrides (scenario keys and ``params.*``), in
            table order.
        params: the experiment's parameters and their defaults.
        summary_metrics: the results columns of the printed table and ``summary.md``.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 0
    description: ClassVar[str]
    scenario: ClassVar[str]
    conditions: ClassVar[Mapping[str, Mapping[str, Any]]]
    params: ClassVar[Mapping[str, Any]] = {}
    summary_metrics: ClassVar[tuple[str, ...]]

    @abstractmethod
    def run_one(
        self, config: ScenarioConfig, condition: Condition, seed: int, out_dir: Path
    ) -> Outcome | Row:
        """One run: ``config`` is the condition's scenario with ``seed`` applied; ``out_dir``
        is this run's own folder (created, empty), for a trajectory or any file it keeps.
        Returns the row of metrics (a plain mapping, or an :class:`Outcome` with a series)."""

    def check(self, config: ScenarioConfig, condition: Condition) -> None:
        """Fail early (:class:`ConfigError`), before any worker starts, on a config or
        parameters this experiment cannot run; the config itself is already validated."""
        return

    def plot(self, results: pd.DataFrame, series: pd.DataFrame | None, out_dir: Path) -> list[Path]:
        """Draw the figures into ``out_dir`` from all rows (and series); return the files.
        Called only when matplotlib is installed (use :func:`pyplot`)."""
        return []

    def __repr__(self) -> str:
        return f"<experiment {self.name} v{self.version}: {self.scenario}>"


def split_overrides(
    experiment: Experiment, updates: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split dotted ``updates`` into (scenario overrides, experiment parameters); an undeclared
    parameter raises :class:`ConfigError` with a suggestion."""
    scenario: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for key, value in updates.items():
        if not key.startswith(PARAMS):
            scenario[key] = value
            continue
        name = key[len(PARAMS) :]
        if name not in experiment.params:
            close = difflib.get_close_matches(name, list(experiment.params), n=1)
            hint = f" Did you mean '{PARAMS}{close[0]}'?" if close else ""
            declared = ", ".join(PARAMS + p for p in experiment.params) or "none"
            raise ConfigError(
                f"{key}: not a parameter of experiment {experiment.name!r}.{hint} "
                f"Parameters: {declared}"
            )
        params[name] = _check_param(experiment, name, value)
    return scenario, params


def _check_param(experiment: Experiment, name: str, value: Any) -> Any:
    """A parameter takes its default's type (an integer is accepted for a float)."""
    default = experiment.params[name]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = number and isinstance(value, int)
    elif isinstance(default, float):
        ok, value = number, float(value) if number else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise ConfigError(
            f"{PARAMS}{name}: expected {type(default).__name__} like the default {default!r}, "
            f"got {value!r} (experiment {experiment.name!r})"
        )
    return value


def resolve(
    experiment: Experiment, label: str, overrides: Mapping[str, Any]
) -> tuple[dict[str, Any], Condition]:
    """The scenario overrides and the :class:`Condition` of ``label`` under the command line's
    ``overrides`` (which win over the condition's own)."""
    # Deep copies: `override` puts mapping values into the config as they are, and a later
    # dotted key (policy.params.lam) would then write into the class's condition table.
    own_set, own_params = split_overrides(experiment, copy.deepcopy(experiment.conditions[label]))
    cli_set, cli_params = split_overrides(experiment, copy.deepcopy(dict(overrides)))
    params = {**experiment.params, **own_params, **cli_params}
    return {**own_set, **cli_set}, Condition(label=label, params=params)


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (ImportError without it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
