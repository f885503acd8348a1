"""A test stand-in for the safety shield around a real ``SimBridgeNode`` (bridge and estimator node tests):
answers each joint state with the default pose and records what the bridge publishes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import WrenchStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.graph import Topics
from humanoid_rl.nodes.qos import CLOCK_QOS, COMMAND_QOS, LATCHED_QOS, SENSOR_QOS, STATUS_QOS
from humanoid_rl.nodes.runner import make_executor, spin_until
from humanoid_rl.nodes.sim_bridge import SimBridgeNode

SPEC = RobotSpec.load(None)
DISCOVERY_TIMEOUT_S = 15.0
_NS = 1_000_000_000


def stamp_ns(stamp: Any) -> int:
    return stamp.sec * _NS + stamp.nanosec


class ShieldStandIn:
    """Answers every /joint_states with the default pose stamped with that state's stamp, names in REVERSE
    policy order (only a by-name mapping gets them right), while ``answering``. Records every bridge topic."""

    def __init__(self) -> None:
        self.node = Node("test_shield_stand_in")
        node = self.node
        self.answering = True
        self.names = list(reversed(SPEC.joint_names))
        self.pose = SPEC.default_pose[::-1].tolist()
        self.command_pub = node.create_publisher(JointState, Topics.JOINT_COMMANDS, COMMAND_QOS)
        self.mode_pub = node.create_publisher(String, Topics.SHIELD_MODE, LATCHED_QOS)
        self.push_pub = node.create_publisher(WrenchStamped, Topics.SIM_PUSH, COMMAND_QOS)
        self.reset_client = node.create_client(Trigger, Topics.SIM_RESET)
        self.stamps: dict[str, list[int]] = defaultdict(list)
        self.frames: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        self.last: dict[str, Any] = {}
        node.create_subscription(JointState, Topics.JOINT_STATES, self._on_joint_state, SENSOR_QOS)
        node.create_subscription(Imu, Topics.IMU, self._recorder(Topics.IMU), SENSOR_QOS)
        for topic in (Topics.LEFT_FOOT_WRENCH, Topics.RIGHT_FOOT_WRENCH):
            node.create_subscription(WrenchStamped, topic, self._recorder(topic), SENSOR_QOS)
        node.create_subscription(
            Odometry, Topics.GROUND_TRUTH_ODOM, self._recorder(Topics.GROUND_TRUTH_ODOM), SENSOR_QOS
        )
        node.create_subscription(ClockMsg, Topics.CLOCK, self._on_clock, CLOCK_QOS)
        self.diagnostics: dict[str, DiagnosticStatus] = {}  # newest status per name
        node.create_subscription(DiagnosticArray, Topics.DIAGNOSTICS, self._on_diagnostics, STATUS_QOS)

    def _record(self, topic: str, msg: Any) -> None:
        self.stamps[topic].append(stamp_ns(msg.header.stamp))
        self.frames[topic].add((msg.header.frame_id, getattr(msg, "child_frame_id", "")))
        self.last[topic] = msg

    def _recorder(self, topic: str) -> Any:
        return lambda msg: self._record(topic, msg)

    def _on_clock(self, msg: ClockMsg) -> None:
        self.stamps[Topics.CLOCK].append(stamp_ns(msg.clock))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.diagnostics[status.name] = status

    def _on_joint_state(self, msg: JointState) -> None:
        self._record(Topics.JOINT_STATES, msg)
        if self.answering:
            self.command_pub.publish(JointState(header=msg.header, name=self.names, position=self.pose))

    def push(self, force: tuple[float, float, float], frame: str = "odom") -> None:
        msg = WrenchStamped()
        msg.header.frame_id = frame
        msg.wrench.force.x, msg.wrench.force.y, msg.wrench.force.z = force
        self.push_pub.publish(msg)

    def joint_positions(self) -> np.ndarray:
        msg = self.last[Topics.JOINT_STATES]
        return np.array([msg.position[list(msg.name).index(n)] for n in SPEC.joint_names])


class BridgeHarness:
    """A ``SimBridgeNode`` (parameters as given), the shield stand-in and any extra nodes, on one executor.

    The bridge joins the executor only after discovery, so no sim time is spent waiting for it."""

    def __init__(self, extra_nodes: tuple[Node, ...] = (), **bridge_parameters: Any) -> None:
        overrides = [Parameter(name, value=value) for name, value in bridge_parameters.items()]
        self.bridge = SimBridgeNode(parameter_overrides=overrides)
        self.shield = ShieldStandIn()
        self.nodes: list[Node] = [self.shield.node, *extra_nodes]
        self.executor = make_executor()
        for node in self.nodes:
            self.executor.add_node(node)
        shield = self.shield

        def discovered() -> bool:
            return (
                shield.command_pub.get_subscription_count() >= 1
                and shield.mode_pub.get_subscription_count() >= 1
                and shield.push_pub.get_subscription_count() >= 1
                and shield.node.count_publishers(Topics.JOINT_STATES) >= 1
                and shield.node.count_publishers(Topics.CLOCK) >= 1
                and all(n.count_publishers(Topics.IMU) >= 1 for n in extra_nodes)
            )

        assert spin_until(self.executor, discovered, wall_timeout_s=DISCOVERY_TIMEOUT_S), (
            "DDS discovery timed out"
        )
        self.executor.add_node(self.bridge)
        self.nodes.append(self.bridge)

    def run_until_sim(self, sim_time_s: float, wall_timeout_s: float = 60.0) -> None:
        done = spin_until(
            self.executor, lambda: self.bridge.sim_time_s >= sim_time_s - 1e-9, wall_timeout_s=wall_timeout_s
        )
        assert done, (
            f"sim time reached only {self.bridge.sim_time_s:.3f} s of {sim_time_s} s in {wall_timeout_s} s"
        )

    def spin_for(self, wall_s: float) -> None:
        spin_until(self.executor, lambda: False, wall_timeout_s=wall_s)

    def close(self) -> None:
        for node in self.nodes:
            self.executor.remove_node(node)
            node.destroy_node()
        self.executor.shutdown()
