"""Velocity commands of the walk task: (vx, vy, yaw rate) in the heading frame, drawn from configured ranges.

Pure numpy. A draw is "stand still" (all zero) with ``still_probability``, otherwise uniform per component; a
component whose magnitude is below its ``deadband`` is set to 0 (as legged_gym zeroes tiny commands), so the
robot is never asked for a speed too small to step at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CommandConfig", "StrideTracking", "draw_command"]

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


class StrideTracking:
    """Velocity tracking judged per stride: the base's (vx, vy, yaw rate) averaged over consecutive windows of one
    gait period, against the command of that window.

    A walking humanoid sways: within a 0.7 s stride its yaw rate swings by several tenths of a rad/s and its
    lateral speed by as much, however well it follows the command on average. Per-step errors measure that sway;
    stride means measure tracking (what a user steering with ``/cmd_vel`` sees). Windows in which the command
    changed are left out, and so are windows with a step the policy did not control (the shield holding the
    robot while it ramps in at the start, or after a trip): tracking is what the policy achieves.
    """

    def __init__(self, window_steps: int) -> None:
        if window_steps < 1:
            raise ValueError(f"window_steps = {window_steps!r}: use at least one step")
        self.window_steps = int(window_steps)
        self.reset()

    def reset(self) -> None:
        self._sum = np.zeros(3)
        self._count = 0
        self._command: np.ndarray | None = None
        self._skip = False
        self.error_sums = np.zeros(3)  # |stride mean - command| summed over the judged windows
        self.windows = 0

    def update(self, achieved: np.ndarray, command: np.ndarray, judged: bool = True) -> None:
        """One policy step: achieved (vx, vy, yaw rate) in the heading frame and the command in force;
        ``judged=False``: the policy's targets did not reach the joints this step, so its window is left out."""
        self._skip = self._skip or not judged
        if self._command is None:
            self._command = np.array(command, dtype=float)
        elif not np.array_equal(self._command, command):
            self._skip, self._command = True, np.array(command, dtype=float)
        self._sum += achieved
        self._count += 1
        if self._count == self.window_steps:
            if not self._skip:
                self.error_sums += np.abs(self._sum / self._count - self._command)
                self.windows += 1
            self._sum[:] = 0.0
            self._count = 0
            self._skip = False

    def mean_errors(self) -> np.ndarray:
        """Mean |error| per axis over the judged strides (NaN before the first)."""
        return self.error_sums / self.windows if self.windows else np.full(3, np.nan)
