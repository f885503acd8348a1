"""humanoid_rl.process (process names, SIGINT/SIGTERM as a stop request) and what a node does when it stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy

from humanoid_rl.process import clear_stop_request, stop_on_signals, stop_requested

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)


def test_a_process_names_itself_after_its_executable_cut_to_the_kernels_15_bytes() -> None:
    result = run_python(
        "from humanoid_rl.process import set_process_name as name\n"
        "name('/prefix/lib/humanoid_rl/policy'); print(open('/proc/self/comm').read().strip())\n"
        "name('hardware_interface_with_a_long_name'); print(open('/proc/self/comm').read().strip())\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["policy", "hardware_interf"]


def test_sigint_inside_stop_on_signals_is_a_stop_request_and_the_old_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    try:
        with stop_on_signals():
            os.kill(os.getpid(), signal.SIGINT)
            deadline = time.monotonic() + 5.0
            while not stop_requested() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert stop_requested()
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        clear_stop_request()


def test_a_third_signal_exits_at_once_when_a_shutdown_hangs() -> None:
    result = run_python(
        "import os, signal, time\n"
        "from humanoid_rl.process import install_stop_handlers\n"
        "install_stop_handlers()\n"
        "for _ in range(3):\n"
        "    os.kill(os.getpid(), signal.SIGINT); time.sleep(0.05)\n"
        "time.sleep(30)\n"  # a shutdown that never ends
    )
    assert result.returncode == 128 + signal.SIGINT
    assert result.stderr.strip() == "SIGINT 3 times: exiting without a clean shutdown"


def test_a_teardown_that_hangs_in_c_after_ctrl_c_is_ended_at_the_deadline_saying_where() -> None:
    started = time.monotonic()
    result = run_python(  # hangs in C without releasing the GIL (PyDLL keeps it), as Fast DDS did
        "import ctypes, os, signal, time\n"
        "from humanoid_rl.process import install_stop_handlers, teardown_deadline\n"
        "install_stop_handlers()\n"
        "os.kill(os.getpid(), signal.SIGINT); time.sleep(0.05)\n"
        "with teardown_deadline(0.5):\n"
        "    ctypes.PyDLL(None).sleep(20)\n"
        "print('the teardown came back')\n"
    )
    took = time.monotonic() - started
    assert result.returncode == 1
    assert took < 10.0, f"ran {took:.1f} s: the 20 s hang was not cut short"
    assert "Timeout (0:00:00.500000)!" in result.stderr and "<string>" in result.stderr  # where it hung
    assert "the teardown came back" not in result.stdout


def test_the_teardown_deadline_is_not_armed_without_a_stop_request() -> None:
    result = run_python(
        "import time\n"
        "from humanoid_rl.process import teardown_deadline\n"
        "with teardown_deadline(0.2):\n"
        "    time.sleep(0.6)\n"
        "print('done')\n"
    )
    assert (result.returncode, result.stdout.strip()) == (0, "done"), result.stderr

def test_a_hardware_interface_shut_down_while_forwarding_leaves_the_controller_holding_the_measured_pose() -> None:
    """What a Ctrl-C does to it (``shut_down`` runs the shutdown transition): as a deactivation would."""
    from test_hardware_interface import DISTINCT, SPEC, Harness, by_name, interface

    rclpy.init()
    harness = Harness(interface())
    try:
        harness.configure_and_activate()
        harness.send(DISTINCT)
        harness.spin_until(lambda: len(harness.commands) == 1)
        measured = SPEC.default_pose + 0.01
        harness.driver.positions = by_name(measured)
        harness.spin_for(0.05)
        assert harness.interface.trigger_shutdown().name == "SUCCESS"
        harness.spin_until(lambda: len(harness.commands) == 2)
        assert harness.commands[1].positions == pytest.approx(by_name(measured), abs=1e-12)
        harness.spin_for(0.2)
        assert len(harness.commands) == 2
    finally:
        harness.close()
        rclpy.shutdown()


def test_a_shield_shut_down_while_active_holds_the_measured_pose_once_as_a_deactivation_would() -> None:
    from test_shield_node import active_harness

    rclpy.init()
    try:
        with active_harness() as harness:
            harness.spin_for(0.1)
            assert harness.shield.trigger_shutdown().name == "SUCCESS"
            harness.spin_for(0.1)
            count = len(harness.recorder.outputs)
            assert harness.recorder.modes[-1] == "HOLD"
            np.testing.assert_allclose(harness.recorder.outputs[-1].positions, harness.robot.positions)
            harness.spin_for(0.3)
            assert len(harness.recorder.outputs) == count
    finally:
        rclpy.shutdown()


@pytest.mark.parametrize(
    ("executable", "arguments", "message"),
    [
        ("policy", ["-p", "rate_hz:=5000.0"], "rate_hz out of range"),
        ("safety_shield", ["-p", "ramp_time:=-1.0"], "ramp_time"),
        ("sim_bridge", ["-p", "state_rate_hz:=5000.0"], "state_rate_hz out of range"),
        ("state_estimator", ["-p"], "Couldn't parse trailing -p flag"),
    ],
)
def test_a_node_given_a_bad_parameter_names_it_in_one_line_and_exits_2(
    executable: str, arguments: list[str], message: str, tmp_path: Path
) -> None:
    from test_signals import write_launchers

    lib = write_launchers(tmp_path / "prefix")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [str(lib / executable), "--ros-args", *arguments], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 2, result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith(f"[{executable}] error: ")]
    assert len(ours) == 1 and message in ours[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ('{"safety_shield": {"ramp_time": -1.0}}', "node safety_shield: Invalid parameter value (-1.0)"),
        ('{"safety_shield": {"tilt_warn": 0.9}}', "tilt_warn (0.9 rad) must be below tilt_trip"),
    ],
    ids=["out of its declared range", "inconsistent with another"],
)
def test_a_node_group_refusing_a_parameter_names_it_in_one_line_and_exits_2(overrides: str, message: str) -> None:
    """The node that refuses is left half-built; shutting the others down must not trip over it."""
    result = subprocess.run(
        [sys.executable, "-m", "humanoid_rl.apps.node_group", "--nodes", "state_estimator,safety_shield",
         "--overrides", overrides],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("node_group state_estimator,safety_shield: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr and "AttributeError" not in result.stderr
