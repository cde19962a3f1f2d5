"""The world: catalogue, population, follow graph and clock — plain containers of arrays."""

from __future__ import annotations

from dataclasses import dataclass

from recoworld.config import ScenarioConfig
from recoworld.rng import RngTree
from recoworld.world.catalog import Catalog
from recoworld.world.clock import Clock
from recoworld.world.graph import SocialGraph
from recoworld.world.population import Population

__all__ = ["World"]


@dataclass(slots=True)
class World:
    """Everything that is state; the schedule (:mod:`recoworld.schedule`) changes it each tick."""

    catalog: Catalog
    population: Population
    graph: SocialGraph
    clock: Clock

    @classmethod
    def synthetic(cls, config: ScenarioConfig, rng: RngTree | None = None) -> World:
        """The embedded default world, drawn from the ``world`` stream of the run's seed (or of
        ``world.seed`` when the scenario fixes one)."""
        from recoworld.world.synthetic import generate_world_parts

        if config.world.seed is not None:
            tree = RngTree(config.world.seed)
        else:
            tree = rng or RngTree(config.seed)
        catalog, population, graph = generate_world_parts(
            config.world, config.users, config.feed.inbox_size, tree.generator("world")
        )
        clock = Clock(tick_minutes=config.clock.tick_minutes, start_hour=config.clock.start_hour)
        return cls(catalog=catalog, population=population, graph=graph, clock=clock)

    @property
    def n_users(self) -> int:
        return self.population.n_users

    @property
    def n_items(self) -> int:
        return self.catalog.n_items
