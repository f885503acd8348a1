"""The hand-over on the real-robot path (issue #16), with real rclpy and DDS.

In one process the shield's outputs reach the hardware interface directly (``local_bus``): every output is
forwarded once, the DDS copy dropped, and every check of the interface still applies. A hardware interface in
another process (another rclpy context: a DDS participant of its own, as ``local_bus`` keys receivers by
context) gets the same outputs over DDS, and outside subscribers see every topic. The shield answers a command
when it arrives: a command the output budget holds back goes out at the budget's deadline, not on the next tick.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from test_real_stack import HW_CONFIG, PATIENT, assert_standing, real_stack
from test_shield_node import DEFAULT, NAMES, active_harness, ros  # noqa: F401 - ros is a fixture

from humanoid_rl.graph import HARDWARE_INTERFACE, SAFETY_SHIELD, Topics
from humanoid_rl.nodes import local_bus
from humanoid_rl.nodes.hardware_interface import HardwareInterfaceNode
from humanoid_rl.nodes.output_budget import BUDGET_RATE, OutputBudget
from humanoid_rl.nodes.runner import make_executor

OUTSIDE_CONTROLLER = "/outside_process/commands"
KEEP_ALL = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)


class Outside:
    """Another process: its own context with a hardware interface (output remapped, so that the emulator keeps
    one controller input) and a watcher of /joint_commands and both controller topics."""

    def __init__(self) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        params = {"controller_joints": HW_CONFIG["controller_joints"], **PATIENT[HARDWARE_INTERFACE.name]}
        self.interface = HardwareInterfaceNode(
            context=self.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
            cli_args=["--ros-args", "-r", f"{Topics.FORWARD_COMMAND}:={OUTSIDE_CONTROLLER}"],
        )
        self.watcher = Node("outside_watcher", context=self.context)
        self.shield_outputs: list[int] = []  # stamps, ns
        self.inside_controller: list[tuple[float, ...]] = []
        self.outside_controller: list[tuple[float, ...]] = []
        self.watcher.create_subscription(
            JointState, Topics.JOINT_COMMANDS,
            lambda m: self.shield_outputs.append(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec), KEEP_ALL,
        )
        self.watcher.create_subscription(
            Float64MultiArray, Topics.FORWARD_COMMAND, lambda m: self.inside_controller.append(tuple(m.data)), KEEP_ALL
        )
        self.watcher.create_subscription(
            Float64MultiArray, OUTSIDE_CONTROLLER, lambda m: self.outside_controller.append(tuple(m.data)), KEEP_ALL
        )
        self.executor = make_executor(context=self.context)
        self.executor.add_node(self.interface)
        self.executor.add_node(self.watcher)

    def close(self) -> None:
        self.interface.trigger_shutdown()
        self.executor.shutdown()
        self.interface.destroy_node()
        self.watcher.destroy_node()
        rclpy.try_shutdown(context=self.context)


def test_in_one_process_the_interface_takes_the_shields_outputs_directly_and_another_process_gets_them_all() -> None:
    outside = Outside()
    try:
        with real_stack(patient=True) as rs:
            shield, interface = rs.node(SAFETY_SHIELD.name), rs.interface

            def spin_both(condition: Callable[[], bool], timeout: float) -> bool:
                return rs.stack.spin_until(
                    condition, wall_timeout_s=timeout, on_tick=lambda: outside.executor.spin_once(timeout_sec=0.0)
                )

            rs.start_up()
            assert spin_both(outside.interface.sensors_ready, 10.0), outside.interface.sensor_problems()
            assert outside.interface.trigger_configure().name == "SUCCESS", outside.interface.configure_error
            assert outside.interface.trigger_activate().name == "SUCCESS"
            rs.engage()
            spin_both(lambda: False, 2.0)
            published = shield.counters["outputs_published"]
            deferred = shield.counters["outputs_deferred"]
            hw = interface.report()
            rs.bring_up.set_engaged(False)
            spin_both(lambda: False, 0.5)  # what is in flight to the outside arrives
            assert_standing(rs.emulator)

        # In the process: every output came directly, was forwarded once, and its DDS copy was dropped.
        assert hw["commands_direct"] == published > 80, hw
        assert hw["forwarded"] == published and hw["stale_dropped"] == hw["rejected"] == 0, hw
        assert hw["commands_dds_duplicates"] > 0.5 * published, hw  # the DDS copies arrived and were recognised
        # The shield answered the policy's commands as they came (before: about half waited for its next tick).
        print(f"\nshield: {published} outputs, {deferred} deferred by the output budget")
        assert deferred <= 0.1 * published
        # The other process: everything over DDS, nothing directly; what it forwarded is what ours forwarded.
        other = outside.interface.report()
        assert other["commands_direct"] == 0 and other["commands_dds_duplicates"] == 0, other
        assert other["forwarded"] > 0.5 * published and other["stale_dropped"] == 0, other
        inside = set(outside.inside_controller)
        assert outside.outside_controller and all(values in inside for values in outside.outside_controller)
        assert len(outside.shield_outputs) >= published - 5  # an outside subscriber sees every output
    finally:
        outside.close()


def test_a_command_the_output_budget_holds_back_goes_out_at_its_deadline_not_on_the_next_tick() -> None:
    # A 1 Hz tick: had the held-back command waited for it, it would go out up to a second later.
    with active_harness(rate_hz=1.0) as harness:
        shield, outputs = harness.shield, harness.recorder.outputs  # outputs as they arrive over DDS
        period = shield.shield.params.control_period
        harness.policy.running = False  # the test sends the commands itself, directly into the shield
        stamp = harness.robot.latest_stamp
        deferred = shield.counters["outputs_deferred"]

        def command(offset: float) -> Any:
            msg = JointState(name=NAMES, position=(DEFAULT + offset).tolist())
            msg.header.stamp = stamp
            return msg

        local_bus.deliver(harness.io, Topics.POLICY_COMMANDS, command(0.01))
        local_bus.deliver(harness.io, Topics.POLICY_COMMANDS, command(0.02))  # at once: over the budget
        sent = harness.now()
        assert shield.counters["outputs_deferred"] > deferred

        def answered() -> Any:  # the output for the second command (its target: the core passes it unchanged)
            return next((o for o in outputs if np.allclose(o.positions, DEFAULT + 0.02, atol=1e-9)), None)

        harness.spin_until(lambda: answered() is not None, timeout=2.0)
        delay = answered().received - sent
        print(f"\nheld-back command out {delay * 1e3:.1f} ms after it arrived")
        assert delay < period / BUDGET_RATE + 0.1  # the budget's deadline plus scheduling, not a 1 s tick
        assert answered().stamp == pytest.approx(stamp.sec + stamp.nanosec * 1e-9, abs=1e-9)


def test_the_output_budget_names_the_moment_it_allows_the_next_output() -> None:
    period = 0.02
    budget = OutputBudget()
    assert budget.available(0.0, period)
    budget.take()
    assert not budget.available(0.001, period)  # half a token, plus what 1 ms refilled
    wait = budget.wait_s(period)
    early, due = copy.deepcopy(budget), copy.deepcopy(budget)
    assert not early.available(0.001 + wait - 1e-3, period)
    assert due.available(0.001 + wait, period)
    assert wait == pytest.approx((1.0 - (0.5 + BUDGET_RATE * 0.001 / period)) * period / BUDGET_RATE)
