"""Typed, frozen, keyword-only configuration of a recoworld run.

A scenario YAML file (``envs/*.yaml``) maps one to one onto :class:`ScenarioConfig`; every field
below is documented with its meaning and default. Construct configs in code directly, or from
plain data with :func:`recoworld.scenario.parse_scenario`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from recoworld._config import check, override
from recoworld.llm.config import LLMConfig

__all__ = [
    "DEFAULT_DIURNAL",
    "DEFAULT_TOPICS",
    "ClockConfig",
    "FeedConfig",
    "GraphConfig",
    "LLMUsersConfig",
    "ModerationConfig",
    "PolicyConfig",
    "RecordConfig",
    "ScenarioConfig",
    "SocialConfig",
    "UserModelConfig",
    "WorldConfig",
    "override",
]

#: Named topics of the synthetic world, so that instructions read naturally.
DEFAULT_TOPICS: tuple[str, ...] = (
    "cooking",
    "hairstyling",
    "football",
    "travel",
    "music",
    "gaming",
    "fitness",
    "fashion",
    "science",
    "comedy",
    "pets",
    "finance",
)


#: Relative activity by hour of day (0..23): quiet nights, a lunch bump, an evening peak.
DEFAULT_DIURNAL: tuple[float, ...] = (
    0.35, 0.2, 0.12, 0.08, 0.08, 0.12, 0.3, 0.5, 0.6, 0.6, 0.6, 0.65,
    0.75, 0.7, 0.65, 0.65, 0.7, 0.8, 0.9, 1.0, 1.0, 0.95, 0.8, 0.55,
)  # fmt: skip


def _unit(value: float, key: str) -> None:
    check(0.0 <= value <= 1.0, key, "a number in [0, 1]", value)


def _positive(value: float, key: str) -> None:
    check(value > 0 and math.isfinite(value), key, "a positive number", value)


def _non_negative(value: float, key: str) -> None:
    check(value >= 0 and math.isfinite(value), key, "a number >= 0", value)


@dataclass(frozen=True, kw_only=True, slots=True)
class GraphConfig:
    """The follow graph of the synthetic world.

    Attributes:
        kind: generator. ``homophilous`` (default): each user follows ``mean_degree`` others,
            a share ``homophily`` of them chosen among users with the same main topic, the rest
            by preferential attachment (heavy-tailed follower counts); ``erdos_renyi``;
            ``barabasi_albert``; ``watts_strogatz``; ``none`` (no edges).
        mean_degree: mean number of users each user follows (out-degree).
        homophily: share of follows drawn within the user's own main topic (``homophilous`` only).
        rewire: rewiring probability (``watts_strogatz`` only).
    """

    kind: Literal["homophilous", "erdos_renyi", "barabasi_albert", "watts_strogatz", "none"] = (
        "homophilous"
    )
    mean_degree: float = 10.0
    homophily: float = 0.7
    rewire: float = 0.1

    def __post_init__(self) -> None:
        _non_negative(self.mean_degree, "mean_degree")
        _unit(self.homophily, "homophily")
        _unit(self.rewire, "rewire")


@dataclass(frozen=True, kw_only=True, slots=True)
class WorldConfig:
    """Sizes and shape of the synthetic world (the embedded default generator).

    Attributes:
        n_users: population size.
        n_items: catalogue size at the start of the run.
        topics: topic names; items have one main topic each; user tastes mix topics.
        embedding_dim: dimension of item embeddings and user taste vectors.
        n_creators: number of distinct creators who made the initial items.
        taste_concentration: Dirichlet concentration of a user's topic mix; small values give
            users one or two favourite topics, large values give generalists.
        item_spread: spread of item embeddings around their topic centroid (0 = identical).
        stance_spread: standard deviation of item stance on the opinion axis [-1, 1].
        graph: the follow graph.
        seed: when set, the world (catalogue, population, graph) is drawn from this seed
            instead of the run's: runs with different run seeds then share one world, as runs
            on one dataset do, and differ only in behaviour and policy randomness. ``None``
            (default): the world comes from the run's seed.
        dataset: a real dataset folder to build the world from instead of the generator
            (:func:`recoworld.data.world.world_from_dataset`: items, users, their train
            interactions — the train split where the data has one, else all — and the social
            graph where the data has one); ``n_users`` and ``n_items`` then come from the data.
        dataset_format: the dataset's format (``movielens``, ``ml1m``, ``agent4rec``,
            ``lastfm``, ``filmtrust``, ``ciaodvd``, ``generic``); ``None`` detects it.
        misinformation: share of the initial items that are false (``Catalog.misinfo``), drawn
            from the world seed's own ``misinformation`` stream after the rest of the world, so
            the rest of the world does not change with it.
        edges: a follow-graph edge list (CSV/TSV/whitespace file of ``src dst`` user ids, ``src``
            follows ``dst``; ``#`` comments and a header line allowed) that replaces the generated
            graph; ids must lie in ``0..n_users-1``.
    """

    n_users: int = 10_000
    n_items: int = 5_000
    topics: tuple[str, ...] = DEFAULT_TOPICS
    embedding_dim: int = 16
    n_creators: int = 500
    taste_concentration: float = 0.35
    item_spread: float = 0.45
    stance_spread: float = 0.45
    graph: GraphConfig = field(default_factory=GraphConfig)
    seed: int | None = None
    dataset: str | None = None
    dataset_format: str | None = None
    misinformation: float = 0.0
    edges: str | None = None

    def __post_init__(self) -> None:
        check(self.seed is None or self.seed >= 0, "seed", "an integer >= 0 or null", self.seed)
        _unit(self.misinformation, "misinformation")
        check(self.n_users >= 1, "n_users", "an integer >= 1", self.n_users)
        check(self.n_items >= 1, "n_items", "an integer >= 1", self.n_items)
        check(len(self.topics) >= 2, "topics", "at least two topic names", self.topics)
        check(len(set(self.topics)) == len(self.topics), "topics", "distinct names", self.topics)
        check(len(self.topics) <= 32_000, "topics", "at most 32000 topics", len(self.topics))
        check(self.embedding_dim >= 2, "embedding_dim", "an integer >= 2", self.embedding_dim)
        check(self.n_creators >= 1, "n_creators", "an integer >= 1", self.n_creators)
        _positive(self.taste_concentration, "taste_concentration")
        _non_negative(self.item_spread, "item_spread")
        _non_negative(self.stance_spread, "stance_spread")


@dataclass(frozen=True, kw_only=True, slots=True)
class ClockConfig:
    """Simulated time.

    One tick is one page: every user in a session is served one feed per tick.

    Attributes:
        tick_minutes: simulated minutes per tick (must divide a day).
        days: length of the run in simulated days (``ticks`` overrides it).
        ticks: run exactly this many ticks instead of ``days`` (0 = use ``days``).
        start_hour: simulated hour of day at tick 0.
        diurnal: 24 relative activity weights, one per hour of day.
        start_rate: sessions per hour that a user ready to start one starts at the busiest hour;
            in a tick of hour ``h`` it starts with probability
            ``1 − exp(−start_rate · diurnal[h] / max(diurnal) · tick_hours)``.
    """

    tick_minutes: int = 5
    days: float = 1.0
    ticks: int = 0
    start_hour: int = 0
    diurnal: tuple[float, ...] = DEFAULT_DIURNAL
    start_rate: float = 1.0

    def __post_init__(self) -> None:
        check(
            self.tick_minutes >= 1 and 1440 % self.tick_minutes == 0,
            "tick_minutes",
            "a whole number of minutes that divides a day (1440)",
            self.tick_minutes,
        )
        _positive(self.days, "days")
        check(self.ticks >= 0, "ticks", "an integer >= 0", self.ticks)
        check(0 <= self.start_hour < 24, "start_hour", "an hour in 0..23", self.start_hour)
        check(
            len(self.diurnal) == 24
            and all(math.isfinite(w) and w >= 0 for w in self.diurnal)
            and max(self.diurnal) > 0,
            "diurnal",
            "24 finite non-negative weights, not all zero",
            self.diurnal,
        )
        _positive(self.start_rate, "start_rate")

    @property
    def ticks_per_day(self) -> int:
        return 1440 // self.tick_minutes

    @property
    def n_ticks(self) -> int:
        """Ticks in the run."""
        return self.ticks if self.ticks > 0 else max(1, round(self.days * self.ticks_per_day))


@dataclass(frozen=True, kw_only=True, slots=True)
class UserModelConfig:
    """Parameters of the numeric user model (the embedded default).

    Choice. An examined item's utility is ::

        z = w_taste·cos(taste, item) + w_quality·(quality − ½)
            − w_boredom·(½ + diversity)·boredom[topic] − w_repeat·seen
            + w_social·conformity·proof + w_friend·sociability·from_friend
            + w_intent·[topic wanted] − w_intent·[topic refused]
            + w_vote·conformity·tanh(votes / vote_scale) − w_stance·|opinion − stance|
            − label_penalty·[labeled]

    (``votes``: the item's visible net score, up-votes minus down-votes — herding; ``w_stance``:
    confirmation bias, the pull of agreeing content; ``label_penalty``: a warning label or a
    community note, :class:`ModerationConfig`), and clicks with probability
    ``attention^rank · σ((z − no_click_utility) / temperature)`` (a binary multinomial logit
    against the no-click option, damped by position).

    Mindset, after each examined item:
    ``satisfaction += satisfaction_rate·(m − satisfaction_reference)`` with
    ``m = σ((z − no_click_utility)/temperature)`` (plus ``click_bonus`` on a click);
    ``fatigue += fatigue_per_item``; the item's topic gains ``boredom_per_item`` of boredom and
    every topic's boredom decays by ``boredom_decay`` per page; a click pulls the taste vector
    towards the item by ``drift_rate`` (slow interest drift) and, if the item's stance lies within
    ``opinion_epsilon`` of the user's opinion, pulls the opinion towards it by ``opinion_rate``
    (bounded confidence, Deffuant–Weisbuch with ε = ``opinion_epsilon`` and μ = ``opinion_rate``);
    after the page, stubbornness anchors it: ``opinion += stubbornness·(opinion₀ − opinion)``
    (Friedkin–Johnsen, :class:`SocialConfig`). Biased assimilation (Lord, Ross and Lepper 1979;
    Dandekar, Goel and Lee 2013): a click on an item that takes the user's side (same sign) also
    pushes the opinion outwards, ``opinion += opinion_reinforcement·|stance|·(±1 − opinion)``.

    Votes. A like is an up-vote; a click rated at most ``downvote_rating`` without a like is a
    down-vote. Both change the item's visible score (``Catalog.votes``).

    Leaving. Disengagement risk
    ``ρ = σ((leave_threshold·(1.5 − patience) − (satisfaction − fatigue)) / leave_temperature)``;
    after each item the user leaves with probability ``leave_hazard·ρ``.

    Reflective instructions. At the end of a page, if ``ρ ≥ instruction_threshold``, fewer than
    ``max_instructions`` were given this session and at least ``instruction_cooldown`` pages passed
    since the last one, the user says what it wants and gains ``instruction_hope`` satisfaction —
    it gives the feed one more chance. What it asks depends on why it is unhappy: bored of a topic
    (its boredom ≥ 0.25): less of that topic; repeats (≥ 30% of the page seen before): nothing
    already seen (the ``fresh`` constraint); otherwise the page missed its taste: less of the
    page's most-shown topic. In each case: more of the topic it likes best, boredom discounted,
    among the others. The words name every topic of the intent.

    The intent stands for the next ``intent_pages`` pages: each page that honours it
    (≥ ``honour_share`` of the wanted topic, nothing refused, nothing seen if ``fresh``) adds
    ``honour_gain``; each that ignores it (nothing wanted, or something refused or seen) subtracts
    ``ignore_penalty``.

    Retention. At session end the user returns with probability
    ``σ(return_bias + return_slope·(satisfaction − ½))``, otherwise churns for good; a returning
    user comes back after an exponential gap of mean
    ``24 h / activity · exp(−gap_slope·(satisfaction − ½))`` and starts when the hour's activity
    weight allows (diurnal thinning).

    Responses. Clicks dwell ``dwell_seconds·exp(N(0, dwell_sigma))·(0.5 + m)``; like, share and
    comment with probabilities ``like_rate·m``, ``share_rate·sociability·m·f`` and
    ``comment_rate·sociability·m``, where ``f`` is the item's share factor: ``misinfo_share_boost``
    for a false item (false news spreads farther: Vosoughi, Roy and Aral 2018 found ~70 % more
    retweets), times ``1 − label_share_drop`` for a labeled one, times ``1 − share_friction``
    (:class:`ModerationConfig`); ratings 1–5 from ``m``: ``clip(rint(1 + 4m + 0.6ε), 1, 5)``,
    ``ε ~ N(0, 1)``. With ``rating_cuts`` set (``recoworld calibrate`` fits them to a dataset), the
    rating is an ordered probit instead: with
    ``ℓ = rating_match·log(m / (1 − m)) + rating_quality·(quality − ½) + ε`` and
    ``(lowest, highest, step) = rating_scale``, the rating is
    ``lowest + step·#{c ∈ rating_cuts : c ≤ ℓ}`` (one cut between each two levels).
    """

    # Traits (population means; per-user values are drawn around them).
    activity_mean: float = 1.5
    conformity_mean: float = 0.5
    diversity_mean: float = 0.5
    patience_mean: float = 0.5
    sociability_mean: float = 0.3
    # Choice.
    w_taste: float = 3.0
    w_quality: float = 1.0
    w_boredom: float = 2.0
    w_repeat: float = 2.5
    w_social: float = 0.6
    w_friend: float = 0.8
    w_intent: float = 1.0
    no_click_utility: float = 1.2
    temperature: float = 0.6
    attention: float = 0.95
    # Mindset.
    initial_satisfaction: float = 0.7
    satisfaction_carryover: float = 0.3
    satisfaction_rate: float = 0.06
    satisfaction_reference: float = 0.35
    click_bonus: float = 0.01
    fatigue_per_item: float = 0.01
    boredom_per_item: float = 0.05
    boredom_decay: float = 0.15
    boredom_recovery_hours: float = 12.0
    drift_rate: float = 0.01
    # Leaving.
    leave_threshold: float = 0.35
    leave_temperature: float = 0.06
    leave_hazard: float = 0.12
    # Reflective instructions.
    instruction_threshold: float = 0.4
    max_instructions: int = 2
    instruction_cooldown: int = 2
    instruction_hope: float = 0.12
    intent_pages: int = 3
    honour_share: float = 0.3
    honour_gain: float = 0.08
    ignore_penalty: float = 0.12
    # Retention.
    return_bias: float = 1.5
    return_slope: float = 6.0
    gap_slope: float = 1.5
    # Responses.
    dwell_seconds: float = 25.0
    dwell_sigma: float = 0.5
    like_rate: float = 0.35
    share_rate: float = 0.15
    comment_rate: float = 0.05
    rating_scale: tuple[float, float, float] = (1.0, 5.0, 1.0)
    rating_cuts: tuple[float, ...] = ()
    rating_match: float = 1.0
    rating_quality: float = 0.0
    # Opinion (bounded confidence on consumption) and confirmation bias.
    opinion_epsilon: float = 0.4
    opinion_rate: float = 0.02
    w_stance: float = 0.0
    opinion_reinforcement: float = 0.0
    # Votes (herding).
    w_vote: float = 0.0
    vote_scale: float = 3.0
    downvote_rating: float = 2.0
    # Misinformation and labels.
    misinfo_share_boost: float = 1.7
    label_penalty: float = 1.0
    label_share_drop: float = 0.5
    # Memory.
    memory_size: int = 32

    def __post_init__(self) -> None:
        _positive(self.activity_mean, "activity_mean")
        for key in (
            "conformity_mean",
            "diversity_mean",
            "patience_mean",
            "sociability_mean",
            "attention",
            "initial_satisfaction",
            "satisfaction_carryover",
            "satisfaction_reference",
            "boredom_decay",
            "drift_rate",
            "leave_hazard",
            "instruction_threshold",
            "honour_share",
            "like_rate",
            "share_rate",
            "comment_rate",
            "opinion_rate",
            "opinion_reinforcement",
        ):
            _unit(getattr(self, key), key)
        for key in (
            "temperature",
            "leave_temperature",
            "dwell_seconds",
            "boredom_recovery_hours",
        ):
            _positive(getattr(self, key), key)
        for key in (
            "w_taste",
            "w_quality",
            "w_boredom",
            "w_repeat",
            "w_social",
            "w_friend",
            "w_intent",
            "satisfaction_rate",
            "click_bonus",
            "fatigue_per_item",
            "boredom_per_item",
            "instruction_hope",
            "honour_gain",
            "ignore_penalty",
            "dwell_sigma",
            "gap_slope",
            "opinion_epsilon",
            "w_stance",
            "w_vote",
            "label_penalty",
        ):
            _non_negative(getattr(self, key), key)
        _positive(self.vote_scale, "vote_scale")
        _unit(self.label_share_drop, "label_share_drop")
        check(
            self.misinfo_share_boost >= 1.0 and math.isfinite(self.misinfo_share_boost),
            "misinfo_share_boost",
            "a number >= 1",
            self.misinfo_share_boost,
        )
        check(
            self.max_instructions >= 0, "max_instructions", "an integer >= 0", self.max_instructions
        )
        check(
            self.instruction_cooldown >= 0,
            "instruction_cooldown",
            "an integer >= 0",
            self.instruction_cooldown,
        )
        check(self.intent_pages >= 1, "intent_pages", "an integer >= 1", self.intent_pages)
        check(
            1 <= self.memory_size <= 1024, "memory_size", "an integer in 1..1024", self.memory_size
        )
        _non_negative(self.rating_match, "rating_match")
        _non_negative(self.rating_quality, "rating_quality")
        scale = tuple(self.rating_scale)
        check(len(scale) == 3, "rating_scale", "[lowest, highest, step]", scale)
        low, high, step = scale
        check(
            all(math.isfinite(v) for v in scale)
            and step > 0
            and high > low
            and abs((high - low) / step - round((high - low) / step)) < 1e-6,
            "rating_scale",
            "[lowest, highest, step] with highest > lowest and a whole number of steps between",
            self.rating_scale,
        )
        cuts = self.rating_cuts
        if cuts:
            levels = round((high - low) / step) + 1
            check(
                len(cuts) == levels - 1
                and all(math.isfinite(c) for c in cuts)
                and all(cuts[k] < cuts[k + 1] for k in range(len(cuts) - 1)),
                "rating_cuts",
                f"{levels - 1} increasing numbers, one between each two of the {levels} levels "
                "of rating_scale",
                cuts,
            )
        else:
            check(
                tuple(self.rating_scale) == (1.0, 5.0, 1.0),
                "rating_scale",
                "[1, 5, 1] unless rating_cuts are set (the built-in rating formula gives 1–5 "
                "stars; recoworld calibrate fits cuts for other scales)",
                self.rating_scale,
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class FeedConfig:
    """How a feed is put together from the recommender's slate and the social inbox.

    Rule ``interleave``: after every ``social_every`` recommended items, one in-network item (the
    newest unseen item a followee shared into the user's inbox) is inserted, at most
    ``social_slots`` per page. Rule ``append``: up to ``social_slots`` in-network items follow the
    slate. Rule ``none``: the feed is the slate alone.

    Attributes:
        slate_size: items the recommender returns per page (``k``).
        n_candidates: size of each user's candidate pool per page (``C``).
        rule: ``interleave`` | ``append`` | ``none``.
        social_slots: most in-network items per page.
        social_every: recommended items between two in-network items (``interleave``).
        inbox_size: capacity of each user's inbox (oldest entries are overwritten).
    """

    slate_size: int = 10
    n_candidates: int = 100
    rule: Literal["interleave", "append", "none"] = "interleave"
    social_slots: int = 2
    social_every: int = 4
    inbox_size: int = 8

    def __post_init__(self) -> None:
        check(self.slate_size >= 1, "slate_size", "an integer >= 1", self.slate_size)
        check(
            self.n_candidates >= self.slate_size,
            "n_candidates",
            f"an integer >= slate_size ({self.slate_size})",
            self.n_candidates,
        )
        check(self.social_slots >= 0, "social_slots", "an integer >= 0", self.social_slots)
        check(self.social_every >= 1, "social_every", "an integer >= 1", self.social_every)
        check(self.inbox_size >= 1, "inbox_size", "an integer >= 1", self.inbox_size)


OPINION_MODELS = ("none", "degroot", "friedkin_johnsen", "deffuant_weisbuch", "hegselmann_krause")
DIFFUSION_MODELS = ("none", "independent_cascade")


@dataclass(frozen=True, kw_only=True, slots=True)
class SocialConfig:
    """What users do to each other besides sharing: posts, follows, unfollows and mutes, and the
    classic social models as behaviours in the world (``docs/social.md``). Everything here draws
    from the run's ``social`` stream; with the defaults nothing happens and no number is drawn.

    Posts. Each user on a page posts with probability ``post_rate``: a new item whose author is
    the user, on the topic the user likes best, its embedding the user's taste plus noise, its
    stance the user's opinion plus noise (sd 0.2), its quality ``Beta(2, 2)``; it goes to the
    followers' inboxes and into the catalogue, where the recommender can pick it up. The
    catalogue reserves ``post_capacity`` rows for posts; when they are used up, posting stops
    (a warning says so).

    Follows. Each user on a page proposes one follow with probability ``follow_rate``, the
    candidate drawn by ``follow_mix`` = shares of (triadic closure: a followee's followee;
    engagement: the sharer or author of an in-network item the user clicked on this page; the
    platform's suggestion: a user drawn in proportion to followers + 1). A proposal is accepted
    with probability ``max(cos(taste_u, taste_v), 0)·exp(−|x_u − x_v| / follow_opinion_scale)``
    (homophily on taste and opinion).

    Unfollows and mutes. An in-network item the user examined and skipped whose stance lies more
    than ``disagree_distance`` from the user's opinion makes the user unfollow its sharer with
    probability ``unfollow_rate``, or else mute them with probability ``mute_rate`` (a muted
    followee's shares and posts no longer reach the user's inbox).

    Opinion. ``stubbornness`` anchors each user to its initial opinion after every page
    (Friedkin–Johnsen). ``opinion_model`` additionally updates the opinions of a share
    ``opinion_fraction`` of users (drawn once) every ``opinion_every`` ticks by one step of a
    classic model over the users they follow: ``degroot`` (average of followees),
    ``friedkin_johnsen`` (the same, anchored by ``stubbornness``), ``deffuant_weisbuch`` (one
    random followee within ``opinion_epsilon``, step ``opinion_mu``), ``hegselmann_krause``
    (mean of followees within ``opinion_epsilon``).

    Diffusion. ``diffusion_model: independent_cascade`` makes a share ``diffusion_fraction`` of
    users (drawn once) share each in-network item they examine with probability ``diffusion_p``,
    whatever they thought of it, instead of by their own utility (mixed populations of classic
    and recommender-driven users).

    Attributes: as above.
    """

    post_rate: float = 0.0
    post_capacity: int = 20_000
    follow_rate: float = 0.0
    follow_mix: tuple[float, float, float] = (0.4, 0.4, 0.2)
    follow_opinion_scale: float = 0.5
    unfollow_rate: float = 0.0
    mute_rate: float = 0.0
    disagree_distance: float = 0.8
    stubbornness: float = 0.0
    opinion_model: str = "none"
    opinion_every: int = 12
    opinion_fraction: float = 1.0
    opinion_epsilon: float = 0.3
    opinion_mu: float = 0.3
    diffusion_model: str = "none"
    diffusion_p: float = 0.1
    diffusion_fraction: float = 1.0

    def __post_init__(self) -> None:
        for key in (
            "post_rate",
            "follow_rate",
            "unfollow_rate",
            "mute_rate",
            "stubbornness",
            "opinion_fraction",
            "diffusion_p",
            "diffusion_fraction",
        ):
            _unit(getattr(self, key), key)
        check(self.post_capacity >= 0, "post_capacity", "an integer >= 0", self.post_capacity)
        check(
            len(self.follow_mix) == 3
            and all(w >= 0 and math.isfinite(w) for w in self.follow_mix)
            and sum(self.follow_mix) > 0,
            "follow_mix",
            "three non-negative weights (triadic, engagement, suggested), not all 0",
            self.follow_mix,
        )
        _positive(self.follow_opinion_scale, "follow_opinion_scale")
        _non_negative(self.disagree_distance, "disagree_distance")
        check(
            self.unfollow_rate + self.mute_rate <= 1.0,
            "mute_rate",
            "at most 1 − unfollow_rate",
            self.mute_rate,
        )
        check(
            self.opinion_model in OPINION_MODELS,
            "opinion_model",
            "one of " + ", ".join(OPINION_MODELS),
            self.opinion_model,
        )
        check(self.opinion_every >= 1, "opinion_every", "an integer >= 1", self.opinion_every)
        _non_negative(self.opinion_epsilon, "opinion_epsilon")
        check(0.0 < self.opinion_mu <= 0.5, "opinion_mu", "a number in (0, 0.5]", self.opinion_mu)
        check(
            self.diffusion_model in DIFFUSION_MODELS,
            "diffusion_model",
            "one of " + ", ".join(DIFFUSION_MODELS),
            self.diffusion_model,
        )

    @property
    def active(self) -> bool:
        """Whether any social behaviour beyond sharing is switched on."""
        return (
            self.post_rate > 0
            or self.follow_rate > 0
            or self.unfollow_rate > 0
            or self.mute_rate > 0
            or self.stubbornness > 0
            or self.opinion_model != "none"
            or self.diffusion_model != "none"
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ModerationConfig:
    """The platform's interventions against false items (``Catalog.misinfo``; the misinformation
    experiment). Nothing is on by default.

    Attributes:
        warning_labels: false items are labeled from the start with probability
            ``label_recall`` each (detection, drawn once from the ``moderation`` stream).
        label_recall: share of false items the platform detects and labels.
        community_notes: a false item gets a note — the same effect as a label — once it has
            been shared this many times (0: off): crowd-sourced, so it comes late.
        downrank: labeled items move to the end of the page (after the rest of the slate and the
            in-network items), where fewer users reach them.
        share_friction: share of every would-be share that does not happen (a "read before you
            share" prompt), false or not.

    How users react to labels and to false items is theirs (:class:`UserModelConfig`:
    ``label_penalty``, ``label_share_drop``, ``misinfo_share_boost``).
    """

    warning_labels: bool = False
    label_recall: float = 1.0
    community_notes: int = 0
    downrank: bool = False
    share_friction: float = 0.0

    def __post_init__(self) -> None:
        for key in ("label_recall", "share_friction"):
            _unit(getattr(self, key), key)
        check(self.community_notes >= 0, "community_notes", "an integer >= 0", self.community_notes)

    @property
    def active(self) -> bool:
        return self.warning_labels or self.community_notes > 0 or self.share_friction > 0


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyConfig:
    """The recommender policy, by registered name, with its keyword parameters.

    Attributes:
        name: a name from :func:`recoworld.policies.available` (``random``, ``most_popular``,
            ``oracle``, ...).
        params: keyword arguments for the policy's constructor.
    """

    name: str = "most_popular"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(bool(self.name), "name", "a policy name", self.name)


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordConfig:
    """What is written to the run folder.

    Attributes:
        flush_rows: buffered rows (all tables together) that trigger writing one Parquet part per
            table at the end of a tick. Smaller means less lost on a hard kill; ticks are always
            whole within a part, and an interrupt (Ctrl-C, SIGTERM) flushes every completed tick.
        compression: Parquet codec.
        opinion_every: write every user's opinion to the ``opinions`` table every this many
            ticks; 0 (default): only before the first tick and after the last.
        checkpoint_every: write ``checkpoint.pkl`` into the run folder every this many ticks
            (``recoworld resume`` continues from it, byte for byte); 0 (default): only when a
            run is interrupted.
    """

    flush_rows: int = 1_000_000
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    opinion_every: int = 0
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        check(self.flush_rows >= 1, "flush_rows", "an integer >= 1", self.flush_rows)
        check(self.opinion_every >= 0, "opinion_every", "an integer >= 0", self.opinion_every)
        check(
            self.checkpoint_every >= 0,
            "checkpoint_every",
            "an integer >= 0",
            self.checkpoint_every,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class LLMUsersConfig:
    """Which users an LLM drives, who they are, what they remember, and the server they talk to
    (see ``docs/llm-users.md``). With ``fraction`` 0, no ``users`` and no ``persona_tag``, every
    user is numeric and no client is created.

    Attributes:
        fraction: share of the population driven by the LLM, chosen at random (stream ``llm``).
        users: user ids driven by the LLM in addition.
        persona_tag: users whose persona (from ``personas``) carries this tag are LLM users too.
        personas: persona pack (JSON Lines, ``personas/README.md``); personas are assigned to
            users in order, cycling. ``None``: each LLM user gets a persona synthesized from its
            numeric taste and traits.
        memory_tokens: token budget of the memory section of a page prompt (reflections, session
            summaries, recent interactions, in that order of priority).
        page_tokens: target size of a whole page prompt (system message, persona, memory, the
            page): the memory section gets at most what is left of it, so a long page (many
            items, a long persona) keeps less memory. 0: no target.
        context_tokens: the server's context window; a prompt that would not fit with its reply
            is shortened (memory first, then item texts) or, failing that, not sent.
        reflection_importance: accumulated importance (click 1, like 2, share or comment 3,
            leaving 3, an instruction 3) that triggers a reflection written by the model.
        item_text: how items appear in prompts: ``text`` (topic, title, quality), ``semantic_id``
            (hierarchical codes from item embeddings), or ``both``.
        reply_tokens_per_item: completion tokens allowed per item of a page decision (plus 80);
            a cap, not a cost: a model stops when its JSON is complete. Raise it for models with
            character-level tokenizers.
        client: the OpenAI-compatible client (:class:`recoworld.llm.LLMConfig`).
    """

    fraction: float = 0.0
    users: tuple[int, ...] = ()
    persona_tag: str | None = None
    personas: str | None = None
    memory_tokens: int = 200
    page_tokens: int = 800
    context_tokens: int = 4096
    reflection_importance: float = 15.0
    item_text: Literal["text", "semantic_id", "both"] = "text"
    reply_tokens_per_item: int = 64
    client: LLMConfig = field(default_factory=LLMConfig)

    def __post_init__(self) -> None:
        check(0.0 <= self.fraction <= 1.0, "fraction", "a number in [0, 1]", self.fraction)
        check(all(u >= 0 for u in self.users), "users", "user ids >= 0", self.users)
        check(
            self.reply_tokens_per_item >= 8,
            "reply_tokens_per_item",
            "an integer >= 8",
            self.reply_tokens_per_item,
        )
        check(self.memory_tokens >= 0, "memory_tokens", "an integer >= 0", self.memory_tokens)
        check(self.page_tokens >= 0, "page_tokens", "an integer >= 0", self.page_tokens)
        check(
            self.context_tokens >= 256,
            "context_tokens",
            "an integer >= 256",
            self.context_tokens,
        )
        check(
            self.reflection_importance > 0,
            "reflection_importance",
            "a number > 0",
            self.reflection_importance,
        )

    @property
    def enabled(self) -> bool:
        return self.fraction > 0 or bool(self.users) or self.persona_tag is not None


@dataclass(frozen=True, kw_only=True, slots=True)
class ScenarioConfig:
    """A whole run: world, time, users, feed, policy and recording. One seed drives everything.

    Attributes:
        name: scenario name (used in the run id).
        description: one or two sentences for ``recoworld envs``.
        seed: root of the run's ``SeedSequence`` tree.
        world, clock, users, feed, social, moderation, policy, record, llm: the sections
            above.
    """

    name: str = "default"
    description: str = ""
    seed: int = 0
    world: WorldConfig = field(default_factory=WorldConfig)
    clock: ClockConfig = field(default_factory=ClockConfig)
    users: UserModelConfig = field(default_factory=UserModelConfig)
    feed: FeedConfig = field(default_factory=FeedConfig)
    social: SocialConfig = field(default_factory=SocialConfig)
    moderation: ModerationConfig = field(default_factory=ModerationConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    llm: LLMUsersConfig = field(default_factory=LLMUsersConfig)

    def __post_init__(self) -> None:
        check(self.seed >= 0, "seed", "an integer >= 0", self.seed)
        check(
            bool(self.name) and all(c.isalnum() or c in "-_." for c in self.name),
            "name",
            "a non-empty name of letters, digits, '-', '_' or '.'",
            self.name,
        )
