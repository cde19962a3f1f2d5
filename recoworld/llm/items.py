"""Items as a language model sees them: text lines, semantic IDs, and an image slot.

Semantic IDs (TIGER-style) are hierarchical discrete codes built from the item embeddings by
residual k-means: level 1 clusters the embeddings, level 2 clusters what level 1 left over, and so
on; items that share every code get a collision suffix, so each ID names one item. Similar items
share prefixes, which lets a model generalise over items it has never seen by title.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from recoworld.world.catalog import Catalog

__all__ = ["ItemTexts", "clean_text", "residual_kmeans", "semantic_ids"]

_QUALITY = ("rough", "decent", "solid", "polished", "excellent")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SPACE = re.compile(r"\s+")


def clean_text(text: object, limit: int) -> str:
    """One line of item text, safe inside a prompt: control characters and line breaks become
    spaces, quotes become apostrophes (the prompt quotes item text, so it cannot close the quote
    and pose as the prompt's own words), and at most ``limit`` characters."""
    line = _SPACE.sub(" ", _CONTROL.sub(" ", str(text))).strip().replace('"', "'")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def residual_kmeans(
    x: NDArray[np.floating], levels: int, k: int, rng: np.random.Generator, iters: int = 12
) -> NDArray[np.int64]:
    """``[n, levels]`` codes: level ``l`` is k-means (``k`` clusters, Lloyd, ``iters`` rounds,
    k-means++ seeding from ``rng``) on the residuals left by levels ``0..l-1``."""
    residual = np.asarray(x, np.float64).copy()
    n = residual.shape[0]
    codes = np.zeros((n, levels), np.int64)
    k = max(1, min(k, n))
    for level in range(levels):
        centers = _kmeans_pp(residual, k, rng)
        for _ in range(iters):
            dist = (
                (residual**2).sum(1)[:, None]
                - 2.0 * np.einsum("nd,kd->nk", residual, centers)
                + (centers**2).sum(1)[None, :]
            )
            assign = dist.argmin(axis=1)
            for c in range(k):
                members = assign == c
                if members.any():
                    centers[c] = residual[members].mean(axis=0)
        codes[:, level] = assign
        residual -= centers[assign]
    return codes


def _kmeans_pp(x: NDArray[np.float64], k: int, rng: np.random.Generator) -> NDArray[np.float64]:
    centers = [x[int(rng.integers(x.shape[0]))]]
    d2 = ((x - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        j = (
            int(rng.integers(x.shape[0]))
            if total <= 0
            else int(rng.choice(x.shape[0], p=d2 / total))
        )
        centers.append(x[j])
        d2 = np.minimum(d2, ((x - x[j]) ** 2).sum(1))
    return np.array(centers)


def semantic_ids(
    embedding: NDArray[np.floating], *, levels: int = 3, k: int = 16, seed: int = 0
) -> list[str]:
    """One ID per item, e.g. ``"a3-b12-c7"`` (letters name the level), with ``"-2"``, ``"-3"``…
    appended to the second, third… item sharing all codes."""
    codes = residual_kmeans(embedding, levels, k, np.random.default_rng(seed))
    seen: dict[tuple[int, ...], int] = {}
    out = []
    for row in codes.tolist():
        key = tuple(row)
        count = seen[key] = seen.get(key, 0) + 1
        base = "-".join(f"{chr(ord('a') + lvl)}{c}" for lvl, c in enumerate(row))
        out.append(base if count == 1 else f"{base}-{count}")
    return out


class ItemTexts:
    """Item lines for prompts, rendered once per item (``mode``: text, semantic_id or both).

    ``image``: an optional per-item image reference (URL or path) for multimodal servers; the
    page prompt lists it after the text when present.
    """

    def __init__(
        self,
        catalog: Catalog,
        mode: str = "text",
        *,
        title_chars: int = 60,
        image: list[str | None] | None = None,
    ) -> None:
        self.mode = mode
        self.image = image
        self._ids = semantic_ids(catalog.embedding) if mode in ("semantic_id", "both") else None
        self._cache: dict[int, str] = {}
        self._catalog = catalog
        self._title_chars = title_chars

    def line(self, item: int) -> str:
        text = self._cache.get(item)
        if text is None:
            cat = self._catalog
            topic = cat.topic_names[int(cat.topic[item])]
            quality = _QUALITY[
                min(int(float(cat.quality[item]) * len(_QUALITY)), len(_QUALITY) - 1)
            ]
            title = clean_text(cat.title[item], self._title_chars)
            if self._ids is None:
                text = f'[{topic}] "{title}" ({quality})'
            elif self.mode == "semantic_id":
                text = f"<{self._ids[item]}> [{topic}] ({quality})"
            else:
                text = f'<{self._ids[item]}> [{topic}] "{title}" ({quality})'
            if self.image is not None and self.image[item]:
                text += f" image: {clean_text(self.image[item], 200)}"
            self._cache[item] = text
        return text
