"""Reading a reflective instruction's words: the platform's side, never the ground truth.

:func:`parse_instruction` is a rule-based parser: each topic named in the text takes the polarity
of the nearest cue phrase in the same sentence ("too much", "bored of", "enough", "less", "not
for me" … → less; "more", "maybe", "some", "mood for", "show me" … → more); phrases about
repeats ("same things", "seen", "new", "repeating") ask for fresh items. It reads what users say,
so it can be wrong — instruction following is always judged against the logged intent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from recoworld.world.population import Population

__all__ = ["InstructionCodes", "ParsedInstruction", "encode_instructions", "parse_instruction"]

_NEGATIVE = (
    "too much",
    "bored of",
    "enough",
    "less",
    "not feeling",
    "isn't",
    "is not",
    "not for me",
    "no more",
    "tired of",
    "sick of",
)
_POSITIVE = (
    "more",
    "maybe",
    "some",
    "mood for",
    "show me",
    "got any",
    "anything new in",
    "like",
    "see",
    "instead",
    "want",
)
_FRESH = ("same things", "seen", "new", "repeating", "again", "already")
_SENTENCE = re.compile(r"[.?!;:—]")


@dataclass(frozen=True, slots=True)
class ParsedInstruction:
    """Topic indices the text asks more of and less of, and whether it asks for fresh items."""

    more: frozenset[int]
    less: frozenset[int]
    fresh: bool


@lru_cache(maxsize=64)
def _patterns(topics: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    cue = "|".join(re.escape(c) for c in sorted(_NEGATIVE + _POSITIVE, key=len, reverse=True))
    topic = "|".join(re.escape(t.lower()) for t in sorted(topics, key=len, reverse=True))
    return re.compile(rf"\b({cue})\b"), re.compile(rf"\b({topic})\b")


@lru_cache(maxsize=1 << 16)  # the templated vocabulary has ~5,000 texts at 20 topics
def parse_instruction(text: str, topics: tuple[str, ...]) -> ParsedInstruction:
    """Parse one instruction against the catalogue's topic names (see the module docstring)."""
    cue_re, topic_re = _patterns(topics)
    index = {t.lower(): i for i, t in enumerate(topics)}
    lowered = text.lower()
    more: set[int] = set()
    less: set[int] = set()
    for sentence in _SENTENCE.split(lowered):
        cues = [(m.start(), m.end(), m.group(1) in _NEGATIVE) for m in cue_re.finditer(sentence)]
        for m in topic_re.finditer(sentence):
            if not cues:
                more.add(index[m.group(1)])
                continue

            def distance(cue: tuple[int, int, bool], m: re.Match[str] = m) -> int:
                start, end, _ = cue
                return m.start() - end if end <= m.start() else start - m.end()

            negative = min(cues, key=distance)[2]
            (less if negative else more).add(index[m.group(1)])
    fresh = any(re.search(rf"\b{re.escape(f)}\b", lowered) for f in _FRESH)
    return ParsedInstruction(frozenset(more - less), frozenset(less), fresh)


def encode_instructions(
    texts: Sequence[str | None], topics: tuple[str, ...]
) -> NDArray[np.float32]:
    """``[n, 2·T + 1]``: per text, a +1 for each topic asked more of, a +1 in the second block
    for each asked less of, and a fresh flag (all zero when there is no instruction)."""
    n_topics = len(topics)
    out = np.zeros((len(texts), 2 * n_topics + 1), np.float32)
    for row, text in enumerate(texts):
        if not text:
            continue
        parsed = parse_instruction(text, topics)
        for t in parsed.more:
            out[row, t] = 1.0
        for t in parsed.less:
            out[row, n_topics + t] = 1.0
        out[row, -1] = float(parsed.fresh)
    return out


class InstructionCodes:
    """Encodings of a population's instruction texts, computed once per text.

    ``Population.instruction_texts`` is an append-only table of distinct texts, so each text is
    parsed once; a user's encoding is then a gather by its ``last_instruction`` index.
    """

    def __init__(self, topics: tuple[str, ...]) -> None:
        self.topics = topics
        # Row i encodes instruction_texts[i]; the last row, all zeros, is "no instruction" (-1).
        self.codes = np.zeros((1, 2 * len(topics) + 1), np.float32)

    def for_users(self, population: Population, users: NDArray[np.integer]) -> NDArray[np.float32]:
        """``[len(users), 2·T + 1]`` encodings of each user's standing instruction (zeros: none)."""
        texts = population.instruction_texts
        known = len(self.codes) - 1
        if len(texts) > known:
            fresh = encode_instructions(texts[known:], self.topics)
            self.codes = np.concatenate([self.codes[:-1], fresh, self.codes[-1:]])
        return self.codes[population.last_instruction[users]]
