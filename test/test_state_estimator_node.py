"""The state-estimator node on real rclpy: fed by the real simulation bridge, and by hand with bad inputs."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import WrenchStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Imu, JointState
from sim_bridge_fixtures import SPEC, BridgeHarness, stamp_ns
from std_msgs.msg import Float64MultiArray

from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.graph import Frames, Topics
from humanoid_rl.nodes.conversions import seconds_to_stamp
from humanoid_rl.nodes.qos import SENSOR_QOS
from humanoid_rl.nodes.runner import make_executor, spin_until
from humanoid_rl.nodes.state_estimator import CONTACTS_LABEL, StateEstimatorNode
from humanoid_rl.sim.estimator_eval import DEFAULT_PUSHES

# The bound of the estimator core's own velocity test (test_estimator.py: a base swaying over planted feet is
# tracked within 3 cm/s); orientation comes from the IMU quaternion, whose noise is 0.002 rad per axis.
VELOCITY_RMSE_BOUND_MPS = 0.03
ORIENTATION_ERROR_BOUND_DEG = 1.0


@pytest.fixture()
def ros() -> Iterator[None]:
    rclpy.init()
    yield
    rclpy.try_shutdown()


class EstimatorListener:
    """Records the estimator's odometry and contacts."""

    def __init__(self) -> None:
        self.node = Node("test_estimator_listener")
        self.odom: list[Odometry] = []
        self.contacts: list[Float64MultiArray] = []
        self.node.create_subscription(Odometry, Topics.ESTIMATOR_ODOM, self.odom.append, SENSOR_QOS)
        self.node.create_subscription(
            Float64MultiArray, Topics.ESTIMATOR_CONTACTS, self.contacts.append, SENSOR_QOS
        )


def odom_values(msg: Odometry) -> np.ndarray:
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    v, w = msg.twist.twist.linear, msg.twist.twist.angular
    return np.array(
        [
            p.x,
            p.y,
            p.z,
            q.x,
            q.y,
            q.z,
            q.w,
            v.x,
            v.y,
            v.z,
            w.x,
            w.y,
            w.z,
            *msg.pose.covariance,
            *msg.twist.covariance,
        ]
    )


def test_fed_by_the_bridge_the_estimate_tracks_ground_truth_through_a_push_with_the_joint_state_stamps(ros):
    estimator = StateEstimatorNode(
        parameter_overrides=[
            Parameter("compare_ground_truth", value=True),
            Parameter("use_sim_time", value=True),
        ]
    )
    listener = EstimatorListener()
    h = BridgeHarness(
        extra_nodes=(estimator, listener.node), sync=True, push_duration=DEFAULT_PUSHES[0].duration_s
    )
    try:
        # The pushes of the estimator's offline evaluation (the PD-held robot survives this pair).
        for push in DEFAULT_PUSHES:
            h.run_until_sim(push.start_s)
            h.shield.push(push.force_world)
        h.run_until_sim(5.0)
        h.spin_for(0.2)  # the last estimates in flight (lock-step goes on meanwhile)
        report = estimator.report()
        traces = h.bridge.traces()
        fell = h.bridge.report()["fell"]
        diagnostics = {kv.key: kv.value for kv in h.shield.diagnostics["humanoid_rl/state_estimator"].values}
        joint_stamps = set(h.shield.stamps[Topics.JOINT_STATES])
    finally:
        h.close()
    peak_speed = float(np.linalg.norm(traces["base_velocity_world_mps"], axis=1).max())
    print(
        f"\nestimator vs ground truth over {report['compared_samples']} samples at 50 Hz, two pushes, peak "
        f"speed {peak_speed:.2f} m/s: velocity RMSE {report['velocity_rmse_mps']:.4f} m/s "
        f"(max {report['velocity_max_error_mps']:.3f}), orientation error "
        f"{report['orientation_error_deg']:.3f} deg (max {report['orientation_max_error_deg']:.3f}), "
        f"height RMSE {100 * report['height_rmse_m']:.2f} cm, update p50 {report['update_p50_us']:.0f} us "
        f"p99 {report['update_p99_us']:.0f} us, input age p99 {report['input_age_p99_ms']:.1f} ms"
    )

    assert peak_speed > 0.1 and not fell  # the pushes moved the robot
    assert report["compared_samples"] >= 225  # of 250 states (a best-effort sample may be lost)
    assert report["velocity_rmse_mps"] < VELOCITY_RMSE_BOUND_MPS
    assert report["orientation_error_deg"] < ORIENTATION_ERROR_BOUND_DEG
    assert report["height_rmse_m"] < 0.01
    assert sum(report["dropped"].values()) == 0 and report["time_jumps"] == 0
    assert report["unpaired_imu_samples"] <= 5  # only where a best-effort joint state was lost
    for key in ("rate_hz", "update_p50_us", "update_p99_us", "input_age_p99_ms", "dropped_invalid_input"):
        assert key in diagnostics
    assert float(diagnostics["velocity_rmse_mps"]) < VELOCITY_RMSE_BOUND_MPS
    # In lock-step the estimate for a state is there before the next state: it is at most one period old.
    assert report["input_age_p99_ms"] <= 20.0 + 1e-6
    # Every estimate carries the stamp of a joint state, so the policy finds the one for its state.
    odom_stamps = [stamp_ns(m.header.stamp) for m in listener.odom]
    assert len(odom_stamps) >= 225 and set(odom_stamps) <= joint_stamps
    assert np.all(np.diff(odom_stamps) > 0)
    last = listener.odom[-1]
    assert (last.header.frame_id, last.child_frame_id) == (Frames.ODOM, Frames.BASE)
    assert last.pose.covariance[0] > 0 and last.twist.covariance[0] > 0 and last.pose.covariance[21] > 0
    contacts = listener.contacts[-1]
    assert [d.label for d in contacts.layout.dim] == [CONTACTS_LABEL] and list(contacts.data) == [1.0, 1.0]


class SensorFeed:
    """Hand-made sensor messages of the robot standing still in the default pose, joint names reversed."""

    def __init__(self) -> None:
        self.node = Node("test_sensor_feed")
        self.imu_pub = self.node.create_publisher(Imu, Topics.IMU, SENSOR_QOS)
        self.joint_pub = self.node.create_publisher(JointState, Topics.JOINT_STATES, SENSOR_QOS)
        self.wrench_pubs = [
            self.node.create_publisher(WrenchStamped, topic, SENSOR_QOS)
            for topic in (Topics.LEFT_FOOT_WRENCH, Topics.RIGHT_FOOT_WRENCH)
        ]
        self.half_weight = 0.5 * RobotKinematics(SPEC).total_mass * 9.81

    def publish(
        self, t: float, gyro: tuple[float, float, float] = (0.0, 0.0, 0.0), names: list[str] | None = None
    ):
        stamp = seconds_to_stamp(t)
        for pub in self.wrench_pubs:
            wrench = WrenchStamped()
            wrench.header.stamp = stamp
            wrench.wrench.force.z = self.half_weight
            pub.publish(wrench)
        names = names if names is not None else list(reversed(SPEC.joint_names))
        position = [
            SPEC.default_pose[SPEC.joint_names.index(n)] if n in SPEC.joint_names else 0.0 for n in names
        ]
        joint = JointState(name=names, position=position, velocity=[0.0] * len(names))
        joint.header.stamp = stamp
        self.joint_pub.publish(joint)
        imu = Imu()
        imu.header.stamp = stamp
        imu.orientation.w = 1.0
        imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z = gyro
        imu.linear_acceleration.z = 9.81
        self.imu_pub.publish(imu)


def test_a_nan_or_misnamed_input_is_counted_and_dropped_and_never_reaches_the_odometry(ros):
    estimator = StateEstimatorNode()
    feed, listener = SensorFeed(), EstimatorListener()
    executor = make_executor()
    for node in (estimator, feed.node, listener.node):
        executor.add_node(node)
    try:

        def discovered() -> bool:
            return (
                feed.imu_pub.get_subscription_count() >= 1
                and listener.node.count_publishers(Topics.ESTIMATOR_ODOM) >= 1
                and all(p.get_subscription_count() >= 1 for p in feed.wrench_pubs)
            )

        assert spin_until(executor, discovered, wall_timeout_s=15.0), "DDS discovery timed out"
        stamps = [1.0 + 0.02 * k for k in range(12)]

        def outcomes() -> tuple[int, int]:
            return estimator.updates, sum(estimator.dropped.values())

        for k, t in enumerate(stamps):
            before = outcomes()
            if k == 5:
                feed.publish(t, gyro=(0.0, math.nan, 0.0))
            elif k == 8:
                feed.publish(t, names=list(SPEC.joint_names[:-1]) + ["no_such_joint"])
            else:
                feed.publish(t)
            changed = spin_until(executor, lambda b=before: outcomes() != b, wall_timeout_s=5.0)
            assert changed, f"sample {k} was neither used nor dropped"
        spin_until(executor, lambda: len(listener.odom) >= 10, wall_timeout_s=5.0)
    finally:
        for node in (estimator, feed.node, listener.node):
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown()

    assert estimator.dropped["invalid_input"] == 1 and estimator.dropped["joint_names"] == 1
    assert estimator.updates == 10
    assert estimator.unpaired_imu_samples == 1  # the IMU sample of the misnamed joint state
    odom_stamps = [stamp_ns(m.header.stamp) for m in listener.odom]
    expected = [stamp_ns(seconds_to_stamp(t)) for k, t in enumerate(stamps) if k not in (5, 8)]
    assert odom_stamps == expected  # nothing for the bad samples
    assert all(np.isfinite(odom_values(m)).all() for m in listener.odom)
    # The reversed names were mapped by name: standing in the default pose at the nominal height, at rest.
    last = listener.odom[-1]
    assert last.pose.pose.position.z == pytest.approx(SPEC.nominal_base_height, abs=0.005)
    assert abs(last.twist.twist.linear.x) < 0.01 and abs(last.twist.twist.linear.z) < 0.01


def test_the_urdf_the_stack_loaded_is_on_robot_description_for_a_viewer_that_joins_late(ros) -> None:
    """/robot_description is transient local: RViz, Foxglove or robot_state_publisher started after the stack
    still get it, and it is the URDF the stack checked the robot against."""
    from std_msgs.msg import String

    from humanoid_rl.nodes.qos import LATCHED_QOS

    estimator = StateEstimatorNode()
    viewer = Node("late_viewer")
    received: list[str] = []
    viewer.create_subscription(String, Topics.ROBOT_DESCRIPTION, lambda m: received.append(m.data), LATCHED_QOS)
    executor = make_executor()
    executor.add_node(estimator)
    executor.add_node(viewer)
    try:
        assert spin_until(executor, lambda: bool(received), wall_timeout_s=10.0)
        assert received[0] == SPEC.urdf_path.read_text(encoding="utf-8")
        assert "<robot" in received[0] and all(name in received[0] for name in SPEC.joint_names)
    finally:
        executor.shutdown()
        viewer.destroy_node()
        estimator.destroy_node()


def test_ground_truth_errors_leave_out_the_time_the_robot_lies_on_the_floor() -> None:
    from humanoid_rl.nodes.state_estimator import GroundTruthComparison

    upright = np.array([0.0, 0.0, 0.0, 1.0])
    lying = np.array([0.0, math.sin(math.pi / 4), 0.0, math.cos(math.pi / 4)])  # pitched 90°
    compare = GroundTruthComparison(SPEC.nominal_base_height)
    good = (upright, np.array([0.10, 0.0, 0.0]), 0.80)
    for _ in range(10):  # standing: 0.1 m/s off
        compare._score(good, (upright, np.zeros(3), 0.80))
    for _ in range(30):  # fallen: an estimate 3 m/s and 4 m off would swamp the figures
        compare._score((upright, np.array([3.0, 0.0, 0.0]), -3.8), (lying, np.zeros(3), 0.15))
    summary = compare.summary()
    assert summary["compared_samples"] == 10 and summary["samples_while_fallen"] == 30
    assert summary["velocity_rmse_mps"] == pytest.approx(0.10)
    assert summary["height_rmse_m"] == pytest.approx(0.0)
