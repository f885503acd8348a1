"""Goals for goal-conditioned policies in `humanoid-rl sim` (``--goal``), and how close the hand came to each.

``--goal X,Y,Z`` holds one goal point (metres, in the model's ``goal_frame``: the pelvis for Reach-v0) for the
whole run; ``--goal '0:0.25,-0.2,0.05;5:0.3,-0.1,0.1'`` is a schedule: from each time (s) of sim time on, the
point after the colon. ``--goal topic`` publishes nothing: goals come from outside (``ros2 topic pub``).
The sim publishes the current goal as ``geometry_msgs/PointStamped`` on the policy node's goal topic, again
and again like ``/cmd_vel`` (a goal sent once could meet a subscription that is not matched yet). At the end of
each goal's interval the report takes the hand point from the simulator's exact joint positions through the
reach environment's own kinematics (:class:`humanoid_rl.envs.reach.HandKinematics`), the point the reward uses.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from humanoid_rl.cli_args import parse_timed_triples

__all__ = ["EXTERNAL", "GoalRun", "GoalSchedule", "check_goal", "goal_summary_text", "launch_goal_arguments",
           "parse_goal"]

SYNTAX = "expected X,Y,Z like '0.25,-0.2,0.05', T:X,Y,Z;... like '0:0.25,-0.2,0.05;5:0.3,-0.1,0.1', or 'topic'"
EXTERNAL = "topic"  # --goal topic: the run publishes no goal; one comes from outside
GOAL_PERIOD_S = 0.1  # sim time between two publications of the current goal
DEFAULT_RADIUS_M = 0.05  # Reach-v0's success radius when the model's training summary does not give one
Point = tuple[float, float, float]


@dataclass(frozen=True)
class GoalSchedule:
    """Piecewise-constant goals: ``steps[i] = (start_s, (x, y, z))``, sorted; none at all for ``--goal topic``.
    Before the first start there is no goal (the policy node publishes nothing and the shield holds)."""

    steps: tuple[tuple[float, Point], ...] = ()

    @property
    def external(self) -> bool:
        return not self.steps

    def at(self, time_s: float) -> Point | None:
        current = None
        for start, point in self.steps:
            if time_s < start:
                break
            current = point
        return current

    def intervals(self, duration_s: float) -> list[tuple[float, float, Point]]:
        """(start, end, point) of every goal; the last one ends with the run."""
        if not self.steps:
            return []  # --goal topic: goals come from outside, whenever they come
        ends = [start for start, _ in self.steps[1:]] + [duration_s]
        return [(start, end, point) for (start, point), end in zip(self.steps, ends, strict=True)]


def parse_goal(text: str) -> GoalSchedule:
    """``--goal``: argparse ``type=``; a malformed value raises ArgumentTypeError with one line."""
    stripped = text.strip()
    if stripped == EXTERNAL:
        return GoalSchedule()
    if not stripped:
        raise argparse.ArgumentTypeError(f"--goal {text!r}: {SYNTAX}")
    return GoalSchedule(tuple(parse_timed_triples(text, "--goal", "X,Y,Z", SYNTAX, "goals")))


def check_goal(args: argparse.Namespace) -> Any:
    """The model's contract if it is goal-conditioned (else None), with ``--goal`` checked against it: a goal
    model needs ``--goal`` (a point, a schedule or ``topic``), a model without a goal term takes none."""
    from humanoid_rl.cli import CommandError

    contract = None
    if args.model:
        from humanoid_rl.policy.model_file import read_model_metadata
        from humanoid_rl.policy.runtime import resolve_model_path

        contract = read_model_metadata(resolve_model_path(args.model)).contract
        if "goal" not in {term.name for term in contract.terms}:
            contract = None
    if contract is None:
        if getattr(args, "goal", None) is not None:
            what = f"the model {args.model} has no goal term" if args.model else "--model '' holds the default pose"
            raise CommandError(f"--goal: {what}. Fix: drop --goal, or give a goal-conditioned model such as "
                               "--model models/humanoid_reach.onnx")
        return None
    if args.goal is None:
        raise CommandError(f"the model {args.model} is goal-conditioned (a point for {contract.goal_link} in frame "
                           f"{contract.goal_frame!r}) and publishes nothing until it has a goal. Fix: --goal X,Y,Z "
                           "(e.g. 0.25,-0.2,0.05), a schedule T:X,Y,Z;..., or --goal topic to publish goals yourself")
    late = [start for start, _ in args.goal.steps if start >= args.duration]
    if late:
        raise CommandError(f"--goal at {late[0]:g} s starts at or after the end of the run (--duration "
                           f"{args.duration:g}). Fix: start it earlier or run longer")
    return contract


def launch_goal_arguments(argv: list[str]) -> list[str]:
    """``["--goal", "topic"]`` for ``sim.launch.py single_process:=true`` with a goal-conditioned model: a launch
    has no ``--goal`` argument, and its user sends goals over ROS (``ros2 topic pub``), as to the per-node layout."""
    if "--goal" in argv or any(a.startswith("--goal=") for a in argv) or "--model" not in argv[:-1]:
        return []
    try:
        from humanoid_rl.policy.model_file import read_model_metadata
        from humanoid_rl.policy.runtime import resolve_model_path

        model = argv[argv.index("--model") + 1]
        terms = read_model_metadata(resolve_model_path(model)).contract.terms if model else ()
    except Exception:  # noqa: BLE001 - a bad model is the run's to refuse, in its own words
        return []
    return ["--goal", EXTERNAL] if "goal" in {term.name for term in terms} else []


def model_radius_m(model: str) -> float:
    """The success radius the model was trained and evaluated with (its training summary), else Reach-v0's."""
    from humanoid_rl.policy.model_file import read_model_metadata
    from humanoid_rl.policy.runtime import resolve_model_path

    config = read_model_metadata(resolve_model_path(model)).training.get("config", {})
    value = config.get("reach_threshold_m") if isinstance(config, dict) else None
    return float(value) if isinstance(value, int | float) and value > 0 else DEFAULT_RADIUS_M


class GoalRun:
    """Publishes the schedule's goal on ``topic`` from ``node`` and measures the hand at the end of each goal."""

    def __init__(self, node: Any, sim: Any, spec: Any, contract: Any, schedule: GoalSchedule, topic: str,
                 duration_s: float, radius_m: float) -> None:
        from geometry_msgs.msg import PointStamped

        from humanoid_rl.envs.reach import HAND_OFFSET, HandKinematics
        from humanoid_rl.nodes.qos import COMMAND_QOS

        self._node, self._sim = node, sim
        self.frame, self.topic, self.link = str(contract.goal_frame), topic, str(contract.goal_link)
        self.schedule, self.radius_m = schedule, radius_m
        self._hand = HandKinematics(spec, link=self.link, offset=HAND_OFFSET)
        self._publisher = node.create_publisher(PointStamped, topic, COMMAND_QOS)
        self._message = PointStamped
        self._pending = schedule.intervals(duration_s)
        self._last_publish_s = -math.inf
        self._last_point: Point | None = None
        self.results: list[dict[str, Any]] = []

    def hand_point(self) -> np.ndarray:
        """The hand now, in the goal frame, from the simulator's exact joint positions."""
        return self._hand.hand_position(self._sim.joint_state()[0])

    def _measure(self, start: float | None, end: float, point: Point, now_s: float) -> None:
        hand = self.hand_point()
        distance = float(np.linalg.norm(hand - np.asarray(point)))
        self.results.append({
            "start_s": start, "end_s": end, "measured_at_s": now_s, "goal": list(point),
            "hand": hand.tolist(), "distance_m": distance, "within_radius": distance <= self.radius_m,
            "interval_completed": now_s >= end - 1e-9,
        })

    def tick(self, now_s: float) -> None:
        while self._pending and now_s >= self._pending[0][1] and len(self._pending) > 1:
            self._measure(*self._pending.pop(0), now_s)  # a goal's interval ended: the next one takes over
        point = self.schedule.at(now_s)
        # Again and again (the node keeps the newest goal; a repeat changes nothing), and at once on a change.
        if point is not None and (point != self._last_point or now_s - self._last_publish_s >= GOAL_PERIOD_S):
            msg = self._message()
            msg.header.stamp = self._node.get_clock().now().to_msg()
            msg.header.frame_id = self.frame
            msg.point.x, msg.point.y, msg.point.z = point
            self._publisher.publish(msg)
            self._last_point, self._last_publish_s = point, now_s

    def finish(self, now_s: float, received: np.ndarray | None = None) -> dict[str, Any]:
        """Measure the goal in progress (the last, or where a Ctrl-C stopped the run) and the report's section;
        goals whose interval had not begun are left out. With ``--goal topic`` the one measured is the newest
        goal the policy node accepted (``received``), if any."""
        if self._pending and now_s >= self._pending[0][0]:
            self._measure(*self._pending.pop(0), now_s)
        elif self.schedule.external and received is not None:
            point = tuple(float(v) for v in received)
            self._measure(None, now_s, (point[0], point[1], point[2]), now_s)
        return {
            "goal_topic": self.topic, "goal_frame": self.frame, "goal_link": self.link,
            "source": "external (--goal topic)" if self.schedule.external else "--goal",
            "success_radius_m": self.radius_m, "goals": self.results,
            "final_hand": self.hand_point().tolist(),
        }


def goal_summary_text(section: dict[str, Any]) -> str:
    """The summary's lines: each goal with the hand's distance at the end of its interval."""
    if not section["goals"]:
        hand = ", ".join(f"{v:.3f}" for v in section["final_hand"])
        return f"reach: no goal measured (goals from {section['goal_topic']}); hand at the end ({hand}) m\n"
    lines = []
    for goal in section["goals"]:
        point = ", ".join(f"{v:g}" for v in goal["goal"])
        verdict = "within" if goal["within_radius"] else "outside"
        cut = "" if goal["interval_completed"] else " (run stopped early)"
        since = f"from {goal['start_s']:g} s" if goal["start_s"] is not None else f"from {section['goal_topic']}"
        lines.append(f"reach: goal ({point}) m in {section['goal_frame']} {since}: hand "
                     f"{goal['distance_m'] * 100:.1f} cm away at {goal['measured_at_s']:.2f} s, {verdict} the "
                     f"{section['success_radius_m'] * 100:g} cm radius{cut}\n")
    return "".join(lines)
