#!/usr/bin/env python3
"""Generate ``urdf/humanoid.urdf``: a 21-joint electric humanoid built from primitive shapes; with
``--legs-only``, ``urdf/biped12.urdf`` + ``config/robots/biped12.yaml``: a 12-joint pair of legs under a
pelvis with a battery, whose soles are longer, narrower and centred 3 cm ahead of the ankle.

Every link is a small set of boxes, cylinders (axis along the link's z) and spheres, each with its own mass.
The link's inertial block (mass, centre of mass, inertia tensor about the centre of mass) is computed from
those shapes, so masses and inertias are physically consistent, and the same shapes are written as the
link's visual and collision geometry.

Frames: x forward, y left, z up with every joint at zero (legs straight down, arms hanging). Pitch joints turn
about y, roll about x, yaw about z. Knee flexion is positive (the shank swings backwards), hip flexion is
negative (the thigh swings forwards), elbow flexion is negative (the forearm swings forwards).

The foot link's frame is at the ankle; the sole (a flat box face) is ``ANKLE_HEIGHT`` below it, centred
straight under the ankle, so a foot frame's x/y is the centre of the support rectangle when the foot is flat.

Usage: ``python tools/generate_humanoid_urdf.py [--legs-only] [--output PATH] [--check]``.
The committed ``urdf/humanoid.urdf`` (and the legs-only URDF and YAML) must equal this script's output
(tests check them).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Vec3 = tuple[float, float, float]

ROBOT_NAME = "humanoid"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "urdf" / "humanoid.urdf"
LEGS_ONLY_NAME = "biped12"
LEGS_ONLY_OUTPUT = REPO / "urdf" / f"{LEGS_ONLY_NAME}.urdf"
LEGS_ONLY_CONFIG = REPO / "config" / "robots" / f"{LEGS_ONLY_NAME}.yaml"

# Leg geometry (metres).
HIP_HALF_SPACING = 0.09  # lateral offset of each hip from the pelvis centre
HIP_YAW_DROP = 0.06  # pelvis centre -> hip yaw joint
HIP_ROLL_DROP = 0.06  # hip yaw joint -> hip roll/pitch joints (roll and pitch axes intersect)
THIGH_LENGTH = 0.32
SHANK_LENGTH = 0.32
ANKLE_HEIGHT = 0.06  # ankle joint -> sole
FOOT_LENGTH = 0.22
FOOT_WIDTH = 0.10
FOOT_THICKNESS = 0.04


@dataclass(frozen=True)
class FootGeometry:
    ankle_height: float  # ankle joint -> sole
    length: float
    width: float
    thickness: float
    forward: float  # sole centre ahead of the ankle


HUMANOID_FOOT = FootGeometry(ANKLE_HEIGHT, FOOT_LENGTH, FOOT_WIDTH, FOOT_THICKNESS, 0.0)
# The legs-only robot's feet: a sole centred 3 cm ahead of the ankle (heel short, toe long), as on many robots.
LEGS_ONLY_FOOT = FootGeometry(ankle_height=0.05, length=0.24, width=0.09, thickness=0.035, forward=0.03)


@dataclass(frozen=True)
class Box:
    size: Vec3
    mass: float
    center: Vec3 = (0.0, 0.0, 0.0)
    collide: bool = True


@dataclass(frozen=True)
class Cylinder:
    """A cylinder whose axis is the link's z axis."""

    radius: float
    length: float
    mass: float
    center: Vec3 = (0.0, 0.0, 0.0)
    collide: bool = True


@dataclass(frozen=True)
class Sphere:
    radius: float
    mass: float
    center: Vec3 = (0.0, 0.0, 0.0)
    collide: bool = True


Shape = Box | Cylinder | Sphere


@dataclass(frozen=True)
class Link:
    name: str
    shapes: tuple[Shape, ...]
    material: str


@dataclass(frozen=True)
class Joint:
    name: str
    parent: str
    child: str
    origin: Vec3
    axis: Vec3 | None = None  # None: fixed joint
    lower: float = 0.0
    upper: float = 0.0
    velocity: float = 0.0
    effort: float = 0.0
    damping: float = 0.0


@dataclass(frozen=True)
class ActuatorClass:
    """One actuator size: peak torque (N·m), top speed (rad/s), viscous joint damping (N·m·s/rad)."""

    effort: float
    velocity: float
    damping: float


# Actuator sizes typical of a ~40 kg electric humanoid.
KNEE_ACTUATOR = ActuatorClass(effort=200.0, velocity=16.0, damping=0.2)
HIP_PITCH_ACTUATOR = ActuatorClass(effort=160.0, velocity=18.0, damping=0.2)
HIP_ROLL_ACTUATOR = ActuatorClass(effort=120.0, velocity=18.0, damping=0.2)
HIP_YAW_ACTUATOR = ActuatorClass(effort=80.0, velocity=20.0, damping=0.1)
ANKLE_PITCH_ACTUATOR = ActuatorClass(effort=60.0, velocity=20.0, damping=0.1)
ANKLE_ROLL_ACTUATOR = ActuatorClass(effort=40.0, velocity=20.0, damping=0.1)
TORSO_ACTUATOR = ActuatorClass(effort=80.0, velocity=15.0, damping=0.2)
SHOULDER_ACTUATOR = ActuatorClass(effort=40.0, velocity=15.0, damping=0.05)
ARM_SMALL_ACTUATOR = ActuatorClass(effort=20.0, velocity=15.0, damping=0.05)
ELBOW_ACTUATOR = ActuatorClass(effort=30.0, velocity=15.0, damping=0.05)

X_AXIS: Vec3 = (1.0, 0.0, 0.0)
Y_AXIS: Vec3 = (0.0, 1.0, 0.0)
Z_AXIS: Vec3 = (0.0, 0.0, 1.0)


def revolute(
    name: str,
    parent: str,
    child: str,
    origin: Vec3,
    axis: Vec3,
    lower: float,
    upper: float,
    act: ActuatorClass,
) -> Joint:
    return Joint(name, parent, child, origin, axis, lower, upper, act.velocity, act.effort, act.damping)


def leg(side: str, foot: FootGeometry = HUMANOID_FOOT) -> tuple[list[Link], list[Joint]]:
    sign = 1.0 if side == "left" else -1.0  # mirrors y offsets and roll ranges
    p = f"{side}_"
    links = [
        # The hip yaw motor hangs under the pelvis, stopping 2 cm above the hip roll/pitch joint so
        # that it stays clear of the thigh (PyBullet reports self-collisions between non-adjacent links).
        Link(p + "hip_yaw_link", (Cylinder(0.04, HIP_YAW_DROP - 0.02, 0.8, (0.0, 0.0, -0.02)),), "dark"),
        Link(p + "hip_roll_link", (Box((0.08, 0.07, 0.08), 1.0),), "dark"),
        Link(p + "thigh", (Cylinder(0.055, THIGH_LENGTH, 3.0, (0.0, 0.0, -THIGH_LENGTH / 2)),), "grey"),
        Link(p + "shank", (Cylinder(0.045, SHANK_LENGTH, 2.0, (0.0, 0.0, -SHANK_LENGTH / 2)),), "grey"),
        Link(p + "ankle_pitch_link", (Sphere(0.03, 0.2),), "dark"),
        Link(
            p + "foot",
            (
                Box(
                    (foot.length, foot.width, foot.thickness),
                    0.9,
                    (foot.forward, 0.0, -foot.ankle_height + foot.thickness / 2),
                ),
            ),
            "dark",
        ),
    ]
    # Roll ranges are mirrored: positive means abduction on the left leg, adduction on the right.
    roll_lower, roll_upper = (-0.3, 0.5) if side == "left" else (-0.5, 0.3)
    joints = [
        revolute(
            p + "hip_yaw_joint",
            "pelvis",
            p + "hip_yaw_link",
            (0.0, sign * HIP_HALF_SPACING, -HIP_YAW_DROP),
            Z_AXIS,
            -0.5,
            0.5,
            HIP_YAW_ACTUATOR,
        ),
        revolute(
            p + "hip_roll_joint",
            p + "hip_yaw_link",
            p + "hip_roll_link",
            (0.0, 0.0, -HIP_ROLL_DROP),
            X_AXIS,
            roll_lower,
            roll_upper,
            HIP_ROLL_ACTUATOR,
        ),
        revolute(
            p + "hip_pitch_joint",
            p + "hip_roll_link",
            p + "thigh",
            (0.0, 0.0, 0.0),
            Y_AXIS,
            -2.2,
            0.9,
            HIP_PITCH_ACTUATOR,
        ),
        revolute(
            p + "knee_joint",
            p + "thigh",
            p + "shank",
            (0.0, 0.0, -THIGH_LENGTH),
            Y_AXIS,
            0.0,
            2.3,
            KNEE_ACTUATOR,
        ),
        revolute(
            p + "ankle_pitch_joint",
            p + "shank",
            p + "ankle_pitch_link",
            (0.0, 0.0, -SHANK_LENGTH),
            Y_AXIS,
            -0.9,
            0.6,
            ANKLE_PITCH_ACTUATOR,
        ),
        revolute(
            p + "ankle_roll_joint",
            p + "ankle_pitch_link",
            p + "foot",
            (0.0, 0.0, 0.0),
            X_AXIS,
            -0.4,
            0.4,
            ANKLE_ROLL_ACTUATOR,
        ),
    ]
    return links, joints


def arm(side: str) -> tuple[list[Link], list[Joint]]:
    sign = 1.0 if side == "left" else -1.0
    p = f"{side}_"
    links = [
        Link(p + "shoulder_pitch_link", (Sphere(0.04, 0.4),), "dark"),
        Link(p + "shoulder_roll_link", (Cylinder(0.035, 0.08, 0.4, (0.0, 0.0, -0.04)),), "dark"),
        Link(p + "upper_arm", (Cylinder(0.035, 0.14, 1.0, (0.0, 0.0, -0.07)),), "grey"),
        Link(
            p + "forearm",
            (Cylinder(0.03, 0.18, 0.6, (0.0, 0.0, -0.09)), Sphere(0.035, 0.2, (0.0, 0.0, -0.2))),
            "grey",
        ),
    ]
    roll_lower, roll_upper = (-0.35, 2.8) if side == "left" else (-2.8, 0.35)
    joints = [
        revolute(
            p + "shoulder_pitch_joint",
            "torso",
            p + "shoulder_pitch_link",
            (0.0, sign * 0.17, 0.33),
            Y_AXIS,
            -2.9,
            2.9,
            SHOULDER_ACTUATOR,
        ),
        revolute(
            p + "shoulder_roll_joint",
            p + "shoulder_pitch_link",
            p + "shoulder_roll_link",
            (0.0, sign * 0.04, 0.0),
            X_AXIS,
            roll_lower,
            roll_upper,
            SHOULDER_ACTUATOR,
        ),
        revolute(
            p + "shoulder_yaw_joint",
            p + "shoulder_roll_link",
            p + "upper_arm",
            (0.0, 0.0, -0.09),
            Z_AXIS,
            -1.6,
            1.6,
            ARM_SMALL_ACTUATOR,
        ),
        revolute(
            p + "elbow_joint",
            p + "upper_arm",
            p + "forearm",
            (0.0, 0.0, -0.15),
            Y_AXIS,
            -2.4,
            0.0,
            ELBOW_ACTUATOR,
        ),
    ]
    return links, joints


def build_robot() -> tuple[list[Link], list[Joint]]:
    links = [
        Link("pelvis", (Box((0.14, 0.24, 0.12), 7.0),), "dark"),
        # The IMU board: a tiny explicit inertial so that PyBullet does not default the link to 1 kg.
        Link("imu_link", (Box((0.02, 0.02, 0.01), 0.01, collide=False),), "red"),
        Link(
            "torso",
            (Box((0.16, 0.30, 0.36), 10.0, (0.0, 0.0, 0.19)), Sphere(0.09, 2.0, (0.0, 0.0, 0.47))),
            "grey",
        ),
    ]
    joints = [
        Joint("imu_joint", "pelvis", "imu_link", (0.0, 0.0, 0.0)),
        revolute("torso_yaw_joint", "pelvis", "torso", (0.0, 0.0, 0.07), Z_AXIS, -1.5, 1.5, TORSO_ACTUATOR),
    ]
    for side in ("left", "right"):
        leg_links, leg_joints = leg(side)
        links += leg_links
        joints += leg_joints
    for side in ("left", "right"):
        arm_links, arm_joints = arm(side)
        links += arm_links
        joints += arm_joints
    return links, joints


def build_legs_only_robot() -> tuple[list[Link], list[Joint]]:
    """Pelvis (with a battery on top standing in for the upper body) and two legs: 12 actuated joints."""
    links = [
        Link("pelvis", (Box((0.14, 0.24, 0.12), 7.0), Box((0.12, 0.18, 0.10), 5.0, (0.0, 0.0, 0.11))), "dark"),
        Link("imu_link", (Box((0.02, 0.02, 0.01), 0.01, collide=False),), "red"),
    ]
    joints = [Joint("imu_joint", "pelvis", "imu_link", (0.0, 0.0, 0.0))]
    for side in ("left", "right"):
        leg_links, leg_joints = leg(side, LEGS_ONLY_FOOT)
        links += leg_links
        joints += leg_joints
    return links, joints


# (hip pitch, knee, ankle pitch) of the legs-only default pose: crouched, soles flat (they sum to zero), hips
# forward so that the CoM settles over the sole centres, 3 cm ahead of the ankles.
LEGS_ONLY_PITCH_POSE = (-0.25, 0.6, -0.35)
# name suffix: (kp, kd); PD alone holds it standing (test/test_second_robot.py checks it in PyBullet).
LEGS_ONLY_GAINS = {
    "hip_yaw_joint": (100.0, 3.0),
    "hip_roll_joint": (200.0, 5.0),
    "hip_pitch_joint": (200.0, 5.0),
    "knee_joint": (300.0, 6.0),
    "ankle_pitch_joint": (300.0, 5.0),
    "ankle_roll_joint": (80.0, 2.5),
}


def legs_only_base_height() -> float:
    """Pelvis height with the soles flat on the ground in the default pose (planar leg geometry)."""
    hip, knee, _ = LEGS_ONLY_PITCH_POSE
    return (
        HIP_YAW_DROP
        + HIP_ROLL_DROP
        + THIGH_LENGTH * np.cos(hip)
        + SHANK_LENGTH * np.cos(hip + knee)
        + LEGS_ONLY_FOOT.ankle_height
    )


def build_legs_only_yaml() -> str:
    hip, knee, ankle = LEGS_ONLY_PITCH_POSE
    default = {"hip_pitch_joint": hip, "knee_joint": knee, "ankle_pitch_joint": ankle}
    lines = [
        "# Generated by tools/generate_humanoid_urdf.py --legs-only: edit that script, not this file.",
        "# A second robot: 12 leg joints, soles 3 cm ahead of the ankles. The soles come from the foot links'",
        "# collision boxes in the URDF (no 'soles:' key needed); a sole could also be given here, per foot.",
        f"name: {LEGS_ONLY_NAME}",
        f"urdf: ../../urdf/{LEGS_ONLY_NAME}.urdf",
        "base_link: pelvis",
        "imu_link: imu_link",
        "foot_links: {left: left_foot, right: right_foot}",
        f"nominal_base_height: {fmt(round(float(legs_only_base_height()), 4))}",
        "rates: {physics_hz: 1000, policy_hz: 50}",
        "joints:",
    ]
    for side in ("left", "right"):
        for suffix, (kp, kd) in LEGS_ONLY_GAINS.items():
            name = f"{side}_{suffix}"
            lines.append(
                f"  - {{name: {name}, default: {fmt(default.get(suffix, 0.0))}, kp: {fmt(kp)}, kd: {fmt(kd)}}}"
            )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- inertia


def shape_inertia_about_own_center(shape: Shape) -> np.ndarray:
    m = shape.mass
    if isinstance(shape, Box):
        x, y, z = shape.size
        return np.diag([m * (y * y + z * z) / 12.0, m * (x * x + z * z) / 12.0, m * (x * x + y * y) / 12.0])
    if isinstance(shape, Cylinder):
        r, h = shape.radius, shape.length
        side = m * (3.0 * r * r + h * h) / 12.0
        return np.diag([side, side, m * r * r / 2.0])
    return np.eye(3) * (2.0 / 5.0) * m * shape.radius**2


def link_inertial(link: Link) -> tuple[float, np.ndarray, np.ndarray]:
    """Mass, centre of mass (link frame) and inertia tensor about the centre of mass."""
    mass = sum(s.mass for s in link.shapes)
    com = sum(s.mass * np.asarray(s.center) for s in link.shapes) / mass
    inertia = np.zeros((3, 3))
    for s in link.shapes:
        d = np.asarray(s.center) - com
        # Parallel-axis theorem: shift each shape's inertia from its own centre to the link's centre of mass.
        inertia += shape_inertia_about_own_center(s) + s.mass * (d @ d * np.eye(3) - np.outer(d, d))
    return mass, com, inertia


# ---------------------------------------------------------------------------------------------- writing


def fmt(value: float) -> str:
    """Deterministic, compact number format (no '-0')."""
    text = f"{value:.9g}"
    return "0" if text in ("-0", "0") else text


def fmt3(v: Vec3 | np.ndarray) -> str:
    return " ".join(fmt(float(x)) for x in v)


def geometry_xml(shape: Shape) -> str:
    if isinstance(shape, Box):
        return f'<box size="{fmt3(shape.size)}"/>'
    if isinstance(shape, Cylinder):
        return f'<cylinder radius="{fmt(shape.radius)}" length="{fmt(shape.length)}"/>'
    return f'<sphere radius="{fmt(shape.radius)}"/>'


MATERIALS = {"dark": "0.2 0.2 0.25 1", "grey": "0.7 0.7 0.72 1", "red": "0.8 0.1 0.1 1"}


def link_xml(link: Link) -> list[str]:
    mass, com, inertia = link_inertial(link)
    lines = [f'  <link name="{link.name}">']
    lines += [
        "    <inertial>",
        f'      <origin xyz="{fmt3(com)}" rpy="0 0 0"/>',
        f'      <mass value="{fmt(mass)}"/>',
        f'      <inertia ixx="{fmt(inertia[0, 0])}" ixy="{fmt(inertia[0, 1])}" ixz="{fmt(inertia[0, 2])}" '
        f'iyy="{fmt(inertia[1, 1])}" iyz="{fmt(inertia[1, 2])}" izz="{fmt(inertia[2, 2])}"/>',
        "    </inertial>",
    ]
    for shape in link.shapes:
        lines += [
            "    <visual>",
            f'      <origin xyz="{fmt3(shape.center)}" rpy="0 0 0"/>',
            f"      <geometry>{geometry_xml(shape)}</geometry>",
            f'      <material name="{link.material}"/>',
            "    </visual>",
        ]
    for shape in link.shapes:
        if shape.collide:
            lines += [
                "    <collision>",
                f'      <origin xyz="{fmt3(shape.center)}" rpy="0 0 0"/>',
                f"      <geometry>{geometry_xml(shape)}</geometry>",
                "    </collision>",
            ]
    lines.append("  </link>")
    return lines


def joint_xml(joint: Joint) -> list[str]:
    kind = "fixed" if joint.axis is None else "revolute"
    lines = [
        f'  <joint name="{joint.name}" type="{kind}">',
        f'    <parent link="{joint.parent}"/>',
        f'    <child link="{joint.child}"/>',
        f'    <origin xyz="{fmt3(joint.origin)}" rpy="0 0 0"/>',
    ]
    if joint.axis is not None:
        lines += [
            f'    <axis xyz="{fmt3(joint.axis)}"/>',
            f'    <limit lower="{fmt(joint.lower)}" upper="{fmt(joint.upper)}" '
            f'velocity="{fmt(joint.velocity)}" effort="{fmt(joint.effort)}"/>',
            f'    <dynamics damping="{fmt(joint.damping)}" friction="0"/>',
        ]
    lines.append("  </joint>")
    return lines


def build_urdf(legs_only: bool = False) -> str:
    links, joints = build_legs_only_robot() if legs_only else build_robot()
    lines = [
        '<?xml version="1.0"?>',
        "<!-- Generated by tools/generate_humanoid_urdf.py"
        + (" (legs only)" if legs_only else "")
        + ": edit that script, not this file. -->",
        f'<robot name="{LEGS_ONLY_NAME if legs_only else ROBOT_NAME}">',
    ]
    for name, rgba in MATERIALS.items():
        lines += [f'  <material name="{name}">', f'    <color rgba="{rgba}"/>', "  </material>"]
    for link in links:
        lines += link_xml(link)
    for joint in joints:
        lines += joint_xml(joint)
    lines.append("</robot>")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legs-only", action="store_true", help="the 12-joint legs-only robot (URDF and YAML)")
    parser.add_argument("--output", type=Path, default=None, help="where to write the URDF")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the generated text")
    args = parser.parse_args(argv)
    outputs = {args.output or (LEGS_ONLY_OUTPUT if args.legs_only else DEFAULT_OUTPUT): build_urdf(args.legs_only)}
    if args.legs_only:
        config = LEGS_ONLY_CONFIG if args.output is None else args.output.with_suffix(".yaml")
        outputs[config] = build_legs_only_yaml()
    if args.check:
        stale = [path for path, text in outputs.items() if not (path.exists() and path.read_text() == text)]
        for path in stale:
            print(f"{path} is out of date: run python tools/generate_humanoid_urdf.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    links, _ = build_legs_only_robot() if args.legs_only else build_robot()
    total = sum(link_inertial(link)[0] for link in links)
    print(f"wrote {', '.join(map(str, outputs))} ({len(links)} links, {total:.2f} kg)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
