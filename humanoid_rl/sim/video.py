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

import math
import multiprocessing
import queue
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
QUEUE_FRAMES = 64  # snapshots waiting for the renderer (a couple of seconds of video)
Snapshot = tuple[tuple[float, ...], tuple[float, ...], np.ndarray]


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


def _render_worker(
    robot_config: str, path: str, fps: float, size: tuple[int, int], jobs: Any, results: Any
) -> None:
    """The renderer process: its own PyBullet world of the robot, posed from each snapshot, streamed to ``path``."""
    import signal

    # A terminal's Ctrl-C reaches the whole process group: the run decides when this process ends (it sends
    # None), so the frames already taken are still written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from humanoid_rl.core.robot_spec import RobotSpec
    from humanoid_rl.sim.simulator import HumanoidSim, SimConfig

    started = time.process_time()
    sim = HumanoidSim(RobotSpec.load(robot_config or None), SimConfig())
    renderer = FrameRenderer(sim, size)
    frames: list[np.ndarray] = []
    writer = None
    if path.endswith(".mp4"):
        import imageio.v2 as imageio

        writer = imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=8)
    count = 0
    try:
        while (job := jobs.get()) is not None:
            time_s, snapshot, info = job
            sim.show_pose(snapshot)
            frame = renderer.render(time_s, info)
            if writer is not None:
                writer.append_data(frame)
            else:
                frames.append(frame)
            count += 1
    finally:
        if writer is not None:
            writer.close()
        elif frames:
            from PIL import Image

            images = [Image.fromarray(f) for f in frames]
            images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        sim.close()
        results.put((count, time.process_time() - started))


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
        self.dropped = 0  # not handed over: the renderer was behind (real time only)
        self.render_cpu_s = 0.0  # CPU time of the renderer process, known after close()
        self.snapshot_s = 0.0  # what the run itself spent taking snapshots
        self.waited_s = 0.0  # ... and waiting for a renderer that was behind (lock-step only)
        context = multiprocessing.get_context("spawn")  # no fork of a process that runs DDS threads
        self._jobs = context.Queue(maxsize=QUEUE_FRAMES)
        self._results = context.Queue()
        config = str(sim.spec.config_path)
        self._process = context.Process(
            target=_render_worker,
            args=(config, str(self.path), self.fps, size, self._jobs, self._results),
            name="humanoid_rl_video",
            daemon=True,
        )
        self._process.start()
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
            self._jobs.put(job, block=self.wait_for_renderer, timeout=30.0 if self.wait_for_renderer else None)
        except queue.Full:
            self.dropped += 1
            return False
        finally:
            self.waited_s += time.perf_counter() - handed
        self.frames += 1
        return True

    def close(self, timeout_s: float = 120.0) -> Path | None:
        """Finish the file (waits for the renderer); None if no frame was taken or the renderer failed."""
        self._jobs.put(None)
        try:
            rendered, self.render_cpu_s = self._results.get(timeout=timeout_s)
        except queue.Empty:
            rendered = 0
        self._process.join(timeout=5.0)
        if self._process.is_alive():
            self._process.kill()  # it ignores SIGTERM (see _render_worker)
        return self.path if rendered and self.path.is_file() else None
