"""``humanoid-rl sweep``: a two-trial Optuna sweep with a tiny budget, locally and on a Ray instance the test
starts, leaves normal run directories, a table, a plot and a best config that ``train --config`` loads; the
evaluation hook stops a run (Optuna's pruning); bad sweep files get one line and exit 2."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from train_fixtures import tiny_config

from humanoid_rl import cli
from humanoid_rl.train.cli import train
from humanoid_rl.train.config import TrainConfig

SPACE = {
    "learning_rate": {"log_uniform": [1.0e-5, 1.0e-3]},
    "net_arch": {"choice": [[32], [64, 64]]},
    "gamma": {"uniform": [0.95, 0.99]},
}


def _sweep_file(tmp_path: Path, trials: int = 2, **extra: Any) -> Path:
    base = tiny_config(tmp_path, total_timesteps=128).to_dict()  # one rollout, one evaluation
    for key in ("run_root", "run_name"):
        base.pop(key)
    data = {"base": base, "space": SPACE, "trials": trials, "objective": "success_then_return", "seed": 7,
            "pruner": "none", **extra}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _rows(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "trials.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _check_outputs(sweep_dir: Path, trials: int) -> dict[str, Any]:
    rows = _rows(sweep_dir)
    assert [r["state"] for r in rows] == ["COMPLETE"] * trials
    for row in rows:
        run_dir = Path(row["run_dir"])
        assert (run_dir / "final" / "model.zip").is_file() and (run_dir / "metrics.json").is_file()
        config = TrainConfig.load_yaml(run_dir / "config.yaml")  # each trial is a normal run with its values
        assert config.learning_rate == pytest.approx(float(row["learning_rate"]))
        assert 1e-5 <= config.learning_rate <= 1e-3 and 0.95 <= config.gamma <= 0.99
        assert config.net_arch in ([32], [64, 64])
        assert 0.0 <= float(row["success_rate"]) <= 1.0
    assert len({r["learning_rate"] for r in rows}) == trials  # the sampler drew different values
    summary = json.loads((sweep_dir / "sweep.json").read_text(encoding="utf-8"))
    best_row = max(rows, key=lambda r: float(r["value"]))
    assert summary["best"]["number"] == int(best_row["number"])
    best = TrainConfig.load_yaml(sweep_dir / "best.yaml")  # what `train --config` reads
    assert best.learning_rate == pytest.approx(float(best_row["learning_rate"]))
    assert best.run_root == "runs" and best.run_name == "" and best.total_timesteps == 128
    plot = (sweep_dir / "trials.png").read_bytes()
    assert plot.startswith(b"\x89PNG") and len(plot) > 5_000
    return summary


def test_a_local_two_trial_sweep_leaves_runs_a_table_a_plot_and_a_best_config_and_resume_adds_trials(
    tmp_path: Path,
) -> None:
    sweep_dir = tmp_path / "sweep"
    assert cli.main(["sweep", str(_sweep_file(tmp_path)), "--out", str(sweep_dir)]) == 0
    summary = _check_outputs(sweep_dir, 2)
    assert summary["backend"] == "local" and summary["states"] == {"COMPLETE": 2}
    first = _rows(sweep_dir)
    # The study lives in the sweep directory: raising its trial count and resuming runs only the new trial.
    spec = yaml.safe_load((sweep_dir / "sweep.yaml").read_text(encoding="utf-8"))
    (sweep_dir / "sweep.yaml").write_text(yaml.safe_dump({**spec, "trials": 3}), encoding="utf-8")
    assert cli.main(["sweep", "--resume", str(sweep_dir)]) == 0
    rows = _check_outputs(sweep_dir, 3) and _rows(sweep_dir)
    assert rows[:2] == first
    assert sorted(p.name for p in (sweep_dir / "trials").iterdir()) == ["trial-000", "trial-001", "trial-002"]


def test_the_evaluation_hook_stops_a_run_at_the_evaluation_that_returns_false(tmp_path: Path) -> None:
    seen: list[int] = []

    def prune_at_first(evaluation: dict[str, Any]) -> bool:
        seen.append(evaluation["steps"])
        return False

    metrics = train(tiny_config(tmp_path, total_timesteps=1024), on_evaluation=prune_at_first)
    assert metrics["status"] == "stopped"
    assert len(seen) == 1 and seen[0] >= 128
    assert metrics["steps"] == seen[0] < 1024
    assert (tmp_path / "tiny-ppo" / "final" / "model.zip").is_file()


def _ray_workers() -> list[int]:
    """Processes of this user whose command line is a Ray worker or Ray's own services."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"ray::" in cmdline or b"raylet" in cmdline or b"gcs_server" in cmdline or b"default_worker.py" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_a_two_trial_sweep_runs_on_a_local_ray_instance_and_leaves_no_ray_process(tmp_path: Path) -> None:
    import ray

    before = set(_ray_workers())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        sweep_dir = tmp_path / "sweep"
        assert cli.main(["sweep", str(_sweep_file(tmp_path)), "--out", str(sweep_dir),
                         "--ray-address", "auto"]) == 0
    finally:
        ray.shutdown()
    summary = _check_outputs(sweep_dir, 2)
    assert summary["backend"] == "ray" and summary["states"] == {"COMPLETE": 2}
    assert (sweep_dir / "ray").is_dir()  # Ray Tune's own records, beside ours
    deadline = time.monotonic() + 20.0
    while set(_ray_workers()) - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not set(_ray_workers()) - before, "Ray left processes behind"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"space": {"learning_rate": {"log_uniform": [0.0, 1e-3]}}}, "space.learning_rate: log_uniform needs LOW > 0"),
        ({"space": {"lerning_rate": {"uniform": [0.1, 0.2]}}}, "space.lerning_rate is not a searchable"),
        ({"space": {"gamma": {"normal": [0.9, 0.1]}}}, "space.gamma = "),
        ({"space": {"n_steps": {"int": [512, 64]}}}, "int needs [LOW, HIGH]"),
        ({"trials": 0}, "trials = 0: use a positive integer"),
        ({"objective": "fastest"}, "objective = 'fastest'"),
        ({"pruner": "hyperband"}, "pruner = 'hyperband'"),
        ({"budget": 3}, "unknown keys ['budget']"),
        ({"base": {"task": "run"}}, "task = 'run'"),
    ],
)
def test_a_bad_sweep_file_gets_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], message: str
) -> None:
    path = _sweep_file(tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump({**data, **change}), encoding="utf-8")
    assert cli.main(["sweep", str(path), "--out", str(tmp_path / "sweep")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "sweep").exists()  # nothing made for a sweep that cannot start


def test_a_missing_sweep_file_and_a_resume_of_a_non_sweep_get_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["sweep", str(tmp_path / "nope.yaml")]) == 2
    assert "sweep file" in capsys.readouterr().err
    assert cli.main(["sweep", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no sweep.yaml and study.db there" in err and len(err.splitlines()) == 1
    assert cli.main(["sweep", str(_sweep_file(tmp_path)), "--ray-num-cpus", "0", "--ray-address", "local"]) == 2
    assert "--ray-num-cpus 0: give a positive number" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine", encoding="utf-8")
    assert cli.main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "taken")]) == 2
    assert "continue that sweep with --resume" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["sweep.yaml", "taken"]


def test_the_documented_example_sweep_file_is_valid_and_its_list_choices_become_settings() -> None:
    from humanoid_rl.train.sweep_spec import SweepSpec

    spec = SweepSpec.load(Path(__file__).resolve().parents[1] / "docs" / "sweep_example.yaml")
    assert spec.trials == 12 and set(spec.distributions) >= {"learning_rate", "n_steps", "net_arch"}
    config = spec.trial_config({"net_arch": "[128, 128]", "learning_rate": 2e-4, "n_steps": 1024})
    assert config.net_arch == [128, 128] and config.learning_rate == 2e-4 and config.backend == "mujoco"
