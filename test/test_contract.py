from __future__ import annotations

import numpy as np
import pytest

from humanoid_rl.core.contract import (
    ContractError,
    ContractMismatchError,
    ObservationError,
    ObservationTerm,
    PolicyContract,
    RobotState,
    default_terms,
)

JOINTS = ("a_joint", "b_joint", "c_joint")


def make_contract(**overrides: object) -> PolicyContract:
    fields: dict[str, object] = dict(
        robot_name="toy",
        robot_config_hash="abc",
        joint_names=JOINTS,
        terms=default_terms(len(JOINTS)),
        action_scale=0.5,
        action_clip=1.0,
        default_pose=(0.1, -0.2, 0.3),
        kp=(100.0, 100.0, 50.0),
        kd=(2.0, 2.0, 1.0),
        policy_rate_hz=50.0,
    )
    fields.update(overrides)
    return PolicyContract(**fields)  # type: ignore[arg-type]


def standing_state() -> RobotState:
    return RobotState(
        base_ang_vel=np.array([0.4, -0.8, 1.2]),
        base_quat=np.array([0.0, 0.0, 0.0, 1.0]),
        joint_pos=np.array([0.1, -0.2, 0.3]),
        joint_vel=np.array([1.0, 2.0, -4.0]),
    )


def test_observation_is_laid_out_term_by_term_with_scales() -> None:
    contract = make_contract()
    obs = contract.build_observation(standing_state(), np.array([0.5, 0.0, 1.0]), np.array([0.1, 0.2, 0.3]))
    assert obs.dtype == np.float32
    assert obs.shape == (contract.n_obs,) == (3 + 3 + 3 + 3 * 3,)
    s = contract.term_slices()
    np.testing.assert_allclose(obs[s["base_ang_vel"]], [0.1, -0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(obs[s["projected_gravity"]], [0.0, 0.0, -1.0])
    np.testing.assert_allclose(obs[s["velocity_command"]], [1.0, 0.0, 0.25])
    np.testing.assert_allclose(obs[s["joint_pos_rel"]], [0.0, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(obs[s["joint_vel"]], [0.05, 0.1, -0.2], rtol=1e-6)
    np.testing.assert_allclose(obs[s["last_action"]], [0.1, 0.2, 0.3], rtol=1e-6)


def test_projected_gravity_follows_a_tilted_base() -> None:
    contract = make_contract()
    state = standing_state()
    # 90 degrees about x: the body's y axis points up, so gravity appears along body +y... -z rotated.
    state.base_quat = np.array([np.sin(np.pi / 4), 0.0, 0.0, np.cos(np.pi / 4)])
    obs = contract.build_observation(state, np.zeros(3), np.zeros(3))
    np.testing.assert_allclose(obs[contract.term_slices()["projected_gravity"]], [0.0, -1.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("field", ["base_ang_vel", "base_quat", "joint_pos", "joint_vel"])
def test_a_nan_anywhere_in_the_state_refuses_to_build_an_observation(field: str) -> None:
    contract = make_contract()
    state = standing_state()
    value = np.array(getattr(state, field), dtype=float)
    value[0] = np.nan
    setattr(state, field, value)
    with pytest.raises(ObservationError, match="non-finite"):
        contract.build_observation(state, np.zeros(3), np.zeros(3))


def test_a_state_with_the_wrong_number_of_joints_is_refused_by_name_of_the_field() -> None:
    contract = make_contract()
    state = standing_state()
    state.joint_vel = np.zeros(4)
    with pytest.raises(ObservationError, match="joint_vel"):
        contract.build_observation(state, np.zeros(3), np.zeros(3))


def test_actions_map_to_default_pose_plus_scaled_clipped_action_within_limits() -> None:
    contract = make_contract()
    lower, upper = np.array([-1.0, -1.0, 0.0]), np.array([1.0, 1.0, 0.5])
    targets = contract.action_to_joint_targets(np.array([0.2, -5.0, 1.0]), lower, upper)
    np.testing.assert_allclose(targets, [0.1 + 0.1, -0.2 - 0.5, 0.5])


def test_a_non_finite_action_is_refused() -> None:
    contract = make_contract()
    with pytest.raises(ObservationError, match="non-finite action"):
        contract.action_to_joint_targets(np.array([0.0, np.inf, 0.0]), -np.ones(3), np.ones(3))


def test_contract_round_trips_through_json_unchanged() -> None:
    contract = make_contract()
    again = PolicyContract.from_json(contract.to_json())
    assert again == contract
    assert again.mismatches(contract) == []


def test_mismatches_name_every_difference() -> None:
    model = make_contract()
    robot = make_contract(
        joint_names=("a_joint", "c_joint", "b_joint"),
        action_scale=0.25,
        policy_rate_hz=100.0,
    )
    problems = model.mismatches(robot)
    text = "\n".join(problems)
    assert "joint order differs" in text and "c_joint" in text and "b_joint" in text
    assert "action_scale: model 0.5, robot 0.25" in text
    assert "policy_rate_hz" in text
    assert len(problems) == 3


def test_gain_and_pose_differences_are_named_per_joint() -> None:
    problems = make_contract().mismatches(make_contract(kp=(100.0, 90.0, 50.0), default_pose=(0.1, -0.2, 0.0)))
    assert problems == ["default_pose of c_joint: model 0.3, robot 0", "kp of b_joint: model 100, robot 90"]


def test_missing_and_extra_joints_are_listed() -> None:
    problems = make_contract().mismatches(make_contract(joint_names=("a_joint", "b_joint", "z_joint")))
    assert "joints in model but not in robot: ['c_joint']" in problems
    assert "joints in robot but not in model: ['z_joint']" in problems


def test_require_compatible_raises_with_every_mismatch_listed() -> None:
    with pytest.raises(ContractMismatchError) as info:
        make_contract().require_compatible(make_contract(robot_name="other", action_clip=2.0))
    assert len(info.value.mismatches) == 2
    assert "robot name" in str(info.value) and "action_clip" in str(info.value)


def test_an_edited_robot_file_changes_only_the_hash_which_is_not_a_mismatch() -> None:
    model, robot = make_contract(), make_contract(robot_config_hash="def")
    assert model.mismatches(robot) == []
    assert model.hash_differs(robot)


def test_unknown_observation_terms_and_bad_sizes_are_refused_when_loading() -> None:
    data = make_contract().to_dict()
    data["observation"][0]["name"] = "joint_torques"
    with pytest.raises(ContractError, match="unknown observation term 'joint_torques'") as refused:
        PolicyContract.from_dict(data)
    assert "known: base_ang_vel, projected_gravity" in str(refused.value) and "gait_phase" in str(refused.value)
    with pytest.raises(ContractError, match="size"):
        ObservationTerm("joint_vel", 3, (1.0, 1.0))


def test_a_contract_from_another_version_is_refused_with_the_fix() -> None:
    data = make_contract().to_dict()
    data["version"] = 99
    with pytest.raises(ContractError, match="re-export"):
        PolicyContract.from_dict(data)


def test_the_shipped_robot_gives_the_72_value_observation() -> None:
    from humanoid_rl.core.robot_spec import RobotSpec

    spec = RobotSpec.load()
    contract = PolicyContract.from_robot(spec)
    assert contract.n_actions == 21
    assert contract.n_obs == 72
    assert contract.joint_names == spec.joint_names
    assert contract.policy_rate_hz == spec.policy_rate_hz
    np.testing.assert_array_equal(contract.default_pose, spec.default_pose)


def test_clip_action_is_what_the_targets_use_so_last_action_can_repeat_it() -> None:
    contract = make_contract()
    action = np.array([3.0, -0.2, -7.0])
    np.testing.assert_array_equal(contract.clip_action(action), [1.0, -0.2, -1.0])
    targets = contract.action_to_joint_targets(action, -np.full(3, 9.0), np.full(3, 9.0))
    np.testing.assert_allclose(targets, np.asarray(contract.default_pose) + 0.5 * contract.clip_action(action))


def test_observations_are_independent_arrays_even_though_one_buffer_is_reused() -> None:
    contract = make_contract()
    first = contract.build_observation(standing_state(), np.zeros(3), np.zeros(3))
    second = contract.build_observation(standing_state(), np.ones(3), np.ones(3))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first[contract.term_slices()["last_action"]], 0.0)
