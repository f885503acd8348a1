"""The fast training path: physics at FAST_PHYSICS_RATE_HZ stands like the 1 kHz simulator that evaluation and
deployment run, its PD torques are the 1 kHz PD's, and `humanoid-rl bench train` measures both paths in one run.
(It is not the training default: a policy trained at 1 kHz falls more often at 500 Hz under pushes; see config.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from train_fixtures import tiny_config

from humanoid_rl.envs.humanoid_env import EnvConfig, HumanoidEnv
from humanoid_rl.envs.pushes import PushConfig
from humanoid_rl.train.cli import env_config, make_vec_env
from humanoid_rl.train.config import FAST_PHYSICS_RATE_HZ, TrainConfig, TrainConfigError
from humanoid_rl.train.throughput import BASELINE, FAST, MUJOCO_BATCHED, CpuClock, run_train_bench

REPO = Path(__file__).resolve().parents[1]
HOLD_S = 5.0
# Stated tolerances of "the same standing result". Measured at 500 Hz against 1 kHz over 5 s: base height
# < 1e-5 m, tilt < 1.2e-4 rad, joints < 5e-5 rad, torques < 0.015 N m apart (the stance sways by ~0.009 rad of
# tilt with a ~3 s period at both rates, in step). At 250 Hz the light joints ring: 0.4 rad and 20 N m apart.
HEIGHT_TOL_M = 1e-3
TILT_TOL_RAD = 2e-3
JOINT_TOL_RAD = 2e-3
TORQUE_TOL_NM = 0.5


def _pd_hold(physics_rate_hz: float, seconds: float = HOLD_S) -> list[tuple[float, float, np.ndarray, np.ndarray]]:
    """Zero action (the PD holds the default pose) in the stand env, nothing random; every 0.5 s: base height,
    tilt, joint positions, applied torques."""
    config = EnvConfig(physics_rate_hz=physics_rate_hz, randomize=False, sensor_noise=False, push=PushConfig.off())
    env = HumanoidEnv("stand", config)
    samples = []
    try:
        env.reset(seed=0)
        every = int(round(0.5 / env.policy_dt))
        for step in range(1, int(round(seconds / env.policy_dt)) + 1):
            _, _, terminated, truncated, info = env.step(np.zeros(env.contract.n_actions, np.float32))
            assert not terminated and not truncated
            if step % every == 0:
                q, _ = env.sim.joint_state()
                samples.append((info["base_height"], info["tilt"], q, env.sim.last_applied_torques.copy()))
    finally:
        env.close()
    return samples


def _largest_differences(a: list, b: list) -> tuple[float, float, float, float]:
    return tuple(  # type: ignore[return-value]
        max(float(np.max(np.abs(np.asarray(x[k]) - np.asarray(y[k])))) for x, y in zip(a, b, strict=True))
        for k in range(4)
    )


@pytest.fixture(scope="module")
def hold_at_1khz() -> list:
    return _pd_hold(1000.0)


def test_training_runs_1khz_physics_unless_the_fast_path_is_asked_for() -> None:
    assert TrainConfig().physics_rate_hz == 0.0  # the robot's 1 kHz: see FAST_PHYSICS_RATE_HZ for why
    assert TrainConfig(physics_rate_hz=FAST_PHYSICS_RATE_HZ).physics_rate_hz == 500.0
    assert (FAST_PHYSICS_RATE_HZ / 50.0).is_integer()


def test_a_training_physics_rate_the_policy_rate_does_not_divide_is_refused_naming_the_setting() -> None:
    with pytest.raises(TrainConfigError, match="physics_rate_hz = -500.0"):
        TrainConfig(physics_rate_hz=-500.0)
    with pytest.raises(TrainConfigError, match="physics_rate_hz = 275.0: use a rate in Hz that the policy rate"):
        TrainConfig(physics_rate_hz=275.0)  # not a multiple of 50 Hz: caught before any run directory is made
    assert TrainConfig(physics_rate_hz=250.0).physics_rate_hz == 250.0


def test_pd_hold_on_the_fast_path_stands_as_the_1khz_simulator_does(hold_at_1khz: list) -> None:
    fast = _pd_hold(FAST_PHYSICS_RATE_HZ)
    height, tilt, joints, torques = _largest_differences(hold_at_1khz, fast)
    assert len(fast) == len(hold_at_1khz) == 10
    assert height < HEIGHT_TOL_M
    assert tilt < TILT_TOL_RAD
    assert joints < JOINT_TOL_RAD
    assert torques < TORQUE_TOL_NM


def test_the_same_comparison_rejects_250_hz_where_the_explicit_pd_of_the_light_joints_rings(
    hold_at_1khz: list,
) -> None:
    _, _, joints, torques = _largest_differences(hold_at_1khz, _pd_hold(250.0))
    assert joints > 10 * JOINT_TOL_RAD and torques > 10 * TORQUE_TOL_NM


def test_pd_torques_at_the_training_rate_match_the_1khz_pd_from_rest() -> None:
    """Static case, no policy: from the same rest pose, a target 0.05 rad off gives kp * 0.05 at both rates."""
    torques = {}
    for rate in (1000.0, FAST_PHYSICS_RATE_HZ):
        env = HumanoidEnv("stand", EnvConfig(physics_rate_hz=rate, randomize=False, sensor_noise=False,
                                             push=PushConfig.off()))
        try:
            env.reset(seed=0)
            sim = env.sim
            q, qd = sim.joint_state()
            assert np.all(np.abs(qd) < 1e-9)
            sim.set_joint_targets(q + 0.05)
            sim.step(1)
            torques[rate] = sim.last_applied_torques.copy()
            expected = np.clip(sim.spec.kp * 0.05, -sim.spec.effort_limits, sim.spec.effort_limits)
        finally:
            env.close()
        np.testing.assert_allclose(torques[rate], expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(torques[1000.0], torques[FAST_PHYSICS_RATE_HZ])


@pytest.mark.slow  # 8 s on a quiet 2-core machine, 80 s under load: six vector envs and two PPO runs start
def test_bench_train_measures_the_baseline_and_the_fast_path_in_one_run(tmp_path: Path) -> None:
    base = tiny_config(tmp_path, n_steps=64, batch_size=64)
    lines: list[str] = []
    results = run_train_bench(("stand",), env_seconds=0.5, train_seconds=0.5, n_envs=2, base=base, log=lines.append,
                              rounds=1, paths=(BASELINE, FAST, MUJOCO_BATCHED))
    stand = results["tasks"]["stand"]
    assert stand[BASELINE]["physics_rate_hz"] == 1000.0
    assert stand[FAST]["physics_rate_hz"] == FAST_PHYSICS_RATE_HZ
    for path, n_envs in ((BASELINE, 2), (FAST, 2), (MUJOCO_BATCHED, 16)):
        (case,) = stand[path]["rounds"]
        assert case["envs_n"]["n_envs"] == n_envs
        for envs in ("envs_1", "envs_n"):
            assert case[envs]["policy_steps_per_s"] > 0
            assert case[envs]["physics_steps_per_s"] == pytest.approx(
                case[envs]["policy_steps_per_s"] * case["physics_rate_hz"] / 50.0
            )
        assert case["physics_to_bare_ratio"] > 0  # (below 1 on a quiet machine; load makes any one figure noisy)
        assert case["envs_n"]["policy_steps_per_cpu_s"] > 0
        assert 0 < case["physics_to_bare_cpu_ratio"] < 1
        assert case["train"]["steps_per_cpu_s"] > 0
        # 16 envs learn from rollouts of the same size as 2 envs' (8 steps each instead of 64)
        assert case["train"]["rollouts"] >= 1 and case["train"]["steps_learned"] % (2 * 64) == 0
        assert stand[path]["median"]["train"] == case["train"]["steps_per_s"] > 0
    speedup = stand[FAST]["speedup_vs_baseline"]
    assert set(speedup) == {"envs_1", "envs_n", "train", "envs_1_per_cpu_s", "envs_n_per_cpu_s", "train_per_cpu_s"}
    assert speedup["envs_1"] == pytest.approx(
        stand[FAST]["median"]["envs_1"] / stand[BASELINE]["median"]["envs_1"]
    )
    assert any(line.startswith("stand fast: median over 1 rounds") and "vs baseline_1khz" in line for line in lines)
    json.dumps(results)  # what `humanoid-rl bench train` saves


def test_bench_train_refuses_a_bad_option_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "humanoid_rl.cli", "bench", "train", "--n-envs", "0", "--out", str(tmp_path / "b")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert result.returncode == 2
    assert "--n-envs 0" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_cpu_clock_counts_the_env_workers_where_the_physics_runs(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, n_envs=2)
    venv = make_vec_env(config, 2, env_config(config))
    try:
        venv.reset()
        actions = np.zeros((2, *venv.action_space.shape), np.float32)
        clock = CpuClock(venv)
        all_started, own_started = clock(), time.process_time()
        for _ in range(100):
            venv.step(actions)
        own = time.process_time() - own_started
        total = clock() - all_started
    finally:
        venv.close()
    assert total > 2 * own  # this process only waits on the pipes; the workers step the simulators
