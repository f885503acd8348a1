"""``humanoid-rl bench estimator`` (humanoid_rl.sim.estimator_walk): its statistics on known series, and one short
episode with a tiny walk-contract model written by the test (no trained weights needed)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
from policy_fixtures import write_mlp_policy

from humanoid_rl.cli_args import velocity_command
from humanoid_rl.core.contract import PolicyContract
from humanoid_rl.core.estimator_params import BEFORE_SOLE
from humanoid_rl.core.observation import walk_terms
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.envs.gait import GaitConfig
from humanoid_rl.sim.estimator_walk import (
    EstimatorWalkConfig,
    autocorrelation_time,
    error_statistics,
    estimator_params,
    format_results,
    run_estimator_bench,
)


def test_the_autocorrelation_time_of_white_noise_is_half_a_sample_and_of_a_first_order_process_its_tau() -> None:
    rng = np.random.default_rng(0)
    dt = 0.02
    white = rng.normal(0.0, 1.0, 20_000)
    assert autocorrelation_time(white, dt) == pytest.approx(dt / 2, abs=dt / 2)
    tau = 0.2
    a = math.exp(-dt / tau)
    coloured = np.empty(20_000)
    coloured[0] = 0.0
    for k in range(1, len(coloured)):
        coloured[k] = a * coloured[k - 1] + rng.normal(0.0, 1.0)
    # Integrated up to the first zero crossing of a noisy estimate: a little short of tau.
    assert autocorrelation_time(coloured, dt) == pytest.approx(tau, rel=0.25)
    assert autocorrelation_time(np.zeros(10), dt) == 0.0


def test_error_statistics_split_bias_from_spread() -> None:
    stats = error_statistics(np.array([0.1, 0.3, 0.1, 0.3]), 0.02)
    assert stats["bias"] == pytest.approx(0.2)
    assert stats["std"] == pytest.approx(0.1)
    assert stats["rmse"] == pytest.approx(math.sqrt(0.05))


def test_cmd_vel_is_three_finite_numbers() -> None:
    assert velocity_command("0.5,0,-0.2") == (0.5, 0.0, -0.2)
    for bad in ("0.5,0", "a,b,c", "nan,0,0"):
        with pytest.raises(argparse.ArgumentTypeError):
            velocity_command(bad)


@pytest.fixture(scope="module")
def walk_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = RobotSpec.load()
    contract = PolicyContract.from_robot(spec, terms=walk_terms(spec.n_joints), gait_period_s=GaitConfig().period_s)
    path = tmp_path_factory.mktemp("models") / "walk_toy.onnx"
    write_mlp_policy(path, contract, hidden=(8,))
    return path


def test_a_short_bench_reports_finite_per_axis_statistics_for_walking_and_standing(walk_model: Path) -> None:
    config = EstimatorWalkConfig(episode_s=2.5, seeds=(0,), settle_s=1.5)
    results = run_estimator_bench(str(walk_model), config)
    json.dumps(results)  # saved as JSON by the CLI
    for case in ("walking", "standing"):
        r = results[case]
        for axis in ("vx", "vy", "vz", "yaw_rate", "height"):
            assert set(r[axis]) == {"bias", "rmse", "std", "autocorrelation_s"}
            assert all(math.isfinite(v) for v in r[axis].values())
        assert len(r["episodes"]) == 1
        assert 0.0 < r["update_us"]["p50"] <= r["update_us"]["p99"]  # the estimator's cost per update
    assert "update µs p50" in format_results(results)
    assert results["setting"]["estimator_rate_hz"] == 50.0


def test_estimator_params_are_set_from_key_value_strings_by_their_field_types() -> None:
    params = estimator_params(["slip_gate_chi2=0", "stance_point=foot_frame", "use_foot_height_measurement=false"])
    assert params.slip_gate_chi2 == 0.0
    assert params.stance_point == "foot_frame"
    assert params.use_foot_height_measurement is False
    before = estimator_params([], BEFORE_SOLE)
    assert (before.stance_point, before.slip_gate_chi2, before.foot_velocity_std) == ("foot_frame", 0.0, 0.1)
    for bad in (["nope=1"], ["slip_gate_chi2=x"], ["stance_point=ankle"], ["use_foot_height_measurement=maybe"]):
        with pytest.raises(ValueError):
            estimator_params(bad)
