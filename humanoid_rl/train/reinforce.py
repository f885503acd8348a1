"""REINFORCE with a learned baseline (Williams 1992; Sutton & Barto 2018, sec. 13.4), in one readable module.

Each update: collect ``n_steps`` per environment with the current stochastic policy, compute for every step the
discounted return ``G_t`` to the episode's end, and take ONE gradient step on

    loss = -mean(A_t * log pi(a_t | s_t))  +  vf_coef * mean((G_t - V(s_t))^2)  -  ent_coef * mean(entropy)

with the advantage ``A_t = G_t - V(s_t)`` (the baseline lowers the variance without biasing the gradient),
normalized over the batch. The returns are stable-baselines3's rollout buffer's with ``gae_lambda = 1`` (plain
discounted sums), where an episode still running at the end of a rollout is completed by the value estimate of
the state it reached (and a time-limit truncation likewise): that bootstrap is the one departure from textbook
Monte Carlo REINFORCE, needed because the rollouts (512 steps) are shorter than an episode (1000).

It is an SB3 ``OnPolicyAlgorithm`` with SB3's ``ActorCriticPolicy`` (a Gaussian actor and a value network), so
rollout collection, logging, checkpoints, ``--resume`` and ``humanoid-rl export`` work as for PPO and A2C; the
learning rule (``train``) is ours. Compared with A2C it uses full returns instead of n-step TD targets, and with
PPO it takes one unclipped step per batch instead of several clipped epochs.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import explained_variance

__all__ = ["Reinforce"]


class Reinforce(OnPolicyAlgorithm):
    policy_aliases: ClassVar[dict[str, type]] = {"MlpPolicy": ActorCriticPolicy}

    def __init__(self, policy: str | type[ActorCriticPolicy], env: Any, learning_rate: float = 3e-4,
                 n_steps: int = 512, gamma: float = 0.99, ent_coef: float = 0.0, vf_coef: float = 0.5,
                 max_grad_norm: float = 0.5, tensorboard_log: str | None = None,
                 policy_kwargs: dict[str, Any] | None = None, verbose: int = 0, seed: int | None = None,
                 device: str = "auto", _init_setup_model: bool = True, **kwargs: Any) -> None:
        kwargs.pop("gae_lambda", None)  # REINFORCE's returns are lambda = 1 by definition
        super().__init__(policy, env, learning_rate=learning_rate, n_steps=n_steps, gamma=gamma, gae_lambda=1.0,
                         ent_coef=ent_coef, vf_coef=vf_coef, max_grad_norm=max_grad_norm, use_sde=False,
                         sde_sample_freq=-1, tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs,
                         verbose=verbose, seed=seed, device=device, _init_setup_model=False,
                         supported_action_spaces=(spaces.Box, spaces.Discrete), **kwargs)
        if _init_setup_model:
            self._setup_model()

    def train(self) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        # The whole rollout is one batch: one policy-gradient step per collection.
        batch = next(iter(self.rollout_buffer.get(batch_size=None)))
        actions = batch.actions
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        values, log_prob, entropy = self.policy.evaluate_actions(batch.observations, actions)
        values = values.flatten()
        returns = batch.returns  # G_t
        advantages = returns - values.detach()
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = -(advantages * log_prob).mean()
        value_loss = F.mse_loss(returns, values)
        entropy_loss = -th.mean(entropy) if entropy is not None else -th.mean(-log_prob)
        loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

        self.policy.optimizer.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        self._n_updates += 1

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/policy_loss", policy_loss.item())
        self.logger.record("train/value_loss", value_loss.item())
        self.logger.record("train/entropy_loss", entropy_loss.item())
        self.logger.record("train/mean_return_G", returns.mean().item())
        self.logger.record("train/explained_variance",
                           float(explained_variance(self.rollout_buffer.values.flatten(),
                                                    self.rollout_buffer.returns.flatten())))
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
