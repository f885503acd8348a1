"""The simulation bridge: a PyBullet ``HumanoidSim`` behind the topics a real robot's drivers would offer.

A plain ``Node`` named ``sim_bridge``. Every state period (``state_rate_hz``) it publishes, all stamped with
the SIM time of that instant: ``/clock``, ``/joint_states`` (names in policy order; effort = the torque the
motors applied), ``/imu/data`` (frame ``imu_link``), the two foot wrenches (force and torque about the foot
link origin, in that link's frame, as an ankle force-torque sensor reports them) and ``/sim/ground_truth/odom``
(``odom`` → ``base_link``, twist in ``base_link`` per REP 105). Sim time never goes back, not even across
``/sim/reset``; the first state is published one period after start (stamp > 0, so no consumer takes it for an
unset stamp).

Actuation, decided before every period from what the bridge knows (:class:`Actuation`):

* no ``/joint_commands`` since start or reset: hold the default pose with the robot's PD (the robot must not
  collapse while the stack starts);
* ``/safety_shield/mode`` DAMPING or ESTOP: stiffness 0, damping only;
* the newest command older than ``command_timeout`` (sim time − its stamp): the bridge damps by itself
  (defence in depth; counted in ``stale_commands``);
* otherwise the newest command: position targets mapped BY NAME, velocity and effort feed-forward if given.

Stepping:

* real time (``sync: false``): a steady-clock timer at ``state_rate_hz`` steps ``physics_rate / state_rate``
  physics steps and publishes. Deadline based: periods are due at fixed wall times from the first tick; a
  late tick after on-time ones steps every period it owes (counted in ``overruns``), up to ``MAX_CATCH_UP_S``
  of them; under sustained overload a tick steps one period. What is not stepped is dropped
  (``dropped_periods``): sim time falls behind wall time, and every wall period is simulated or counted.
* lock-step (``sync: true``): publish the state for time t, then advance as soon as a command stamped ≥ t
  arrives (the shield stamps its output with the state it was built from) — straight from the command
  callback, no sleep — or after ``sync_timeout`` wall seconds (the last command is held; counted in
  ``sync_timeouts``).

All timers run on a steady clock (the bridge is the source of /clock; it must never wait on it). The wall
time at which each state was published is kept (bounded), so a command stamped t gives the state → shielded
command latency. ``report()``, ``traces()`` and ``status()`` give figures and bounded traces to
``humanoid-rl sim``.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict, deque
from enum import Enum
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import WrenchStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from humanoid_rl.core.params import ParamSpec
from humanoid_rl.core.posture import describe, has_fallen, is_standing
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.core.rotations import quat_to_matrix, yaw
from humanoid_rl.core.shield_modes import ShieldMode
from humanoid_rl.core.timing import LoopStats
from humanoid_rl.graph import SIM_BRIDGE, Frames, Topics
from humanoid_rl.nodes.conversions import JointNameError, JointOrderMap
from humanoid_rl.nodes.diagnostics import DiagnosticsPublisher, DiagnosticsTimer
from humanoid_rl.nodes.params import DeclaredParameters
from humanoid_rl.nodes.qos import CLOCK_QOS, COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
from humanoid_rl.nodes.runner import main_for
from humanoid_rl.sim.randomization import DomainRandomization
from humanoid_rl.sim.simulator import HumanoidSim, SimConfig

__all__ = ["PARAMETERS", "Actuation", "SimBridgeNode", "main"]

PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "robot_config",
        "",
        "robot YAML (config/robots/<robot>.yaml); '' = the shipped humanoid",
        read_only=True,
    ),
    ParamSpec("gui", False, "open the PyBullet GUI window", read_only=True),
    ParamSpec(
        "seed",
        0,
        "seeds the sequence of episode seeds (sensor noise and biases, randomization draws)",
        "",
        0,
        2**31 - 1,
        read_only=True,
    ),
    ParamSpec(
        "randomize",
        False,
        "draw domain randomization (masses, friction, actuator strength, latency, noise) at every reset",
        read_only=True,
    ),
    ParamSpec(
        "sync",
        False,
        "true: lock-step with the stack (advance as soon as the command for the last state arrives, as fast "
        "as the graph allows); false: real time on a wall-clock timer",
        read_only=True,
    ),
    ParamSpec(
        "state_rate_hz",
        50.0,
        "rate of sensor publication and physics advance; must divide the physics rate (1 kHz, shipped robot)",
        "Hz",
        1.0,
        1000.0,
        read_only=True,
    ),
    ParamSpec(
        "command_timeout",
        0.1,
        "a /joint_commands message older than this (sim time − its stamp) is stale: the bridge damps the "
        "joints",
        "s",
        0.001,
        10.0,
    ),
    ParamSpec(
        "sync_timeout",
        0.25,
        "lock-step: advance without the command for the last state after this long (the last command is "
        "held)",
        "s",
        0.001,
        10.0,
    ),
    ParamSpec("push_duration", 0.2, "how long a /sim/push force acts on the base", "s", 0.001, 10.0),
    ParamSpec(
        "gantry",
        False,
        "hold the base with a virtual gantry (a fixed constraint) from start and after /sim/reset until the "
        "shield reports ACTIVE, for robots that cannot stand under PD alone",
        read_only=True,
    ),
)


class Actuation(Enum):
    """What drives the joints during the next period."""

    DEFAULT_POSE = "default_pose"  # no command since start or reset
    COMMAND = "command"
    SHIELD_DAMPING = "shield_damping"  # /safety_shield/mode is DAMPING or ESTOP
    STALE_DAMPING = "stale_command_damping"  # the newest command is older than command_timeout


DAMPING_MODES = frozenset({ShieldMode.DAMPING, ShieldMode.ESTOP})
# Real time: a late tick (after on-time ones) steps the periods it owes, up to this much sim time (at least 2
# periods); older debt is dropped.
MAX_CATCH_UP_S = 0.05
PUBLISHED_STAMPS_KEPT = 512  # published-state wall times kept for latency matching (a bounded FIFO)
LATENCY_WINDOW = 5000
DIAGNOSTICS_PERIOD_S = 0.5
TRACE_HZ = 100.0  # at most this many trace samples per sim second (traces() for plots)
TRACE_LEN = 12_000  # 2 min at 100 Hz; older samples are dropped
_NS = 1_000_000_000


def _stamp(ns: int) -> TimeMsg:
    return TimeMsg(sec=ns // _NS, nanosec=ns % _NS)


def _stamp_ns(stamp: TimeMsg) -> int:
    return stamp.sec * _NS + stamp.nanosec


def _diagonal_covariance(variance: float) -> list[float]:
    """Row-major 3 × 3 covariance with ``variance`` on the diagonal (independent axes)."""
    return [float(variance) if i % 4 == 0 else 0.0 for i in range(9)]


class SimBridgeNode(Node):
    """See the module docstring. Construct, add to an executor and spin; ``report()`` at any time."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(SIM_BRIDGE.name, **kwargs)
        self._params = DeclaredParameters(self, PARAMETERS, on_change=self._apply_runtime_parameters)
        values = self._params.values
        self.spec = spec = RobotSpec.load(values["robot_config"] or None)
        self.state_rate_hz = float(values["state_rate_hz"])
        steps = spec.physics_rate_hz / self.state_rate_hz
        if abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
            raise ValueError(
                f"node {self.get_name()}: state_rate_hz = {self.state_rate_hz:g} Hz does not divide the "
                f"physics rate {spec.physics_rate_hz:g} Hz of {spec.config_path}; use a divisor such as "
                f"{spec.policy_rate_hz:g} or {spec.physics_rate_hz:g}"
            )
        self.steps_per_state = round(steps)
        self._max_catch_up = max(2, math.ceil(MAX_CATCH_UP_S * self.state_rate_hz))
        self.sync = bool(values["sync"])
        self._apply_runtime_parameters(values)

        self.sim = HumanoidSim(
            spec,
            SimConfig(
                gui=bool(values["gui"]),
                seed=int(values["seed"]),
                randomization=DomainRandomization(enabled=bool(values["randomize"])),
            ),
        )
        self.gantry = bool(values["gantry"])
        self.gantry_releases = 0
        self._reset_hold = False  # reset while the shield was latched: on the gantry until it leaves DAMPING/ESTOP
        if self.gantry:
            self.sim.hold_base()
        self._physics_step_ns = round(_NS / self.sim.physics_rate_hz)
        self._period_ns = self._physics_step_ns * self.steps_per_state
        self._joint_map = JointOrderMap(spec.joint_names)
        self._default_pose = np.array(spec.default_pose)
        self._zeros = np.zeros(spec.n_joints)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)

        # --- state of the loop
        self._time_offset_ns = (
            0  # sim time of the current episode's start (keeps stamps monotonic over resets)
        )
        self._episode_start_ns = 0
        self._started = False
        self._command: tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None = None
        self._command_stamp_ns = 0
        self._shield_mode: ShieldMode | None = None
        self.actuation = Actuation.DEFAULT_POSE
        self._applied: tuple[Actuation, int] | None = (
            None  # what the sim was last told: (actuation, command id)
        )
        self._command_id = 0
        self._awaiting_ns: int | None = None  # lock-step: the stamp whose command the bridge waits for
        self._await_deadline = 0.0
        self._rt_anchor: float | None = None  # real time: wall time of period 0
        self._rt_periods = 0
        self._rt_on_time = True  # the previous real-time tick owed exactly one period
        self._published_wall: OrderedDict[int, float] = OrderedDict()

        # --- counters, statistics and traces
        self.states_published = 0  # since start (not reset with the statistics: it paces the traces)
        self.resets = 0
        self.reset_statistics()
        self._diag_window: tuple[float, int] | None = None  # (wall, sim ns) at the last diagnostics
        self._new_episode_tracking()
        self._trace_every = max(1, math.ceil(self.state_rate_hz / TRACE_HZ))
        self._trace: deque[tuple[Any, ...]] = deque(maxlen=TRACE_LEN)

        # --- messages (reused: rclpy serialises at publish)
        names = list(spec.joint_names)
        self._joint_msg = JointState(name=names)
        self._imu_msg = Imu()
        self._imu_msg.header.frame_id = Frames.IMU
        self._set_imu_covariances()
        self._wrench_msgs = [WrenchStamped(), WrenchStamped()]
        for msg, link in zip(self._wrench_msgs, spec.foot_links, strict=True):
            msg.header.frame_id = link
        self._odom_msg = Odometry()
        self._odom_msg.header.frame_id = Frames.ODOM
        self._odom_msg.child_frame_id = Frames.BASE
        self._clock_msg = ClockMsg()

        # --- ROS interfaces
        self._clock_pub = self.create_publisher(ClockMsg, Topics.CLOCK, CLOCK_QOS)
        self._joint_pub = self.create_publisher(JointState, Topics.JOINT_STATES, SENSOR_QOS)
        self._imu_pub = self.create_publisher(Imu, Topics.IMU, SENSOR_QOS)
        self._wrench_pubs = [
            self.create_publisher(WrenchStamped, Topics.LEFT_FOOT_WRENCH, SENSOR_QOS),
            self.create_publisher(WrenchStamped, Topics.RIGHT_FOOT_WRENCH, SENSOR_QOS),
        ]
        self._odom_pub = self.create_publisher(Odometry, Topics.GROUND_TRUTH_ODOM, SENSOR_QOS)
        self.create_subscription(JointState, Topics.JOINT_COMMANDS, self._on_command, COMMAND_QOS)
        self.create_subscription(String, Topics.SHIELD_MODE, self._on_shield_mode, LATCHED_QOS)
        self.create_subscription(
            WrenchStamped, Topics.SIM_PUSH, self._on_push, COMMAND_QOS
        )  # an event: reliable
        self.create_service(Trigger, Topics.SIM_RESET, self._on_reset)
        self._diagnostics = DiagnosticsPublisher(self, self.reset_statistics)
        self._diag_timer = DiagnosticsTimer(self, self._publish_diagnostics, DIAGNOSTICS_PERIOD_S)
        if self.sync:
            # Only the timeout is polled; an answered state advances from the command callback at once.
            poll = min(0.05, max(0.001, self._sync_timeout_s / 4.0))
            self.create_timer(poll, self._sync_tick, clock=self._steady)
        else:
            self.create_timer(1.0 / self.state_rate_hz, self._realtime_tick, clock=self._steady)
        self.get_logger().info(
            f"{spec.name}: {spec.n_joints} joints, physics {self.sim.physics_rate_hz:g} Hz, state "
            f"{self.state_rate_hz:g} Hz ({self.steps_per_state} steps per state), "
            + ("lock-step" if self.sync else "real time")
        )

    # ------------------------------------------------------------------ parameters
    def _apply_runtime_parameters(self, values: dict[str, Any]) -> None:
        self._command_timeout_ns = round(float(values["command_timeout"]) * _NS)
        self._sync_timeout_s = float(values["sync_timeout"])
        self._push_duration_s = float(values["push_duration"])

    def _set_imu_covariances(self) -> None:
        """REP 145 covariances from the sim's noise model: white noise plus the per-episode bias spread."""
        noise = self.sim.config.noise
        scale = float(self.sim.randomization_sample.imu_noise_scale)
        msg = self._imu_msg
        msg.orientation_covariance = _diagonal_covariance((scale * noise.orientation_std) ** 2)
        msg.angular_velocity_covariance = _diagonal_covariance(
            scale**2 * (noise.gyro_std**2 + noise.gyro_bias_std**2)
        )
        msg.linear_acceleration_covariance = _diagonal_covariance(
            scale**2 * (noise.accel_std**2 + noise.accel_bias_std**2)
        )

    # ------------------------------------------------------------------ time
    @property
    def sim_time_ns(self) -> int:
        return self._time_offset_ns + self.sim.step_count * self._physics_step_ns

    @property
    def sim_time_s(self) -> float:
        return self.sim_time_ns / _NS

    # ------------------------------------------------------------------ inputs
    def _on_command(self, msg: JointState) -> None:
        names = msg.name
        try:
            q = self._joint_map.reorder(names, msg.position)
            qd = self._joint_map.reorder(names, msg.velocity) if len(msg.velocity) else None
            ff = self._joint_map.reorder(names, msg.effort) if len(msg.effort) else None
        except JointNameError as exc:
            self.commands_rejected += 1
            self.get_logger().warning(f"/joint_commands refused: {exc}", throttle_duration_sec=2.0)
            return
        if not all(v is None or np.isfinite(v).all() for v in (q, qd, ff)):
            self.commands_rejected += 1
            self.get_logger().warning(
                "/joint_commands refused: NaN or inf in the command", throttle_duration_sec=2.0
            )
            return
        stamp_ns = _stamp_ns(msg.header.stamp)
        if stamp_ns < self._episode_start_ns:
            self.commands_from_before_reset += 1  # built from a state of the episode before /sim/reset
            return
        published = self._published_wall.pop(stamp_ns, None)
        if published is not None:
            latency = time.perf_counter() - published
            self._loop.latency(latency)
            self._latencies.append(latency)
        self._command = (q, qd, ff)
        self._command_stamp_ns = stamp_ns
        self._command_id += 1
        self.commands_applied += 1
        self._update_actuation()
        if self._awaiting_ns is not None and stamp_ns >= self._awaiting_ns:
            self._advance_lock_step()

    def _on_shield_mode(self, msg: String) -> None:
        self.shield_mode_counts[msg.data] += 1
        try:
            self._shield_mode = ShieldMode(msg.data)
        except ValueError:
            self.unknown_modes += 1
            self.get_logger().warning(
                f"unknown /safety_shield/mode {msg.data!r} ignored", throttle_duration_sec=5.0
            )
            return
        if self._reset_hold and self._shield_mode not in DAMPING_MODES:
            self._reset_hold = False  # the shield took the reset robot over (HOLD ramp): let it stand
            if not self.gantry:
                self.sim.release_base()
        if self._shield_mode is ShieldMode.ACTIVE and self.sim.base_held:
            self.sim.release_base()  # engaged: the policy holds the robot up from now on
            self.gantry_releases += 1
            self.get_logger().info(f"shield ACTIVE: gantry released at sim time {self.sim_time_ns / _NS:.3f} s")
        self._update_actuation()

    def _on_push(self, msg: WrenchStamped) -> None:
        f = msg.wrench.force
        force = np.array([f.x, f.y, f.z])
        frame = msg.header.frame_id
        if frame == Frames.BASE:
            force = quat_to_matrix(self.sim.ground_truth().quat) @ force
        elif frame not in ("", Frames.ODOM, Frames.WORLD):
            self.pushes_rejected += 1
            self.get_logger().warning(
                f"/sim/push in frame {frame!r} refused: use {Frames.ODOM!r} or {Frames.WORLD!r} (world) or "
                f"{Frames.BASE!r}"
            )
            return
        try:
            self.sim.apply_push(force, self._push_duration_s)
        except ValueError as exc:
            self.pushes_rejected += 1
            self.get_logger().warning(f"/sim/push refused: {exc}")
            return
        self.pushes += 1

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        offset = self.sim_time_ns  # the new episode continues the clock: stamps never go back
        self.sim.reset()
        if self.gantry and self._shield_mode is not ShieldMode.ACTIVE:
            self.sim.hold_base()
        self._set_imu_covariances()  # a randomized episode may scale the IMU noise
        self._time_offset_ns = self._episode_start_ns = offset
        self._command = None
        self._applied = None
        self._published_wall.clear()
        self._new_episode_tracking()
        self.resets += 1
        # A latched shield (DAMPING/ESTOP) would let the new robot collapse at once, and it refuses a reset while
        # the old one lies beyond the trip: hold the new one on a gantry in the default pose until the shield
        # leaves the latched mode (/safety_shield/reset), so the two resets work in this order.
        held = self._reset_hold = self._shield_mode in DAMPING_MODES
        if held:
            self.sim.hold_base()
        self._update_actuation()
        if self._started:
            if self.sync:
                self._advance_lock_step()
            else:
                self._rt_anchor, self._rt_periods = time.perf_counter(), 0
        response.success = True
        response.message = f"reset at sim time {offset / _NS:.3f} s (episode seed {self.sim.seed})" + (
            f"; the shield is {self._shield_mode.value}: the robot is held on a gantry until "
            f"{Topics.SHIELD_RESET} is called"
            if held
            else ""
        )
        return response

    # ------------------------------------------------------------------ actuation
    def _update_actuation(self) -> None:
        """Decide what drives the joints now and tell the sim if that changed."""
        if self._reset_hold:
            actuation = Actuation.DEFAULT_POSE  # a reset robot on its gantry holds the default pose
        elif self._shield_mode in DAMPING_MODES:
            actuation = Actuation.SHIELD_DAMPING
        elif self._command is None:
            actuation = Actuation.DEFAULT_POSE
        elif self.sim_time_ns - self._command_stamp_ns > self._command_timeout_ns:
            actuation = Actuation.STALE_DAMPING
        else:
            actuation = Actuation.COMMAND
        if actuation is Actuation.STALE_DAMPING and self.actuation is not Actuation.STALE_DAMPING:
            self.stale_commands += 1
            self.get_logger().warning(
                f"newest /joint_commands is {(self.sim_time_ns - self._command_stamp_ns) / _NS:.3f} s old "
                f"(> command_timeout): damping the joints",
                throttle_duration_sec=2.0,
            )
        self.actuation = actuation
        key = (actuation, self._command_id if actuation is Actuation.COMMAND else 0)
        if key == self._applied:
            return
        self._applied = key
        sim = self.sim
        if actuation is Actuation.COMMAND:
            q, qd, ff = self._command  # type: ignore[misc]  # set whenever COMMAND
            sim.set_joint_targets(q, qd, ff)
        elif actuation is Actuation.DEFAULT_POSE:
            sim.set_joint_targets(self._default_pose)
        else:  # damping: no stiffness, velocity target zero, no feed-forward
            sim.set_joint_targets(self._default_pose, self._zeros, self._zeros, stiffness_scale=0.0)

    def _targets(self) -> np.ndarray:
        return self._command[0] if self.actuation is Actuation.COMMAND else self._default_pose  # type: ignore[index]

    # ------------------------------------------------------------------ stepping
    def _advance(self, periods: int) -> None:
        self._update_actuation()  # staleness is judged at the start of the period
        self.sim.step(periods * self.steps_per_state)
        self._publish_state()
        self._diag_timer.poll()

    def _advance_lock_step(self) -> None:
        self._awaiting_ns = None
        self._advance(1)
        self._awaiting_ns = self.sim_time_ns
        self._await_deadline = time.perf_counter() + self._sync_timeout_s

    def _sync_tick(self) -> None:
        if not self._started:
            self._started = True
            self._advance_lock_step()
        elif self._awaiting_ns is not None and time.perf_counter() > self._await_deadline:
            self.sync_timeouts += 1
            self._advance_lock_step()

    def _realtime_tick(self) -> None:
        now = time.perf_counter()
        if self._rt_anchor is None:
            self._started = True
            self._rt_anchor, self._rt_periods = now, 0
        due = int((now - self._rt_anchor) * self.state_rate_hz) + 1  # period k is due at anchor + (k-1)/rate
        owed = due - self._rt_periods
        if owed <= 0:
            return
        stepped = 1
        if owed > 1:
            self.overruns += 1
            # A hiccup after on-time ticks is caught up; under sustained overload each tick steps one period,
            # so states keep coming at the highest rate the machine allows (batches would only thin them out).
            stepped = min(owed, self._max_catch_up) if self._rt_on_time else 1
            self.dropped_periods += owed - stepped
        self._rt_on_time = owed == 1
        self._advance(stepped)
        self._rt_periods += owed

    # ------------------------------------------------------------------ output
    def _publish_state(self) -> None:
        # Latency is counted from here: the state exists once the physics step is done, before it is read out.
        wall = time.perf_counter()
        sim = self.sim
        t_ns = self.sim_time_ns
        stamp = _stamp(t_ns)
        sensors = sim.read_sensors()
        truth = sim.ground_truth()

        joint = self._joint_msg
        joint.header.stamp = stamp
        joint.position = sensors.joint_pos.tolist()
        joint.velocity = sensors.joint_vel.tolist()
        joint.effort = sim.last_applied_torques.tolist()
        self._joint_pub.publish(joint)

        imu = self._imu_msg
        imu.header.stamp = stamp
        o, w, a = imu.orientation, imu.angular_velocity, imu.linear_acceleration
        o.x, o.y, o.z, o.w = sensors.imu_quat.tolist()
        w.x, w.y, w.z = sensors.imu_gyro.tolist()
        a.x, a.y, a.z = sensors.imu_accel.tolist()
        self._imu_pub.publish(imu)

        for msg, pub, wrench in zip(self._wrench_msgs, self._wrench_pubs, sensors.foot_wrenches, strict=True):
            msg.header.stamp = stamp
            f, tq = msg.wrench.force, msg.wrench.torque
            f.x, f.y, f.z, tq.x, tq.y, tq.z = wrench.tolist()
            pub.publish(msg)

        odom = self._odom_msg
        odom.header.stamp = stamp
        p, q = odom.pose.pose.position, odom.pose.pose.orientation
        p.x, p.y, p.z = truth.pos.tolist()
        q.x, q.y, q.z, q.w = truth.quat.tolist()
        lin, ang = odom.twist.twist.linear, odom.twist.twist.angular
        lin.x, lin.y, lin.z = truth.lin_vel_body.tolist()
        ang.x, ang.y, ang.z = truth.ang_vel_body.tolist()
        self._odom_pub.publish(odom)
        # /clock last: nodes on sim time see the clock reach t only after the sensor messages stamped t went
        # out, so what wakes on the clock finds this instant's data (measured: state → shielded command p50
        # 28 ms with the clock first, 6.5 ms with it last, one process at 50 Hz in real time).
        self._clock_msg.clock = stamp
        self._clock_pub.publish(self._clock_msg)

        published = self._published_wall
        published[t_ns] = wall
        while len(published) > PUBLISHED_STAMPS_KEPT:
            published.popitem(last=False)
        self._loop.tick(wall)
        if self._stats_wall is None:
            self._stats_wall, self._stats_sim_ns = wall, t_ns
        self.states_published += 1
        self._track(t_ns, truth.pos, truth.quat, truth.lin_vel_world, truth.tilt_rad, sensors.joint_pos,
                    sensors.foot_wrenches)

    # ------------------------------------------------------------------ report
    def _new_episode_tracking(self) -> None:
        self.fell = False
        self.upright_time_s = 0.0
        self.base_height_min = math.inf
        self.base_height = math.nan
        self.tilt = math.nan

    def _track(
        self,
        t_ns: int,
        pos: np.ndarray,
        quat: np.ndarray,
        vel: np.ndarray,
        tilt: float,
        joint_pos: np.ndarray,
        foot_wrenches: np.ndarray,
    ) -> None:
        height = float(pos[2])
        self.base_height = height
        self.tilt = tilt
        self.base_height_min = min(self.base_height_min, height)
        if not self.fell:
            if has_fallen(tilt, height, self.spec.nominal_base_height):
                self.fell = True
                self.get_logger().warning(f"the robot fell at sim time {t_ns / _NS:.3f} s")
            else:
                self.upright_time_s = (t_ns - self._episode_start_ns) / _NS
        if self.states_published % self._trace_every == 0:
            damping = self.actuation in (Actuation.SHIELD_DAMPING, Actuation.STALE_DAMPING)
            self._trace.append(
                (t_ns / _NS, pos.copy(), vel.copy(), tilt, self._targets().copy(), joint_pos.copy(), damping, yaw(quat),
                 np.asarray(foot_wrenches)[:, 2].copy())  # each sole's normal force (sensor frame z)
            )

    def reset_statistics(self) -> None:
        """Start the counters, rates, real-time factor and latencies afresh (e.g. after a warm-up); the
        episode's fall tracking and the traces stay."""
        self.commands_applied = 0
        self.commands_rejected = 0
        self.commands_from_before_reset = 0
        self.stale_commands = 0  # times the newest command went stale (each starts a bridge-side damping)
        self.sync_timeouts = 0
        self.overruns = 0  # real-time ticks that had to step more than one period
        self.dropped_periods = 0
        self.pushes = 0
        self.pushes_rejected = 0
        self.unknown_modes = 0
        self.shield_mode_counts: Counter[str] = Counter()
        self._loop = LoopStats(self.state_rate_hz, window=LATENCY_WINDOW)
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)  # seconds, for histograms
        self._stats_wall: float | None = None  # wall time and sim time of the first state since the reset
        self._stats_sim_ns = 0

    def timing(self) -> dict[str, float | int]:
        """State-publication rate, real-time factor and state → shielded-command latency (wall clock)."""
        s = self._loop.summary()
        wall = 0.0 if self._stats_wall is None else time.perf_counter() - self._stats_wall
        sim_elapsed = (self.sim_time_ns - self._stats_sim_ns) / _NS if self._stats_wall is not None else 0.0
        return {
            "target_rate_hz": s.target_rate_hz,
            "achieved_rate_hz": s.achieved_rate_hz,
            "jitter_us": s.jitter_us,
            "real_time_factor": sim_elapsed / wall if wall > 0 else 0.0,
            "latency_p50_us": s.latency_p50_us,
            "latency_p99_us": s.latency_p99_us,
            "latency_max_us": s.latency_max_us,
            "latency_samples": len(self._latencies),
        }

    def status(self) -> dict[str, Any]:
        """A few live figures, cheap enough for a status line every second."""
        s = self._loop.summary()
        return {
            "sim_time_s": self.sim_time_s,
            "base_height_m": self.base_height,
            "latency_p50_us": s.latency_p50_us,
            "actuation": self.actuation.value,
            "fell": self.fell,
        }

    def report(self) -> dict[str, Any]:
        """Figures of the run so far (scalars and small dicts, JSON-able), for ``humanoid-rl sim`` / bench."""
        return {
            "sim_time_s": self.sim_time_s,
            "wall_time_s": 0.0 if self._stats_wall is None else time.perf_counter() - self._stats_wall,
            "sync": self.sync,
            "state_rate_hz": self.state_rate_hz,
            **self.timing(),
            "states_published": self.states_published,
            "fell": self.fell,
            "upright_time_s": self.upright_time_s,
            "base_height_min_m": self.base_height_min,
            "final_tilt_deg": math.degrees(self.tilt),
            "final_base_height_m": self.base_height,
            "standing": not self.fell and is_standing(self.tilt, self.base_height, self.spec.nominal_base_height),
            "posture": describe(self.fell, self.tilt, self.base_height, self.spec.nominal_base_height),
            "resets": self.resets,
            "actuation": self.actuation.value,
            "commands_applied": self.commands_applied,
            "commands_rejected": self.commands_rejected,
            "commands_from_before_reset": self.commands_from_before_reset,
            "stale_commands": self.stale_commands,
            "sync_timeouts": self.sync_timeouts,
            "overruns": self.overruns,
            "dropped_periods": self.dropped_periods,
            "pushes": self.pushes,
            "pushes_rejected": self.pushes_rejected,
            "shield_mode_counts": dict(self.shield_mode_counts),
            "unknown_shield_modes": self.unknown_modes,
            "gantry_releases": self.gantry_releases,
        }

    def traces(self) -> dict[str, Any]:
        """Bounded, decimated (≤ TRACE_HZ) series for plots: ground truth, joint targets and positions,
        latencies."""
        trace = list(self._trace)
        n = self.spec.n_joints
        return {
            "time_s": np.array([r[0] for r in trace]),
            "base_position_m": np.array([r[1] for r in trace]).reshape(-1, 3),
            "base_height_m": np.array([r[1][2] for r in trace]),
            "base_velocity_world_mps": np.array([r[2] for r in trace]).reshape(-1, 3),
            "tilt_deg": np.degrees(np.array([r[3] for r in trace])),
            "joint_names": list(self.spec.joint_names),
            "joint_targets": np.array([r[4] for r in trace]).reshape(-1, n),
            "joint_positions": np.array([r[5] for r in trace]).reshape(-1, n),
            "damping": np.array([r[6] for r in trace], dtype=bool),
            "base_yaw_rad": np.array([r[7] for r in trace]),
            "foot_links": list(self.spec.foot_links),
            "foot_force_n": np.array([r[8] for r in trace]).reshape(-1, len(self.spec.foot_links)),
            "latency_us": 1e6 * np.array(self._latencies),
        }

    def _publish_diagnostics(self) -> None:
        wall, sim_ns = time.perf_counter(), self.sim_time_ns
        window_rtf = 0.0
        if self._diag_window is not None and wall > self._diag_window[0]:
            window_rtf = (sim_ns - self._diag_window[1]) / _NS / (wall - self._diag_window[0])
        self._diag_window = (wall, sim_ns)
        values: dict[str, object] = {
            "mode": "lock-step" if self.sync else "real time",
            "sim_time_s": sim_ns / _NS,
            "actuation": self.actuation.value,
            "shield_mode": self._shield_mode.value if self._shield_mode else "",
            **self.timing(),
            "real_time_factor_window": window_rtf,
            "states_published": self.states_published,
            "commands_applied": self.commands_applied,
            "commands_rejected": self.commands_rejected,
            "stale_commands": self.stale_commands,
            "sync_timeouts": self.sync_timeouts,
            "overruns": self.overruns,
            "dropped_periods": self.dropped_periods,
            "fell": self.fell,
        }
        level, message = "ok", self.actuation.value
        if self.actuation is Actuation.STALE_DAMPING:
            level, message = "warn", "commands stale: the bridge is damping the joints"
        elif self.fell:
            level, message = "warn", "the robot has fallen (call /sim/reset)"
        elif not self.sync and self._started and 0.0 < window_rtf < 0.9:
            level, message = "warn", f"slower than real time ({window_rtf:.2f}x)"
        self._diagnostics.publish(values, level=level, message=message)

    def destroy_node(self) -> None:
        if hasattr(self, "sim"):  # absent when the constructor refused the parameters
            self.sim.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return main_for(SimBridgeNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
