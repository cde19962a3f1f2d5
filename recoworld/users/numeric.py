"""The numeric user model: the embedded default, vectorized over users.

Each active user reviews its feed in order. For every item it reaches it computes a utility from
taste, quality, boredom, repetition, social proof and its standing instruction, chooses against a
no-click option (a binary multinomial logit damped by position attention), may like, share or
comment, rates what it consumed, updates its mindset, and may leave. The loop runs over the
positions of the page (at most a few dozen), never over users. Every formula and default is
documented on :class:`recoworld.config.UserModelConfig`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from recoworld.config import UserModelConfig
from recoworld.users.base import SOURCE_SOCIAL, Feed, Instructions, Responses, ReturnPlan, UserModel
from recoworld.users.instructions import render_instruction, template_count
from recoworld.world.population import NO_TOPIC

if TYPE_CHECKING:
    from recoworld.world.world import World

__all__ = ["NumericUserModel", "sigmoid"]

#: Boredom of the most-bored topic above which an instruction is about boredom.
_BOREDOM_REASON = 0.25
#: Share of the last page already seen above which an instruction is about repetition.
_REPEAT_REASON = 0.3


def sigmoid(x: NDArray[np.floating]) -> NDArray[np.float32]:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


class NumericUserModel(UserModel):
    """Vectorized numeric users (see the module docstring and :class:`UserModelConfig`)."""

    name = "numeric"

    def __init__(self, config: UserModelConfig | None = None) -> None:
        self.config = config or UserModelConfig()

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
        rows = np.arange(n)
        satisfaction = pop.satisfaction[users].copy()
        fatigue = pop.fatigue[users].copy()
        boredom = pop.boredom[users] * np.float32(1.0 - c.boredom_decay)
        taste = pop.taste[users].copy()
        opinion = pop.opinion[users].copy()
        patience = pop.patience[users]
        diversity = pop.diversity[users]
        conformity = pop.conformity[users]
        sociability = pop.sociability[users]
        more, less = pop.intent_more[users], pop.intent_less[users]
        fresh = pop.intent_fresh[users]
        memory = pop.memory_items[users]
        proof = cat.social_proof()

        shape = (n, length)
        alive = np.ones(n, bool)
        left = np.zeros(n, bool)
        boredom_weight = np.float32(c.w_boredom) * (np.float32(0.5) + diversity)

        # What does not change while the user scrolls the page, for every position at once.
        items = feed.items
        present = items >= 0
        it = np.maximum(items, 0)
        topics = cat.topic[it].astype(np.intp)
        embeddings = cat.embedding[it]
        earlier = (items[:, :, None] == items[:, None, :]) & np.tri(length, k=-1, dtype=bool)
        seen = (items[:, :, None] == memory[:, None, :]).any(axis=2) | earlier.any(axis=2)
        static = (
            c.w_quality * (cat.quality[it] - np.float32(0.5))
            - c.w_repeat * seen
            + (c.w_social * conformity)[:, None] * proof[it]
            + (c.w_friend * sociability)[:, None] * (feed.source == SOURCE_SOCIAL)
            + c.w_intent * ((topics == more[:, None]) & (more != NO_TOPIC)[:, None])
            - c.w_intent * ((topics == less[:, None]) & (less != NO_TOPIC)[:, None])
        ).astype(np.float32)
        attention = np.float32(c.attention) ** np.arange(length, dtype=np.float32)
        draws = rng.random((length, 5, n), dtype=np.float32)
        noise = rng.standard_normal((length, 2, n), dtype=np.float32)
        match_all = np.zeros(shape, np.float32)
        clicked = np.zeros(shape, bool)
        examined = np.zeros(shape, bool)
        share_rate = np.float32(c.share_rate) * sociability
        comment_rate = np.float32(c.comment_rate) * sociability

        for r in range(length):
            valid = alive & present[:, r]
            if not valid.any():
                break
            topic = topics[:, r]
            emb = embeddings[:, r]
            z = (
                c.w_taste * np.einsum("ij,ij->i", taste, emb)
                - boredom_weight * boredom[rows, topic]
                + static[:, r]
            )
            match = sigmoid((z - c.no_click_utility) / c.temperature)
            click = valid & (draws[r, 0] < match * attention[r])
            examined[:, r] = valid
            clicked[:, r] = click
            match_all[:, r] = match
            # Mindset after the item.
            vf = valid.astype(np.float32)
            satisfaction += vf * c.satisfaction_rate * (match - c.satisfaction_reference)
            satisfaction += click * np.float32(c.click_bonus)
            np.clip(satisfaction, 0.0, 1.5, out=satisfaction)
            fatigue += vf * np.float32(c.fatigue_per_item)
            boredom[rows, topic] += vf * np.float32(c.boredom_per_item)
            if click.any():
                idx = np.flatnonzero(click)
                if c.drift_rate > 0:
                    moved = taste[idx] + np.float32(c.drift_rate) * (emb[idx] - taste[idx])
                    taste[idx] = moved / np.linalg.norm(moved, axis=1, keepdims=True)
                if c.opinion_rate > 0:
                    gap = cat.stance[it[idx, r]] - opinion[idx]
                    pull = np.abs(gap) < c.opinion_epsilon
                    opinion[idx] += np.where(pull, np.float32(c.opinion_rate) * gap, 0.0)
            leave = valid & (
                draws[r, 4] < c.leave_hazard * self.risk(satisfaction, fatigue, patience)
            )
            left |= leave
            alive &= ~leave

        # Engagement beyond the click and its measures, for all positions at once.
        d = np.moveaxis(draws, 2, 0)  # [n, L, 5]
        liked = clicked & (d[:, :, 1] < c.like_rate * match_all)
        shared = clicked & (d[:, :, 2] < share_rate[:, None] * match_all)
        commented = clicked & (d[:, :, 3] < comment_rate[:, None] * match_all)
        g = np.moveaxis(noise, 2, 0)  # [n, L, 2]
        dwell = np.where(
            clicked,
            c.dwell_seconds * np.exp(c.dwell_sigma * g[:, :, 0]) * (0.5 + match_all),
            0.0,
        ).astype(np.float32)
        rating = np.where(
            clicked, np.clip(np.rint(1.0 + 4.0 * match_all + 0.6 * g[:, :, 1]), 1.0, 5.0), np.nan
        ).astype(np.float32)

        # Did this page honour the standing instruction?
        pending = more != NO_TOPIC
        if pending.any():
            valid_all = feed.items >= 0
            topics = np.where(valid_all, cat.topic[np.maximum(feed.items, 0)], -1)
            shown = np.maximum(valid_all.sum(axis=1), 1)
            wanted = (topics == more[:, None]).sum(axis=1) / shown
            refused = ((topics == less[:, None]) & (less[:, None] != NO_TOPIC)).any(axis=1)
            if fresh.any():
                rerun = valid_all & (feed.items[:, :, None] == memory[:, None, :]).any(axis=2)
                refused |= fresh & rerun.any(axis=1)
            honoured = pending & (wanted >= c.honour_share) & ~refused
            ignored = pending & ((wanted == 0) | refused)
            satisfaction += np.float32(c.honour_gain) * honoured
            satisfaction -= np.float32(c.ignore_penalty) * ignored
            np.clip(satisfaction, 0.0, 1.5, out=satisfaction)

        return Responses(
            examined=examined,
            clicked=clicked,
            liked=liked,
            shared=shared,
            commented=commented,
            dwell=dwell,
            rating=rating,
            left=left,
            satisfaction=satisfaction.astype(np.float32),
            fatigue=fatigue.astype(np.float32),
            boredom=boredom.astype(np.float32),
            taste=taste.astype(np.float32),
            opinion=np.clip(opinion, -1.0, 1.0).astype(np.float32),
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
        affinity = pop.taste[who] @ cat.topic_centroids.T
        page = page_items[sel]
        valid = page >= 0
        page_topics = np.where(valid, cat.topic[np.maximum(page, 0)], -1)
        n_topics = cat.n_topics
        counts = np.zeros((sel.size, n_topics + 1), np.int32)
        np.add.at(
            counts, (np.repeat(np.arange(sel.size), page.shape[1]), page_topics.ravel() + 1), 1
        )
        shown_most = counts[:, 1:].argmax(axis=1)
        seen = np.zeros(page.shape, bool)
        for j in range(page.shape[1]):
            seen[:, j] = (pop.memory_items[who] == page[:, j : j + 1]).sum(axis=1) > 1
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
        names = cat.topic_names
        reasons = ("boredom", "mismatch", "repetition")
        texts, reason_list, constraint = [], [], []
        for j in range(sel.size):  # only the few users who speak up this tick
            reason = reasons[int(reason_code[j])]
            reason_list.append(reason)
            constraint.append("fresh" if reason == "repetition" else "")
            texts.append(
                render_instruction(reason, names[more[j]], names[avoid[j]], int(choice[sel[j]]))
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
