"""The in-process hand-over: nodes of one process pass their outputs directly, drop the DDS copies, and still
publish every topic for outside subscribers; nodes of different contexts (processes) never link."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import rclpy
from nav_msgs.msg import Odometry
from rclpy.context import Context
from rclpy.node import Node
from sensor_msgs.msg import JointState

from humanoid_rl.apps.sim import stack_overrides
from humanoid_rl.apps.stack import InProcessStack, StackOptions
from humanoid_rl.graph import POLICY, SAFETY_SHIELD, SIM_BRIDGE, StackMode, Topics, sim_graph
from humanoid_rl.nodes import local_bus
from humanoid_rl.nodes.local_bus import DirectInput, MessagePair
from humanoid_rl.nodes.qos import COMMAND_QOS, SENSOR_QOS
from humanoid_rl.nodes.runner import make_executor


def stamped(sec: int, nanosec: int = 0) -> SimpleNamespace:
    return SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec)))


def test_delivery_reaches_only_receivers_of_the_same_context_and_topic_until_they_unregister() -> None:
    one, other = SimpleNamespace(context=object()), SimpleNamespace(context=object())
    got: list[object] = []
    unregister = local_bus.receive(one, "/t", got.append)
    assert local_bus.deliver(one, "/t", "a") == 1
    assert local_bus.deliver(other, "/t", "b") == 0  # another process's context: no link
    assert local_bus.deliver(one, "/u", "c") == 0  # another topic
    unregister()
    assert local_bus.deliver(one, "/t", "d") == 0
    assert got == ["a"]


def test_the_bus_can_be_switched_off_for_a_process(monkeypatch) -> None:  # noqa: ANN001
    node = SimpleNamespace(context=object())
    monkeypatch.setenv("HUMANOID_RL_LOCAL_BUS", "0")
    local_bus.receive(node, "/t", lambda m: None)
    assert local_bus.deliver(node, "/t", "a") == 0


def test_a_dds_copy_of_a_delivered_message_and_anything_older_is_recognised() -> None:
    direct = DirectInput()
    assert not direct.is_duplicate(stamped(5))  # nothing delivered directly yet: DDS is the only source
    direct.arrived(stamped(5))
    assert direct.is_duplicate(stamped(5)) and direct.is_duplicate(stamped(4, 999))
    assert not direct.is_duplicate(stamped(5, 1))  # newer: from a publisher in another process
    assert (direct.direct, direct.duplicates) == (1, 2)


def test_a_message_pair_hands_out_its_two_messages_in_turn() -> None:
    pair = MessagePair(JointState)
    first, second = pair.next(), pair.next()
    assert first is not second and pair.next() is first and set(map(id, pair.both)) == {id(first), id(second)}


def test_in_one_process_the_chain_hands_over_directly_and_outside_subscribers_still_see_every_topic() -> None:
    args = argparse.Namespace(sync=True, gui=False, seed=1, rate=50.0, push_duration=0.2, robot_config="",
                              model="humanoid_stand.onnx")
    options = StackOptions(nodes=sim_graph(), mode=StackMode.SIM, overrides=stack_overrides(args))
    outside = Context()
    rclpy.init(context=outside)  # a second context: what another process (ros2 topic echo) would be
    watcher = Node("watcher", context=outside)
    seen = {"odom": 0, "commands": 0}
    published_before_first_seen: list[int] = []  # policy commands out before the outside process matched

    def on_command(message: JointState) -> None:
        if not seen["commands"]:
            published_before_first_seen.append(policy.published - 1)
        seen["commands"] += 1

    watcher.create_subscription(Odometry, Topics.ESTIMATOR_ODOM, lambda m: seen.__setitem__("odom", seen["odom"] + 1),
                                SENSOR_QOS)
    watcher.create_subscription(JointState, Topics.POLICY_COMMANDS, on_command, COMMAND_QOS)
    watcher_executor = make_executor(context=outside)
    watcher_executor.add_node(watcher)
    try:
        with InProcessStack(options) as stack:
            bridge, policy, shield = (stack.node(d.name) for d in (SIM_BRIDGE, POLICY, SAFETY_SHIELD))

            inputs = {"odom": policy.odom_input, "commands": shield.command_input}
            # (direct, duplicates) of each input when its first DDS copy arrived. Until DDS discovery inside the
            # process matches the pair (0.3-0.8 s on a loaded machine) no copy can come; after it, every one must.
            since_matched: dict[str, tuple[int, int]] = {}

            def tick() -> None:
                watcher_executor.spin_once(timeout_sec=0.0)
                for name, direct_input in inputs.items():
                    if name not in since_matched and direct_input.duplicates > 0:
                        since_matched[name] = (direct_input.direct, direct_input.duplicates)

            def window(name: str) -> tuple[int, int]:
                direct, duplicates = since_matched.get(name, (inputs[name].direct, inputs[name].duplicates))
                return inputs[name].direct - direct, inputs[name].duplicates - duplicates

            assert stack.spin_until(lambda: bridge.sim_time_s >= 4.0 and window("odom")[0] >= 100
                                    and window("commands")[0] >= 50 and seen["commands"] >= 50, wall_timeout_s=120.0,
                                    on_tick=tick)
            published = policy.published
            # Every estimator output and policy command went over directly; once DDS had matched, each one's DDS
            # copy arrived as well and was dropped.
            assert policy.odom_input.direct > 150 and shield.command_input.direct == published > 80
            for name in inputs:
                direct, duplicates = window(name)
                assert duplicates > 0.9 * direct, (name, direct, duplicates)
            accepted = shield.shield.counters.commands_accepted
            assert accepted <= published  # each command judged once, not once more for its DDS copy
            assert not bridge.report()["fell"]
        for _ in range(50):  # what is still in flight to the outside subscriber
            watcher_executor.spin_once(timeout_sec=0.01)
    finally:
        watcher_executor.shutdown()
        watcher.destroy_node()
        rclpy.shutdown(context=outside)
    # Another process sees every command from its discovery of ours on (0.3-0.8 s across contexts under load).
    assert published_before_first_seen, "the outside subscriber never received a command"
    assert seen["odom"] > 150 and seen["commands"] > 0.9 * (published - published_before_first_seen[0])
