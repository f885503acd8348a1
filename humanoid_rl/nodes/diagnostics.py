"""Builds diagnostic_msgs from plain dicts so every node reports timing the same way, and gives nodes with
timing windows a ``~/reset_statistics`` service (std_srvs/Trigger) to start them afresh, e.g. after a warm-up:

    ros2 service call /policy/reset_statistics std_srvs/srv/Trigger
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
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
