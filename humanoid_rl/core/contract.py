"""The observation/action contract shared by training and deployment.

One module says how an observation vector is laid out and how an action becomes joint targets. The Gymnasium
environments and the policy node both call :meth:`PolicyContract.build_observation` and
:meth:`PolicyContract.action_to_joint_targets`; nothing re-implements them. An exported model carries
:meth:`PolicyContract.to_dict` in its metadata, and a deployment compares it with the contract of the robot it
runs on (:meth:`PolicyContract.mismatches`) before any motor moves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from humanoid_rl.core.rotations import projected_gravity

if TYPE_CHECKING:
    from humanoid_rl.core.robot_spec import RobotSpec

CONTRACT_VERSION = 1
METADATA_KEY = "humanoid_rl.contract"

# Action mapping defaults: target = default_pose + ACTION_SCALE * clip(action, ±ACTION_CLIP).
DEFAULT_ACTION_SCALE = 0.5
DEFAULT_ACTION_CLIP = 1.0
# Tolerance for comparing float fields of two contracts (values travel through JSON and float32).
FLOAT_TOLERANCE = 1e-6


class ContractError(ValueError):
    """A contract description is malformed."""


class ContractMismatchError(ValueError):
    """Two contracts differ; ``mismatches`` holds one human-readable line per difference."""

    def __init__(self, mismatches: Sequence[str], context: str = "policy contract mismatch") -> None:
        self.mismatches = list(mismatches)
        lines = "\n  - ".join(self.mismatches)
        super().__init__(f"{context} ({len(self.mismatches)} difference(s)):\n  - {lines}")


class ObservationError(ValueError):
    """An observation could not be built (wrong shape or non-finite input): no command may be built from it."""


@dataclass(frozen=True)
class ObservationTerm:
    """One named slice of the observation vector; the policy sees ``raw_value * scale``."""

    name: str
    size: int
    scale: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ContractError(f"observation term {self.name!r}: size must be positive, got {self.size}")
        if len(self.scale) != self.size:
            raise ContractError(
                f"observation term {self.name!r}: scale has {len(self.scale)} values for size {self.size}"
            )


@dataclass
class RobotState:
    """What an observation is built from. Joint arrays are in policy order; angular velocity in the body frame."""

    base_ang_vel: np.ndarray
    base_quat: np.ndarray
    joint_pos: np.ndarray
    joint_vel: np.ndarray


# How each known term is read from (state, command, last_action, default_pose). A term name in a contract that is not
# here cannot be built, and loading such a contract fails naming it.
TermSource = Callable[[RobotState, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
TERM_SOURCES: dict[str, TermSource] = {
    "base_ang_vel": lambda s, cmd, act, q0: s.base_ang_vel,
    "projected_gravity": lambda s, cmd, act, q0: projected_gravity(s.base_quat),
    "velocity_command": lambda s, cmd, act, q0: cmd,
    "joint_pos_rel": lambda s, cmd, act, q0: s.joint_pos - q0,
    "joint_vel": lambda s, cmd, act, q0: s.joint_vel,
    "last_action": lambda s, cmd, act, q0: act,
}


def default_terms(n_joints: int) -> tuple[ObservationTerm, ...]:
    """The observation layout every shipped policy uses (72 values for the 21-joint humanoid)."""
    return (
        ObservationTerm("base_ang_vel", 3, (0.25,) * 3),
        ObservationTerm("projected_gravity", 3, (1.0,) * 3),
        ObservationTerm("velocity_command", 3, (2.0, 2.0, 0.25)),
        ObservationTerm("joint_pos_rel", n_joints, (1.0,) * n_joints),
        ObservationTerm("joint_vel", n_joints, (0.05,) * n_joints),
        ObservationTerm("last_action", n_joints, (1.0,) * n_joints),
    )


def _term_sizes_for(n_joints: int) -> dict[str, int]:
    return {
        "base_ang_vel": 3,
        "projected_gravity": 3,
        "velocity_command": 3,
        "joint_pos_rel": n_joints,
        "joint_vel": n_joints,
        "last_action": n_joints,
    }


@dataclass(frozen=True)
class PolicyContract:
    """Everything a policy and its runtime must agree on. Immutable; compare with :meth:`mismatches`."""

    robot_name: str
    robot_config_hash: str
    joint_names: tuple[str, ...]
    terms: tuple[ObservationTerm, ...]
    action_scale: float
    action_clip: float
    default_pose: tuple[float, ...]
    kp: tuple[float, ...]
    kd: tuple[float, ...]
    policy_rate_hz: float
    version: int = CONTRACT_VERSION
    # Derived; kept out of equality and serialisation.
    _default_pose_array: np.ndarray = field(init=False, repr=False, compare=False)
    _scale_array: np.ndarray = field(init=False, repr=False, compare=False)
    _obs_buffer: np.ndarray = field(init=False, repr=False, compare=False)
    _term_plan: tuple[tuple[str, slice], ...] = field(init=False, repr=False, compare=False)
    _input_shapes: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        problems: list[str] = []
        if len(set(self.joint_names)) != n:
            problems.append("joint_names has duplicates")
        for name, values in (("default_pose", self.default_pose), ("kp", self.kp), ("kd", self.kd)):
            if len(values) != n:
                problems.append(f"{name} has {len(values)} values for {n} joints")
        expected_sizes = _term_sizes_for(n)
        for term in self.terms:
            if term.name not in TERM_SOURCES:
                problems.append(f"unknown observation term {term.name!r} (known: {', '.join(TERM_SOURCES)})")
            elif term.size != expected_sizes[term.name]:
                problems.append(
                    f"observation term {term.name!r} has size {term.size}, "
                    f"expected {expected_sizes[term.name]} for {n} joints"
                )
        if not (self.action_scale > 0 and self.action_clip > 0):
            problems.append("action_scale and action_clip must be positive")
        if not self.policy_rate_hz > 0:
            problems.append("policy_rate_hz must be positive")
        if problems:
            raise ContractError("invalid policy contract: " + "; ".join(problems))
        object.__setattr__(self, "_default_pose_array", np.asarray(self.default_pose, dtype=np.float64))
        object.__setattr__(
            self, "_scale_array", np.concatenate([np.asarray(t.scale, dtype=np.float64) for t in self.terms])
        )
        # Hot-path plan for build_observation: where each term goes, the expected input shapes, one buffer.
        slices = self.term_slices()
        object.__setattr__(self, "_term_plan", tuple((t.name, slices[t.name]) for t in self.terms))
        object.__setattr__(self, "_input_shapes", ((3,), (4,), (n,), (n,), (3,), (n,)))
        object.__setattr__(self, "_obs_buffer", np.empty(self.n_obs))

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
        )

    @property
    def n_actions(self) -> int:
        return len(self.joint_names)

    @property
    def n_obs(self) -> int:
        return sum(t.size for t in self.terms)

    @property
    def observation_scale(self) -> np.ndarray:
        """Per-element scale of the observation vector (read-only copy)."""
        return self._scale_array.copy()

    def term_slices(self) -> dict[str, slice]:
        """Where each term sits in the observation vector."""
        slices: dict[str, slice] = {}
        start = 0
        for term in self.terms:
            slices[term.name] = slice(start, start + term.size)
            start += term.size
        return slices

    # ------------------------------------------------------------------ observation and action
    def build_observation(self, state: RobotState, command: np.ndarray, last_action: np.ndarray) -> np.ndarray:
        """The float32 observation vector, in the contract's term order, scaled.

        Raises ObservationError on a wrong shape or any non-finite value: a policy must never see NaN.
        This runs every control tick (up to 1 kHz): one buffer, one finiteness check over the result, and the
        detailed diagnosis only when something is wrong.
        """
        inputs = (state.base_ang_vel, state.base_quat, state.joint_pos, state.joint_vel, command, last_action)
        if tuple(np.shape(x) for x in inputs) != self._input_shapes:
            raise ObservationError(self._describe_bad_inputs(inputs))
        out = self._obs_buffer
        try:
            for name, where in self._term_plan:
                out[where] = TERM_SOURCES[name](state, command, last_action, self._default_pose_array)
        except ValueError as exc:  # e.g. a zero-length orientation quaternion
            raise ObservationError(f"cannot build an observation: {exc}") from exc
        out *= self._scale_array
        if not np.isfinite(out).all():
            raise ObservationError(self._describe_bad_inputs(inputs))
        return out.astype(np.float32)

    def _describe_bad_inputs(self, inputs: tuple[Any, ...]) -> str:
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
            return "; ".join(wrong) + " (joint arrays in policy order)"
        bad = [label for label, x in zip(labels, inputs, strict=True) if not np.all(np.isfinite(x))]
        return f"non-finite values in {bad}: refusing to build an observation"

    def clip_action(self, action: np.ndarray) -> np.ndarray:
        """The action as the policy's joint targets use it (and as ``last_action`` in the next observation)."""
        return np.clip(np.asarray(action, dtype=np.float64), -self.action_clip, self.action_clip)

    def action_to_joint_targets(self, action: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """Joint position targets (policy order): default pose + scale × clipped action, within [lower, upper]."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.n_actions,):
            raise ObservationError(f"action has shape {action.shape}, expected ({self.n_actions},)")
        if not np.all(np.isfinite(action)):
            raise ObservationError("non-finite action from the policy: refusing to map it to joint targets")
        return np.clip(self._default_pose_array + self.action_scale * self.clip_action(action), lower, upper)

    # ------------------------------------------------------------------ description and comparison
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "robot_name": self.robot_name,
            "robot_config_hash": self.robot_config_hash,
            "joint_names": list(self.joint_names),
            "observation": [{"name": t.name, "size": t.size, "scale": list(t.scale)} for t in self.terms],
            "n_obs": self.n_obs,
            "n_actions": self.n_actions,
            "action_scale": self.action_scale,
            "action_clip": self.action_clip,
            "default_pose": list(self.default_pose),
            "kp": list(self.kp),
            "kd": list(self.kd),
            "policy_rate_hz": self.policy_rate_hz,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyContract:
        required = (
            "version",
            "robot_name",
            "robot_config_hash",
            "joint_names",
            "observation",
            "action_scale",
            "action_clip",
            "default_pose",
            "kp",
            "kd",
            "policy_rate_hz",
        )
        missing = [k for k in required if k not in data]
        if missing:
            raise ContractError(f"contract description lacks {missing}; was the model exported by humanoid-rl export?")
        if int(data["version"]) != CONTRACT_VERSION:
            raise ContractError(
                f"contract version {data['version']} is not supported by this runtime (version {CONTRACT_VERSION}): "
                "re-export the model with this version of humanoid_rl"
            )
        try:
            terms = tuple(
                ObservationTerm(str(t["name"]), int(t["size"]), tuple(float(s) for s in t["scale"]))
                for t in data["observation"]
            )
        except (KeyError, TypeError) as exc:
            raise ContractError(f"malformed observation term in contract: {exc}") from exc
        return cls(
            robot_name=str(data["robot_name"]),
            robot_config_hash=str(data["robot_config_hash"]),
            joint_names=tuple(str(n) for n in data["joint_names"]),
            terms=terms,
            action_scale=float(data["action_scale"]),
            action_clip=float(data["action_clip"]),
            default_pose=tuple(float(x) for x in data["default_pose"]),
            kp=tuple(float(x) for x in data["kp"]),
            kd=tuple(float(x) for x in data["kd"]),
            policy_rate_hz=float(data["policy_rate_hz"]),
            version=int(data["version"]),
        )

    @classmethod
    def from_json(cls, text: str) -> PolicyContract:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(f"contract metadata is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def mismatches(self, other: PolicyContract, *, self_label: str = "model", other_label: str = "robot") -> list[str]:
        """Every difference that makes a policy built for ``self`` unsafe to run against ``other``.

        The config hash is not compared here (an edited comment changes it); see :meth:`hash_differs`.
        """
        out: list[str] = []
        a, b = self_label, other_label
        if self.robot_name != other.robot_name:
            out.append(f"robot name: {a} was built for {self.robot_name!r}, {b} is {other.robot_name!r}")
        out += _joint_order_mismatches(self.joint_names, other.joint_names, a, b)
        mine = [(t.name, t.size) for t in self.terms]
        theirs = [(t.name, t.size) for t in other.terms]
        if mine != theirs:
            out.append(f"observation terms: {a} has {mine}, {b} has {theirs}")
        else:
            for t1, t2 in zip(self.terms, other.terms, strict=True):
                if not np.allclose(t1.scale, t2.scale, rtol=0, atol=FLOAT_TOLERANCE):
                    out.append(f"observation scale of {t1.name!r}: {a} {list(t1.scale)}, {b} {list(t2.scale)}")
        for name in ("action_scale", "action_clip", "policy_rate_hz"):
            x, y = getattr(self, name), getattr(other, name)
            if abs(x - y) > FLOAT_TOLERANCE:
                out.append(f"{name}: {a} {x}, {b} {y}")
        if self.joint_names == other.joint_names:
            for name in ("default_pose", "kp", "kd"):
                x, y = np.asarray(getattr(self, name)), np.asarray(getattr(other, name))
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
