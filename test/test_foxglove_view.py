"""The Foxglove view of a simulated run: a WebSocket client sees every channel with sane content, and the MCAP
file the same run wrote reads back with rosbags (so Foxglove and ROS 2 tools open it)."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("foxglove")
pytest.importorskip("rosbags")
websockets_sync = pytest.importorskip("websockets.sync.client")

from rosbags.highlevel import AnyReader  # noqa: E402

from humanoid_rl.core.robot_spec import RobotSpec  # noqa: E402
from humanoid_rl.sim import HumanoidSim  # noqa: E402
from humanoid_rl.sim.foxglove_view import TOPICS, FoxgloveView, ViewFrame, _typestore  # noqa: E402

SPEC = RobotSpec.load(None)
FRAMES = 20


def run_view(view: FoxgloveView, sim: HumanoidSim, frames: int) -> None:
    for _ in range(frames):
        sim.set_joint_targets(SPEC.default_pose)
        sim.step(40)  # 25 Hz of sim time: one frame per step
        assert view.maybe_capture(sim.time_s, ViewFrame("ACTIVE", SPEC.default_pose + 0.01, None))


def check_content(topic: str, msg: object) -> None:
    if topic == "/joint_states":
        assert list(msg.name) == list(SPEC.joint_names)  # type: ignore[attr-defined]
        assert np.abs(np.asarray(msg.position) - SPEC.default_pose).max() < 0.1  # type: ignore[attr-defined]
    elif topic == "/joint_targets":
        np.testing.assert_allclose(msg.position, SPEC.default_pose + 0.01)  # type: ignore[attr-defined]
    elif topic == "/tf":
        transforms = {t.child_frame_id: t for t in msg.transforms}  # type: ignore[attr-defined]
        base = transforms[SPEC.base_link]
        assert base.header.frame_id == "world"
        assert base.transform.translation.z == pytest.approx(SPEC.nominal_base_height, abs=0.01)
        assert set(SPEC.foot_links) <= set(transforms)  # every link placed relative to its parent
    elif topic == "/contact_forces":
        arrows = msg.markers  # type: ignore[attr-defined]
        assert [a.header.frame_id for a in arrows] == list(SPEC.foot_links)
        total_n = sum(a.points[1].z for a in arrows) / 0.002  # arrow length back to newtons
        assert total_n == pytest.approx(40.0 * 9.81, rel=0.05)  # the feet carry the standing robot
    elif topic == "/robot_description":
        assert msg.data.startswith("<?xml") or "<robot" in msg.data  # type: ignore[attr-defined]
    elif topic == "/safety_shield/mode":
        assert msg.data == "ACTIVE"  # type: ignore[attr-defined]


def test_a_websocket_client_subscribes_and_receives_every_channel_with_sane_content(tmp_path: Path) -> None:
    sim = HumanoidSim(SPEC)
    view = FoxgloveView(sim, port=0)
    store = _typestore()
    received: dict[str, list[object]] = {topic: [] for topic in TOPICS}
    try:
        with websockets_sync.connect(
            f"ws://127.0.0.1:{view.port}", subprotocols=["foxglove.sdk.v1"], open_timeout=10
        ) as client:
            channels: dict[int, dict] = {}
            deadline = time.monotonic() + 10.0
            while len(channels) < len(TOPICS) and time.monotonic() < deadline:
                message = json.loads(client.recv(timeout=5))
                if message["op"] == "advertise":
                    channels.update({c["id"]: c for c in message["channels"]})
            assert {c["topic"] for c in channels.values()} == set(TOPICS)
            for channel in channels.values():
                assert channel["encoding"] == "cdr" and channel["schemaEncoding"] == "ros2msg"
                assert channel["schemaName"] == TOPICS[channel["topic"]]
            by_subscription = dict(enumerate(channels.values(), start=1))
            client.send(json.dumps({"op": "subscribe", "subscriptions": [
                {"id": sub, "channelId": c["id"]} for sub, c in by_subscription.items()
            ]}))  # fmt: skip
            time.sleep(0.5)  # the server has taken the subscriptions before the run logs
            run_view(view, sim, FRAMES)
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline and any(len(v) < FRAMES for k, v in received.items()
                                                      if k != "/robot_description"):
                data = client.recv(timeout=5)
                if isinstance(data, str):
                    continue  # status and other JSON ops
                opcode, subscription, _ = struct.unpack_from("<BIQ", data)
                assert opcode == 1  # message data
                topic = by_subscription[subscription]["topic"]
                received[topic].append(store.deserialize_cdr(data[13:], TOPICS[topic]))
    finally:
        view.close()
        sim.close()
    for topic, messages in received.items():
        assert messages, f"nothing on {topic}"
        for msg in messages[-3:]:
            check_content(topic, msg)
    assert len(received["/joint_states"]) == FRAMES


def test_the_same_run_recorded_to_mcap_reads_back_with_rosbags(tmp_path: Path) -> None:
    sim = HumanoidSim(SPEC)
    path = tmp_path / "run.mcap"
    view = FoxgloveView(sim, mcap_path=path)
    try:
        run_view(view, sim, FRAMES)
    finally:
        view.close()
        sim.close()
    with AnyReader([path]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        assert counts == {**dict.fromkeys(TOPICS, FRAMES), "/robot_description": 1}
        stamps, last = [], {}
        for connection, timestamp, raw in reader.messages():
            last[connection.topic] = reader.deserialize(raw, connection.msgtype)
            if connection.topic == "/joint_states":
                stamps.append(timestamp)
    for topic, msg in last.items():  # the robot has settled on its feet by the last frame
        check_content(topic, msg)
    assert np.allclose(np.diff(stamps), 0.04e9)  # 25 Hz of sim time


def test_humanoid_rl_sim_mcap_records_the_run_beside_its_report(tmp_path: Path) -> None:
    from humanoid_rl import cli

    out = tmp_path / "run"
    assert cli.main(["sim", "--duration", "3", "--no-video", "--no-plots", "--mcap", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["foxglove"]["mcap"] == str(out / "run.mcap")
    with AnyReader([out / "run.mcap"]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        modes = [reader.deserialize(raw, c.msgtype).data for c, _, raw in reader.messages()
                 if c.topic == "/safety_shield/mode"]
    assert counts["/joint_states"] == report["foxglove"]["frames"] >= 70  # 25 Hz over 3 s
    assert counts["/joint_targets"] > 0  # the shield's commands, once it sent one
    assert modes[0] == "HOLD" and modes[-1] == "ACTIVE"  # the start-up hold, then the policy
