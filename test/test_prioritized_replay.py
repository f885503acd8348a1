"""Prioritized experience replay: the sum tree, sampling frequencies and importance-sampling weights against a
hand-computed case, beta annealing, and each algorithm with ``--replay prioritized`` training on the real task."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest
from train_fixtures import tiny_config

from humanoid_rl.train.replay import PrioritizedReplayBuffer, SumTree


def _buffer(n: int, alpha: float, n_envs: int = 1, beta0: float = 1.0) -> PrioritizedReplayBuffer:
    obs_space = gymnasium.spaces.Box(-10.0, 10.0, (2,), np.float32)
    act_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    buffer = PrioritizedReplayBuffer(n * n_envs, obs_space, act_space, device="cpu", n_envs=n_envs, alpha=alpha,
                                     beta0=beta0, eps=1e-9)
    for i in range(n):  # position i stores observation (i, env) for each env (SB3 keeps n_envs per position)
        obs = np.array([[i, e] for e in range(n_envs)], np.float32)
        buffer.add(obs, obs + 1, np.zeros((n_envs, 1), np.float32), np.zeros(n_envs, np.float32),
                   np.zeros(n_envs, np.float32), [{} for _ in range(n_envs)])
    return buffer


def test_the_sum_tree_sums_its_leaves_and_finds_the_leaf_a_value_falls_into() -> None:
    tree = SumTree(5)  # 8 leaves, 3 unused
    tree.update(np.arange(5), np.array([1.0, 2.0, 3.0, 4.0, 0.5]))
    assert tree.total == pytest.approx(10.5)
    # cumulative 1, 3, 6, 10, 10.5: a value falls into the first leaf whose cumulative sum exceeds it
    found = tree.find(np.array([0.0, 0.99, 1.0, 2.5, 3.0, 9.99, 10.0, 10.49]))
    assert found.tolist() == [0, 0, 1, 1, 2, 3, 4, 4]
    tree.update(np.array([3, 3]), np.array([7.0, 0.0]))  # a repeated index keeps the last priority
    assert tree.total == pytest.approx(6.5)


def test_sampling_frequencies_match_priorities_to_the_power_alpha() -> None:
    np.random.seed(0)
    buffer = _buffer(4, alpha=0.5)
    # |TD errors| 1, 4, 9, 16 with alpha 0.5: priorities 1, 2, 3, 4, so P = 0.1, 0.2, 0.3, 0.4 by hand.
    buffer.update_priorities(np.arange(4), np.array([-1.0, 4.0, -9.0, 16.0]))
    counts = np.zeros(4)
    for _ in range(200):
        samples = buffer.sample(256)
        counts += np.bincount(samples.indices, minlength=4)
        # each sample's observation is the transition its index names
        assert np.array_equal(samples.observations[:, 0].numpy(), samples.indices.astype(np.float32))
    assert counts / counts.sum() == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=0.01)


def test_importance_weights_are_n_times_p_to_the_minus_beta_normalized_by_the_largest() -> None:
    np.random.seed(1)
    buffer = _buffer(4, alpha=1.0)
    buffer.update_priorities(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))  # P = 0.1 .. 0.4
    samples = buffer.sample(64)  # stratified over the total priority: every transition is drawn
    assert set(samples.indices.tolist()) == {0, 1, 2, 3}
    # beta 1: w = 1 / (4 P) = 2.5, 1.25, 0.833, 0.625; divided by the largest (2.5): 1, 1/2, 1/3, 1/4.
    weights = samples.weights.numpy().reshape(-1)
    expected = {0: 1.0, 1: 0.5, 2: 1.0 / 3.0, 3: 0.25}
    for index, weight in zip(samples.indices, weights, strict=True):
        assert weight == pytest.approx(expected[int(index)], rel=1e-6)
    assert weights.max() == pytest.approx(1.0)


def test_beta_anneals_from_beta0_to_one_over_the_run() -> None:
    buffer = _buffer(4, alpha=1.0, beta0=0.4)
    buffer.update_priorities(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))
    buffer.set_progress(1.0)
    assert buffer.beta == pytest.approx(0.4)
    buffer.set_progress(0.5)
    assert buffer.beta == pytest.approx(0.7)
    buffer.set_progress(0.0)
    assert buffer.beta == pytest.approx(1.0)
    # beta 0.4: w = (4 P)^-0.4 / max, i.e. (P / 0.1)^-0.4 for the four transitions
    buffer.set_progress(1.0)
    samples = buffer.sample(64)
    expected = (np.array([1.0, 2.0, 3.0, 4.0]) ** -0.4)[samples.indices]
    assert samples.weights.numpy().reshape(-1) == pytest.approx(expected, rel=1e-6)


def test_new_transitions_get_the_largest_priority_so_far_and_several_envs_are_indexed_apart() -> None:
    buffer = _buffer(3, alpha=1.0, n_envs=2)
    buffer.update_priorities(np.array([0, 5]), np.array([8.0, 0.25]))
    obs = np.zeros((2, 2), np.float32)
    buffer.add(obs, obs, np.zeros((2, 1), np.float32), np.zeros(2, np.float32), np.zeros(2, np.float32), [{}, {}])
    # the ring wrapped to position 0: flat indices 0 and 1 now hold the new transitions, at priority 8
    assert buffer.tree.priorities(np.arange(6)) == pytest.approx([8.0, 8.0, 1.0, 1.0, 1.0, 0.25])
    np.random.seed(2)
    samples = buffer.sample(512)
    positions, envs = samples.indices // 2, samples.indices % 2
    stored = samples.observations.numpy()
    unchanged = positions > 0  # position 0 was overwritten with zeros
    assert np.array_equal(stored[unchanged, 0], positions[unchanged].astype(np.float32))
    assert np.array_equal(stored[unchanged, 1], envs[unchanged].astype(np.float32))


@pytest.mark.parametrize("algo", ["sac", "td3", "ddpg"])
def test_prioritized_replay_trains_each_off_policy_algorithm_and_updates_priorities(tmp_path: Path, algo: str) -> None:
    from humanoid_rl.train.cli import load_checkpoint, train
    from humanoid_rl.train.prioritized import PRIORITIZED

    metrics = train(tiny_config(tmp_path, algo, replay="prioritized", total_timesteps=192, eval_freq=192,
                                checkpoint_freq=192, learning_starts=64))
    assert metrics["status"] == "finished"
    model = load_checkpoint(tmp_path / f"tiny-{algo}" / "final", algo, replay="prioritized")
    assert type(model) is PRIORITIZED[algo]
    from humanoid_rl.train.callbacks import REPLAY_BUFFER_FILE

    model.load_replay_buffer(tmp_path / f"tiny-{algo}" / "final" / REPLAY_BUFFER_FILE)
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer)
    priorities = buffer.tree.priorities(np.arange(192))
    # the first 64 steps' transitions were replayed and re-prioritized from their TD errors: not all at the
    # initial priority any more, and the tree's total is their sum
    assert np.unique(np.round(priorities, 9)).size > 10
    assert buffer.tree.total == pytest.approx(priorities.sum())
    assert 0.4 < buffer.beta <= 1.0
