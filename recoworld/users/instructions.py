"""Natural-language reflective instructions, grounded in what the user saw and what it wants.

The text is what the platform receives; the intent it was written from (topics more / less, a
constraint) is logged as ground truth so that instruction following can be judged without trusting
the recommender's own reading of the words.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["REASONS", "render_instruction"]

#: Why a user speaks up: ``boredom`` (too much of one topic: less of it, more of another),
#: ``mismatch`` (the page's main topic is not for it: less of that, more of another),
#: ``repetition`` (it keeps seeing the same items: more of a topic, and nothing already seen —
#: the ``fresh`` constraint; no topic is refused). Every topic in the intent is named in the text.
REASONS = ("boredom", "mismatch", "repetition")

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "boredom": (
        "Too much {less} lately — show me something different, maybe {more}.",
        "I'm getting bored of {less}. Could I see more {more}?",
        "Enough {less} for today; I'd like some {more} instead.",
        "Less {less}, please. I'm in the mood for {more}.",
    ),
    "mismatch": (
        "This isn't really my thing. Show me more {more} and less {less}.",
        "Not feeling the {less} posts. Got any good {more}?",
        "Can you show me {more}? The {less} stuff isn't for me.",
    ),
    "repetition": (
        "I keep seeing the same things — show me something new, like fresh {more}.",
        "Seen all of this already. Anything new in {more}?",
        "Stop repeating yourself: something I haven't seen, {more} maybe.",
    ),
}


@functools.lru_cache(maxsize=1 << 16)
def render_instruction(reason: str, more: str, less: str, choice: int) -> str:
    """Text for one instruction; ``choice`` picks among the reason's phrasings."""
    templates = _TEMPLATES[reason]
    return templates[choice % len(templates)].format(more=more, less=less)


def template_count() -> int:
    """Largest number of phrasings of any reason (for drawing ``choice``)."""
    return int(np.lcm.reduce([len(t) for t in _TEMPLATES.values()]))
