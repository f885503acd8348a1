"""Observation terms and the one stateful observation builder (history buffers, gait clock).

A contract (:mod:`humanoid_rl.core.contract`) lists :class:`ObservationTerm` s in the policy's order. Each term is
read from a :class:`RobotState` (plus the velocity command, the last action and the gait clock), multiplied by its
scale, optionally clipped, and optionally stacked over its last ``history`` frames; the whole frame may be stacked
again (``frame_stack``, humanoid-gym style). :class:`ObservationBuilder` keeps that state between steps; the
training environment, evaluation and the policy node all build observations through it, so the clock and the
history exist once. The clock time is ``steps since reset / policy_rate_hz``: it starts at 0 at engage / episode
start, as legged_gym's ``episode_length_buf * dt`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from humanoid_rl.core.rotations import projected_gravity

if TYPE_CHECKING:
    from humanoid_rl.core.contract import PolicyContract

HISTORY_ORDERS = ("oldest_first", "newest_first")
HISTORY_RESETS = ("first", "zeros")  # after reset, history is filled with the first frame (Isaac Lab) or zeros


class ContractError(ValueError):
    """A contract description is malformed."""


class ObservationError(ValueError):
    """An observation could not be built (wrong shape or non-finite input): no command may be built from it."""


@dataclass
class RobotState:
    """What an observation is built from. Joint arrays are in the ROBOT's joint order (the contract's
    ``joint_names``); vectors in the body frame. The optional fields are needed only by contracts that use them."""

    base_ang_vel: np.ndarray
    base_quat: np.ndarray
    joint_pos: np.ndarray
    joint_vel: np.ndarray
    base_lin_vel: np.ndarray | None = None  # body frame, from the estimator
    base_height: float | None = None  # metres above the ground, from the estimator
    foot_contacts: np.ndarray | None = None  # (left, right), 0..1
    imu_lin_acc: np.ndarray | None = None  # IMU specific force, body frame
    # A goal-conditioned policy's target point (the contract's goal_frame, metres). Not a measurement, but it is
    # an optional input of one term like the ones above, so it travels with them (the node fills it from a topic).
    goal: np.ndarray | None = None


@dataclass(frozen=True)
class ObservationTerm:
    """One named slice of a frame; the policy sees ``clip(raw_value * scale, ±clip)`` over ``history`` frames."""

    name: str
    size: int  # values per frame
    scale: tuple[float, ...]  # one per value
    clip: float | None = None  # bound on the scaled value; None: no clip
    history: int = 1  # frames of this term in the observation (frame stacking per term)

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ContractError(f"observation term {self.name!r}: size must be positive, got {self.size}")
        if len(self.scale) != self.size:
            raise ContractError(
                f"observation term {self.name!r}: scale has {len(self.scale)} values for size {self.size}"
            )
        if self.clip is not None and not (math.isfinite(self.clip) and self.clip > 0):
            raise ContractError(f"observation term {self.name!r}: clip must be a positive number or none")
        if self.history < 1:
            raise ContractError(f"observation term {self.name!r}: history must be ≥ 1, got {self.history}")

    @property
    def width(self) -> int:
        """Values this term occupies in one (unstacked) observation."""
        return self.size * self.history

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "size": self.size, "scale": list(self.scale)}
        if self.clip is not None:
            out["clip"] = self.clip
        if self.history != 1:
            out["history"] = self.history
        return out


@dataclass
class TermInputs:
    """Everything a term reader may use for one frame (joint arrays already in the policy's joint order)."""

    state: RobotState
    command: np.ndarray
    last_action: np.ndarray
    joint_pos: np.ndarray
    joint_vel: np.ndarray
    default_pose: np.ndarray  # of the policy's joints
    time_s: float
    gait_period_s: float


def _required(value: Any, field: str) -> np.ndarray:
    if value is None:
        raise ObservationError(f"the contract observes {field}, but the robot state has none")
    return value


def _gait_phase(x: TermInputs) -> np.ndarray:
    angle = 2.0 * math.pi * x.time_s / x.gait_period_s
    return np.array([math.sin(angle), math.cos(angle)])


def _euler_xyz(x: TermInputs) -> np.ndarray:
    """Roll, pitch, yaw (ZYX convention, as humanoid-gym's get_euler_xyz) of the base orientation."""
    qx, qy, qz, qw = (float(v) for v in x.state.base_quat / np.linalg.norm(x.state.base_quat))
    roll = math.atan2(2.0 * (qw * qx + qy * qz), 1.0 - 2.0 * (qx * qx + qy * qy))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (qw * qy - qz * qx))))
    yaw = math.atan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))
    return np.array([roll, pitch, yaw])


@dataclass(frozen=True)
class TermKind:
    size: str | int  # a fixed size, or "joints" (one per policy joint), or "feet"
    read: Callable[[TermInputs], Any]
    meaning: str


N_FEET = 2
# Every term a contract may name. A name that is not here cannot be built; a contract naming one is refused.
TERM_KINDS: dict[str, TermKind] = {
    "base_ang_vel": TermKind(3, lambda x: x.state.base_ang_vel, "base angular velocity, body frame (rad/s)"),
    "projected_gravity": TermKind(3, lambda x: projected_gravity(x.state.base_quat), "gravity direction, body frame"),
    "base_euler_xyz": TermKind(3, _euler_xyz, "base roll, pitch, yaw (rad; yaw drifts with the estimator)"),
    "velocity_command": TermKind(3, lambda x: x.command, "commanded vx, vy (m/s), yaw rate (rad/s)"),
    "joint_pos_rel": TermKind("joints", lambda x: x.joint_pos - x.default_pose, "joint position − default (rad)"),
    "joint_vel": TermKind("joints", lambda x: x.joint_vel, "joint velocity (rad/s)"),
    "last_action": TermKind("joints", lambda x: x.last_action, "the previous action, clipped as the targets use it"),
    "gait_phase": TermKind(2, _gait_phase, "sin, cos of 2π·t/gait_period_s, t from engage / episode start"),
    "base_lin_vel": TermKind(
        3, lambda x: _required(x.state.base_lin_vel, "base_lin_vel"), "base linear velocity, body frame (m/s)"
    ),
    "base_height": TermKind(
        1, lambda x: _required(x.state.base_height, "base_height"), "base height above the ground (m)"
    ),
    "foot_contacts": TermKind(
        "feet", lambda x: _required(x.state.foot_contacts, "foot_contacts"), "contact per foot (left, right), 0..1"
    ),
    "imu_lin_acc": TermKind(
        3, lambda x: _required(x.state.imu_lin_acc, "imu_lin_acc"), "IMU linear acceleration, body frame (m/s²)"
    ),
    "goal": TermKind(
        3, lambda x: _required(x.state.goal, "goal"), "goal point of the contract's goal_link in its goal_frame (m)"
    ),
}


def term_size(name: str, n_policy_joints: int) -> int:
    size = TERM_KINDS[name].size
    if size == "joints":
        return n_policy_joints
    if size == "feet":
        return N_FEET
    return int(size)


def unknown_term_message(name: str) -> str:
    return f"unknown observation term {name!r} (known: {', '.join(TERM_KINDS)})"


def default_terms(n_joints: int) -> tuple[ObservationTerm, ...]:
    """The observation layout every policy of ``humanoid-rl train`` uses (72 values for the 21-joint humanoid)."""
    return (
        ObservationTerm("base_ang_vel", 3, (0.25,) * 3),
        ObservationTerm("projected_gravity", 3, (1.0,) * 3),
        ObservationTerm("velocity_command", 3, (2.0, 2.0, 0.25)),
        ObservationTerm("joint_pos_rel", n_joints, (1.0,) * n_joints),
        ObservationTerm("joint_vel", n_joints, (0.05,) * n_joints),
        ObservationTerm("last_action", n_joints, (1.0,) * n_joints),
    )


def walk_terms(n_joints: int) -> tuple[ObservationTerm, ...]:
    """The walk task's layout: the estimator's base velocity, the default terms and the gait clock (77 values for
    the 21-joint humanoid). Tracking a velocity command needs the velocity: legged_gym observes it first (scale 2);
    without it a 3.7M-step walk PPO stepped in the schedule but missed vx by 0.26 m/s per stride."""
    return (ObservationTerm("base_lin_vel", 3, (2.0,) * 3), *default_terms(n_joints),
            ObservationTerm("gait_phase", 2, (1.0, 1.0)))


class ObservationBuilder:
    """The observation of one policy over time: history buffers and the gait clock live here.

    ``reset()`` at engage / episode start / after HOLD; ``build()`` once per policy step (it advances the clock
    by one policy period). Contracts without history or clock give exactly ``contract.build_observation``.
    """

    def __init__(self, contract: PolicyContract) -> None:
        self.contract = contract
        self._period_s = 1.0 / contract.policy_rate_hz
        slices = contract.frame_slices()
        # (where the term's frame value sits, its history) for terms with history > 1
        self._term_history = [(slices[t.name], t.history) for t in contract.terms if t.history > 1]
        self._stateful = bool(self._term_history) or contract.frame_stack > 1
        self._newest_first = contract.history_order == "newest_first"
        # Whether the contract observes base velocity or height (estimator outputs, not raw sensors).
        self.needs_truth = any(t.name in ("base_lin_vel", "base_height") for t in contract.terms)
        self.reset()

    @property
    def time_s(self) -> float:
        """Gait-clock time of the next observation: policy periods since reset."""
        return self._steps * self._period_s

    def reset(self) -> None:
        self._steps = 0
        self._term_buffers: list[np.ndarray] | None = None  # per term with history: (history, size), newest first
        self._stack: np.ndarray | None = None  # frame stacking: (frame_stack, frame width), newest first

    def build(self, state: RobotState, command: np.ndarray, last_action: np.ndarray) -> np.ndarray:
        """The float32 observation for this step; ObservationError if any input is missing, misshapen or NaN."""
        frame = self.contract.build_frame(state, command, last_action, time_s=self.time_s)
        self._steps += 1
        if not self._stateful:
            return frame.astype(np.float32)
        zeros = self.contract.history_reset == "zeros"
        if self._term_buffers is None:
            self._term_buffers = [
                np.zeros((h, where.stop - where.start)) if zeros else np.tile(frame[where], (h, 1))
                for where, h in self._term_history
            ]
        for buffer, (where, _) in zip(self._term_buffers, self._term_history, strict=True):
            buffer[1:] = buffer[:-1]
            buffer[0] = frame[where]
        # Replace each term's one-frame value by its history, last term first so earlier slices stay valid.
        for buffer, (where, _) in reversed(list(zip(self._term_buffers, self._term_history, strict=True))):
            stacked = buffer if self._newest_first else buffer[::-1]
            frame = np.concatenate([frame[: where.start], stacked.ravel(), frame[where.stop :]])
        if self.contract.frame_stack > 1:
            if self._stack is None:
                self._stack = np.zeros((self.contract.frame_stack, frame.size))
                if not zeros:
                    self._stack[:] = frame
            self._stack[1:] = self._stack[:-1]
            self._stack[0] = frame
            frame = (self._stack if self._newest_first else self._stack[::-1]).ravel()
        return frame.astype(np.float32)
