"""`humanoid-rl bench`: measured figures, printed and saved as JSON (never asserted in tests).

    humanoid-rl bench all --out bench_results/            # everything below but train
    humanoid-rl bench inference --model models/humanoid_stand.onnx
    humanoid-rl bench shield                               # kinematics, balance, filter per command vs reference
    humanoid-rl bench sim                                  # physics steps/s vs bare stepSimulation()
    humanoid-rl bench loop --rates 50 200 500 1000 --seconds 10 --layouts one-process per-node-single
    humanoid-rl bench train                                # training env + PPO steps/s: 1 kHz baseline vs fast
    humanoid-rl bench estimator --model walk.onnx --cmd-vel 0.5,0,0   # estimator error under a walking policy

Each figure is reported against a baseline measured in the same run (bare ONNX Runtime, bare
stepSimulation, the naive process layout: one process per node with SingleThreadedExecutor), as a ratio.
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

from humanoid_rl.apps.loop_bench import Layout, LoopBenchError, benchmark_layout
from humanoid_rl.cli_args import DEFAULT_MODEL, float_in, positive_float, writable_dir, write_new_file
from humanoid_rl.policy.parameters import MAX_RATE_HZ, MIN_RATE_HZ, TriggerMode
from humanoid_rl.train.throughput import BASELINE, PATHS

SHIELD_PARTS = ("kinematics", "balance", "filter", "kinematics_and_balance", "total")


def benchmark_shield(n: int = 20_000, seed: int = 0, block: int = 256) -> dict[str, Any]:
    """Per-command cost of what the shield node does for each command: kinematics (CoM + sole centres in one
    pass), balance assessment (building the BalanceState included) and the interval filter (building the
    command and state included), for the 21-joint humanoid on random states near standing.

    Measured for the optimised code (top-level ``*_us`` keys) and, on the same inputs, for the readable reference
    it is tested against (``reference``), in alternating blocks of ``block`` commands so that machine load falls
    on both alike; ``ratio_reference_over_optimised`` divides the two. ``mismatches`` counts commands whose
    outputs or interventions differ between them (expected 0)."""
    from humanoid_rl.core.kinematics import RobotKinematics
    from humanoid_rl.core.robot_spec import RobotSpec
    from humanoid_rl.core.shield import BalanceState, FilterState, JointCommand, JointLimits, SafetyFilter
    from humanoid_rl.core.shield_reference import ReferenceKinematics, ReferenceSafetyFilter

    spec = RobotSpec.load()
    limits = JointLimits.from_robot_spec(spec)
    implementations = {
        "optimised": (RobotKinematics(spec), SafetyFilter(limits)),
        "reference": (ReferenceKinematics(spec), ReferenceSafetyFilter(limits)),
    }
    rng = np.random.default_rng(seed)
    q0 = np.asarray(spec.default_pose)
    states = q0 + rng.normal(0.0, 0.05, size=(block, spec.n_joints))
    commands = q0 + rng.normal(0.0, 0.1, size=(block, spec.n_joints))
    base_pos = np.array([0.0, 0.0, spec.nominal_base_height])
    base_quat = np.array([0.0, 0.0, 0.0, 1.0])
    names = tuple(spec.joint_names)
    zeros, contacts = np.zeros(spec.n_joints), np.array([True, True])
    clock = time.perf_counter_ns
    times = {name: np.empty((3, n)) for name in implementations}  # kinematics, balance, filter (ns)
    outputs = {name: [None] * block for name in implementations}
    interventions = 0
    mismatches = 0
    for first in range(0, n, block):
        for name, (kinematics, safety_filter) in implementations.items():  # alternate blocks: same load on both
            spent = times[name]
            for i in range(first, min(first + block, n)):
                k = i - first
                start = clock()
                com, feet = kinematics.com_and_sole_centres(base_pos, base_quat, states[k])
                after_kinematics = clock()
                balance = BalanceState(
                    tilt=0.02,
                    tilt_rate=0.0,
                    com_xy=com[:2],
                    com_vel_xy=np.zeros(2),
                    com_height=com[2] - float(feet[:, 2].min()),
                    feet=feet,
                    contacts=contacts,
                    foot_size=spec.sole_sizes,
                    yaw=0.0,
                )
                assessment = safety_filter.assess_balance(balance)
                after_balance = clock()
                state = FilterState(stamp=1.0, positions=states[k], velocities=zeros, balance=balance)
                result = safety_filter.filter(JointCommand(1.0, names, commands[k]), state, states[k], assessment)
                end = clock()
                spent[0, i], spent[1, i], spent[2, i] = after_kinematics - start, after_balance - after_kinematics, (
                    end - after_balance
                )
                outputs[name][k] = result
        for k in range(min(block, n - first)):
            fast, ref = outputs["optimised"][k], outputs["reference"][k]
            interventions += bool(fast.interventions)
            mismatches += not (
                fast.positions.tobytes() == ref.positions.tobytes()
                and fast.interventions == ref.interventions
                and repr(fast.balance) == repr(ref.balance)  # repr: exact floats, and nan equal to nan
            )
    out: dict[str, Any] = {
        "n": n,
        "joints": spec.n_joints,
        "block": block,
        "commands_with_interventions": interventions,
        "mismatches": mismatches,
    }
    for name in implementations:
        kinematics_ns, balance_ns, filter_ns = times[name]
        parts = {
            "kinematics": kinematics_ns,
            "balance": balance_ns,
            "filter": filter_ns,
            "kinematics_and_balance": kinematics_ns + balance_ns,
            "total": kinematics_ns + balance_ns + filter_ns,
        }
        figures = {f"{part}_us": _percentiles(parts[part] / 1e3) for part in SHIELD_PARTS}
        if name == "optimised":
            out.update(figures)
        else:
            out["reference"] = figures
    out["ratio_reference_over_optimised"] = {
        f"{part}_us": {
            q: _ratio(out["reference"][f"{part}_us"][q], out[f"{part}_us"][q]) for q in ("p50", "p99", "mean")
        }
        for part in SHIELD_PARTS
    }
    out["target_p99_us"] = 50.0  # the filter, 21 joints, all stages
    out["target_kinematics_and_balance_p99_us"] = 100.0
    return out


def _percentiles(us: np.ndarray) -> dict[str, float]:
    return {"p50": float(np.percentile(us, 50)), "p99": float(np.percentile(us, 99)), "mean": float(us.mean())}


def format_shield(shield: dict[str, Any]) -> str:
    """The shield figures as a small table: optimised vs reference, p50/p99 per part, and their ratios."""
    lines = [
        f"shield per command ({shield['n']} commands each, reference and optimised in alternating blocks of "
        f"{shield['block']}; outputs differing: {shield['mismatches']}):",
        f"  {'part':28s}{'optimised p50':>15s}{'p99':>9s}{'reference p50':>15s}{'p99':>9s}"
        f"{'ratio p50':>11s}{'p99':>7s}",
    ]
    for part in SHIELD_PARTS:
        fast, ref = shield[f"{part}_us"], shield["reference"][f"{part}_us"]
        ratio = shield["ratio_reference_over_optimised"][f"{part}_us"]
        lines.append(
            f"  {part + ' (µs)':28s}{fast['p50']:15.1f}{fast['p99']:9.1f}{ref['p50']:15.1f}{ref['p99']:9.1f}"
            f"{ratio['p50']:10.2f}x{ratio['p99']:6.2f}x"
        )
    return "\n".join(lines)


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
    parser.epilog = (
        "Defaults: 'all' runs inference, shield, sim and loop (not 'train', which needs the training extra: torch, "
        "SB3). The loop measures --rates 50 200 500 1000 in every layout (20 cases: --seconds-at-50hz 60 s each at "
        "50 Hz, --seconds 10 s each otherwise), about 8 minutes plus start-up; 'bench loop --rates 50 --layouts "
        "one-process' is a one-minute check."
    )
    parser.add_argument(
        "what", choices=["all", "inference", "shield", "sim", "loop", "train", "estimator"], nargs="?", default="all",
        help="what to measure; 'all' is everything but 'train' (which needs the training extra: torch, SB3) and "
        "'estimator' (which needs a walk policy: --model)",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="ONNX model for inference/loop (default: shipped)")
    parser.add_argument(
        "--rates",
        type=float_in(MIN_RATE_HZ, MAX_RATE_HZ, "Hz"),
        nargs="+",
        default=[50.0, 200.0, 500.0, 1000.0],
        help="policy rates for the closed loop (Hz; default 50 200 500 1000)",
    )
    parser.add_argument(
        "--seconds", type=positive_float, default=10.0, help="seconds per closed-loop case (default 10)"
    )
    parser.add_argument(
        "--seconds-at-50hz",
        type=positive_float,
        default=60.0,
        help="seconds of the 50 Hz cases (the target there is zero deadline misses in 60 s; default 60)",
    )
    parser.add_argument(
        "--layouts",
        nargs="+",
        choices=[layout.value for layout in Layout],
        default=[layout.value for layout in Layout],
        help="process layouts of the closed loop (default: all; per-node-single is the baseline of the ratios)",
    )
    parser.add_argument(
        "--triggers",
        nargs="+",
        choices=[t.value for t in TriggerMode],
        default=[t.value for t in TriggerMode],
        help="policy triggers to measure in the layouts other than the baseline, which keeps what"
        " `humanoid-rl sim` uses (default: both)",
    )
    parser.add_argument("--tasks", nargs="+", choices=["stand", "walk"], default=["stand", "walk"],
                        help="train: tasks to measure (default: both)")
    parser.add_argument("--env-seconds", type=float, default=5.0, help="train: wall seconds per env case (default 5)")
    parser.add_argument("--train-seconds", type=float, default=25.0,
                        help="train: wall seconds of each short PPO run (default 25; 0 skips them)")
    parser.add_argument("--n-envs", type=int, default=2, help="train: envs of the vector env and PPO (default 2)")
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS),
                        help=f"train: training paths to measure (default: all; {BASELINE} is the baseline of the "
                        "ratios)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="train: rounds alternating the baseline and the fast path; medians reported (default 2)")
    parser.add_argument("--out", type=Path, default=Path("bench_results"), help="directory for the JSON files")
    from humanoid_rl.apps.bench_estimator_args import add_estimator_arguments

    add_estimator_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from humanoid_rl.cli import CommandError
    from humanoid_rl.policy.model_file import read_model_metadata
    from humanoid_rl.policy.runtime import benchmark_inference, resolve_model_path

    if args.what in ("all", "inference", "loop", "estimator"):  # a bad model: one line now, not a traceback later
        read_model_metadata(resolve_model_path(args.model))
    if args.what == "train" and (
        args.n_envs < 1 or args.rounds < 1 or not args.env_seconds > 0 or not args.train_seconds >= 0
    ):
        raise CommandError(f"bench train: --n-envs {args.n_envs}, --rounds {args.rounds}, --env-seconds "
                           f"{args.env_seconds}, --train-seconds {args.train_seconds}: use n-envs and rounds >= 1, "
                           "env-seconds > 0, train-seconds >= 0")
    writable_dir(args.out)
    results: dict[str, Any] = {"environment": environment()}
    if args.what in ("all", "inference"):
        inference = benchmark_inference(resolve_model_path(args.model))
        results["inference"] = inference
        print(f"inference: {json.dumps({k: v for k, v in inference.items() if not isinstance(v, dict)})}")
    if args.what in ("all", "shield"):
        shield = benchmark_shield()
        results["shield"] = shield
        print(format_shield(shield))
    if args.what in ("all", "sim"):
        from humanoid_rl.sim.bench import format_results, run_sim_benchmark

        sim = run_sim_benchmark(min(args.seconds, 10.0))
        results["sim"] = sim
        print(format_results(sim))
    if args.what in ("all", "loop"):
        results["loop"] = run_loop_cases(args)
    if args.what == "train":
        from humanoid_rl.train.throughput import run_train_bench

        paths = tuple(dict.fromkeys([BASELINE, *args.paths]))  # the ratios need the baseline
        results["train"] = run_train_bench(tuple(args.tasks), args.env_seconds, args.train_seconds, args.n_envs,
                                           paths=paths, rounds=args.rounds)
    if args.what == "estimator":
        from humanoid_rl.sim.estimator_walk import estimator_config_from_args, format_results, run_estimator_bench

        try:
            config = estimator_config_from_args(args)
        except ValueError as exc:
            raise CommandError(f"bench estimator: {exc}") from None
        results["estimator"] = run_estimator_bench(str(resolve_model_path(args.model)), config)
        print(format_results(results["estimator"]))
    path = write_new_file(args.out, f"bench-{args.what}", ".json", json.dumps(results, indent=2, default=float))
    print(f"saved {path}")
    return 0


def format_budget(case: dict[str, Any]) -> str:
    """The per-stage budget of a loop case on one line: each stage, then what the hand-overs took."""
    parts = [f"{name} {v['p50']:.0f} ({v['p99']:.0f})" for name, v in case["stages_us"].items()]
    return ", ".join(parts) + f"; between nodes {case['transport_and_executor_p50_us']:.0f}"


def run_loop_cases(args: argparse.Namespace) -> list[dict[str, Any]]:
    from humanoid_rl.policy.model_file import read_model_metadata
    from humanoid_rl.policy.runtime import resolve_model_path

    model_rate = read_model_metadata(resolve_model_path(args.model)).contract.policy_rate_hz
    layouts = [Layout(value) for value in args.layouts]
    cases: list[dict[str, Any]] = []
    for rate in args.rates:
        # A model runs only at the rate it was trained for (the node refuses others); at other rates the
        # hold-pose policy drives the same node chain, and inference is measured on its own above.
        model = args.model if abs(rate - model_rate) < 1e-9 else ""
        seconds = args.seconds_at_50hz if abs(rate - 50.0) < 1e-9 else args.seconds
        for layout, trigger in _loop_variants(layouts, [TriggerMode(t) for t in args.triggers]):
            label = f"{layout.value:16s} {trigger.value if trigger else 'sim':5s}"
            try:
                case = benchmark_layout(layout, rate, seconds, model, args.out / "logs", trigger)
            except LoopBenchError as exc:  # one failed case must not lose the others' figures
                print(f"loop {rate:6.0f} Hz {label}: FAILED: {exc}", flush=True)
                cases.append({"layout": layout.value, "rate_hz": rate, "error": str(exc)})
                continue
            case["policy"] = model or "hold pose (model trained at another rate)"
            cases.append(case)
            print(
                f"loop {rate:6.0f} Hz {label}: achieved {case['achieved_rate_hz']:7.1f} Hz "
                f"({100 * case['achieved_fraction']:5.1f}%), misses {case['deadline_misses']}, latency p50 "
                f"{case['latency_us']['p50']:.0f} µs p99 {case['latency_us']['p99']:.0f} µs, "
                f"real-time factor {case['real_time_factor']:.2f}, CPU cores {sum(case['cpu_cores_used']):.2f}",
                flush=True,
            )
            print(f"    budget p50 (p99) µs: {format_budget(case)}", flush=True)
    for case in cases:
        base = next(
            (c for c in cases if c["rate_hz"] == case["rate_hz"] and c["layout"] == Layout.PER_NODE_SINGLE.value),
            None,
        )
        if base is not None and base is not case and "error" not in base and "error" not in case:
            case["rate_ratio_vs_per_node_single"] = _ratio(case["achieved_rate_hz"], base["achieved_rate_hz"])
            case["latency_p50_ratio_vs_per_node_single"] = _ratio(case["latency_us"]["p50"], base["latency_us"]["p50"])
            case["latency_p99_ratio_vs_per_node_single"] = _ratio(case["latency_us"]["p99"], base["latency_us"]["p99"])
    return cases


def _loop_variants(layouts: list[Layout], triggers: list[TriggerMode]) -> list[tuple[Layout, TriggerMode | None]]:
    """The baseline keeps the trigger `humanoid-rl sim` uses (None: "the same chain built the naive way"); the
    other layouts are measured with each trigger asked for."""
    variants: list[tuple[Layout, TriggerMode | None]] = []
    for layout in layouts:
        variants += [(layout, None)] if layout is Layout.PER_NODE_SINGLE else [(layout, t) for t in triggers]
    return variants


def _ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(b) else math.nan
