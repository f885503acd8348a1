"""What `humanoid-rl sim` draws and prints: shield-mode shading and push markers on the base-height plot,
p50/p99 on the latency histogram, a status line without 'nan'."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from humanoid_rl.apps.sim import (
    ROS_LOG_FORMAT_ON_TERMINAL,
    height_text,
    keep_status_line_clear,
    mode_spans,
    write_plots,
)


def test_mode_spans_cover_every_stretch_outside_active_up_to_the_end() -> None:
    log = [(0.0, "HOLD"), (1.0, "ACTIVE"), (4.2, "DAMPING"), (4.2, "ESTOP"), (5.0, "HOLD"), (6.0, "ACTIVE")]
    assert mode_spans(log, 10.0) == [(0.0, 1.0, "HOLD"), (4.2, 5.0, "ESTOP"), (5.0, 6.0, "HOLD")]
    assert mode_spans([(0.0, "ACTIVE"), (8.0, "HOLD")], 10.0) == [(8.0, 10.0, "HOLD")]
    assert mode_spans([], 10.0) == []


def test_the_status_line_shows_no_nan_height() -> None:
    assert height_text(math.nan) == "  —   "
    assert height_text(0.79931) == "0.799m"


def test_plots_with_pushes_and_modes_are_written(tmp_path: Path) -> None:
    t = np.linspace(0.0, 10.0, 501)
    n = 3
    traces = {
        "time_s": t,
        "base_height_m": 0.8 - 0.01 * np.sin(t),
        "joint_names": ["hip_pitch_joint", "knee_joint", "ankle_pitch_joint"],
        "joint_targets": np.zeros((t.size, n)),
        "joint_positions": np.zeros((t.size, n)),
        "latency_us": np.random.default_rng(0).gamma(4.0, 1000.0, 2000),
        "shield_modes": [(0.0, "HOLD"), (1.0, "ACTIVE"), (7.0, "DAMPING")],
        "pushes": [(2.0, 0.2), (6.0, 0.2)],
    }
    write_plots(traces, tmp_path)
    for name in ("base_height.png", "joint_targets.png", "latency_hist.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5_000, name


def test_on_a_terminal_node_logs_clear_the_status_line_unless_the_user_chose_a_format() -> None:
    environ: dict[str, str] = {}
    keep_status_line_clear(environ)
    assert environ["RCUTILS_CONSOLE_OUTPUT_FORMAT"].startswith("\r\x1b[K[{severity}]")
    assert environ["RCUTILS_CONSOLE_OUTPUT_FORMAT"] == ROS_LOG_FORMAT_ON_TERMINAL
    chosen = {"RCUTILS_CONSOLE_OUTPUT_FORMAT": "{message}"}
    keep_status_line_clear(chosen)
    assert chosen["RCUTILS_CONSOLE_OUTPUT_FORMAT"] == "{message}"
