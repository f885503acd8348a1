"""Fitted physical parameters of one robot (what ``humanoid-rl sysid`` writes), and the file that carries them.

The URDF and robot YAML give nominal values; a real robot differs. ``SimParams`` holds the difference per joint
group, as scales on the nominal values (and absolute values where there is no nominal: Coulomb friction,
latency). ``HumanoidSim`` applies it through ``SimConfig.params`` underneath domain randomization, so the
multiplicative randomization ranges (mass, strength, kp, kd) are centred on the fitted values; ``recentred``
moves the absolute ones (foot friction, latency) there too. YAML layout (``save``/``load``)::

    sim_params:                # what the simulator applies
      kp_scale: {legs: 1.18}   # per group; a group not named keeps 1.0 (0.0 for friction)
      kd_scale: {legs: 0.82}
      joint_friction_nm: {legs: 0.6}
      mass_scale: {legs: 1.0}
      control_latency_s: 0.008
      foot_friction: 1.0
    groups: {legs: [left_hip_yaw_joint, ...], ...}   # for the reader; recomputed from joint names on load
    fit: {...}                                       # how it was fitted (free-form, for the record)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from humanoid_rl.core.robot_spec import RobotSpec

__all__ = ["GROUP_KEYWORDS", "SimParams", "joint_groups", "load_sim_params", "recentred", "save_sim_params"]

# A joint belongs to the first group one of whose keywords its name contains; others are in "other".
GROUP_KEYWORDS: dict[str, tuple[str, ...]] = {
    "legs": ("hip", "knee", "ankle"),
    "arms": ("shoulder", "elbow", "wrist"),
    "torso": ("torso", "waist"),
}
_SCALES = ("kp_scale", "kd_scale", "mass_scale")
_GROUPED = (*_SCALES, "joint_friction_nm")


def joint_groups(joint_names: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """Group name → joint indices (policy order) of that group; groups without joints are left out."""
    groups: dict[str, list[int]] = {}
    for index, name in enumerate(joint_names):
        group = next((g for g, words in GROUP_KEYWORDS.items() if any(w in name for w in words)), "other")
        groups.setdefault(group, []).append(index)
    return {group: tuple(indices) for group, indices in groups.items()}


@dataclass(frozen=True)
class SimParams:
    """Per-group scales and friction, latency and foot friction. The default changes nothing."""

    kp_scale: Mapping[str, float] = field(default_factory=dict)  # joint PD stiffness (and motor strength)
    kd_scale: Mapping[str, float] = field(default_factory=dict)  # joint PD damping (the joint's viscous damping)
    joint_friction_nm: Mapping[str, float] = field(default_factory=dict)  # Coulomb friction torque, N*m
    mass_scale: Mapping[str, float] = field(default_factory=dict)  # mass and inertia of the group's child links
    control_latency_s: float | None = None  # None: SimConfig.control_latency_s
    foot_friction: float | None = None  # None: SimConfig.foot_friction

    def __post_init__(self) -> None:
        for name in _GROUPED:
            for group, value in getattr(self, name).items():
                positive = name != "joint_friction_nm"
                if not (math.isfinite(value) and (value > 0.0 if positive else value >= 0.0)):
                    bound = "> 0" if positive else ">= 0"
                    raise ValueError(f"sim params {name}[{group!r}] = {value!r}: use a finite value {bound}")
        for name in ("control_latency_s", "foot_friction"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"sim params {name} = {value!r}: use a finite value >= 0")

    def per_joint(self, name: str, joint_names: tuple[str, ...]) -> np.ndarray:
        """One of the grouped items as a vector in policy order (1.0, or 0.0 for friction, where unset)."""
        values = getattr(self, name)
        out = np.full(len(joint_names), 0.0 if name == "joint_friction_nm" else 1.0)
        groups = joint_groups(joint_names)
        unknown = sorted(set(values) - set(groups))
        if unknown:
            raise ValueError(f"sim params {name} names groups {unknown}; this robot's groups: {list(groups)}")
        for group, value in values.items():
            out[list(groups[group])] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: {g: float(v) for g, v in getattr(self, name).items()} for name in _GROUPED}
        out["control_latency_s"] = self.control_latency_s
        out["foot_friction"] = self.foot_friction
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "sim params") -> SimParams:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; known: {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for name in _GROUPED:
            value = data.get(name) or {}
            if not isinstance(value, Mapping):
                raise ValueError(f"{source}: {name} must map group names to numbers, got {value!r}")
            kwargs[name] = {str(g): float(v) for g, v in value.items()}
        for name in ("control_latency_s", "foot_friction"):
            value = data.get(name)
            kwargs[name] = None if value is None else float(value)
        return cls(**kwargs)

    def with_values(self, values: Mapping[str, float]) -> SimParams:
        """A copy with items set from flat names: ``"kp_scale.legs"``, ``"control_latency_s"``..."""
        changes: dict[str, Any] = {}
        for key, value in values.items():
            name, _, group = key.partition(".")
            if group:
                changes.setdefault(name, dict(getattr(self, name)))[group] = float(value)
            else:
                changes[name] = float(value)
        return dataclasses.replace(self, **changes)

    def value(self, key: str) -> float | None:
        """The flat-named item (see ``with_values``), None where unset."""
        name, _, group = key.partition(".")
        item = getattr(self, name)
        return item.get(group) if group else item


def save_sim_params(path: Path, params: SimParams, spec: RobotSpec, extra: Mapping[str, Any] | None = None) -> None:
    groups = {g: [spec.joint_names[i] for i in idx] for g, idx in joint_groups(spec.joint_names).items()}
    document = {"robot": spec.name, "sim_params": params.to_dict(), "groups": groups, **(extra or {})}
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def load_sim_params(path: str | Path) -> SimParams:
    """Read the ``sim_params`` section of a fitted YAML; FileNotFoundError/ValueError name the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sim params file {path} does not exist (write one with `humanoid-rl sysid`)")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(document, Mapping) or not isinstance(document.get("sim_params"), Mapping):
        raise ValueError(f"{path}: no 'sim_params' mapping; expected a file written by `humanoid-rl sysid`")
    return SimParams.from_dict(document["sim_params"], source=str(path))


def recentred(low_high: tuple[float, float] | None, centre: float | None) -> tuple[float, float] | None:
    """An absolute randomization range moved (same width) to be centred on a fitted value, kept >= 0."""
    if low_high is None or centre is None:
        return low_high
    half = 0.5 * (low_high[1] - low_high[0])
    return (max(0.0, centre - half), centre + half)
