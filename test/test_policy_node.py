from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import State
from nav_msgs.msg import Odometry
from policy_fixtures import write_mlp_policy
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState

from humanoid_rl.core.contract import PolicyContract, RobotState
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.graph import Topics
from humanoid_rl.nodes.conversions import seconds_to_stamp, stamp_to_seconds
from humanoid_rl.nodes.policy import PolicyNode
from humanoid_rl.nodes.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS
from humanoid_rl.nodes.runner import make_executor, spin_until
from humanoid_rl.policy.runtime import OnnxPolicy

SPEC = RobotSpec.load(None)
CONTRACT = PolicyContract.from_robot(SPEC)
DISCOVERY_TIMEOUT_S = 10.0


@pytest.fixture()
def ros() -> Iterator[None]:
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("models")
    write_mlp_policy(directory / "stand.onnx", CONTRACT)
    write_mlp_policy(directory / "corrupted.onnx", CONTRACT, corrupt_pair=True)
    names = list(SPEC.joint_names)
    names[0], names[6] = names[6], names[0]  # left/right hip yaw swapped: trained for another joint order
    swapped = PolicyContract.from_robot(SPEC)
    swapped = PolicyContract.from_dict({**swapped.to_dict(), "joint_names": names})
    write_mlp_policy(directory / "swapped.onnx", swapped)
    write_mlp_policy(directory / "fast.onnx", PolicyContract.from_robot(SPEC, policy_rate_hz=100.0))
    return directory


class RobotSide:
    """A test node standing in for the robot, the estimator and the shield: publishes state, records commands."""

    def __init__(self, node: PolicyNode) -> None:
        self.policy_node = node
        self.node = Node("fake_robot")
        self.joint_pub = self.node.create_publisher(JointState, Topics.JOINT_STATES, SENSOR_QOS)
        self.odom_pub = self.node.create_publisher(Odometry, Topics.ESTIMATOR_ODOM, SENSOR_QOS)
        self.commands: list[JointState] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.node.create_subscription(JointState, Topics.POLICY_COMMANDS, self.commands.append, COMMAND_QOS)
        self.node.create_subscription(DiagnosticArray, Topics.DIAGNOSTICS, self.diagnostics.append, STATUS_QOS)
        self.executor = make_executor()
        self.executor.add_node(node)
        self.executor.add_node(self.node)
        rng = np.random.default_rng(3)
        self.joint_pos = SPEC.default_pose + rng.normal(0.0, 0.05, SPEC.n_joints)
        self.joint_vel = rng.normal(0.0, 0.5, SPEC.n_joints)
        self.quat = np.array([0.05, -0.03, 0.1, 1.0]) / np.linalg.norm([0.05, -0.03, 0.1, 1.0])
        self.ang_vel = np.array([0.2, -0.4, 0.1])

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def joint_state(self, stamp: float, position: np.ndarray | None = None) -> JointState:
        """Names in REVERSE policy order, so only a by-name mapping gets the values right."""
        msg = JointState()
        msg.header.stamp = seconds_to_stamp(stamp)
        msg.name = list(reversed(SPEC.joint_names))
        msg.position = (self.joint_pos if position is None else position)[::-1].tolist()
        msg.velocity = self.joint_vel[::-1].tolist()
        return msg

    def odom(self, stamp: float, quat: np.ndarray | None = None) -> Odometry:
        msg = Odometry()
        msg.header.stamp = seconds_to_stamp(stamp)
        q = self.quat if quat is None else quat
        o = msg.pose.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in q)
        a = msg.twist.twist.angular
        a.x, a.y, a.z = (float(v) for v in self.ang_vel)
        return msg

    def expected_first_targets(self) -> np.ndarray:
        policy = self.policy_node.policy
        assert policy is not None
        state = RobotState(
            base_ang_vel=self.ang_vel, base_quat=self.quat, joint_pos=self.joint_pos, joint_vel=self.joint_vel
        )
        obs = CONTRACT.build_observation(state, np.zeros(3), np.zeros(SPEC.n_joints))
        return CONTRACT.action_to_joint_targets(policy.act(obs), SPEC.lower, SPEC.upper)

    def wait_for_discovery(self) -> None:
        def matched() -> bool:
            return (
                self.joint_pub.get_subscription_count() >= 1
                and self.odom_pub.get_subscription_count() >= 1
                and self.node.count_publishers(Topics.POLICY_COMMANDS) >= 1
            )

        assert spin_until(self.executor, matched, wall_timeout_s=DISCOVERY_TIMEOUT_S), "DDS discovery timed out"

    def stream(
        self,
        seconds: float,
        make_joint: Callable[[float], JointState | None],
        make_odom: Callable[[float], Odometry | None],
        until: Callable[[], bool] = lambda: False,
    ) -> None:
        """Publish state every ~5 ms for ``seconds`` (or until ``until()``), spinning everything in between."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            now = self.now()
            joint, odom = make_joint(now), make_odom(now)
            if joint is not None:
                self.joint_pub.publish(joint)
            if odom is not None:
                self.odom_pub.publish(odom)
            end = time.monotonic() + 0.005
            while time.monotonic() < end:
                self.executor.spin_once(timeout_sec=0.001)

    def fresh(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        self.stream(seconds, self.joint_state, self.odom, until)

    def close(self) -> None:
        self.executor.shutdown()
        self.policy_node.destroy_node()
        self.node.destroy_node()


def start(model: str | Path, *, activate: bool = True, **overrides: object) -> tuple[PolicyNode, RobotSide]:
    params = {"model": str(model), "rate_hz": 50.0, "max_state_age": 0.25, "autostart": False, **overrides}
    node = PolicyNode(parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    robot = RobotSide(node)
    if activate:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node.configure_error
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        robot.wait_for_discovery()
    return node, robot


def test_fresh_inputs_give_targets_named_in_policy_order_and_stamped_with_the_joint_state(ros, model_dir) -> None:
    node, robot = start(model_dir / "stand.onnx")
    try:
        assert isinstance(node.policy, OnnxPolicy)
        robot.fresh(10.0, until=lambda: len(robot.commands) >= 5)
        assert len(robot.commands) >= 5
        first = robot.commands[0]
        assert list(first.name) == list(SPEC.joint_names)
        np.testing.assert_allclose(first.position, robot.expected_first_targets(), atol=1e-6)
        assert np.all(np.asarray(first.position) >= SPEC.lower) and np.all(np.asarray(first.position) <= SPEC.upper)
        # Stamped with the joint state it was computed from: a stamp the robot side published, in the past.
        stamps = [stamp_to_seconds(c.header.stamp) for c in robot.commands]
        assert all(0.0 <= robot.now() - s < 5.0 for s in stamps)
        assert sum(node.skips.values()) == node.skips["no_joint_state"] + node.skips["no_estimator"]
        timing = node.timing()
        assert timing["ticks"] == node.published >= 5
        assert 0.0 < timing["inference_p50_us"] < 50_000.0
    finally:
        robot.close()


def test_the_command_stamp_is_the_stamp_of_the_joint_state_used(ros, model_dir) -> None:
    node, robot = start(model_dir / "stand.onnx")
    try:
        sent: set[tuple[int, int]] = set()

        def joint(now: float) -> JointState:
            msg = robot.joint_state(now)
            sent.add((msg.header.stamp.sec, msg.header.stamp.nanosec))
            return msg

        robot.stream(10.0, joint, robot.odom, until=lambda: len(robot.commands) >= 5)
        assert len(robot.commands) >= 5
        assert {(c.header.stamp.sec, c.header.stamp.nanosec) for c in robot.commands} <= sent
    finally:
        robot.close()


def _nan_joint(robot: RobotSide) -> Callable[[float], JointState]:
    position = robot.joint_pos.copy()
    position[4] = np.nan
    return lambda now: robot.joint_state(now, position)


BAD_INPUTS: dict[str, tuple[str, Callable[[RobotSide], tuple[Callable, Callable]]]] = {
    "stale joint state": ("stale_joint_state", lambda r: (lambda now: r.joint_state(now - 1.0), r.odom)),
    "missing joint state": ("no_joint_state", lambda r: (lambda now: None, r.odom)),
    "NaN joint position": ("non_finite_joint_state", lambda r: (_nan_joint(r), r.odom)),
    "NaN estimator orientation": (
        "non_finite_estimator",
        lambda r: (r.joint_state, lambda now: r.odom(now, np.array([0, 0, np.nan, 1.0]))),
    ),
    "stale estimator": ("stale_estimator", lambda r: (r.joint_state, lambda now: r.odom(now - 1.0))),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_nothing_is_published_from_a_stale_missing_or_nan_input_and_publishing_resumes_when_fixed(
    ros, model_dir, case: str
) -> None:
    reason, make = BAD_INPUTS[case]
    node, robot = start(model_dir / "stand.onnx")
    try:
        make_joint, make_odom = make(robot)
        robot.stream(0.6, make_joint, make_odom)
        assert robot.commands == [] and node.published == 0
        assert node.skips[reason] >= 10  # 50 Hz for 0.6 s: every tick refused for that reason
        robot.fresh(10.0, until=lambda: len(robot.commands) >= 3)
        assert len(robot.commands) >= 3  # the same node does publish once the input is good
    finally:
        robot.close()


def _assert_configure_fails_and_nothing_is_ever_published(node: PolicyNode, robot: RobotSide) -> None:
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED  # noqa: SLF001
    assert node.policy is None
    assert node.trigger_activate() != TransitionCallbackReturn.SUCCESS  # cannot activate an unconfigured node
    spin_until(robot.executor, lambda: False, wall_timeout_s=0.3)
    robot.fresh(0.5)
    assert robot.commands == [] and node.published == 0
    assert node.count_publishers(Topics.POLICY_COMMANDS) == 0  # the publisher does not even exist


def test_a_model_for_another_joint_order_fails_configure_naming_the_joints(ros, model_dir) -> None:
    node, robot = start(model_dir / "swapped.onnx", activate=False)
    try:
        _assert_configure_fails_and_nothing_is_ever_published(node, robot)
        assert "joint order differs" in node.configure_error
        assert "left_hip_yaw_joint (model #6, robot #0)" in node.configure_error
    finally:
        robot.close()


def test_a_model_with_corrupted_recorded_pairs_fails_configure_naming_the_difference(ros, model_dir) -> None:
    node, robot = start(model_dir / "corrupted.onnx", activate=False)
    try:
        _assert_configure_fails_and_nothing_is_ever_published(node, robot)
        assert "max |action difference| 0.25" in node.configure_error
    finally:
        robot.close()


def test_a_rate_that_differs_from_the_models_fails_configure_naming_both(ros, model_dir) -> None:
    node, robot = start(model_dir / "fast.onnx", activate=False, rate_hz=50.0)
    try:
        _assert_configure_fails_and_nothing_is_ever_published(node, robot)
        assert "rate_hz parameter is 50 Hz but the model" in node.configure_error
        assert "trained at 100 Hz" in node.configure_error
    finally:
        robot.close()


def test_a_missing_model_file_fails_configure_with_its_path(ros, model_dir) -> None:
    node, robot = start(model_dir / "absent.onnx", activate=False)
    try:
        _assert_configure_fails_and_nothing_is_ever_published(node, robot)
        assert "absent.onnx" in node.configure_error
    finally:
        robot.close()


def test_the_hold_policy_publishes_the_default_pose(ros) -> None:
    node, robot = start("", rate_hz=200.0)
    try:
        robot.fresh(10.0, until=lambda: len(robot.commands) >= 3)
        assert len(robot.commands) >= 3
        expected = np.clip(SPEC.default_pose, SPEC.lower, SPEC.upper)
        for command in robot.commands:
            np.testing.assert_allclose(command.position, expected, atol=1e-12)
    finally:
        robot.close()


def test_state_trigger_computes_once_per_policy_period_of_joint_state_stamps_after_the_estimator(
    ros, model_dir
) -> None:
    node, robot = start(model_dir / "stand.onnx", trigger="state", max_state_age=1.0)
    try:
        base = robot.now() - 0.1  # stamps 1 ms apart, as a simulator publishing every physics step

        def step(k: int, with_odom: bool = True) -> None:
            stamp = base + k * 1e-3
            robot.joint_pub.publish(robot.joint_state(stamp))
            if with_odom:
                robot.odom_pub.publish(robot.odom(stamp))
            expected = seconds_to_stamp(stamp)

            def seen() -> bool:
                joint, odom = node._joint_msg, node._odom_msg  # noqa: SLF001 - wait until the node has both
                return (
                    joint is not None
                    and joint.header.stamp == expected
                    and (not with_odom or (odom is not None and odom.header.stamp == expected))
                )

            assert spin_until(robot.executor, seen, wall_timeout_s=5.0)

        for k in range(61):
            step(k)
        spin_until(robot.executor, lambda: len(robot.commands) >= 4, wall_timeout_s=5.0)
        stamps = [round((stamp_to_seconds(c.header.stamp) - base) * 1000) for c in robot.commands]
        assert stamps == [0, 20, 40, 60]
        # Lock-step: a joint state whose estimator output has not arrived yet waits for it.
        step(80, with_odom=False)
        spin_until(robot.executor, lambda: False, wall_timeout_s=0.2)
        assert len(robot.commands) == 4
        robot.odom_pub.publish(robot.odom(base + 0.080))
        assert spin_until(robot.executor, lambda: len(robot.commands) == 5, wall_timeout_s=5.0)
        assert stamp_to_seconds(robot.commands[-1].header.stamp) == pytest.approx(base + 0.080, abs=1e-6)
    finally:
        robot.close()


def test_state_trigger_answers_an_estimator_a_state_behind_with_the_newest_joints_instead_of_starving(
    ros, model_dir
) -> None:
    node, robot = start(model_dir / "stand.onnx", trigger="state", max_state_age=1.0)
    try:
        base = robot.now() - 0.2

        def deliver(publisher, msg, attribute: str) -> None:
            publisher.publish(msg)
            assert spin_until(
                robot.executor,
                lambda: getattr(node, attribute) is not None and getattr(node, attribute).header == msg.header,
                wall_timeout_s=5.0,
            )

        # Real time on an overloaded machine: every estimator output comes after the next joint state, so the
        # estimator never catches up with the newest joints. Each of its outputs is answered at once.
        for k in range(5):
            deliver(robot.joint_pub, robot.joint_state(base + (k + 1) * 0.02), "_joint_msg")
            deliver(robot.odom_pub, robot.odom(base + k * 0.02), "_odom_msg")
        spin_until(robot.executor, lambda: len(robot.commands) >= 5, wall_timeout_s=5.0)
        stamps = [round((stamp_to_seconds(c.header.stamp) - base) * 1000) for c in robot.commands]
        assert stamps == [20, 40, 60, 80, 100]  # built from the newest joint state each time
    finally:
        robot.close()


def test_deactivate_stops_publishing_and_configure_time_parameters_are_locked_while_configured(ros, model_dir) -> None:
    node, robot = start(model_dir / "stand.onnx")
    try:
        robot.fresh(10.0, until=lambda: len(robot.commands) >= 2)
        result = node.set_parameters([Parameter("model", value="")])[0]
        assert not result.successful and "configure" in result.reason
        assert node.set_parameters([Parameter("max_state_age", value=0.1)])[0].successful
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        count = len(robot.commands)
        robot.fresh(0.4)
        assert len(robot.commands) == count
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert node.policy is None
        assert node.set_parameters([Parameter("model", value="")])[0].successful  # unconfigured: allowed
    finally:
        robot.close()


def test_diagnostics_report_timing_and_skip_counts(ros, model_dir) -> None:
    node, robot = start(model_dir / "stand.onnx")
    try:
        robot.fresh(
            10.0,
            until=lambda: any(
                kv.key == "published" and int(kv.value) > 0
                for d in robot.diagnostics
                for s in d.status
                for kv in s.values
            ),
        )
        ours = [s for d in robot.diagnostics for s in d.status if s.name == "humanoid_rl/policy"]
        values = {kv.key: kv.value for kv in ours[-1].values}
        assert values["state"] == "active"
        assert values["rate_clock"] == "wall time"  # no /clock here: the rates are per wall second
        for key in (
            "achieved_rate_hz",
            "jitter_us",
            "deadline_misses",
            "inference_p50_us",
            "state_age_p99_ms",
            "skipped_stale_joint_state",
        ):
            assert key in values
    finally:
        robot.close()
