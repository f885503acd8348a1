"""A video of a simulated run: PyBullet's own renderer, headless, a camera that follows the base.

:class:`RunVideo` takes a frame whenever one is due at ``fps`` in SIM time (so a lock-step run faster than real
time still gives a real-time video). Rendering happens in a separate process with its own PyBullet world of the
same robot: the run only hands over a pose snapshot (base pose and joint angles, tens of microseconds), so the
renderer (TinyRenderer, CPU: 10–50 ms a frame at 320 × 240 on a 2-core machine) neither delays the control loop
nor skews its latency figures, and it uses the second core. :class:`FrameRenderer` draws what happened on each
frame (pushes as arrows while they act, the commanded velocity and the shield mode as text) and the frames go to
``run.mp4`` through ``imageio-ffmpeg`` (its wheel carries ffmpeg), or to an animated GIF with Pillow at half the
rate and size when imageio is not installed.

In real time a renderer that falls behind drops frames (counted) rather than hold the run up; in lock-step the
run waits for it, so the video is complete.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pybullet as pb

if TYPE_CHECKING:
    from humanoid_rl.sim.simulator import HumanoidSim

CAMERA_DISTANCE_M = 2.4
CAMERA_YAW_DEG = 35.0  # seen from the front left
CAMERA_PITCH_DEG = -12.0
FIELD_OF_VIEW_DEG = 50.0
ARROW_M_PER_N = 0.01  # a 60 N push is drawn 0.6 m long
QUEUE_FRAMES = 64  # snapshots handed over and not rendered yet (a couple of seconds of video)
ACK, DONE = b".", b"="  # renderer → run: one frame rendered; the summary line follows
@dataclass
class FrameInfo:
    """What is written on a frame."""

    mode: str = ""
    command: tuple[float, float, float] = (0.0, 0.0, 0.0)
    push_world_n: np.ndarray | None = None  # the force acting on the base now, if any


def mp4_available() -> bool:
    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg  # noqa: F401  - the ffmpeg binary; imageio alone cannot write MP4
    except ImportError:
        return False
    return True


class FrameRenderer:
    """Renders a :class:`HumanoidSim`'s current pose into an annotated RGB image (height, width, 3)."""

    def __init__(self, sim: HumanoidSim, size: tuple[int, int] = (320, 240)) -> None:
        self.sim = sim
        self.width, self.height = size
        self._projection = pb.computeProjectionMatrixFOV(FIELD_OF_VIEW_DEG, self.width / self.height, 0.05, 30.0)

    def render(self, time_s: float, info: FrameInfo) -> np.ndarray:
        base = self.sim.ground_truth().pos
        target = [float(base[0]), float(base[1]), 0.6]
        view = pb.computeViewMatrixFromYawPitchRoll(
            target, CAMERA_DISTANCE_M, CAMERA_YAW_DEG, CAMERA_PITCH_DEG, 0.0, 2
        )
        _, _, rgba, _, _ = pb.getCameraImage(
            self.width,
            self.height,
            view,
            self._projection,
            shadow=0,
            flags=pb.ER_NO_SEGMENTATION_MASK,
            renderer=pb.ER_TINY_RENDERER,
            physicsClientId=self.sim._client,  # noqa: SLF001 - the sim's own PyBullet connection
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(self.height, self.width, 4)[:, :, :3]
        return self._annotate(rgb, view, base, time_s, info)

    def _pixel(self, view: Any, point: np.ndarray) -> tuple[float, float] | None:
        """World point → pixel (column, row), None behind the camera. OpenGL column-major matrices."""
        v = np.asarray(view, dtype=float).reshape(4, 4).T
        p = np.asarray(self._projection, dtype=float).reshape(4, 4).T
        clip = p @ v @ np.append(point, 1.0)
        if clip[3] <= 1e-6:
            return None
        x, y = clip[0] / clip[3], clip[1] / clip[3]
        return (x + 1.0) * 0.5 * self.width, (1.0 - y) * 0.5 * self.height

    def _annotate(self, rgb: np.ndarray, view: Any, base: np.ndarray, time_s: float, info: FrameInfo) -> np.ndarray:
        from PIL import Image, ImageDraw

        image = Image.fromarray(np.ascontiguousarray(rgb))
        draw = ImageDraw.Draw(image)
        if info.push_world_n is not None and np.linalg.norm(info.push_world_n) > 0.0:
            force = np.asarray(info.push_world_n, dtype=float)
            tail = base - ARROW_M_PER_N * force  # the arrow ends at the base: it pushes
            start, end = self._pixel(view, tail), self._pixel(view, base)
            if start is not None and end is not None:
                red = (220, 30, 30)
                draw.line([start, end], fill=red, width=3)
                angle = math.atan2(end[1] - start[1], end[0] - start[0])
                for side in (-0.5, 0.5):
                    tip = (end[0] - 10 * math.cos(angle + side), end[1] - 10 * math.sin(angle + side))
                    draw.line([end, tip], fill=red, width=3)
                draw.text((start[0] + 4, start[1] - 12), f"{np.linalg.norm(force):.0f} N", fill=red)
        vx, vy, wz = info.command
        lines = [f"t {time_s:5.2f} s   shield {info.mode or '-'}"]
        if any(info.command):
            lines.append(f"cmd vx {vx:+.2f} vy {vy:+.2f} m/s  wz {wz:+.2f} rad/s")
        draw.rectangle([0, 0, self.width, 12 * len(lines) + 4], fill=(255, 255, 255))
        for i, line in enumerate(lines):
            draw.text((4, 2 + 12 * i), line, fill=(0, 0, 0))
        return np.asarray(image)


def _render_worker(robot_config: str, path: str, fps: float, size: tuple[int, int]) -> None:
    """The renderer process (``python -m humanoid_rl.sim.video``): its own PyBullet world of the robot, posed from
    each pickled snapshot on stdin, streamed to ``path``; one ACK byte per frame, a DONE summary at the end."""
    from humanoid_rl.core.robot_spec import RobotSpec
    from humanoid_rl.sim.simulator import HumanoidSim, SimConfig

    finish_now = False

    def on_finish(signum: int, frame: object) -> None:
        nonlocal finish_now
        finish_now = True  # a run stopped by Ctrl-C: write what is rendered, skip the rest

    signal.signal(signal.SIGUSR1, on_finish)
    started = time.process_time()
    sim = HumanoidSim(RobotSpec.load(robot_config or None), SimConfig())
    renderer = FrameRenderer(sim, size)
    frames: list[np.ndarray] = []
    writer = None
    if path.endswith(".mp4"):
        import imageio.v2 as imageio

        writer = imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=8)
    out = sys.stdout.buffer
    count = 0
    try:
        while not finish_now:
            try:
                job = pickle.load(sys.stdin.buffer)
            except EOFError:  # the run is gone: finish the file with what there is
                break
            if job is None or finish_now:
                break
            time_s, snapshot, info = job
            sim.show_pose(snapshot)
            frame = renderer.render(time_s, info)
            if writer is not None:
                writer.append_data(frame)
            else:
                frames.append(frame)
            count += 1
            out.write(ACK)
            out.flush()
    finally:
        if writer is not None:
            writer.close()
        elif frames:
            from PIL import Image

            images = [Image.fromarray(f) for f in frames]
            images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        sim.close()
        out.write(DONE + json.dumps({"rendered": count, "cpu_s": time.process_time() - started}).encode() + b"\n")
        out.flush()


class RunVideo:
    """Frames of one run, rendered in another process and streamed to ``path`` (``.mp4``, or ``.gif``)."""

    def __init__(
        self,
        sim: HumanoidSim,
        path: str | Path,
        fps: float = 25.0,
        size: tuple[int, int] = (320, 240),
        wait_for_renderer: bool = True,
    ) -> None:
        self.sim = sim
        self.fps = float(fps)
        self.path = Path(path)
        if not mp4_available():  # GIF: half the rate and size, since its frames stay in memory until the end
            self.fps /= 2.0
            size = (size[0] // 2, size[1] // 2)
            self.path = self.path.with_suffix(".gif")
        self.wait_for_renderer = wait_for_renderer
        self.frames = 0  # handed to the renderer
        self.dropped = 0  # not rendered: the renderer was behind (real time), or the run was stopped
        self.render_cpu_s = 0.0  # CPU time of the renderer process, known after close()
        self.snapshot_s = 0.0  # what the run itself spent taking snapshots
        self.waited_s = 0.0  # ... and waiting for a renderer that was behind (lock-step only)
        self._acked = 0
        self._tail = b""
        # Its own session: a terminal's Ctrl-C (SIGINT to the foreground process group) and launch's signals
        # reach the run, which decides when the video ends; a renderer killed mid-import would lose it.
        self._process = subprocess.Popen(
            [sys.executable, "-m", "humanoid_rl.sim.video", str(sim.spec.config_path), str(self.path),
             repr(self.fps), str(size[0]), str(size[1])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        os.set_blocking(self._process.stdout.fileno(), False)  # type: ignore[union-attr]
        self._due = 0  # index of the next frame: frame k is due at k / fps of sim time

    def maybe_capture(self, time_s: float, info: FrameInfo) -> bool:
        """Hand a frame to the renderer if one is due at sim time ``time_s``; returns whether it did."""
        if time_s < self._due / self.fps - 1e-9:
            return False
        start = time.perf_counter()
        self._due = max(self._due + 1, math.floor(time_s * self.fps + 1e-9) + 1)
        job = (time_s, self.sim.pose_snapshot(), info)
        handed = time.perf_counter()
        self.snapshot_s += handed - start
        try:
            if not self._room(wait=self.wait_for_renderer) or not self._send(job):
                self.dropped += 1
                return False
        finally:
            self.waited_s += time.perf_counter() - handed
        self.frames += 1
        return True

    def _read_acks(self, timeout_s: float) -> None:
        """Count the frames rendered so far (waiting up to ``timeout_s`` for news)."""
        pipe = self._process.stdout
        assert pipe is not None
        if timeout_s > 0.0:
            select.select([pipe], [], [], timeout_s)
        try:
            data = os.read(pipe.fileno(), 65536)
        except BlockingIOError:
            return
        if self._tail:  # the summary has begun: no frames follow it
            self._tail += data
            return
        head, done, tail = data.partition(DONE)
        self._acked += head.count(ACK)
        self._tail = done + tail

    def _room(self, wait: bool, timeout_s: float = 30.0) -> bool:
        """Fewer than QUEUE_FRAMES frames wait for the renderer (``wait``: until there is room, for at most
        ``timeout_s``); False when the renderer is behind or has died (nobody would take the frame)."""
        deadline = time.monotonic() + (timeout_s if wait else 0.0)
        self._read_acks(0.0)
        while self.frames - self._acked >= QUEUE_FRAMES:
            if self._process.poll() is not None or time.monotonic() >= deadline:
                return False
            self._read_acks(0.2)
        return self._process.poll() is None

    def _send(self, job: Any) -> bool:
        try:
            pickle.dump(job, self._process.stdin)  # type: ignore[arg-type]
            self._process.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):  # the renderer died
            return False
        return True

    def close(self, timeout_s: float = 120.0, drop_pending: bool = False) -> Path | None:
        """Finish the file (waits for the renderer); None if no frame was taken or the renderer failed.
        ``drop_pending`` (a run stopped by Ctrl-C): frames not rendered yet are dropped, so the file is written
        at once."""
        if drop_pending and self._process.poll() is None:
            self._process.send_signal(signal.SIGUSR1)
        self._send(None)
        try:
            self._process.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._tail and time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._read_acks(0.0)
                break
            self._read_acks(0.2)
        rendered = 0
        if b"\n" in self._tail:
            summary = json.loads(self._tail[len(DONE) :].split(b"\n", 1)[0])
            rendered, self.render_cpu_s = int(summary["rendered"]), float(summary["cpu_s"])
            self.dropped += self.frames - rendered
            self.frames = rendered
        try:
            self._process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        return self.path if rendered and self.path.is_file() else None


if __name__ == "__main__":
    _render_worker(sys.argv[1], sys.argv[2], float(sys.argv[3]), (int(sys.argv[4]), int(sys.argv[5])))
