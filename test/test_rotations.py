"""Quaternion helpers (xyzw) against PyBullet's own conversions and against closed-form cases."""

from __future__ import annotations

import math

import numpy as np
import pybullet as pb
import pytest

from humanoid_rl.core.rotations import (
    projected_gravity,
    quat_conjugate,
    quat_from_axis_angle,
    quat_multiply,
    quat_normalize,
    quat_rotate,
    quat_rotate_inverse,
    quat_to_matrix,
    tilt_angle,
    yaw,
)


def random_quaternions(n: int, seed: int = 0) -> np.ndarray:
    quats = np.random.default_rng(seed).normal(size=(n, 4))
    return quats / np.linalg.norm(quats, axis=1, keepdims=True)


def test_matrix_matches_pybullet_for_random_quaternions() -> None:
    quats = random_quaternions(50)
    batch = quat_to_matrix(quats)
    for quat, matrix in zip(quats, batch, strict=True):
        expected = np.array(pb.getMatrixFromQuaternion(quat.tolist())).reshape(3, 3)
        np.testing.assert_allclose(matrix, expected, atol=1e-12)
        np.testing.assert_allclose(quat_to_matrix(quat), expected, atol=1e-12)


def test_rotate_and_inverse_rotate_match_the_matrix_and_undo_each_other() -> None:
    quats = random_quaternions(50, seed=1)
    vectors = np.random.default_rng(2).normal(size=(50, 3))
    matrices = quat_to_matrix(quats)
    rotated = quat_rotate(quats, vectors)
    np.testing.assert_allclose(rotated, np.einsum("nij,nj->ni", matrices, vectors), atol=1e-12)
    np.testing.assert_allclose(quat_rotate_inverse(quats, rotated), vectors, atol=1e-12)
    np.testing.assert_allclose(quat_rotate(quats[0], vectors[0]), rotated[0], atol=1e-12)
    # One quaternion broadcasts over many vectors.
    np.testing.assert_allclose(quat_rotate(quats[0], vectors), vectors @ matrices[0].T, atol=1e-12)


def test_projected_gravity_is_straight_down_when_upright_and_tips_with_pitch() -> None:
    np.testing.assert_allclose(projected_gravity(np.array([0.0, 0.0, 0.0, 1.0])), [0.0, 0.0, -1.0])
    pitch = 0.3  # nose down: the body x axis points partly towards the ground, gravity gains +x in the body
    quat = quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), pitch)
    np.testing.assert_allclose(projected_gravity(quat), [math.sin(pitch), 0.0, -math.cos(pitch)], atol=1e-12)
    roll = 0.2  # +x roll lowers the right side: gravity gains a body -y (rightward) component
    quat = quat_from_axis_angle(np.array([1.0, 0.0, 0.0]), roll)
    np.testing.assert_allclose(projected_gravity(quat), [0.0, -math.sin(roll), -math.cos(roll)], atol=1e-12)


def test_projected_gravity_equals_the_inverse_rotated_gravity_for_a_batch() -> None:
    quats = random_quaternions(20, seed=3)
    np.testing.assert_allclose(
        projected_gravity(quats), quat_rotate_inverse(quats, np.array([0.0, 0.0, -1.0])), atol=1e-12
    )


def test_tilt_is_the_angle_between_body_z_and_world_z_whatever_the_yaw() -> None:
    for axis in ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]):
        for angle in (0.0, 0.4, 1.2, 3.0):
            tilt = quat_from_axis_angle(np.array(axis), angle)
            heading = quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), 2.0)
            assert tilt_angle(tilt) == pytest.approx(angle, abs=1e-9)
            assert tilt_angle(quat_multiply(heading, tilt)) == pytest.approx(angle, abs=1e-9)
    assert isinstance(tilt_angle(np.array([0.0, 0.0, 0.0, 1.0])), float)
    assert tilt_angle(random_quaternions(4)).shape == (4,)


def test_yaw_matches_pybullet_euler_and_ignores_small_tilts() -> None:
    for quat in random_quaternions(30, seed=4):
        assert yaw(quat) == pytest.approx(pb.getEulerFromQuaternion(quat.tolist())[2], abs=1e-6)
    heading = quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), -2.5)
    small_tilt = quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), 0.1)
    assert yaw(quat_multiply(heading, small_tilt)) == pytest.approx(-2.5, abs=1e-9)


def test_multiply_composes_rotations_like_matrices_and_conjugate_inverts() -> None:
    a, b = random_quaternions(30, seed=5), random_quaternions(30, seed=6)
    np.testing.assert_allclose(quat_to_matrix(quat_multiply(a, b)), quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-12)
    identity = quat_multiply(a, quat_conjugate(a))
    np.testing.assert_allclose(np.abs(identity), np.tile([0.0, 0.0, 0.0, 1.0], (30, 1)), atol=1e-12)


def test_non_unit_quaternions_are_normalised() -> None:
    quat = random_quaternions(1, seed=7)[0]
    np.testing.assert_allclose(quat_to_matrix(5.0 * quat), quat_to_matrix(quat), atol=1e-12)
    np.testing.assert_allclose(projected_gravity(0.5 * quat), projected_gravity(quat), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(quat_normalize(3.0 * random_quaternions(5)), axis=1), 1.0)


@pytest.mark.parametrize(
    "bad",
    [np.zeros(4), np.array([np.nan, 0.0, 0.0, 1.0]), np.array([np.inf, 0.0, 0.0, 1.0]), np.zeros((2, 4))],
    ids=["zero", "nan", "inf", "zero_batch"],
)
def test_degenerate_quaternions_raise_instead_of_returning_garbage(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="quaternion"):
        projected_gravity(bad)
    with pytest.raises(ValueError, match="quaternion"):
        quat_to_matrix(bad)


def test_wrong_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        quat_to_matrix(np.array([0.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        quat_rotate(np.array([0.0, 0.0, 0.0, 1.0]), np.zeros(4))
