"""Constrained RL: the safety costs, the shield in the training loop, and PPO-Lagrangian's multipliers,
advantages, checkpoints and exports (tiny budgets; the PPO vs PPO-Lagrangian comparison is
``python -m humanoid_rl.train.saferl_bench``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from train_fixtures import tiny_config

from humanoid_rl.envs.humanoid_env import EnvConfig, HumanoidEnv
from humanoid_rl.envs.pushes import PushConfig
from humanoid_rl.train.evaluate import sim_shield_params
from humanoid_rl.train.ppo_lagrangian import PPOLagrangian, combine_advantages, dual_ascent, gae
from humanoid_rl.train.safety import COST_NAMES, SafetyWrapper, step_costs


def test_a_multiplier_rises_while_its_episode_cost_exceeds_the_limit_and_falls_to_zero_below_it() -> None:
    lam = np.array([0.5, 0.2])
    limits = np.array([10.0, 5.0])
    # Hand-computed: 0.5 + 0.1 * (12 - 10) = 0.7; 0.2 + 0.1 * (3 - 5) = 0.0.
    lam = dual_ascent(lam, np.array([12.0, 3.0]), limits, lr=0.1)
    np.testing.assert_allclose(lam, [0.7, 0.0], atol=1e-12)
    lam = dual_ascent(lam, np.array([4.0, 0.0]), limits, lr=0.1)  # both below: projected onto 0, never negative
    np.testing.assert_allclose(lam, [0.1, 0.0], atol=1e-12)
    lam = dual_ascent(lam, np.array([4.0, 0.0]), limits, lr=0.1)
    np.testing.assert_array_equal(lam, [0.0, 0.0])


def test_advantages_combine_as_reward_minus_weighted_costs_over_one_plus_the_multipliers() -> None:
    reward = np.array([[1.0], [-2.0]])
    costs = np.array([[[0.5, 2.0]], [[0.0, -1.0]]])  # steps x envs x costs
    # (1 - (0.5*0.5 + 2*2)) / 3.5 = -1.0714...; (-2 - (0 + 2*-1)) / 3.5 = 0.
    np.testing.assert_allclose(combine_advantages(reward, costs, np.array([0.5, 2.0])),
                               [[-3.25 / 3.5], [0.0]])
    np.testing.assert_array_equal(combine_advantages(reward, costs, np.zeros(2)), reward)


def test_cost_advantages_equal_what_sb3s_rollout_buffer_computes_for_a_reward() -> None:
    from stable_baselines3.common.buffers import RolloutBuffer

    rng = np.random.default_rng(0)
    steps, envs = 7, 3
    buffer = RolloutBuffer(steps, gym.spaces.Box(-1, 1, (2,)), gym.spaces.Box(-1, 1, (1,)), n_envs=envs,
                           gamma=0.9, gae_lambda=0.8)
    buffer.rewards[:] = rng.normal(size=(steps, envs))
    buffer.values[:] = rng.normal(size=(steps, envs))
    buffer.episode_starts[:] = rng.random((steps, envs)) < 0.3
    last_values, dones = rng.normal(size=envs), np.array([True, False, False])
    import torch

    buffer.compute_returns_and_advantage(torch.as_tensor(last_values), dones)
    advantages, returns = gae(buffer.rewards[..., None], buffer.values[..., None], buffer.episode_starts,
                              last_values[:, None], dones.astype(float), 0.9, 0.8)
    np.testing.assert_allclose(advantages[..., 0], buffer.advantages, rtol=1e-5)
    np.testing.assert_allclose(returns[..., 0], buffer.returns, rtol=1e-5)


def test_step_costs_count_the_shields_thresholds_hand_computed() -> None:
    params = sim_shield_params()
    lower, upper = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    limits = np.array([10.0, 20.0])
    quiet = step_costs(intervened=False, joint_pos=np.array([0.0, 0.5]), lower=lower, upper=upper,
                       torques=np.array([5.0, -19.0]), effort_limits=limits, tilt_rad=params.tilt_warn - 0.01,
                       params=params)
    assert quiet == dict.fromkeys(COST_NAMES, 0.0)
    near = 1.0 - params.soft_margin / 2  # inside the soft margin
    loud = step_costs(intervened=True, joint_pos=np.array([0.0, near]), lower=lower, upper=upper,
                      torques=np.array([5.0, -20.0 * params.effort_scale]), effort_limits=limits,
                      tilt_rad=params.tilt_warn + 0.01, params=params)
    assert loud == dict.fromkeys(COST_NAMES, 1.0)


def _quiet_env(shield_in_loop: bool) -> SafetyWrapper:
    config = EnvConfig(backend="mujoco", randomize=False, sensor_noise=False, push=PushConfig(force_range_n=(0, 0)))
    return SafetyWrapper(HumanoidEnv("stand", config), shield_in_loop=shield_in_loop)


def test_a_robot_held_still_costs_nothing_and_one_thrown_to_its_limits_costs_joint_limit_effort_and_tilt() -> None:
    env = _quiet_env(shield_in_loop=False)
    env.reset(seed=0)
    for _ in range(25):
        *_, info = env.step(np.zeros(env.action_space.shape))
        assert info["costs"] == dict.fromkeys(COST_NAMES, 0.0)
    totals = dict.fromkeys(COST_NAMES, 0.0)
    high = env.action_space.high
    for step in range(100):  # every joint thrown between the ends of its range: the motors saturate, the robot falls
        _, _, terminated, _, info = env.step(high if step % 4 < 2 else -high)
        for name in COST_NAMES:
            totals[name] += info["costs"][name]
        if terminated:
            break
    env.close()
    assert terminated
    assert totals["joint_limit"] > 0 and totals["effort"] > 0 and totals["tilt"] > 0
    assert totals == info["episode_summary"]["costs"]  # the episode's sums ride on its summary
    assert totals["shield_intervention"] == 0.0  # the shadow shield is still ramping in (2 s): it judges nothing


def test_the_shield_in_the_loop_drives_the_motors_with_exactly_the_shield_filters_output() -> None:
    from humanoid_rl.core.shield_modes import ShieldMode

    env = _quiet_env(shield_in_loop=True)
    base = env.unwrapped
    applied: list[np.ndarray] = []
    outputs: list[Any] = []
    raw: list[np.ndarray] = []
    set_targets, shield_filter = base.sim.set_joint_targets, base.target_filter

    def record_targets(positions: np.ndarray, *args: Any) -> None:
        applied.append(np.array(positions))
        set_targets(positions, *args)

    def record_filter(env_: Any, targets: np.ndarray) -> Any:
        raw.append(targets.copy())
        outputs.append(shield_filter(env_, targets))
        return outputs[-1]

    base.sim.set_joint_targets, base.target_filter = record_targets, record_filter
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    stages: set[str] = set()
    for _ in range(130):  # 2 s of ramp (HOLD), then the policy's commands, jerky ones, through the filter
        *_, info = env.step(rng.uniform(-0.5, 0.5, env.action_space.shape))
        stages.update(info["shield_stages"])
    env.close()
    active = [i for i, out in enumerate(outputs) if out.mode is ShieldMode.ACTIVE and out.filter_result is not None]
    assert len(active) > 10
    for i in range(len(outputs)):
        np.testing.assert_array_equal(applied[i], outputs[i].positions)  # the motors get the shield's targets
    for i in active:  # in ACTIVE they are SafetyFilter's result for the policy's command
        np.testing.assert_array_equal(outputs[i].positions, outputs[i].filter_result.positions)
    assert any(not np.allclose(raw[i], applied[i]) for i in active)  # and it did change some commands
    assert "rate" in stages  # which the costs saw, named by stage


class _CostlyActions(gym.Env):
    """Ten-step episodes; reward 1 per step, cost 1 whenever the action is positive."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        obs = np.array([self.t / 10, 1.0], np.float32)
        return obs, 1.0, False, self.t >= 10, {"costs": {"positive": float(action[0] > 0)}}


def _lagrangian(limit: float, **kwargs: Any) -> PPOLagrangian:
    return PPOLagrangian("MlpPolicy", _CostlyActions(), cost_names=("positive",), cost_limits=(limit,),
                         multiplier_lr=0.05, n_steps=100, batch_size=50, n_epochs=2, seed=0, device="cpu", **kwargs)


def test_ppo_lagrangian_raises_the_multiplier_over_the_limit_and_saves_it_with_its_cost_critic(
    tmp_path: Path,
) -> None:
    model = _lagrangian(limit=0.0).learn(200)  # about half the actions are positive: ~5 per episode
    assert model.last_episode_costs[0] > 1.0
    assert model.multipliers[0] > 0.0
    model.save(tmp_path / "model.zip")
    loaded = PPOLagrangian.load(tmp_path / "model.zip", device="cpu")
    np.testing.assert_array_equal(loaded.multipliers, model.multipliers)
    for saved, restored in zip(model.cost_critic.parameters(), loaded.cost_critic.parameters(), strict=True):
        np.testing.assert_array_equal(saved.detach().numpy(), restored.detach().numpy())
    assert _lagrangian(limit=10.0).learn(200).multipliers[0] == 0.0  # never above the limit: stays 0


def test_ppo_lagrangian_refuses_an_environment_without_costs() -> None:
    model = PPOLagrangian("MlpPolicy", gym.make("Pendulum-v1"), n_steps=16, batch_size=16, device="cpu")
    with pytest.raises(KeyError, match="SafetyWrapper"):
        model.learn(16)


def _train_export_load(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    from humanoid_rl.policy import load_policy
    from humanoid_rl.train.cli import train
    from humanoid_rl.train.export import export_policy, resolve_checkpoint

    config = tiny_config(tmp_path, backend="mujoco", **overrides)
    metrics = train(config)
    model = tmp_path / "policy.onnx"
    export_policy(resolve_checkpoint(tmp_path / config.run_name), model, write_card=False, rollout_episodes=1,
                  rollout_s=0.5, n_random=50)
    env = HumanoidEnv("stand", EnvConfig(backend="mujoco"))
    policy = load_policy(model, env.contract)
    obs, _ = env.reset(seed=0)
    action = policy.act(obs)
    env.close()
    assert action.shape == env.action_space.shape and np.all(np.isfinite(action))
    return metrics


def test_a_tiny_ppo_lag_run_exports_and_loads_and_resume_continues_its_multipliers(tmp_path: Path) -> None:
    from humanoid_rl.train.cli import load_checkpoint, train

    metrics = _train_export_load(tmp_path, algo="ppo-lag", cost_limits=[0.0, 0.0, 0.0, 0.0])
    assert metrics["algo"] == "ppo-lag" and metrics["steps"] >= 256
    run_dir = tmp_path / "tiny-ppo-lag"
    saved = load_checkpoint(run_dir / "final", "ppo-lag")
    assert saved.cost_limits.tolist() == [0.0] * 4 and np.all(np.isfinite(saved.multipliers))
    saved.multipliers = np.array([1.0, 2.0, 3.0, 4.0])  # far above what 256 steps reach from 0
    saved.save(run_dir / "final" / "model.zip")
    config = dataclasses.replace(tiny_config(tmp_path, "ppo-lag", backend="mujoco", cost_limits=[0.0] * 4),
                                 total_timesteps=384)
    train(config, resume=run_dir)
    resumed = load_checkpoint(run_dir / "final", "ppo-lag")
    assert resumed.num_timesteps >= 384
    assert np.all(resumed.multipliers >= [1.0, 2.0, 3.0, 4.0])  # limits 0: they only rise, from where they were


def test_a_tiny_run_with_the_shield_in_the_loop_exports_and_loads(tmp_path: Path) -> None:
    metrics = _train_export_load(tmp_path, algo="ppo", shield_in_loop=True)
    assert metrics["status"] == "finished"


def test_cost_limits_of_the_wrong_count_or_sign_are_refused_naming_the_setting() -> None:
    import subprocess
    import sys

    from humanoid_rl.train.config import TrainConfig, TrainConfigError

    with pytest.raises(TrainConfigError, match="cost_limits"):
        TrainConfig(algo="ppo-lag", cost_limits=[1.0, 2.0])
    with pytest.raises(TrainConfigError, match="multiplier_lr"):
        TrainConfig(algo="ppo-lag", multiplier_lr=-1.0)
    done = subprocess.run([sys.executable, "-m", "humanoid_rl.cli", "train", "--algo", "ppo-lag", "--cost-limits",
                           "1", "-2", "3", "4"], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 2
    assert "cost_limits" in done.stderr and "Traceback" not in done.stderr
