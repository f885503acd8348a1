"""`humanoid-rl sim --goal`: the shipped reach policy in the simulated stack (real rclpy and PyBullet), the goal
schedule's syntax, and the refusals (one line, exit 2, no run folder)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from test_cli_bad_input import error_line

from humanoid_rl import cli
from humanoid_rl.apps.reach_goals import GoalSchedule, parse_goal
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.envs.reach import HandKinematics, reach_contract
from humanoid_rl.paths import model_path

REACH_MODEL = str(model_path("humanoid_reach.onnx"))


def test_a_point_holds_all_run_and_a_schedule_changes_goals_at_its_times() -> None:
    single = parse_goal("0.25,-0.2,0.05")
    assert single.steps == ((0.0, (0.25, -0.2, 0.05)),)
    assert single.intervals(4.0) == [(0.0, 4.0, (0.25, -0.2, 0.05))]
    schedule = parse_goal(" 5:0.3,-0.1,0.1; 1:0.25,-0.2,0.05 ")
    assert schedule.at(0.5) is None  # before the first goal there is none: the robot holds
    assert schedule.at(1.0) == (0.25, -0.2, 0.05) and schedule.at(7.0) == (0.3, -0.1, 0.1)
    assert schedule.intervals(9.0) == [(1.0, 5.0, (0.25, -0.2, 0.05)), (5.0, 9.0, (0.3, -0.1, 0.1))]
    external = parse_goal("topic")
    assert external == GoalSchedule() and external.external and external.intervals(9.0) == []


@pytest.mark.parametrize("text", ["", "1,2", "0:1,2,3;0:1,2,3", "x:1,2,3", "-1:1,2,3", "1,inf,2"])
def test_a_malformed_goal_is_one_argparse_error(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="--goal"):
        parse_goal(text)


def reachable_goal(action: tuple[float, ...]) -> tuple[float, float, float]:
    """The hand point of an arm posture the policy's action range reaches (as Reach-v0 draws its goals)."""
    spec = RobotSpec.load()
    contract = reach_contract(spec)
    point = HandKinematics(spec).hand_position(contract.action_to_joint_targets(np.array(action), spec.lower,
                                                                                spec.upper))
    return (float(point[0]), float(point[1]), float(point[2]))


def test_the_shipped_reach_policy_brings_the_hand_to_each_scheduled_goal(tmp_path: Path) -> None:
    first, second = (0.25, -0.2, 0.05), reachable_goal((0.5, -0.4, 0.3, 0.5))
    schedule = f"0:{','.join(map(str, first))};3:{','.join(f'{v:.4f}' for v in second)}"
    out = tmp_path / "run"
    code = cli.main(["sim", "--model", REACH_MODEL, "--goal", schedule, "--duration", "5", "--push", "",
                     "--no-video", "--no-plots", "--out", str(out)])
    assert code == 0
    reach = json.loads((out / "report.json").read_text())["reach"]
    assert reach["goal_frame"] == "pelvis" and reach["goal_topic"] == "/policy/goal"
    assert [g["start_s"] for g in reach["goals"]] == [0.0, 3.0]
    for goal, point in zip(reach["goals"], (first, second), strict=True):
        np.testing.assert_allclose(goal["goal"], point, atol=1e-4)
        assert goal["interval_completed"] and goal["measured_at_s"] >= goal["end_s"] - 1e-9
        assert goal["distance_m"] < 0.05, goal
        assert goal["distance_m"] == pytest.approx(np.linalg.norm(np.subtract(goal["hand"], goal["goal"])))


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--model", REACH_MODEL], "is goal-conditioned (a point for right_forearm in frame 'pelvis')"),
        (["--goal", "0.25,-0.2,0.05"], "--goal: the model humanoid_stand.onnx has no goal term"),
        (["--model", "", "--goal", "0.25,-0.2,0.05"], "--goal: --model '' holds the default pose"),
        (["--model", REACH_MODEL, "--goal", "30:0.25,-0.2,0.05"], "starts at or after the end of the run"),
        (["--model", REACH_MODEL, "--goal", "1,2"], "argument --goal"),
    ],
)
def test_sim_refuses_a_goal_that_does_not_fit_the_model_in_one_line(
    options: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["sim", *options, "--out", str(tmp_path / "run")]) == 2
    assert says in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_with_goal_topic_the_run_takes_a_goal_published_from_outside(tmp_path: Path) -> None:
    """What `ros2 topic pub --once /policy/goal ...` does: one point, from another process, while the sim runs."""
    import os
    import subprocess
    import sys
    import time

    import rclpy
    from geometry_msgs.msg import PointStamped
    from rclpy.context import Context

    out = tmp_path / "run"
    sim = subprocess.Popen(
        [sys.executable, "-m", "humanoid_rl.cli", "sim", "--model", REACH_MODEL, "--goal", "topic", "--realtime",
         "--duration", "6", "--push", "", "--no-video", "--no-plots", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    context = Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("goal_publisher", context=context)
        publisher = node.create_publisher(PointStamped, "/policy/goal", 10)
        deadline = time.monotonic() + 60.0
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline and sim.poll() is None:
            time.sleep(0.05)
        assert publisher.get_subscription_count() > 0, "the policy node never subscribed to /policy/goal"
        msg = PointStamped()
        msg.header.frame_id = "pelvis"
        msg.point.x, msg.point.y, msg.point.z = 0.25, -0.2, 0.05
        publisher.publish(msg)
        time.sleep(0.5)  # let the reliable writer deliver before the node goes
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
    stdout, stderr = sim.communicate(timeout=120)
    assert sim.returncode == 0, stderr[-3000:]
    reach = json.loads((out / "report.json").read_text())["reach"]
    (goal,) = reach["goals"]
    assert goal["goal"] == [0.25, -0.2, 0.05] and goal["start_s"] is None
    assert goal["distance_m"] < 0.05, goal
    assert "reach: goal (0.25, -0.2, 0.05) m in pelvis from /policy/goal" in stdout


def test_the_launch_entry_point_takes_goals_from_the_topic_for_a_goal_conditioned_model() -> None:
    from humanoid_rl.apps.reach_goals import launch_goal_arguments

    assert launch_goal_arguments(["--model", REACH_MODEL, "--push", ""]) == ["--goal", "topic"]
    assert launch_goal_arguments(["--model", "humanoid_stand.onnx"]) == []
    assert launch_goal_arguments(["--model", ""]) == []
    assert launch_goal_arguments(["--model", REACH_MODEL, "--goal", "0.2,-0.2,0"]) == []
    assert launch_goal_arguments(["--model", "/nonexistent.onnx"]) == []  # the run refuses it in its own words
