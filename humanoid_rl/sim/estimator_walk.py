"""The state estimator while a policy walks: ``humanoid-rl bench estimator``.

The walk task's environment runs the policy (an ONNX model) with ``LeggedStateEstimator`` in the loop as in the
ROS stack: the estimator gets one sensor sample per policy step (the sim bridge's ``state_rate_hz`` is the
policy rate, 50 Hz), and the policy observes its base velocity and height (``policy_sees="estimate"``), or the
exact ones plus the training noise (``"truth"``, the estimator then runs open loop beside it). The shield core
sits between policy and motors as in ``humanoid-rl eval --shield`` unless switched off. No ROS, a few seconds
per simulated 20 s.

Errors are estimate minus truth of the base velocity in the base frame (what the policy's ``base_lin_vel``
observes), per axis, after ``settle_s`` (the shield's start-up hold). For each axis: bias, RMSE, standard
deviation and the autocorrelation time of the error (the integral of its normalised autocorrelation up to the
first zero crossing), the figures a training-side noise model needs. "walking" runs the given command,
"standing" the same policy commanded to stand (0, 0, 0), on the same seeds.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from humanoid_rl.core.estimator import LeggedStateEstimator
from humanoid_rl.core.estimator_params import BEFORE_SOLE, EstimatorParams
from humanoid_rl.core.kinematics import RobotKinematics

__all__ = ["EstimatorWalkConfig", "error_statistics", "run_episode", "run_estimator_bench"]

AXES = ("vx", "vy", "vz")


@dataclass(frozen=True)
class EstimatorWalkConfig:
    cmd_vel: tuple[float, float, float] = (0.5, 0.0, 0.0)
    episode_s: float = 20.0
    seeds: tuple[int, ...] = (0, 1, 2)
    settle_s: float = 2.0
    """Errors are counted from this time on (the shield holds the default pose for the first second or so)."""
    shield: bool = True
    policy_sees: str = "estimate"
    params: EstimatorParams = field(default_factory=EstimatorParams)

    def __post_init__(self) -> None:
        if self.policy_sees not in ("estimate", "truth"):
            raise ValueError(f"policy_sees = {self.policy_sees!r}: use 'estimate' or 'truth'")
        if not (math.isfinite(self.episode_s) and self.episode_s > self.settle_s >= 0.0):
            raise ValueError(f"episode_s = {self.episode_s!r}, settle_s = {self.settle_s!r}: need episode_s > settle_s")


def autocorrelation_time(error: np.ndarray, dt: float) -> float:
    """Seconds: integral of the normalised autocorrelation of ``error`` (mean removed) up to its first zero
    crossing. White noise gives about dt/2; a first-order process with time constant tau gives about tau."""
    e = np.asarray(error, dtype=np.float64) - float(np.mean(error))
    n = len(e)
    variance = float(e @ e)
    if n < 2 or variance <= 0.0:
        return 0.0
    spectrum = np.fft.rfft(e, 2 * n)  # zero-padded: linear, not circular, correlation
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[:n] / variance
    negative = np.flatnonzero(acf <= 0.0)
    end = int(negative[0]) if len(negative) else n
    return float(dt * (acf[:end].sum() - 0.5))  # trapezoid: the lag-0 term counts half


def error_statistics(error: np.ndarray, dt: float) -> dict[str, float]:
    """Bias, RMSE, standard deviation and autocorrelation time of a 1-D error series."""
    e = np.asarray(error, dtype=np.float64)
    return {
        "bias": float(e.mean()),
        "rmse": float(np.sqrt(np.mean(e * e))),
        "std": float(e.std()),
        "autocorrelation_s": autocorrelation_time(e, dt),
    }


def run_episode(
    model: str, seed: int, cmd_vel: tuple[float, float, float], config: EstimatorWalkConfig
) -> dict[str, Any]:
    """One seeded episode; per-sample traces (after settle_s) and the episode's distance and fall."""
    from humanoid_rl.envs.commands import CommandConfig
    from humanoid_rl.envs.humanoid_env import EnvConfig, HumanoidEnv, Task
    from humanoid_rl.envs.pushes import PushConfig
    from humanoid_rl.policy import load_policy
    from humanoid_rl.sim.simulator import SensorReadings
    from humanoid_rl.train.evaluate import ShieldInLoop

    env_config = EnvConfig(commands=CommandConfig.fixed(*cmd_vel), randomize=False, episode_length_s=config.episode_s,
                           push=PushConfig(force_range_n=(0.0, 0.0)))
    env = HumanoidEnv(Task.WALK, env_config)
    try:
        policy = load_policy(model, env.contract)
        env.use_contract(policy.contract)
        if config.shield:
            env.target_filter = ShieldInLoop()
            env.target_filter.reset()
        estimator = LeggedStateEstimator(env.robot_spec, RobotKinematics(env.robot_spec), config.params)
        rows: list[np.ndarray] = []
        update_s: list[float] = []  # the cost of each update (issue #16): real readings, real contact patterns

        def estimate(readings: SensorReadings) -> tuple[np.ndarray, float]:
            start = time.perf_counter()
            out = estimator.update(readings.time_s, readings.imu_quat, readings.imu_gyro, readings.imu_accel,
                                   readings.joint_pos, readings.joint_vel, readings.foot_forces)
            update_s.append(time.perf_counter() - start)
            truth = env.sim.ground_truth()
            rows.append(np.concatenate([[readings.time_s], truth.lin_vel_body, out.linear_velocity_body,
                                        [truth.ang_vel_body[2], out.angular_velocity_body[2], truth.pos[2], out.height],
                                        truth.pos[:2]]))
            return out.linear_velocity_body, out.height

        if config.policy_sees == "estimate":
            env.base_estimate = estimate
        else:  # the estimator rides along on the readings the observation is built from
            read = env.sim.read_sensors

            def read_and_estimate() -> SensorReadings:
                readings = read()
                estimate(readings)
                return readings

            env.sim.read_sensors = read_and_estimate
        obs, _ = env.reset(seed=seed)
        policy.reset()
        info: dict[str, Any] = {}
        while True:
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
            if terminated or truncated:
                break
    finally:
        env.close()
    data = np.array(rows)
    kept = data[data[:, 0] >= config.settle_s]
    return {
        "time_s": kept[:, 0],
        "true_velocity_body": kept[:, 1:4],
        "estimated_velocity_body": kept[:, 4:7],
        "true_yaw_rate": kept[:, 7],
        "estimated_yaw_rate": kept[:, 8],
        "true_height": kept[:, 9],
        "estimated_height": kept[:, 10],
        "fell": bool(info.get("fell", False)),
        "distance_m": float(np.linalg.norm(data[-1, 11:13] - data[0, 11:13])),
        "path_m": float(np.linalg.norm(np.diff(data[:, 11:13], axis=0), axis=1).sum()),
        "update_s": np.array(update_s),
    }


def _summarise(episodes: list[dict[str, Any]], dt: float) -> dict[str, Any]:
    errors = [ep["estimated_velocity_body"] - ep["true_velocity_body"] for ep in episodes]
    out: dict[str, Any] = {}
    for i, axis in enumerate(AXES):
        per_episode = [error_statistics(e[:, i], dt) for e in errors]
        stacked = np.concatenate([e[:, i] for e in errors])
        out[axis] = {**error_statistics(stacked, dt),
                     "autocorrelation_s": float(np.mean([s["autocorrelation_s"] for s in per_episode]))}
    yaw = np.concatenate([ep["estimated_yaw_rate"] - ep["true_yaw_rate"] for ep in episodes])
    height = np.concatenate([ep["estimated_height"] - ep["true_height"] for ep in episodes])
    speed = np.concatenate([np.linalg.norm(e, axis=1) for e in errors])
    out["yaw_rate"] = error_statistics(yaw, dt)
    out["height"] = error_statistics(height, dt)
    out["velocity_rmse_norm"] = float(np.sqrt(np.mean(speed**2)))
    update_us = 1e6 * np.concatenate([ep["update_s"] for ep in episodes])
    out["update_us"] = {"p50": float(np.median(update_us)), "p99": float(np.percentile(update_us, 99))}
    out["true_speed_rms"] = float(np.sqrt(np.mean(np.concatenate([np.sum(ep["true_velocity_body"][:, :2] ** 2, axis=1)
                                                                   for ep in episodes]))))
    out["episodes"] = [{"distance_m": ep["distance_m"], "path_m": ep["path_m"], "fell": ep["fell"],
                        "rmse": {a: float(np.sqrt(np.mean(e[:, i] ** 2))) for i, a in enumerate(AXES)}}
                       for ep, e in zip(episodes, errors, strict=True)]
    return out


def run_estimator_bench(model: str, config: EstimatorWalkConfig, policy_rate_hz: float = 50.0) -> dict[str, Any]:
    """Walking (config.cmd_vel) and standing (0, 0, 0) on each seed; statistics per case."""
    dt = 1.0 / policy_rate_hz
    results: dict[str, Any] = {
        "setting": {**asdict(config), "model": model, "estimator_rate_hz": policy_rate_hz},
    }
    for case, command in (("walking", config.cmd_vel), ("standing", (0.0, 0.0, 0.0))):
        episodes = [run_episode(model, seed, command, config) for seed in config.seeds]
        results[case] = _summarise(episodes, dt)
    return results


def format_results(results: dict[str, Any]) -> str:
    lines = []
    for case in ("walking", "standing"):
        r = results[case]
        per_axis = ", ".join(f"{a} {r[a]['rmse']:.3f} (bias {r[a]['bias']:+.3f}, tau {r[a]['autocorrelation_s']:.2f} s)"
                             for a in AXES)
        distances = " ".join(f"{ep['distance_m']:.2f}" for ep in r["episodes"])
        falls = sum(ep["fell"] for ep in r["episodes"])
        lines.append(f"{case}: body velocity RMSE m/s {per_axis}; yaw rate {r['yaw_rate']['rmse']:.3f} rad/s; height "
                     f"{100 * r['height']['rmse']:.2f} cm; true speed rms {r['true_speed_rms']:.2f} m/s; distance m "
                     f"{distances}; falls {falls}; update µs p50 {r['update_us']['p50']:.0f} p99 "
                     f"{r['update_us']['p99']:.0f}")
    return "\n".join(lines)


def estimator_params(settings: list[str], start: dict[str, Any] | None = None) -> EstimatorParams:
    """``EstimatorParams`` from ``KEY=VALUE`` strings (``--estimator-param``), each converted to its field's type;
    raises ValueError naming the culprit."""
    kinds = {f.name: f.type for f in fields(EstimatorParams)}
    values: dict[str, Any] = dict(start or {})
    for setting in settings:
        key, _, text = setting.partition("=")
        key = key.strip()
        if key not in kinds or not text:
            raise ValueError(f"--estimator-param {setting!r}: use KEY=VALUE with KEY one of {sorted(kinds)}")
        kind = str(kinds[key])
        if kind.startswith("bool"):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"--estimator-param {setting!r}: use true or false")
            values[key] = text.lower() in ("true", "1")
        elif kind.startswith("str"):
            values[key] = text
        else:
            try:
                values[key] = float(text)
            except ValueError:
                raise ValueError(f"--estimator-param {setting!r}: {text!r} is not a number") from None
    return replace(EstimatorParams(), **values)


def estimator_config_from_args(args: argparse.Namespace) -> EstimatorWalkConfig:
    return EstimatorWalkConfig(
        cmd_vel=args.cmd_vel,
        episode_s=args.episode_s,
        seeds=tuple(args.seeds),
        shield=not args.no_shield,
        policy_sees=args.policy_sees,
        params=estimator_params(args.estimator_param, BEFORE_SOLE if args.estimator_before_sole else None),
    )
