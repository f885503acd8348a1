"""A destroyed managed node of ours is gone from the DDS graph, not only from its own process.

rclpy's LifecycleNode.destroy_node leaves the lifecycle state machine alive, and with it the rcl node and the
process's DDS participant: the node stayed listed by every other process, and a process that then exited at
Ctrl-C killed Fast DDS threads mid-send, so the others' shutdown waited 2-3 s on shared-memory locks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import rclpy
from rclpy.context import Context
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node

from humanoid_rl.nodes.hardware_interface import HardwareInterfaceNode
from humanoid_rl.nodes.policy import PolicyNode
from humanoid_rl.nodes.runner import make_executor, shut_down, spin_until
from humanoid_rl.nodes.safety_shield import SafetyShieldNode

NODES: dict[str, Callable[[Context], LifecycleNode]] = {
    "safety_shield": lambda context: SafetyShieldNode(context=context),
    "hardware_interface": lambda context: HardwareInterfaceNode(context=context),
    "policy": lambda context: PolicyNode(context=context),
}


def listed_by_probe(probe: Node, name: str, wanted: bool, timeout_s: float) -> bool:
    executor = make_executor(context=probe.context)
    executor.add_node(probe)
    try:
        return spin_until(executor, lambda: (name in probe.get_node_names()) == wanted, wall_timeout_s=timeout_s)
    finally:
        executor.shutdown()


@pytest.mark.parametrize("name", list(NODES))
def test_a_destroyed_managed_node_leaves_the_graph_another_process_sees(name: str) -> None:
    ours, theirs = Context(), Context()  # two participants, as two processes have
    rclpy.init(context=ours)
    rclpy.init(context=theirs)
    probe = Node("teardown_probe", context=theirs)
    node = NODES[name](ours)
    try:
        assert listed_by_probe(probe, name, wanted=True, timeout_s=10.0), "never discovered"
        started = time.monotonic()
        node.destroy_node()
        assert listed_by_probe(probe, name, wanted=False, timeout_s=3.0), (
            f"{name} still listed {time.monotonic() - started:.1f} s after destroy_node"
        )
    finally:
        rclpy.try_shutdown(context=ours)
        shut_down([probe], None, theirs)
