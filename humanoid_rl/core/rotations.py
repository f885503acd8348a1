"""Quaternion helpers, ``[x, y, z, w]`` order (as PyBullet, ROS and pinocchio's free-flyer ``q``).

All functions are vectorised over leading dimensions: a quaternion argument has shape ``(..., 4)``, a vector
``(..., 3)``; batches broadcast against each other. Quaternions are normalised before use, so a slightly
denormalised estimate gives a proper rotation; a zero or non-finite quaternion raises ``ValueError``.
A quaternion ``q`` maps body-frame vectors to the world frame: ``v_world = quat_rotate(q, v_body)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "quat_conjugate",
    "quat_from_axis_angle",
    "quat_multiply",
    "quat_normalize",
    "quat_rotate",
    "quat_rotate_inverse",
    "quat_to_matrix",
    "projected_gravity",
    "tilt_angle",
    "yaw",
]


def _unit_components(quat: np.ndarray) -> tuple[Any, Any, Any, Any]:
    """x, y, z, w of the normalised quaternion(s); cheap for a single quaternion (the per-tick case)."""
    q = np.asarray(quat, dtype=np.float64)
    if q.shape[-1:] != (4,):
        raise ValueError(f"quaternion must have shape (..., 4) as [x, y, z, w], got {q.shape}")
    if q.ndim == 1:  # one quaternion: plain floats are several times cheaper than 0-d arrays
        x, y, z, w = q.tolist()
        norm_squared = x * x + y * y + z * z + w * w
        if not 1e-24 < norm_squared < math.inf:  # NaN fails the comparison
            raise ValueError(
                f"quaternion {q} has zero length or non-finite values; expected |[x, y, z, w]| = 1"
            )
        inverse_norm = 1.0 / math.sqrt(norm_squared)
        return x * inverse_norm, y * inverse_norm, z * inverse_norm, w * inverse_norm
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    norm_squared = x * x + y * y + z * z + w * w
    if not np.all((norm_squared > 1e-24) & (norm_squared < np.inf)):
        raise ValueError("a quaternion has zero length or non-finite values; expected |[x, y, z, w]| = 1")
    inverse_norm = 1.0 / np.sqrt(norm_squared)
    return x * inverse_norm, y * inverse_norm, z * inverse_norm, w * inverse_norm


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    # np.array on scalars is several times cheaper than np.stack; batches need np.stack.
    return np.array(parts, dtype=np.float64) if np.ndim(parts[0]) == 0 else np.stack(parts, axis=-1)


def quat_normalize(quat: np.ndarray) -> np.ndarray:
    """Unit quaternion(s) ``(..., 4)``; raises ValueError for zero-length or non-finite input."""
    return _stack(list(_unit_components(quat)))


def quat_conjugate(quat: np.ndarray) -> np.ndarray:
    """Inverse rotation of unit quaternion(s): ``[-x, -y, -z, w]``."""
    quat = np.asarray(quat, dtype=np.float64)
    return np.concatenate([-quat[..., :3], quat[..., 3:]], axis=-1)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``), xyzw."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ax, ay, az, aw = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bx, by, bz, bw = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return _stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_from_axis_angle(axis: np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    """Quaternion(s) rotating by ``angle`` (rad) about ``axis`` (normalised here), xyzw."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    half = 0.5 * np.asarray(angle, dtype=np.float64)[..., None]
    return np.concatenate([axis * np.sin(half), np.cos(half)], axis=-1)


def quat_to_matrix(quat: np.ndarray) -> np.ndarray:
    """Rotation matrix/matrices ``(..., 3, 3)``, body -> world."""
    x, y, z, w = _unit_components(quat)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    matrix = _stack(
        [
            1.0 - 2.0 * (yy + zz), 2.0 * (xy - wz), 2.0 * (xz + wy),
            2.0 * (xy + wz), 1.0 - 2.0 * (xx + zz), 2.0 * (yz - wx),
            2.0 * (xz - wy), 2.0 * (yz + wx), 1.0 - 2.0 * (xx + yy),
        ]
    )  # fmt: skip
    return matrix.reshape(matrix.shape[:-1] + (3, 3))


def _rotate(quat: np.ndarray, vector: np.ndarray, inverse: bool) -> np.ndarray:
    matrix = quat_to_matrix(quat)
    v = np.asarray(vector, dtype=np.float64)
    if v.shape[-1:] != (3,):
        raise ValueError(f"vector must have shape (..., 3), got {v.shape}")
    if inverse:
        matrix = np.swapaxes(matrix, -1, -2)  # R^T = R^-1
    if matrix.ndim == 2 and v.ndim == 1:
        return matrix @ v
    return (matrix @ v[..., None])[..., 0]


def quat_rotate(quat: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Rotate body-frame vector(s) into the world frame."""
    return _rotate(quat, vector, inverse=False)


def quat_rotate_inverse(quat: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Express world-frame vector(s) in the body frame."""
    return _rotate(quat, vector, inverse=True)


def projected_gravity(quat: np.ndarray) -> np.ndarray:
    """Gravity direction (0, 0, -1) expressed in the body frame, ``(..., 3)``; (0, 0, -1) when upright."""
    x, y, z, w = _unit_components(quat)
    # Minus the third row of the body->world rotation matrix (its world-z components).
    return _stack([2.0 * (w * y - x * z), -2.0 * (y * z + w * x), 2.0 * (x * x + y * y) - 1.0])


def tilt_angle(quat: np.ndarray) -> np.ndarray | float:
    """Angle (rad, in [0, pi]) between the body z axis and world z; a float for a single quaternion."""
    x, y, _, _ = _unit_components(quat)
    cos_tilt = 1.0 - 2.0 * (x * x + y * y)  # world-z component of the body z axis
    if isinstance(cos_tilt, float):
        return math.acos(min(1.0, max(-1.0, cos_tilt)))
    return np.arccos(np.clip(cos_tilt, -1.0, 1.0))


def yaw(quat: np.ndarray) -> np.ndarray | float:
    """Heading (rad, in (-pi, pi]) of the body x axis projected on the world xy plane (ZYX yaw)."""
    x, y, z, w = _unit_components(quat)
    if isinstance(w, float):
        return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
