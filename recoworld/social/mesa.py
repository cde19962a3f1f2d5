"""The Mesa face: a recoworld simulation as a ``mesa.Model``, its users as thin ``mesa.Agent``\\s.

:class:`RecoworldModel` wraps one :class:`~recoworld.schedule.Simulation`; ``step()`` is one tick
of that schedule (``Simulation.step``), then one collection of the model's
``mesa.DataCollector``. Nothing here re-implements a stage: the model steps exactly as a plain
``Simulation`` with the same config and seed, byte for byte. :class:`UserAgent`\\s are views of
the columnar population (one per user, holding only the user's index); they do not act — the
schedule moves every user at once — and their properties read the world's arrays live.

Model reporters (:data:`MODEL_REPORTERS`) are computed from the world's arrays, never by
iterating agents. :func:`sweep` runs a factorial experiment with ``mesa.batch_run`` and returns
its rows as a ``pandas.DataFrame``.

This module imports Mesa, and ``import mesa`` runs
``multiprocessing.set_start_method("spawn", force=True)`` (in ``mesa.batchrunner``): it is never
imported by ``import recoworld`` or ``recoworld.social``, only when asked for. See
``docs/mesa.md``.
"""

from __future__ import annotations

import inspect
import itertools
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recoworld.errors import ConfigError, DependencyNotInstalled

try:
    import mesa  # type: ignore[import-untyped]
except ImportError as exc:
    raise DependencyNotInstalled(
        'recoworld.social.mesa needs Mesa: pip install "recoworld[mesa]"'
    ) from exc

from recoworld._config import override
from recoworld._parallel import run_tasks
from recoworld.config import ScenarioConfig
from recoworld.scenario import load_scenario
from recoworld.schedule import Simulation, TickStats

if TYPE_CHECKING:
    from recoworld.world.world import World

__all__ = [
    "AGENT_REPORTERS",
    "MODEL_REPORTERS",
    "RecoworldModel",
    "UserAgent",
    "model_config",
    "sweep",
]

#: Model-level keyword arguments of :class:`RecoworldModel` that are not config keys.
_MODEL_KWARGS = ("scenario", "seed", "overrides", "agents", "out_dir")


# -- configuration ---------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """numpy scalars (from ``np.linspace``, ``np.arange``) as Python values, for the config."""
    return value.item() if isinstance(value, np.generic) else value


def model_config(
    scenario: str | os.PathLike[str] | ScenarioConfig = "social",
    *,
    seed: int | None = 0,
    overrides: Mapping[str, Any] | None = None,
    **settings: Any,
) -> ScenarioConfig:
    """The scenario a :class:`RecoworldModel` with these arguments runs.

    ``scenario`` is a shipped name, a YAML path or a config; ``overrides`` maps dotted keys
    (``"users.opinion_epsilon"``) to values; ``settings`` are the same keys as keyword
    arguments with ``__`` for ``.`` (``users__opinion_epsilon=0.3``), applied after
    ``overrides``; ``seed`` is the run seed (``None``: the scenario's own).

    Raises:
        ConfigError: an unknown key or an impossible value (from :func:`recoworld.config.override`),
            or a ``seed`` inside ``overrides``.
        ScenarioNotFoundError: no such scenario.
    """
    updates: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        dotted = str(key).replace("__", ".")
        if dotted == "seed":
            raise ConfigError("seed: give the run seed as seed=..., not inside overrides")
        updates[dotted] = _plain(value)
    for key, value in settings.items():
        updates[key.replace("__", ".")] = _plain(value)
    if seed is not None:
        updates["seed"] = _plain(seed)
    base = scenario if isinstance(scenario, ScenarioConfig) else load_scenario(scenario)
    return override(base, updates)


# -- agents ----------------------------------------------------------------------------------
class UserAgent(mesa.Agent):  # type: ignore[misc]
    """One simulated user as a Mesa agent: a view of row ``user`` of the world's columns.

    It holds only the user's index; every property reads the population (or the follow graph)
    of the model's simulation as it is now, and nothing is copied. Agents do not act: the
    schedule moves every user at once, so :meth:`step` does nothing.
    """

    def __init__(self, model: RecoworldModel, user: int) -> None:
        super().__init__(model)
        self.user = user

    @property
    def opinion(self) -> float:
        """Opinion in [−1, 1]."""
        return float(self.model.sim.world.population.opinion[self.user])

    @property
    def satisfaction(self) -> float:
        """Current satisfaction (session mindset)."""
        return float(self.model.sim.world.population.satisfaction[self.user])

    @property
    def fatigue(self) -> float:
        """Current fatigue (session mindset)."""
        return float(self.model.sim.world.population.fatigue[self.user])

    @property
    def in_session(self) -> bool:
        """Whether the user is in a session (served a page this tick)."""
        return bool(self.model.sim.world.population.in_session[self.user])

    @property
    def churned(self) -> bool:
        """Whether the user has left for good."""
        return bool(self.model.sim.world.population.churned[self.user])

    @property
    def followees(self) -> NDArray[np.int32]:
        """The users this user follows: a read-only view of its row of the follow graph as it
        is now (read it again after a tick: follows may change)."""
        row: NDArray[np.int32] = self.model.sim.world.graph.following(self.user).view()
        row.flags.writeable = False
        return row

    @property
    def followers(self) -> NDArray[np.int32]:
        """The users who follow this user: a read-only view of the transposed graph's row."""
        row: NDArray[np.int32] = self.model.sim.world.graph.followers().following(self.user).view()
        row.flags.writeable = False
        return row

    def step(self) -> None:
        """Nothing: the schedule moves every user at once in :meth:`RecoworldModel.step`."""

    def __repr__(self) -> str:
        return f"UserAgent(user={self.user})"


# -- reporters (vectorized over the world's arrays) ------------------------------------------
def active_users(model: RecoworldModel) -> int:
    """Users served a page in the last tick (in session)."""
    stats = model.tick_stats
    return stats.active if stats is not None else 0


def impressions(model: RecoworldModel) -> int:
    """Items shown in the last tick (slates and in-network items)."""
    stats = model.tick_stats
    return stats.impressions if stats is not None else 0


def clicks(model: RecoworldModel) -> int:
    """Clicks in the last tick."""
    stats = model.tick_stats
    return stats.clicks if stats is not None else 0


def shares(model: RecoworldModel) -> int:
    """Shares in the last tick."""
    return model.tick_shares


def ctr(model: RecoworldModel) -> float:
    """Clicks per impression in the last tick (NaN when nothing was shown)."""
    shown = impressions(model)
    return clicks(model) / shown if shown else float("nan")


def churned_users(model: RecoworldModel) -> int:
    """Users who have left for good, so far."""
    return int(np.count_nonzero(model.sim.world.population.churned))


def opinion_mean(model: RecoworldModel) -> float:
    """Mean opinion of the population."""
    return float(np.mean(model.sim.world.population.opinion, dtype=np.float64))


def polarization(model: RecoworldModel) -> float:
    """Variance of the opinions (``recoworld.metrics.social.polarization``'s ``variance``)."""
    from recoworld.metrics.social import polarization as _polarization

    return float(_polarization(model.sim.world.population.opinion)["variance"])


def bimodality(model: RecoworldModel) -> float:
    """Bimodality coefficient of the opinions (> 5/9 suggests two camps)."""
    from recoworld.metrics.social import polarization as _polarization

    return float(_polarization(model.sim.world.population.opinion)["bimodality"])


def extremity(model: RecoworldModel) -> float:
    """Share of users with ``|opinion| > 0.5``."""
    from recoworld.metrics.social import polarization as _polarization

    return float(_polarization(model.sim.world.population.opinion)["extremity"])


def echo_chamber(model: RecoworldModel) -> float:
    """Pearson correlation between each user's opinion and the mean opinion of its followees
    (``recoworld.metrics.social.echo_chamber_correlation``)."""
    from recoworld.metrics.social import echo_chamber_correlation

    world = model.sim.world
    return float(echo_chamber_correlation(world.graph, world.population.opinion))


#: The model reporters of every :class:`RecoworldModel` (name → function of the model).
MODEL_REPORTERS = {
    "active_users": active_users,
    "impressions": impressions,
    "clicks": clicks,
    "shares": shares,
    "ctr": ctr,
    "churned_users": churned_users,
    "opinion_mean": opinion_mean,
    "polarization": polarization,
    "bimodality": bimodality,
    "extremity": extremity,
    "echo_chamber": echo_chamber,
}

#: The agent reporters, when the model has agents (name → :class:`UserAgent` attribute).
AGENT_REPORTERS = {"opinion": "opinion", "satisfaction": "satisfaction"}


# -- the model -------------------------------------------------------------------------------
class RecoworldModel(mesa.Model):  # type: ignore[misc]
    """A recoworld simulation as a Mesa model: each ``step()`` is one tick of the schedule.

    Args:
        scenario: shipped scenario name, YAML path, or a prepared config.
        seed: the run seed (also seeds Mesa's ``random`` and ``rng``, which the simulation does
            not use); ``None``: the scenario's own.
        overrides: dotted config keys → values (``{"world.n_users": 2000}``).
        agents: create one :class:`UserAgent` per user (skip for big populations: each agent
            also adds a row per user and collection to the agent data).
        out_dir: record the trajectory to this run folder (default: no recording).
        **settings: any dotted config key as a keyword argument with ``__`` for ``.``
            (``users__opinion_epsilon=0.3``, ``feed__social_slots=2``, ``world__n_users=2000``),
            so ``mesa.batch_run`` can sweep it.

    Attributes:
        sim: the :class:`~recoworld.schedule.Simulation`.
        config: its scenario config.
        user_agents: the agents, ``user_agents[u]`` for user ``u`` (empty without agents).
        tick_stats: what the last tick did (``None`` before the first).
        tick_shares: shares in the last tick.
        datacollector: a ``mesa.DataCollector`` with :data:`MODEL_REPORTERS` (and
            :data:`AGENT_REPORTERS` with agents), collected once at construction (Mesa step 0)
            and after every tick, so its row ``s`` is the state after ``s`` ticks.

    ``running`` turns False on the first ``step()`` after the scenario's horizon
    (``sim.n_ticks`` ticks) or after the tick in which the last user churned; that call
    simulates and collects nothing (see :attr:`done`). Stopping one call late is what lets
    ``mesa.batch_run``, which stops on ``running`` and reports up to step ``model.steps − 1``,
    report the final tick. The simulation is then finished (its trajectory closed, if recorded).

    Raises:
        ConfigError: an unknown config key or an impossible value.
        ScenarioNotFoundError: no such scenario.
    """

    def __init__(
        self,
        *,
        scenario: str | os.PathLike[str] | ScenarioConfig = "social",
        seed: int | None = 0,
        overrides: Mapping[str, Any] | None = None,
        agents: bool = True,
        out_dir: str | os.PathLike[str] | None = None,
        **settings: Any,
    ) -> None:
        config = model_config(scenario, seed=seed, overrides=overrides, **settings)
        super().__init__(seed=config.seed)
        self.config = config
        self.sim = Simulation(config, out_dir=out_dir)
        self.tick_stats: TickStats | None = None
        self.tick_shares = 0
        self.status: str | None = None
        self._end_tick = self.sim.world.clock.tick + self.sim.n_ticks
        n_users = self.sim.world.n_users
        self.user_agents: list[UserAgent] = (
            [UserAgent(self, u) for u in range(n_users)] if agents else []
        )
        self.datacollector = mesa.DataCollector(
            model_reporters=dict(MODEL_REPORTERS),
            agent_reporters=dict(AGENT_REPORTERS) if agents else None,
        )
        self.datacollector.collect(self)

    @property
    def world(self) -> World:
        """The simulation's world (its arrays are the state every agent and reporter reads)."""
        return self.sim.world

    @property
    def tick(self) -> int:
        """The simulation's clock: ticks completed."""
        return self.sim.world.clock.tick

    @property
    def done(self) -> bool:
        """Nothing left to simulate: the horizon is reached, every user has churned, or the
        simulation was finished (an LLM budget spent, :meth:`finish`)."""
        return self._stop_status() is not None

    def _stop_status(self) -> str | None:
        if self.status is not None:
            return self.status
        sim = self.sim
        if sim.stop_reason is not None:  # e.g. a spent LLM budget, as in run()
            return "budget_exhausted"
        if self.tick >= self._end_tick or bool(sim.world.population.churned.all()):
            return "completed"
        return None

    def step(self) -> None:
        """One tick of the schedule (``Simulation.step``), then one data collection; past the
        end (see :attr:`done`) nothing is simulated, ``running`` turns False and the simulation
        is finished."""
        status = self._stop_status()
        if status is not None:
            self.running = False
            self.finish(status)
            return
        before = self.sim.totals.shares
        self.tick_stats = self.sim.step()
        self.tick_shares = self.sim.totals.shares - before
        self.datacollector.collect(self)

    def finish(self, status: str = "completed") -> None:
        """Finish the simulation (``Simulation.finish``: open sessions closed, the trajectory and
        any LLM connections closed); ``interrupted`` when stopping before the end. Further
        steps do nothing. Called by :meth:`step` at the end; idempotent.

        The model's agents stay; agents created for it afterwards may repeat ids (Mesa's id
        counter for it is dropped so that the model can be freed)."""
        if self.status is None:
            self.status = status
            self.running = False
            self.sim.finish(status)
            # Mesa 3.3 and earlier count agent ids in a class-level dict keyed by model, which
            # keeps every model that ever created an agent alive (mesa#3179): let this one go.
            ids = getattr(mesa.Agent, "_ids", None)
            if isinstance(ids, dict):
                ids.pop(self, None)


# -- sweeps ----------------------------------------------------------------------------------
def _values(name: str, values: Any) -> list[Any]:
    """The values ``mesa.batch_run`` would take for one parameter, except that a mapping (an
    ``overrides`` dict) is one value, not an iterable of its keys."""
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        return [values]
    out = list(values)
    if not out:
        raise ConfigError(f"{name}: expected at least one value to sweep, got an empty sequence")
    return out


def _run_one(
    run_id: int, iteration: int, kwargs: dict[str, Any], max_steps: int, period: int
) -> list[dict[str, Any]]:
    """One run through ``mesa.batch_run`` (one combination, one seed), rows renumbered."""
    params = {k: [v] for k, v in kwargs.items() if k != "seed"}
    extra: dict[str, Any] = {}
    if "rng" in inspect.signature(mesa.batch_run).parameters:
        # Newer Mesa seeds each run itself (rng=, iterations deprecated) and writes that seed
        # into the model's `seed` argument, over any `seed` among the parameters.
        extra["rng"] = [kwargs["seed"]]
    else:
        params["seed"] = [kwargs["seed"]]
        extra["iterations"] = 1
    rows: list[dict[str, Any]] = mesa.batch_run(
        RecoworldModel,
        parameters=params,
        number_processes=1,
        data_collection_period=period,
        max_steps=max_steps,
        display_progress=False,
        **extra,
    )
    for row in rows:
        row["RunId"] = run_id
        row["iteration"] = iteration
    return rows


def sweep(
    parameters: Mapping[str, Any],
    *,
    iterations: int = 1,
    max_steps: int | None = None,
    number_processes: int | None = 1,
    data_collection_period: int = -1,
    **fixed: Any,
) -> pd.DataFrame:
    """A factorial sweep of :class:`RecoworldModel` with ``mesa.batch_run``, as a DataFrame.

    Args:
        parameters: model keyword arguments to sweep, each a value or an iterable of values
            (``{"users__opinion_epsilon": [0.2, 0.6], "feed__social_slots": [0, 4]}``); every
            combination is run. A mapping (an ``overrides`` dict) counts as one value.
        iterations: replicates of each combination; replicate ``i`` runs with seed
            ``seed + i`` (``seed`` from ``fixed``, default 0), so replicates differ (Mesa's
            own ``iterations`` would rerun the same seed, which here gives the same run).
        max_steps: at most this many ticks per run (default: the scenario's horizon). As in
            ``mesa.batch_run``, a run stopped by ``max_steps`` reports steps ``0..max_steps``
            and simulates one more tick that it does not report.
        number_processes: runs in parallel on this many worker processes (``None``: one per
            CPU this process may use; 1: in this process). Workers are started with an
            explicit ``spawn`` context, not the global start method; a script that uses them
            must guard its entry point with ``if __name__ == "__main__":``.
        data_collection_period: report every this many steps (−1: only the last).
        **fixed: model keyword arguments held fixed (``scenario``, ``seed``, ``overrides``,
            ``agents``, ``world__n_users=2000``, ...). ``agents`` defaults to False here: with
            agents, ``mesa.batch_run`` reports one row per user and step.

    Returns:
        ``mesa.batch_run``'s rows: ``RunId``, ``iteration``, ``Step``, the run's keyword
        arguments (``seed`` included), the model reporters (and with agents ``AgentID`` and the
        agent reporters), ordered by run and step whatever the number of processes.

    Raises:
        ConfigError: an unknown config key or an impossible value in any combination (all are
            checked before anything runs), an empty list of values, an argument both swept and
            fixed, ``out_dir`` (runs would share one folder), or both ``iterations > 1`` and
            swept seeds.
    """
    if iterations < 1:
        raise ConfigError(f"iterations: expected an integer >= 1, got {iterations!r}")
    if max_steps is not None and max_steps < 0:
        raise ConfigError(f"max_steps: expected an integer >= 0 or None, got {max_steps!r}")
    if "out_dir" in parameters or "out_dir" in fixed:
        raise ConfigError("out_dir: not supported by sweep (every run would write to one folder)")
    if "seed" in parameters and iterations > 1:
        raise ConfigError("iterations: give either iterations > 1 or a list of seeds, not both")
    both = sorted(set(parameters) & set(fixed))
    if both:
        raise ConfigError(f"{both[0]}: given both in parameters and as a fixed argument")
    grid = {name: _values(name, values) for name, values in parameters.items()}
    fixed = {"agents": False, **fixed}
    base_seed = fixed.pop("seed", 0)
    if iterations > 1 and not isinstance(_plain(base_seed), int):
        raise ConfigError(f"seed: expected an integer with iterations > 1, got {base_seed!r}")

    runs: list[tuple[int, int, dict[str, Any]]] = []
    for i in range(iterations):
        for combo in itertools.product(*grid.values()):
            kwargs = {**dict(zip(grid, combo, strict=True)), **fixed}
            seed = kwargs.get("seed", base_seed)
            kwargs["seed"] = seed if iterations == 1 else _plain(seed) + i
            runs.append((len(runs), i, kwargs))

    scenarios: dict[Any, ScenarioConfig] = {}  # each scenario file read once
    for _, _, kwargs in runs:  # fail before anything runs, not in the middle of a sweep
        settings = {k: v for k, v in kwargs.items() if k not in _MODEL_KWARGS}
        name = kwargs.get("scenario", "social")
        key = os.fspath(name) if isinstance(name, str | os.PathLike) else id(name)
        if key not in scenarios:
            scenarios[key] = name if isinstance(name, ScenarioConfig) else load_scenario(name)
        model_config(
            scenarios[key], seed=kwargs["seed"], overrides=kwargs.get("overrides"), **settings
        )

    limit = 2**62 if max_steps is None else max_steps  # no limit: the model stops at its end
    tasks = [(run_id, i, kwargs, limit, data_collection_period) for run_id, i, kwargs in runs]
    if number_processes is None:
        number_processes = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    # mesa.batch_run's own pool uses the global start method (which `import mesa` forces to
    # "spawn"); run_tasks names its context, whatever another import set since. Results come
    # back in completion order: the rows are put back in run order.
    results = run_tasks(_run_one, tasks, jobs=number_processes)
    results.sort(key=lambda rows: rows[0]["RunId"] if rows else -1)
    return pd.DataFrame([row for rows in results for row in rows])
