"""--cmd-vel as users write it, and the tracking figures a walking run reports (pure numpy, no ROS)."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from humanoid_rl.apps.velocity_commands import VelocitySchedule, parse_cmd_vel, tracking_summary


def test_one_command_holds_for_the_whole_run() -> None:
    schedule = parse_cmd_vel("0.5,0,0")
    assert schedule.at(0.0) == schedule.at(99.0) == (0.5, 0.0, 0.0)


def test_a_schedule_switches_at_its_times_and_stands_still_before_the_first() -> None:
    schedule = parse_cmd_vel("8:0,0,0.5; 2:0.5,0,0;14:0,0,0")
    assert schedule.steps[0] == (0.0, (0.0, 0.0, 0.0))
    assert schedule.at(1.99) == (0.0, 0.0, 0.0)
    assert schedule.at(2.0) == (0.5, 0.0, 0.0)
    assert schedule.at(8.5) == (0.0, 0.0, 0.5)
    assert schedule.at(20.0) == (0.0, 0.0, 0.0)
    np.testing.assert_array_equal(schedule.sample(np.array([1.0, 2.0, 9.0])), [[0, 0, 0], [0.5, 0, 0], [0, 0, 0.5]])


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0.5,0", "not VX,VY,WZ"),
        ("0.5,x,0", "'x' is not a number"),
        ("nan,0,0", "not a finite number"),
        ("-1:0.5,0,0", "must be >= 0"),
        ("0:0.5,0,0;0:0,0,0", "same time"),
        ("a:0.5,0,0", "time 'a'"),
    ],
)
def test_a_malformed_command_is_refused_in_one_line_naming_the_problem(text: str, says: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=says) as error:
        parse_cmd_vel(text)
    assert "\n" not in str(error.value)


def test_tracking_figures_of_a_robot_that_walks_a_quarter_circle_as_commanded() -> None:
    """A base moving at 0.5 m/s along its heading while turning at 0.2 rad/s: body velocity (0.5, 0), yaw rate
    0.2 — exactly the command, whatever the heading; the path is an arc of 0.5 m/s × 10 s."""
    t = np.linspace(0.0, 10.0, 1001)
    yaw = 0.2 * t
    velocity = np.stack([0.5 * np.cos(yaw), 0.5 * np.sin(yaw), np.zeros_like(t)], axis=1)
    radius = 0.5 / 0.2
    position = np.stack([radius * np.sin(yaw), radius * (1 - np.cos(yaw)), np.zeros_like(t)], axis=1)
    wrapped = np.arctan2(np.sin(yaw), np.cos(yaw))  # as a quaternion's yaw comes: in (-pi, pi]
    summary = tracking_summary(t, position, velocity, wrapped, VelocitySchedule(((0.0, (0.5, 0.0, 0.2)),)))
    assert summary["vx_error_mps"] < 1e-9 and summary["vy_error_mps"] < 1e-9
    assert summary["yaw_rate_error_radps"] < 1e-3
    assert summary["distance_m"] == pytest.approx(5.0, rel=1e-3)
    assert summary["displacement_m"] == pytest.approx(2 * radius * math.sin(1.0), rel=1e-3)


def test_a_robot_that_stands_while_told_to_walk_misses_by_the_command_after_the_settling_time() -> None:
    t = np.linspace(0.0, 6.0, 601)
    still = np.zeros((t.size, 3))
    schedule = parse_cmd_vel("0:0,0,0;2:0.4,0.1,-0.3")
    summary = tracking_summary(t, still, still, np.zeros_like(t), schedule, settle_s=1.0)
    # Settled samples: 1–2 s (command 0: no error) and 3–6 s (command (0.4, 0.1, -0.3): full error).
    share = 301 / (101 + 301)
    assert summary["vx_error_mps"] == pytest.approx(0.4 * share, rel=0.02)
    assert summary["vy_error_mps"] == pytest.approx(0.1 * share, rel=0.02)
    assert summary["yaw_rate_error_radps"] == pytest.approx(0.3 * share, rel=0.02)
    assert summary["distance_m"] == 0.0
