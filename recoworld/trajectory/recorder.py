"""Incremental, crash-safe trajectory writing.

Rows are staged per tick and committed whole at the end of the tick; committed ticks are written
as one Parquet *part* per table (``<run>/<table>/part-00000.parquet``, ...) whenever the buffered
rows reach ``flush_rows``, and always when the run ends — completed, interrupted or failed. Each
part is written to a temporary name and renamed into place, so a reader never sees half a file,
and the manifest is rewritten atomically after every flush. Part boundaries depend only on the
rows, never on wall-clock time, so the same seed and config give byte-identical files.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

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

__all__ = ["MANIFEST", "Recorder", "prepare_run_dir", "write_json_atomic"]

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


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
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


def _column(field: pa.Field, value: Any, n: int) -> pa.Array:
    name, typ = field.name, field.type
    if name in _CONSTANT:
        return pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([str(value)], pa.string())
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
            self.flush()

    # -- writing --------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every committed, unwritten row: one part per table that has rows."""
        wrote = False
        for table, batches in self._batches.items():
            if not batches:
                continue
            self._write_part(table, pa.Table.from_batches(batches, schema=TABLES[table]))
            self._batches[table] = []
            wrote = True
        if wrote:
            self._parts += 1
        self._buffered = 0
        self.manifest["ticks_completed"] = self.ticks_completed
        self._write_manifest()

    def _write_part(self, table: str, data: pa.Table) -> None:
        name = f"part-{self._parts:06d}.parquet"
        target = self.path / table / name
        tmp = target.with_name(name + ".tmp")
        data = data.combine_chunks().replace_schema_metadata(schema_of(table).metadata)
        pq.write_table(data, tmp, compression=self.compression)
        os.replace(tmp, target)
        self._rows[table] += data.num_rows
        self._files[table].append(f"{table}/{name}")

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

    # -- checkpoint and resume ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Where the trajectory stands, for a checkpoint (call after :meth:`flush`)."""
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
        self.manifest["tables"] = {
            t: {"rows": self._rows[t], "parts": list(self._files[t])} for t in TABLES
        }
        write_json_atomic(self.path / MANIFEST, self.manifest)

    @staticmethod
    def labels(name: str) -> Sequence[str]:
        return LABELS[name]
