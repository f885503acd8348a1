"""Ctrl-C and SIGTERM: every process of every layout stops within 1 s, exits 0, and says nothing alarming.

The executables run as separate processes, started the way `ros2 run` and launch_ros start them (the launchers
setup.py writes into <prefix>/lib/humanoid_rl), all in one new process group as a terminal's foreground job is,
on this test session's private ROS domain (conftest.py). The signal goes to the whole group, as a terminal's
Ctrl-C does, or twice in quick succession, or SIGTERM, as launch escalates to.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from sensor_msgs.msg import JointState
from test_packaging import SETUP

from humanoid_rl.graph import Topics, real_graph, sim_graph
from humanoid_rl.nodes.qos import COMMAND_QOS
from humanoid_rl.nodes.runner import make_executor, shut_down, spin_until
from humanoid_rl.paths import config_path

REPO_ROOT = Path(__file__).resolve().parents[1]
EXIT_WITHIN_S = 1.0
START_TIMEOUT_S = 90.0  # six Python processes importing pybullet, pinocchio and onnxruntime on a loaded machine
FORBIDDEN = ("Traceback", "FATAL", "terminate called", "Error", "error:", "Aborted")
# Watchdogs that a starved start-up on a loaded machine does not trip (that is not what is tested here).
PATIENT = {
    "safety_shield": ("command_timeout:=0.5", "state_timeout:=0.5", "ramp_time:=0.5"),
    "hardware_interface": ("command_timeout:=0.5",),
    "policy": ("max_state_age:=0.25",),
}
SIGNALS: dict[str, Sequence[signal.Signals]] = {
    "SIGINT": (signal.SIGINT,),
    "SIGINT twice": (signal.SIGINT, signal.SIGINT),
    "SIGTERM": (signal.SIGTERM,),
}


@dataclass
class Started:
    name: str
    process: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    exited_at: float | None = None


def write_launchers(prefix: Path) -> Path:
    """<prefix>/lib/humanoid_rl as a pip install leaves it, with bin/python3 running this interpreter."""
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (prefix / "bin" / "python3").chmod(0o755)
    lib = prefix / "lib" / "humanoid_rl"
    lib.mkdir(parents=True)
    for executable, entry_point in {**SETUP.NODE_EXECUTABLES, **SETUP.COMMAND_LINE_TOOLS}.items():
        (lib / executable).write_text(SETUP.node_launcher_source(executable, entry_point))
        (lib / executable).chmod(0o755)
    return lib


class ProcessGroup:
    """Processes in one new process group, their output read as it comes, their exit times recorded."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.started: list[Started] = []
        self.pgid: int | None = None
        python_path = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": python_path}

    def start(self, name: str, command: Sequence[str]) -> Started:
        pgid = self.pgid or 0
        process = subprocess.Popen(
            list(command),
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: os.setpgid(0, pgid),  # noqa: PLW1509 - setpgid is async-signal-safe
        )
        self.pgid = self.pgid or process.pid
        started = Started(name, process)
        for stream, lines in ((process.stdout, started.stdout), (process.stderr, started.stderr)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()
        threading.Thread(target=self._reap, args=(started,), daemon=True).start()
        self.started.append(started)
        return started

    @staticmethod
    def _read(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)

    @staticmethod
    def _reap(started: Started) -> None:
        started.process.wait()
        started.exited_at = time.monotonic()

    def dead(self) -> list[str]:
        return [
            f"{s.name} exited {s.process.returncode}:\n{''.join(s.stderr[-20:])}" for s in self.started if s.exited_at
        ]

    def signal(self, signals: Sequence[signal.Signals]) -> float:
        assert self.pgid is not None
        sent_at = time.monotonic()
        for i, signum in enumerate(signals):
            if i:
                time.sleep(0.05)
            try:
                os.killpg(self.pgid, signum)
            except ProcessLookupError:
                assert i, "the group was gone before the first signal"
                break  # a second signal for a group that already stopped on the first: nothing left to signal
        return sent_at

    def wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for s in self.started:
            try:
                s.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        time.sleep(0.2)  # the reader threads catch the last lines

    def kill(self) -> None:
        for s in self.started:
            if s.process.poll() is None:
                s.process.kill()
                s.process.wait()


@contextmanager
def process_group(cwd: Path) -> Iterator[ProcessGroup]:
    group = ProcessGroup(cwd)
    try:
        yield group
    finally:
        group.kill()


@contextmanager
def graph_probe() -> Iterator[tuple[Node, Callable[[Callable[[], bool], float], bool]]]:
    """A node of our own on the session's domain, to see when the graph is up."""
    context = Context()
    rclpy.init(context=context)
    node = Node("signal_test_probe", context=context)
    executor = make_executor(context=context)
    executor.add_node(node)
    try:
        yield node, lambda done, timeout_s: spin_until(executor, done, wall_timeout_s=timeout_s)
    finally:
        shut_down([node], executor, context)


def wait_until_up(
    group: ProcessGroup, node_names: Sequence[str], ready: Callable[[], bool], spin: Callable[..., bool], probe: Node
) -> None:
    def up() -> bool:
        assert not group.dead(), "a process died while starting:\n" + "\n".join(group.dead())
        names = set(probe.get_node_names())
        return set(node_names) <= names and ready()

    assert spin(up, START_TIMEOUT_S), f"not up within {START_TIMEOUT_S} s; graph has {probe.get_node_names()}"


def assert_stopped_cleanly(group: ProcessGroup, sent_at: float) -> None:
    group.wait(timeout_s=10.0)
    problems = []
    for s in group.started:
        stderr = "".join(s.stderr)
        if s.exited_at is None:
            problems.append(f"{s.name} still running 10 s after the signal")
            continue
        took = s.exited_at - sent_at
        if took > EXIT_WITHIN_S:
            problems.append(f"{s.name} took {took:.2f} s to exit")
        if s.process.returncode != 0:
            problems.append(f"{s.name} exited {s.process.returncode}")
        for word in FORBIDDEN:
            if word in stderr or word in "".join(s.stdout):
                problems.append(f"{s.name} printed {word!r}:\n{stderr[-3000:]}")
    assert not problems, "\n".join(problems)


def process_name(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_text().split("\0")


def node_command(lib: Path, executable: str, node_name: str, params_file: Path, *params: str) -> list[str]:
    """What launch_ros runs for a Node action."""
    command = [str(lib / executable), "--ros-args", "-r", f"__node:={node_name}", "--params-file", str(params_file)]
    for p in params:
        command += ["-p", p]
    return command


def joint_commands_flow(probe: Node) -> Callable[[], bool]:
    received: list[JointState] = []
    probe.create_subscription(JointState, Topics.JOINT_COMMANDS, received.append, COMMAND_QOS)
    return lambda: len(received) >= 5


def catches(pid: int, signum: int) -> bool:
    """Whether the process has a handler for ``signum`` (SigCgt in /proc/<pid>/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(caught >> (signum - 1) & 1)


def test_ctrl_c_while_a_node_is_still_importing_ends_it_quietly_with_0(tmp_path: Path) -> None:
    """The signal goes as soon as the process catches SIGTERM (Python itself does not: the launcher's first lines
    do, and the node's main() much later), while the node is still importing: rclpy's library not yet loaded."""
    lib = write_launchers(tmp_path / "prefix")
    with process_group(tmp_path) as group:
        started = group.start("policy", [str(lib / "policy")])
        pid = started.process.pid
        deadline = time.monotonic() + 30.0
        while not catches(pid, signal.SIGTERM) and time.monotonic() < deadline:
            time.sleep(0.001)
        importing = "librcl.so" not in Path(f"/proc/{pid}/maps").read_text()
        sent_at = group.signal([signal.SIGINT])
        group.wait(timeout_s=10.0)
        assert importing, "nothing caught signals before rclpy was loaded"
        assert started.process.returncode == 0
        assert started.exited_at is not None and started.exited_at - sent_at < EXIT_WITHIN_S
        assert "Traceback" not in "".join(started.stderr) and "KeyboardInterrupt" not in "".join(started.stderr)


# ------------------------------------------------------------------------------------ every layout


@pytest.mark.slow
@pytest.mark.parametrize("how", list(SIGNALS))
def test_the_simulated_graph_one_process_per_node_stops_cleanly_within_a_second(how: str, tmp_path: Path) -> None:
    lib = write_launchers(tmp_path / "prefix")
    params = config_path("sim.yaml")
    with graph_probe() as (probe, spin), process_group(tmp_path) as group:
        for d in sim_graph():
            extra = ["model:=humanoid_stand.onnx"] if d.name == "policy" else []
            group.start(d.name, node_command(lib, d.executable, d.name, params, "use_sim_time:=true", *extra))
        wait_until_up(group, [d.name for d in sim_graph()], joint_commands_flow(probe), spin, probe)
        for started in group.started:  # `ps -e` and top show the node, `ps -f` the launcher it was started as
            assert process_name(started.process.pid) == started.name
            assert command_line(started.process.pid)[1] == str(lib / started.name)
        sent_at = group.signal(SIGNALS[how])
        assert_stopped_cleanly(group, sent_at)


def test_the_simulated_graph_stops_cleanly_within_a_second_when_ctrl_c_reaches_every_process(tmp_path: Path) -> None:
    """The default run's case: a terminal's Ctrl-C, one SIGINT to every process of the group."""
    test_the_simulated_graph_one_process_per_node_stops_cleanly_within_a_second("SIGINT", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_the_single_process_sim_stack_stops_cleanly_within_a_second(how: str, tmp_path: Path) -> None:
    lib = write_launchers(tmp_path / "prefix")
    with graph_probe() as (probe, spin), process_group(tmp_path) as group:
        group.start(
            "sim_stack",
            [str(lib / "sim_stack"), "--model", "humanoid_stand.onnx", "--duration", "1e9", "--push", "", "--realtime",
             "--no-plots", "--out", str(tmp_path / "run"), "--ros-args", "-r", "__node:=sim_stack"],
        )  # fmt: skip
        flowing = joint_commands_flow(probe)
        status_lines = lambda: any(line.startswith("t_sim=") for line in group.started[0].stdout)  # noqa: E731
        wait_until_up(group, [d.name for d in sim_graph()], lambda: flowing() and status_lines(), spin, probe)
        assert process_name(group.started[0].process.pid) == "sim_stack"
        sent_at = group.signal(SIGNALS[how])
        assert_stopped_cleanly(group, sent_at)


@pytest.mark.slow
def test_a_node_group_process_stops_cleanly_within_a_second(tmp_path: Path) -> None:
    with graph_probe() as (probe, spin), process_group(tmp_path) as group:
        names = [d.name for d in sim_graph()]
        group.start("node_group", [sys.executable, "-m", "humanoid_rl.apps.node_group", "--nodes", ",".join(names)])
        wait_until_up(group, names, joint_commands_flow(probe), spin, probe)
        assert process_name(group.started[0].process.pid) == "node_group"
        sent_at = group.signal(SIGNALS["SIGINT twice"])
        assert_stopped_cleanly(group, sent_at)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_the_real_robot_graph_on_the_emulator_with_its_bring_up_stops_cleanly_within_a_second(
    how: str, tmp_path: Path
) -> None:
    """real_robot.launch.py emulate:=true bringup:=true: the nodes, and `humanoid-rl real --attach` serving (its
    status line a line each second in the log, not one line of carriage returns)."""
    lib = write_launchers(tmp_path / "prefix")
    params = config_path("real_robot.yaml")
    with graph_probe() as (probe, spin), process_group(tmp_path) as group:
        for d in real_graph(emulate=True):
            extra = PATIENT.get(d.name, ())
            group.start(d.name, node_command(lib, d.executable, d.name, params, "use_sim_time:=false", *extra))
        bring_up = group.start(
            "bringup",
            [str(lib / "humanoid-rl"), "real", "--attach", "--engage", "never", "--duration", "0",
             "--out", str(tmp_path / "run")],
        )  # fmt: skip

        def serving() -> bool:  # ramped, holding, and its status line printed as a line of its own
            return any(line == "shield=HOLD\n" for line in bring_up.stdout)

        wait_until_up(group, [d.name for d in real_graph(emulate=True)], serving, spin, probe)
        sent_at = group.signal(SIGNALS[how])
        assert_stopped_cleanly(group, sent_at)


@pytest.mark.slow
def test_humanoid_rl_sim_stopped_by_ctrl_c_writes_its_report_and_summary(tmp_path: Path) -> None:
    lib = write_launchers(tmp_path / "prefix")
    out = tmp_path / "run"
    with graph_probe() as (probe, spin), process_group(tmp_path) as group:
        sim = group.start(
            "humanoid-rl sim",
            [str(lib / "humanoid-rl"), "sim", "--duration", "1000", "--push", "", "--no-plots", "--out", str(out)],
        )
        status_lines = lambda: any(line.startswith("t_sim=") for line in sim.stdout)  # noqa: E731
        wait_until_up(group, [d.name for d in sim_graph()], status_lines, spin, probe)
        sent_at = group.signal(SIGNALS["SIGINT"])
        group.wait(timeout_s=20.0)
    assert sim.exited_at is not None and sim.exited_at - sent_at < 5.0
    assert sim.process.returncode == 130  # stopped by Ctrl-C (128 + SIGINT), the report written
    report = json.loads((out / "report.json").read_text())
    assert report["completed"] is False and 0.0 < report["sim_time_s"] < 1000.0
    assert any(line.startswith("report: ") for line in sim.stdout)
    assert "Traceback" not in "".join(sim.stderr) and "FATAL" not in "".join(sim.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("single_process", ["false", "true"])
def test_ros2_launch_of_the_simulation_stops_cleanly_at_ctrl_c(single_process: str, tmp_path: Path) -> None:
    """The real thing, where a ROS 2 install provides `ros2 launch` and launch_ros (not the PyPI wheels used here)."""
    if shutil.which("ros2") is None or importlib.util.find_spec("launch_ros") is None:
        pytest.skip("needs a ROS 2 install: the ros2 command and launch_ros")
    with graph_probe() as (probe, spin), process_group(tmp_path) as group:
        launch = group.start(
            "ros2 launch",
            ["ros2", "launch", "humanoid_rl", "sim.launch.py", "model:=humanoid_stand.onnx",
             f"single_process:={single_process}"],
        )  # fmt: skip
        wait_until_up(group, [d.name for d in sim_graph()], joint_commands_flow(probe), spin, probe)
        sent_at = group.signal(SIGNALS["SIGINT"])
        group.wait(timeout_s=15.0)
    output = "".join(launch.stdout) + "".join(launch.stderr)
    assert launch.exited_at is not None and launch.exited_at - sent_at < 3.0, output[-3000:]
    for word in (*FORBIDDEN, "process has died"):
        assert word not in output, output[-3000:]


@pytest.mark.slow
def test_humanoid_rl_real_on_the_emulator_disengages_and_deactivates_at_ctrl_c_within_a_second(
    tmp_path: Path,
) -> None:
    lib = write_launchers(tmp_path / "prefix")
    patient = tmp_path / "patient.yaml"
    patient.write_text(
        "".join(
            f"{node}:\n  ros__parameters:\n" + "".join(f"    {p.replace(':=', ': ')}\n" for p in params)
            for node, params in PATIENT.items()
        )
    )
    out = tmp_path / "run"
    with graph_probe() as (probe, spin), process_group(tmp_path) as group:
        real = group.start(
            "humanoid-rl real",
            [str(lib / "humanoid-rl"), "real", "--emulate", "--engage", "auto", "--duration", "0",
             "--config", str(patient), "--out", str(out)],
        )  # fmt: skip
        engaged = lambda: any(line.startswith("shield=ACTIVE") for line in real.stdout)  # noqa: E731
        wait_until_up(group, [d.name for d in real_graph(emulate=True)], engaged, spin, probe)
        sent_at = group.signal(SIGNALS["SIGINT"])
        assert_stopped_cleanly(group, sent_at)
    report = json.loads((out / "report.json").read_text())
    assert report["modes"][-2:] == ["ACTIVE", "HOLD"], report["modes"]
    assert "deactivate policy" in "".join(real.stdout)
    assert not report["emulator"]["fell"]
