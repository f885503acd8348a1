"""Push schedule: when the base is shoved during an episode, how hard and in which horizontal direction.

The schedule is pure numpy (no PyBullet): the environment asks it, once per policy step, whether a push starts
now, and hands the returned world-frame force to ``HumanoidSim.apply_push``. Pushes start on policy-step
boundaries, so a schedule is exactly reproducible from its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Push", "PushConfig", "PushSchedule"]


@dataclass
class PushConfig:
    """External pushes on the base (at its centre of mass), horizontal, in a uniformly random direction.

    ``force_range_n = (0, 0)`` switches pushes off. The acceptance test pushes with 60 N or more for 0.2 s
    every 4 s; ``curriculum_scale`` (set through ``HumanoidEnv.set_curriculum``) multiplies the drawn force.
    """

    interval_s: float = 4.0  # time between the starts of two pushes
    force_range_n: tuple[float, float] = (60.0, 100.0)  # magnitude drawn uniformly per push, newtons
    duration_s: float = 0.2  # how long each push lasts
    first_push_s: float = 2.0  # start of the first push after reset (lets the robot settle first)
    interval_jitter_s: float = 0.0  # each interval is lengthened by a uniform draw in [0, jitter]

    def __post_init__(self) -> None:
        low, high = (float(v) for v in self.force_range_n)
        if not (math.isfinite(low) and math.isfinite(high) and 0.0 <= low <= high):
            raise ValueError(
                f"PushConfig.force_range_n = {self.force_range_n!r}: use (low, high) newtons with 0 <= low <= high "
                "((0, 0) switches pushes off)"
            )
        for name in ("interval_s", "duration_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"PushConfig.{name} = {value!r}: use a positive, finite number of seconds")
        for name in ("first_push_s", "interval_jitter_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"PushConfig.{name} = {value!r}: use a finite number of seconds >= 0")
        if self.duration_s > self.interval_s:
            raise ValueError(
                f"PushConfig.duration_s = {self.duration_s} is longer than interval_s = {self.interval_s}: "
                "pushes would overlap; shorten the push or lengthen the interval"
            )

    @property
    def enabled(self) -> bool:
        return self.force_range_n[1] > 0.0

    @classmethod
    def off(cls) -> PushConfig:
        return cls(force_range_n=(0.0, 0.0))


@dataclass(frozen=True)
class Push:
    """One push: when it starts, the world-frame force, and for how long."""

    start_s: float
    force_world: np.ndarray  # (3,), z = 0
    duration_s: float

    @property
    def magnitude_n(self) -> float:
        return float(np.hypot(self.force_world[0], self.force_world[1]))


class PushSchedule:
    """Decides, step by step, when a push starts. ``reset`` with a fresh generator at every episode start."""

    def __init__(self, config: PushConfig, policy_dt: float) -> None:
        if not (math.isfinite(policy_dt) and policy_dt > 0.0):
            raise ValueError(f"policy_dt = {policy_dt!r}: use the positive policy period in seconds")
        self.config = config
        self.policy_dt = policy_dt
        self.curriculum_scale = 1.0
        self._rng = np.random.default_rng(0)
        self._next_step: int | None = None
        self.history: list[Push] = []

    def reset(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self.history = []
        self._next_step = self._steps(self.config.first_push_s) if self.config.enabled else None

    def _steps(self, seconds: float) -> int:
        return int(round(seconds / self.policy_dt))

    def push_at(self, step: int) -> Push | None:
        """The push that starts at policy step ``step`` (steps since reset), or None. Call once per step."""
        if self._next_step is None or step < self._next_step:
            return None
        config = self.config
        jitter = self._rng.uniform(0.0, config.interval_jitter_s) if config.interval_jitter_s > 0.0 else 0.0
        self._next_step = step + max(1, self._steps(config.interval_s + jitter))
        # Both draws happen even at curriculum scale 0, so the scale never shifts the random stream.
        magnitude = self._rng.uniform(*config.force_range_n) * self.curriculum_scale
        heading = self._rng.uniform(0.0, 2.0 * math.pi)
        if magnitude <= 0.0:
            return None
        push = Push(
            start_s=step * self.policy_dt,
            force_world=np.array([magnitude * math.cos(heading), magnitude * math.sin(heading), 0.0]),
            duration_s=config.duration_s,
        )
        self.history.append(push)
        return push
