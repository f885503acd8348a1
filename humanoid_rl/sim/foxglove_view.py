"""Live and recorded 3D view of a simulated run for Foxglove (``humanoid-rl sim --foxglove`` / ``--mcap``).

The view serves the run over the Foxglove WebSocket protocol (``foxglove-sdk``) and/or writes it to an MCAP file,
as standard ROS 2 messages (``ros2msg`` schemas, CDR payloads, serialized with ``rosbags``): the Foxglove app
shows them with its ROS panels, and ``rosbags`` (or ``ros2 bag``) reads the file. Channels:

- ``/robot_description`` (std_msgs/String): the URDF, once, and again for every client that subscribes;
- ``/tf`` (tf2_msgs/TFMessage): ``world`` → base link from the simulator's ground truth, and parent → child for
  every URDF joint, as robot_state_publisher would: the 3D panel draws the URDF there;
- ``/joint_states`` (measured position, velocity, effort) and ``/joint_targets`` (the shielded command the
  motors track: position and velocity targets), both sensor_msgs/JointState, plottable per joint;
- ``/contact_forces`` (visualization_msgs/MarkerArray): the ground reaction force on each foot as an arrow;
- ``/safety_shield/mode`` (std_msgs/String).

Frames are captured at ``rate_hz`` of sim time by the run's loop, from the simulator in the same process; the
exact (noise-free) readers are used, so watching never changes the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FoxgloveView", "ViewFrame", "TOPICS"]

WORLD_FRAME = "world"
FORCE_ARROW_M_PER_N = 0.002  # a 40 kg robot's weight (392 N) split on two feet: 0.4 m arrows
TOPICS = {
    "/robot_description": "std_msgs/msg/String",
    "/tf": "tf2_msgs/msg/TFMessage",
    "/joint_states": "sensor_msgs/msg/JointState",
    "/joint_targets": "sensor_msgs/msg/JointState",
    "/contact_forces": "visualization_msgs/msg/MarkerArray",
    "/safety_shield/mode": "std_msgs/msg/String",
}


@dataclass(frozen=True)
class ViewFrame:
    """What the run knows besides the simulator at a captured instant."""

    shield_mode: str
    target_positions: np.ndarray | None  # the last shielded command (policy order), None before the first
    target_velocities: np.ndarray | None


def _typestore() -> Any:
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)  # these message definitions are the same in every ROS 2 release


class FoxgloveView:
    """Serves (``port``, 0 = any free one) and/or records (``mcap_path``) a HumanoidSim's run."""

    def __init__(self, sim: Any, *, port: int | None = None, mcap_path: Path | None = None,
                 host: str = "127.0.0.1", rate_hz: float = 25.0) -> None:
        import foxglove

        self.sim = sim
        self.period_s = 1.0 / rate_hz
        self._next_s = 0.0
        self.frames = 0
        self._store = store = _typestore()
        self._urdf = sim.spec.urdf_path.read_text(encoding="utf-8")
        self._tree = sim.joint_tree()
        self._context = foxglove.Context()  # this view's own sinks and channels, whatever else the process logs
        self._channels = {}
        for topic, typename in TOPICS.items():
            text, _ = store.generate_msgdef(typename, ros_version=2)
            schema = foxglove.Schema(name=typename, encoding="ros2msg", data=text.encode())
            self._channels[topic] = foxglove.Channel(topic, schema=schema, message_encoding="cdr",
                                                      context=self._context)
        self.mcap_path = mcap_path
        # Profile "ros2": what ROS 2 tools (rosbags, ros2 bag) require of an MCAP; one compression thread (the
        # run's loop shares the machine).
        options = foxglove.mcap.MCAPWriteOptions(profile="ros2", compression_threads=0)
        self._mcap = None if mcap_path is None else foxglove.open_mcap(
            str(mcap_path), allow_overwrite=True, context=self._context, writer_options=options
        )
        self.server = None
        if port is not None:
            view = self

            class Listener(foxglove.ServerListener):  # type: ignore[misc]
                def on_subscribe(self, client: Any, channel: Any) -> None:
                    if channel.topic == "/robot_description":  # latched, as the ROS topic is
                        view._log_description()

            self.server = foxglove.start_server(host=host, port=port, server_listener=Listener(),
                                                context=self._context, name="humanoid_rl")
        self._log_description()

    @property
    def port(self) -> int | None:
        return None if self.server is None else int(self.server.port)

    # ------------------------------------------------------------------ messages
    def _stamp(self, time_s: float) -> Any:
        time_class = self._store.types["builtin_interfaces/msg/Time"]
        ns = int(round(time_s * 1e9))
        return time_class(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    def _header(self, time_s: float, frame_id: str = "") -> Any:
        return self._store.types["std_msgs/msg/Header"](stamp=self._stamp(time_s), frame_id=frame_id)

    def _log(self, topic: str, message: Any, time_s: float) -> None:
        data = self._store.serialize_cdr(message, TOPICS[topic])
        self._channels[topic].log(bytes(data), log_time=int(round(time_s * 1e9)))

    def _log_description(self) -> None:
        string = self._store.types["std_msgs/msg/String"]
        self._log("/robot_description", string(data=self._urdf), self.sim.time_s)

    def _transform(self, time_s: float, parent: str, child: str, pos: np.ndarray, quat: np.ndarray) -> Any:
        types = self._store.types
        return types["geometry_msgs/msg/TransformStamped"](
            header=self._header(time_s, parent),
            child_frame_id=child,
            transform=types["geometry_msgs/msg/Transform"](
                translation=types["geometry_msgs/msg/Vector3"](x=float(pos[0]), y=float(pos[1]), z=float(pos[2])),
                rotation=types["geometry_msgs/msg/Quaternion"](
                    x=float(quat[0]), y=float(quat[1]), z=float(quat[2]), w=float(quat[3])
                ),
            ),
        )

    def _transforms(self, time_s: float) -> Any:
        from humanoid_rl.core.rotations import quat_multiply, quat_to_matrix

        frames = self.sim.link_frames()
        base = self.sim.spec.base_link
        transforms = [self._transform(time_s, WORLD_FRAME, base, *frames[base])]
        for parent, child in self._tree:  # parent⁻¹ · child, as robot_state_publisher sends
            p_pos, p_quat = frames[parent]
            c_pos, c_quat = frames[child]
            inverse = np.array([-p_quat[0], -p_quat[1], -p_quat[2], p_quat[3]])
            relative_pos = quat_to_matrix(p_quat).T @ (c_pos - p_pos)
            transforms.append(self._transform(time_s, parent, child, relative_pos, quat_multiply(inverse, c_quat)))
        return self._store.types["tf2_msgs/msg/TFMessage"](transforms=transforms)

    def _joint_state(self, time_s: float, position: np.ndarray, velocity: np.ndarray, effort: np.ndarray) -> Any:
        return self._store.types["sensor_msgs/msg/JointState"](
            header=self._header(time_s), name=list(self.sim.spec.joint_names),
            position=np.asarray(position, dtype=np.float64), velocity=np.asarray(velocity, dtype=np.float64),
            effort=np.asarray(effort, dtype=np.float64),
        )  # fmt: skip

    def _force_arrows(self, time_s: float) -> Any:
        types = self._store.types
        _, wrenches = self.sim.contact_wrenches()
        markers = []
        for side, (foot, wrench) in enumerate(zip(self.sim.spec.foot_links, wrenches, strict=True)):
            tip = np.asarray(wrench[:3]) * FORCE_ARROW_M_PER_N
            point = types["geometry_msgs/msg/Point"]
            markers.append(types["visualization_msgs/msg/Marker"](
                header=self._header(time_s, foot), ns="ground_reaction", id=side, type=0, action=0,  # ARROW, ADD
                pose=types["geometry_msgs/msg/Pose"](
                    position=point(x=0.0, y=0.0, z=0.0),
                    orientation=types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
                ),
                scale=types["geometry_msgs/msg/Vector3"](x=0.02, y=0.04, z=0.05),
                color=types["std_msgs/msg/ColorRGBA"](r=0.95, g=0.35, b=0.1, a=1.0),
                lifetime=types["builtin_interfaces/msg/Duration"](sec=0, nanosec=0),
                frame_locked=True,
                points=[point(x=0.0, y=0.0, z=0.0), point(x=float(tip[0]), y=float(tip[1]), z=float(tip[2]))],
                colors=[], texture_resource="", texture=types["sensor_msgs/msg/CompressedImage"](
                    header=self._header(0.0), format="", data=np.zeros(0, dtype=np.uint8)),
                uv_coordinates=[], text="", mesh_resource="",
                mesh_file=types["visualization_msgs/msg/MeshFile"](filename="", data=np.zeros(0, dtype=np.uint8)),
                mesh_use_embedded_materials=False,
            ))  # fmt: skip
        return types["visualization_msgs/msg/MarkerArray"](markers=markers)

    # ------------------------------------------------------------------ the run's side
    def maybe_capture(self, now_s: float, frame: ViewFrame) -> bool:
        """Log a frame when one is due at sim time ``now_s``; True if one was."""
        if now_s + 1e-9 < self._next_s:
            return False
        self._next_s = now_s + self.period_s
        self.capture(frame)
        return True

    def capture(self, frame: ViewFrame) -> None:
        sim = self.sim
        time_s = sim.time_s
        string = self._store.types["std_msgs/msg/String"]
        q, qd = sim.joint_state()
        self._log("/tf", self._transforms(time_s), time_s)
        self._log("/joint_states", self._joint_state(time_s, q, qd, sim.last_applied_torques), time_s)
        if frame.target_positions is not None:
            velocities = np.zeros_like(q) if frame.target_velocities is None else frame.target_velocities
            self._log("/joint_targets", self._joint_state(time_s, frame.target_positions, velocities,
                                                          np.zeros_like(q)), time_s)
        self._log("/contact_forces", self._force_arrows(time_s), time_s)
        self._log("/safety_shield/mode", string(data=frame.shield_mode), time_s)
        self.frames += 1

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self._mcap is not None:
            self._mcap.close()
            self._mcap = None
