"""`humanoid-rl sim`: the simulated stack (bridge, estimator, shield, policy) in one process, headless by default.

Prints a live status line, and at the end writes ``runs/sim-<timestamp>/report.json`` and plots. The graph is the
one ``launch/sim.launch.py`` starts (both read :mod:`humanoid_rl.graph` and ``config/sim.yaml``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_rl.apps.reach_goals import GoalRun, check_goal, goal_summary_text, model_radius_m
from humanoid_rl.apps.sim_options import Push, add_arguments, check_domain_is_free, check_inputs
from humanoid_rl.apps.velocity_commands import tracking_summary, write_walking_plot
from humanoid_rl.graph import POLICY, SAFETY_SHIELD, SIM_BRIDGE, STATE_ESTIMATOR, StackMode, Topics, sim_graph
from humanoid_rl.nodes.runner import ExecutorKind
from humanoid_rl.sim.foxglove_view import ViewFrame
from humanoid_rl.sim.video import FrameInfo, RunVideo

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
    """Ctrl-C or SIGTERM ends the run where it is, with its report and summary (``completed: false``)."""
    from humanoid_rl.process import stop_on_signals

    with stop_on_signals():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from geometry_msgs.msg import Twist, WrenchStamped

    from humanoid_rl.apps.stack import InProcessStack, StackOptions
    from humanoid_rl.cli import EXIT_INTERRUPTED, CommandError
    from humanoid_rl.cli_args import prepare_run_dir
    from humanoid_rl.process import stop_requested

    pushes = check_inputs(args)
    goal_contract = check_goal(args)  # None: the model takes no goal
    if sys.stdout.isatty():
        keep_status_line_clear(os.environ)
    if args.domain_id is not None:
        os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)  # before this process's first rclpy context
    check_domain_is_free([d.name for d in sim_graph()])
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
        cmd_pub = bridge.create_publisher(Twist, Topics.CMD_VEL, 10)
        pending = list(pushes)
        last_status = 0.0
        last_cmd_s = -math.inf
        acting: Push | None = None  # the push acting now, drawn on the video
        on_terminal = sys.stdout.isatty()
        # Lock-step waits for a renderer that is behind (a complete video); real time drops frames instead.
        video = RunVideo(bridge.sim, out_dir / "run.mp4", wait_for_renderer=args.sync) if args.video else None
        shield = stack.node(SAFETY_SHIELD.name)
        mode_log: list[tuple[float, str]] = []  # (sim time, shield mode) at every change, for the plots
        view = open_foxglove_view(args, bridge.sim, out_dir)
        policy = stack.node(POLICY.name)
        goals = None if goal_contract is None else GoalRun(
            bridge, bridge.sim, bridge.spec, goal_contract, args.goal, policy.goal_input.topic, args.duration,
            model_radius_m(args.model))

        def on_tick() -> None:
            nonlocal last_status, last_cmd_s, acting
            now_sim = bridge.sim_time_s
            mode = shield_mode(shield)
            if not mode_log or mode_log[-1][1] != mode:
                mode_log.append((now_sim, mode))
            while pending and pending[0].time_s <= now_sim:
                acting = push = pending.pop(0)
                msg = WrenchStamped()
                msg.header.stamp = bridge.get_clock().now().to_msg()
                msg.wrench.force.x, msg.wrench.force.y = push.force_xy
                push_pub.publish(msg)
            command = args.cmd_vel.at(now_sim)
            if now_sim - last_cmd_s >= CMD_VEL_PERIOD_S:  # again and again: the policy drops a stale command
                last_cmd_s = now_sim
                twist = Twist()
                twist.linear.x, twist.linear.y, twist.angular.z = command
                cmd_pub.publish(twist)
            if goals is not None:
                goals.tick(now_sim)
            if view is not None:
                targets = shield.last_published
                view.maybe_capture(now_sim, ViewFrame(
                    mode, np.asarray(targets.position) if len(targets.position) else None,
                    np.asarray(targets.velocity) if len(targets.velocity) else None,
                ))  # fmt: skip
            if video is not None:
                if acting is not None and now_sim > acting.time_s + args.push_duration:
                    acting = None
                force = None if acting is None else np.array([*acting.force_xy, 0.0])
                video.maybe_capture(now_sim, FrameInfo(shield_mode(shield), command, force))
            now = time.monotonic()
            if now - last_status >= 1.0:
                last_status = now
                if on_terminal:  # one line, rewritten in place
                    print("\r" + status_line(stack), end="", flush=True)
                else:  # a log (launch, a pipe): a line each time
                    print(status_line(stack), flush=True)

        stack.spin_until(
            lambda: bridge.sim_time_s >= args.duration, on_tick=on_tick,
            wall_timeout_s=max(120.0, 20.0 * args.duration),
        )
        finished = bridge.sim_time_s >= args.duration
        interrupted = stop_requested() and not finished
        print(("\r" if on_terminal else "") + status_line(stack))
        report = collect_report(stack, args, wall_time_s=time.monotonic() - wall_start, pushes=pushes)
        report["completed"] = finished
        if goals is not None:
            report["reach"] = goals.finish(bridge.sim_time_s, policy.goal_input.goal)
        report["interrupted"] = interrupted
        if not args.cmd_vel.is_zero:
            traces = bridge.traces()
            report["velocity_tracking"] = {
                "commands": args.cmd_vel.describe(),
                **tracking_summary(
                    traces["time_s"],
                    traces["base_position_m"],
                    traces["base_velocity_world_mps"],
                    traces["base_yaw_rad"],
                    args.cmd_vel,
                ),
            }
        if view is not None:
            view.close()
            report["foxglove"] = {"frames": view.frames, "port": args.foxglove,
                                  "mcap": str(view.mcap_path) if view.mcap_path else ""}
        if video is not None:
            path = video.close(drop_pending=interrupted)
            report["video"] = {
                "path": str(path) if path else "",
                "frames": video.frames,
                "dropped_frames": video.dropped,
                "renderer_cpu_s": video.render_cpu_s,  # in its own process, on the other core
                "run_snapshot_s": video.snapshot_s,  # what the run itself spent on the video
                "run_waited_s": video.waited_s,  # lock-step: waiting for the renderer
            }
        report["shield"]["mode_timeline"] = [{"time_s": t, "mode": m} for t, m in mode_log]
        plots = {} if args.no_plots else stack_plot_data(stack)
        if plots:
            plots["shield_modes"] = mode_log
            plots["pushes"] = [(p.time_s, args.push_duration) for p in pushes]
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    if plots:
        write_plots(plots, out_dir)
        if not args.cmd_vel.is_zero:
            write_walking_plot(plots, args.cmd_vel, out_dir / "walking.png")
    print(summary_text(report, out_dir))
    if interrupted:
        return EXIT_INTERRUPTED  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
    return 0 if finished and not report["fell"] else 1


def open_foxglove_view(args: argparse.Namespace, sim: Any, out_dir: Path) -> Any:
    """The Foxglove server and/or MCAP recorder the options ask for (None: neither)."""
    if args.foxglove is None and not args.mcap:
        return None
    from humanoid_rl.sim.foxglove_view import FoxgloveView

    view = FoxgloveView(sim, port=args.foxglove, mcap_path=out_dir / "run.mcap" if args.mcap else None)
    if view.port is not None:
        print(f"Foxglove: open ws://localhost:{view.port} in the Foxglove app (Open connection → Foxglove WebSocket)",
              flush=True)
    return view


CMD_VEL_PERIOD_S = 0.1  # /cmd_vel is sent at 10 Hz of sim time, as a joystick node would


def status_line(stack: Any) -> str:
    bridge = stack.node(SIM_BRIDGE.name)
    s = bridge.status()
    rate = stack.node(POLICY.name).timing()["achieved_rate_hz"]
    return (
        f"t_sim={s['sim_time_s']:6.2f}s  rate={rate:6.1f}Hz  latency_p50={s['latency_p50_us'] / 1000:5.2f}ms  "
        f"height={height_text(s['base_height_m'])}  shield={shield_mode(stack.node(SAFETY_SHIELD.name))}   "
    )


# rcutils' default console format, led by "return to column 0, clear the line": a node's log line then replaces
# the status line drawn in place on a terminal instead of being glued to its end (the next tick redraws it).
ROS_LOG_FORMAT_ON_TERMINAL = "\r\x1b[K[{severity}] [{time}] [{name}]: {message}"


def keep_status_line_clear(environ: Any) -> None:
    """Set that format for this process's nodes, unless the user chose one (before rclpy starts logging)."""
    environ.setdefault("RCUTILS_CONSOLE_OUTPUT_FORMAT", ROS_LOG_FORMAT_ON_TERMINAL)


def height_text(height_m: float) -> str:
    """The base height for the status line; before the first physics step there is none (not 'nanm')."""
    return f"{height_m:.3f}m" if math.isfinite(height_m) else "  —   "


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
        "final_tilt_deg": b["final_tilt_deg"],
        "standing": b["standing"],
        "posture": b["posture"],
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


# Shading of the base-height plot while the shield is not passing the policy through.
MODE_COLOURS = {"HOLD": "gold", "DAMPING": "darkorange", "ESTOP": "red", "not configured": "lightgrey"}


def mode_spans(mode_log: list[tuple[float, str]], end_s: float) -> list[tuple[float, float, str]]:
    """(start, end, mode) of every stretch the shield spent outside ACTIVE, from its (time, mode) changes."""
    spans = []
    for (start, mode), following in zip(mode_log, [*mode_log[1:], (end_s, "")], strict=False):
        if mode != "ACTIVE" and following[0] > start:
            spans.append((start, following[0], mode))
    return spans


def write_plots(traces: dict[str, Any], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(traces["time_s"])
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(t, traces["base_height_m"], color="black", label="base height")
    end = float(t[-1]) if t.size else 0.0
    labelled: set[str] = set()
    for start, stop, mode in mode_spans(traces.get("shield_modes", []), end):
        ax.axvspan(start, stop, color=MODE_COLOURS.get(mode, "grey"), alpha=0.25,
                   label=None if mode in labelled else f"shield {mode}")
        labelled.add(mode)
    for index, (start, duration) in enumerate(traces.get("pushes", [])):
        ax.axvspan(start, start + duration, color="tab:red", alpha=0.6, label="push" if index == 0 else None)
    ax.set(xlabel="sim time [s]", ylabel="base height [m]", title="Base height (shading: shield not ACTIVE)")
    ax.legend(fontsize=7, loc="lower left")
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
        ms = latencies / 1000.0
        ax.hist(ms, bins=50)
        for q, style in ((50, "--"), (99, ":")):
            value = float(np.percentile(ms, q))
            ax.axvline(value, color="black", linestyle=style, label=f"p{q} {value:.2f} ms")
        ax.set(xlabel="state → shielded command latency [ms]", ylabel="count", title="Loop latency")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / "latency_hist.png", dpi=100)
        plt.close(fig)


def summary_text(report: dict[str, Any], out_dir: Path) -> str:
    lat = report["latency_us"]
    est = report["estimator"]
    extra = ""
    tracking = report.get("velocity_tracking")
    if tracking and "vx_error_mps" in tracking:
        extra += (
            f"velocity ({tracking['commands']}): mean error vx {tracking['vx_error_mps']:.3f} vy "
            f"{tracking['vy_error_mps']:.3f} m/s, yaw rate {tracking['yaw_rate_error_radps']:.3f} rad/s; walked "
            f"{tracking['distance_m']:.2f} m ({tracking['displacement_m']:.2f} m from the start)\n"
        )
    if "reach" in report:
        extra += goal_summary_text(report["reach"])
    video = report.get("video")
    if video and video["path"]:
        extra += (
            f"video: {video['path']} ({video['frames']} frames, {video['dropped_frames']} dropped; renderer "
            f"{video['renderer_cpu_s']:.1f} s CPU in its own process, the run waited {video['run_waited_s']:.1f} s)\n"
        )
    return (
        f"{'FELL' if report['fell'] else 'stayed up'}: {report['upright_time_s']:.1f} s upright of "
        f"{report['sim_time_s']:.1f} s simulated in {report['wall_time_s']:.1f} s wall "
        f"(x{report['real_time_factor']:.2f} real time); min base height {report['base_height_min_m']:.3f} m\n"
        f"at the end: {report['posture']}\n"
        f"policy {report['policy_rate_hz']['achieved']:.1f}/{report['policy_rate_hz']['target']:.0f} Hz "
        f"({report['policy'].get('rate_clock', 'sim time')}), "
        f"latency p50 {lat['p50']:.0f} µs p99 {lat['p99']:.0f} µs max {lat['max']:.0f} µs, "
        f"deadline misses {report['deadline_misses']}\n"
        f"estimator velocity RMSE {est.get('velocity_rmse_mps', float('nan')):.3f} m/s, orientation error "
        f"{est.get('orientation_error_deg', float('nan')):.2f}°"
        + (f" (upright only: {est['samples_while_fallen']} samples while fallen left out)"
           if est.get("samples_while_fallen") else "")
        + f"; shield modes {report['shield']['mode_counts']}\n"
        f"{extra}report: {out_dir / 'report.json'}"
    )


def stack_main() -> int:
    """Entry point ``lib/humanoid_rl/sim_stack`` for ``sim.launch.py single_process:=true``. SIGINT and SIGTERM
    end the run as its duration would (report and summary), and the process exits 0."""
    from humanoid_rl.cli import main
    from humanoid_rl.process import exit_after_stop, install_stop_handlers, set_process_name

    install_stop_handlers()
    set_process_name("sim_stack")
    argv = sys.argv[1:]
    if "--ros-args" in argv:  # launch_ros appends remapping/parameter arguments meant for rclpy
        argv = argv[: argv.index("--ros-args")]
    from humanoid_rl.apps.reach_goals import launch_goal_arguments

    code = main(["sim", *argv, *launch_goal_arguments(argv)])  # the same checks and one-line errors as the CLI
    exit_after_stop(0)  # stopped by a signal: the run ended as its duration would, and launch expects 0
    return code
