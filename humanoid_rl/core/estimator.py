"""Legged-robot state estimator: IMU + stance-leg kinematics in a linear Kalman filter.

The filter follows the usual legged-robot design (Bloesch et al., RSS 2012; the MIT Cheetah estimator):

* state ``x = [p (3), v (3), p_left_foot (3), p_right_foot (3)]``, all in the world frame, where a "foot" is
  its stance point: the part of the sole that touches the ground (see ``EstimatorParams.stance_point``);
* orientation ``R`` is not a filter state: it comes from the IMU's own fused quaternion. A Mahony-style
  complementary filter on gyro and quaternion estimates the gyro bias (which would otherwise bias the leg
  velocity measurement) and can optionally smooth the orientation (``EstimatorParams``);
* predict with the IMU specific force as the input: ``a = R f + g``, ``p += v dt + a dt²/2``, ``v += a dt``;
  feet are constant, with process noise that is small while a foot is in stance and huge while it swings, so
  a swinging foot simply follows its kinematic measurement and a stance foot anchors the base;
* measurements (one fixed-size stack, rows of swing feet switched off where they would lie):
  - ``p_foot - p = R fk_foot(q)`` for both feet (larger noise in swing),
  - ``p_foot_z = ground_height + stance point height`` for stance feet,
  - ``v = -R (J_foot(q) q̇ + ω × fk_foot(q))`` for stance feet.

The stance point matters: a foot that rolls onto an edge of its sole (heel, toe, side) pivots about that edge,
and its link frame (at the ankle) moves while it carries the robot. Anchoring the ankle made a walking robot's
velocity wrong by the ankle's speed (0.1-0.2 m/s) and its height by the lift of a tilted ankle.

Matrices are numpy, preallocated, and the measurement matrix is constant (contacts only change noise and which
rows are switched off), so an update is a handful of small matrix products. 3-vectors (stance points, leg
velocities, the world acceleration) are plain floats: numpy's per-call cost is most of what such small
arithmetic costs, and it dominated the update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from humanoid_rl.core.contact_detector import ContactDetector
from humanoid_rl.core.estimator_params import BEFORE_SOLE, STANCE_POINTS, EstimatorInputError, EstimatorParams
from humanoid_rl.core.orientation_filter import (
    Quat,
    Vec3,
    normalised,
    orientation_filter_step,
    rotation_matrix_into,
)
from humanoid_rl.core.soles import rpy_matrix

# BEFORE_SOLE, STANCE_POINTS, ContactDetector, EstimatorInputError and EstimatorParams live in their own modules
# (estimator_params, contact_detector) and are re-exported here for the importers that know them from this one.
__all__ = [
    "BEFORE_SOLE",
    "STANCE_POINTS",
    "ContactDetector",
    "EstimatorInputError",
    "EstimatorOutput",
    "EstimatorParams",
    "LeggedStateEstimator",
]

if TYPE_CHECKING:
    from humanoid_rl.core.kinematics import RobotKinematics
    from humanoid_rl.core.robot_spec import RobotSpec

FloatArray = NDArray[np.float64]

STATE_SIZE = 12
# Slices of the state vector.
POSITION = slice(0, 3)
VELOCITY = slice(3, 6)
LEFT_FOOT = slice(6, 9)
RIGHT_FOOT = slice(9, 12)
FOOT_SLICES = (LEFT_FOOT, RIGHT_FOOT)
# Rows of the stacked measurement: foot-relative positions (2 x 3), base velocity from each stance leg
# (2 x 3), stance-foot heights (2).
MEASUREMENT_SIZE = 14
_REL_ROWS = (slice(0, 3), slice(3, 6))
_VEL_ROWS = (slice(6, 9), slice(9, 12))
_HEIGHT_ROWS = (12, 13)
_DT_TOLERANCE_S = 1e-9  # dt within this of the previous one reuses the discretised model
_ZERO3: Vec3 = (0.0, 0.0, 0.0)


@dataclass
class EstimatorOutput:
    """One estimate. Arrays are fresh copies: keep them as long as you like."""

    time_s: float
    position: FloatArray  # world (3,)
    orientation_xyzw: FloatArray  # (4,)
    linear_velocity_world: FloatArray  # (3,)
    linear_velocity_body: FloatArray  # (3,)
    angular_velocity_body: FloatArray  # (3,)
    height: float  # base height above the ground plane, m
    contacts: NDArray[np.bool_]  # (2,) left, right
    covariance_diag: FloatArray  # (12,) variances of [p, v, p_left_foot, p_right_foot]
    foot_positions: FloatArray  # world (2, 3), left, right: the feet's stance points (EstimatorParams.stance_point)
    gyro_bias: FloatArray  # (3,) rad/s, the estimate subtracted from the gyro
    valid: bool = True  # False while no foot has been in contact for longer than max_flight_s
    no_contact_s: float = 0.0  # how long no foot has been in contact


class LeggedStateEstimator:
    """Base position, velocity and orientation of a biped from IMU, joint encoders and foot forces.

    ``update`` takes one synchronised sample and returns an ``EstimatorOutput``. The first sample (after
    construction or ``reset``) initialises the state: feet from kinematics, base height such that the stance
    feet stand on the ground, horizontal position from ``reset(position=...)`` or zero.

    Assumes the IMU frame has the base link's orientation (true for the shipped humanoid: ``imu_joint`` is an
    identity transform at the pelvis origin).
    """

    def __init__(self, spec: RobotSpec, kinematics: RobotKinematics, params: EstimatorParams | None = None) -> None:
        self.spec = spec
        self.kinematics = kinematics
        self.params = params if params is not None else EstimatorParams()
        p = self.params
        self.n_joints = int(spec.n_joints)

        weight_n = float(kinematics.total_mass) * p.gravity
        self.contact_detector = ContactDetector(
            on_threshold_n=p.contact_on_weight_fraction * weight_n,
            off_threshold_n=p.contact_off_weight_fraction * weight_n,
        )
        if p.foot_frame_height is not None:
            self.foot_frame_height = float(p.foot_frame_height)
        else:
            feet_default = np.asarray(kinematics.foot_positions_in_base(np.asarray(spec.default_pose)), dtype=float)
            self.foot_frame_height = float(spec.nominal_base_height + feet_default[:, 2].mean())
        self._gravity_world = np.array([0.0, 0.0, -p.gravity])
        # The stance point's height above the ground: 0 on the sole (up to how the foot frame height was
        # derived or given), the foot frame height itself without soles.
        self._sole_corners: FloatArray | None = None
        self.stance_point_height = self.foot_frame_height
        if p.stance_point == "sole":
            self._sole_corners = np.asarray(kinematics.sole_corners_in_foot, dtype=np.float64)
            _, default_rotations, _ = kinematics.foot_frames_in_base(np.asarray(spec.default_pose))
            base_level = rpy_matrix(spec.base_orientation_rpy)  # base axes -> upright
            depths = [(base_level @ rot @ self._sole_corners[i].T)[2].mean() for i, rot in enumerate(default_rotations)]
            self.stance_point_height = self.foot_frame_height + float(np.mean(depths))
        # The corners as float tuples for the per-update stance point (2 feet x 4 corners: too small for numpy).
        self._sole_corner_tuples: tuple[tuple[Vec3, ...], ...] | None = None
        if self._sole_corners is not None:
            self._sole_corner_tuples = tuple(tuple(map(tuple, foot)) for foot in self._sole_corners.tolist())

        # Constant measurement matrix: relative foot positions, stance foot heights, base velocity (twice).
        h = np.zeros((MEASUREMENT_SIZE, STATE_SIZE))
        for rows, foot in zip(_REL_ROWS, FOOT_SLICES, strict=True):
            h[rows, POSITION] = -np.eye(3)
            h[rows, foot] = np.eye(3)
        h[_HEIGHT_ROWS[0], LEFT_FOOT.start + 2] = 1.0
        h[_HEIGHT_ROWS[1], RIGHT_FOOT.start + 2] = 1.0
        for rows in _VEL_ROWS:
            h[rows, VELOCITY] = -np.eye(3)  # the legs measure -v (saves a negation per update)

        # Everything that depends only on the contact pattern, tabulated for the 4 patterns (2*left + right):
        # process noise per second, measurement variances, and H with the unused rows zeroed. A zeroed row
        # with unit variance gives an exactly zero Kalman gain row: the measurement is skipped, at fixed size.
        self._q_rate: list[FloatArray] = []
        self._r_matrix: list[FloatArray] = []
        self._h: list[FloatArray] = []
        self._h_t: list[FloatArray] = []
        for pattern in range(4):
            contacts = (bool(pattern & 2), bool(pattern & 1))
            q_rate = np.empty(STATE_SIZE)
            q_rate[POSITION] = p.position_noise_density**2
            q_rate[VELOCITY] = p.accel_noise_density**2
            r_diag = np.ones(MEASUREMENT_SIZE)
            active = np.ones(MEASUREMENT_SIZE)
            for i, in_contact in enumerate(contacts):
                density = p.stance_foot_noise_density if in_contact else p.swing_foot_noise_density
                q_rate[FOOT_SLICES[i]] = density**2
                r_diag[_REL_ROWS[i]] = (p.stance_foot_position_std if in_contact else p.swing_foot_position_std) ** 2
                if in_contact and p.use_foot_height_measurement:
                    r_diag[_HEIGHT_ROWS[i]] = p.foot_height_std**2
                else:
                    active[_HEIGHT_ROWS[i]] = 0.0
                if in_contact and p.use_foot_velocity_measurement:
                    r_diag[_VEL_ROWS[i]] = p.foot_velocity_std**2
                else:
                    active[_VEL_ROWS[i]] = 0.0
            h_pattern = h * active[:, None]
            self._q_rate.append(q_rate)
            self._r_matrix.append(np.diag(r_diag))
            self._h.append(h_pattern)
            self._h_t.append(np.ascontiguousarray(h_pattern.T))

        # Discretised model for the current dt (recomputed only when dt changes).
        self._dt = -1.0
        self._f = np.eye(STATE_SIZE)
        self._f_t = np.eye(STATE_SIZE)
        self._f_and_b = np.hstack([np.eye(STATE_SIZE), np.zeros((STATE_SIZE, 3))])  # [F | B]: x' = F x + B a
        self._q_discrete: list[FloatArray | None] = [None] * 4

        # Preallocated work arrays.
        # The state lives in the first 12 entries of a 15-vector whose last 3 take the world acceleration, so the
        # prediction is one product [F | B] @ [x; a].
        self._x_and_acc = np.zeros(STATE_SIZE + 3)
        self._x_and_acc_work = np.zeros(STATE_SIZE + 3)
        self._x = self._x_and_acc[:STATE_SIZE]
        self._x_work = self._x_and_acc_work[:STATE_SIZE]
        self._cov = np.zeros((STATE_SIZE, STATE_SIZE))
        self._cov_work = np.zeros((STATE_SIZE, STATE_SIZE))
        self._cov_spare = np.zeros((STATE_SIZE, STATE_SIZE))
        self._z = np.zeros(MEASUREMENT_SIZE)
        self._z[_HEIGHT_ROWS[0]] = self._z[_HEIGHT_ROWS[1]] = p.ground_height + self.stance_point_height
        self._rot = np.eye(3)
        self._rot_work = np.eye(3)
        self._stance_points_in_foot: list[Vec3] = [_ZERO3, _ZERO3]  # committed: the sole points the foot states track
        self._foot_shift = np.zeros(6)  # world displacement of each foot's stance point on its sole, left then right

        # Orientation filter gains (see EstimatorParams): with the output taken from the IMU quaternion, the
        # filter only serves the bias estimate and runs critically damped with bias_time_constant / 2.
        bias_tau = p.gyro_bias_time_constant_s
        reference_tau = p.orientation_time_constant_s if p.orientation_time_constant_s > 0.0 else bias_tau / 4.0
        self._run_orientation_filter = reference_tau > 0.0
        self._correction_gain = 1.0 / reference_tau if reference_tau > 0.0 else 0.0
        self._bias_gain = 1.0 / (reference_tau * bias_tau) if bias_tau > 0.0 else 0.0
        self._input_buffer = np.empty(4 + 3 + 3 + 2 * self.n_joints + 2)

        self.samples_rejected = 0
        """Samples refused with EstimatorInputError (NaN/inf/shape, or an update that would go non-finite)."""
        self.samples_out_of_order = 0
        """Samples whose time was not after the previous one (ignored)."""
        self.gaps_clamped = 0
        """Updates whose dt exceeded params.max_dt_s."""
        self.lost_footing_updates = 0
        """Updates made while no foot had been in contact for longer than params.max_flight_s."""
        self.slip_gated_updates = 0
        """Stance-leg velocity measurements down-weighted by params.slip_gate_chi2."""
        self.reset()

    # ------------------------------------------------------------------ public API
    @property
    def initialised(self) -> bool:
        return self._initialised

    @property
    def last_output(self) -> EstimatorOutput | None:
        return self._last_output

    def reset(
        self,
        position: ArrayLike | None = None,
        velocity: ArrayLike | None = None,
    ) -> None:
        """Forget everything; the next ``update`` re-initialises from its sample.

        ``position`` (world, (3,)) fixes the initial base position exactly (e.g. a known start pose); without
        it the base starts at x = y = 0 with its height from the stance-leg kinematics. ``velocity`` defaults
        to 0.
        """
        self._init_position = None if position is None else self._checked_vector("position", position, 3).copy()
        self._init_velocity = np.zeros(3) if velocity is None else self._checked_vector("velocity", velocity, 3).copy()
        self._initialised = False
        self._time_s = -math.inf
        self._x[:] = 0.0
        self._cov[:] = 0.0
        self._quat = np.array([0.0, 0.0, 0.0, 1.0])
        self._gyro = np.zeros(3)  # bias-corrected
        self._reference_quat: Quat = (0.0, 0.0, 0.0, 1.0)
        self._gyro_bias: Vec3 = (0.0, 0.0, 0.0)
        self.contact_detector.reset()
        self._last_output: EstimatorOutput | None = None
        self._last_contact_s = -math.inf

    def update(
        self,
        time_s: float,
        imu_quat: ArrayLike,
        imu_gyro: ArrayLike,
        imu_accel: ArrayLike,
        joint_pos: ArrayLike,
        joint_vel: ArrayLike,
        foot_forces: ArrayLike,
    ) -> EstimatorOutput:
        """Fuse one sample. Raises ``EstimatorInputError`` (state untouched) on malformed or non-finite input.

        imu_quat: xyzw, base orientation in the world; imu_gyro: body-frame angular velocity, rad/s;
        imu_accel: body-frame specific force (reads +g upwards at rest), m/s²; joint_pos/joint_vel: policy
        order;
        foot_forces: normal contact force per foot (left, right), N.
        A sample whose time is not after the previous one is ignored and the previous estimate returned.
        """
        quat, gyro, accel, q, qd, forces = self._checked_inputs(
            time_s, imu_quat, imu_gyro, imu_accel, joint_pos, joint_vel, foot_forces
        )
        time_s = float(time_s)
        if self._initialised and time_s <= self._time_s:
            self.samples_out_of_order += 1
            assert self._last_output is not None
            return self._last_output

        contacts = self.contact_detector.evaluate(forces)

        if not self._initialised:
            rotation_matrix_into(tuple(quat.tolist()), self._rot)
            feet_in_base, _, points_in_foot, _ = self._stance_points(q, qd, self._rot)
            self._initialise(np.array(feet_in_base), contacts)
            self._stance_points_in_foot = points_in_foot
            self.contact_detector.commit(contacts)
            self._quat = quat
            self._reference_quat = tuple(quat.tolist())
            self._gyro_bias = (0.0, 0.0, 0.0)
            self._gyro = gyro.copy()
            self._time_s = time_s
            self._last_contact_s = time_s  # a start counts as on the ground: max_flight_s to find a foot
            self._last_output = self._make_output()
            return self._last_output

        dt = time_s - self._time_s
        if dt > self.params.max_dt_s:
            dt = self.params.max_dt_s
            self.gaps_clamped += 1

        reference, bias = self._reference_quat, self._gyro_bias
        orientation: Quat = tuple(quat.tolist())  # the IMU's, or the filtered one below
        if self._run_orientation_filter:
            reference, bias = orientation_filter_step(
                reference, bias, orientation, tuple(gyro.tolist()), dt,
                self._correction_gain, self._bias_gain, self.params.max_gyro_bias,
            )  # fmt: skip
            gyro = np.subtract(gyro, bias)
            if self.params.orientation_time_constant_s > 0.0:
                quat, orientation = np.array(reference), reference
        rot = self._rot_work
        rotation_matrix_into(orientation, rot)
        feet_in_base, point_velocities, points_in_foot, foot_rotations = self._stance_points(q, qd, rot)
        # The feet's states track sole points; where the point moved on the sole (the foot rolled onto another
        # edge), move the state with it, so that the state stays the position of the point now on the ground.
        # Plain floats: R_world (R_foot moved) for two 3-vectors.
        (a00, a01, a02), (a10, a11, a12), (a20, a21, a22) = rot.tolist()
        shift = []
        for side in range(2):
            (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = foot_rotations[side]
            nx, ny, nz = points_in_foot[side]
            ox, oy, oz = self._stance_points_in_foot[side]
            mx, my, mz = nx - ox, ny - oy, nz - oz
            bx, by, bz = r00 * mx + r01 * my + r02 * mz, r10 * mx + r11 * my + r12 * mz, r20 * mx + r21 * my + r22 * mz
            shift += (a00 * bx + a01 * by + a02 * bz, a10 * bx + a11 * by + a12 * bz, a20 * bx + a21 * by + a22 * bz)
        self._foot_shift[:] = shift

        try:
            x, cov = self._filter_step(dt, rot, gyro, accel, feet_in_base, point_velocities, contacts)
        except np.linalg.LinAlgError:  # singular innovation covariance: only reachable with absurd inputs
            x, cov = self._x_work, self._cov_work
            x[0] = math.nan
        if contacts.any() or not math.isfinite(self._last_contact_s):
            self._last_contact_s = time_s
        elif time_s - self._last_contact_s > self.params.max_flight_s:
            # Lost footing: hold the base where it was, still, and say how uncertain that is (the velocity
            # variance grows as the IMU-only prediction's would); the feet follow the kinematics.
            previous = self._x
            x[POSITION] = previous[POSITION]
            x[VELOCITY] = 0.0
            cov[3:6, :] = 0.0
            cov[:, 3:6] = 0.0
            grown = self._cov.diagonal()[3:6] + (self.params.accel_noise_density**2 + 1.0) * dt
            cov[[3, 4, 5], [3, 4, 5]] = grown
            self.lost_footing_updates += 1
        if not (np.isfinite(x).all() and np.isfinite(cov).all()):
            self.samples_rejected += 1
            raise EstimatorInputError(
                "the filter update went non-finite (inputs too large?); the sample was dropped, state unchanged"
            )
        # Commit: swap the work buffers in.
        self._x_and_acc, self._x_and_acc_work = self._x_and_acc_work, self._x_and_acc
        self._x, self._x_work = x, self._x
        self._cov, self._cov_work = cov, self._cov
        self._rot, self._rot_work = rot, self._rot
        self._stance_points_in_foot = points_in_foot
        self.contact_detector.commit(contacts)
        self._quat = quat
        self._reference_quat, self._gyro_bias = reference, bias
        self._gyro = gyro.copy()
        self._time_s = time_s
        self._last_output = self._make_output()
        return self._last_output

    # ------------------------------------------------------------------ filter
    def _initialise(self, feet_in_base: FloatArray, contacts: NDArray[np.bool_]) -> None:
        p = self.params
        feet_rel_world = feet_in_base @ self._rot.T  # (2, 3): R r for each foot
        if self._init_position is not None:
            base = self._init_position
        else:
            # Put the stance feet (the lower foot if none) on the ground.
            on_ground = contacts if contacts.any() else feet_rel_world[:, 2] <= feet_rel_world[:, 2].min()
            base_z = p.ground_height + self.stance_point_height - float(feet_rel_world[on_ground, 2].mean())
            base = np.array([0.0, 0.0, base_z])
        self._x[POSITION] = base
        self._x[VELOCITY] = self._init_velocity
        self._x[LEFT_FOOT] = base + feet_rel_world[0]
        self._x[RIGHT_FOOT] = base + feet_rel_world[1]
        var = np.empty(STATE_SIZE)
        var[POSITION] = p.initial_position_std**2
        var[VELOCITY] = p.initial_velocity_std**2
        var[6:] = p.initial_foot_std**2
        self._cov[:] = np.diag(var)
        self._initialised = True

    def _discretise(self, dt: float, pattern: int) -> FloatArray:
        """F, B for this dt (cached while dt stays the same); returns the discrete process noise Q."""
        if abs(dt - self._dt) > _DT_TOLERANCE_S:
            self._dt = dt
            f_and_b = self._f_and_b
            for i in range(3):
                self._f[i, 3 + i] = self._f_t[3 + i, i] = f_and_b[i, 3 + i] = dt
                f_and_b[i, STATE_SIZE + i] = 0.5 * dt * dt
                f_and_b[3 + i, STATE_SIZE + i] = dt
            self._q_discrete = [None] * 4
        q_discrete = self._q_discrete[pattern]
        if q_discrete is None:
            q_discrete = np.diag(self._q_rate[pattern] * dt)
            self._q_discrete[pattern] = q_discrete
        return q_discrete

    def _filter_step(
        self,
        dt: float,
        rot: FloatArray,
        gyro: FloatArray,
        accel: FloatArray,
        feet_in_base: list[list[float]],
        point_velocities: list[Vec3],
        contacts: NDArray[np.bool_],
    ) -> tuple[FloatArray, FloatArray]:
        """One predict + update into the work buffers; the committed state is not touched."""
        pattern = 2 * int(contacts[0]) + int(contacts[1])
        q_discrete = self._discretise(dt, pattern)

        # ---- predict: x = F x + B a with a = R f + g; P = F P Fᵀ + Q.
        # Plain floats for the 3-vectors (numpy's per-call cost is most of a 3 x 3 product); arrays from 12 up.
        rows = rot.tolist()
        fx, fy, fz = accel.tolist()
        grav = self._gravity_world.tolist()
        x_and_acc = self._x_and_acc  # committed state; its acceleration slot is scratch
        x_and_acc[STATE_SIZE:] = [r0 * fx + r1 * fy + r2 * fz + g for (r0, r1, r2), g in zip(rows, grav, strict=True)]
        x = self._x_work
        np.matmul(self._f_and_b, x_and_acc, out=x)
        x[6:] += self._foot_shift
        cov = self._cov_work
        np.matmul(self._f @ self._cov, self._f_t, out=cov)
        cov += q_discrete

        # ---- measurement z = [R r_l, R r_r, -v_l, -v_r, h_ground, h_ground], where a stance leg gives the base
        # velocity -v = R (J q̇ + ω × r) (its foot is fixed in the world).
        wx, wy, wz = gyro.tolist()
        legs = [feet_in_base[0], feet_in_base[1]]
        for (rx, ry, rz), (vx, vy, vz) in zip(feet_in_base, point_velocities, strict=True):
            legs.append((vx + (wy * rz - wz * ry), vy + (wz * rx - wx * rz), vz + (wx * ry - wy * rx)))
        self._z[:12] = [r0 * lx + r1 * ly + r2 * lz for lx, ly, lz in legs for r0, r1, r2 in rows]

        # Rows of unused measurements are zero in H: their gain is exactly zero whatever their innovation.
        h = self._h[pattern]
        innovation = self._z - h @ x
        pht = cov @ self._h_t[pattern]  # (12, 14)
        s = h @ pht
        s += self._r_matrix[pattern]
        gate = self.params.slip_gate_chi2
        if gate > 0.0:
            self._gate_legs(s, innovation, contacts, gate)
        gain_t = np.linalg.solve(s, pht.T)  # (14, 12) = Kᵀ since S is symmetric
        x += innovation @ gain_t
        cov -= pht @ gain_t
        # Keep P symmetric against rounding: (P + Pᵀ) / 2, through a spare buffer (in place, numpy would copy the
        # overlapping transpose first).
        symmetric = np.add(cov, cov.T, out=self._cov_spare)
        np.multiply(symmetric, 0.5, out=cov)
        return x, cov

    def _gate_legs(self, s: FloatArray, innovation: FloatArray, contacts: NDArray[np.bool_], gate: float) -> None:
        """Down-weight a stance leg whose velocity is an outlier (a slipping or just-landed foot), judged by squared
        normalised distances (3 DoF) against ``gate``: with both feet down, by how far the two legs disagree,
        blaming the one farther from the prediction (the prediction alone would follow the two halfway before
        either stood out); with one foot down, by its distance from the prediction. The outlier's variance grows
        until it sits on the gate, so it pulls the base no more than a measurement on the gate would.

        Distances use the variances only: the 3 x 3 blocks are near diagonal (diagonal R, a near-isotropic
        velocity covariance), and three 3 x 3 solves per update would cost more than the rest of the gate."""
        # Plain floats over the 6 velocity rows: numpy's per-call cost dominated these 3-element sums.
        left_on, right_on = bool(contacts[0]), bool(contacts[1])
        if not (left_on or right_on):
            return
        first = _VEL_ROWS[0].start
        variances = s.diagonal()[first : first + 6].tolist()
        innovations = innovation[first : first + 6].tolist()
        squares = [e * e / var for e, var in zip(innovations, variances, strict=True)]
        distances = (
            squares[0] + squares[1] + squares[2] if left_on else 0.0,
            squares[3] + squares[4] + squares[5] if right_on else 0.0,
        )
        if left_on and right_on:
            covariances = s[first : first + 3, first + 3 : first + 6].diagonal().tolist()
            disagreement = 0.0
            for axis in range(3):
                difference = innovations[axis] - innovations[axis + 3]
                spread = variances[axis] + variances[axis + 3] - 2.0 * covariances[axis]
                disagreement += difference * difference / spread
            if disagreement <= gate:
                return
            outlier, excess = (0 if distances[0] > distances[1] else 1), disagreement
        else:
            outlier = 0 if left_on else 1
            excess = distances[outlier]
            if excess <= gate:
                return
        own = variances[3 * outlier : 3 * outlier + 3]
        added = (own[0] + own[1] + own[2]) / 3.0 * (excess / gate - 1.0)
        for row in range(first + 3 * outlier, first + 3 * outlier + 3):
            s[row, row] += added
        self.slip_gated_updates += 1

    def stance_points_in_base(self, joint_pos: ArrayLike, base_quat_xyzw: ArrayLike) -> FloatArray:
        """Where each foot's state sits relative to the base, in the base frame (2, 3), for joint positions (policy
        order) and a base orientation: the stance points (``EstimatorParams.stance_point``)."""
        rot = np.empty((3, 3))
        rotation_matrix_into(tuple(normalised(tuple(np.asarray(base_quat_xyzw, dtype=np.float64).tolist()))), rot)
        return np.array(self._stance_points(np.asarray(joint_pos, dtype=np.float64), np.zeros(self.n_joints), rot)[0])

    def _stance_points(
        self, joint_pos: FloatArray, joint_vel: FloatArray, rot: FloatArray
    ) -> tuple[list[list[float]], list[Vec3], list[Vec3], list[list[list[float]]]]:
        """Per foot, in the base frame: the stance point and its velocity as a point fixed on the foot (from the
        joint velocities, base still); the point in the foot frame; and the foot rotation (foot -> base), which the
        state shift needs.

        Plain floats: 2 feet x 4 corners is far too small for numpy, whose per-call cost dominated here."""
        feet, rotations, velocities = self.kinematics.foot_motion_in_base(joint_pos, joint_vel)
        feet_list = feet.tolist()
        rotation_lists = rotations.tolist()
        velocity_lists = velocities.tolist()
        corners_all = self._sole_corner_tuples
        if corners_all is None:
            return feet_list, [(v[0], v[1], v[2]) for v in velocity_lists], [_ZERO3, _ZERO3], rotation_lists
        up_x, up_y, up_z = rot[2].tolist()  # the world vertical in base axes
        softness = self.params.stance_point_softness_m
        point_velocities: list[Vec3] = []
        points_in_foot: list[Vec3] = []
        for side in range(2):
            (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = rotation_lists[side]
            # The world vertical in foot axes: a corner c sits u . c above the foot origin.
            ux = r00 * up_x + r10 * up_y + r20 * up_z
            uy = r01 * up_x + r11 * up_y + r21 * up_z
            uz = r02 * up_x + r12 * up_y + r22 * up_z
            corners = corners_all[side]
            heights = [ux * cx + uy * cy + uz * cz for cx, cy, cz in corners]
            lowest = min(heights)
            # The corners weighted by a softmin of their heights, normalised once at the end.
            total = px = py = pz = 0.0
            for h, (cx, cy, cz) in zip(heights, corners, strict=True):
                weight = math.exp((lowest - h) / softness)
                total += weight
                px += weight * cx
                py += weight * cy
                pz += weight * cz
            px, py, pz = px / total, py / total, pz / total
            points_in_foot.append((px, py, pz))
            # The lever from the foot origin to the point, in base axes.
            lx, ly, lz = r00 * px + r01 * py + r02 * pz, r10 * px + r11 * py + r12 * pz, r20 * px + r21 * py + r22 * pz
            foot = feet_list[side]
            foot[0] += lx
            foot[1] += ly
            foot[2] += lz
            # A point fixed on the foot moves at v_foot + ω_foot × lever.
            vx, vy, vz, wx, wy, wz = velocity_lists[side]
            point_velocities.append((vx + (wy * lz - wz * ly), vy + (wz * lx - wx * lz), vz + (wx * ly - wy * lx)))
        return feet_list, point_velocities, points_in_foot, rotation_lists

    # ------------------------------------------------------------------ helpers
    def _make_output(self) -> EstimatorOutput:
        # One fresh copy of the state, sliced into the output; _quat and _gyro are fresh arrays every update that
        # nothing else reads, so the output may own them.
        x = self._x.copy()
        velocity = x[VELOCITY]
        return EstimatorOutput(
            time_s=self._time_s,
            valid=self._time_s - self._last_contact_s <= self.params.max_flight_s,
            no_contact_s=max(0.0, self._time_s - self._last_contact_s),
            position=x[POSITION],
            orientation_xyzw=self._quat,
            linear_velocity_world=velocity,
            linear_velocity_body=self._rot.T @ velocity,
            angular_velocity_body=self._gyro,
            gyro_bias=np.array(self._gyro_bias),
            height=float(x[2]) - self.params.ground_height,
            contacts=self.contact_detector.contacts,
            covariance_diag=self._cov.diagonal().copy(),
            foot_positions=x[6:].reshape(2, 3),
        )

    @staticmethod
    def _checked_vector(name: str, value: ArrayLike, size: int) -> FloatArray:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise EstimatorInputError(f"{name} is not numeric: {exc}") from exc
        if arr.shape != (size,):
            raise EstimatorInputError(f"{name} has shape {arr.shape}, expected ({size},)")
        if not np.isfinite(arr).all():
            raise EstimatorInputError(f"{name} contains NaN or inf: {arr}")
        return arr

    def _checked_inputs(
        self,
        time_s: float,
        imu_quat: ArrayLike,
        imu_gyro: ArrayLike,
        imu_accel: ArrayLike,
        joint_pos: ArrayLike,
        joint_vel: ArrayLike,
        foot_forces: ArrayLike,
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        n = self.n_joints
        named = (
            ("imu_quat", imu_quat, 4),
            ("imu_gyro", imu_gyro, 3),
            ("imu_accel", imu_accel, 3),
            ("joint_pos", joint_pos, n),
            ("joint_vel", joint_vel, n),
            ("foot_forces", foot_forces, 2),
        )
        arrays = []
        for name, value, size in named:
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                self.samples_rejected += 1
                raise EstimatorInputError(f"{name} is not numeric: {exc}") from exc
            if arr.shape != (size,):
                self.samples_rejected += 1
                raise EstimatorInputError(
                    f"{name} has shape {arr.shape}, expected ({size},)"
                    + (" in policy joint order (RobotSpec.joint_names)" if size == n else "")
                )
            arrays.append(arr)
        try:
            time_value = float(time_s)
        except (TypeError, ValueError) as exc:
            self.samples_rejected += 1
            raise EstimatorInputError(f"time_s is not a number: {time_s!r}") from exc
        if not math.isfinite(time_value):
            self.samples_rejected += 1
            raise EstimatorInputError(f"time_s is not finite: {time_s!r}")
        # One check over every reading (NaN fails the comparison too); find the culprit only when it fails.
        buf = self._input_buffer
        np.concatenate(arrays, out=buf)
        np.abs(buf, out=buf)
        limit = self.params.max_abs_reading
        if not buf.max() <= limit:
            self.samples_rejected += 1
            for (name, _, _), arr in zip(named, arrays, strict=True):
                if not np.isfinite(arr).all():
                    raise EstimatorInputError(f"{name} contains NaN or inf: {arr}; sample dropped, state unchanged")
                if np.abs(arr).max() > limit:
                    raise EstimatorInputError(
                        f"{name} has a reading beyond ±{limit:g} (EstimatorParams.max_abs_reading), a sensor "
                        f"fault: {arr}; sample dropped, state unchanged"
                    )
        quat = arrays[0]
        qx, qy, qz, qw = quat.tolist()
        norm = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
        if not 0.5 < norm < 1.5:
            self.samples_rejected += 1
            raise EstimatorInputError(f"imu_quat {quat} has norm {norm:.3g}; expected a unit quaternion (xyzw)")
        arrays[0] = quat / norm
        return arrays[0], arrays[1], arrays[2], arrays[3], arrays[4], arrays[5]
