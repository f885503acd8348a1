"""A hardware emulator: a robot that speaks only what a real humanoid's ros2_control drivers speak.

A plain ``Node`` named ``hardware_emulator``, for testing the real-robot path without a robot. It knows nothing
of our internal topics (no /joint_commands, no shield mode, no /clock): underneath is a PyBullet
:class:`~humanoid_rl.sim.simulator.HumanoidSim` whose joint PD plays the role of the motor drivers.

Hardware topics:

* in: the controller input. ``controller: forward_command`` → ``std_msgs/Float64MultiArray`` on
  ``/forward_position_controller/commands`` whose values are in THIS node's ``controller_joints`` order (a
  message of the wrong size is refused, as ros2_control's forward controller does); ``joint_trajectory`` →
  ``trajectory_msgs/JointTrajectory`` on ``/joint_trajectory_controller/joint_trajectory`` (names in the message;
  the last point is reached linearly at its ``time_from_start``). Commands reach the motors after
  ``command_latency``.
* out, at ``state_rate_hz`` on a steady-clock, deadline-based timer (like a controller manager's update loop):
  ``/joint_states`` (names in ``controller_joints`` order, the driver's order, not ours), ``/imu/data`` and the
  two foot wrench topics (a force-torque sensor broadcaster; in each foot's frame, as a sensor reports). All
  messages of one cycle carry the same stamp: the ROS time at which the sensors were read.

Realism (all parameters):

* latency: each message is stamped ``sensor_latency`` + U(0, ``sensor_jitter``) before it is published (the
  sensors are read at the end of the cycle), so it arrives that much older than its stamp, plus whatever the
  executor adds. Their sum must stay below one cycle.
* sensor noise: the simulator's encoder / IMU noise and biases, scaled by ``noise_scale``.
* dropped messages: each message of each sensor topic is left out with probability ``drop_probability``.
* faults: ``publish_joint_states`` / ``publish_imu`` / ``publish_foot_wrenches`` (runtime parameters) stop a
  stream, as a crashed driver would.
* start-up: the robot starts in ``initial_pose`` (``"joint=value"`` entries, the rest at the default pose),
  standing, and its drivers hold that pose until the first command (as motor drivers hold position at enable).
* timing: a late cycle steps the physics it owes (``overruns``), at most ``MAX_CATCH_UP_CYCLES``; older debt is
  dropped (``dropped_cycles``): on an overloaded computer the robot moves in slow motion and publishes less
  often, but its messages stay as fresh as configured (``cycle_lateness`` in ``report()`` says how late the
  cycles ran).

``report()`` gives counts, cycle lateness, the command delay as the robot sees it (a command's arrival after the
stamp of the newest sensor cycle: measurement → controller, whatever is between), the last applied command by
joint name and
whether the robot fell (for tests and ``humanoid-rl real --emulate``).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import WrenchStamped
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from humanoid_rl.core.params import ParamSpec
from humanoid_rl.core.posture import describe, has_fallen, is_standing
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.core.timing import LoopStats
from humanoid_rl.graph import HARDWARE_EMULATOR, Frames, Topics
from humanoid_rl.nodes.conversions import JointNameError, JointOrderMap
from humanoid_rl.nodes.hardware_params import UNSET_JOINTS, ControllerKind, check_controller_joints
from humanoid_rl.nodes.params import DeclaredParameters
from humanoid_rl.nodes.qos import COMMAND_QOS, SENSOR_QOS
from humanoid_rl.nodes.runner import main_for
from humanoid_rl.sim.sim_params import load_sim_params
from humanoid_rl.sim.simulator import HumanoidSim, SensorNoise, SimConfig
from humanoid_rl.sim.sysid import hang

__all__ = ["PARAMETERS", "HardwareEmulatorNode", "parse_initial_pose", "main"]

PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("robot_config", "", "robot YAML (config/robots/<robot>.yaml); '' = the shipped humanoid", read_only=True),
    ParamSpec(
        "controller",
        ControllerKind.FORWARD.value,
        "the controller the emulated robot runs: 'forward_command' or 'joint_trajectory'",
        choices=tuple(k.value for k in ControllerKind),
        read_only=True,
    ),
    ParamSpec(
        "controller_joints",
        UNSET_JOINTS,
        "the emulated controller's joint order (also the order of its /joint_states); unset = the robot's joints"
        " in alphabetical order",
        read_only=True,
    ),
    ParamSpec(
        "state_rate_hz",
        200.0,
        "rate of the update loop and of /joint_states, IMU and wrenches; must divide the physics rate",
        "Hz",
        10.0,
        1000.0,
        read_only=True,
    ),
    ParamSpec(
        "sensor_latency",
        0.002,
        "sensors are read this long (plus jitter) before their messages are published",
        "s",
        0.0,
        0.1,
    ),
    ParamSpec("sensor_jitter", 0.001, "uniform random extra latency per cycle, 0..this", "s", 0.0, 0.1),
    ParamSpec(
        "drop_probability", 0.01, "probability that one message of one sensor topic is never published", "", 0.0, 1.0
    ),
    ParamSpec("command_latency", 0.002, "controller input → motors", "s", 0.0, 0.1, read_only=True),
    ParamSpec(
        "noise_scale", 1.0, "scales the simulator's encoder and IMU noise and biases", "", 0.0, 10.0, read_only=True
    ),
    ParamSpec("seed", 0, "seeds noise, biases, drops and jitter", "", 0, 2**31 - 1, read_only=True),
    ParamSpec(
        "initial_pose",
        [""],
        "start pose as 'joint=value' entries (radians); joints not named start at the default pose",
        read_only=True,
    ),
    ParamSpec("publish_joint_states", True, "false: /joint_states stops (a crashed joint_state_broadcaster)"),
    ParamSpec("publish_imu", True, "false: the IMU stops"),
    ParamSpec("publish_foot_wrenches", True, "false: the foot force-torque sensors stop"),
    ParamSpec("gui", False, "open the PyBullet window", read_only=True),
    ParamSpec(
        "sim_params",
        "",
        "physical parameters YAML (`humanoid-rl sysid` format): a robot that differs from its URDF; '' = nominal",
        read_only=True,
    ),
    ParamSpec("hanging", False, "the robot hangs from a gantry, feet clear of the ground (sysid recordings)",
              read_only=True),
)

MAX_CATCH_UP_CYCLES = 3  # more would make a late cycle later still (a spiral on a loaded CPU)
STATS_WINDOW = 5000
_NS = 1_000_000_000


class SensorTopic(Enum):
    JOINT_STATES = "joint_states"
    IMU = "imu"
    FOOT_WRENCHES = "foot_wrenches"


def _consistency(values: Mapping[str, Any]) -> list[str]:
    period = 1.0 / float(values["state_rate_hz"])
    worst = float(values["sensor_latency"]) + float(values["sensor_jitter"])
    if worst >= period:
        return [
            f"sensor_latency + sensor_jitter ({worst} s) must stay below one cycle (1 / state_rate_hz = {period:g} s)"
        ]
    return []


def parse_initial_pose(entries: Sequence[str], spec: RobotSpec) -> np.ndarray:
    """``["left_knee_joint=0.8", ...]`` → a full pose in policy order (default pose where not named)."""
    pose = np.array(spec.default_pose, dtype=np.float64)
    index = {name: i for i, name in enumerate(spec.joint_names)}
    for entry in entries:
        if not entry.strip():
            continue
        name, sep, value = entry.partition("=")
        name = name.strip()
        if not sep or name not in index:
            raise ValueError(
                f"initial_pose entry {entry!r}: expected 'joint=value' with a joint of the robot ({list(index)})"
            )
        try:
            number = float(value)
        except ValueError as exc:
            raise ValueError(f"initial_pose entry {entry!r}: {value!r} is not a number") from exc
        i = index[name]
        if not spec.lower[i] <= number <= spec.upper[i]:
            raise ValueError(
                f"initial_pose entry {entry!r}: outside the joint's limits [{spec.lower[i]}, {spec.upper[i]}]"
            )
        pose[i] = number
    return pose


class HardwareEmulatorNode(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(HARDWARE_EMULATOR.name, **kwargs)
        self._params = DeclaredParameters(self, PARAMETERS, consistency=_consistency)
        values = self._params.values
        self.spec = spec = RobotSpec.load(values["robot_config"] or None)
        joints = list(values["controller_joints"])
        self.controller_joints: tuple[str, ...] = (
            tuple(sorted(spec.joint_names)) if joints == UNSET_JOINTS else tuple(joints)
        )
        check_controller_joints(spec.joint_names, self.controller_joints, f"node {self.get_name()}")
        self.kind = ControllerKind(values["controller"])
        self.state_rate_hz = float(values["state_rate_hz"])
        steps = spec.physics_rate_hz / self.state_rate_hz
        if abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
            raise ValueError(
                f"node {self.get_name()}: state_rate_hz = {self.state_rate_hz:g} Hz does not divide the physics rate "
                f"{spec.physics_rate_hz:g} Hz; use e.g. 100, 200, 250 or 500"
            )
        self.steps_per_cycle = round(steps)
        # controller order → policy order: values_in_controller_order[to_policy] is in policy order.
        self._to_policy = JointOrderMap(spec.joint_names).permutation(self.controller_joints)
        # policy order → controller order: values_in_policy_order[from_policy] is in controller order.
        self._from_policy = JointOrderMap(self.controller_joints).permutation(spec.joint_names)
        self._controller_map = JointOrderMap(self.controller_joints)
        noise = SensorNoise()
        scale = float(values["noise_scale"])
        noise = SensorNoise(**{k: v * scale for k, v in vars(noise).items()})
        self.sim = HumanoidSim(
            spec,
            SimConfig(
                gui=bool(values["gui"]),
                seed=int(values["seed"]),
                noise=noise,
                control_latency_s=float(values["command_latency"]),
                params=load_sim_params(values["sim_params"]) if values["sim_params"] else None,
            ),
        )
        self.initial_pose = parse_initial_pose(values["initial_pose"], spec)
        self.sim.reset(joint_pos=self.initial_pose)
        if values["hanging"]:
            hang(self.sim)
        self._dt = 1.0 / self.sim.physics_rate_hz
        self._rng = np.random.default_rng(int(values["seed"]) + 1)
        self._anchor: float | None = None  # steady time at which cycle 0 began
        self._cycles = 0
        self._target = self.initial_pose.copy()  # policy order: what the drivers track now
        self._trajectory: tuple[float, np.ndarray, np.ndarray, float] | None = None  # (t0, start, goal, duration)

        self.states_published = 0
        self.commands_received = 0
        self.commands_rejected = 0
        self.overruns = 0
        self.dropped_cycles = 0
        self.dropped: Counter[str] = Counter()
        self.published: Counter[str] = Counter()
        self.last_command: dict[str, float] = {}  # controller joint name → commanded position (applied)
        self.first_command_time: float | None = None  # steady time of the first command
        self.fell = False
        self.base_height_min = math.inf
        self._latency = LoopStats(self.state_rate_hz, window=STATS_WINDOW)
        self._command_delay = LoopStats(self.state_rate_hz, window=STATS_WINDOW)
        self._newest_stamp_ns: int | None = None  # of the newest sensor cycle published
        # Called with the emulated time after each cycle's physics, in this node's callback (so it may read the
        # simulator): `humanoid-rl real --emulate --video` films the robot from here.
        self.on_cycle: Callable[[float], None] | None = None

        names = list(self.controller_joints)
        self._joint_msg = JointState(name=names)
        self._imu_msg = Imu()
        self._imu_msg.header.frame_id = Frames.IMU
        self._wrench_msgs = [WrenchStamped(), WrenchStamped()]
        for msg, link in zip(self._wrench_msgs, spec.foot_links, strict=True):
            msg.header.frame_id = link
        self._joint_pub = self.create_publisher(JointState, Topics.JOINT_STATES, SENSOR_QOS)
        self._imu_pub = self.create_publisher(Imu, Topics.IMU, SENSOR_QOS)
        self._wrench_pubs = [
            self.create_publisher(WrenchStamped, Topics.LEFT_FOOT_WRENCH, SENSOR_QOS),
            self.create_publisher(WrenchStamped, Topics.RIGHT_FOOT_WRENCH, SENSOR_QOS),
        ]
        if self.kind is ControllerKind.FORWARD:
            self.create_subscription(Float64MultiArray, Topics.FORWARD_COMMAND, self._on_forward, COMMAND_QOS)
        else:
            self.create_subscription(JointTrajectory, Topics.JOINT_TRAJECTORY, self._on_trajectory, COMMAND_QOS)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0 / self.state_rate_hz, self._tick, clock=self._steady)
        self.get_logger().info(
            f"emulating {spec.name!r}: {self.kind.value} controller over {len(names)} joints in its own order, "
            f"{self.state_rate_hz:g} Hz, sensor latency {values['sensor_latency'] * 1e3:g} ms + "
            f"U(0, {values['sensor_jitter'] * 1e3:g}) ms, drop probability {values['drop_probability']:g}"
        )

    # ------------------------------------------------------------------ controller input
    def _on_forward(self, msg: Float64MultiArray) -> None:
        self.commands_received += 1
        data = np.asarray(msg.data, dtype=np.float64)
        if data.shape != (len(self.controller_joints),) or not np.isfinite(data).all():
            self.commands_rejected += 1
            self.get_logger().error(
                f"command refused: {data.size} values for {len(self.controller_joints)} joints, or not finite",
                throttle_duration_sec=2.0,
            )
            return
        self._trajectory = None
        self._apply(data[self._to_policy], data)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        self.commands_received += 1
        if not msg.points:
            self._trajectory = None  # an empty trajectory stops: hold the current target
            return
        point = msg.points[-1]
        try:
            goal_ctrl = self._controller_map.reorder(msg.joint_names, point.positions)
        except JointNameError as exc:
            self.commands_rejected += 1
            self.get_logger().error(f"trajectory refused: {exc}", throttle_duration_sec=2.0)
            return
        if not np.isfinite(goal_ctrl).all():
            self.commands_rejected += 1
            return
        duration = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
        self._trajectory = (time.monotonic(), self._target.copy(), goal_ctrl[self._to_policy], max(duration, 0.0))
        self._record(goal_ctrl)

    def _apply(self, policy_order: np.ndarray, controller_order: np.ndarray) -> None:
        self._target = policy_order.copy()
        self.sim.set_joint_targets(self._target)
        self._record(controller_order)

    def _record(self, controller_order: np.ndarray) -> None:
        if self._newest_stamp_ns is not None:
            self._command_delay.latency((self.get_clock().now().nanoseconds - self._newest_stamp_ns) / _NS)
        self.last_command = dict(zip(self.controller_joints, controller_order.tolist(), strict=True))
        if self.first_command_time is None:
            self.first_command_time = time.monotonic()

    def _track_trajectory(self, now: float) -> None:
        if self._trajectory is None:
            return
        t0, start, goal, duration = self._trajectory
        alpha = 1.0 if duration <= 0.0 else min(1.0, max(0.0, (now - t0) / duration))
        self._target = start + alpha * (goal - start)
        self.sim.set_joint_targets(self._target)
        if alpha >= 1.0:
            self._trajectory = None

    # ------------------------------------------------------------------ the update loop
    def _tick(self) -> None:
        now = time.monotonic()
        period = 1.0 / self.state_rate_hz
        if self._anchor is None:
            self._anchor, self._cycles = now, 0
            return
        # Cycle k is due at anchor + (k + 1) * period; a timer firing a little early still runs it (the timer's
        # ticks fall on those boundaries, so flooring would alternate between 0 and 2 cycles per tick).
        owed = int((now - self._anchor) / period + 0.5) - self._cycles
        if owed <= 0:
            return
        if owed > 1:
            self.overruns += 1
        if owed > MAX_CATCH_UP_CYCLES:
            self.dropped_cycles += owed - MAX_CATCH_UP_CYCLES
            self._cycles += owed - MAX_CATCH_UP_CYCLES
            owed = MAX_CATCH_UP_CYCLES
        values = self._params.values
        for _ in range(owed):
            self._track_trajectory(self._anchor + (self._cycles + 1) * period)  # the target at the cycle's end
            self.sim.step(self.steps_per_cycle)
            self._cycles += 1
        if self.on_cycle is not None:
            self.on_cycle(self.sim.time_s)
        # Sensors read now; the stamp says they were read `delay` earlier, so every consumer sees a message that
        # much older than its arrival (plus what the executor adds). On an overloaded computer the robot runs in
        # slow motion (dropped cycles) but its messages stay as fresh as configured.
        sensors = self.sim.read_sensors()
        torques = self.sim.last_applied_torques.copy()
        self._track_fall()
        delay = float(values["sensor_latency"]) + float(self._rng.uniform(0.0, float(values["sensor_jitter"])))
        stamp_ns = self.get_clock().now().nanoseconds - int(round(delay * _NS))
        stamp = TimeMsg(sec=stamp_ns // _NS, nanosec=stamp_ns % _NS)
        self._publish(sensors, torques, stamp, values)
        self._newest_stamp_ns = stamp_ns
        done = time.monotonic()
        self._latency.tick(done)
        self._latency.latency(done - (self._anchor + self._cycles * period))  # lateness of this cycle
        self.states_published += 1

    def _keep(self, topic: SensorTopic, enabled: bool, probability: float) -> bool:
        if not enabled:
            return False
        if probability > 0.0 and self._rng.random() < probability:
            self.dropped[topic.value] += 1
            return False
        self.published[topic.value] += 1
        return True

    def _publish(self, sensors: Any, torques: np.ndarray, stamp: TimeMsg, values: Mapping[str, Any]) -> None:
        p = float(values["drop_probability"])
        from_policy = self._from_policy
        if self._keep(SensorTopic.JOINT_STATES, bool(values["publish_joint_states"]), p):
            msg = self._joint_msg
            msg.header.stamp = stamp
            msg.position = sensors.joint_pos[from_policy].tolist()
            msg.velocity = sensors.joint_vel[from_policy].tolist()
            msg.effort = torques[from_policy].tolist()
            self._joint_pub.publish(msg)
        if self._keep(SensorTopic.IMU, bool(values["publish_imu"]), p):
            imu = self._imu_msg
            imu.header.stamp = stamp
            o, w, a = imu.orientation, imu.angular_velocity, imu.linear_acceleration
            o.x, o.y, o.z, o.w = sensors.imu_quat.tolist()
            w.x, w.y, w.z = sensors.imu_gyro.tolist()
            a.x, a.y, a.z = sensors.imu_accel.tolist()
            self._imu_pub.publish(imu)
        for side, (msg, pub) in enumerate(zip(self._wrench_msgs, self._wrench_pubs, strict=True)):
            if self._keep(SensorTopic.FOOT_WRENCHES, bool(values["publish_foot_wrenches"]), p):
                msg.header.stamp = stamp
                f, tq = msg.wrench.force, msg.wrench.torque
                f.x, f.y, f.z, tq.x, tq.y, tq.z = sensors.foot_wrenches[side].tolist()
                pub.publish(msg)

    def _track_fall(self) -> None:
        truth = self.sim.ground_truth()
        height = float(truth.pos[2])
        self.base_height_min = min(self.base_height_min, height)
        if not self.fell and has_fallen(truth.tilt_rad, height, self.spec.nominal_base_height):
            self.fell = True
            self.get_logger().warning(f"the emulated robot fell (base height {height:.3f} m)")

    # ------------------------------------------------------------------ report
    def measured_pose(self) -> dict[str, float]:
        """Exact joint positions by name (no noise): what tests compare commands with."""
        q, _ = self.sim.joint_state()
        return dict(zip(self.spec.joint_names, q.tolist(), strict=True))

    def report(self) -> dict[str, Any]:
        truth = self.sim.ground_truth()
        latency, delay = self._latency.summary(), self._command_delay.summary()
        tilt, height, nominal = truth.tilt_rad, float(truth.pos[2]), self.spec.nominal_base_height
        return {
            "controller": self.kind.value,
            "state_rate_hz": self.state_rate_hz,
            "achieved_rate_hz": latency.achieved_rate_hz,
            "states_published": self.states_published,
            "published": dict(self.published),
            "dropped": dict(self.dropped),
            "commands_received": self.commands_received,
            "commands_rejected": self.commands_rejected,
            "overruns": self.overruns,
            "dropped_cycles": self.dropped_cycles,
            "cycle_lateness_p50_ms": latency.latency_p50_us / 1e3,
            "cycle_lateness_p99_ms": latency.latency_p99_us / 1e3,
            "command_delay_p50_ms": delay.latency_p50_us / 1e3,
            "command_delay_p99_ms": delay.latency_p99_us / 1e3,
            "fell": self.fell,
            "base_height_m": float(truth.pos[2]),
            "base_height_min_m": self.base_height_min,
            "tilt_deg": math.degrees(truth.tilt_rad),
            "standing": not self.fell and is_standing(tilt, height, nominal),
            "posture": describe(self.fell, tilt, height, nominal),
        }

    def destroy_node(self) -> None:
        self.sim.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return main_for(HardwareEmulatorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
