"""The numeric user model: the embedded default, vectorized over users.

Each active user reviews its feed in order. For every item it reaches it computes a utility from
taste, quality, boredom, repetition, social proof and its standing instruction, chooses against a
no-click option (a binary multinomial logit damped by position attention), may like, share or
comment, rates what it consumed, updates its mindset, and may leave. Everything that does not
depend on the order of review is computed for all users and positions at once in numpy; the
item-by-item review itself is one compiled loop (:func:`recoworld._kernels.respond_page`). Every
formula and default is documented on :class:`recoworld.config.UserModelConfig`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from recoworld import _kernels as kernels
from recoworld.config import UserModelConfig
from recoworld.users.base import SOURCE_SOCIAL, Feed, Instructions, Responses, ReturnPlan, UserModel
from recoworld.users.instructions import REASONS, render_instruction, template_count
from recoworld.world.population import NO_TOPIC, Population

if TYPE_CHECKING:
    from recoworld.world.world import World

__all__ = ["NumericUserModel", "sigmoid"]

#: Boredom of the most-bored topic above which an instruction is about boredom.
_BOREDOM_REASON = 0.25
#: Share of the last page already seen above which an instruction is about repetition.
_REPEAT_REASON = 0.3
#: Rows whose review draws are made and used together (bounds the [rows, L, 5] uniforms).
_REVIEW_BLOCK = 1 << 16


def sigmoid(x: NDArray[np.floating]) -> NDArray[np.float32]:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


class _Phrasebook:
    """Instruction texts by phrase (reason, topic asked for, topic avoided, phrasing): each is
    rendered and interned into the population's text table once; later uses are a gather."""

    def __init__(self) -> None:
        self.names: tuple[str, ...] = ()
        self.owner: list[str] | None = None
        self.ids = np.zeros(0, np.int64)

    def render(
        self,
        population: Population,
        reason_code: NDArray[np.integer],
        more: NDArray[np.integer],
        avoid: NDArray[np.integer],
        choice: NDArray[np.integer],
        names: tuple[str, ...],
    ) -> tuple[list[str], NDArray[np.int64], list[str], list[str]]:
        """Texts, their ids in ``population.instruction_texts``, reasons and constraints."""
        t, n_choice = len(names), template_count()
        if names != self.names or population.instruction_texts is not self.owner:
            self.names, self.owner = names, population.instruction_texts
            self.ids = np.full(len(REASONS) * t * t * n_choice, -1, np.int64)
        key = (reason_code.astype(np.int64) * t + more) * t + avoid
        key = key * n_choice + choice % n_choice
        ids = self.ids[key]
        missing = np.unique(key[ids < 0])
        if missing.size:
            texts = []
            for k in missing.tolist():
                rest, phrasing = divmod(k, n_choice)
                rest, less_topic = divmod(rest, t)
                reason, more_topic = divmod(rest, t)
                texts.append(
                    render_instruction(
                        REASONS[reason], names[more_topic], names[less_topic], phrasing
                    )
                )
            self.ids[missing] = population.intern_texts(texts)
            ids = self.ids[key]
        texts_out = population.text_table()[ids].tolist()
        reasons = np.array(REASONS, dtype=object)[reason_code].tolist()
        constraint = np.array(["", "", "fresh"], dtype=object)[reason_code].tolist()
        return texts_out, ids, reasons, constraint


class NumericUserModel(UserModel):
    """Vectorized numeric users (see the module docstring and :class:`UserModelConfig`)."""

    name = "numeric"

    def __init__(self, config: UserModelConfig | None = None) -> None:
        self.config = config or UserModelConfig()
        self._phrases = _Phrasebook()

    # -- mindset helpers ------------------------------------------------------------------
    def risk(
        self, satisfaction: NDArray[np.float32], fatigue: NDArray[np.float32], patience: NDArray
    ) -> NDArray[np.float32]:
        """Disengagement risk ρ in (0, 1)."""
        c = self.config
        threshold = c.leave_threshold * (1.5 - patience)
        return sigmoid((threshold - (satisfaction - fatigue)) / c.leave_temperature)

    def start_session(self, world: World, users: NDArray[np.int64]) -> None:
        c, pop, clock = self.config, world.population, world.clock
        previous = pop.satisfaction[users]
        first = pop.n_sessions[users] == 0
        start = np.float32(c.initial_satisfaction)
        carried = start + np.float32(c.satisfaction_carryover) * (previous - start)
        pop.satisfaction[users] = np.where(first, start, carried).astype(np.float32)
        pop.fatigue[users] = 0.0
        gap_hours = (clock.tick - pop.last_session_end[users]) * (clock.tick_minutes / 60.0)
        recovery = np.exp(-np.maximum(gap_hours, 0.0) / c.boredom_recovery_hours)
        recovery = np.where(pop.last_session_end[users] < 0, 0.0, recovery)
        pop.boredom[users] *= recovery[:, None].astype(np.float32)

    # -- the contract ---------------------------------------------------------------------
    def respond(self, world: World, feed: Feed, rng: np.random.Generator) -> Responses:
        c, pop, cat = self.config, world.population, world.catalog
        users = feed.users
        n, length = feed.items.shape
        rows = pop.selector(users)  # a view of every column when the page is everyone's
        satisfaction = np.array(pop.satisfaction[rows])
        fatigue = np.array(pop.fatigue[rows])
        boredom = pop.boredom[rows] * np.float32(1.0 - c.boredom_decay)
        taste = np.array(pop.taste[rows])
        opinion = np.array(pop.opinion[rows])
        patience = pop.patience[rows]
        diversity = pop.diversity[rows]
        conformity = pop.conformity[rows]
        sociability = pop.sociability[rows]
        more, less = pop.intent_more[rows], pop.intent_less[rows]
        fresh = pop.intent_fresh[rows]
        boredom_weight = (np.float32(c.w_boredom) * (np.float32(0.5) + diversity)).astype(
            np.float32
        )
        attention = np.float32(c.attention) ** np.arange(length, dtype=np.float32)
        # The page, item by item: match, click and engagement, mindset update, maybe leaving.
        items = np.ascontiguousarray(feed.items, dtype=np.int32)
        social = np.ascontiguousarray(feed.source == SOURCE_SOCIAL)
        proof = cat.social_proof()
        herd = cat.herd(c.vote_scale) if c.w_vote > 0 else np.zeros(cat.n_items, np.float32)
        item_terms = (cat.utility_shift, herd, cat.share_factor)
        params = tuple(float(getattr(c, name)) for name in kernels.RESPOND_PARAMS)
        state = (taste, boredom, satisfaction, fatigue, opinion)
        traits = (patience, conformity, sociability, boredom_weight)
        flags = (*(np.zeros((n, length), bool) for _ in range(5)), np.zeros(n, bool))
        match = np.zeros((n, length), np.float32)

        # The uniforms come in blocks of rows, each reviewed as it is drawn: the same numbers as
        # one draw of [n, L, 5] (float32 draws do not depend on how they are split), without
        # holding all of them (at a million users, 240 MB).
        for start in range(0, n, _REVIEW_BLOCK):
            block = slice(start, min(start + _REVIEW_BLOCK, n))
            draws = rng.random((block.stop - block.start, length, 5), dtype=np.float32)

            def review(part: slice, block: slice = block, draws: NDArray = draws) -> None:
                rows = slice(block.start + part.start, block.start + part.stop)
                kernels.respond_page(
                    items[rows],
                    social[rows],
                    users[rows],
                    pop.memory_items,
                    cat.topic,
                    cat.quality,
                    proof,
                    cat.embedding,
                    cat.stance,
                    item_terms,
                    tuple(a[rows] for a in state),
                    (*(a[rows] for a in traits), attention),
                    (more[rows], less[rows], fresh[rows], NO_TOPIC),
                    draws[part],
                    params,
                    tuple(a[rows] for a in flags),
                    match[rows],
                )

            kernels.by_rows(review, block.stop - block.start)
        examined, clicked, liked, shared, commented, left = flags
        # What the user did with what it clicked: dwell time and rating.
        noise = rng.standard_normal((2, int(np.count_nonzero(clicked))), dtype=np.float32)
        dwell, rating = kernels.click_measures(
            clicked,
            match,
            noise,
            c.dwell_seconds,
            c.dwell_sigma,
            # the clicked items' quality matters only to a calibrated rating rule
            cat.quality[np.maximum(items, 0)] if c.rating_cuts else np.zeros((0, 0), np.float32),
            np.asarray(c.rating_cuts, np.float64),
            (float(c.rating_scale[0]), float(c.rating_scale[2])),
            (float(c.rating_match), float(c.rating_quality)),
        )
        return Responses(
            examined=examined,
            clicked=clicked,
            liked=liked,
            shared=shared,
            commented=commented,
            dwell=dwell,
            rating=rating,
            left=left,
            satisfaction=satisfaction,
            fatigue=fatigue,
            boredom=boredom,
            taste=taste,
            opinion=opinion,
        )

    def instruct(
        self,
        world: World,
        users: NDArray[np.int64],
        page_items: NDArray[np.int32],
        rng: np.random.Generator,
    ) -> Instructions:
        c, pop, cat = self.config, world.population, world.catalog
        expired = users[pop.pages_since_instruction[users] >= c.intent_pages]
        pop.intent_more[expired] = NO_TOPIC
        pop.intent_less[expired] = NO_TOPIC
        pop.intent_fresh[expired] = False
        if users.size == 0 or c.max_instructions == 0:
            return Instructions.empty()
        risk = self.risk(pop.satisfaction[users], pop.fatigue[users], pop.patience[users])
        eligible = (
            (risk >= c.instruction_threshold)
            & (pop.session_instructions[users] < c.max_instructions)
            & (pop.pages_since_instruction[users] >= c.instruction_cooldown)
        )
        # Drawn for every user, so the stream does not depend on who speaks up.
        choice = np.asarray(rng.integers(0, template_count(), size=users.shape[0]))
        sel = np.flatnonzero(eligible)
        if sel.size == 0:
            return Instructions.empty()
        who = users[sel]
        boredom = pop.boredom[who]
        # einsum, not ``@``: a BLAS call here would wake OpenBLAS's thread pool every tick,
        # whose spinning threads then take the core the kernels run on.
        affinity = np.einsum("nd,td->nt", pop.taste[who], cat.topic_centroids)
        page = page_items[sel]
        valid = page >= 0
        page_topics = np.where(valid, cat.topic[np.maximum(page, 0)], -1)
        n_topics = cat.n_topics
        flat = (np.arange(sel.size)[:, None] * (n_topics + 1) + page_topics + 1).ravel()
        counts = np.bincount(flat, minlength=sel.size * (n_topics + 1))
        shown_most = counts.reshape(sel.size, n_topics + 1)[:, 1:].argmax(axis=1)
        # The page is already remembered: an item seen before is in memory more than once.
        seen = kernels.rows_count(page, pop.memory_items, who) > 1
        repeat_share = (seen & valid).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
        bored_most = boredom.argmax(axis=1)
        bored_max = boredom.max(axis=1)
        reason_code = np.where(
            bored_max >= _BOREDOM_REASON, 0, np.where(repeat_share >= _REPEAT_REASON, 2, 1)
        )
        avoid = np.where(reason_code == 0, bored_most, shown_most)
        want = affinity - c.w_boredom * boredom
        want[np.arange(sel.size), avoid] = -np.inf
        more = want.argmax(axis=1).astype(np.int16)
        # A repetition complaint asks for fresh items, not against a topic.
        less = np.where(reason_code == 2, NO_TOPIC, avoid).astype(np.int16)
        texts, text_ids, reason_list, constraint = self._phrases.render(
            pop, reason_code, more, avoid, choice[sel], cat.topic_names
        )
        pop.satisfaction[who] = np.minimum(
            pop.satisfaction[who] + np.float32(c.instruction_hope), np.float32(1.5)
        )
        return Instructions(
            users=who,
            text=texts,
            more=more,
            less=less,
            constraint=constraint,
            reason=reason_list,
            risk=risk[sel].astype(np.float32),
            text_ids=text_ids,
        )

    def plan_return(
        self, world: World, users: NDArray[np.int64], rng: np.random.Generator
    ) -> ReturnPlan:
        c, pop, clock = self.config, world.population, world.clock
        quality = np.clip(pop.satisfaction[users], 0.0, 1.0) - 0.5
        p_return = sigmoid(c.return_bias + c.return_slope * quality)
        returns = rng.random(users.shape[0]) < p_return
        mean_hours = 24.0 / pop.activity[users] * np.exp(-c.gap_slope * quality)
        gap_hours = rng.exponential(1.0, size=users.shape[0]) * mean_hours
        gap_ticks = np.maximum(1, np.ceil(gap_hours * clock.ticks_per_hour)).astype(np.int64)
        return ReturnPlan(returns=returns, gap_ticks=gap_ticks)
