"""Standard faces of the one schedule: Gymnasium environments (and their native vector env).

``recoworld.make(env_id, **kwargs)`` builds any registered id; ``recoworld envs --json`` lists
them. The env classes load lazily.
"""

from __future__ import annotations

import difflib
from typing import Any

from recoworld.envs.registration import ENVS, EnvEntry, register_envs
from recoworld.errors import ConfigError

__all__ = ["ENVS", "EnvEntry", "make", "register_envs"]


def make(env_id: str, **kwargs: Any) -> Any:
    """Build the environment registered as ``env_id``: a Gymnasium env (with its registered
    wrappers, e.g. the step limit) for Gymnasium ids. Unknown ids raise :class:`ConfigError`."""
    ids = {entry.id: entry for entry in ENVS}
    if env_id not in ids:
        close = difflib.get_close_matches(env_id, ids, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown env id {env_id!r}.{hint} Registered: {', '.join(ids)}")
    import gymnasium

    register_envs()
    return gymnasium.make(env_id, **kwargs)
