"""`humanoid-rl sim`: the simulated stack (bridge, estimator, shield, policy) in one process, headless by default.

Prints a live status line, and at the end writes ``runs/sim-<timestamp>/report.json`` and plots. The graph is the
one ``launch/sim.launch.py`` starts (both read :mod:`humanoid_rl.graph` and ``config/sim.yaml``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_rl.apps.sim_options import Push, add_arguments, check_inputs
from humanoid_rl.graph import POLICY, SAFETY_SHIELD, SIM_BRIDGE, STATE_ESTIMATOR, StackMode, Topics, sim_graph
from humanoid_rl.nodes.runner import ExecutorKind

__all__ = ["Push", "add_arguments", "collect_report", "run", "stack_overrides"]


def stack_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    # The policy answers each simulated state as soon as the estimator has caught up with it, in both modes: on
    # sim time a policy timer only wakes on /clock and answers about a period late (bench, one process, 50 Hz
    # real time: state → shielded command p50 25 ms on the timer, 6.5 ms on the state). The shield steps with
    # the states only in lock-step; in real time its own timer runs the watchdogs.
    trigger = "state" if args.sync else "timer"
    common = {"robot_config": args.robot_config}
    return {
        SIM_BRIDGE.name: {
            **common,
            "sync": bool(args.sync),
            "gui": bool(args.gui),
            "seed": int(args.seed),
            "state_rate_hz": float(args.rate),
            "push_duration": float(args.push_duration),
        },
        STATE_ESTIMATOR.name: dict(common),
        SAFETY_SHIELD.name: {
            **common,
            "trigger": trigger,
            "rate_hz": float(args.rate),
            "control_period": 1.0 / float(args.rate),
        },
        POLICY.name: {**common, "model": str(args.model), "rate_hz": float(args.rate), "trigger": "state"},
    }


def run(args: argparse.Namespace) -> int:
    from geometry_msgs.msg import WrenchStamped

    from humanoid_rl.apps.stack import InProcessStack, StackOptions
    from humanoid_rl.cli import CommandError
    from humanoid_rl.cli_args import prepare_run_dir

    pushes = check_inputs(args)
    run_dir = prepare_run_dir(args.out, Path("runs"), "sim", overwrite=args.overwrite)
    out_dir = run_dir.path
    options = StackOptions(
        nodes=sim_graph(),
        mode=StackMode.SIM,
        parameter_files=args.config,
        overrides=stack_overrides(args),
        executor=ExecutorKind(args.executor),
    )
    wall_start = time.monotonic()
    try:
        stack = InProcessStack(options)
    except RuntimeError as exc:  # a node refused to configure (bad model, contract mismatch, bad robot config)
        run_dir.discard_if_empty()
        raise CommandError(str(exc)) from None
    except BaseException:
        run_dir.discard_if_empty()
        raise
    with stack:
        bridge = stack.node(SIM_BRIDGE.name)
        push_pub = bridge.create_publisher(WrenchStamped, Topics.SIM_PUSH, 10)
        pending = list(pushes)
        last_status = 0.0

        def on_tick() -> None:
            nonlocal last_status
            now_sim = bridge.sim_time_s
            while pending and pending[0].time_s <= now_sim:
                push = pending.pop(0)
                msg = WrenchStamped()
                msg.header.stamp = bridge.get_clock().now().to_msg()
                msg.wrench.force.x, msg.wrench.force.y = push.force_xy
                push_pub.publish(msg)
            now = time.monotonic()
            if now - last_status >= 1.0:
                last_status = now
                print("\r" + status_line(stack), end="", flush=True)

        finished = stack.spin_until(
            lambda: bridge.sim_time_s >= args.duration, on_tick=on_tick, wall_timeout_s=max(120.0, 20.0 * args.duration)
        )
        print("\r" + status_line(stack))
        report = collect_report(stack, args, wall_time_s=time.monotonic() - wall_start, pushes=pushes)
        report["completed"] = finished
        plots = {} if args.no_plots else stack_plot_data(stack)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    if plots:
        write_plots(plots, out_dir)
    print(summary_text(report, out_dir))
    return 0 if finished and not report["fell"] else 1


def status_line(stack: Any) -> str:
    bridge = stack.node(SIM_BRIDGE.name)
    s = bridge.status()
    rate = stack.node(POLICY.name).timing()["achieved_rate_hz"]
    return (
        f"t_sim={s['sim_time_s']:6.2f}s  rate={rate:6.1f}Hz  latency_p50={s['latency_p50_us'] / 1000:5.2f}ms  "
        f"height={s['base_height_m']:.3f}m  shield={shield_mode(stack.node(SAFETY_SHIELD.name))}   "
    )


def shield_mode(shield_node: Any) -> str:
    core = getattr(shield_node, "shield", None)
    return core.mode.value if core is not None else "not configured"


def shield_summary(shield_node: Any) -> dict[str, Any]:
    """Mode counts (steps spent in each mode), interventions per filter stage, rejections, cost."""
    core = getattr(shield_node, "shield", None)
    if core is None:
        return {"mode_counts": {}, "interventions": {}, "final_mode": "not configured"}
    counters = core.counters.as_dict()
    return {
        "mode_counts": counters["steps_in_mode"],
        "mode_entries": counters["mode_entries"],
        "interventions": counters["interventions"],
        "commands_accepted": counters["commands_accepted"],
        "commands_rejected": counters["commands_rejected"],
        "final_mode": core.mode.value,
        "last_reason": core.last_reason,
        **shield_node.timing(),
    }


def collect_report(stack: Any, args: argparse.Namespace, wall_time_s: float, pushes: list[Push]) -> dict[str, Any]:
    bridge = stack.node(SIM_BRIDGE.name)
    policy = stack.node(POLICY.name)
    b = bridge.report()
    timing = policy.timing()
    return {
        "sim_time_s": b["sim_time_s"],
        "wall_time_s": wall_time_s,
        "real_time_factor": b["sim_time_s"] / wall_time_s if wall_time_s > 0 else 0.0,
        "fell": b["fell"],
        "upright_time_s": b["upright_time_s"],
        "base_height_min_m": b["base_height_min_m"],
        "policy_rate_hz": {"target": float(args.rate), "achieved": timing["achieved_rate_hz"]},
        "latency_us": {"p50": b["latency_p50_us"], "p99": b["latency_p99_us"], "max": b["latency_max_us"]},
        "deadline_misses": timing["deadline_misses"],
        "estimator": stack.node(STATE_ESTIMATOR.name).report(),
        "shield": shield_summary(stack.node(SAFETY_SHIELD.name)),
        "policy": {
            "model": args.model or "(hold default pose)",
            "published": policy.published,
            "skipped": dict(policy.skips),
            **timing,
        },
        "bridge": b,
        "mode": "sync" if args.sync else "realtime",
        "pushes": [{"time_s": p.time_s, "force_xy_n": list(p.force_xy)} for p in pushes],
        "seed": args.seed,
    }


def stack_plot_data(stack: Any) -> dict[str, Any]:
    return stack.node(SIM_BRIDGE.name).traces()


def write_plots(traces: dict[str, Any], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(traces["time_s"])
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(t, traces["base_height_m"])
    ax.set(xlabel="sim time [s]", ylabel="base height [m]", title="Base height")
    fig.tight_layout()
    fig.savefig(out_dir / "base_height.png", dpi=100)
    plt.close(fig)

    targets, positions = np.asarray(traces["joint_targets"]), np.asarray(traces["joint_positions"])
    names = traces["joint_names"]
    if targets.size and positions.size:
        legs = [i for i, n in enumerate(names) if any(k in n for k in ("hip_pitch", "knee", "ankle_pitch"))][:6]
        fig, axes = plt.subplots(len(legs), 1, figsize=(8, 1.6 * len(legs)), sharex=True)
        for ax, i in zip(np.atleast_1d(axes), legs, strict=False):
            ax.plot(t[: len(targets)], targets[:, i], label="target")
            ax.plot(t[: len(positions)], positions[:, i], label="position")
            ax.set_ylabel(names[i].replace("_joint", ""), fontsize=7)
        np.atleast_1d(axes)[0].legend(fontsize=7)
        np.atleast_1d(axes)[-1].set_xlabel("sim time [s]")
        fig.tight_layout()
        fig.savefig(out_dir / "joint_targets.png", dpi=100)
        plt.close(fig)

    latencies = np.asarray(traces["latency_us"])
    if latencies.size:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.hist(latencies / 1000.0, bins=50)
        ax.set(xlabel="state → shielded command latency [ms]", ylabel="count", title="Loop latency")
        fig.tight_layout()
        fig.savefig(out_dir / "latency_hist.png", dpi=100)
        plt.close(fig)


def summary_text(report: dict[str, Any], out_dir: Path) -> str:
    lat = report["latency_us"]
    est = report["estimator"]
    return (
        f"{'FELL' if report['fell'] else 'stayed up'}: {report['upright_time_s']:.1f} s upright of "
        f"{report['sim_time_s']:.1f} s simulated in {report['wall_time_s']:.1f} s wall "
        f"(x{report['real_time_factor']:.2f} real time); min base height {report['base_height_min_m']:.3f} m\n"
        f"policy {report['policy_rate_hz']['achieved']:.1f}/{report['policy_rate_hz']['target']:.0f} Hz, "
        f"latency p50 {lat['p50']:.0f} µs p99 {lat['p99']:.0f} µs max {lat['max']:.0f} µs, "
        f"deadline misses {report['deadline_misses']}\n"
        f"estimator velocity RMSE {est.get('velocity_rmse_mps', float('nan')):.3f} m/s, orientation error "
        f"{est.get('orientation_error_deg', float('nan')):.2f}°; shield modes {report['shield']['mode_counts']}\n"
        f"report: {out_dir / 'report.json'}"
    )


def stack_main() -> int:
    """Entry point ``lib/humanoid_rl/sim_stack`` for ``sim.launch.py single_process:=true``."""
    from humanoid_rl.cli import main

    argv = sys.argv[1:]
    if "--ros-args" in argv:  # launch_ros appends remapping/parameter arguments meant for rclpy
        argv = argv[: argv.index("--ros-args")]
    return main(["sim", *argv])  # the same checks and one-line errors as `humanoid-rl sim`
