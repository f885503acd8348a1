"""`humanoid-rl record`: a real rclpy recorder next to the hardware emulator writes a rosbag2 that rosbags reads
back, with the robot's topics, the latched shield mode, and the excitation it published (stamped as a policy's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import String

from humanoid_rl import cli
from humanoid_rl.apps.record import excited_joints, record
from humanoid_rl.core.excitation import Excitation
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.graph import Topics
from humanoid_rl.nodes.hardware_emulator import HardwareEmulatorNode
from humanoid_rl.nodes.qos import LATCHED_QOS
from humanoid_rl.sim.bag_io import RECORD_TOPICS, read_recording
from humanoid_rl.sim.foxglove_view import _typestore

RECORD_S = 2.0
Recorded = tuple[Path, dict[str, int], dict[str, int]]


def _messages(bag: Path) -> dict[str, list[tuple[int, object]]]:
    from rosbags.highlevel import AnyReader

    out: dict[str, list[tuple[int, object]]] = {}
    with AnyReader([bag], default_typestore=_typestore()) as reader:
        for connection, time_ns, raw in reader.messages():
            out.setdefault(connection.topic, []).append((time_ns, reader.deserialize(raw, connection.msgtype)))
    return out


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    spec = RobotSpec.load()
    bag = tmp_path_factory.mktemp("record") / "bag"
    context = rclpy.Context()
    rclpy.init(context=context)
    emulator = HardwareEmulatorNode(context=context, parameter_overrides=[Parameter("drop_probability", value=0.0)])
    mode = Node("mode_publisher", context=context)
    mode.create_publisher(String, Topics.SHIELD_MODE, LATCHED_QOS).publish(String(data="HOLD"))  # before the recorder
    try:
        counts = record(bag, RECORD_S, spec=spec, excitation=Excitation(duration_s=RECORD_S),
                        joints=excited_joints(["legs"], spec.joint_names), extra_nodes=(emulator, mode),
                        context=context)  # fmt: skip
        published = dict(emulator.published)
    finally:
        emulator.destroy_node()
        mode.destroy_node()
        rclpy.shutdown(context=context)
    return bag, counts, published


def test_the_bag_holds_every_sensor_message_the_emulator_published(recorded: Recorded) -> None:
    bag, counts, published = recorded
    messages = _messages(bag)
    assert set(RECORD_TOPICS) >= set(messages)
    states = messages[Topics.JOINT_STATES]
    # The emulator's rate depends on the machine's load; what it sent, the bag must hold (the first cycles may
    # precede the recorder's discovery).
    assert len(states) >= 20 and len(states) >= published["joint_states"] - 5
    assert len(messages[Topics.IMU]) >= published["imu"] - 5
    wrenches = len(messages[Topics.LEFT_FOOT_WRENCH]) + len(messages[Topics.RIGHT_FOOT_WRENCH])
    assert wrenches >= published["foot_wrenches"] - 10
    assert counts[Topics.JOINT_STATES] == len(states)
    assert len(states[0][1].name) == 21 and len(states[0][1].effort) == 21


def test_the_latched_shield_mode_published_before_recording_is_in_the_bag(recorded: Recorded) -> None:
    assert [m.data for _, m in _messages(recorded[0])[Topics.SHIELD_MODE]] == ["HOLD"]


def test_the_excitation_moves_only_the_legs_and_answers_recorded_states(recorded: Recorded) -> None:
    bag, counts, _ = recorded
    spec = RobotSpec.load()
    messages = _messages(bag)
    commands = messages[Topics.POLICY_COMMANDS]
    assert len(commands) == counts["excitation_commands_sent"] >= 20
    targets = np.array([m.position for _, m in commands])
    legs = excited_joints(["legs"], spec.joint_names)
    moving = np.ptp(targets, axis=0) > 1e-6
    assert moving.tolist() == [i in legs for i in range(spec.n_joints)]
    assert np.all(targets >= spec.lower) and np.all(targets <= spec.upper)
    state_stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for _, m in messages[Topics.JOINT_STATES]}
    answered = [(m.header.stamp.sec, m.header.stamp.nanosec) in state_stamps for _, m in commands]
    assert np.mean(answered) > 0.9  # each stamped with a state it answers (a dropped best-effort copy aside)
    recording = read_recording(bag, spec.joint_names, command_topic=Topics.POLICY_COMMANDS)
    assert recording.command_positions.shape == (len(commands), spec.n_joints)
    assert recording.efforts is not None


def test_record_refuses_an_existing_bag_and_an_unknown_joint_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bag").mkdir()
    assert cli.main(["record", "-o", str(tmp_path / "bag"), "--duration", "1"]) == 2
    assert cli.main(["record", "-o", str(tmp_path / "new"), "--excite", "wings"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "exists" in lines[0] and "'wings'" in lines[1], lines
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_sysid_recovers_the_stiffness_of_a_perturbed_emulator_recorded_over_ros(tmp_path: Path) -> None:
    """The whole chain over DDS: the recorder excites the legs on /joint_commands (standing in for the shield),
    the hardware interface forwards them to the emulator (hanging, legs 20 % stiffer than nominal), the bag is fitted.
    Real time on a loaded machine: the emulator's cycles jitter, so the tolerance is the default suite's 5 %."""
    from humanoid_rl.nodes.hardware_interface import HardwareInterfaceNode
    from humanoid_rl.nodes.runner import spin_until
    from humanoid_rl.sim.sysid import fit_parameter
    from humanoid_rl.sim.sysid_fit import fit

    spec = RobotSpec.load()
    truth = tmp_path / "truth.yaml"
    truth.write_text("sim_params:\n  kp_scale: {legs: 1.2}\n")
    bag = tmp_path / "bag"
    context = rclpy.Context()
    rclpy.init(context=context)
    emulator = HardwareEmulatorNode(context=context, parameter_overrides=[
        Parameter("sim_params", value=str(truth)), Parameter("hanging", value=True),
        Parameter("drop_probability", value=0.0), Parameter("sensor_latency", value=0.0),
        Parameter("sensor_jitter", value=0.0)])  # fmt: skip
    interface = HardwareInterfaceNode(context=context, parameter_overrides=[
        Parameter("controller_joints", value=list(emulator.controller_joints))])  # fmt: skip
    try:
        from rclpy.executors import SingleThreadedExecutor

        executor = SingleThreadedExecutor(context=context)
        for node in (emulator, interface):
            executor.add_node(node)
        assert spin_until(executor, interface.sensors_ready, wall_timeout_s=10.0)
        assert interface.trigger_configure().name == "SUCCESS", interface.configure_error
        assert interface.trigger_activate().name == "SUCCESS"
        for node in (emulator, interface):
            executor.remove_node(node)
        executor.shutdown()
        legs = excited_joints(["legs"], spec.joint_names)
        record(bag, 4.0, spec=spec, excitation=Excitation(duration_s=4.0), joints=legs,
               excite_topic=Topics.JOINT_COMMANDS, extra_nodes=(emulator, interface), context=context)  # fmt: skip
    finally:
        interface.destroy_node()
        emulator.destroy_node()
        rclpy.shutdown(context=context)
    recording = read_recording(bag, spec.joint_names)
    parameters = [fit_parameter(k, spec.joint_names) for k in ("kp_scale.legs", "kd_scale.legs", "control_latency_s")]
    result = fit(spec, recording, parameters=parameters, max_evaluations=80)
    assert result.values["kp_scale.legs"] == pytest.approx(1.2, rel=0.05)
    assert result.rmse_after_rad < result.rmse_before_rad / 2
