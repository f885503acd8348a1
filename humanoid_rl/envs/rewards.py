"""Reward terms of the Stand and Walk tasks, computed separately so training can log each one.

Pure numpy: the environment gathers one ``RewardInputs`` per policy step (from the simulator's exact state, which
only training sees) and ``reward_terms`` returns ``{name: weighted value}``; the step reward is their sum.
Positive terms (survival, posture, tracking) are bounded by their weights; penalties are <= 0. Two walk terms
have both signs: ``contact_schedule`` (a foot out of schedule costs 0.3 of the weight) and ``feet_air_time`` (a
step shorter than ``min_air_time_s`` costs).

Guard against reward hacking: the posture rewards (``upright``, ``base_height``) are multiplied by a stability
factor in [0, 1] that is 1 only while at least one foot is on the ground *and* the base barely rotates
(``exp(-|omega_roll,pitch|^2 / stability_ang_vel_scale^2)``). A policy therefore cannot collect them while hopping,
flailing, or toppling through the upright pose, only by actually standing still on its feet; the height reward
also peaks at the nominal height, so stretching or jumping up earns nothing.

The walk task adds the terms a gait needs (the anchors: legged_gym's feet-air-time and tracking terms,
humanoid-gym's contact pattern and swing-height reference): linear and yaw velocity tracking, a contact schedule
that matches the gait clock (``envs/gait.py``), a swing-foot height reference, feet air time at touchdown, and a
foot-slip penalty. While the command is "stand still" the schedule asks for both feet down and no lift.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["STAND_TERMS", "WALK_TERMS", "RewardConfig", "RewardInputs", "reward_terms", "stability_factor"]

# Every step's info["reward_terms"] holds exactly these keys, in this order (loggers see a fixed set).
_COMMON_TERMS = ("survival", "upright", "base_height", "balance", "action_rate", "energy", "joint_limits")
STAND_TERMS = _COMMON_TERMS[:4] + ("stay_in_place",) + _COMMON_TERMS[4:]
WALK_TERMS = _COMMON_TERMS[:4] + (
    "velocity_tracking", "yaw_tracking", "tracking_error", "contact_schedule", "feet_air_time", "foot_clearance",
    "foot_slip", "hip_posture", "reference_gait",
) + _COMMON_TERMS[4:]


@dataclass
class RewardConfig:
    """Weights (per policy step) and the shape parameters of each term. Set a weight to 0 to drop a term."""

    survival: float = 1.0  # paid every step the robot has not fallen
    upright: float = 1.0  # * stability * exp(-|projected gravity xy|^2 / upright_scale^2)
    base_height: float = 1.0  # * stability * exp(-((h - h_nominal) / base_height_scale_m)^2)
    balance: float = 0.05  # penalty * (roll rate^2 + pitch rate^2), rad^2/s^2
    stay_in_place: float = 0.5  # stand: * (exp(-|v_xy|^2/s_v^2) + exp(-|drift_xy|^2/s_p^2)) / 2
    velocity_tracking: float = 2.0  # walk: * exp(-|v_xy - cmd_xy|^2 / s_v^2), heading frame
    yaw_tracking: float = 1.0  # walk: * exp(-(wz - cmd_wz)^2 / s_w^2)
    # walk: penalty * (|v_xy - cmd_xy| + |wz - cmd_wz|). humanoid-gym's track_vel_hard has this linear part:
    # the exp kernels flatten far from the command, this slope does not (0 keeps the original recipe).
    tracking_error: float = 0.0
    # walk: judge the three tracking terms on the achieved velocity averaged over the last this many seconds (since
    # the command last changed) instead of this step's. A walking humanoid's yaw rate sways by a std of 0.6-0.9
    # rad/s within a stride, which saturates the 0.5 rad/s yaw kernel: per step, turning at the commanded 0.6 rad/s
    # earned 0.38 of the weight and not turning at all 0.30. One gait period (0.7) averages the sway out; 0 keeps
    # the per-step terms (legged_gym's, and the recipe of the runs before it).
    tracking_average_s: float = 0.0
    contact_schedule: float = 1.0  # walk: * mean over feet of (1 if contact == scheduled stance else -0.3)
    feet_air_time: float = 1.0  # walk, moving: * sum at touchdown of (min(flight, T/2) - min_air_time_s)
    foot_clearance: float = 0.5  # walk: * mean over feet of exp(-((h - h_ref) / clearance_scale_m)^2)
    foot_slip: float = 0.2  # walk: penalty * sum over feet in contact of |v_xy of the foot|, m/s
    # walk: penalty * sum over hip yaw and roll joints of max(|q - q_default| - hip_posture_free_rad, 0), rad.
    # humanoid-gym's default_joint_pos: a gait that steers or splays with the hips veers (0 keeps the recipe).
    hip_posture: float = 0.0
    # walk: * (exp(-2 |e|) - 0.2 min(|e|, 0.5)), e = leg joints minus humanoid-gym's periodic reference trajectory
    # (gait.LegReference: the swing leg flexes hip, knee and ankle by reference_gait_amplitude_rad * swing).
    # A prior for stepping with bent knees and lifted feet (0 keeps the recipe).
    reference_gait: float = 0.0
    action_rate: float = 0.01  # penalty * |a_t - a_{t-1}|^2 (smoothness)
    energy: float = 2.0e-4  # penalty * sum |tau * qd|, watts
    joint_limits: float = 1.0  # penalty * sum(clip((proximity - soft) / (1 - soft), 0, 1)^2)

    upright_scale: float = 0.2  # |projected gravity xy| ~ sin(tilt): 0.2 ~ 11.5 degrees
    base_height_scale_m: float = 0.05
    stability_ang_vel_scale: float = 1.0  # rad/s
    velocity_scale: float = 0.25  # m/s
    yaw_rate_scale: float = 0.5  # rad/s
    drift_scale_m: float = 0.5
    clearance_scale_m: float = 0.03
    hip_posture_free_rad: float = 0.1  # hip yaw/roll offset that costs nothing
    reference_gait_amplitude_rad: float = 0.17  # humanoid-gym's target_joint_pos_scale
    soft_joint_limit: float = 0.9  # fraction of the half range from the middle at which the penalty starts

    @classmethod
    def for_walk(cls) -> RewardConfig:
        """The walk task's weights: tracking outweighs posture and survival, with legged_gym's kernel width.

        With the stand weights and a 0.25 m/s kernel, a 3M-step walk PPO learned to step in place in the gait
        schedule (tracking error 0.36 m/s): commanded 0.5 m/s, standing earned exp(-4) = 2 % of the tracking
        weight, too flat a slope to climb while posture and survival paid 3 per step. legged_gym's
        exp(-err^2 / 0.25) is a 0.5 m/s kernel; humanoid-gym's exp(-5 err^2) is 0.45 m/s.
        """
        return cls(velocity_tracking=4.0, velocity_scale=0.4, yaw_tracking=2.0, yaw_rate_scale=0.5)

    @classmethod
    def for_task(cls, walking: bool) -> RewardConfig:
        """The task's defaults: ``for_walk()`` to walk, the plain defaults to stand."""
        return cls.for_walk() if walking else cls()

    def with_settings(self, items: Sequence[str]) -> RewardConfig:
        """A copy with ``NAME=VALUE`` items applied (training's ``--reward joint_limits=5``); ValueError names a
        bad item."""
        names = {f.name for f in dataclasses.fields(self)}
        changes: dict[str, float] = {}
        for item in items:
            name, sep, text = str(item).partition("=")
            name = name.strip()
            if not sep or name not in names:
                raise ValueError(f"reward setting {item!r}: use NAME=VALUE with NAME one of {sorted(names)}")
            try:
                changes[name] = float(text)
            except ValueError:
                raise ValueError(f"reward setting {item!r}: {text!r} is not a number") from None
        return dataclasses.replace(self, **changes)  # __post_init__ judges the values

    def __post_init__(self) -> None:
        scales = ("upright_scale", "base_height_scale_m", "stability_ang_vel_scale", "velocity_scale",
                  "yaw_rate_scale", "drift_scale_m", "clearance_scale_m")
        for name in scales:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"RewardConfig.{name} = {value!r}: a shape parameter must be positive and finite")
        weights = ("survival", "upright", "base_height", "balance", "stay_in_place", "velocity_tracking",
                   "yaw_tracking", "tracking_error", "contact_schedule", "feet_air_time", "foot_clearance",
                   "foot_slip", "hip_posture", "reference_gait", "action_rate", "energy", "joint_limits")
        for name in weights:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(
                    f"RewardConfig.{name} = {value!r}: weights are magnitudes >= 0 (penalties are subtracted)"
                )
        if not (math.isfinite(self.tracking_average_s) and self.tracking_average_s >= 0.0):
            raise ValueError(
                f"RewardConfig.tracking_average_s = {self.tracking_average_s!r}: use a time >= 0 (0: per step)"
            )
        for name in ("hip_posture_free_rad", "reference_gait_amplitude_rad"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"RewardConfig.{name} = {value!r}: use an angle >= 0")
        if not 0.0 <= self.soft_joint_limit < 1.0:
            raise ValueError(f"RewardConfig.soft_joint_limit = {self.soft_joint_limit!r}: use a fraction in [0, 1)")


@dataclass
class RewardInputs:
    """Exact quantities one reward evaluation needs (training only: the deployed robot never computes rewards)."""

    base_height: float  # m, base link origin above the ground
    nominal_base_height: float
    projected_gravity: np.ndarray  # (3,) body frame
    ang_vel_body: np.ndarray  # (3,) rad/s
    lin_vel_heading: np.ndarray  # (2,) m/s, horizontal base velocity in the yaw-only (heading) frame
    yaw_rate: float  # rad/s, world z
    drift_xy: np.ndarray  # (2,) m, base position minus where the episode started
    feet_in_contact: np.ndarray  # (2,) bool
    command: np.ndarray  # (3,) vx, vy (heading frame), yaw rate
    action: np.ndarray  # (n,) this step's (clipped) action
    last_action: np.ndarray  # (n,) the previous step's
    torques: np.ndarray  # (n,) N*m the motors applied
    joint_vel: np.ndarray  # (n,) rad/s, exact
    joint_limit_proximity: np.ndarray  # (n,) 0 mid-range, 1 at a limit
    # Walk only (the stand task leaves them at their defaults):
    moving: bool = False  # the command asks for steps (gait.is_moving)
    scheduled_stance: np.ndarray = field(default_factory=lambda: np.ones(2, dtype=bool))  # (2,) gait_targets
    swing_height_ref_m: np.ndarray = field(default_factory=lambda: np.zeros(2))  # (2,)
    foot_height_m: np.ndarray = field(default_factory=lambda: np.zeros(2))  # (2,) sole lift above its stance
    foot_vel_xy: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))  # (2, 2) m/s, world
    touchdown: np.ndarray = field(default_factory=lambda: np.zeros(2, dtype=bool))  # (2,) first contact this step
    flight_time_s: np.ndarray = field(default_factory=lambda: np.zeros(2))  # (2,) of the feet touching down
    half_period_s: float = 0.35  # half the gait period: the longest flight the air-time term pays for
    min_air_time_s: float = 0.2
    hip_offset_rad: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (k,) hip yaw/roll q - q_default
    reference_error_rad: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (m,) leg q - default - reference
    # (vx, vy, yaw rate) the tracking terms judge when RewardConfig.tracking_average_s > 0: the recent mean
    tracked_velocity: np.ndarray | None = None


def stability_factor(inputs: RewardInputs, config: RewardConfig) -> float:
    """1 when standing quietly on at least one foot, falling to 0 with base roll/pitch rate; 0 in the air."""
    if not bool(np.any(inputs.feet_in_contact)):
        return 0.0
    rate_sq = float(inputs.ang_vel_body[0] ** 2 + inputs.ang_vel_body[1] ** 2)
    return math.exp(-rate_sq / config.stability_ang_vel_scale**2)


def reward_terms(inputs: RewardInputs, config: RewardConfig, walking: bool) -> dict[str, float]:
    """Weighted value of every term this step (keys: ``WALK_TERMS`` or ``STAND_TERMS``)."""
    stable = stability_factor(inputs, config)
    gravity_xy_sq = float(inputs.projected_gravity[0] ** 2 + inputs.projected_gravity[1] ** 2)
    height_error = (inputs.base_height - inputs.nominal_base_height) / config.base_height_scale_m
    rate_sq = float(inputs.ang_vel_body[0] ** 2 + inputs.ang_vel_body[1] ** 2)
    terms: dict[str, float] = {
        "survival": config.survival,
        "upright": config.upright * stable * math.exp(-gravity_xy_sq / config.upright_scale**2),
        "base_height": config.base_height * stable * math.exp(-height_error**2),
        "balance": -config.balance * rate_sq,
    }
    if walking:
        terms.update(_walk_terms(inputs, config))
    else:
        speed_sq = float(np.sum(inputs.lin_vel_heading**2))
        drift_sq = float(np.sum(inputs.drift_xy**2))
        terms["stay_in_place"] = config.stay_in_place * 0.5 * (
            math.exp(-speed_sq / config.velocity_scale**2) + math.exp(-drift_sq / config.drift_scale_m**2)
        )
    action_change = inputs.action - inputs.last_action
    soft = config.soft_joint_limit
    beyond_soft = np.clip((inputs.joint_limit_proximity - soft) / (1.0 - soft), 0.0, 1.0)
    terms["action_rate"] = -config.action_rate * float(action_change @ action_change)
    terms["energy"] = -config.energy * float(np.abs(inputs.torques * inputs.joint_vel).sum())
    terms["joint_limits"] = -config.joint_limits * float(beyond_soft @ beyond_soft)
    return {name: terms[name] for name in (WALK_TERMS if walking else STAND_TERMS)}


def _walk_terms(inputs: RewardInputs, config: RewardConfig) -> dict[str, float]:
    tracked = inputs.tracked_velocity
    lin_vel, yaw_rate = (inputs.lin_vel_heading, inputs.yaw_rate) if tracked is None else (tracked[:2], tracked[2])
    velocity_error_sq = float(np.sum((lin_vel - inputs.command[:2]) ** 2))
    yaw_error_sq = (float(yaw_rate) - float(inputs.command[2])) ** 2
    contact = np.asarray(inputs.feet_in_contact, dtype=bool)
    matches = np.where(contact == inputs.scheduled_stance, 1.0, -0.3)
    air = 0.0
    if inputs.moving:  # standing still must not pay for lifting a foot
        flight = np.minimum(inputs.flight_time_s, inputs.half_period_s) - inputs.min_air_time_s
        air = float(np.sum(np.where(inputs.touchdown, flight, 0.0)))
    height_error = (inputs.foot_height_m - inputs.swing_height_ref_m) / config.clearance_scale_m
    slip = float(np.sum(np.where(contact, np.linalg.norm(inputs.foot_vel_xy, axis=1), 0.0)))
    hip_excess = np.maximum(np.abs(inputs.hip_offset_rad) - config.hip_posture_free_rad, 0.0)
    reference_error = float(np.linalg.norm(inputs.reference_error_rad))
    return {
        "velocity_tracking": config.velocity_tracking * math.exp(-velocity_error_sq / config.velocity_scale**2),
        "yaw_tracking": config.yaw_tracking * math.exp(-yaw_error_sq / config.yaw_rate_scale**2),
        "tracking_error": -config.tracking_error * (math.sqrt(velocity_error_sq) + math.sqrt(yaw_error_sq)),
        "contact_schedule": config.contact_schedule * float(matches.mean()),
        "feet_air_time": config.feet_air_time * air,
        "foot_clearance": config.foot_clearance * float(np.exp(-(height_error**2)).mean()),
        "foot_slip": -config.foot_slip * slip,
        "hip_posture": -config.hip_posture * float(hip_excess.sum()),
        "reference_gait": config.reference_gait * (math.exp(-2.0 * reference_error)
                                                   - 0.2 * min(reference_error, 0.5)),
    }
