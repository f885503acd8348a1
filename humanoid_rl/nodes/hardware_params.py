"""The hardware interface's parameters and its check of the controller's joint list (no rclpy).

Apart from the node (:mod:`humanoid_rl.nodes.hardware_interface`, which re-exports them) so that the node module
stays about its behaviour; the hardware emulator uses the same controller kinds and joint check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from humanoid_rl.core.params import ParamSpec
from humanoid_rl.graph import Topics

__all__ = [
    "PARAMETERS",
    "UNSET_JOINTS",
    "ControllerJointsError",
    "ControllerKind",
    "Fallback",
    "check_controller_joints",
    "consistency",
]


class ControllerKind(Enum):
    FORWARD = "forward_command"  # std_msgs/Float64MultiArray, forward_command_controller
    TRAJECTORY = "joint_trajectory"  # trajectory_msgs/JointTrajectory, joint_trajectory_controller


class Fallback(Enum):
    HOLD = "hold"  # stale commands: send the measured pose (position-only controllers)
    DAMP = "damp"  # also send passive gains (kp 0): needs gains_topic


# A string[] parameter cannot be declared empty in rclpy (an empty list has no element type): this is "unset".
UNSET_JOINTS: list[str] = [""]

PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("robot_config", "", "robot YAML (config/robots/<robot>.yaml); '' = the shipped humanoid", read_only=True),
    ParamSpec(
        "controller",
        ControllerKind.FORWARD.value,
        "which ros2_control controller takes the commands: 'forward_command' (Float64MultiArray on"
        f" {Topics.FORWARD_COMMAND}) or 'joint_trajectory' (JointTrajectory on {Topics.JOINT_TRAJECTORY})",
        choices=tuple(k.value for k in ControllerKind),
        read_only=True,
    ),
    ParamSpec(
        "controller_joints",
        UNSET_JOINTS,
        "the controller's joint order: copy the `joints:` list of the controller's ros2_control configuration."
        " Values are placed by name; it must name every robot joint exactly once (checked at configure)",
        read_only=True,
    ),
    ParamSpec(
        "command_timeout",
        0.1,
        "a /joint_commands message stamped longer ago than this is not forwarded; none fresh for this long"
        " (steady clock): stop forwarding and hold the measured pose",
        "s",
        0.005,
        10.0,
    ),
    ParamSpec(
        "sensor_timeout",
        0.5,
        "configure requires a /joint_states and an IMU message received within this time",
        "s",
        0.01,
        60.0,
    ),
    ParamSpec(
        "watchdog_rate_hz",
        100.0,
        "rate of the stale-command check (steady clock); the reaction time is command_timeout + one period",
        "Hz",
        1.0,
        1000.0,
        read_only=True,
    ),
    ParamSpec(
        "trajectory_time_from_start",
        0.02,
        "joint_trajectory: time_from_start of the single point (about one command period)",
        "s",
        0.001,
        1.0,
    ),
    ParamSpec(
        "gains_topic",
        "",
        "publish per-joint kp/kd (Float64MultiArray, rows kp and kd in controller_joints order) on this topic"
        " for drivers that accept gains; '' = position-only controllers (no gains sent)",
        read_only=True,
    ),
    ParamSpec(
        "damping_kd_scale",
        1.0,
        "kd scale sent on gains_topic in DAMPING/ESTOP (kp 0); keep equal to the shield's damping_kd_scale",
        "",
        0.0,
        10.0,
    ),
    ParamSpec(
        "fallback",
        Fallback.HOLD.value,
        "on stale commands: 'hold' sends the measured pose; 'damp' also sends passive gains (needs gains_topic)",
        choices=tuple(f.value for f in Fallback),
        read_only=True,
    ),
    ParamSpec(
        "autostart",
        False,
        "configure and activate at start-up; false (the default) waits for lifecycle transitions",
        read_only=True,
    ),
)


def consistency(values: Mapping[str, Any]) -> list[str]:
    if values["fallback"] == Fallback.DAMP.value and not str(values["gains_topic"]).strip():
        return ["fallback 'damp' needs gains_topic: a position-only controller cannot damp (use fallback 'hold')"]
    return []


class ControllerJointsError(ValueError):
    """controller_joints does not name the robot's joints exactly once each; the message names the culprits."""


def check_controller_joints(robot_joints: Sequence[str], controller_joints: Sequence[str], where: str) -> None:
    """Raise :class:`ControllerJointsError` naming every missing, extra or duplicated controller joint."""
    names = list(controller_joints)
    if not names or names == UNSET_JOINTS:
        raise ControllerJointsError(
            f"{where}: controller_joints is not set. Fix: copy the `joints:` list of your controller's ros2_control "
            f"configuration, in its order (the robot's joints are {list(robot_joints)})"
        )
    counts = Counter(names)
    duplicated = [n for n, count in counts.items() if count > 1]
    missing = [n for n in robot_joints if n not in counts]
    robot = set(robot_joints)
    extra = [n for n in counts if n not in robot]
    if missing or extra or duplicated:
        problems = []
        if missing:
            problems.append(f"missing {missing} (the controller would leave them uncommanded)")
        if extra:
            problems.append(f"extra {extra} (not joints of the robot)")
        if duplicated:
            problems.append(f"duplicated {duplicated}")
        raise ControllerJointsError(
            f"{where}: controller_joints does not match the robot's joints: {'; '.join(problems)}. Fix: list each "
            "joint of the robot config exactly once, in the order of the controller's `joints:` configuration"
        )
