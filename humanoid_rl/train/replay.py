"""Proportional prioritized experience replay (Schaul et al. 2016, "Prioritized Experience Replay", sec. 3.3).

Transition ``i`` is drawn with probability ``P(i) = p_i^alpha / sum_k p_k^alpha``, where ``p_i = |delta_i| + eps``
is its latest absolute TD error (new transitions get the largest priority seen so far, so each is replayed at
least once soon). The bias of that non-uniform sampling is corrected by importance-sampling weights
``w_i = (N * P(i))^-beta``, normalized by the batch's largest (so ``w <= 1``: the updates only shrink), with
``beta`` annealed from ``beta0`` to 1 over the run by the algorithm (``humanoid_rl.train.prioritized``).

stable-baselines3 has no PER: ``PrioritizedReplayBuffer`` is its ``ReplayBuffer`` (same storage, same
normalization, saved and loaded with the model's replay buffer) plus a sum tree over the ``buffer_size * n_envs``
stored transitions.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

__all__ = ["PrioritizedReplayBuffer", "PrioritizedSamples", "SumTree"]


class SumTree:
    """Binary tree whose leaves are priorities and whose inner nodes are the sums below them: draw a leaf with
    probability proportional to its priority, and update priorities, both in O(log n) (vectorized over a batch)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.leaves = 1 << max(0, (self.capacity - 1).bit_length())  # a power of two >= capacity
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)  # node 1 is the root, leaf i is node leaves + i

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def priorities(self, indices: np.ndarray) -> np.ndarray:
        return self.tree[self.leaves + np.asarray(indices)]

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        nodes = self.leaves + np.asarray(indices, dtype=np.int64)
        self.tree[nodes] = priorities  # a repeated index keeps its last priority
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    def find(self, values: np.ndarray) -> np.ndarray:
        """The leaf each value in [0, total) falls into, walking down from the root."""
        values = np.array(values, dtype=np.float64)
        nodes = np.ones(len(values), dtype=np.int64)
        while nodes[0] < self.leaves:
            left = self.tree[2 * nodes]
            right = values >= left
            values -= np.where(right, left, 0.0)
            nodes = 2 * nodes + right
        return nodes - self.leaves


class PrioritizedSamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` fields, plus the importance-sampling weights and where the samples are
    stored (the indices ``update_priorities`` takes)."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None
    weights: th.Tensor  # shape (batch, 1)
    indices: np.ndarray


class PrioritizedReplayBuffer(ReplayBuffer):
    """SB3's ReplayBuffer sampled in proportion to ``priority^alpha``; see the module docstring."""

    def __init__(self, buffer_size: int, observation_space: Any, action_space: Any, device: Any = "auto",
                 n_envs: int = 1, optimize_memory_usage: bool = False, handle_timeout_termination: bool = True,
                 *, alpha: float = 0.6, beta0: float = 0.4, eps: float = 1e-6) -> None:
        if optimize_memory_usage:
            raise ValueError("PrioritizedReplayBuffer does not support optimize_memory_usage (it stores next_obs)")
        if not (alpha >= 0.0 and 0.0 <= beta0 <= 1.0 and eps > 0.0):
            raise ValueError(f"prioritized replay: alpha={alpha!r} (use >= 0), beta0={beta0!r} (use [0, 1]), "
                             f"eps={eps!r} (use > 0)")
        super().__init__(buffer_size, observation_space, action_space, device=device, n_envs=n_envs,
                         optimize_memory_usage=False, handle_timeout_termination=handle_timeout_termination)
        self.alpha, self.beta0, self.eps = float(alpha), float(beta0), float(eps)
        self.beta = self.beta0  # the algorithm anneals it to 1 (set_progress)
        self.max_priority = 1.0  # of |delta| + eps, before the exponent alpha
        self.tree = SumTree(self.buffer_size * self.n_envs)  # flat index: position * n_envs + env

    def set_progress(self, progress_remaining: float) -> None:
        """beta from beta0 (progress_remaining 1, the start) linearly to 1 (0, the end of the run)."""
        self.beta = 1.0 - (1.0 - self.beta0) * float(np.clip(progress_remaining, 0.0, 1.0))

    def add(self, obs: np.ndarray, next_obs: np.ndarray, action: np.ndarray, reward: np.ndarray, done: np.ndarray,
            infos: list[dict[str, Any]]) -> None:
        flat = self.pos * self.n_envs + np.arange(self.n_envs)
        super().add(obs, next_obs, action, reward, done, infos)
        self.tree.update(flat, np.full(self.n_envs, self.max_priority**self.alpha))

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> PrioritizedSamples:  # type: ignore[override]
        """Stratified: one draw from each of ``batch_size`` equal slices of the total priority."""
        total = self.tree.total
        values = (np.arange(batch_size) + np.random.uniform(size=batch_size)) * (total / batch_size)
        stored = (self.buffer_size if self.full else self.pos) * self.n_envs
        flat = np.minimum(self.tree.find(np.minimum(values, np.nextafter(total, 0.0))), stored - 1)
        probabilities = self.tree.priorities(flat) / total
        weights = (stored * probabilities) ** -self.beta
        weights /= weights.max()
        positions, env_indices = flat // self.n_envs, flat % self.n_envs
        # ReplayBuffer._get_samples draws its env indices itself; these are the tree's.
        data = (
            self._normalize_obs(self.observations[positions, env_indices, :], env),
            self.actions[positions, env_indices, :],
            self._normalize_obs(self.next_observations[positions, env_indices, :], env),
            (self.dones[positions, env_indices] * (1 - self.timeouts[positions, env_indices])).reshape(-1, 1),
            self._normalize_reward(self.rewards[positions, env_indices].reshape(-1, 1), env),
        )
        tensors = tuple(map(self.to_torch, data))
        return PrioritizedSamples(*tensors, None, self.to_torch(weights.reshape(-1, 1).astype(np.float32)), flat)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64).reshape(-1)) + self.eps
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.update(indices, priorities**self.alpha)
