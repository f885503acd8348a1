"""The stack on the real robot: the robot's drivers → state_estimator → policy → safety_shield → hardware_interface →
the robot's ros2_control controller. No simulation bridge, no /clock.

    ros2 launch humanoid_rl real_robot.launch.py robot_config:=/path/to/robot.yaml model:=my_policy.onnx
    humanoid-rl real --attach        # managed start-up: configure → activate (HOLD, ramp) → Enter engages

    ros2 launch humanoid_rl real_robot.launch.py emulate:=true bringup:=true   # against the hardware emulator

The lifecycle nodes (hardware_interface, safety_shield, policy) start unconfigured (``autostart: false`` in
config/real_robot.yaml) and nothing moves until they are configured and activated: by ``humanoid-rl real --attach``,
by ``bringup:=true`` (which runs it with ``--engage never``: configure, activate, hold, and leave engaging to
``/safety_shield/engage``), or by hand with ``ros2 lifecycle set``. The node graph (names, executables, parameter
file) comes from ``humanoid_rl.graph``: the same description ``humanoid-rl real`` brings up in one process.

DDS security (SROS2): ``keystore:=<dir>`` sets ROS_SECURITY_KEYSTORE, ROS_SECURITY_ENABLE=true and
ROS_SECURITY_STRATEGY=Enforce for every process started here; ``enclave:=/humanoid_rl`` runs each node in its own
enclave ``<enclave>/<node name>`` (its own certificate and permissions). See docs/real_robot.md.

Arguments are declared in LAUNCH_ARGUMENTS below, each documented (``ros2 launch humanoid_rl real_robot.launch.py
--show-args``).
"""

from __future__ import annotations

import sys

from launch.actions import DeclareLaunchArgument, ExecuteProcess, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

from humanoid_rl.graph import (
    HARDWARE_EMULATOR,
    HARDWARE_INTERFACE,
    PARAMETER_FILES,
    POLICY,
    SAFETY_SHIELD,
    STATE_ESTIMATOR,
    StackMode,
    Topics,
    real_graph,
)
from humanoid_rl.paths import config_path
from launch import LaunchDescription

LAUNCH_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    ("robot_config", "", "robot YAML (config/robots/<robot>.yaml); '' = the shipped humanoid"),
    ("model", "", "ONNX policy (a path, or a file name in the package's models/); '' holds the default pose"),
    ("policy_rate", "50.0", "policy rate in Hz (50–1000); must equal the model's trained rate"),
    ("params_file", str(config_path(PARAMETER_FILES[StackMode.REAL])), "parameter YAML with a section per node"),
    ("emulate", "false", "true: start the hardware emulator (PyBullet behind the controller topics) as the robot"),
    ("controller", "forward_command", "the robot's controller: 'forward_command' or 'joint_trajectory'"),
    ("joint_states_topic", Topics.JOINT_STATES, "where the robot's driver publishes sensor_msgs/JointState"),
    ("imu_topic", Topics.IMU, "where the robot's driver publishes sensor_msgs/Imu"),
    ("forward_command_topic", Topics.FORWARD_COMMAND, "the forward command controller's input (Float64MultiArray)"),
    ("trajectory_topic", Topics.JOINT_TRAJECTORY, "joint_trajectory_controller's input (JointTrajectory)"),
    (
        "bringup",
        "false",
        "true: also run `humanoid-rl real --attach --engage never` (configure, activate, ramp, hold; engaging is "
        "left to /safety_shield/engage); false: drive the lifecycle yourself",
    ),
    (
        "keystore",
        "",
        "SROS2 keystore directory; '' = DDS security off. Set: ROS_SECURITY_KEYSTORE=<dir>, ROS_SECURITY_ENABLE=true, "
        "ROS_SECURITY_STRATEGY=Enforce (a node without valid keys cannot join the graph)",
    ),
    (
        "enclave",
        "",
        "enclave prefix, e.g. /humanoid_rl: each node runs in <enclave>/<node name> with its own keys and "
        "permissions; '' = the default enclave /",
    ),
)


def _is_true(name: str) -> PythonExpression:
    return PythonExpression(["'", LaunchConfiguration(name), "'.lower() == 'true'"])


def _per_node_overrides() -> dict[str, dict[str, object]]:
    rate = LaunchConfiguration("policy_rate")
    robot = LaunchConfiguration("robot_config")
    controller = LaunchConfiguration("controller")
    return {
        STATE_ESTIMATOR.name: {"robot_config": robot},
        SAFETY_SHIELD.name: {
            "robot_config": robot,
            "rate_hz": rate,
            "control_period": PythonExpression(["1.0 / float(", rate, ")"]),
        },
        POLICY.name: {"robot_config": robot, "model": LaunchConfiguration("model"), "rate_hz": rate},
        HARDWARE_INTERFACE.name: {"robot_config": robot, "controller": controller},
        HARDWARE_EMULATOR.name: {"robot_config": robot, "controller": controller},
    }


def _enclave(node_name: str) -> PythonExpression:
    """``<enclave>/<node name>``, or the default enclave ``/`` when no enclave prefix is given."""
    enclave = LaunchConfiguration("enclave")
    return PythonExpression(["('", enclave, "'.rstrip('/') + '/", node_name, "') if '", enclave, "' else '/'"])


def generate_launch_description() -> LaunchDescription:
    actions: list = [
        DeclareLaunchArgument(name, default_value=default, description=doc) for name, default, doc in LAUNCH_ARGUMENTS
    ]
    keystore = LaunchConfiguration("keystore")
    secure = IfCondition(PythonExpression(["'", keystore, "' != ''"]))
    actions += [
        SetEnvironmentVariable("ROS_SECURITY_KEYSTORE", keystore, condition=secure),
        SetEnvironmentVariable("ROS_SECURITY_ENABLE", "true", condition=secure),
        SetEnvironmentVariable("ROS_SECURITY_STRATEGY", "Enforce", condition=secure),
    ]
    # The robot's topic names, wherever the drivers and controllers put them (the emulator plays the robot).
    remappings = [
        (Topics.JOINT_STATES, LaunchConfiguration("joint_states_topic")),
        (Topics.IMU, LaunchConfiguration("imu_topic")),
        (Topics.FORWARD_COMMAND, LaunchConfiguration("forward_command_topic")),
        (Topics.JOINT_TRAJECTORY, LaunchConfiguration("trajectory_topic")),
    ]
    params_file = LaunchConfiguration("params_file")
    overrides = _per_node_overrides()
    emulated = set(real_graph(emulate=True)) - set(real_graph(emulate=False))
    for description in real_graph(emulate=True):
        actions.append(
            Node(
                package="humanoid_rl",
                executable=description.executable,
                name=description.name,
                parameters=[params_file, {"use_sim_time": False, **overrides.get(description.name, {})}],
                remappings=remappings,
                ros_arguments=["--enclave", _enclave(description.name)],
                output="screen",
                condition=IfCondition(_is_true("emulate")) if description in emulated else None,
            )
        )
    # The managed start-up, over the lifecycle services (the same code as `humanoid-rl real --attach`).
    bringup = [sys.executable, "-m", "humanoid_rl.cli", "real", "--attach", "--engage", "never", "--duration", "0"]
    actions.append(
        ExecuteProcess(
            cmd=[*bringup, "--enclave", _enclave("bringup")],
            name="bringup",  # else launch calls it after the interpreter (`python3.11-6`)
            output="screen",
            condition=IfCondition(_is_true("bringup")),
        )
    )
    return LaunchDescription(actions)
