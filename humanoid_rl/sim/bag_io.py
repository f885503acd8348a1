"""rosbag2 files for system identification: the recorded topics, writing a bag, reading a ``Recording`` back.

Bags are standard rosbag2 directories written by ``rosbags`` (sqlite3 storage by default; ``ros2 bag`` reads
them) with ROS 2 messages in CDR, serialized with the same typestore as the Foxglove recordings. Reading takes
sqlite3 and MCAP bags alike (``rosbags.highlevel.AnyReader``), so a bag from ``ros2 bag record -s mcap`` works.

Times in a ``Recording``: a joint state is placed at its header stamp (when the sensors were read); a command
at the time it was logged (when it was sent to the robot), since its header carries the stamp of the state it
was built from, not when it left. Both come from the recording computer's clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_rl.graph import Topics
from humanoid_rl.sim.foxglove_view import _typestore
from humanoid_rl.sim.sysid import Recording

__all__ = ["RECORD_TOPICS", "BagWriter", "read_recording", "write_recording"]

# What `humanoid-rl record` records (and the docs' `ros2 bag record` list): topic → ROS 2 message type.
RECORD_TOPICS: dict[str, str] = {
    Topics.JOINT_STATES: "sensor_msgs/msg/JointState",
    Topics.IMU: "sensor_msgs/msg/Imu",
    Topics.LEFT_FOOT_WRENCH: "geometry_msgs/msg/WrenchStamped",
    Topics.RIGHT_FOOT_WRENCH: "geometry_msgs/msg/WrenchStamped",
    Topics.JOINT_COMMANDS: "sensor_msgs/msg/JointState",
    Topics.POLICY_COMMANDS: "sensor_msgs/msg/JointState",
    Topics.SHIELD_MODE: "std_msgs/msg/String",
    Topics.ESTIMATOR_ODOM: "nav_msgs/msg/Odometry",
}
_NS = 1_000_000_000


class BagWriter:
    """A rosbag2 directory being written: ``write_raw`` takes CDR bytes (what an rclpy raw subscription gives),
    ``write_joint_state`` builds the message."""

    def __init__(self, path: Path, topics: Mapping[str, str] = RECORD_TOPICS, storage: str = "sqlite3") -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if path.exists():
            raise FileExistsError(f"{path} already exists; rosbag2 writes a new directory (choose another -o)")
        plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}.get(storage)
        if plugin is None:
            raise ValueError(f"bag storage {storage!r}: use 'sqlite3' or 'mcap'")
        self.path = path
        self.store = _typestore()
        self._writer = Writer(path, version=9, storage_plugin=plugin)
        self._writer.open()
        self._connections = {t: self._writer.add_connection(t, m, typestore=self.store) for t, m in topics.items()}
        self.counts: dict[str, int] = dict.fromkeys(topics, 0)

    def write_raw(self, topic: str, data: bytes, time_ns: int) -> None:
        self._writer.write(self._connections[topic], int(time_ns), data)
        self.counts[topic] += 1

    def write_joint_state(self, topic: str, time_s: float, names: tuple[str, ...], position: np.ndarray,
                          velocity: np.ndarray | None = None, effort: np.ndarray | None = None) -> None:
        types = self.store.types
        ns = int(round(time_s * _NS))
        empty = np.zeros(0)
        message = types["sensor_msgs/msg/JointState"](
            header=types["std_msgs/msg/Header"](
                stamp=types["builtin_interfaces/msg/Time"](sec=ns // _NS, nanosec=ns % _NS), frame_id=""
            ),
            name=list(names), position=np.asarray(position, dtype=np.float64),
            velocity=empty if velocity is None else np.asarray(velocity, dtype=np.float64),
            effort=empty if effort is None else np.asarray(effort, dtype=np.float64),
        )  # fmt: skip
        self.write_raw(topic, bytes(self.store.serialize_cdr(message, RECORD_TOPICS[topic])), ns)

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_recording(path: Path, recording: Recording, storage: str = "sqlite3") -> None:
    """A ``Recording`` as a bag of /joint_states and /joint_commands (what ``record`` would have captured)."""
    names = recording.joint_names
    topics = {t: RECORD_TOPICS[t] for t in (Topics.JOINT_STATES, Topics.JOINT_COMMANDS)}
    with BagWriter(path, topics, storage) as bag:
        for i, t in enumerate(recording.state_times):
            effort = None if recording.efforts is None else recording.efforts[i]
            bag.write_joint_state(Topics.JOINT_STATES, float(t), names, recording.positions[i],
                                  recording.velocities[i], effort)  # fmt: skip
        for t, q in zip(recording.command_times, recording.command_positions, strict=True):
            bag.write_joint_state(Topics.JOINT_COMMANDS, float(t), names, q)


def _in_order(message: Any, field: str, index: dict[str, int], n: int, where: str) -> np.ndarray | None:
    values = np.asarray(getattr(message, field), dtype=np.float64)
    if values.size == 0:
        return None
    if values.size != len(message.name):
        raise ValueError(f"{where}: a message has {len(message.name)} names but {values.size} {field} values")
    out = np.full(n, np.nan)
    for name, value in zip(message.name, values, strict=True):
        if name in index:
            out[index[name]] = value
    return out


def read_recording(path: str | Path, joint_names: tuple[str, ...], command_topic: str = Topics.JOINT_COMMANDS,
                   ) -> Recording:  # fmt: skip
    """The joint states and commands of a bag (sqlite3 or MCAP), by joint name into ``joint_names`` order."""
    from rosbags.highlevel import AnyReader, AnyReaderError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"bag {path} does not exist")
    index = {name: i for i, name in enumerate(joint_names)}
    n = len(joint_names)
    states: list[tuple[float, np.ndarray, np.ndarray | None, np.ndarray | None]] = []
    commands: list[tuple[float, np.ndarray]] = []
    try:
        reader = AnyReader([path], default_typestore=_typestore())
        reader.open()
    except (AnyReaderError, FileNotFoundError) as exc:
        raise ValueError(f"{path} is not a readable rosbag2 (sqlite3 or MCAP): {exc}") from exc
    try:
        wanted = [c for c in reader.connections if c.topic in (Topics.JOINT_STATES, command_topic)]
        for connection, time_ns, raw in reader.messages(connections=wanted):
            message = reader.deserialize(raw, connection.msgtype)
            if connection.topic == Topics.JOINT_STATES:
                stamp = message.header.stamp.sec + message.header.stamp.nanosec * 1e-9
                position = _in_order(message, "position", index, n, str(path))
                if position is not None:
                    states.append((stamp, position, _in_order(message, "velocity", index, n, str(path)),
                                   _in_order(message, "effort", index, n, str(path))))  # fmt: skip
            else:
                position = _in_order(message, "position", index, n, str(path))
                if position is not None:
                    commands.append((time_ns / _NS, position))
    finally:
        reader.close()
    if len(states) < 2 or not commands:
        raise ValueError(
            f"{path}: {len(states)} messages on {Topics.JOINT_STATES} and {len(commands)} on {command_topic}; "
            "sysid needs both (record them with `humanoid-rl record`)"
        )
    states.sort(key=lambda s: s[0])
    commands.sort(key=lambda c: c[0])
    positions = np.array([s[1] for s in states])
    command_positions = np.array([c[1] for c in commands])
    gaps = np.isnan(positions).any(axis=0) | np.isnan(command_positions).any(axis=0)
    if gaps.any():
        missing = [joint_names[i] for i in np.flatnonzero(gaps)]
        raise ValueError(f"{path}: joint states or commands that do not name the robot's joints {missing}")
    velocities = np.array([s[2] if s[2] is not None else np.zeros(n) for s in states])
    efforts = None if any(s[3] is None for s in states) else np.array([s[3] for s in states])
    return Recording(
        joint_names=joint_names,
        command_times=np.array([c[0] for c in commands]),
        command_positions=command_positions,
        state_times=np.array([s[0] for s in states]),
        positions=positions,
        velocities=velocities,
        efforts=efforts,
    )
