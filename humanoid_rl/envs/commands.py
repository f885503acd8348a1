"""Velocity commands of the walk task: (vx, vy, yaw rate) in the heading frame, drawn from configured ranges.

Pure numpy. A draw is "stand still" (all zero) with ``still_probability``, otherwise uniform per component; a
component whose magnitude is below its ``deadband`` is set to 0 (as legged_gym zeroes tiny commands), so the
robot is never asked for a speed too small to step at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CommandConfig", "draw_command"]

Range = tuple[float, float]


@dataclass
class CommandConfig:
    """Velocity commands of the walk task (the stand task always commands zero)."""

    vx_range_mps: Range = (-0.3, 0.8)  # forward, heading frame
    vy_range_mps: Range = (-0.3, 0.3)  # left, heading frame
    yaw_rate_range_rps: Range = (-0.8, 0.8)
    still_probability: float = 0.1  # share of draws that command standing still
    deadband: tuple[float, float, float] = (0.1, 0.1, 0.1)  # |component| below this is commanded as 0
    resample_interval_s: float | None = 10.0  # a new draw every this many seconds; None: one per episode

    def __post_init__(self) -> None:
        for name in ("vx_range_mps", "vy_range_mps", "yaw_rate_range_rps"):
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"CommandConfig.{name} = {(low, high)!r}: use finite (low, high) with low <= high")
        if self.resample_interval_s is not None and not self.resample_interval_s > 0.0:
            raise ValueError(
                f"CommandConfig.resample_interval_s = {self.resample_interval_s!r}: use a positive time or None"
            )
        if not 0.0 <= self.still_probability <= 1.0:
            raise ValueError(f"CommandConfig.still_probability = {self.still_probability!r}: use a fraction in [0, 1]")
        if len(self.deadband) != 3 or not all(math.isfinite(d) and d >= 0.0 for d in self.deadband):
            raise ValueError(f"CommandConfig.deadband = {self.deadband!r}: use three magnitudes >= 0")

    @classmethod
    def fixed(cls, vx: float, vy: float = 0.0, yaw_rate: float = 0.0) -> CommandConfig:
        """Always the same command (evaluation at one speed, tests)."""
        return cls((vx, vx), (vy, vy), (yaw_rate, yaw_rate), still_probability=0.0, deadband=(0.0, 0.0, 0.0),
                   resample_interval_s=None)


def draw_command(config: CommandConfig, rng: np.random.Generator) -> np.ndarray:
    """One (vx, vy, yaw rate) command. Always consumes the same number of draws, so episodes stay reproducible
    whatever the probabilities."""
    still = rng.random() < config.still_probability
    command = np.array([rng.uniform(*config.vx_range_mps), rng.uniform(*config.vy_range_mps),
                        rng.uniform(*config.yaw_rate_range_rps)])
    if still:
        return np.zeros(3)
    command[np.abs(command) < np.asarray(config.deadband)] = 0.0
    return command
