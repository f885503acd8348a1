"""The observation/action contract shared by training and deployment.

One module says how an observation vector is laid out and how an action becomes joint targets. The Gymnasium
environments, evaluation and the policy node build observations through
:class:`humanoid_rl.core.observation.ObservationBuilder` (which calls :meth:`PolicyContract.build_frame`) and map
actions with :meth:`PolicyContract.action_to_joint_targets`; nothing re-implements them. A contract can describe
policies trained elsewhere (legged_gym, Isaac Lab, humanoid-gym): terms in any order with scale, clip and history,
a gait clock, a joint subset the policy drives (the other joints held at their default), per-joint action scale,
no action clip, and recurrent state carried by the runtime. An exported model carries
:meth:`PolicyContract.to_dict` in its metadata, and a deployment compares it with the contract of the robot it
runs on (:meth:`PolicyContract.mismatches`) before any motor moves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from humanoid_rl.core.observation import (
    HISTORY_ORDERS,
    HISTORY_RESETS,
    TERM_KINDS,
    ContractError,
    ObservationError,
    ObservationTerm,
    RobotState,
    TermInputs,
    default_terms,
    term_size,
    unknown_term_message,
)

if TYPE_CHECKING:
    from humanoid_rl.core.robot_spec import RobotSpec

# 2: joint subset, per-joint action scale, optional action clip, term clip/history, frame stacking, gait clock,
# recurrent state. Version 1 descriptions (every model exported before) still load, with those features unused.
CONTRACT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
METADATA_KEY = "humanoid_rl.contract"

# Action mapping defaults: target = default_pose + ACTION_SCALE * clip(action, ±ACTION_CLIP).
DEFAULT_ACTION_SCALE = 0.5
DEFAULT_ACTION_CLIP = 1.0
# Tolerance for comparing float fields of two contracts (values travel through JSON and float32).
FLOAT_TOLERANCE = 1e-6


class ContractMismatchError(ValueError):
    """Two contracts differ; ``mismatches`` holds one human-readable line per difference."""

    def __init__(self, mismatches: Sequence[str], context: str = "policy contract mismatch") -> None:
        self.mismatches = list(mismatches)
        lines = "\n  - ".join(self.mismatches)
        super().__init__(f"{context} ({len(self.mismatches)} difference(s)):\n  - {lines}")


__all__ = [
    "CONTRACT_VERSION",
    "ContractError",
    "ContractMismatchError",
    "ObservationError",
    "ObservationTerm",
    "PolicyContract",
    "RecurrentState",
    "RobotState",
    "default_terms",
]


@dataclass(frozen=True)
class RecurrentState:
    """One recurrent memory tensor: graph input ``input`` at step t is graph output ``output`` of step t−1,
    zeros after a reset (engage, episode start, after HOLD)."""

    input: str
    output: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output, "shape": list(self.shape)}


@dataclass(frozen=True)
class PolicyContract:
    """Everything a policy and its runtime must agree on. Immutable; compare with :meth:`mismatches`.

    ``joint_names``, ``default_pose``, ``kp`` and ``kd`` cover every joint of the robot (its policy order);
    ``policy_joints`` are the joints the policy observes and drives, in the policy's own order (default: all).
    """

    robot_name: str
    robot_config_hash: str
    joint_names: tuple[str, ...]
    terms: tuple[ObservationTerm, ...]
    action_scale: float | tuple[float, ...]  # scalar, or one per policy joint
    action_clip: float | None  # None: actions are not clipped
    default_pose: tuple[float, ...]
    kp: tuple[float, ...]
    kd: tuple[float, ...]
    policy_rate_hz: float
    version: int = CONTRACT_VERSION
    policy_joints: tuple[str, ...] = ()  # () means joint_names
    gait_period_s: float | None = None  # needed by the gait_phase term
    frame_stack: int = 1  # whole frames stacked (humanoid-gym frame_stack)
    history_order: str = "oldest_first"  # order of term histories and stacked frames
    history_reset: str = "first"  # what history holds after a reset: copies of the first frame, or zeros
    recurrent_state: tuple[RecurrentState, ...] = ()
    # Goal-conditioned policies (the "goal" term): the link whose point the goal names, and the frame (a robot
    # link) the goal is expressed in; a deployment refuses goals given in any other frame.
    goal_link: str | None = None
    goal_frame: str | None = None
    # Derived; kept out of equality and serialisation.
    _default_pose_array: np.ndarray = field(init=False, repr=False, compare=False)
    _policy_default: np.ndarray = field(init=False, repr=False, compare=False)
    _policy_index: np.ndarray | None = field(init=False, repr=False, compare=False)
    _action_scale_array: np.ndarray | float = field(init=False, repr=False, compare=False)
    _scale_array: np.ndarray = field(init=False, repr=False, compare=False)
    _clip_array: np.ndarray | None = field(init=False, repr=False, compare=False)
    _obs_buffer: np.ndarray = field(init=False, repr=False, compare=False)
    _term_plan: tuple[tuple[Callable[[TermInputs], Any], slice], ...] = field(init=False, repr=False, compare=False)
    _term_inputs: TermInputs = field(init=False, repr=False, compare=False)
    _input_shapes: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.policy_joints:
            object.__setattr__(self, "policy_joints", tuple(self.joint_names))
        if not isinstance(self.action_scale, int | float):
            object.__setattr__(self, "action_scale", tuple(float(x) for x in self.action_scale))
        object.__setattr__(self, "version", CONTRACT_VERSION)
        n = len(self.joint_names)
        n_policy = len(self.policy_joints)
        problems: list[str] = []
        if len(set(self.joint_names)) != n:
            problems.append("joint_names has duplicates")
        if len(set(self.policy_joints)) != n_policy:
            problems.append("policy_joints has duplicates")
        unknown = [j for j in self.policy_joints if j not in self.joint_names]
        if unknown:
            problems.append(f"policy_joints {unknown} are not joints of the robot (joints: {list(self.joint_names)})")
        for name, values in (("default_pose", self.default_pose), ("kp", self.kp), ("kd", self.kd)):
            if len(values) != n:
                problems.append(f"{name} has {len(values)} values for {n} joints")
        for term in self.terms:
            if term.name not in TERM_KINDS:
                problems.append(unknown_term_message(term.name))
            elif term.size != term_size(term.name, n_policy):
                problems.append(
                    f"observation term {term.name!r} has size {term.size}, "
                    f"expected {term_size(term.name, n_policy)} for {n_policy} policy joints"
                )
        if len({t.name for t in self.terms}) != len(self.terms):
            problems.append("an observation term is listed twice")
        scales = np.atleast_1d(np.asarray(self.action_scale, dtype=np.float64))
        if scales.size not in (1, n_policy) or not np.all(scales > 0):
            problems.append(f"action_scale must be positive: one number or one per policy joint ({n_policy})")
        if self.action_clip is not None and not self.action_clip > 0:
            problems.append("action_clip must be positive, or none for no clipping")
        if not self.policy_rate_hz > 0:
            problems.append("policy_rate_hz must be positive")
        if any(t.name == "gait_phase" for t in self.terms) and not (self.gait_period_s or 0) > 0:
            problems.append("the gait_phase term needs gait_period_s (the gait cycle, seconds) > 0")
        has_goal = any(t.name == "goal" for t in self.terms)
        if has_goal and not (self.goal_link and self.goal_frame):
            problems.append("the goal term needs goal_link (the link that reaches) and goal_frame (the frame of the "
                            "goal point)")
        if not has_goal and (self.goal_link or self.goal_frame):
            problems.append("goal_link/goal_frame are set but no observation term is 'goal'")
        if self.frame_stack < 1:
            problems.append(f"frame_stack must be ≥ 1, got {self.frame_stack}")
        if self.history_order not in HISTORY_ORDERS:
            problems.append(f"history_order {self.history_order!r} is not one of {list(HISTORY_ORDERS)}")
        if self.history_reset not in HISTORY_RESETS:
            problems.append(f"history_reset {self.history_reset!r} is not one of {list(HISTORY_RESETS)}")
        if problems:
            raise ContractError("invalid policy contract: " + "; ".join(problems))
        default = np.asarray(self.default_pose, dtype=np.float64)
        object.__setattr__(self, "_default_pose_array", default)
        index = np.array([self.joint_names.index(j) for j in self.policy_joints], dtype=np.intp)
        identity = index.size == n and bool(np.all(index == np.arange(n)))
        object.__setattr__(self, "_policy_index", None if identity else index)
        object.__setattr__(self, "_policy_default", default if identity else default[index])
        scale = self.action_scale
        object.__setattr__(self, "_action_scale_array", scale if isinstance(scale, float | int) else np.array(scale))
        object.__setattr__(
            self, "_scale_array", np.concatenate([np.asarray(t.scale, dtype=np.float64) for t in self.terms])
        )
        clips = [np.full(t.size, np.inf if t.clip is None else t.clip) for t in self.terms]
        any_clip = any(t.clip is not None for t in self.terms)
        object.__setattr__(self, "_clip_array", np.concatenate(clips) if any_clip else None)
        # Hot-path plan for build_frame: where each term goes, the expected input shapes, one buffer.
        slices = self.frame_slices()
        object.__setattr__(self, "_term_plan", tuple((TERM_KINDS[t.name].read, slices[t.name]) for t in self.terms))
        nothing = np.zeros(0)
        inputs = TermInputs(None, nothing, nothing, nothing, nothing, self._policy_default, 0.0,  # type: ignore[arg-type]
                            self.gait_period_s or 1.0)
        object.__setattr__(self, "_term_inputs", inputs)
        object.__setattr__(self, "_input_shapes", ((3,), (4,), (n,), (n,), (3,), (n_policy,)))
        object.__setattr__(self, "_obs_buffer", np.empty(sum(t.size for t in self.terms)))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_robot(
        cls,
        spec: RobotSpec,
        *,
        policy_rate_hz: float | None = None,
        action_scale: float = DEFAULT_ACTION_SCALE,
        action_clip: float = DEFAULT_ACTION_CLIP,
        terms: Sequence[ObservationTerm] | None = None,
        gait_period_s: float | None = None,
    ) -> PolicyContract:
        """The contract for a robot: joint order, default pose, gains and rate all come from its RobotSpec."""
        return cls(
            robot_name=spec.name,
            robot_config_hash=spec.config_hash,
            joint_names=tuple(spec.joint_names),
            terms=tuple(terms) if terms is not None else default_terms(spec.n_joints),
            action_scale=float(action_scale),
            action_clip=float(action_clip),
            default_pose=tuple(float(x) for x in spec.default_pose),
            kp=tuple(float(x) for x in spec.kp),
            kd=tuple(float(x) for x in spec.kd),
            policy_rate_hz=float(policy_rate_hz if policy_rate_hz is not None else spec.policy_rate_hz),
            gait_period_s=gait_period_s,
        )

    @property
    def n_actions(self) -> int:
        return len(self.policy_joints)

    @property
    def frame_size(self) -> int:
        """Values of one frame with the terms' histories (the unit ``frame_stack`` repeats)."""
        return sum(t.width for t in self.terms)

    @property
    def n_obs(self) -> int:
        return self.frame_stack * self.frame_size

    @property
    def recurrent(self) -> bool:
        return bool(self.recurrent_state)

    @property
    def observation_scale(self) -> np.ndarray:
        """Per-element scale of one frame without history (read-only copy)."""
        return self._scale_array.copy()

    def frame_slices(self) -> dict[str, slice]:
        """Where each term's current value sits in one frame without history."""
        return self._consecutive_slices([term.size for term in self.terms])

    def term_slices(self) -> dict[str, slice]:
        """Where each term sits in the observation vector, its whole history (with ``frame_stack`` > 1: within
        one stacked frame)."""
        return self._consecutive_slices([term.width for term in self.terms])

    def _consecutive_slices(self, lengths: list[int]) -> dict[str, slice]:
        """The terms laid end to end, each ``lengths[i]`` long."""
        slices: dict[str, slice] = {}
        start = 0
        for term, length in zip(self.terms, lengths, strict=True):
            slices[term.name] = slice(start, start + length)
            start += length
        return slices

    # ------------------------------------------------------------------ observation and action
    def build_observation(
        self, state: RobotState, command: np.ndarray, last_action: np.ndarray, *, time_s: float = 0.0
    ) -> np.ndarray:
        """The float32 observation of a contract without history or frame stacking (ObservationBuilder builds
        those, and runs the gait clock over time)."""
        if self.frame_stack > 1 or any(t.history > 1 for t in self.terms):
            raise ContractError("this contract stacks history: build observations with ObservationBuilder")
        return self.build_frame(state, command, last_action, time_s=time_s).astype(np.float32)

    def build_frame(
        self, state: RobotState, command: np.ndarray, last_action: np.ndarray, *, time_s: float = 0.0
    ) -> np.ndarray:
        """One frame (float64, every term's current value, scaled and clipped, in the contract's term order).

        The returned array is reused by the next call. Raises ObservationError on a wrong shape or any
        non-finite value: a policy must never see NaN. This runs every control tick (up to 1 kHz): one buffer, one
        finiteness check over the result, and the detailed diagnosis only when something is wrong.
        """
        inputs = (state.base_ang_vel, state.base_quat, state.joint_pos, state.joint_vel, command, last_action)
        if tuple(np.shape(x) for x in inputs) != self._input_shapes:
            raise ObservationError(self._describe_bad_inputs(state, inputs))
        index = self._policy_index
        term_inputs = self._term_inputs  # one object reused: this runs every control tick
        term_inputs.state, term_inputs.command, term_inputs.last_action = state, command, last_action
        term_inputs.joint_pos = state.joint_pos if index is None else state.joint_pos[index]
        term_inputs.joint_vel = state.joint_vel if index is None else state.joint_vel[index]
        term_inputs.time_s = time_s
        out = self._obs_buffer
        try:
            for read, where in self._term_plan:
                out[where] = read(term_inputs)
        except ObservationError:
            raise
        except ValueError as exc:  # e.g. a zero-length orientation quaternion, or a misshapen optional field
            raise ObservationError(f"cannot build an observation: {exc}") from exc
        out *= self._scale_array
        if self._clip_array is not None:
            np.clip(out, -self._clip_array, self._clip_array, out=out)
        if not np.isfinite(out).all():
            raise ObservationError(self._describe_bad_inputs(state, inputs))
        return out

    def _describe_bad_inputs(self, state: RobotState, inputs: tuple[Any, ...]) -> str:
        labels = (
            "state.base_ang_vel",
            "state.base_quat",
            "state.joint_pos",
            "state.joint_vel",
            "velocity command (vx, vy, yaw rate)",
            "last_action",
        )
        wrong = [
            f"{label} has shape {np.shape(x)}, expected {shape}"
            for label, x, shape in zip(labels, inputs, self._input_shapes, strict=True)
            if np.shape(x) != shape
        ]
        if wrong:
            return "; ".join(wrong) + " (joint arrays in the robot's joint order, last_action in the policy's)"
        optional = [(f"state.{t.name}", getattr(state, t.name)) for t in self.terms if hasattr(state, t.name)]
        bad = [label for label, x in zip(labels, inputs, strict=True) if not np.all(np.isfinite(x))]
        bad += [label for label, x in optional if x is not None and not np.all(np.isfinite(x))]
        return f"non-finite values in {bad}: refusing to build an observation"

    def clip_action(self, action: np.ndarray) -> np.ndarray:
        """The action as the policy's joint targets use it (and as ``last_action`` in the next observation)."""
        action = np.asarray(action, dtype=np.float64)
        if self.action_clip is None:
            return action.copy()
        return np.clip(action, -self.action_clip, self.action_clip)

    def action_to_joint_targets(self, action: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """Joint position targets for every robot joint (robot order): default pose + scale × clipped action for
        the policy's joints, the default pose for the others, within [lower, upper]."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.n_actions,):
            raise ObservationError(f"action has shape {action.shape}, expected ({self.n_actions},)")
        if not np.all(np.isfinite(action)):
            raise ObservationError("non-finite action from the policy: refusing to map it to joint targets")
        moved = self._policy_default + self._action_scale_array * self.clip_action(action)
        if self._policy_index is None:
            return np.clip(moved, lower, upper)
        targets = self._default_pose_array.copy()
        targets[self._policy_index] = moved
        return np.clip(targets, lower, upper)

    # ------------------------------------------------------------------ description and comparison
    def to_dict(self) -> dict[str, Any]:
        from humanoid_rl.core.contract_io import contract_to_dict

        return contract_to_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyContract:
        """A contract from :meth:`to_dict` of this or an earlier version (ContractError names what is wrong)."""
        from humanoid_rl.core.contract_io import contract_from_dict

        return contract_from_dict(data)

    @classmethod
    def from_json(cls, text: str) -> PolicyContract:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(f"contract metadata is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def mismatches(self, other: PolicyContract, *, self_label: str = "model", other_label: str = "robot") -> list[str]:
        """Every difference between two contracts (the policy-side layout included).

        The config hash is not compared here (an edited comment changes it); see :meth:`hash_differs`. A
        deployment compares a model with a robot through :meth:`robot_mismatches`, which leaves the observation
        layout and action mapping to the model.
        """
        a, b = self_label, other_label
        out = self.robot_mismatches(other, self_label=a, other_label=b)
        if self.policy_joints != other.policy_joints and self.joint_names == other.joint_names:
            out.append(f"policy joints: {a} drives {list(self.policy_joints)}, {b} {list(other.policy_joints)}")
        mine = [(t.name, t.size) for t in self.terms]
        theirs = [(t.name, t.size) for t in other.terms]
        if mine != theirs:
            out.append(f"observation terms: {a} has {mine}, {b} has {theirs}")
        else:
            for t1, t2 in zip(self.terms, other.terms, strict=True):
                if not np.allclose(t1.scale, t2.scale, rtol=0, atol=FLOAT_TOLERANCE):
                    out.append(f"observation scale of {t1.name!r}: {a} {list(t1.scale)}, {b} {list(t2.scale)}")
                for name in ("clip", "history"):
                    if getattr(t1, name) != getattr(t2, name):
                        out.append(f"observation {name} of {t1.name!r}: {a} {getattr(t1, name)}, "
                                   f"{b} {getattr(t2, name)}")
        x, y = np.atleast_1d(self.action_scale), np.atleast_1d(other.action_scale)
        if x.shape != y.shape or not np.allclose(x, y, rtol=0, atol=FLOAT_TOLERANCE):
            out.append(f"action_scale: {a} {self.action_scale}, {b} {other.action_scale}")
        c1, c2 = self.action_clip, other.action_clip
        if (c1 is None) != (c2 is None) or (c1 is not None and c2 is not None and abs(c1 - c2) > FLOAT_TOLERANCE):
            out.append(f"action_clip: {a} {c1}, {b} {c2}")
        for name in ("gait_period_s", "frame_stack", "history_order", "history_reset", "recurrent_state", "goal_link",
                     "goal_frame"):
            if getattr(self, name) != getattr(other, name):
                out.append(f"{name}: {a} {getattr(self, name)}, {b} {getattr(other, name)}")
        return out

    def robot_mismatches(
        self, robot: PolicyContract, *, self_label: str = "model", other_label: str = "robot"
    ) -> list[str]:
        """Every difference that makes a policy built for ``self`` unsafe to run on ``robot``: robot name, joint
        order, default pose and PD gains per joint, policy rate. The observation layout and action mapping are the
        model's own (its contract says how to build them from any robot state)."""
        out: list[str] = []
        a, b = self_label, other_label
        if self.robot_name != robot.robot_name:
            out.append(f"robot name: {a} was built for {self.robot_name!r}, {b} is {robot.robot_name!r}")
        out += _joint_order_mismatches(self.joint_names, robot.joint_names, a, b)
        if abs(self.policy_rate_hz - robot.policy_rate_hz) > FLOAT_TOLERANCE:
            out.append(f"policy_rate_hz: {a} {self.policy_rate_hz}, {b} {robot.policy_rate_hz}")
        if self.joint_names == robot.joint_names:
            for name in ("default_pose", "kp", "kd"):
                x, y = np.asarray(getattr(self, name)), np.asarray(getattr(robot, name))
                for i in np.flatnonzero(np.abs(x - y) > FLOAT_TOLERANCE):
                    out.append(f"{name} of {self.joint_names[i]}: {a} {x[i]:.6g}, {b} {y[i]:.6g}")
        return out

    def hash_differs(self, other: PolicyContract) -> bool:
        return self.robot_config_hash != other.robot_config_hash

    def require_compatible(
        self, other: PolicyContract, *, self_label: str = "model", other_label: str = "robot"
    ) -> None:
        problems = self.mismatches(other, self_label=self_label, other_label=other_label)
        if problems:
            raise ContractMismatchError(
                problems,
                context=f"the {self_label}'s contract does not match the {other_label}'s "
                f"(retrain/re-export for this robot, or point robot_config at the robot it was trained for)",
            )


def _joint_order_mismatches(mine: Sequence[str], theirs: Sequence[str], a: str, b: str) -> list[str]:
    if list(mine) == list(theirs):
        return []
    out: list[str] = []
    missing = [n for n in mine if n not in theirs]
    extra = [n for n in theirs if n not in mine]
    if missing:
        out.append(f"joints in {a} but not in {b}: {missing}")
    if extra:
        out.append(f"joints in {b} but not in {a}: {extra}")
    if not missing and not extra:
        moved = [f"{n} ({a} #{i}, {b} #{list(theirs).index(n)})" for i, n in enumerate(mine) if theirs[i] != n]
        out.append(f"joint order differs: {', '.join(moved)}")
    return out
