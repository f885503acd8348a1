"""`humanoid-rl bench`: measured figures, printed and saved as JSON (never asserted in tests).

    humanoid-rl bench all --out bench_results/            # everything below
    humanoid-rl bench inference --model models/humanoid_stand.onnx
    humanoid-rl bench shield                               # filter + balance prediction cost per command
    humanoid-rl bench sim                                  # physics steps/s vs bare stepSimulation()
    humanoid-rl bench loop --rates 50 200 500 1000 --seconds 10

Each figure is reported against a baseline measured in the same run (bare ONNX Runtime, bare
stepSimulation, SingleThreadedExecutor), as a ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_rl.nodes.runner import ExecutorKind

DEFAULT_MODEL = "humanoid_stand.onnx"


def benchmark_shield(n: int = 20_000, seed: int = 0) -> dict[str, Any]:
    """Per-command cost of what the shield node does for each command: kinematics (CoM + feet in one pass),
    balance assessment, and the interval filter, for the 21-joint humanoid on random states near standing."""
    from humanoid_rl.core.kinematics import RobotKinematics
    from humanoid_rl.core.robot_spec import RobotSpec
    from humanoid_rl.core.shield import BalanceState, FilterState, JointCommand, JointLimits, SafetyFilter

    spec = RobotSpec.load()
    kinematics = RobotKinematics(spec)
    safety_filter = SafetyFilter(JointLimits.from_robot_spec(spec))
    rng = np.random.default_rng(seed)
    q0 = np.asarray(spec.default_pose)
    states = q0 + rng.normal(0.0, 0.05, size=(256, spec.n_joints))
    commands = q0 + rng.normal(0.0, 0.1, size=(256, spec.n_joints))
    base_pos = np.array([0.0, 0.0, spec.nominal_base_height])
    base_quat = np.array([0.0, 0.0, 0.0, 1.0])
    names = tuple(spec.joint_names)
    times = {"total": np.empty(n), "kinematics": np.empty(n), "filter": np.empty(n)}
    clock = time.perf_counter_ns
    interventions = 0
    for i in range(n):
        k = i & 255
        start = clock()
        com, feet = kinematics.com_and_foot_positions(base_pos, base_quat, states[k])
        mid = clock()
        balance = BalanceState(
            tilt=0.02,
            tilt_rate=0.0,
            com_xy=com[:2],
            com_vel_xy=np.zeros(2),
            com_height=com[2] - float(feet[:, 2].min()),
            feet=feet,
            contacts=np.array([True, True]),
            foot_size=spec.foot_size,
            yaw=0.0,
        )
        state = FilterState(stamp=1.0, positions=states[k], velocities=np.zeros(spec.n_joints), balance=balance)
        result = safety_filter.filter(JointCommand(1.0, names, commands[k]), state, states[k])
        end = clock()
        interventions += bool(result.interventions)
        times["kinematics"][i], times["filter"][i], times["total"][i] = mid - start, end - mid, end - start
    out: dict[str, Any] = {"n": n, "joints": spec.n_joints, "commands_with_interventions": interventions}
    for key, values in times.items():
        us = values / 1e3
        out[f"{key}_us"] = {
            "p50": float(np.percentile(us, 50)),
            "p99": float(np.percentile(us, 99)),
            "mean": float(us.mean()),
        }
    out["target_p99_us"] = 50.0
    return out


def benchmark_loop(rate_hz: float, seconds: float, executor: ExecutorKind, model: str) -> dict[str, Any]:
    """The whole simulated graph in one process, real-time mode, at ``rate_hz``: achieved rate, deadline misses
    and state → shielded command latency at the bridge."""
    from humanoid_rl.apps.sim import stack_overrides
    from humanoid_rl.apps.stack import InProcessStack, StackOptions
    from humanoid_rl.graph import POLICY, SIM_BRIDGE, StackMode, sim_graph

    args = argparse.Namespace(
        sync=False, gui=False, seed=0, rate=rate_hz, push_duration=0.2, robot_config="", model=model
    )
    options = StackOptions(nodes=sim_graph(), mode=StackMode.SIM, overrides=stack_overrides(args), executor=executor)
    with InProcessStack(options) as stack:
        bridge, policy = stack.node(SIM_BRIDGE.name), stack.node(POLICY.name)
        warmup_end = time.monotonic() + 1.0
        stack.spin_until(lambda: time.monotonic() > warmup_end)
        bridge.reset_statistics()
        policy.reset_statistics()
        end = time.monotonic() + seconds
        stack.spin_until(lambda: time.monotonic() > end)
        b = bridge.report()
        timing = policy.timing()
    return {
        "rate_hz": rate_hz,
        "executor": executor.value,
        "seconds": seconds,
        "achieved_rate_hz": timing["achieved_rate_hz"],
        "achieved_fraction": timing["achieved_rate_hz"] / rate_hz,
        "deadline_misses": timing["deadline_misses"],
        "policy_ticks": timing["ticks"],
        "inference_us": {"p50": timing["inference_p50_us"], "p99": timing["inference_p99_us"]},
        "latency_us": {"p50": b["latency_p50_us"], "p99": b["latency_p99_us"], "max": b["latency_max_us"]},
        "commands_at_bridge": b.get("commands_applied"),
        "real_time_factor": b.get("real_time_factor"),
        "fell": b["fell"],
    }


def environment() -> dict[str, Any]:
    import os

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "time": datetime.now().isoformat(timespec="seconds"),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["all", "inference", "shield", "sim", "loop"], nargs="?", default="all")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="ONNX model for inference/loop (default: shipped)")
    parser.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=[50.0, 200.0, 500.0, 1000.0],
        help="policy rates for the closed loop (Hz)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per closed-loop case (default 10)")
    parser.add_argument("--out", type=Path, default=Path("bench_results"), help="directory for the JSON files")


def run(args: argparse.Namespace) -> int:
    from humanoid_rl.policy.runtime import benchmark_inference, resolve_model_path

    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"environment": environment()}
    if args.what in ("all", "inference"):
        inference = benchmark_inference(resolve_model_path(args.model))
        results["inference"] = inference
        print(f"inference: {json.dumps({k: v for k, v in inference.items() if not isinstance(v, dict)})}")
    if args.what in ("all", "shield"):
        shield = benchmark_shield()
        results["shield"] = shield
        print(
            f"shield per command: total p50 {shield['total_us']['p50']:.1f} µs p99 {shield['total_us']['p99']:.1f} µs "
            f"(kinematics p50 {shield['kinematics_us']['p50']:.1f}, filter p50 {shield['filter_us']['p50']:.1f})"
        )
    if args.what in ("all", "sim"):
        from humanoid_rl.sim.bench import format_results, run_sim_benchmark

        sim = run_sim_benchmark(min(args.seconds, 10.0))
        results["sim"] = sim
        print(format_results(sim))
    if args.what in ("all", "loop"):
        loops = []
        from humanoid_rl.policy.model_file import read_model_metadata

        model_rate = read_model_metadata(resolve_model_path(args.model)).contract.policy_rate_hz
        for rate in args.rates:
            # A model runs only at the rate it was trained for (the node refuses others); at other rates the
            # hold-pose policy drives the same node chain, and inference is measured on its own above.
            model = args.model if abs(rate - model_rate) < 1e-9 else ""
            for executor in (ExecutorKind.AUTO, ExecutorKind.SINGLE):
                case = benchmark_loop(rate, args.seconds, executor, model)
                case["policy"] = model or "hold pose (model trained at another rate)"
                loops.append(case)
                print(
                    f"loop {rate:6.0f} Hz {executor.value:6s}: achieved {case['achieved_rate_hz']:7.1f} Hz "
                    f"({100 * case['achieved_fraction']:5.1f}%), misses {case['deadline_misses']}, latency p50 "
                    f"{case['latency_us']['p50']:.0f} µs p99 {case['latency_us']['p99']:.0f} µs"
                )
        for case in loops:
            if case["executor"] == ExecutorKind.AUTO.value:
                base = next(c for c in loops if c["rate_hz"] == case["rate_hz"] and c["executor"] == "single")
                case["rate_ratio_vs_single_threaded"] = _ratio(case["achieved_rate_hz"], base["achieved_rate_hz"])
                case["latency_p50_ratio_vs_single_threaded"] = _ratio(
                    case["latency_us"]["p50"], base["latency_us"]["p50"]
                )
        results["loop"] = loops
    path = args.out / f"bench-{args.what}-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2, default=float))
    print(f"saved {path}")
    return 0


def _ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(b) else math.nan
