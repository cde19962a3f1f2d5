"""Social-phenomenon experiments: a shipped scenario, named conditions, seeds, plots.

``recoworld experiment NAME`` or :func:`run_experiment`; ``recoworld experiment --list`` or
:func:`list_experiments` names them. See ``docs/experiments.md``.
"""

from recoworld.experiments.base import Condition, Experiment, Outcome, Row
from recoworld.experiments.registry import EXPERIMENTS, get_experiment, list_experiments
from recoworld.experiments.runner import run_experiment, summarize, summary_cells

__all__ = [
    "EXPERIMENTS",
    "Condition",
    "Experiment",
    "Outcome",
    "Row",
    "get_experiment",
    "list_experiments",
    "run_experiment",
    "summarize",
    "summary_cells",
]
