"""`humanoid-rl real`: the stack on the robot (or, with ``--emulate``, on the hardware emulator), in one process.

The graph is the one ``launch/real_robot.launch.py`` starts (both read :mod:`humanoid_rl.graph` and
``config/real_robot.yaml``): state estimator, safety shield, policy and hardware interface, plus the hardware
emulator with ``--emulate``. No simulation bridge, no /clock: ROS time is the computer's clock.

Managed start-up, printed step by step:

1. wait until ``/joint_states`` and the IMU arrive (the hardware interface watches them);
2. **configure** hardware_interface, safety_shield, policy: robot config, controller joint mapping, fresh
   sensors, model contract and recorded pairs are checked; nothing moves;
3. **activate** hardware_interface, safety_shield (HOLD: ramp from the measured pose to the default pose over
   the shield's ``ramp_time``), policy; wait for the ramp to complete;
4. **engage** through the shield's ``/safety_shield/engage`` service (``--engage auto``; ``prompt`` waits for
   Enter, the way a user presses a button); run for ``--duration`` seconds;
5. **disengage** (back to HOLD), then **deactivate** policy, shield, hardware interface: the robot is left
   holding the measured pose. Ctrl-C at any point runs step 5 before exiting.

``--attach`` drives the same sequence over the lifecycle services of a graph that ``real_robot.launch.py``
started (nodes in separate processes), instead of starting the nodes itself.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import select
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humanoid_rl.graph import (
    HARDWARE_EMULATOR,
    HARDWARE_INTERFACE,
    POLICY,
    SAFETY_SHIELD,
    STATE_ESTIMATOR,
    NodeDescription,
    StackMode,
    Topics,
    real_graph,
)
from humanoid_rl.nodes.runner import ExecutorKind
from humanoid_rl.process import exit_after_stop, stop_on_signals, stop_requested

# Lifecycle nodes in the order they are configured and activated (deactivated in reverse): the hardware
# interface is ready to forward before the shield's first output, and the shield ramps before the policy runs.
LIFECYCLE_ORDER: tuple[NodeDescription, ...] = (HARDWARE_INTERFACE, SAFETY_SHIELD, POLICY)
ENGAGE_CHOICES = ("auto", "prompt", "never")
# After Ctrl-C or SIGTERM, the disengage and deactivation get this long: the process is gone within the 1 s a
# launcher waits, even when the nodes went down with it (a terminal's Ctrl-C reaches the whole launch).
LEAVE_WITHIN_S = 0.6
SpinUntil = Callable[..., bool]  # (done, wall_timeout_s=None, on_tick=None) -> reached


class BringUpError(RuntimeError):
    """A start-up step failed; the message names the node and the reason."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from humanoid_rl.cli_args import (
        add_output_arguments,
        float_in,
        non_negative_float,
        positive_float,
        ros_parameter_file,
    )
    from humanoid_rl.core.shield_params import SHIELD_PARAMETERS
    from humanoid_rl.policy.parameters import MAX_RATE_HZ, MIN_RATE_HZ

    ramp = next(spec for spec in SHIELD_PARAMETERS if spec.name == "ramp_time")

    parser.add_argument(
        "--emulate", action="store_true", help="run against the hardware emulator (PyBullet) instead of a robot"
    )
    parser.add_argument(
        "--attach",
        action="store_true",
        help="drive the start-up of a graph launched by real_robot.launch.py (lifecycle services) instead of "
        "starting the nodes; --model, --config, --rate, --robot-config and --ramp-time then come from the launch",
    )
    parser.add_argument("--model", default="", help="ONNX policy (models/NAME.onnx); '' = hold the default pose")
    parser.add_argument(
        "--rate", type=float_in(MIN_RATE_HZ, MAX_RATE_HZ, "Hz"), default=None,
        help=f"policy rate in Hz, {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} (default: the parameter file's)",
    )
    parser.add_argument("--robot-config", default="", help="robot YAML; '' = shipped humanoid")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        type=ros_parameter_file,
        help="extra parameter YAML applied after config/real_robot.yaml (repeatable)",
    )
    parser.add_argument(
        "--engage",
        choices=ENGAGE_CHOICES,
        default=None,
        help="after the ramp: 'auto' engages at once, 'prompt' waits for Enter, 'never' leaves engaging to "
        "someone else (/safety_shield/engage) and serves until --duration or Ctrl-C (default: auto with --emulate, "
        "prompt otherwise)",
    )
    parser.add_argument(
        "--duration",
        type=non_negative_float,
        default=None,
        help="seconds engaged before disengaging (default 10 with --emulate; 0 = until Ctrl-C)",
    )
    parser.add_argument(
        "--ramp-time", type=float_in(ramp.min or 0.0, ramp.max or math.inf, "s"), default=None,
        help=f"override the shield's start-up ramp_time, {ramp.min:g}-{ramp.max:g} s",
    )
    parser.add_argument(
        "--sensor-wait", type=positive_float, default=10.0, help="seconds to wait for sensor data (default 10)"
    )
    parser.add_argument(
        "--video", action="store_true",
        help="with --emulate: film the emulated robot to run.mp4 in the output folder (a renderer process; frames it "
        "cannot keep up with are dropped and counted, never the control loop held up)",
    )
    add_output_arguments(parser, "runs/real-<timestamp>")
    parser.add_argument("--executor", choices=[k.value for k in ExecutorKind], default="auto")
    parser.add_argument(
        "--enclave",
        default="",
        help="with --attach: SROS2 enclave of this tool's node (e.g. /humanoid_rl/bringup); '' = the default /",
    )


def stack_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Per-node parameter overrides from the command line (everything else comes from the parameter files)."""
    common = {"robot_config": str(args.robot_config)}
    overrides: dict[str, dict[str, Any]] = {
        STATE_ESTIMATOR.name: dict(common),
        SAFETY_SHIELD.name: dict(common),
        POLICY.name: {**common, "model": str(args.model)},
        HARDWARE_INTERFACE.name: dict(common),
        HARDWARE_EMULATOR.name: dict(common),
    }
    if args.rate is not None:
        overrides[POLICY.name]["rate_hz"] = float(args.rate)
        overrides[SAFETY_SHIELD.name].update(rate_hz=float(args.rate), control_period=1.0 / float(args.rate))
    if args.ramp_time is not None:
        overrides[SAFETY_SHIELD.name]["ramp_time"] = float(args.ramp_time)
    return overrides


def _lifecycle_state(node: Any) -> int:
    return int(node._state_machine.current_state[0])  # noqa: SLF001 - rclpy has no public getter


@dataclass
class ModeChange:
    time: float  # steady clock
    mode: str


class BringUp:
    """The managed start-up, whoever runs the nodes: the mode as the shield publishes it, the engage "button",
    and the steps (implemented by :class:`RealBringUp` in-process and :class:`RemoteBringUp` over services)."""

    def __init__(self, node: Any, spin_until: SpinUntil, say: Callable[[str], None]) -> None:
        from std_msgs.msg import String
        from std_srvs.srv import SetBool

        from humanoid_rl.nodes.qos import LATCHED_QOS

        self.node = node
        self._spin_until = spin_until
        self._leave_by: float | None = None  # set by a stop request: the steady time the clean-up must end by
        self.say = say
        self.mode_changes: list[ModeChange] = []
        self.steps: list[dict[str, Any]] = []
        node.create_subscription(String, Topics.SHIELD_MODE, self._on_mode, LATCHED_QOS)
        self._engage = node.create_client(SetBool, Topics.SHIELD_ENGAGE)

    def _on_mode(self, msg: Any) -> None:
        if not self.mode_changes or self.mode_changes[-1].mode != msg.data:
            self.mode_changes.append(ModeChange(time.monotonic(), msg.data))
            self.say(f"  shield mode: {msg.data}")

    @property
    def mode(self) -> str:
        return self.mode_changes[-1].mode if self.mode_changes else ""

    def _step(self, name: str, detail: str, started: float) -> None:
        self.steps.append({"step": name, "detail": detail, "seconds": round(time.monotonic() - started, 3)})

    def spin_until(
        self, done: Callable[[], bool], wall_timeout_s: float | None = None, on_tick: Callable[[], None] | None = None
    ) -> bool:
        """Spin until ``done()``. A stop request (SIGINT/SIGTERM) interrupts it once with KeyboardInterrupt, raised
        here and not inside a callback; the disengage and deactivation after it get LEAVE_WITHIN_S in all."""
        if self._leave_by is not None:
            left = self._leave_by - time.monotonic()
            if left <= 0:
                return done()
            wall_timeout_s = left if wall_timeout_s is None else min(wall_timeout_s, left)
            return self._spin_until(done, wall_timeout_s=wall_timeout_s, on_tick=on_tick)
        reached = self._spin_until(lambda: done() or stop_requested(), wall_timeout_s=wall_timeout_s, on_tick=on_tick)
        if stop_requested():
            self._leave_by = time.monotonic() + LEAVE_WITHIN_S
            raise KeyboardInterrupt
        return reached

    def spin(self, seconds: float) -> None:
        self.spin_until(lambda: False, wall_timeout_s=seconds)

    # ------------------------------------------------------------------ the steps
    def wait_for_sensors(self, timeout_s: float) -> float:
        raise NotImplementedError

    def configure(self) -> None:
        raise NotImplementedError

    def activate(self) -> None:
        raise NotImplementedError

    def wait_for_ramp(self, timeout_s: float) -> float:
        raise NotImplementedError

    def deactivate(self) -> None:
        raise NotImplementedError

    def set_engaged(self, engaged: bool, timeout_s: float = 5.0) -> str:
        from std_srvs.srv import SetBool

        word = "engage" if engaged else "disengage"
        if not self._engage.service_is_ready():
            self.spin_until(self._engage.service_is_ready, wall_timeout_s=timeout_s)
        future = self._engage.call_async(SetBool.Request(data=engaged))
        if not self.spin_until(future.done, wall_timeout_s=timeout_s) or future.result() is None:
            raise BringUpError(f"{word}: {Topics.SHIELD_ENGAGE} did not answer within {timeout_s:g} s")
        response = future.result()
        if not response.success:
            raise BringUpError(f"{word} refused: {response.message}")
        self.say(f"{word} ({Topics.SHIELD_ENGAGE} {str(engaged).lower()}): {response.message}")
        return str(response.message)

    def wait_for_mode(self, mode: str, timeout_s: float) -> float:
        """Spin until the shield publishes ``mode``; returns the seconds waited (raises on timeout)."""
        start = time.monotonic()
        if not self.spin_until(lambda: self.mode == mode, wall_timeout_s=timeout_s):
            raise BringUpError(f"the shield did not reach {mode} within {timeout_s:g} s (mode {self.mode or '-'})")
        return time.monotonic() - start

    def _activated(self, description: NodeDescription, ramp_time: float) -> None:
        if description is SAFETY_SHIELD:
            self.say(
                f"activate {description.name}: HOLD, ramping from the measured pose to the default pose over "
                f"{ramp_time:g} s"
            )
        else:
            self.say(f"activate {description.name}")


class RealBringUp(BringUp):
    """Drives an in-process real stack (:class:`~humanoid_rl.apps.stack.InProcessStack`) through start-up."""

    def __init__(self, stack: Any, say: Callable[[str], None] = print) -> None:
        from rclpy.node import Node

        self.stack = stack
        # The app's own node: it watches the shield's mode and presses the engage "button" like a user would.
        node = Node("humanoid_rl_real", context=stack.context)
        stack.executor.add_node(node)
        super().__init__(node, functools.partial(stack.spin_until, stop_on_signal=False), say)

    def wait_for_sensors(self, timeout_s: float) -> float:
        hw = self.stack.node(HARDWARE_INTERFACE.name)
        self.say(f"waiting for {Topics.JOINT_STATES} and {Topics.IMU} ...")
        start = time.monotonic()
        if not self.spin_until(hw.sensors_ready, wall_timeout_s=timeout_s):
            raise BringUpError("sensors: " + "; ".join(hw.sensor_problems()))
        self._step("sensors", "fresh", start)
        self.say(f"  sensors fresh after {time.monotonic() - start:.2f} s")
        return time.monotonic() - start

    def configure(self) -> None:
        from lifecycle_msgs.msg import State

        for description in LIFECYCLE_ORDER:
            node = self.stack.node(description.name)
            start = time.monotonic()
            self.say(f"configure {description.name} ...")
            node.trigger_configure()
            if _lifecycle_state(node) != State.PRIMARY_STATE_INACTIVE:
                reason = getattr(node, "configure_error", "") or "see its log above"
                raise BringUpError(f"configure {description.name} failed: {reason}")
            self._step(f"configure {description.name}", "inactive", start)
            self.say(f"  {description.name}: configured in {time.monotonic() - start:.2f} s (nothing moved)")

    def activate(self) -> None:
        from lifecycle_msgs.msg import State

        for description in LIFECYCLE_ORDER:
            node = self.stack.node(description.name)
            start = time.monotonic()
            node.trigger_activate()
            if _lifecycle_state(node) != State.PRIMARY_STATE_ACTIVE:
                raise BringUpError(f"activate {description.name} failed: see its log above")
            self._activated(description, float(self.stack.node(SAFETY_SHIELD.name).get_parameter("ramp_time").value))
            self._step(f"activate {description.name}", "active", start)

    def wait_for_ramp(self, timeout_s: float) -> float:
        shield = self.stack.node(SAFETY_SHIELD.name)
        start = time.monotonic()

        def done() -> bool:
            core = getattr(shield, "shield", None)
            return bool(core is not None and core.ramp_complete)

        if not self.spin_until(done, wall_timeout_s=timeout_s):
            raise BringUpError(f"the shield's ramp did not complete within {timeout_s:g} s (mode {self.mode})")
        self._step("ramp", "complete", start)
        return time.monotonic() - start

    def deactivate(self) -> None:
        """Deactivate every active lifecycle node, policy first; the hardware interface sends a last hold."""
        from lifecycle_msgs.msg import State

        for description in reversed(LIFECYCLE_ORDER):
            node = self.stack.nodes.get(description.name)
            if node is None or _lifecycle_state(node) != State.PRIMARY_STATE_ACTIVE:
                continue
            node.trigger_deactivate()
            self.say(f"deactivate {description.name}")
            self.spin(0.05)  # let the last hold go out

    def destroy(self) -> None:
        self.stack.executor.remove_node(self.node)
        self.node.destroy_node()


class RemoteBringUp(BringUp):
    """Drives a launched graph through start-up over the lifecycle services (``/<node>/change_state``)."""

    SERVICE_TIMEOUT_S = 10.0  # for a service to appear
    ATTEMPT_TIMEOUT_S = 2.0  # for one request to be answered
    ATTEMPTS = 5
    CONFIGURE_RETRY_S = 0.5

    def __init__(self, say: Callable[[str], None] = print, context: Any = None, enclave: str = "") -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from lifecycle_msgs.srv import ChangeState, GetState
        from rcl_interfaces.srv import GetParameters
        from rclpy.node import Node
        from sensor_msgs.msg import Imu, JointState

        from humanoid_rl.nodes.qos import SENSOR_QOS, STATUS_QOS
        from humanoid_rl.nodes.runner import make_executor, spin_until

        self._own_context = context is None
        if context is None:
            from rclpy.context import Context

            context = Context()
            rclpy.init(args=["--ros-args", "--enclave", enclave] if enclave else [], context=context)
        self.context = context
        node = Node("humanoid_rl_real_attach", context=context)
        self.executor = make_executor(context=context)
        self.executor.add_node(node)

        def spin(done: Callable[[], bool], wall_timeout_s: float | None = None, on_tick: Any = None) -> bool:
            if on_tick is None:
                return spin_until(self.executor, done, wall_timeout_s=wall_timeout_s)
            deadline = None if wall_timeout_s is None else time.monotonic() + wall_timeout_s
            while not done():
                if deadline is not None and time.monotonic() > deadline:
                    return False
                self.executor.spin_once(timeout_sec=0.01)
                on_tick()
            return True

        super().__init__(node, spin, say)
        self._change = {d.name: node.create_client(ChangeState, f"/{d.name}/change_state") for d in LIFECYCLE_ORDER}
        self._get = {d.name: node.create_client(GetState, f"/{d.name}/get_state") for d in LIFECYCLE_ORDER}
        self._params = node.create_client(GetParameters, f"/{SAFETY_SHIELD.name}/get_parameters")
        self.diagnostics: dict[str, str] = {}  # node name → newest diagnostic message (configure errors)
        node.create_subscription(DiagnosticArray, Topics.DIAGNOSTICS, self._on_diagnostics, STATUS_QOS)
        # Heard from the sensors ourselves before asking the hardware interface to configure: it refuses
        # (and logs an error) while they are silent, which is every normal start.
        self._sensor_arrivals: dict[str, float] = {}
        for topic, kind in ((Topics.JOINT_STATES, JointState), (Topics.IMU, Imu)):
            node.create_subscription(kind, topic, self._heard(topic), SENSOR_QOS)

    def _heard(self, topic: str) -> Callable[[Any], None]:
        def callback(_: Any) -> None:
            self._sensor_arrivals[topic] = time.monotonic()

        return callback

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            self.diagnostics[status.name.removeprefix("humanoid_rl/")] = status.message

    def _call(self, client: Any, request: Any, what: str, attempts: int = 1) -> Any:
        """Call a service; an unanswered request is sent again (``attempts``): a client can see the service as
        ready before the server's request reader has discovered it, and that first request is then lost."""
        if not self.spin_until(client.service_is_ready, wall_timeout_s=self.SERVICE_TIMEOUT_S):
            raise BringUpError(f"{what}: service {client.srv_name} not available: is real_robot.launch.py running?")
        for _ in range(attempts):
            future = client.call_async(request)
            if self.spin_until(future.done, wall_timeout_s=self.ATTEMPT_TIMEOUT_S) and future.result() is not None:
                return future.result()
            client.remove_pending_request(future)
        raise BringUpError(f"{what}: {client.srv_name} did not answer {attempts} request(s)")

    def _transition(self, name: str, transition_id: int, what: str) -> bool:
        """Request a lifecycle transition; an unanswered request is resolved by asking the node's state (a
        transition is not idempotent: it is only sent again if it did not happen)."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        goal = {
            Transition.TRANSITION_CONFIGURE: "inactive",
            Transition.TRANSITION_ACTIVATE: "active",
            Transition.TRANSITION_DEACTIVATE: "inactive",
        }[transition_id]
        request = ChangeState.Request()
        request.transition.id = transition_id
        for _ in range(self.ATTEMPTS):
            try:
                return bool(self._call(self._change[name], request, what).success)
            except BringUpError:
                if self.state(name) == goal:
                    return True
        raise BringUpError(f"{what}: {self._change[name].srv_name} did not answer {self.ATTEMPTS} requests")

    def state(self, name: str) -> str:
        from lifecycle_msgs.srv import GetState

        response = self._call(self._get[name], GetState.Request(), f"state of {name}", attempts=self.ATTEMPTS)
        return str(response.current_state.label)

    def ramp_time(self) -> float:
        from rcl_interfaces.srv import GetParameters

        request = GetParameters.Request(names=["ramp_time"])
        response = self._call(self._params, request, "ramp_time", attempts=self.ATTEMPTS)
        return float(response.values[0].double_value)

    def wait_for_sensors(self, timeout_s: float) -> float:
        """Until this process has heard every sensor topic; the hardware interface's configure then checks them
        properly (and is retried in :meth:`configure` for what hearing them does not prove, e.g. their clock)."""
        self._sensor_wait = timeout_s
        topics = (Topics.JOINT_STATES, Topics.IMU)
        self.say(f"waiting for {' and '.join(topics)} ...")
        start = time.monotonic()
        if not self.spin_until(lambda: all(t in self._sensor_arrivals for t in topics), wall_timeout_s=timeout_s):
            missing = [t for t in topics if t not in self._sensor_arrivals]
            raise BringUpError(f"sensors: nothing on {', '.join(missing)} for {timeout_s:g} s: is the robot driver "
                               "(or the emulator) running and on this ROS domain?")
        self.spin(0.2)  # the hardware interface hears the same messages; a few more let it see them fresh
        self._step("sensors", "heard", start)
        self.say(f"  sensors heard after {time.monotonic() - start:.2f} s")
        return time.monotonic() - start

    def configure(self) -> None:
        from lifecycle_msgs.msg import Transition

        for description in LIFECYCLE_ORDER:
            start = time.monotonic()
            retry_until = start + (getattr(self, "_sensor_wait", 10.0) if description is HARDWARE_INTERFACE else 0.0)
            self.say(f"configure {description.name} ...")
            while not self._transition(
                description.name, Transition.TRANSITION_CONFIGURE, f"configure {description.name}"
            ):
                self.spin(0.2)  # the node's diagnostics carry the reason
                reason = self.diagnostics.get(description.name, "") or "see the node's log"
                if time.monotonic() + self.CONFIGURE_RETRY_S > retry_until:
                    raise BringUpError(f"configure {description.name} failed: {reason}")
                self.say(f"  not yet ({reason}); retrying")
                self.spin(self.CONFIGURE_RETRY_S)
            self._step(f"configure {description.name}", "inactive", start)
            self.say(f"  {description.name}: configured in {time.monotonic() - start:.2f} s (nothing moved)")

    def activate(self) -> None:
        from lifecycle_msgs.msg import Transition

        ramp_time = self.ramp_time()
        for description in LIFECYCLE_ORDER:
            start = time.monotonic()
            if not self._transition(description.name, Transition.TRANSITION_ACTIVATE, f"activate {description.name}"):
                raise BringUpError(f"activate {description.name} failed: see the node's log")
            self._activated(description, ramp_time)
            self._step(f"activate {description.name}", "active", start)
        self._ramp_started = time.monotonic()

    def wait_for_ramp(self, timeout_s: float) -> float:
        """The ramp's end is not published: wait ramp_time from the shield's activation (HOLD all along)."""
        start = time.monotonic()
        end = getattr(self, "_ramp_started", start) + self.ramp_time()
        self.spin_until(lambda: time.monotonic() >= end or self.mode in ("DAMPING", "ESTOP"), wall_timeout_s=timeout_s)
        if self.mode != "HOLD":
            raise BringUpError(f"the shield is in {self.mode or 'no mode'} instead of HOLD after the ramp")
        self._step("ramp", "complete", start)
        return time.monotonic() - getattr(self, "_ramp_started", start)

    def deactivate(self) -> None:
        """Deactivate policy, shield, hardware interface (a node that is not active refuses: skipped)."""
        from lifecycle_msgs.msg import Transition

        for description in reversed(LIFECYCLE_ORDER):
            try:
                done = self._transition(
                    description.name, Transition.TRANSITION_DEACTIVATE, f"deactivate {description.name}"
                )
            except BringUpError as exc:
                self.say(f"deactivate {description.name}: {exc}")
                continue
            if done:
                self.say(f"deactivate {description.name}")

    def destroy(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        if self._own_context:
            rclpy.try_shutdown(context=self.context)


def _wait_for_enter(bring_up: BringUp, prompt: str) -> None:
    """Spin (the robot keeps being served) until the user presses Enter."""
    print(prompt, flush=True)

    def pressed() -> bool:
        ready, _, _ = select.select([sys.stdin], [], [], 0.0)
        if ready:
            sys.stdin.readline()
            return True
        return False

    bring_up.spin_until(pressed)


def drive(bring_up: BringUp, args: argparse.Namespace, status: Callable[[], str], report: dict[str, Any]) -> int:
    """Steps 1–5 (see the module docstring); returns the exit code. Always leaves the nodes deactivated."""
    engage = args.engage or ("auto" if args.emulate else "prompt")
    duration = args.duration if args.duration is not None else (10.0 if args.emulate else 0.0)
    code = 0
    try:
        bring_up.wait_for_sensors(args.sensor_wait)
        bring_up.configure()
        bring_up.activate()
        ramp_s = bring_up.wait_for_ramp(timeout_s=120.0)
        bring_up.say(f"  ramp complete after {ramp_s:.2f} s: holding the default pose")
        report["ramp_s"] = ramp_s
        end = math.inf if duration <= 0 else time.monotonic() + duration
        last = 0.0

        on_terminal = sys.stdout.isatty()

        def tick() -> None:
            nonlocal last
            if time.monotonic() - last >= 1.0:
                last = time.monotonic()
                if on_terminal:  # one line, rewritten in place
                    print("\r" + status(), end="", flush=True)
                else:  # a log (launch, a pipe): one line each time
                    print(status(), flush=True)

        if engage == "never":
            # Someone else engages (a joystick node, `ros2 service call`): serve until the duration ends or Ctrl-C.
            bring_up.say(
                f"not engaging: call {Topics.SHIELD_ENGAGE} (std_srvs/srv/SetBool) to engage and disengage; "
                + ("Ctrl-C stops" if duration <= 0 else f"stopping in {duration:g} s")
            )
            bring_up.spin_until(lambda: time.monotonic() >= end, on_tick=tick)
            print()
        else:
            if engage == "prompt":
                _wait_for_enter(bring_up, "press Enter to engage the policy (Ctrl-C stops)")
            bring_up.set_engaged(True)
            bring_up.wait_for_mode("ACTIVE", timeout_s=5.0)
            end = math.inf if duration <= 0 else time.monotonic() + duration
            bring_up.spin_until(lambda: time.monotonic() >= end or bring_up.mode != "ACTIVE", on_tick=tick)
            print()
            if bring_up.mode != "ACTIVE":
                print(f"the shield left ACTIVE by itself: {bring_up.mode}", file=sys.stderr)
                code = 1
            bring_up.set_engaged(False)
            bring_up.wait_for_mode("HOLD", timeout_s=5.0)
            bring_up.spin(1.0)
    except BringUpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        report["error"] = str(exc)
        code = 2
    except KeyboardInterrupt:
        print("\ninterrupted: disengaging and deactivating", file=sys.stderr)
        code = 0 if stop_requested() else 130  # a stop asked for by SIGINT/SIGTERM is how a served run ends
    finally:
        try:
            if bring_up.mode == "ACTIVE":
                bring_up.set_engaged(False, timeout_s=1.0)
        except BringUpError as exc:
            print(f"warning: {exc}", file=sys.stderr)
        bring_up.deactivate()
        report["steps"] = bring_up.steps
        report["modes"] = [m.mode for m in bring_up.mode_changes]
    return code


def status_line(stack: Any, bring_up: BringUp, emulate: bool) -> str:
    hw = stack.node(HARDWARE_INTERFACE.name).report()
    policy = stack.node(POLICY.name)
    text = (
        f"shield={bring_up.mode or '-':7s} hw={hw['output']:10s} forwarded={hw['forwarded']:6d} "
        f"stale_dropped={hw['stale_dropped']} policy_published={getattr(policy, 'published', 0)}"
    )
    if emulate:
        emu = stack.node(HARDWARE_EMULATOR.name).report()
        text += f" height={emu['base_height_m']:.3f}m"
    return text


def run(args: argparse.Namespace) -> int:
    with stop_on_signals():
        code = _run(args)
    exit_after_stop(code)
    return code


def _run(args: argparse.Namespace) -> int:
    from humanoid_rl.cli_args import prepare_run_dir
    from humanoid_rl.policy.runtime import check_model_for_robot

    if args.video and not args.emulate:
        from humanoid_rl.cli import CommandError

        raise CommandError("--video films the hardware emulator: add --emulate (a real robot is filmed by a camera)")
    if not args.attach:  # a bad model is refused before any node starts (attached: the launch loaded it)
        check_model_for_robot(args.model, args.robot_config)
    run_dir = prepare_run_dir(args.out, Path("runs"), "real", overwrite=args.overwrite)
    out_dir = run_dir.path
    report: dict[str, Any] = {"emulate": bool(args.emulate), "attach": bool(args.attach)}
    try:
        if args.attach:
            bring_up = RemoteBringUp(enclave=args.enclave)
            try:
                code = drive(bring_up, args, lambda: f"shield={bring_up.mode or '-'}", report)
            finally:
                bring_up.destroy()
        else:
            code = _run_in_process(args, report, out_dir)
    except BaseException:
        run_dir.discard_if_empty()
        raise
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print(summary_text(report, out_dir))
    return code


def _run_in_process(args: argparse.Namespace, report: dict[str, Any], out_dir: Path) -> int:
    from humanoid_rl.apps.stack import InProcessStack, StackOptions

    nodes = real_graph(emulate=bool(args.emulate))
    files = "".join(f", {p}" for p in args.config)
    print(f"starting {', '.join(d.name for d in nodes)} (config/real_robot.yaml{files})")
    options = StackOptions(
        nodes=nodes,
        mode=StackMode.REAL,
        parameter_files=args.config,
        overrides=stack_overrides(args),
        use_sim_time=False,
        executor=ExecutorKind(args.executor),
    )
    report["model"] = args.model or "(hold default pose)"
    with InProcessStack(options) as stack:
        bring_up = RealBringUp(stack)
        video = film_emulator(stack.node(HARDWARE_EMULATOR.name), bring_up, out_dir) if args.video else None
        try:
            code = drive(bring_up, args, lambda: status_line(stack, bring_up, args.emulate), report)
        finally:
            report["hardware_interface"] = stack.node(HARDWARE_INTERFACE.name).report()
            if args.emulate:
                report["emulator"] = stack.node(HARDWARE_EMULATOR.name).report()
            if video is not None:
                stack.node(HARDWARE_EMULATOR.name).on_cycle = None
                path = video.close(drop_pending=stop_requested())
                report["video"] = {"path": str(path) if path else "", "frames": video.frames,
                                   "dropped_frames": video.dropped, "renderer_cpu_s": video.render_cpu_s}
            bring_up.destroy()
    if args.emulate and not report["emulator"]["standing"]:
        code = code or 1
    return code


def film_emulator(emulator: Any, bring_up: BringUp, out_dir: Path) -> Any:
    """A run video of the emulated robot, its frames taken in the emulator's own cycle (the simulator is only
    read there), with the shield mode written on them."""
    from humanoid_rl.sim.video import FrameInfo, RunVideo

    video = RunVideo(emulator.sim, out_dir / "run.mp4", wait_for_renderer=False)  # real time: drop, never wait
    emulator.on_cycle = lambda time_s: video.maybe_capture(time_s, FrameInfo(bring_up.mode or "-"))
    return video


def summary_text(report: dict[str, Any], out_dir: Path) -> str:
    lines = [f"modes: {' → '.join(report.get('modes', [])) or '-'}"]
    hw = report.get("hardware_interface")
    if hw:
        lines.append(
            f"hardware interface: {hw['forwarded']} commands forwarded, {hw['stale_dropped']} stale dropped, "
            f"{hw['holds_sent']} holds sent; measurement → controller latency p50 {hw['latency_p50_ms']:.2f} ms "
            f"p99 {hw['latency_p99_ms']:.2f} ms"
        )
        if hw.get("state_to_command_p50_ms"):
            lines.append(
                f"  shield ACTIVE: measurement stamp → controller p50 {hw['active_latency_p50_ms']:.2f} ms p99 "
                f"{hw['active_latency_p99_ms']:.2f} ms; measurement in → command out of the hardware interface p50 "
                f"{hw['state_to_command_p50_ms']:.2f} ms p99 {hw['state_to_command_p99_ms']:.2f} ms"
            )
    if "ramp_s" in report:
        lines.append(f"start-up ramp: {report['ramp_s']:.2f} s")
    emu = report.get("emulator")
    if emu:
        lines.append(f"emulated robot: {emu['posture']}")
        lines.append(
            f"emulator: {emu['states_published']} sensor cycles at {emu['achieved_rate_hz']:.0f} Hz, "
            f"dropped {emu['dropped']}, cycle lateness p50 {emu['cycle_lateness_p50_ms']:.2f} ms; a command arrives "
            f"p50 {emu['command_delay_p50_ms']:.2f} ms p99 {emu['command_delay_p99_ms']:.2f} ms after the newest "
            "sensor stamp"
        )
    video = report.get("video")
    if video:
        lines.append(f"video: {video['path'] or 'not written'} ({video['frames']} frames, "
                     f"{video['dropped_frames']} dropped)")
    lines.append(f"report: {out_dir / 'report.json'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="humanoid-rl real", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
