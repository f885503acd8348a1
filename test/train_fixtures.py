"""Tiny training runs shared by the train/export tests (a few hundred steps: seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from humanoid_rl.train.config import TrainConfig


def tiny_config(run_root: Path, algo: str = "ppo", **overrides: Any) -> TrainConfig:
    settings: dict[str, Any] = {
        "algo": algo,
        "n_envs": 1,
        "total_timesteps": 256,
        "n_steps": 128,
        "batch_size": 64,
        "n_epochs": 2,
        "learning_starts": 64,
        "buffer_size": 2_000,
        "episode_s": 1.0,
        "eval_freq": 128,
        "eval_episodes": 1,
        "eval_episode_s": 0.5,
        "checkpoint_freq": 128,
        "run_root": str(run_root),
        "run_name": f"tiny-{algo}",
        "seed": 3,
    }
    settings.update(overrides)
    return TrainConfig(**settings)
