"""The safety-shield node: the only publisher of /joint_commands, a thin rclpy adapter over ``SafetyShield``.

Data flow
---------
* ``/policy/joint_commands`` (JointState, COMMAND_QOS): each command is handed to the core as a name-keyed
  :class:`~humanoid_rl.core.shield.JointCommand`. Name mapping, NaN, stale / future / unset stamps are judged by
  the core's reject stage and counted there; the node never reorders or drops a command itself, so a malformed
  one ends as a counted rejection, never as an exception.
* ``/joint_states`` (SENSOR_QOS): measured positions and velocities (mapped by name in the core; velocities are
  required). ``/imu/data`` (SENSOR_QOS): tilt and tilt rate (:func:`~humanoid_rl.core.shield.tilt_from_imu`, the
  IMU orientation turned into the base's if the URDF mounts the IMU rotated). ``/state_estimator/odom`` and
  ``/state_estimator/contacts``: base pose and velocity → CoM and feet with
  :class:`~humanoid_rl.core.kinematics.RobotKinematics` → the capture point. Without a fresh estimate the shield
  judges balance from tilt alone. Messages stamped more than ``state_timeout`` away from the ROS clock are
  dropped and counted: a delayed sensor stream ages into DAMPING like a silent one.
* ``/joint_commands`` (JointState, COMMAND_QOS): names in policy order, position targets, velocity and effort
  feed-forward as the core sets them (zeros). ``header.stamp`` is the stamp of the joint state the output was
  built from: for an ACTIVE output from a fresh policy command it is that command's stamp (the policy stamps
  its command with the state it used); otherwise the newest joint state's. Downstream latency is measured from
  the measurement. A hardware interface in this process gets each output directly as well
  (:mod:`~humanoid_rl.nodes.local_bus`).
* ``/safety_shield/mode`` (std_msgs/String, LATCHED_QOS), published on every change: ``ACTIVE`` / ``HOLD`` /
  ``DAMPING`` / ``ESTOP``. **This topic is the contract for gains**: in ``DAMPING`` and ``ESTOP`` the bridge or
  hardware interface applies stiffness 0 and damping ``kd × damping_kd_scale`` (a parameter of this node), in
  ``ACTIVE`` and ``HOLD`` the robot's kp/kd. The JointState stays a standard one; no gains travel in it.
* ``/diagnostics`` at 2 Hz (steady clock): mode, reason of the last change, counters, filter cost p50/p99 µs,
  output rate, state→output latency.

Output timing
-------------
* Every policy command steps the core and publishes at once (lowest latency).
* ``trigger: timer``: a timer at ``rate_hz`` steps the core (watchdogs, HOLD ramp, DAMPING) and publishes when
  nothing was published since its previous tick. While commands flow (one received within
  ``TICK_GAP_PERIODS`` control periods) it only fills gaps in their stream, when the newest output is that old:
  a tick on its own grid, a hair before a command, would take the output budget that command needs and push it,
  and every command after it, onto the tick grid (issue #16: half the commands a period late).
* ``trigger: state`` (the simulator's lock-step mode, where sim time only advances when a command arrives):
  each new joint state steps the core and publishes at once when the shield is not ACTIVE; when ACTIVE the
  output for that state goes out on the policy command for it (or at once, if the command came first), and the
  command timeout is checked on every state. If no command comes for a state within ``command_timeout`` of
  wall time, the shield answers the state itself, so a silent policy cannot stall a lock-step simulator.
* The core bounds each step's change by a speed × ``control_period``; the node therefore steps it at most
  1.1 times per ``control_period`` on average (a token bucket on the shield's clock holding at most 1.5 steps,
  so a jittery 50 Hz policy is not held back, and 10 % of slack so that a stream at exactly the nominal rate
  recovers from one late output within ~10 periods): a flood of commands cannot multiply the joint speed. A
  command arriving too early waits until the budget allows it (timer trigger: a one-shot deadline, not the next
  tick; state trigger: its state) and is superseded by a newer one meanwhile (counted as ignored by the core).
* Nothing is published before the first joint state and IMU sample arrive (there is no measured pose to hold
  yet); the mode topic says HOLD meanwhile.

Clocks
------
``clock: sim``: the core runs on the node's ROS clock (sim time under ``use_sim_time``), or on the newest joint
state's stamp when that is ahead (a lock-step simulator's /clock can arrive after the state of the same instant).
``clock: steady``: the core runs on ``time.monotonic()`` (hardware: a watchdog on ROS time stops when /clock
stops); a command stamp is moved onto the steady clock by its age on the ROS clock at arrival. If the clock
jumps back (a simulator reset), the core is rebuilt with its counters; a latched ESTOP or DAMPING stays latched
(as ESTOP: call /safety_shield/reset).

Services and lifecycle
----------------------
``/safety_shield/estop`` (Trigger) latches ESTOP and publishes the passive output at once, in any configured
state (also when inactive). ``/safety_shield/reset`` (Trigger) leaves ESTOP or a latched balance trip when
inputs are fresh (refused with the reasons otherwise). ``/safety_shield/engage`` (SetBool) is the user's go /
stop (``require_engage: true`` on hardware: nothing but HOLD until engaged). With ``deadman_timeout`` > 0 the
engagement also needs a ``std_msgs/Empty`` heartbeat on ``/safety_shield/deadman`` (e.g. from a joystick while a
button is held) at least that often: without one the shield is disengaged (HOLD) until heartbeats come again.

* **configure** loads the robot, kinematics and core, creates subscriptions, publishers and services;
* **activate** starts in HOLD with the core's ramp from the measured pose (a re-activation resets the core
  into that ramp, unless ESTOP or DAMPING is latched);
* **deactivate** publishes once HOLD at the pose the robot stands in (HOLD: its last output; ACTIVE: the
  policy's averaged targets, never the measured pose, which gives no support against gravity), or the passive
  output if in DAMPING or ESTOP (a fallen or stopped robot is never stiffened), and then stops publishing: the
  bridge or hardware interface holds the last target it received;
* **cleanup** frees everything.

Parameters: the shield's thresholds (:data:`~humanoid_rl.core.shield.SHIELD_PARAMETERS`) and this node's own
(:data:`~humanoid_rl.nodes.safety_shield_params.PARAMETERS`). ``ros2 param set /safety_shield <name> <value>``
takes effect on the next command; a value out of range, inconsistent with the others (e.g. ``tilt_warn`` ≥
``tilt_trip``) or incompatible with the robot's joint ranges is refused with the reason and the old value stays;
read-only ones are refused.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Empty, Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger

from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.core.rotations import quat_conjugate, quat_multiply, quat_rotate, yaw
from humanoid_rl.core.shield import (
    SHIELD_PARAMETERS,
    BalanceState,
    JointCommand,
    JointLimits,
    SafetyShield,
    ShieldMode,
    ShieldOutput,
    ShieldParams,
    consistency_reasons,
    tilt_from_imu,
)
from humanoid_rl.core.timing import LoopStats, StageTimes
from humanoid_rl.graph import SAFETY_SHIELD, Topics
from humanoid_rl.nodes import local_bus
from humanoid_rl.nodes.conversions import JointNameError, JointOrderMap, stamp_to_seconds
from humanoid_rl.nodes.diagnostics import DiagnosticsPublisher, DiagnosticsTimer
from humanoid_rl.nodes.lifecycle import CheckedConfigureNode
from humanoid_rl.nodes.local_bus import DirectInput, MessagePair
from humanoid_rl.nodes.output_budget import CLOCK_JUMP_TOLERANCE_S, OutputBudget
from humanoid_rl.nodes.params import DeclaredParameters
from humanoid_rl.nodes.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
from humanoid_rl.nodes.runner import main_for
from humanoid_rl.nodes.safety_shield_params import PARAMETERS, ShieldClock, ShieldTrigger

__all__ = ["PARAMETERS", "STATS_WINDOW", "SafetyShieldNode", "ShieldClock", "ShieldTrigger", "main"]


DIAGNOSTICS_PERIOD_S = 0.5
STATS_WINDOW = 250  # samples kept for percentiles: the last ~5 s at 50 Hz
# Timer trigger: while commands come at least this often (in control periods), a tick publishes only when the
# newest output is this old (a command late by half a period); the worst gap between outputs is then 2.5 periods.
TICK_GAP_PERIODS = 1.5
_CLOCK_JUMP_REASON = "estop: clock jumped back"
NODE_COUNTERS = (
    "outputs_published",
    "outputs_deferred",  # a command waited for the output budget (flood) or for its state (state trigger)
    "outputs_withheld",  # steps before the first state/IMU sample: nothing to hold yet, nothing published
    "unanswered_states",  # state trigger: the shield answered a state the policy did not (wall-clock timeout)
    "state_stamp_rejected",  # joint state stamped more than state_timeout from the ROS clock (or unset)
    "imu_stamp_rejected",
    "imu_rejected",  # IMU orientation not a quaternion
    "estimator_rejected",  # odometry stale, non-finite or not a rotation: balance from tilt alone
    "contacts_rejected",
    "clock_jumps_back",
)


class SafetyShieldNode(CheckedConfigureNode):
    """Filters every command on its way to the joints; see the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(SAFETY_SHIELD.name, **kwargs)
        self.shield: SafetyShield | None = None
        self.configure_error = ""
        self.counters: dict[str, int] = dict.fromkeys(NODE_COUNTERS, 0)
        self.param_changes = 0
        self.param_refusals = 0
        self.last_param_refusal = ""
        self.command_input = DirectInput()  # policy commands handed over in-process, and their DDS copies dropped
        self._unreceive: Any = None
        self._node_params = DeclaredParameters(self, PARAMETERS, on_change=self._on_node_params)
        self._shield_params = DeclaredParameters(
            self, SHIELD_PARAMETERS, consistency=self._shield_consistency, on_change=self._on_shield_params
        )
        values = self._node_params.values
        self._clock_kind = ShieldClock(values["clock"])
        self._trigger = ShieldTrigger(values["trigger"])
        self._steady_clock = Clock(clock_type=ClockType.STEADY_TIME)
        self._configured = False
        self._active = False
        self._entities: list[Any] = []  # subscriptions, services (destroyed at cleanup)
        self._command_pub: Any = None
        self._mode_pub: Any = None
        self._timer: Any = None
        self._deadline: Any = None  # timer trigger: one-shot, sends a deferred command when the budget allows it
        self._timer_rate_hz = 0.0
        self._budget = OutputBudget()
        self._reset_inputs()
        self._filter_cost: deque[float] = deque(maxlen=STATS_WINDOW)
        self._stages = StageTimes(("step", "publish"), window=STATS_WINDOW)  # step: modes, kinematics, filter
        self._loop = LoopStats(float(values["rate_hz"]), window=STATS_WINDOW)
        self._diag_outputs = 0
        self._diag_time = time.monotonic()
        self._diagnostics = DiagnosticsPublisher(self)
        self._diag_timer = DiagnosticsTimer(self, self._publish_diagnostics, DIAGNOSTICS_PERIOD_S)
        # Now, not in a tick while commands flow: the first percentile and diagnostics message cost ~70 ms of
        # lazy imports and type-support loading.
        np.percentile(np.zeros(2), (50, 99))
        self._publish_diagnostics()

    def _reset_inputs(self) -> None:
        self._state_stamp: TimeMsg | None = None  # newest accepted joint state's header stamp
        self._state_stamp_s = -math.inf
        self._positions: np.ndarray | None = None  # newest accepted joint positions, policy order
        self._odom: dict[str, Any] | None = None
        self.last_balance: BalanceState | None = None
        self._odom_time = -math.inf
        self._contacts = np.zeros(2, dtype=bool)  # none known: the core then uses both feet
        self._contacts_time = -math.inf
        self._pending_command: JointState | None = None
        self._deadman_time = -math.inf  # shield clock at the newest /safety_shield/deadman heartbeat
        self._unanswered_since: float | None = None  # state trigger: steady time of an unanswered state
        self._last_command_receipt = -math.inf
        self._last_step_now = -math.inf
        self._published_since_tick = False
        self._withheld = False  # the last step had no measured pose to publish
        self._published_mode = ""

    # ------------------------------------------------------------------ parameters
    def _shield_consistency(self, values: Mapping[str, Any]) -> list[str]:
        reasons = consistency_reasons(values)
        if not reasons and self.shield is not None:
            # The checks that need the robot's joint ranges (soft_margin), plus read-only values.
            reasons = self.shield.filter.check_params(ShieldParams(**dict(values)))
        return reasons

    def _on_shield_params(self, values: dict[str, Any]) -> None:
        if self.shield is not None:
            reasons = self.shield.set_params(values)
            if reasons:  # cannot happen: _shield_consistency ran the same checks
                self.get_logger().error(f"shield refused parameters it was checked against: {reasons}")

    def _on_node_params(self, values: dict[str, Any]) -> None:
        if self._active and self._trigger is ShieldTrigger.TIMER and values["rate_hz"] != self._timer_rate_hz:
            self._start_timer()

    def set_parameters_atomically(self, parameter_list: list[Parameter]) -> SetParametersResult:
        """What the parameter services call: counts changes and refusals (rclpy's own refusals too)."""
        ours = [p for p in (getattr(self, "_node_params", None), getattr(self, "_shield_params", None)) if p]
        logged_before = sum(p.refusals for p in ours)
        result = super().set_parameters_atomically(parameter_list)
        if result.successful:
            self.param_changes += 1
        else:
            self.param_refusals += 1
            self.last_param_refusal = result.reason
            if sum(p.refusals for p in ours) == logged_before:  # rclpy's own refusal (read-only, type): log it once
                self.get_logger().warning(
                    f"parameter change {[p.name for p in parameter_list]} refused: {result.reason}"
                )
        return result

    @property
    def _params(self) -> ShieldParams:
        assert self.shield is not None
        return self.shield.params

    # ------------------------------------------------------------------ lifecycle

    def _configure(self) -> None:
        values = self._node_params.values
        spec = RobotSpec.load(values["robot_config"] or None)
        kinematics = RobotKinematics(spec)
        params = ShieldParams.from_mapping(self._shield_params.values)
        self.shield = SafetyShield(
            JointLimits.from_robot_spec(spec),
            params,
            bool(values["require_engage"]),
            reset_hint=f"{Topics.SHIELD_RESET} is called",
        )
        self.spec, self.kinematics = spec, kinematics
        self._joint_map = JointOrderMap(spec.joint_names)
        default = spec.default_pose
        # Height of the sole-centre frames (the foot frames moved by the soles' x/y offsets) above the ground
        # when standing, as the estimator derives it; the support polygon is built around them.
        self._foot_frame_height = float(
            spec.nominal_base_height + kinematics.sole_centres_in_base(default)[:, 2].mean()
        )
        self._sole_sizes = spec.sole_sizes
        self._imu_in_base = self._imu_mounting(kinematics, spec)
        self._upright_in_base = self._upright_frame(spec)
        self._reset_inputs()
        # Two messages in turn: the hardware interface in this process may hold the one delivered to it (local_bus).
        self._output_msgs = MessagePair(lambda: JointState(name=list(spec.joint_names)))
        self._output_msg = self._output_msgs.both[0]
        # The policy in this process hands its commands over directly; their DDS copies are then dropped.
        self.command_input.reset()
        self._unreceive = local_bus.receive(
            self, Topics.POLICY_COMMANDS, self.command_input.direct_callback(self._on_command))
        self._command_pub = self.create_publisher(JointState, Topics.JOINT_COMMANDS, COMMAND_QOS)
        self._mode_pub = self.create_publisher(String, Topics.SHIELD_MODE, LATCHED_QOS)
        self._entities = [
            self.create_subscription(
                JointState, Topics.POLICY_COMMANDS, self.command_input.dds_callback(self._on_command), COMMAND_QOS
            ),
            self.create_subscription(JointState, Topics.JOINT_STATES, self._on_joint_state, SENSOR_QOS),
            self.create_subscription(Imu, Topics.IMU, self._on_imu, SENSOR_QOS),
            self.create_subscription(Odometry, Topics.ESTIMATOR_ODOM, self._on_odom, SENSOR_QOS),
            self.create_subscription(Float64MultiArray, Topics.ESTIMATOR_CONTACTS, self._on_contacts, SENSOR_QOS),
            self.create_service(Trigger, Topics.SHIELD_ESTOP, self._on_estop),
            self.create_service(Trigger, Topics.SHIELD_RESET, self._on_reset),
            self.create_service(SetBool, Topics.SHIELD_ENGAGE, self._on_engage),
            self.create_subscription(Empty, Topics.DEADMAN, self._on_deadman, SENSOR_QOS),
        ]
        self._engage_requested = not bool(values["require_engage"])  # the user's engage, before the deadman
        self.get_logger().info(
            f"configured for robot {spec.name!r} ({spec.n_joints} joints): clock {self._clock_kind.value}, "
            f"trigger {self._trigger.value}, control_period {params.control_period} s, "
            f"require_engage {values['require_engage']}"
        )

    @staticmethod
    def _upright_frame(spec: RobotSpec) -> np.ndarray | None:
        """The base's upright frame in the base frame (xyzw): base_orientation_rpy undone; None for z-up models."""
        if not any(spec.base_orientation_rpy):
            return None
        import pinocchio as pin  # the kinematics already loaded it

        q = pin.Quaternion(pin.rpy.rpyToMatrix(*spec.base_orientation_rpy))
        return quat_conjugate(np.array([q.x, q.y, q.z, q.w]))

    @staticmethod
    def _imu_mounting(kinematics: RobotKinematics, spec: RobotSpec) -> np.ndarray | None:
        """The IMU frame's orientation (xyzw) in the base's upright frame (the base frame turned by the spec's
        base_orientation_rpy: z up when the robot stands), or None when they are aligned. Tilt and heading are
        judged in that frame, so a model drawn y-up is upright when it stands."""
        import pinocchio as pin  # the kinematics already loaded it

        model, data = kinematics.model, kinematics.model.createData()
        pin.framesForwardKinematics(model, data, pin.neutral(model))
        if not (model.existFrame(spec.imu_link) and model.existFrame(spec.base_link)):
            raise ValueError(
                f"imu_link {spec.imu_link!r} or base_link {spec.base_link!r} is not a frame of {spec.urdf_path}"
            )
        rotation = (
            pin.rpy.rpyToMatrix(*spec.base_orientation_rpy)
            @ data.oMf[model.getFrameId(spec.base_link)].rotation.T
            @ data.oMf[model.getFrameId(spec.imu_link)].rotation
        )
        if np.allclose(rotation, np.eye(3), atol=1e-9):
            return None
        q = pin.Quaternion(rotation)
        return np.array([q.x, q.y, q.z, q.w])

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self.shield is not None
        now = self._now()
        if self.shield.counters.steps_in_mode[ShieldMode.HOLD] + self.shield.counters.steps_in_mode[ShieldMode.ACTIVE]:
            # A re-activation: ramp again from the measured pose, unless ESTOP / DAMPING is latched.
            if self.shield.mode in (ShieldMode.ACTIVE, ShieldMode.HOLD):
                reasons = self.shield.reset(now)
                if reasons:
                    self.get_logger().warning(f"re-activation without a reset of the shield: {reasons}")
        self._budget.reset()
        self._pending_command = None
        self._unanswered_since = None
        self._active = True
        self._start_timer()
        if self.shield.mode is not ShieldMode.ACTIVE:  # else a reset was refused: the next step decides
            self._publish_mode(self.shield.mode.value, self.shield.last_reason)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_timer()
        if self._active and self.shield is not None:
            self._publish_final_hold()
        self._active = False
        return super().on_deactivate(state)

    def _on_shutdown_while_active(self) -> None:
        if self.shield is not None:
            self._publish_final_hold()  # leave the joints as a deactivation would

    def _start_timer(self) -> None:
        self._stop_timer()
        if self._trigger is ShieldTrigger.TIMER:
            clock = self._steady_clock if self._clock_kind is ShieldClock.STEADY else self.get_clock()
            self._timer_rate_hz = float(self._node_params.values["rate_hz"])
            self._timer = self.create_timer(1.0 / self._timer_rate_hz, self._on_tick, clock=clock)
            self._deadline = self.create_timer(1.0, self._on_deadline, clock=clock)
            self._deadline.cancel()  # armed by a deferred command
        else:  # answers states the policy leaves unanswered; wall time, since sim time waits for us
            self._timer = self.create_timer(0.01, self._on_unanswered_check, clock=self._steady_clock)

    def _stop_timer(self) -> None:
        for timer in (self._timer, self._deadline):
            if timer is not None:
                self.destroy_timer(timer)
        self._timer = self._deadline = None

    def _teardown(self) -> None:
        self._stop_timer()
        if self._unreceive is not None:
            self._unreceive()
            self._unreceive = None
        self._active = False
        for entity in self._entities:
            if hasattr(entity, "srv_type"):
                self.destroy_service(entity)
            else:
                self.destroy_subscription(entity)
        self._entities = []
        for publisher in (self._command_pub, self._mode_pub):
            if publisher is not None:
                self.destroy_publisher(publisher)
        self._command_pub = self._mode_pub = None
        self.shield = None
        self._reset_inputs()
        self._configured = False

    def destroy_node(self) -> None:
        self._teardown()
        super().destroy_node()

    # ------------------------------------------------------------------ time
    def _ros_now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _now(self) -> float:
        """The shield's clock (see the module docstring)."""
        if self._clock_kind is ShieldClock.STEADY:
            return time.monotonic()
        return max(self._ros_now(), self._state_stamp_s)

    def _command_stamp(self, stamp: TimeMsg) -> float:
        """A command's stamp on the shield's clock (unset stamps stay ≤ 0 so that the core names them)."""
        raw = stamp_to_seconds(stamp)
        if raw <= 0.0 or self._clock_kind is ShieldClock.SIM:
            return raw
        return time.monotonic() - (self._ros_now() - raw)

    def _fresh_stamp(self, stamp: TimeMsg) -> bool:
        """A sensor stamp within state_timeout of the ROS clock (a lock-step /clock may lag one period)."""
        raw = stamp_to_seconds(stamp)
        return raw > 0.0 and abs(self._ros_now() - raw) <= self._params.state_timeout

    # ------------------------------------------------------------------ inputs
    def _on_command(self, msg: JointState) -> None:
        if self.shield is None:
            return
        now = self._now()
        self.shield.on_policy_command(
            JointCommand(self._command_stamp(msg.header.stamp), tuple(msg.name), np.asarray(msg.position)), now
        )
        self._pending_command = msg
        self._last_command_receipt = now
        if not self._active:
            return
        if self._trigger is ShieldTrigger.STATE and not (
            self._unanswered_since is not None and self._answers_newest_state(msg)
        ):
            self.counters["outputs_deferred"] += 1  # its state has not arrived yet, or was answered already
            return
        self._output(now)

    def _answers_newest_state(self, command: JointState) -> bool:
        """State trigger: the command was built from the newest joint state (or a later one)."""
        return self._state_stamp is None or stamp_to_seconds(command.header.stamp) >= self._state_stamp_s

    def _on_joint_state(self, msg: JointState) -> None:
        if self.shield is None:
            return
        if not self._fresh_stamp(msg.header.stamp):
            self.counters["state_stamp_rejected"] += 1
            return
        stamp_s = stamp_to_seconds(msg.header.stamp)
        if self._clock_kind is ShieldClock.SIM and stamp_s < self._state_stamp_s - CLOCK_JUMP_TOLERANCE_S:
            self._state_stamp_s = -math.inf  # a simulator reset: time starts again
        previous = self._state_stamp_s
        self._state_stamp_s = stamp_s
        now = self._now()
        if not self.shield.on_joint_state(msg.position, msg.velocity, now, names=msg.name):
            self._state_stamp_s = previous  # refused (and counted) by the core
            return
        self._state_stamp = msg.header.stamp
        try:
            self._positions = self._joint_map.reorder(msg.name, msg.position)
        except JointNameError:  # unreachable: the core accepted the same names
            self._positions = None
        if self._active and self._trigger is ShieldTrigger.STATE:
            self._on_state_trigger(now)

    def _on_state_trigger(self, now: float) -> None:
        assert self.shield is not None
        pending = self._pending_command
        if self.shield.mode is not ShieldMode.ACTIVE or (pending is not None and self._answers_newest_state(pending)):
            self._output(now)
        elif now - self._last_command_receipt > self._params.command_timeout:
            self._output(now)  # the core's command watchdog fires in this step
        else:
            self._unanswered_since = time.monotonic()  # the policy's command for this state is due

    def _on_imu(self, msg: Imu) -> None:
        if self.shield is None:
            return
        if not self._fresh_stamp(msg.header.stamp):
            self.counters["imu_stamp_rejected"] += 1
            return
        o, w = msg.orientation, msg.angular_velocity
        quat = np.array([o.x, o.y, o.z, o.w])
        gyro = np.array([w.x, w.y, w.z])
        if self._imu_in_base is not None:
            norm = float(np.linalg.norm(quat))
            if not (math.isfinite(norm) and norm > 1e-9):
                self.counters["imu_rejected"] += 1
                return
            quat = quat_multiply(quat / norm, quat_conjugate(self._imu_in_base))
            gyro = quat_rotate(self._imu_in_base, gyro)
        tilt, tilt_rate = tilt_from_imu(quat, gyro)
        now = self._now()
        odom = self._odom
        if odom is not None and now - self._odom_time <= self._params.state_timeout:
            contacts = self._contacts if now - self._contacts_time <= self._params.state_timeout else np.zeros(2, bool)
            balance = BalanceState(
                tilt,
                tilt_rate,
                odom["com_xy"],
                odom["com_vel_xy"],
                odom["com_height"],
                odom["feet"],
                contacts,
                self._sole_sizes,
                odom["yaw"],
            )
        else:
            balance = BalanceState(tilt, tilt_rate)
        self.last_balance = balance  # what balance was last judged from (diagnostics, tests)
        accepted = self.shield.on_balance(balance, now)  # non-finite tilt: refused and counted by the core
        if accepted and self._withheld and self._active and self._trigger is ShieldTrigger.STATE:
            self._output(now)  # the state that waited for this first IMU sample gets its answer now

    def _on_odom(self, msg: Odometry) -> None:
        if self.shield is None or self._positions is None:
            return
        p, o = msg.pose.pose.position, msg.pose.pose.orientation
        v = msg.twist.twist.linear
        position = np.array([p.x, p.y, p.z])
        quat = np.array([o.x, o.y, o.z, o.w])
        velocity = np.array([v.x, v.y, v.z])
        norm_squared = float(quat @ quat)
        if not (
            self._fresh_stamp(msg.header.stamp)
            and np.isfinite(position).all()
            and np.isfinite(velocity).all()
            and abs(norm_squared - 1.0) < 0.1
        ):
            self.counters["estimator_rejected"] += 1
            return
        quat = quat / math.sqrt(norm_squared)
        # REP 105: the twist is in the child frame (the base) unless the child frame is the parent frame.
        if msg.child_frame_id and msg.child_frame_id != msg.header.frame_id:
            velocity = quat_rotate(quat, velocity)
        com, feet = self.kinematics.com_and_sole_centres(position, quat, self._positions)
        ground = float(feet[:, 2].mean()) - self._foot_frame_height
        self._odom = {
            "com_xy": com[:2],
            "com_vel_xy": velocity[:2],
            "com_height": float(com[2]) - ground,
            "feet": feet,
            "yaw": float(yaw(quat if self._upright_in_base is None else quat_multiply(quat, self._upright_in_base))),
        }
        self._odom_time = self._now()

    def _on_contacts(self, msg: Float64MultiArray) -> None:
        data = np.asarray(msg.data, dtype=np.float64)
        if data.shape != (2,) or not np.isfinite(data).all():
            self.counters["contacts_rejected"] += 1
            return
        self._contacts = data > 0.5
        self._contacts_time = self._now()

    # ------------------------------------------------------------------ output
    def _on_tick(self) -> None:
        """Timer trigger: publish when a command is waiting, or no output went out since the previous tick and
        either no commands flow or their stream has a gap (see the module docstring)."""
        if self._active and self.shield is not None:
            now = self._now()
            gap = TICK_GAP_PERIODS * self._params.control_period
            following = now - self._last_command_receipt < gap and now - self._last_step_now < gap
            if self._pending_command is not None or not (self._published_since_tick or following):
                self._output(now)
        self._published_since_tick = False

    def _on_deadline(self) -> None:
        """Timer trigger: the output budget allows the command that had to wait."""
        if self._deadline is not None:
            self._deadline.cancel()
        if self._active and self.shield is not None and self._pending_command is not None:
            self._output(self._now())

    def _on_unanswered_check(self) -> None:
        since = self._unanswered_since
        if self._active and since is not None and self.shield is not None:
            if time.monotonic() - since > self._params.command_timeout:
                self.counters["unanswered_states"] += 1
                self._output(self._now())

    def _output(self, now: float, force: bool = False) -> ShieldOutput | None:
        """Step the core and publish what it says, if the output budget allows (``force``: e-stop)."""
        shield = self.shield
        assert shield is not None
        if now < self._last_step_now - CLOCK_JUMP_TOLERANCE_S:
            self._clock_jumped_back(now)
            shield = self.shield
            assert shield is not None
        if not self._budget.available(now, shield.params.control_period) and not force:
            self.counters["outputs_deferred"] += 1
            if self._deadline is not None and self._pending_command is not None:
                self._deadline.timer_period_ns = max(1, round(self._budget.wait_s(shield.params.control_period) * 1e9))
                self._deadline.reset()
            return None
        command = self._pending_command
        self._pending_command = None
        self._unanswered_since = None
        self._apply_deadman(now)
        accepted_before = shield.counters.commands_accepted
        start = time.perf_counter()
        output = shield.step(now)
        step_s = time.perf_counter() - start
        self._filter_cost.append(step_s)
        self._stages.add("step", step_s)
        self._last_step_now = now
        fresh_command = (
            command is not None
            and output.mode is ShieldMode.ACTIVE
            and output.filter_result is not None
            and output.filter_result.accepted
            and shield.counters.commands_accepted > accepted_before  # judged (not re-filtered) in this step
        )
        self._publish_mode(output.mode.value, shield.last_reason)
        if output.stiffness_scale == 0.0 and output.mode in (ShieldMode.HOLD, ShieldMode.ACTIVE):
            self.counters["outputs_withheld"] += 1  # waiting for the first state: nothing to hold yet
            self._withheld = True
            return output
        self._withheld = False
        self._budget.take()
        stamp = self._state_stamp
        if fresh_command:
            assert command is not None
            stamp = command.header.stamp
            if self._trigger is ShieldTrigger.STATE and not self._answers_newest_state(command):
                # A command for the previous state let the shield into ACTIVE on this state's step: the output
                # answers this state (a lock-step simulator advances on it).
                stamp, fresh_command = self._state_stamp, False
        self._publish(output, stamp)
        if fresh_command:
            self._loop.latency(self._ros_now() - stamp_to_seconds(stamp))
        return output

    @property
    def last_published(self) -> JointState:
        """The newest command this node published (its reused message: copy what you keep); empty before one."""
        return self._output_msg

    def _publish(self, output: ShieldOutput, stamp: TimeMsg | None) -> None:
        start = time.perf_counter()
        msg = self._output_msg = self._output_msgs.next()
        msg.header.stamp = stamp if stamp is not None else self.get_clock().now().to_msg()
        msg.position = output.positions.tolist()
        msg.velocity = output.velocities.tolist()
        msg.effort = output.efforts.tolist()
        self._command_pub.publish(msg)
        self.counters["outputs_published"] += 1
        self._published_since_tick = True
        self._loop.tick(time.monotonic())
        self._stages.add("publish", time.perf_counter() - start)
        local_bus.deliver(self, Topics.JOINT_COMMANDS, msg)  # the hardware interface, if in this process (its time)
        self._diag_timer.poll()

    def _publish_mode(self, mode: str, reason: str) -> None:
        if mode == self._published_mode or self._mode_pub is None:
            return
        previous, self._published_mode = self._published_mode, mode
        self._mode_pub.publish(String(data=mode))
        text = f"mode {previous or '-'} → {mode}: {reason}"
        if mode in (ShieldMode.ACTIVE.value, ShieldMode.HOLD.value):
            self.get_logger().info(text)
        else:  # rclpy wants one severity per call site
            self.get_logger().warning(text)

    def _publish_final_hold(self) -> None:
        """Deactivation: HOLD at the measured pose once (passive output if DAMPING/ESTOP), then silence."""
        shield = self.shield
        assert shield is not None
        if shield.mode in (ShieldMode.DAMPING, ShieldMode.ESTOP):
            self._output(self._now(), force=True)
            return
        if self._positions is None:
            return  # never saw a state: nothing was ever published, nothing to hold
        hold = shield.hold_target()
        zeros = np.zeros_like(hold)
        self._publish_mode(ShieldMode.HOLD.value, "deactivated: holding the pose the robot stands in")
        self._publish(ShieldOutput(ShieldMode.HOLD, hold, zeros, zeros, 1.0, 1.0), self._state_stamp)

    def _clock_jumped_back(self, now: float) -> None:
        """Rebuild the core (its watchdogs compare against times now in the future), keeping counters and
        keeping a latched stop latched."""
        old = self.shield
        assert old is not None
        self.counters["clock_jumps_back"] += 1
        new = SafetyShield(old.limits, old.requested_params, old.require_engage, old.reset_hint)
        new.engaged = old.engaged
        new.counters = old.counters
        if old.mode in (ShieldMode.ESTOP, ShieldMode.DAMPING):
            # A latched stop stays latched, named by its first cause: repeated jumps must not nest the reasons.
            cause = old.last_reason if old.last_reason.startswith(_CLOCK_JUMP_REASON) else (
                f"{_CLOCK_JUMP_REASON} while in {old.mode.value} ({old.last_reason})"
            )
            new.estop(cause.removeprefix("estop: "), now)
        self.shield = new
        self._budget.reset()
        self._last_command_receipt = -math.inf
        self._odom_time = self._contacts_time = -math.inf
        self.get_logger().warning(
            f"clock jumped back from {self._last_step_now:.3f} s to {now:.3f} s: shield restarted"
        )
        self._last_step_now = -math.inf

    # ------------------------------------------------------------------ services
    def _on_estop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.shield is None:
            response.success, response.message = False, "not configured"
            return response
        now = self._now()
        self.shield.estop("service call", now)
        self._output(now, force=True)  # also when inactive: a stop must reach the joints
        response.success, response.message = True, "ESTOP latched; call /safety_shield/reset to recover"
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.shield is None:
            response.success, response.message = False, "not configured"
            return response
        reasons = self.shield.reset(self._now())
        response.success = not reasons
        response.message = "; ".join(reasons) if reasons else self.shield.last_reason
        if response.success:
            self._publish_mode(self.shield.mode.value, self.shield.last_reason)
        return response

    def _on_engage(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        if self.shield is None:
            response.success, response.message = False, "not configured"
            return response
        self._engage_requested = bool(request.data)
        self.shield.set_engaged(self._engage_requested, self._now())
        self._apply_deadman(self._now())
        response.success = True
        response.message = "engaged" if request.data else "disengaged: HOLD at the next step"
        return response

    def _on_deadman(self, msg: Empty) -> None:
        self._deadman_time = self._now()

    def _apply_deadman(self, now: float) -> None:
        """deadman_timeout > 0: engaged only while heartbeats come (the core then holds, as on a disengage)."""
        timeout = float(self._node_params.values["deadman_timeout"])
        if self.shield is None:
            return
        alive = timeout <= 0.0 or now - self._deadman_time <= timeout  # 0 (also set at run time): no deadman
        engaged = self._engage_requested and alive
        if engaged != self.shield.engaged:
            if not alive and self._engage_requested:
                silence = "yet" if self._deadman_time == -math.inf else f"for {now - self._deadman_time:.3f} s"
                self.get_logger().warning(
                    f"no {Topics.DEADMAN} heartbeat {silence} (deadman_timeout {timeout} s): disengaged, HOLD"
                )
            self.shield.set_engaged(engaged, now)

    # ------------------------------------------------------------------ diagnostics
    def timing(self) -> dict[str, float]:
        """Cost of a core step (µs) and state → output latency (ms) over the last STATS_WINDOW samples."""
        cost = np.asarray(self._filter_cost) * 1e6
        loop = self._loop.summary()
        return {
            "filter_p50_us": float(np.percentile(cost, 50)) if cost.size else 0.0,
            "filter_p99_us": float(np.percentile(cost, 99)) if cost.size else 0.0,
            "filter_max_us": float(cost.max()) if cost.size else 0.0,
            "latency_p50_ms": loop.latency_p50_us / 1e3,
            "latency_p99_ms": loop.latency_p99_us / 1e3,
            **self._stages.summary(),
        }

    def diagnostic_values(self) -> dict[str, object]:
        values: dict[str, object] = {"state": self.lifecycle_state}
        shield = self.shield
        if shield is not None:
            values.update(mode=shield.mode.value, reason=shield.last_reason, engaged=shield.engaged)
            for key, value in shield.counters.as_dict().items():
                if isinstance(value, dict):
                    values.update({f"{key}.{k}": v for k, v in value.items()})
                else:
                    values[key] = value
        values.update(self.counters)
        values.update(param_changes=self.param_changes, param_refusals=self.param_refusals)
        values.update(commands_direct=self.command_input.direct, commands_dds_duplicates=self.command_input.duplicates)
        values.update(self.timing())
        return values

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        outputs = self.counters["outputs_published"]
        values = self.diagnostic_values()
        values["output_rate_hz"] = (outputs - self._diag_outputs) / max(now - self._diag_time, 1e-9)
        self._diag_outputs, self._diag_time = outputs, now
        level, message = "ok", self.lifecycle_state
        if self.configure_error:
            level, message = "error", f"configure failed: {self.configure_error}"
        elif self.shield is not None:
            mode = self.shield.mode
            message = f"{mode.value}: {self.shield.last_reason}"
            if mode in (ShieldMode.DAMPING, ShieldMode.ESTOP):
                level = "error"
            elif mode is ShieldMode.HOLD and self._active:
                level = "warn"
        self._diagnostics.publish(values, level=level, message=message)


def main(args: list[str] | None = None) -> int:
    return main_for(SafetyShieldNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
