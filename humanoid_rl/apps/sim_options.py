"""The options of `humanoid-rl sim` and their checks: every value is refused in one line before the stack starts.

Ranges and syntax are argparse types (``--push`` here, the rest in :mod:`humanoid_rl.cli_args`); what needs the
robot, the model or the run's length to judge is :func:`check_inputs`.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from humanoid_rl.apps.reach_goals import parse_goal
from humanoid_rl.apps.velocity_commands import parse_cmd_vel
from humanoid_rl.cli_args import (
    DEFAULT_MODEL,
    add_output_arguments,
    finite_float,
    float_in,
    non_negative_int,
    positive_float,
    ros_parameter_file,
)
from humanoid_rl.graph import PARAMETER_FILES, SAFETY_SHIELD, StackMode
from humanoid_rl.nodes.runner import ExecutorKind
from humanoid_rl.policy.parameters import MAX_RATE_HZ, MIN_RATE_HZ


@dataclass(frozen=True)
class Push:
    time_s: float
    force_xy: tuple[float, float]


MAX_PUSHES = 100_000  # 4.6 simulated days at the default 4 s
PUSH_SYNTAX = "expected EVERY:FORCE like '4:60' or T@FX,FY;... like '3@80,0;7@0,-60'"


@dataclass(frozen=True)
class PushSchedule:
    """What ``--push`` asked for: every ``every_s`` a push of ``force_n`` in a random horizontal direction, or
    the ``explicit`` pushes; neither: no pushes."""

    every_s: float = 0.0
    force_n: float = 0.0
    explicit: tuple[Push, ...] = ()

    def pushes(self, duration_s: float, seed: int) -> list[Push]:
        if self.explicit:
            return list(self.explicit)
        if self.every_s <= 0.0:
            return []
        rng = np.random.default_rng(seed)
        pushes = []
        t = self.every_s
        while t < duration_s:
            angle = rng.uniform(0.0, 2.0 * math.pi)
            pushes.append(Push(t, (self.force_n * math.cos(angle), self.force_n * math.sin(angle))))
            t += self.every_s
        return pushes


def _finite(text: str, what: str, whole: str) -> float:
    try:
        return finite_float(text.strip())
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"{whole!r}: {what} {error}; {PUSH_SYNTAX}") from None


def push_schedule(text: str) -> PushSchedule:
    """``--push``: ``"EVERY:FORCE"`` (e.g. ``4:60``: every 4 s, 60 N in a random horizontal direction) or explicit
    ``"T@FX,FY;T@FX,FY"`` (e.g. ``3@80,0;7@0,-60``); empty: no pushes. Raises ArgumentTypeError (one line)."""
    stripped = text.strip()
    if not stripped:
        return PushSchedule()
    if "@" in stripped:
        pushes = []
        for item in stripped.split(";"):
            parts = item.split("@")
            force = parts[1].split(",") if len(parts) == 2 else []
            if len(force) != 2:
                raise argparse.ArgumentTypeError(f"{text!r}: {item.strip()!r} is not T@FX,FY; {PUSH_SYNTAX}")
            t = _finite(parts[0], "time", text)
            if t <= 0.0:
                raise argparse.ArgumentTypeError(f"{text!r}: push time {t:g} s: use a time > 0")
            pushes.append(Push(t, (_finite(force[0], "force", text), _finite(force[1], "force", text))))
        return PushSchedule(explicit=tuple(sorted(pushes, key=lambda p: p.time_s)))
    parts = stripped.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"{text!r}: {PUSH_SYNTAX}")
    every, force = _finite(parts[0], "interval", text), _finite(parts[1], "force", text)
    if every <= 0.0 or force < 0.0:
        raise argparse.ArgumentTypeError(f"{text!r}: the interval must be > 0 s and the force >= 0 N")
    return PushSchedule(every_s=every, force_n=force)


def startup_hold_s(parameter_files: list[Path]) -> float:
    """How long the shield holds (ramps to the default pose) before it passes commands: ``ramp_time`` as the
    parameter files set it, else as the shield declares it. A push before then meets no policy."""
    import yaml

    from humanoid_rl.core.shield_params import ShieldParams
    from humanoid_rl.paths import config_path

    hold = float(ShieldParams().ramp_time)
    for path in [config_path(PARAMETER_FILES[StackMode.SIM]), *parameter_files]:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            hold = float(data[SAFETY_SHIELD.name]["ros__parameters"]["ramp_time"])
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
            continue  # not set there (or unreadable: the stack says so when it reads the file)
    return hold


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration", type=positive_float, default=20.0, help="simulated seconds to run, > 0 (default 20)"
    )
    parser.add_argument(
        "--model", default=DEFAULT_MODEL,
        help=f"ONNX policy (default {DEFAULT_MODEL}, the shipped stand policy in models/); '' = hold the default "
        "pose with the joint PD only",
    )
    parser.add_argument(
        "--rate", type=float_in(MIN_RATE_HZ, MAX_RATE_HZ, "Hz"), default=50.0,
        help=f"policy rate in Hz, {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g}, a divisor of the physics rate and the model's "
        "own rate (default 50)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--sync",
        dest="sync",
        action="store_true",
        default=True,
        help="lock-step: the sim advances when the command for the current state arrives (default)",
    )
    mode.add_argument("--realtime", dest="sync", action="store_false", help="pace the simulation by the wall clock")
    parser.add_argument(
        "--push", type=push_schedule, default="4:60",
        help="push schedule: EVERY:FORCE ('4:60': every 4 s, 60 N in a random horizontal direction; the default) "
        "or T@FX,FY;... ('3@80,0;7@0,-60': newtons at those sim times, after the start-up hold and within "
        "--duration); '' = none",
    )
    parser.add_argument(
        "--push-duration", type=float_in(0.001, 10.0, "s"), default=0.2, help="seconds each push lasts (default 0.2)"
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        type=ros_parameter_file,
        help="extra parameter YAML applied after config/sim.yaml (repeatable)",
    )
    parser.add_argument(
        "--cmd-vel", type=parse_cmd_vel, default="",
        help="velocity command for walking policies on /cmd_vel (body frame): VX,VY,WZ ('0.5,0,0') held all run, or "
        "a schedule T:VX,VY,WZ;... ('0:0.5,0,0;8:0,0,0.5;14:0,0,0'); the report gives commanded vs achieved "
        "velocity and the distance walked (default: none, stand still)",
    )
    parser.add_argument(
        "--goal", type=parse_goal, default=None,
        help="goal for a goal-conditioned model (models/humanoid_reach.onnx), published on its goal topic in its goal "
        "frame (pelvis): X,Y,Z metres ('0.25,-0.2,0.05') held all run, a schedule T:X,Y,Z;... "
        "('0:0.25,-0.2,0.05;5:0.3,-0.1,0.1'), or 'topic' to publish goals yourself (ros2 topic pub); the report "
        "gives the hand's distance to each goal at the end of its interval. Required with such a model, refused "
        "with any other",
    )
    video = parser.add_mutually_exclusive_group()
    video.add_argument(
        "--video", dest="video", action="store_true", default=True,
        help="write run.mp4 beside report.json: 25 fps of sim time, a camera following the base, pushes, command "
        "and shield mode drawn on (the default; a GIF without imageio)",
    )
    video.add_argument("--no-video", dest="video", action="store_false", help="no video")
    parser.add_argument(
        "--foxglove", nargs="?", const=FOXGLOVE_PORT, default=None, type=port_number, metavar="PORT",
        help=f"serve the run live to the Foxglove app over its WebSocket protocol (ws://localhost:PORT, default "
        f"{FOXGLOVE_PORT}): the robot in 3D, contact forces, joint states vs targets, the shield mode",
    )
    parser.add_argument("--no-foxglove", dest="foxglove", action="store_const", const=None,
                        help="no Foxglove server (the default)")
    parser.add_argument("--mcap", action="store_true",
                        help="write the same channels to run.mcap beside report.json (Foxglove, rosbags, ros2 bag)")
    parser.add_argument("--robot-config", default="", help="robot YAML; '' = shipped humanoid")
    parser.add_argument("--gui", action="store_true", help="open the PyBullet window")
    parser.add_argument("--no-gui", dest="gui", action="store_false", help="headless (the default)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="simulation and push seed (default 0)")
    parser.add_argument(
        "--domain-id", type=non_negative_int, default=None,
        help="ROS domain to run on (default: $ROS_DOMAIN_ID, else 0). A run refuses to join a domain where another "
        "simulation is already running (it publishes /clock): the two would drive each other's robots",
    )
    add_output_arguments(parser, "runs/sim-<timestamp>")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--executor", choices=[k.value for k in ExecutorKind], default="auto",
        help="executor spinning the nodes (default auto: EventsExecutor where available, else single-threaded)",
    )


FOXGLOVE_PORT = 8765  # the Foxglove app's default for a WebSocket connection


def port_number(text: str) -> int:
    """A TCP port, 1-65535 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number: use 1-65535")
    return value


MAX_DOMAIN_ID = 232
DISCOVERY_WAIT_S = 1.0  # long enough for Fast DDS to discover the nodes of another process on this machine


def check_domain_is_free(node_names: list[str], wait_s: float = DISCOVERY_WAIT_S) -> None:
    """Refuse to start when another simulation is running on this ROS domain (``--domain-id`` first). A running
    one publishes /clock; node names alone are not enough, since DDS discovery keeps a node that has just gone
    for a while."""
    import os
    import time

    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock

    from humanoid_rl.cli import CommandError
    from humanoid_rl.graph import Topics

    context = Context()
    rclpy.init(args=[], context=context)
    ticks: list[object] = []
    try:
        probe = rclpy.create_node("humanoid_rl_domain_probe", context=context, start_parameter_services=False)
        best_effort = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)  # matches either publisher
        probe.create_subscription(Clock, Topics.CLOCK, ticks.append, best_effort)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(probe)
        start = time.monotonic()
        found: list[str] = []
        while not ticks:
            elapsed = time.monotonic() - start
            found = sorted(set(probe.get_node_names()) & set(node_names))
            # Nodes of ours are listed (running, or just gone: discovery keeps them a while): wait longer for
            # their /clock, which only a running simulation sends.
            if elapsed > (3.0 * wait_s if found else wait_s):
                break
            executor.spin_once(timeout_sec=0.05)
        executor.shutdown()
        probe.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
    if ticks:
        domain = os.environ.get("ROS_DOMAIN_ID", "0") or "0"
        raise CommandError(
            f"another simulation is running on ROS domain {domain} ({Topics.CLOCK} is being published"
            + (f"; nodes {', '.join(found)}" if found else "")
            + "): two graphs on one domain drive each other's robots. Fix: stop it, or run this one on another "
            "domain with --domain-id N (or ROS_DOMAIN_ID=N), and use the same domain for ros2 topic echo"
        )


def check_inputs(args: argparse.Namespace) -> list[Push]:
    """Everything the nodes would refuse later, refused now in one line: robot config, rate, model, pushes."""
    from humanoid_rl.cli import CommandError
    from humanoid_rl.core.robot_spec import RobotSpec

    if args.foxglove is not None or args.mcap:
        try:
            import foxglove  # noqa: F401
            import rosbags  # noqa: F401
        except ImportError:
            raise CommandError("--foxglove and --mcap need foxglove-sdk and rosbags. Fix: pip install "
                               "'humanoid_rl[viz]' (or pip install foxglove-sdk rosbags)") from None
    if args.domain_id is not None and args.domain_id > MAX_DOMAIN_ID:
        raise CommandError(f"--domain-id {args.domain_id}: use 0-{MAX_DOMAIN_ID} (the ROS 2 default range)")
    spec = RobotSpec.load(args.robot_config or None)
    steps = spec.physics_rate_hz / args.rate
    if abs(steps - round(steps)) > 1e-9:
        raise CommandError(f"--rate {args.rate:g}: does not divide the physics rate {spec.physics_rate_hz:g} Hz of "
                           f"{spec.name}. Fix: use a divisor such as {spec.policy_rate_hz:g}")
    if args.model:
        from humanoid_rl.core.contract import PolicyContract
        from humanoid_rl.policy.model_file import read_model_metadata
        from humanoid_rl.policy.runtime import load_policy, resolve_model_path

        model_rate = read_model_metadata(resolve_model_path(args.model)).contract.policy_rate_hz
        if abs(model_rate - args.rate) > 1e-6:
            raise CommandError(f"--rate {args.rate:g}: the model {args.model} runs at {model_rate:g} Hz. Fix: "
                               f"--rate {model_rate:g}, or --model '' to hold the default pose at {args.rate:g} Hz")
        load_policy(args.model, PolicyContract.from_robot(spec, policy_rate_hz=args.rate))
    if args.push.every_s > 0.0 and args.duration / args.push.every_s > MAX_PUSHES:  # the list is made up front
        raise CommandError(f"--push every {args.push.every_s:g} s over --duration {args.duration:g} s is more than "
                           f"{MAX_PUSHES} pushes. Fix: a shorter --duration, or --push '' for none")
    pushes = args.push.pushes(args.duration, args.seed)
    hold_s = startup_hold_s(args.config)
    for push in pushes:
        if push.time_s > args.duration:
            raise CommandError(f"--push at {push.time_s:g} s is after the end of the run (--duration "
                               f"{args.duration:g}). Fix: push earlier or run longer")
        if push.time_s <= hold_s:
            raise CommandError(f"--push at {push.time_s:g} s falls in the {hold_s:g} s start-up hold, before the "
                               "policy drives the robot. Fix: push later"
                               + ("" if args.push.explicit else f" (an interval above {hold_s:g} s)"))
    return pushes
