"""Ray, imported only when a distributed feature is used (the ``ray`` extra)."""

from __future__ import annotations

import os
from typing import Any

from recoworld.errors import DependencyNotInstalled

__all__ = ["import_ray", "start_ray"]


def import_ray() -> Any:
    """The ``ray`` module, or :class:`DependencyNotInstalled` naming the extra."""
    try:
        import ray
    except ImportError as exc:
        raise DependencyNotInstalled(
            'this needs Ray: pip install "recoworld[ray]" (or "ray>=2.40")'
        ) from exc
    return ray


def start_ray(address: str | None = None) -> tuple[Any, bool]:
    """Connect to Ray: the cluster at ``address`` (``"auto"``: the one started on this machine
    with ``ray start --head``; ``"ray://HOST:10001"``: a remote one through Ray Client), or,
    with ``None`` and no ``RAY_ADDRESS`` in the environment, a local cluster on this machine.
    Returns the module and whether this call connected (so the caller disconnects at the end);
    a process already connected keeps its connection."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    options: dict[str, Any] = {"address": address}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        options["include_dashboard"] = False  # a cluster of our own: no dashboard server
    ray.init(**options)
    return ray, True
