"""The robot as the policy sees it: joint order, limits, gains, default pose, special links and loop rates.

``RobotSpec.load`` reads a robot YAML (``config/robots/<robot>.yaml``) and the URDF it points at, checks them
against each other, and returns an immutable spec whose per-joint arrays are all in **policy order** (the YAML
``joints`` list). Only numpy, PyYAML and xml.etree are needed, so the robot computer can load specs without
pinocchio. Every problem raises ``RobotConfigError`` naming the file, the key and the fix.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from humanoid_rl.core.soles import Sole, SoleError, robot_soles

__all__ = ["JointSpec", "RobotConfigError", "RobotSpec", "Sole", "UrdfJoint", "parse_urdf", "read_urdf_text"]

DEFAULT_PHYSICS_RATE_HZ = 1000.0
DEFAULT_POLICY_RATE_HZ = 50.0

# Joint types the policy can command; fixed joints are not actuated.
ACTUATED_JOINT_TYPES = ("revolute", "prismatic", "continuous")
# Multi-DoF joints: the stack drives 1-DoF joints, and the base is its only free body.
REFUSED_JOINT_TYPES = ("floating", "planar", "spherical", "ball")

REQUIRED_KEYS = (
    "name",
    "urdf",
    "base_link",
    "imu_link",
    "foot_links",
    "nominal_base_height",
    "joints",
)
# foot_size: the old form of soles (both soles that size, centred under the foot frame); one of the two at most.
OPTIONAL_KEYS = ("rates", "passive_joints", "soles", "foot_size", "package_dirs", "base_orientation_rpy")
JOINT_KEYS = ("name", "default", "kp", "kd")
FOOT_LINK_KEYS = ("left", "right")
RATE_KEYS = ("physics_hz", "policy_hz")


class RobotConfigError(ValueError):
    """A robot YAML/URDF problem. The message names the file, the key and the fix."""

    def __init__(self, file: Path | str, key: str, problem: str, fix: str) -> None:
        self.file = str(file)
        self.key = key
        self.problem = problem
        self.fix = fix
        super().__init__(f"{file}: key '{key}': {problem}. Fix: {fix}")


@dataclass(frozen=True)
class JointSpec:
    name: str
    lower: float
    upper: float
    velocity_limit: float
    effort_limit: float
    kp: float
    kd: float
    default_position: float


@dataclass(frozen=True)
class UrdfJoint:
    """One joint as the URDF declares it (limits are None where the URDF gives none)."""

    name: str
    type: str
    parent: str
    child: str
    lower: float | None
    upper: float | None
    velocity: float | None
    effort: float | None


def _readonly(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    array.setflags(write=False)  # shared by every user of the spec: nobody may edit it in place
    return array


@dataclass(frozen=True)
class RobotSpec:
    name: str
    urdf_path: Path
    config_path: Path
    joints: tuple[JointSpec, ...]  # policy order
    base_link: str
    imu_link: str
    foot_links: tuple[str, str]  # (left, right)
    soles: tuple[Sole, Sole]  # (left, right), each in its foot link's frame
    nominal_base_height: float  # base height when standing in the default pose
    physics_rate_hz: float
    policy_rate_hz: float
    config_hash: str  # sha256 over URDF bytes + YAML bytes
    passive_joints: tuple[str, ...] = ()  # URDF actuated joints the policy deliberately leaves alone
    # The base's orientation (roll, pitch, yaw about fixed x, y, z) when the robot stands upright: zero for z-up
    # models, e.g. (pi/2, 0, 0) for a model drawn y-up.
    base_orientation_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # Derived, policy order, read-only float64 arrays.
    joint_names: tuple[str, ...] = field(init=False)
    lower: np.ndarray = field(init=False, compare=False, repr=False)
    upper: np.ndarray = field(init=False, compare=False, repr=False)
    velocity_limits: np.ndarray = field(init=False, compare=False, repr=False)
    effort_limits: np.ndarray = field(init=False, compare=False, repr=False)
    kp: np.ndarray = field(init=False, compare=False, repr=False)
    kd: np.ndarray = field(init=False, compare=False, repr=False)
    default_pose: np.ndarray = field(init=False, compare=False, repr=False)
    n_joints: int = field(init=False)

    def __post_init__(self) -> None:
        derived: dict[str, Any] = {
            "joint_names": tuple(j.name for j in self.joints),
            "lower": _readonly([j.lower for j in self.joints]),
            "upper": _readonly([j.upper for j in self.joints]),
            "velocity_limits": _readonly([j.velocity_limit for j in self.joints]),
            "effort_limits": _readonly([j.effort_limit for j in self.joints]),
            "kp": _readonly([j.kp for j in self.joints]),
            "kd": _readonly([j.kd for j in self.joints]),
            "default_pose": _readonly([j.default_position for j in self.joints]),
            "n_joints": len(self.joints),
        }
        for key, value in derived.items():
            object.__setattr__(self, key, value)

    @property
    def foot_size(self) -> tuple[float, float]:
        """The left sole's (length, width): both soles' on a symmetric robot. Per foot: ``soles``."""
        return self.soles[0].size

    @property
    def sole_sizes(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(left, right) sole (length, width), as the shield's ``BalanceState.foot_size`` takes them."""
        return self.soles[0].size, self.soles[1].size

    @property
    def decimation(self) -> int:
        """Physics steps per policy step."""
        return int(round(self.physics_rate_hz / self.policy_rate_hz))

    def joint_index(self, name: str) -> int:
        """Policy-order index of a joint, with a clear error for unknown names."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            close = difflib.get_close_matches(name, self.joint_names, n=3)
            raise KeyError(f"joint {name!r} is not in robot {self.name!r}; closest: {close}") from None

    @classmethod
    def load(cls, config: str | Path | None = None) -> RobotSpec:
        """Load and check a robot YAML and its URDF. ``None`` loads the shipped ``humanoid.yaml``."""
        if config is None:
            from humanoid_rl.paths import default_robot_config

            config = default_robot_config()
        return _load(Path(config))


# ---------------------------------------------------------------------------------------------- URDF


def read_urdf_text(urdf_path: Path) -> bytes:
    """The URDF's bytes without the leading blanks and trailing NULs and blanks some exporters leave (PyBullet
    and pinocchio ignore them; Python's XML parser refuses a declaration after a blank)."""
    return urdf_path.read_bytes().strip(b"\x00 \t\r\n")


def urdf_root_element(urdf_path: Path) -> ET.Element:
    """The URDF's <robot> element. Raises RobotConfigError on bad XML."""
    try:
        root = ET.fromstring(read_urdf_text(urdf_path))
    except ET.ParseError as exc:
        raise RobotConfigError(
            urdf_path, "<robot>", f"the URDF is not valid XML ({exc})", "repair the XML"
        ) from exc
    if root.tag != "robot":
        raise RobotConfigError(
            urdf_path, "<robot>", f"root element is <{root.tag}>", "a URDF's root is <robot>"
        )
    return root


def parse_urdf(urdf_path: Path) -> tuple[str, list[str], dict[str, UrdfJoint]]:
    """Root link, all link names (document order) and joints by name. Raises RobotConfigError on bad XML and on
    multi-DoF (floating, planar, spherical) joints."""
    root = urdf_root_element(urdf_path)
    links = [link.get("name", "") for link in root.findall("link")]
    joints: dict[str, UrdfJoint] = {}
    children: set[str] = set()
    for element in root.findall("joint"):
        name = element.get("name", "")
        parent = element.find("parent")
        child = element.find("child")
        limit = element.find("limit")

        def limit_value(attribute: str, limit: ET.Element | None = limit) -> float | None:
            if limit is None or limit.get(attribute) is None:
                return None
            return float(limit.get(attribute, "nan"))

        joint = UrdfJoint(
            name=name,
            type=element.get("type", ""),
            parent=parent.get("link", "") if parent is not None else "",
            child=child.get("link", "") if child is not None else "",
            lower=limit_value("lower"),
            upper=limit_value("upper"),
            velocity=limit_value("velocity"),
            effort=limit_value("effort"),
        )
        if joint.type in REFUSED_JOINT_TYPES:
            raise RobotConfigError(
                urdf_path,
                f"joint {name}",
                f"a {joint.type} joint: the stack drives 1-DoF joints only and the base is its only free body",
                "replace it with revolute joints (one per axis) or a fixed joint"
                + (
                    f"; a floating joint from a world link: remove link {joint.parent!r} and this joint, the "
                    "root link is the floating base"
                    if joint.type == "floating"
                    else ""
                ),
            )
        joints[name] = joint
        children.add(joint.child)
    roots = [link for link in links if link not in children]
    if len(roots) != 1:
        raise RobotConfigError(
            urdf_path,
            "<link>",
            f"expected exactly one root link, found {roots}",
            "connect every link into one tree",
        )
    return roots[0], links, joints


# ---------------------------------------------------------------------------------------------- YAML


def _closest(word: str, candidates: list[str] | tuple[str, ...], n: int = 3) -> list[str]:
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.5)


def _check_keys(
    file: Path, where: str, mapping: dict, required: tuple[str, ...], optional: tuple[str, ...]
) -> None:
    known = required + optional
    for key in mapping:
        if key not in known:
            close = _closest(str(key), known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
            raise RobotConfigError(file, f"{where}{key}", "unknown key", f"remove it or rename it ({hint})")
    for key in required:
        if key not in mapping:
            raise RobotConfigError(
                file, f"{where}{key}", "required key is missing", f"add '{key}:' to the file"
            )


def _number(file: Path, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RobotConfigError(file, key, f"expected a number, got {value!r}", "write a plain number")
    return float(value)


def _positive(file: Path, key: str, value: Any) -> float:
    number = _number(file, key, value)
    if not number > 0.0 or not math.isfinite(number):
        raise RobotConfigError(
            file, key, f"must be a positive finite number, got {value!r}", "use a value > 0"
        )
    return number


def _string(file: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise RobotConfigError(file, key, f"expected a non-empty string, got {value!r}", "write a name")
    return value


def _package_path(config_path: Path, value: str, package_dirs: list[Path]) -> Path:
    """``package://NAME/REST``: REST under NAME in ``package_dirs`` (a folder holding NAME, or NAME itself),
    then under ``share/NAME`` of each AMENT_PREFIX_PATH prefix, as ROS resolves it."""
    package, _, rest = value[len("package://") :].partition("/")
    candidates = [d / package / rest for d in package_dirs] + [d / rest for d in package_dirs if d.name == package]
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    candidates += [Path(p) / "share" / package / rest for p in prefixes]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise RobotConfigError(
        config_path,
        "urdf",
        f"{value!r}: no file {rest!r} in package {package!r} (searched {', '.join(map(str, candidates)) or 'nothing'})",
        "list the folder holding the package under 'package_dirs:' (relative to this file), or source the "
        "workspace that installs it (AMENT_PREFIX_PATH)",
    )


def _resolve_urdf(config_path: Path, value: str, package_dirs: list[Path]) -> Path:
    if value.startswith("package://"):
        path = _package_path(config_path, value, package_dirs)
    elif value.startswith("file://"):
        path = Path(value[len("file://") :])
    elif "://" in value:
        raise RobotConfigError(
            config_path,
            "urdf",
            f"URIs such as {value!r} are not supported",
            "give a path (relative to this YAML file's directory or absolute), file:// or package://NAME/...",
        )
    else:
        path = Path(value)
    if not path.is_absolute():
        path = config_path.parent / path
    path = path.resolve()
    if not path.is_file():
        raise RobotConfigError(
            config_path,
            "urdf",
            f"URDF file {path} does not exist",
            "point 'urdf' at an existing file, relative to this YAML file's directory",
        )
    return path


def _package_dirs(file: Path, value: Any) -> list[Path]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RobotConfigError(file, "package_dirs", f"expected a list of folders, got {value!r}", "write [path, ...]")
    return [(file.parent / v).resolve() for v in value]


def _soles(
    file: Path,
    data: dict,
    root: ET.Element,
    foot_links: tuple[str, str],
    urdf_path: Path,
    base_rpy: tuple[float, float, float],
) -> tuple[Sole, Sole]:
    """Per foot: the YAML's ``soles`` entry, else ``foot_size`` centred under the foot, else the URDF's footprint."""
    if "soles" in data and "foot_size" in data:
        raise RobotConfigError(
            file, "foot_size", "both 'foot_size' and 'soles' are given", "keep 'soles' and remove 'foot_size'"
        )
    foot_size = None
    if "foot_size" in data:
        size = data["foot_size"]
        if not isinstance(size, list) or len(size) != 2:
            raise RobotConfigError(file, "foot_size", f"expected [length, width], got {size!r}", "write two numbers")
        foot_size = (_positive(file, "foot_size[0]", size[0]), _positive(file, "foot_size[1]", size[1]))
    given = data.get("soles", {}) or {}
    if not isinstance(given, dict):
        raise RobotConfigError(
            file, "soles", "expected a mapping", "write soles: {left: {size: [l, w], offset: [x, y, z]}, right: ...}"
        )
    _check_keys(file, "soles.", given, (), FOOT_LINK_KEYS)
    try:
        return robot_soles(given, foot_size, root, foot_links, base_rpy)
    except SoleError as error:
        raise RobotConfigError(urdf_path if error.in_urdf else file, error.key, error.problem, error.fix) from None


def _rpy(file: Path, value: Any) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise RobotConfigError(
            file, "base_orientation_rpy", f"expected [roll, pitch, yaw] in rad, got {value!r}", "write three numbers"
        )
    return (
        _number(file, "base_orientation_rpy[0]", value[0]),
        _number(file, "base_orientation_rpy[1]", value[1]),
        _number(file, "base_orientation_rpy[2]", value[2]),
    )


def _check_link(file: Path, key: str, link: str, urdf_path: Path, links: list[str]) -> None:
    if link not in links:
        close = _closest(link, links)
        raise RobotConfigError(
            file,
            key,
            f"link {link!r} is not in the URDF {urdf_path}",
            f"use one of the URDF's links (closest: {', '.join(close) if close else 'none'})",
        )


def _load(config_path: Path) -> RobotSpec:
    config_path = config_path.resolve()
    if not config_path.is_file():
        raise RobotConfigError(
            config_path,
            "<file>",
            "robot config file does not exist",
            "pass the path of an existing robot YAML (e.g. config/robots/humanoid.yaml)",
        )
    yaml_bytes = config_path.read_bytes()
    try:
        data = yaml.safe_load(yaml_bytes)
    except yaml.YAMLError as exc:
        raise RobotConfigError(
            config_path, "<file>", f"not valid YAML ({exc})", "repair the YAML syntax"
        ) from exc
    if not isinstance(data, dict):
        raise RobotConfigError(
            config_path, "<file>", "the file is not a YAML mapping", "write 'key: value' pairs"
        )
    file = config_path
    _check_keys(file, "", data, REQUIRED_KEYS, OPTIONAL_KEYS)

    name = _string(file, "name", data["name"])
    urdf_value = _string(file, "urdf", data["urdf"])
    package_dirs = _package_dirs(file, data["package_dirs"]) if "package_dirs" in data else []
    urdf_path = _resolve_urdf(config_path, urdf_value, package_dirs)
    urdf_bytes = urdf_path.read_bytes()
    root_link, links, urdf_joints = parse_urdf(urdf_path)

    base_link = _string(file, "base_link", data["base_link"])
    _check_link(file, "base_link", base_link, urdf_path, links)
    if base_link != root_link:
        raise RobotConfigError(
            file,
            "base_link",
            f"{base_link!r} is not the URDF's root link ({root_link!r})",
            "the floating base must be the URDF root: set base_link to the root link",
        )
    imu_link = _string(file, "imu_link", data["imu_link"])
    _check_link(file, "imu_link", imu_link, urdf_path, links)

    feet = data["foot_links"]
    if not isinstance(feet, dict):
        raise RobotConfigError(
            file, "foot_links", "expected a mapping", "write foot_links: {left: ..., right: ...}"
        )
    _check_keys(file, "foot_links.", feet, FOOT_LINK_KEYS, ())
    foot_links = (
        _string(file, "foot_links.left", feet["left"]),
        _string(file, "foot_links.right", feet["right"]),
    )
    for side, link in zip(FOOT_LINK_KEYS, foot_links, strict=True):
        _check_link(file, f"foot_links.{side}", link, urdf_path, links)

    base_orientation_rpy = (
        _rpy(file, data["base_orientation_rpy"]) if "base_orientation_rpy" in data else (0.0, 0.0, 0.0)
    )
    soles = _soles(file, data, urdf_root_element(urdf_path), foot_links, urdf_path, base_orientation_rpy)
    nominal_base_height = _positive(file, "nominal_base_height", data["nominal_base_height"])

    rates = data.get("rates", {}) or {}
    if not isinstance(rates, dict):
        raise RobotConfigError(
            file, "rates", "expected a mapping", "write rates: {physics_hz: 1000, policy_hz: 50}"
        )
    _check_keys(file, "rates.", rates, (), RATE_KEYS)
    physics_rate_hz = _positive(file, "rates.physics_hz", rates.get("physics_hz", DEFAULT_PHYSICS_RATE_HZ))
    policy_rate_hz = _positive(file, "rates.policy_hz", rates.get("policy_hz", DEFAULT_POLICY_RATE_HZ))
    ratio = physics_rate_hz / policy_rate_hz
    if ratio < 1.0 - 1e-9 or abs(ratio - round(ratio)) > 1e-9:
        raise RobotConfigError(
            file,
            "rates.physics_hz",
            f"physics rate {physics_rate_hz:g} Hz is not an integer multiple of "
            f"policy rate {policy_rate_hz:g} Hz",
            "choose rates such that physics_hz / policy_hz is a whole number (e.g. 1000 and 50)",
        )

    actuated = [j.name for j in urdf_joints.values() if j.type in ACTUATED_JOINT_TYPES]
    passive = data.get("passive_joints", []) or []
    if not isinstance(passive, list) or not all(isinstance(p, str) for p in passive):
        raise RobotConfigError(file, "passive_joints", "expected a list of joint names", "write [name, ...]")
    for index, joint_name in enumerate(passive):
        if joint_name not in actuated:
            close = _closest(joint_name, actuated)
            raise RobotConfigError(
                file,
                f"passive_joints[{index}]",
                f"{joint_name!r} is not an actuated joint of the URDF {urdf_path}",
                f"use one of the URDF's joint names (closest: {', '.join(close) if close else 'none'})",
            )

    joints = _load_joints(file, data["joints"], urdf_path, urdf_joints, actuated, passive)

    return RobotSpec(
        name=name,
        urdf_path=urdf_path,
        config_path=config_path,
        joints=joints,
        base_link=base_link,
        imu_link=imu_link,
        foot_links=foot_links,
        soles=soles,
        nominal_base_height=nominal_base_height,
        physics_rate_hz=physics_rate_hz,
        policy_rate_hz=policy_rate_hz,
        config_hash=hashlib.sha256(urdf_bytes + yaml_bytes).hexdigest(),
        passive_joints=tuple(passive),
        base_orientation_rpy=base_orientation_rpy,
    )


def _load_joints(
    file: Path,
    entries: Any,
    urdf_path: Path,
    urdf_joints: dict[str, UrdfJoint],
    actuated: list[str],
    passive: list[str],
) -> tuple[JointSpec, ...]:
    if not isinstance(entries, list) or not entries:
        raise RobotConfigError(
            file,
            "joints",
            "expected a non-empty list",
            "list every actuated joint: - {name: ..., default: ..., kp: ..., kd: ...}",
        )
    specs: list[JointSpec] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"joints[{index}]"
        if not isinstance(entry, dict):
            raise RobotConfigError(
                file, where, f"expected a mapping, got {entry!r}", "write {name:, default:, kp:, kd:}"
            )
        _check_keys(file, f"{where}.", entry, JOINT_KEYS, ())
        joint_name = _string(file, f"{where}.name", entry["name"])
        if joint_name in seen:
            raise RobotConfigError(
                file,
                f"{where}.name",
                f"joint {joint_name!r} is listed twice (also at joints[{seen[joint_name]}])",
                "list each joint once",
            )
        seen[joint_name] = index
        if joint_name in passive:
            raise RobotConfigError(
                file,
                f"{where}.name",
                f"joint {joint_name!r} is both commanded and listed in passive_joints",
                "remove it from one of the two lists",
            )
        urdf_joint = urdf_joints.get(joint_name)
        if urdf_joint is None or urdf_joint.type not in ACTUATED_JOINT_TYPES:
            close = _closest(joint_name, actuated)
            problem = (
                f"joint {joint_name!r} is not in the URDF {urdf_path}"
                if urdf_joint is None
                else f"joint {joint_name!r} is a {urdf_joint.type} joint in the URDF {urdf_path}, "
                "not an actuated one"
            )
            raise RobotConfigError(
                file,
                f"{where}.name",
                problem,
                f"use one of the URDF's actuated joints (closest: {', '.join(close) if close else 'none'})",
            )
        missing = [
            attribute
            for attribute, value in (
                ("lower", urdf_joint.lower),
                ("upper", urdf_joint.upper),
                ("velocity", urdf_joint.velocity),
                ("effort", urdf_joint.effort),
            )
            if value is None or not math.isfinite(value)
        ]
        if missing:
            raise RobotConfigError(
                urdf_path,
                f"joint {joint_name} <limit>",
                f"missing or non-finite limit attributes {missing}",
                "give the joint <limit lower=.. upper=.. velocity=.. effort=..> "
                "(continuous joints are not supported)",
            )
        assert urdf_joint.lower is not None and urdf_joint.upper is not None
        assert urdf_joint.velocity is not None and urdf_joint.effort is not None
        if not urdf_joint.lower < urdf_joint.upper or urdf_joint.velocity <= 0 or urdf_joint.effort <= 0:
            raise RobotConfigError(
                urdf_path,
                f"joint {joint_name} <limit>",
                f"limits are inconsistent (lower={urdf_joint.lower}, upper={urdf_joint.upper}, "
                f"velocity={urdf_joint.velocity}, effort={urdf_joint.effort})",
                "use lower < upper and positive velocity and effort",
            )
        default = _number(file, f"{where}.default", entry["default"])
        if not urdf_joint.lower <= default <= urdf_joint.upper:
            raise RobotConfigError(
                file,
                f"{where}.default",
                f"default position {default:g} of {joint_name} is outside the URDF limits "
                f"[{urdf_joint.lower:g}, {urdf_joint.upper:g}]",
                "choose a default pose inside the joint limits",
            )
        kp = _positive(file, f"{where}.kp", entry["kp"])
        kd = _positive(file, f"{where}.kd", entry["kd"])
        specs.append(
            JointSpec(
                name=joint_name,
                lower=urdf_joint.lower,
                upper=urdf_joint.upper,
                velocity_limit=urdf_joint.velocity,
                effort_limit=urdf_joint.effort,
                kp=kp,
                kd=kd,
                default_position=default,
            )
        )
    uncommanded = [name for name in actuated if name not in seen and name not in passive]
    if uncommanded:
        raise RobotConfigError(
            file,
            "joints",
            f"URDF {urdf_path} has actuated joints the YAML does not list: {', '.join(uncommanded)}",
            "add them to 'joints' (the policy must command every actuated joint) "
            "or list them under 'passive_joints'",
        )
    return tuple(specs)
