"""The state estimator's orientation filter: a Mahony-style complementary filter on gyro and IMU quaternion that
estimates the gyro bias (and can smooth the orientation), with the quaternion helpers it runs on.

These work on plain float tuples, ``(x, y, z, w)``: they run a few times per estimator update, where numpy's
per-call cost would dominate. :mod:`humanoid_rl.core.rotations` holds the array (vectorised) equivalents
(``quat_multiply``, ``quat_to_matrix``, ``quat_normalize``); use those anywhere off the per-update path.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["Quat", "Vec3", "normalised", "orientation_filter_step", "quat_exp", "quat_mul", "rotation_matrix_into"]

FloatArray = NDArray[np.float64]

Quat = tuple[float, float, float, float]
Vec3 = tuple[float, float, float]


def quat_mul(a: Quat, b: Quat) -> Quat:
    # Plain floats: this runs a few times per update, where numpy's per-call cost would dominate
    # (humanoid_rl.core.rotations.quat_multiply is the array version).
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


def rotation_matrix_into(quat: Quat, out: FloatArray) -> None:
    """Body-to-world rotation matrix of a unit quaternion, written in place (the per-update path; allocating
    through humanoid_rl.core.rotations.quat_to_matrix costs a few µs more)."""
    x, y, z, w = quat
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    out[0, 0], out[0, 1], out[0, 2] = 1.0 - 2.0 * (yy + zz), 2.0 * (xy - wz), 2.0 * (xz + wy)
    out[1, 0], out[1, 1], out[1, 2] = 2.0 * (xy + wz), 1.0 - 2.0 * (xx + zz), 2.0 * (yz - wx)
    out[2, 0], out[2, 1], out[2, 2] = 2.0 * (xz - wy), 2.0 * (yz + wx), 1.0 - 2.0 * (xx + yy)


def quat_exp(vx: float, vy: float, vz: float) -> Quat:
    """Unit quaternion of the rotation vector (vx, vy, vz)."""
    angle = math.sqrt(vx * vx + vy * vy + vz * vz)
    if angle < 1e-9:
        return (0.5 * vx, 0.5 * vy, 0.5 * vz, 1.0)
    s = math.sin(0.5 * angle) / angle
    return (vx * s, vy * s, vz * s, math.cos(0.5 * angle))


def normalised(q: Quat) -> Quat:
    n = 1.0 / math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    return (q[0] * n, q[1] * n, q[2] * n, q[3] * n)


def orientation_filter_step(
    reference: Quat,
    bias: Vec3,
    measured: Quat,
    gyro: Vec3,
    dt: float,
    correction_gain: float,
    bias_gain: float,
    max_bias: float,
) -> tuple[Quat, Vec3]:
    """One step of a Mahony-style PI complementary filter: integrate the bias-corrected gyro from
    ``reference``, then pull the result towards the ``measured`` quaternion (proportional, ``correction_gain``
    1/s) and the bias against the remaining error (integral, ``bias_gain`` 1/s²). All body frame."""
    wx, wy, wz = gyro[0] - bias[0], gyro[1] - bias[1], gyro[2] - bias[2]
    predicted = quat_mul(reference, quat_exp(wx * dt, wy * dt, wz * dt))
    # Error rotation predicted -> measured in the body frame (small angle: twice the vector part).
    px, py, pz, pw = predicted
    ex, ey, ez, ew = quat_mul((-px, -py, -pz, pw), measured)
    sign = 2.0 if ew >= 0.0 else -2.0
    ex, ey, ez = sign * ex, sign * ey, sign * ez
    half_gain = 0.5 * min(1.0, correction_gain * dt)
    corrected = normalised(quat_mul(predicted, (half_gain * ex, half_gain * ey, half_gain * ez, 1.0)))
    k = bias_gain * dt
    new_bias = (
        min(max_bias, max(-max_bias, bias[0] - k * ex)),
        min(max_bias, max(-max_bias, bias[1] - k * ey)),
        min(max_bias, max(-max_bias, bias[2] - k * ez)),
    )
    return corrected, new_bias
