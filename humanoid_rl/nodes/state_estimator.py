"""The state-estimator node: IMU + joint states + foot wrenches → ``LeggedStateEstimator`` → odometry.

A plain ``Node`` named ``state_estimator``.

Inputs (SENSOR_QOS): ``/imu/data`` (orientation required: REP 145's ``orientation_covariance[0] == -1`` is
refused), ``/joint_states`` (mapped into policy order BY NAME; velocities required), ``/contacts/left_foot``
and ``/contacts/right_foot`` (WrenchStamped in the foot's sensor frame, z along the sole normal: ``force.z`` is
the foot's normal force, as an ankle force-torque sensor reports it).

One estimator update per *sample*: an IMU message and a joint state stamped within ``max_sensor_skew`` of
each other; whichever of the two arrives second triggers it (topics arrive in any order), with the newest foot
wrenches. The output carries the sample's stamp (the later of the two; the simulator stamps both alike), so
the policy finds the estimate for exactly the joint state it uses. A sample is used once; a pair that is not
newer than the last one used is skipped. An IMU sample replaced before it found its joint state is counted in
``unpaired_imu_samples`` (on hardware: ``max_sensor_skew`` too small for the drivers' stamps).

Outputs: ``/state_estimator/odom`` (Odometry, ``odom`` → ``base_link``: pose in ``odom``, twist in
``base_link`` per REP 105; position and velocity covariances from the filter, orientation and angular
velocity covariances from the IMU message) and ``/state_estimator/contacts`` (Float64MultiArray [left, right],
1.0 = stance; one layout dimension labelled ``left_foot,right_foot``).

A malformed or non-finite input never reaches the output: the core raises ``EstimatorInputError`` with its
state untouched, the node counts it in ``dropped`` and publishes nothing for that sample. A stamp more than
``TIME_JUMP_BACK_S`` older than the last one (a simulator restarted, a bag looped) resets the estimator.

With ``compare_ground_truth`` the node also matches its estimates with ``/sim/ground_truth/odom`` by stamp and
reports velocity RMSE and orientation error, defined as in :mod:`humanoid_rl.sim.estimator_eval`.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from geometry_msgs.msg import WrenchStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String

from humanoid_rl.core.estimator import EstimatorOutput, LeggedStateEstimator
from humanoid_rl.core.estimator_params import EstimatorInputError, EstimatorParams
from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.params import ParamSpec
from humanoid_rl.core.posture import has_fallen
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.core.rotations import quat_to_matrix, tilt_angle
from humanoid_rl.core.timing import LoopStats, StageTimes
from humanoid_rl.graph import STATE_ESTIMATOR, Frames, Topics
from humanoid_rl.nodes import local_bus
from humanoid_rl.nodes.conversions import JointNameError, JointOrderMap
from humanoid_rl.nodes.diagnostics import DiagnosticsPublisher, DiagnosticsTimer
from humanoid_rl.nodes.local_bus import MessagePair
from humanoid_rl.nodes.params import DeclaredParameters
from humanoid_rl.nodes.qos import LATCHED_QOS, SENSOR_QOS
from humanoid_rl.nodes.runner import main_for

__all__ = ["CONTACTS_LABEL", "DROP_REASONS", "PARAMETERS", "StateEstimatorNode", "main"]

PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "robot_config",
        "",
        "robot YAML (config/robots/<robot>.yaml); '' = the shipped humanoid",
        read_only=True,
    ),
    ParamSpec(
        "max_sensor_skew",
        0.0005,
        "an IMU message and a joint state stamped within this of each other are fused as one sample (the "
        "simulator stamps both alike; on hardware use about one period of the slower stream)",
        "s",
        0.0,
        0.1,
    ),
    ParamSpec(
        "use_foot_height_measurement",
        True,
        "stance feet are on a flat ground plane at ground_height (false on uneven ground: height then drifts "
        "as slowly as the feet slip)",
        read_only=True,
    ),
    ParamSpec("ground_height", 0.0, "world z of the flat ground", "m", -100.0, 100.0, read_only=True),
    ParamSpec(
        "publish_robot_description",
        True,
        "publish the URDF this stack loaded on /robot_description (std_msgs/String, transient local) for RViz,"
        " Foxglove and robot_state_publisher; false when the robot's own bringup already publishes it",
        read_only=True,
    ),
    ParamSpec(
        "compare_ground_truth",
        False,
        "simulation: compare with /sim/ground_truth/odom by stamp (velocity RMSE, orientation error in "
        "/diagnostics and report())",
        read_only=True,
    ),
)

CONTACTS_LABEL = "left_foot,right_foot"
# Why an input produced no estimate; counted in StateEstimatorNode.dropped and reported on /diagnostics.
DROP_REASONS = (
    "invalid_input",  # EstimatorInputError: NaN/inf, wrong shape, not a unit quaternion
    "joint_names",  # the joint state's names do not cover the robot's joints
    "malformed_joint_state",  # positions or velocities missing
    "no_orientation",  # the IMU says it has no orientation (orientation_covariance[0] == -1)
)
TIME_JUMP_BACK_S = 1.0
DIAGNOSTICS_PERIOD_S = 0.5
STATS_WINDOW = 5000
MATCH_WINDOW = 256  # estimates / ground-truth samples kept for matching by stamp
_NS = 1_000_000_000


def _stamp_ns(stamp: Any) -> int:
    return stamp.sec * _NS + stamp.nanosec


class StateEstimatorNode(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(STATE_ESTIMATOR.name, **kwargs)
        self._params = DeclaredParameters(self, PARAMETERS, on_change=self._apply_runtime_parameters)
        values = self._params.values
        self._apply_runtime_parameters(values)
        self.spec = spec = RobotSpec.load(values["robot_config"] or None)
        self.estimator = LeggedStateEstimator(
            spec,
            RobotKinematics(spec),
            EstimatorParams(
                use_foot_height_measurement=bool(values["use_foot_height_measurement"]),
                ground_height=float(values["ground_height"]),
            ),
        )
        self._joint_map = JointOrderMap(spec.joint_names)
        # Newest inputs: (stamp ns, arrays...). Parsed once on arrival; validated by the core.
        self._imu: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._joints: tuple[int, np.ndarray, np.ndarray] | None = None
        self._foot_forces = np.full(2, np.nan)  # NaN until each wrench topic has spoken
        self._last_pair: tuple[int, int] | None = None
        self._last_stamp_ns: int | None = None
        self._orientation_variance = 0.0
        self._gyro_variance = 0.0

        self.updates = 0
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.waiting_for_wrenches = 0
        self.unpaired_imu_samples = 0
        self.time_jumps = 0
        self._loop = LoopStats(1.0, window=STATS_WINDOW)  # rate is whatever the sensors give
        self._age = LoopStats(1.0, window=STATS_WINDOW)
        self._stages = StageTimes(("update", "publish"), window=STATS_WINDOW)

        # Two messages in turn: the policy in this process may hold the one delivered to it (local_bus).
        self._odom_msgs = MessagePair(lambda: Odometry(child_frame_id=Frames.BASE))
        for odom in self._odom_msgs.both:
            odom.header.frame_id = Frames.ODOM
        self._contacts_msg = Float64MultiArray()
        self._contacts_msg.layout.dim = [MultiArrayDimension(label=CONTACTS_LABEL, size=2, stride=2)]
        self._odom_pub = self.create_publisher(Odometry, Topics.ESTIMATOR_ODOM, SENSOR_QOS)
        if values["publish_robot_description"]:
            # The model every node of this stack was checked against (RobotSpec), so a viewer shows that one.
            self._description_pub = self.create_publisher(String, Topics.ROBOT_DESCRIPTION, LATCHED_QOS)
            self._description_pub.publish(String(data=spec.urdf_path.read_text(encoding="utf-8")))
        self._contacts_pub = self.create_publisher(Float64MultiArray, Topics.ESTIMATOR_CONTACTS, SENSOR_QOS)
        self.create_subscription(Imu, Topics.IMU, self._on_imu, SENSOR_QOS)
        self.create_subscription(JointState, Topics.JOINT_STATES, self._on_joint_state, SENSOR_QOS)
        self.create_subscription(WrenchStamped, Topics.LEFT_FOOT_WRENCH, self._wrench_callback(0), SENSOR_QOS)
        self.create_subscription(
            WrenchStamped, Topics.RIGHT_FOOT_WRENCH, self._wrench_callback(1), SENSOR_QOS
        )

        self._truth: GroundTruthComparison | None = None
        if values["compare_ground_truth"]:
            self._truth = GroundTruthComparison(spec.nominal_base_height)
            self.create_subscription(Odometry, Topics.GROUND_TRUTH_ODOM, self._on_ground_truth, SENSOR_QOS)
        self._diagnostics = DiagnosticsPublisher(self)
        self._diag_updates = 0
        self._diag_dropped = 0
        # Steady clock: diagnostics keep coming when /clock stops (that is when they matter).
        self._diag_timer = DiagnosticsTimer(self, self._publish_diagnostics, DIAGNOSTICS_PERIOD_S)

    def _apply_runtime_parameters(self, values: dict[str, Any]) -> None:
        self._max_skew_ns = round(float(values["max_sensor_skew"]) * _NS)

    # ------------------------------------------------------------------ inputs
    def _on_imu(self, msg: Imu) -> None:
        if msg.orientation_covariance[0] == -1.0:
            self.dropped["no_orientation"] += 1
            return
        o, w, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
        if self._imu is not None and self._last_pair is not None and self._last_pair[0] != self._imu[0]:
            self.unpaired_imu_samples += 1  # the previous IMU sample never found its joint state
        self._imu = (
            _stamp_ns(msg.header.stamp),
            np.array((o.x, o.y, o.z, o.w)),
            np.array((w.x, w.y, w.z)),
            np.array((a.x, a.y, a.z)),
        )
        self._orientation_variance = max(0.0, float(np.mean(msg.orientation_covariance[0::4])))
        self._gyro_variance = max(0.0, float(np.mean(msg.angular_velocity_covariance[0::4])))
        self._try_update()

    def _on_joint_state(self, msg: JointState) -> None:
        names = msg.name
        if len(msg.position) != len(names) or len(msg.velocity) != len(names):
            self.dropped["malformed_joint_state"] += 1
            return
        try:
            position = self._joint_map.reorder(names, msg.position)
            velocity = self._joint_map.reorder(names, msg.velocity)
        except JointNameError as exc:
            self.dropped["joint_names"] += 1
            self.get_logger().warning(f"/joint_states dropped: {exc}", throttle_duration_sec=5.0)
            return
        self._joints = (_stamp_ns(msg.header.stamp), position, velocity)
        self._try_update()

    def _wrench_callback(self, side: int) -> Callable[[WrenchStamped], None]:
        def on_wrench(msg: WrenchStamped) -> None:
            first = np.isnan(self._foot_forces).any()
            self._foot_forces[side] = msg.wrench.force.z  # sensor frame: z is the sole normal
            if first:
                self._try_update()  # a sample that arrived before the first wrenches is not lost

        return on_wrench

    # ------------------------------------------------------------------ the update
    def _try_update(self) -> None:
        imu, joints = self._imu, self._joints
        if imu is None or joints is None:
            return
        imu_ns, joint_ns = imu[0], joints[0]
        pair = (imu_ns, joint_ns)
        if abs(imu_ns - joint_ns) > self._max_skew_ns or pair == self._last_pair:
            return
        stamp_ns = max(imu_ns, joint_ns)
        last = self._last_stamp_ns
        if last is not None:
            if stamp_ns < last - TIME_JUMP_BACK_S * _NS:
                self.time_jumps += 1
                self.get_logger().warning(
                    f"sensor time jumped back {(last - stamp_ns) / _NS:.3f} s: estimator reset"
                )
                self.estimator.reset()
                if self._truth is not None:
                    self._truth.forget()
            elif stamp_ns <= last:
                return  # not newer than the sample already used
        if np.isnan(self._foot_forces).any():
            self.waiting_for_wrenches += 1
            return
        self._last_pair = pair
        start = time.perf_counter()
        try:
            out = self.estimator.update(
                stamp_ns / _NS, imu[1], imu[2], imu[3], joints[1], joints[2], self._foot_forces
            )
        except EstimatorInputError as exc:
            self.dropped["invalid_input"] += 1
            self.get_logger().warning(f"sample dropped: {exc}", throttle_duration_sec=2.0)
            return
        elapsed = time.perf_counter() - start
        self._last_stamp_ns = stamp_ns
        odom = self._publish(stamp_ns, out)
        wall = time.perf_counter()
        self._stages.add("update", elapsed)
        self._stages.add("publish", wall - start - elapsed)
        # Nodes of this process get it now (their work is theirs: after the stage timing).
        local_bus.deliver(self, Topics.ESTIMATOR_ODOM, odom)
        self._loop.tick(wall)
        self._loop.latency(elapsed)
        # Lock-step simulation publishes /clock after the sensors of the same instant: a stamp ahead of the clock
        # is a fresh sample (age 0), not a negative age.
        self._age.latency(max(0.0, self.get_clock().now().nanoseconds / _NS - stamp_ns / _NS))
        self.updates += 1
        self._diag_timer.poll()
        if self._truth is not None:
            self._truth.add_estimate(stamp_ns, out)

    def _publish(self, stamp_ns: int, out: EstimatorOutput) -> Odometry:
        msg = self._odom_msgs.next()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, _NS)
        pose, twist = msg.pose, msg.twist
        p, q = pose.pose.position, pose.pose.orientation
        p.x, p.y, p.z = out.position.tolist()
        q.x, q.y, q.z, q.w = out.orientation_xyzw.tolist()
        lin, ang = twist.twist.linear, twist.twist.angular
        lin.x, lin.y, lin.z = out.linear_velocity_body.tolist()
        ang.x, ang.y, ang.z = out.angular_velocity_body.tolist()
        var = out.covariance_diag
        pose_cov = np.zeros((6, 6))
        pose_cov[[0, 1, 2], [0, 1, 2]] = var[0:3]
        pose_cov[[3, 4, 5], [3, 4, 5]] = self._orientation_variance
        pose.covariance = pose_cov.ravel().tolist()
        # The filter's velocity covariance is in the world frame; the twist is in base_link: Rᵀ Σ R.
        rot = quat_to_matrix(out.orientation_xyzw)
        twist_cov = np.zeros((6, 6))
        twist_cov[0:3, 0:3] = rot.T @ np.diag(var[3:6]) @ rot
        twist_cov[[3, 4, 5], [3, 4, 5]] = self._gyro_variance
        twist.covariance = twist_cov.ravel().tolist()
        self._odom_pub.publish(msg)
        self._contacts_msg.data = [float(c) for c in out.contacts]
        self._contacts_pub.publish(self._contacts_msg)
        return msg

    def _on_ground_truth(self, msg: Odometry) -> None:
        q, v = msg.pose.pose.orientation, msg.twist.twist.linear
        quat = np.array((q.x, q.y, q.z, q.w))
        velocity_world = quat_to_matrix(quat) @ np.array((v.x, v.y, v.z))  # twist is in base_link
        assert self._truth is not None  # subscribed only with a comparison
        self._truth.add_truth(_stamp_ns(msg.header.stamp), quat, velocity_world, msg.pose.pose.position.z)

    # ------------------------------------------------------------------ reporting
    def timing(self) -> dict[str, float | int]:
        loop, age = self._loop.summary(), self._age.summary()
        return {
            "rate_hz": loop.achieved_rate_hz,
            "update_p50_us": loop.latency_p50_us,
            "update_p99_us": loop.latency_p99_us,
            "update_max_us": loop.latency_max_us,
            "input_age_p50_ms": age.latency_p50_us / 1e3,
            "input_age_p99_ms": age.latency_p99_us / 1e3,
            **self._stages.summary(),
        }

    def report(self) -> dict[str, Any]:
        """Counts, timing and (with compare_ground_truth) the errors against the simulator's ground truth."""
        out: dict[str, Any] = {
            "updates": self.updates,
            **self.timing(),
            "dropped": dict(self.dropped),
            "waiting_for_wrenches": self.waiting_for_wrenches,
            "unpaired_imu_samples": self.unpaired_imu_samples,
            "time_jumps": self.time_jumps,
            "samples_out_of_order": self.estimator.samples_out_of_order,
            "gaps_clamped": self.estimator.gaps_clamped,
            "lost_footing_updates": self.estimator.lost_footing_updates,
        }
        if self._truth is not None:
            out.update(self._truth.summary())
        return out

    def _publish_diagnostics(self) -> None:
        values: dict[str, object] = {"updates": self.updates, **self.timing()}
        values.update({f"dropped_{k}": v for k, v in self.dropped.items()})
        values["waiting_for_wrenches"] = self.waiting_for_wrenches
        values["unpaired_imu_samples"] = self.unpaired_imu_samples
        last = self.estimator.last_output
        if last is not None:
            values["contacts"] = f"{int(last.contacts[0])},{int(last.contacts[1])}"
            values["height_m"] = last.height
            values["valid"] = last.valid
            values["no_contact_s"] = last.no_contact_s
            values["velocity_std_mps"] = float(np.sqrt(last.covariance_diag[3:6].max()))
        if self._truth is not None:
            values.update(self._truth.summary())
        dropped = sum(self.dropped.values())
        level, message = "ok", "estimating"
        if self.updates == self._diag_updates:
            if np.isnan(self._foot_forces).any():
                why = " (waiting for both foot wrench topics)"
            elif self._imu is not None and self._joints is not None:
                why = " (IMU and joint-state stamps further apart than max_sensor_skew?)"
            else:
                why = " (no IMU or no joint states)"
            level, message = "warn", "no estimate in the last period" + why
        elif last is not None and not last.valid:
            level = "error"
            message = (
                f"lost footing: no foot in contact for {last.no_contact_s:.1f} s; the estimate holds its last "
                "position with zero velocity and a growing covariance until a foot is down again"
            )
        elif dropped > self._diag_dropped:
            level, message = "warn", f"{dropped - self._diag_dropped} input(s) dropped"
        self._diag_updates, self._diag_dropped = self.updates, dropped
        self._diagnostics.publish(values, level=level, message=message)


class GroundTruthComparison:
    """Matches estimates with ground-truth samples of the same stamp (either may arrive first).

    Velocity: the 3-D world-frame error norm; orientation: the angle between the orientations — the
    definitions of :mod:`humanoid_rl.sim.estimator_eval` (imported lazily: a robot never loads the simulator).
    Samples while the robot is down (``core.posture.has_fallen`` of the true pose) are counted, not scored: an
    estimator of a robot lying on the floor is not what the figures are about, and would swamp them.
    """

    def __init__(self, nominal_base_height_m: float) -> None:
        from humanoid_rl.sim.estimator_eval import orientation_errors_rad, velocity_errors

        self._velocity_errors = velocity_errors
        self._orientation_errors = orientation_errors_rad
        self._estimates: OrderedDict[int, tuple[np.ndarray, np.ndarray, float]] = OrderedDict()
        self._truths: OrderedDict[int, tuple[np.ndarray, np.ndarray, float]] = OrderedDict()
        self._nominal_height = nominal_base_height_m
        self.samples = 0
        self.samples_while_fallen = 0
        self._velocity_sq = 0.0
        self._velocity_max = 0.0
        self._orientation_sq = 0.0
        self._orientation_max = 0.0
        self._height_sq = 0.0

    def forget(self) -> None:
        self._estimates.clear()
        self._truths.clear()

    def add_estimate(self, stamp_ns: int, out: EstimatorOutput) -> None:
        sample = (out.orientation_xyzw, out.linear_velocity_world, out.height)
        truth = self._truths.pop(stamp_ns, None)
        if truth is not None:
            self._score(sample, truth)
        else:
            self._keep(self._estimates, stamp_ns, sample)

    def add_truth(self, stamp_ns: int, quat: np.ndarray, velocity_world: np.ndarray, height: float) -> None:
        truth = (quat, velocity_world, height)
        estimate = self._estimates.pop(stamp_ns, None)
        if estimate is not None:
            self._score(estimate, truth)
        else:
            self._keep(self._truths, stamp_ns, truth)

    @staticmethod
    def _keep(store: OrderedDict[int, Any], stamp_ns: int, sample: Any) -> None:
        store[stamp_ns] = sample
        while len(store) > MATCH_WINDOW:
            store.popitem(last=False)

    def _score(
        self, estimate: tuple[np.ndarray, np.ndarray, float], truth: tuple[np.ndarray, np.ndarray, float]
    ) -> None:
        if has_fallen(float(tilt_angle(truth[0])), truth[2], self._nominal_height):
            self.samples_while_fallen += 1
            return
        velocity = float(self._velocity_errors(estimate[1], truth[1]))
        angle = float(self._orientation_errors(estimate[0], truth[0]))
        self.samples += 1
        self._velocity_sq += velocity**2
        self._velocity_max = max(self._velocity_max, velocity)
        self._orientation_sq += angle**2
        self._orientation_max = max(self._orientation_max, angle)
        self._height_sq += (estimate[2] - truth[2]) ** 2

    def summary(self) -> dict[str, float | int]:
        n = max(self.samples, 1)
        return {
            "compared_samples": self.samples,
            "samples_while_fallen": self.samples_while_fallen,  # not in the errors below
            "velocity_rmse_mps": math.sqrt(self._velocity_sq / n),
            "velocity_max_error_mps": self._velocity_max,
            "orientation_error_deg": math.degrees(math.sqrt(self._orientation_sq / n)),
            "orientation_max_error_deg": math.degrees(self._orientation_max),
            "height_rmse_m": math.sqrt(self._height_sq / n),
        }


def main(args: list[str] | None = None) -> int:
    return main_for(StateEstimatorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
