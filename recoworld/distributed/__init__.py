"""Ray, as an optional extra (``pip install "recoworld[ray]"``): benchmark suites fanned out over
a cluster (:mod:`recoworld.distributed.backend`) and a sharded world, the population's work
partitioned over actors (:mod:`recoworld.distributed.shards`, :mod:`.partition`). See
``docs/scaling.md``.

Nothing here imports Ray until a cluster is used; without it, those calls raise
:class:`recoworld.errors.DependencyNotInstalled`.
"""

from recoworld.distributed.backend import run_suite_ray, run_tasks_ray
from recoworld.distributed.partition import (
    PartitionStats,
    cut_fraction,
    partition_stats,
    partition_users,
)
from recoworld.distributed.shards import (
    ShardedSimulation,
    ShardSimulation,
    read_combined_table,
)

__all__ = [
    "PartitionStats",
    "ShardSimulation",
    "ShardedSimulation",
    "cut_fraction",
    "partition_stats",
    "partition_users",
    "read_combined_table",
    "run_suite_ray",
    "run_tasks_ray",
]
