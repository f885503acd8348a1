"""``humanoid-rl eval --task reach``: the shipped reach policy against the PD hold on the same seeded goals, the
results in JSON and a plot, and the options the reach task has no use for refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli_bad_input import error_line

from humanoid_rl.cli import main
from humanoid_rl.paths import model_path

REACH = str(model_path("humanoid_reach.onnx"))
STAND = str(model_path("humanoid_stand.onnx"))


def test_eval_reach_scores_the_shipped_policy_and_the_pd_hold_on_the_same_goals(tmp_path: Path) -> None:
    assert main(["eval", "--task", "reach", REACH, "--episodes", "4", "--seed", "3", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert (tmp_path / "eval.png").stat().st_size > 10_000
    policy, baseline = result["policy"], result["baseline"]
    assert result["setting"]["task"] == "reach" and result["setting"]["episode_s"] == 1.0
    for r in (policy, baseline):
        assert r["episodes"] == 4 and r["success_radius_m"] == 0.05  # the model's training radius
        assert [e["seed"] for e in r["per_episode"]] == [3, 4, 5, 6]
    # Same seeds, same goals for both.
    assert [e["goal"] for e in policy["per_episode"]] == [e["goal"] for e in baseline["per_episode"]]
    assert policy["success_rate"] == 1.0 and policy["mean_final_distance_m"] < 0.05
    # The hold leaves the hand where it starts; the policy moves it to the goal.
    assert baseline["mean_final_distance_m"] > 2 * policy["mean_final_distance_m"]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--task", "reach", STAND], "has no goal term"),
        ([REACH], "is goal-conditioned (it has a goal term). Fix: --task reach"),
        (["--task", "reach", REACH, "--push-force", "60"], "--task reach: --push-force does not apply"),
        (["--task", "reach", REACH, "--shield"], "--task reach: --shield does not apply"),
    ],
)
def test_eval_reach_refuses_what_does_not_fit_in_one_line(
    options: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", *options, "--out", str(tmp_path / "run")]) == 2
    assert says in error_line(capsys)
    assert not (tmp_path / "run").exists()
