"""Executors and main(): how every node (alone or all in one process) is spun and shut down.

rclpy 9.1.2's ``EventsExecutor.spin()`` delivered no messages in our probes while a ``spin_once`` loop did, so
every loop here is a ``spin_once`` loop, whichever executor runs it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from enum import Enum

import rclpy
from rclpy.context import Context
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node


class ExecutorKind(Enum):
    AUTO = "auto"
    EVENTS = "events"
    SINGLE = "single"


def make_executor(kind: ExecutorKind | str = ExecutorKind.AUTO, context: Context | None = None) -> Executor:
    """EventsExecutor where available (about 2× the rate of SingleThreadedExecutor here), else single-threaded."""
    kind = ExecutorKind(kind)
    if kind in (ExecutorKind.AUTO, ExecutorKind.EVENTS):
        try:
            from rclpy.experimental import EventsExecutor

            return EventsExecutor(context=context)
        except ImportError:
            if kind is ExecutorKind.EVENTS:
                raise
    return SingleThreadedExecutor(context=context)


def spin_until(
    executor: Executor,
    done: Callable[[], bool],
    step_timeout_s: float = 0.005,
    wall_timeout_s: float | None = None,
) -> bool:
    """Spin with ``spin_once`` until ``done()``; returns False if ``wall_timeout_s`` passed first."""
    deadline = None if wall_timeout_s is None else time.monotonic() + wall_timeout_s
    while rclpy.ok(context=executor.context) and not done():
        if deadline is not None and time.monotonic() > deadline:
            return False
        executor.spin_once(timeout_sec=step_timeout_s)
    return done()


def bring_up_lifecycle(node: Node) -> None:
    """configure → activate for a lifecycle node whose ``autostart`` parameter is true (the simulation default)."""
    if not isinstance(node, LifecycleNode):
        return
    if node.has_parameter("autostart") and not node.get_parameter("autostart").value:
        return
    from lifecycle_msgs.msg import State

    node.trigger_configure()
    if node._state_machine.current_state[0] != State.PRIMARY_STATE_INACTIVE:  # noqa: SLF001 - rclpy has no getter
        reason = getattr(node, "configure_error", "") or "see its log above for the reason"
        raise RuntimeError(f"node {node.get_name()} refused to configure: {reason}")
    node.trigger_activate()


def run_nodes(nodes: Sequence[Node], executor: Executor, should_stop: Callable[[], bool] = lambda: False) -> None:
    for node in nodes:
        executor.add_node(node)
    for node in nodes:
        bring_up_lifecycle(node)
    spin_until(executor, should_stop)


def main_for(node_factory: Callable[[], Node], args: Sequence[str] | None = None) -> int:
    """The body of every node's ``main()``: init, spin, and always shut down cleanly (Ctrl-C included)."""
    rclpy.init(args=list(args) if args is not None else sys.argv)
    node: Node | None = None
    stop = False

    def _on_term(signum: int, frame: object) -> None:  # launch sends SIGINT then SIGTERM
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _on_term)
    try:
        node = node_factory()
        executor = make_executor(os.environ.get("HUMANOID_RL_EXECUTOR", "auto"))
        run_nodes([node], executor, lambda: stop)
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"[{getattr(node, 'get_name', lambda: 'humanoid_rl')()}] error: {exc}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
