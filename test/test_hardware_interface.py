"""The hardware interface node with real rclpy and DDS: joint mapping by name, managed start-up checks, stale
commands, the shield's passive modes, gains and deactivation.

Each test builds, in this process, the node under test, a fake driver (``/joint_states`` in its own joint order and
an IMU at 100 Hz, stamped with the ROS clock), a fake shield (``/joint_commands`` and the latched mode) and a
recorder of everything on the controller topics. No PyBullet here: test_real_stack.py runs the emulated robot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time as TimeMsg
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.graph import Topics
from humanoid_rl.nodes.conversions import seconds_to_stamp, stamp_to_seconds
from humanoid_rl.nodes.hardware_interface import HardwareInterfaceNode, OutputState, check_controller_joints
from humanoid_rl.nodes.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
from humanoid_rl.nodes.runner import make_executor, spin_until

SPEC = RobotSpec.load()
NAMES = list(SPEC.joint_names)
# The controller's order: a fixed shuffle with no joint left in its policy position.
_rng = np.random.default_rng(7)
while True:
    _perm = _rng.permutation(len(NAMES))
    if not np.any(_perm == np.arange(len(NAMES))):
        break
CONTROLLER = [NAMES[i] for i in _perm]
DRIVER = list(reversed(CONTROLLER))  # the driver's /joint_states order: neither ours nor the controller's
# A pose whose every value is distinct, so a value on the wrong joint cannot pass unnoticed.
DISTINCT = np.clip(SPEC.default_pose + 0.01 * np.arange(1, len(NAMES) + 1), SPEC.lower, SPEC.upper)
COMMAND_TIMEOUT = 0.1
WATCHDOG_PERIOD = 0.01
GAINS_TOPIC = "/test_gains"


@pytest.fixture(scope="module", autouse=True)
def ros() -> Iterator[None]:
    rclpy.init()
    yield
    rclpy.shutdown()


class FakeDriver(Node):
    """/joint_states (driver order) and IMU at 100 Hz, stamped with the ROS clock."""

    def __init__(self) -> None:
        super().__init__("fake_driver")
        self.positions = dict(zip(NAMES, SPEC.default_pose.tolist(), strict=True))
        self.publishing = True
        self.clock_offset = 0.0  # seconds the driver's clock runs behind ours
        self._joint_pub = self.create_publisher(JointState, Topics.JOINT_STATES, SENSOR_QOS)
        self._imu_pub = self.create_publisher(Imu, Topics.IMU, SENSOR_QOS)
        self.create_timer(0.01, self._tick)

    def _tick(self) -> None:
        if not self.publishing:
            return
        stamp = seconds_to_stamp(self.get_clock().now().nanoseconds * 1e-9 - self.clock_offset)
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = DRIVER
        msg.position = [self.positions[n] for n in DRIVER]
        msg.velocity = [0.0] * len(DRIVER)
        self._joint_pub.publish(msg)
        imu = Imu()
        imu.header.stamp = stamp
        imu.orientation.w = 1.0
        self._imu_pub.publish(imu)


@dataclass
class Recorded:
    time: float  # steady clock at receipt
    positions: dict[str, float]  # by joint name, decoded with the controller's order


@dataclass
class Harness:
    interface: HardwareInterfaceNode
    driver: FakeDriver = field(default_factory=FakeDriver)
    commands: list[Recorded] = field(default_factory=list)
    trajectories: list[JointTrajectory] = field(default_factory=list)
    gains: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.io = Node("hardware_interface_test_io")
        self.io.create_subscription(Float64MultiArray, Topics.FORWARD_COMMAND, self._on_forward, COMMAND_QOS)
        self.io.create_subscription(JointTrajectory, Topics.JOINT_TRAJECTORY, self._on_trajectory, COMMAND_QOS)
        self.io.create_subscription(Float64MultiArray, GAINS_TOPIC, lambda m: self.gains.append(np.array(m.data)), 10)
        self._command_pub = self.io.create_publisher(JointState, Topics.JOINT_COMMANDS, COMMAND_QOS)
        self._mode_pub = self.io.create_publisher(String, Topics.SHIELD_MODE, LATCHED_QOS)
        self.executor = make_executor()
        for node in (self.interface, self.driver, self.io):
            self.executor.add_node(node)

    def _on_forward(self, msg: Float64MultiArray) -> None:
        assert len(msg.data) == len(CONTROLLER)
        self.commands.append(Recorded(time.monotonic(), dict(zip(CONTROLLER, msg.data, strict=True))))

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        self.trajectories.append(msg)
        point = msg.points[-1]
        self.commands.append(Recorded(time.monotonic(), dict(zip(msg.joint_names, point.positions, strict=True))))

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        spin_until(self.executor, lambda: time.monotonic() > end)

    def spin_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        assert spin_until(self.executor, condition, wall_timeout_s=timeout), "condition not reached in time"

    def send(self, positions: np.ndarray, stamp: TimeMsg | None = None, names: list[str] | None = None) -> None:
        msg = JointState()
        msg.header.stamp = stamp if stamp is not None else self.io.get_clock().now().to_msg()
        msg.name = NAMES if names is None else names
        msg.position = [float(v) for v in positions]
        self._command_pub.publish(msg)

    def mode(self, mode: str) -> None:
        self._mode_pub.publish(String(data=mode))

    def configure_and_activate(self) -> None:
        self.spin_until(self.interface.sensors_ready)
        assert self.interface.trigger_configure().name == "SUCCESS", self.interface.configure_error
        assert self.interface.trigger_activate().name == "SUCCESS"

    def close(self) -> None:
        self.executor.shutdown()
        for node in (self.interface, self.driver, self.io):
            node.destroy_node()


def interface(**params: Any) -> HardwareInterfaceNode:
    values = {"controller_joints": CONTROLLER, "command_timeout": COMMAND_TIMEOUT, **params}
    return HardwareInterfaceNode(parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])


@pytest.fixture
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    params = getattr(request, "param", {})
    h = Harness(interface(**params))
    yield h
    h.close()


def by_name(values: np.ndarray) -> dict[str, float]:
    return dict(zip(NAMES, values.tolist(), strict=True))


# ---------------------------------------------------------------------------------------------- configure checks
def test_the_joint_check_names_missing_extra_and_duplicated_joints() -> None:
    wrong = [n for n in CONTROLLER if n != "left_knee_joint"] + ["gripper_joint", "torso_yaw_joint"]
    with pytest.raises(ValueError) as error:
        check_controller_joints(NAMES, wrong, "test")
    text = str(error.value)
    assert "missing ['left_knee_joint']" in text
    assert "extra ['gripper_joint']" in text
    assert "duplicated ['torso_yaw_joint']" in text


@pytest.mark.parametrize(
    "joints, expected",
    [
        ([n for n in CONTROLLER if n != "right_elbow_joint"] + ["wrist_joint"], ["right_elbow_joint", "wrist_joint"]),
        ([""], ["controller_joints is not set"]),
    ],
    ids=["missing_and_extra", "unset"],
)
def test_configure_fails_naming_the_controller_joints_that_do_not_match(joints: list[str], expected: list[str]) -> None:
    h = Harness(interface(controller_joints=joints))
    try:
        h.spin_for(0.2)
        assert h.interface.trigger_configure().name == "FAILURE"
        for word in expected:
            assert word in h.interface.configure_error
        assert h.interface.lifecycle_state == "unconfigured"
        assert not h.commands
    finally:
        h.close()


def test_configure_fails_without_fresh_joint_states_and_names_the_topic(harness: Harness) -> None:
    harness.driver.publishing = False
    harness.spin_for(0.1)
    assert harness.interface.trigger_configure().name == "FAILURE"
    assert Topics.JOINT_STATES in harness.interface.configure_error
    assert Topics.IMU in harness.interface.configure_error
    harness.driver.publishing = True
    harness.spin_until(harness.interface.sensors_ready)
    assert harness.interface.trigger_configure().name == "SUCCESS", harness.interface.configure_error


# A generous sensor_timeout: a stall of the loaded test process must not turn the stamps' age into a sensor timeout.
@pytest.mark.parametrize("harness", [{"sensor_timeout": 2.0}], indirect=True)
def test_configure_fails_when_the_drivers_clock_is_further_off_than_command_timeout(harness: Harness) -> None:
    harness.driver.clock_offset = 0.3  # the driver stamps 0.3 s in the past: within sensor_timeout, not usable
    harness.spin_for(0.2)
    assert harness.interface.trigger_configure().name == "FAILURE"
    assert "command_timeout" in harness.interface.configure_error and "clock" in harness.interface.configure_error


def test_fallback_damp_without_a_gains_topic_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="gains_topic"):
        interface(fallback="damp")


# ---------------------------------------------------------------------------------------------- forwarding
def test_nothing_is_published_before_activation_nor_before_the_first_command(harness: Harness) -> None:
    harness.spin_until(harness.interface.sensors_ready)
    assert harness.interface.trigger_configure().name == "SUCCESS"
    harness.send(DISTINCT)  # configured, not active: ignored
    harness.spin_for(0.3)
    assert harness.interface.trigger_activate().name == "SUCCESS"
    harness.spin_for(3 * COMMAND_TIMEOUT)  # active, no command yet: silent, not even a hold
    assert harness.commands == []
    assert harness.interface.counters["received_inactive"] == 1
    harness.send(DISTINCT)
    harness.spin_until(lambda: len(harness.commands) == 1)


def test_commands_are_placed_by_name_in_the_controllers_order(harness: Harness) -> None:
    harness.configure_and_activate()
    # The shield sends policy order; send a reversed name list too: both must land on the same joints.
    harness.send(DISTINCT)
    harness.spin_until(lambda: len(harness.commands) == 1)
    harness.send(DISTINCT[::-1], names=NAMES[::-1])
    harness.spin_until(lambda: len(harness.commands) == 2)
    for recorded in harness.commands:
        assert recorded.positions == pytest.approx(by_name(DISTINCT), abs=0.0)


@pytest.mark.parametrize("harness", [{"controller": "joint_trajectory"}], indirect=True)
def test_joint_trajectory_output_names_the_controllers_joints_and_one_point_reached_after_time_from_start(
    harness: Harness,
) -> None:
    harness.configure_and_activate()
    harness.send(DISTINCT)
    harness.spin_until(lambda: len(harness.trajectories) == 1)
    msg = harness.trajectories[0]
    assert list(msg.joint_names) == CONTROLLER
    assert len(msg.points) == 1
    assert msg.points[0].time_from_start.nanosec == 20_000_000  # trajectory_time_from_start default 0.02 s
    assert stamp_to_seconds(msg.header.stamp) == 0.0  # start on receipt
    assert harness.commands[0].positions == pytest.approx(by_name(DISTINCT), abs=0.0)


def test_stale_or_unstamped_commands_are_never_forwarded(harness: Harness) -> None:
    harness.configure_and_activate()
    counters = harness.interface.counters
    now = stamp_to_seconds(harness.io.get_clock().now().to_msg())
    # COMMAND_QOS keeps only the newest message: one at a time.
    for send, counter, count in (
        (lambda: harness.send(DISTINCT, stamp=seconds_to_stamp(now - 2 * COMMAND_TIMEOUT)), "stale_dropped", 1),
        (lambda: harness.send(DISTINCT, stamp=TimeMsg()), "stale_dropped", 2),
        (lambda: harness.send(np.full(len(NAMES), np.nan)), "rejected", 1),
        (lambda: harness.send(DISTINCT[:-1], names=NAMES[:-1]), "rejected", 2),
    ):
        send()
        harness.spin_until(lambda counter=counter, count=count: counters[counter] == count)
    harness.spin_for(0.1)
    assert harness.commands == []


def test_silent_commands_stop_forwarding_and_the_measured_pose_is_held_once(harness: Harness) -> None:
    harness.configure_and_activate()
    measured = SPEC.default_pose + 0.02
    harness.driver.positions = by_name(measured)
    for _ in range(10):  # a 50 Hz stream, then silence
        harness.send(DISTINCT)
        harness.spin_for(0.02)
    harness.spin_until(lambda: harness.interface.counters["forwarded"] == 10)
    last_command = harness.commands[-1].time
    harness.spin_until(lambda: harness.interface.state is OutputState.HOLDING, timeout=2.0)
    harness.spin_until(lambda: len(harness.commands) == 11)
    reaction = harness.commands[-1].time - last_command
    print(f"stale commands → hold of the measured pose after {reaction * 1e3:.0f} ms")
    assert COMMAND_TIMEOUT <= reaction <= COMMAND_TIMEOUT + WATCHDOG_PERIOD + 0.1
    assert harness.commands[-1].positions == pytest.approx(by_name(measured), abs=1e-12)
    harness.spin_for(0.5)
    assert len(harness.commands) == 11, "the hold is sent once, not streamed"
    harness.send(DISTINCT)  # a fresh command (the shield back, ramping): forwarding resumes
    harness.spin_until(lambda: len(harness.commands) == 12)
    assert harness.interface.state is OutputState.FORWARDING


@pytest.mark.parametrize("harness", [{"gains_topic": GAINS_TOPIC, "damping_kd_scale": 0.5}], indirect=True)
@pytest.mark.parametrize("mode", ["DAMPING", "ESTOP"])
def test_shield_damping_holds_the_pose_measured_at_entry_and_sends_zero_stiffness(harness: Harness, mode: str) -> None:
    harness.configure_and_activate()
    harness.mode("HOLD")
    harness.send(DISTINCT)
    harness.spin_until(lambda: len(harness.commands) == 1 and len(harness.gains) == 1)
    kp_kd = harness.gains[0].reshape(2, -1)
    policy_index = [NAMES.index(n) for n in CONTROLLER]
    assert kp_kd[0] == pytest.approx(SPEC.kp[policy_index]) and kp_kd[1] == pytest.approx(SPEC.kd[policy_index])
    measured = SPEC.default_pose - 0.03
    harness.driver.positions = by_name(measured)
    harness.spin_for(0.05)
    harness.mode(mode)
    harness.spin_until(lambda: len(harness.commands) == 2 and len(harness.gains) == 2)
    assert harness.commands[1].positions == pytest.approx(by_name(measured), abs=1e-12)
    passive = harness.gains[1].reshape(2, -1)
    assert np.all(passive[0] == 0.0) and passive[1] == pytest.approx(0.5 * SPEC.kd[policy_index])
    for _ in range(5):  # the shield's passive outputs are not forwarded
        harness.send(DISTINCT)
        harness.spin_for(0.02)
    harness.spin_for(0.3)
    assert len(harness.commands) == 2
    assert harness.interface.counters["suppressed_passive"] == 5
    harness.mode("HOLD")  # reset: stiff again, forwarding from the next command
    harness.send(DISTINCT)
    harness.spin_until(lambda: len(harness.commands) == 3 and len(harness.gains) == 3)
    assert harness.gains[2].reshape(2, -1)[0] == pytest.approx(SPEC.kp[policy_index])


def test_an_estop_before_the_first_command_sends_nothing(harness: Harness) -> None:
    harness.configure_and_activate()
    harness.mode("ESTOP")
    harness.spin_until(lambda: harness.interface.state is OutputState.PASSIVE)
    harness.spin_for(0.3)
    assert harness.commands == []


def test_deactivation_sends_one_hold_of_the_measured_pose_and_then_nothing(harness: Harness) -> None:
    harness.configure_and_activate()
    harness.send(DISTINCT)
    harness.spin_until(lambda: len(harness.commands) == 1)
    measured = SPEC.default_pose + 0.01
    harness.driver.positions = by_name(measured)
    harness.spin_for(0.05)
    assert harness.interface.trigger_deactivate().name == "SUCCESS"
    harness.spin_until(lambda: len(harness.commands) == 2)
    assert harness.commands[1].positions == pytest.approx(by_name(measured), abs=1e-12)
    harness.send(DISTINCT)
    harness.spin_for(0.3)
    assert len(harness.commands) == 2
