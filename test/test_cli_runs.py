"""Runs that do not collide or get lost: unique run folders, result files, and --out refused when in use.

Folders come from ``humanoid_rl.cli_args.prepare_run_dir`` (every subcommand); the end-to-end cases start the real
command as a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from humanoid_rl import cli, cli_args
from humanoid_rl.cli import CommandError
from humanoid_rl.cli_args import prepare_run_dir, write_new_file


class _FrozenClock:
    """Every run starts in the same second."""

    @staticmethod
    def now() -> datetime:
        return datetime(2026, 1, 2, 3, 4, 5)


def test_runs_started_in_the_same_second_get_their_own_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_args, "datetime", _FrozenClock)
    folders = [prepare_run_dir(None, tmp_path / "runs", "sim").path for _ in range(3)]
    assert [f.name for f in folders] == ["sim-20260102-030405", "sim-20260102-030405-2", "sim-20260102-030405-3"]
    assert all(f.is_dir() and not any(f.iterdir()) for f in folders)


def test_result_files_written_in_the_same_second_do_not_replace_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_args, "datetime", _FrozenClock)
    paths = [write_new_file(tmp_path, "bench-all", ".json", f'{{"run": {n}}}') for n in range(2)]
    assert [p.name for p in paths] == ["bench-all-20260102-030405.json", "bench-all-20260102-030405-2.json"]
    assert [json.loads(p.read_text())["run"] for p in paths] == [0, 1]


def test_an_existing_non_empty_out_is_refused_unless_overwrite_and_left_untouched(tmp_path: Path) -> None:
    out = tmp_path / "results"
    out.mkdir()
    (out / "report.json").write_text('{"earlier": true}')
    with pytest.raises(CommandError, match=r"results exists and is not empty. Fix: .*--overwrite"):
        prepare_run_dir(out, tmp_path, "sim")
    assert (out / "report.json").read_text() == '{"earlier": true}'
    run_dir = prepare_run_dir(out, tmp_path, "sim", overwrite=True)
    assert run_dir.path == out and not run_dir.created


def test_an_empty_or_missing_out_is_used_and_only_a_folder_the_run_made_is_discarded(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    kept = prepare_run_dir(empty, tmp_path, "eval")
    kept.discard_if_empty()
    assert empty.is_dir()  # the user's folder, not the run's to remove
    made = prepare_run_dir(tmp_path / "new" / "run", tmp_path, "eval")
    assert made.created and made.path.is_dir()
    made.discard_if_empty()
    assert not made.path.exists()


def test_an_out_under_a_file_is_refused_before_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(CommandError, match="cannot make the output folder"):
        prepare_run_dir(blocker / "run", tmp_path, "sim")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_refused_before_the_run(tmp_path: Path) -> None:
    read_only = tmp_path / "read_only"
    read_only.mkdir(mode=0o555)
    with pytest.raises(CommandError, match="cannot write into"):
        prepare_run_dir(read_only, tmp_path, "sim")


def humanoid_rl(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-m", "humanoid_rl.cli", *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_two_evals_started_together_keep_both_results_and_show_progress(tmp_path: Path) -> None:
    runs = [humanoid_rl("eval", "--episodes", "2", "--episode-s", "0.2", cwd=tmp_path) for _ in range(2)]
    outputs = [run.communicate(timeout=240) for run in runs]
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
        assert "[1/2] baseline seed 0: stayed up 0.2 s" in err and "[2/2] baseline seed 1" in err
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2
    assert all(json.loads((f / "eval.json").read_text())["baseline"]["episodes"] == 2 for f in folders)


@pytest.mark.parametrize(
    ("command", "written"),
    [(["eval", "--episodes", "1", "--episode-s", "0.2"], "eval.json"), (["real", "--emulate"], "report.json")],
)
def test_a_run_into_an_existing_non_empty_out_is_refused_without_touching_it(
    command: list[str], written: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "earlier"
    out.mkdir()
    (out / written).write_text("{}")
    assert cli.main([*command, "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / written).read_text() == "{}"  # an earlier run's results are not lost


def test_sim_without_options_runs_the_shipped_policy_into_its_own_folder(tmp_path: Path) -> None:
    process = humanoid_rl("sim", "--duration", "3", "--push", "", "--no-plots", cwd=tmp_path)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("sim-")
    report = json.loads((folder / "report.json").read_text())
    assert report["policy"]["model"] == "humanoid_stand.onnx"
    assert report["policy"]["published"] > 0 and not report["fell"]
    assert str(folder.relative_to(tmp_path) / "report.json") in stdout


@pytest.mark.slow  # two simulations at once; discovery timing on a loaded machine made it miss once in a full run
def test_a_second_sim_refuses_to_join_a_domain_where_one_runs_and_runs_on_another(tmp_path: Path) -> None:
    """Two graphs on one ROS domain drive each other's robots (both fell, 'clock jumped back' e-stops)."""
    import signal
    import threading

    from humanoid_rl.graph import private_domain_id

    env = {**os.environ, "ROS_DOMAIN_ID": str(private_domain_id(os.environ.get("ROS_DOMAIN_ID")))}
    first = subprocess.Popen(
        [sys.executable, "-m", "humanoid_rl.cli", "sim", "--duration", "60", "--push", "", "--no-video",
         "--no-plots", "--realtime", "--out", str(tmp_path / "first")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(first.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120.0
        while not any(line.startswith("t_sim=") and "rate=  50" in line for line in lines):
            assert time.monotonic() < deadline and first.poll() is None, "".join(lines)[-2000:]
            time.sleep(0.2)  # until it runs at its rate: its simulation publishes /clock
        second = subprocess.run(
            [sys.executable, "-m", "humanoid_rl.cli", "sim", "--duration", "1", "--push", "", "--no-video",
             "--no-plots", "--out", str(tmp_path / "second")],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert second.returncode == 2, second.stdout[-1000:] + second.stderr[-1000:]
        assert "another simulation is running on ROS domain" in second.stderr
        assert "--domain-id" in second.stderr and "Traceback" not in second.stderr
        assert not (tmp_path / "second").exists()
        assert first.poll() is None  # the first run goes on undisturbed
        other = private_domain_id(env["ROS_DOMAIN_ID"])
        third = subprocess.run(
            [sys.executable, "-m", "humanoid_rl.cli", "sim", "--duration", "1", "--push", "", "--no-video",
             "--no-plots", "--domain-id", str(other), "--out", str(tmp_path / "third")],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert third.returncode == 0, third.stdout[-1000:] + third.stderr[-1000:]
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
