"""``train --init-from`` a checkpoint of another task (stand -> walk, walk -> stand): transfer what fits.

The two tasks' observations differ (walk adds the gait clock; stand's velocity command is always zero), so the
input layers are mapped column by column through both contracts' ``term_slices()``: an observation value that the
source policy saw vary (same term, same width, non-zero variance in its normalization statistics) keeps its
trained input weights and its statistics; every other one keeps the fresh network's weights and unit statistics.
Layers of equal shape (hidden layers, action and value heads, log std) are copied. ``--freeze-shared-steps N``
holds every copied value still for the first N steps, so the new inputs' weights adapt before the rest moves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from humanoid_rl.core.contract import ContractMismatchError, PolicyContract
from humanoid_rl.train.config import TrainConfig

__all__ = ["FreezeSharedCallback", "observation_map", "task_contract", "transfer_from_checkpoint"]

# Below this variance the source never saw the value change (a constant input: no trained weight, no statistics).
MIN_SOURCE_VARIANCE = 1e-6


def task_contract(config: TrainConfig) -> PolicyContract:
    """The observation/action contract of ``config``'s task, from the environment itself (one fact)."""
    from humanoid_rl.train.cli import ENV_IDS, _make_env, env_config

    env = _make_env(ENV_IDS[config.task], env_config(config))
    try:
        return env.unwrapped.contract
    finally:
        env.close()


def source_contract(checkpoint: Path, source_config: TrainConfig) -> PolicyContract:
    """The contract the checkpoint was trained with: its contract.json, or (checkpoints from before it was saved)
    its task's contract as the code builds it now."""
    import json

    from humanoid_rl.core.contract_io import contract_from_dict
    from humanoid_rl.train.callbacks import CHECKPOINT_CONTRACT

    path = checkpoint / CHECKPOINT_CONTRACT
    if path.is_file():
        return contract_from_dict(json.loads(path.read_text(encoding="utf-8")))
    return task_contract(source_config)


def _source_config(config: TrainConfig, source_info: dict[str, Any]) -> TrainConfig:
    import dataclasses

    run_dir = source_info.get("run_dir")
    if run_dir is not None and (Path(run_dir) / "config.yaml").is_file():  # its robot, gait period, rates
        return TrainConfig.load_yaml(Path(run_dir) / "config.yaml")
    return dataclasses.replace(config, task=source_info["task"])


def needs_transfer(checkpoint: Path, source_info: dict[str, Any], config: TrainConfig) -> bool:
    """Whether ``--init-from checkpoint`` must map layers (another task, or another observation layout) rather
    than continue the network as it is."""
    if source_info.get("task") != config.task:
        return True
    source = source_contract(checkpoint, _source_config(config, source_info))
    return [(t.name, t.size) for t in source.terms] != [(t.name, t.size) for t in task_contract(config).terms]


def observation_map(source: PolicyContract, target: PolicyContract) -> tuple[np.ndarray, np.ndarray]:
    """(target indices, source indices) of the observation values both contracts share, term by term."""
    if source.frame_stack != target.frame_stack:
        raise ContractMismatchError([f"frame_stack {source.frame_stack} (source) != {target.frame_stack} (target)"],
                                    context="--init-from: the observations cannot be mapped")
    src_slices, dst_slices = source.term_slices(), target.term_slices()
    dst_idx: list[int] = []
    src_idx: list[int] = []
    for frame in range(target.frame_stack):
        for name, dst in dst_slices.items():
            src = src_slices.get(name)
            if src is None or src.stop - src.start != dst.stop - dst.start:
                continue  # a new term (or a different history): fresh weights
            dst_idx.extend(range(frame * target.frame_size + dst.start, frame * target.frame_size + dst.stop))
            src_idx.extend(range(frame * source.frame_size + src.start, frame * source.frame_size + src.stop))
    return np.asarray(dst_idx, dtype=np.intp), np.asarray(src_idx, dtype=np.intp)


def _copy_parameters(source: torch.nn.Module, target: torch.nn.Module, n_obs: tuple[int, int], n_actions: int,
                     dst_idx: np.ndarray, src_idx: np.ndarray) -> dict[str, torch.Tensor]:
    """Copies what fits into ``target``'s parameters; returns, per parameter, the mask of copied entries.

    An input layer is a matrix whose inputs are the observation, followed by nothing (actors, value functions)
    or by the action (SAC/TD3/DDPG critics): its observation columns go by the map, the action columns as they
    are. Any other parameter is copied when its shape is the same."""
    src_params = dict(source.named_parameters())
    masks: dict[str, torch.Tensor] = {}
    src_obs, dst_obs = n_obs
    with torch.no_grad():
        for name, dst in target.named_parameters():
            src = src_params.get(name)
            if src is None:
                continue
            mask = torch.zeros_like(dst, dtype=torch.bool)
            tail = dst.shape[1] - dst_obs if dst.ndim == 2 else -1
            if (src.ndim == 2 and tail in (0, n_actions) and src.shape[0] == dst.shape[0]
                    and src.shape[1] - src_obs == tail):
                d_cols = torch.as_tensor(np.concatenate([dst_idx, dst_obs + np.arange(tail)]), dtype=torch.long)
                s_cols = torch.as_tensor(np.concatenate([src_idx, src_obs + np.arange(tail)]), dtype=torch.long)
                dst[:, d_cols] = src[:, s_cols]
                mask[:, d_cols] = True
            elif src.shape == dst.shape:
                dst.copy_(src)
                mask[...] = True
            else:
                continue
            masks[name] = mask
    return masks


def transfer_from_checkpoint(model: Any, env: Any, checkpoint: Path, config: TrainConfig,
                             source_info: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Loads the checkpoint (``source_info``: its info.json, task and run directory) and transfers what fits
    into the fresh ``model`` and its ``VecNormalize`` ``env``; returns the masks of the copied parameter entries
    (what freezing holds)."""
    from humanoid_rl.train.cli import load_checkpoint

    source_config = _source_config(config, source_info)
    source_contract_, target_contract = source_contract(checkpoint, source_config), task_contract(config)
    problems = source_contract_.robot_mismatches(target_contract)
    if problems:
        raise ContractMismatchError(problems, context=f"--init-from {checkpoint}: another robot")
    source = load_checkpoint(checkpoint, config.algo)
    stats = _load_stats(checkpoint)
    dst_idx, src_idx = observation_map(source_contract_, target_contract)
    seen = stats.obs_rms.var[src_idx] > MIN_SOURCE_VARIANCE  # the source saw these vary
    dst_idx, src_idx = dst_idx[seen], src_idx[seen]
    masks = _copy_parameters(source.policy, model.policy, (source_contract_.n_obs, target_contract.n_obs),
                             target_contract.n_actions, dst_idx, src_idx)
    # Observation statistics of the shared values; the new ones start at mean 0, variance 1 (the contract scales
    # every term to order one). The reward statistics are the new task's own.
    env.obs_rms.mean[dst_idx] = stats.obs_rms.mean[src_idx]
    env.obs_rms.var[dst_idx] = stats.obs_rms.var[src_idx]
    env.obs_rms.count = stats.obs_rms.count
    copied = sum(int(m.sum()) for m in masks.values())
    total = sum(p.numel() for p in model.policy.parameters())
    print(f"transferred {copied} of {total} parameters and {len(dst_idx)} of {target_contract.n_obs} observation "
          f"statistics from the {source_config.task} checkpoint {checkpoint}", flush=True)
    return masks


def _load_stats(checkpoint: Path) -> Any:
    """The source's VecNormalize (its statistics only: no environment is attached)."""
    import pickle

    from humanoid_rl.train.callbacks import VECNORMALIZE_FILE

    with (checkpoint / VECNORMALIZE_FILE).open("rb") as f:
        return pickle.load(f)  # noqa: S301 - our own checkpoint file, as VecNormalize.load reads it


class FreezeSharedCallback(BaseCallback):
    """Zeroes the gradient of the transferred entries in the updates of the first ``steps`` environment steps
    (Adam then moves them by exactly zero), then lets them train."""

    def __init__(self, masks: dict[str, torch.Tensor], steps: int) -> None:
        super().__init__()
        self.masks = masks
        self.steps = steps
        self._handles: list[Any] = []
        self._start = 0

    def _on_training_start(self) -> None:
        self._start = self.model.num_timesteps
        params = dict(self.model.policy.named_parameters())
        for name, mask in self.masks.items():
            if params[name].requires_grad:
                keep = (~mask).to(params[name].dtype)
                self._handles.append(params[name].register_hook(lambda grad, keep=keep: grad * keep))

    @property
    def frozen(self) -> bool:
        return bool(self._handles)

    def _on_step(self) -> bool:
        # Strictly past N: the update of a rollout that ends at step N still runs frozen.
        if self._handles and self.model.num_timesteps - self._start > self.steps:
            for handle in self._handles:
                handle.remove()
            self._handles = []
            print(f"[transfer] shared layers unfrozen at {self.model.num_timesteps} steps", flush=True)
        return True
