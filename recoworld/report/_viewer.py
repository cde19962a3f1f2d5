"""The data of the session viewer: some users' feeds, slate by slate, with what they did.

A *slate* is one page: the impressions of one ``(tick, session, user)``, in rank order, each
with its response (when the user reached it), the instruction the user gave after the page, and
for LLM users the reasons and comments of their page decision and their reflections.

The JSON is kept compact (the default run's viewer is about a megabyte): a page's items are rows
``[item, action, dwell, rating, from_user]`` — ``action`` an index into ``actions`` (−1: not
reached), ``rating`` 0 when none, ``from_user`` −1 for a recommended item — and item metadata
(topic, title) is stored once per item.

LLM page decisions are read by :func:`recoworld.probe.decision_notes`, as the creator probe
reads them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from numpy.typing import NDArray

    from recoworld.world.catalog import Catalog

__all__ = ["ACTIONS", "choose_users", "llm_page_notes", "viewer_data"]

_log = logging.getLogger(__name__)

#: Response actions, in the order of their codes in the viewer rows.
ACTIONS = ("skip", "click", "like", "share", "comment")
#: ``llm_calls`` purposes of LLM users (their page decisions and reflections).
USER_PURPOSES = ("page", "reflection")
#: At most this many slates in the viewer over all its users (about 2 MB of JSON): long runs
#: offer fewer users, each with every one of its slates.
MAX_SLATES = 10_000


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def choose_users(
    impressions: pd.DataFrame,
    llm_users: NDArray[np.int64],
    max_users: int,
    max_slates: int = MAX_SLATES,
) -> list[int]:
    """Up to ``max_users`` users with at least one page: LLM users first, then the users with
    the most pages (ties: lower user id first), as long as their pages together stay within
    ``max_slates`` (the first user is always taken). Deterministic for a given trajectory."""
    import numpy as np

    if max_users <= 0 or impressions.empty:
        return []
    pages = impressions[["tick", "user"]].drop_duplicates().groupby("user", observed=True).size()
    frame = pages.rename("pages").reset_index()
    frame["llm"] = frame["user"].isin(np.asarray(llm_users, dtype=np.int64))
    frame = frame.sort_values(["llm", "pages", "user"], ascending=[False, False, True])
    frame = frame.head(max_users)
    cumulative = frame["pages"].cumsum().to_numpy()
    n = max(1, int(np.searchsorted(cumulative, max_slates, side="right")))
    return [int(u) for u in frame["user"].to_numpy()[:n]]


def llm_page_notes(
    calls: pd.DataFrame, outputs: list[str | None]
) -> dict[tuple[int, int], dict[str, Any]]:
    """What LLM users said on each page ``(tick, user)``, from their ``llm_calls`` rows:
    ``why`` and ``cm`` (per item, in rank order: the decision's ``why`` and, where the user
    commented, the ``comment``), ``mood``; ``fb`` the error of a page call whose decision was
    not used (the numeric model's stood); ``refl`` a reflection made after the page.

    The entries of a decision are matched to the page's items by position, as the LLM user model
    applies them (``recoworld.users.llm``) and as ``recoworld.probe`` reads them."""
    from recoworld.probe import decision_notes

    notes: dict[tuple[int, int], dict[str, Any]] = {}
    for tick, user, purpose, valid, fallback, error, text in zip(
        calls["tick"].tolist(),
        calls["user"].tolist(),
        calls["purpose"].astype(str).tolist(),
        calls["valid"].tolist(),
        calls["fallback"].tolist(),
        calls["error"].tolist(),
        outputs,
        strict=True,
    ):
        if purpose not in USER_PURPOSES:
            continue
        entry = notes.setdefault((int(tick), int(user)), {})
        if purpose == "page" and (fallback or not valid):
            entry["fb"] = str(error) if isinstance(error, str) and error else "no usable reply"
            continue
        try:
            decoded = json.loads(text, strict=False) if text else None
        except ValueError:
            continue
        if not isinstance(decoded, dict):
            continue
        if purpose == "reflection":
            reflection = " ".join(str(decoded.get("reflection") or "").split())
            if reflection:
                entry["refl"] = reflection
            continue
        entries = decision_notes(text)
        if entries is not None and any(e["why"] for e in entries):
            entry["why"] = [e["why"] for e in entries]
        if entries is not None and any(e["comment"] for e in entries):
            entry["cm"] = [e["comment"] for e in entries]
        mood = decoded.get("mood")
        if isinstance(mood, int) and not isinstance(mood, bool):
            entry["mood"] = mood
    return {k: v for k, v in notes.items() if v}


def _read_llm_notes(
    run_dir: Path, users: list[int], llm_users: NDArray[np.int64]
) -> dict[tuple[int, int], dict[str, Any]]:
    """:func:`llm_page_notes` of the chosen LLM users, reading only their rows' outputs."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from recoworld.trajectory.reader import read_arrow

    wanted = np.intersect1d(np.asarray(users, dtype=np.int64), llm_users)
    if wanted.size == 0:
        return {}
    calls = read_arrow(
        run_dir, "llm_calls", ["tick", "user", "purpose", "valid", "fallback", "error", "output"]
    )
    calls = calls.filter(pc.is_in(calls["user"], value_set=pa.array(wanted, type=pa.int32())))
    outputs = calls.column("output").to_pylist()
    frame = calls.drop_columns(["output"]).to_pandas()
    return llm_page_notes(frame, outputs)


def _instructions(instructions: pd.DataFrame) -> dict[tuple[int, int], list[dict[str, Any]]]:
    out: dict[tuple[int, int], list[dict[str, Any]]] = {}
    if instructions.empty:
        return out
    columns = ("tick", "user", "text", "intent_more", "intent_less", "constraint", "reason", "risk")
    for tick, user, text, more, less, constraint, reason, risk in zip(
        *(instructions[c].tolist() for c in columns), strict=True
    ):
        out.setdefault((int(tick), int(user)), []).append(
            {
                "text": str(text),
                "more": [str(t) for t in more],
                "less": [str(t) for t in less],
                "constraint": constraint if isinstance(constraint, str) else None,
                "reason": str(reason),
                "risk": round(float(risk), 3),
            }
        )
    return out


def viewer_data(
    run_dir: Path,
    manifest: Mapping[str, Any],
    impressions: pd.DataFrame,
    responses: pd.DataFrame,
    instructions: pd.DataFrame,
    sessions: pd.DataFrame,
    llm_users: NDArray[np.int64],
    catalog: Catalog | None,
    max_users: int,
) -> dict[str, Any]:
    """The viewer's JSON: ``users`` (each with ``u``, ``label``, ``llm`` and its ``pages``),
    ``items`` (item id → ``[topic index, title]``), ``topics``, ``actions`` and the clock."""
    import numpy as np
    import pandas as pd

    clock = manifest.get("config", {}).get("clock", {})
    out: dict[str, Any] = {
        "actions": list(ACTIONS),
        "topics": list(catalog.topic_names) if catalog is not None else [],
        "tick_minutes": float(clock.get("tick_minutes", 5)),
        "start_hour": float(clock.get("start_hour", 0)),
        "items": {},
        "users": [],
    }
    chosen = choose_users(impressions, llm_users, max_users)
    if not chosen:
        return out
    imp = impressions[impressions["user"].isin(chosen)]
    resp = responses[responses["user"].isin(chosen)]
    cols = ["tick", "user", "rank", "action", "dwell", "rating", "left"]
    rows = imp.merge(resp[cols], on=["tick", "user", "rank"], how="left")
    rows = rows.sort_values(["user", "tick", "rank"], kind="stable")
    item = rows["item"].to_numpy(np.int64)
    dwell = np.round(rows["dwell"].to_numpy(np.float64), 1)
    rating = rows["rating"].to_numpy(np.float64)
    from_user = rows["from_user"].to_numpy(np.float64)
    left = rows["left"].eq(True).to_numpy(bool)
    users = rows["user"].to_numpy(np.int64)
    ticks = rows["tick"].to_numpy(np.int64)
    sess = rows["session"].to_numpy(np.int64)
    acts = pd.Categorical(rows["action"].astype(object), categories=ACTIONS).codes.astype(np.int64)

    said = _instructions(instructions[instructions["user"].isin(chosen)])
    notes = _read_llm_notes(run_dir, chosen, llm_users)
    by_session = {
        int(s): (int(a), int(n), str(r))
        for s, a, n, r in zip(
            sessions["session"].tolist(),
            sessions["start_tick"].tolist(),
            sessions["pages"].tolist(),
            sessions["end_reason"].astype(str).tolist(),
            strict=True,
        )
    }
    # Sessions without a row (still open when a run was killed): their pages, from impressions.
    open_pages = (
        imp[~imp["session"].isin(list(by_session))][["session", "tick"]]
        .drop_duplicates()
        .groupby("session")["tick"]
        .agg(["min", "size"])
    )
    for s, first, n in zip(
        open_pages.index.tolist(),
        open_pages["min"].tolist(),
        open_pages["size"].tolist(),
        strict=True,
    ):
        by_session[int(s)] = (int(first), int(n), "")

    starts = np.flatnonzero(np.r_[True, (users[1:] != users[:-1]) | (ticks[1:] != ticks[:-1])])
    ends = np.r_[starts[1:], users.size]
    pages: dict[int, list[dict[str, Any]]] = {u: [] for u in chosen}
    shown: set[int] = set()
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        user, tick, session = int(users[a]), int(ticks[a]), int(sess[a])
        page_rows = []
        left_at = None
        for k in range(a, b):
            r = rating[k]
            f = from_user[k]
            page_rows.append(
                [
                    int(item[k]),
                    int(acts[k]),
                    float(dwell[k]) if acts[k] > 0 else 0,
                    int(r) if r == r else 0,
                    int(f) if f == f else -1,
                ]
            )
            if left[k]:
                left_at = k - a
            shown.add(int(item[k]))
        first, n_pages, reason = by_session.get(session, (tick, 1, ""))
        page: dict[str, Any] = {
            "t": tick,
            "s": session,
            "p": tick - first + 1,
            "n": n_pages,
            "rows": page_rows,
        }
        if tick - first + 1 == n_pages and reason:
            page["end"] = reason
        if left_at is not None:
            page["L"] = left_at
        if (tick, user) in said:
            page["ins"] = said[(tick, user)]
        page.update(notes.get((tick, user), {}))
        pages[user].append(page)

    is_llm = set(np.asarray(llm_users, dtype=np.int64).tolist())
    for user in chosen:
        n_sessions = len({p["s"] for p in pages[user]})
        n_said = sum(len(p.get("ins", ())) for p in pages[user])
        label = (
            f"user {user} · {_plural(len(pages[user]), 'page')} · {_plural(n_sessions, 'session')}"
        )
        if n_said:
            label += f" · {_plural(n_said, 'instruction')}"
        if user in is_llm:
            label += " · LLM"
        out["users"].append(
            {"u": user, "llm": user in is_llm, "label": label, "pages": pages[user]}
        )
    if catalog is not None:
        n = catalog.n_items
        topic, title = catalog.topic, catalog.title
        for i in sorted(shown):
            if 0 <= i < n:
                text = title[i]
                out["items"][str(i)] = [int(topic[i]), str(text) if text else ""]
    _log.debug("viewer: %d users, %d items", len(chosen), len(out["items"]))
    return out
