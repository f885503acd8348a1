"""The shield's modes and watchdogs, driven with explicit times.

Times are multiples of a binary-exact period (1/64 s) so that "exactly at the timeout" is exact in floating point.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from humanoid_rl.core.shield import (
    BalanceState,
    JointCommand,
    JointLimits,
    RejectReason,
    SafetyShield,
    ShieldMode,
    ShieldParams,
    Stage,
)

N = 21
DT = 1.0 / 64
PARAMS = ShieldParams(
    control_period=DT, command_timeout=8 * DT, state_timeout=8 * DT, ramp_time=32 * DT, future_tolerance=DT
)


def limits() -> JointLimits:
    lower = -np.linspace(0.5, 2.5, N)
    upper = np.linspace(2.0, 0.4, N)
    return JointLimits(
        joint_names=tuple(f"joint_{i:02d}" for i in range(N)),
        lower=lower,
        upper=upper,
        velocity=np.full(N, 15.0),
        effort=np.full(N, 150.0),
        kp=np.full(N, 60.0),
        kd=np.full(N, 2.0),
        default_pose=lower + 0.45 * (upper - lower),
    )


LIMITS = limits()
NAMES = LIMITS.joint_names
DEFAULT = LIMITS.default_pose
POLICY_TARGET = DEFAULT + 0.03


class Rig:
    """A shield plus a perfectly tracking robot: the measured pose is the last output."""

    def __init__(
        self, params: ShieldParams = PARAMS, require_engage: bool = False, start: np.ndarray | None = None
    ) -> None:
        self.shield = SafetyShield(LIMITS, params, require_engage=require_engage)
        self.q = DEFAULT + 0.1 if start is None else start
        self.tilt = 0.0
        self.k = 0  # step index; time = k · DT

    @property
    def now(self) -> float:
        return self.k * DT

    def sense(self, joints: bool = True, imu: bool = True) -> None:
        if joints:
            assert self.shield.on_joint_state(self.q, np.zeros(N), self.now)
            self.last_measured = self.q
        if imu:
            assert self.shield.on_balance(BalanceState(self.tilt), self.now)

    def command(self, positions: np.ndarray = POLICY_TARGET) -> None:
        self.shield.on_policy_command(JointCommand(self.now, NAMES, positions), self.now)

    def tick(
        self,
        joints: bool = True,
        imu: bool = True,
        command: bool = True,
        positions: np.ndarray = POLICY_TARGET,
    ):
        self.sense(joints, imu)
        if command:
            self.command(positions)
        out = self.shield.step(self.now)
        if out.stiffness_scale > 0:
            self.q = out.positions  # tracks perfectly
        self.k += 1
        return out

    def run_until_active(self) -> None:
        for _ in range(200):
            if self.tick().mode is ShieldMode.ACTIVE:
                return
        raise AssertionError(f"never became ACTIVE: {self.shield.last_reason}")


def test_the_start_up_ramp_reaches_the_default_pose_exactly_at_ramp_time() -> None:
    rig = Rig()
    start = rig.q.copy()
    ramp_steps = round(PARAMS.ramp_time / DT)
    outputs = [rig.tick(command=False) for _ in range(ramp_steps + 5)]
    assert all(o.mode is ShieldMode.HOLD and o.stiffness_scale == 1.0 for o in outputs)
    assert np.array_equal(outputs[0].positions, start)
    np.testing.assert_allclose(outputs[ramp_steps // 2].positions, (start + DEFAULT) / 2, atol=1e-12)
    assert not np.array_equal(outputs[ramp_steps - 1].positions, DEFAULT)
    for out in outputs[ramp_steps:]:
        assert np.array_equal(out.positions, DEFAULT)


def test_no_policy_command_passes_before_the_ramp_completes() -> None:
    rig = Rig()
    ramp_steps = round(PARAMS.ramp_time / DT)
    for k in range(ramp_steps):
        out = rig.tick()
        assert out.mode is ShieldMode.HOLD, k
        assert not np.allclose(out.positions, POLICY_TARGET)
    out = rig.tick()
    assert out.mode is ShieldMode.ACTIVE and rig.now - DT == PARAMS.ramp_time
    assert rig.shield.last_transition.reason.startswith("ramp complete")
    np.testing.assert_array_equal(out.positions, POLICY_TARGET)  # within one rate step of the default pose
    assert rig.shield.counters.commands_ignored == ramp_steps


def test_with_engage_required_commands_pass_only_after_engaging() -> None:
    rig = Rig(require_engage=True)
    for _ in range(round(PARAMS.ramp_time / DT) + 10):
        assert rig.tick().mode is ShieldMode.HOLD
    rig.shield.set_engaged(True)
    assert rig.tick().mode is ShieldMode.ACTIVE
    rig.shield.set_engaged(False)
    out = rig.tick()
    assert out.mode is ShieldMode.HOLD and "disengaged" in rig.shield.last_reason


def test_a_command_timeout_switches_to_hold_at_exactly_the_timeout() -> None:
    rig = Rig()
    rig.run_until_active()
    last_command_time = rig.now - DT
    timeout_steps = round(PARAMS.command_timeout / DT)
    for _ in range(timeout_steps):  # last command age goes DT … timeout: still ACTIVE
        assert rig.tick(command=False).mode is ShieldMode.ACTIVE
    assert rig.now - DT - last_command_time == PARAMS.command_timeout
    out = rig.tick(command=False)  # one period later: HOLD
    assert out.mode is ShieldMode.HOLD
    transition = rig.shield.last_transition
    assert (transition.from_mode, transition.to_mode) == (ShieldMode.ACTIVE, ShieldMode.HOLD)
    assert transition.time == last_command_time + PARAMS.command_timeout + DT
    assert "no accepted policy command" in transition.reason
    # HOLD holds the last output, then ramps to the default pose (hold_pose = "default").
    np.testing.assert_array_equal(out.positions, POLICY_TARGET)
    for _ in range(round(PARAMS.ramp_time / DT)):
        out = rig.tick(command=False)
    np.testing.assert_array_equal(out.positions, DEFAULT)


def test_hold_pose_current_keeps_the_last_output_after_a_command_timeout() -> None:
    rig = Rig(PARAMS.with_changes(hold_pose="current"))
    rig.run_until_active()
    for _ in range(round(PARAMS.ramp_time / DT) + 20):
        out = rig.tick(command=False)
        np.testing.assert_array_equal(out.positions, POLICY_TARGET)
    assert out.mode is ShieldMode.HOLD


def test_after_a_command_timeout_commands_pass_again_only_after_a_new_ramp() -> None:
    rig = Rig()
    rig.run_until_active()
    for _ in range(round(PARAMS.command_timeout / DT) + 1):
        rig.tick(command=False)
    assert rig.shield.mode is ShieldMode.HOLD
    hold_started = rig.now - DT
    while rig.tick().mode is ShieldMode.HOLD:
        pass
    assert rig.now - DT - hold_started == PARAMS.ramp_time


def test_a_stale_joint_state_switches_to_damping_with_measured_positions_and_zero_stiffness() -> None:
    rig = Rig()
    rig.run_until_active()
    last_state = rig.now - DT
    for _ in range(round(PARAMS.state_timeout / DT)):
        assert rig.tick(joints=False).mode is ShieldMode.ACTIVE
    out = rig.tick(joints=False)
    assert out.mode is ShieldMode.DAMPING
    assert rig.shield.last_transition.time == last_state + PARAMS.state_timeout + DT
    assert "no joint state" in rig.shield.last_reason
    assert out.stiffness_scale == 0.0 and out.damping_scale == PARAMS.damping_kd_scale
    np.testing.assert_array_equal(out.positions, rig.last_measured)
    assert not out.velocities.any() and not out.efforts.any()


def test_a_stale_imu_switches_to_damping_and_fresh_inputs_recover_through_a_ramp() -> None:
    rig = Rig()
    rig.run_until_active()
    for _ in range(round(PARAMS.state_timeout / DT) + 1):
        out = rig.tick(imu=False)
    assert out.mode is ShieldMode.DAMPING and "IMU" in rig.shield.last_reason
    out = rig.tick()  # inputs fresh again: HOLD with a ramp from the measured pose, no command passes
    assert out.mode is ShieldMode.HOLD
    recovered_at = rig.now - DT
    while rig.tick().mode is ShieldMode.HOLD:
        pass
    assert rig.now - DT - recovered_at == PARAMS.ramp_time


def test_waiting_for_the_first_joint_state_is_passive_and_becomes_damping_after_the_state_timeout() -> None:
    shield = SafetyShield(LIMITS, PARAMS)
    out = shield.step(0.0)
    assert out.mode is ShieldMode.HOLD and out.stiffness_scale == 0.0
    assert np.isfinite(out.positions).all()
    out = shield.step(PARAMS.state_timeout)
    assert out.mode is ShieldMode.HOLD
    out = shield.step(PARAMS.state_timeout + DT)
    assert out.mode is ShieldMode.DAMPING and "no joint state yet" in shield.last_reason


def test_a_balance_trip_switches_to_damping_and_stays_there_until_reset() -> None:
    rig = Rig()
    rig.run_until_active()
    rig.tilt = PARAMS.tilt_trip + 0.01
    out = rig.tick()
    assert out.mode is ShieldMode.DAMPING and "balance trip" in rig.shield.last_reason
    assert out.stiffness_scale == 0.0 and out.warning_level == 1.0
    rig.tilt = 0.0  # upright again (someone holds it): still latched
    for _ in range(50):
        assert rig.tick().mode is ShieldMode.DAMPING
    assert rig.shield.reset(rig.now) == []
    assert rig.tick().mode is ShieldMode.HOLD


def test_a_balance_warning_pulls_active_targets_toward_the_default_pose() -> None:
    rig = Rig()
    rig.run_until_active()
    far = DEFAULT + 0.4 * (LIMITS.upper - DEFAULT)
    for _ in range(40):
        calm = rig.tick(positions=far)
    rig.tilt = (PARAMS.tilt_warn + PARAMS.tilt_trip) / 2 + 0.1
    for _ in range(40):
        warned = rig.tick(positions=far)
    assert warned.mode is ShieldMode.ACTIVE and 0.0 < warned.warning_level < 1.0
    assert np.abs(warned.positions - DEFAULT).max() < np.abs(calm.positions - DEFAULT).max()
    assert rig.shield.counters.interventions[Stage.BALANCE] > 0


def test_estop_is_latched_until_reset_and_reset_ramps_again() -> None:
    rig = Rig()
    rig.run_until_active()
    rig.shield.estop("operator pressed the button")
    for _ in range(30):
        out = rig.tick()
        assert out.mode is ShieldMode.ESTOP and out.stiffness_scale == 0.0
    assert "operator pressed the button" in rig.shield.last_reason
    assert rig.shield.reset(rig.now) == []
    assert rig.shield.mode is ShieldMode.HOLD
    reset_at = rig.now
    while rig.tick().mode is ShieldMode.HOLD:
        pass
    assert rig.now - DT - reset_at == PARAMS.ramp_time


def test_reset_is_refused_while_inputs_are_stale() -> None:
    rig = Rig()
    rig.run_until_active()
    rig.shield.estop("test")
    for _ in range(round(PARAMS.state_timeout / DT) + 2):
        rig.tick(joints=False)
    reasons = rig.shield.reset(rig.now)
    assert reasons and "no joint state" in reasons[0]
    assert rig.shield.mode is ShieldMode.ESTOP
    rig.sense()
    assert rig.shield.reset(rig.now) == []


def test_reset_is_refused_while_the_robot_is_still_tilted_beyond_the_trip() -> None:
    rig = Rig()
    rig.run_until_active()
    rig.tilt = PARAMS.tilt_trip + 0.2
    rig.tick()
    reasons = rig.shield.reset(rig.now - DT)
    assert reasons and "balance" in reasons[0]
    assert rig.shield.mode is ShieldMode.DAMPING


def test_every_transition_is_recorded_with_time_modes_and_reason() -> None:
    rig = Rig()
    rig.run_until_active()
    rig.shield.estop("test", rig.now)
    rig.shield.reset(rig.now)
    log = list(rig.shield.transitions)
    assert [(t.from_mode, t.to_mode) for t in log] == [
        (ShieldMode.HOLD, ShieldMode.ACTIVE),
        (ShieldMode.ACTIVE, ShieldMode.ESTOP),
        (ShieldMode.ESTOP, ShieldMode.HOLD),
    ]
    assert all(t.reason for t in log) and log[0].time == PARAMS.ramp_time
    assert rig.shield.last_reason == log[-1].reason
    assert rig.shield.counters.mode_entries[ShieldMode.ESTOP] == 1


def test_a_rejected_command_in_active_keeps_the_last_output_and_is_counted() -> None:
    rig = Rig()
    rig.run_until_active()
    before = rig.tick().positions
    bad = POLICY_TARGET.copy()
    bad[3] = math.nan
    out = rig.tick(positions=bad)
    assert out.mode is ShieldMode.ACTIVE
    np.testing.assert_array_equal(out.positions, before)
    assert rig.shield.counters.commands_rejected[RejectReason.NON_FINITE] == 1


def test_set_params_refuses_out_of_range_and_inconsistent_values_and_keeps_the_old_ones() -> None:
    shield = SafetyShield(LIMITS, PARAMS)
    assert shield.set_params({"max_target_rate": -1.0})
    assert shield.set_params({"tilt_warn": 0.8})  # ≥ tilt_trip 0.7
    assert shield.set_params({"gravity": 3.7})  # read-only
    assert shield.set_params({"no_such_parameter": 1.0})
    assert shield.set_params({"hold_pose": "sideways"})
    assert shield.params == PARAMS
    assert shield.counters.param_refusals == 5 and shield.counters.param_changes == 0


def test_a_valid_parameter_change_takes_effect_on_the_next_step() -> None:
    rig = Rig(PARAMS.with_changes(max_target_rate=1.0))
    rig.run_until_active()
    assert rig.shield.set_params({"max_target_rate": 10.0}) == []  # a loosening: at once
    previous = rig.tick().positions
    far = DEFAULT + 0.5
    out = rig.tick(positions=far)
    assert np.abs(out.positions - previous).max() == pytest.approx(10.0 * DT)
    assert rig.shield.counters.param_changes == 1
    assert rig.shield.set_params({"ramp_time": 1}) == [] and type(rig.shield.params.ramp_time) is float


def test_a_tightened_motion_bound_closes_in_halving_each_second_and_other_changes_keep_its_goal() -> None:
    rig = Rig(PARAMS.with_changes(max_target_rate=10.0))
    rig.run_until_active()
    assert rig.shield.set_params({"max_target_rate": 1.0}) == []
    assert rig.shield.requested_params.max_target_rate == 1.0  # what was asked for, at once
    assert rig.shield.params.max_target_rate == 10.0  # what binds, until the next step
    seconds = round(1.0 / DT)
    for _ in range(seconds):
        rig.tick()
    assert rig.shield.params.max_target_rate == pytest.approx(5.0)
    assert rig.shield.set_params({"tilt_warn": 0.3}) == []  # an unrelated change mid-way keeps the goal
    for _ in range(3 * seconds):
        rig.tick()
    assert rig.shield.params.max_target_rate == 1.0 and rig.shield.params.tilt_warn == 0.3
    previous = rig.tick().positions
    out = rig.tick(positions=DEFAULT + 0.5)
    assert np.abs(out.positions - previous).max() == pytest.approx(1.0 * DT)


def test_a_joint_state_keyed_by_name_is_reordered_extras_ignored_and_a_bad_one_refused() -> None:
    shield = SafetyShield(LIMITS, PARAMS)
    order = np.arange(N)[::-1]
    q = DEFAULT + 0.01 * np.arange(N)
    assert shield.on_joint_state(q[order], np.zeros(N), 0.0, names=[NAMES[i] for i in order])
    assert shield.on_balance(BalanceState(0.0), 0.0)
    np.testing.assert_array_equal(shield.step(0.0).positions, q)
    # A passive joint the policy does not drive, and no velocities at all: accepted.
    assert shield.on_joint_state(np.append(q + 0.001, 9.0), [], DT, names=(*NAMES, "gripper_joint"))
    np.testing.assert_array_equal(shield.measured_positions, q + 0.001)
    assert not shield.on_joint_state(q[:-1], np.zeros(N - 1), 0.0, names=NAMES[:-1])  # one missing
    assert not shield.on_joint_state(np.append(q, 0.0), np.zeros(N + 1), 0.0, names=(*NAMES, NAMES[0]))
    assert not shield.on_joint_state(np.full(N, np.nan), np.zeros(N), 0.0)
    assert not shield.on_balance(BalanceState(math.nan), 0.0)
    assert shield.counters.state_samples_rejected == 3 and shield.counters.balance_samples_rejected == 1


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(
            (
                "state",
                "state",
                "balance",
                "command",
                "command",
                "step",
                "step",
                "step",
                "estop",
                "reset",
                "engage",
                "params",
            )
        ),
        st.floats(allow_nan=True, allow_infinity=True, width=64),
        st.integers(0, 2**32 - 1),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS)
def test_shield_outputs_are_finite_and_within_limits_whatever_the_input_sequence(events: list) -> None:
    shield = SafetyShield(LIMITS, PARAMS)
    now = 0.0
    specials = np.array([np.nan, np.inf, -np.inf, 1e300, -1e300, 0.0])
    for kind, value, seed in events:
        rng = np.random.default_rng(seed)
        now += DT if rng.random() < 0.9 else rng.choice([0.0, -DT, 1.0, 10.0])
        vector = rng.uniform(LIMITS.lower - 0.5, LIMITS.upper + 0.5)
        if rng.random() < 0.2:
            vector[rng.integers(0, N)] = value
        if rng.random() < 0.1:
            vector = rng.choice(specials, N)
        if kind == "state":
            shield.on_joint_state(vector, rng.normal(0.0, 1.0, N), now)
        elif kind == "balance":
            shield.on_balance(BalanceState(value if rng.random() < 0.3 else rng.uniform(0, 1)), now)
        elif kind == "command":
            stamp = now if rng.random() < 0.8 else value
            shield.on_policy_command(JointCommand(stamp, NAMES, vector), now)
        elif kind == "estop":
            shield.estop("test")
        elif kind == "reset":
            shield.reset(now)
        elif kind == "engage":
            shield.set_engaged(bool(rng.random() < 0.5))
        elif kind == "params":
            shield.set_params({"max_target_rate": value})
        else:
            out = shield.step(value if rng.random() < 0.05 else now)
            assert np.isfinite(out.positions).all()
            assert (out.positions >= LIMITS.lower).all() and (out.positions <= LIMITS.upper).all()
            if out.mode in (ShieldMode.DAMPING, ShieldMode.ESTOP):
                assert out.stiffness_scale == 0.0
            elif out.mode is ShieldMode.ACTIVE:
                assert out.stiffness_scale == 1.0


def test_a_late_policy_is_held_at_its_averaged_targets_not_at_its_last_instant_until_the_timeout() -> None:
    """A killed or deactivated policy leaves its last target, a feedback correction of that instant; from
    LATE_COMMAND_PERIODS on the shield heads for the policy's averaged targets, and after command_timeout HOLD
    starts from the same average."""
    from humanoid_rl.core.shield_modes import LATE_COMMAND_PERIODS

    rig = Rig(PARAMS.with_changes(max_target_rate=100.0, hold_average_time=4 * DT))
    rig.run_until_active()
    wiggle = 0.02
    for k in range(40):  # the policy alternates ±wiggle around its posture on one joint
        target = POLICY_TARGET.copy()
        target[0] += wiggle if k % 2 else -wiggle
        out = rig.tick(positions=target)
    last = out.positions[0]
    assert abs(last - POLICY_TARGET[0]) == pytest.approx(wiggle)
    on_time = rig.tick(command=False)  # one period without a command: jitter, the last target stands
    assert on_time.mode is ShieldMode.ACTIVE and on_time.positions[0] == last
    while rig.now - rig.shield._command_time <= LATE_COMMAND_PERIODS * DT:  # noqa: SLF001
        out = rig.tick(command=False)
    late = rig.tick(command=False)
    assert late.mode is ShieldMode.ACTIVE
    assert abs(late.positions[0] - POLICY_TARGET[0]) < 0.3 * wiggle  # the average, not the last instant
