"""The creator probe: inject a new item into a world, show it to a segment of the population, and
report how the segment engaged with it, how far it spread, and what LLM users said about it.

``recoworld probe ITEM.yaml --segment "EXPR" [--users N] [--out DIR]`` (``docs/probe.md``):

1. The scenario named by the item file (with its ``set:`` overrides) is built as ``recoworld run``
   builds it, and the item is written into the next free catalogue row
   (:meth:`recoworld.world.catalog.Catalog.add_items`) before the simulation starts, so every
   part of the run — candidates, policies, LLM users — sees it as an ordinary item created at
   tick 0. Its embedding is its topic's centroid plus a little noise (stream ``probe``).
2. The segment is a filter expression over per-user columns (:func:`user_frame`), evaluated by
   pandas (``DataFrame.eval``, ``DataFrame.query``'s grammar). Up to ``--users`` of its users are
   drawn at random (stream ``probe``): the *chosen* users.
3. :class:`ProbePolicy` wraps the scenario's own policy: the first page a chosen user is served
   has the item in slot 0 (propensity 1, no score); the rest of that slate is the inner policy's,
   without the item. By default the chosen users' sessions start at tick 0
   (:meth:`Simulation.start_sessions`), so exposure happens on the first tick.
4. The run is recorded like any other; the report (:func:`probe_report`) is computed from its
   trajectory: per group (chosen users, all other users, the segment's users not chosen) the
   users exposed, examining, clicking, liking, sharing and commenting, dwell, rating, in-network
   reach and opinion shift; the item's diffusion cascades
   (:func:`~recoworld.metrics.social.diffusion_trees`); and LLM users' comments and reasons about
   it, from the ``llm_calls`` table's page decisions. It is written as ``probe.json`` and
   ``segments.csv`` in the run folder.

Nothing here re-implements a stage of the schedule: the probe is a face that drives
:class:`~recoworld.schedule.Simulation` with a wrapped policy.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from recoworld.errors import ConfigError, ProbeError, RecoworldError

if TYPE_CHECKING:
    import pandas as pd

    from recoworld.config import ScenarioConfig
    from recoworld.policies.base import Feedback, Recommender, RecommendRequest, Slates
    from recoworld.schedule import Simulation, TickStats
    from recoworld.world.world import World

__all__ = [
    "GROUPS",
    "PERSONA_COLUMNS",
    "TRAIT_COLUMNS",
    "Probe",
    "ProbeItem",
    "ProbePolicy",
    "ProbeReport",
    "add_probe_parser",
    "decision_notes",
    "inject_item",
    "load_item",
    "parse_item",
    "prepare_probe",
    "probe_config",
    "probe_main",
    "probe_report",
    "run_probe",
    "select_segment",
    "user_frame",
]

#: The stream the item's embedding noise and the draw of the chosen users come from.
PROBE_STREAM = "probe"
#: Numeric user columns of the segment frame (the population's traits; ``opinion`` at the start).
TRAIT_COLUMNS = ("activity", "conformity", "diversity", "patience", "sociability", "opinion")
#: Persona columns of the segment frame, filled for users who have a persona (LLM users); ``age``
#: is NaN and the text columns empty for the others. List fields are joined with ``", "``.
PERSONA_COLUMNS = (
    "persona", "name", "age", "gender", "occupation", "location", "interests", "dislikes",
    "tags",
)  # fmt: skip
#: Report groups: the chosen users; every other user; the segment's users not chosen (a
#: randomized control, present when the segment is larger than ``--users``).
GROUPS = ("chosen", "control", "control_in_segment")
#: Per-group columns of the report (``segments.csv``), in order.
GROUP_COLUMNS = (
    "group", "users", "exposed", "impressions", "examined", "clicked", "liked", "shared",
    "commented", "click_rate", "like_rate", "share_rate", "comment_rate", "mean_dwell",
    "mean_rating", "in_network", "opinion_shift",
)  # fmt: skip
PROBE_FILE = "probe.json"
SEGMENTS_FILE = "segments.csv"
DEFAULT_USERS = 100


# --------------------------------------------------------------------------- the item file

_ITEM_KEYS: dict[str, str] = {
    "title": "the item's title (text, required)",
    "summary": "a one-sentence summary (text, required)",
    "topic": "a topic name of the world (required)",
    "stance": "position on the opinion axis, a number in [-1, 1] (default 0)",
    "quality": "a number in [0, 1] (default 0.5)",
    "misinfo": "whether the item is false, true or false (default false)",
    "spread": "distance from the topic centroid, a number >= 0 (default 0.1)",
    "scenario": "shipped scenario name or YAML path (default 'default')",
    "ticks": "ticks to follow the item for, an integer >= 1 (default: one simulated day)",
    "seed": "root seed, an integer >= 0 (default: the scenario's)",
    "set": "scenario overrides, a mapping of dotted keys to values",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class ProbeItem:
    """A probe item file (``ITEM.yaml``; see :data:`_ITEM_KEYS` and ``docs/probe.md``).

    Attributes:
        title, summary: the item's text (what LLM users read).
        topic: the item's main topic, a topic name of the world.
        stance: position on the opinion axis in [−1, 1].
        quality: in [0, 1].
        misinfo: the item is false (labels, notes and friction apply as the scenario says).
        spread: the embedding is the topic centroid plus Gaussian noise of this norm scale
            (per-dimension standard deviation ``spread / sqrt(dim)``), unit-normalized.
        scenario: the scenario to run.
        ticks: how long to follow the item (``None``: one simulated day, unless ``set``
            gives ``clock.ticks`` or ``clock.days``).
        seed: the run's seed (``None``: the scenario's).
        overrides: the file's ``set:`` section, dotted scenario keys to values.
    """

    title: str
    summary: str
    topic: str
    stance: float = 0.0
    quality: float = 0.5
    misinfo: bool = False
    spread: float = 0.1
    scenario: str = "default"
    ticks: int | None = None
    seed: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "summary": self.summary,
            "topic": self.topic,
            "stance": self.stance,
            "quality": self.quality,
            "misinfo": self.misinfo,
            "spread": self.spread,
            "scenario": self.scenario,
            "ticks": self.ticks,
            "seed": self.seed,
            "set": dict(self.overrides),
        }


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_item(data: object, *, source: str = "item") -> ProbeItem:
    """A :class:`ProbeItem` from plain data (a YAML mapping), strictly: unknown keys (with a
    did-you-mean hint), missing keys, wrong types and values out of range raise
    :class:`ProbeError` naming ``source`` and the key."""
    if not isinstance(data, Mapping):
        raise ProbeError(f"{source}: expected a mapping of item keys ({', '.join(_ITEM_KEYS)})")
    for key in data:
        if key not in _ITEM_KEYS:
            close = difflib.get_close_matches(str(key), list(_ITEM_KEYS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ProbeError(
                f"{source}: {key}: unknown key.{hint} Expected one of: {', '.join(_ITEM_KEYS)}"
            )
    missing = [k for k in ("title", "summary", "topic") if k not in data]
    if missing:
        raise ProbeError(
            f"{source}: missing {', '.join(missing)}; "
            + "; ".join(f"{k}: {_ITEM_KEYS[k]}" for k in missing)
        )

    def bad(key: str, value: object) -> ProbeError:
        return ProbeError(f"{source}: {key}: expected {_ITEM_KEYS[key]}, got {value!r}")

    for key in ("title", "summary", "topic", "scenario"):
        if key in data and not (isinstance(data[key], str) and data[key].strip()):
            raise bad(key, data[key])
    numbers = {"stance": (-1.0, 1.0), "quality": (0.0, 1.0), "spread": (0.0, math.inf)}
    for key, (low, high) in numbers.items():
        if key in data and not (_is_number(data[key]) and low <= data[key] <= high):
            raise bad(key, data[key])
    if "misinfo" in data and not isinstance(data["misinfo"], bool):
        raise bad("misinfo", data["misinfo"])
    for key, low in (("ticks", 1), ("seed", 0)):
        value = data.get(key)
        if value is not None and not (
            isinstance(value, int) and not isinstance(value, bool) and value >= low
        ):
            raise bad(key, value)
    overrides = data.get("set") or {}
    if not isinstance(overrides, Mapping) or not all(isinstance(k, str) for k in overrides):
        raise bad("set", overrides)
    return ProbeItem(
        title=data["title"].strip(),
        summary=data["summary"].strip(),
        topic=data["topic"].strip(),
        stance=float(data.get("stance", 0.0)),
        quality=float(data.get("quality", 0.5)),
        misinfo=bool(data.get("misinfo", False)),
        spread=float(data.get("spread", 0.1)),
        scenario=str(data.get("scenario", "default")),
        ticks=data.get("ticks"),
        seed=data.get("seed"),
        overrides=dict(overrides),
    )


def load_item(path: str | os.PathLike[str]) -> ProbeItem:
    """Read and validate an item file (YAML); :class:`ProbeError` says what is wrong."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ProbeError(
            f"item file {file} does not exist; give a YAML file with title, summary and topic "
            "(see docs/probe.md or envs/probes/example-item.yaml)"
        )
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProbeError(f"{file}: not valid YAML ({exc})".replace("\n", " ")) from None
    item = parse_item(data, source=str(file))
    beside = file.parent / item.scenario  # a scenario file named relative to the item file
    if item.scenario.endswith((".yaml", ".yml")) and beside.is_file():
        item = replace(item, scenario=str(beside))
    return item


def probe_config(
    item: ProbeItem,
    overrides: Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
    ticks: int | None = None,
) -> ScenarioConfig:
    """The probe's scenario: the item's ``scenario`` with, in increasing precedence, the item's
    ``set:``, the item's ``seed``, ``overrides`` (``--set``) and ``seed`` (``--seed``). The run
    lasts ``ticks`` (``--ticks``), else the item's ``ticks``, else what the overrides set as
    ``clock.ticks`` or ``clock.days``, else one simulated day."""
    from recoworld._config import override
    from recoworld.scenario import load_scenario

    config = load_scenario(item.scenario)
    updates = dict(item.overrides)
    if item.seed is not None:
        updates["seed"] = item.seed
    updates.update(overrides or {})
    if seed is not None:
        updates["seed"] = seed
    n_ticks = ticks if ticks is not None else item.ticks
    if n_ticks is not None:
        if n_ticks < 1:
            raise ProbeError(f"ticks: expected an integer >= 1, got {n_ticks}")
        updates["clock.ticks"] = n_ticks
    try:
        config = override(config, updates)
        if n_ticks is None and not {"clock.ticks", "clock.days"} & set(updates):
            config = override(config, {"clock.ticks": config.clock.ticks_per_day})
    except ConfigError as exc:
        raise ConfigError(f"probe overrides (the item's set:, --set): {exc}") from None
    return config


# --------------------------------------------------------------------------- the world side


def inject_item(world: World, item: ProbeItem, rng: np.random.Generator) -> int:
    """Write ``item`` into the next free catalogue row of ``world``, created now; its id.

    Call it before a ``Simulation`` is built over ``world`` (a new row may reallocate the
    catalogue's columns). The embedding is the topic centroid plus noise from ``rng``."""
    cat = world.catalog
    names = cat.topic_names
    if item.topic not in names:
        close = difflib.get_close_matches(item.topic, names, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ProbeError(
            f"topic {item.topic!r} is not a topic of this world.{hint} Topics: {', '.join(names)}"
        )
    topic = names.index(item.topic)
    dim = cat.embedding.shape[1]
    noise = rng.standard_normal(dim) * (item.spread / math.sqrt(dim))
    emb = cat.topic_centroids[topic].astype(np.float64) + noise
    emb /= max(float(np.linalg.norm(emb)), 1e-12)
    rows = cat.add_items(
        title=[item.title],
        summary=[item.summary],
        topic=topic,
        embedding=emb[None, :],
        quality=item.quality,
        stance=item.stance,
        created_tick=world.clock.tick,
        misinfo=item.misinfo,
    )
    return int(rows[0])


def user_frame(world: World, user_model: object | None = None) -> pd.DataFrame:
    """One row per user (index = user id) with the columns a segment expression may name.

    ``user`` (id); the traits :data:`TRAIT_COLUMNS` (``opinion`` as it is now); ``topic`` (the
    favourite topic: argmax of taste · topic centroids); ``followers`` and ``following``
    (counts); ``llm`` (driven by a language model); and the persona fields
    :data:`PERSONA_COLUMNS` of users who have a persona (``user_model.minds``, as
    :class:`~recoworld.users.llm.LLMUserModel` keeps them).
    """
    import pandas as pd

    pop, cat, graph = world.population, world.catalog, world.graph
    n = pop.n_users
    affinity = np.einsum("nd,td->nt", pop.taste, cat.topic_centroids)
    favourite = np.asarray(cat.topic_names, dtype=object)[affinity.argmax(axis=1)]
    is_llm = getattr(user_model, "is_llm", None)
    columns: dict[str, Any] = {"user": np.arange(n, dtype=np.int64)}
    for name in TRAIT_COLUMNS:
        columns[name] = np.asarray(getattr(pop, name), dtype=np.float64).copy()
    columns["topic"] = favourite
    columns["followers"] = np.diff(graph.followers().indptr).astype(np.int64)
    columns["following"] = np.diff(graph.indptr).astype(np.int64)
    columns["llm"] = np.zeros(n, bool) if is_llm is None else np.asarray(is_llm, bool).copy()
    text: dict[str, NDArray[np.object_]] = {
        c: np.full(n, "", dtype=object) for c in PERSONA_COLUMNS if c != "age"
    }
    age = np.full(n, np.nan)
    minds = getattr(user_model, "minds", None) or {}
    for user, mind in minds.items():
        persona = getattr(mind, "persona", None)
        if persona is None:
            continue
        text["persona"][user] = persona.id
        for key in ("name", "gender", "occupation", "location"):
            text[key][user] = getattr(persona, key)
        for key in ("interests", "dislikes", "tags"):
            text[key][user] = ", ".join(getattr(persona, key))
        if persona.age is not None:
            age[user] = float(persona.age)
    for name in PERSONA_COLUMNS:
        columns[name] = age if name == "age" else text[name]
    return pd.DataFrame(columns)


def _columns_hint(frame: pd.DataFrame) -> str:
    return f"columns: {', '.join(map(str, frame.columns))}"


def select_segment(frame: pd.DataFrame, expression: str | None) -> NDArray[np.int64]:
    """The users (sorted ids) of ``frame`` (:func:`user_frame`) for which ``expression`` holds.

    The expression uses ``DataFrame.query``'s grammar (evaluated by ``DataFrame.eval`` with the
    python engine): comparisons, ``and`` / ``or`` / ``not``, ``in`` lists, arithmetic, and string
    methods (``occupation.str.contains('nurse')``). ``None`` or blank: every user. A bad
    expression, an unknown column or a result that is not one truth value per user raise
    :class:`ProbeError` naming the available columns.
    """
    users = frame["user"].to_numpy(np.int64)
    if expression is None or not expression.strip():
        return users.copy()
    if "@" in expression:
        raise ProbeError(
            f"segment {expression!r}: '@' (local variables) is not available in a segment; "
            f"name user {_columns_hint(frame)}"
        )
    try:
        result = frame.eval(expression, engine="python")
    except SyntaxError as exc:
        raise ProbeError(
            f"segment {expression!r}: not a valid expression ({exc.msg}); write a condition "
            f"such as \"opinion > 0.3 and topic == 'music'\" over the {_columns_hint(frame)}"
        ) from None
    except NameError as exc:
        name = re.search(r"name '([^']+)'", str(exc))
        unknown = name.group(1) if name else str(exc)
        close = difflib.get_close_matches(unknown, list(map(str, frame.columns)), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ProbeError(
            f"segment {expression!r}: unknown column {unknown!r}.{hint} Available "
            f"{_columns_hint(frame)}"
        ) from None
    except Exception as exc:  # pandas raises many kinds for ill-typed expressions
        raise ProbeError(
            f"segment {expression!r}: cannot be evaluated ({type(exc).__name__}: {exc}); "
            f"available {_columns_hint(frame)}"
        ) from None
    if isinstance(result, bool | np.bool_):
        mask = np.full(len(frame), bool(result))
    else:
        values = np.asarray(getattr(result, "to_numpy", lambda: result)())
        if values.shape != (len(frame),) or values.dtype != np.bool_:
            what = getattr(values, "dtype", type(result).__name__)
            raise ProbeError(
                f"segment {expression!r}: expected a condition (true or false for each user), "
                f'got values of type {what}; e.g. "sociability > 0.5" over the '
                f"{_columns_hint(frame)}"
            )
        mask = values
    return users[mask]


# --------------------------------------------------------------------------- the policy wrapper


class ProbePolicy:
    """The scenario's policy, with the probe item placed in slot 0 of the first slate each
    chosen user is served.

    For a chosen user not served yet, the slate is ``[item]`` followed by the inner policy's
    slate without the item (its first ``k − 1`` other items, in order, with their scores and
    propensities); the item's score is NaN (not scored) and its propensity 1. Every other row is
    the inner policy's, untouched. Everything else (``update``, ``privileged``,
    ``wants_feedback``, ``drain_records``, ``close``, ``stop_reason``, ``score``, ...) is the
    inner policy's.

    Attributes:
        served: user → tick of the slate that carried the item.
    """

    def __init__(
        self, inner: Recommender, item: int, users: NDArray[np.integer], n_users: int
    ) -> None:
        self.inner = inner
        self.item = int(item)
        self.pending = np.zeros(n_users, dtype=bool)
        self.pending[np.asarray(users, dtype=np.int64)] = True
        self.served: dict[int, int] = {}
        self.name = f"probe[{inner.name}]"

    def recommend(self, request: RecommendRequest) -> Slates:
        from recoworld.policies.base import Slates

        slates = self.inner.recommend(request)
        rows = np.flatnonzero(self.pending[request.users])
        k = request.k
        if rows.size == 0 or np.shape(slates.items) != (request.n, k):
            return slates  # nothing to place (or a malformed slate, which validation reports)
        items = np.array(slates.items, dtype=np.int32)
        scores = np.array(slates.scores, dtype=np.float32)
        prop = np.array(slates.propensities, dtype=np.float32)
        # The inner items other than the probe item first, in their order; keep k − 1 of them.
        order = np.argsort(items[rows] == self.item, axis=1, kind="stable")[:, : k - 1]
        for column in (items, scores, prop):
            column[rows, 1:] = np.take_along_axis(column[rows], order, axis=1)
        items[rows, 0] = self.item
        scores[rows, 0] = np.nan
        prop[rows, 0] = 1.0
        users = request.users[rows]
        self.pending[users] = False
        self.served.update(dict.fromkeys(users.tolist(), int(request.tick)))
        return Slates(items=items, scores=scores, propensities=prop)

    def update(self, feedback: Feedback) -> None:
        self.inner.update(feedback)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)


# --------------------------------------------------------------------------- preparing, running


@dataclass(slots=True)
class Probe:
    """A prepared probe (:func:`prepare_probe`): the simulation with the item in its catalogue
    and :class:`ProbePolicy` installed, the segment and the chosen users. :meth:`run` runs it
    and returns the report."""

    sim: Simulation
    item: ProbeItem
    item_id: int
    segment: str | None
    frame: pd.DataFrame
    segment_users: NDArray[np.int64]
    chosen: NDArray[np.int64]
    policy: ProbePolicy
    start_now: bool
    by: str | None = None

    @property
    def path(self) -> Path:
        assert self.sim.path is not None
        return Path(self.sim.path)

    def run(
        self,
        *,
        progress: Callable[[TickStats], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> ProbeReport:
        """Run the simulation to its horizon (or until ``should_stop``), then compute, write
        (``probe.json``, ``segments.csv``) and return the report."""
        result = self.sim.run(progress=progress, should_stop=should_stop)
        return probe_report(self, status=result.status, ticks=result.ticks)


def prepare_probe(
    item: ProbeItem | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    segment: str | None = None,
    users: int = DEFAULT_USERS,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = None,
    ticks: int | None = None,
    start_now: bool = True,
    by: str | None = None,
) -> Probe:
    """Build the probe's simulation (recording into ``out``), inject the item, select the
    segment, draw up to ``users`` chosen users from it and install :class:`ProbePolicy`.

    ``start_now``: start the chosen users' sessions at tick 0 (else the item waits for each
    chosen user's own next visit). ``by``: a column of :func:`user_frame` to break the chosen
    users' results down by. ``overrides``, ``seed``, ``ticks``: see :func:`probe_config`.
    """
    from recoworld.rng import RngTree
    from recoworld.schedule import Simulation
    from recoworld.world.world import World

    spec = item if isinstance(item, ProbeItem) else load_item(item)
    if users < 1:
        raise ProbeError(f"users: expected an integer >= 1, got {users}")
    config = probe_config(spec, overrides, seed=seed, ticks=ticks)
    tree = RngTree(config.seed)  # the tree Simulation builds: the same world, the same streams
    world = World.from_config(config, tree)
    stream = tree.generator(PROBE_STREAM)
    item_id = inject_item(world, spec, stream)
    run_id = f"probe-{config.name}-seed{config.seed}"
    created = not Path(out).exists()
    sim = Simulation(config, world=world, out_dir=out, run_id=run_id)
    try:
        frame = user_frame(world, sim.user_model)
        if by is not None and by not in frame.columns:
            close = difflib.get_close_matches(by, list(map(str, frame.columns)), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ProbeError(f"by: unknown column {by!r}.{hint} Available {_columns_hint(frame)}")
        members = select_segment(frame, segment)
        if members.size == 0:
            raise ProbeError(
                f"segment {segment!r} matches no user of this world ({world.n_users} users); "
                "loosen it"
            )
        size = min(users, int(members.size))
        chosen = np.sort(stream.choice(members, size=size, replace=False)).astype(np.int64)
        policy = ProbePolicy(sim.policy, item_id, chosen, world.n_users)
        sim.policy = policy
        if start_now:
            sim.start_sessions(chosen)
    except BaseException:
        sim.finish("failed")
        if created:  # a folder this call made for a probe that could not start
            shutil.rmtree(out, ignore_errors=True)
        raise
    if sim.recorder is not None:
        sim.recorder.manifest["policy"] = policy.name
        sim.recorder.manifest["probe"] = {
            "item": item_id,
            "spec": spec.to_json(),
            "segment": segment,
            "segment_size": int(members.size),
            "chosen": int(chosen.size),
            "start_now": start_now,
        }
    return Probe(
        sim=sim,
        item=spec,
        item_id=item_id,
        segment=segment,
        frame=frame,
        segment_users=members,
        chosen=chosen,
        policy=policy,
        start_now=start_now,
        by=by,
    )


def run_probe(
    item: ProbeItem | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    segment: str | None = None,
    users: int = DEFAULT_USERS,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = None,
    ticks: int | None = None,
    start_now: bool = True,
    by: str | None = None,
    progress: Callable[[TickStats], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ProbeReport:
    """Prepare (:func:`prepare_probe`) and run a probe; the report (also written to ``out``)."""
    probe = prepare_probe(
        item,
        out,
        segment=segment,
        users=users,
        overrides=overrides,
        seed=seed,
        ticks=ticks,
        start_now=start_now,
        by=by,
    )
    return probe.run(progress=progress, should_stop=should_stop)


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """What a probe found: ``data`` (the content of ``probe.json``), ``groups`` (the rows of
    ``segments.csv``) and the run folder ``path``."""

    data: dict[str, Any]
    groups: pd.DataFrame
    path: Path

    @property
    def status(self) -> str:
        return str(self.data["status"])

    def group(self, name: str) -> dict[str, Any]:
        """One row of :attr:`groups` (``chosen``, ``control``, ``control_in_segment``, or a
        ``chosen[COLUMN=VALUE]`` breakdown row) as a dict."""
        rows = self.groups[self.groups["group"] == name]
        if rows.empty:
            raise KeyError(f"no group {name!r}; groups: {', '.join(self.groups['group'])}")
        return {str(k): _plain(v) for k, v in rows.iloc[0].to_dict().items()}


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN to ``None``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rate(count: int, total: int) -> float:
    return count / total if total else float("nan")


def _mean(values: NDArray[np.floating]) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


@dataclass(frozen=True, slots=True)
class _ItemLog:
    """The item's rows of the trajectory, per user."""

    n_users: int
    impressions: pd.DataFrame  # tick, user, rank, source, score
    responses: pd.DataFrame  # tick, user, clicked, liked, shared, commented, dwell, rating
    opinion_start: NDArray[np.float64]
    opinion_end: NDArray[np.float64]

    def users(self, frame: pd.DataFrame, column: str | None = None) -> NDArray[np.bool_]:
        """Per user: has a row in ``frame`` (where ``column`` is true, if given)."""
        mask = np.zeros(self.n_users, dtype=bool)
        rows = frame if column is None else frame[frame[column].to_numpy(bool)]
        mask[rows["user"].to_numpy(np.int64)] = True
        return mask

    def row(self, group: str, members: NDArray[np.bool_]) -> dict[str, Any]:
        imp, resp = self.impressions, self.responses
        in_imp = members[imp["user"].to_numpy(np.int64)]
        in_resp = members[resp["user"].to_numpy(np.int64)]
        examined = int((self.users(resp) & members).sum())
        counts = {
            name: int((self.users(resp, name) & members).sum())
            for name in ("clicked", "liked", "shared", "commented")
        }
        social = imp[imp["source"].astype(str).to_numpy() == "social"]
        clicks = resp[in_resp & resp["clicked"].to_numpy(bool)]
        shift = self.opinion_end[members] - self.opinion_start[members]
        return {
            "group": group,
            "users": int(members.sum()),
            "exposed": int((self.users(imp) & members).sum()),
            "impressions": int(in_imp.sum()),
            "examined": examined,
            **counts,
            "click_rate": _rate(counts["clicked"], examined),
            "like_rate": _rate(counts["liked"], examined),
            "share_rate": _rate(counts["shared"], examined),
            "comment_rate": _rate(counts["commented"], examined),
            "mean_dwell": _mean(clicks["dwell"].to_numpy(np.float64)),
            "mean_rating": _mean(clicks["rating"].to_numpy(np.float64)),
            "in_network": int((self.users(social) & members).sum()),
            "opinion_shift": _mean(shift),
        }


def _item_rows(run_dir: Path, table: str, item: int, columns: list[str]) -> pd.DataFrame:
    import pyarrow.compute as pc

    from recoworld.trajectory.reader import read_arrow

    data = read_arrow(run_dir, table, columns)
    return data.filter(pc.equal(data["item"], item)).to_pandas()


def _opinions(run_dir: Path, n_users: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    from recoworld.trajectory.reader import read_table

    ops = read_table(run_dir, "opinions", ["tick", "user", "opinion"])
    start = np.full(n_users, np.nan)
    end = np.full(n_users, np.nan)
    if not ops.empty:
        ticks = ops["tick"].to_numpy(np.int64)
        for target, tick in ((start, ticks.min()), (end, ticks.max())):
            rows = ops[ticks == tick]
            target[rows["user"].to_numpy(np.int64)] = rows["opinion"].to_numpy(np.float64)
    return start, end


def _spread(run_dir: Path, item: int, log: _ItemLog) -> dict[str, Any]:
    from recoworld.metrics.social import diffusion_trees

    social = _item_rows(
        run_dir, "social", item, ["tick", "user", "kind", "item", "parent_user", "recipients"]
    )
    shares = social[social["kind"].astype(str).isin(["share", "post"])]
    trees = diffusion_trees(shares)
    imp = log.impressions
    in_network = imp[imp["source"].astype(str).to_numpy() == "social"]
    sizes = trees["size"].to_numpy(np.int64)
    largest = int(np.argmax(sizes)) if sizes.size else -1
    return {
        "adopters": int(shares["user"].nunique()),
        "shares": int((shares["kind"].astype(str) == "share").sum()),
        "share_recipients": int(shares["recipients"].sum()),
        "reach": int(imp["user"].nunique()),
        "reach_in_network": int(in_network["user"].nunique()),
        "impressions": len(imp),
        "impressions_in_network": len(in_network),
        "cascades": len(trees),
        "largest_cascade": int(sizes[largest]) if sizes.size else 0,
        "max_depth": int(trees["depth"].max()) if sizes.size else 0,
        "mean_cascade_size": float(sizes.mean()) if sizes.size else float("nan"),
        "mean_structural_virality": _mean(trees["structural_virality"].to_numpy(np.float64)),
        "largest_structural_virality": (
            float(trees["structural_virality"].to_numpy()[largest]) if sizes.size else float("nan")
        ),
        "first_share_tick": int(shares["tick"].min()) if len(shares) else None,
        "last_share_tick": int(shares["tick"].max()) if len(shares) else None,
    }


def decision_notes(text: str | None) -> list[dict[str, str]] | None:
    """The entries of one LLM page decision (the ``output`` of a valid ``page`` row of
    ``llm_calls``), one per item of the page in rank order, as the LLM user model applies them:
    ``action``, ``why`` and ``comment`` (the comment's text where the action is ``comment``,
    else empty), whitespace collapsed; an entry that is not an object is all empty. ``None`` when
    the output is missing or is not a decision."""
    if not text:
        return None
    try:
        entries = json.loads(text, strict=False).get("items", [])
    except (ValueError, AttributeError):
        return None
    if not isinstance(entries, list):
        return None
    out: list[dict[str, str]] = []
    for entry in entries:
        fields = entry if isinstance(entry, dict) else {}
        action = str(fields.get("action", ""))
        comment = " ".join(str(fields.get("comment") or "").split())
        out.append(
            {
                "action": action,
                "why": " ".join(str(fields.get("why") or "").split()),
                "comment": comment if action == "comment" else "",
            }
        )
    return out


def _llm_feedback(
    run_dir: Path, item: int, log: _ItemLog, chosen: NDArray[np.bool_]
) -> dict[str, list[dict[str, Any]]]:
    """Comments and reasons LLM users gave about the item, from their page decisions (the
    ``output`` of valid, non-fallback ``page`` rows of ``llm_calls``), on pages where they
    examined it: ``comments`` where the decision was to comment (the comment's text),
    ``rationales`` for every decision about the item (its ``why``). The item's entry in a
    decision is found by its position among the page's impressions, in rank order, as the
    LLM user model reads the decision."""
    import pyarrow.compute as pc

    from recoworld.trajectory.reader import read_arrow, read_table

    out: dict[str, list[dict[str, Any]]] = {"comments": [], "rationales": []}
    calls = read_table(run_dir, "llm_calls", ["tick", "user", "purpose", "valid", "fallback"])
    if calls.empty:
        return out
    calls["row"] = np.arange(len(calls))
    pages = calls[
        (calls["purpose"].astype(str) == "page")
        & calls["valid"].to_numpy(bool)
        & ~calls["fallback"].to_numpy(bool)
    ]
    seen = log.responses[["tick", "user"]].drop_duplicates()
    pages = pages.merge(seen, on=["tick", "user"], how="inner")
    if pages.empty:
        return out
    outputs = read_arrow(run_dir, "llm_calls", ["output"]).column("output").to_pylist()
    users = pages["user"].to_numpy(np.int64)
    imps = read_arrow(run_dir, "impressions", ["tick", "user", "item", "rank"])
    imps = imps.filter(pc.is_in(imps["user"], value_set=_int_array(np.unique(users))))
    page_items = imps.to_pandas().sort_values(["tick", "user", "rank"], kind="stable")
    grouped = {key: g["item"].to_numpy(np.int64) for key, g in page_items.groupby(["tick", "user"])}
    for tick, user, row in zip(
        pages["tick"].tolist(), users.tolist(), pages["row"].tolist(), strict=True
    ):
        text = outputs[row]
        shown = grouped.get((tick, user))
        if not text or shown is None:
            continue
        position = np.flatnonzero(shown == item)
        entries = decision_notes(text)
        if entries is None or position.size == 0 or position[0] >= len(entries):
            continue
        entry = entries[int(position[0])]
        base = {"user": user, "tick": tick, "chosen": bool(chosen[user])}
        if entry["comment"]:  # a comment the user posted (``commented``)
            out["comments"].append({**base, "action": entry["action"], "text": entry["comment"]})
        if entry["why"]:
            out["rationales"].append({**base, "action": entry["action"], "text": entry["why"]})
    return out


def _int_array(values: NDArray[np.int64]) -> Any:
    import pyarrow as pa

    return pa.array(values.astype(np.int32), type=pa.int32())


def _label(value: Any) -> str:
    import pandas as pd

    return "(none)" if value is None or value == "" or pd.isna(value) else str(value)


def _breakdown(
    log: _ItemLog, frame: pd.DataFrame, by: str, chosen: NDArray[np.bool_]
) -> list[dict[str, Any]]:
    """Rows ``chosen[BY=VALUE]``: the chosen users split by column ``by`` — by value, or by
    quartile for a numeric column with more than 8 values among them; ``(none)``: no value."""
    import pandas as pd

    values = frame[by][chosen]
    numeric = pd.api.types.is_numeric_dtype(values.dtype)
    if numeric and not pd.api.types.is_bool_dtype(values.dtype) and values.nunique() > 8:
        bins = pd.qcut(values, 4, duplicates="drop")
        order = [str(c) for c in bins.cat.categories]
        labels = bins.astype(str).where(bins.notna(), "(none)")
    else:
        labels = values.map(_label)
        order = sorted(set(labels))
    keys = np.full(len(frame), None, dtype=object)
    keys[chosen] = labels.to_numpy(dtype=object)
    present = set(labels)
    order = [k for k in order if k in present] + (["(none)"] if "(none)" not in order else [])
    return [
        log.row(f"chosen[{by}={key}]", chosen & (keys == key)) for key in order if key in present
    ]


def probe_report(probe: Probe, *, status: str, ticks: int) -> ProbeReport:
    """The report of a probe whose run has finished, from its trajectory; written to the run
    folder as ``probe.json`` and ``segments.csv``.

    Groups (users): ``chosen``; ``control`` (every user not chosen); ``control_in_segment`` (the
    segment's users not chosen, when there are any). Per group: ``users``; ``exposed`` (with an
    impression of the item), ``impressions``; ``examined``, ``clicked``, ``liked``, ``shared``,
    ``commented`` (users who did so at least once) and their rates per examining user;
    ``mean_dwell`` and ``mean_rating`` over the item's clicks; ``in_network`` (users who got it
    from a followee); ``opinion_shift`` (mean opinion change over the run). ``spread``: the
    item's adopters, shares and the cascades of :func:`~recoworld.metrics.social.diffusion_trees`,
    its reach (in-network and in total). ``llm``: LLM users' ``comments`` and ``rationales``.
    """
    import pandas as pd

    run_dir = probe.path
    n = probe.sim.world.n_users
    item = probe.item_id
    imp = _item_rows(
        run_dir, "impressions", item, ["tick", "user", "item", "rank", "source", "score"]
    )
    resp = _item_rows(
        run_dir,
        "responses",
        item,
        ["tick", "user", "item", "clicked", "liked", "shared", "commented", "dwell", "rating"],
    )
    start, end = _opinions(run_dir, n)
    log = _ItemLog(n, imp, resp, start, end)
    chosen = np.zeros(n, dtype=bool)
    chosen[probe.chosen] = True
    segment = np.zeros(n, dtype=bool)
    segment[probe.segment_users] = True
    rows = [log.row("chosen", chosen), log.row("control", ~chosen)]
    if (segment & ~chosen).any():
        rows.append(log.row("control_in_segment", segment & ~chosen))
    breakdown = _breakdown(log, probe.frame, probe.by, chosen) if probe.by else []
    cat = probe.sim.world.catalog
    served = probe.policy.served
    data: dict[str, Any] = {
        "item": {"id": item, **probe.item.to_json()},
        "scenario": probe.sim.config.name,
        "seed": probe.sim.config.seed,
        "ticks": ticks,
        "status": status,
        "policy": probe.policy.name,
        "segment": {
            "expression": probe.segment,
            "size": int(probe.segment_users.size),
            "chosen": int(probe.chosen.size),
            "served": len(served),
            "start_now": probe.start_now,
        },
        "chosen_users": probe.chosen.tolist(),
        "groups": [{k: _plain(v) for k, v in r.items()} for r in rows],
        "by": (
            {
                "column": probe.by,
                "groups": [{k: _plain(v) for k, v in r.items()} for r in breakdown],
            }
            if probe.by
            else None
        ),
        "spread": {k: _plain(v) for k, v in _spread(run_dir, item, log).items()},
        "item_counters": {
            name: int(getattr(cat, name)[item])
            for name in ("impressions", "clicks", "likes", "shares", "comments", "votes")
        },
        "llm": _llm_feedback(run_dir, item, log, chosen),
    }
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    (run_dir / PROBE_FILE).write_text(text, encoding="utf-8")
    groups = pd.DataFrame([*rows, *breakdown], columns=list(GROUP_COLUMNS))
    groups.to_csv(run_dir / SEGMENTS_FILE, index=False)
    return ProbeReport(data=data, groups=groups, path=run_dir)


# --------------------------------------------------------------------------- printing


def _cell(value: Any, name: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if name.endswith("_rate"):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_report(report: ProbeReport, console: Any = None) -> None:
    """The report as rich tables: the groups side by side, the spread, LLM users' words."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console(width=max(100, Console().width))
    data = report.data
    item, seg = data["item"], data["segment"]
    groups = [*data["groups"], *((data["by"] or {}).get("groups") or [])]
    console.print(
        f'[bold]recoworld probe[/bold] — item {item["id"]} "{escape(item["title"])}" '
        f"({escape(item['topic'])}, quality {item['quality']:g}, stance {item['stance']:g}"
        f"{', false' if item['misinfo'] else ''}); {data['status']}, {data['ticks']} ticks"
    )
    console.print(
        f"segment {escape(seg['expression'] or '(everyone)')}: {seg['size']:,} users, "
        f"{seg['chosen']:,} chosen, {seg['served']:,} served the item in slot 0"
    )
    table = Table(title="engagement with the item, per group of users")
    table.add_column("metric")
    for row in groups:
        table.add_column(escape(row["group"]), justify="right")
    for name in GROUP_COLUMNS[1:]:
        table.add_row(name, *(_cell(row[name], name) for row in groups))
    console.print(table)
    spread = Table(title="spread")
    spread.add_column("metric")
    spread.add_column("value", justify="right")
    for name, value in data["spread"].items():
        spread.add_row(name, _cell(value, name))
    console.print(spread)
    for kind in ("comments", "rationales"):
        said = data["llm"][kind]
        if not said:
            continue
        words = Table(title=f"LLM users' {kind} on the item ({len(said)})")
        for column in ("user", "tick", "chosen", "action", "text"):
            words.add_column(column)
        for entry in said[:20]:
            words.add_row(
                str(entry["user"]),
                str(entry["tick"]),
                "yes" if entry["chosen"] else "no",
                escape(entry["action"]),
                escape(entry["text"]),
            )
        console.print(words)


# --------------------------------------------------------------------------- the command

_EXAMPLES = """\
examples:
  recoworld probe envs/probes/example-item.yaml
  recoworld probe item.yaml --segment "topic == 'music'" --users 200
  recoworld probe item.yaml --segment "opinion > 0.3 and sociability > 0.5" --by topic
  recoworld probe item.yaml --segment "llm" --set llm.fraction=0.01 --set llm.client.model=M
  recoworld probe item.yaml --set world.n_users=2000 --ticks 48 --out runs/p1
"""


def add_probe_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``recoworld probe`` on ``subparsers`` (``parser.add_subparsers()``); the
    sub-parser's default ``func`` is :func:`probe_main`."""
    parser = subparsers.add_parser(
        "probe",
        help="inject a new item, show it to a segment of users, report engagement and spread",
        description=(
            "Creator probe: inject the item of ITEM (YAML: title, summary, topic, stance,\n"
            "quality, misinfo, scenario, ticks, seed, set) into its scenario's world, put it in\n"
            "slot 0 of the first page of up to N users of a segment, run, and report per group\n"
            "(chosen users vs the rest) engagement, in-network spread and cascades, and LLM\n"
            "users' comments; written as probe.json and segments.csv in the run folder.\n"
            "See docs/probe.md."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("item", type=Path, metavar="ITEM", help="item file (YAML; docs/probe.md)")
    parser.add_argument(
        "--segment",
        metavar="EXPR",
        help="filter over user columns (pandas query grammar), e.g. "
        "\"opinion > 0.3 and topic == 'music'\" (default: everyone)",
    )
    parser.add_argument(
        "--users",
        type=int,
        metavar="N",
        default=DEFAULT_USERS,
        help=f"show the item to at most N users of the segment, drawn at random "
        f"(default {DEFAULT_USERS})",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="run folder (default: runs/probe-<item>-seed<seed>)"
    )
    parser.add_argument(
        "--by", metavar="COLUMN", help="break the chosen users' results down by a column"
    )
    parser.add_argument("--seed", type=int, help="root seed (default: the item's or scenario's)")
    parser.add_argument(
        "--ticks", type=int, metavar="N", help="ticks to follow the item (default: one day)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, on top of the item's set: (repeatable)",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="wait for each chosen user's own next visit instead of starting sessions at once",
    )
    parser.add_argument("--json", action="store_true", help="print probe.json instead of tables")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=probe_main)
    return parser


def probe_main(args: argparse.Namespace) -> int:
    """Run ``recoworld probe`` with parsed ``args``: 0 when done, 2 on a user error (one line on
    stderr), 130 when interrupted (the report covers the completed ticks)."""
    try:
        return _probe_command(args)
    except RecoworldError as exc:
        message = " ".join(str(exc).split())
        print(f"recoworld: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("recoworld: aborted; every completed tick is saved", file=sys.stderr)
        return 130


def _probe_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from recoworld._progress import tick_progress
    from recoworld.cli import _parse_set, _StopFlag

    item = load_item(args.item)
    overrides = _parse_set(args.set)
    err = Console(stderr=True)
    quiet = args.quiet or args.json
    out = args.out
    if out is None:
        seed = probe_config(item, overrides, seed=args.seed, ticks=args.ticks).seed
        out = Path("runs") / f"probe-{args.item.stem}-seed{seed}"
    with err.status("building the world…", spinner="dots") if not quiet else _Null():
        probe = prepare_probe(
            item,
            out,
            segment=args.segment,
            users=args.users,
            overrides=overrides,
            seed=args.seed,
            ticks=args.ticks,
            start_now=not args.wait,
            by=args.by,
        )
    sim = probe.sim
    title = f"probe {args.item.stem}"
    with tick_progress(sim, title, quiet=quiet) as on_tick, _StopFlag() as stop:
        report = probe.run(progress=on_tick, should_stop=stop)
    if args.json:
        print(json.dumps(report.data, indent=2))
    else:
        print_report(report)
        print(f"Probe folder: {Path(out).resolve()} ({PROBE_FILE}, {SEGMENTS_FILE})")
    if report.status == "interrupted":
        print(
            f"recoworld: interrupted after {report.data['ticks']} ticks; the report covers them",
            file=sys.stderr,
        )
        return 130
    if report.status == "budget_exhausted":
        reason = getattr(sim.user_model, "stop_reason", None) or getattr(
            sim.policy, "stop_reason", None
        )
        print(
            f"recoworld: stopped early: {reason}; the report covers the ticks run", file=sys.stderr
        )
    return 0


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
