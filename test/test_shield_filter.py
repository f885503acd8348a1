"""The safety filter: reject stage, interval stages, priorities, idempotence and bit-identical pass-through."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from humanoid_rl.core.shield import (
    BalanceState,
    FilterState,
    JointCommand,
    JointLimits,
    RejectReason,
    SafetyFilter,
    ShieldParams,
    Stage,
    support_polygon_distance,
    tilt_from_imu,
)

N = 21
NOW = 1000.0
RNG = np.random.default_rng(7)


def synthetic_limits() -> JointLimits:
    """21 joints with varied ranges and gains, one joint with kp = 0 (no effort constraint)."""
    lower = -np.linspace(0.3, 2.9, N)
    upper = np.linspace(2.3, 0.2, N)
    lower[3], upper[3] = 0.0, 2.3  # a knee: one-sided range
    default = lower + 0.4 * (upper - lower)
    kp = np.linspace(40.0, 200.0, N)
    kp[7] = 0.0
    return JointLimits(
        joint_names=tuple(f"joint_{i:02d}" for i in range(N)),
        lower=lower,
        upper=upper,
        velocity=np.linspace(10.0, 20.0, N),
        effort=np.linspace(20.0, 200.0, N),
        kp=kp,
        kd=np.linspace(1.0, 5.0, N),
        default_pose=default,
    )


LIMITS = synthetic_limits()
NAMES = LIMITS.joint_names
PARAMS = ShieldParams()
FILTER = SafetyFilter(LIMITS, PARAMS)


def state(
    q: np.ndarray | None = None,
    qd: np.ndarray | None = None,
    balance: BalanceState | None = None,
    stamp: float = NOW,
) -> FilterState:
    return FilterState(
        stamp, LIMITS.default_pose.copy() if q is None else q, np.zeros(N) if qd is None else qd, balance
    )


def command(positions: np.ndarray, stamp: float = NOW, names: tuple[str, ...] = NAMES) -> JointCommand:
    return JointCommand(stamp, names, positions)


# ------------------------------------------------------------------ reference semantics (the documented spec)
def project(
    stage_lo: np.ndarray, stage_hi: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Documented priority rule: intersect; where disjoint, the point of [lo, hi] nearest the stage interval."""
    new_lo = np.where(stage_lo > hi, hi, np.where(stage_hi < lo, lo, np.maximum(stage_lo, lo)))
    new_hi = np.where(stage_lo > hi, hi, np.where(stage_hi < lo, lo, np.minimum(stage_hi, hi)))
    return new_lo, new_hi


def overlaps(a_lo: np.ndarray, a_hi: np.ndarray, b_lo: np.ndarray, b_hi: np.ndarray) -> np.ndarray:
    return (a_lo <= b_hi) & (b_lo <= a_hi)


def nearest_end(lo: np.ndarray, hi: np.ndarray, stage_lo: np.ndarray) -> np.ndarray:
    return np.where(stage_lo > hi, hi, lo)


def predicted_effort(target: np.ndarray, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
    return LIMITS.kp * (target - q) - LIMITS.kd * qd


# ------------------------------------------------------------------ strategies
SPECIALS = np.array([np.nan, np.inf, -np.inf, 1e300, -1e300, 1.7976931348623157e308, 0.0, -0.0, 5e-324])
POSITION_PROFILES = ("inside", "inside", "at_limits", "beyond", "huge", "specials", "near_soft")


def position_vector(profile: str, rng: np.random.Generator, centre: np.ndarray | None = None) -> np.ndarray:
    lo, hi, m = LIMITS.lower, LIMITS.upper, PARAMS.soft_margin
    if profile == "inside":
        return rng.uniform(lo, hi)
    if profile == "central":
        return rng.uniform(lo + 0.2 * (hi - lo), hi - 0.2 * (hi - lo))
    if profile == "near":  # a small step from centre: often inside every bound
        return centre + rng.normal(0.0, rng.choice([0.0001, 0.001, 0.01, 0.05]), N)  # type: ignore[operator]
    if profile == "at_limits":
        return np.choose(rng.integers(0, 4, N), [lo, hi, lo + m, hi - m])
    if profile == "beyond":
        return np.where(rng.random(N) < 0.5, lo - rng.exponential(1.0, N), hi + rng.exponential(1.0, N))
    if profile == "huge":
        return rng.choice([-1.0, 1.0], N) * 10.0 ** rng.uniform(3, 308, N)
    if profile == "near_soft":
        return np.where(
            rng.random(N) < 0.5, lo + m * rng.uniform(-0.5, 1.5, N), hi - m * rng.uniform(-0.5, 1.5, N)
        )
    # specials: a mixture of ordinary values and special floats
    values = rng.uniform(lo, hi)
    special = rng.random(N) < 0.3
    return np.where(special, rng.choice(SPECIALS, N), values)


def weighted(*pairs: tuple[object, int]) -> st.SearchStrategy:
    return st.sampled_from([value for value, weight in pairs for _ in range(weight)])


PREV_PROFILES = weighted(
    ("central", 4), ("inside", 2), ("at_limits", 1), ("beyond", 1), ("near_soft", 1), ("specials", 1)
)
STATE_PROFILES = weighted(
    ("tracking", 5),
    ("inside", 1),
    ("at_limits", 1),
    ("beyond", 1),
    ("near_soft", 1),
    ("specials", 1),
    ("huge", 1),
)
VELOCITY_PROFILES = weighted(("zero", 1), ("slow", 3), ("fast", 1), ("specials", 1))
TARGET_PROFILES = weighted(
    ("near", 5),
    ("inside", 1),
    ("at_limits", 1),
    ("beyond", 1),
    ("huge", 1),
    ("specials", 1),
    ("near_soft", 1),
)
NAME_CASES = weighted(
    ("policy", 8), ("shuffled", 2), ("duplicate", 1), ("missing", 1), ("unknown", 1), ("extra", 1)
)
STAMPS = weighted(
    (NOW, 6),
    (NOW - 0.05, 2),
    (NOW - PARAMS.command_timeout, 1),
    (NOW + 0.5 * PARAMS.future_tolerance, 1),
    (0.0, 1),
    (-1.0, 1),
    (NOW + 1.0, 1),
    (NOW - 1.0, 1),
    (math.nan, 1),
    (math.inf, 1),
    (1e300, 1),
    (-1e300, 1),
)
BALANCE_CASES = weighted(("none", 2), ("tilt", 1), ("full", 2), ("garbage", 1))
STATE_STAMPS = weighted((NOW, 9), (math.nan, 1))


@st.composite
def triples(draw: st.DrawFn) -> tuple[JointCommand, FilterState, np.ndarray]:
    """(command, state, previous output): mostly well-formed, with every kind of garbage mixed in."""
    rng = np.random.default_rng(draw(st.integers(0, 2**63 - 1)))
    prev = position_vector(draw(PREV_PROFILES), rng)
    centre = np.where(np.isfinite(prev), np.clip(prev, LIMITS.lower, LIMITS.upper), LIMITS.default_pose)
    q_profile = draw(STATE_PROFILES)
    q = centre + rng.normal(0.0, 0.02, N) if q_profile == "tracking" else position_vector(q_profile, rng)
    qd = {
        "zero": np.zeros(N),
        "slow": rng.normal(0.0, 0.5, N),
        "fast": rng.normal(0.0, 50.0, N),
        "specials": np.where(rng.random(N) < 0.2, rng.choice(SPECIALS, N), rng.normal(0.0, 2.0, N)),
    }[draw(VELOCITY_PROFILES)]
    target_profile = draw(TARGET_PROFILES)
    target = position_vector(target_profile, rng, centre)
    names: tuple[str, ...] = NAMES
    name_case = draw(NAME_CASES)
    if name_case == "shuffled":
        order = rng.permutation(N)
        names, target = tuple(NAMES[i] for i in order), target[order]
    elif name_case == "duplicate":
        names = NAMES[:-1] + (NAMES[0],)
    elif name_case == "missing":
        names, target = NAMES[:-1], target[:-1]
    elif name_case == "unknown":
        names = NAMES[:-1] + ("not_a_joint",)
    elif name_case == "extra":
        names, target = NAMES + ("not_a_joint",), np.append(target, 0.0)
    stamp = draw(STAMPS)
    balance = None
    balance_case = draw(BALANCE_CASES)
    if balance_case != "none":
        tilt = float(rng.uniform(0.0, 1.0))
        tilt_rate = float(rng.normal(0.0, 1.0))
        if balance_case == "tilt":
            balance = BalanceState(tilt, tilt_rate)
        else:
            feet = np.array([[0.0, 0.1, 0.05], [0.0, -0.1, 0.05]]) + rng.normal(0.0, 0.05, (2, 3))
            com_xy = rng.normal(0.0, 0.1, 2)
            com_vel = rng.normal(0.0, 0.5, 2)
            if balance_case == "garbage":
                com_vel[rng.integers(0, 2)] = rng.choice(SPECIALS)
            balance = BalanceState(
                tilt,
                tilt_rate,
                com_xy,
                com_vel,
                0.7,
                feet,
                rng.random(2) < 0.7,
                (0.22, 0.1),
                float(rng.uniform(-np.pi, np.pi)),
            )
    state_stamp = draw(STATE_STAMPS)
    return command(target, stamp, names), state(q, qd, balance, state_stamp), prev


def in_policy_order(cmd: JointCommand) -> np.ndarray:
    index = {n: i for i, n in enumerate(cmd.names)}
    return np.asarray(cmd.positions, dtype=np.float64)[[index[n] for n in NAMES]]


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(triples())
def test_filter_output_is_always_safe_idempotent_and_passes_safe_commands_bit_identical(
    triple: tuple[JointCommand, FilterState, np.ndarray],
) -> None:
    cmd, st_, prev = triple
    result = FILTER.filter(cmd, st_, prev)
    out = result.positions

    # Always: finite, float64, within the hard limits.
    assert out.dtype == np.float64 and out.shape == (N,)
    assert np.isfinite(out).all()
    assert (out >= LIMITS.lower).all() and (out <= LIMITS.upper).all()

    # The previous output as the filter uses it: unchanged when it was finite and within limits.
    safe_prev = FILTER.safe_previous(prev, st_.positions)
    usable = np.isfinite(prev).all() and (prev >= LIMITS.lower).all() and (prev <= LIMITS.upper).all()
    if usable:
        assert np.array_equal(safe_prev, prev)

    if not result.accepted:
        # A rejected command never changes the output, and says why.
        assert result.reject_reason is not None and result.reject_detail
        assert np.array_equal(out, safe_prev)
        assert not result.intervened.any()
        return

    target = in_policy_order(cmd)
    q, qd = st_.positions, st_.velocities
    dt = PARAMS.control_period
    step = np.minimum(LIMITS.velocity * PARAMS.max_velocity_scale, PARAMS.max_target_rate) * dt
    # Rate/velocity from the previous output always hold (always compatible with the hard limits).
    assert (out >= safe_prev - step).all() and (out <= safe_prev + step).all()

    # Documented priority for the rest: soft law, then effort, then the balance band.
    lo, hi = np.maximum(safe_prev - step, LIMITS.lower), np.minimum(safe_prev + step, LIMITS.upper)
    f = min(1.0, PARAMS.soft_limit_gain * dt)
    soft_lo = safe_prev + f * (LIMITS.lower + PARAMS.soft_margin - safe_prev)
    soft_hi = safe_prev + f * (LIMITS.upper - PARAMS.soft_margin - safe_prev)
    lo, hi = project(soft_lo, soft_hi, lo, hi)
    assert (out >= lo - 1e-12).all() and (out <= hi + 1e-12).all()

    effort_limit = LIMITS.effort * PARAMS.effort_scale
    with np.errstate(divide="ignore", invalid="ignore"):
        effort_lo = np.where(LIMITS.kp > 0, q + (LIMITS.kd * qd - effort_limit) / LIMITS.kp, -np.inf)
        effort_hi = np.where(LIMITS.kp > 0, q + (LIMITS.kd * qd + effort_limit) / LIMITS.kp, np.inf)
    compatible = overlaps(lo, hi, effort_lo, effort_hi)
    torque = predicted_effort(out, q, qd)
    tolerance = 1e-9 * (1.0 + np.abs(LIMITS.kp * out) + np.abs(LIMITS.kp * q) + np.abs(LIMITS.kd * qd))
    bounded = compatible & (LIMITS.kp > 0)  # with kp = 0 the target cannot change the effort
    assert (np.abs(torque[bounded]) <= (effort_limit + tolerance)[bounded]).all()
    assert np.allclose(out[~compatible], nearest_end(lo, hi, effort_lo)[~compatible], rtol=0, atol=1e-9)
    lo, hi = project(effort_lo, effort_hi, lo, hi)

    level = result.warning_level
    assert 0.0 <= level <= 1.0
    if level > 0.0:
        half = (LIMITS.upper - LIMITS.lower) * (1.0 - level)
        band_lo, band_hi = LIMITS.default_pose - half, LIMITS.default_pose + half
        compatible = overlaps(lo, hi, band_lo, band_hi)
        assert (out[compatible] >= band_lo[compatible] - 1e-9).all()
        assert (out[compatible] <= band_hi[compatible] + 1e-9).all()
        assert np.allclose(out[~compatible], nearest_end(lo, hi, band_lo)[~compatible], rtol=0, atol=1e-9)

    # Unchanged exactly when no stage intervened.
    assert np.array_equal(out, target) == (not result.intervened.any())

    # Idempotent: filtering the filtered command (same state, same previous output) changes nothing.
    again = FILTER.filter(command(out, cmd.stamp), st_, prev)
    assert again.accepted and np.array_equal(again.positions, out) and not again.intervened.any()

    # A command strictly inside all bounds passes bit-identical (same values, same dtype).
    lo_all, hi_all = FILTER.bounds(st_, prev, level)
    inside = np.minimum(np.maximum(lo_all + RNG.uniform(0.0, 1.0, N) * (hi_all - lo_all), lo_all), hi_all)
    passed = FILTER.filter(command(inside, cmd.stamp), st_, prev)
    assert passed.positions.dtype == inside.dtype
    assert np.array_equal(passed.positions, inside) and passed.interventions == ()


# ------------------------------------------------------------------ reject stage
GOOD = LIMITS.default_pose + 0.01


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        (command(np.where(np.arange(N) == 4, np.nan, GOOD)), RejectReason.NON_FINITE),
        (command(np.where(np.arange(N) == 4, np.inf, GOOD)), RejectReason.NON_FINITE),
        (command(np.where(np.arange(N) == 4, -np.inf, GOOD)), RejectReason.NON_FINITE),
        (command(GOOD, stamp=math.nan), RejectReason.NON_FINITE),
        (command(GOOD[:-1]), RejectReason.LENGTH_MISMATCH),
        (command(GOOD[:-1], names=NAMES[:-1]), RejectReason.MISSING_JOINT),
        (command(np.append(GOOD, 0.0), names=NAMES + ("wrist_joint",)), RejectReason.UNKNOWN_JOINT),
        (command(GOOD, names=NAMES[:-1] + ("wrist_joint",)), RejectReason.UNKNOWN_JOINT),
        (command(GOOD, names=NAMES[:-1] + (NAMES[0],)), RejectReason.DUPLICATE_JOINT),
        (command(GOOD.reshape(3, 7)), RejectReason.LENGTH_MISMATCH),
        (command(GOOD, stamp=0.0), RejectReason.BAD_STAMP),
        (command(GOOD, stamp=-5.0), RejectReason.BAD_STAMP),
        (command(GOOD, stamp=NOW + PARAMS.future_tolerance * 2), RejectReason.FUTURE_STAMP),
        (command(GOOD, stamp=NOW - PARAMS.command_timeout * 1.01), RejectReason.STALE_STAMP),
    ],
)
def test_a_malformed_or_mistimed_command_is_rejected_with_its_reason_and_the_last_output_stands(
    cmd: JointCommand, reason: RejectReason
) -> None:
    prev = LIMITS.default_pose + 0.003
    result = FILTER.filter(cmd, state(), prev)
    assert not result.accepted
    assert result.reject_reason is reason
    assert result.reject_detail
    assert np.array_equal(result.positions, prev)


def test_a_command_stamped_exactly_at_the_timeout_or_within_the_future_tolerance_is_accepted() -> None:
    # Binary-exact times, so that "exactly at the timeout" is exact in floating point too.
    flt = SafetyFilter(LIMITS, PARAMS.with_changes(command_timeout=0.125, future_tolerance=0.0078125))
    for stamp in (NOW - 0.125, NOW + 0.0078125, NOW):
        assert flt.filter(command(GOOD, stamp), state(), LIMITS.default_pose).accepted
    for stamp in (NOW - 0.125 - 2**-20, NOW + 0.0078125 + 2**-20):
        assert not flt.filter(command(GOOD, stamp), state(), LIMITS.default_pose).accepted


def test_a_command_in_another_joint_order_with_the_right_names_is_reordered_by_name() -> None:
    order = RNG.permutation(N)
    shuffled = command(GOOD[order], names=tuple(NAMES[i] for i in order))
    result = FILTER.filter(shuffled, state(), LIMITS.default_pose)
    assert result.accepted
    assert np.array_equal(result.positions, GOOD)
    assert np.array_equal(
        result.positions, FILTER.filter(command(GOOD), state(), LIMITS.default_pose).positions
    )


def test_an_invalid_measured_state_rejects_the_command_and_keeps_the_last_output() -> None:
    prev = LIMITS.default_pose + 0.002
    for q, qd in ((np.full(N, np.nan), None), (None, np.full(N, np.inf)), (np.full(N, 1e6), None)):
        result = FILTER.filter(command(GOOD), state(q, qd), prev)
        assert result.reject_reason is RejectReason.INVALID_STATE
        assert np.array_equal(result.positions, prev)


def test_a_non_finite_previous_output_is_replaced_by_the_measured_pose_and_clipped_to_the_limits() -> None:
    prev = np.full(N, np.nan)
    prev[0] = 50.0
    q = LIMITS.default_pose + 0.05
    safe = FILTER.safe_previous(prev, q)
    assert safe[0] == LIMITS.upper[0]
    assert np.array_equal(safe[1:], q[1:])


# ------------------------------------------------------------------ the stages, one at a time
def test_the_soft_limit_law_slows_the_approach_and_never_crosses_the_soft_limit() -> None:
    joint = 5
    soft_upper = LIMITS.upper[joint] - PARAMS.soft_margin
    prev = LIMITS.default_pose.copy()
    prev[joint] = soft_upper - 0.01
    distances = []
    for _ in range(40):
        target = prev.copy()
        target[joint] = LIMITS.upper[joint]  # push at the hard limit
        result = FILTER.filter(command(target), state(prev), prev)
        assert result.positions[joint] <= soft_upper
        distances.append(soft_upper - result.positions[joint])
        assert Stage.POSITION in result.interventions
        prev = result.positions
    # Each period covers the fraction gain·dt of the remaining distance: geometric decay, no jump.
    fraction = PARAMS.soft_limit_gain * PARAMS.control_period
    assert distances[1] / distances[0] == pytest.approx(1.0 - fraction, rel=1e-6)
    assert 0.0 < distances[-1] < 0.01 * (1.0 - fraction) ** 39 * 1.001


def test_beyond_the_soft_limit_the_target_is_pulled_back_toward_it() -> None:
    joint = 5
    prev = LIMITS.default_pose.copy()
    prev[joint] = LIMITS.upper[joint]
    result = FILTER.filter(command(prev), state(prev), prev)
    soft_upper = LIMITS.upper[joint] - PARAMS.soft_margin
    fraction = PARAMS.soft_limit_gain * PARAMS.control_period
    assert result.positions[joint] == pytest.approx(LIMITS.upper[joint] - fraction * PARAMS.soft_margin)
    assert result.positions[joint] > soft_upper


def test_velocity_and_rate_bound_the_step_from_the_previous_output() -> None:
    prev = LIMITS.default_pose.copy()
    params = PARAMS.with_changes(max_target_rate=5.0, max_velocity_scale=0.5)
    flt = SafetyFilter(LIMITS, params)
    target = prev + 1.0
    result = flt.filter(command(target), state(prev), prev)
    step = np.minimum(LIMITS.velocity * 0.5, 5.0) * params.control_period
    np.testing.assert_allclose(result.positions - prev, np.minimum(step, LIMITS.upper - prev), rtol=1e-12)
    assert {Stage.RATE, Stage.VELOCITY} <= set(result.interventions)


def test_the_effort_bound_limits_the_predicted_pd_effort() -> None:
    q = LIMITS.default_pose.copy()
    qd = np.full(N, 3.0)
    params = PARAMS.with_changes(effort_scale=0.1, max_target_rate=100.0)
    flt = SafetyFilter(LIMITS, params)
    target = q + 0.2
    result = flt.filter(command(target), state(q, qd), q)
    effort = predicted_effort(result.positions, q, qd)
    limited = LIMITS.kp > 0
    assert (np.abs(effort[limited]) <= LIMITS.effort[limited] * 0.1 * (1 + 1e-12)).all()
    assert np.isclose(np.abs(effort[limited]), LIMITS.effort[limited] * 0.1).any()
    assert result.positions[7] == target[7]  # kp = 0: no effort constraint on that joint
    assert Stage.EFFORT in result.interventions


def test_rate_wins_over_effort_when_they_cannot_both_hold() -> None:
    # The joint is measured far from the previous output: the effort interval (around q) is out of reach
    # within one rate step, so the target moves one full rate step toward it and no further.
    prev = LIMITS.default_pose.copy()
    q = prev.copy()
    q[0] = prev[0] + 1.5
    result = FILTER.filter(command(prev + 0.0), state(q), prev)
    step = min(LIMITS.velocity[0] * PARAMS.max_velocity_scale, PARAMS.max_target_rate) * PARAMS.control_period
    effort_lo = q[0] - LIMITS.effort[0] * PARAMS.effort_scale / LIMITS.kp[0]
    assert effort_lo > prev[0] + step  # incompatible by construction
    assert result.positions[0] == prev[0] + step
    assert Stage.EFFORT in result.interventions


def test_the_balance_band_pulls_targets_toward_the_default_pose_as_the_warning_grows() -> None:
    prev = LIMITS.default_pose + 0.02
    params = PARAMS.with_changes(max_target_rate=100.0, effort_scale=2.0)
    flt = SafetyFilter(LIMITS, params)
    far = LIMITS.default_pose + 0.5 * (LIMITS.upper - LIMITS.default_pose)
    spreads = []
    for tilt in (0.0, 0.4, 0.5, 0.6, 0.69):
        result = flt.filter(command(far), state(prev, balance=BalanceState(tilt)), prev)
        spreads.append(np.abs(result.positions - LIMITS.default_pose).max())
        if tilt == 0.0:
            assert result.warning_level == 0.0 and Stage.BALANCE not in result.interventions
    assert spreads == sorted(spreads, reverse=True) and spreads[-1] < spreads[0]
    tripped = flt.filter(command(far), state(prev, balance=BalanceState(0.7)), prev)
    assert tripped.request_damping and tripped.warning_level == 1.0


def test_a_growing_tilt_is_predicted_over_the_horizon_and_a_shrinking_one_is_not() -> None:
    warn, horizon = PARAMS.tilt_warn, PARAMS.tilt_horizon
    growing = FILTER.assess_balance(BalanceState(warn, tilt_rate=1.0))
    assert growing.predicted_tilt == pytest.approx(warn + horizon)
    assert growing.warning_level == pytest.approx(horizon / (PARAMS.tilt_trip - warn))
    assert FILTER.assess_balance(BalanceState(warn, tilt_rate=-1.0)).warning_level == 0.0


def feet_balance(
    com_xy: tuple[float, float], com_vel: tuple[float, float], contacts=(True, True), yaw: float = 0.0
) -> BalanceState:
    c, s = math.cos(yaw), math.sin(yaw)
    feet = np.array([[-s * 0.1, c * 0.1, 0.05], [s * 0.1, -c * 0.1, 0.05]])
    return BalanceState(
        0.0, 0.0, np.array(com_xy), np.array(com_vel), 0.7, feet, np.array(contacts), (0.22, 0.10), yaw
    )


def test_the_capture_point_inside_the_feet_is_fine_and_far_outside_trips() -> None:
    still = FILTER.assess_balance(feet_balance((0.0, 0.0), (0.0, 0.0)))
    assert still.warning_level == 0.0 and still.capture_point_distance == pytest.approx(0.11)
    # ξ = c + ċ·√(z/g): 1 m/s forward at z = 0.7 m puts it 0.267 m ahead, far beyond the 0.11 m toe.
    falling = FILTER.assess_balance(feet_balance((0.0, 0.0), (1.0, 0.0)))
    assert falling.capture_point[0] == pytest.approx(math.sqrt(0.7 / 9.81))
    assert falling.trip and falling.warning_level == 1.0
    # Single support on the left foot. Judged against the stance sole alone, the capture point at the robot's
    # centre is outside that foot; against both soles (the default: a walking gait's next step lands ahead of
    # it) it is 0.11 m inside, as when both feet are down.
    stance_only = SafetyFilter(LIMITS, PARAMS.with_changes(support_region="stance_soles"))
    single = stance_only.assess_balance(feet_balance((0.0, 0.0), (0.0, 0.0), contacts=(True, False)))
    assert single.capture_point_distance == pytest.approx(-0.05)
    assert 0.0 < single.warning_level < 1.0
    walking = FILTER.assess_balance(feet_balance((0.0, 0.0), (0.0, 0.0), contacts=(True, False)))
    assert FILTER.params.support_region == "both_soles"
    assert walking.capture_point_distance == pytest.approx(0.11) and walking.warning_level == 0.0


def test_garbage_balance_data_trips_rather_than_passing_silently() -> None:
    for balance in (
        BalanceState(math.nan),
        BalanceState(0.1, math.inf),
        feet_balance((math.nan, 0.0), (0.0, 0.0)),
        feet_balance((0.0, 0.0), (1e300, 0.0)),
    ):
        assessment = FILTER.assess_balance(balance)
        assert assessment.trip and not assessment.data_valid


def cross(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def hull(points: np.ndarray) -> np.ndarray:
    """Monotone-chain convex hull, counter-clockwise."""
    pts = sorted(map(tuple, points))

    def half(seq: list) -> list:
        out: list = []
        for p in seq:
            while len(out) >= 2 and cross(np.subtract(out[-1], out[-2]), np.subtract(p, out[-2])) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def exact_signed_distance(point: np.ndarray, polygon: np.ndarray) -> float:
    edges = []
    inside = True
    for a, b in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        ab, ap = b - a, point - a
        t = np.clip(ap @ ab / (ab @ ab), 0.0, 1.0)
        edges.append(np.linalg.norm(point - (a + t * ab)))
        inside &= cross(ab, ap) >= 0
    return min(edges) if inside else -min(edges)


def test_the_support_polygon_distance_matches_an_exact_hull_distance() -> None:
    rng = np.random.default_rng(3)
    signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]])
    for _ in range(300):
        yaw = rng.uniform(-np.pi, np.pi)
        rot = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
        feet = rng.normal(0.0, 0.15, (2, 2))
        contacts = rng.random(2) < 0.7
        size = (rng.uniform(0.1, 0.3), rng.uniform(0.05, 0.15))
        used = feet[contacts] if contacts.any() else feet
        corners = np.concatenate([f + (signs * (size[0] / 2, size[1] / 2)) @ rot.T for f in used])
        point = rng.normal(0.0, 0.3, 2)
        exact = exact_signed_distance(point, hull(corners))
        ours = support_polygon_distance(point, feet, contacts, size, yaw)
        if exact >= 0:
            assert ours == pytest.approx(exact, abs=1e-12)
        else:  # outside: a lower bound on the distance, within 2 %
            assert exact * 1.0 - 1e-12 <= ours <= exact * (1 - 0.02) + 1e-12


def test_tilt_from_imu_gives_the_angle_from_vertical_and_its_rate() -> None:
    assert tilt_from_imu([0, 0, 0, 1], [0.3, 0.0, 0.0]) == (0.0, pytest.approx(0.3))
    roll = 0.4
    quat = [math.sin(roll / 2), 0.0, 0.0, math.cos(roll / 2)]
    tilt, rate = tilt_from_imu(quat, [0.5, 0.0, 2.0])  # rolling further, yaw rate irrelevant
    assert tilt == pytest.approx(roll) and rate == pytest.approx(0.5)

    # A pitch then yaw rotation: the tilt is the pitch, whatever the yaw; compare the rate numerically.
    def quat_of(pitch: float, yaw: float) -> np.ndarray:
        qy = np.array([0.0, math.sin(pitch / 2), 0.0, math.cos(pitch / 2)])
        qz = np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])
        x1, y1, z1, w1 = qz
        x2, y2, z2, w2 = qy
        return np.array(
            [
                w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
                w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            ]
        )

    tilt, _ = tilt_from_imu(quat_of(0.3, 1.0), [0.0, 0.0, 0.0])
    assert tilt == pytest.approx(0.3)
    assert math.isnan(tilt_from_imu([0, 0, 0, 0], [0, 0, 0])[0])  # not a rotation: NaN, which trips


# ------------------------------------------------------------------ limits and parameters
def test_joint_limits_come_from_the_robot_spec_in_policy_order() -> None:
    from humanoid_rl.core.robot_spec import RobotSpec

    spec = RobotSpec.load()
    limits = JointLimits.from_robot_spec(spec)
    assert limits.joint_names == spec.joint_names
    assert np.array_equal(limits.lower, spec.lower) and np.array_equal(limits.effort, spec.effort_limits)
    assert np.array_equal(limits.default_pose, spec.default_pose)
    assert SafetyFilter(limits).check_params(ShieldParams()) == []


def test_joint_limits_refuse_inverted_ranges_and_a_default_pose_outside_them() -> None:
    with pytest.raises(ValueError, match="lower < upper"):
        JointLimits(("a", "b"), [0.0, 1.0], [1.0, 0.5], [1, 1], [1, 1], [1, 1], [0, 0], [0.5, 0.6])
    with pytest.raises(ValueError, match="default_pose"):
        JointLimits(("a", "b"), [0.0, 0.0], [1.0, 1.0], [1, 1], [1, 1], [1, 1], [0, 0], [0.5, 1.5])
    with pytest.raises(ValueError, match="shape"):
        JointLimits(("a", "b"), [0.0], [1.0, 1.0], [1, 1], [1, 1], [1, 1], [0, 0], [0.5, 0.5])


def test_a_soft_margin_that_leaves_a_joint_no_range_is_refused_for_these_limits() -> None:
    narrow = dataclasses.replace(
        LIMITS,
        lower=np.where(np.arange(N) == 2, -0.1, LIMITS.lower),
        upper=np.where(np.arange(N) == 2, 0.5, LIMITS.upper),
        default_pose=np.where(np.arange(N) == 2, 0.0, LIMITS.default_pose),
    )
    flt = SafetyFilter(narrow, PARAMS)
    reasons = flt.check_params(PARAMS.with_changes(soft_margin=0.35))
    assert any("leaves no range" in r and "joint_02" in r for r in reasons)
    reasons = flt.check_params(PARAMS.with_changes(soft_margin=0.15))
    assert reasons and all("default pose" in r and "joint_02" in r for r in reasons)
    with pytest.raises(ValueError, match="soft_margin"):
        SafetyFilter(narrow, PARAMS.with_changes(soft_margin=0.15))


def test_a_valid_parameter_change_takes_effect_on_the_next_filter_call() -> None:
    flt = SafetyFilter(LIMITS, PARAMS)
    prev = LIMITS.default_pose.copy()
    before = flt.filter(command(prev + 1.0), state(prev), prev).positions
    assert flt.set_params(PARAMS.with_changes(max_target_rate=1.0)) == []
    after = flt.filter(command(prev + 1.0), state(prev), prev).positions
    assert np.abs(after - prev).max() == pytest.approx(1.0 * PARAMS.control_period)
    assert np.abs(before - prev).max() > np.abs(after - prev).max()
    refused = flt.set_params(dataclasses.replace(flt.params, max_target_rate=500.0))
    assert refused and flt.params.max_target_rate == 1.0
