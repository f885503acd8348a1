"""``humanoid-rl eval``: the shipped policy runs through the node's loading path, next to the PD-only
baseline on the same seeds, and the results land in JSON and a plot."""

from __future__ import annotations

import json
from pathlib import Path

from humanoid_rl.cli import main
from humanoid_rl.train.evaluate import EvalSetting, evaluate

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "humanoid_stand.onnx"


def test_eval_of_the_shipped_policy_writes_policy_and_baseline_results(tmp_path: Path) -> None:
    assert SHIPPED.is_file(), "models/humanoid_stand.onnx must ship with the repository"
    code = main(["eval", str(SHIPPED), "--episodes", "1", "--episode-s", "2.5", "--push-force", "60",
                 "--out", str(tmp_path)])
    assert code == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert (tmp_path / "eval.png").stat().st_size > 10_000
    for name in ("policy", "baseline"):
        r = result[name]
        assert r["episodes"] == 1
        assert r["success_rate"] + r["fall_rate"] == 1.0
        assert 0.0 < r["mean_length_s"] <= 2.5
        assert set(r["reward_term_returns"]) >= {"survival", "upright", "stay_in_place"}
        assert 0.0 < r["min_joint_limit_distance_rad"] < 3.0
    assert result["policy"]["per_episode"][0]["seed"] == result["baseline"]["per_episode"][0]["seed"] == 0
    assert result["policy"]["per_episode"][0]["pushes"] == 1  # a push at 2 s, inside the 2.5 s episode
    assert result["setting"]["randomize"] is True


def test_the_same_seed_gives_the_baseline_the_same_episode() -> None:
    setting = EvalSetting(episodes=1, episode_s=1.0, push_force_n=40.0, seed=7)
    first, second = (evaluate(None, setting)["baseline"]["per_episode"][0] for _ in range(2))
    assert first["return"] == second["return"]
    assert first["min_joint_limit_distance_rad"] == second["min_joint_limit_distance_rad"]


def test_eval_films_the_chosen_episode_and_it_is_the_evaluated_one(tmp_path: Path) -> None:
    code = main(["eval", str(SHIPPED), "--episodes", "2", "--episode-s", "2.5", "--seed", "5", "--no-baseline",
                 "--shield", "--video", "6", "--out", str(tmp_path)])
    assert code == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    (video,) = result["videos"]
    assert video["seed"] == 6 and video["policy"] == "policy"
    path = Path(video["path"])
    assert path.parent == tmp_path and path.stat().st_size > 10_000
    assert video["frames"] >= 25 * 2.5 - 1 and video["dropped_frames"] == 0  # 25 fps of sim time, lock-step
    evaluated = next(e for e in result["policy"]["per_episode"] if e["seed"] == 6)
    assert video["return"] == evaluated["return"] and video["length_s"] == evaluated["length_s"]


def test_eval_refuses_a_video_of_an_episode_it_does_not_evaluate_in_one_line(tmp_path: Path, capsys) -> None:
    code = main(["eval", str(SHIPPED), "--episodes", "2", "--seed", "5", "--video", "9", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--video seed 9" in err and "5..6" in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing was run or written
    code = main(["eval", str(SHIPPED), "--backend", "mujoco", "--video", "0", "--out", str(tmp_path)])
    assert code == 2 and "PyBullet" in capsys.readouterr().err
