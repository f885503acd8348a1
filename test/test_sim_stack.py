"""The whole simulated graph in one process (what `humanoid-rl sim` runs): real rclpy, PyBullet and ONNX Runtime.

Lock-step mode, so the outcome does not depend on how loaded the machine is.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from humanoid_rl.apps.sim import collect_report, stack_overrides
from humanoid_rl.apps.stack import InProcessStack, StackOptions
from humanoid_rl.graph import POLICY, SAFETY_SHIELD, SIM_BRIDGE, StackMode, sim_graph
from humanoid_rl.paths import model_path

SHIPPED_MODEL = "humanoid_stand.onnx"


def run_graph(model: str, sim_seconds: float) -> dict:
    args = argparse.Namespace(sync=True, gui=False, seed=3, rate=50.0, push_duration=0.2, robot_config="", model=model)
    options = StackOptions(nodes=sim_graph(), mode=StackMode.SIM, overrides=stack_overrides(args))
    with InProcessStack(options) as stack:
        policy = stack.node(POLICY.name)
        assert policy.configure_error == ""
        bridge = stack.node(SIM_BRIDGE.name)
        finished = stack.spin_until(lambda: bridge.sim_time_s >= sim_seconds, wall_timeout_s=240.0)
        assert finished, f"the lock-step graph stalled at {bridge.sim_time_s:.2f} s of sim time"
        report = collect_report(stack, args, wall_time_s=1.0, pushes=[])
        report["shield_final_mode"] = stack.node(SAFETY_SHIELD.name).shield.mode.value
    return report


@pytest.mark.parametrize("model", ["", SHIPPED_MODEL], ids=["pd_only_hold_policy", "shipped_model"])
def test_the_whole_graph_in_lock_step_keeps_the_robot_upright_for_10_s(model: str) -> None:
    if model:
        assert model_path(model).is_file(), "the shipped policy is missing from models/"
    report = run_graph(model, sim_seconds=10.0)
    assert not report["fell"]
    assert report["upright_time_s"] >= 9.9
    assert report["base_height_min_m"] > 0.7
    assert report["shield_final_mode"] == "ACTIVE"
    # Every period got its shielded command in time: lock-step never had to fall back on its timeout.
    assert report["bridge"]["sync_timeouts"] == 0
    assert report["bridge"]["stale_commands"] == 0
    assert report["policy"]["published"] >= 0.85 * 50 * 10  # ramp first, then one command per 20 ms period
    assert sum(report["shield"]["commands_rejected"].values()) == 0
    # The estimator, compared with the simulator's ground truth while standing.
    assert report["estimator"]["velocity_rmse_mps"] < 0.05
    assert report["estimator"]["orientation_error_deg"] < 2.0


def test_humanoid_rl_sim_writes_a_report_with_the_documented_keys(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "humanoid_rl.cli", "sim", "--duration", "3", "--push", "", "--out", str(out)]
        + ["--cmd-vel", "0:0.2,0,0;2:0,0,0.3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    for key in (
        "sim_time_s",
        "wall_time_s",
        "fell",
        "upright_time_s",
        "base_height_min_m",
        "policy_rate_hz",
        "latency_us",
        "deadline_misses",
        "estimator",
        "shield",
    ):
        assert key in report, key
    assert set(report["policy_rate_hz"]) == {"target", "achieved"}
    assert set(report["latency_us"]) == {"p50", "p99", "max"}
    assert {"velocity_rmse_mps", "orientation_error_deg"} <= set(report["estimator"])
    assert {"mode_counts", "interventions"} <= set(report["shield"])
    assert report["sim_time_s"] >= 3.0 and not report["fell"]
    assert 0 < report["latency_us"]["p50"] <= report["latency_us"]["p99"] <= report["latency_us"]["max"]
    # walking.png: commanded vs achieved velocity, foot contacts and the path (a velocity command was given).
    for plot in ("base_height.png", "joint_targets.png", "latency_hist.png", "walking.png"):
        assert (out / plot).stat().st_size > 1000, plot
    assert "stayed up" in result.stdout
    # The video: 25 fps of the 3 s simulated, every frame rendered (lock-step waits for the renderer).
    assert report["video"]["frames"] >= 75 and report["video"]["dropped_frames"] == 0
    assert (out / "run.mp4").stat().st_size > 10_000
    # The velocity command was published and the report compares it with what the robot did (a stand policy
    # does not walk: the error is about the command itself).
    tracking = report["velocity_tracking"]
    assert tracking["commands"] == "from 0 s: 0.2, 0, 0; from 2 s: 0, 0, 0.3"
    assert 0.1 < tracking["vx_error_mps"] < 0.25 and tracking["distance_m"] < 0.5
    assert "velocity (" in result.stdout


def test_a_model_whose_contract_does_not_match_the_robot_is_refused_by_humanoid_rl_sim(tmp_path: Path) -> None:
    import onnx

    from humanoid_rl.core.contract import METADATA_KEY, PolicyContract

    model = onnx.load(str(model_path(SHIPPED_MODEL)))
    entry = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    contract = PolicyContract.from_json(entry.value).to_dict()
    contract["joint_names"][0], contract["joint_names"][1] = contract["joint_names"][1], contract["joint_names"][0]
    entry.value = json.dumps(contract)
    bad = tmp_path / "swapped.onnx"
    onnx.save(model, str(bad))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "humanoid_rl.cli",
            "sim",
            "--duration",
            "1",
            "--push",
            "",
            "--model",
            str(bad),
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "joint order differs" in result.stderr
    assert not (tmp_path / "run" / "report.json").exists()
