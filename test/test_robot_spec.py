"""RobotSpec: the shipped humanoid loads as documented, the URDF is the generator's output and physically sane,
every validation names the file, the key and the fix, another robot works without code changes, and plain
PD at the default pose keeps the robot standing in PyBullet."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from humanoid_rl.core.robot_spec import RobotConfigError, RobotSpec

REPO = Path(__file__).resolve().parents[1]
SHIPPED_YAML = REPO / "config" / "robots" / "humanoid.yaml"
SHIPPED_URDF = REPO / "urdf" / "humanoid.urdf"

POLICY_ORDER = (
    "left_hip_yaw_joint", "left_hip_roll_joint", "left_hip_pitch_joint",
    "left_knee_joint", "left_ankle_pitch_joint", "left_ankle_roll_joint",
    "right_hip_yaw_joint", "right_hip_roll_joint", "right_hip_pitch_joint",
    "right_knee_joint", "right_ankle_pitch_joint", "right_ankle_roll_joint",
    "torso_yaw_joint",
    "left_shoulder_pitch_joint", "left_shoulder_roll_joint", "left_shoulder_yaw_joint", "left_elbow_joint",
    "right_shoulder_pitch_joint", "right_shoulder_roll_joint", "right_shoulder_yaw_joint", "right_elbow_joint",
)  # fmt: skip
ARM_JOINT_SUFFIXES = ("shoulder_pitch_joint", "shoulder_roll_joint", "shoulder_yaw_joint", "elbow_joint")


@pytest.fixture(scope="module")
def spec() -> RobotSpec:
    return RobotSpec.load(SHIPPED_YAML)


def urdf_root() -> ET.Element:
    return ET.parse(SHIPPED_URDF).getroot()


def link_masses() -> dict[str, float]:
    return {
        link.get("name", ""): float(link.find("inertial/mass").get("value"))  # type: ignore[union-attr]
        for link in urdf_root().findall("link")
    }


# ---------------------------------------------------------------------------------------------- shipped robot


def test_shipped_config_loads_with_21_joints_in_the_documented_policy_order(spec: RobotSpec) -> None:
    assert spec.name == "humanoid"
    assert spec.n_joints == 21
    assert spec.joint_names == POLICY_ORDER
    assert tuple(j.name for j in spec.joints) == POLICY_ORDER
    assert spec.base_link == "pelvis"
    assert spec.imu_link == "imu_link"
    assert spec.foot_links == ("left_foot", "right_foot")
    assert spec.foot_size == (0.22, 0.10)
    assert spec.physics_rate_hz == 1000.0
    assert spec.policy_rate_hz == 50.0
    assert spec.decimation == 20
    assert spec.urdf_path == SHIPPED_URDF.resolve()


def test_load_without_argument_finds_the_shipped_humanoid(spec: RobotSpec) -> None:
    assert RobotSpec.load() == spec


def test_derived_arrays_are_read_only_float64_in_policy_order(spec: RobotSpec) -> None:
    fields = {
        "lower": "lower", "upper": "upper", "velocity_limits": "velocity_limit", "effort_limits": "effort_limit",
        "kp": "kp", "kd": "kd", "default_pose": "default_position",
    }  # fmt: skip
    for array_name, joint_field in fields.items():
        array = getattr(spec, array_name)
        assert array.dtype == np.float64 and array.shape == (21,), array_name
        assert list(array) == [getattr(j, joint_field) for j in spec.joints], array_name
        with pytest.raises(ValueError):
            array[0] = 1.0  # shared by every user of the spec
    knee = spec.joint_index("left_knee_joint")
    assert spec.default_pose[knee] == 0.5
    assert spec.lower[knee] == 0.0 and spec.upper[knee] == 2.3


def test_config_hash_is_sha256_of_urdf_bytes_then_yaml_bytes(spec: RobotSpec) -> None:
    expected = hashlib.sha256(SHIPPED_URDF.read_bytes() + SHIPPED_YAML.read_bytes()).hexdigest()
    assert spec.config_hash == expected


def test_joint_index_names_the_closest_joint_for_a_typo(spec: RobotSpec) -> None:
    with pytest.raises(KeyError, match="left_knee_joint"):
        spec.joint_index("left_kne_joint")


def test_default_pose_is_slightly_crouched_with_flat_feet(spec: RobotSpec) -> None:
    for side in ("left", "right"):
        hip, knee, ankle = (spec.default_pose[spec.joint_index(f"{side}_{j}_joint")] for j in
                            ("hip_pitch", "knee", "ankle_pitch"))  # fmt: skip
        assert 0.3 <= knee <= 0.7
        assert hip < 0 and ankle < 0
        assert hip + knee + ankle == pytest.approx(0.0, abs=1e-12)  # pitch chain sums to zero: sole parallel to pelvis


# ---------------------------------------------------------------------------------------------- URDF model


def test_committed_urdf_equals_the_generator_output() -> None:
    script = REPO / "tools" / "generate_humanoid_urdf.py"
    module_spec = importlib.util.spec_from_file_location("generate_humanoid_urdf", script)
    assert module_spec is not None and module_spec.loader is not None
    generator = importlib.util.module_from_spec(module_spec)
    sys.modules["generate_humanoid_urdf"] = generator  # dataclasses need the module registered
    try:
        module_spec.loader.exec_module(generator)
        assert SHIPPED_URDF.read_text() == generator.build_urdf(), "run python tools/generate_humanoid_urdf.py"
    finally:
        del sys.modules["generate_humanoid_urdf"]


def test_urdf_joint_axes_follow_the_pitch_roll_yaw_naming() -> None:
    expected_axis = {"pitch": "0 1 0", "knee": "0 1 0", "elbow": "0 1 0", "roll": "1 0 0", "yaw": "0 0 1"}
    revolute = [j for j in urdf_root().findall("joint") if j.get("type") == "revolute"]
    assert len(revolute) == 21
    for joint in revolute:
        name = joint.get("name", "")
        kind = next(k for k in expected_axis if k in name)
        assert joint.find("axis").get("xyz") == expected_axis[kind], name  # type: ignore[union-attr]
        dynamics = joint.find("dynamics")
        assert dynamics is not None and 0.0 < float(dynamics.get("damping", "0")) <= 0.5, name


def test_joint_limits_are_realistic_for_a_40_kg_humanoid(spec: RobotSpec) -> None:
    by_name = {j.name: j for j in spec.joints}
    for side in ("left", "right"):
        knee, hip_pitch = by_name[f"{side}_knee_joint"], by_name[f"{side}_hip_pitch_joint"]
        assert knee.lower >= 0.0  # the knee bends one way only
        for joint in (knee, hip_pitch):
            assert 120.0 <= joint.effort_limit <= 200.0 and 15.0 <= joint.velocity_limit <= 20.0, joint.name
        for ankle in ("ankle_pitch", "ankle_roll"):
            assert 40.0 <= by_name[f"{side}_{ankle}_joint"].effort_limit <= 80.0
        for suffix in ARM_JOINT_SUFFIXES:
            assert 20.0 <= by_name[f"{side}_{suffix}"].effort_limit <= 40.0
    assert all(j.lower < j.default_position < j.upper for j in spec.joints)


def test_link_inertias_are_physically_valid() -> None:
    for link in urdf_root().findall("link"):
        inertia = link.find("inertial/inertia")
        assert inertia is not None, link.get("name")
        a = {k: float(v) for k, v in inertia.attrib.items()}
        tensor = np.array(
            [[a["ixx"], a["ixy"], a["ixz"]], [a["ixy"], a["iyy"], a["iyz"]], [a["ixz"], a["iyz"], a["izz"]]]
        )
        principal = np.linalg.eigvalsh(tensor)
        assert principal.min() > 0.0, link.get("name")
        assert principal[0] + principal[1] >= principal[2] * (1 - 1e-9), link.get("name")  # triangle inequality


def test_mass_split_is_realistic() -> None:
    masses = link_masses()
    total = sum(masses.values())
    assert 35.0 <= total <= 50.0
    assert 0.40 <= (masses["pelvis"] + masses["torso"]) / total <= 0.50
    for side in ("left", "right"):
        assert 0.7 <= masses[f"{side}_foot"] <= 1.3
        arm = sum(
            m for name, m in masses.items() if name.startswith(f"{side}_") and ("arm" in name or "shoulder" in name)
        )
        assert arm < 0.1 * total


def test_collision_geometry_is_primitive_and_feet_are_flat_boxes() -> None:
    for link in urdf_root().findall("link"):
        for geometry in link.findall("collision/geometry"):
            (shape,) = list(geometry)
            assert shape.tag in ("box", "cylinder", "sphere", "capsule"), link.get("name")
    for side in ("left", "right"):
        (foot,) = [link for link in urdf_root().findall("link") if link.get("name") == f"{side}_foot"]
        (box,) = foot.findall("collision/geometry/box")
        length, width, _ = (float(v) for v in box.get("size", "").split())
        assert (length, width) == (0.22, 0.10)


# ---------------------------------------------------------------------------------------------- validation


def write_robot(
    directory: Path,
    edit_yaml: Callable[[dict[str, Any]], None] | None = None,
    edit_urdf: Callable[[str], str] | None = None,
) -> Path:
    """A copy of the shipped robot in ``directory`` (URDF next to the YAML), optionally edited."""
    urdf_text = SHIPPED_URDF.read_text()
    (directory / "robot.urdf").write_text(edit_urdf(urdf_text) if edit_urdf else urdf_text)
    data = yaml.safe_load(SHIPPED_YAML.read_text())
    data["urdf"] = "robot.urdf"
    if edit_yaml:
        edit_yaml(data)
    config = directory / "robot.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


def joint_entry(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in data["joints"] if entry["name"] == name)


def rename_key(data: dict[str, Any], old: str, new: str) -> None:
    data[new] = data.pop(old)


def drop_limit_attribute(urdf: str, joint: str, attribute: str) -> str:
    pattern = rf'(<joint name="{joint}".*?<limit[^>]*?) {attribute}="[^"]*"'
    edited, count = re.subn(pattern, r"\1", urdf, count=1, flags=re.S)
    assert count == 1
    return edited


INVALID_CONFIGS: list[tuple[str, Callable[[dict[str, Any]], None] | None, Callable[[str], str] | None, str, str]] = [
    # (id, YAML edit, URDF edit, key named in the message, text the message must contain)
    ("missing_key", lambda d: d.pop("imu_link"), None, "imu_link", "missing"),
    ("typo_in_key", lambda d: rename_key(d, "nominal_base_height", "nominal_base_hieght"), None,
     "nominal_base_hieght", "did you mean 'nominal_base_height'"),
    ("typo_in_joint_key", lambda d: rename_key(d["joints"][0], "kp", "kpp"), None, "joints[0].kpp", "'kp'"),
    ("typo_in_rates_key", lambda d: rename_key(d["rates"], "policy_hz", "policy_rate"), None, "rates.policy_rate",
     "'policy_hz'"),
    ("joint_not_in_urdf", lambda d: joint_entry(d, "left_knee_joint").update(name="left_kne_joint"), None,
     "joints[3].name", "left_knee_joint"),
    ("urdf_joint_not_in_yaml", lambda d: d["joints"].pop(), None, "joints", "right_elbow_joint"),
    ("duplicate_joint", lambda d: d["joints"].__setitem__(1, dict(d["joints"][0])), None, "joints[1].name",
     "listed twice"),
    ("default_outside_limits", lambda d: joint_entry(d, "left_knee_joint").update(default=-0.1), None,
     "joints[3].default", "outside the URDF limits"),
    ("kp_zero", lambda d: d["joints"][0].update(kp=0.0), None, "joints[0].kp", "positive"),
    ("kd_negative", lambda d: d["joints"][2].update(kd=-1.0), None, "joints[2].kd", "positive"),
    ("kp_not_a_number", lambda d: d["joints"][0].update(kp="stiff"), None, "joints[0].kp", "number"),
    ("urdf_joint_without_effort_limit", None, lambda u: drop_limit_attribute(u, "left_knee_joint", "effort"),
     "joint left_knee_joint <limit>", "effort"),
    ("urdf_joint_without_velocity_limit", None, lambda u: drop_limit_attribute(u, "torso_yaw_joint", "velocity"),
     "joint torso_yaw_joint <limit>", "velocity"),
    ("foot_link_not_in_urdf", lambda d: d["foot_links"].update(left="left_sole"), None, "foot_links.left",
     "left_foot"),
    ("imu_link_not_in_urdf", lambda d: d.update(imu_link="imu"), None, "imu_link", "not in the URDF"),
    ("base_link_not_in_urdf", lambda d: d.update(base_link="base"), None, "base_link", "not in the URDF"),
    ("base_link_not_the_root", lambda d: d.update(base_link="torso"), None, "base_link", "root link"),
    ("policy_rate_zero", lambda d: d["rates"].update(policy_hz=0), None, "rates.policy_hz", "positive"),
    ("physics_rate_negative", lambda d: d["rates"].update(physics_hz=-1000), None, "rates.physics_hz", "positive"),
    ("physics_not_a_multiple_of_policy", lambda d: d["rates"].update(policy_hz=60), None, "rates.physics_hz",
     "integer multiple"),
    ("urdf_package_not_found", lambda d: d.update(urdf="package://no_such_pkg/urdf/humanoid.urdf"), None, "urdf",
     "package_dirs"),
    ("urdf_unknown_uri", lambda d: d.update(urdf="http://example.com/humanoid.urdf"), None, "urdf", "package://"),
    ("urdf_file_missing", lambda d: d.update(urdf="no_such.urdf"), None, "urdf", "does not exist"),
    ("passive_joint_unknown", lambda d: d.update(passive_joints=["left_wrist_joint"]), None, "passive_joints[0]",
     "not an actuated joint"),
    ("foot_size_not_a_pair", lambda d: d.update(foot_size=[0.22]), None, "foot_size", "[length, width]"),
    ("nominal_height_negative", lambda d: d.update(nominal_base_height=-0.8), None, "nominal_base_height",
     "positive"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit_yaml", "edit_urdf", "key", "text"),
    [case[1:] for case in INVALID_CONFIGS],
    ids=[case[0] for case in INVALID_CONFIGS],
)
def test_loader_rejects_an_invalid_config_naming_the_file_the_key_and_the_fix(
    tmp_path: Path,
    edit_yaml: Callable[[dict[str, Any]], None] | None,
    edit_urdf: Callable[[str], str] | None,
    key: str,
    text: str,
) -> None:
    config = write_robot(tmp_path, edit_yaml, edit_urdf)
    with pytest.raises(RobotConfigError) as caught:
        RobotSpec.load(config)
    error = caught.value
    message = str(error)
    assert error.key == key, message
    assert f"key '{key}'" in message
    assert text in message
    assert str(tmp_path) in message  # names the file (the YAML, or the URDF for URDF problems)
    assert "Fix: " in message and error.fix


def test_loader_rejects_a_yaml_that_names_a_missing_joint(tmp_path: Path) -> None:
    config = write_robot(tmp_path, lambda d: joint_entry(d, "left_elbow_joint").update(name="left_elbo_joint"))
    with pytest.raises(RobotConfigError, match=r"left_elbo_joint.*closest: left_elbow_joint"):
        RobotSpec.load(config)


def test_loader_rejects_a_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(RobotConfigError, match=r"does not exist.*Fix: "):
        RobotSpec.load(tmp_path / "nowhere.yaml")


def test_loader_rejects_a_file_that_is_not_yaml(tmp_path: Path) -> None:
    config = tmp_path / "robot.yaml"
    config.write_text("name: [unclosed\n")
    with pytest.raises(RobotConfigError, match="not valid YAML"):
        RobotSpec.load(config)


# ---------------------------------------------------------------------------------------------- other robots


def test_a_yaml_may_order_the_joints_differently_and_everything_follows(tmp_path: Path, spec: RobotSpec) -> None:
    config = write_robot(tmp_path, lambda d: d["joints"].reverse())
    reordered = RobotSpec.load(config)
    assert reordered.joint_names == tuple(reversed(POLICY_ORDER))
    np.testing.assert_array_equal(reordered.kp, spec.kp[::-1])
    np.testing.assert_array_equal(reordered.default_pose, spec.default_pose[::-1])
    np.testing.assert_array_equal(reordered.effort_limits, spec.effort_limits[::-1])
    assert reordered.config_hash != spec.config_hash  # a different policy interface: a different hash


def test_passive_joints_need_not_be_commanded(tmp_path: Path) -> None:
    def make_elbows_passive(data: dict[str, Any]) -> None:
        data["joints"] = [e for e in data["joints"] if not e["name"].endswith("elbow_joint")]
        data["passive_joints"] = ["left_elbow_joint", "right_elbow_joint"]

    passive = RobotSpec.load(write_robot(tmp_path, make_elbows_passive))
    assert passive.n_joints == 19
    assert passive.passive_joints == ("left_elbow_joint", "right_elbow_joint")


def trimmed_urdf_without_arms(urdf: str) -> str:
    """The shipped URDF minus both arms: a different, 13-joint robot."""
    root = ET.fromstring(urdf)
    arm_links = {
        f"{side}_{link}" for side in ("left", "right")
        for link in ("shoulder_pitch_link", "shoulder_roll_link", "upper_arm", "forearm")
    }  # fmt: skip
    for element in list(root):
        if element.tag == "link" and element.get("name") in arm_links:
            root.remove(element)
        if element.tag == "joint" and element.find("child").get("link") in arm_links:  # type: ignore[union-attr]
            root.remove(element)
    root.set("name", "legs_and_torso")
    return ET.tostring(root, encoding="unicode")


def without_arms(data: dict[str, Any]) -> None:
    data["name"] = "legs_and_torso"
    data["joints"] = [e for e in data["joints"] if not e["name"].endswith(ARM_JOINT_SUFFIXES)]


def test_another_robot_loads_from_its_own_yaml_and_urdf_with_no_code_change(tmp_path: Path) -> None:
    trimmed = RobotSpec.load(write_robot(tmp_path, without_arms, trimmed_urdf_without_arms))
    assert trimmed.name == "legs_and_torso"
    assert trimmed.n_joints == 13
    assert trimmed.joint_names == POLICY_ORDER[:13]
    assert trimmed.kp.shape == (13,)
    # Listing an arm joint that the trimmed URDF lacks is caught.
    with pytest.raises(RobotConfigError, match="left_shoulder_pitch_joint"):
        RobotSpec.load(write_robot(tmp_path, lambda d: d.update(name="x"), trimmed_urdf_without_arms))


def test_spec_is_immutable(spec: RobotSpec) -> None:
    with pytest.raises(AttributeError):
        spec.nominal_base_height = 1.0  # type: ignore[misc]
    assert copy.copy(spec) == spec


# ---------------------------------------------------------------------------------------------- standing


def test_plain_pd_at_the_default_pose_keeps_the_robot_standing_for_5_s_in_pybullet(spec: RobotSpec) -> None:
    """A model sanity check (the real simulator lives in humanoid_rl.sim): 1 kHz PD with the YAML gains and
    the URDF effort limits, torque control after disabling PyBullet's default velocity motors."""
    import pybullet as pb

    client = pb.connect(pb.DIRECT)
    try:
        pb.setGravity(0.0, 0.0, -9.81, physicsClientId=client)
        pb.setTimeStep(1.0 / spec.physics_rate_hz, physicsClientId=client)
        pb.createMultiBody(0, pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=client), physicsClientId=client)
        robot = pb.loadURDF(
            str(spec.urdf_path), [0.0, 0.0, spec.nominal_base_height + 0.002],
            flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client,
        )  # fmt: skip
        index = {
            pb.getJointInfo(robot, i, physicsClientId=client)[1].decode(): i
            for i in range(pb.getNumJoints(robot, physicsClientId=client))
        }
        joints = [index[name] for name in spec.joint_names]
        for joint, position in zip(joints, spec.default_pose, strict=True):
            pb.resetJointState(robot, joint, position, physicsClientId=client)
        pb.setJointMotorControlArray(
            robot, joints, pb.VELOCITY_CONTROL, forces=[0.0] * len(joints), physicsClientId=client
        )
        heights, tilts = [], []
        for _ in range(int(5.0 * spec.physics_rate_hz)):
            states = pb.getJointStates(robot, joints, physicsClientId=client)
            q = np.array([s[0] for s in states])
            qd = np.array([s[1] for s in states])
            torque = np.clip(spec.kp * (spec.default_pose - q) - spec.kd * qd, -spec.effort_limits, spec.effort_limits)
            pb.setJointMotorControlArray(robot, joints, pb.TORQUE_CONTROL, forces=torque, physicsClientId=client)
            pb.stepSimulation(physicsClientId=client)
            position, orientation = pb.getBasePositionAndOrientation(robot, physicsClientId=client)
            heights.append(position[2])
            tilts.append(abs(pb.getEulerFromQuaternion(orientation)[1]))
    finally:
        pb.disconnect(client)
    assert min(heights) > 0.8 * spec.nominal_base_height
    assert heights[-1] == pytest.approx(spec.nominal_base_height, abs=0.01)
    assert max(tilts[-1000:]) < 0.05  # settled upright, not slowly falling over


def test_no_links_collide_with_each_other_in_the_default_pose(spec: RobotSpec) -> None:
    """So that enabling PyBullet self-collision does not start the robot in contact with itself."""
    import pybullet as pb

    client = pb.connect(pb.DIRECT)
    try:
        robot = pb.loadURDF(
            str(spec.urdf_path), [0.0, 0.0, 1.0], flags=pb.URDF_USE_SELF_COLLISION, physicsClientId=client
        )
        index = {
            pb.getJointInfo(robot, i, physicsClientId=client)[1].decode(): i
            for i in range(pb.getNumJoints(robot, physicsClientId=client))
        }
        for name, position in zip(spec.joint_names, spec.default_pose, strict=True):
            pb.resetJointState(robot, index[name], position, physicsClientId=client)
        pb.performCollisionDetection(physicsClientId=client)
        contacts = pb.getContactPoints(robot, robot, physicsClientId=client)
    finally:
        pb.disconnect(client)
    assert [(c[3], c[4], c[8]) for c in contacts] == []
