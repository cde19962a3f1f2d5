"""Readers of run folders into pandas (or Arrow)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from recoworld.errors import TrajectoryError
from recoworld.trajectory.recorder import MANIFEST
from recoworld.trajectory.schema import SCHEMA_VERSION, TABLES, schema_of

if TYPE_CHECKING:  # pandas is imported by Arrow's to_pandas when a table is read, not before
    import pandas as pd

__all__ = ["Run", "read_arrow", "read_manifest", "read_run", "read_table"]


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def read_manifest(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run manifest (config, seed, versions, status, tables)."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise TrajectoryError(f"{run_dir}: no {MANIFEST}; is this a recoworld run folder?")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    version = str(manifest.get("schema_version", "?"))
    if _major(version) != _major(SCHEMA_VERSION):
        raise TrajectoryError(
            f"{run_dir}: trajectory schema {version}, this recoworld reads {SCHEMA_VERSION}; "
            "install a matching recoworld version to read it"
        )
    return manifest


def read_arrow(
    run_dir: str | os.PathLike[str], table: str, columns: list[str] | None = None
) -> pa.Table:
    """One table of a run as an Arrow table, parts in order; only ``columns`` if given.

    Reads the parts the manifest lists — every flush that completed, in order, the same cut
    across tables — so a run that is still going, or was killed, reads too. Without a manifest,
    every part on disk is read in name order.
    """
    if table not in TABLES:
        raise TrajectoryError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    folder = Path(run_dir) / table
    if not folder.is_dir() and (Path(run_dir) / MANIFEST).is_file():
        return schema_of(table).empty_table()  # a run written before the table existed
    if not folder.is_dir():
        raise TrajectoryError(f"{run_dir}: no {table}/ folder; is this a recoworld run folder?")
    manifest_path = Path(run_dir) / MANIFEST
    parts: list[Path]
    if manifest_path.is_file():
        listed = read_manifest(run_dir).get("tables", {}).get(table, {}).get("parts", [])
        parts = [Path(run_dir) / p for p in listed]
    else:
        parts = sorted(folder.glob("part-*.parquet"))
    schema = schema_of(table)
    if columns is not None:
        unknown = set(columns) - set(schema.names)
        if unknown:
            raise TrajectoryError(f"{table}: unknown columns {sorted(unknown)}")
        schema = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)
    if not parts:
        return schema.empty_table()
    try:
        tables = [pq.read_table(p, columns=columns) for p in parts]
    except (OSError, pa.ArrowInvalid) as exc:
        raise TrajectoryError(f"{folder}: unreadable part ({exc})") from exc
    return pa.concat_tables(tables)


def read_table(
    run_dir: str | os.PathLike[str], table: str, columns: list[str] | None = None
) -> pd.DataFrame:
    """One table of a run as a pandas DataFrame (label columns are categoricals)."""
    return read_arrow(run_dir, table, columns).to_pandas()


class Run:
    """A run folder: its manifest and lazy access to each table.

    >>> run = read_run("runs/default-seed0")  # doctest: +SKIP
    >>> run.sessions.groupby("end_reason").size()  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)

    def table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        return read_table(self.path, name, columns)

    @property
    def impressions(self) -> pd.DataFrame:
        return self.table("impressions")

    @property
    def responses(self) -> pd.DataFrame:
        return self.table("responses")

    @property
    def instructions(self) -> pd.DataFrame:
        return self.table("instructions")

    @property
    def sessions(self) -> pd.DataFrame:
        return self.table("sessions")

    @property
    def social(self) -> pd.DataFrame:
        return self.table("social")

    @property
    def opinions(self) -> pd.DataFrame:
        return self.table("opinions")

    @property
    def llm_calls(self) -> pd.DataFrame:
        return self.table("llm_calls")

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.manifest.get('status')!r})"


def read_run(run_dir: str | os.PathLike[str]) -> Run:
    """Open a run folder."""
    return Run(run_dir)
