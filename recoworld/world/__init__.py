"""The columnar world: catalogue, population, follow graph and clock."""

from recoworld.world.catalog import Catalog
from recoworld.world.clock import Clock
from recoworld.world.graph import SocialGraph
from recoworld.world.population import NO_TOPIC, Population
from recoworld.world.world import World

__all__ = ["NO_TOPIC", "Catalog", "Clock", "Population", "SocialGraph", "World"]
