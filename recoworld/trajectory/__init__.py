"""Trajectories: the versioned Parquet schema, the incremental recorder and the readers."""

from recoworld.trajectory.reader import Run, read_arrow, read_manifest, read_run, read_table
from recoworld.trajectory.recorder import Recorder
from recoworld.trajectory.schema import SCHEMA_VERSION, TABLES

__all__ = [
    "SCHEMA_VERSION",
    "TABLES",
    "Recorder",
    "Run",
    "read_arrow",
    "read_manifest",
    "read_run",
    "read_table",
]
