"""SAC, TD3, DDPG and DQN with prioritized experience replay (``humanoid-rl train --replay prioritized``).

Each class is the stable-baselines3 algorithm with its ``train()`` copied and changed in three places only,
marked ``# PER``: the batch comes from a ``PrioritizedReplayBuffer`` with beta annealed by the run's progress,
the critic (Q) loss is the importance-sampling weighted mean of the per-sample losses, and the batch's absolute
TD errors (mean over twin critics) become its new priorities. The rest (actor, entropy, target updates, logging)
is SB3's loop as of stable-baselines3 2.9, shortened; diff against it when upgrading.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3 import DDPG, DQN, SAC, TD3
from stable_baselines3.common.utils import polyak_update

from humanoid_rl.train.replay import PrioritizedReplayBuffer, PrioritizedSamples

__all__ = ["PRIORITIZED", "PrioritizedDDPG", "PrioritizedDQN", "PrioritizedSAC", "PrioritizedTD3", "per_kwargs"]


def per_kwargs(alpha: float, beta0: float, eps: float) -> dict[str, Any]:
    """The constructor arguments that give an off-policy SB3 algorithm the prioritized buffer."""
    return {"replay_buffer_class": PrioritizedReplayBuffer,
            "replay_buffer_kwargs": {"alpha": alpha, "beta0": beta0, "eps": eps}}


def _prioritized_batch(model: Any, batch_size: int) -> PrioritizedSamples:
    buffer = model.replay_buffer
    if not isinstance(buffer, PrioritizedReplayBuffer):
        raise TypeError(f"{type(model).__name__} needs a PrioritizedReplayBuffer, got {type(buffer).__name__}")
    buffer.set_progress(model._current_progress_remaining)
    return buffer.sample(batch_size, env=model._vec_normalize_env)


def _record_per(model: Any, weights: list[float]) -> None:
    model.logger.record("train/per_beta", model.replay_buffer.beta)
    model.logger.record("train/per_mean_is_weight", float(np.mean(weights)))


class PrioritizedSAC(SAC):
    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]
        self._update_learning_rate(optimizers)
        ent_coefs, actor_losses, critic_losses, mean_weights = [], [], [], []
        for gradient_step in range(gradient_steps):
            replay_data = _prioritized_batch(self, batch_size)  # PER
            if self.use_sde:
                self.actor.reset_noise()
            actions_pi, log_prob = self.actor.action_log_prob(replay_data.observations)
            log_prob = log_prob.reshape(-1, 1)
            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
            else:
                ent_coef = self.ent_coef_tensor
            ent_coefs.append(ent_coef.item())
            if ent_coef_loss is not None and self.ent_coef_optimizer is not None:
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()
            with th.no_grad():
                next_actions, next_log_prob = self.actor.action_log_prob(replay_data.next_observations)
                next_q_values = th.cat(self.critic_target(replay_data.next_observations, next_actions), dim=1)
                next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
                next_q_values = next_q_values - ent_coef * next_log_prob.reshape(-1, 1)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * self.gamma * next_q_values
            current_q_values = self.critic(replay_data.observations, replay_data.actions)
            # PER: weighted squared errors; new priorities from the TD errors.
            critic_loss = 0.5 * sum((replay_data.weights * (q - target_q_values) ** 2).mean() for q in current_q_values)
            td_errors = th.stack([(q - target_q_values).abs() for q in current_q_values]).mean(dim=0)
            self.replay_buffer.update_priorities(replay_data.indices, td_errors.detach().cpu().numpy())
            mean_weights.append(replay_data.weights.mean().item())
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            q_values_pi = th.cat(self.critic(replay_data.observations, actions_pi), dim=1)
            min_qf_pi, _ = th.min(q_values_pi, dim=1, keepdim=True)
            actor_loss = (ent_coef * log_prob - min_qf_pi).mean()
            actor_losses.append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        _record_per(self, mean_weights)


def _td3_train(self: Any, gradient_steps: int, batch_size: int = 100) -> None:
    """TD3's loop (DDPG is TD3 with one critic, no target smoothing and no policy delay)."""
    self.policy.set_training_mode(True)
    self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
    actor_losses, critic_losses, mean_weights = [], [], []
    for _ in range(gradient_steps):
        self._n_updates += 1
        replay_data = _prioritized_batch(self, batch_size)  # PER
        with th.no_grad():
            noise = replay_data.actions.clone().data.normal_(0, self.target_policy_noise)
            noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
            next_actions = (self.actor_target(replay_data.next_observations) + noise).clamp(-1, 1)
            next_q_values = th.cat(self.critic_target(replay_data.next_observations, next_actions), dim=1)
            next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
            target_q_values = replay_data.rewards + (1 - replay_data.dones) * self.gamma * next_q_values
        current_q_values = self.critic(replay_data.observations, replay_data.actions)
        # PER: weighted squared errors; new priorities from the TD errors.
        critic_loss = sum((replay_data.weights * (q - target_q_values) ** 2).mean() for q in current_q_values)
        td_errors = th.stack([(q - target_q_values).abs() for q in current_q_values]).mean(dim=0)
        self.replay_buffer.update_priorities(replay_data.indices, td_errors.detach().cpu().numpy())
        mean_weights.append(replay_data.weights.mean().item())
        critic_losses.append(critic_loss.item())
        self.critic.optimizer.zero_grad()
        critic_loss.backward()
        self.critic.optimizer.step()
        if self._n_updates % self.policy_delay == 0:
            actor_loss = -self.critic.q1_forward(replay_data.observations, self.actor(replay_data.observations)).mean()
            actor_losses.append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
            polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
            polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
            polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)
    self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
    if actor_losses:
        self.logger.record("train/actor_loss", np.mean(actor_losses))
    self.logger.record("train/critic_loss", np.mean(critic_losses))
    _record_per(self, mean_weights)


class PrioritizedTD3(TD3):
    train = _td3_train


class PrioritizedDDPG(DDPG):
    train = _td3_train


class PrioritizedDQN(DQN):
    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses, mean_weights = [], []
        for _ in range(gradient_steps):
            replay_data = _prioritized_batch(self, batch_size)  # PER
            with th.no_grad():
                next_q_values, _ = self.q_net_target(replay_data.next_observations).max(dim=1)
                target_q_values = (replay_data.rewards
                                   + (1 - replay_data.dones) * self.gamma * next_q_values.reshape(-1, 1))
            current_q_values = th.gather(self.q_net(replay_data.observations), dim=1,
                                         index=replay_data.actions.long())
            # PER: weighted Huber loss; new priorities from the TD errors.
            loss = (replay_data.weights * F.smooth_l1_loss(current_q_values, target_q_values, reduction="none")).mean()
            td_errors = (current_q_values - target_q_values).abs().detach().cpu().numpy()
            self.replay_buffer.update_priorities(replay_data.indices, td_errors)
            mean_weights.append(replay_data.weights.mean().item())
            losses.append(loss.item())
            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
        _record_per(self, mean_weights)


PRIORITIZED: dict[str, type] = {"sac": PrioritizedSAC, "td3": PrioritizedTD3, "ddpg": PrioritizedDDPG,
                                "dqn": PrioritizedDQN}
