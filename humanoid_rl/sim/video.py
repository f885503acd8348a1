"""A video of a simulated run: PyBullet's own renderer, headless, a camera that follows the base.

:class:`RunVideo` takes a frame whenever ``fps`` frames are due in SIM time (so a lock-step run faster than real
time still gives a real-time video), draws what happened on it (pushes as arrows while they act, the commanded
velocity and the shield mode as text) and streams the frames to ``run.mp4`` through ``imageio-ffmpeg`` (its wheel
carries ffmpeg). Without imageio it writes an animated GIF with Pillow instead, at a lower rate and size so that
the frames it has to keep in memory stay small.

The renderer is TinyRenderer (CPU, no display): about 10–30 ms a frame at 320 × 240 on a 2-core machine, which
is why the size is small; :attr:`RunVideo.render_s` says what it cost.
"""

from __future__ import annotations

import math
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


@dataclass
class FrameInfo:
    """What is written on a frame."""

    mode: str = ""
    command: tuple[float, float, float] = (0.0, 0.0, 0.0)
    push_world_n: np.ndarray | None = None  # the force acting on the base now, if any


def _writer_for(path: Path, fps: float) -> tuple[Any, Path]:
    """An imageio MP4 writer, or None (GIF fallback) when imageio or its ffmpeg is not installed."""
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  - the ffmpeg binary; imageio alone cannot write MP4
    except ImportError:
        return None, path.with_suffix(".gif")
    writer = imageio.get_writer(str(path), fps=fps, codec="libx264", quality=7, macro_block_size=8)
    return writer, path


class RunVideo:
    """Frames of one run, streamed to ``path`` (``.mp4``; ``.gif`` when imageio is missing)."""

    def __init__(self, sim: HumanoidSim, path: str | Path, fps: float = 25.0, size: tuple[int, int] = (320, 240)):
        self.sim = sim
        self.fps = float(fps)
        self.width, self.height = size
        self._writer, self.path = _writer_for(Path(path), self.fps)
        if self._writer is None:  # GIF: every other frame, half the size, kept until close()
            self.fps /= 2.0
            self.width, self.height = self.width // 2 * 2, self.height // 2 * 2
        self._gif_frames: list[np.ndarray] = []
        self._time_s = 0.0
        self.frames = 0
        self.render_s = 0.0  # wall time spent rendering and encoding
        self._projection = pb.computeProjectionMatrixFOV(FIELD_OF_VIEW_DEG, self.width / self.height, 0.05, 30.0)

    def maybe_capture(self, time_s: float, info: FrameInfo) -> bool:
        """Take a frame if one is due at sim time ``time_s``; returns whether it did."""
        if time_s < self.frames / self.fps - 1e-9:  # frame k is due at k / fps (a slow run skips none)
            return False
        start = time.perf_counter()
        self._time_s = time_s
        frame = self._render(info)
        if self._writer is not None:
            self._writer.append_data(frame)
        else:
            self._gif_frames.append(frame)
        self.frames += 1
        self.render_s += time.perf_counter() - start
        return True

    def close(self) -> Path | None:
        """Finish the file; None if no frame was taken."""
        start = time.perf_counter()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        elif self._gif_frames:
            from PIL import Image

            images = [Image.fromarray(f) for f in self._gif_frames]
            images[0].save(
                self.path, save_all=True, append_images=images[1:], duration=int(1000 / self.fps), loop=0
            )
            self._gif_frames = []
        self.render_s += time.perf_counter() - start
        return self.path if self.frames else None

    # ------------------------------------------------------------------ drawing
    def _render(self, info: FrameInfo) -> np.ndarray:
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
        return self._annotate(rgb, view, base, info)

    def _pixel(self, view: Any, point: np.ndarray) -> tuple[float, float] | None:
        """World point → pixel (column, row), None behind the camera. OpenGL column-major matrices."""
        v = np.asarray(view, dtype=float).reshape(4, 4).T
        p = np.asarray(self._projection, dtype=float).reshape(4, 4).T
        clip = p @ v @ np.append(point, 1.0)
        if clip[3] <= 1e-6:
            return None
        x, y = clip[0] / clip[3], clip[1] / clip[3]
        return (x + 1.0) * 0.5 * self.width, (1.0 - y) * 0.5 * self.height

    def _annotate(self, rgb: np.ndarray, view: Any, base: np.ndarray, info: FrameInfo) -> np.ndarray:
        from PIL import Image, ImageDraw

        image = Image.fromarray(np.ascontiguousarray(rgb))
        draw = ImageDraw.Draw(image)
        if info.push_world_n is not None and np.linalg.norm(info.push_world_n) > 0.0:
            force = np.asarray(info.push_world_n, dtype=float)
            tail = base - ARROW_M_PER_N * force  # the arrow ends at the base: it pushes
            start, end = self._pixel(view, tail), self._pixel(view, base)
            if start is not None and end is not None:
                draw.line([start, end], fill=(220, 30, 30), width=3)
                angle = math.atan2(end[1] - start[1], end[0] - start[0])
                for side in (-0.5, 0.5):
                    tip = (end[0] - 10 * math.cos(angle + side), end[1] - 10 * math.sin(angle + side))
                    draw.line([end, tip], fill=(220, 30, 30), width=3)
                draw.text((start[0] + 4, start[1] - 12), f"{np.linalg.norm(force):.0f} N", fill=(220, 30, 30))
        vx, vy, wz = info.command
        lines = [f"t {self._time_s:5.2f} s   shield {info.mode or '-'}"]
        if any(info.command):
            lines.append(f"cmd vx {vx:+.2f} vy {vy:+.2f} m/s  wz {wz:+.2f} rad/s")
        draw.rectangle([0, 0, self.width, 12 * len(lines) + 4], fill=(255, 255, 255))
        for i, line in enumerate(lines):
            draw.text((4, 2 + 12 * i), line, fill=(0, 0, 0))
        return np.asarray(image)
