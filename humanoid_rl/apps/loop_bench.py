"""The closed-loop benchmark of ``humanoid-rl bench loop``: the simulated graph in real-time mode, started in a
chosen process layout, measured from outside through ``/diagnostics``.

Every layout is measured the same way, so the figures compare: the nodes run in child processes
(:mod:`humanoid_rl.apps.node_group`) on a private ROS domain; a probe node waits until the policy is active and
commands reach the bridge, warms up, calls ``/policy/reset_statistics`` and ``/sim_bridge/reset_statistics``,
lets the loop run, and reads the next diagnostics of both nodes: the policy's achieved rate, deadline misses and
inference time, and the bridge's state → shielded-command latency (both ends stamped inside the bridge process).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from humanoid_rl.graph import POLICY, SAFETY_SHIELD, SIM_BRIDGE, STATE_ESTIMATOR, NodeDescription, private_domain_id
from humanoid_rl.nodes.runner import ExecutorKind
from humanoid_rl.policy.parameters import TriggerMode

STARTUP_TIMEOUT_S = 90.0  # four processes importing pinocchio and onnxruntime on two busy cores
WARMUP_S = 2.0


class Layout(Enum):
    """How the four simulated-stack nodes are spread over processes, and which executor spins each process."""

    ONE_PROCESS = "one-process"  # what `humanoid-rl sim` does: all nodes, EventsExecutor
    SIM_APART = "sim-apart"  # the simulator alone, the three control nodes together (EventsExecutor)
    PER_NODE_SINGLE = "per-node-single"  # the naive baseline: one process per node, SingleThreadedExecutor


@dataclass(frozen=True)
class ProcessGroup:
    nodes: tuple[NodeDescription, ...]
    executor: ExecutorKind


def layout_groups(layout: Layout) -> list[ProcessGroup]:
    control = (STATE_ESTIMATOR, SAFETY_SHIELD, POLICY)
    if layout is Layout.ONE_PROCESS:
        return [ProcessGroup((SIM_BRIDGE, *control), ExecutorKind.AUTO)]
    if layout is Layout.SIM_APART:
        return [ProcessGroup((SIM_BRIDGE,), ExecutorKind.AUTO), ProcessGroup(control, ExecutorKind.AUTO)]
    return [ProcessGroup((d,), ExecutorKind.SINGLE) for d in (SIM_BRIDGE, *control)]


class LoopBenchError(RuntimeError):
    pass


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its threads), from /proc; 0 where /proc is unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _parse(value: str) -> Any:
    if value in ("True", "False"):
        return value == "True"
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value else number


class DiagnosticsProbe:
    """A node on its own context that keeps the newest diagnostics of each node and calls reset services."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        from humanoid_rl.graph import Topics
        from humanoid_rl.nodes.qos import STATUS_QOS

        self.context = Context()
        rclpy.init(args=[], context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("loop_bench_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.latest: dict[str, tuple[float, dict[str, Any]]] = {}  # node name → (monotonic receipt, values)
        self.node.create_subscription(DiagnosticArray, Topics.DIAGNOSTICS, self._on_diagnostics, STATUS_QOS)

    def _on_diagnostics(self, msg: Any) -> None:
        now = time.monotonic()
        for status in msg.status:
            name = status.name.rsplit("/", 1)[-1]
            self.latest[name] = (now, {kv.key: _parse(kv.value) for kv in status.values})

    def spin_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                return False
            self.executor.spin_once(timeout_sec=0.05)
        return True

    def values_after(self, node: str, since: float) -> dict[str, Any] | None:
        entry = self.latest.get(node)
        return entry[1] if entry is not None and entry[0] > since else None

    def reset_statistics(self, node: str, timeout_s: float = 10.0) -> None:
        from std_srvs.srv import Trigger

        client = self.node.create_client(Trigger, f"/{node}/reset_statistics")
        try:
            if not self.spin_until(client.service_is_ready, timeout_s):
                raise LoopBenchError(f"/{node}/reset_statistics did not appear within {timeout_s} s")
            future = client.call_async(Trigger.Request())
            if not self.spin_until(future.done, timeout_s) or not future.result().success:
                raise LoopBenchError(f"/{node}/reset_statistics did not answer within {timeout_s} s")
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def start_group(
    group: ProcessGroup, overrides: dict[str, dict[str, Any]], env: dict[str, str], log_path: Path
) -> tuple[subprocess.Popen[bytes], Any]:
    names = [d.name for d in group.nodes]
    command = [
        sys.executable,
        "-m",
        "humanoid_rl.apps.node_group",
        "--nodes",
        ",".join(names),
        "--executor",
        group.executor.value,
        "--overrides",
        json.dumps({n: overrides.get(n, {}) for n in names}),
    ]
    log = log_path.open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), log


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], timeout_s: float = 10.0) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# The stages a state passes through on its way to a shielded command, in order (node, stage): the per-stage budget.
CHAIN_STAGES = (
    (STATE_ESTIMATOR.name, "update"),
    (STATE_ESTIMATOR.name, "publish"),
    (POLICY.name, "observe"),
    (POLICY.name, "inference"),
    (POLICY.name, "publish"),
    (SAFETY_SHIELD.name, "step"),
    (SAFETY_SHIELD.name, "publish"),
)


def stage_budget(diagnostics: dict[str, dict[str, Any]], latency_p50_us: float) -> dict[str, Any]:
    """Per stage of the chain, p50/p99 of the time spent in it (from each node's diagnostics), and what the
    state → command latency leaves for the rest: serialization, DDS, deserialization and executor wake-ups."""
    stages = {}
    for node, stage in CHAIN_STAGES:
        values = diagnostics.get(node, {})
        stages[f"{node}.{stage}"] = {
            "p50": float(values.get(f"stage_{stage}_p50_us", math.nan)),
            "p99": float(values.get(f"stage_{stage}_p99_us", math.nan)),
        }
    in_stages = sum(s["p50"] for s in stages.values())
    return {
        "stages_us": stages,
        "stages_p50_sum_us": in_stages,
        # Medians do not add exactly; as a budget the remainder is the hand-over between nodes.
        "transport_and_executor_p50_us": latency_p50_us - in_stages,
    }


def benchmark_layout(
    layout: Layout,
    rate_hz: float,
    seconds: float,
    model: str,
    log_dir: Path,
    trigger: TriggerMode | None = None,
) -> dict[str, Any]:
    """Achieved policy rate, deadline misses, inference time and state → shielded-command latency of the
    real-time simulated loop at ``rate_hz`` in ``layout``, over ``seconds`` after a warm-up. ``trigger``: what
    starts a policy step (its timer, or each new state once the estimator has caught up with it); None keeps
    what ``humanoid-rl sim`` uses."""
    from humanoid_rl.apps.sim import stack_overrides

    args = argparse.Namespace(
        sync=False, gui=False, seed=0, rate=rate_hz, push_duration=0.2, robot_config="", model=model
    )
    overrides = stack_overrides(args)
    groups = layout_groups(layout)
    if trigger is not None:
        overrides[POLICY.name]["trigger"] = trigger.value
    trigger = TriggerMode(overrides[POLICY.name]["trigger"])
    # The case's own domain: it sees no other stack (not even the caller's), and no other stack sees it.
    domain_id = private_domain_id(avoid=os.environ.get("ROS_DOMAIN_ID", "0"))
    env = {
        **os.environ,
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "RMW_IMPLEMENTATION": os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp"),
        "PYTHONUNBUFFERED": "1",
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []
    log_paths: list[Path] = []
    probe = DiagnosticsProbe(domain_id)
    try:
        for i, group in enumerate(groups):
            log_paths.append(log_dir / f"{layout.value}-{trigger.value}-{rate_hz:g}hz-{i}.log")
            process, log = start_group(group, overrides, env, log_paths[-1])
            processes.append(process)
            logs.append(log)

        def running() -> None:
            """Raises with a dead process's log tail; returns None while all live."""
            for process, path in zip(processes, log_paths, strict=True):
                if process.poll() is not None:
                    tail = path.read_text(errors="replace")[-2000:]
                    raise LoopBenchError(f"a {layout.value} process exited with {process.returncode}:\n{tail}")

        def commands_flow() -> bool:
            running()
            policy = probe.latest.get(POLICY.name, (0.0, {}))[1]
            bridge = probe.latest.get(SIM_BRIDGE.name, (0.0, {}))[1]
            return policy.get("state") == "active" and int(bridge.get("commands_applied", 0)) > 0

        if not probe.spin_until(commands_flow, STARTUP_TIMEOUT_S):
            raise LoopBenchError(
                f"{layout.value} at {rate_hz:g} Hz: no command reached the bridge within "
                f"{STARTUP_TIMEOUT_S} s (logs in {log_dir})"
            )
        probe.spin_until(lambda: False, WARMUP_S)
        probe.reset_statistics(POLICY.name)
        probe.reset_statistics(SIM_BRIDGE.name)
        cpu_start = [_cpu_seconds(p.pid) for p in processes]
        started = time.monotonic()
        probe.spin_until(lambda: running() or False, seconds)  # runs the whole window unless a process dies
        ended = time.monotonic()
        cpu_used = [_cpu_seconds(p.pid) - c for p, c in zip(processes, cpu_start, strict=True)]
        required = (POLICY.name, SIM_BRIDGE.name)
        if not probe.spin_until(lambda: all(probe.values_after(n, ended) is not None for n in required), 10.0):
            raise LoopBenchError(f"{layout.value}: no diagnostics from the policy and the bridge after the run")
        # The stage budget also wants the estimator's and the shield's; a saturated process may publish them late
        # (their figures are then NaN, the case still counts).
        stages_from = (STATE_ESTIMATOR.name, SAFETY_SHIELD.name)
        probe.spin_until(lambda: all(probe.values_after(n, ended) is not None for n in stages_from), 5.0)
        policy = probe.values_after(POLICY.name, ended) or {}
        bridge = probe.values_after(SIM_BRIDGE.name, ended) or {}
        chain = {n: probe.values_after(n, ended) or {} for n in (STATE_ESTIMATOR.name, POLICY.name, SAFETY_SHIELD.name)}
    finally:
        stop_processes(processes)
        for log in logs:
            log.close()
        probe.close()
    wall = ended - started
    wall_rate = float(policy["achieved_rate_hz"]) * float(bridge["real_time_factor"])
    return {
        "layout": layout.value,
        "policy_trigger": trigger.value,
        "processes": [[d.name for d in g.nodes] for g in groups],
        "executors": [g.executor.value for g in groups],
        "rate_hz": rate_hz,
        "seconds": round(wall, 3),
        # The policy times its steps on the ROS clock, which is sim time here: per wall second it achieved its
        # sim-time rate times the simulation's real-time factor (the bridge's, over the same window).
        "achieved_rate_hz": wall_rate,
        "achieved_fraction": wall_rate / rate_hz,
        "achieved_rate_sim_time_hz": float(policy["achieved_rate_hz"]),
        "deadline_misses": int(policy["deadline_misses"]),  # in sim time: a period without a policy step
        "bridge_overruns": int(bridge["overruns"]),  # real-time ticks that had to step more than one period
        "policy_ticks": int(policy["ticks"]),
        "jitter_us": float(policy["jitter_us"]),
        "inference_us": {"p50": float(policy["inference_p50_us"]), "p99": float(policy["inference_p99_us"])},
        "latency_us": {
            "p50": float(bridge["latency_p50_us"]),
            "p99": float(bridge["latency_p99_us"]),
            "max": float(bridge["latency_max_us"]),
        },
        **stage_budget(chain, float(bridge["latency_p50_us"])),
        "commands_at_bridge": int(bridge["commands_applied"]),
        "real_time_factor": float(bridge["real_time_factor"]),
        "fell": bool(bridge["fell"]),
        "cpu_cores_used": [round(c / wall, 3) for c in cpu_used],
    }
