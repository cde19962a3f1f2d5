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
    def from_config(cls, config: ScenarioConfig, rng: RngTree | None = None) -> World:
        """The world a scenario asks for: built from ``world.dataset`` when it names one, else
        the embedded generator's (:meth:`synthetic`)."""
        if config.world.dataset is None:
            world = cls.synthetic(config, rng)
        else:
            from recoworld.data.loaders import load_dataset
            from recoworld.data.world import world_from_dataset

            dataset = load_dataset(config.world.dataset, config.world.dataset_format)
            seed = config.world.seed if config.world.seed is not None else config.seed
            splits = ("train", "all")  # the train split where the data has one, else everything
            world = world_from_dataset(dataset, config, splits=splits, seed=seed)
        if config.world.edges is not None:
            world.graph = SocialGraph.from_edge_list(config.world.edges, world.n_users)
        if config.world.misinformation > 0:
            # Its own stream of the world's seed: the rest of the world does not change with it.
            tree = RngTree(config.world.seed) if config.world.seed is not None else rng
            tree = tree or RngTree(config.seed)
            draws = tree.generator("misinformation").random(world.n_items)
            world.catalog.misinfo[:] = draws < config.world.misinformation
        return world

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
