"""Standard faces of the one schedule: Gymnasium environments (with a native vector env) and a
PettingZoo environment.

``recoworld.make(env_id, **kwargs)`` builds any registered id; ``recoworld envs --json`` lists
them. The env classes load lazily.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from recoworld.envs.registration import ENVS, EnvEntry, register_envs
from recoworld.errors import ConfigError

__all__ = ["ENVS", "EnvEntry", "make", "register_envs"]


def make(env_id: str, *, api: str = "parallel", **kwargs: Any) -> Any:
    """Build the environment registered as ``env_id``.

    Gymnasium ids give the Gymnasium env (with its registered wrappers, e.g. the step limit);
    PettingZoo ids give the ``ParallelEnv``, or with ``api="aec"`` its AEC view. Unknown ids raise
    :class:`ConfigError`.
    """
    ids = {entry.id: entry for entry in ENVS}
    if env_id not in ids:
        close = difflib.get_close_matches(env_id, ids, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown env id {env_id!r}.{hint} Registered: {', '.join(ids)}")
    entry = ids[env_id]
    if entry.kind == "gymnasium":
        import gymnasium

        register_envs()
        return gymnasium.make(env_id, **kwargs)
    if api not in ("parallel", "aec"):
        raise ConfigError(f"api: expected 'parallel' or 'aec', got {api!r}")
    module_name, _, cls_name = entry.entry_point.partition(":")
    parallel = getattr(importlib.import_module(module_name), cls_name)(**kwargs)
    if api == "aec":
        from pettingzoo.utils.conversions import parallel_to_aec

        return parallel_to_aec(parallel)
    return parallel
