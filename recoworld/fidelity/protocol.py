"""Agent4Rec's taste-discrimination protocol, reproduced exactly, and the interface a simulated
user implements to take it.

The protocol (``METRICS.md``, "Simulator fidelity"; Agent4Rec, SIGIR 2024). For every user ``u``
and a ratio ``1:m``:

- the user is built from its *train* interactions only (:meth:`Discriminator.fit`);
- ``P_u = min(|H_u|, ⌊20 / (m + 1)⌋)`` positives are drawn without replacement from ``H_u``, the
  user's held-out items (``valid ∪ test``);
- ``m · P_u`` negatives are drawn without replacement from the items ``u`` never interacted with
  in *any* split;
- both are shuffled into one list of at most 20 items;
- the user says, item by item, whether it would watch it (:meth:`Discriminator.decide`), from its
  own state, never told how many positives the list holds;
- per user, accuracy, precision, recall and F1 of "would watch" against "is a held-out positive"
  (:func:`list_metrics`), then the mean over users.

Users with no held-out item (``P_u = 0``) have no list and are not averaged over. Datasets with no
given split get one from :func:`holdout_split` (documented there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recoworld.data.dataset import Dataset

__all__ = [
    "HELDOUT_SPLITS",
    "LIST_SIZE",
    "Discriminator",
    "TasteLists",
    "agent4rec_lists",
    "evaluate",
    "has_given_split",
    "holdout_split",
    "list_metrics",
    "score_lists",
]

logger = logging.getLogger(__name__)

#: The longest list a user is shown (``P + m·P ≤ 20``).
LIST_SIZE = 20
#: The splits whose items are a user's held-out positives.
HELDOUT_SPLITS = ("valid", "test")


@runtime_checkable
class Discriminator(Protocol):
    """A simulated user population that takes the taste-discrimination test.

    ``fit`` sees the dataset (items, users, texts, graph) and the *train* interactions only; it
    must not read ``dataset.interactions`` rows outside ``train``. ``decide`` gets, per user, the
    shuffled list of item ids and returns, per user, one boolean per item ("would watch"), in the
    list's order. Each decision comes from the user's own state and the item; the user is never
    told how many positives its list holds, and a decision may not depend on the list's
    composition (e.g. no "the top half of this list").
    """

    name: str

    def fit(self, dataset: Dataset, train: pd.DataFrame) -> None:
        """Build every user from ``train`` (rows of ``dataset.interactions``)."""
        ...

    def decide(
        self, users: NDArray[np.int64], lists: list[NDArray[np.int64]]
    ) -> list[NDArray[np.bool_]]:
        """Per user ``users[k]``, whether it would watch each item of ``lists[k]``."""
        ...


@dataclass(frozen=True)
class TasteLists:
    """The lists of one ratio: ``users[k]`` is shown ``items[k]``; ``labels[k][j]`` is whether
    ``items[k][j]`` is one of its held-out positives."""

    ratio: int
    users: NDArray[np.int64]
    items: list[NDArray[np.int64]]
    labels: list[NDArray[np.bool_]]


def has_given_split(dataset: Dataset) -> bool:
    """Whether the dataset comes with a train / held-out split (``ml-1m-agent4rec``)."""
    splits = set(dataset.interactions["split"].astype(str).unique())
    return "train" in splits and bool(splits & set(HELDOUT_SPLITS))


def holdout_split(
    dataset: Dataset,
    *,
    fraction: float = 0.2,
    seed: int = 0,
    by: Literal["random", "time"] = "random",
) -> Dataset:
    """The dataset with a deterministic per-user train / held-out split, for data with none.

    Per user with ``n`` distinct interacted items, ``h = ⌊fraction · n⌋`` of them are held out
    (marked ``test``), the rest ``train``. ``by="random"`` (default): a seeded uniformly random
    ``h``; ``by="time"``: the ``h`` latest by timestamp (ties broken by the seeded random key;
    random where the data has no timestamps). Users with fewer than 5 items keep everything in
    train (``h = 0``). Repeated rows of one (user, item) pair all go to the side of the pair. A
    dataset that already has a split is returned as is.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    if has_given_split(dataset):
        return dataset
    rows = dataset.interactions.reset_index(drop=True)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E11]))
    pairs = rows.groupby(["user", "item"], sort=True, observed=True)["timestamp"].max()
    frame = pairs.reset_index()
    frame["key"] = rng.random(len(frame))
    timed = by == "time" and bool((frame["timestamp"] >= 0).any())
    order = ["user", "timestamp", "key"] if timed else ["user", "key"]
    frame = frame.sort_values(order, kind="stable")
    size = frame.groupby("user", sort=False)["item"].transform("size").to_numpy()
    rank = frame.groupby("user", sort=False).cumcount().to_numpy()
    held = np.floor(fraction * size).astype(np.int64)
    held[size < 5] = 0
    frame["held"] = rank >= size - held
    key = frame.set_index(["user", "item"])["held"]
    flags = key.reindex(pd.MultiIndex.from_frame(rows[["user", "item"]])).to_numpy(bool)
    split = np.where(flags, "test", "train")
    new = rows.assign(split=pd.Categorical(split, categories=["train", "valid", "test", "all"]))
    return Dataset(
        name=dataset.name,
        format=dataset.format,
        source=dataset.source,
        interactions=new,
        items=dataset.items,
        users=dataset.users,
        edges=dataset.edges,
        directed=dataset.directed,
        rating_scale=dataset.rating_scale,
    )


def agent4rec_lists(dataset: Dataset, ratio: int, *, seed: int = 0) -> TasteLists:
    """The protocol's lists for ratio ``1:ratio`` (see the module docstring).

    ``P_u = min(|valid_u ∪ test_u|, ⌊20 / (ratio + 1)⌋)`` positives from the user's held-out
    items, ``ratio · P_u`` negatives from the items it has no interaction with in any split,
    shuffled. Users with ``P_u = 0`` are skipped. One stream per (seed, ratio); users are drawn in
    id order, so the lists are a function of ``(dataset, ratio, seed)`` alone.
    """
    if ratio < 1:
        raise ValueError(f"ratio must be ≥ 1, got {ratio}")
    if not has_given_split(dataset):
        raise ValueError(
            f"dataset {dataset.name!r} has no train / held-out split; "
            "pass it through recoworld.fidelity.protocol.holdout_split first"
        )
    per_list = LIST_SIZE // (ratio + 1)
    held = dataset.user_items(*HELDOUT_SPLITS)
    seen = dataset.user_items("all")
    n_items = dataset.n_items
    rng = np.random.default_rng(np.random.SeedSequence([seed, ratio, 0xA4]))
    users: list[int] = []
    items: list[NDArray[np.int64]] = []
    labels: list[NDArray[np.bool_]] = []
    for user in range(dataset.n_users):
        pos_pool = held[user]
        n_pos = min(len(pos_pool), per_list)
        if n_pos == 0:
            continue
        n_neg = ratio * n_pos
        unseen = n_items - len(seen[user])
        if unseen < n_neg:
            logger.warning("user %d has only %d unseen items; skipped", user, unseen)
            continue
        positives = rng.choice(pos_pool, size=n_pos, replace=False)
        negatives = _draw_unseen(rng, n_items, seen[user], n_neg)
        lst = np.concatenate([positives, negatives]).astype(np.int64)
        lab = np.zeros(len(lst), np.bool_)
        lab[:n_pos] = True
        perm = rng.permutation(len(lst))
        users.append(user)
        items.append(lst[perm])
        labels.append(lab[perm])
    return TasteLists(ratio, np.asarray(users, np.int64), items, labels)


def _draw_unseen(
    rng: np.random.Generator, n_items: int, seen: NDArray[np.int64], k: int
) -> NDArray[np.int64]:
    """``k`` distinct items uniformly from ``0..n_items-1`` minus ``seen`` (sorted)."""
    mask = np.ones(n_items, np.bool_)
    mask[seen] = False
    pool = np.flatnonzero(mask)
    return rng.choice(pool, size=k, replace=False).astype(np.int64)


def list_metrics(pred: NDArray[np.bool_], truth: NDArray[np.bool_]) -> tuple[float, ...]:
    """Accuracy, precision, recall, F1 of one list.

    With ``tp, fp, fn`` the counts: accuracy = (tp + tn) / n; precision = tp / (tp + fp), **0 when
    nothing is predicted positive**; recall = tp / (tp + fn) (every list has a positive);
    F1 = 2 · precision · recall / (precision + recall), 0 when both are 0.
    """
    pred = np.asarray(pred, np.bool_)
    truth = np.asarray(truth, np.bool_)
    tp = float(np.sum(pred & truth))
    fp = float(np.sum(pred & ~truth))
    fn = float(np.sum(~pred & truth))
    n = float(len(truth))
    accuracy = float(np.sum(pred == truth)) / n if n else 0.0
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return accuracy, precision, recall, f1


def score_lists(lists: TasteLists, decisions: Sequence[NDArray[np.bool_]]) -> dict[str, float]:
    """The protocol's figures of one ratio: per-user metrics averaged over users."""
    if len(decisions) != len(lists.items):
        raise ValueError(f"{len(decisions)} decisions for {len(lists.items)} lists")
    rows = []
    for k, (pred, truth) in enumerate(zip(decisions, lists.labels, strict=True)):
        pred = np.asarray(pred, np.bool_)
        if pred.shape != truth.shape:
            raise ValueError(f"list {k}: {pred.shape[0]} decisions for {truth.shape[0]} items")
        rows.append(list_metrics(pred, truth))
    table = np.asarray(rows, np.float64).reshape(-1, 4)
    mean = table.mean(axis=0) if len(table) else np.zeros(4)
    return {
        "ratio": float(lists.ratio),
        "users": float(len(table)),
        "accuracy": float(mean[0]),
        "precision": float(mean[1]),
        "recall": float(mean[2]),
        "f1": float(mean[3]),
    }


#: Called after each ratio with (ratios done, ratios total).
Progress = Callable[[int, int], None]


def evaluate(
    discriminator: Discriminator,
    dataset: Dataset,
    ratios: Sequence[int] = (1, 2, 3, 9),
    *,
    seed: int = 0,
    fit: bool = True,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Run the protocol: fit on train (unless ``fit=False``), then one set of lists per ratio.

    A dataset with no given split is first split by :func:`holdout_split` (``seed``). Returns one
    row per ratio: ``ratio``, ``users``, ``accuracy``, ``precision``, ``recall``, ``f1``.
    """
    dataset = holdout_split(dataset, seed=seed)
    if fit:
        discriminator.fit(dataset, dataset.split("train"))
    rows = []
    for done, ratio in enumerate(ratios, start=1):
        lists = agent4rec_lists(dataset, int(ratio), seed=seed)
        decisions = discriminator.decide(lists.users, lists.items)
        rows.append(score_lists(lists, decisions))
        if progress is not None:
            progress(done, len(ratios))
    frame = pd.DataFrame(rows)
    frame["ratio"] = frame["ratio"].astype(int)
    frame["users"] = frame["users"].astype(int)
    return frame
