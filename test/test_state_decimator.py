"""The state trigger's decimation: one measurement per policy period on a fixed grid, whatever the stream."""

from __future__ import annotations

import numpy as np

from humanoid_rl.core.timing import StateDecimator

MS = 1_000_000


def used_stamps(decimator: StateDecimator, stamps: list[int]) -> list[int]:
    used = []
    for stamp in stamps:
        decimator.observe(stamp)
        if decimator.due(stamp):
            decimator.used(stamp)
            used.append(stamp)
    return used


def test_a_1khz_simulator_stream_is_answered_exactly_every_20_ms() -> None:
    used = used_stamps(StateDecimator(20 * MS), [k * MS for k in range(1, 1001)])
    assert np.all(np.diff(used) == 20 * MS)
    assert len(used) == 50


def test_a_jittery_50hz_sensor_stream_is_answered_at_every_state_without_drift() -> None:
    rng = np.random.default_rng(0)
    # 50 Hz, each stamp up to 2 ms early or late (the old rule, a period less 0.5 ms, skipped half of them)
    stamps = [int(k * 20 * MS + rng.uniform(-2, 2) * MS) for k in range(1, 501)]
    used = used_stamps(StateDecimator(20 * MS), stamps)
    assert len(used) == 500


def test_a_fast_stream_is_decimated_to_the_policy_rate_and_a_gap_restarts_the_grid() -> None:
    decimator = StateDecimator(20 * MS)
    stamps = [k * 2 * MS for k in range(1, 501)]  # 500 Hz for 1 s
    stamps += [2000 * MS + k * 2 * MS for k in range(0, 100)]  # then a 1 s gap, and 0.2 s more
    used = used_stamps(decimator, stamps)
    before, after = [s for s in used if s <= 1000 * MS], [s for s in used if s >= 2000 * MS]
    assert len(before) == 50 and np.all(np.diff(before) == 20 * MS)
    assert after[0] == 2000 * MS and np.all(np.diff(after) == 20 * MS)


def test_time_going_back_a_simulator_reset_restarts_the_grid() -> None:
    decimator = StateDecimator(20 * MS)
    used_stamps(decimator, [k * MS for k in range(1, 500)])
    assert used_stamps(decimator, [1 * MS, 2 * MS, 21 * MS]) == [1 * MS, 21 * MS]
