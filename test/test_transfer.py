"""``train --init-from`` another task's checkpoint: a stand policy's layers start a walk run, its input weights and
observation statistics mapped term by term through both contracts (the gait clock, and the velocity command that
stand never varied, start fresh); ``--freeze-shared-steps`` holds the transferred values through the first update."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from train_fixtures import tiny_config

from humanoid_rl import cli
from humanoid_rl.train.cli import load_checkpoint, train
from humanoid_rl.train.config import TrainConfig, TrainConfigError
from humanoid_rl.train.transfer import observation_map, task_contract

FIRST = "mlp_extractor.policy_net.0.weight"


def _weights(checkpoint: Path) -> dict[str, np.ndarray]:
    model = load_checkpoint(checkpoint, "ppo")
    return {name: p.detach().numpy().copy() for name, p in model.policy.named_parameters()}


def _obs_stats(checkpoint: Path) -> tuple[np.ndarray, np.ndarray, float]:
    with (checkpoint / "vecnormalize.pkl").open("rb") as f:
        stats = pickle.load(f)
    return stats.obs_rms.mean, stats.obs_rms.var, float(stats.obs_rms.count)


def test_walk_maps_the_stand_contracts_terms_and_adds_the_gait_clock() -> None:
    stand = task_contract(TrainConfig(task="stand", n_envs=1))
    walk = task_contract(TrainConfig(task="walk", n_envs=1))
    dst, src = observation_map(stand, walk)
    assert walk.n_obs == stand.n_obs + 5 and len(dst) == stand.n_obs  # every stand value has a place in walk
    assert np.array_equal(src, np.arange(stand.n_obs))
    gait, velocity = walk.term_slices()["gait_phase"], walk.term_slices()["base_lin_vel"]
    assert not (set(range(gait.start, gait.stop)) | set(range(velocity.start, velocity.stop))) & set(dst.tolist())
    back_dst, back_src = observation_map(walk, stand)  # walk -> stand drops the clock
    assert np.array_equal(back_dst, np.arange(stand.n_obs)) and gait.start not in back_src


def test_a_walk_run_starts_from_a_stand_checkpoint_with_mapped_inputs_and_frozen_shared_layers(tmp_path: Path) -> None:
    train(tiny_config(tmp_path, run_name="stand"))
    source = tmp_path / "stand" / "final"
    walk = tiny_config(tmp_path, task="walk", run_name="walk", init_from=str(source), freeze_shared_steps=128)
    metrics = train(walk)
    assert metrics["status"] == "finished" and metrics["steps"] == 256  # a new task counts its own steps
    run = tmp_path / "walk"
    stand_w, (stand_mean, stand_var, stand_count) = _weights(source), _obs_stats(source)
    start_w = _weights(run / "checkpoints" / "step_128")
    start_mean, start_var, start_count = _obs_stats(run / "checkpoints" / "step_128")
    frozen_w = _weights(run / "checkpoints" / "step_256")  # after the first update, inside the freeze
    final_w = _weights(run / "final")  # after the second, unfrozen

    walk_contract, stand_contract = task_contract(walk), task_contract(TrainConfig(task="stand", n_envs=1))
    slices = walk_contract.term_slices()
    gait, command, velocity = slices["gait_phase"], slices["velocity_command"], slices["base_lin_vel"]
    dst, src = observation_map(stand_contract, walk_contract)
    kept = stand_var[src] > 1e-6  # stand's command is always zero: its columns are not transferred
    seen, where = src[kept], dst[kept]  # stand's columns the stand policy saw vary, and their places in walk's
    stand_command = stand_contract.term_slices()["velocity_command"]
    assert seen.size > 50 and not set(range(stand_command.start, stand_command.stop)) & set(seen.tolist())
    # Before any update the walk policy's inputs the stand policy saw are the stand policy's, with its statistics.
    np.testing.assert_array_equal(start_w[FIRST][:, where], stand_w[FIRST][:, seen])
    for fresh in (gait, command, velocity):
        assert not np.allclose(start_w[FIRST][:, fresh], 0.0)  # freshly initialised, not zeroed
        assert np.all((start_var[fresh] > 0.5) & (start_var[fresh] < 1.5))  # unit statistics, then 128 steps
    # The statistics carry the stand run's weight: its count, plus the walk run's 129 observations so far (the
    # first reset's and 128 steps').
    assert start_count == pytest.approx(stand_count + 129)
    assert np.abs(start_mean[gait]).max() < 0.5
    assert stand_count < 2 * start_count and np.corrcoef(start_mean[where], stand_mean[seen])[0, 1] > 0.9
    for name in ("mlp_extractor.policy_net.2.weight", "action_net.weight", "value_net.weight", "log_std"):
        np.testing.assert_array_equal(start_w[name], stand_w[name])
    # The first update moved only the new inputs' weights; the second, unfrozen, moved the shared ones too.
    np.testing.assert_array_equal(frozen_w[FIRST][:, where], stand_w[FIRST][:, seen])
    np.testing.assert_array_equal(frozen_w["action_net.weight"], stand_w["action_net.weight"])
    assert not np.array_equal(frozen_w[FIRST][:, gait], start_w[FIRST][:, gait])
    assert not np.array_equal(final_w["action_net.weight"], stand_w["action_net.weight"])
    assert not np.array_equal(final_w[FIRST][:, where], stand_w[FIRST][:, seen])


def test_freezing_needs_a_checkpoint_of_another_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(TrainConfigError, match="freeze_shared_steps needs init_from"):
        tiny_config(tmp_path, freeze_shared_steps=100)
    train(tiny_config(tmp_path, run_name="stand", total_timesteps=128))
    capsys.readouterr()  # the source run's own output
    code = cli.main(["train", "--task", "stand", "--n-envs", "1", "--run-root", str(tmp_path), "--init-from",
                     str(tmp_path / "stand" / "final"), "--freeze-shared-steps", "100"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "this run's task and observation layout, so every layer is shared" in err
    assert len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stand"]  # no run folder for a refused run


def test_a_checkpoint_keeps_its_contract_and_a_changed_layout_of_the_same_task_is_mapped(tmp_path: Path) -> None:
    import json

    from humanoid_rl.core.contract_io import contract_to_dict
    from humanoid_rl.train.transfer import needs_transfer

    config = tiny_config(tmp_path, task="walk", total_timesteps=128)
    train(config)
    final = tmp_path / "tiny-ppo" / "final"
    saved = json.loads((final / "contract.json").read_text())
    assert saved == json.loads(json.dumps(contract_to_dict(task_contract(config))))  # what the network was fed
    info = {"task": "walk", "run_dir": tmp_path / "tiny-ppo"}
    assert not needs_transfer(final, info, config)  # same task, same layout: continue the network as it is
    older = contract_to_dict(task_contract(TrainConfig(task="stand", n_envs=1)))  # a layout without the new terms
    (final / "contract.json").write_text(json.dumps(older))
    assert needs_transfer(final, info, config)  # the code's walk layout changed since: map term by term
