"""Bad input on every `humanoid-rl` subcommand: one line on stderr, exit code 2, before anything starts, nothing lost.

Option values are refused by argparse (its usage, then one `error:` line); what needs a file or the robot to
judge (a model, a robot config, a push against the run's length) by the subcommand, as one `humanoid-rl: error:`
line. Either way no traceback, and no run folder is left behind.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pytest
from policy_fixtures import build_mlp, random_weights

from humanoid_rl import cli
from humanoid_rl.core.contract import PolicyContract
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.paths import model_path


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line (argparse prints its usage above it); fails on a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("humanoid-rl"), err
    assert ": error: " in last, err
    return last


@pytest.fixture(scope="module")
def truncated_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "truncated.onnx"
    path.write_bytes(model_path("humanoid_stand.onnx").read_bytes()[:2000])
    return path


@pytest.fixture(scope="module")
def model_without_metadata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid ONNX graph of the right shape that `humanoid-rl export` did not write: no contract, no pairs."""
    import onnx

    contract = PolicyContract.from_robot(RobotSpec.load())
    path = tmp_path_factory.mktemp("models") / "no_metadata.onnx"
    onnx.save(build_mlp(random_weights(contract.n_obs, contract.n_actions)), str(path))
    return path


# ------------------------------------------------------------------------------------------------ models


@pytest.mark.parametrize("which", ["truncated_model", "model_without_metadata"])
def test_eval_refuses_a_broken_model_in_one_line_and_leaves_no_run_folder(
    which: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = request.getfixturevalue(which)
    out = tmp_path / "run"
    assert cli.main(["eval", str(model), "--episodes", "1", "--out", str(out)]) == 2
    assert str(model.name) in error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("which", ["truncated_model", "model_without_metadata"])
@pytest.mark.parametrize("what", ["inference", "loop"])
def test_bench_refuses_a_broken_model_in_one_line_before_measuring(
    which: str, what: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = request.getfixturevalue(which)
    started = time.monotonic()
    assert cli.main(["bench", what, "--model", str(model), "--out", str(tmp_path / "bench")]) == 2
    assert str(model.name) in error_line(capsys)
    assert time.monotonic() - started < 20.0  # refused up front, not after a benchmark


def test_sim_refuses_a_broken_model_before_the_stack_starts(
    truncated_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["sim", "--model", str(truncated_model), "--out", str(tmp_path / "run")]) == 2
    assert "truncated.onnx" in error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("which", ["truncated_model", "model_without_metadata"])
def test_real_refuses_a_broken_model_before_any_node_starts(
    which: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = request.getfixturevalue(which)
    assert cli.main(["real", "--emulate", "--model", str(model), "--out", str(tmp_path / "run")]) == 2
    assert model.name in error_line(capsys)
    assert "starting" not in capsys.readouterr().out  # nothing was brought up
    assert not (tmp_path / "run").exists()


def test_real_refuses_a_video_without_the_emulator_before_any_node_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["real", "--video", "--out", str(tmp_path / "run")]) == 2
    assert "--emulate" in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_export_finds_an_output_it_cannot_write_before_the_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    # the checkpoint does not exist either: the output is judged first, so that is what the line names
    assert cli.main(["export", str(tmp_path / "no-run"), "-o", str(blocker / "model.onnx")]) == 2
    assert "cannot make the output folder" in error_line(capsys)
    assert cli.main(["export", str(tmp_path / "no-run"), "-o", str(tmp_path)]) == 2
    assert "is a folder" in error_line(capsys)


@pytest.mark.parametrize("option", ["--rollout-episodes", "--pairs", "--rollout-s"])
def test_export_refuses_a_zero_count_of_parity_rollouts_or_pairs_in_one_line(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # zero rollouts once ended in a numpy traceback after the checkpoint had loaded
    assert cli.main(["export", str(tmp_path / "no-run"), "-o", str(tmp_path / "m.onnx"), option, "0"]) == 2
    assert option in error_line(capsys)
    assert not (tmp_path / "m.onnx").exists()


# ------------------------------------------------------------------------------------------ sim options


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--push", "abc", "EVERY:FORCE"),
        ("--push", "4:60:1", "EVERY:FORCE"),
        ("--push", "3@80", "T@FX,FY"),
        ("--push", "-1@80,0", "time > 0"),
        ("--push", "nan:60", "not a finite number"),
        ("--push", "4:inf", "not a finite number"),
        ("--push", "3@nan,0", "not a finite number"),
        ("--push", "0:60", "interval must be > 0"),
        ("--foxglove", "0", "not a port number"),
        ("--foxglove", "http", "not a port number"),
        ("--rate", "2000", "50 to 1000"),
        ("--rate", "nan", "not a finite number"),
        ("--push-duration", "-1", "0.001 to 10"),
        ("--duration", "0", "> 0"),
        ("--duration", "-5", "> 0"),
        ("--duration", "nan", "not a finite number"),
        ("--duration", "inf", "not a finite number"),
        ("--config", "/nonexistent/extra.yaml", "does not exist"),
    ],
)
def test_sim_refuses_a_bad_option_value_in_one_line(
    option: str, value: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["sim", f"{option}={value}", "--out", str(tmp_path / "run")]) == 2
    line = error_line(capsys)
    assert f"argument {option}" in line and says in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["sim", "real"])
@pytest.mark.parametrize(
    ("text", "says"),
    [("garbage: [\n", "not valid YAML (expected the node content"),  # rcl said this in a traceback from rclpy.init
     ("- 1\n", "is not a ROS parameter file"),
     ("safety_shield:\n  tilt_trip: 0.6\n", "'safety_shield' has no 'ros__parameters' mapping")],
)
def test_sim_and_real_refuse_a_parameter_file_ros_could_not_read_in_one_line(
    command: str, text: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "extra.yaml"
    config.write_text(text)
    extra = ["--emulate"] if command == "real" else []
    assert cli.main([command, *extra, "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    line = error_line(capsys)
    assert "argument --config" in line and says in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--push", "25@80,0"], "after the end of the run (--duration 20)"),
        (["--duration", "5", "--push", "3@80,0;6@0,60"], "--push at 6 s is after the end"),
        (["--push", "1@80,0"], "falls in the 2 s start-up hold"),
        (["--push", "1.5:60"], "at 1.5 s falls in the 2 s start-up hold, before the policy drives the robot. "
                               "Fix: push later (an interval above 2 s)"),
        (["--duration", "1e9"], "more than 100000 pushes. Fix: a shorter --duration, or --push '' for none"),
        (["--rate", "100"], "runs at 50 Hz. Fix: --rate 50, or --model ''"),
        (["--rate", "300", "--model", ""], "does not divide the physics rate 1000 Hz"),
        (["--robot-config", "/nonexistent/robot.yaml"], "/nonexistent/robot.yaml"),
    ],
)
def test_sim_refuses_options_that_do_not_fit_the_run_before_it_starts(
    options: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["sim", *options, "--out", str(tmp_path / "run")]) == 2
    line = error_line(capsys)
    assert line.startswith("humanoid-rl: error: ") and says in line
    assert not (tmp_path / "run").exists()


def test_sim_finds_an_output_folder_it_cannot_make_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    started = time.monotonic()
    assert cli.main(["sim", "--duration", "30", "--out", str(blocker / "run")]) == 2
    assert "cannot make the output folder" in error_line(capsys)
    assert time.monotonic() - started < 20.0  # before 30 simulated seconds, not after them


def test_sim_help_states_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sim", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "default humanoid_stand.onnx, the shipped stand policy" in text
    assert "'4:60': every 4 s, 60 N in a random horizontal direction; the default" in text
    assert "default auto: EventsExecutor" in text


def test_sim_runs_the_shipped_policy_unless_told_otherwise() -> None:
    from humanoid_rl.apps import sim

    parser = argparse.ArgumentParser()
    sim.add_arguments(parser)
    assert parser.parse_args([]).model == "humanoid_stand.onnx"
    assert parser.parse_args(["--model", ""]).model == ""
    assert model_path(parser.parse_args([]).model).is_file()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--duration", "-1"), ("--duration", "nan"), ("--rate", "2000"), ("--ramp-time", "100"), ("--sensor-wait", "0"),
     ("--config", "/nonexistent/extra.yaml")],
)
def test_real_refuses_a_bad_option_value_before_bringing_anything_up(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["real", "--emulate", f"{option}={value}", "--out", str(tmp_path / "run")]) == 2
    assert f"argument {option}" in error_line(capsys)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------------- eval and bench


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--episodes", "0"], "argument --episodes"),
        (["--jobs", "0"], "argument --jobs"),
        (["--episode-s", "nan"], "argument --episode-s"),
        (["--push-force", "-60"], "argument --push-force"),
        (["--push-force", "60", "--push-force-max", "30"], "--push-force-max 30 is below --push-force 60"),
        (["--robot-config", "/nonexistent/robot.yaml"], "/nonexistent/robot.yaml"),
        (["--cmd-vel", "0.5,0,0"], "--cmd-vel applies to --task walk"),
        (["--task", "walk", "--cmd-vel", "0.5,0"], "argument --cmd-vel"),
        (["--task", "walk", "--cmd-vel", "0:0.5,0,0;5:0,0,0"], "use one command VX,VY,WZ"),
    ],
)
def test_eval_refuses_bad_options_in_one_line(
    options: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["eval", *options, "--out", str(tmp_path / "run")]) == 2
    assert says in error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("options", [["--seconds", "0"], ["--rates", "2000"], ["--seconds-at-50hz", "-1"]])
def test_bench_refuses_bad_option_values(options: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "loop", *options]) == 2
    assert f"argument {options[0]}" in error_line(capsys)


def test_bench_help_says_what_the_default_suite_runs_and_how_long(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "'all' runs inference, shield, sim and loop" in text and "about 8 minutes" in text


# ------------------------------------------------------------------------------------------------- train


def test_train_refuses_a_config_that_is_not_valid_yaml_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("learning_rate: [\n")
    assert cli.main(["train", "--config", str(config), "--run-root", str(tmp_path / "runs")]) == 2
    assert "not valid YAML" in error_line(capsys)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("option", ["--total-timesteps", "--n-envs"])
def test_train_refuses_a_zero_count_in_one_line(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["train", option, "0", "--run-root", str(tmp_path / "runs")]) == 2
    assert "use a positive integer" in error_line(capsys)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--seed", "-1"], "seed = -1: use an integer >= 0"),
        (["--learning-rate", "nan"], "learning_rate = nan: use a finite number"),
        (["--gamma", "2"], "gamma = 2.0: use a discount factor in (0, 1]"),
        (["--episode-s", "0"], "episode_length_s = 0.0: use a positive duration"),
        (["--push-interval-s", "0"], "interval_s = 0.0"),
        (["--physics-rate-hz", "333"], "physics_rate_hz = 333.0: use a rate in Hz that the policy rate divides"),
        (["--mirror-loss", "1"], "the mirror loss extends PPO and rides on its entropy term"),
        (["--mirror-loss", "-1", "--ent-coef", "0.01"], "mirror_loss = -1.0: use a weight >= 0"),
    ],
)
def test_train_refuses_settings_its_workers_would_fail_on_before_the_run_folder(
    options: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["train", *options, "--n-envs", "2", "--run-root", str(tmp_path / "runs")]) == 2
    line = error_line(capsys)
    assert line.startswith("humanoid-rl: error: invalid training configuration: ") and says in line
    assert not (tmp_path / "runs").exists()


def test_train_checks_the_robot_config_before_any_worker_or_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\n")
    runs = tmp_path / "runs"
    args = ["train", "--robot-config", str(broken), "--n-envs", "2", "--run-root", str(runs), "--run-name", "r"]
    assert cli.main(args) == 2
    assert str(broken) in error_line(capsys)
    assert not runs.exists()  # nothing blocks the name for the next, fixed, try


def test_train_resume_of_a_run_without_a_checkpoint_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from humanoid_rl.train.config import TrainConfig

    run = tmp_path / "half-made"
    run.mkdir()
    TrainConfig().save_yaml(run / "config.yaml")
    assert cli.main(["train", "--resume", str(run)]) == 2
    assert "no latest.json there" in error_line(capsys)


def test_train_warns_when_the_run_is_too_short_to_learn_or_to_be_evaluated(tmp_path: Path) -> None:
    from humanoid_rl.train.cli import check_before_start
    from humanoid_rl.train.config import TrainConfig

    short_sac = TrainConfig(algo="sac", total_timesteps=1000, learning_starts=5000, eval_freq=25_000)
    warnings = check_before_start(short_sac, None)
    assert len(warnings) == 2
    assert "not above --learning-starts 5000" in warnings[0] and "below --eval-freq 25000" in warnings[1]
    assert check_before_start(TrainConfig(algo="ppo", total_timesteps=50_000, eval_freq=25_000), None) == []


# ----------------------------------------------------------------------------------------- closed stdout


def test_check_robot_json_into_a_closed_pipe_ends_quietly() -> None:
    """`humanoid-rl check-robot --json | head -1`: the reader is gone before the output is written."""
    process = subprocess.Popen(
        [sys.executable, "-m", "humanoid_rl.cli", "check-robot", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the interpreter has even imported the command
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == cli.EXIT_BROKEN_PIPE
    assert err == ""
