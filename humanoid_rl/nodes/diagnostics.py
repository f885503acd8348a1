"""Builds diagnostic_msgs from plain dicts so every node reports timing the same way, and gives nodes with
timing windows a ``~/reset_statistics`` service (std_srvs/Trigger) to start them afresh, e.g. after a warm-up:

    ros2 service call /policy/reset_statistics std_srvs/srv/Trigger

:class:`DiagnosticsTimer` runs a node's diagnostics twice a second, also when its executor is saturated: a control
callback that is always ready keeps the executor from ever reaching the timer (at 1 kHz in one process no
diagnostics came out at all), so the control callback calls :meth:`DiagnosticsTimer.poll`, which publishes when
the timer is overdue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from std_srvs.srv import Trigger

from humanoid_rl.graph import Topics
from humanoid_rl.nodes.qos import STATUS_QOS

LEVELS = {
    "ok": DiagnosticStatus.OK,
    "warn": DiagnosticStatus.WARN,
    "error": DiagnosticStatus.ERROR,
    "stale": DiagnosticStatus.STALE,
}


def _fmt(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


class DiagnosticsPublisher:
    """One DiagnosticStatus per node named ``humanoid_rl/<node>``, published on /diagnostics."""

    RESET_SERVICE = "~/reset_statistics"

    def __init__(self, node: Node, reset_statistics: Callable[[], None] | None = None) -> None:
        self._node = node
        self._pub = node.create_publisher(DiagnosticArray, Topics.DIAGNOSTICS, STATUS_QOS)
        self.name = f"humanoid_rl/{node.get_name()}"
        self._reset_service = None
        if reset_statistics is not None:
            reset = reset_statistics

            def _on_reset(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
                reset()
                response.success, response.message = True, "timing statistics start afresh"
                return response

            self._reset_service = node.create_service(Trigger, self.RESET_SERVICE, _on_reset)

    def publish(self, values: Mapping[str, object], level: str = "ok", message: str = "") -> None:
        status = DiagnosticStatus(
            level=LEVELS[level],
            name=self.name,
            message=message,
            hardware_id=self._node.get_fully_qualified_name(),
        )
        status.values = [KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]
        array = DiagnosticArray()
        array.header.stamp = self._node.get_clock().now().to_msg()
        array.status = [status]
        self._pub.publish(array)

    def destroy(self) -> None:
        self._node.destroy_publisher(self._pub)
        if self._reset_service is not None:
            self._node.destroy_service(self._reset_service)


# A diagnostics timer this many periods late is starved (a saturated executor), not merely jittered.
OVERDUE_PERIODS = 2.0


class DiagnosticsTimer:
    """Calls ``publish`` every ``period_s`` from a timer (on ``clock``, steady by default) and from :meth:`poll`
    when the timer has not run for :data:`OVERDUE_PERIODS` periods of the steady clock."""

    def __init__(
        self, node: Node, publish: Callable[[], None], period_s: float, clock: Clock | None = None
    ) -> None:
        self._publish = publish
        self._overdue_s = OVERDUE_PERIODS * period_s
        self._last = time.monotonic()
        self.overdue_runs = 0  # publications made by poll(): how often the timer was starved
        self.timer = node.create_timer(
            period_s, self._run, clock=clock if clock is not None else Clock(clock_type=ClockType.STEADY_TIME)
        )

    def _run(self) -> None:
        self._last = time.monotonic()
        self._publish()

    def poll(self) -> None:
        """From a control callback: publish if the timer is overdue (one clock read and a comparison)."""
        if time.monotonic() - self._last > self._overdue_s:
            self.overdue_runs += 1
            self._run()
