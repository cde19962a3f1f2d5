"""The one exception root of recoworld and its specific subclasses.

Every error a user can cause derives from :class:`RecoworldError`; its message says what was wrong
and what to do. The CLI turns these into one line on stderr and exit status 2.
"""

from __future__ import annotations

__all__ = [
    "BudgetExceeded",
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "DependencyNotInstalled",
    "LLMError",
    "OPEError",
    "PolicyError",
    "ProbeError",
    "RecoworldError",
    "RenderModeError",
    "ReportError",
    "ScenarioNotFoundError",
    "TrajectoryError",
]


class RecoworldError(Exception):
    """Root of every exception raised on purpose by recoworld."""


class ConfigError(RecoworldError, ValueError):
    """A configuration or scenario value is unknown, of the wrong type, or impossible.

    The message names the key (dotted path, e.g. ``users.patience_mean``) and what was expected.
    """


class DatasetError(RecoworldError, ValueError):
    """A dataset folder cannot be loaded: it is missing, lacks a file its format needs, is of no
    known format, or a file in it is malformed.

    The message names the file, the line (1-based, as an editor shows it) and what was expected
    there; ``path`` and ``line`` hold the same for programs (``None`` when not about one file or
    one line).
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class ScenarioNotFoundError(RecoworldError, FileNotFoundError):
    """A scenario name or path does not exist."""


class PolicyError(RecoworldError, ValueError):
    """A recommender policy returned something the schedule cannot use (e.g. an invalid slate)."""


class ProbeError(RecoworldError, ValueError):
    """A creator probe (``recoworld probe``) cannot run as asked: an item file that is missing or
    malformed, a topic the world does not have, a segment expression that does not parse or
    names an unknown column, or a segment with no users. The message says what to change."""


class CheckpointError(RecoworldError):
    """A checkpoint cannot be written or read: mid-tick, missing, corrupt, or written by an
    incompatible version of recoworld. The message says which."""


class TrajectoryError(RecoworldError):
    """A run folder or trajectory table is missing, unreadable, or of an unknown schema version."""


class ReportError(TrajectoryError):
    """``recoworld report`` cannot use its source: a missing folder, a file, a folder that is
    neither a run folder (``manifest.json``) nor a benchmark folder (``results.parquet`` or
    ``results.csv``), or benchmark results without ``policy`` and ``seed`` columns. The message
    says what to pass instead. (A ``TrajectoryError`` too: an unreadable table of a run folder
    still raises that.)"""


class RenderModeError(ConfigError, TypeError):
    """An environment was asked for a render mode it does not have (a ``TypeError`` too, so
    that callers probing for render support, like Stable-Baselines3, fall back cleanly)."""


class DependencyNotInstalled(RecoworldError, ImportError):
    """An optional heavy dependency is missing; the message names the extra to install."""


class LLMError(RecoworldError):
    """A language-model server could not be used (unreachable after retries, rejected the
    request, or answered with something unusable); the message names the endpoint and the fix."""


class BudgetExceeded(LLMError):
    """The run's LLM budget (tokens or money) is spent; no further calls are made."""


class OPEError(RecoworldError, ValueError):
    """Off-policy evaluation cannot use what it was given: mismatched shapes, propensities outside
    (0, 1], no logged data, a target without support, or a policy whose first-slot
    distribution is unknown. The message says which input and what was expected."""
