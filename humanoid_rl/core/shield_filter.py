"""The safety filter: one policy command in, one bounded joint target out (pure numpy, no ROS).

Stages, in this order:

1. **Reject** the whole command (the last safe output stands) when it has NaN/Inf, wrong, missing or duplicate
   joint names, mismatched lengths, a zero or negative stamp, a stamp too far in the future or too old, or
   when the measured state itself is not finite. A command in another joint order with the right names is
   accepted and reordered by name.
2. **Position**: hard URDF limits, and the soft-limit law (the target may approach a soft limit,
   ``soft_margin`` inside the hard one, only at ``soft_limit_gain`` × its distance to it per second).
3. **Velocity**: per period the target moves at most ``max_velocity_scale`` × URDF velocity limit × period.
4. **Rate**: per period the target moves at most ``max_target_rate`` × period (smoothness).
5. **Effort**: the predicted PD effort ``kp·(target − q) − kd·q̇`` stays within ``effort_scale`` × effort
   limit.
6. **Balance**: with a warning level w ∈ [0, 1] from predicted tilt and the capture point, the target must
   lie in a band around the default pose of half-width ``(upper − lower)·(1 − w)``: no constraint at w = 0,
   the default pose itself at w = 1. At the trip level the result asks for DAMPING (the mode machine acts on
   it).

Why intervals, clipped once
---------------------------
Every stage 2–6 is an interval per joint that depends only on the measured state, the previous output and the
parameters, never on the command. The intervals are intersected and the command is clipped once. That gives
the two properties users rely on, by construction:

* **bit-identical pass-through**: a command inside all bounds comes out unchanged (clipping leaves it alone);
* **idempotence**: filtering a filtered command (same state, same previous output) changes nothing, because
  the intervals are the same and clipping a clipped value is the identity.

This is also why the balance stage is a band that shrinks toward the default pose and not a convex blend
``(1 − w)·command + w·default``: a blend moves every command (also safe ones, so no pass-through), and
blending a blended command moves it again (not idempotent). A band is a projection, and projections are
idempotent.

Priority when intervals do not overlap
--------------------------------------
Intervals are applied in priority order; when the next one does not overlap what the higher ones allow, the
target goes to the point of the allowed interval nearest to it (so the lower-priority stage is met as well as
possible):

1. hard position limits, always;
2. velocity and rate, from the previous output (always compatible with 1: the previous output is within
   limits);
3. the soft-limit law;
4. effort;
5. the balance band.

Cost
----
On 21 joints the cost of numpy is its per-call overhead (~0.4 µs), not the arithmetic, so the per-command path
counts calls: the interval ends of all stages come from four calls over long preallocated vectors, a well-formed
command skips the general reject path, and the diagnostics read single values of the few clipped joints. Each
value is still the same float operation on the same operands as in the plain, readable
:mod:`~humanoid_rl.core.shield_reference`, which ``test/test_shield_reference.py`` holds it to, byte for byte,
and which ``humanoid-rl bench shield`` measures alongside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from humanoid_rl.core.shield_params import ShieldParams, validate

if TYPE_CHECKING:
    from humanoid_rl.core.robot_spec import RobotSpec


class RejectReason(Enum):
    """Why a whole command was dropped."""

    NON_FINITE = "non_finite"  # NaN or ±Inf in positions or stamp
    LENGTH_MISMATCH = "length_mismatch"  # positions not one value per name, or not one per joint
    UNKNOWN_JOINT = "unknown_joint"  # a name the robot does not have
    DUPLICATE_JOINT = "duplicate_joint"  # a name given twice
    MISSING_JOINT = "missing_joint"  # a robot joint without a target
    BAD_STAMP = "bad_stamp"  # zero or negative stamp (an unset header)
    FUTURE_STAMP = "future_stamp"  # stamped more than future_tolerance ahead of the state's clock
    STALE_STAMP = "stale_stamp"  # stamped more than command_timeout before the state's clock
    INVALID_STATE = "invalid_state"  # the measured state (positions, velocities, stamp) is not finite


class Stage(Enum):
    """Filter stages that can change a command (index into :attr:`FilterResult.intervened`)."""

    POSITION = 0
    VELOCITY = 1
    RATE = 2
    EFFORT = 3
    BALANCE = 4


STAGES: tuple[Stage, ...] = tuple(Stage)

# Measured values beyond these (norm over the joints) are sensor faults; rejecting them also keeps every bound
# free of overflow.
MAX_PLAUSIBLE_POSITION = 1e3  # rad
MAX_PLAUSIBLE_VELOCITY = 1e4  # rad/s


def _readonly_vector(values: Sequence[float] | np.ndarray, name: str, n: int) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(
            f"JointLimits.{name} has shape {array.shape}, expected ({n},): one value per joint name"
        )
    if not np.isfinite(array).all():
        raise ValueError(
            f"JointLimits.{name} has non-finite values at joints {np.flatnonzero(~np.isfinite(array))}"
        )
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits and gains in policy order (float64, read-only)."""

    joint_names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    default_pose: np.ndarray

    def __post_init__(self) -> None:
        names = tuple(self.joint_names)
        n = len(names)
        if n == 0 or len(set(names)) != n:
            raise ValueError(f"JointLimits.joint_names must be non-empty and unique, got {names}")
        object.__setattr__(self, "joint_names", names)
        for name in ("lower", "upper", "velocity", "effort", "kp", "kd", "default_pose"):
            object.__setattr__(self, name, _readonly_vector(getattr(self, name), name, n))
        problems = []
        for label, bad in (
            ("lower < upper", ~(self.lower < self.upper)),
            ("velocity > 0", ~(self.velocity > 0)),
            ("effort > 0", ~(self.effort > 0)),
            ("kp >= 0", ~(self.kp >= 0)),
            ("kd >= 0", ~(self.kd >= 0)),
            (
                "lower <= default_pose <= upper",
                ~((self.lower <= self.default_pose) & (self.default_pose <= self.upper)),
            ),
        ):
            if bad.any():
                problems.append(f"{label} fails for {[names[i] for i in np.flatnonzero(bad)]}")
        if problems:
            raise ValueError("invalid joint limits: " + "; ".join(problems) + " (fix the URDF / robot YAML)")

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @classmethod
    def from_robot_spec(cls, spec: RobotSpec) -> JointLimits:
        return cls(
            joint_names=tuple(spec.joint_names),
            lower=spec.lower,
            upper=spec.upper,
            velocity=spec.velocity_limits,
            effort=spec.effort_limits,
            kp=spec.kp,
            kd=spec.kd,
            default_pose=spec.default_pose,
        )


@dataclass(frozen=True)
class JointCommand:
    """A name-keyed position command (what a sensor_msgs/JointState on /policy/joint_commands carries).

    ``stamp`` is in seconds on the same clock as the state's stamp.
    """

    stamp: float
    names: tuple[str, ...]
    positions: np.ndarray


@dataclass(frozen=True)
class BalanceState:
    """What balance is judged from. Tilt alone is enough; the capture point is checked when ``com_xy`` is
    given.

    ``tilt``: angle between base z and world z (rad), ``tilt_rate``: its time derivative (rad/s), see
    :func:`tilt_from_imu`. World-frame CoM position/velocity (xy), CoM height above the ground under the feet,
    sole centres ``(2, 3)`` (left, right; world), ``contacts`` ``(2,)`` bool, ``foot_size``: (length x,
    width y) of both soles, or one such pair per sole (left, right), and the base yaw (soles assumed aligned
    with it).
    """

    tilt: float
    tilt_rate: float = 0.0
    com_xy: np.ndarray | None = None
    com_vel_xy: np.ndarray | None = None
    com_height: float = math.nan
    feet: np.ndarray | None = None
    contacts: np.ndarray | None = None
    foot_size: tuple[float, float] | tuple[tuple[float, float], tuple[float, float]] = (0.22, 0.10)
    yaw: float = 0.0


@dataclass(slots=True)
class FilterState:
    """The measured state a command is judged against (policy order). ``stamp``: the state's clock,
    seconds."""

    stamp: float
    positions: np.ndarray
    velocities: np.ndarray
    balance: BalanceState | None = None


class BalanceAssessment(
    NamedTuple
):  # a NamedTuple: immutable and ~10x cheaper to build than a frozen dataclass
    warning_level: float  # 0: fine … 1: trip
    trip: bool
    predicted_tilt: float  # rad
    capture_point: tuple[float, float] | None  # world xy, when evaluated
    capture_point_distance: float  # to the support polygon edge, positive inside; nan when not evaluated
    reason: str  # why it trips (empty below the trip: read predicted_tilt / capture_point_distance)
    data_valid: bool = True  # False: the balance data was not finite/plausible (counts as a trip)


_NO_INTERVENTIONS = np.zeros(len(STAGES), dtype=bool)
_NO_INTERVENTIONS.setflags(write=False)

NO_BALANCE = BalanceAssessment(0.0, False, 0.0, None, math.nan, "")


@dataclass(slots=True)
class FilterResult:
    """``positions`` (policy order, float64) is always finite and within the hard position limits."""

    positions: np.ndarray
    accepted: bool
    reject_reason: RejectReason | None = None
    reject_detail: str = ""
    # bool per Stage; the default is one shared read-only "none" (no allocation per call)
    intervened: np.ndarray = field(default_factory=lambda: _NO_INTERVENTIONS)
    balance: BalanceAssessment = NO_BALANCE

    @property
    def interventions(self) -> tuple[Stage, ...]:
        """Stages whose interval the command violated (so the output differs from the command)."""
        return tuple(s for s in STAGES if self.intervened[s.value])

    @property
    def warning_level(self) -> float:
        return self.balance.warning_level

    @property
    def request_damping(self) -> bool:
        return self.balance.trip


def tilt_from_imu(
    quat_xyzw: Sequence[float] | np.ndarray, ang_vel_body: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """(tilt, tilt_rate) from an IMU orientation (xyzw, base→world) and body-frame angular velocity.

    tilt = angle between the base z axis and world z; tilt_rate = d(tilt)/dt (positive: tilting further).
    At zero tilt the rate is |ω_xy| (tilt can only grow from there).
    """
    x, y, z, w = (float(v) for v in quat_xyzw)
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(norm) or norm < 1e-9:
        return math.nan, math.nan
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    # World up expressed in the body frame = third row of R(q).
    up_x, up_y, up_z = 2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)
    tilt = math.acos(max(-1.0, min(1.0, up_z)))
    wx, wy = float(ang_vel_body[0]), float(ang_vel_body[1])
    sin_tilt = math.hypot(up_x, up_y)
    rate = math.hypot(wx, wy) if sin_tilt < 1e-9 else (up_y * wx - up_x * wy) / sin_tilt
    return tilt, rate


# Support-function directions in the feet's (yaw) frame: the rectangles' edge normals and 12 more, so that the
# distance of a point outside the polygon is underestimated by at most 1 − cos(π/16) ≈ 2 %. Plain floats:
# for 16 directions a Python loop is faster than numpy's per-call overhead.
_DIRECTIONS = tuple(
    (
        math.cos(k * math.pi / 8),
        math.sin(k * math.pi / 8),
        abs(math.cos(k * math.pi / 8)),
        abs(math.sin(k * math.pi / 8)),
    )
    for k in range(16)
)
_PLAUSIBLE_COORDINATE = 1e6  # m or m/s: beyond this, balance data is garbage (and products could overflow)
_XY, _FEET = (2,), (2, 3)
_FLOAT64 = np.dtype(np.float64)  # the shapes of com_xy, com_vel_xy, contacts and of feet


def support_polygon_distance(
    point_xy: Sequence[float] | np.ndarray,
    feet_xy: Sequence[Sequence[float]] | np.ndarray,
    contacts: Sequence[bool] | np.ndarray,
    foot_size: tuple[float, float] | tuple[tuple[float, float], tuple[float, float]],
    yaw: float,
) -> float:
    """Signed distance from ``point_xy`` to the edge of the support polygon (positive inside, metres).

    The polygon is the convex hull of the sole rectangles (``foot_size`` = length x, width y of both soles, or
    one pair per sole; centred on each sole centre's xy, aligned with ``yaw``) of the feet in contact; of both
    feet when none is in contact (a flight phase or a robot on a gantry is not a fall). Computed with the
    support function h(n) = max over the hull of n·x, as min over directions n of h(n) − n·point: exact
    inside (all hull edge normals are among the directions); outside, a lower bound within 2 % of the true
    distance.
    """
    feet = [(float(f[0]), float(f[1])) for f in feet_xy]
    touching = [bool(c) for c in contacts]
    (l1, w1), (l2, w2) = _per_sole(foot_size)
    return _support_distance(
        float(point_xy[0]), float(point_xy[1]), feet, touching, float(l1), float(w1), yaw, float(l2), float(w2)
    )


def _per_sole(
    foot_size: tuple[float, float] | tuple[tuple[float, float], tuple[float, float]],
) -> tuple[tuple[float, float], tuple[float, float]]:
    """One (length, width) per sole, left then right."""
    first = foot_size[0]
    if isinstance(first, (tuple, list, np.ndarray)):
        return foot_size  # type: ignore[return-value]
    return foot_size, foot_size  # type: ignore[return-value]


# The four corner types (sign of x, sign of y) of a rectangle aligned with the feet's frame.
_CORNERS = ((1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0))


def _support_distance(
    px: float,
    py: float,
    feet: list[tuple[float, float]] | tuple[list[float], list[float]],
    contacts: list[bool],
    length: float,
    width: float,
    yaw: float,
    length_2: float | None = None,
    width_2: float | None = None,
) -> float:
    """:func:`support_polygon_distance` on plain floats (the hot path). ``length``/``width``: the left sole's
    (both soles' when ``length_2``/``width_2`` are None), ``length_2``/``width_2``: the right sole's."""
    if length_2 is None or width_2 is None:
        length_2, width_2 = length, width
    if contacts[0] and not contacts[1]:
        (fx, fy), (gx, gy), two = feet[0][:2], feet[0][:2], False
        length_2, width_2 = length, width
    elif contacts[1] and not contacts[0]:
        (fx, fy), (gx, gy), two = feet[1][:2], feet[1][:2], False
        length, width = length_2, width_2
    else:
        (fx, fy), (gx, gy), two = feet[0][:2], feet[1][:2], True
    c, s = math.cos(yaw), math.sin(yaw)
    # First foot centre relative to the point, and the second relative to the first, in the feet's frame.
    ex, ey = c * (fx - px) + s * (fy - py), -s * (fx - px) + c * (fy - py)
    dx = dy = 0.0
    if two:
        dx, dy = c * (gx - fx) + s * (gy - fy), -s * (gx - fx) + c * (gy - fy)
    half_length, half_width = 0.5 * length, 0.5 * width
    if length_2 == length and width_2 == width:
        # Equal soles. h(n) − n·p = n·e + max(0, n·d) + (corner reach of one sole along n). First the hull's own
        # edge normals (±x, ±y of the soles, ± the normal of the edges bridging the feet): exact inside.
        distance = min(
            ex + (dx if dx > 0.0 else 0.0) + half_length,
            -ex + (-dx if dx < 0.0 else 0.0) + half_length,
            ey + (dy if dy > 0.0 else 0.0) + half_width,
            -ey + (-dy if dy < 0.0 else 0.0) + half_width,
        )
        span = math.hypot(dx, dy)
        if span > 1e-9:
            nx, ny = -dy / span, dx / span  # both centres have the same n·c along the bridging edges
            along = nx * ex + ny * ey
            reach = half_length * abs(nx) + half_width * abs(ny)
            distance = min(distance, along + reach, -along + reach)
        half_length_2, half_width_2 = half_length, half_width
    else:
        distance, half_length_2, half_width_2 = _unequal_soles_inside(
            ex, ey, ex + dx, ey + dy, half_length, half_width, 0.5 * length_2, 0.5 * width_2
        )
    if distance < 0.0:
        # Outside: more directions tighten the lower bound on the distance to within 2 %.
        hx, hy = ex + dx, ey + dy
        for ux, uy, ax, ay in _DIRECTIONS:
            value = ux * ex + uy * ey + half_length * ax + half_width * ay
            value_2 = ux * hx + uy * hy + half_length_2 * ax + half_width_2 * ay
            if value_2 > value:
                value = value_2
            if value < distance:
                distance = value
    return distance


def _unequal_soles_inside(
    ex: float, ey: float, hx: float, hy: float, a1: float, b1: float, a2: float, b2: float
) -> tuple[float, float, float]:
    """Edge-normal part of :func:`_support_distance` for soles of different sizes (half sizes a, b), centred at
    e and h relative to the point. A bridging edge of the hull touches both soles at the same corner type (a
    supporting line's normal picks the corner by its signs), so the four same-type corner pairs give every
    bridge. Returns (distance, a2, b2)."""
    distance = min(
        max(ex + a1, hx + a2), max(-ex + a1, -hx + a2), max(ey + b1, hy + b2), max(-ey + b1, -hy + b2)
    )
    for sx, sy in _CORNERS:
        cx, cy = ex + sx * a1, ey + sy * b1  # that corner of each sole, relative to the point
        kx, ky = hx + sx * a2, hy + sy * b2
        span = math.hypot(kx - cx, ky - cy)
        if span <= 1e-9:
            continue
        nx, ny = -(ky - cy) / span, (kx - cx) / span
        if nx * sx < 0.0 or ny * sy < 0.0:
            nx, ny = -nx, -ny
        if nx * sx >= -1e-12 and ny * sy >= -1e-12:  # a supporting line at this corner type: a hull edge
            value = nx * cx + ny * cy
            if value < distance:
                distance = value
    return distance, a2, b2


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


class SafetyFilter:
    """Bounds commands against limits, smoothness, effort and balance. See the module docstring.

    Per command it reuses preallocated scratch vectors (see :meth:`_prepare_buffers`), so one instance is fast
    but not thread-safe: give each thread its own, as with :class:`~humanoid_rl.core.kinematics.RobotKinematics`.
    What it returns never aliases them. :class:`~humanoid_rl.core.shield_reference.ReferenceSafetyFilter` is
    the plain version it is tested against, bit for bit.
    """

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
        self._prepare_buffers()
        # The soft interval contains prev when prev is inside the soft range; beyond it (by at most the soft
        # margin, since prev is within the hard limits) it asks for a step back of at most f·margin. When that
        # stays well below the velocity/rate step (factor 2: no float-rounding edge), the soft interval always
        # overlaps hard ∩ rate.
        self._soft_always_overlaps = bool(2.0 * self._soft_fraction * params.soft_margin < self._step.min())

    def _prepare_buffers(self) -> None:
        """Constants and scratch vectors of :meth:`_bounds_and_stages`, laid out so that the interval ends of every
        stage come from four numpy calls over long vectors instead of fourteen over n values (on 21 values the
        per-call overhead is the cost, not the arithmetic). Each end is still computed by the same float
        operation on the same operands as one by one (x − (−y) is x + y exactly, (−a)·b is −(a·b)), so results
        are bit-identical to the reference. The views below are made once; nothing returned aliases them.

        Per call (n joints, [a | b] a concatenation):

        * ``_diff[:2n] = [soft lower | soft upper] − [prev | prev]``
        * ``_products = [range | −range | diff | q̇] · [1−w | 1−w | f | f | kd/kp] = [h | −h | f·diff | kd/kp·q̇]``
        * ``_values[:3n] = [prev | prev | q] + [f·diff | kd/kp·q̇] = [soft lo | soft hi | effort centre]``
        * ``_ends = [centre | centre | prev | prev | default | default] − [reach | −reach | step | −step | h | −h]``
          ``= [effort lo | effort hi | prev − step | prev + step | band lo | band hi]``
        """
        lim, n = self.limits, self.limits.n_joints
        self._n, self._shape = n, (n,)
        self._soft2 = np.concatenate((self._soft_lower, self._soft_upper))
        # [prev | prev | q]: the operands that are the measured state and the previous output.
        self._inputs = np.empty(3 * n)
        self._input_views = (self._inputs[:n], self._inputs[n : 2 * n], self._inputs[2 * n :])
        self._inputs_prev2 = self._inputs[: 2 * n]
        # [range | −range | soft − prev (2n) | q̇] · [1 − w | 1 − w | f (2n) | kd/kp]
        self._factors = np.concatenate((self._range, -self._range, np.empty(3 * n)))
        self._factor_diff, self._factor_qd = self._factors[2 * n : 4 * n], self._factors[4 * n :]
        self._coefficients = np.concatenate(
            (np.ones(2 * n), np.full(2 * n, self._soft_fraction), self._kd_over_kp)
        )
        self._coefficient_band = self._coefficients[: 2 * n]
        # [reach | −reach | step | −step | h | −h | f·diff (2n) | kd/kp·q̇]: what _ends subtracts, then the addends.
        self._subtrahends = np.concatenate(
            (self._effort_reach, -self._effort_reach, self._step, -self._step, np.empty(5 * n))
        )
        self._products = self._subtrahends[4 * n :]
        self._subtrahend = self._subtrahends[: 6 * n]
        self._addends = self._subtrahends[6 * n :]
        # [soft lo | soft hi | centre | centre | prev | prev | default | default]
        self._values = np.concatenate((np.empty(6 * n), lim.default_pose, lim.default_pose))
        self._values_sum = self._values[: 3 * n]
        self._centre, self._centre_copy = self._values[2 * n : 3 * n], self._values[3 * n : 4 * n]
        self._values_prev = (self._values[4 * n : 5 * n], self._values[5 * n : 6 * n])
        self._minuend = self._values[2 * n :]
        self._soft_lo, self._soft_hi = self._values[:n], self._values[n : 2 * n]
        self._ends = np.empty(6 * n)
        self._end_views = tuple(self._ends[i * n : (i + 1) * n] for i in range(6))

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
        fast = self._filter_well_formed(command, state, previous_output, assessment)
        if fast is not None:
            return fast
        prev = self.safe_previous(previous_output, state.positions)
        balance = assessment if assessment is not None else self._assess(state.balance)
        target = self._command_in_policy_order(command, state)
        if isinstance(target, tuple):
            return FilterResult(prev, False, target[0], target[1], balance=balance)
        invalid = self._invalid_state(state)
        if invalid:
            return FilterResult(prev, False, RejectReason.INVALID_STATE, invalid, balance=balance)
        return self._clip(target, state, prev, balance)

    def _filter_well_formed(
        self,
        command: JointCommand,
        state: FilterState,
        previous_output: np.ndarray,
        assessment: BalanceAssessment | None,
    ) -> FilterResult | None:
        """:meth:`filter` for the usual case, with fewer checks: float64 arrays of the right shape, the names in
        policy order, float stamps, everything finite and in time, so nothing is rejected and the previous output
        needs no repair. None when any of that does not hold: then filter() takes the general path, which gives
        the reasons in its order. The result is the general path's, bit for bit."""
        positions, q, qd = command.positions, state.positions, state.velocities
        stamp, now = command.stamp, state.stamp
        shape = self._shape
        if not (
            type(previous_output) is np.ndarray
            and type(positions) is np.ndarray
            and type(q) is np.ndarray
            and type(qd) is np.ndarray
            and type(stamp) is float
            and type(now) is float
            and previous_output.shape == shape
            and positions.shape == shape
            and q.shape == shape
            and qd.shape == shape
            and previous_output.dtype == _FLOAT64
            and positions.dtype == _FLOAT64
            and command.names == self._names
            # A finite dot product proves both vectors finite (any NaN/Inf entry makes it NaN or Inf); a
            # finite-but-huge one overflowing to Inf only sends the command down the general path.
            and math.isfinite(np.vdot(previous_output, positions))
            and 0.0 < stamp <= now + self._params.future_tolerance
            and not now - stamp > self._params.command_timeout
            and math.isfinite(now)
            and np.vdot(q, q) <= MAX_PLAUSIBLE_POSITION**2
            and np.vdot(qd, qd) <= MAX_PLAUSIBLE_VELOCITY**2
        ):
            return None
        prev = np.minimum(np.maximum(previous_output, self.limits.lower), self.limits.upper)
        balance = assessment if assessment is not None else self._assess(state.balance)
        return self._clip(positions, state, prev, balance)

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
        com_xy, com_vel_xy, feet, contacts_in = balance.com_xy, balance.com_vel_xy, balance.feet, balance.contacts
        if (
            type(com_xy) is np.ndarray
            and type(com_vel_xy) is np.ndarray
            and type(feet) is np.ndarray
            and type(contacts_in) is np.ndarray
            and com_xy.shape == _XY
            and com_vel_xy.shape == _XY
            and feet.shape == _FEET
            and contacts_in.shape == _XY
            and contacts_in.dtype == np.bool_
        ):
            # What the node passes: one tolist() each gives the same Python values as the general path below.
            cx, cy = com_xy.tolist()
            vx, vy = com_vel_xy.tolist()
            left, right = feet.tolist()
            contacts = contacts_in.tolist()
        else:
            cx, cy = _floats(com_xy)
            vx, vy = _floats(com_vel_xy)
            left, right = (_floats(foot) for foot in feet)  # type: ignore[union-attr]
            contacts = [bool(v) for v in contacts_in]  # type: ignore[union-attr]
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
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """Clip interval [lo, hi] after priorities, and whether the balance band applies; the raw stage
        intervals are left in ``_values`` and ``_ends`` (see :meth:`_prepare_buffers`) for the diagnostics.

        One-dimensional same-shape numpy calls only: on 21 values numpy's per-call overhead dominates and
        broadcasting (e.g. stacking [lo; hi] into (2, n)) costs several times more per call.
        """
        prev_a, prev_b, q_view = self._input_views
        prev_a[...] = prev
        prev_b[...] = prev
        q_view[...] = q
        for view in self._values_prev:
            view[...] = prev
        self._factor_qd[...] = qd
        with_band = warning_level > 0.0
        if with_band:
            self._coefficient_band.fill(1.0 - warning_level)
        np.subtract(self._soft2, self._inputs_prev2, out=self._factor_diff)
        np.multiply(self._factors, self._coefficients, out=self._products)
        np.add(self._inputs, self._addends, out=self._values_sum)
        self._centre_copy[...] = self._centre
        np.subtract(self._minuend, self._subtrahend, out=self._ends)
        effort_lo, effort_hi, step_lo, step_hi, band_lo, band_hi = self._end_views
        # 1 + 2: hard limits ∩ velocity/rate from the previous output (prev is within the hard limits).
        lo = np.maximum(step_lo, self.limits.lower)
        hi = np.minimum(step_hi, self.limits.upper)
        # 3: soft-limit law, toward each soft limit at most a fraction of the remaining distance per period.
        # Written as prev + f·(soft − prev) so that a prev inside the soft range is exactly inside the interval.
        if self._soft_always_overlaps:
            # The soft interval always meets [lo, hi] (see _apply): the priority rule is the plain intersection.
            lo, hi = np.maximum(self._soft_lo, lo), np.minimum(self._soft_hi, hi)
        else:
            lo, hi = _reconcile(self._soft_lo, self._soft_hi, lo, hi)
        # 4: effort, kp·(t − q) − kd·q̇ ∈ ±effort  ⇔  t ∈ q + kd/kp·q̇ ± effort/kp.
        lo, hi = _reconcile(effort_lo, effort_hi, lo, hi)
        # 5: balance band around the default pose, half-width (upper − lower)·(1 − w).
        if with_band:
            lo, hi = _reconcile(band_lo, band_hi, lo, hi)
        return lo, hi, with_band

    def _clip(
        self, target: np.ndarray, state: FilterState, prev: np.ndarray, balance: BalanceAssessment
    ) -> FilterResult:
        lo, hi, with_band = self._bounds_and_stages(
            state.positions, state.velocities, prev, balance.warning_level
        )
        output = np.minimum(np.maximum(target, lo), hi)
        result = FilterResult(output, True, balance=balance)
        changed = output != target
        if np.count_nonzero(changed):
            result.intervened = self._violated_stages(target, changed, with_band)
        return result

    def _violated_stages(self, target: np.ndarray, changed: np.ndarray, with_band: bool) -> np.ndarray:
        """Which stage intervals the command lies outside of (diagnostics; only called when it was clipped).

        One pass in plain Python over the clipped joints (usually a few), reading single values with item(), a
        stage no longer checked once it is found violated: no per-call arrays or list conversions. The stage
        intervals are the ones _bounds_and_stages just computed, so "clipped" and "violated" agree. Returns one
        of the shared read-only arrays of _INTERVENED.
        """
        n = self._n
        target_at, value_at, end_at = target.item, self._values.item, self._ends.item
        lower, upper, v_step, r_step = self._lists
        # Offsets: prev in _values; effort hi, band lo, band hi in _ends (soft lo/hi and effort lo: 0, n, 0).
        prev_at, effort_hi_at, band_lo_at, band_hi_at = 4 * n, n, 4 * n, 5 * n
        found = 0 if with_band else _BALANCE_BIT  # bits of Stage values; balance counts as done without a band
        for i in changed.nonzero()[0].tolist():
            ti = target_at(i)
            pi = value_at(prev_at + i)
            if not found & _POSITION_BIT:
                low, high = lower[i], upper[i]
                soft_low, soft_high = value_at(i), value_at(n + i)
                if soft_low > low:
                    low = soft_low
                if soft_high < high:
                    high = soft_high
                if ti < low or ti > high:
                    found |= _POSITION_BIT
            if not found & _VELOCITY_BIT and (ti < pi - v_step[i] or ti > pi + v_step[i]):
                found |= _VELOCITY_BIT
            if not found & _RATE_BIT and (ti < pi - r_step[i] or ti > pi + r_step[i]):
                found |= _RATE_BIT
            if not found & _EFFORT_BIT and (ti < end_at(i) or ti > end_at(effort_hi_at + i)):
                found |= _EFFORT_BIT
            if not found & _BALANCE_BIT and (ti < end_at(band_lo_at + i) or ti > end_at(band_hi_at + i)):
                found |= _BALANCE_BIT
            if found == _ALL_BITS:
                break
        return _INTERVENED[found if with_band else found & ~_BALANCE_BIT]


_POSITION_BIT, _VELOCITY_BIT, _RATE_BIT, _EFFORT_BIT, _BALANCE_BIT = (1 << stage.value for stage in STAGES)
_ALL_BITS = (1 << len(STAGES)) - 1


def _intervened(bits: int) -> np.ndarray:
    array = np.array([bool(bits >> stage.value & 1) for stage in STAGES])
    array.setflags(write=False)
    return array


# FilterResult.intervened for each set of violated stages (bit Stage.value), shared and read-only.
_INTERVENED = tuple(_intervened(bits) for bits in range(1 << len(STAGES)))
