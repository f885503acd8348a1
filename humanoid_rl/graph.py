"""The node graph, described once.

``humanoid-rl sim`` / ``humanoid-rl real`` build their single-process graph from this module, and
``launch/sim.launch.py`` / ``launch/real_robot.launch.py`` build launch_ros ``Node`` actions from it, so the
names of nodes, executables, topics and parameter files cannot drift between the two ways of starting the stack.
Plain data only: importable without rclpy or launch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum


class Topics:
    """Topic and service names. Every node uses these constants; launch remappings use them as keys."""

    # Robot (or simulator) ↔ stack
    JOINT_STATES = "/joint_states"  # sensor_msgs/JointState: measured position/velocity/effort
    IMU = "/imu/data"  # sensor_msgs/Imu: orientation, angular velocity, specific force
    LEFT_FOOT_WRENCH = "/contacts/left_foot"  # geometry_msgs/WrenchStamped, foot frame (z = sole normal)
    RIGHT_FOOT_WRENCH = "/contacts/right_foot"
    JOINT_COMMANDS = "/joint_commands"  # sensor_msgs/JointState: shielded position targets (only the shield)
    CLOCK = "/clock"  # rosgraph_msgs/Clock (simulation only)
    GROUND_TRUTH_ODOM = "/sim/ground_truth/odom"  # nav_msgs/Odometry (simulation only)
    SIM_PUSH = "/sim/push"  # geometry_msgs/WrenchStamped: force on the base for push_duration
    SIM_RESET = "/sim/reset"  # std_srvs/Trigger
    # Estimator
    ESTIMATOR_ODOM = "/state_estimator/odom"  # nav_msgs/Odometry, odom → base_link (REP 105)
    ESTIMATOR_CONTACTS = "/state_estimator/contacts"  # std_msgs/Float64MultiArray [left, right] stance (0/1)
    # Policy
    CMD_VEL = "/cmd_vel"  # geometry_msgs/Twist: velocity command for walking policies
    POLICY_COMMANDS = "/policy/joint_commands"  # sensor_msgs/JointState: unshielded policy targets
    POLICY_ENGAGE = "/policy/engage"  # std_srvs/SetBool (hardware: the user's "go" button)
    # Shield
    SHIELD_MODE = "/safety_shield/mode"  # std_msgs/String, latched: "ACTIVE" / "HOLD" / "DAMPING" / "ESTOP"
    SHIELD_ESTOP = "/safety_shield/estop"  # std_srvs/Trigger
    SHIELD_RESET = "/safety_shield/reset"  # std_srvs/Trigger
    SHIELD_ENGAGE = "/safety_shield/engage"  # std_srvs/SetBool
    DEADMAN = "/safety_shield/deadman"  # std_msgs/Empty heartbeat (optional, hardware)
    # Hardware interface (ros2_control controller inputs, remappable)
    FORWARD_COMMAND = "/forward_position_controller/commands"  # std_msgs/Float64MultiArray
    JOINT_TRAJECTORY = "/joint_trajectory_controller/joint_trajectory"  # trajectory_msgs/JointTrajectory
    DIAGNOSTICS = "/diagnostics"  # diagnostic_msgs/DiagnosticArray
    ROBOT_DESCRIPTION = "/robot_description"  # std_msgs/String, transient local: the URDF the stack loaded


class Frames:
    """REP 105 frame names."""

    ODOM = "odom"
    BASE = "base_link"
    IMU = "imu_link"
    WORLD = "world"


class StackMode(Enum):
    SIM = "sim"
    REAL = "real"


@dataclass(frozen=True)
class NodeDescription:
    """One node of the graph, as launch_ros and the in-process runner both need it."""

    name: str  # ROS node name (also the key of its section in the parameter YAML)
    executable: str  # entry point in <prefix>/lib/humanoid_rl (ros2 run humanoid_rl <executable>)
    module: str  # python module with the node class and main()
    node_class: str  # class constructed by the in-process runner
    summary: str
    lifecycle: bool = False
    remappings: tuple[tuple[str, str], ...] = field(default_factory=tuple)


SIM_BRIDGE = NodeDescription(
    "sim_bridge",
    "sim_bridge",
    "humanoid_rl.nodes.sim_bridge",
    "SimBridgeNode",
    "PyBullet simulation: publishes sensors and /clock, applies /joint_commands through the PD loop",
)
STATE_ESTIMATOR = NodeDescription(
    "state_estimator",
    "state_estimator",
    "humanoid_rl.nodes.state_estimator",
    "StateEstimatorNode",
    "IMU + leg-kinematics Kalman filter: base orientation, velocity, height, contacts",
)
POLICY = NodeDescription(
    "policy",
    "policy",
    "humanoid_rl.nodes.policy",
    "PolicyNode",
    "ONNX Runtime policy at rate_hz: observation through the shared contract → /policy/joint_commands",
    lifecycle=True,
)
SAFETY_SHIELD = NodeDescription(
    "safety_shield",
    "safety_shield",
    "humanoid_rl.nodes.safety_shield",
    "SafetyShieldNode",
    "filters every command against limits and balance; the only publisher of /joint_commands",
    lifecycle=True,
)
HARDWARE_INTERFACE = NodeDescription(
    "hardware_interface",
    "hardware_interface",
    "humanoid_rl.nodes.hardware_interface",
    "HardwareInterfaceNode",
    "maps /joint_commands by name onto ros2_control controller inputs",
    lifecycle=True,
)
HARDWARE_EMULATOR = NodeDescription(
    "hardware_emulator",
    "hardware_emulator",
    "humanoid_rl.nodes.hardware_emulator",
    "HardwareEmulatorNode",
    "a robot that speaks only controller topics, with latency, jitter, noise and drops (for testing)",
)

ALL_NODES = (SIM_BRIDGE, STATE_ESTIMATOR, POLICY, SAFETY_SHIELD, HARDWARE_INTERFACE, HARDWARE_EMULATOR)

# Parameter files (under the share directory's config/), one section per node name.
PARAMETER_FILES = {StackMode.SIM: "sim.yaml", StackMode.REAL: "real_robot.yaml"}


def sim_graph() -> tuple[NodeDescription, ...]:
    """The simulated stack: the shield sits between policy and bridge, as on the robot."""
    return (SIM_BRIDGE, STATE_ESTIMATOR, SAFETY_SHIELD, POLICY)


def real_graph(emulate: bool = False) -> tuple[NodeDescription, ...]:
    nodes = (STATE_ESTIMATOR, SAFETY_SHIELD, POLICY, HARDWARE_INTERFACE)
    return ((HARDWARE_EMULATOR,) + nodes) if emulate else nodes


# DDS domains for stacks that must see no other (test sessions, bench cases): 10..99 stays clear of the common 0
# and keeps Fast DDS's ports (which grow with the id) below the ephemeral port range.
PRIVATE_DOMAIN_IDS = range(10, 100)


def private_domain_id(avoid: str | None = None) -> int:
    """A random domain from ``PRIVATE_DOMAIN_IDS``, other than ``avoid`` (a ``ROS_DOMAIN_ID`` value)."""
    return random.SystemRandom().choice([d for d in PRIVATE_DOMAIN_IDS if str(d) != avoid])
