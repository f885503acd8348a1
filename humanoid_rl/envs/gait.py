"""The walk task's gait: which foot should stand when, how high a swing foot should be, and how long feet fly.

Pure numpy. The phase is the observation's gait clock (``ObservationBuilder.time_s`` over the contract's
``gait_period_s``), so the schedule a policy is rewarded for and the clock it observes are the same numbers.
As in humanoid-gym: the left foot stands while ``sin(2π·t/T) >= 0`` and the right foot while it is < 0, both
near the zero crossings (double support), and both all the time while the command is "stand still".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["FeetAirTime", "GaitConfig", "GaitTargets", "LegReference", "gait_targets", "is_moving"]

# Below these the command means "stand still": both feet stay down, no air-time reward.
STILL_SPEED_MPS = 0.05
STILL_YAW_RATE_RPS = 0.05


@dataclass
class GaitConfig:
    """The gait the walk task rewards. The period is also the contract's ``gait_period_s``."""

    period_s: float = 0.7  # one full cycle: left swing + right swing
    double_support: float = 0.1  # |sin(phase)| below this: both feet stand
    swing_height_m: float = 0.06  # peak sole lift at mid-swing
    min_air_time_s: float = 0.2  # legged_gym's feet-air-time threshold: shorter steps are penalised

    def __post_init__(self) -> None:
        for name in ("period_s", "swing_height_m", "min_air_time_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"GaitConfig.{name} = {value!r}: use a positive, finite number")
        if not 0.0 <= self.double_support < 1.0:
            raise ValueError(f"GaitConfig.double_support = {self.double_support!r}: use a fraction in [0, 1)")
        if self.min_air_time_s >= self.period_s / 2.0:
            raise ValueError(
                f"GaitConfig.min_air_time_s = {self.min_air_time_s} s is not shorter than half the period "
                f"({self.period_s / 2.0} s): no step of this gait could earn the air-time reward"
            )


@dataclass(frozen=True)
class GaitTargets:
    stance: np.ndarray  # (2,) bool: left, right foot should be on the ground
    swing_height_m: np.ndarray  # (2,) the sole height each foot should have now (0 for a stance foot)
    swing: np.ndarray  # (2,) how far into its swing each foot is: |sin| (0 standing, 1 at mid-swing)


def is_moving(command: np.ndarray) -> bool:
    """Whether a (vx, vy, yaw rate) command asks the robot to step."""
    return bool(math.hypot(command[0], command[1]) > STILL_SPEED_MPS or abs(command[2]) > STILL_YAW_RATE_RPS)


def gait_targets(time_s: float, config: GaitConfig, moving: bool, period_s: float | None = None) -> GaitTargets:
    """Stance per foot and the swing foot's height reference (a half sine over its swing) at clock ``time_s``;
    ``period_s`` overrides the config's (a contract that brings its own clock)."""
    if not moving:
        return GaitTargets(np.array([True, True]), np.zeros(2), np.zeros(2))
    s = math.sin(2.0 * math.pi * time_s / (period_s or config.period_s))
    double = abs(s) < config.double_support
    stance = np.array([s >= 0.0 or double, s < 0.0 or double])
    swing = np.where(stance, 0.0, abs(s))
    return GaitTargets(stance, config.swing_height_m * swing, swing)


class LegReference:
    """humanoid-gym's periodic reference trajectory (``compute_ref_state``): a swinging leg flexes its hip by
    ``a``, its knee by ``2a`` and its ankle by ``a`` the other way, ``a = amplitude * swing``, so the sole
    lifts and stays parallel to the ground; stance legs keep the default pose. Offsets are from the default
    pose. The flexion signs come from the robot: a knee bends only one way (the side of its larger limit), and
    with parallel pitch axes the hip flexes and the ankle compensates against it."""

    def __init__(self, joint_names: tuple[str, ...], lower: np.ndarray, upper: np.ndarray) -> None:
        self.n_joints = len(joint_names)
        self.pitch_chains: list[np.ndarray] = []  # per leg (left, right): indices of hip pitch, knee, ankle pitch
        self.signs: list[np.ndarray] = []
        self.leg_joints = np.array([i for i, name in enumerate(joint_names)
                                    if any(part in name for part in ("hip", "knee", "ankle"))], dtype=int)
        for side in ("left", "right"):
            chain = [next((i for i, name in enumerate(joint_names) if side in name and part in name), None)
                     for part in ("hip_pitch", "knee", "ankle_pitch")]
            if None in chain:
                raise ValueError(f"the reference gait needs {side} hip_pitch, knee and ankle_pitch joints; this "
                                 f"robot's joints are {list(joint_names)}")
            knee = chain[1]
            bend = 1.0 if abs(upper[knee]) >= abs(lower[knee]) else -1.0
            self.pitch_chains.append(np.array(chain, dtype=int))
            self.signs.append(np.array([-bend, 2.0 * bend, -bend]))

    def offsets(self, swing: np.ndarray, amplitude_rad: float) -> np.ndarray:
        """(n_joints,) reference offsets from the default pose for each leg's swing fraction (left, right)."""
        out = np.zeros(self.n_joints)
        for leg in range(2):
            out[self.pitch_chains[leg]] = amplitude_rad * float(swing[leg]) * self.signs[leg]
        return out


class FeetAirTime:
    """How long each foot has been off the ground; at touchdown, how long the flight was (legged_gym's
    ``feet_air_time`` bookkeeping, with its "first contact" edge)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.air_time = np.zeros(2)
        self._was_in_contact = np.ones(2, dtype=bool)  # episodes start standing

    def update(self, in_contact: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Advance by one step of ``dt``; returns (touched down this step (2,) bool, flight time of those feet)."""
        in_contact = np.asarray(in_contact, dtype=bool)
        self.air_time += dt
        first_contact = in_contact & ~self._was_in_contact
        flight = np.where(first_contact, self.air_time, 0.0)
        self.air_time[in_contact] = 0.0
        self._was_in_contact = in_contact.copy()
        return first_contact, flight
