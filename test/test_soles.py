"""Sole geometry per foot: read from the robot YAML (a box or contact points) or the URDF's foot collision,
carried to the sole-centre frames of the kinematics and used by the shield's support polygon. The shipped
robot's distances do not change; offset and unequal soles give the distances worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.robot_spec import RobotConfigError, RobotSpec, Sole
from humanoid_rl.core.shield_filter import BalanceState, JointLimits, SafetyFilter, support_polygon_distance

REPO = Path(__file__).resolve().parents[1]
SHIPPED_YAML = REPO / "config" / "robots" / "humanoid.yaml"
SHIPPED_URDF = REPO / "urdf" / "humanoid.urdf"


def robot_yaml(directory: Path, edit: Any = None, urdf_text: str | None = None) -> Path:
    """The shipped robot, its YAML edited by ``edit(data)``, in ``directory``."""
    (directory / "robot.urdf").write_text(SHIPPED_URDF.read_text() if urdf_text is None else urdf_text)
    data = yaml.safe_load(SHIPPED_YAML.read_text())
    data["urdf"] = "robot.urdf"
    if edit:
        edit(data)
    path = directory / "robot.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def with_soles(soles: dict[str, Any]) -> Any:
    def edit(data: dict[str, Any]) -> None:
        del data["foot_size"]
        data["soles"] = soles

    return edit


# ---------------------------------------------------------------------------------------------- robot YAML


def test_the_shipped_soles_are_its_foot_size_centred_6_cm_below_the_ankle() -> None:
    spec = RobotSpec.load(SHIPPED_YAML)
    assert spec.soles == (Sole((0.22, 0.10), (0.0, 0.0, -0.06)),) * 2
    assert spec.foot_size == (0.22, 0.10) and spec.sole_sizes == ((0.22, 0.10), (0.22, 0.10))


def test_without_foot_size_or_soles_the_foot_collision_box_of_the_urdf_is_the_sole(tmp_path: Path) -> None:
    spec = RobotSpec.load(robot_yaml(tmp_path, lambda d: d.pop("foot_size")))
    assert spec.soles[0].size == pytest.approx((0.22, 0.10), abs=1e-12)
    assert spec.soles[1].offset == pytest.approx((0.0, 0.0, -0.06), abs=1e-12)


def test_soles_may_be_boxes_with_offsets_or_contact_points_per_foot(tmp_path: Path) -> None:
    points = [[0.15, 0.05, -0.05], [0.15, -0.05, -0.05], [-0.09, 0.05, -0.05], [-0.09, -0.05, -0.05]]
    spec = RobotSpec.load(
        robot_yaml(
            tmp_path,
            with_soles({"left": {"size": [0.24, 0.1], "offset": [0.03, 0.0, -0.05]}, "right": {"points": points}}),
        )
    )
    assert spec.soles[0] == Sole((0.24, 0.1), (0.03, 0.0, -0.05))
    assert spec.soles[1].size == pytest.approx((0.24, 0.1)) and spec.soles[1].offset == pytest.approx((0.03, 0, -0.05))


@pytest.mark.parametrize(
    ("soles", "key", "text"),
    [
        ({"left": {"size": [0.2, 0.0]}}, "soles.left.size", "positive"),
        ({"left": {"size": [0.2]}}, "soles.left.size", "[length, width]"),
        ({"left": {"size": [0.2, 0.1], "points": [[0, 0], [1, 0], [0, 1]]}}, "soles.left", "either"),
        ({"right": {"offset": [0.0, 0.0, 0.0]}}, "soles.right", "either"),
        ({"right": {"points": [[0.1, 0.05], [0.1, -0.05], [-0.1, 0.0]]}}, "soles.right.points", "fill only 50%"),
        ({"right": {"points": [[0.1, 0.0], [0.0, 0.0], [-0.1, 0.0]]}}, "soles.right.points", "no area"),
        ({"middle": {"size": [0.2, 0.1]}}, "soles.middle", "unknown key"),
        ({"left": {"size": [0.2, 0.1], "heel": 1}}, "soles.left.heel", "unknown key"),
    ],
)
def test_a_bad_sole_is_refused_naming_its_key(tmp_path: Path, soles: dict, key: str, text: str) -> None:
    with pytest.raises(RobotConfigError) as caught:
        RobotSpec.load(robot_yaml(tmp_path, with_soles(soles)))
    assert caught.value.key == key and text in str(caught.value)


def test_foot_size_and_soles_together_are_refused_as_two_statements_of_one_fact(tmp_path: Path) -> None:
    with pytest.raises(RobotConfigError, match="both 'foot_size' and 'soles'"):
        RobotSpec.load(robot_yaml(tmp_path, lambda d: d.update(soles={"left": {"size": [0.2, 0.1]}})))


def test_a_foot_without_a_collision_box_needs_soles_in_the_yaml(tmp_path: Path) -> None:
    urdf = SHIPPED_URDF.read_text().replace('<geometry><box size="0.22 0.1 0.04"/></geometry>', "<geometry/>")
    with pytest.raises(RobotConfigError) as caught:
        RobotSpec.load(robot_yaml(tmp_path, lambda d: d.pop("foot_size"), urdf))
    assert caught.value.key == "<link left_foot> <collision>" and "give 'soles:'" in str(caught.value)
    assert caught.value.file == str((tmp_path / "robot.urdf").resolve())


# ---------------------------------------------------------------------------------------------- kinematics


def test_sole_centres_of_the_shipped_robot_are_its_foot_positions_bit_for_bit() -> None:
    spec = RobotSpec.load(SHIPPED_YAML)
    kinematics = RobotKinematics(spec)
    rng = np.random.default_rng(1)
    for _ in range(20):
        q = spec.default_pose + rng.normal(0.0, 0.3, spec.n_joints)
        quat = rng.normal(size=4)
        quat /= np.linalg.norm(quat)
        pos = rng.normal(0.0, 1.0, 3)
        com, soles = kinematics.com_and_sole_centres(pos, quat, q)
        com_before, feet = kinematics.com_and_foot_positions(pos, quat, q)
        assert np.array_equal(soles, feet) and np.array_equal(com, com_before)


def test_a_sole_offset_moves_the_sole_centre_along_the_foot(tmp_path: Path) -> None:
    spec = RobotSpec.load(
        robot_yaml(tmp_path, with_soles({"left": {"size": [0.22, 0.1], "offset": [0.03, 0.01, -0.06]}}))
    )
    kinematics = RobotKinematics(spec)
    pose = spec.default_pose  # feet flat and straight: the offset is a base-frame x/y shift
    np.testing.assert_allclose(
        kinematics.sole_centres_in_base(pose) - kinematics.foot_positions_in_base(pose),
        [[0.03, 0.01, 0.0], [0.0, 0.0, 0.0]],
        atol=1e-12,
    )
    yaw = math.pi / 2  # turned left by 90°: forward is world +y
    quat = np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])
    _, soles = kinematics.com_and_sole_centres(np.zeros(3), quat, pose)
    feet = kinematics.foot_positions(np.zeros(3), quat, pose)
    np.testing.assert_allclose(soles[0] - feet[0], [-0.01, 0.03, 0.0], atol=1e-12)


# ---------------------------------------------------------------------------------------------- support polygon


def support_distance_before_per_foot_soles(point, feet, contacts, size, yaw) -> float:
    """The support-polygon distance as the shield computed it before soles per foot (equal soles at the feet)."""
    px, py = point
    if contacts[0] and not contacts[1]:
        (fx, fy), (gx, gy), two = feet[0], feet[0], False
    elif contacts[1] and not contacts[0]:
        (fx, fy), (gx, gy), two = feet[1], feet[1], False
    else:
        (fx, fy), (gx, gy), two = feet[0], feet[1], True
    c, s = math.cos(yaw), math.sin(yaw)
    ex, ey = c * (fx - px) + s * (fy - py), -s * (fx - px) + c * (fy - py)
    dx = dy = 0.0
    if two:
        dx, dy = c * (gx - fx) + s * (gy - fy), -s * (gx - fx) + c * (gy - fy)
    hl, hw = 0.5 * size[0], 0.5 * size[1]
    distance = min(ex + max(dx, 0.0) + hl, -ex + max(-dx, 0.0) + hl, ey + max(dy, 0.0) + hw, -ey + max(-dy, 0.0) + hw)
    span = math.hypot(dx, dy)
    if span > 1e-9:
        nx, ny = -dy / span, dx / span
        along, reach = nx * ex + ny * ey, hl * abs(nx) + hw * abs(ny)
        distance = min(distance, along + reach, -along + reach)
    if distance < 0.0:
        for k in range(16):
            ux, uy = math.cos(k * math.pi / 8), math.sin(k * math.pi / 8)
            value = ux * ex + uy * ey + max(ux * dx + uy * dy, 0.0) + hl * abs(ux) + hw * abs(uy)
            distance = min(distance, value)
    return distance


def test_the_shipped_geometry_gives_the_distances_it_gave_before_within_1e_9() -> None:
    rng = np.random.default_rng(11)
    sizes = RobotSpec.load(SHIPPED_YAML).sole_sizes
    for _ in range(2000):
        feet = rng.normal(0.0, 0.15, (2, 2))
        contacts = rng.random(2) < 0.7
        point, yaw = rng.normal(0.0, 0.3, 2), rng.uniform(-np.pi, np.pi)
        before = support_distance_before_per_foot_soles(point, feet, contacts, sizes[0], yaw)
        assert support_polygon_distance(point, feet, contacts, sizes, yaw) == pytest.approx(before, abs=1e-9)


def test_a_sole_centre_3_cm_ahead_of_the_ankle_moves_the_polygon_forward() -> None:
    # Ankles at (0, ±0.1), soles 0.22 x 0.10 centred 3 cm ahead: the polygon spans x in [-0.08, 0.14].
    soles = np.array([[0.03, 0.1], [0.03, -0.1]])
    size = ((0.22, 0.10), (0.22, 0.10))
    assert support_polygon_distance((0.0, 0.0), soles, (True, True), size, 0.0) == pytest.approx(0.08)
    assert support_polygon_distance((0.12, 0.0), soles, (True, True), size, 0.0) == pytest.approx(0.02)
    assert support_polygon_distance((-0.1, 0.0), soles, (True, True), size, 0.0) == pytest.approx(-0.02)
    # Turned by 90°: the same sole, now ahead along world +y.
    turned = np.array([[-0.1, 0.03], [0.1, 0.03]])
    assert support_polygon_distance((0.0, 0.0), turned, (True, True), size, math.pi / 2) == pytest.approx(0.08)


def test_soles_of_different_sizes_make_a_hull_with_a_slanted_bridge() -> None:
    # Left 0.20 x 0.10 at (0, 0.1): x in [-0.1, 0.1], y in [0.05, 0.15]. Right 0.30 x 0.10 at (0.05, -0.1):
    # x in [-0.1, 0.2], y in [-0.15, -0.05]. The front bridge runs from (0.1, 0.15) to (0.2, -0.05), normal
    # (2, 1)/√5; the point (0.1, 0) lies 0.15/√5 = 0.0671 m inside it (the other edges are ≥ 0.15 m away).
    soles, sizes = np.array([[0.0, 0.1], [0.05, -0.1]]), ((0.20, 0.10), (0.30, 0.10))
    assert support_polygon_distance((0.1, 0.0), soles, (True, True), sizes, 0.0) == pytest.approx(0.15 / math.sqrt(5))
    # The back edge x = -0.1 is shared: 0.05 m from (-0.05, 0).
    assert support_polygon_distance((-0.05, 0.0), soles, (True, True), sizes, 0.0) == pytest.approx(0.05)
    # On the right foot alone, its own rectangle: (0.05, -0.1) is 0.05 m from its long sides.
    assert support_polygon_distance((0.05, -0.1), soles, (False, True), sizes, 0.0) == pytest.approx(0.05)


def test_the_capture_point_check_uses_the_soles_given_per_foot() -> None:
    flt = SafetyFilter(JointLimits.from_robot_spec(RobotSpec.load(SHIPPED_YAML)))
    soles = np.array([[0.03, 0.1, 0.0], [0.03, -0.1, 0.0]])

    def distance(sizes: Any) -> float:
        balance = BalanceState(0.0, 0.0, np.zeros(2), np.zeros(2), 0.7, soles, np.array([True, True]), sizes, 0.0)
        return flt.assess_balance(balance).capture_point_distance

    assert distance(((0.22, 0.10), (0.22, 0.10))) == pytest.approx(0.08)
    assert distance((0.22, 0.10)) == pytest.approx(0.08)  # one size for both soles
    # A longer left sole (heel at x = -0.12) slants the back edge to the right heel corner (-0.08, -0.15):
    # from (-0.12, 0.05), direction (0.04, -0.2), so the origin is (0.2·0.12 - 0.04·0.05)/√(0.2² + 0.04²) inside.
    assert distance(((0.30, 0.10), (0.22, 0.10))) == pytest.approx(0.022 / math.hypot(0.2, 0.04))
    assert distance(((0.30, 0.10), (0.30, 0.10))) == pytest.approx(0.12)


def foot_collisions(urdf: str, link: str, collisions: str) -> str:
    """The shipped URDF with ``link``'s collision elements replaced."""
    start = urdf.index(f'<link name="{link}">')
    end = urdf.index("</link>", start)
    body = urdf[start:end]
    kept = body[: body.index("<collision>")] if "<collision>" in body else body
    return urdf[:start] + kept + collisions + urdf[end:]


def test_collision_spheres_at_the_sole_corners_are_its_contact_points(tmp_path: Path) -> None:
    spheres = "".join(
        f'<collision><origin xyz="{x} {y} -0.04"/><geometry><sphere radius="0.01"/></geometry></collision>'
        for x in (-0.08, 0.14)
        for y in (-0.04, 0.04)
    )
    urdf = foot_collisions(SHIPPED_URDF.read_text(), "left_foot", spheres)
    spec = RobotSpec.load(robot_yaml(tmp_path, lambda d: d.pop("foot_size"), urdf))
    assert spec.soles[0].size == pytest.approx((0.22, 0.08)) and spec.soles[0].offset == pytest.approx((0.03, 0, -0.05))
    assert spec.soles[1].size == pytest.approx((0.22, 0.10))  # the right foot keeps its box


def test_a_collision_box_turned_by_its_origin_gives_the_turned_footprint(tmp_path: Path) -> None:
    # A 0.10 x 0.22 box turned 90° about z is the 0.22 x 0.10 sole; 0.04 thick about z = -0.04: 6 cm down.
    box = (
        f'<collision><origin xyz="0.01 0 -0.04" rpy="0 0 {math.pi / 2}"/>'
        '<geometry><box size="0.10 0.22 0.04"/></geometry></collision>'
    )
    urdf = foot_collisions(SHIPPED_URDF.read_text(), "left_foot", box)
    sole = RobotSpec.load(robot_yaml(tmp_path, lambda d: d.pop("foot_size"), urdf)).soles[0]
    assert sole.size == pytest.approx((0.22, 0.10)) and sole.offset == pytest.approx((0.01, 0.0, -0.06))
