"""Recording of the feed environments: standard run folders plus agent transitions, and Minari.

:class:`RecordTrajectory` wraps a single-agent feed env (``gymnasium.make("recoworld/Feed-v0")``
and its variants). It attaches the simulation's own :class:`~recoworld.trajectory.Recorder` to
the env's :class:`~recoworld.schedule.Simulation`, so every tick the agent plays is written by
stage 9 of the schedule exactly as in ``recoworld run`` — the same five tables, the same
manifest — and adds a ``transitions`` table with what the agent saw and did. A seeded reset
builds a new Simulation, so the recording is a folder of run folders, one per Simulation::

    out_dir/
    ├── recording.json            index: env, spaces, runs, episode and step counts
    ├── run-000000/               a standard run folder (recoworld.trajectory.read_run)
    │   ├── manifest.json  impressions/  responses/  instructions/  sessions/  social/
    │   └── transitions/   part-000000.parquet ...
    └── run-000001/ ...

:func:`export_minari` turns the recorded episodes into a Minari dataset. See
``docs/recording.md``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec
from gymnasium.wrappers import Autoreset
from numpy.typing import NDArray

from recoworld.envs.feed import FeedEnv
from recoworld.errors import ConfigError, DependencyNotInstalled, TrajectoryError
from recoworld.trajectory.manifest import build_manifest
from recoworld.trajectory.recorder import MANIFEST, Recorder, claim_folder, write_json_atomic

if TYPE_CHECKING:
    from recoworld.schedule import Simulation

__all__ = [
    "RECORDING",
    "TRANSITIONS",
    "TRANSITIONS_VERSION",
    "RecordTrajectory",
    "export_minari",
    "read_transitions",
    "recorded_runs",
]

#: The index of a recording folder.
RECORDING = "recording.json"
#: The folder of the agent's transitions inside each run folder.
TRANSITIONS = "transitions"
#: Version of the ``transitions`` table (major: removed or retyped columns; minor: added ones).
TRANSITIONS_VERSION = "1.0"
_FORMAT = "recoworld.recording"
_RUN = "run-{:06d}"
_MINARI_PIP = 'pip install "minari[arrow]>=0.5" pillow'


# -- spaces ---------------------------------------------------------------------------------
def _space_to_json(space: spaces.Space[Any]) -> dict[str, Any]:
    """A JSON-able description of ``space`` (the spaces the feed envs use)."""
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: _space_to_json(s) for k, s in space.spaces.items()}}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "dtype": str(space.dtype),
            "shape": list(space.shape),
            "low": space.low.tolist(),
            "high": space.high.tolist(),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "dtype": str(space.dtype),
            "nvec": space.nvec.tolist(),
            "start": space.start.tolist(),
        }
    if isinstance(space, spaces.MultiBinary):
        n = space.n
        return {"type": "MultiBinary", "n": n if isinstance(n, int) else [int(x) for x in n]}
    if isinstance(space, spaces.Text):
        return {
            "type": "Text",
            "min_length": space.min_length,
            "max_length": space.max_length,
            "charset": space.characters,
        }
    raise ConfigError(f"RecordTrajectory: cannot record a {type(space).__name__} space")


def _space_from_json(data: dict[str, Any]) -> spaces.Space[Any]:
    kind = data["type"]
    if kind == "Dict":
        return spaces.Dict({k: _space_from_json(v) for k, v in data["spaces"].items()})
    if kind == "Box":
        dtype = np.dtype(data["dtype"])
        return spaces.Box(
            np.asarray(data["low"], dtype), np.asarray(data["high"], dtype), dtype=dtype
        )
    if kind == "Discrete":
        return spaces.Discrete(data["n"], start=data["start"])
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(data["nvec"], dtype=data["dtype"], start=data["start"])
    if kind == "MultiBinary":
        return spaces.MultiBinary(data["n"])
    if kind == "Text":
        return spaces.Text(
            min_length=data["min_length"], max_length=data["max_length"], charset=data["charset"]
        )
    raise TrajectoryError(f"{RECORDING}: unknown space type {kind!r}")


@dataclass(frozen=True, slots=True)
class _Leaf:
    """One column of ``transitions`` holding one (sub)space: a fixed-size list of numbers in
    row-major order (``Box``, ``MultiDiscrete``, ``MultiBinary``; ``Discrete`` as one int64),
    or a string (``Text``)."""

    column: str
    text: bool
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    size: int

    @staticmethod
    def of(column: str, space: spaces.Space[Any]) -> _Leaf:
        if isinstance(space, spaces.Text):
            return _Leaf(column, True, (), np.dtype(object), 0)
        if isinstance(space, spaces.Discrete):
            return _Leaf(column, False, (), np.dtype(np.int64), 1)
        if isinstance(space, spaces.Box | spaces.MultiDiscrete | spaces.MultiBinary):
            shape = tuple(int(d) for d in space.shape)
            return _Leaf(column, False, shape, np.dtype(space.dtype), int(np.prod(shape)))
        raise ConfigError(
            f"RecordTrajectory: cannot record a {type(space).__name__} space ({column})"
        )

    @property
    def arrow_type(self) -> pa.DataType:
        if self.text:
            return pa.string()
        return pa.list_(pa.from_numpy_dtype(self.dtype), self.size)

    def encode(self, value: Any) -> Any:
        if self.text:
            return str(value)
        flat = np.asarray(value, dtype=self.dtype).reshape(-1)
        if flat.size != self.size:
            raise ConfigError(
                f"RecordTrajectory: {self.column} has {flat.size} values, expected {self.size}"
            )
        return flat

    def to_arrow(self, values: list[Any]) -> pa.Array:
        if self.text or not values:
            return pa.array(values, self.arrow_type)
        missing = [v is None for v in values]
        zeros = np.zeros(self.size, self.dtype)
        flat = np.stack([zeros if v is None else v for v in values]).reshape(-1)
        mask = pa.array(missing, pa.bool_()) if any(missing) else None
        return pa.FixedSizeListArray.from_arrays(pa.array(flat), self.size, mask=mask)

    def decode(self, array: pa.Array | pa.ChunkedArray) -> Any:
        """Rows of this column (none null) as ``[n, *shape]`` values of the space."""
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if self.text:
            return [str(v) for v in array.to_pylist()]
        flat = array.flatten().to_numpy(zero_copy_only=False).astype(self.dtype, copy=False)
        return flat.reshape(len(array), *self.shape)


def _observation_leaves(space: spaces.Space[Any]) -> list[tuple[str | None, _Leaf]]:
    """``(key, leaf)`` per observation column: ``obs_<key>`` for a Dict, else ``obs``."""
    if isinstance(space, spaces.Dict):
        return [(key, _Leaf.of(f"obs_{key}", sub)) for key, sub in space.spaces.items()]
    return [(None, _Leaf.of("obs", space))]


def _transitions_schema(obs: list[tuple[str | None, _Leaf]], action: _Leaf) -> pa.Schema:
    fields = [
        pa.field("run", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("episode", pa.int64(), nullable=False),
        pa.field("step", pa.int32(), nullable=False),
        pa.field("seed", pa.int64()),
        pa.field("tick", pa.int32()),
        pa.field("session", pa.int64(), nullable=False),
        *(pa.field(leaf.column, leaf.arrow_type, nullable=False) for _, leaf in obs),
        pa.field("action", action.arrow_type),
        pa.field("reward", pa.float64()),
        pa.field("terminated", pa.bool_(), nullable=False),
        pa.field("truncated", pa.bool_(), nullable=False),
        pa.field("instruction", pa.string(), nullable=False),
    ]
    return pa.schema(
        fields,
        metadata={
            "recoworld.table": TRANSITIONS,
            "recoworld.transitions_version": TRANSITIONS_VERSION,
        },
    )


# -- writing --------------------------------------------------------------------------------
class _TransitionWriter:
    """Buffers transition rows of one run folder; writes them as atomic Parquet parts."""

    def __init__(
        self,
        folder: Path,
        run_id: str,
        obs: list[tuple[str | None, _Leaf]],
        action: _Leaf,
        *,
        flush_steps: int,
        compression: str | None,
    ) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self.obs = obs
        self.action = action
        self.schema = _transitions_schema(obs, action)
        self.flush_steps = flush_steps
        self.compression = compression
        self._buffer: dict[str, list[Any]] = {n: [] for n in self.schema.names if n != "run"}
        self.rows = 0
        self.parts = 0

    def add(self, row: dict[str, Any]) -> bool:
        """Buffer one row; write a part (and say so) when ``flush_steps`` rows are buffered."""
        for name, column in self._buffer.items():
            column.append(row[name])
        if len(self._buffer["step"]) >= self.flush_steps:
            self.flush()
            return True
        return False

    def close(self) -> None:
        """Flush; a run without any row still gets one empty part, so the folder reads."""
        self.flush(empty=self.parts == 0)

    def flush(self, *, empty: bool = False) -> None:
        n = len(self._buffer["step"])
        if n == 0 and not empty:
            return
        b = self._buffer
        arrays: dict[str, pa.Array] = {
            "run": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, np.int32)), pa.array([self.run_id], pa.string())
            ),
            "episode": pa.array(b["episode"], pa.int64()),
            "step": pa.array(b["step"], pa.int32()),
            "seed": pa.array(b["seed"], pa.int64()),
            "tick": pa.array(b["tick"], pa.int32()),
            "session": pa.array(b["session"], pa.int64()),
            "action": self.action.to_arrow(b["action"]),
            "reward": pa.array(b["reward"], pa.float64()),
            "terminated": pa.array(b["terminated"], pa.bool_()),
            "truncated": pa.array(b["truncated"], pa.bool_()),
            "instruction": pa.array(b["instruction"], pa.string()),
        }
        for _, leaf in self.obs:
            arrays[leaf.column] = leaf.to_arrow(b[leaf.column])
        table = pa.Table.from_arrays([arrays[n] for n in self.schema.names], schema=self.schema)
        name = f"part-{self.parts:06d}.parquet"
        target = self.folder / name
        tmp = target.with_name(name + ".tmp")
        pq.write_table(table, tmp, compression=self.compression)
        os.replace(tmp, target)
        self.parts += 1
        self.rows += n
        for column in self._buffer.values():
            column.clear()


@dataclass(slots=True)
class _Run:
    """One run folder: the Simulation it records, its recorder and its transitions."""

    path: Path
    sim: Simulation
    recorder: Recorder
    writer: _TransitionWriter
    first_episode: int
    episodes: int = 0
    steps: int = 0
    status: str = "running"
    closed_sessions: set[int] = field(default_factory=set)
    skipped_sessions: int = 0


class _Recording:
    """Everything the wrapper writes. It holds no reference to the wrapper, so a finalizer can
    close it when the wrapper is garbage-collected."""

    def __init__(
        self,
        out_dir: Path,
        env_info: dict[str, Any],
        obs: list[tuple[str | None, _Leaf]],
        action: _Leaf,
        *,
        flush_rows: int | None,
        flush_steps: int,
        compression: str | None,
    ) -> None:
        self.out_dir = out_dir
        self.env_info = env_info
        self.obs = obs
        self.action = action
        self.flush_rows = flush_rows
        self.flush_steps = flush_steps
        self.compression = compression
        self.runs: list[_Run] = []
        self.run: _Run | None = None
        self.episode = -1  # global index of the current episode
        self.step = 0
        self.in_episode = False  # reset seen, episode not over
        self.last_truncated = False
        self.closed = False
        self._write_index()

    # -- runs -------------------------------------------------------------------------------
    def attach(self, sim: Simulation) -> None:
        """Start a run folder for ``sim`` (finishing the previous one)."""
        if self.run is not None:
            self.finish_run("completed")
        if sim.recorder is not None:
            raise ConfigError(
                "RecordTrajectory: the env's Simulation already has a recorder; record it once"
            )
        cfg = sim.config.record
        compression = self.compression or cfg.compression
        path = self.out_dir / _RUN.format(len(self.runs))
        recorder = Recorder(
            path,
            manifest=build_manifest(sim),
            flush_rows=self.flush_rows or cfg.flush_rows,
            compression=compression,
        )
        writer = _TransitionWriter(
            path / TRANSITIONS,
            sim.run_id,
            self.obs,
            self.action,
            flush_steps=self.flush_steps,
            compression=None if compression == "none" else compression,
        )
        sim.recorder = recorder
        self.run = _Run(path, sim, recorder, writer, self.episode + 1)
        self.runs.append(self.run)
        self._write_index()

    def end_sessions(self, reason: str, run: _Run | None = None) -> None:
        """Write a ``sessions`` row for each session still open in the recorded Simulation
        (``horizon`` after a truncation, else ``interrupted``), dated at the last completed
        tick, as :meth:`Simulation.finish` does between ticks. Sessions that never got a page
        (reset twice in a row) have no row. Idempotent. ``run`` defaults to the current run."""
        if run is None:
            run = self.run
        if run is None or run.recorder.closed:
            return
        sim = run.sim
        pop = sim.world.population
        open_users = np.flatnonzero(pop.in_session).astype(np.int64)
        fresh = [u for u in open_users if int(pop.session_id[u]) not in run.closed_sessions]
        if not fresh:
            return
        users = np.asarray(fresh, np.int64)
        run.closed_sessions.update(int(s) for s in pop.session_id[users])
        served = pop.session_pages[users] > 0
        run.skipped_sessions += int((~served).sum())
        users = users[served]
        if users.size == 0:
            return
        last_tick = sim.world.clock.tick - 1
        run.recorder.stage("sessions", sim.session_rows(users, last_tick, reason))
        run.recorder.commit(last_tick)

    def finish_run(self, status: str) -> None:
        run = self.run
        if run is None:
            return
        self.run = None
        self.end_sessions("horizon" if self.last_truncated else "interrupted", run)
        totals = run.sim.totals.as_dict()
        totals["sessions_started"] -= run.skipped_sessions
        run.writer.close()
        run.recorder.close(status, totals=totals)
        if run.sim.recorder is run.recorder:
            run.sim.recorder = None  # the env may go on; it records nothing more
        run.status = status
        self._write_index()

    # -- episodes ---------------------------------------------------------------------------
    def start_episode(self, obs: Any, info: dict[str, Any], seed: int | None) -> None:
        run = self.run
        assert run is not None
        self.episode += 1
        self.step = 0
        self.in_episode = True
        self.last_truncated = False
        run.episodes += 1
        pop = run.sim.world.population
        self._add(
            run,
            obs,
            info,
            seed=seed,
            tick=None,
            session=int(pop.session_id[0]),
            action=None,
            reward=None,
            terminated=False,
            truncated=False,
        )

    def add_step(
        self,
        obs: Any,
        info: dict[str, Any],
        *,
        tick: int | None,
        session: int,
        action: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
    ) -> None:
        run = self.run
        assert run is not None
        self.step += 1
        run.steps += 1
        self.in_episode = not (terminated or truncated)
        self.last_truncated = truncated and not terminated
        self._add(
            run,
            obs,
            info,
            seed=None,
            tick=tick,
            session=session,
            action=self.action.encode(action),
            reward=float(reward),
            terminated=terminated,
            truncated=truncated,
        )

    def _add(self, run: _Run, obs: Any, info: dict[str, Any], **columns: Any) -> None:
        row = {"episode": self.episode, "step": self.step, **columns}
        row["instruction"] = str(info.get("instruction") or "")
        for key, leaf in self.obs:
            row[leaf.column] = leaf.encode(obs if key is None else obs[key])
        if run.writer.add(row):
            self._write_index()

    # -- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        if self.closed:
            return
        self.finish_run("interrupted" if self.in_episode and self.step > 0 else "completed")
        self.in_episode = False
        self.closed = True
        self._write_index()

    def _write_index(self) -> None:
        write_json_atomic(
            self.out_dir / RECORDING,
            {
                "format": _FORMAT,
                "version": TRANSITIONS_VERSION,
                **self.env_info,
                "status": "closed" if self.closed else "recording",
                "episodes": self.episode + 1,
                "steps": sum(r.steps for r in self.runs),
                "runs": [
                    {
                        "path": r.path.name,
                        "run_id": r.sim.run_id,
                        "seed": r.sim.config.seed,
                        "status": r.status,
                        "first_episode": r.first_episode,
                        "episodes": r.episodes,
                        "steps": r.steps,
                        "transitions_rows_written": r.writer.rows,
                    }
                    for r in self.runs
                ],
            },
        )


def _prepare_record_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path``; a previous recording there is replaced, anything else refused."""

    def owned(out: Path) -> list[Path]:
        runs = [p for p in out.glob("run-*") if p.is_dir() and (p / MANIFEST).is_file()]
        return [*runs, out / RECORDING]

    return claim_folder(path, RECORDING, owned, "recording")


def _env_info(env: gym.Env[Any, Any]) -> dict[str, Any]:
    spec = env.spec
    spec_json: str | None = None
    if spec is not None:
        try:
            spec_json = spec.to_json()
        except (TypeError, ValueError):
            spec_json = None
    return {
        "env_id": spec.id if spec is not None else None,
        "env_spec": spec_json,
        "observation_space": _space_to_json(env.observation_space),
        "action_space": _space_to_json(env.action_space),
    }


# -- the wrapper ----------------------------------------------------------------------------
class RecordTrajectory(gym.Wrapper[Any, Any, Any, Any], gym.utils.RecordConstructorArgs):
    """Record a single-agent feed env as recoworld run folders plus agent transitions.

    Every tick the agent plays is written by the Simulation's own recorder (stage 9 of the
    schedule), so ``out_dir/run-NNNNNN/`` holds the same tables and manifest as ``recoworld run``
    and reads with :func:`recoworld.trajectory.read_run`. A tick abandoned at reset writes
    nothing. Each seeded ``reset`` builds a new Simulation, hence a new run folder. Each run
    folder also gets ``transitions/``: one row per reset (``step`` 0: the reset observation)
    and per step (the action, reward, flags and the observation it led to).

    A step after the episode ended is refused (``ResetNeeded``) unless an
    :class:`gymnasium.wrappers.Autoreset` inside this wrapper resets the env on it; such a step
    is recorded as the next episode's reset, never as a transition. :meth:`close` — or garbage
    collection of the wrapper — closes sessions still open and flushes everything.

    Args:
        env: a feed env (``recoworld/Feed-v0``, ``FeedItem-v0``, ``FeedWeights-v0``,
            ``FeedLifelong-v0``), possibly wrapped; observations and actions are recorded as this
            ``env`` gives and takes them.
        out_dir: the recording folder; a previous recording there is replaced, a non-empty
            folder that is not one is refused.
        flush_rows: rows of the simulation tables that trigger a flush (default: the scenario's
            ``record.flush_rows``).
        flush_steps: transition rows that trigger writing a ``transitions`` part (default 10,000).
        compression: Parquet codec (default: the scenario's ``record.compression``).
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        out_dir: str | os.PathLike[str],
        *,
        flush_rows: int | None = None,
        flush_steps: int = 10_000,
        compression: str | None = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self,
            out_dir=str(out_dir),
            flush_rows=flush_rows,
            flush_steps=flush_steps,
            compression=compression,
        )
        gym.Wrapper.__init__(self, env)
        if not isinstance(env.unwrapped, FeedEnv):
            raise ConfigError(
                "RecordTrajectory records the single-agent feed envs (recoworld/Feed-v0 and its "
                f"variants), got {type(env.unwrapped).__name__}"
            )
        if flush_rows is not None and flush_rows < 1:
            raise ConfigError(f"flush_rows: expected an integer >= 1, got {flush_rows}")
        if flush_steps < 1:
            raise ConfigError(f"flush_steps: expected an integer >= 1, got {flush_steps}")
        if compression not in (None, "zstd", "snappy", "gzip", "none"):
            raise ConfigError(
                f"compression: expected zstd, snappy, gzip or none, got {compression!r}"
            )
        obs = _observation_leaves(env.observation_space)
        action = _Leaf.of("action", env.action_space)
        self.out_dir = _prepare_record_dir(out_dir)
        self._rec = _Recording(
            self.out_dir,
            _env_info(env),
            obs,
            action,
            flush_rows=flush_rows,
            flush_steps=flush_steps,
            compression=compression,
        )
        self._finalizer = weakref.finalize(self, self._rec.close)

    @property
    def run_dirs(self) -> list[Path]:
        """The run folders written so far, in order."""
        return [r.path for r in self._rec.runs]

    def _feed(self) -> FeedEnv:
        env = self.env.unwrapped
        assert isinstance(env, FeedEnv)
        return env

    def _autoreset_pending(self) -> bool:
        env: gym.Env[Any, Any] = self.env
        while isinstance(env, gym.Wrapper):
            if isinstance(env, Autoreset) and env.autoreset:
                return True
            env = env.env
        return False

    def _began(self, obs: Any, info: dict[str, Any], seed: int | None) -> None:
        rec = self._rec
        core = self._feed().core
        assert core is not None
        if rec.run is None or rec.run.sim is not core.sim:
            rec.attach(core.sim)
        rec.start_episode(obs, info, seed)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        rec = self._rec
        if rec.closed:
            raise TrajectoryError("RecordTrajectory is closed; wrap the env again to record more")
        rec.end_sessions("horizon" if rec.last_truncated else "interrupted")
        obs, info = self.env.reset(seed=seed, options=options)
        self._began(obs, info, seed)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        rec = self._rec
        if rec.closed:
            raise TrajectoryError("RecordTrajectory is closed; wrap the env again to record more")
        if not rec.in_episode:
            if rec.run is not None and self._autoreset_pending():
                rec.end_sessions("horizon" if rec.last_truncated else "interrupted")
                obs, reward, terminated, truncated, info = self.env.step(action)
                self._began(obs, info, None)
                return obs, float(reward), terminated, truncated, info
            raise gym.error.ResetNeeded(
                "RecordTrajectory: call reset() before step() (the episode is over or not begun)"
            )
        core = self._feed().core
        assert core is not None
        sim = core.sim
        request = sim.pending_request
        tick = request.tick if request is not None else None
        session = int(sim.world.population.session_id[0])
        obs, reward, terminated, truncated, info = self.env.step(action)
        rec.add_step(
            obs,
            info,
            tick=tick,
            session=session,
            action=action,
            reward=float(reward),
            terminated=bool(terminated),
            truncated=bool(truncated),
        )
        return obs, float(reward), terminated, truncated, info

    def close(self) -> None:
        """Close open sessions, flush every table and finish the run manifests; then close the
        env."""
        self._finalizer()
        super().close()


# -- reading --------------------------------------------------------------------------------
def _read_index(record_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(record_dir) / RECORDING
    if not path.is_file():
        raise TrajectoryError(f"{record_dir}: no {RECORDING}; is this a RecordTrajectory folder?")
    index: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if index.get("format") != _FORMAT:
        raise TrajectoryError(f"{path}: not a recoworld recording index")
    version = str(index.get("version", "?"))
    if version.split(".", 1)[0] != TRANSITIONS_VERSION.split(".", 1)[0]:
        raise TrajectoryError(
            f"{record_dir}: recording format {version}, this recoworld reads {TRANSITIONS_VERSION}"
        )
    return index


def recorded_runs(record_dir: str | os.PathLike[str]) -> list[Path]:
    """The run folders of a recording, in order (each reads with ``read_run``)."""
    index = _read_index(record_dir)
    return [Path(record_dir) / r["path"] for r in index["runs"]]


def _read_transitions_arrow(path: Path, columns: list[str] | None) -> pa.Table | None:
    if (path / RECORDING).is_file():
        tables = [_read_transitions_arrow(p, columns) for p in recorded_runs(path)]
        present = [t for t in tables if t is not None]
        return pa.concat_tables(present) if present else None
    folder = path / TRANSITIONS
    if not folder.is_dir():
        raise TrajectoryError(
            f"{path}: no {TRANSITIONS}/ folder; was it recorded by RecordTrajectory?"
        )
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        return None
    try:
        return pa.concat_tables([pq.read_table(p, columns=columns) for p in parts])
    except (OSError, pa.ArrowInvalid) as exc:
        raise TrajectoryError(f"{folder}: unreadable part ({exc})") from exc


def read_transitions(
    path: str | os.PathLike[str], columns: list[str] | None = None
) -> pd.DataFrame:
    """The ``transitions`` of a run folder, or of every run of a recording folder, in order.

    Every part on disk is read (parts are written whole, so a killed recording reads too).
    Observation and action columns hold flat arrays (row-major); see ``docs/recording.md``.
    """
    table = _read_transitions_arrow(Path(path), columns)
    if table is None:
        return pd.DataFrame(columns=columns or ["run", "episode", "step"])
    return table.to_pandas()


# -- Minari ---------------------------------------------------------------------------------
def _episode_bounds(episode: NDArray[np.int64]) -> list[tuple[int, int]]:
    if episode.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(episode)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [episode.size]])
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def export_minari(
    record_dir: str | os.PathLike[str],
    dataset_id: str,
    *,
    env: str | gym.Env[Any, Any] | EnvSpec | None = None,
    data_format: str = "arrow",
    include_unfinished: bool = True,
    **metadata: Any,
) -> Any:
    """Write the episodes of a :class:`RecordTrajectory` folder as the Minari dataset
    ``dataset_id`` (under ``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``).

    Episodes are exported in recording order (runs, then episodes) and renumbered from 0.
    Each has the reset observation plus one per step (``T + 1``), its ``T`` actions, rewards,
    terminations and truncations, and ``infos["instruction"]`` (``T + 1`` texts). The dataset's
    observation and action spaces are the recorded env's, ``Dict`` observations included
    (Minari stores them natively; nothing is flattened). Episodes without a step are left out;
    an episode that was cut (reset or close before it ended) is kept with its last
    ``truncation`` set — Minari's own ``DataCollector`` rule — unless
    ``include_unfinished=False``, which leaves it out.

    Args:
        record_dir: the ``out_dir`` of a :class:`RecordTrajectory`.
        dataset_id: ``(namespace/)name-v<version>``; must not exist yet.
        env: the env (or id, or spec) to store as the dataset's environment (default: the
            recorded env spec, when it could be serialized).
        data_format: Minari storage: ``arrow`` (default; needs only pyarrow), ``parquet``, or
            ``hdf5`` (needs ``minari[hdf5]``).
        include_unfinished: keep cut episodes (as truncated).
        **metadata: passed on to ``minari.create_dataset_from_buffers`` (``author``,
            ``algorithm_name``, ``code_permalink``, ``description``, ...).

    Returns:
        the ``minari.MinariDataset``.

    Raises:
        DependencyNotInstalled: Minari (or Pillow, which Minari's storages import) is missing.
        TrajectoryError: ``record_dir`` is not a recording, or holds no episode with a step.
    """
    missing = [m for m in ("minari", "PIL") if importlib.util.find_spec(m) is None]
    if data_format == "hdf5" and importlib.util.find_spec("h5py") is None:
        missing.append("h5py")
    if missing:
        raise DependencyNotInstalled(
            f"export_minari needs {', '.join(missing)}: {_MINARI_PIP}"
            + (' "minari[hdf5]"' if "h5py" in missing else "")
        )
    minari = importlib.import_module("minari")
    episode_buffer = importlib.import_module("minari.data_collector.episode_buffer").EpisodeBuffer

    index = _read_index(record_dir)
    obs_space = _space_from_json(index["observation_space"])
    action_space = _space_from_json(index["action_space"])
    obs_leaves = _observation_leaves(obs_space)
    action_leaf = _Leaf.of("action", action_space)
    table = _read_transitions_arrow(Path(record_dir), None)
    buffers: list[Any] = []
    if table is not None:
        episode = table.column("episode").to_numpy()
        step = table.column("step").to_numpy()
        terminated = table.column("terminated").to_numpy(zero_copy_only=False)
        truncated = table.column("truncated").to_numpy(zero_copy_only=False)
        reward = table.column("reward").to_numpy(zero_copy_only=False)
        seed = table.column("seed").to_pylist()
        for start, end in _episode_bounds(episode):
            n_steps = end - start - 1
            if not np.array_equal(step[start:end], np.arange(n_steps + 1)):
                raise TrajectoryError(
                    f"{record_dir}: episode {int(episode[start])} is not whole "
                    "(rows must be steps 0..T)"
                )
            if n_steps == 0:
                continue
            terms = terminated[start + 1 : end].astype(bool)
            truncs = truncated[start + 1 : end].astype(bool)
            if not (terms[-1] or truncs[-1]):
                if not include_unfinished:
                    continue
                truncs[-1] = True
            rows = table.slice(start, end - start)
            observations: Any
            if obs_leaves[0][0] is None:
                observations = obs_leaves[0][1].decode(rows.column("obs"))
            else:
                observations = {
                    key: leaf.decode(rows.column(leaf.column)) for key, leaf in obs_leaves
                }
            actions = action_leaf.decode(rows.column("action").slice(1))
            buffers.append(
                episode_buffer(
                    id=len(buffers),
                    seed=seed[start],
                    observations=observations,
                    actions=actions,
                    rewards=[float(r) for r in reward[start + 1 : end]],
                    terminations=terms.tolist(),
                    truncations=truncs.tolist(),
                    infos={"instruction": rows.column("instruction").to_pylist()},
                )
            )
    if not buffers:
        raise TrajectoryError(f"{record_dir}: no recorded episode has a step; nothing to export")
    env_arg: Any = env
    if env_arg is None and index.get("env_spec"):
        env_arg = EnvSpec.from_json(index["env_spec"])
    metadata.setdefault(
        "description",
        f"{index.get('env_id') or 'recoworld feed env'} episodes recorded with "
        "recoworld.envs.record.RecordTrajectory",
    )
    return minari.create_dataset_from_buffers(
        dataset_id,
        buffers,
        env=env_arg,
        observation_space=obs_space,
        action_space=action_space,
        data_format=data_format,
        **metadata,
    )
