"""The policy node runs an imported recurrent policy from the MODEL's contract and restarts it when the shield
engages: memory, observation history and gait clock."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from import_fixtures import LEG_JOINTS, legged_contract, write_contract, write_lstm_policy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64MultiArray, String
from test_policy_node import SPEC, RobotSide, ros, start  # noqa: F401 - ros is a fixture

from humanoid_rl.core.contract import RobotState
from humanoid_rl.core.observation import ObservationBuilder
from humanoid_rl.graph import Topics
from humanoid_rl.nodes.runner import spin_until
from humanoid_rl.policy.runtime import OnnxPolicy
from humanoid_rl.train.import_policy import import_policy


@pytest.fixture(scope="module")
def walker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("walker")
    write_lstm_policy(tmp / "policy.pt", seed=3)
    import_policy(tmp / "policy.pt", write_contract(tmp / "c.yaml", legged_contract()), tmp / "walker.onnx")
    return tmp / "walker.onnx"


def replay(model: Path, robot: RobotSide, steps: int) -> list[np.ndarray]:
    """What the node must publish for a constant state: the model's own contract, memory and clock from zero."""
    policy = OnnxPolicy.load(model)
    contract = policy.contract
    builder = ObservationBuilder(contract)
    state = RobotState(robot.ang_vel, robot.quat, robot.joint_pos, robot.joint_vel, base_lin_vel=np.zeros(3),
                       base_height=0.0)
    last = np.zeros(contract.n_actions)
    out = []
    for _ in range(steps):
        action = policy.act(builder.build(state, np.zeros(3), last))
        out.append(contract.action_to_joint_targets(action, SPEC.lower, SPEC.upper))
        last = contract.clip_action(action)
    return out


def test_an_imported_recurrent_policy_drives_its_legs_holds_the_rest_and_restarts_when_the_shield_engages(
    ros, walker: Path  # noqa: F811 - the fixture
) -> None:
    node, robot = start(walker)
    try:
        expected = replay(walker, robot, 8)
        assert np.abs(expected[0] - expected[5]).max() > 1e-4  # memory and clock make every step differ
        robot.fresh(5.0, until=lambda: len(robot.commands) >= 4)
        got = [np.array(m.position) for m in robot.commands[:4]]
        assert list(robot.commands[0].name) == list(SPEC.joint_names)
        # Step by step as the fresh policy; on a loaded machine the subscriber may match the publisher after the
        # first command or two went out (the node counts them), so the sequence is compared from where it starts.
        lost = next((k for k in range(3) if np.allclose(got[0], expected[k], atol=1e-5)), None)
        assert lost is not None, "the first command received is none of a fresh policy's first three steps"
        np.testing.assert_allclose(got, expected[lost : lost + 4], atol=1e-5)
        held = [i for i, n in enumerate(SPEC.joint_names) if n not in LEG_JOINTS]
        np.testing.assert_array_equal(got[2][held], SPEC.default_pose[held])

        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        mode = robot.node.create_publisher(String, Topics.SHIELD_MODE, latched)
        resets = node.resets
        mode.publish(String(data="ACTIVE"))
        assert spin_until(robot.executor, lambda: node.resets > resets, wall_timeout_s=5.0)
        before = len(robot.commands)
        robot.fresh(5.0, until=lambda: len(robot.commands) >= before + 4)
        after = [np.array(m.position) for m in robot.commands[max(0, before - 1):]]
        starts = [i for i, p in enumerate(after) if np.allclose(p, expected[0], atol=1e-5)]
        assert starts, "no command after the engage equals the first step of a fresh policy"
        np.testing.assert_allclose(after[starts[0] + 1], expected[1], atol=1e-5)
        mode.publish(String(data="ACTIVE"))  # still ACTIVE: nothing to restart
        time.sleep(0.2)
        robot.fresh(0.3)
        assert node.resets == resets + 1
    finally:
        robot.close()


def test_estimator_velocity_height_contacts_and_imu_reach_a_model_that_observes_them(
    ros, tmp_path: Path  # noqa: F811 - the fixture
) -> None:
    from policy_fixtures import write_mlp_policy
    from sensor_msgs.msg import Imu

    from humanoid_rl.core.contract import ObservationTerm, PolicyContract
    from humanoid_rl.nodes.qos import SENSOR_QOS

    terms = (ObservationTerm("base_lin_vel", 3, (2.0,) * 3), ObservationTerm("base_height", 1, (1.0,)),
             ObservationTerm("foot_contacts", 2, (1.0, 1.0)), ObservationTerm("imu_lin_acc", 3, (0.1,) * 3),
             ObservationTerm("joint_pos_rel", SPEC.n_joints, (1.0,) * SPEC.n_joints))
    contract = PolicyContract.from_robot(SPEC, terms=terms)
    write_mlp_policy(tmp_path / "sensing.onnx", contract)
    node, robot = start(tmp_path / "sensing.onnx")
    try:
        contacts_pub = robot.node.create_publisher(Float64MultiArray, Topics.ESTIMATOR_CONTACTS, SENSOR_QOS)
        imu_pub = robot.node.create_publisher(Imu, Topics.IMU, SENSOR_QOS)

        def odom(stamp: float):
            msg = robot.odom(stamp)
            msg.twist.twist.linear.x, msg.twist.twist.linear.y = 0.4, -0.1
            msg.pose.pose.position.z = 0.78
            return msg

        robot.stream(1.0, robot.joint_state, odom)
        assert robot.commands == [] and node.skips["bad_observation"] > 0  # no contacts, no IMU yet: nothing

        imu = Imu()
        imu.linear_acceleration.x, imu.linear_acceleration.z = 0.5, 9.7
        assert spin_until(robot.executor, lambda: contacts_pub.get_subscription_count() >= 1
                          and imu_pub.get_subscription_count() >= 1, wall_timeout_s=10.0)

        def joint_and_more(stamp: float):
            contacts_pub.publish(Float64MultiArray(data=[1.0, 0.0]))
            imu_pub.publish(imu)
            return robot.joint_state(stamp)

        robot.stream(5.0, joint_and_more, odom, until=lambda: len(robot.commands) >= 2)
        state = RobotState(robot.ang_vel, robot.quat, robot.joint_pos, robot.joint_vel,
                           base_lin_vel=np.array([0.4, -0.1, 0.0]), base_height=0.78,
                           foot_contacts=np.array([1.0, 0.0]), imu_lin_acc=np.array([0.5, 0.0, 9.7]))
        obs = contract.build_observation(state, np.zeros(3), np.zeros(SPEC.n_joints))
        np.testing.assert_allclose(obs[:9], [0.8, -0.2, 0.0, 0.78, 1.0, 0.0, 0.05, 0.0, 0.97], rtol=1e-6)
        expected = contract.action_to_joint_targets(node.policy.act(obs), SPEC.lower, SPEC.upper)
        np.testing.assert_allclose(robot.commands[0].position, expected, atol=1e-5)
    finally:
        robot.close()
