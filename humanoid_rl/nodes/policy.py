"""The policy node: joint state + estimator output → observation → ONNX policy → /policy/joint_commands.

A ``LifecycleNode`` named ``policy``:

* **configure** loads the robot (``RobotSpec``), builds its contract, loads the model with
  :func:`humanoid_rl.policy.runtime.load_policy` (the model's contract checked against the robot: joints, default
  pose, gains, rate; recorded pairs replayed) and creates the subscriptions and the lifecycle publisher.
  Observations are built from the MODEL's contract (its terms, scales, history, gait clock, joint subset) by one
  :class:`~humanoid_rl.core.observation.ObservationBuilder`; the estimator's contacts and the IMU are subscribed
  to only when the contract observes them. Any failure returns FAILURE with the reason logged
  (and kept in ``configure_error``); the publisher is never activated, so nothing is ever published.
* **activate** starts the deadline-based timer (``trigger: timer``) or arms the joint-state trigger
  (``trigger: state``); **deactivate** stops it; **cleanup** / **shutdown** free the session and the
  subscriptions.

Each tick uses the newest joint state (mapped into policy order BY NAME) and the newest estimator odometry
(orientation, and body-frame angular velocity from ``twist.angular``). If either is missing, older than
``max_state_age`` (node clock − stamp), malformed or non-finite, the tick publishes nothing and counts the reason
in ``skips``; a command is never built from a stale or NaN state. Otherwise the command is a JointState of
position targets in policy order, named, stamped with the joint state's stamp (so downstream latency is measured
from the measurement). Timing (rate, jitter, deadline misses, inference µs, state age) goes to /diagnostics at
2 Hz.

The policy's memory (recurrent state), the observation history and the gait clock start afresh at activate and
whenever the shield's latched ``/safety_shield/mode`` turns ACTIVE (engage, or leaving HOLD), so a policy sees
from its first engaged step what it saw from its first training step.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray, String

from humanoid_rl.core.contract import ContractMismatchError, ObservationError, PolicyContract, RobotState
from humanoid_rl.core.observation import ObservationBuilder
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.core.timing import LoopStats, StageTimes, StateDecimator
from humanoid_rl.graph import POLICY, Topics
from humanoid_rl.nodes import local_bus
from humanoid_rl.nodes.conversions import JointNameError, JointOrderMap
from humanoid_rl.nodes.diagnostics import DiagnosticsPublisher, DiagnosticsTimer
from humanoid_rl.nodes.goal_input import GoalInput
from humanoid_rl.nodes.lifecycle import CheckedConfigureNode
from humanoid_rl.nodes.local_bus import DirectInput, MessagePair
from humanoid_rl.nodes.params import DeclaredParameters
from humanoid_rl.nodes.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
from humanoid_rl.nodes.runner import main_for
from humanoid_rl.policy.model_file import read_model_metadata
from humanoid_rl.policy.parameters import CONFIGURE_TIME_PARAMETERS, POLICY_PARAMETERS, TriggerMode
from humanoid_rl.policy.runtime import NonFiniteActionError, Policy, load_policy, resolve_model_path

# Why a tick published nothing; counted in PolicyNode.skips and reported on /diagnostics.
SKIP_REASONS = (
    "no_joint_state",  # nothing received yet
    "no_estimator",
    "stale_joint_state",  # |node clock − stamp| > max_state_age
    "stale_estimator",
    "malformed_joint_state",  # names do not cover the robot's joints, or positions/velocities missing
    "non_finite_joint_state",
    "non_finite_estimator",
    "bad_quaternion",  # estimator orientation not a unit quaternion
    "bad_observation",  # the contract refused to build the observation (or an input it observes is missing)
    "non_finite_action",  # the policy produced NaN/inf
    "no_goal",  # a goal-conditioned model and no goal received yet (nodes/goal_input.py)
)
DIAGNOSTICS_PERIOD_S = 0.5
STATS_WINDOW = 2000  # ticks kept for percentiles (2 s at 1 kHz): summaries stay cheap
QUATERNION_NORM_TOLERANCE = 0.1
_NS = 1_000_000_000


def _stamp_ns(stamp: Any) -> int:
    return stamp.sec * _NS + stamp.nanosec


class PolicyNode(CheckedConfigureNode):
    """Runs the policy; see the module docstring. Construct, then configure/activate (or autostart)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(POLICY.name, **kwargs)
        self._params = DeclaredParameters(self, POLICY_PARAMETERS, on_change=self._apply_runtime_parameters)
        # Registered after DeclaredParameters, so it runs first (rclpy calls the newest callback first).
        self.add_on_set_parameters_callback(self._refuse_configure_time_changes)
        self._configured = False
        self._active = False
        self.configure_error = ""
        self.policy: Policy | None = None
        self.published = 0
        self.resets = 0  # times the policy's memory, history and clock were started afresh
        self.skips: dict[str, int] = dict.fromkeys(SKIP_REASONS, 0)
        self._inputs: list[Any] = []
        self.goal_input: GoalInput | None = None
        self._unreceive: list[Any] = []
        self.odom_input = DirectInput()  # estimator outputs handed over in-process, and their DDS copies dropped
        self._publisher: Any = None
        self._timer: Any = None
        self._joint_msg: JointState | None = None
        self._odom_msg: Odometry | None = None
        self._command = np.zeros(3)
        self._command_stamp_ns = 0
        self._last_used_odom_ns: int | None = None
        self._apply_runtime_parameters(self._params.values)
        self._diagnostics = DiagnosticsPublisher(self, self.reset_statistics)
        self._diag_published = 0
        self._diag_skips = 0
        self._diag_timer = DiagnosticsTimer(self, self._publish_diagnostics, DIAGNOSTICS_PERIOD_S, self.get_clock())
        self._reset_stats(float(self._params.values["rate_hz"]))

    # ------------------------------------------------------------------ parameters
    def _apply_runtime_parameters(self, values: dict[str, Any]) -> None:
        self._max_age_ns = int(float(values["max_state_age"]) * _NS)
        timeout = float(values["cmd_vel_timeout"])
        self._cmd_timeout_ns = int(timeout * _NS) if timeout > 0 else None

    def _refuse_configure_time_changes(self, params: list[Parameter]) -> SetParametersResult:
        changed = [
            p.name for p in params if p.name in CONFIGURE_TIME_PARAMETERS and p.value != self._params.values.get(p.name)
        ]
        if changed and self._configured:
            reason = (
                f"{changed} take effect at configure and cannot change while the node is configured: "
                "deactivate and clean up the node, set them, then configure again"
            )
            return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ lifecycle

    def _configure(self) -> None:
        values = self._params.values
        rate_hz = float(values["rate_hz"])
        spec = RobotSpec.load(values["robot_config"] or None)
        robot_contract = PolicyContract.from_robot(spec, policy_rate_hz=rate_hz)
        model = str(values["model"]).strip()
        if model:
            # The rate is a node parameter, so say so (with both values) rather than as one contract line.
            model_rate = read_model_metadata(resolve_model_path(model)).contract.policy_rate_hz
            if abs(model_rate - rate_hz) > 1e-6:
                raise ContractMismatchError(
                    [f"rate_hz parameter is {rate_hz:g} Hz but the model {model} was trained at {model_rate:g} Hz"],
                    context=f"policy rate mismatch (fix: set rate_hz: {model_rate:g}, or use a model trained at "
                    f"{rate_hz:g} Hz)",
                )
        policy = load_policy(
            model or None,
            robot_contract,
            intra_op_threads=int(values["intra_op_threads"]),
            inter_op_threads=int(values["inter_op_threads"]),
        )
        for warning in policy.warnings:
            self.get_logger().warning(warning)
        self.policy = policy
        self._contract = policy.contract
        self._observer = ObservationBuilder(policy.contract)
        self._shield_mode = ""
        observed = {t.name for t in policy.contract.terms}
        self._lower = np.array(spec.lower)
        self._upper = np.array(spec.upper)
        self._joint_map = JointOrderMap(spec.joint_names)
        self._trigger = TriggerMode(values["trigger"])
        self._rate_hz = rate_hz
        period_ns = int(round(_NS / rate_hz))
        # State trigger: one measurement per period on a fixed grid, whatever the stream's rate and jitter.
        self._decimator = StateDecimator(period_ns)
        # Two messages in turn: the shield in this process may hold the one delivered to it (local_bus).
        self._command_msgs = MessagePair(lambda: JointState(name=list(spec.joint_names)))
        self._last_action = np.zeros(policy.contract.n_actions)
        self._quat = np.zeros(4)
        self._ang_vel = np.zeros(3)
        self._joint_msg = None
        self._odom_msg = None
        self._contacts: np.ndarray | None = None
        self._imu_acc: np.ndarray | None = None
        self._command[:] = 0.0
        self._publisher = self.create_lifecycle_publisher(JointState, Topics.POLICY_COMMANDS, COMMAND_QOS)
        state_callback = self._on_joint_state_trigger if self._trigger is TriggerMode.STATE else self._on_joint_state
        odom_callback = self._on_odom_trigger if self._trigger is TriggerMode.STATE else self._on_odom
        # The estimator in this process hands its output over directly; its DDS copy is then dropped.
        self._unreceive = [local_bus.receive(
            self, Topics.ESTIMATOR_ODOM, self.odom_input.direct_callback(odom_callback))]
        self._inputs = [
            self.create_subscription(JointState, Topics.JOINT_STATES, state_callback, SENSOR_QOS),
            self.create_subscription(
                Odometry, Topics.ESTIMATOR_ODOM, self.odom_input.dds_callback(odom_callback), SENSOR_QOS
            ),
            self.create_subscription(Twist, Topics.CMD_VEL, self._on_cmd_vel, SENSOR_QOS),
            self.create_subscription(String, Topics.SHIELD_MODE, self._on_shield_mode, LATCHED_QOS),
        ]
        if "foot_contacts" in observed:
            self._inputs.append(
                self.create_subscription(Float64MultiArray, Topics.ESTIMATOR_CONTACTS, self._on_contacts, SENSOR_QOS)
            )
        if "imu_lin_acc" in observed:
            self._inputs.append(self.create_subscription(Imu, Topics.IMU, self._on_imu, SENSOR_QOS))
        if "goal" in observed:
            self.goal_input = GoalInput(self, str(values["goal_topic"]), str(policy.contract.goal_frame))
            self._inputs.append(self.goal_input.subscription)
            self.get_logger().info(f"goal-conditioned model: goals for {policy.contract.goal_link} from "
                                   f"{self.goal_input.topic} in frame {self.goal_input.frame!r}; nothing is "
                                   "published until the first one arrives")
        self.get_logger().info(
            f"configured: {policy.name} for robot {spec.name!r} ({spec.n_joints} joints) at {rate_hz:g} Hz, "
            f"trigger {self._trigger.value}"
        )

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publisher
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        self._reset_stats(self._rate_hz)
        self.reset_policy_state()
        self._decimator.reset()
        self.odom_input.reset()
        self._last_used_odom_ns = None
        self._active = True
        if self._trigger is TriggerMode.TIMER:
            self._timer = self.create_timer(1.0 / self._rate_hz, self._compute)
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        return super().on_deactivate(state)

    def _stop(self) -> None:
        self._active = False
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None

    def _teardown(self) -> None:
        self._stop()
        for unreceive in self._unreceive:
            unreceive()
        self._unreceive = []
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        self.goal_input = None
        if self._publisher is not None:
            self.destroy_lifecycle_publisher(self._publisher)
            self._publisher = None
        self.policy = None  # frees the ONNX Runtime session
        self._joint_msg = None
        self._odom_msg = None
        self._configured = False

    def destroy_node(self) -> None:
        self._teardown()
        super().destroy_node()

    # ------------------------------------------------------------------ inputs
    def _on_joint_state(self, msg: JointState) -> None:
        self._joint_msg = msg

    def _on_odom(self, msg: Odometry) -> None:
        self._odom_msg = msg

    def _on_joint_state_trigger(self, msg: JointState) -> None:
        self._joint_msg = msg
        self._decimator.observe(_stamp_ns(msg.header.stamp))
        self._maybe_compute_for_state(odom_arrived=False)

    def _on_odom_trigger(self, msg: Odometry) -> None:
        self._odom_msg = msg
        self._maybe_compute_for_state(odom_arrived=True)

    def _maybe_compute_for_state(self, odom_arrived: bool) -> None:
        """State trigger: once per new joint-state stamp (at most one per policy period), when the estimator
        has caught up with it; or, when the estimator has fallen a state behind (real time, overloaded), on its
        next output with the newest joint state: waiting for a match that never comes would starve the robot."""
        joint, odom = self._joint_msg, self._odom_msg
        if not self._active or joint is None or odom is None:
            return
        stamp_ns = _stamp_ns(joint.header.stamp)
        if not self._decimator.due(stamp_ns):
            return
        odom_ns = _stamp_ns(odom.header.stamp)
        caught_up = odom_ns >= stamp_ns
        behind = odom_arrived and (self._last_used_odom_ns is None or odom_ns > self._last_used_odom_ns)
        if not (caught_up or behind):
            return  # the estimator output for this measurement is still on its way
        self._decimator.used(stamp_ns)
        self._last_used_odom_ns = odom_ns
        self._compute()

    def _on_shield_mode(self, msg: String) -> None:
        # Engage, or the end of a HOLD: the policy starts as at its first training step.
        if msg.data == "ACTIVE" and self._shield_mode != "ACTIVE" and self.policy is not None:
            self.reset_policy_state()
        self._shield_mode = msg.data

    def reset_policy_state(self) -> None:
        """Zero the recurrent memory, the observation history, the gait clock and the last action."""
        if self.policy is None:
            return
        self.policy.reset()
        self._observer.reset()
        self._last_action[:] = 0.0
        self.resets += 1

    def _on_contacts(self, msg: Float64MultiArray) -> None:
        self._contacts = np.array(msg.data, dtype=np.float64) if len(msg.data) == 2 else None

    def _on_imu(self, msg: Imu) -> None:
        a = msg.linear_acceleration
        self._imu_acc = np.array([a.x, a.y, a.z])

    def _on_cmd_vel(self, msg: Twist) -> None:
        values = (msg.linear.x, msg.linear.y, msg.angular.z)
        self._command[:] = values if all(math.isfinite(v) for v in values) else (0.0, 0.0, 0.0)
        self._command_stamp_ns = self.get_clock().now().nanoseconds

    # ------------------------------------------------------------------ the tick
    def _skip(self, reason: str) -> None:
        self.skips[reason] += 1

    def _compute(self) -> None:
        """One policy step. Publishes nothing unless every input is present, fresh and finite."""
        started = time.perf_counter()
        now_ns = self.get_clock().now().nanoseconds
        joint, odom = self._joint_msg, self._odom_msg
        if joint is None:
            return self._skip("no_joint_state")
        if odom is None:
            return self._skip("no_estimator")
        joint_stamp = joint.header.stamp
        joint_stamp_ns = _stamp_ns(joint_stamp)
        joint_age_ns = now_ns - joint_stamp_ns
        if abs(joint_age_ns) > self._max_age_ns:
            return self._skip("stale_joint_state")
        if abs(now_ns - _stamp_ns(odom.header.stamp)) > self._max_age_ns:
            return self._skip("stale_estimator")
        names = joint.name
        if len(joint.position) != len(names) or len(joint.velocity) != len(names):
            return self._skip("malformed_joint_state")
        try:
            joint_map = self._joint_map
            joint_pos = joint_map.reorder(names, joint.position)
            joint_vel = joint_map.reorder(names, joint.velocity)
        except JointNameError:
            return self._skip("malformed_joint_state")
        if not (np.isfinite(joint_pos).all() and np.isfinite(joint_vel).all()):
            return self._skip("non_finite_joint_state")
        quat, ang_vel = self._quat, self._ang_vel
        q, w = odom.pose.pose.orientation, odom.twist.twist.angular
        quat[0], quat[1], quat[2], quat[3] = q.x, q.y, q.z, q.w
        ang_vel[0], ang_vel[1], ang_vel[2] = w.x, w.y, w.z
        if not (np.isfinite(quat).all() and np.isfinite(ang_vel).all()):
            return self._skip("non_finite_estimator")
        if abs(float(quat @ quat) - 1.0) > QUATERNION_NORM_TOLERANCE:
            return self._skip("bad_quaternion")
        goal = None
        if self.goal_input is not None:
            goal = self.goal_input.goal
            if goal is None:
                return self._skip("no_goal")
        command = self._command
        if self._cmd_timeout_ns is not None and now_ns - self._command_stamp_ns > self._cmd_timeout_ns:
            command = np.zeros(3)
        v, p = odom.twist.twist.linear, odom.pose.pose.position
        state = RobotState(
            base_ang_vel=ang_vel,
            base_quat=quat,
            joint_pos=joint_pos,
            joint_vel=joint_vel,
            base_lin_vel=np.array([v.x, v.y, v.z]),
            base_height=p.z,  # the estimator's odom z: base height above the ground it started on
            foot_contacts=self._contacts,
            imu_lin_acc=self._imu_acc,
            goal=goal,
        )
        try:
            obs = self._observer.build(state, command, self._last_action)
        except ObservationError:
            return self._skip("bad_observation")
        start = time.perf_counter()
        try:
            action = self.policy.act(obs)  # type: ignore[union-attr]  # set whenever active
        except NonFiniteActionError:
            return self._skip("non_finite_action")
        done = time.perf_counter()
        inference_s = done - start
        targets = self._contract.action_to_joint_targets(action, self._lower, self._upper)
        msg = self._command_msgs.next()
        msg.header.stamp = joint_stamp
        msg.position = targets.tolist()
        self._publisher.publish(msg)
        # The observation's last_action is the clipped action, as the training environment stores it.
        self._last_action[:] = self._contract.clip_action(action)
        self.published += 1
        # A timer tick is timed by the clock; a state-triggered step by the state it answers, so a deadline miss
        # is a state left unanswered (sim time only moves in /clock steps: the clock at compute time would count
        # 0 / 20 / 40 ms periods at 50 Hz as misses where every state was answered).
        self._loop.tick((joint_stamp_ns if self._trigger is TriggerMode.STATE else now_ns) * 1e-9)
        self._loop.latency(inference_s)
        self._state_age.latency(joint_age_ns * 1e-9)
        stages = self._stages
        stages.add("observe", start - started)  # checks, reordering, the observation
        stages.add("inference", inference_s)
        stages.add("publish", time.perf_counter() - done)  # targets, message, publish, bookkeeping
        local_bus.deliver(self, Topics.POLICY_COMMANDS, msg)  # the shield, if it shares this process (its time)
        self._diag_timer.poll()

    # ------------------------------------------------------------------ diagnostics
    def reset_statistics(self) -> None:
        """Start the timing figures afresh (e.g. after a warm-up); published/skipped counts stay."""
        self._reset_stats(float(self._params.values["rate_hz"]))

    def _reset_stats(self, rate_hz: float) -> None:
        self._loop = LoopStats(rate_hz, window=STATS_WINDOW)
        self._state_age = LoopStats(rate_hz, window=STATS_WINDOW)
        self._stages = StageTimes(("observe", "inference", "publish"), window=STATS_WINDOW)

    def timing(self) -> dict[str, float | int]:
        """Loop timing, inference and state-age figures (what /diagnostics reports)."""
        loop = self._loop.summary()
        age = self._state_age.summary()
        return {
            "target_rate_hz": loop.target_rate_hz,
            "achieved_rate_hz": loop.achieved_rate_hz,
            # The clock both rates are on: in lock-step simulation sim time runs faster than the wall's.
            "rate_clock": "sim time" if self.get_parameter("use_sim_time").value else "wall time",
            "jitter_us": loop.jitter_us,
            "period_p99_us": loop.period_p99_us,
            "deadline_misses": loop.deadline_misses,
            "ticks": loop.ticks,
            "inference_p50_us": loop.latency_p50_us,
            "inference_p99_us": loop.latency_p99_us,
            "inference_max_us": loop.latency_max_us,
            "state_age_p50_ms": age.latency_p50_us / 1e3,
            "state_age_p99_ms": age.latency_p99_us / 1e3,
            **self._stages.summary(),
        }

    def _publish_diagnostics(self) -> None:
        values: dict[str, object] = {
            "state": self.lifecycle_state,
            "policy": self.policy.name if self.policy else "",
            "published": self.published,
        }
        values.update(self.timing())
        values.update({f"skipped_{k}": v for k, v in self.skips.items()})
        values.update(odom_direct=self.odom_input.direct, odom_dds_duplicates=self.odom_input.duplicates)
        if self.goal_input is not None:
            values.update(goals_accepted=self.goal_input.accepted, goals_refused=self.goal_input.refused)
        skipped = sum(self.skips.values())
        level, message = "ok", self.lifecycle_state
        if self.configure_error:
            level, message = "error", f"configure failed: {self.configure_error}"
        elif self._active and self.published == self._diag_published:
            worst = max(self.skips, key=self.skips.__getitem__) if skipped > self._diag_skips else "no input"
            level, message = "warn", f"no command published in the last {DIAGNOSTICS_PERIOD_S} s ({worst})"
        elif self._active and skipped > self._diag_skips:
            level, message = "warn", f"{skipped - self._diag_skips} tick(s) skipped"
        self._diag_published, self._diag_skips = self.published, skipped
        self._diagnostics.publish(values, level=level, message=message)


def main(args: list[str] | None = None) -> int:
    return main_for(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
