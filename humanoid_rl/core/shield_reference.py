"""The readable specification of the safety shield's per-command computation, kept verbatim.

:class:`ReferenceSafetyFilter` is :class:`~humanoid_rl.core.shield_filter.SafetyFilter` and
:class:`ReferenceKinematics` is :meth:`~humanoid_rl.core.kinematics.RobotKinematics.com_and_sole_centres` as they
were before they were optimised for speed (commit 1829f5f). They are what the optimised code is tested against
(``test/test_shield_reference.py``: outputs, interventions and reject reasons bit-identical, kinematics equal) and
the baseline that ``humanoid-rl bench shield`` measures in the same run. Nothing in the running stack uses them.

Change the behaviour here first, then make the optimised code agree: the equivalence test says where it does not.
Both are subclasses that override only the methods the optimisation changed (with their code as it was); the
rest, the data types and the helpers are the optimised module's own, so nothing else exists twice.
"""

from __future__ import annotations

import math

import numpy as np
import pinocchio as pin

from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.shield_filter import (
    _PLAUSIBLE_COORDINATE,
    BalanceAssessment,
    BalanceState,
    FilterResult,
    FilterState,
    JointCommand,
    RejectReason,
    SafetyFilter,
    ShieldParams,
    _floats,
    _per_sole,
    _reconcile,
    _support_distance,
)

__all__ = ["ReferenceKinematics", "ReferenceSafetyFilter"]


class ReferenceSafetyFilter(SafetyFilter):
    """:class:`SafetyFilter` with the methods the optimisation changed as they were before it."""

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
    code. The other queries are inherited."""

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

    def com_and_sole_centres(
        self, base_pos: np.ndarray, base_quat_xyzw: np.ndarray, joint_pos: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``com`` and the world positions of the sole centres, (2, 3) left, right: what the shield's support
        polygon is built from. With no sole offset these are the foot positions, bit for bit."""
        q = self._load_world(base_pos, base_quat_xyzw, joint_pos)
        com = pin.centerOfMass(self.model, self.data, q, compute_subtree_coms=False).copy()
        return com, self._feet_from_data(self._sole_frame_ids)
