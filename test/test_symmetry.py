"""The left-right mirror (train/symmetry.py): the map is the robot's own reflection, and PPO's mirror loss
reaches the gradient and makes the policy symmetric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from train_fixtures import tiny_config

from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.envs.humanoid_env import EnvConfig, HumanoidEnv
from humanoid_rl.envs.pushes import PushConfig
from humanoid_rl.train.symmetry import MirrorMap, joint_mirror

SPEC = RobotSpec.load(None)


def walk_contract():
    env = HumanoidEnv("walk", EnvConfig(push=PushConfig.off()))
    try:
        return env.contract
    finally:
        env.close()


def test_mirroring_the_joints_mirrors_the_feet_through_the_sagittal_plane() -> None:
    partner, sign = joint_mirror(SPEC, SPEC.joint_names)
    names = SPEC.joint_names
    assert names[partner[names.index("left_knee_joint")]] == "right_knee_joint"
    assert names[partner[names.index("torso_yaw_joint")]] == "torso_yaw_joint"
    # Roll and yaw joints flip, pitch joints keep their sign (read from the axes, not the names).
    assert sign[names.index("left_hip_roll_joint")] == -1.0 and sign[names.index("left_hip_yaw_joint")] == -1.0
    assert sign[names.index("left_hip_pitch_joint")] == 1.0 and sign[names.index("torso_yaw_joint")] == -1.0
    # The shipped robot is symmetric: default pose and limits are their own mirrors.
    np.testing.assert_array_equal(sign * SPEC.default_pose[partner], SPEC.default_pose)
    np.testing.assert_array_equal(np.where(sign > 0, SPEC.lower[partner], -SPEC.upper[partner]), SPEC.lower)
    kinematics = RobotKinematics(SPEC)
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = np.clip(SPEC.default_pose + rng.uniform(-0.3, 0.3, SPEC.n_joints), SPEC.lower, SPEC.upper)
        mirrored = sign * q[partner]
        feet = kinematics.foot_positions_in_base(q)
        mirrored_feet = kinematics.foot_positions_in_base(mirrored)
        reflect = np.array([1.0, -1.0, 1.0])
        np.testing.assert_allclose(mirrored_feet[0], reflect * feet[1], atol=1e-9)
        np.testing.assert_allclose(mirrored_feet[1], reflect * feet[0], atol=1e-9)


def test_the_mirror_of_an_observation_and_an_action_is_an_involution_that_swaps_the_legs() -> None:
    contract = walk_contract()
    mirror = MirrorMap(contract, SPEC)
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(4, contract.n_obs))
    action = rng.normal(size=(4, contract.n_actions))
    np.testing.assert_array_equal(mirror.observation(mirror.observation(obs)), obs)
    np.testing.assert_array_equal(mirror.action(mirror.action(action)), action)
    slices = contract.term_slices()
    one = obs[0]
    out = mirror.observation(one)
    np.testing.assert_array_equal(out[slices["velocity_command"]], one[slices["velocity_command"]] * [1, -1, -1])
    np.testing.assert_array_equal(out[slices["gait_phase"]], -one[slices["gait_phase"]])
    np.testing.assert_array_equal(out[slices["base_ang_vel"]], one[slices["base_ang_vel"]] * [-1, 1, -1])
    knee_l, knee_r = contract.joint_names.index("left_knee_joint"), contract.joint_names.index("right_knee_joint")
    joints = slices["joint_pos_rel"]
    assert out[joints][knee_l] == one[joints][knee_r]


def test_a_contract_with_a_term_that_has_no_mirror_is_refused() -> None:
    import gymnasium

    from humanoid_rl.envs import REACH_ID

    env = gymnasium.make(REACH_ID)
    try:
        reach = env.unwrapped.contract  # the right hand's goal point: reaching is one-sided
    finally:
        env.close()
    with pytest.raises(ValueError, match="'goal' has no mirror"):
        MirrorMap(reach, SPEC)


def _walk_ppo(mirror_loss: float, ent_coef: float = 0.01):
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from humanoid_rl.train.symmetry import install_mirror_loss

    venv = VecNormalize(DummyVecEnv([lambda: HumanoidEnv("walk", EnvConfig(push=PushConfig.off(), episode_length_s=2.0,
                                                                            physics_rate_hz=500.0))]))
    model = PPO("MlpPolicy", venv, n_steps=256, batch_size=64, n_epochs=8, ent_coef=ent_coef, learning_rate=1e-3,
                seed=0, device="cpu", policy_kwargs={"net_arch": [32], "log_std_init": -2.0})
    mirror = MirrorMap(venv.get_attr("contract")[0], SPEC)
    if mirror_loss:
        install_mirror_loss(model, mirror, mirror_loss, venv.obs_rms, venv.epsilon, venv.clip_obs)
    return model, venv, mirror


def test_the_mirror_loss_adds_exactly_its_weight_times_its_gradient_and_leaves_the_entropy_value() -> None:
    import torch as th

    weight, ent_coef = 0.7, 0.01
    model, venv, mirror = _walk_ppo(weight, ent_coef)
    policy = model.policy
    venv.obs_rms.mean = np.random.default_rng(3).normal(size=venv.obs_rms.mean.shape)  # a non-trivial normalizer
    venv.obs_rms.var = np.random.default_rng(4).uniform(0.5, 2.0, size=venv.obs_rms.var.shape)
    obs = th.as_tensor(np.random.default_rng(5).normal(size=(32, mirror.obs_index.size)), dtype=th.float32)
    actions = th.zeros((32, mirror.action_index.size))
    _, _, entropy = policy.evaluate_actions(obs, actions)
    policy.optimizer.zero_grad()
    (ent_coef * -entropy.mean()).backward()
    injected = [p.grad.clone() if p.grad is not None else th.zeros_like(p) for p in policy.parameters()]

    _, _, plain_entropy = type(policy).evaluate_actions(policy, obs, actions)
    assert th.allclose(entropy, plain_entropy)  # zero in value: the logged entropy is the true one
    policy.optimizer.zero_grad()
    std = th.as_tensor(np.sqrt(venv.obs_rms.var + venv.epsilon), dtype=th.float32)
    mean = th.as_tensor(venv.obs_rms.mean, dtype=th.float32)
    raw = obs * std + mean
    mirrored_obs = (th.as_tensor(mirror.obs_sign, dtype=th.float32) * raw[:, mirror.obs_index] - mean) / std
    mu = policy.get_distribution(obs).distribution.mean
    target = (th.as_tensor(mirror.action_sign, dtype=th.float32) * mu[:, mirror.action_index]).detach()
    loss = ((policy.get_distribution(mirrored_obs).distribution.mean - target) ** 2).mean(dim=1).mean()
    (ent_coef * -plain_entropy.mean() + weight * loss).backward()
    expected = [p.grad.clone() if p.grad is not None else th.zeros_like(p) for p in policy.parameters()]
    for got, want in zip(injected, expected, strict=True):
        assert th.allclose(got, want, atol=1e-7)
    assert any(g.abs().sum() > 0 for g in injected)
    venv.close()


def test_ppo_with_the_mirror_loss_unlearns_a_lopsided_policy(tmp_path: Path) -> None:
    import torch as th

    def asymmetry(model, venv, mirror) -> float:
        noise = np.random.default_rng(2).normal(size=(256, mirror.obs_index.size))
        raw = venv.obs_rms.mean + noise * np.sqrt(venv.obs_rms.var)
        actions, _ = model.predict(venv.normalize_obs(raw), deterministic=True)
        mirrored, _ = model.predict(venv.normalize_obs(mirror.observation(raw)), deterministic=True)
        return float(np.mean((mirrored - mirror.action(actions)) ** 2))

    results = {}
    for weight in (0.0, 5.0):
        model, venv, mirror = _walk_ppo(weight)
        with th.no_grad():  # lopsided from the start: every joint pushed one way, the mirror would push back
            model.policy.action_net.bias.copy_(th.linspace(-0.3, 0.3, mirror.action_index.size))
        model.learn(1024)
        results[weight] = asymmetry(model, venv, mirror)
        venv.close()
    assert results[5.0] < 0.3 * results[0.0], results


def test_train_logs_the_mirror_loss_to_tensorboard(tmp_path: Path) -> None:
    from humanoid_rl.train.cli import train

    config = tiny_config(tmp_path, "ppo", task="walk", physics_rate_hz=500.0, ent_coef=0.01, mirror_loss=1.0)
    assert train(config)["status"] == "finished"
    logged = list((tmp_path / config.run_name / "tb").rglob("events.out.tfevents*"))
    assert any(b"train/mirror_loss" in path.read_bytes() for path in logged)


def test_the_mirror_loss_is_refused_without_ppo_or_an_entropy_term(tmp_path: Path) -> None:
    from humanoid_rl.train.config import TrainConfigError

    with pytest.raises(TrainConfigError, match="mirror loss extends PPO"):
        tiny_config(tmp_path, "sac", task="walk", mirror_loss=1.0, ent_coef=0.01)
    with pytest.raises(TrainConfigError, match="mirror loss extends PPO"):
        tiny_config(tmp_path, "ppo", task="walk", mirror_loss=1.0, ent_coef=0.0)
