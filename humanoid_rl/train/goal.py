"""Training goal-conditioned policies (``--task reach``): hindsight experience replay, the network's inputs, the
normalization of the Dict observation, and the flat contract observation the exported model takes.

The networks read ``observation`` followed by ``desired_goal`` (``GoalFeatures``): that concatenation is the
contract's observation (its last term is the goal), so the exported graph takes one flat vector like every other
model and the policy node fills its goal term from a topic. ``achieved_goal`` only feeds HER's relabelling and
the reward; a policy that moves joint targets needs no hand position to pick them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from humanoid_rl.train.config import TrainConfig

__all__ = [
    "NETWORK_KEYS", "GoalFeatures", "flat_observation", "goal_model_kwargs", "is_goal_task", "load_kwargs",
    "reach_env_config", "split_observation",
]

# The Dict keys the networks read, in the order of the contract's flat observation; the only ones normalized.
NETWORK_KEYS = ("observation", "desired_goal")
GOAL_TASKS = ("reach",)
# Every step's goal is relabelled with probability n / (n + 1) = 0.8 (Andrychowicz et al. 2017's k = 4, "future").
HER_SAMPLED_GOALS = 4
HER_STRATEGY = "future"


def is_goal_task(task: str) -> bool:
    return task in GOAL_TASKS


class GoalFeatures(BaseFeaturesExtractor):
    """``observation`` and ``desired_goal`` side by side (the flat contract observation); no weights."""

    def __init__(self, observation_space: Any) -> None:
        super().__init__(observation_space, features_dim=sum(int(observation_space[k].shape[0]) for k in NETWORK_KEYS))

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        return th.cat([observations[key] for key in NETWORK_KEYS], dim=1)


def goal_model_kwargs(config: TrainConfig) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(policy, policy_kwargs, constructor arguments) a goal task adds: the Dict policy reading the contract's
    inputs, and HER's buffer if asked."""
    from stable_baselines3 import HerReplayBuffer

    extras: dict[str, Any] = {}
    if config.replay == "her":
        extras["replay_buffer_class"] = HerReplayBuffer
        extras["replay_buffer_kwargs"] = {"n_sampled_goal": HER_SAMPLED_GOALS, "goal_selection_strategy": HER_STRATEGY}
    return "MultiInputPolicy", {"features_extractor_class": GoalFeatures}, extras


def load_kwargs(replay: str, env: Any) -> dict[str, Any]:
    """``custom_objects`` to load a HER model without an environment (export, evaluation): SB3 builds the HER
    buffer at load and needs the environment for it; the policy does not, so a plain Dict buffer stands in."""
    if replay != "her" or env is not None:
        return {}
    from stable_baselines3.common.buffers import DictReplayBuffer

    return {"replay_buffer_class": DictReplayBuffer, "replay_buffer_kwargs": {}}


def reach_env_config(config: TrainConfig, episode_s: float | None = None) -> Any:
    """The ``ReachConfig`` of a training or evaluation environment."""
    from humanoid_rl.envs.reach import ReachConfig

    return ReachConfig(robot_config=config.robot_config or None,
                       episode_length_s=config.episode_s if episode_s is None else episode_s,
                       physics_rate_hz=config.physics_rate_hz or None,
                       initial_joint_noise_rad=config.initial_joint_noise_rad,
                       success_threshold_m=config.reach_threshold_m)


def flat_observation(obs: dict[str, np.ndarray]) -> np.ndarray:
    """The contract observation (``observation`` then ``desired_goal``) of a Dict observation, batched or not."""
    return np.concatenate([np.asarray(obs[key], np.float32) for key in NETWORK_KEYS], axis=-1)


def split_observation(flat: np.ndarray, n_observation: int) -> dict[str, np.ndarray]:
    """The network keys of a flat contract observation (batched); achieved_goal is not an input."""
    flat = np.asarray(flat, np.float32)
    return {"observation": flat[..., :n_observation], "desired_goal": flat[..., n_observation:]}
