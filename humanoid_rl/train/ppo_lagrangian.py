"""PPO-Lagrangian: PPO under per-episode cost limits, one learned multiplier per cost.

The environment reports named costs per step in ``info["costs"]`` (``humanoid_rl.train.safety``). Each rollout:

1. a cost critic (one head per cost, its own network) estimates each cost's discounted value; GAE gives cost
   advantages ``A_ci`` as it gives the reward advantage ``A_r`` (time-limit truncations bootstrapped alike);
2. each multiplier takes a dual-ascent step on the mean cost of the episodes finished since the last update,
   ``λ_i ← max(0, λ_i + lr_λ · (J_ci − d_i))`` (:func:`dual_ascent`);
3. the policy follows ``(A_r − Σ λ_i A_ci) / (1 + Σ λ_i)`` (:func:`combine_advantages`) with PPO's clipped
   objective, unchanged; the reward critic learns the reward returns, the cost critic the cost returns.

The multipliers and the cost critic are saved with the model, so ``--resume`` continues with them; the actor is
PPO's ``ActorCriticPolicy``, exported to ONNX as PPO's is. An episode cut short by a fall costs only the steps
it lasted: a limit can be met by falling early, which the reward (survival pays every step) outweighs.
TensorBoard: ``lagrangian/multiplier_<cost>``, ``costs/episode_<cost>`` and ``lagrangian/cost_value_loss``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from torch import nn

from humanoid_rl.train.config import DEFAULT_COST_LIMITS
from humanoid_rl.train.safety import COST_NAMES

__all__ = ["PPOLagrangian", "combine_advantages", "dual_ascent", "gae"]


def dual_ascent(multipliers: np.ndarray, episode_costs: np.ndarray, limits: np.ndarray, lr: float) -> np.ndarray:
    """One projected gradient step of the dual: ``max(0, λ + lr · (J − d))`` per cost."""
    return np.maximum(0.0, np.asarray(multipliers) + lr * (np.asarray(episode_costs) - np.asarray(limits)))


def combine_advantages(reward_advantages: np.ndarray, cost_advantages: np.ndarray,
                       multipliers: np.ndarray) -> np.ndarray:
    """``(A_r − Σ λ_i A_ci) / (1 + Σ λ_i)``; ``cost_advantages`` has the costs on its last axis. Dividing by
    ``1 + Σ λ`` keeps the scale of the step as the multipliers grow."""
    lam = np.asarray(multipliers, dtype=np.float64)
    return (reward_advantages - cost_advantages @ lam) / (1.0 + lam.sum())


def gae(signal: np.ndarray, values: np.ndarray, episode_starts: np.ndarray, last_values: np.ndarray,
        last_dones: np.ndarray, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """GAE(λ) advantages and λ-returns of ``signal`` (steps × envs [× costs]) as SB3's rollout buffer computes
    them for the reward; ``episode_starts[t]`` marks the first step of an episode."""
    advantages = np.zeros_like(values, dtype=np.float64)
    last = np.zeros_like(values[0], dtype=np.float64)
    extra = (1,) * (values.ndim - 2)  # broadcast the per-env flags over the cost axis
    for step in reversed(range(len(signal))):
        if step == len(signal) - 1:
            non_terminal, next_values = 1.0 - last_dones.reshape(-1, *extra), last_values
        else:
            non_terminal, next_values = 1.0 - episode_starts[step + 1].reshape(-1, *extra), values[step + 1]
        delta = signal[step] + gamma * next_values * non_terminal - values[step]
        last = delta + gamma * lam * non_terminal * last
        advantages[step] = last
    return advantages, advantages + values


class _CostRecorder(BaseCallback):
    """Reads ``info["costs"]`` each rollout step: per-step costs, time-limit terminal observations, and the
    costs of the episodes that end."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__()
        self.names = tuple(names)
        self.running: np.ndarray | None = None
        self.finished: list[np.ndarray] = []  # per-episode cost sums since the last multiplier update

    def start(self, n_steps: int, n_envs: int) -> None:
        self.costs = np.zeros((n_steps, n_envs, len(self.names)))
        self.truncated: list[tuple[int, int, np.ndarray]] = []
        self.step_index = 0
        if self.running is None:
            self.running = np.zeros((n_envs, len(self.names)))

    def _on_step(self) -> bool:
        assert self.running is not None
        for env, (info, done) in enumerate(zip(self.locals["infos"], self.locals["dones"], strict=True)):
            costs = info.get("costs")
            if costs is None:
                raise KeyError("PPO-Lagrangian needs info['costs'] from every step: wrap the environment in "
                               "humanoid_rl.train.safety.SafetyWrapper")
            row = np.array([costs[name] for name in self.names], dtype=np.float64)
            self.costs[self.step_index, env] = row
            self.running[env] += row
            if done:
                self.finished.append(self.running[env].copy())
                self.running[env] = 0.0
                if info.get("TimeLimit.truncated", False) and info.get("terminal_observation") is not None:
                    self.truncated.append((self.step_index, env, info["terminal_observation"]))
        self.step_index += 1
        return True


class PPOLagrangian(PPO):
    """SB3's PPO with cost critics and Lagrange multipliers (module docstring). ``cost_names`` are keys of
    ``info["costs"]``, ``cost_limits`` the allowed mean episode cost of each, ``multiplier_lr`` the dual step."""

    def __init__(self, policy: Any, env: Any, *, cost_names: Sequence[str] = COST_NAMES,
                 cost_limits: Sequence[float] = DEFAULT_COST_LIMITS, multiplier_lr: float = 0.01,
                 cost_net_arch: Sequence[int] = (256, 128), **kwargs: Any) -> None:
        if len(cost_limits) != len(cost_names):
            raise ValueError(f"{len(cost_limits)} cost limits for {len(cost_names)} costs {list(cost_names)}: "
                             "give one limit per cost")
        self.cost_names = tuple(cost_names)
        self.cost_limits = np.asarray(cost_limits, dtype=np.float64)
        self.multiplier_lr = float(multiplier_lr)
        self.cost_net_arch = tuple(int(n) for n in cost_net_arch)
        self.multipliers = np.zeros(len(self.cost_names))
        self.last_episode_costs = np.full(len(self.cost_names), np.nan)
        super().__init__(policy, env, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        layers: list[nn.Module] = []
        width = int(np.prod(self.observation_space.shape))
        for hidden in self.cost_net_arch:
            layers += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        self.cost_critic = nn.Sequential(*layers, nn.Linear(width, len(self.cost_names))).to(self.device)
        self.cost_critic_optimizer = torch.optim.Adam(self.cost_critic.parameters(), lr=self.lr_schedule(1.0))
        self._cost_recorder = _CostRecorder(self.cost_names)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_cost_recorder", "_cost_returns"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "cost_critic", "cost_critic_optimizer"], variables

    def _cost_values(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            tensor = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
            return self.cost_critic(tensor).cpu().numpy().astype(np.float64)

    def collect_rollouts(self, env: Any, callback: BaseCallback, rollout_buffer: Any, n_rollout_steps: int) -> bool:
        recorder = self._cost_recorder
        recorder.init_callback(self)
        recorder.start(n_rollout_steps, env.num_envs)
        both = CallbackList([callback, recorder])
        both.model = self  # not init_callback: that would initialise `callback` a second time
        if not super().collect_rollouts(env, both, rollout_buffer, n_rollout_steps):
            return False
        buffer = rollout_buffer
        costs = recorder.costs
        for step, env_index, terminal_obs in recorder.truncated:  # bootstrap a time limit, as SB3 does the reward
            costs[step, env_index] += self.gamma * self._cost_values(terminal_obs[None])[0]
        values = self._cost_values(buffer.observations)
        last_values = self._cost_values(self._last_obs)
        cost_advantages, self._cost_returns = gae(costs, values, buffer.episode_starts, last_values,
                                                  np.asarray(self._last_episode_starts, dtype=np.float64),
                                                  self.gamma, self.gae_lambda)
        if recorder.finished:
            self.last_episode_costs = np.mean(recorder.finished, axis=0)
            self.multipliers = dual_ascent(self.multipliers, self.last_episode_costs, self.cost_limits,
                                           self.multiplier_lr)
            recorder.finished = []
        buffer.advantages[:] = combine_advantages(buffer.advantages, cost_advantages, self.multipliers)
        for name, multiplier, cost in zip(self.cost_names, self.multipliers, self.last_episode_costs, strict=True):
            self.logger.record(f"lagrangian/multiplier_{name}", float(multiplier))
            self.logger.record(f"costs/episode_{name}", float(cost))
        return True

    def train(self) -> None:
        super().train()
        obs = self.rollout_buffer.observations.reshape(-1, *self.observation_space.shape)
        targets = self._cost_returns.reshape(len(obs), -1)
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        targets_t = torch.as_tensor(targets, dtype=torch.float32, device=self.device)
        losses = []
        for _ in range(self.n_epochs):
            for batch in torch.randperm(len(obs), device=self.device).split(self.batch_size):
                loss = nn.functional.mse_loss(self.cost_critic(obs_t[batch]), targets_t[batch])
                self.cost_critic_optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.cost_critic.parameters(), self.max_grad_norm)
                self.cost_critic_optimizer.step()
                losses.append(float(loss.detach()))
        self.logger.record("lagrangian/cost_value_loss", float(np.mean(losses)))
