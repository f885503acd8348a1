"""Executors and main(): how every node (alone or all in one process) is spun and shut down.

rclpy 9.1.2's ``EventsExecutor.spin()`` delivered no messages in our probes while a ``spin_once`` loop did, so
every loop here is a ``spin_once`` loop, whichever executor runs it.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Sequence
from enum import Enum

import rclpy
from rclpy.context import Context
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from humanoid_rl.process import (
    exit_after_stop,
    install_stop_handlers,
    set_process_name,
    stop_requested,
    teardown_deadline,
)

RCLError = _rclpy.RCLError  # what rclpy raises for malformed --ros-args


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


def _leave_lifecycle(node: Node) -> None:
    """The shutdown transition, so a node leaves as a deactivation would (the shield's final hold)."""
    if not isinstance(node, LifecycleNode):
        return
    if node._state_machine.current_state[1] not in ("unconfigured", "inactive", "active"):  # noqa: SLF001
        return  # finalized already, or it never came up
    try:
        node.trigger_shutdown()
    except Exception as exc:  # noqa: BLE001 - one node's failed goodbye must not keep the others from theirs
        node.get_logger().warning(f"shutdown transition failed: {exc}")


def shut_down(nodes: Sequence[Node], executor: Executor | None, context: Context | None = None) -> None:
    """Leave in an order where no callback runs on a half-destroyed node and nothing publishes on a dead
    context: lifecycle nodes run their shutdown transition while the context still works, then the executor
    stops, then the nodes destroy their timers, publishers and subscriptions, then the context goes."""
    with teardown_deadline():
        for node in reversed(nodes):
            _leave_lifecycle(node)
        if executor is not None:
            executor.shutdown()
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown(context=context)


def main_for(node_factory: Callable[[], Node], args: Sequence[str] | None = None) -> int:
    """The body of every node's ``main()``: init, spin until SIGINT or SIGTERM, shut down in order, exit 0.

    rclpy installs no signal handler here (it would raise KeyboardInterrupt inside a callback called from
    C++); ours only ask the spin loop to stop, and :func:`shut_down` does the rest.
    """
    install_stop_handlers()
    if args is None:
        set_process_name(sys.argv[0])  # `policy`, not `python3`, in ps -e and top
    executable = os.path.basename(sys.argv[0]) or "humanoid_rl"
    try:
        rclpy.init(args=list(args) if args is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    except RCLError as exc:  # malformed --ros-args
        print(f"[{executable}] error: {exc}", file=sys.stderr)
        return 2
    node: Node | None = None
    executor: Executor | None = None
    code = 0
    try:
        node = node_factory()
        executor = make_executor(os.environ.get("HUMANOID_RL_EXECUTOR", "auto"))
        run_nodes([node], executor, stop_requested)
    except ExternalShutdownException:
        pass
    except (ValueError, RuntimeError, FileNotFoundError, ParameterException) as exc:
        print(f"[{node.get_name() if node is not None else executable}] error: {exc}", file=sys.stderr)
        code = 2
    finally:
        if node is None:
            # A constructor that raised left a half-built node that the context would destroy at shutdown
            # (AttributeError from its destroy_node): collect it first, now that the traceback is gone.
            gc.collect()
        shut_down([node] if node is not None else [], executor)
    exit_after_stop(code)
    return code
