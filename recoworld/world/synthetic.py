"""The embedded default: a synthetic world generator.

Items cluster around named topics in embedding space and carry quality, stance and a creator;
users mix a few favourite topics; the follow graph is homophilous with heavy-tailed follower
counts. Everything is drawn from one generator, vectorized, so 100,000 users take a second.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from recoworld import _kernels as kernels
from recoworld.config import GraphConfig, UserModelConfig, WorldConfig
from recoworld.world.catalog import Catalog
from recoworld.world.graph import SocialGraph
from recoworld.world.population import Population

__all__ = ["generate_catalog", "generate_graph", "generate_population", "generate_world_parts"]

_NOUNS: dict[str, tuple[str, ...]] = {
    "cooking": ("pasta recipe", "knife skills", "one-pan dinner", "sourdough guide", "street food"),
    "hairstyling": ("braid tutorial", "curl routine", "fade cut", "updo guide", "color trend"),
    "football": ("match highlights", "tactics breakdown", "goal compilation", "transfer news"),
    "travel": ("city guide", "budget trip", "hidden beach", "mountain hike", "night train"),
    "music": ("live session", "cover song", "album review", "guitar lesson", "beat making"),
    "gaming": ("speedrun", "boss fight", "indie review", "build guide", "patch notes"),
    "fitness": ("home workout", "running tips", "mobility flow", "strength plan"),
    "fashion": ("outfit ideas", "thrift haul", "capsule wardrobe", "runway recap"),
    "science": ("space explainer", "lab experiment", "physics puzzle", "biology fact"),
    "comedy": ("stand-up clip", "sketch", "prank", "parody", "improv scene"),
    "pets": ("puppy training", "cat antics", "aquarium setup", "rescue story"),
    "finance": ("budgeting tips", "market recap", "index funds", "side hustle"),
}
_ADJECTIVES = ("Quick", "Ultimate", "Honest", "Simple", "Wild", "Calm", "Bold", "Classic", "Fresh")
_QUALITY_WORDS = ("rough", "decent", "solid", "polished", "excellent")
#: Edges drawn per block by the homophilous generator (bounds its temporaries).
_EDGE_BLOCK = 1 << 20


def _unit_rows(x: NDArray[np.floating]) -> NDArray[np.float32]:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def _beta_with_mean(
    rng: np.random.Generator, mean: float, n: int, concentration: float = 4.0
) -> NDArray[np.float32]:
    m = min(max(mean, 1e-3), 1 - 1e-3)
    return rng.beta(m * concentration, (1 - m) * concentration, size=n).astype(np.float32)


def generate_catalog(config: WorldConfig, rng: np.random.Generator) -> Catalog:
    """Items clustered by topic, with quality, stance, creators and text fields."""
    n, dim, topics = config.n_items, config.embedding_dim, config.topics
    n_topics = len(topics)
    centroids = _unit_rows(rng.standard_normal((n_topics, dim)))
    topic_share = rng.dirichlet(np.full(n_topics, 8.0))
    topic = rng.choice(n_topics, size=n, p=topic_share).astype(np.int16)
    noise = rng.standard_normal((n, dim)) * (config.item_spread / np.sqrt(dim))
    embedding = _unit_rows(centroids[topic] + noise)
    # Creators: heavy-tailed productivity; each creator has a quality bias.
    weights = 1.0 / np.arange(1, config.n_creators + 1) ** 0.8
    creator = rng.choice(config.n_creators, size=n, p=weights / weights.sum()).astype(np.int32)
    creator_bias = rng.normal(0.0, 0.1, size=config.n_creators)
    quality = np.clip(rng.beta(2.0, 2.0, size=n) + creator_bias[creator], 0.0, 1.0).astype(
        np.float32
    )
    topic_lean = rng.normal(0.0, 0.3, size=n_topics)
    stance = np.clip(
        topic_lean[topic] + rng.normal(0.0, config.stance_spread, size=n), -1.0, 1.0
    ).astype(np.float32)
    created_tick = -rng.integers(0, 14 * 288, size=n).astype(np.int32)
    adjective = rng.integers(0, len(_ADJECTIVES), size=n)
    noun_pick = rng.integers(0, 1 << 30, size=n)
    title = np.empty(n, dtype=object)
    summary = np.empty(n, dtype=object)
    qword = np.minimum((quality * len(_QUALITY_WORDS)).astype(int), len(_QUALITY_WORDS) - 1)
    for i in range(n):  # text fields only; O(n_items) once at generation
        name = topics[topic[i]]
        nouns = _NOUNS.get(name, ("video", "post", "story", "guide"))
        noun = nouns[noun_pick[i] % len(nouns)]
        title[i] = f"{_ADJECTIVES[adjective[i]]} {noun}"
        summary[i] = f"A {_QUALITY_WORDS[qword[i]]} {name} {noun} by creator {creator[i]}."
    return Catalog(
        title=title,
        summary=summary,
        topic=topic,
        embedding=embedding,
        creator=creator,
        quality=quality,
        stance=stance,
        created_tick=created_tick,
        topic_names=tuple(topics),
        topic_centroids=centroids,
    )


def generate_population(
    config: WorldConfig,
    users: UserModelConfig,
    catalog: Catalog,
    rng: np.random.Generator,
    *,
    inbox_size: int = 8,
) -> tuple[Population, NDArray[np.int16]]:
    """Users whose tastes mix a few topics; returns the population and each user's main topic."""
    n, n_topics = config.n_users, catalog.n_topics
    mix = rng.dirichlet(np.full(n_topics, config.taste_concentration), size=n)
    main_topic = mix.argmax(axis=1).astype(np.int16)
    noise = rng.standard_normal((n, config.embedding_dim)) * (0.25 / np.sqrt(config.embedding_dim))
    # einsum, not ``@``: no BLAS (its spinning thread pool) on the per-tick path of new users.
    taste = _unit_rows(np.einsum("nt,td->nd", mix, catalog.topic_centroids) + noise)
    activity = rng.gamma(2.0, users.activity_mean / 2.0, size=n).astype(np.float32)
    population = Population(
        taste=taste,
        activity=np.maximum(activity, np.float32(0.05)),
        conformity=_beta_with_mean(rng, users.conformity_mean, n),
        diversity=_beta_with_mean(rng, users.diversity_mean, n),
        patience=_beta_with_mean(rng, users.patience_mean, n),
        sociability=_beta_with_mean(rng, users.sociability_mean, n),
        opinion=np.clip(rng.normal(0.0, 0.45, size=n), -1.0, 1.0).astype(np.float32),
        n_topics=n_topics,
        memory_size=users.memory_size,
        inbox_size=inbox_size,
    )
    return population, main_topic


def generate_graph(
    config: GraphConfig, group: NDArray[np.integer], rng: np.random.Generator
) -> SocialGraph:
    """A follow graph over ``len(group)`` users; ``group`` (main topic) drives homophily."""
    n = int(group.shape[0])
    if config.kind == "none" or n < 2 or config.mean_degree == 0:
        return SocialGraph.empty(n)
    if config.kind == "erdos_renyi":
        m = rng.binomial(n * (n - 1), min(1.0, config.mean_degree / (n - 1)))
        src = rng.integers(0, n, size=m)
        dst = rng.integers(0, n - 1, size=m)
        dst = dst + (dst >= src)  # uniform over the others: no self-loops
        return SocialGraph.from_edges(n, src, dst)
    if config.kind in ("barabasi_albert", "watts_strogatz"):
        import networkx as nx

        seed = int(rng.integers(0, 2**31 - 1))
        k = max(1, round(config.mean_degree / 2))
        if config.kind == "barabasi_albert":
            g = nx.barabasi_albert_graph(n, min(k, n - 1), seed=seed)
        else:
            g = nx.watts_strogatz_graph(n, min(2 * k, n - 1), config.rewire, seed=seed)
        return SocialGraph.from_networkx(g, n)
    # homophilous: Poisson out-degree; targets by attractiveness, within topic with prob homophily.
    degree = rng.poisson(config.mean_degree, size=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(degree, out=indptr[1:])
    n_edges = int(indptr[-1])
    attract = rng.pareto(1.5, size=n) + 1.0
    order = np.argsort(group, kind="stable")
    cum = np.cumsum(attract[order])
    # Each edge draws `within` (all edges first), then its weight: global draws over all users,
    # within-group draws over the group's block of `order`. The draws come in blocks (the same
    # numbers as one call), and the search for the target runs compiled (no per-edge temporaries).
    within = np.empty(n_edges, dtype=bool)
    for start in range(0, n_edges, _EDGE_BLOCK):
        stop = min(start + _EDGE_BLOCK, n_edges)
        within[start:stop] = rng.random(stop - start) < config.homophily
    group_of_source = np.repeat(group, degree)
    bounds = np.searchsorted(group[order], np.arange(int(group.max()) + 2)).astype(np.int64)
    total = cum[-1]
    guide = np.searchsorted(cum, np.arange(n + 1) * (total / n), side="right").astype(np.int64)
    followee = np.empty(n_edges, dtype=np.int32)
    order = order.astype(np.int64, copy=False)
    for start in range(0, n_edges, _EDGE_BLOCK):
        stop = min(start + _EDGE_BLOCK, n_edges)
        draws = rng.random(stop - start)
        block = slice(start, stop)
        g, w, d = group_of_source[block], within[block], followee[block]

        def targets(
            rows: slice,
            g: NDArray[np.integer] = g,
            w: NDArray[np.bool_] = w,
            d: NDArray[np.int32] = d,
            draws: NDArray[np.float64] = draws,
        ) -> None:
            kernels.homophilous_targets(
                g[rows], w[rows], draws[rows], cum, bounds, guide, order, d[rows]
            )

        kernels.by_rows(targets, stop - start)
    return SocialGraph.from_rows(n, indptr, followee)


def generate_world_parts(
    config: WorldConfig, users: UserModelConfig, inbox_size: int, rng: np.random.Generator
) -> tuple[Catalog, Population, SocialGraph]:
    """Catalog, population and follow graph of the embedded default world."""
    catalog = generate_catalog(config, rng)
    population, main_topic = generate_population(config, users, catalog, rng, inbox_size=inbox_size)
    graph = generate_graph(config.graph, main_topic, rng)
    return catalog, population, graph
