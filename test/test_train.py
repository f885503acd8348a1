"""``humanoid-rl train``: every algorithm runs, the run directory holds what export and resume need, the
time budget and Ctrl-C stop cleanly with a checkpoint, reward terms reach TensorBoard, NaNs stop the run."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from train_fixtures import tiny_config

from humanoid_rl.train.cli import env_config, make_vec_env, train
from humanoid_rl.train.config import TrainConfig, TrainConfigError, add_config_arguments, config_from_args

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("algo", ["ppo", "a2c", "sac", "td3", "ddpg"])  # tqc, crossq: test_export
def test_each_algorithm_trains_a_few_hundred_steps_and_leaves_an_exportable_checkpoint(
    tmp_path: Path, algo: str
) -> None:
    metrics = train(tiny_config(tmp_path, algo))  # 256 steps, checkpoints and evaluations every 128
    run_dir = tmp_path / f"tiny-{algo}"
    assert metrics["status"] == "finished"
    assert metrics["steps"] >= 256
    assert metrics["algo"] == algo
    for checkpoint in ("final", "best", "checkpoints/step_128"):
        assert (run_dir / checkpoint / "model.zip").is_file(), checkpoint
        assert (run_dir / checkpoint / "vecnormalize.pkl").is_file(), checkpoint
    assert len(metrics["evaluations"]) >= 1
    assert 0.0 <= metrics["evaluations"][0]["success_rate"] <= 1.0
    assert TrainConfig.load_yaml(run_dir / "config.yaml").algo == algo
    curve = (run_dir / "training_curve.png").read_bytes()  # the evaluations, plotted at the end
    assert curve.startswith(b"\x89PNG") and len(curve) > 5_000


def test_the_progress_bar_shows_one_rate_and_the_latest_evaluation() -> None:
    from humanoid_rl.train.callbacks import RunState, progress_postfix

    state = RunState(Path("unused"), "walk", "ppo", 0, 0.55)
    assert progress_postfix(420.4, 600.0, state) == "420 steps/s, ETA 10.0 min, level 0.55"
    state.evaluations.append({"success_rate": 0.25, "mean_return": 858.4})
    assert progress_postfix(420.4, 600.0, state).endswith("last eval: success 0.25 return 858")


def test_every_training_setting_has_help_text_on_the_command_line() -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    help_text = parser.format_help().replace("\n", " ")
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f.name
        assert "--" + f.name.replace("_", "-") in help_text, f.name
    args = parser.parse_args(["--n-envs", "3", "--no-randomize", "--net-arch", "64", "32", "--algo", "sac"])
    config = config_from_args(args)
    assert (config.n_envs, config.randomize, config.net_arch, config.algo) == (3, False, [64, 32], "sac")
    assert config.learning_rate == TrainConfig().learning_rate  # untouched options keep their defaults


def test_config_round_trips_through_yaml_and_unknown_or_bad_settings_are_named(tmp_path: Path) -> None:
    config = TrainConfig(algo="td3", net_arch=[32], time_budget_min=1.5, seed=9)
    config.save_yaml(tmp_path / "config.yaml")
    assert TrainConfig.load_yaml(tmp_path / "config.yaml") == config
    (tmp_path / "bad.yaml").write_text("algo: ppo\nlearnig_rate: 0.1\n")
    with pytest.raises(TrainConfigError, match="learnig_rate"):
        TrainConfig.load_yaml(tmp_path / "bad.yaml")
    with pytest.raises(TrainConfigError, match="algo = 'trpo'"):
        TrainConfig(algo="trpo")
    with pytest.raises(TrainConfigError, match="curriculum_threshold"):
        TrainConfig(curriculum_threshold=1.5)


def test_reward_settings_on_the_command_line_reach_the_training_env_and_round_trip_through_the_run_config(
    tmp_path: Path,
) -> None:
    from humanoid_rl.envs.rewards import RewardConfig

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--task", "walk", "--reward", "joint_limits=5", "soft_joint_limit=0.8"])
    config = config_from_args(args)
    rewards = env_config(config).rewards
    walk = RewardConfig.for_walk()
    assert (rewards.joint_limits, rewards.soft_joint_limit) == (5.0, 0.8)
    assert rewards.velocity_tracking == walk.velocity_tracking != RewardConfig().velocity_tracking  # the walk's
    config.save_yaml(tmp_path / "config.yaml")  # the run's recipe keeps them
    assert TrainConfig.load_yaml(tmp_path / "config.yaml").reward_config() == rewards
    assert env_config(TrainConfig(task="stand")).rewards == RewardConfig()
    for bad, says in ((["velocity=1"], "NAME=VALUE with NAME one of"), (["energy=lots"], "not a number"),
                      (["energy=-1"], "weights are magnitudes >= 0")):
        with pytest.raises(TrainConfigError, match=says):
            TrainConfig(reward=bad)
    with pytest.raises(TrainConfigError, match="reach task's reward is sparse"):
        TrainConfig(task="reach", reward=["energy=1"])


def test_time_budget_stops_training_with_a_checkpoint_that_resume_continues_from(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path, total_timesteps=100_000, time_budget_min=0.1, eval_freq=10**6, checkpoint_freq=10**6
    )
    started = time.monotonic()
    metrics = train(config)
    assert time.monotonic() - started < 60
    run_dir = tmp_path / "tiny-ppo"
    assert metrics["status"] == "time_budget"
    first_steps = metrics["steps"]
    assert 0 < first_steps < 100_000
    latest = json.loads((run_dir / "latest.json").read_text())
    assert latest["checkpoint"] == "final" and latest["steps"] == first_steps

    resumed = train(
        dataclasses.replace(config, total_timesteps=first_steps + 128, time_budget_min=0.0), resume=run_dir
    )
    assert resumed["status"] == "finished"
    assert resumed["steps"] >= first_steps + 128
    assert resumed["wall_time_s"] > metrics["wall_time_s"]  # wall time accumulates over invocations


def test_init_from_fine_tunes_a_checkpoint_with_the_new_settings_and_counts_its_steps_and_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from humanoid_rl.train.cli import load_checkpoint

    source_metrics = train(tiny_config(tmp_path, run_name="source"))
    source = tmp_path / "source" / "final"
    config = tiny_config(tmp_path, run_name="tuned", init_from=str(source), learning_rate=1e-5, ent_coef=0.02,
                         n_epochs=3, clip_range=0.1, total_timesteps=source_metrics["steps"] + 128,
                         curriculum_start=1.0)
    tuned = train(config)
    assert "this run's settings replace the checkpoint's: learning_rate 0.00015 -> 1e-05, ent_coef 0 -> 0.02" in (
        capsys.readouterr().out)
    # The new run continued the source's network: its steps and wall time include the source's.
    assert tuned["steps"] == source_metrics["steps"] + 128
    assert tuned["wall_time_s"] > source_metrics["wall_time_s"]
    assert tuned["curriculum_level"] == 1.0
    assert len(tuned["commands"]) == len(source_metrics["commands"]) + 1
    model = load_checkpoint(tmp_path / "tuned" / "final", "ppo")
    assert model.learning_rate == 1e-5 and model.lr_schedule(1.0) == pytest.approx(1e-5)
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)  # trained at the new rate
    # ... and with the rest of this run's settings, not silently the checkpoint's (ent_coef was once kept at 0).
    assert (model.ent_coef, model.n_epochs, model.clip_range(1.0)) == (0.02, 3, pytest.approx(0.1))
    source_model = load_checkpoint(source, "ppo")
    assert source_model.learning_rate != 1e-5 and source_model.ent_coef == 0.0


def test_init_from_refuses_a_directory_without_a_checkpoint_or_of_another_algorithm(tmp_path: Path) -> None:
    from humanoid_rl.cli import CommandError

    with pytest.raises(CommandError, match=r"no model.zip, vecnormalize.pkl, info.json there. Fix: pass a checkpoint"):
        train(tiny_config(tmp_path, init_from=str(tmp_path)))
    train(tiny_config(tmp_path, run_name="source"))
    with pytest.raises(CommandError, match=r"checkpoint's algo is 'ppo', this run's is 'a2c'. Fix: pass --algo ppo"):
        train(tiny_config(tmp_path, "a2c", init_from=str(tmp_path / "source" / "best")))
    assert not (tmp_path / "tiny-a2c").exists()  # refused before a run directory was made


def test_reward_terms_are_logged_to_tensorboard_one_scalar_each(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_config(tmp_path, total_timesteps=256, eval_freq=128))
    (events_dir,) = (tmp_path / "tiny-ppo" / "tb").iterdir()
    accumulator = EventAccumulator(str(events_dir))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    from humanoid_rl.envs.rewards import STAND_TERMS

    assert {f"reward_terms/{name}" for name in STAND_TERMS} <= tags
    assert {"eval/success_rate", "curriculum/level", "train/episode_fall_rate"} <= tags
    survival = accumulator.Scalars("reward_terms/survival")
    assert all(0.0 < s.value <= 1.0 for s in survival)  # survival pays at most its weight (1) per step


def test_a_nan_action_stops_the_run_with_an_error_naming_the_source() -> None:
    config = TrainConfig(n_envs=1, episode_s=1.0)
    venv = make_vec_env(config, 1, env_config(config))
    try:
        venv.reset()
        with pytest.raises(ValueError, match="actions"):
            venv.step(np.full((1, venv.action_space.shape[0]), np.nan, dtype=np.float32))
    finally:
        venv.close()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_saves_a_usable_checkpoint(tmp_path: Path, signum: int) -> None:
    command = [
        sys.executable,
        "-m",
        "humanoid_rl.cli",
        "train",
        "--n-envs",
        "1",
        "--total-timesteps",
        "100000",
        "--n-steps",
        "64",
        "--batch-size",
        "64",
        "--eval-freq",
        "1000000",
        "--run-root",
        str(tmp_path),
        "--run-name",
        "interrupted",
    ]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("training ppo"):
            break
    time.sleep(5.0)
    process.send_signal(signum)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    final = tmp_path / "interrupted" / "final"
    info = json.loads((final / "info.json").read_text())
    assert info["status"] == "interrupted" and info["steps"] > 0
    from humanoid_rl.train.cli import load_checkpoint

    model = load_checkpoint(final, "ppo")
    assert model.num_timesteps == info["steps"]
