"""Simulated time: ticks, hours and days."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Clock"]


@dataclass(slots=True)
class Clock:
    """The world's clock. One tick is one page for every user in a session.

    Attributes:
        tick_minutes: simulated minutes per tick.
        start_hour: simulated hour of day at tick 0.
        tick: the current tick (the next one to be simulated).
    """

    tick_minutes: int
    start_hour: int = 0
    tick: int = 0

    @property
    def ticks_per_day(self) -> int:
        return 1440 // self.tick_minutes

    @property
    def ticks_per_hour(self) -> float:
        return 60.0 / self.tick_minutes

    def minutes(self, tick: int | None = None) -> int:
        """Simulated minutes since the start of day 0 at ``tick`` (default: now)."""
        t = self.tick if tick is None else tick
        return self.start_hour * 60 + t * self.tick_minutes

    def hour_of_day(self, tick: int | None = None) -> int:
        return (self.minutes(tick) // 60) % 24

    def day(self, tick: int | None = None) -> int:
        return self.minutes(tick) // 1440

    def hours_to_ticks(self, hours: float) -> float:
        return hours * self.ticks_per_hour
