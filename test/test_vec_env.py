"""Several training environments to a worker process: the same samples as SB3's in-process vector env."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from humanoid_rl.envs import WALK_ID
from humanoid_rl.train.cli import _make_env, env_config, make_vec_env
from humanoid_rl.train.config import TrainConfig
from humanoid_rl.train.vec_env import BatchedSubprocVecEnv, split_evenly


def test_environments_are_split_into_consecutive_chunks_that_differ_by_at_most_one() -> None:
    assert split_evenly(5, 2) == [range(0, 3), range(3, 5)]
    assert split_evenly(16, 2) == [range(0, 8), range(8, 16)]
    assert split_evenly(2, 4) == [range(0, 1), range(1, 2)]  # never an empty process
    with pytest.raises(ValueError, match="at least one"):
        split_evenly(0, 2)


def test_the_number_of_processes_defaults_to_the_cores_and_never_exceeds_the_environments() -> None:
    assert TrainConfig(n_envs=16, n_processes=3).worker_processes(16) == 3
    assert TrainConfig(n_envs=2, n_processes=8).worker_processes(2) == 2
    assert 1 <= TrainConfig(n_envs=64).worker_processes(64) <= 64


def _walk_factories(n_envs: int) -> list:
    config = TrainConfig(task="walk", backend="mujoco", episode_s=0.3, shield_in_loop=True)
    return [partial(_make_env, WALK_ID, env_config(config), False, True) for _ in range(n_envs)]


def test_five_walk_envs_in_two_processes_give_what_they_give_in_one_process_resets_included() -> None:
    n_envs, steps = 5, 40  # 0.3 s episodes: every env ends and auto-resets twice
    batched = BatchedSubprocVecEnv(_walk_factories(n_envs), n_processes=2)
    reference = DummyVecEnv(_walk_factories(n_envs))
    try:
        assert [len(chunk) for chunk in batched.chunks] == [3, 2]
        for venv in (batched, reference):
            venv.seed(11)
        obs_b, obs_r = batched.reset(), reference.reset()
        np.testing.assert_array_equal(obs_b, obs_r)
        rng = np.random.default_rng(0)
        ends = 0
        for _ in range(steps):
            actions = rng.uniform(-0.5, 0.5, (n_envs, *batched.action_space.shape)).astype(np.float32)
            obs_b, rew_b, done_b, info_b = batched.step(actions)
            obs_r, rew_r, done_r, info_r = reference.step(actions)
            np.testing.assert_array_equal(obs_b, obs_r)
            np.testing.assert_array_equal(rew_b, rew_r)
            np.testing.assert_array_equal(done_b, done_r)
            for got, want in zip(info_b, info_r, strict=True):
                assert got.keys() == want.keys()
                if "terminal_observation" in want:
                    np.testing.assert_array_equal(got["terminal_observation"], want["terminal_observation"])
                    assert got["TimeLimit.truncated"] == want["TimeLimit.truncated"]
            ends += int(done_r.sum())
        assert ends >= 2 * n_envs
    finally:
        batched.close()
        reference.close()
    batched.close()  # closing twice is harmless


def test_env_method_and_attributes_reach_exactly_the_environments_asked_for() -> None:
    batched = BatchedSubprocVecEnv(_walk_factories(3), n_processes=2)
    try:
        start = TrainConfig().curriculum_start
        batched.env_method("set_curriculum", 0.9, indices=[0, 2])
        assert batched.get_attr("curriculum_level") == [0.9, start, 0.9]
        batched.set_attr("tag", "x", indices=1)
        assert batched.get_attr("tag", indices=[1]) == ["x"]
        assert batched.has_attr("set_curriculum") and not batched.has_attr("no_such_attribute")
        assert batched.env_is_wrapped(DummyVecEnv) == [False, False, False]
    finally:
        batched.close()


def test_training_uses_the_batched_env_for_several_environments_and_stays_in_process_for_one() -> None:
    config = TrainConfig(task="walk", backend="mujoco", n_envs=4, n_processes=2, episode_s=0.3)
    several = make_vec_env(config, 4, env_config(config))
    one = make_vec_env(config, 1, env_config(config))
    try:
        assert isinstance(several.unwrapped, BatchedSubprocVecEnv) and several.num_envs == 4
        assert isinstance(one.unwrapped, DummyVecEnv)
    finally:
        several.close()
        one.close()
