"""Checkpoint and resume: a simulation saved between two ticks continues byte for byte.

A checkpoint holds everything the next tick reads: the world (catalogue with its counters,
population with every mindset, memory and inbox column, the follow graph with its mutes, the
clock), the state of every random stream (the schedule's, the social engine's, the LLM users'),
the policy (its learned parameters and any state it keeps), the user model, the run's counters
and, for a recording run, where its trajectory stands (the parts written, their row counts).

It is one file, written atomically (``pickle`` protocol 5 with a small JSON-able header of
versions), ``checkpoint.pkl`` in the run folder by default. Resuming re-opens the run folder,
forgets any part written after the checkpoint (a run that went on, or crashed, after it), and
continues: the tables, read back, are exactly those of a run that never stopped.

LLM clients are not saved (connections, thread pools): they are built again on first use, from
the same settings, and the response cache file in the run folder makes calls already answered
free. Their token accounting restarts from zero after a resume.

Pickle runs code when it loads: resume only checkpoints you wrote (or trust).
"""

from __future__ import annotations

import logging
import os
import pickle
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recoworld.errors import CheckpointError

if TYPE_CHECKING:
    from recoworld.schedule import Simulation

__all__ = ["CHECKPOINT_FILE", "CheckpointError", "load_checkpoint", "save_checkpoint"]

logger = logging.getLogger(__name__)

#: Default file name of a run folder's checkpoint.
CHECKPOINT_FILE = "checkpoint.pkl"
#: Bumped when the layout of the saved state changes.
FORMAT = 1
_MAGIC = "recoworld-checkpoint"


def _versions() -> dict[str, str]:
    import numpy as np

    from recoworld import __version__

    return {"recoworld": __version__, "numpy": np.__version__, "python": platform.python_version()}


def save_checkpoint(sim: Simulation, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``sim``'s state to ``path`` (default: ``checkpoint.pkl`` in its run folder).

    Only between ticks (after :meth:`Simulation.step`, or before the first): a begun tick
    raises :class:`CheckpointError`. The trajectory is flushed first, so the run folder holds
    every completed tick when the checkpoint does.
    """
    if sim._pending is not None or sim._in_step:
        raise CheckpointError("a checkpoint is taken between ticks; finish the begun tick first")
    if path is None:
        if sim.recorder is None:
            raise CheckpointError("this simulation records nothing: give the checkpoint a path")
        path = sim.recorder.path / CHECKPOINT_FILE
    if sim.recorder is not None and sim.recorder.closed:
        raise CheckpointError("this simulation has finished; there is nothing left to resume")
    target = Path(path)
    recorder = sim.recorder
    trajectory = None
    if recorder is not None:
        recorder.flush()
        trajectory = recorder.state()
    state = {name: value for name, value in vars(sim).items() if name != "recorder"}
    header = {
        "magic": _MAGIC,
        "format": FORMAT,
        "versions": _versions(),
        "run_id": sim.run_id,
        "tick": sim.world.clock.tick,
        "run_dir": str(recorder.path) if recorder is not None else None,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    try:
        with tmp.open("wb") as handle:
            pickle.dump(header, handle, protocol=5)
            pickle.dump({"simulation": state, "trajectory": trajectory}, handle, protocol=5)
        os.replace(tmp, target)
    except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write checkpoint {target}: {exc}") from exc
    logger.info("checkpoint at tick %d: %s", sim.world.clock.tick, target)
    return target


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header of a checkpoint (versions, run id, tick, run folder) without loading it."""
    with _open(path) as handle:
        return _header(handle, path)


def load_checkpoint(
    path: str | os.PathLike[str], *, out_dir: str | os.PathLike[str] | None = None
) -> Simulation:
    """The simulation saved in ``path``, ready to continue with :meth:`Simulation.step` or
    :meth:`Simulation.run` (whose default horizon is what was left of the scenario's).

    A recording run continues in its run folder (or ``out_dir``, which must hold the same run:
    e.g. the folder moved); parts written after the checkpoint are removed.
    """
    from recoworld.schedule import Simulation

    with _open(path) as handle:
        header = _header(handle, path)
        try:
            payload = pickle.load(handle)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
            raise CheckpointError(f"{path}: unreadable checkpoint ({exc})") from exc
    sim = Simulation.__new__(Simulation)
    vars(sim).update(payload["simulation"])
    sim.recorder = None
    trajectory = payload["trajectory"]
    if trajectory is not None:
        from recoworld.trajectory.recorder import Recorder

        run_dir = Path(out_dir) if out_dir is not None else Path(header["run_dir"])
        sim.recorder = Recorder.reopen(run_dir, trajectory)
    elif out_dir is not None:
        raise CheckpointError(
            f"{path} is a checkpoint of a run that recorded nothing; it has no run folder to "
            "continue (drop out_dir)"
        )
    return sim


def _open(path: str | os.PathLike[str]) -> Any:
    try:
        return Path(path).open("rb")
    except FileNotFoundError as exc:
        raise CheckpointError(f"no checkpoint at {path}") from exc
    except IsADirectoryError:
        file = Path(path) / CHECKPOINT_FILE
        if file.is_file():
            return file.open("rb")
        raise CheckpointError(f"{path} has no {CHECKPOINT_FILE}") from None


def _header(handle: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        header = pickle.load(handle)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise CheckpointError(f"{path} is not a recoworld checkpoint ({exc})") from exc
    if not isinstance(header, dict) or header.get("magic") != _MAGIC:
        raise CheckpointError(f"{path} is not a recoworld checkpoint")
    if header.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {header.get('format')}; this recoworld reads {FORMAT}"
        )
    saved = header.get("versions", {}).get("recoworld")
    now = _versions()["recoworld"]
    if saved != now:
        logger.warning("checkpoint written by recoworld %s, resuming with %s", saved, now)
    return header
