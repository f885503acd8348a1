"""Training throughput (``humanoid-rl bench train``): the 1 kHz PyBullet training path against the fast ones (PyBullet
at 500 Hz, MuJoCo at 500 Hz), in one run.

For each task and each path (a set of ``TrainConfig`` settings, ``PATHS``) it measures:

- ``envs_1`` / ``envs_n``: policy steps per wall second of the vector env ``humanoid-rl train`` builds
  (``make_vec_env``: in-process for one env, worker processes for more) with 1 and with the path's ``n_envs``
  environments, stepped with zero actions, and the physics steps per second that makes (policy steps x
  decimation);
- ``bare_step_simulation``: ``stepSimulation()`` alone on the same robot at the path's physics rate, so
  ``physics_to_bare_ratio`` says how much of the engine's speed the environment keeps;
- ``train``: a short real PPO run with the training settings (``n_envs`` envs, VecNormalize, the callbacks that
  run every step): steps collected *and learned* per wall second, counted between the starts of the first and
  the last rollout, so start-up and an unfinished last rollout do not count.

Each figure comes per wall second and per CPU second of all the processes involved (the learner and the env
workers, ``CpuClock``): on a machine shared with other work the CPU figures are the steadier ones, while the
wall figures include what sharing costs. The paths alternate over ``rounds`` rounds; each figure is the median
over rounds, and each ratio to the baseline the median of the ratios within a round (load from other
processes drifts; read the figures next to the load averages the results carry).
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_rl.train.config import FAST_PHYSICS_RATE_HZ, TrainConfig

__all__ = [
    "BASELINE", "FAST", "MUJOCO", "MUJOCO_BATCHED", "PATHS", "measure_bare_physics", "measure_train", "measure_vec_env",
    "run_train_bench",
]

BASELINE = "baseline_1khz"
FAST = "fast"
MUJOCO = "mujoco"
MUJOCO_BATCHED = "mujoco_batched"
# Settings that differ between the paths. The baseline is training as it runs by default: physics at the robot's
# own rate (1 kHz), what evaluation and deployment run.
PATHS: dict[str, dict[str, Any]] = {
    BASELINE: {"physics_rate_hz": 0.0},
    FAST: {"physics_rate_hz": FAST_PHYSICS_RATE_HZ},
    MUJOCO: {"backend": "mujoco", "physics_rate_hz": 0.0},  # its own default rate, 500 Hz
    # Eight environments to each of two worker processes (train/vec_env.py), the rollout kept the same size.
    MUJOCO_BATCHED: {"backend": "mujoco", "physics_rate_hz": 0.0, "n_envs": 16, "n_processes": 2},
}


TRAIN_SETTINGS_SHOWN = ("algo", "n_envs", "n_processes", "n_steps", "batch_size", "n_epochs", "net_arch",
                        "torch_threads")


def path_config(path: str, task: str, base: TrainConfig | None = None, **overrides: Any) -> TrainConfig:
    """The training config of ``path`` for ``task``: ``base`` (or the defaults) with ``overrides``, then the path's
    settings. A path with its own ``n_envs`` keeps the rollout (``n_steps * n_envs``) the others learn from."""
    data = (base or TrainConfig()).to_dict()
    data.update(overrides)
    rollout = int(data["n_steps"]) * int(data["n_envs"])
    data.update(PATHS[path], task=task)
    data["n_steps"] = max(1, rollout // int(data["n_envs"]))
    return TrainConfig.from_dict(data, source=f"bench path {path!r}")


def _decimation(config: TrainConfig) -> tuple[float, int]:
    from humanoid_rl.core.robot_spec import RobotSpec

    spec = RobotSpec.load(config.robot_config or None)
    default = spec.physics_rate_hz
    if config.backend == "mujoco":
        from humanoid_rl.sim.mujoco_sim import MUJOCO_PHYSICS_RATE_HZ

        default = MUJOCO_PHYSICS_RATE_HZ
    rate = float(config.physics_rate_hz or default)
    return rate, int(round(rate / spec.policy_rate_hz))


class CpuClock:
    """CPU seconds of this process and of a vector env's worker processes (SubprocVecEnv): a figure that other
    processes' load on a shared machine skews far less than wall time does. Linux (/proc); elsewhere NaN
    for the workers."""

    def __init__(self, venv: Any) -> None:
        processes = getattr(venv.unwrapped, "processes", [])
        self._stat_files = [Path(f"/proc/{process.pid}/stat") for process in processes]
        self._tick_s = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else math.nan

    def __call__(self) -> float:
        total = time.process_time()
        for stat in self._stat_files:
            try:  # utime and stime: fields 14 and 15, after the parenthesised command name
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                return math.nan
            total += (int(fields[11]) + int(fields[12])) * self._tick_s
        return total


def measure_vec_env(config: TrainConfig, n_envs: int, seconds: float) -> dict[str, Any]:
    """Policy steps/s of the training vector env (zero actions; episodes reset as in training)."""
    from humanoid_rl.train.cli import env_config, make_vec_env

    rate, decimation = _decimation(config)
    venv = make_vec_env(config, n_envs, env_config(config))
    try:
        venv.seed(config.seed)
        venv.reset()
        actions = np.zeros((n_envs, *venv.action_space.shape), dtype=np.float32)
        for _ in range(5):  # warm-up: first steps pay for lazy imports and pipes
            venv.step(actions)
        steps = 0
        cpu_clock = CpuClock(venv)
        cpu_started, started = cpu_clock(), time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            venv.step(actions)
            steps += n_envs
        cpu_s = cpu_clock() - cpu_started
    finally:
        venv.close()
    policy_steps_per_s = steps / elapsed
    return {
        "n_envs": n_envs,
        "physics_rate_hz": rate,
        "decimation": decimation,
        "policy_steps": steps,
        "wall_s": elapsed,
        "policy_steps_per_s": policy_steps_per_s,
        "physics_steps_per_s": policy_steps_per_s * decimation,
        "cpu_s": cpu_s,  # all processes: this one and the workers
        "policy_steps_per_cpu_s": steps / cpu_s,
        "physics_steps_per_cpu_s": steps * decimation / cpu_s,
    }


def measure_bare_physics(config: TrainConfig, seconds: float) -> dict[str, Any]:
    """``stepSimulation()`` alone on the standing robot at the config's physics rate (see ``sim.bench``)."""
    from humanoid_rl.core.robot_spec import RobotSpec
    from humanoid_rl.sim.bench import _bare_standing_loop
    from humanoid_rl.sim.simulator import HumanoidSim, SimConfig

    rate, decimation = _decimation(config)
    spec = RobotSpec.load(config.robot_config or None)
    if config.backend == "mujoco":
        return _bare_mujoco(spec, rate, seconds)
    with HumanoidSim(spec, SimConfig(physics_rate_hz=rate)) as sim:
        n_steps = max(50, int(round(seconds * 10_000)))  # ~10k steps/s: about `seconds` of wall time
        wall, cpu = _bare_standing_loop(sim, n_steps, decimation)
    return {"physics_rate_hz": rate, "physics_steps": n_steps, "wall_s": wall, "physics_steps_per_s": n_steps / wall,
            "cpu_s": cpu, "physics_steps_per_cpu_s": n_steps / cpu}


def _bare_mujoco(spec: Any, rate: float, seconds: float) -> dict[str, Any]:
    """``mj_step()`` alone on the standing robot (its PD runs inside the engine, as in training)."""
    import mujoco

    from humanoid_rl.sim.bench import _clock, _since
    from humanoid_rl.sim.mujoco_sim import MujocoHumanoidSim
    from humanoid_rl.sim.simulator import SimConfig

    sim = MujocoHumanoidSim(spec, SimConfig(physics_rate_hz=rate))
    n_steps = max(50, int(round(seconds * 30_000)))  # ~30k steps/s: about `seconds` of wall time
    wall = cpu = 0.0
    for _ in range(0, n_steps, 100):  # bursts of 100 steps from the standing pose (reset untimed)
        sim.reset(seed=0)
        start = _clock()
        mujoco.mj_step(sim.model, sim.data, nstep=100)
        elapsed = _since(start)
        wall, cpu = wall + elapsed[0], cpu + elapsed[1]
    n_steps = (n_steps + 99) // 100 * 100
    return {"physics_rate_hz": rate, "physics_steps": n_steps, "wall_s": wall, "physics_steps_per_s": n_steps / wall,
            "cpu_s": cpu, "physics_steps_per_cpu_s": n_steps / cpu}


def measure_train(config: TrainConfig, seconds: float) -> dict[str, Any]:
    """Steps collected and learned per wall second by a short PPO (or other ``config.algo``) run of ``train``'s
    model and vector env, between the start of the first rollout and the start of the last one."""
    import torch
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList
    from stable_baselines3.common.vec_env import VecNormalize

    from humanoid_rl.train.callbacks import RewardTermsCallback
    from humanoid_rl.train.cli import build_model, env_config, make_vec_env

    class RolloutClock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.marks: list[tuple[float, int, float]] = []

        def _on_rollout_start(self) -> None:  # the previous rollout has been collected and learned from
            self.marks.append((time.perf_counter(), int(self.model.num_timesteps), cpu_clock()))

        def _on_step(self) -> bool:
            return len(self.marks) < 2 or self.marks[-1][0] - self.marks[0][0] < seconds

    torch.set_num_threads(config.torch_threads)
    env = make_vec_env(config, config.n_envs, env_config(config, curriculum_level=config.curriculum_start))
    env = VecNormalize(env, norm_obs=True, norm_reward=config.normalize_reward, clip_obs=config.clip_obs,
                       gamma=config.gamma)
    cpu_clock = CpuClock(env)
    clock = RolloutClock()
    try:
        model = build_model(config, env, tensorboard_dir=None)
        callbacks = CallbackList([RewardTermsCallback(min_steps_per_record=min(1000, config.n_steps * config.n_envs)),
                                  clock])
        model.learn(total_timesteps=10**9, callback=callbacks, progress_bar=False)
    finally:
        env.close()
    (t0, s0, c0), (t1, s1, c1) = clock.marks[0], clock.marks[-1]
    return {
        "algo": config.algo,
        "n_envs": config.n_envs,
        "physics_rate_hz": _decimation(config)[0],
        "rollouts": len(clock.marks) - 1,
        "steps_learned": s1 - s0,
        "wall_s": t1 - t0,
        "steps_per_s": (s1 - s0) / (t1 - t0) if t1 > t0 else math.nan,
        "cpu_s": c1 - c0,  # the learner's process and the env workers
        "steps_per_cpu_s": (s1 - s0) / (c1 - c0) if c1 > c0 else math.nan,
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(b) and math.isfinite(a) else math.nan


def _measure_case(config: TrainConfig, env_seconds: float, train_seconds: float) -> dict[str, Any]:
    case: dict[str, Any] = {"physics_rate_hz": _decimation(config)[0]}
    case["envs_1"] = measure_vec_env(config, 1, env_seconds)
    case["envs_n"] = measure_vec_env(config, config.n_envs, env_seconds)
    case["bare_step_simulation"] = measure_bare_physics(config, min(env_seconds, 2.0))
    case["physics_to_bare_ratio"] = _ratio(case["envs_1"]["physics_steps_per_s"],
                                           case["bare_step_simulation"]["physics_steps_per_s"])
    case["physics_to_bare_cpu_ratio"] = _ratio(case["envs_1"]["physics_steps_per_cpu_s"],
                                               case["bare_step_simulation"]["physics_steps_per_cpu_s"])
    if train_seconds > 0:
        case["train"] = measure_train(config, train_seconds)
    return case


def _headlines(case: dict[str, Any]) -> dict[str, float]:
    """The figures compared between paths: policy steps/s with 1 and n envs, steps learned/s in training."""
    figures = {}
    for envs in ("envs_1", "envs_n"):
        figures[envs] = case[envs]["policy_steps_per_s"]
        figures[f"{envs}_per_cpu_s"] = case[envs]["policy_steps_per_cpu_s"]
    if "train" in case:
        figures["train"] = case["train"]["steps_per_s"]
        figures["train_per_cpu_s"] = case["train"]["steps_per_cpu_s"]
    return figures


def run_train_bench(
    tasks: tuple[str, ...] = ("stand", "walk"),
    env_seconds: float = 5.0,
    train_seconds: float = 25.0,
    n_envs: int = 2,
    paths: tuple[str, ...] = tuple(PATHS),
    base: TrainConfig | None = None,
    log: Any = print,
    rounds: int = 2,
) -> dict[str, Any]:
    """Every measurement above for each task and path, in ``rounds`` rounds that alternate the paths; per path
    the median of each headline figure, and the median over rounds of each path's ratio to the baseline
    measured next to it (load from other processes drifts; a ratio within one round sees the least of it)."""
    settings = path_config(FAST, tasks[0], base, n_envs=n_envs)
    results: dict[str, Any] = {
        "paths": {p: PATHS[p] for p in paths},
        "train_settings": {k: v for k, v in dataclasses.asdict(settings).items() if k in TRAIN_SETTINGS_SHOWN},
        "env_seconds": env_seconds,
        "train_seconds": train_seconds,
        "rounds": rounds,
        "tasks": {},
        "load_average_1min_at_start": os.getloadavg()[0],
    }
    for task in tasks:
        measured: dict[str, list[dict[str, Any]]] = {path: [] for path in paths}
        for _ in range(rounds):
            for path in paths:
                case = _measure_case(path_config(path, task, base, n_envs=n_envs), env_seconds, train_seconds)
                case["load_average_1min"] = os.getloadavg()[0]
                measured[path].append(case)
                log(format_case(task, path, case))
        per_path: dict[str, Any] = {}
        for path, cases in measured.items():
            figures = [_headlines(case) for case in cases]
            per_path[path] = {
                "physics_rate_hz": cases[0]["physics_rate_hz"],
                "median": {key: statistics.median(f[key] for f in figures) for key in figures[0]},
                "rounds": cases,
            }
            if BASELINE in measured and path != BASELINE:
                baseline = [_headlines(case) for case in measured[BASELINE]]
                per_path[path]["speedup_vs_baseline"] = {
                    key: statistics.median(_ratio(f[key], b[key]) for f, b in zip(figures, baseline, strict=True))
                    for key in figures[0]
                }
                ratios = per_path[path]["speedup_vs_baseline"]
                log(f"{task:5s} {path}: median over {rounds} rounds " + ", ".join(
                    f"x{value:.2f} {key}" for key, value in ratios.items()) + f" vs {BASELINE}")
        results["tasks"][task] = per_path
    results["load_average_1min_at_end"] = os.getloadavg()[0]
    return results


def format_case(task: str, path: str, case: dict[str, Any]) -> str:
    one, many, bare = case["envs_1"], case["envs_n"], case["bare_step_simulation"]
    line = (f"{task:5s} {path:14s} physics {case['physics_rate_hz']:5.0f} Hz, policy steps per wall s (per CPU s): "
            f"1 env {one['policy_steps_per_s']:5.0f} ({one['policy_steps_per_cpu_s']:5.0f}), "
            f"{many['n_envs']} envs {many['policy_steps_per_s']:5.0f} ({many['policy_steps_per_cpu_s']:5.0f})")
    if "train" in case:
        line += (f", train {case['train']['steps_per_s']:5.0f} ({case['train']['steps_per_cpu_s']:5.0f}) learned "
                 f"({case['train']['algo']})")
    line += (f"; physics {one['physics_steps_per_s']:5.0f}/s, {case['physics_to_bare_ratio']:.2f} of bare "
             f"{bare['physics_steps_per_s']:.0f} ({case['physics_to_bare_cpu_ratio']:.2f} per CPU s)")
    return line
