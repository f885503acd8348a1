"""A goal-conditioned model in the policy node: the goal term comes from a PointStamped topic (real rclpy)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PointStamped
from policy_fixtures import write_mlp_policy
from test_policy_node import SPEC, RobotSide, start

from humanoid_rl.core.contract import RobotState
from humanoid_rl.envs.reach import reach_contract
from humanoid_rl.nodes.qos import COMMAND_QOS

CONTRACT = reach_contract(SPEC)
GOAL_TOPIC = "/test_goal"


@pytest.fixture()
def ros() -> Iterator[None]:
    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture(scope="module")
def reach_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "reach.onnx"
    write_mlp_policy(path, CONTRACT)
    return path


def _goal(point: tuple[float, float, float], frame: str = "pelvis") -> PointStamped:
    msg = PointStamped()
    msg.header.frame_id = frame
    msg.point.x, msg.point.y, msg.point.z = point
    return msg


def _expected_arm_targets(robot: RobotSide, goal: np.ndarray) -> np.ndarray:
    """The first command's arm targets for this goal: the model's own contract, observation and action map."""
    policy = robot.policy_node.policy
    assert policy is not None
    state = RobotState(base_ang_vel=robot.ang_vel, base_quat=robot.quat, joint_pos=robot.joint_pos,
                       joint_vel=robot.joint_vel, goal=goal)
    obs = CONTRACT.build_observation(state, np.zeros(3), np.zeros(CONTRACT.n_actions))
    targets = CONTRACT.action_to_joint_targets(policy.act(obs), SPEC.lower, SPEC.upper)
    return targets[[SPEC.joint_names.index(j) for j in CONTRACT.policy_joints]]


def _arm(msg: object) -> np.ndarray:
    return np.asarray(msg.position)[[SPEC.joint_names.index(j) for j in CONTRACT.policy_joints]]  # type: ignore[attr-defined]


def test_the_goal_topic_fills_the_goal_term_and_nothing_is_published_before_a_goal(ros, reach_model) -> None:
    node, robot = start(reach_model, goal_topic=GOAL_TOPIC)
    publisher = robot.node.create_publisher(PointStamped, GOAL_TOPIC, COMMAND_QOS)
    try:
        assert node.goal_input is not None and node.goal_input.frame == "pelvis"
        # No goal yet: fresh state, yet no command, each tick counted as no_goal.
        robot.fresh(1.0)
        assert robot.commands == [] and node.skips["no_goal"] > 0

        # A goal in another frame is refused; still nothing is published.
        publisher.publish(_goal((0.1, -0.3, 0.0), frame="world"))
        robot.fresh(1.0, until=lambda: node.goal_input.refused > 0)  # type: ignore[union-attr]
        assert node.goal_input.refused == 1 and node.goal_input.goal is None and robot.commands == []

        first = np.array([0.12, -0.32, 0.01])
        publisher.publish(_goal(tuple(first)))
        robot.fresh(5.0, until=lambda: len(robot.commands) >= 1)
        assert robot.commands, "no command after a goal in the goal frame"
        np.testing.assert_allclose(_arm(robot.commands[0]), _expected_arm_targets(robot, first), atol=1e-5)
        # The other joints stay at their default targets.
        others = [i for i, j in enumerate(SPEC.joint_names) if j not in CONTRACT.policy_joints]
        np.testing.assert_allclose(np.asarray(robot.commands[0].position)[others], SPEC.default_pose[others])

        # A new goal changes what the policy commands.
        node.reset_policy_state()  # last action back to zero, so the next command is a first one again
        robot.commands.clear()
        second = np.array([-0.05, -0.2, 0.1])
        publisher.publish(_goal(tuple(second)))
        robot.fresh(5.0, until=lambda: node.goal_input.goal is not None  # type: ignore[union-attr]
                    and np.allclose(node.goal_input.goal, second) and len(robot.commands) >= 1)
        node.reset_policy_state()
        robot.commands.clear()
        robot.fresh(5.0, until=lambda: len(robot.commands) >= 1)
        changed = _arm(robot.commands[0])
        np.testing.assert_allclose(changed, _expected_arm_targets(robot, second), atol=1e-5)
        assert np.abs(changed - _expected_arm_targets(robot, first)).max() > 1e-3
    finally:
        robot.close()


def test_a_model_without_a_goal_term_subscribes_to_no_goal(ros, tmp_path) -> None:
    from test_policy_node import CONTRACT as STAND_CONTRACT

    write_mlp_policy(tmp_path / "stand.onnx", STAND_CONTRACT)
    node, robot = start(tmp_path / "stand.onnx", goal_topic=GOAL_TOPIC)
    try:
        assert node.goal_input is None
        assert robot.node.count_subscribers(GOAL_TOPIC) == 0
    finally:
        robot.close()
