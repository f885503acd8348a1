"""Which model class a run trains, and the options beyond stable-baselines3's defaults: DQN on the discrete task,
our REINFORCE, prioritized replay, Ornstein-Uhlenbeck exploration noise, and the replay buffer in checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from humanoid_rl.train.config import Algorithm, TrainConfig

__all__ = [
    "algorithm_class", "build_dqn", "load_replay_buffer", "off_policy_extras", "schedule_warnings", "task_env_id",
]


def algorithm_class(algo: str, replay: str = "uniform") -> Any:
    """The model class of ``algo``: SB3's or sb3-contrib's, ours (REINFORCE, PPO-Lagrangian), or SB3's with
    prioritized replay."""
    import importlib

    algorithm = Algorithm(algo)
    if algorithm is Algorithm.REINFORCE:
        from humanoid_rl.train.reinforce import Reinforce

        return Reinforce
    if algorithm is Algorithm.PPO_LAG:
        from humanoid_rl.train.ppo_lagrangian import PPOLagrangian

        return PPOLagrangian
    if replay == "prioritized":
        from humanoid_rl.train.prioritized import PRIORITIZED

        return PRIORITIZED[algo]
    return getattr(importlib.import_module("sb3_contrib" if algorithm.contrib else "stable_baselines3"),
                   algorithm.class_name)


def task_env_id(config: TrainConfig) -> str:
    """The gymnasium id a run trains on: the discrete-action variant for DQN."""
    from humanoid_rl.envs import REACH_ID, STAND_DISCRETE_ID, STAND_ID, WALK_DISCRETE_ID, WALK_ID

    if config.task == "reach":
        return REACH_ID
    discrete = config.algorithm is Algorithm.DQN
    return {"stand": STAND_DISCRETE_ID if discrete else STAND_ID,
            "walk": WALK_DISCRETE_ID if discrete else WALK_ID}[config.task]


def off_policy_extras(config: TrainConfig, env: Any) -> dict[str, Any]:
    """Constructor arguments of SAC/TD3/DDPG/DQN for ``--replay`` and, for TD3/DDPG, the exploration noise."""
    import numpy as np
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    extras: dict[str, Any] = {}
    if config.replay == "prioritized":
        from humanoid_rl.train.prioritized import per_kwargs

        extras.update(per_kwargs(config.per_alpha, config.per_beta0, config.per_eps))
    if config.algorithm in (Algorithm.TD3, Algorithm.DDPG):
        n_actions = env.action_space.shape[0]
        sigma = config.action_noise_std * (env.action_space.high - env.action_space.low) / 2.0
        if config.action_noise == "ou":  # temporally correlated: consecutive steps push the same way
            extras["action_noise"] = OrnsteinUhlenbeckActionNoise(np.zeros(n_actions), sigma, theta=config.ou_theta,
                                                                  dt=1.0)
        else:
            extras["action_noise"] = NormalActionNoise(np.zeros(n_actions), sigma)
    return extras


def build_dqn(config: TrainConfig, env: Any, off_policy: dict[str, Any], common: dict[str, Any]) -> Any:
    """DQN on the discrete posture actions; the target network tracks softly (tau) every step like SAC's."""
    return algorithm_class("dqn", config.replay)(
        "MlpPolicy", env, policy_kwargs={"net_arch": [int(n) for n in config.net_arch]},
        exploration_fraction=config.exploration_fraction, exploration_final_eps=config.exploration_final_eps,
        target_update_interval=1, max_grad_norm=10.0, **off_policy, **off_policy_extras(config, env), **common)


def load_replay_buffer(model: Any, checkpoint: Path) -> bool:
    """Load the replay buffer saved with ``checkpoint`` into ``model`` (off-policy); whether there was one."""
    from humanoid_rl.train.callbacks import REPLAY_BUFFER_FILE

    path = checkpoint / REPLAY_BUFFER_FILE
    if not hasattr(model, "load_replay_buffer") or not path.is_file():
        return False
    model.load_replay_buffer(path)
    return True


def schedule_warnings(config: TrainConfig) -> list[str]:
    """Schedules laid over ``--total-timesteps`` that a time budget may cut short (DQN's epsilon, PER's beta)."""
    if not config.time_budget_min > 0:
        return []
    scheduled = []
    if config.algorithm is Algorithm.DQN:
        scheduled.append(f"DQN's epsilon falls over the first {config.exploration_fraction:g} of them")
    if config.replay == "prioritized":
        scheduled.append("prioritized replay's beta reaches 1 at their end")
    if not scheduled:
        return []
    return [f"--time-budget-min {config.time_budget_min:g} may end the run long before --total-timesteps "
            f"{config.total_timesteps}, and {' and '.join(scheduled)}. Fix: set --total-timesteps near the steps the "
            "budget allows"]
