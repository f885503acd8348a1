"""`humanoid-rl record`: record the robot's topics to a rosbag2, and optionally excite joints for `sysid`.

    humanoid-rl record -o BAG [--duration 20] [--excite legs] [--storage sqlite3|mcap]

A thin rclpy node (``recorder``) subscribes to ``RECORD_TOPICS`` (sim/bag_io.py: joint states, IMU, foot
wrenches, shielded and policy joint commands, shield mode, estimator odometry) and writes each message's CDR
bytes as they arrive, at their arrival time on the system clock: the same bag ``ros2 bag record`` with the topic
list in docs/sim_to_real.md writes. The shield mode is latched, so the mode in force at the start is in the bag.

``--excite GROUP|JOINT...`` also publishes chirp/step targets (core/excitation.py) around the default pose on
``/policy/joint_commands`` at the robot's policy rate, each stamped with the newest joint state's stamp as the
policy does: the shield filters them like a policy's (limits, rates, modes) before anything moves. Run it with
the stack up but without the policy node, the robot hanging from a gantry (or lying down, for the arms), and the
shield engaged. ``--excite-topic /joint_commands`` bypasses the shield: only for a simulator.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from humanoid_rl.cli_args import positive_float

DRAIN_S = 0.3  # after the excitation stops, messages still arriving are recorded for this long


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, required=True, help="the bag folder to write (must not exist)")
    parser.add_argument("--duration", type=positive_float, default=20.0, help="seconds to record (default 20)")
    parser.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3", help="rosbag2 storage")
    parser.add_argument("--robot-config", default="", help="robot YAML (default: the shipped humanoid)")
    excite = parser.add_argument_group("excitation (for humanoid-rl sysid)")
    excite.add_argument("--excite", nargs="+", default=None, metavar="GROUP|JOINT",
                        help="joints to drive with chirp/step targets: groups (legs, arms, torso) or joint names")
    excite.add_argument("--excite-kind", choices=("mixed", "chirp", "steps"), default="mixed",
                        help="mixed: chirp for the first half, steps for the second (default)")
    excite.add_argument("--amplitude", type=positive_float, default=None, help="peak excursion, rad (default 0.12)")
    excite.add_argument("--excite-topic", default="", help="publish the targets here (default /policy/joint_commands)")
    excite.add_argument("--seed", type=int, default=0, help="seeds the per-joint phases and step levels")


def excited_joints(names: list[str], joint_names: tuple[str, ...]) -> list[int]:
    """Group names and joint names → joint indices (policy order), or ValueError naming the unknown ones."""
    from humanoid_rl.sim.sim_params import joint_groups

    groups = joint_groups(joint_names)
    out: set[int] = set()
    for name in names:
        if name in groups:
            out.update(groups[name])
        elif name in joint_names:
            out.add(joint_names.index(name))
        else:
            raise ValueError(f"--excite {name!r}: not a joint group ({list(groups)}) nor a joint of the robot")
    return sorted(out)


def _message_class(typename: str) -> Any:
    package, _, name = typename.partition("/msg/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


class RecorderNode:
    """Owns an rclpy node that writes what it hears to ``bag`` and, when ``excitation`` is set, excites."""

    def __init__(self, context: Any, bag: Any, topics: dict[str, str], *, spec: Any = None,
                 excitation: Any = None, joints: list[int] | None = None, excite_topic: str = "") -> None:  # fmt: skip
        from rclpy.node import Node
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

        from humanoid_rl.graph import Topics
        from humanoid_rl.nodes.qos import LATCHED_QOS

        self.node = Node("recorder", context=context)
        self.bag = bag
        self._clock = self.node.get_clock()
        # Deep queues: a recorder must not drop what a 1 kHz robot sends while the bag writes.
        sensors = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
        commands = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
        for topic, typename in topics.items():
            qos = LATCHED_QOS if topic == Topics.SHIELD_MODE else (
                commands if topic in (Topics.JOINT_COMMANDS, Topics.POLICY_COMMANDS) else sensors)
            self.node.create_subscription(_message_class(typename), topic, partial(self._on_message, topic), qos,
                                          raw=True)  # fmt: skip
        self.commands_sent = 0
        self.exciting = excitation is not None
        self._excitation = excitation
        if excitation is not None:
            from sensor_msgs.msg import JointState

            from humanoid_rl.nodes.qos import COMMAND_QOS, SENSOR_QOS

            self._spec, self._joints = spec, list(joints or [])
            self._state_stamp: Any = None
            self._message = JointState(name=list(spec.joint_names))
            self._publisher = self.node.create_publisher(JointState, excite_topic or Topics.POLICY_COMMANDS,
                                                         COMMAND_QOS)  # fmt: skip
            self.node.create_subscription(JointState, Topics.JOINT_STATES, self._on_state, SENSOR_QOS)
            self._started: float | None = None
            self.node.create_timer(1.0 / spec.policy_rate_hz, self._excite)

    def _on_message(self, topic: str, data: bytes) -> None:
        self.bag.write_raw(topic, data, self._clock.now().nanoseconds)

    def _on_state(self, msg: Any) -> None:
        self._state_stamp = msg.header.stamp

    def _excite(self) -> None:
        import numpy as np

        from humanoid_rl.core.excitation import excitation_targets

        if self._state_stamp is None or not self.exciting:  # nothing to answer yet, or done
            return
        now = time.monotonic()
        if self._started is None:
            self._started = now
        spec = self._spec
        target = excitation_targets(np.array([now - self._started]), spec.default_pose, self._joints, spec.lower,
                                    spec.upper, self._excitation)[0]  # fmt: skip
        self._message.header.stamp = self._state_stamp  # as the policy: the state this command answers
        self._message.position = target.tolist()
        self._publisher.publish(self._message)
        self.commands_sent += 1

    def destroy(self) -> None:
        self.node.destroy_node()


def record(output: Path, duration_s: float, *, storage: str = "sqlite3", spec: Any = None, excitation: Any = None,
           joints: list[int] | None = None, excite_topic: str = "", extra_nodes: tuple[Any, ...] = (),
           context: Any = None) -> dict[str, int]:  # fmt: skip
    """Record for ``duration_s`` (``extra_nodes`` spin in the same executor: tests); message counts per topic."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from humanoid_rl.process import stop_requested
    from humanoid_rl.sim.bag_io import RECORD_TOPICS, BagWriter

    own_context = context is None
    if own_context:
        context = rclpy.Context()
        rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    try:
        with BagWriter(output, RECORD_TOPICS, storage) as bag:
            recorder = RecorderNode(context, bag, RECORD_TOPICS, spec=spec, excitation=excitation, joints=joints,
                                    excite_topic=excite_topic)  # fmt: skip
            for node in (recorder.node, *extra_nodes):
                executor.add_node(node)
            deadline = time.monotonic() + duration_s
            while time.monotonic() < deadline and not stop_requested() and rclpy.ok(context=context):
                executor.spin_once(timeout_sec=0.05)
            recorder.exciting = False  # the last targets sent are still in flight: take them in before closing
            drain_until = time.monotonic() + DRAIN_S
            while time.monotonic() < drain_until and rclpy.ok(context=context):
                executor.spin_once(timeout_sec=0.02)
            counts = dict(bag.counts)
            counts["excitation_commands_sent"] = recorder.commands_sent
            executor.remove_node(recorder.node)
            recorder.destroy()
    finally:
        executor.shutdown()
        if own_context:
            rclpy.shutdown(context=context)
    return counts


def run(args: argparse.Namespace) -> int:
    from humanoid_rl.cli import CommandError
    from humanoid_rl.core.excitation import Excitation
    from humanoid_rl.core.robot_spec import RobotSpec
    from humanoid_rl.process import stop_on_signals

    if args.output.exists():
        raise CommandError(f"{args.output} exists; rosbag2 writes a new folder (choose another -o)")
    if not args.output.parent.is_dir():
        raise FileNotFoundError(f"-o {args.output}: the folder {args.output.parent} does not exist")
    spec = RobotSpec.load(args.robot_config or None)
    excitation, joints = None, None
    if args.excite:
        try:
            joints = excited_joints(args.excite, spec.joint_names)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        amplitude = {} if args.amplitude is None else {"amplitude_rad": args.amplitude}
        excitation = Excitation(duration_s=args.duration, kind=args.excite_kind, seed=args.seed, **amplitude)
        print(f"exciting {', '.join(spec.joint_names[i] for i in joints)} on "
              f"{args.excite_topic or '/policy/joint_commands'} ({args.excite_kind}, {args.duration:g} s)")  # fmt: skip
    print(f"recording {args.duration:g} s to {args.output} ({args.storage}); Ctrl-C stops early")
    with stop_on_signals():
        counts = record(args.output, args.duration, storage=args.storage, spec=spec, excitation=excitation,
                        joints=joints, excite_topic=args.excite_topic)  # fmt: skip
    for topic, count in counts.items():
        print(f"  {topic:<28} {count}")
    if counts.get("/joint_states", 0) == 0:
        print("humanoid-rl record: nothing arrived on /joint_states: is the robot (or a simulator) running on this "
              "ROS domain (ROS_DOMAIN_ID)?", file=sys.stderr)
        return 1
    return 0
