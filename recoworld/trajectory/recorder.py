"""Incremental, crash-safe trajectory writing.

Rows are staged per tick and committed whole at the end of the tick; committed ticks are written
as one Parquet *part* per table (``<run>/<table>/part-00000.parquet``, ...) whenever the buffered
rows reach ``flush_rows``, and always when the run ends — completed, interrupted or failed. Each
part is written to a temporary name and renamed into place, so a reader never sees half a file,
and the manifest is rewritten atomically after every flush. Part boundaries depend only on the
rows, never on wall-clock time, so the same seed and config give byte-identical files.

A flush that :meth:`Recorder.commit` triggers is written on a background thread (Arrow releases
the GIL while it encodes and compresses), overlapping the next tick; at most one is in flight —
the next flush, :meth:`Recorder.flush` and :meth:`Recorder.close` wait for it first, and re-raise
its error if it failed. The manifest that lists a part is written after the part.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from recoworld.errors import TrajectoryError
from recoworld.trajectory.schema import (
    ACTIONS,
    CALL_PURPOSES,
    END_REASONS,
    SOCIAL_KINDS,
    SOURCES,
    TABLES,
    schema_of,
)

__all__ = ["MANIFEST", "LabelLists", "Recorder", "prepare_run_dir", "write_json_atomic"]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
#: Fixed dictionaries of the label columns, so that codes mean the same in every file.
LABELS: dict[str, tuple[str, ...]] = {
    "source": SOURCES,
    "action": ACTIONS,
    "end_reason": END_REASONS,
    "kind": SOCIAL_KINDS,
    "purpose": CALL_PURPOSES,
}
_CONSTANT = ("run", "policy", "model")


@cache
def _dictionary_columns(table: str) -> list[str]:
    """Columns of ``table`` written with Parquet's dictionary encoding: the label and constant
    columns and the texts (few distinct values). Ids, counts and measurements are written plain:
    trying a dictionary on them costs encoding time and, for ids and continuous values, space."""
    names = []
    for f in TABLES[table]:
        if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type):
            names.append(f.name)
        elif pa.types.is_list(f.type):
            names.append(f"{f.name}.list.element")  # the leaf's path
    return names


def write_json_atomic(path: Path, obj: Any) -> None:
    _write_text_atomic(path, _json_text(obj))


def _json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def claim_folder(
    path: str | os.PathLike[str], marker: str, owned: Callable[[Path], Iterable[Path]], what: str
) -> Path:
    """Create folder ``path`` for writing. If it is not empty it must hold ``marker`` (so it is
    one of ours): the paths ``owned(folder)`` lists are then deleted. Anything else is refused
    with :class:`TrajectoryError`, so that nothing of the user's is ever deleted."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise TrajectoryError(f"{out}: is a file; give a folder path for the {what}")
    if out.is_dir() and any(out.iterdir()):
        if not (out / marker).is_file():
            raise TrajectoryError(
                f"{out}: folder exists and is not a recoworld {what} folder; "
                "choose an empty or new folder"
            )
        logger.info("replacing the previous %s in %s", what, out)
        for target in owned(out):
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def prepare_run_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` for a run; a previous recoworld run there is replaced, anything else
    refused (:func:`claim_folder`)."""
    return claim_folder(
        path, MANIFEST, lambda out: [out / name for name in (*TABLES, MANIFEST)], "run"
    )


_zeros = np.zeros(0, np.int32)


def _constant_codes(n: int) -> pa.Array:
    """``n`` zero codes of a constant column: views of one shared, read-only buffer (at a
    million users a tick has twenty million rows; each constant column would be 80 MB)."""
    global _zeros
    zeros = _zeros
    if zeros.size < n:
        zeros = np.zeros(max(n, 2 * zeros.size), np.int32)
        zeros.flags.writeable = False
        _zeros = zeros
    return pa.array(zeros[:n])


@dataclass(frozen=True, slots=True)
class LabelLists:
    """A ``list<string>`` column of zero or one label per row, given as codes: row ``i`` is
    ``[labels[codes[i]]]``, or ``[]`` where ``codes[i] < 0`` — built by Arrow from offsets,
    not a Python list per row."""

    codes: NDArray[np.integer]
    labels: Sequence[str]

    def __len__(self) -> int:
        return len(self.codes)

    def to_arrow(self) -> pa.Array:
        codes = np.asarray(self.codes)
        has = codes >= 0
        offsets = np.zeros(codes.size + 1, np.int32)
        np.cumsum(has, out=offsets[1:])
        values = pa.array(list(self.labels), pa.string()).take(pa.array(codes[has]))
        return pa.ListArray.from_arrays(pa.array(offsets), values)


def _column(field: pa.Field, value: Any, n: int) -> pa.Array:
    name, typ = field.name, field.type
    if isinstance(value, LabelLists):
        return value.to_arrow().cast(typ)
    if name in _CONSTANT:
        return pa.DictionaryArray.from_arrays(
            _constant_codes(n), pa.array([str(value)], pa.string())
        )
    if name in LABELS:
        codes = np.asarray(value, dtype=np.int8)
        return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(LABELS[name], pa.string()))
    if pa.types.is_list(typ) or pa.types.is_string(typ):
        return pa.array(list(value), type=typ)
    arr = np.asarray(value)
    mask = None
    if field.nullable and arr.dtype.kind == "f":
        mask = np.isnan(arr)
    elif field.nullable and arr.dtype.kind == "i":
        mask = arr < 0
    return pa.array(arr.astype(typ.to_pandas_dtype(), copy=False), type=typ, mask=mask)


class Recorder:
    """Writes the tables of one run folder (see the module docstring).

    Use :meth:`stage` for each table's rows of the current tick, :meth:`commit` once the tick is
    complete, and :meth:`close` at the end (it flushes everything committed).
    """

    #: The flush being written in the background, and the thread that writes it (class-level
    #: defaults, so that a recorder made by :meth:`reopen` has them too).
    _writing: Future[None] | None = None
    _writer: ThreadPoolExecutor | None = None
    _writer_pid: int | None = None
    #: The thread that writes a flush's second table alongside the first.
    _helper: ThreadPoolExecutor | None = None

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        manifest: Mapping[str, Any],
        flush_rows: int = 1_000_000,
        compression: str = "zstd",
    ) -> None:
        self.path = prepare_run_dir(out_dir)
        self.flush_rows = flush_rows
        self.compression = None if compression == "none" else compression
        self.manifest: dict[str, Any] = dict(manifest)
        self.manifest.update(status="running", ticks_completed=0, tables={})
        self._staged: dict[str, list[pa.RecordBatch]] = {}
        self._batches: dict[str, list[pa.RecordBatch]] = {t: [] for t in TABLES}
        self._buffered = 0
        self._parts = 0
        self._rows = dict.fromkeys(TABLES, 0)
        self._files: dict[str, list[str]] = {t: [] for t in TABLES}
        self.ticks_completed = 0
        self.closed = False
        for table in TABLES:
            (self.path / table).mkdir(exist_ok=True)
        self._write_manifest()

    # -- staging --------------------------------------------------------------------------
    def stage(self, table: str, columns: Mapping[str, Any]) -> None:
        """Stage rows of ``table`` for the current tick (columns by name; see the schema)."""
        schema = TABLES[table]
        lengths = {len(v) for k, v in columns.items() if k not in _CONSTANT and not np.isscalar(v)}
        if len(lengths) != 1:
            raise TrajectoryError(f"{table}: columns of unequal length {sorted(lengths)}")
        n = lengths.pop()
        if n == 0:
            return
        missing = set(schema.names) - set(columns)
        if missing:
            raise TrajectoryError(f"{table}: missing columns {sorted(missing)}")
        arrays = [_column(f, columns[f.name], n) for f in schema]
        batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
        self._staged.setdefault(table, []).append(batch)

    def discard(self) -> None:
        """Drop what was staged for an unfinished tick."""
        self._staged = {}

    def commit(self, tick: int) -> None:
        """The tick is complete: move its staged rows to the write buffer (flush if large)."""
        staged, self._staged = self._staged, {}
        for table, batches in staged.items():
            self._batches[table].extend(batches)
            self._buffered += sum(b.num_rows for b in batches)
        self.ticks_completed = tick + 1
        if self._buffered >= self.flush_rows:
            self._flush(background=True)

    # -- writing --------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every committed, unwritten row: one part per table that has rows. Returns once
        they are on disk (after the background flush in flight, if any)."""
        self._flush(background=False)

    def _flush(self, *, background: bool) -> None:
        """Hand the buffered rows to the writer; the bookkeeping (part names, row counts, the
        manifest's text) is done here, so it never depends on when the writing ends."""
        self._wait()
        parts: list[tuple[str, str, list[pa.RecordBatch]]] = []
        for table, batches in self._batches.items():
            if not batches:
                continue
            name = f"part-{self._parts:06d}.parquet"
            parts.append((table, name, batches))
            self._rows[table] += sum(b.num_rows for b in batches)
            self._files[table].append(f"{table}/{name}")
            self._batches[table] = []
        if parts:
            self._parts += 1
        self._buffered = 0
        self.manifest["ticks_completed"] = self.ticks_completed
        manifest = self._manifest_text()
        if parts and (self._writer is None or self._writer_pid != os.getpid()):
            # Started on first use (and again in a forked child, which has no threads).
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="recoworld-recorder")
            self._helper = ThreadPoolExecutor(1, thread_name_prefix="recoworld-recorder")
            self._writer_pid = os.getpid()
        if background and parts and self._writer is not None:
            self._writing = self._writer.submit(self._write_parts, parts, manifest)
        else:
            self._write_parts(parts, manifest)

    def _write_parts(
        self, parts: list[tuple[str, str, list[pa.RecordBatch]]], manifest: str
    ) -> None:
        """Write the parts — two tables at a time (Arrow encodes without the GIL), the largest
        first, each let go of once written — then the manifest that lists them. Empties
        ``parts``."""
        parts.sort(key=lambda part: sum(b.num_rows for b in part[2]))  # largest last

        def drain() -> None:
            while True:
                try:
                    table, name, batches = parts.pop()  # atomic: the two threads share it
                except IndexError:
                    return
                data = pa.Table.from_batches(batches, schema=TABLES[table])
                del batches
                self._write_file(table, name, data)

        helper = self._helper
        second = helper.submit(drain) if helper is not None and len(parts) > 1 else None
        try:
            drain()
        finally:
            if second is not None:
                second.result()
        _write_text_atomic(self.path / MANIFEST, manifest)

    def _wait(self) -> None:
        """Wait for the background flush in flight (re-raising its error, if it failed)."""
        writing, self._writing = self._writing, None
        if writing is not None:
            try:
                writing.result()
            except Exception as exc:
                raise TrajectoryError(f"{self.path}: writing a part failed: {exc}") from exc

    def _write_part(self, table: str, data: pa.Table) -> None:
        name = f"part-{self._parts:06d}.parquet"
        self._write_file(table, name, data)
        self._rows[table] += data.num_rows
        self._files[table].append(f"{table}/{name}")

    def _write_file(self, table: str, name: str, data: pa.Table) -> None:
        target = self.path / table / name
        tmp = target.with_name(name + ".tmp")
        data = data.combine_chunks().replace_schema_metadata(schema_of(table).metadata)
        pq.write_table(
            data, tmp, compression=self.compression, use_dictionary=_dictionary_columns(table)
        )
        os.replace(tmp, target)

    def close(self, status: str = "completed", **extra: Any) -> None:
        """Flush, make sure every table has at least one (possibly empty) part, finish the
        manifest with ``status`` (``completed``, ``interrupted`` or ``failed``)."""
        if self.closed:
            return
        self.discard()
        self.flush()
        for table in TABLES:
            if not self._files[table]:
                self._write_part(table, TABLES[table].empty_table())
        self.manifest["status"] = status
        self.manifest.update(extra)
        self.closed = True
        self._write_manifest()
        for pool in (self._writer, self._helper):
            if pool is not None:
                pool.shutdown()
        self._writer = self._helper = None

    # -- checkpoint and resume ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Where the trajectory stands, for a checkpoint (call after :meth:`flush`)."""
        self._wait()
        if self._buffered or any(self._batches.values()) or self._staged:
            raise TrajectoryError("flush the recorder before taking its state")
        return {
            "path": str(self.path),
            "flush_rows": self.flush_rows,
            "compression": self.compression,
            "manifest": dict(self.manifest),
            "parts": self._parts,
            "rows": dict(self._rows),
            "files": {t: list(f) for t, f in self._files.items()},
            "ticks_completed": self.ticks_completed,
        }

    @classmethod
    def reopen(cls, out_dir: str | os.PathLike[str], state: Mapping[str, Any]) -> Recorder:
        """A recorder continuing the run folder ``out_dir`` from a checkpoint's ``state``:
        parts written after the checkpoint are deleted, the manifest is put back to it."""
        path = Path(out_dir)
        manifest = path / MANIFEST
        if not manifest.is_file():
            raise TrajectoryError(f"{path}: no {MANIFEST}; is this the checkpointed run's folder?")
        on_disk = json.loads(manifest.read_text(encoding="utf-8"))
        if on_disk.get("run_id") != state["manifest"].get("run_id"):
            raise TrajectoryError(
                f"{path} holds run {on_disk.get('run_id')!r}, the checkpoint run "
                f"{state['manifest'].get('run_id')!r}"
            )
        if on_disk.get("status") == "completed":
            # Resuming would delete the ticks recorded after the checkpoint, and a continuation
            # shorter than them would not write them back: a completed run is left as it is.
            raise TrajectoryError(
                f"{path} holds a completed run ({on_disk.get('ticks_completed')} ticks; the "
                f"checkpoint is at tick {state['ticks_completed']}): there is nothing to resume, "
                "and resuming would rewrite what it recorded; start a new run to simulate further"
            )
        self = cls.__new__(cls)
        self.path = path
        self.flush_rows = int(state["flush_rows"])
        self.compression = state["compression"]
        self.manifest = dict(state["manifest"])
        self.manifest["status"] = "running"
        self._staged = {}
        self._batches = {t: [] for t in TABLES}
        self._buffered = 0
        self._parts = int(state["parts"])
        self._rows = {t: int(state["rows"].get(t, 0)) for t in TABLES}
        self._files = {t: list(state["files"].get(t, [])) for t in TABLES}
        self.ticks_completed = int(state["ticks_completed"])
        self.closed = False
        for table in TABLES:
            folder = path / table
            folder.mkdir(exist_ok=True)
            keep = {Path(f).name for f in self._files[table]}
            for part in folder.glob("part-*.parquet*"):
                if part.name not in keep:  # written after the checkpoint
                    part.unlink()
        self._write_manifest()
        return self

    def _write_manifest(self) -> None:
        _write_text_atomic(self.path / MANIFEST, self._manifest_text())

    def _manifest_text(self) -> str:
        self.manifest["tables"] = {
            t: {"rows": self._rows[t], "parts": list(self._files[t])} for t in TABLES
        }
        return _json_text(self.manifest)

    @staticmethod
    def labels(name: str) -> Sequence[str]:
        return LABELS[name]
