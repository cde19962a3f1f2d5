"""The progress bars of the command line: ticks of one simulation, tasks of a batch, or a
spinner for work of unknown length."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from recoworld.schedule import Simulation, TickStats

__all__ = ["count_progress", "spinner", "tick_progress"]


@contextmanager
def tick_progress(
    sim: Simulation, title: str, *, quiet: bool = False
) -> Iterator[Callable[[TickStats], None]]:
    """A bar over the ticks of ``sim`` on stderr (simulated day and time, users in session);
    yields the ``progress`` callback for :meth:`Simulation.run`."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    clock = sim.world.clock
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("tick {task.completed:>5.0f}/{task.total:.0f}"),
        TextColumn("{task.fields[when]}"),
        TextColumn("active {task.fields[active]:>7}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
        transient=False,
    )
    with progress:
        task = progress.add_task(title, total=sim.n_ticks, when="", active=0)

        def on_tick(stats: TickStats) -> None:
            t = stats.tick + 1
            when = f"day {clock.day(t)} {clock.hour_of_day(t):02d}:{clock.minutes(t) % 60:02d}"
            progress.update(task, completed=t, when=when, active=stats.active)

        yield on_tick


def count_progress(title: str, total: int, *, quiet: bool = False) -> tuple[Progress, TaskID]:
    """A bar over ``total`` tasks on stderr (done/total, the last one finished): use it as a
    context manager and ``update(task, advance=1, last=...)``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
    )
    return bar, bar.add_task(title, total=total, last="")


@contextmanager
def spinner(text: str, *, quiet: bool = False) -> Iterator[None]:
    """A spinner on stderr saying ``text`` while the block runs (nothing when ``quiet``)."""
    if quiet:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(text, spinner="dots"):
        yield
