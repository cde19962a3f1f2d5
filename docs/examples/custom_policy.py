"""A recommender of your own: any object with ``name``, ``recommend`` and ``update``.

This one reads the user's reflective instruction *text* (nothing privileged) with a keyword
parser — topic names in "more"/"less" position — and re-ranks a popularity base accordingly.
It is compared with plain MostPopular on the same seeds.
"""

import numpy as np

import recoworld
from recoworld.policies import Feedback, RecommendRequest, Slates, slates_from_scores


class KeywordListener:
    """MostPopular, plus: topics named after "show me"/"more"/"maybe" up, the first named down."""

    name = "keyword-listener"

    def recommend(self, request: RecommendRequest) -> Slates:
        catalog, cand = request.catalog, request.candidates
        scores = np.log1p(catalog.clicks[cand].astype(np.float32))
        topics = catalog.topic[cand]
        for row, text in enumerate(request.instructions):
            if not text:
                continue
            named = [t for t, name in enumerate(catalog.topic_names) if name in text.lower()]
            # Phrasings name the unwanted topic and the wanted one; the wanted one comes after
            # "more", "maybe", "some", "like" or "see" in every template we emit.
            positions = {t: text.lower().index(catalog.topic_names[t]) for t in named}
            ordered = sorted(named, key=positions.get)
            cue = max(text.lower().rfind(w) for w in ("more", "maybe", "some", "like", "see"))
            wanted = [t for t in ordered if positions[t] > cue] or ordered[-1:]
            for t in wanted:
                scores[row] += 3.0 * (topics[row] == t)
            for t in set(ordered) - set(wanted):
                scores[row] -= 3.0 * (topics[row] == t)
        return slates_from_scores(request, scores)

    def update(self, feedback: Feedback) -> None:
        pass


def session_length(policy: object, seed: int) -> float:
    config = recoworld.override(
        recoworld.load_scenario("retention"),
        {"world.n_users": 1000, "world.n_items": 1500, "clock.days": 1, "seed": seed},
    )
    sim = recoworld.Simulation(config, policy=policy)
    sim.run()
    return sim.totals.examined / max(sim.totals.sessions_started, 1)


for seed in (0, 1):
    base = session_length(recoworld.make_policy("most_popular"), seed)
    listening = session_length(KeywordListener(), seed)
    print(f"seed {seed}: most_popular {base:.1f} items/session, keyword listener {listening:.1f}")
