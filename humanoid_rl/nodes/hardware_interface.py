"""The hardware interface: the shield's ``/joint_commands`` → the inputs of the robot's ros2_control controllers.

A ``LifecycleNode`` named ``hardware_interface``. It is the last node of our stack before the robot and the only
one that publishes to the robot's controllers.

Output (parameter ``controller``):

* ``forward_command``: ``std_msgs/Float64MultiArray`` on ``/forward_position_controller/commands`` (remap it),
  the input of ros2_control's forward command controllers. The values are in the order of the controller's
  ``joints`` list, given to this node as ``controller_joints``; every value is placed BY NAME, never by its
  position in our (policy) order.
* ``joint_trajectory``: ``trajectory_msgs/JointTrajectory`` on ``/joint_trajectory_controller/joint_trajectory``
  for joint_trajectory_controller: one point, reached ``trajectory_time_from_start`` after the controller
  receives it (``header.stamp`` zero: start now). Joint names travel in the message, in ``controller_joints``
  order.
* Per-joint PD gains, for drivers that accept them (parameter ``gains_topic``, '' = off): a
  ``Float64MultiArray`` with two rows in ``controller_joints`` order — kp then kd (layout dims ``gains`` = 2 and
  ``joints`` = n) — published before the first command of an activation and at every change between stiff
  (ACTIVE/HOLD: the robot's kp, kd from the robot YAML) and passive (DAMPING/ESTOP: kp 0, kd ×
  ``damping_kd_scale``). The JointState we receive carries position targets only; its zero velocity and effort
  are not forwarded.

What is sent:

* **forwarding**: each fresh ``/joint_commands`` message is forwarded as it arrives (from a shield in this
  process straight from its output, :mod:`~humanoid_rl.nodes.local_bus`, its DDS copy then dropped). A message
  stamped more than ``command_timeout`` before the node's clock (or unstamped) is dropped, never forwarded
  (``stale_dropped``).
* **holding** (defence in depth): when no fresh command arrived for ``command_timeout`` (steady clock: a crashed
  or deactivated shield, a network cut), the node stops forwarding and sends ONCE the measured pose (the newest
  ``/joint_states``; ``fallback: damp`` adds passive gains). A fresh command resumes forwarding (a restarted
  shield begins with a ramp out of the measured pose; a shield that was only late goes on where it was).
* **passive**: while ``/safety_shield/mode`` (latched) is DAMPING or ESTOP the shield's outputs are not
  forwarded. A position-only controller cannot go limp, so the node sends once the pose measured when the mode
  was entered: the robot holds where it is (and with ``gains_topic`` the drivers get kp 0: real damping). If
  nothing was sent yet in this activation, nothing is sent.
* **idle**: nothing. The node publishes nothing before its activation, nor before the first fresh command of an
  activation (the drivers keep whatever they do at enable: there is nothing of ours to take back).

Lifecycle:

* **configure** loads the robot, checks ``controller_joints`` against the robot's joints (missing, extra or
  duplicated names fail with a message naming them), and checks that ``/joint_states`` (covering every
  controller joint, finite) and the IMU are arriving: the newest of each must be younger than
  ``sensor_timeout``, and joint states must arrive stamped within ``command_timeout`` of this node's clock
  (a driver clock further off would get every command dropped as stale). It moves nothing. The sensor
  subscriptions exist from construction on (they only watch), so configure can judge them at once.
* **activate** starts forwarding (idle until the shield's first command); **deactivate** sends the measured pose
  once (if anything was sent in this activation) and stops; **cleanup** / **shutdown** free everything.

``/diagnostics`` at 2 Hz (steady clock): output state, counters, measurement → forward latency (all forwarded
commands; and with the shield ACTIVE: from the stamp, and from this node's receipt of that measurement).
"""

from __future__ import annotations

import math
import time
from enum import Enum
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration as DurationMsg
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.core.shield_modes import ShieldMode
from humanoid_rl.core.timing import LoopStats
from humanoid_rl.graph import HARDWARE_INTERFACE, Topics
from humanoid_rl.nodes import local_bus
from humanoid_rl.nodes.conversions import JointNameError, JointOrderMap, stamp_to_seconds
from humanoid_rl.nodes.diagnostics import DiagnosticsPublisher, DiagnosticsTimer
from humanoid_rl.nodes.hardware_params import (
    PARAMETERS,
    UNSET_JOINTS,
    ControllerJointsError,
    ControllerKind,
    Fallback,
    check_controller_joints,
    consistency,
)
from humanoid_rl.nodes.lifecycle import CheckedConfigureNode
from humanoid_rl.nodes.local_bus import DirectInput
from humanoid_rl.nodes.params import DeclaredParameters
from humanoid_rl.nodes.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS
from humanoid_rl.nodes.runner import main_for

__all__ = [
    "PARAMETERS",
    "UNSET_JOINTS",
    "ControllerJointsError",
    "ControllerKind",
    "Fallback",
    "HardwareInterfaceNode",
    "OutputState",
    "check_controller_joints",
    "main",
]


class OutputState(Enum):
    IDLE = "idle"  # inactive, or nothing received in this activation: nothing published
    FORWARDING = "forwarding"  # fresh shield commands go to the controller
    HOLDING = "holding"  # commands went stale: the measured pose was sent once, nothing forwarded
    PASSIVE = "passive"  # shield DAMPING/ESTOP: the pose measured at entry was sent once (kp 0 with gains)


PASSIVE_MODES = frozenset({ShieldMode.DAMPING.value, ShieldMode.ESTOP.value})
DIAGNOSTICS_PERIOD_S = 0.5
STATS_WINDOW = 2000


class HardwareInterfaceNode(CheckedConfigureNode):
    """See the module docstring. Construct, then configure/activate (lifecycle services or trigger_*)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(HARDWARE_INTERFACE.name, **kwargs)
        self._params = DeclaredParameters(self, PARAMETERS, consistency=consistency)
        values = self._params.values
        self._kind = ControllerKind(values["controller"])
        self._fallback = Fallback(values["fallback"])
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.configure_error = ""
        self.spec: RobotSpec | None = None
        self.controller_joints: tuple[str, ...] = ()
        self.state = OutputState.IDLE
        self._configured = False
        self._active = False
        self._entities: list[Any] = []
        self.command_input = DirectInput()  # shield outputs handed over in-process, and their DDS copies dropped
        self._unreceive: Any = None
        self._command_pub: Any = None
        self._gains_pub: Any = None
        self._watchdog: Any = None
        self._controller_map: JointOrderMap | None = None
        self._shield_mode = ""
        self._gains_sent: str = ""  # "stiff" / "passive" / "" (none in this activation)
        self._last_fresh_receipt = -math.inf
        self._published_in_activation = False
        self._last_sent: np.ndarray | None = None
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "forwarded",
                "stale_dropped",  # stamped older than command_timeout: not forwarded
                "rejected",  # names do not cover the controller joints, or not finite
                "suppressed_passive",  # shield outputs not forwarded while DAMPING/ESTOP
                "received_inactive",
                "holds_sent",  # own holds: stale commands, passive entry, deactivation
                "stale_events",  # times forwarding stopped because commands went stale
                "gains_sent",
            ),
            0,
        )
        self._loop = LoopStats(50.0, window=STATS_WINDOW)
        # The policy's path alone (shield ACTIVE; HOLD outputs come on the shield's timer): from the measurement's
        # stamp, and from this node's receipt of that measurement to the command leaving (issue #16's two figures).
        self._active_latency = LoopStats(50.0, window=STATS_WINDOW)
        self._through = LoopStats(50.0, window=STATS_WINDOW)
        # Sensors: watched from construction on, so that configure can judge their freshness at once.
        self._joint_state: tuple[float, JointState] | None = None  # (steady receipt time, message)
        self._joint_state_delay = 0.0
        self._imu: tuple[float, Imu] | None = None
        self._sensor_subscriptions = [
            self.create_subscription(JointState, Topics.JOINT_STATES, self._on_joint_state, SENSOR_QOS),
            self.create_subscription(Imu, Topics.IMU, self._on_imu, SENSOR_QOS),
        ]
        self._diagnostics = DiagnosticsPublisher(self)
        self._diag_timer = DiagnosticsTimer(self, self._publish_diagnostics, DIAGNOSTICS_PERIOD_S)

    # ------------------------------------------------------------------ sensors
    def _on_joint_state(self, msg: JointState) -> None:
        self._joint_state = (time.monotonic(), msg)
        # Measurement → arrival on this node's clock: the driver's clock offset plus transport latency.
        self._joint_state_delay = self.get_clock().now().nanoseconds * 1e-9 - stamp_to_seconds(msg.header.stamp)

    def _on_imu(self, msg: Imu) -> None:
        self._imu = (time.monotonic(), msg)

    def sensor_problems(self) -> list[str]:
        """Why the sensors are not ready for configure (empty: fresh, finite /joint_states and IMU). Whether the joint
        states name every controller joint is checked at configure, after the joint mapping itself."""
        timeout = float(self._params.values["sensor_timeout"])
        now = time.monotonic()
        ros_now = self.get_clock().now().nanoseconds * 1e-9
        problems = []
        for label, topic, sample in (
            ("joint states", Topics.JOINT_STATES, self._joint_state),
            ("IMU", Topics.IMU, self._imu),
        ):
            if sample is None:
                problems.append(
                    f"no {topic} received yet ({label}): is the robot's driver running, its topic remapped to {topic}?"
                )
                continue
            received, msg = sample
            if now - received > timeout:
                problems.append(f"the newest {topic} arrived {now - received:.2f} s ago (sensor_timeout {timeout} s)")
            stamp = stamp_to_seconds(msg.header.stamp)
            if stamp <= 0.0 or abs(ros_now - stamp) > timeout:
                problems.append(
                    f"{topic} is stamped {ros_now - stamp:.3f} s before this node's clock (> sensor_timeout"
                    f" {timeout} s): are the robot computer's and the driver's clocks synchronised, use_sim_time"
                    " false?"
                )
        if self._joint_state is not None and not all(math.isfinite(v) for v in self._joint_state[1].position):
            problems.append(f"{Topics.JOINT_STATES} has non-finite positions")
        if self._imu is not None:
            o = self._imu[1].orientation
            if not all(math.isfinite(v) for v in (o.x, o.y, o.z, o.w)):
                problems.append(f"{Topics.IMU} has a non-finite orientation")
        return problems

    def sensors_ready(self) -> bool:
        return not self.sensor_problems()

    def _measured_pose(self) -> np.ndarray | None:
        """Newest measured positions in controller order (None if never received or not covering the joints)."""
        if self._joint_state is None or self._controller_map is None:
            return None
        msg = self._joint_state[1]
        try:
            positions = self._controller_map.reorder(msg.name, msg.position)
        except JointNameError:
            return None
        return positions if np.isfinite(positions).all() else None

    # ------------------------------------------------------------------ lifecycle

    def _configure(self) -> None:
        values = self._params.values
        spec = RobotSpec.load(values["robot_config"] or None)
        controller_joints = tuple(values["controller_joints"])
        check_controller_joints(spec.joint_names, controller_joints, f"node {self.get_name()} (robot {spec.name!r})")
        problems = self.sensor_problems()
        if self._joint_state is not None:
            # Commands carry the stamp of the measurement they were built from: a driver clock running behind ours
            # by more than command_timeout would have every command dropped as stale.
            delay = self._joint_state_delay
            timeout = float(values["command_timeout"])
            if abs(delay) > timeout and not problems:
                problems.append(
                    f"{Topics.JOINT_STATES} arrives stamped {delay:.3f} s away from this node's clock, more than "
                    f"command_timeout ({timeout} s): every command would be dropped as stale. Synchronise the "
                    "driver's clock with this computer's (chrony/PTP)"
                )
            try:
                JointOrderMap(controller_joints).reorder(self._joint_state[1].name, self._joint_state[1].position)
            except JointNameError as exc:
                problems.append(f"{Topics.JOINT_STATES} does not name every controller joint: {exc}")
        if problems:
            raise RuntimeError("sensors not ready: " + "; ".join(problems))
        self.spec = spec
        self.controller_joints = controller_joints
        self._controller_map = JointOrderMap(controller_joints)
        # The robot's gains in controller order (RobotSpec is in policy order): placed by name.
        policy_index = {name: i for i, name in enumerate(spec.joint_names)}
        order = np.array([policy_index[name] for name in controller_joints], dtype=np.intp)
        self._kp = np.asarray(spec.kp, dtype=np.float64)[order]
        self._kd = np.asarray(spec.kd, dtype=np.float64)[order]
        if self._kind is ControllerKind.FORWARD:
            self._command_pub = self.create_lifecycle_publisher(Float64MultiArray, Topics.FORWARD_COMMAND, COMMAND_QOS)
        else:
            self._command_pub = self.create_lifecycle_publisher(JointTrajectory, Topics.JOINT_TRAJECTORY, COMMAND_QOS)
        gains_topic = str(values["gains_topic"]).strip()
        if gains_topic:
            self._gains_pub = self.create_lifecycle_publisher(Float64MultiArray, gains_topic, COMMAND_QOS)
        # The shield in this process hands its outputs over directly (no DDS hop, no executor wake-up between
        # its output and ours); every check below runs on them all the same.
        self.command_input.reset()
        self._unreceive = local_bus.receive(
            self, Topics.JOINT_COMMANDS, self.command_input.direct_callback(self._on_command))
        self._entities = [
            self.create_subscription(
                JointState, Topics.JOINT_COMMANDS, self.command_input.dds_callback(self._on_command), COMMAND_QOS
            ),
            self.create_subscription(String, Topics.SHIELD_MODE, self._on_shield_mode, LATCHED_QOS),
        ]
        self.get_logger().info(
            f"configured for robot {spec.name!r}: {len(controller_joints)} joints mapped by name onto the "
            f"{self._kind.value} controller"
            + (f", gains on {gains_topic}" if gains_topic else " (position only)")
            + f"; command_timeout {values['command_timeout']} s"
        )

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        self.state = OutputState.IDLE
        self._published_in_activation = False
        self._gains_sent = ""
        self._last_fresh_receipt = -math.inf
        self._active = True
        rate = float(self._params.values["watchdog_rate_hz"])
        self._watchdog = self.create_timer(1.0 / rate, self._on_watchdog, clock=self._steady)
        if self._shield_mode in PASSIVE_MODES:
            self._enter_passive()
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_watchdog()
        if self._active and self._published_in_activation and self.state is not OutputState.PASSIVE:
            self._send_hold("deactivated")
        self._active = False
        self.state = OutputState.IDLE
        return super().on_deactivate(state)

    def _on_shutdown_while_active(self) -> None:
        # Ctrl-C of the robot's launch: the controller is left holding the measured pose, as after a deactivation.
        if self._published_in_activation and self.state is not OutputState.PASSIVE:
            self._send_hold("shut down")

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self.destroy_timer(self._watchdog)
            self._watchdog = None

    def _teardown(self) -> None:
        self._stop_watchdog()
        if self._unreceive is not None:
            self._unreceive()
            self._unreceive = None
        self._active = False
        self.state = OutputState.IDLE
        for entity in self._entities:
            self.destroy_subscription(entity)
        self._entities = []
        for publisher in (self._command_pub, self._gains_pub):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._command_pub = self._gains_pub = None
        self._controller_map = None
        self.controller_joints = ()
        self._shield_mode = ""
        self._configured = False

    def destroy_node(self) -> None:
        self._teardown()
        super().destroy_node()

    # ------------------------------------------------------------------ inputs
    def _on_shield_mode(self, msg: String) -> None:
        self._shield_mode = msg.data
        if not self._active:
            return
        if msg.data in PASSIVE_MODES:
            if self.state is not OutputState.PASSIVE:
                self._enter_passive()
        elif self.state is OutputState.PASSIVE:
            # Out of DAMPING/ESTOP (reset): keep the held pose until the shield's ramp arrives.
            self.state = OutputState.HOLDING
            self._send_gains("stiff")

    def _on_command(self, msg: JointState) -> None:
        if not self._active:
            self.counters["received_inactive"] += 1
            return
        stamp = stamp_to_seconds(msg.header.stamp)
        ros_now = self.get_clock().now().nanoseconds * 1e-9
        timeout = float(self._params.values["command_timeout"])
        if stamp <= 0.0 or ros_now - stamp > timeout:
            self.counters["stale_dropped"] += 1
            return
        assert self._controller_map is not None
        try:
            positions = self._controller_map.reorder(msg.name, msg.position)
        except JointNameError as exc:
            self.counters["rejected"] += 1
            self.get_logger().warning(f"{Topics.JOINT_COMMANDS} refused: {exc}", throttle_duration_sec=2.0)
            return
        if not np.isfinite(positions).all():
            self.counters["rejected"] += 1
            self.get_logger().warning(f"{Topics.JOINT_COMMANDS} refused: NaN or inf", throttle_duration_sec=2.0)
            return
        self._last_fresh_receipt = time.monotonic()
        if self.state is OutputState.PASSIVE:
            self.counters["suppressed_passive"] += 1
            return
        if self.state is not OutputState.FORWARDING:
            self.get_logger().info(f"forwarding {Topics.JOINT_COMMANDS} to the {self._kind.value} controller")
            self.state = OutputState.FORWARDING
        self._send_gains("stiff")
        self._publish(positions)
        self.counters["forwarded"] += 1
        self._loop.tick(self._last_fresh_receipt)
        self._loop.latency(ros_now - stamp)
        if self._shield_mode == ShieldMode.ACTIVE.value:
            left = time.monotonic()
            self._active_latency.latency(self.get_clock().now().nanoseconds * 1e-9 - stamp)
            measured = self._joint_state
            if measured is not None and measured[1].header.stamp == msg.header.stamp:
                self._through.latency(left - measured[0])
        self._diag_timer.poll()

    def _on_watchdog(self) -> None:
        if not self._active or self.state is not OutputState.FORWARDING:
            return
        timeout = float(self._params.values["command_timeout"])
        silence = time.monotonic() - self._last_fresh_receipt
        if silence > timeout:
            self.counters["stale_events"] += 1
            self.state = OutputState.HOLDING
            self.get_logger().warning(
                f"no fresh {Topics.JOINT_COMMANDS} for {silence:.3f} s (command_timeout {timeout} s): "
                f"stopped forwarding, {'damping' if self._fallback is Fallback.DAMP else 'holding'} the measured pose"
            )
            if self._fallback is Fallback.DAMP:
                self._send_gains("passive")
            self._send_hold("stale commands")

    # ------------------------------------------------------------------ output
    def _enter_passive(self) -> None:
        self.state = OutputState.PASSIVE
        if not self._published_in_activation:
            # Nothing of ours reached the drivers yet (e.g. an e-stop before the first command): stay silent.
            self.get_logger().warning(f"shield mode {self._shield_mode} before any command: sending nothing")
            return
        self.get_logger().warning(
            f"shield mode {self._shield_mode}: "
            + ("kp 0 on the gains topic, " if self._gains_pub is not None else "position-only controller: ")
            + "holding the measured pose"
        )
        self._send_gains("passive")
        self._send_hold(f"shield {self._shield_mode}")

    def _send_hold(self, reason: str) -> None:
        """Send the measured pose once (the last sent target if no measurement covers the joints)."""
        pose = self._measured_pose()
        if pose is None:
            pose = self._last_sent
        if pose is None:
            self.get_logger().warning(f"{reason}: no measured pose and nothing sent yet: nothing to hold")
            return
        self._publish(pose)
        self.counters["holds_sent"] += 1

    def _send_gains(self, kind: str) -> None:
        if self._gains_pub is None or kind == self._gains_sent:
            return
        if kind == "stiff":
            kp, kd = self._kp, self._kd
        else:
            kp, kd = np.zeros_like(self._kp), self._kd * float(self._params.values["damping_kd_scale"])
        msg = Float64MultiArray()
        n = len(self.controller_joints)
        msg.layout.dim = [
            MultiArrayDimension(label="gains", size=2, stride=2 * n),
            MultiArrayDimension(label="joints", size=n, stride=n),
        ]
        msg.data = np.concatenate([kp, kd]).tolist()
        self._gains_pub.publish(msg)
        self._gains_sent = kind
        self.counters["gains_sent"] += 1

    def _publish(self, positions: np.ndarray) -> None:
        if self._kind is ControllerKind.FORWARD:
            msg: Any = Float64MultiArray(data=positions.tolist())
        else:
            msg = JointTrajectory()
            msg.joint_names = list(self.controller_joints)
            seconds = float(self._params.values["trajectory_time_from_start"])
            sec = int(seconds)
            point = JointTrajectoryPoint(
                positions=positions.tolist(),
                time_from_start=DurationMsg(sec=sec, nanosec=int(round((seconds - sec) * 1e9))),
            )
            msg.points = [point]
        self._command_pub.publish(msg)
        self._published_in_activation = True
        self._last_sent = positions.copy()

    # ------------------------------------------------------------------ diagnostics
    def report(self) -> dict[str, Any]:
        loop = self._loop.summary()
        return {
            "state": self.lifecycle_state,
            "output": self.state.value,
            "shield_mode": self._shield_mode,
            **self.counters,
            "commands_direct": self.command_input.direct,
            "commands_dds_duplicates": self.command_input.duplicates,
            "forward_rate_hz": loop.achieved_rate_hz,
            "latency_p50_ms": loop.latency_p50_us / 1e3,
            "latency_p99_ms": loop.latency_p99_us / 1e3,
            **_percentiles_ms("active_latency", self._active_latency),
            **_percentiles_ms("state_to_command", self._through),
        }

    def _publish_diagnostics(self) -> None:
        values = self.report()
        level, message = "ok", f"{self.lifecycle_state}, {self.state.value}"
        if self.configure_error:
            level, message = "error", f"configure failed: {self.configure_error}"
        elif self.state is OutputState.HOLDING:
            level, message = "warn", "commands stale: holding the measured pose"
        elif self.state is OutputState.PASSIVE:
            level, message = "error", f"shield {self._shield_mode}: holding the measured pose"
        self._diagnostics.publish(values, level=level, message=message)


def _percentiles_ms(name: str, stats: LoopStats) -> dict[str, float]:
    summary = stats.summary()
    return {f"{name}_p50_ms": summary.latency_p50_us / 1e3, f"{name}_p99_ms": summary.latency_p99_us / 1e3}


def main(args: list[str] | None = None) -> int:
    return main_for(HardwareInterfaceNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
