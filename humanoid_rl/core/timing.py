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
