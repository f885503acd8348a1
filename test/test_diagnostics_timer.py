"""Diagnostics keep coming from a saturated process: a node's control callback publishes them when the
diagnostics timer is overdue (real rclpy, real DDS; the reader is another context, as another process)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.node import Node

from humanoid_rl.graph import Topics
from humanoid_rl.nodes.diagnostics import OVERDUE_PERIODS, DiagnosticsPublisher, DiagnosticsTimer
from humanoid_rl.nodes.qos import STATUS_QOS
from humanoid_rl.nodes.runner import make_executor

PERIOD_S = 0.05


class Side:
    """One context (a process): a node and an executor."""

    def __init__(self, name: str) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = make_executor(context=self.context)
        self.executor.add_node(self.node)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def sides() -> Iterator[tuple[Side, Side]]:
    control, reader = Side("control"), Side("diagnostics_reader")
    yield control, reader
    control.close()
    reader.close()


def _run(control: Side, reader: Side, seconds: float, spin_control: bool) -> tuple[DiagnosticsTimer, list[str]]:
    """A control callback every ms for ``seconds`` (polling the diagnostics timer, as the nodes' control
    callbacks do); the control executor spun between them or never (a saturated one never reaches the timer)."""
    received: list[str] = []
    reader.node.create_subscription(
        DiagnosticArray, Topics.DIAGNOSTICS, lambda m: received.extend(s.name for s in m.status), STATUS_QOS
    )
    diagnostics = DiagnosticsPublisher(control.node)
    # Discovery between the two contexts first (hundreds of ms on a loaded machine): the window counts receipts.
    deadline = time.monotonic() + 10.0
    while not received and time.monotonic() < deadline:
        diagnostics.publish({"ok": 1})
        reader.executor.spin_once(timeout_sec=0.05)
    assert received, "the reader never matched the diagnostics publisher"
    received.clear()
    timer = DiagnosticsTimer(control.node, lambda: diagnostics.publish({"ok": 1}), PERIOD_S)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        timer.poll()
        if spin_control:
            control.executor.spin_once(timeout_sec=0.001)
        else:
            time.sleep(0.001)
        reader.executor.spin_once(timeout_sec=0.0)
    settle = time.monotonic() + 0.3
    while time.monotonic() < settle:
        reader.executor.spin_once(timeout_sec=0.01)
    return timer, received


def test_a_control_process_whose_executor_never_reaches_the_timer_still_publishes_its_diagnostics(sides) -> None:  # noqa: ANN001
    control, reader = sides
    timer, received = _run(control, reader, 0.6, spin_control=False)
    expected = 0.6 / (OVERDUE_PERIODS * PERIOD_S)
    print(f"\nstarved timer: {timer.overdue_runs} diagnostics from the control callback, {len(received)} received")
    assert timer.overdue_runs >= expected - 2
    assert received.count("humanoid_rl/control") >= expected - 2


def test_a_timer_that_runs_leaves_the_control_callback_nothing_to_publish(sides) -> None:  # noqa: ANN001
    control, reader = sides
    timer, received = _run(control, reader, 0.6, spin_control=True)
    print(f"\ntimer served: {len(received)} diagnostics received, {timer.overdue_runs} from the control callback")
    assert len(received) >= 0.6 / PERIOD_S - 4
    assert timer.overdue_runs <= 1  # one very late timer on a loaded machine, at most
