"""The configurable contract: terms in any order, scale/clip/history, gait clock, joint subsets, action mapping."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from humanoid_rl.core.contract import (
    ContractError,
    ObservationError,
    ObservationTerm,
    PolicyContract,
    RecurrentState,
    RobotState,
)
from humanoid_rl.core.observation import ObservationBuilder
from humanoid_rl.core.robot_spec import RobotSpec

ROBOT = ("a_joint", "b_joint", "c_joint", "d_joint")
DEFAULT = (0.1, -0.2, 0.3, 0.4)


def contract(terms: tuple[ObservationTerm, ...], **overrides: object) -> PolicyContract:
    fields: dict[str, object] = dict(
        robot_name="toy",
        robot_config_hash="abc",
        joint_names=ROBOT,
        terms=terms,
        action_scale=0.25,
        action_clip=None,
        default_pose=DEFAULT,
        kp=(100.0,) * 4,
        kd=(2.0,) * 4,
        policy_rate_hz=50.0,
        policy_joints=("c_joint", "a_joint"),
    )
    fields.update(overrides)
    return PolicyContract(**fields)  # type: ignore[arg-type]


def state(joint_pos: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0), **extra: object) -> RobotState:
    return RobotState(
        base_ang_vel=np.array([0.4, -0.8, 1.2]),
        base_quat=np.array([0.0, 0.0, 0.0, 1.0]),
        joint_pos=np.array(joint_pos),
        joint_vel=np.array([10.0, 20.0, 30.0, 40.0]),
        **extra,  # type: ignore[arg-type]
    )


def term(name: str, size: int, scale: float = 1.0, **kw: object) -> ObservationTerm:
    return ObservationTerm(name, size, (scale,) * size, **kw)  # type: ignore[arg-type]


def test_joint_terms_read_the_policy_joints_in_the_policys_order_from_robot_ordered_arrays() -> None:
    c = contract((term("joint_vel", 2, 0.5), term("joint_pos_rel", 2)))
    obs = ObservationBuilder(c).build(state(), np.zeros(3), np.zeros(2))
    np.testing.assert_allclose(obs, [15.0, 5.0, 3.0 - 0.3, 1.0 - 0.1], rtol=1e-6)
    assert c.n_obs == 4 and c.n_actions == 2


def test_joints_the_policy_does_not_drive_are_held_at_their_default_and_scale_is_per_joint_unclipped() -> None:
    c = contract((term("last_action", 2),), action_scale=(0.5, 2.0))
    targets = c.action_to_joint_targets(np.array([3.0, -1.0]), -np.full(4, 9.0), np.full(4, 9.0))
    np.testing.assert_allclose(targets, [0.1 - 2.0, -0.2, 0.3 + 1.5, 0.4])
    np.testing.assert_array_equal(c.clip_action(np.array([30.0, -1.0])), [30.0, -1.0])


def test_the_gait_clock_starts_at_zero_advances_one_policy_period_per_step_and_restarts_at_reset() -> None:
    c = contract((term("gait_phase", 2),), gait_period_s=0.8)
    builder = ObservationBuilder(c)
    seen = [builder.build(state(), np.zeros(3), np.zeros(2)) for _ in range(11)]
    for step, obs in enumerate(seen):
        angle = 2 * math.pi * step * 0.02 / 0.8
        np.testing.assert_allclose(obs, [math.sin(angle), math.cos(angle)], atol=1e-6)
    np.testing.assert_allclose(seen[10], [1.0, 0.0], atol=1e-6)  # 0.2 s is a quarter of the 0.8 s cycle
    builder.reset()
    np.testing.assert_allclose(builder.build(state(), np.zeros(3), np.zeros(2)), [0.0, 1.0], atol=1e-7)


def test_a_gait_phase_without_a_period_is_refused_naming_the_field() -> None:
    with pytest.raises(ContractError, match="gait_period_s"):
        contract((term("gait_phase", 2),))


@pytest.mark.parametrize(("order", "fill", "expected"), [
    ("oldest_first", "first", [1, 1, 1, 2, 2, 3]),
    ("newest_first", "first", [1, 1, 2, 1, 3, 2]),
    ("oldest_first", "zeros", [0, 1, 1, 2, 2, 3]),
])
def test_term_history_stacks_as_declared(order: str, fill: str, expected: list[float]) -> None:
    # last_action of 2 joints, history 2: each step shows the values of two steps; we track element 0 only.
    c = contract((term("last_action", 2, history=2),), history_order=order, history_reset=fill)
    builder = ObservationBuilder(c)
    got = []
    for value in (1.0, 2.0, 3.0):
        obs = builder.build(state(), np.zeros(3), np.array([value, 0.0]))
        got += [obs[0], obs[2]]
    assert got == expected


def test_frame_stacking_repeats_whole_frames_with_term_histories_inside() -> None:
    terms = (term("base_height", 1), term("last_action", 2, history=2))
    c = contract(terms, frame_stack=3, history_order="newest_first", history_reset="zeros")
    assert c.frame_size == 5 and c.n_obs == 15
    builder = ObservationBuilder(c)
    for value in (1.0, 2.0):
        obs = builder.build(state(base_height=value), np.zeros(3), np.array([value, -value]))
    # newest frame first: [height, a_t(2), a_t-1(2)], then the frame before, then zeros (history_reset zeros)
    np.testing.assert_array_equal(obs[:5], [2.0, 2.0, -2.0, 1.0, -1.0])
    np.testing.assert_array_equal(obs[5:10], [1.0, 1.0, -1.0, 0.0, 0.0])
    np.testing.assert_array_equal(obs[10:], 0.0)


def test_clip_bounds_the_scaled_value() -> None:
    c = contract((term("joint_vel", 2, 0.5, clip=6.0),))
    np.testing.assert_array_equal(c.build_observation(state(), np.zeros(3), np.zeros(2)), [6.0, 5.0])


def test_per_axis_command_scale_and_the_optional_estimator_terms() -> None:
    terms = (
        ObservationTerm("velocity_command", 3, (2.0, 2.0, 0.25)),
        term("base_lin_vel", 3, 2.0),
        term("foot_contacts", 2),
        term("imu_lin_acc", 3),
    )
    s = state(base_lin_vel=np.array([0.5, 0.0, -0.1]), foot_contacts=np.array([1.0, 0.0]),
              imu_lin_acc=np.array([0.0, 0.1, 9.8]))
    obs = contract(terms).build_observation(s, np.array([0.5, -0.2, 1.0]), np.zeros(2))
    np.testing.assert_allclose(obs, [1.0, -0.4, 0.25, 1.0, 0.0, -0.2, 1.0, 0.0, 0.0, 0.1, 9.8], rtol=1e-6)


def test_a_term_whose_input_the_state_lacks_is_refused_naming_it() -> None:
    with pytest.raises(ObservationError, match="base_lin_vel"):
        contract((term("base_lin_vel", 3),)).build_observation(state(), np.zeros(3), np.zeros(2))


def test_an_unknown_policy_joint_is_refused_naming_the_robots_joints() -> None:
    with pytest.raises(ContractError, match=r"policy_joints \['wrist_joint'\] are not joints of the robot"):
        contract((term("joint_vel", 1),), policy_joints=("wrist_joint",))


def test_every_feature_round_trips_through_json_and_version_1_descriptions_still_load() -> None:
    c = contract(
        (term("gait_phase", 2), term("last_action", 2, 0.5, clip=3.0, history=4)),
        gait_period_s=0.64, frame_stack=2, history_order="newest_first", history_reset="zeros",
        action_scale=(0.25, 0.5),
        recurrent_state=(RecurrentState("h_in", "h_out", (1, 1, 8)),),
    )
    again = PolicyContract.from_json(c.to_json())
    assert again == c and again.mismatches(c) == [] and again.n_obs == 2 * (2 + 8)
    v1 = {k: v for k, v in PolicyContract.from_robot(RobotSpec.load()).to_dict().items()
          if k not in ("policy_joints", "gait_period_s", "frame_stack", "history_order", "history_reset",
                       "recurrent_state")}
    v1["version"] = 1
    assert PolicyContract.from_dict(v1) == PolicyContract.from_robot(RobotSpec.load())


def test_the_builder_gives_the_default_contracts_observations_bit_for_bit() -> None:
    spec = RobotSpec.load()
    c = PolicyContract.from_robot(spec)
    builder = ObservationBuilder(c)
    rng = np.random.default_rng(3)
    for _ in range(50):
        quat = rng.normal(size=4)
        s = RobotState(rng.normal(size=3), quat / np.linalg.norm(quat), rng.normal(size=21), rng.normal(size=21))
        command, last = rng.normal(size=3), rng.normal(size=21)
        expected = c.build_observation(s, command, last)
        assert builder.build(s, command, last).tobytes() == expected.tobytes()
        # the same numbers as the version-1 arithmetic: (value * scale) in float64, then float32
        raw = np.concatenate([s.base_ang_vel, np.zeros(3), command, s.joint_pos - spec.default_pose, s.joint_vel, last])
        np.testing.assert_array_equal(expected[6:], (raw * c.observation_scale).astype(np.float32)[6:])


def test_robot_mismatches_leave_layout_to_the_model_but_name_gains_and_joints() -> None:
    model = contract((term("gait_phase", 2),), gait_period_s=0.8)
    robot = dataclasses.replace(model, terms=(term("joint_vel", 4),), policy_joints=ROBOT, gait_period_s=None,
                                action_scale=0.5, kp=(100.0, 90.0, 100.0, 100.0))
    assert model.robot_mismatches(robot) == ["kp of b_joint: model 100, robot 90"]


def test_the_shipped_model_with_its_version_1_contract_still_loads_and_replays_its_pairs() -> None:
    import json

    from humanoid_rl.paths import model_path
    from humanoid_rl.policy.model_file import CONTRACT_KEY, open_session
    from humanoid_rl.policy.runtime import load_policy

    path = model_path("humanoid_stand.onnx")
    spec = RobotSpec.load()
    stored = json.loads(open_session(path).get_modelmeta().custom_metadata_map[CONTRACT_KEY])
    assert stored["version"] == 1
    policy = load_policy(path, PolicyContract.from_robot(spec))
    assert policy.contract == PolicyContract.from_robot(spec)
    assert policy.verify_recorded_pairs().max_abs_diff <= 1e-5


def test_euler_angles_of_the_base_are_roll_pitch_yaw() -> None:
    from humanoid_rl.core.rotations import quat_from_axis_angle, quat_multiply

    c = contract((term("base_euler_xyz", 3),))
    yaw_pitch_roll = quat_multiply(quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), 0.3),
                                   quat_multiply(quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), -0.2),
                                                 quat_from_axis_angle(np.array([1.0, 0.0, 0.0]), 0.1)))
    s = state()
    s.base_quat = yaw_pitch_roll
    np.testing.assert_allclose(c.build_observation(s, np.zeros(3), np.zeros(2)), [0.1, -0.2, 0.3], atol=1e-6)
