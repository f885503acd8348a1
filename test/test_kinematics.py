"""RobotKinematics (pinocchio) against PyBullet and against itself: CoM, foot frames, Jacobians, joint mapping
by name, nominal base height and robot size."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import coal
import numpy as np
import pinocchio as pin
import pybullet as pb
import pytest
import yaml

from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.robot_spec import RobotSpec

N_POSES = 20


@pytest.fixture(scope="module")
def spec() -> RobotSpec:
    return RobotSpec.load()


@pytest.fixture(scope="module")
def kinematics(spec: RobotSpec) -> RobotKinematics:
    return RobotKinematics(spec)


@pytest.fixture(scope="module")
def bullet(spec: RobotSpec) -> Iterator[tuple[int, int, dict[str, int]]]:
    client = pb.connect(pb.DIRECT)
    robot = pb.loadURDF(str(spec.urdf_path), flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client)
    links = {
        pb.getJointInfo(robot, i, physicsClientId=client)[12].decode(): i
        for i in range(pb.getNumJoints(robot, physicsClientId=client))
    }
    yield client, robot, links
    pb.disconnect(client)


def random_unit_quaternion(rng: np.random.Generator) -> np.ndarray:
    quat = rng.normal(size=4)
    return quat / np.linalg.norm(quat)


def random_states(spec: RobotSpec, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    for _ in range(N_POSES):
        yield rng.uniform(-1.0, 1.0, 3), random_unit_quaternion(rng), rng.uniform(spec.lower, spec.upper)


def set_bullet_state(
    bullet: tuple[int, int, dict[str, int]], spec: RobotSpec, base_pos: np.ndarray, quat: np.ndarray, q: np.ndarray
) -> None:
    client, robot, links = bullet
    # PyBullet places the base by its inertial frame, not its URDF link frame: convert.
    _, _, _, inertial_pos, inertial_orn, *_ = pb.getDynamicsInfo(robot, -1, physicsClientId=client)
    com_pos, com_orn = pb.multiplyTransforms(base_pos, quat, inertial_pos, inertial_orn)
    pb.resetBasePositionAndOrientation(robot, com_pos, com_orn, physicsClientId=client)
    joint_index = {pb.getJointInfo(robot, i, physicsClientId=client)[1].decode(): i for i in links.values()}
    for name, position in zip(spec.joint_names, q, strict=True):
        pb.resetJointState(robot, joint_index[name], position, physicsClientId=client)


def bullet_com(bullet: tuple[int, int, dict[str, int]]) -> np.ndarray:
    client, robot, links = bullet
    base_mass = pb.getDynamicsInfo(robot, -1, physicsClientId=client)[0]
    weighted = base_mass * np.array(pb.getBasePositionAndOrientation(robot, physicsClientId=client)[0])
    total = base_mass
    for index in links.values():
        mass = pb.getDynamicsInfo(robot, index, physicsClientId=client)[0]
        inertial_frame_pos = pb.getLinkState(robot, index, computeForwardKinematics=True, physicsClientId=client)[0]
        weighted += mass * np.array(inertial_frame_pos)
        total += mass
    return weighted / total


def test_com_agrees_with_pybullet_within_1_mm_for_20_random_poses(
    spec: RobotSpec, kinematics: RobotKinematics, bullet: tuple[int, int, dict[str, int]]
) -> None:
    for base_pos, quat, q in random_states(spec):
        set_bullet_state(bullet, spec, base_pos, quat, q)
        np.testing.assert_allclose(kinematics.com(base_pos, quat, q), bullet_com(bullet), atol=1e-3, rtol=0)


def test_foot_positions_agree_with_pybullet_link_frames_within_1_mm(
    spec: RobotSpec, kinematics: RobotKinematics, bullet: tuple[int, int, dict[str, int]]
) -> None:
    client, robot, links = bullet
    for base_pos, quat, q in random_states(spec, seed=1):
        set_bullet_state(bullet, spec, base_pos, quat, q)
        expected = [
            pb.getLinkState(robot, links[name], computeForwardKinematics=True, physicsClientId=client)[4]
            for name in spec.foot_links
        ]
        np.testing.assert_allclose(kinematics.foot_positions(base_pos, quat, q), expected, atol=1e-3, rtol=0)


def test_combined_com_and_feet_equal_the_separate_calls(spec: RobotSpec, kinematics: RobotKinematics) -> None:
    for base_pos, quat, q in random_states(spec, seed=2):
        com, feet = kinematics.com_and_foot_positions(base_pos, quat, q)
        np.testing.assert_allclose(com, kinematics.com(base_pos, quat, q), atol=1e-12)
        np.testing.assert_allclose(feet, kinematics.foot_positions(base_pos, quat, q), atol=1e-12)


def test_base_frame_quantities_are_the_world_ones_seen_from_the_base(
    spec: RobotSpec, kinematics: RobotKinematics
) -> None:
    for base_pos, quat, q in random_states(spec, seed=3):
        rotation = pin.Quaternion(quat[3], *quat[:3]).toRotationMatrix()  # pin.Quaternion takes w, x, y, z
        feet_world = kinematics.foot_positions(base_pos, quat, q)
        np.testing.assert_allclose(kinematics.foot_positions_in_base(q), (feet_world - base_pos) @ rotation, atol=1e-12)
        np.testing.assert_allclose(
            kinematics.com_in_base(q), (kinematics.com(base_pos, quat, q) - base_pos) @ rotation, atol=1e-12
        )


def test_foot_frames_in_base_agree_with_the_positions_and_their_angular_jacobian_with_finite_differences(
    spec: RobotSpec, kinematics: RobotKinematics
) -> None:
    step = 1e-6
    for _, _, q in random_states(spec, seed=5):
        positions, rotations, jacobians = kinematics.foot_frames_in_base(q)
        assert jacobians.shape == (2, 6, spec.n_joints)
        np.testing.assert_allclose(positions, kinematics.foot_positions_in_base(q), atol=1e-12)
        np.testing.assert_allclose(jacobians[:, :3], kinematics.foot_jacobians_in_base(q), atol=1e-12)
        for j, e in enumerate(np.eye(spec.n_joints)):
            _, plus, _ = kinematics.foot_frames_in_base(q + step * e)
            _, minus, _ = kinematics.foot_frames_in_base(q - step * e)
            for side in range(2):
                # dR/dq_j = [ω_j]× R with ω_j the angular column in base axes.
                skew = (plus[side] - minus[side]) / (2 * step) @ rotations[side].T
                omega = 0.5 * (skew - skew.T)[[2, 0, 1], [1, 2, 0]]
                np.testing.assert_allclose(jacobians[side, 3:, j], omega, atol=1e-6)


def test_foot_motion_in_base_is_the_foot_frames_and_their_jacobians_times_the_joint_velocities(
    spec: RobotSpec, kinematics: RobotKinematics
) -> None:
    rng = np.random.default_rng(7)
    for _, _, q in random_states(spec, seed=6):
        qd = rng.normal(0.0, 2.0, spec.n_joints)
        positions, rotations, jacobians = kinematics.foot_frames_in_base(q)
        moving_positions, moving_rotations, velocities = kinematics.foot_motion_in_base(q, qd)
        np.testing.assert_allclose(moving_positions, positions, atol=1e-12)
        np.testing.assert_allclose(moving_rotations, rotations, atol=1e-12)
        np.testing.assert_allclose(velocities, jacobians @ qd, atol=1e-12)


def test_sole_corners_span_the_sole_below_the_foot_frame(spec: RobotSpec, kinematics: RobotKinematics) -> None:
    corners = kinematics.sole_corners_in_foot
    assert corners.shape == (2, 4, 3)
    for side, sole in enumerate(spec.soles):
        np.testing.assert_allclose(np.ptp(corners[side], axis=0)[:2], sole.size, atol=1e-12)
        np.testing.assert_allclose(corners[side].mean(axis=0), sole.offset, atol=1e-12)


def test_foot_jacobians_match_finite_differences_in_policy_order(spec: RobotSpec, kinematics: RobotKinematics) -> None:
    step = 1e-6
    for _, _, q in random_states(spec, seed=4):
        jacobians = kinematics.foot_jacobians_in_base(q)
        assert jacobians.shape == (2, 3, spec.n_joints)
        numeric = np.stack(
            [
                (kinematics.foot_positions_in_base(q + step * e) - kinematics.foot_positions_in_base(q - step * e))
                / (2 * step)
                for e in np.eye(spec.n_joints)
            ],
            axis=-1,
        )
        np.testing.assert_allclose(jacobians, numeric, atol=1e-7)
    # The left foot frame moves with the left hip and knee only: not with the right leg, the torso or the
    # arms, and not with its own ankle, since the foot frame's origin sits on the ankle axes.
    moves_left_foot = np.array([n.startswith("left_") and ("hip" in n or "knee" in n) for n in spec.joint_names])
    assert np.all(jacobians[0][:, ~moves_left_foot] == 0.0)
    assert np.all(np.abs(jacobians[0][:, moves_left_foot]).max(axis=0) > 0.0)


def test_joint_vectors_are_mapped_to_pinocchio_by_name_not_position(tmp_path: Path, spec: RobotSpec) -> None:
    data: dict[str, Any] = yaml.safe_load(spec.config_path.read_text())
    data["urdf"] = str(spec.urdf_path)
    data["joints"] = list(reversed(data["joints"]))
    config = tmp_path / "reversed.yaml"
    config.write_text(yaml.safe_dump(data))
    reversed_spec = RobotSpec.load(config)
    reversed_kinematics = RobotKinematics(reversed_spec)
    kinematics = RobotKinematics(spec)
    for base_pos, quat, q in random_states(spec, seed=5):
        np.testing.assert_allclose(reversed_kinematics.com(base_pos, quat, q[::-1]), kinematics.com(base_pos, quat, q))
        np.testing.assert_allclose(
            reversed_kinematics.foot_jacobians_in_base(q[::-1]), kinematics.foot_jacobians_in_base(q)[:, :, ::-1]
        )


def test_total_mass_is_in_35_to_50_kg_and_equals_the_urdf_sum(spec: RobotSpec, kinematics: RobotKinematics) -> None:
    urdf_sum = sum(float(m.get("value", "nan")) for m in ET.parse(spec.urdf_path).getroot().iter("mass"))
    assert kinematics.total_mass == pytest.approx(urdf_sum, abs=1e-9)
    assert 35.0 <= kinematics.total_mass <= 50.0


def world_z_extent(geometry: Any, placement: pin.SE3) -> tuple[float, float]:
    """Lowest and highest world z of one collision primitive."""
    shape, rotation, z = geometry.geometry, placement.rotation, placement.translation[2]
    if isinstance(shape, coal.Sphere):
        half = shape.radius
    elif isinstance(shape, coal.Box):
        half = float(np.abs(rotation[2]) @ shape.halfSide)
    elif isinstance(shape, coal.Cylinder):
        axis_z = abs(rotation[2, 2])
        half = axis_z * shape.halfLength + shape.radius * np.sqrt(max(0.0, 1.0 - axis_z**2))
    else:
        raise AssertionError(f"unexpected collision shape {type(shape).__name__}")
    return z - half, z + half


def default_pose_extents(spec: RobotSpec, kinematics: RobotKinematics) -> dict[str, tuple[float, float]]:
    """Lowest/highest z of each link's collision geometry, base at the origin, default pose."""
    model = kinematics.model
    geometry_model = pin.buildGeomFromUrdf(model, str(spec.urdf_path), pin.GeometryType.COLLISION)
    geometry_data = geometry_model.createData()
    data = model.createData()
    q = pin.neutral(model)
    for name, value in zip(spec.joint_names, spec.default_pose, strict=True):
        q[model.joints[model.getJointId(name)].idx_q] = value
    pin.updateGeometryPlacements(model, data, geometry_model, geometry_data, q)
    extents: dict[str, tuple[float, float]] = {}
    for geometry, placement in zip(geometry_model.geometryObjects, geometry_data.oMg, strict=True):
        low, high = world_z_extent(geometry, placement)
        link = model.frames[geometry.parentFrame].name
        old_low, old_high = extents.get(link, (np.inf, -np.inf))
        extents[link] = (min(low, old_low), max(high, old_high))
    return extents


def test_nominal_base_height_matches_the_default_pose_within_5_mm(spec: RobotSpec, kinematics: RobotKinematics) -> None:
    extents = default_pose_extents(spec, kinematics)
    sole_heights = [extents[foot][0] for foot in spec.foot_links]
    assert sole_heights[0] == pytest.approx(sole_heights[1], abs=1e-9)
    assert -min(sole_heights) == pytest.approx(spec.nominal_base_height, abs=0.005)
    # The soles are the lowest points of the robot, so standing means standing on the feet.
    assert min(low for low, _ in extents.values()) == pytest.approx(min(sole_heights), abs=1e-9)


def test_standing_height_is_between_1_3_and_1_6_m(spec: RobotSpec, kinematics: RobotKinematics) -> None:
    extents = default_pose_extents(spec, kinematics)
    height = max(high for _, high in extents.values()) - min(low for low, _ in extents.values())
    assert 1.3 <= height <= 1.6


def test_default_pose_puts_the_com_over_the_feet(spec: RobotSpec, kinematics: RobotKinematics) -> None:
    feet = kinematics.foot_positions_in_base(spec.default_pose)
    com = kinematics.com_in_base(spec.default_pose)
    length, width = spec.foot_size
    assert abs(com[0] - feet[:, 0].mean()) < 0.5 * length
    assert feet[1, 1] - width / 2 < com[1] < feet[0, 1] + width / 2
    assert feet[0, 2] == pytest.approx(feet[1, 2])  # both soles level


def test_bad_inputs_are_rejected_with_a_clear_error(spec: RobotSpec, kinematics: RobotKinematics) -> None:
    with pytest.raises(ValueError, match=r"expected \(21,\) in policy order"):
        kinematics.foot_positions_in_base(np.zeros(20))
    with pytest.raises(ValueError, match="unit quaternion"):
        kinematics.com(np.zeros(3), np.zeros(4), spec.default_pose)
    with pytest.raises(ValueError, match="unit quaternion"):
        kinematics.com(np.zeros(3), np.full(4, np.nan), spec.default_pose)


def test_a_non_unit_quaternion_is_normalised(spec: RobotSpec, kinematics: RobotKinematics) -> None:
    quat = np.array([0.1, -0.2, 0.3, 0.9])
    unit = quat / np.linalg.norm(quat)
    pos = np.array([0.5, -0.2, 0.8])
    np.testing.assert_allclose(
        kinematics.foot_positions(pos, 3.0 * quat, spec.default_pose),
        kinematics.foot_positions(pos, unit, spec.default_pose),
        atol=1e-12,
    )


def test_kinematics_of_a_robot_without_arms_needs_no_code_change(tmp_path: Path, spec: RobotSpec) -> None:
    root = ET.parse(spec.urdf_path).getroot()
    arms = [j for j in root.findall("joint") if "shoulder" in j.get("name", "") or "elbow" in j.get("name", "")]
    arm_links = {j.find("child").get("link") for j in arms}  # type: ignore[union-attr]
    for element in list(root):
        if element in arms or (element.tag == "link" and element.get("name") in arm_links):
            root.remove(element)
    (tmp_path / "legs.urdf").write_text(ET.tostring(root, encoding="unicode"))
    data: dict[str, Any] = yaml.safe_load(spec.config_path.read_text())
    data["urdf"] = "legs.urdf"
    data["joints"] = [e for e in data["joints"] if "shoulder" not in e["name"] and "elbow" not in e["name"]]
    (tmp_path / "legs.yaml").write_text(yaml.safe_dump(data))
    legs = RobotSpec.load(tmp_path / "legs.yaml")
    legs_kinematics = RobotKinematics(legs)
    full = RobotKinematics(spec)
    arm_mass = sum(
        float(link.find("inertial/mass").get("value"))  # type: ignore[union-attr]
        for link in ET.parse(spec.urdf_path).getroot().findall("link")
        if link.get("name") in arm_links
    )
    assert legs_kinematics.total_mass == pytest.approx(full.total_mass - arm_mass)
    np.testing.assert_allclose(
        legs_kinematics.foot_positions_in_base(legs.default_pose), full.foot_positions_in_base(spec.default_pose)
    )


def test_com_and_feet_for_the_shield_take_microseconds(spec: RobotSpec, kinematics: RobotKinematics) -> None:
    """Loose bound (typically ~10 us here): catches a rebuilt model or a fresh pin.Data per call (ms)."""
    pos, quat, q = np.array([0.0, 0.0, 0.8]), np.array([0.0, 0.0, 0.0, 1.0]), spec.default_pose.copy()
    durations = []
    for _ in range(2000):
        start = time.perf_counter()
        kinematics.com_and_foot_positions(pos, quat, q)
        durations.append(time.perf_counter() - start)
    assert np.median(durations) < 200e-6
