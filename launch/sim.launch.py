"""Simulated humanoid_rl stack: sim_bridge (PyBullet) → state_estimator → policy → safety_shield → sim_bridge.

    ros2 launch humanoid_rl sim.launch.py                     # the shipped stand policy, in real time, one process
    ros2 launch humanoid_rl sim.launch.py model:='' sync:=true single_process:=false   # PD hold, lock-step, per node
    ros2 launch humanoid_rl sim.launch.py rviz:=true          # and watch it in RViz (config/humanoid.rviz)

The defaults are what someone who launches a simulator to watch it, teleoperate it (/cmd_vel) or push it from
another terminal expects: the shipped policy, paced by the wall clock, in the layout that holds its rate (one
process held 50.0 Hz with 0 missed deadlines where one process per node reached 46.8 Hz with 108 misses in 18 s).
Lock-step belongs to reproducible runs (``humanoid-rl sim`` reports, tests).

On a full ROS install the launch also starts ``robot_state_publisher`` (link transforms from ``/joint_states``
and the robot's URDF) and, with ``rviz:=true``, RViz with ``config/humanoid.rviz``; where either package is
missing it says so and goes on without it.

The node graph (names, executables, parameter file) comes from ``humanoid_rl.graph``: the same description
``humanoid-rl sim`` brings up in one process. Arguments are declared in LAUNCH_ARGUMENTS below, each documented
(``ros2 launch humanoid_rl sim.launch.py --show-args``).
"""

from __future__ import annotations

from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

from humanoid_rl.graph import PARAMETER_FILES, POLICY, SAFETY_SHIELD, SIM_BRIDGE, StackMode, sim_graph
from humanoid_rl.paths import config_path
from launch import LaunchDescription

LAUNCH_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    ("model", "humanoid_stand.onnx", "ONNX policy (a path, or a file in the package's models/); '' = PD hold"),
    ("policy_rate", "50.0", "policy rate in Hz (50–1000); must equal the model's trained rate"),
    ("gui", "false", "open the PyBullet window"),
    ("sync", "false", "false: paced by the wall clock (watch, teleoperate, push); true: lock-step (reproducible)"),
    ("robot_config", "", "robot YAML (config/robots/<robot>.yaml); '' = the shipped humanoid"),
    ("params_file", str(config_path(PARAMETER_FILES[StackMode.SIM])), "parameter YAML with a section per node"),
    ("single_process", "true", "true: all nodes in one process (EventsExecutor: holds the rate); false: one per node"),
    ("robot_state_publisher", "true", "start robot_state_publisher (link transforms for RViz) when it is installed"),
    ("rviz", "false", "open RViz with config/humanoid.rviz (needs rviz2 and robot_state_publisher)"),
    ("foxglove", "false", "single process: serve the run to the Foxglove app on ws://localhost:8765 (foxglove-sdk)"),
)


def _installed(package: str) -> bool:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:  # no ament index at all: not a ROS install with that package
        return False
    try:
        get_package_share_directory(package)
    except PackageNotFoundError:
        return False
    return True


def _viewers(context: object) -> list:
    """robot_state_publisher with the robot's URDF, and RViz fixed on its base link: when asked and installed."""
    from humanoid_rl.core.robot_spec import RobotSpec

    spec = RobotSpec.load(LaunchConfiguration("robot_config").perform(context) or None)
    actions: list = []
    wanted = {
        name: LaunchConfiguration(name).perform(context).lower() == "true" for name in ("robot_state_publisher", "rviz")
    }
    if wanted["rviz"]:
        wanted["robot_state_publisher"] = True  # RViz draws the links where their transforms put them
    if wanted["robot_state_publisher"]:
        if _installed("robot_state_publisher"):
            actions.append(Node(
                package="robot_state_publisher",
                executable="robot_state_publisher",
                parameters=[{"robot_description": spec.urdf_path.read_text(encoding="utf-8"), "use_sim_time": True}],
                output="screen",
            ))  # fmt: skip
        else:
            actions.append(LogInfo(msg="robot_state_publisher is not installed: no link transforms (RViz shows "
                                       "no robot); `apt install ros-$ROS_DISTRO-robot-state-publisher`"))
    if wanted["rviz"]:
        if _installed("rviz2"):
            actions.append(Node(
                package="rviz2",
                executable="rviz2",
                arguments=["-d", str(config_path("humanoid.rviz")), "-f", spec.base_link],
                parameters=[{"use_sim_time": True}],
                output="screen",
            ))  # fmt: skip
        else:
            actions.append(LogInfo(msg="rviz2 is not installed: `apt install ros-$ROS_DISTRO-rviz2`"))
    return actions


def _per_node_overrides() -> dict[str, dict[str, object]]:
    rate = LaunchConfiguration("policy_rate")
    sync = LaunchConfiguration("sync")
    shield_trigger = PythonExpression(["'state' if '", sync, "'.lower() == 'true' else 'timer'"])
    robot = LaunchConfiguration("robot_config")
    return {
        SIM_BRIDGE.name: {
            "sync": sync,
            "gui": LaunchConfiguration("gui"),
            "state_rate_hz": rate,
            "robot_config": robot,
        },
        SAFETY_SHIELD.name: {
            "trigger": shield_trigger,
            "rate_hz": rate,
            "robot_config": robot,
            "control_period": PythonExpression(["1.0 / float(", rate, ")"]),
        },
        POLICY.name: {
            "model": LaunchConfiguration("model"),
            "rate_hz": rate,
            "trigger": "state",  # as humanoid-rl sim: answer each simulated state at once, in both modes
            "robot_config": robot,
        },
    }


def generate_launch_description() -> LaunchDescription:
    actions: list = [
        DeclareLaunchArgument(name, default_value=default, description=doc) for name, default, doc in LAUNCH_ARGUMENTS
    ]
    params_file = LaunchConfiguration("params_file")
    overrides = _per_node_overrides()
    multi = UnlessCondition(LaunchConfiguration("single_process"))
    for description in sim_graph():
        actions.append(
            Node(
                package="humanoid_rl",
                executable=description.executable,
                name=description.name,
                parameters=[params_file, {"use_sim_time": True, **overrides.get(description.name, {})}],
                output="screen",
                condition=multi,
            )
        )
    actions.append(
        Node(
            package="humanoid_rl",
            executable="sim_stack",
            name="sim_stack",
            arguments=[
                "--model",
                LaunchConfiguration("model"),
                "--rate",
                LaunchConfiguration("policy_rate"),
                "--robot-config",
                LaunchConfiguration("robot_config"),
                "--duration",
                "1e9",
                "--push",
                "",
                "--no-plots",  # Ctrl-C ends this run: report.json at once, not plots after the 1 s launch waits
                "--config",
                params_file,
                PythonExpression(
                    ["'--sync' if '", LaunchConfiguration("sync"), "'.lower() == 'true' else '--realtime'"]
                ),
                PythonExpression(["'--gui' if '", LaunchConfiguration("gui"), "'.lower() == 'true' else '--no-gui'"]),
                PythonExpression(
                    ["'--foxglove' if '", LaunchConfiguration("foxglove"), "'.lower() == 'true' else '--no-foxglove'"]
                ),
            ],
            output="screen",
            condition=IfCondition(LaunchConfiguration("single_process")),
        )
    )
    actions.append(OpaqueFunction(function=_viewers))
    return LaunchDescription(actions)
