"""DQN on the discrete stand task (its export runs through ``load_policy`` like any model), our REINFORCE, and
the training conveniences: stop at a success threshold, Ornstein-Uhlenbeck noise, gravity and PD-gain
randomization from the config, and the replay buffer that ``--resume`` continues with."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from train_fixtures import tiny_config

import humanoid_rl.envs  # noqa: F401 - registers the ids
from humanoid_rl.core.contract import PolicyContract
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.envs.discrete import POSTURE_STEP, posture_table
from humanoid_rl.policy import load_policy
from humanoid_rl.train.callbacks import REPLAY_BUFFER_FILE
from humanoid_rl.train.cli import build_model, env_config, load_checkpoint, train
from humanoid_rl.train.export import export_policy, resolve_checkpoint


def test_each_discrete_action_is_one_posture_offset_of_the_named_joints() -> None:
    joints = RobotSpec.load(None).joint_names
    table = posture_table(joints)
    assert table.shape == (9, len(joints))
    assert not table[0].any()  # action 0 holds the default pose
    column = {name: i for i, name in enumerate(joints)}
    for side in ("left", "right"):
        assert table[1, column[f"{side}_ankle_pitch_joint"]] == pytest.approx(POSTURE_STEP)
        assert table[2, column[f"{side}_ankle_pitch_joint"]] == pytest.approx(-POSTURE_STEP)
        assert table[5, column[f"{side}_hip_roll_joint"]] == pytest.approx(POSTURE_STEP)
        assert table[5, column[f"{side}_ankle_roll_joint"]] == pytest.approx(-POSTURE_STEP)
        assert table[7, column[f"{side}_knee_joint"]] == pytest.approx(POSTURE_STEP)
    assert np.count_nonzero(table[1]) == 2 and np.count_nonzero(table[5]) == 4  # both legs, nothing else
    with pytest.raises(ValueError, match="'hip_roll' joint"):
        posture_table(["torso_yaw_joint", "left_hip_pitch_joint", "left_ankle_pitch_joint"])


def test_the_discrete_stand_task_steps_the_simulator_with_the_posture_of_each_action() -> None:
    from humanoid_rl.envs.humanoid_env import EnvConfig

    env = gymnasium.make("HumanoidRL/StandDiscrete-v0", config=EnvConfig(randomize=False, episode_length_s=1.0))
    try:
        assert env.action_space == gymnasium.spaces.Discrete(9)
        knee = list(env.unwrapped.contract.joint_names).index("left_knee_joint")
        settled = {}
        for action in (0, 7, 8):  # 0.5 s holding, crouching, extending from the same start
            env.reset(seed=0)
            for _ in range(25):
                _, _, terminated, _, _ = env.step(action)
                assert not terminated
            settled[action] = env.unwrapped.sim.joint_state()[0][knee]
        # the knee target moved by scale 0.5 * step; the PD holds each posture to within a few hundredths
        assert settled[7] - settled[0] == pytest.approx(0.5 * POSTURE_STEP, abs=0.03)
        assert settled[8] - settled[0] == pytest.approx(-0.5 * POSTURE_STEP, abs=0.03)
    finally:
        env.close()


def test_dqn_trains_on_the_discrete_stand_and_its_onnx_export_picks_the_greedy_q_posture(tmp_path: Path) -> None:
    metrics = train(tiny_config(tmp_path, "dqn", total_timesteps=256))
    assert metrics["status"] == "finished" and metrics["algo"] == "dqn"
    run_dir = tmp_path / "tiny-dqn"
    output = tmp_path / "dqn.onnx"
    report = export_policy(resolve_checkpoint(run_dir, "final"), output, rollout_episodes=1, rollout_s=1.0,
                           n_pairs=16, write_card=False)
    assert report["parity_max_abs_diff"]["module_vs_sb3_predict"] == 0.0
    # The deployment path: the policy node's load_policy with the robot's contract, one observation at a time.
    contract = PolicyContract.from_robot(RobotSpec.load(None))
    policy = load_policy(output, contract)
    model = load_checkpoint(run_dir / "final", "dqn")
    with (run_dir / "final" / "vecnormalize.pkl").open("rb") as stream:
        normalizer = pickle.load(stream)  # noqa: S301 - this test's own training output
    table = posture_table(contract.policy_joints)
    rng = np.random.default_rng(0)
    mean, std = normalizer.obs_rms.mean, np.sqrt(normalizer.obs_rms.var)
    raw = (mean + std * rng.normal(0.0, 1.5, size=(100, mean.size))).astype(np.float32)
    greedy, _ = model.predict(normalizer.normalize_obs(raw), deterministic=True)
    onnx_actions = np.stack([policy.act(obs) for obs in raw])
    assert np.array_equal(onnx_actions, table[greedy])
    assert len(set(greedy.tolist())) >= 2, "the random observations should not all pick one posture"


def test_dqn_takes_prioritized_replay_too(tmp_path: Path) -> None:
    from humanoid_rl.train.prioritized import PrioritizedDQN
    from humanoid_rl.train.replay import PrioritizedReplayBuffer

    train(tiny_config(tmp_path, "dqn", replay="prioritized", total_timesteps=192, eval_freq=192,
                      checkpoint_freq=192))
    model = load_checkpoint(tmp_path / "tiny-dqn" / "final", "dqn", replay="prioritized")
    model.load_replay_buffer(tmp_path / "tiny-dqn" / "final" / REPLAY_BUFFER_FILE)
    assert type(model) is PrioritizedDQN and isinstance(model.replay_buffer, PrioritizedReplayBuffer)
    assert np.unique(np.round(model.replay_buffer.tree.priorities(np.arange(192)), 9)).size > 10


class _Bandit(gymnasium.Env):
    """One-step episodes, reward -(a - 0.6)^2: the policy mean should move from 0 towards 0.6."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return np.zeros(1, np.float32), -float((action[0] - 0.6) ** 2), True, False, {}


def test_reinforce_moves_the_policy_mean_towards_the_best_action_of_a_bandit() -> None:
    from humanoid_rl.train.reinforce import Reinforce

    model = Reinforce("MlpPolicy", _Bandit(), learning_rate=3e-3, n_steps=64, seed=0, device="cpu",
                      policy_kwargs={"net_arch": [16], "log_std_init": -1.0})
    before, _ = model.predict(np.zeros(1, np.float32), deterministic=True)
    model.learn(64 * 150)
    after, _ = model.predict(np.zeros(1, np.float32), deterministic=True)
    assert abs(float(before[0]) - 0.6) > 0.3
    assert abs(float(after[0]) - 0.6) < 0.1


def test_reinforce_trains_on_stand_and_exports_like_ppo(tmp_path: Path) -> None:
    metrics = train(tiny_config(tmp_path, "reinforce"))
    assert metrics["status"] == "finished" and metrics["steps"] >= 256
    report = export_policy(resolve_checkpoint(tmp_path / "tiny-reinforce"), tmp_path / "r.onnx", rollout_episodes=1,
                           rollout_s=1.0, n_pairs=16, write_card=False)
    assert report["parity_max_abs_diff"]["random_observations"] <= 1e-5


def test_training_stops_once_an_evaluation_reaches_the_success_threshold(tmp_path: Path) -> None:
    # 0.5 s evaluations without pushes: the freshly initialized policy (tiny actions) stands through them.
    metrics = train(tiny_config(tmp_path, total_timesteps=5_000, stop_success_rate=0.9, stop_min_level=0.0,
                                push_force_min_n=0.0, push_force_max_n=0.0))
    assert metrics["status"] == "success_threshold"
    assert metrics["steps"] == 128 and metrics["evaluations"][-1]["success_rate"] >= 0.9


def test_ou_noise_gravity_and_gain_randomization_come_from_the_config(tmp_path: Path) -> None:
    from stable_baselines3.common.noise import OrnsteinUhlenbeckActionNoise

    from humanoid_rl.train.cli import make_vec_env

    config = tiny_config(tmp_path, "td3", action_noise="ou", ou_theta=0.3, rand_gravity_z=[-10.5, -9.0],
                         rand_kp_scale=[0.7, 0.8], curriculum_start=1.0)
    ranges = env_config(config).randomization
    assert ranges.gravity_z == (-10.5, -9.0) and ranges.kp_scale == (0.7, 0.8) and ranges.kd_scale is None
    env = make_vec_env(config, 1, env_config(config))
    try:
        model = build_model(config, env, None)
        assert isinstance(model.action_noise, OrnsteinUhlenbeckActionNoise) and model.action_noise._theta == 0.3
        env.reset()
        sample = env.get_attr("unwrapped")[0].sim.randomization_sample  # the episode's draw
        assert -10.5 <= sample.gravity[2] <= -9.0 and sample.gravity[2] != pytest.approx(-9.81)
        assert np.all((sample.kp_scale >= 0.7) & (sample.kp_scale <= 0.8))
    finally:
        env.close()


def test_resume_continues_an_off_policy_run_with_its_replay_buffer(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, "sac", total_timesteps=192, eval_freq=10**6, checkpoint_freq=96)
    train(config)
    run_dir = tmp_path / "tiny-sac"
    assert (run_dir / "final" / REPLAY_BUFFER_FILE).is_file()
    # only the newest checkpoint keeps the (large) buffer
    assert not (run_dir / "checkpoints" / "step_96" / REPLAY_BUFFER_FILE).exists()
    config.total_timesteps = 320
    metrics = train(config, resume=run_dir)
    assert metrics["steps"] >= 320
    model = load_checkpoint(run_dir / "final", "sac")
    model.load_replay_buffer(run_dir / "final" / REPLAY_BUFFER_FILE)
    assert model.replay_buffer.size() >= 320  # the first 192 transitions and the 128 after the resume


@pytest.mark.parametrize(("settings", "named"), [
    ({"algo": "ppo", "replay": "prioritized"}, "on-policy algorithms have no replay buffer"),
    ({"algo": "sac", "replay": "ranked"}, "replay = 'ranked'"),
    ({"algo": "td3", "action_noise": "pink"}, "action_noise = 'pink'"),
    ({"rand_kp_scale": [1.2, 0.8]}, "rand_kp_scale = [1.2, 0.8]"),
    ({"stop_success_rate": 1.5}, "stop_success_rate = 1.5"),
    ({"per_beta0": 2.0}, "per_beta0"),
])
def test_contradictory_toolbox_settings_are_refused_naming_the_setting(settings: dict, named: str) -> None:
    from humanoid_rl.train.config import TrainConfig, TrainConfigError

    with pytest.raises(TrainConfigError, match=re.escape(named)):
        TrainConfig(**settings)


def test_the_comparison_command_trains_each_case_and_evaluates_them_beside_the_pd_stand(tmp_path: Path) -> None:
    import json

    from humanoid_rl.train.compare import main

    out = tmp_path / "per.json"
    assert main(["per", "--total-timesteps", "160", "--eval-episodes", "2", "--eval-episode-s", "1",
                 "--run-root", str(tmp_path / "runs"), "--out", str(out)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert set(result["runs"]) == {"sac-uniform", "sac-prioritized"}
    for run in result["runs"].values():
        assert run["steps"] == 160 and 0.0 <= run["final_eval"]["level_1"]["success_rate"] <= 1.0
    assert result["pd_only_same_seeds"]["level_0.4"]["mean_length_s"] > 0.0


def test_a_time_budget_with_schedules_over_the_step_count_is_warned_about() -> None:
    from humanoid_rl.train.algorithms import schedule_warnings
    from humanoid_rl.train.config import TrainConfig

    (warning,) = schedule_warnings(TrainConfig(algo="dqn", replay="prioritized", time_budget_min=3.0))
    assert "epsilon falls over the first 0.1" in warning and "beta reaches 1" in warning
    assert "--total-timesteps 3000000" in warning
    assert schedule_warnings(TrainConfig(algo="dqn")) == []  # no budget: the schedules run to their end
    assert schedule_warnings(TrainConfig(algo="sac", time_budget_min=3.0)) == []
