"""The optimised shield code agrees with its readable reference (humanoid_rl.core.shield_reference) bit for bit.

Outputs, bounds, interventions, reject reasons and details, and the balance assessment are compared exactly:
arrays by their bytes (so a -0.0 where the reference has 0.0 fails too), not merely by value. The kinematics
are compared exactly as well (same pinocchio calls), with 1e-12 as the documented tolerance should a pinocchio
upgrade ever reorder its sums.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_shield_filter import LIMITS, NAMES, NOW, PARAMS, N, command, position_vector, state, triples

from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.core.shield import (
    BalanceState,
    FilterResult,
    FilterState,
    JointCommand,
    JointLimits,
    SafetyFilter,
    ShieldParams,
)
from humanoid_rl.core.shield_filter import NO_BALANCE
from humanoid_rl.core.shield_reference import ReferenceKinematics, ReferenceSafetyFilter

# A soft margin and gain for which the soft interval need not overlap hard ∩ rate (the reconcile path of stage 3),
# and one with a slow rate so that most commands are clipped.
OTHER_PARAMS = (
    PARAMS,
    ShieldParams(soft_margin=0.2, soft_limit_gain=400.0, max_target_rate=2.0),
    ShieldParams(max_target_rate=0.5, effort_scale=0.3),
)


def zero_default_limits() -> JointLimits:
    """LIMITS with the default pose at exactly 0.0 or -0.0 where the range allows it, and the one-sided knee's
    lower limit at -0.0: a band of half-width 0 at w = 1 and clipping at that limit make zero-valued bounds,
    whose signs must come out as the reference's."""
    signed_zeros = np.where(np.arange(N) % 2 == 0, 0.0, -0.0)
    default = np.where((LIMITS.lower < -0.3) & (LIMITS.upper > 0.3), signed_zeros, LIMITS.default_pose)
    lower = LIMITS.lower.copy()
    lower[3] = -0.0
    return JointLimits(NAMES, lower, LIMITS.upper, LIMITS.velocity, LIMITS.effort, LIMITS.kp, LIMITS.kd, default)


PAIRS = [
    (SafetyFilter(limits, params), ReferenceSafetyFilter(limits, params))
    for limits in (LIMITS, zero_default_limits())
    for params in OTHER_PARAMS
]


def same_array(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same_result(fast: FilterResult, ref: FilterResult) -> None:
    assert same_array(fast.positions, ref.positions), (fast.positions, ref.positions)
    assert fast.accepted == ref.accepted
    assert fast.reject_reason == ref.reject_reason
    assert fast.reject_detail == ref.reject_detail
    assert same_array(np.asarray(fast.intervened), np.asarray(ref.intervened)), (fast.intervened, ref.intervened)
    assert fast.interventions == ref.interventions
    assert_same_assessment(fast.balance, ref.balance)


def assert_same_assessment(fast: object, ref: object) -> None:
    # NamedTuples: equal field by field, NaN equal to NaN.
    assert type(fast) is type(ref)
    for a, b in zip(fast, ref, strict=True):  # type: ignore[call-overload]
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), (fast, ref)


@settings(max_examples=3_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(triples(), st.sampled_from(range(len(PAIRS))), st.sampled_from([None, 0.0, 0.3, 0.999, 1.0]))
def test_the_optimised_filter_is_bit_identical_to_the_reference(
    case: tuple[JointCommand, FilterState, np.ndarray], pair: int, warning: float | None
) -> None:
    cmd, st_, prev = case
    fast_filter, ref_filter = PAIRS[pair]
    ref_assessment = ref_filter.assess_balance(st_.balance) if st_.balance is not None else None
    assert_same_assessment(fast_filter.assess_balance(st_.balance), ref_assessment) if st_.balance else None
    assessment = None
    if warning is not None and ref_assessment is not None:
        assessment = ref_assessment._replace(warning_level=warning)
    for _ in range(2):  # twice: buffers reused across calls must not leak one call into the next
        ref = ref_filter.filter(cmd, st_, prev, assessment)
        fast = fast_filter.filter(cmd, st_, prev, assessment)
        assert_same_result(fast, ref)
    if ref.accepted:
        # Idempotence and the same bounds as the reference.
        assert_same_result(fast_filter.filter(JointCommand(cmd.stamp, NAMES, fast.positions), st_, fast.positions),
                           ref_filter.filter(JointCommand(cmd.stamp, NAMES, ref.positions), st_, ref.positions))
        w = 0.0 if assessment is None else assessment.warning_level
        for a, b in zip(fast_filter.bounds(st_, prev, w), ref_filter.bounds(st_, prev, w), strict=True):
            assert same_array(a, b)
        target = np.clip(np.nan_to_num(np.asarray(cmd.positions, dtype=np.float64)), -10.0, 10.0)
        if target.shape == (N,):
            assert_same_result(fast_filter.constrain(target, st_, prev, assessment),
                               ref_filter.constrain(target, st_, prev, assessment))


@pytest.mark.parametrize("pair", range(len(PAIRS)))
def test_seeded_sequences_agree_step_by_step_with_large_jumps_and_rising_warnings(pair: int) -> None:
    """A closed loop (each output is the next previous output) over many steps, so differences would compound:
    commands jumping far, hugging the soft limits, beyond the limits; warning levels from 0 to 1."""
    fast_filter, ref_filter = PAIRS[pair]
    rng = np.random.default_rng(pair)
    fast_prev = ref_prev = LIMITS.default_pose.copy()
    clipped = 0
    for step in range(2_000):
        profile = ("near", "inside", "beyond", "near_soft", "at_limits", "central")[step % 6]
        target = position_vector(profile, rng, ref_prev)
        q = ref_prev + rng.normal(0.0, 0.01, N)
        qd = rng.normal(0.0, (0.1, 1.0, 30.0)[step % 3], N)
        tilt = float(rng.uniform(0.0, 0.6))
        feet = np.array([[0.0, 0.1, 0.05], [0.0, -0.1, 0.05]]) + rng.normal(0.0, 0.02, (2, 3))
        balance = BalanceState(
            tilt, float(rng.normal(0.0, 1.0)), rng.normal(0.0, 0.08, 2), rng.normal(0.0, 0.3, 2), 0.7, feet,
            rng.random(2) < 0.8, ((0.22, 0.1), (0.2, 0.12))[step % 2], float(rng.uniform(-np.pi, np.pi)),
        )
        st_ = state(q, qd, balance)
        cmd = command(target, NOW - 0.001 * (step % 3))
        ref = ref_filter.filter(cmd, st_, ref_prev)
        fast = fast_filter.filter(cmd, st_, fast_prev)
        assert_same_result(fast, ref)
        clipped += bool(ref.interventions)
        fast_prev, ref_prev = fast.positions, ref.positions
    assert clipped > 100  # the comparison covered the diagnostics, not only pass-through


@pytest.mark.parametrize("pair", range(len(PAIRS) // 2, len(PAIRS)))
def test_signed_zero_bounds_come_out_as_the_reference_s(pair: int) -> None:
    """Targets clipped onto bounds that are exactly ±0.0: the full-trip band around a ±0.0 default pose, and the
    knee's -0.0 lower limit from a previous output of ±0.0 or exactly one step above it."""
    fast_filter, ref_filter = PAIRS[pair]
    limits = ref_filter.limits
    step = ref_filter._step
    rng = np.random.default_rng(pair)
    for case in range(400):
        prev = np.where(rng.random(N) < 0.5, 0.0, -0.0) + rng.choice([0.0, 1.0, -1.0], N) * step
        prev = np.clip(prev, limits.lower, limits.upper)
        target = rng.choice([1.0, -1.0, 0.0, -0.0], N) * rng.choice([1.0, 0.5 * step[0], 10.0], N)
        q = prev.copy()
        warning = (1.0, 0.0, 0.999999)[case % 3]
        assessment = NO_BALANCE._replace(warning_level=warning)
        st_ = state(q, np.zeros(N))
        cmd = command(target)
        fast, ref = fast_filter.filter(cmd, st_, prev, assessment), ref_filter.filter(cmd, st_, prev, assessment)
        assert_same_result(fast, ref)


@pytest.fixture(scope="module")
def spec() -> RobotSpec:
    return RobotSpec.load()


def test_kinematics_agree_with_the_reference(spec: RobotSpec) -> None:
    fast, ref = RobotKinematics(spec), ReferenceKinematics(spec)
    rng = np.random.default_rng(3)
    for i in range(300):
        base = rng.uniform(-1.0, 1.0, 3)
        quat = rng.normal(size=4)
        quat *= (1.0 if i % 2 else 1.3) / np.linalg.norm(quat)  # not unit half of the time
        q = rng.uniform(spec.lower, spec.upper)
        com_f, feet_f = fast.com_and_sole_centres(base, quat, q)
        com_r, feet_r = ref.com_and_sole_centres(base, quat, q)
        np.testing.assert_allclose(com_f, com_r, rtol=0.0, atol=1e-12)
        np.testing.assert_allclose(feet_f, feet_r, rtol=0.0, atol=1e-12)
        assert com_f.shape == (3,) and feet_f.shape == (2, 3)
        feet_f[:] = 0.0  # the caller owns what it got: the next call must not see it
    with pytest.raises(ValueError):
        fast.com_and_sole_centres(base, np.zeros(4), q)
    with pytest.raises(ValueError):
        fast.com_and_sole_centres(base, quat, q[:-1])
