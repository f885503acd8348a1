"""The shield's modes and watchdogs around :class:`~humanoid_rl.core.shield_filter.SafetyFilter` (pure logic).

Modes:

* **HOLD** (start): waits for the first joint state (passive output meanwhile), then ramps from the measured
  pose to the default pose over ``ramp_time``. After the ramp, a fresh policy command that the filter accepts
  switches to ACTIVE, if the shield is engaged. Leaving ACTIVE (disengaged, command timeout) HOLD starts from
  the policy's recent targets averaged over ``hold_average_time`` and ramps to ``hold_pose``: a closed-loop
  policy's last target alone is a feedback correction of that instant, and frozen it tips the robot.
* **ACTIVE**: policy commands go through the filter. No accepted command for longer than ``command_timeout``,
  or disengaged: HOLD.
* **DAMPING**: no joint state or no IMU/balance update for longer than ``state_timeout``, or a balance trip.
  Output: the measured positions with stiffness 0 (the actuators get kp·0 and kd·``damping_kd_scale``).
  Stale-input DAMPING recovers by itself once inputs are fresh again (into HOLD, with a ramp); a balance trip
  is latched until :meth:`SafetyShield.reset` (a robot that fell must not stand up by itself while someone
  handles it).
* **ESTOP**: latched until :meth:`SafetyShield.reset`, which needs fresh inputs and ramps again (HOLD).

Time is passed in (seconds, float, one clock for everything, command stamps included): the node chooses a
steady clock on hardware and sim time in simulation. Whatever the inputs, every output is finite and within
the hard position limits.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import numpy as np

from humanoid_rl.core.shield_filter import (
    MAX_PLAUSIBLE_POSITION,
    MAX_PLAUSIBLE_VELOCITY,
    NO_BALANCE,
    STAGES,
    BalanceAssessment,
    BalanceState,
    FilterResult,
    FilterState,
    JointCommand,
    JointLimits,
    RejectReason,
    SafetyFilter,
    Stage,
)
from humanoid_rl.core.shield_params import ShieldParams

# Bounds on how far targets may move per period. Tightened live, they close in gradually, at most halving every
# TIGHTEN_HALVING_S: stepping max_target_rate from 10 to 0.05 rad/s at once froze the policy's instantaneous target
# (the cause of the hand-over falls) and the simulated robot fell in 3 of 3 tries; the same change halving each
# second kept it up. Loosening takes effect at once.
GRADUAL_BOUNDS = ("max_target_rate", "max_velocity_scale", "effort_scale")
TIGHTEN_HALVING_S = 1.0
# A policy command older than this many control periods is late: ACTIVE then heads for the policy's averaged
# targets instead of holding its last one for the whole command_timeout (a killed or deactivated policy's frozen
# last target tilted the emulated robot up to 11 deg in the 100 ms before HOLD).
LATE_COMMAND_PERIODS = 2.5


class ShieldMode(Enum):
    ACTIVE = "ACTIVE"
    HOLD = "HOLD"
    DAMPING = "DAMPING"
    ESTOP = "ESTOP"


@dataclass(frozen=True)
class Transition:
    time: float
    from_mode: ShieldMode
    to_mode: ShieldMode
    reason: str


@dataclass
class ShieldOutput:
    """What goes to the joints (policy order). The bridge/hardware applies
    ``kp·stiffness_scale·(positions − q) + kd·damping_scale·(velocities − q̇) + efforts``."""

    mode: ShieldMode
    positions: np.ndarray
    velocities: np.ndarray  # zeros: the policy was trained with zero velocity targets
    efforts: np.ndarray  # feed-forward, zeros
    stiffness_scale: float  # 1 in ACTIVE/HOLD, 0 in DAMPING/ESTOP and while waiting for a first state
    damping_scale: float  # 1 in ACTIVE/HOLD, damping_kd_scale when passive
    warning_level: float = 0.0  # balance warning 0…1
    filter_result: FilterResult | None = None


@dataclass
class ShieldCounters:
    commands_received: int = 0
    commands_accepted: int = 0
    commands_rejected: dict[RejectReason, int] = field(default_factory=lambda: dict.fromkeys(RejectReason, 0))
    commands_ignored: int = 0  # arrived while the shield was not ready for them (ramp, disengaged, passive)
    interventions: dict[Stage, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    mode_entries: dict[ShieldMode, int] = field(default_factory=lambda: dict.fromkeys(ShieldMode, 0))
    steps_in_mode: dict[ShieldMode, int] = field(default_factory=lambda: dict.fromkeys(ShieldMode, 0))
    state_samples_rejected: int = 0
    balance_samples_rejected: int = 0
    param_changes: int = 0
    param_refusals: int = 0

    def as_dict(self) -> dict[str, Any]:
        def keyed(d: dict) -> dict[str, int]:
            return {
                (k.value if isinstance(k, Enum) and isinstance(k.value, str) else k.name): v
                for k, v in d.items()
            }

        return {
            "commands_received": self.commands_received,
            "commands_accepted": self.commands_accepted,
            "commands_rejected": keyed(self.commands_rejected),
            "commands_ignored": self.commands_ignored,
            "interventions": keyed(self.interventions),
            "mode_entries": keyed(self.mode_entries),
            "steps_in_mode": keyed(self.steps_in_mode),
            "state_samples_rejected": self.state_samples_rejected,
            "balance_samples_rejected": self.balance_samples_rejected,
            "param_changes": self.param_changes,
            "param_refusals": self.param_refusals,
        }


@dataclass(frozen=True)
class _Ramp:
    start_time: float
    start: np.ndarray
    goal: np.ndarray
    duration: float

    def done(self, now: float) -> bool:
        return now >= self.start_time + self.duration

    def target(self, now: float) -> np.ndarray:
        if self.done(now):
            return self.goal
        alpha = max(0.0, (now - self.start_time) / self.duration)
        return self.start + alpha * (self.goal - self.start)


class SafetyShield:
    """Modes, watchdogs and ramps around a :class:`SafetyFilter`; the only path from policy to joints."""

    TRANSITION_LOG_LENGTH = 256

    def __init__(
        self,
        limits: JointLimits,
        params: ShieldParams | None = None,
        require_engage: bool = False,
        reset_hint: str = "a reset",
    ) -> None:
        self.filter = SafetyFilter(limits, params)
        self.limits = limits
        self.require_engage = require_engage
        self.reset_hint = reset_hint  # how a user resets, for messages (the node names its service)
        self.engaged = not require_engage
        self.mode = ShieldMode.HOLD
        self.last_reason = "start-up: waiting for the first joint state"
        self.transitions: deque[Transition] = deque(maxlen=self.TRANSITION_LOG_LENGTH)
        self.counters = ShieldCounters()
        self.counters.mode_entries[ShieldMode.HOLD] = 1
        n = limits.n_joints
        self._zeros = np.zeros(n)
        self._zeros.setflags(write=False)
        self._output = limits.default_pose.copy()
        self._ramp: _Ramp | None = None
        self._positions: np.ndarray | None = None
        self._state_names: tuple[str, ...] | None = None
        self._state_perm: np.ndarray | None = None
        self._velocities: np.ndarray | None = None
        self._state_time = -math.inf
        self._balance: BalanceState | None = None
        self._balance_time = -math.inf
        self._command: JointCommand | None = None
        self._command_time = -math.inf
        self._command_seen = True  # whether the latest command has been counted
        self._last_accepted_time = -math.inf
        self._balance_latched = False
        self._assessment: BalanceAssessment = NO_BALANCE
        self._first_step_time: float | None = None
        self._now = -math.inf
        # Exponential average of the ACTIVE outputs (see hold_average_time), restarted at each entry to ACTIVE.
        self._average = self._output.copy()
        self._average_time = -math.inf
        self._requested: ShieldParams | None = None  # accepted parameters still being closed in on
        self._tighten_time = -math.inf

    # ---------------------------------------------------------------- inputs
    @property
    def params(self) -> ShieldParams:
        return self.filter.params

    def on_policy_command(self, command: JointCommand, now: float) -> None:
        """Store the latest policy command; it is judged at the next :meth:`step`."""
        self.counters.commands_received += 1
        if not self._command_seen:
            self.counters.commands_ignored += 1  # superseded before any step saw it
        self._command, self._command_time, self._command_seen = command, float(now), False

    def on_joint_state(
        self,
        positions: Sequence[float] | np.ndarray,
        velocities: Sequence[float] | np.ndarray,
        now: float,
        names: Sequence[str] | None = None,
    ) -> bool:
        """Measured joint positions/velocities in policy order, or keyed by ``names`` (then the message may
        carry extra joints, e.g. passive ones, which are ignored). Empty ``velocities`` (drivers that publish
        none) count as zeros for the effort prediction. False if refused: missing or duplicated names,
        mismatched lengths, non-finite or implausible values (the sample is dropped and the state ages)."""
        try:
            q = np.array(positions, dtype=np.float64)
            qd = np.array(velocities, dtype=np.float64)
        except (TypeError, ValueError):
            self.counters.state_samples_rejected += 1
            return False
        if qd.size == 0:
            qd = np.zeros_like(q)
        n = self.limits.n_joints
        if names is not None and tuple(names) != self.limits.joint_names:
            permutation = self._state_permutation(tuple(names))
            if permutation is None or q.shape != (len(names),) or qd.shape != (len(names),):
                self.counters.state_samples_rejected += 1
                return False
            q, qd = q[permutation], qd[permutation]
        if (
            q.shape != (n,)
            or qd.shape != (n,)
            or not math.isfinite(now)
            or not np.abs(q).max() <= MAX_PLAUSIBLE_POSITION
            or not np.abs(qd).max() <= MAX_PLAUSIBLE_VELOCITY
        ):
            self.counters.state_samples_rejected += 1
            return False
        self._positions, self._velocities, self._state_time = q, qd, float(now)
        return True

    def on_balance(self, balance: BalanceState, now: float) -> bool:
        """IMU-derived balance data (tilt from the IMU, CoM/feet from kinematics); refreshes the IMU watchdog.
        False if refused (non-finite or implausible data: the sample is dropped and the IMU input ages)."""
        if not math.isfinite(now) or not self.filter.assess_balance(balance).data_valid:
            self.counters.balance_samples_rejected += 1
            return False
        self._balance, self._balance_time = balance, float(now)
        return True

    def set_engaged(self, engaged: bool, now: float | None = None) -> None:
        """The user's go/stop: disengaging in ACTIVE goes to HOLD at the next step."""
        self.engaged = bool(engaged)

    # ---------------------------------------------------------------- commands from the user
    def estop(self, reason: str, now: float | None = None) -> None:
        """Latch ESTOP (passive output) until :meth:`reset`."""
        if self.mode is not ShieldMode.ESTOP:
            self._enter(ShieldMode.ESTOP, f"estop: {reason}", self._now if now is None else now)

    def reset(self, now: float) -> list[str]:
        """Leave ESTOP / a latched balance trip (or restart from any mode) into HOLD with a fresh ramp from
        the measured pose. Refused, with the reasons, while inputs are stale or balance is still beyond the
        trip."""
        reasons = []
        stale = self._stale_inputs(now)
        if stale:
            reasons.append(f"cannot reset: {stale}")
        elif self._balance is not None:
            assessment = self.filter.assess_balance(self._balance)
            if assessment.trip:
                reasons.append(f"cannot reset: balance still beyond the trip ({assessment.reason})")
        if reasons:
            return reasons
        self._now = max(self._now, now)
        self._balance_latched = False
        self._start_ramp_from_measured(now)
        self._enter(
            ShieldMode.HOLD, "reset: ramping from the measured pose to the default pose", now, force=True
        )
        return []

    def set_params(self, new: ShieldParams | Mapping[str, Any]) -> list[str]:
        """Switch thresholds atomically from the next step on; refused (old ones kept) with the reasons."""
        if isinstance(new, ShieldParams):
            candidate = new
        else:
            unknown = [k for k in new if k not in self.params.as_dict()]
            if unknown:
                self.counters.param_refusals += 1
                return [f"unknown shield parameter {k!r}" for k in unknown]
            current = self.requested_params
            # Integers for doubles, as ROS hands them for "ramp_time: 2", become floats.
            candidate = replace(
                current,
                **{
                    k: float(v) if isinstance(getattr(current, k), float) and type(v) is int else v
                    for k, v in new.items()
                },
            )
        reasons = self.filter.check_params(candidate)
        if reasons:
            self.counters.param_refusals += 1
            return reasons
        self.counters.param_changes += 1
        if self._requested is None:
            self._tighten_time = self._now
        self._requested = candidate
        self._close_in(self._now)
        return []

    @property
    def requested_params(self) -> ShieldParams:
        """The parameters last accepted; :attr:`params` may still be closing in on them (GRADUAL_BOUNDS)."""
        return self._requested if self._requested is not None else self.params

    def _close_in(self, now: float) -> None:
        """Apply the requested parameters, tightened motion bounds only as far as TIGHTEN_HALVING_S allows."""
        requested, current = self._requested, self.params
        assert requested is not None
        finite = math.isfinite(now) and math.isfinite(self._tighten_time)
        elapsed = max(0.0, now - self._tighten_time) if finite else math.inf  # a clock that jumped back: no step
        factor = 0.5 ** (elapsed / TIGHTEN_HALVING_S) if elapsed < math.inf else 0.0
        self._tighten_time = now
        changes = {}
        for name in GRADUAL_BOUNDS:
            wanted, now_value = getattr(requested, name), getattr(current, name)
            if wanted < now_value and factor > 0.0:
                changes[name] = max(wanted, now_value * factor)
        effective = replace(requested, **changes) if changes else requested
        reasons = self.filter.set_params(effective)
        assert not reasons, reasons  # between two valid values of range-only parameters
        if effective == requested:
            self._requested = None

    # ---------------------------------------------------------------- the loop
    def step(self, now: float) -> ShieldOutput:
        """Advance the mode machine to ``now`` and return what goes to the joints."""
        if not math.isfinite(now):
            if self.mode is not ShieldMode.ESTOP:
                self._enter(ShieldMode.DAMPING, f"clock not finite ({now})", self._now)
            return self._finish(self._passive())
        self._now = now
        if self._requested is not None:
            self._close_in(now)
        if self._first_step_time is None:
            self._first_step_time = now
        if self.mode is ShieldMode.ESTOP:
            return self._finish(self._passive())
        stale = self._stale_inputs(now)
        if stale:
            never_had_inputs = self._state_time == -math.inf or self._balance_time == -math.inf
            waiting = (
                never_had_inputs
                and self.mode is ShieldMode.HOLD
                and self._ramp is None
                and now - self._first_step_time <= self.params.state_timeout
            )
            if not waiting:
                self._enter(ShieldMode.DAMPING, stale, now)
            return self._finish(self._passive())
        if self._balance_latched:
            return self._finish(self._passive())
        balance = self.filter.assess_balance(self._balance) if self._balance is not None else NO_BALANCE
        self._assessment = balance  # reused by the filter calls of this step
        if balance.trip:
            self._balance_latched = True
            self._enter(ShieldMode.DAMPING, f"balance trip: {balance.reason}; latched until {self.reset_hint}", now)
            return self._finish(self._passive(balance))
        if self.mode is ShieldMode.DAMPING:
            self._start_ramp_from_measured(now)
            self._enter(
                ShieldMode.HOLD, "inputs fresh again: ramping from the measured pose to the default pose", now
            )
        elif self._ramp is None:  # first fresh inputs after start-up
            self._start_ramp_from_measured(now)
            self.last_reason = "start-up: ramping from the measured pose to the default pose"
        assert self._positions is not None and self._velocities is not None and self._ramp is not None
        state = FilterState(now, self._positions, self._velocities, self._balance)

        if self.mode is ShieldMode.ACTIVE:
            if not self.engaged:
                self._enter_hold(now, "disengaged")
            else:
                result = self._judge_new_command(state)
                fresh = result is not None and result.accepted
                if result is None and now - self._command_time > LATE_COMMAND_PERIODS * self.params.control_period:
                    # The policy is late: its last target is a feedback correction that is getting old. Head for
                    # its averaged posture (what a hold would start from) until it answers or times out.
                    result = self.filter.constrain(self._average, state, self._output, balance)
                    self._output = result.positions
                elif result is None:
                    result = self._refilter_latest(state)
                elif result.accepted:
                    self._output = result.positions
                age = now - self._last_accepted_time
                if age <= self.params.command_timeout:
                    if fresh:  # the average is of what the policy asked for, not of held or re-filtered targets
                        self._track_average(now)
                    return self._finish(self._active(result, balance))
                self._enter_hold(
                    now,
                    f"no accepted policy command for {age:.3f} s "
                    f"(command_timeout {self.params.command_timeout} s)",
                )

        # HOLD: ramp; after the ramp a fresh accepted command switches to ACTIVE.
        if self._ramp.done(now) and self.engaged and now - self._command_time <= self.params.command_timeout:
            result = (
                self._judge_new_command(state) if not self._command_seen else self._refilter_latest(state)
            )
            if result is not None and result.accepted:
                self._output = result.positions
                self._enter(ShieldMode.ACTIVE, "ramp complete and a fresh policy command accepted", now)
                self._average, self._average_time = self._output.copy(), now
                return self._finish(self._active(result, balance))
        elif not self._command_seen:
            self._command_seen = True
            self.counters.commands_ignored += 1
        result = self.filter.constrain(self._ramp.target(now), state, self._output, balance)
        self._output = result.positions
        return self._finish(self._active(result, balance))

    # ---------------------------------------------------------------- internals
    def _state_permutation(self, names: tuple[str, ...]) -> np.ndarray | None:
        """Indices of the robot's joints in a joint-state name list (extras allowed); None if one is missing or
        a name is duplicated. Cached for the last name list (drivers send the same one every time)."""
        if names == self._state_names:
            return self._state_perm
        position_of: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in position_of:
                return None
            position_of[name] = i
        if any(name not in position_of for name in self.limits.joint_names):
            return None
        self._state_names = names
        self._state_perm = np.array([position_of[name] for name in self.limits.joint_names], dtype=np.intp)
        return self._state_perm

    def _judge_new_command(self, state: FilterState) -> FilterResult | None:
        """Filter the latest command if no step has seen it yet, and count its fate."""
        if self._command is None or self._command_seen:
            return None
        self._command_seen = True
        result = self.filter.filter(self._command, state, self._output, self._assessment)
        if result.accepted:
            self.counters.commands_accepted += 1
            self._last_accepted_time = self._command_time
            for stage in result.interventions:
                self.counters.interventions[stage] += 1
        else:
            assert result.reject_reason is not None
            self.counters.commands_rejected[result.reject_reason] += 1
        return result

    def _refilter_latest(self, state: FilterState) -> FilterResult | None:
        """Re-apply the latest command (a rate-limited target keeps approaching it); a rejected one changes
        nothing."""
        if self._command is None:
            return None
        result = self.filter.filter(self._command, state, self._output, self._assessment)
        if result.accepted:
            self._output = result.positions
            if self._last_accepted_time < self._command_time:
                self._last_accepted_time = self._command_time
        return result

    def _stale_inputs(self, now: float) -> str:
        timeout = self.params.state_timeout
        problems = []
        for label, last in (("joint state", self._state_time), ("IMU/balance", self._balance_time)):
            if not now - last <= timeout:
                problems.append(f"no {label} yet" if last == -math.inf else f"no {label} for {now - last:.3f} s")
        return "" if not problems else ", ".join(problems) + f" (state_timeout {timeout} s)"

    def _start_ramp_from_measured(self, now: float) -> None:
        measured = self._measured_or_output()
        self._output = measured
        self._ramp = _Ramp(now, measured, self.limits.default_pose, self.params.ramp_time)

    def _track_average(self, now: float) -> None:
        """Fold this step's ACTIVE output into the exponential average (time constant hold_average_time)."""
        tau = self.params.hold_average_time
        dt = now - self._average_time
        weight = 1.0 if tau <= 0.0 or not dt < math.inf else -math.expm1(-max(dt, 0.0) / tau)
        self._average += weight * (self._output - self._average)
        self._average_time = now

    def _enter_hold(self, now: float, reason: str) -> None:
        start = self._average.copy() if self.params.hold_average_time > 0.0 else self._output
        goal = self.limits.default_pose if self.params.hold_pose == "default" else start
        self._ramp = _Ramp(now, start, goal, self.params.ramp_time)
        self._enter(ShieldMode.HOLD, f"{reason}: holding, ramping to the {self.params.hold_pose} pose", now)

    def _enter(self, mode: ShieldMode, reason: str, now: float, force: bool = False) -> None:
        if mode is self.mode and not force:
            return
        self.transitions.append(Transition(float(now), self.mode, mode, reason))
        self.counters.mode_entries[mode] += 1
        self.mode = mode
        self.last_reason = reason
        if mode in (ShieldMode.DAMPING, ShieldMode.ESTOP):
            self._ramp = None

    def _measured_or_output(self) -> np.ndarray:
        source = self._positions if self._positions is not None else self._output
        return np.minimum(np.maximum(source, self.limits.lower), self.limits.upper)

    def _passive(self, balance: BalanceAssessment = NO_BALANCE) -> ShieldOutput:
        self._output = self._measured_or_output()
        return ShieldOutput(
            self.mode,
            self._output.copy(),
            self._zeros,
            self._zeros,
            0.0,
            self.params.damping_kd_scale,
            balance.warning_level,
        )

    def _active(self, result: FilterResult | None, balance: BalanceAssessment) -> ShieldOutput:
        return ShieldOutput(
            self.mode, self._output.copy(), self._zeros, self._zeros, 1.0, 1.0, balance.warning_level, result
        )

    def _finish(self, output: ShieldOutput) -> ShieldOutput:
        self.counters.steps_in_mode[output.mode] += 1
        return output

    # ---------------------------------------------------------------- diagnostics
    @property
    def last_transition(self) -> Transition | None:
        return self.transitions[-1] if self.transitions else None

    @property
    def measured_positions(self) -> np.ndarray | None:
        """The last accepted joint positions (policy order), None before the first."""
        return None if self._positions is None else self._positions.copy()

    def hold_target(self) -> np.ndarray:
        """What to hold when the shield stops stepping (deactivation, shutdown) in ACTIVE or HOLD: in ACTIVE the
        policy's averaged targets (as a disengage would start from), in HOLD the last output, which the robot
        is already tracking. Never the measured pose: a PD target at the measured pose lets gravity sag it."""
        if self.mode is ShieldMode.ACTIVE and self.params.hold_average_time > 0.0:
            return self._average.copy()
        return self._output.copy()

    @property
    def ramp_complete(self) -> bool:
        return self._ramp is not None and self._ramp.done(self._now)
