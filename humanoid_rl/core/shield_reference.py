"""The readable specification of the safety shield's per-command computation, kept verbatim.

:class:`ReferenceSafetyFilter` is :class:`~humanoid_rl.core.shield_filter.SafetyFilter` and
:class:`ReferenceKinematics` is :meth:`~humanoid_rl.core.kinematics.RobotKinematics.com_and_sole_centres` as they
were before they were optimised for speed (commit 1829f5f). They are what the optimised code is tested against
(``test/test_shield_reference.py``: outputs, interventions and reject reasons bit-identical, kinematics equal) and
the baseline that ``humanoid-rl bench shield`` measures in the same run. Nothing in the running stack uses them.

Change the behaviour here first, then make the optimised code agree: the equivalence test says where it does not.
The data types (commands, states, results, limits) and the plain-float balance helpers are shared with
:mod:`~humanoid_rl.core.shield_filter`; only the per-command code paths are duplicated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pinocchio as pin

from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.shield_filter import (
    MAX_PLAUSIBLE_POSITION,
    MAX_PLAUSIBLE_VELOCITY,
    NO_BALANCE,
    BalanceAssessment,
    BalanceState,
    FilterResult,
    FilterState,
    JointCommand,
    JointLimits,
    RejectReason,
    _per_sole,
    _support_distance,
)
from humanoid_rl.core.shield_params import ShieldParams, validate

__all__ = ["ReferenceKinematics", "ReferenceSafetyFilter"]

_PLAUSIBLE_COORDINATE = 1e6  # as in shield_filter


def _reconcile(
    stage_lo: np.ndarray, stage_hi: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The priority rule: [stage_lo, stage_hi] ∩ the higher-priority [lo, hi], or, where they are disjoint, the
    point of [lo, hi] nearest to the stage interval. Needs stage_lo <= stage_hi and lo <= hi; keeps new lo <= hi."""
    return np.minimum(np.maximum(stage_lo, lo), hi), np.maximum(np.minimum(stage_hi, hi), lo)


def _floats(values: Sequence[float] | np.ndarray | None) -> list[float]:
    return values.tolist() if isinstance(values, np.ndarray) else [float(v) for v in values]  # type: ignore[union-attr]


def _all_finite(values: np.ndarray) -> bool:
    # One cheap call in the common case: a finite sum of squares proves every entry finite (np.vdot returns
    # inf on overflow without a warning). Only otherwise the element-wise test, which tells huge-but-finite
    # values from NaN/Inf. (ndarray.all() costs several times more than count_nonzero on small arrays.)
    return math.isfinite(np.vdot(values, values)) or np.count_nonzero(np.isfinite(values)) == values.size


class ReferenceSafetyFilter:
    """The pre-optimisation :class:`~humanoid_rl.core.shield_filter.SafetyFilter`, verbatim (module docstring)."""

    _PERMUTATION_CACHE_SIZE = 32

    def __init__(self, limits: JointLimits, params: ShieldParams | None = None) -> None:
        self.limits = limits
        self._names = limits.joint_names
        self._index = {name: i for i, name in enumerate(self._names)}
        self._permutations: dict[tuple[str, ...], np.ndarray | tuple[RejectReason, str]] = {}
        params = params if params is not None else ShieldParams()
        reasons = self.check_params(params)
        if reasons:
            raise ValueError("invalid shield parameters: " + "; ".join(reasons))
        self._apply(params)

    # ---------------------------------------------------------------- parameters
    @property
    def params(self) -> ShieldParams:
        return self._params

    def check_params(self, params: ShieldParams) -> list[str]:
        """:func:`validate` plus the checks that need the joint limits."""
        reasons = validate(params)
        if reasons:
            return reasons
        lim = self.limits
        soft_lower, soft_upper = lim.lower + params.soft_margin, lim.upper - params.soft_margin
        narrow = soft_lower >= soft_upper
        if narrow.any():
            reasons.append(
                f"soft_margin {params.soft_margin} rad leaves no range for "
                f"{[self._names[i] for i in np.flatnonzero(narrow)]}"
            )
        outside = (lim.default_pose < soft_lower) | (lim.default_pose > soft_upper)
        if outside.any():
            reasons.append(
                f"soft_margin {params.soft_margin} rad puts the default pose of "
                f"{[self._names[i] for i in np.flatnonzero(outside)]} outside the soft limits"
            )
        return reasons

    def set_params(self, params: ShieldParams) -> list[str]:
        """Switch to ``params`` from the next call on; refused (old ones kept) with the reasons if invalid."""
        reasons = self.check_params(params)
        if not reasons:
            self._apply(params)
        return reasons

    def _apply(self, params: ShieldParams) -> None:
        lim = self.limits
        dt = params.control_period
        self._params = params
        self._soft_lower = lim.lower + params.soft_margin
        self._soft_upper = lim.upper - params.soft_margin
        # Fraction of the distance to the soft limit the target may cover in one period; capped at 1 so that
        # one period never jumps past the soft limit.
        self._soft_fraction = min(1.0, params.soft_limit_gain * dt)
        self._velocity_step = lim.velocity * params.max_velocity_scale * dt
        self._rate_step = np.full(lim.n_joints, params.max_target_rate * dt)
        self._step = np.minimum(self._velocity_step, self._rate_step)
        positive_kp = lim.kp > 0
        safe_kp = np.where(positive_kp, lim.kp, 1.0)
        self._kd_over_kp = np.where(positive_kp, lim.kd / safe_kp, 0.0)
        self._effort_reach = np.where(positive_kp, lim.effort * params.effort_scale / safe_kp, np.inf)
        self._range = lim.upper - lim.lower
        self._lists = (
            lim.lower.tolist(),
            lim.upper.tolist(),
            self._velocity_step.tolist(),
            self._rate_step.tolist(),
        )
        # The soft interval contains prev when prev is inside the soft range; beyond it (by at most the soft
        # margin, since prev is within the hard limits) it asks for a step back of at most f·margin. When that
        # stays well below the velocity/rate step (factor 2: no float-rounding edge), the soft interval always
        # overlaps hard ∩ rate.
        self._soft_always_overlaps = bool(2.0 * self._soft_fraction * params.soft_margin < self._step.min())

    # ---------------------------------------------------------------- public API
    def safe_previous(self, previous_output: np.ndarray, measured: np.ndarray | None = None) -> np.ndarray:
        """The previous output made usable: non-finite entries replaced by the measured position (or the
        default pose), then clipped to the hard limits. Equal to ``previous_output`` when it already was
        usable."""
        prev = np.asarray(previous_output, dtype=np.float64)
        if prev.shape != (self.limits.n_joints,):
            raise ValueError(f"previous_output has shape {prev.shape}, expected ({self.limits.n_joints},)")
        if not _all_finite(prev):
            fallback = self.limits.default_pose
            if measured is not None:
                measured = np.asarray(measured, dtype=np.float64)
                fallback = np.where(np.isfinite(measured), measured, fallback)
            prev = np.where(np.isfinite(prev), prev, fallback)
        return np.minimum(np.maximum(prev, self.limits.lower), self.limits.upper)

    def filter(
        self,
        command: JointCommand,
        state: FilterState,
        previous_output: np.ndarray,
        assessment: BalanceAssessment | None = None,
    ) -> FilterResult:
        """Bound ``command`` given the measured ``state`` and the previous output (policy order).

        ``assessment``: :meth:`assess_balance` of ``state.balance`` if the caller already has it (saves
        recomputing it); by default computed here.
        """
        prev = self.safe_previous(previous_output, state.positions)
        balance = assessment if assessment is not None else self._assess(state.balance)
        target = self._command_in_policy_order(command, state)
        if isinstance(target, tuple):
            return FilterResult(prev, False, target[0], target[1], balance=balance)
        invalid = self._invalid_state(state)
        if invalid:
            return FilterResult(prev, False, RejectReason.INVALID_STATE, invalid, balance=balance)
        return self._clip(target, state, prev, balance)

    def constrain(
        self,
        target: np.ndarray,
        state: FilterState,
        previous_output: np.ndarray,
        assessment: BalanceAssessment | None = None,
    ) -> FilterResult:
        """Stages 2–6 only, for targets the shield makes itself (HOLD ramps). With an invalid state the
        previous output stands (reported as INVALID_STATE)."""
        prev = self.safe_previous(previous_output, state.positions)
        balance = assessment if assessment is not None else self._assess(state.balance)
        invalid = self._invalid_state(state)
        if invalid:
            return FilterResult(prev, False, RejectReason.INVALID_STATE, invalid, balance=balance)
        target = np.asarray(target, dtype=np.float64)
        if target.shape != prev.shape or not np.isfinite(target).all():
            raise ValueError(f"constrain() needs a finite target of shape {prev.shape}")
        return self._clip(target, state, prev, balance)

    def bounds(
        self, state: FilterState, previous_output: np.ndarray, warning_level: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """The interval [lo, hi] per joint that a command is clipped to (all stages, priority applied)."""
        prev = self.safe_previous(previous_output, state.positions)
        return self._bounds(state.positions, state.velocities, prev, warning_level)

    def assess_balance(self, balance: BalanceState) -> BalanceAssessment:
        """Warning level and trip from predicted tilt and the capture point; non-finite data trips."""
        p = self._params
        tilt, tilt_rate = balance.tilt, balance.tilt_rate
        if not (math.isfinite(tilt) and math.isfinite(tilt_rate)):
            return BalanceAssessment(
                1.0,
                True,
                math.nan,
                None,
                math.nan,
                f"tilt or tilt rate not finite ({tilt}, {tilt_rate}): cannot judge balance",
                data_valid=False,
            )
        predicted = tilt + max(tilt_rate, 0.0) * p.tilt_horizon
        level = min(1.0, max(0.0, (predicted - p.tilt_warn) / (p.tilt_trip - p.tilt_warn)))
        trip = predicted >= p.tilt_trip
        capture_point, distance, cp_level = None, math.nan, 0.0
        if balance.com_xy is not None:
            try:
                capture_point, distance = self._capture_point(balance)
            except (TypeError, ValueError, IndexError) as error:
                distance = math.nan
                cp_problem = str(error)
            else:
                cp_problem = "" if math.isfinite(distance) else "not finite"
            if cp_problem:
                return BalanceAssessment(
                    1.0,
                    True,
                    predicted,
                    capture_point,
                    math.nan,
                    f"capture point data invalid ({cp_problem}): cannot judge balance",
                    data_valid=False,
                )
            cp_level = min(
                1.0,
                max(
                    0.0,
                    (p.capture_point_margin - distance)
                    / (p.capture_point_margin - p.capture_point_trip_margin),
                ),
            )
            trip = trip or distance <= p.capture_point_trip_margin
        if trip:
            level = 1.0
        else:
            level = max(level, cp_level)
        reason = ""
        if trip:  # formatting costs microseconds: only for trips, which the mode machine records
            reason = f"predicted tilt {predicted:.3f} rad (warn {p.tilt_warn}, trip {p.tilt_trip})" + (
                ""
                if capture_point is None
                else f", capture point {distance:+.3f} m from the support polygon edge"
                f" (warn {p.capture_point_margin}, trip {p.capture_point_trip_margin})"
            )
        return BalanceAssessment(level, trip, predicted, capture_point, distance, reason)

    # ---------------------------------------------------------------- internals
    def _assess(self, balance: BalanceState | None) -> BalanceAssessment:
        return NO_BALANCE if balance is None else self.assess_balance(balance)

    def _capture_point(self, balance: BalanceState) -> tuple[tuple[float, float], float]:
        cx, cy = _floats(balance.com_xy)
        vx, vy = _floats(balance.com_vel_xy)
        left, right = (_floats(foot) for foot in balance.feet)  # type: ignore[union-attr]
        contacts = [bool(v) for v in balance.contacts]  # type: ignore[union-attr]
        height, yaw = float(balance.com_height), float(balance.yaw)
        if len(contacts) != 2 or len(left) != 3 or len(right) != 3:
            raise ValueError("feet must be (2, 3) and contacts (2,): left, right")
        # A sum of magnitudes is NaN/Inf if any value is, and bounds them all (products cannot overflow).
        if not abs(cx) + abs(cy) + abs(vx) + abs(vy) + abs(height) + abs(yaw) + sum(
            map(abs, left + right)
        ) <= (_PLAUSIBLE_COORDINATE):
            raise ValueError("CoM, CoM velocity, CoM height, feet or yaw not finite or implausible")
        if not height > 0.0:
            raise ValueError(f"CoM height {height} m must be positive")
        time_constant = math.sqrt(height / self._params.gravity)
        point = (cx + vx * time_constant, cy + vy * time_constant)
        (length, width), (length_2, width_2) = _per_sole(balance.foot_size)
        if self._params.support_region == "both_soles":
            contacts = [True, True]
        distance = _support_distance(
            point[0], point[1], (left, right), contacts, length, width, yaw, length_2, width_2
        )
        return point, distance

    def _command_in_policy_order(
        self, command: JointCommand, state: FilterState
    ) -> np.ndarray | tuple[RejectReason, str]:
        try:
            positions = np.asarray(command.positions, dtype=np.float64)
            stamp = float(command.stamp)
        except (TypeError, ValueError) as error:
            return RejectReason.NON_FINITE, f"positions or stamp are not numbers: {error}"
        names = command.names
        if positions.ndim != 1 or positions.shape[0] != len(names):
            return (
                RejectReason.LENGTH_MISMATCH,
                f"{len(names)} joint names but positions of shape {positions.shape}",
            )
        if not (math.isfinite(stamp) and _all_finite(positions)):
            bad = [str(names[i]) for i in np.flatnonzero(~np.isfinite(positions))]
            return RejectReason.NON_FINITE, f"non-finite target for {bad} or stamp {stamp}"
        if names != self._names:
            permutation = self._permutation(tuple(names))
            if isinstance(permutation, tuple):
                return permutation
            positions = positions[permutation]
        if stamp <= 0.0:
            return RejectReason.BAD_STAMP, f"stamp {stamp} s: the command's header stamp was never set"
        now = float(state.stamp)
        if stamp > now + self._params.future_tolerance:
            return (
                RejectReason.FUTURE_STAMP,
                f"stamped {stamp - now:.4f} s in the future (tolerance {self._params.future_tolerance} s):"
                " are the policy and the state on the same clock?",
            )
        if now - stamp > self._params.command_timeout:
            return (
                RejectReason.STALE_STAMP,
                f"stamped {now - stamp:.4f} s ago (command_timeout {self._params.command_timeout} s)",
            )
        return positions

    def _permutation(self, names: tuple[str, ...]) -> np.ndarray | tuple[RejectReason, str]:
        cached = self._permutations.get(names)
        if cached is not None:
            return cached
        result: np.ndarray | tuple[RejectReason, str]
        seen: set[str] = set()
        duplicates: set[str] = set()
        for name in names:
            (duplicates if name in seen else seen).add(name)
        unknown = [n for n in names if n not in self._index]
        missing = [n for n in self._names if n not in seen]
        if len(names) != len(self._names) and not (duplicates or unknown or missing):
            result = RejectReason.LENGTH_MISMATCH, f"{len(names)} targets for {len(self._names)} joints"
        elif duplicates:
            result = RejectReason.DUPLICATE_JOINT, f"joint names given twice: {sorted(duplicates)}"
        elif unknown:
            result = RejectReason.UNKNOWN_JOINT, f"joint names the robot does not have: {unknown}"
        elif missing:
            result = RejectReason.MISSING_JOINT, f"no target for joints {missing}"
        else:
            position_of = {n: i for i, n in enumerate(names)}
            result = np.array([position_of[n] for n in self._names], dtype=np.intp)
        if len(self._permutations) >= self._PERMUTATION_CACHE_SIZE:
            self._permutations.clear()  # bounded memory against a stream of garbage name lists
        self._permutations[names] = result
        return result

    def _invalid_state(self, state: FilterState) -> str:
        n = self.limits.n_joints
        q, qd = state.positions, state.velocities
        if getattr(q, "shape", None) != (n,) or getattr(qd, "shape", None) != (n,):
            raise ValueError(
                f"FilterState positions/velocities must be arrays of shape ({n},) in policy order, got "
                f"{np.shape(q)} and {np.shape(qd)}"
            )
        # Norms (np.vdot: one call, inf without a warning on overflow); "<=" is False for NaN. Beyond these
        # magnitudes a reading is a sensor fault, not a robot.
        if not (
            np.vdot(q, q) <= MAX_PLAUSIBLE_POSITION**2
            and np.vdot(qd, qd) <= MAX_PLAUSIBLE_VELOCITY**2
            and math.isfinite(state.stamp)
        ):
            return (
                f"measured joint positions or velocities are not finite or implausible (norm of q above "
                f"{MAX_PLAUSIBLE_POSITION} rad or of q̇ above {MAX_PLAUSIBLE_VELOCITY} rad/s), or the state"
                f" stamp {state.stamp} is not finite"
            )
        return ""

    def _bounds(
        self, q: np.ndarray, qd: np.ndarray, prev: np.ndarray, warning_level: float
    ) -> tuple[np.ndarray, np.ndarray]:
        lo, hi, _ = self._bounds_and_stages(q, qd, prev, warning_level)
        return lo, hi

    def _bounds_and_stages(
        self, q: np.ndarray, qd: np.ndarray, prev: np.ndarray, warning_level: float
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """Clip interval [lo, hi] after priorities, and the raw stage intervals
        (soft lo, soft hi, effort lo, effort hi[, band lo, band hi when warning_level > 0]).

        One-dimensional same-shape numpy calls only: on 21 values numpy's per-call overhead dominates and
        broadcasting (e.g. stacking [lo; hi] into (2, n)) costs several times more per call.
        """
        # 1 + 2: hard limits ∩ velocity/rate from the previous output (prev is within the hard limits).
        lo = np.maximum(prev - self._step, self.limits.lower)
        hi = np.minimum(prev + self._step, self.limits.upper)
        # 3: soft-limit law, toward each soft limit at most a fraction of the remaining distance per period.
        # Written as prev + f·(soft − prev) so that a prev inside the soft range is exactly inside the interval.
        f = self._soft_fraction
        soft_lo = prev + f * (self._soft_lower - prev)
        soft_hi = prev + f * (self._soft_upper - prev)
        if self._soft_always_overlaps:
            # The soft interval always meets [lo, hi] (see _apply): the priority rule is the plain intersection.
            lo, hi = np.maximum(soft_lo, lo), np.minimum(soft_hi, hi)
        else:
            lo, hi = _reconcile(soft_lo, soft_hi, lo, hi)
        # 4: effort, kp·(t − q) − kd·q̇ ∈ ±effort  ⇔  t ∈ q + kd/kp·q̇ ± effort/kp.
        effort_centre = q + self._kd_over_kp * qd
        effort_lo = effort_centre - self._effort_reach
        effort_hi = effort_centre + self._effort_reach
        lo, hi = _reconcile(effort_lo, effort_hi, lo, hi)
        # 5: balance band around the default pose, half-width (upper − lower)·(1 − w).
        if warning_level > 0.0:
            half_width = self._range * (1.0 - warning_level)
            band_lo = self.limits.default_pose - half_width
            band_hi = self.limits.default_pose + half_width
            lo, hi = _reconcile(band_lo, band_hi, lo, hi)
            return lo, hi, (soft_lo, soft_hi, effort_lo, effort_hi, band_lo, band_hi)
        return lo, hi, (soft_lo, soft_hi, effort_lo, effort_hi)

    def _clip(
        self, target: np.ndarray, state: FilterState, prev: np.ndarray, balance: BalanceAssessment
    ) -> FilterResult:
        lo, hi, stages = self._bounds_and_stages(
            state.positions, state.velocities, prev, balance.warning_level
        )
        output = np.minimum(np.maximum(target, lo), hi)
        result = FilterResult(output, True, balance=balance)
        if np.count_nonzero(output != target):
            result.intervened = self._violated_stages(target, output, prev, stages)
        return result

    def _violated_stages(
        self, target: np.ndarray, output: np.ndarray, prev: np.ndarray, stages: tuple[np.ndarray, ...]
    ) -> np.ndarray:
        """Which stage intervals the command lies outside of (diagnostics; only called when it was clipped).

        Checked over the clipped joints in plain Python, each stage stopping at its first violation: cheaper
        than two dozen numpy calls. Same float expressions as the bounds, so "clipped" and "violated" agree.
        """
        clipped = np.flatnonzero(output != target).tolist()
        t, p = target.tolist(), prev.tolist()
        lower, upper, v_step, r_step = self._lists
        s = [stage.tolist() for stage in stages]
        return np.array(
            (
                any(t[i] < max(lower[i], s[0][i]) or t[i] > min(upper[i], s[1][i]) for i in clipped),
                any(t[i] < p[i] - v_step[i] or t[i] > p[i] + v_step[i] for i in clipped),
                any(t[i] < p[i] - r_step[i] or t[i] > p[i] + r_step[i] for i in clipped),
                any(t[i] < s[2][i] or t[i] > s[3][i] for i in clipped),
                len(s) > 4 and any(t[i] < s[4][i] or t[i] > s[5][i] for i in clipped),
            )
        )


class ReferenceKinematics(RobotKinematics):
    """:class:`RobotKinematics` whose ``com_and_sole_centres`` (and the loading it uses) is the pre-optimisation
    code, verbatim. The other queries are inherited."""

    def _load_world(
        self, base_pos: np.ndarray, base_quat_xyzw: np.ndarray, joint_pos: np.ndarray
    ) -> np.ndarray:
        q = self._q_world
        q[0:3] = base_pos
        quat = np.asarray(base_quat_xyzw, dtype=np.float64)
        norm_squared = float(quat.dot(quat))
        if not norm_squared > 1e-18:  # also catches NaN
            raise ValueError(
                f"base quaternion {quat} has no direction; expected a unit quaternion [x, y, z, w]"
            )
        q[3:7] = quat
        if abs(norm_squared - 1.0) > 1e-12:  # pinocchio assumes a unit quaternion
            q[3:7] /= math.sqrt(norm_squared)
        self._set_joints(q, joint_pos)
        return q

    def _load_base(self, joint_pos: np.ndarray) -> np.ndarray:
        self._set_joints(self._q_base, joint_pos)
        return self._q_base

    def _set_joints(self, q: np.ndarray, joint_pos: np.ndarray) -> None:
        joint_pos = np.asarray(joint_pos, dtype=np.float64)
        if joint_pos.shape != (self.n_joints,):
            raise ValueError(
                f"joint_pos has shape {joint_pos.shape}; expected ({self.n_joints},) in policy order "
                f"({self.spec.joint_names[0]}, ...)"
            )
        q[self._q_index] = joint_pos

    def _feet_from_data(self, frame_ids: list[int] | None = None) -> np.ndarray:
        for side, frame_id in enumerate(self._foot_frame_ids if frame_ids is None else frame_ids):
            self._feet[side] = pin.updateFramePlacement(self.model, self.data, frame_id).translation
        return self._feet.copy()

    def com_and_sole_centres(
        self, base_pos: np.ndarray, base_quat_xyzw: np.ndarray, joint_pos: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``com`` and the world positions of the sole centres, (2, 3) left, right: what the shield's support
        polygon is built from. With no sole offset these are the foot positions, bit for bit."""
        q = self._load_world(base_pos, base_quat_xyzw, joint_pos)
        com = pin.centerOfMass(self.model, self.data, q, compute_subtree_coms=False).copy()
        return com, self._feet_from_data(self._sole_frame_ids)
