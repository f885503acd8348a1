"""The run video: PyBullet's renderer headless, frames due in sim time, a push drawn while it acts, MP4 or GIF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.sim import video as video_module
from humanoid_rl.sim.simulator import HumanoidSim, SimConfig
from humanoid_rl.sim.video import FrameInfo, FrameRenderer, RunVideo


@pytest.fixture()
def sim() -> HumanoidSim:
    simulation = HumanoidSim(RobotSpec.load(), SimConfig())
    yield simulation
    simulation.close()


def run(sim: HumanoidSim, video: RunVideo, seconds: float, push: np.ndarray | None = None) -> list[bool]:
    taken = []
    steps_per_tick = 20  # a 50 Hz policy's period at 1 kHz physics
    for _ in range(round(seconds * sim.physics_rate_hz / steps_per_tick)):
        sim.step(steps_per_tick)
        taken.append(video.maybe_capture(sim.time_s, FrameInfo(mode="ACTIVE", push_world_n=push)))
    return taken


def test_frames_come_at_the_video_rate_in_sim_time_and_the_mp4_plays_back_that_long(sim, tmp_path: Path) -> None:
    import imageio.v2 as imageio

    video = RunVideo(sim, tmp_path / "run.mp4", fps=25.0)
    taken = run(sim, video, seconds=2.0)
    path = video.close()
    assert path == tmp_path / "run.mp4" and path.stat().st_size > 5_000
    assert video.frames == 51 and sum(taken) == 51  # at 0, 0.04, …, 2.0 s: 25 fps in sim time, not per tick
    reader = imageio.get_reader(str(path))
    frames = [frame for frame in reader]
    assert len(frames) == 51 and frames[0].shape == (240, 320, 3)
    assert video.dropped == 0
    # The run itself only hands over pose snapshots; the renderer process does the work.
    print(f"run side {video.snapshot_s / video.frames * 1e6:.0f} µs a frame, renderer {video.render_cpu_s:.2f} s CPU")
    assert video.snapshot_s / video.frames < 0.002


def test_the_robot_is_in_the_picture_and_a_push_is_drawn_as_a_red_arrow(sim, tmp_path: Path) -> None:
    renderer = FrameRenderer(sim)
    plain = renderer.render(0.0, FrameInfo(mode="HOLD"))
    pushed = renderer.render(0.0, FrameInfo(mode="HOLD", push_world_n=np.array([60.0, 0.0, 0.0])))
    # The robot stands in the middle of the picture: its column differs from the empty floor at the edges.
    middle = plain[60:200, 140:180].astype(float)
    edge = plain[60:200, 0:40].astype(float)
    assert abs(middle.mean() - edge.mean()) > 5.0
    red = (pushed[:, :, 0] > 180) & (pushed[:, :, 1] < 80) & (pushed[:, :, 2] < 80)
    red_before = (plain[:, :, 0] > 180) & (plain[:, :, 1] < 80) & (plain[:, :, 2] < 80)
    assert red.sum() > red_before.sum() + 30  # an arrow of red pixels appeared


def test_without_imageio_the_video_is_an_animated_gif(sim, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(video_module, "mp4_available", lambda: False)
    video = RunVideo(sim, tmp_path / "run.mp4", fps=20.0)
    run(sim, video, seconds=1.0)
    path = video.close()
    assert path == tmp_path / "run.gif"
    from PIL import Image

    with Image.open(path) as gif:
        assert gif.n_frames == video.frames == 11  # half the rate: 10 fps, at 0.02 s, 0.1, 0.2, …, 1.0 s
        assert gif.size == (160, 120)
