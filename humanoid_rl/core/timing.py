"""Loop timing statistics: achieved rate, jitter, deadline misses and latency percentiles (pure, no ROS)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass
class TimingSummary:
    target_rate_hz: float
    achieved_rate_hz: float
    jitter_us: float  # std of the period
    period_p99_us: float
    deadline_misses: int  # periods longer than 1.5 × target (a tick arrived late by half a period)
    ticks: int
    latency_p50_us: float
    latency_p99_us: float
    latency_max_us: float

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


class LoopStats:
    """Records tick times and per-tick latencies in bounded windows (memory stays flat on long runs)."""

    MISS_FACTOR = 1.5

    def __init__(self, target_rate_hz: float, window: int = 10_000) -> None:
        self.target_rate_hz = target_rate_hz
        self._periods: deque[float] = deque(maxlen=window)
        self._latencies: deque[float] = deque(maxlen=window)
        self._last_tick: float | None = None
        self._first_tick: float | None = None
        self.ticks = 0
        self.deadline_misses = 0

    def tick(self, now_s: float) -> None:
        if self._last_tick is not None:
            period = now_s - self._last_tick
            self._periods.append(period)
            if period > self.MISS_FACTOR / self.target_rate_hz:
                self.deadline_misses += 1
        else:
            self._first_tick = now_s
        self._last_tick = now_s
        self.ticks += 1

    def latency(self, seconds: float) -> None:
        self._latencies.append(seconds)

    def summary(self) -> TimingSummary:
        periods = np.asarray(self._periods)
        lat = np.asarray(self._latencies) * 1e6
        achieved = 0.0
        if self.ticks > 1 and self._first_tick is not None and self._last_tick is not None:
            span = self._last_tick - self._first_tick
            achieved = (self.ticks - 1) / span if span > 0 else 0.0
        return TimingSummary(
            target_rate_hz=self.target_rate_hz,
            achieved_rate_hz=achieved,
            jitter_us=_ns_resolution(periods.std() * 1e6) if periods.size else 0.0,
            period_p99_us=_ns_resolution(np.percentile(periods, 99) * 1e6) if periods.size else 0.0,
            deadline_misses=self.deadline_misses,
            ticks=self.ticks,
            latency_p50_us=_ns_resolution(np.percentile(lat, 50)) if lat.size else 0.0,
            latency_p99_us=_ns_resolution(np.percentile(lat, 99)) if lat.size else 0.0,
            latency_max_us=_ns_resolution(lat.max()) if lat.size else 0.0,
        )


def _ns_resolution(microseconds: float) -> float:
    """Clocks tick in nanoseconds: below that a figure is float rounding (a jitter of 1.4e-08 µs was printed)."""
    return round(float(microseconds), 3) + 0.0  # + 0.0 turns -0.0 into 0.0


class StateDecimator:
    """Which measurements a policy triggered by the state stream acts on: one per period, on a fixed grid.

    A state is due when its stamp reaches the next grid point, less a tolerance: half the stream's own interval
    (so a 1 kHz simulator stream lands exactly on the grid), at most a quarter period (so a 50 Hz sensor stream
    whose stamps jitter by a millisecond or two is not answered only every other state). The grid advances by
    whole periods, so jitter does not make the rate drift; after a gap of more than a period, or when time
    jumps back (a simulator reset), it restarts at the stamp that ends the gap.
    """

    MIN_TOLERANCE_NS = 500_000

    def __init__(self, period_ns: int) -> None:
        self.period_ns = int(period_ns)
        self.reset()

    def reset(self) -> None:
        self._next_due_ns: int | None = None
        self._last_seen_ns: int | None = None
        self._interval_ns: float | None = None  # running mean of the stream's stamp spacing

    @property
    def tolerance_ns(self) -> int:
        half_interval = self.MIN_TOLERANCE_NS if self._interval_ns is None else int(self._interval_ns / 2)
        return min(self.period_ns // 4, max(self.MIN_TOLERANCE_NS, half_interval))

    def observe(self, stamp_ns: int) -> None:
        """Every measurement of the stream, used or not (its spacing sets the tolerance)."""
        last = self._last_seen_ns
        if last is not None and last < stamp_ns <= last + 4 * self.period_ns:  # an outage is not the spacing
            gap = float(stamp_ns - last)
            self._interval_ns = gap if self._interval_ns is None else 0.9 * self._interval_ns + 0.1 * gap
        if last is None or stamp_ns > last:
            self._last_seen_ns = stamp_ns

    def _restarts(self, stamp_ns: int) -> bool:
        due = self._next_due_ns
        return due is None or stamp_ns > due + self.period_ns or stamp_ns < due - 2 * self.period_ns

    def due(self, stamp_ns: int) -> bool:
        if self._restarts(stamp_ns):
            return True
        assert self._next_due_ns is not None
        return stamp_ns >= self._next_due_ns - self.tolerance_ns

    def used(self, stamp_ns: int) -> None:
        """The policy acted on the measurement stamped ``stamp_ns``."""
        due = self._next_due_ns
        if due is None or self._restarts(stamp_ns):
            self._next_due_ns = stamp_ns + self.period_ns
        else:
            self._next_due_ns = due + self.period_ns


class StageTimes:
    """Durations of the stages of one callback (e.g. observe, inference, publish), each in a bounded window:
    the per-stage budget ``/diagnostics`` reports as ``stage_<name>_p50_us`` / ``_p99_us``."""

    def __init__(self, stages: tuple[str, ...], window: int = 2000) -> None:
        self.stages = stages
        self._window = window
        self.reset()

    def reset(self) -> None:
        self._times: dict[str, deque[float]] = {name: deque(maxlen=self._window) for name in self.stages}

    def add(self, stage: str, seconds: float) -> None:
        self._times[stage].append(seconds)

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, times in self._times.items():
            us = np.asarray(times) * 1e6
            out[f"stage_{name}_p50_us"] = _ns_resolution(np.percentile(us, 50)) if us.size else 0.0
            out[f"stage_{name}_p99_us"] = _ns_resolution(np.percentile(us, 99)) if us.size else 0.0
        return out
