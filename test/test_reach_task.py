"""HumanoidRL/Reach-v0 and hindsight experience replay: reward, goals, contract, training, export, CLI refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from train_fixtures import tiny_config

from humanoid_rl import cli
from humanoid_rl.core.contract import ContractError, PolicyContract, RobotState
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.envs.reach import ARM_JOINTS, GOAL_ACTION_RANGE, ReachConfig, ReachEnv, reach_contract

SPEC = RobotSpec.load(None)


@pytest.fixture(scope="module")
def env() -> Any:
    environment = ReachEnv(ReachConfig(sensor_noise=False))
    yield environment
    environment.close()


def test_compute_reward_on_a_batch_equals_it_per_sample(env: ReachEnv) -> None:
    rng = np.random.default_rng(0)
    achieved = rng.uniform(-0.3, 0.3, (256, 3))
    desired = achieved + rng.normal(0.0, 0.04, (256, 3))  # about half within 5 cm
    batch = env.compute_reward(achieved, desired, [{}] * 256)
    single = np.array([env.compute_reward(a, d, {}) for a, d in zip(achieved, desired, strict=True)])
    assert batch.shape == (256,) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch, single)
    assert set(np.unique(batch)) == {-1.0, 0.0}


def test_success_is_within_the_threshold_and_the_reward_says_so(env: ReachEnv) -> None:
    goal = np.zeros(3)
    threshold = env.config.success_threshold_m
    inside, outside = np.array([threshold - 1e-4, 0.0, 0.0]), np.array([threshold + 1e-4, 0.0, 0.0])
    assert env.compute_reward(inside, goal, {}) == 0.0 and env.compute_reward(outside, goal, {}) == -1.0
    # A step's info agrees with the reward it returns.
    obs, _ = env.reset(seed=3)
    for _ in range(5):
        obs, reward, _, _, info = env.step(env.action_space.sample())
        distance = np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"])
        assert info["is_success"] == (distance <= threshold) == (reward == 0.0)


def test_goals_are_reachable_points_drawn_per_seed(env: ReachEnv) -> None:
    goals = np.array([env.sample_goal(np.random.default_rng(seed)) for seed in range(300)])
    np.testing.assert_array_equal(env.sample_goal(np.random.default_rng(7)), goals[7])  # reproducible
    assert np.unique(goals.round(4), axis=0).shape[0] == 300  # and different per seed
    # Within the arm's reach around its shoulder (0.17 m to the side, 0.4 m above the pelvis)...
    shoulder = env.hand.hand_position(SPEC.default_pose)  # compare against a sweep of the range's corners
    corners = np.array(np.meshgrid(*[[-GOAL_ACTION_RANGE, GOAL_ACTION_RANGE]] * 4)).reshape(4, -1).T
    contract = env.contract
    reach = [env.hand.hand_position(contract.action_to_joint_targets(c, SPEC.lower, SPEC.upper)) for c in corners]
    radius = max(np.linalg.norm(np.array(reach) - shoulder, axis=1)) + 0.15
    assert np.all(np.linalg.norm(goals - shoulder, axis=1) < radius)
    # ...on the right side of the body (the right arm's goals), spread over more than the success radius.
    assert np.all(goals[:, 1] < 0.0) and np.all(goals.std(axis=0) > env.config.success_threshold_m / 2)


def test_the_hand_point_matches_pybullets_link_pose(env: ReachEnv) -> None:
    from humanoid_rl.core.rotations import quat_to_matrix

    env.reset(seed=1)
    for _ in range(20):
        env.step(np.array([0.5, -0.5, 0.3, -0.5]))
    frames = env.sim.link_frames()
    base_pos, base_quat = frames["pelvis"]
    link_pos, link_quat = frames["right_forearm"]
    tip_world = link_pos + quat_to_matrix(link_quat) @ np.array([0.0, 0.0, -0.2])
    np.testing.assert_allclose(env.achieved_goal(), quat_to_matrix(base_quat).T @ (tip_world - base_pos), atol=1e-5)


def test_the_flat_observation_is_the_contracts_and_the_arm_alone_moves(env: ReachEnv) -> None:
    from humanoid_rl.train.goal import flat_observation

    goal = np.array([0.1, -0.3, 0.0])
    obs, _ = env.reset(seed=2, options={"goal": goal})
    q, qd = env.sim.joint_state()
    state = RobotState(base_ang_vel=np.zeros(3), base_quat=np.array([0.0, 0.0, 0.0, 1.0]), joint_pos=q,
                       joint_vel=qd, goal=goal)
    expected = env.contract.build_observation(state, np.zeros(3), np.zeros(4))
    np.testing.assert_allclose(flat_observation(obs), expected, atol=1e-6)  # exact sensors in this fixture
    assert env.contract.n_obs == flat_observation(obs).size == 15
    targets = env.contract.action_to_joint_targets(np.ones(4), SPEC.lower, SPEC.upper)
    moved = [SPEC.joint_names[i] for i in np.flatnonzero(np.abs(targets - SPEC.default_pose) > 1e-9)]
    assert set(moved) <= set(ARM_JOINTS) and moved


def test_the_contract_describes_the_goal_and_a_mismatch_is_loud() -> None:
    contract = reach_contract(SPEC)
    assert (contract.goal_link, contract.goal_frame) == ("right_forearm", "pelvis")
    again = PolicyContract.from_dict(json.loads(contract.to_json()))
    assert again == contract and again.goal_frame == "pelvis"
    elsewhere = PolicyContract.from_dict({**contract.to_dict(), "goal_frame": "torso"})
    assert any("goal_frame" in line for line in contract.mismatches(elsewhere))
    with pytest.raises(ContractError, match="goal term needs goal_link"):
        PolicyContract.from_dict({**contract.to_dict(), "goal_frame": None})


@pytest.mark.parametrize(("options", "says"), [
    (["--task", "stand", "--algo", "sac", "--replay", "her"], "hindsight replay needs a goal-conditioned task"),
    (["--task", "reach", "--algo", "ppo"], "the goal-conditioned task trains with sac, td3, ddpg"),
    (["--task", "reach", "--replay", "prioritized"], "prioritized replay stores flat observations"),
    (["--task", "reach", "--replay", "her", "--learning-starts", "10"], "HER samples only from finished episodes"),
])
def test_train_refuses_her_where_it_cannot_work_in_one_line(
    options: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["train", *options, "--run-root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and says in err.strip().splitlines()[-1]
    assert not (tmp_path / "runs").exists()


def test_reach_defaults_apply_to_the_reach_task_only() -> None:
    import argparse

    from humanoid_rl.train.config import REACH_DEFAULTS, add_config_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    reach = config_from_args(parser.parse_args(["--task", "reach", "--gamma", "0.9"]))
    assert reach.algo == "sac" and reach.episode_s == REACH_DEFAULTS["episode_s"] and reach.gamma == 0.9
    assert config_from_args(parser.parse_args(["--task", "stand"])).episode_s == 20.0


def _reach_config(run_root: Path, replay: str, **overrides: Any) -> Any:
    from humanoid_rl.train.config import REACH_DEFAULTS

    settings = {**REACH_DEFAULTS, "task": "reach", "replay": replay, "net_arch": [32, 32], "learning_starts": 60,
                "total_timesteps": 160, "eval_freq": 100, "eval_episodes": 2, "checkpoint_freq": 100, **overrides}
    return tiny_config(run_root, "sac", **{k: v for k, v in settings.items() if k != "algo"}, run_name=f"r-{replay}")


def test_her_trains_resumes_with_its_buffer_and_exports_a_flat_goal_policy(tmp_path: Path) -> None:
    from stable_baselines3 import HerReplayBuffer

    from humanoid_rl.policy import load_policy
    from humanoid_rl.train.callbacks import REPLAY_BUFFER_FILE
    from humanoid_rl.train.cli import load_checkpoint, train
    from humanoid_rl.train.export import export_policy, resolve_checkpoint

    config = _reach_config(tmp_path, "her")
    metrics = train(config)
    run_dir = tmp_path / "r-her"
    assert metrics["steps"] >= 160 and metrics["evaluations"]
    assert (run_dir / "final" / REPLAY_BUFFER_FILE).is_file()
    config.total_timesteps = 220
    assert train(config, resume=run_dir)["steps"] >= 220

    output = tmp_path / "reach.onnx"
    report = export_policy(resolve_checkpoint(run_dir, "final"), output, rollout_episodes=1, rollout_s=1.0,
                           n_pairs=16, n_random=64, write_card=False)
    assert max(report["parity_max_abs_diff"].values()) < 1e-5

    # The deployment path against SB3's own policy on 100 observations of the Dict env, goals included.
    import pickle

    model = load_checkpoint(run_dir / "final", "sac", replay="her")
    assert not isinstance(model.replay_buffer, HerReplayBuffer)  # loaded without an env: the policy alone
    with (run_dir / "final" / "vecnormalize.pkl").open("rb") as stream:
        normalizer = pickle.load(stream)  # noqa: S301 - written by the training above
    contract = reach_contract(SPEC)
    policy = load_policy(output, PolicyContract.from_robot(SPEC))
    assert policy.contract == contract
    environment = ReachEnv()
    try:
        obs, _ = environment.reset(seed=5)
        rows: list[dict[str, np.ndarray]] = []
        while len(rows) < 100:
            rows.append(obs)
            obs, _, terminated, truncated, _ = environment.step(environment.action_space.sample())
            if terminated or truncated:
                obs, _ = environment.reset()
    finally:
        environment.close()
    from humanoid_rl.train.goal import flat_observation

    batch = {key: np.stack([row[key] for row in rows]) for key in rows[0]}
    expected, _ = model.predict(normalizer.normalize_obs(batch), deterministic=True)
    deployed = np.stack([policy.act(flat_observation(row)) for row in rows])
    np.testing.assert_allclose(deployed, expected, atol=1e-5)


def test_the_her_comparison_runs_both_cases_on_each_seed(tmp_path: Path) -> None:
    from humanoid_rl.train.compare import main

    out = tmp_path / "her.json"
    assert main(["her", "--seeds", "0", "1", "--total-timesteps", "120", "--eval-episodes", "2",
                 "--run-root", str(tmp_path / "runs"), "--out", str(out), "--only", "sac-her"]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert set(result["runs"]) == {"sac-her-s0", "sac-her-s1"}
    for run in result["runs"].values():
        assert run["steps"] == 120 and 0.0 <= run["final_eval"]["level_1"]["success_rate"] <= 1.0
        assert "final_distance_m" in run["final_eval"]["level_1"]["reward_terms"]


def test_a_contract_without_a_goal_term_takes_no_goal_frame() -> None:
    stand = PolicyContract.from_robot(SPEC)
    assert stand.to_dict()["goal_frame"] is None and PolicyContract.from_dict(stand.to_dict()) == stand
    with pytest.raises(ContractError, match=re.escape("no observation term is 'goal'")):
        PolicyContract.from_dict({**stand.to_dict(), "goal_frame": "pelvis"})


def test_the_shipped_reach_policy_puts_the_hand_on_goals_through_the_deployment_runtime() -> None:
    """models/humanoid_reach.onnx (HER, docs/training_methods.md) through load_policy, the node's runtime."""
    from humanoid_rl.paths import model_path
    from humanoid_rl.policy import load_policy
    from humanoid_rl.train.goal import flat_observation

    policy = load_policy(model_path("humanoid_reach.onnx"), PolicyContract.from_robot(SPEC))
    assert policy.contract == reach_contract(SPEC)
    environment = ReachEnv()  # noisy sensors, as in training and evaluation
    successes = []
    try:
        for seed in range(20):
            obs, _ = environment.reset(seed=90_000 + seed)
            done = False
            while not done:
                obs, _, terminated, truncated, info = environment.step(policy.act(flat_observation(obs)))
                done = terminated or truncated
            successes.append(info["is_success"])
    finally:
        environment.close()
    assert np.mean(successes) >= 0.9, successes
