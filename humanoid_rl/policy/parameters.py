"""The policy node's parameters, declared once (ROS-free, so the README table and launch code can read them).

``humanoid_rl.nodes.policy`` declares these through ``humanoid_rl.nodes.params.DeclaredParameters``.
Configure-time parameters (:data:`CONFIGURE_TIME_PARAMETERS`) are read in ``on_configure``; the node refuses to
change them while it is configured (clean it up, set them, configure again).
"""

from __future__ import annotations

from enum import Enum

from humanoid_rl.core.params import ParamSpec


class TriggerMode(Enum):
    TIMER = "timer"  # a timer at rate_hz (deadline based): waits up to a period for the newest state
    STATE = "state"  # once per period on the joint-state stream's grid: lock-step simulation and the robot


MIN_RATE_HZ = 50.0
MAX_RATE_HZ = 1000.0

POLICY_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "model",
        "",
        "ONNX policy written by `humanoid-rl export` or `humanoid-rl import` (observations are built from its own "
        "contract); '' holds the default pose (PD only). "
        "A relative path that does not exist in the working directory is looked up in the share "
        "directory's models/",
    ),
    ParamSpec("robot_config", "", "robot YAML (config/robots/<robot>.yaml); '' = the shipped humanoid"),
    ParamSpec(
        "rate_hz",
        50.0,
        "policy rate; must equal the model's policy_rate_hz (any value for the hold policy)",
        "Hz",
        MIN_RATE_HZ,
        MAX_RATE_HZ,
    ),
    ParamSpec(
        "trigger",
        TriggerMode.TIMER.value,
        "'timer': compute at rate_hz on a timer (waits up to a period for the newest state); 'state': "
        "compute once per policy period on the joint-state stream's grid, as soon as the estimator output for "
        "that stamp has arrived — lock-step simulation and the robot (config/real_robot.yaml)",
        choices=tuple(m.value for m in TriggerMode),
    ),
    ParamSpec(
        "max_state_age",
        0.05,
        "joint state and estimator output older than this (node clock − message "
        "stamp) are not used: nothing is published for that tick",
        "s",
        0.001,
        1.0,
    ),
    ParamSpec(
        "cmd_vel_timeout", 0.5, "a /cmd_vel older than this counts as zero velocity (0 = never expires)", "s", 0.0, 60.0
    ),
    ParamSpec(
        "goal_topic",
        "/policy/goal",
        "geometry_msgs/PointStamped goals of a goal-conditioned model (its contract has a 'goal' term), in the "
        "contract's goal_frame (others are refused); nothing is published until the first goal arrives",
    ),
    ParamSpec("intra_op_threads", 1, "ONNX Runtime intra-op threads (1: the node's own thread, no pool)", "", 1, 16),
    ParamSpec("inter_op_threads", 1, "ONNX Runtime inter-op threads", "", 1, 16),
    ParamSpec(
        "autostart",
        True,
        "configure and activate at start-up (simulation); false waits for lifecycle transitions (hardware)",
        read_only=True,
    ),
)

CONFIGURE_TIME_PARAMETERS = frozenset(
    {"model", "robot_config", "rate_hz", "trigger", "goal_topic", "intra_op_threads", "inter_op_threads"}
)
