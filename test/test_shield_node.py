"""The safety-shield node under fault injection, with real rclpy, DDS and parameter services.

Each test builds its own nodes in this process: the shield, a fake robot that publishes joint states and IMU
samples stamped with the ROS clock (its joints follow /joint_commands exactly, so only the shield's bounds act),
a fake policy that answers each joint state with a command stamped with that state's stamp, and a recorder of
what reaches /joint_commands and /safety_shield/mode. Timings are measured from stamps on the shield's clock
(the ROS clock here) and printed (pytest -s shows them).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import rclpy
import yaml
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import WrenchStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Empty, String
from std_srvs.srv import SetBool, Trigger

from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.core.shield import RejectReason, ShieldMode, Stage
from humanoid_rl.graph import Topics
from humanoid_rl.nodes.conversions import seconds_to_stamp, stamp_to_seconds
from humanoid_rl.nodes.output_budget import BUDGET_RATE
from humanoid_rl.nodes.qos import CLOCK_QOS, COMMAND_QOS, LATCHED_QOS, SENSOR_QOS, STATUS_QOS
from humanoid_rl.nodes.runner import make_executor, spin_until
from humanoid_rl.nodes.safety_shield import STATS_WINDOW, SafetyShieldNode
from humanoid_rl.nodes.sim_bridge import SimBridgeNode
from humanoid_rl.paths import config_path
from humanoid_rl.sim.simulator import HumanoidSim, SimConfig

SPEC = RobotSpec.load()
DEFAULT = SPEC.default_pose
NAMES = list(SPEC.joint_names)
COMMAND_TIMEOUT = 0.1
STATE_TIMEOUT = 0.1
SHIELD_PERIOD = 0.02  # rate_hz 50 and control_period 0.02 (the defaults)
ROBOT_PERIOD = 0.01
# Executor scheduling on a shared 2-core machine: a tick may run this late (measured lateness is printed).
SCHEDULING_SLACK = 0.01
FAST_RAMP = {"ramp_time": 0.1}


@pytest.fixture(scope="module", autouse=True)
def ros() -> Iterator[None]:
    rclpy.init()
    yield
    rclpy.shutdown()


# ---------------------------------------------------------------------------------------------- test nodes
class FakeRobot(Node):
    """Joint states and IMU at 100 Hz, stamped with the ROS clock; joints follow /joint_commands exactly.

    With ``sim_time`` set it is a simulator instead: it publishes /clock and stamps with its own time, which
    advances one period per tick (and which a test may set back)."""

    def __init__(self) -> None:
        super().__init__("fake_robot")
        self.sim_time: float | None = None
        self._clock_pub = self.create_publisher(ClockMsg, Topics.CLOCK, CLOCK_QOS)
        self.positions = DEFAULT.copy()
        self.publish_joint_states = True
        self.publish_imu = True
        self.quat = np.array([0.0, 0.0, 0.0, 1.0])
        self.record_stamps = True
        self.state_stamps: list[float] = []
        self.imu_stamps: list[float] = []
        self.latest_stamp: TimeMsg | None = None
        self._joint_pub = self.create_publisher(JointState, Topics.JOINT_STATES, SENSOR_QOS)
        self._imu_pub = self.create_publisher(Imu, Topics.IMU, SENSOR_QOS)
        self.create_subscription(JointState, Topics.JOINT_COMMANDS, self._follow, COMMAND_QOS)
        self.create_timer(ROBOT_PERIOD, self._tick)
        self.on_state: Callable[[TimeMsg], None] | None = None

    def _follow(self, msg: JointState) -> None:
        self.positions = np.array(msg.position)

    def _tick(self) -> None:
        if self.sim_time is None:
            stamp = self.get_clock().now().to_msg()
        else:
            self.sim_time += ROBOT_PERIOD
            stamp = seconds_to_stamp(self.sim_time)
            self._clock_pub.publish(ClockMsg(clock=stamp))
        seconds = stamp_to_seconds(stamp)
        if self.publish_imu:
            imu = Imu()
            imu.header.stamp = stamp
            imu.orientation.x, imu.orientation.y, imu.orientation.z, imu.orientation.w = self.quat.tolist()
            self._imu_pub.publish(imu)
            if self.record_stamps:
                self.imu_stamps.append(seconds)
        if self.publish_joint_states:
            msg = JointState()
            msg.header.stamp = stamp
            msg.name = NAMES
            msg.position = self.positions.tolist()
            msg.velocity = [0.0] * len(NAMES)
            self._joint_pub.publish(msg)
            if self.record_stamps:
                self.state_stamps.append(seconds)
            self.latest_stamp = stamp
            if self.on_state is not None:
                self.on_state(stamp)


class FakePolicy(Node):
    """Answers each joint state with ``target`` stamped with that state's stamp; or publishes what it is told."""

    def __init__(self, robot: FakeRobot, name: str = "fake_policy") -> None:
        super().__init__(name)
        self.target = DEFAULT.copy()
        self.running = True
        self.sent: list[tuple[float, np.ndarray]] = []  # (stamp, positions) of every command published
        self._pub = self.create_publisher(JointState, Topics.POLICY_COMMANDS, COMMAND_QOS)
        self._every = 2  # answer every 2nd state: 50 Hz
        self._count = 0
        robot.on_state = self._on_state

    def _on_state(self, stamp: TimeMsg) -> None:
        self._count += 1
        if self.running and self._count % self._every == 0:
            self.publish(stamp, self.target)

    def publish(self, stamp: TimeMsg, positions: Any, names: list[str] | None = None) -> None:
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = NAMES if names is None else names
        msg.position = [float(v) for v in positions]
        self._pub.publish(msg)
        self.sent.append((stamp_to_seconds(stamp), np.array(msg.position)))


@dataclass
class Output:
    received: float  # ROS clock at receipt
    stamp: float
    positions: np.ndarray


@dataclass
class Recorder:
    node: Node
    outputs: list[Output] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    diagnostics: list[dict[str, str]] = field(default_factory=list)
    recording: bool = True

    def __post_init__(self) -> None:
        self.node.create_subscription(JointState, Topics.JOINT_COMMANDS, self._on_output, COMMAND_QOS)
        self.node.create_subscription(String, Topics.SHIELD_MODE, lambda m: self.modes.append(m.data), LATCHED_QOS)
        self.node.create_subscription(DiagnosticArray, Topics.DIAGNOSTICS, self._on_diagnostics, STATUS_QOS)

    def _on_output(self, msg: JointState) -> None:
        if not self.recording:
            return
        now = self.node.get_clock().now().nanoseconds * 1e-9
        assert list(msg.name) == NAMES
        self.outputs.append(Output(now, stamp_to_seconds(msg.header.stamp), np.array(msg.position)))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status if self.recording else ():
            if status.name == "humanoid_rl/safety_shield":
                self.diagnostics.append({kv.key: kv.value for kv in status.values})


class Harness:
    def __init__(self, shield: SafetyShieldNode, robot: FakeRobot, policy: FakePolicy | None) -> None:
        self.shield, self.robot, self.policy = shield, robot, policy
        self.io = Node("shield_test_io")
        self.recorder = Recorder(self.io)
        self.executor = make_executor()
        for node in (shield, robot, self.io) + ((policy,) if policy else ()):
            self.executor.add_node(node)

    @property
    def mode(self) -> ShieldMode:
        assert self.shield.shield is not None
        return self.shield.shield.mode

    def now(self) -> float:
        return self.io.get_clock().now().nanoseconds * 1e-9

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        spin_until(self.executor, lambda: time.monotonic() > end)

    def spin_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        assert spin_until(self.executor, condition, wall_timeout_s=timeout), "condition not reached in time"

    def wait_for_mode(self, mode: ShieldMode, timeout: float = 5.0) -> None:
        self.spin_until(lambda: self.mode is mode and self.recorder.modes[-1:] == [mode.value], timeout)

    def call(self, client: Any, request: Any) -> Any:
        assert client.wait_for_service(timeout_sec=5.0)
        future = client.call_async(request)
        self.spin_until(future.done)
        return future.result()

    def set_parameter(self, name: str, value: Any) -> Any:
        """What `ros2 param set /safety_shield <name> <value>` does: the node's set_parameters service."""
        client = self.io.create_client(SetParameters, "/safety_shield/set_parameters")
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        result = self.call(client, request).results[0]
        self.io.destroy_client(client)
        return result

    def transitions_to(self, mode: ShieldMode) -> list[Any]:
        assert self.shield.shield is not None
        return [t for t in self.shield.shield.transitions if t.to_mode is mode]

    def remove(self, node: Node) -> None:
        self.executor.remove_node(node)
        node.destroy_node()

    def close(self) -> None:
        self.executor.shutdown()
        for node in (self.shield, self.robot, self.policy, self.io):
            if node is not None and node.handle is not None:
                node.destroy_node()


@contextmanager
def shield_harness(with_policy: bool = True, activate: bool = True, **params: Any) -> Iterator[Harness]:
    overrides = [Parameter(k, value=v) for k, v in {**FAST_RAMP, **params}.items()]
    shield = SafetyShieldNode(parameter_overrides=overrides)
    robot = FakeRobot()
    if params.get("use_sim_time"):
        robot.sim_time = 100.0
    policy = FakePolicy(robot) if with_policy else None
    harness = Harness(shield, robot, policy)
    try:
        if activate:
            assert shield.trigger_configure().name == "SUCCESS"
            assert shield.trigger_activate().name == "SUCCESS"
        yield harness
    finally:
        harness.close()


def active_harness(**params: Any) -> Any:
    """A harness whose shield has ramped in and accepts the policy's commands."""

    @contextmanager
    def context() -> Iterator[Harness]:
        with shield_harness(**params) as harness:
            harness.wait_for_mode(ShieldMode.ACTIVE)
            yield harness

    return context()


def detection_report(label: str, delays: list[float], bound: float) -> None:
    print(f"\n{label}: " + ", ".join(f"{d * 1e3:.1f} ms" for d in delays) + f" (bound {bound * 1e3:.0f} ms)")


# ---------------------------------------------------------------------------------------------- start-up
def test_shield_ramps_in_from_the_measured_pose_and_then_passes_policy_commands_bit_identically() -> None:
    with shield_harness() as harness:
        harness.robot.positions = DEFAULT + 0.05  # the robot starts away from the default pose
        harness.wait_for_mode(ShieldMode.ACTIVE)
        first = harness.recorder.outputs[0].positions
        np.testing.assert_allclose(first, DEFAULT + 0.05, atol=0.02)  # the ramp starts at the measured pose
        harness.policy.target = DEFAULT + 0.013
        harness.spin_until(lambda: np.array_equal(harness.recorder.outputs[-1].positions, DEFAULT + 0.013))
        assert harness.recorder.modes[:2] == ["HOLD", "ACTIVE"]
        # An ACTIVE output carries the stamp of the state the policy used.
        sent_stamps = {stamp for stamp, _ in harness.policy.sent}
        assert harness.recorder.outputs[-1].stamp in sent_stamps


def test_nothing_is_published_before_the_first_joint_state_arrives() -> None:
    with shield_harness() as harness:
        harness.robot.publish_joint_states = False
        harness.spin_for(0.05)  # inside state_timeout: the shield waits for its inputs
        assert harness.recorder.outputs == []
        assert harness.shield.counters["outputs_withheld"] > 0
        harness.robot.publish_joint_states = True
        harness.wait_for_mode(ShieldMode.ACTIVE)


# ---------------------------------------------------------------------------------------------- watchdogs
def test_a_silent_policy_is_held_within_command_timeout_plus_one_period() -> None:
    with active_harness() as harness:
        harness.spin_for(0.2)
        harness.policy.running = False  # the publisher stops
        harness.wait_for_mode(ShieldMode.HOLD)
        last_stamp = harness.policy.sent[-1][0]
        hold = harness.transitions_to(ShieldMode.HOLD)[-1]
        first_hold_output = next(o for o in harness.recorder.outputs if o.stamp > last_stamp)
        delay = hold.time - last_stamp
        bound = COMMAND_TIMEOUT + SHIELD_PERIOD
        detection_report("policy stopped → HOLD (transition − last command stamp)", [delay], bound)
        assert COMMAND_TIMEOUT < delay <= bound + SCHEDULING_SLACK
        assert first_hold_output.stamp - last_stamp <= bound + SCHEDULING_SLACK
        # HOLD keeps publishing the hold pose (the default pose here) at the output rate.
        count = len(harness.recorder.outputs)
        harness.spin_for(0.2)
        assert len(harness.recorder.outputs) - count >= 7
        np.testing.assert_allclose(harness.recorder.outputs[-1].positions, DEFAULT)


def test_a_policy_node_destroyed_mid_run_is_held_and_a_new_one_is_accepted_after_the_ramp() -> None:
    with active_harness() as harness:
        harness.spin_for(0.2)
        policy = harness.policy
        last_stamp = policy.sent[-1][0]
        harness.robot.on_state = None
        harness.remove(policy)
        harness.policy = None
        harness.wait_for_mode(ShieldMode.HOLD)
        delay = harness.transitions_to(ShieldMode.HOLD)[-1].time - last_stamp
        detection_report("policy node destroyed → HOLD", [delay], COMMAND_TIMEOUT + SHIELD_PERIOD)
        assert delay <= COMMAND_TIMEOUT + SHIELD_PERIOD + SCHEDULING_SLACK
        harness.policy = FakePolicy(harness.robot, name="second_policy")
        harness.executor.add_node(harness.policy)
        harness.wait_for_mode(ShieldMode.ACTIVE)


@pytest.mark.parametrize("silent", ["joint_states", "imu"])
def test_silent_joint_states_or_imu_switch_to_damping_within_state_timeout_plus_one_period(silent: str) -> None:
    with active_harness() as harness:
        harness.spin_for(0.2)
        setattr(harness.robot, f"publish_{silent}", False)
        harness.wait_for_mode(ShieldMode.DAMPING)
        stamps = harness.robot.state_stamps if silent == "joint_states" else harness.robot.imu_stamps
        damping = harness.transitions_to(ShieldMode.DAMPING)[-1]
        delay = damping.time - stamps[-1]
        bound = STATE_TIMEOUT + SHIELD_PERIOD
        detection_report(f"{silent} silent → DAMPING (transition − last stamp)", [delay], bound)
        assert STATE_TIMEOUT < delay <= bound + SCHEDULING_SLACK
        assert ("joint state" if silent == "joint_states" else "IMU") in damping.reason
        # DAMPING outputs the measured pose (the mode topic tells the bridge: stiffness 0).
        harness.spin_for(0.1)
        np.testing.assert_allclose(harness.recorder.outputs[-1].positions, harness.robot.positions)
        # Inputs back: HOLD with a ramp, then ACTIVE again.
        setattr(harness.robot, f"publish_{silent}", True)
        harness.wait_for_mode(ShieldMode.ACTIVE)


def test_the_steady_clock_watchdog_holds_a_silent_policy_on_time() -> None:
    with active_harness(clock="steady") as harness:
        harness.spin_for(0.2)
        harness.policy.running = False
        stopped = time.monotonic()
        harness.wait_for_mode(ShieldMode.HOLD)
        delay = harness.transitions_to(ShieldMode.HOLD)[-1].time - stopped  # both monotonic
        detection_report("steady clock: policy stopped → HOLD (transition − stop)", [delay], 0.12)
        assert delay <= COMMAND_TIMEOUT + SHIELD_PERIOD + SCHEDULING_SLACK


def test_stale_joint_states_count_as_silent() -> None:
    with active_harness() as harness:
        harness.robot.get_clock = lambda: _LaggingClock(harness.robot, lag=0.5)  # type: ignore[method-assign]
        harness.wait_for_mode(ShieldMode.DAMPING)
        assert harness.shield.counters["state_stamp_rejected"] > 0
        assert harness.shield.counters["imu_stamp_rejected"] > 0


def test_a_simulator_clock_that_jumps_back_restarts_the_shield_whose_watchdogs_then_still_fire() -> None:
    with active_harness(use_sim_time=True) as harness:
        harness.spin_for(0.2)
        harness.robot.sim_time = 1.0  # a simulator restarted its clock (sim time 100 s → 1 s)
        harness.spin_until(lambda: harness.shield.counters["clock_jumps_back"] == 1)
        harness.wait_for_mode(ShieldMode.ACTIVE)  # a fresh ramp from the measured pose, then the policy again
        assert harness.recorder.outputs[-1].stamp < 10.0
        harness.policy.running = False  # the command watchdog works on the new time line
        harness.wait_for_mode(ShieldMode.HOLD)
        assert harness.shield.counters["clock_jumps_back"] == 1


def test_an_estop_stays_latched_when_the_simulator_clock_jumps_back() -> None:
    with active_harness(use_sim_time=True) as harness:
        estop = harness.io.create_client(Trigger, Topics.SHIELD_ESTOP)
        assert harness.call(estop, Trigger.Request()).success
        harness.robot.sim_time = 1.0
        harness.spin_until(lambda: harness.shield.counters["clock_jumps_back"] == 1)
        harness.spin_for(0.3)
        assert harness.mode is ShieldMode.ESTOP
        assert "clock jumped back" in harness.shield.shield.last_reason


class _LaggingClock:
    """The fake robot's clock, ``lag`` seconds behind (a driver stamping with a delayed clock)."""

    def __init__(self, node: Node, lag: float) -> None:
        self._clock, self._lag = Node.get_clock(node), lag

    def now(self) -> Any:
        return self._clock.now() - rclpy.duration.Duration(seconds=self._lag)


# ---------------------------------------------------------------------------------------------- bad commands
def test_nan_wrong_names_and_bad_stamps_never_reach_joint_commands() -> None:
    with active_harness() as harness:
        policy, robot = harness.policy, harness.robot
        policy.running = False
        bad = DEFAULT + 0.05  # would pass every bound if accepted: any trace of it on the output is a leak
        reversed_names = NAMES[::-1]
        unknown = NAMES[:-1] + ["bogus_joint"]
        duplicate = NAMES[:-1] + [NAMES[0]]
        nan = bad.copy()
        nan[3] = math.nan
        inf = bad.copy()
        inf[0] = math.inf
        cases: list[tuple[RejectReason, Callable[[float], tuple[float, Any, list[str]]]]] = [
            (RejectReason.NON_FINITE, lambda t: (t, nan, NAMES)),
            (RejectReason.NON_FINITE, lambda t: (t, inf, NAMES)),
            (RejectReason.UNKNOWN_JOINT, lambda t: (t, bad, unknown)),
            (RejectReason.DUPLICATE_JOINT, lambda t: (t, bad, duplicate)),
            (RejectReason.MISSING_JOINT, lambda t: (t, bad[:-1], NAMES[:-1])),
            (RejectReason.LENGTH_MISMATCH, lambda t: (t, bad[:-1], NAMES)),
            (RejectReason.STALE_STAMP, lambda t: (t - 0.5, bad, NAMES)),
            (RejectReason.FUTURE_STAMP, lambda t: (t + 0.5, bad, NAMES)),
            (RejectReason.BAD_STAMP, lambda t: (0.0, bad, NAMES)),
        ]
        rejected_before = dict(harness.shield.shield.counters.commands_rejected)
        bad_stamps: set[float] = set()
        outputs_before = len(harness.recorder.outputs)
        for _ in range(3):
            for _reason, make in cases:
                state = stamp_to_seconds(robot.latest_stamp)
                stamp, positions, names = make(state + 1e-6)  # 1 µs after the state: a stamp no state has
                policy.publish(seconds_to_stamp(stamp), positions, names)
                bad_stamps.add(round(stamp_to_seconds(seconds_to_stamp(stamp)), 9))
                harness.spin_for(0.02)
                policy.publish(robot.latest_stamp, DEFAULT)  # a good one keeps the command watchdog fed
                harness.spin_for(0.02)
        outputs = harness.recorder.outputs[outputs_before:]
        assert len(outputs) > 2 * len(cases)
        for output in outputs:
            assert np.isfinite(output.positions).all()
            assert np.array_equal(output.positions, DEFAULT), "a rejected command moved the output"
            assert round(output.stamp, 9) not in bad_stamps
        assert harness.mode is ShieldMode.ACTIVE  # the good commands kept flowing
        # Each was judged and rejected for its own reason (a bad command that the output budget held back until
        # the next good one arrived is superseded instead: counted as ignored, judged never).
        rejected = harness.shield.shield.counters.commands_rejected
        for reason, _ in cases:
            assert rejected[reason] > rejected_before[reason], reason
        total = sum(rejected[r] - rejected_before[r] for r in RejectReason)
        assert total >= 0.8 * 3 * len(cases)
        # A command in another joint order with the right names is mapped by name, not refused.
        target = DEFAULT + 0.01
        policy.publish(robot.latest_stamp, target[::-1], reversed_names)
        harness.spin_until(lambda: np.array_equal(harness.recorder.outputs[-1].positions, target))


# ---------------------------------------------------------------------------------------------- parameters
def test_a_valid_parameter_set_through_the_parameter_service_changes_the_next_command() -> None:
    with active_harness() as harness:
        policy = harness.policy
        policy.target = DEFAULT + 0.1  # one step of 0.1 rad: inside the default rate bound (10 rad/s × 0.02 s)
        harness.spin_until(lambda: np.allclose(harness.recorder.outputs[-1].positions, DEFAULT + 0.1))
        policy.target = DEFAULT.copy()
        harness.spin_until(lambda: np.allclose(harness.recorder.outputs[-1].positions, DEFAULT))
        result = harness.set_parameter("max_target_rate", 1.0)
        assert result.successful, result.reason
        assert harness.shield.get_parameter("max_target_rate").value == 1.0
        assert harness.shield.shield.requested_params.max_target_rate == 1.0
        harness.spin_for(3.6)  # a tightened bound closes in, halving each second: 10 → 1 rad/s in 3.3 s
        assert harness.shield.shield.params.max_target_rate == 1.0
        count = len(harness.recorder.outputs)
        policy.target = DEFAULT + 0.1
        harness.spin_for(1.0)  # 0.1 rad at 1 rad/s: the first five commands are clipped by the rate bound
        harness.spin_until(lambda: len(harness.recorder.outputs) >= count + 3)
        steps = np.diff([o.positions for o in harness.recorder.outputs[count - 1 :]], axis=0)
        assert np.abs(steps).max() <= 1.0 * 0.02 + 1e-12  # now 1 rad/s × control_period per output
        assert harness.shield.shield.counters.interventions[Stage.RATE] >= 3
        assert harness.shield.param_changes == 1


def test_a_new_rate_hz_retimes_the_outputs_between_commands() -> None:
    with active_harness() as harness:
        harness.policy.running = False
        harness.wait_for_mode(ShieldMode.HOLD)
        assert harness.set_parameter("rate_hz", 25.0).successful
        harness.spin_for(0.1)
        count, start = len(harness.recorder.outputs), harness.now()
        harness.spin_for(1.0)
        rate = (len(harness.recorder.outputs) - count) / (harness.now() - start)
        assert 22.0 <= rate <= 27.0, rate


def test_an_out_of_range_value_is_refused_with_a_reason_and_the_old_value_stays() -> None:
    with active_harness() as harness:
        result = harness.set_parameter("tilt_trip", 10.0)
        assert not result.successful
        assert "tilt_trip" in result.reason or "range" in result.reason
        assert harness.shield.get_parameter("tilt_trip").value == 0.7
        assert harness.shield.shield.params.tilt_trip == 0.7
        # Within the declared range but no room left inside the robot's joint ranges: refused by the robot check.
        result = harness.set_parameter("soft_margin", 0.45)
        assert not result.successful and "soft_margin" in result.reason
        assert harness.shield.shield.params.soft_margin == 0.02
        assert harness.shield.param_refusals == 2


def test_an_inconsistent_pair_is_refused_tilt_warn_must_stay_below_tilt_trip_and_logged_once(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with active_harness() as harness:
        capfd.readouterr()
        result = harness.set_parameter("tilt_warn", 0.8)
        assert not result.successful
        assert "tilt_warn" in result.reason and "tilt_trip" in result.reason
        assert harness.shield.get_parameter("tilt_warn").value == 0.35
        assert harness.shield.shield.params.tilt_warn == 0.35
        harness.spin_for(0.1)
        assert capfd.readouterr().err.count("refused") == 1


@pytest.mark.parametrize(("name", "value"), [("gravity", 9.0), ("clock", "steady"), ("use_urdf_limits", False)])
def test_read_only_parameters_are_refused(name: str, value: Any) -> None:
    with active_harness() as harness:
        before = harness.shield.get_parameter(name).value
        result = harness.set_parameter(name, value)
        assert not result.successful
        assert "read-only" in result.reason.lower() or "read only" in result.reason.lower()
        assert harness.shield.get_parameter(name).value == before
        assert harness.shield.param_refusals == 1


# ---------------------------------------------------------------------------------------------- services
def test_estop_is_latched_until_reset_whatever_the_policy_sends() -> None:
    with active_harness() as harness:
        estop = harness.io.create_client(Trigger, Topics.SHIELD_ESTOP)
        reset = harness.io.create_client(Trigger, Topics.SHIELD_RESET)
        assert harness.call(estop, Trigger.Request()).success
        assert harness.mode is ShieldMode.ESTOP
        harness.policy.target = DEFAULT + 0.05
        harness.wait_for_mode(ShieldMode.ESTOP)
        count = len(harness.recorder.outputs)
        harness.spin_for(0.5)
        assert harness.mode is ShieldMode.ESTOP
        held = harness.recorder.outputs[count:]
        assert len(held) >= 15  # passive outputs keep coming at the output rate
        for output in held:
            np.testing.assert_allclose(output.positions, held[0].positions)  # the measured pose, never the policy's
        response = harness.call(reset, Trigger.Request())
        assert response.success, response.message
        harness.wait_for_mode(ShieldMode.ACTIVE)
        harness.spin_until(lambda: np.allclose(harness.recorder.outputs[-1].positions, DEFAULT + 0.05))
        assert harness.recorder.modes[-3:] == ["ESTOP", "HOLD", "ACTIVE"]


def test_require_engage_holds_until_engaged_and_disengage_returns_to_hold() -> None:
    with shield_harness(require_engage=True) as harness:
        engage = harness.io.create_client(SetBool, Topics.SHIELD_ENGAGE)
        harness.spin_for(0.4)  # the ramp (0.1 s) is long over
        assert harness.mode is ShieldMode.HOLD
        assert harness.call(engage, SetBool.Request(data=True)).success
        harness.wait_for_mode(ShieldMode.ACTIVE)
        assert harness.call(engage, SetBool.Request(data=False)).success
        harness.wait_for_mode(ShieldMode.HOLD)


def test_with_a_deadman_timeout_commands_pass_only_while_heartbeats_arrive() -> None:
    with shield_harness(deadman_timeout=0.2) as harness:
        heartbeat = harness.io.create_publisher(Empty, Topics.DEADMAN, SENSOR_QOS)
        beating = [False]
        harness.io.create_timer(0.05, lambda: beating[0] and heartbeat.publish(Empty()))
        harness.spin_for(0.4)  # ramp over, commands arrive, no heartbeat yet
        assert harness.mode is ShieldMode.HOLD
        beating[0] = True
        harness.wait_for_mode(ShieldMode.ACTIVE)
        beating[0] = False
        stopped = harness.now()
        harness.wait_for_mode(ShieldMode.HOLD)
        delay = harness.transitions_to(ShieldMode.HOLD)[-1].time - stopped
        detection_report("deadman heartbeats stopped → HOLD (transition − stop)", [delay], 0.2 + SHIELD_PERIOD)
        assert delay <= 0.2 + SHIELD_PERIOD + SCHEDULING_SLACK
        assert harness.set_parameter("deadman_timeout", 0.0).successful  # off at run time: engaged again
        harness.wait_for_mode(ShieldMode.ACTIVE)


def test_deactivation_holds_the_measured_pose_once_and_reactivation_ramps_in_again() -> None:
    with active_harness() as harness:
        harness.spin_for(0.1)
        assert harness.shield.trigger_deactivate().name == "SUCCESS"
        harness.spin_for(0.1)
        count = len(harness.recorder.outputs)
        assert harness.recorder.modes[-1] == "HOLD"
        np.testing.assert_allclose(harness.recorder.outputs[-1].positions, harness.robot.positions)
        harness.spin_for(0.3)
        assert len(harness.recorder.outputs) == count  # silent while inactive
        assert harness.shield.trigger_activate().name == "SUCCESS"
        harness.wait_for_mode(ShieldMode.ACTIVE)


def test_an_estop_survives_deactivation_and_reactivation() -> None:
    with active_harness() as harness:
        estop = harness.io.create_client(Trigger, Topics.SHIELD_ESTOP)
        assert harness.call(estop, Trigger.Request()).success
        assert harness.shield.trigger_deactivate().name == "SUCCESS"
        assert harness.shield.trigger_activate().name == "SUCCESS"
        harness.spin_for(0.3)
        assert harness.mode is ShieldMode.ESTOP


def test_a_missing_robot_config_fails_configure_with_the_file_named() -> None:
    with shield_harness(activate=False, robot_config="/nonexistent/robot.yaml") as harness:
        assert harness.shield.trigger_configure().name == "FAILURE"
        assert "/nonexistent/robot.yaml" in harness.shield.configure_error
        assert harness.shield.shield is None


def test_cleanup_frees_everything_and_a_second_configure_starts_afresh() -> None:
    with active_harness() as harness:
        shield = harness.shield
        assert shield.trigger_deactivate().name == "SUCCESS"
        assert shield.trigger_cleanup().name == "SUCCESS"
        harness.spin_until(lambda: harness.io.count_publishers(Topics.JOINT_COMMANDS) == 0)
        assert shield.shield is None and shield.lifecycle_state == "unconfigured"
        assert shield.trigger_configure().name == "SUCCESS"
        assert shield.trigger_activate().name == "SUCCESS"
        harness.wait_for_mode(ShieldMode.ACTIVE)


# ---------------------------------------------------------------------------------------------- diagnostics
def test_diagnostics_report_mode_counters_and_filter_cost() -> None:
    with active_harness() as harness:
        harness.spin_for(1.2)
        values = harness.recorder.diagnostics[-1]
        assert values["mode"] == "ACTIVE"
        assert int(values["commands_accepted"]) > 20
        for key in ("commands_rejected.non_finite", "interventions.RATE", "mode_entries.HOLD", "param_refusals"):
            assert key in values
        p50, p99 = float(values["filter_p50_us"]), float(values["filter_p99_us"])
        rate = float(values["output_rate_hz"])
        print(f"\nfilter cost in the node: p50 {p50:.0f} µs, p99 {p99:.0f} µs; output rate {rate:.1f} Hz")
        assert 0 < p50 < 2000
        assert 40 <= rate <= 55


# ---------------------------------------------------------------------------------------------- flood
def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


FLOOD_POLICY = """
import sys, time
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import JointState
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.graph import Topics
from humanoid_rl.nodes.qos import COMMAND_QOS

period, duration = float(sys.argv[1]), float(sys.argv[2])
spec = RobotSpec.load()
rclpy.init()
node = Node("flood_policy")
publisher = node.create_publisher(JointState, Topics.POLICY_COMMANDS, COMMAND_QOS)
msg = JointState(name=list(spec.joint_names), position=spec.default_pose.tolist())
while publisher.get_subscription_count() == 0:
    time.sleep(0.01)
start = deadline = time.monotonic()
end, sent = deadline + duration, 0
while deadline < end:
    msg.header.stamp = node.get_clock().now().to_msg()  # stamped now: the latency is the shield's and DDS's
    publisher.publish(msg)
    sent += 1
    deadline += period
    time.sleep(max(0.0, deadline - time.monotonic()))
print(sent / (time.monotonic() - start), flush=True)
node.destroy_node()
rclpy.shutdown()
"""


def _flood(duration_s: float) -> None:
    """10× the nominal command rate from another process: output rate, latency and memory stay bounded."""
    with active_harness() as harness:
        harness.policy.running = False
        harness.robot.record_stamps = harness.recorder.recording = False  # no growing test records
        latencies = np.zeros(int(duration_s / SHIELD_PERIOD * 2))
        received = [0]

        def on_output(msg: JointState) -> None:
            if received[0] < latencies.size:
                latencies[received[0]] = harness.io.get_clock().now().nanoseconds * 1e-9 - stamp_to_seconds(
                    msg.header.stamp
                )
            received[0] += 1

        shield = harness.shield
        counters = shield.shield.counters
        warm_up = STATS_WINDOW * SHIELD_PERIOD + 0.5  # until the statistics windows are full (then flat)
        memory_s = min(10.0, duration_s)
        flood = subprocess.Popen(
            [sys.executable, "-c", FLOOD_POLICY, str(SHIELD_PERIOD / 10), str(warm_up + duration_s + memory_s + 4)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            commands = counters.commands_received
            harness.spin_until(lambda: counters.commands_received > commands + 50, timeout=20.0)
            harness.spin_for(warm_up)
            harness.io.create_subscription(JointState, Topics.JOINT_COMMANDS, on_output, COMMAND_QOS)
            harness.spin_for(0.2)
            # Rate and latency, undisturbed.
            rss_before = _rss_bytes()
            commands, received[0] = counters.commands_received, 0
            start = harness.now()
            harness.spin_for(duration_s)
            elapsed = harness.now() - start
            outputs, command_rate = received[0], (counters.commands_received - commands) / elapsed
            rss_growth = _rss_bytes() - rss_before
            timing = shield.timing()
            # Memory, traced (which slows everything down): what survives of the allocations of memory_s seconds.
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
            harness.spin_for(memory_s)
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
        finally:
            sent_rate = float(flood.communicate(timeout=30.0)[0].strip() or 0.0)
        not_tracemalloc = [tracemalloc.Filter(False, tracemalloc.__file__)]
        growth = after.filter_traces(not_tracemalloc).compare_to(before.filter_traces(not_tracemalloc), "filename")
        shield_files = ("humanoid_rl/core/", "humanoid_rl/nodes/safety_shield.py", "humanoid_rl/nodes/params.py")
        total_growth = sum(d.size_diff for d in growth)
        shield_growth = sum(d.size_diff for d in growth if any(f in d.traceback[0].filename for f in shield_files))
        if os.environ.get("SHIELD_TEST_MEMORY_DEBUG"):
            for d in growth[:10]:
                print(d)
        output_rate = outputs / elapsed
        latencies = latencies[: min(outputs, latencies.size)]
        print(
            f"\nflood {duration_s:.0f} s: commands sent {sent_rate:.0f} Hz, processed {command_rate:.0f} Hz, "
            f"outputs {output_rate:.1f} Hz, latency "
            f"(command stamp → output received) p50 {np.percentile(latencies, 50) * 1e3:.2f} ms, "
            f"p99 {np.percentile(latencies, 99) * 1e3:.2f} ms, max {latencies.max() * 1e3:.2f} ms; "
            f"filter p50 {timing['filter_p50_us']:.0f} µs, p99 {timing['filter_p99_us']:.0f} µs; RSS growth "
            f"{rss_growth / 1e6:.2f} MB; traced growth over {memory_s:.0f} s {total_growth / 1e3:.1f} kB (shield code "
            f"{shield_growth / 1e3:.1f} kB)"
        )
        assert sent_rate > 8.0 / SHIELD_PERIOD  # the flood really ran at about ten times the nominal rate
        assert command_rate > 2.0 / SHIELD_PERIOD  # and the shield took in more than it may put out
        assert harness.mode is ShieldMode.ACTIVE
        assert output_rate <= BUDGET_RATE / SHIELD_PERIOD * 1.03  # about one output per control period
        assert output_rate >= 1.0 / SHIELD_PERIOD * 0.8
        assert np.percentile(latencies, 99) < 0.05  # no queue builds up: a few periods at most
        assert rss_growth < 2_000_000
        assert shield_growth < 10_000
        assert total_growth < 400_000  # rclpy's own pools grow sublinearly and settle; the same bound at 5 s and 30 s


def test_a_flood_of_ten_times_the_command_rate_keeps_output_rate_latency_and_memory_bounded() -> None:
    _flood(5.0)


@pytest.mark.slow
def test_a_thirty_second_flood_keeps_output_rate_latency_and_memory_bounded() -> None:
    _flood(30.0)


# ---------------------------------------------------------------------------------------------- parameter files
@pytest.mark.parametrize("file", ["sim.yaml", "real_robot.yaml"])
def test_the_shipped_parameter_files_configure_the_shield(file: str) -> None:
    path = config_path(file)
    shield = SafetyShieldNode(cli_args=["--ros-args", "--params-file", str(path)])
    try:
        section = yaml.safe_load(path.read_text())["safety_shield"]["ros__parameters"]
        for name, value in section.items():
            assert shield.get_parameter(name).value == value, name  # declared, typed right, taken
        assert shield.trigger_configure().name == "SUCCESS", shield.configure_error
    finally:
        shield.destroy_node()


# ---------------------------------------------------------------------------------------------- closed loop
# The simulation bridge node in lock-step (sync: true) with the shield (trigger: state, sim time). The estimator's
# odometry is the bridge's ground truth (remapped), so balance is judged from exact CoM and feet.
FALL_HEIGHT = 0.5  # m: the base below this is a fall (standing: 0.80 m)


class ClosedLoop:
    def __init__(self, policy: Callable[[JointState], np.ndarray | None] | None, seed: int = 0, **shield: Any) -> None:
        bridge_params = {"sync": True, "state_rate_hz": 50.0, "seed": seed, "sync_timeout": 0.5}
        self.bridge = SimBridgeNode(parameter_overrides=[Parameter(k, value=v) for k, v in bridge_params.items()])
        shield_params = {"use_sim_time": True, "trigger": "state", "ramp_time": 0.5, **shield}
        self.shield = SafetyShieldNode(
            parameter_overrides=[Parameter(k, value=v) for k, v in shield_params.items()],
            cli_args=["--ros-args", "-r", f"{Topics.ESTIMATOR_ODOM}:={Topics.GROUND_TRUTH_ODOM}"],
        )
        self.policy = policy
        self.io = Node("closed_loop_io")
        self.heights: list[tuple[float, float]] = []  # (sim time, base height)
        self.outputs: list[np.ndarray] = []
        self.measured: list[np.ndarray] = []
        self._command_pub = self.io.create_publisher(JointState, Topics.POLICY_COMMANDS, COMMAND_QOS)
        self.push_pub = self.io.create_publisher(WrenchStamped, Topics.SIM_PUSH, COMMAND_QOS)
        self.io.create_subscription(JointState, Topics.JOINT_STATES, self._on_state, SENSOR_QOS)
        self.io.create_subscription(Odometry, Topics.GROUND_TRUTH_ODOM, self._on_odom, SENSOR_QOS)
        self.io.create_subscription(
            JointState, Topics.JOINT_COMMANDS, lambda m: self.outputs.append(np.array(m.position)), COMMAND_QOS
        )
        self.executor = make_executor()
        for node in (self.io, self.shield):
            self.executor.add_node(node)
        assert self.shield.trigger_configure().name == "SUCCESS"
        assert self.shield.trigger_activate().name == "SUCCESS"
        io = self.io

        def discovered() -> bool:
            return (
                io.count_publishers(Topics.JOINT_STATES) >= 1
                and io.count_subscribers(Topics.JOINT_COMMANDS) >= 2
                and io.count_subscribers(Topics.SIM_PUSH) >= 1
                and self._command_pub.get_subscription_count() >= 1
            )

        assert spin_until(self.executor, discovered, wall_timeout_s=15.0), "DDS discovery timed out"
        self.executor.add_node(self.bridge)  # only now does sim time start

    def _on_state(self, msg: JointState) -> None:
        self.measured.append(np.array(msg.position))
        if self.policy is not None:
            target = self.policy(msg)
            if target is not None:
                self._command_pub.publish(JointState(header=msg.header, name=NAMES, position=target.tolist()))

    def _on_odom(self, msg: Odometry) -> None:
        self.heights.append((stamp_to_seconds(msg.header.stamp), msg.pose.pose.position.z))

    @property
    def mode(self) -> ShieldMode:
        assert self.shield.shield is not None
        return self.shield.shield.mode

    def run_until(self, sim_time_s: float, wall_timeout_s: float = 120.0) -> None:
        done = spin_until(
            self.executor, lambda: self.bridge.sim_time_s >= sim_time_s - 1e-9, wall_timeout_s=wall_timeout_s
        )
        assert done, f"sim time reached only {self.bridge.sim_time_s:.2f} s of {sim_time_s} s"

    def push(self, force: tuple[float, float, float]) -> None:
        msg = WrenchStamped()
        msg.header.frame_id = "odom"
        msg.wrench.force.x, msg.wrench.force.y, msg.wrench.force.z = force
        self.push_pub.publish(msg)

    def call(self, srv_type: Any, name: str) -> Any:
        client = self.io.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=5.0)
        future = client.call_async(srv_type.Request())
        assert spin_until(self.executor, future.done, wall_timeout_s=10.0)
        self.io.destroy_client(client)
        return future.result()

    def close(self) -> None:
        for node in (self.bridge, self.shield, self.io):
            self.executor.remove_node(node)
            node.destroy_node()
        self.executor.shutdown()


@contextmanager
def closed_loop(policy: Callable[[JointState], np.ndarray | None] | None, **kwargs: Any) -> Iterator[ClosedLoop]:
    loop = ClosedLoop(policy, **kwargs)
    try:
        yield loop
    finally:
        loop.close()


def hold_default_pose(state: JointState) -> np.ndarray:
    return DEFAULT


def test_with_the_policy_silent_the_shield_keeps_the_simulated_robot_standing() -> None:
    with closed_loop(None) as loop:
        start = time.monotonic()
        loop.run_until(5.0)
        wall = time.monotonic() - start
        modes = {t.to_mode for t in loop.shield.shield.transitions}
        heights = np.array([z for _, z in loop.heights])
        print(
            f"\npolicy silent: 5 s of sim in {wall:.1f} s wall, base height {heights.min():.3f}–{heights.max():.3f} m"
        )
        assert loop.mode is ShieldMode.HOLD and modes <= {ShieldMode.HOLD}
        assert heights.min() > 0.95 * SPEC.nominal_base_height
        assert loop.bridge.sync_timeouts == 0  # the shield answered every state itself
        np.testing.assert_allclose(loop.outputs[-1], DEFAULT)


def test_in_lock_step_a_policy_that_falls_silent_is_held_and_the_simulation_keeps_going() -> None:
    def silent_after_one_second(state: JointState) -> np.ndarray | None:
        return DEFAULT if stamp_to_seconds(state.header.stamp) < 1.0 else None

    with closed_loop(silent_after_one_second) as loop:
        loop.run_until(1.0)
        assert loop.mode is ShieldMode.ACTIVE
        loop.run_until(2.0)
        hold = [t for t in loop.shield.shield.transitions if t.to_mode is ShieldMode.HOLD][-1]
        print(f"\nlock-step, policy silent at 1.0 s: HOLD at {hold.time:.3f} s (sim time)")
        assert loop.mode is ShieldMode.HOLD
        last_command = 1.0 - SHIELD_PERIOD  # the policy answered the states stamped before 1.0 s
        assert last_command + COMMAND_TIMEOUT < hold.time <= last_command + COMMAND_TIMEOUT + SHIELD_PERIOD
        assert loop.shield.counters["unanswered_states"] >= 1  # the shield answered the states the policy left
        assert loop.bridge.sync_timeouts == 0


def unrecoverable_fall_time(force: tuple[float, float, float], push_at: float, seed: int = 0) -> float | None:
    """Sim time at which the base falls below FALL_HEIGHT under the hold-pose policy without any shield."""
    with HumanoidSim(SPEC, SimConfig(seed=seed)) as sim:
        sim.set_joint_targets(DEFAULT)
        sim.step(int(round(push_at * sim.physics_rate_hz)))
        sim.apply_push(np.array(force), 0.2)
        for _ in range(int(3.0 * sim.physics_rate_hz)):
            sim.step(1)
            if sim.ground_truth().pos[2] < FALL_HEIGHT:
                return sim.time_s
    return None


def test_a_push_the_policy_cannot_recover_trips_the_balance_prediction_before_the_base_falls() -> None:
    force, push_at = (150.0, 0.0, 0.0), 1.5
    fall_without_shield = unrecoverable_fall_time(force, push_at)
    assert fall_without_shield is not None, "the push must be one the hold-pose policy cannot recover from"
    with closed_loop(hold_default_pose) as loop:
        loop.run_until(push_at)
        assert loop.mode is ShieldMode.ACTIVE
        loop.push(force)
        loop.run_until(push_at + 3.0)
        trips = [t for t in loop.shield.shield.transitions if t.to_mode is ShieldMode.DAMPING]
        assert trips and "balance trip" in trips[0].reason, [t.reason for t in loop.shield.shield.transitions]
        trip = trips[0].time
        fall = next(t for t, z in loop.heights if t > push_at and z < FALL_HEIGHT)
        print(
            f"\npush {force[0]:.0f} N × 0.2 s at {push_at} s: balance trip at {trip:.3f} s, base below {FALL_HEIGHT} m "
            f"at {fall:.3f} s (without the shield {fall_without_shield:.3f} s): lead {(fall - trip) * 1e3:.0f} ms; "
            f"{trips[0].reason}"
        )
        assert push_at < trip < fall
        assert fall - trip >= 0.1
        assert loop.mode is ShieldMode.DAMPING  # latched: a fallen robot does not stand up by itself


@pytest.mark.slow
def test_twenty_seeded_episodes_with_random_pushes_never_command_past_a_joint_limit() -> None:
    rng = np.random.default_rng(7)
    lower, upper = SPEC.lower, SPEC.upper
    noise = np.zeros(len(NAMES))

    def wild_policy(state: JointState) -> np.ndarray:
        # A policy that wanders and sometimes asks for targets far beyond the joint limits.
        noise[:] = 0.9 * noise + rng.normal(0.0, 0.08, noise.size)
        spike = rng.random() < 0.05
        return DEFAULT + noise + (rng.choice([-3.0, 3.0], noise.size) if spike else 0.0)

    episode_s, trips, falls = 3.0, 0, 0
    with closed_loop(wild_policy, seed=3) as loop:
        for _ in range(20):
            start = loop.bridge.sim_time_s
            loop.run_until(start + 1.0 + rng.uniform(0.0, 0.5))
            angle, magnitude = rng.uniform(0, 2 * math.pi), rng.uniform(20.0, 150.0)
            loop.push((magnitude * math.cos(angle), magnitude * math.sin(angle), 0.0))
            loop.run_until(start + episode_s)
            trips += loop.mode is ShieldMode.DAMPING
            falls += any(t > start and z < FALL_HEIGHT for t, z in loop.heights)
            assert loop.call(Trigger, Topics.SIM_RESET).success
            loop.run_until(loop.bridge.sim_time_s + 0.1)
            if loop.mode is ShieldMode.DAMPING:
                response = loop.call(Trigger, Topics.SHIELD_RESET)
                assert response.success, response.message
            loop.heights.clear()
        outputs, measured = np.array(loop.outputs), np.array(loop.measured)
        counters = loop.shield.shield.counters
        commanded_violations = int(((outputs < lower) | (outputs > upper)).any(axis=1).sum())
        measured_excess = float(np.maximum(measured - upper, lower - measured).max())
        print(
            f"\n20 episodes: {len(outputs)} outputs, commanded past a limit: {commanded_violations}, measured at most "
            f"{measured_excess:+.4f} rad beyond a limit; balance trips {trips}, falls {falls}; interventions "
            f"{ {s.name: n for s, n in counters.interventions.items()} }, accepted {counters.commands_accepted}"
        )
        assert commanded_violations == 0
        assert (
            measured_excess <= 0.02
        )  # PyBullet's joint-limit constraint is soft: a fall's impacts push ~0.01 rad past it
        assert counters.interventions[Stage.POSITION] > 0 and counters.interventions[Stage.RATE] > 0
