"""`humanoid-rl check-robot` on robot descriptions from the wild: it loads the URDF in pinocchio and in the
PyBullet simulator, refuses multi-DoF joints, names links whose mass the two disagree on, takes the quirks
PyBullet takes, and finds the URDF relative to the YAML, by absolute path or as package://. Every robot here is
a small URDF the test writes itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from humanoid_rl import cli
from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.robot_spec import RobotConfigError, RobotSpec
from humanoid_rl.sim.simulator import HumanoidSim, SimConfig

JOINTS = ("left_hip_joint", "left_ankle_joint", "right_hip_joint", "right_ankle_joint")


def box_link(name: str, size: str, mass: float | None, z: float, x: float = 0.0) -> str:
    inertial = (
        ""
        if mass is None
        else f'<inertial><origin xyz="{x} 0 {z}"/><mass value="{mass}"/>'
        '<inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial>'
    )
    shape = f'<origin xyz="{x} 0 {z}"/><geometry><box size="{size}"/></geometry>'
    return f'<link name="{name}">{inertial}<visual>{shape}</visual><collision>{shape}</collision></link>'


def joint(name: str, parent: str, child: str, xyz: str, kind: str = "revolute") -> str:
    limit = '<axis xyz="0 1 0"/><limit lower="-1" upper="1" velocity="10" effort="100"/>' if kind == "revolute" else ""
    return (
        f'<joint name="{name}" type="{kind}"><parent link="{parent}"/><child link="{child}"/>'
        f'<origin xyz="{xyz}"/>{limit}</joint>'
    )


def tiny_urdf(leg_mass: float | None = 2.0, extra: str = "") -> str:
    """A 4-joint pair of legs: pelvis, hip pitch, 0.4 m leg, ankle pitch, foot with its sole 2 cm ahead."""
    parts = [box_link("pelvis", "0.2 0.3 0.1", 10.0, 0.0)]
    for side, y in (("left", 0.1), ("right", -0.1)):
        parts += [
            box_link(f"{side}_leg", "0.05 0.05 0.4", leg_mass if side == "left" else 2.0, -0.2),
            box_link(f"{side}_foot", "0.2 0.1 0.03", 0.5, -0.035, x=0.02),
            joint(f"{side}_hip_joint", "pelvis", f"{side}_leg", f"0 {y} -0.05"),
            joint(f"{side}_ankle_joint", f"{side}_leg", f"{side}_foot", "0 0 -0.4"),
        ]
    return '<?xml version="1.0"?>\n<robot name="tiny">' + "".join(parts) + extra + "</robot>\n"


def tiny_yaml(urdf: str, **extra: object) -> dict:
    return {
        "name": "tiny",
        "urdf": urdf,
        "base_link": "pelvis",
        "imu_link": "pelvis",
        "foot_links": {"left": "left_foot", "right": "right_foot"},
        "nominal_base_height": 0.5,
        "joints": [{"name": name, "default": 0.0, "kp": 100.0, "kd": 2.0} for name in JOINTS],
        **extra,
    }


def write(directory: Path, urdf_text: str | bytes = "", urdf_name: str = "tiny.urdf", **yaml_extra: object) -> Path:
    urdf_path = directory / urdf_name
    urdf_path.parent.mkdir(parents=True, exist_ok=True)
    data = urdf_text if isinstance(urdf_text, bytes) else (urdf_text or tiny_urdf()).encode()
    urdf_path.write_bytes(data)
    config = directory / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_yaml(yaml_extra.pop("urdf", urdf_name), **yaml_extra), sort_keys=False))
    return config


def check_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert cli.main(["check-robot", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def one_line_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(["check-robot", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_a_small_robot_from_the_wild_passes_and_pinocchio_and_pybullet_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = check_json(capsys, "--robot-config", str(write(tmp_path)))
    assert data["name"] == "tiny" and [j["name"] for j in data["joints"]] == list(JOINTS)
    models = data["models"]
    assert models["pinocchio_mass"] == pytest.approx(15.0) and models["pybullet_mass"] == pytest.approx(15.0)
    assert models["standing_base_height"] == pytest.approx(0.5, abs=1e-3) and models["warnings"] == []
    sole = data["soles"][0]  # from the foot's collision box: 2 cm ahead of the ankle, 5 cm below it
    assert sole["size"] == pytest.approx([0.2, 0.1]) and sole["offset"] == pytest.approx([0.02, 0.0, -0.05])


def test_the_positional_form_and_robot_config_agree_and_two_different_configs_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write(tmp_path))
    assert check_json(capsys, config) == check_json(capsys, "--robot-config", config)
    assert "two robot configs" in one_line_error(capsys, "humanoid", "--robot-config", config)


@pytest.mark.parametrize("kind", ["spherical", "floating", "planar"])
def test_a_multi_dof_joint_is_refused_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    extra = box_link("head", "0.1 0.1 0.1", 1.0, 0.05) + joint("neck_joint", "pelvis", "head", "0 0 0.1", kind)
    message = one_line_error(capsys, "--robot-config", str(write(tmp_path, tiny_urdf(extra=extra))))
    assert f"joint neck_joint': a {kind} joint" in message and "Fix: replace it with revolute joints" in message


def test_a_link_without_inertial_is_named_with_the_mass_each_model_gives_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = check_json(capsys, "--robot-config", str(write(tmp_path, tiny_urdf(leg_mass=None))))["models"]
    assert models["pinocchio_mass"] == pytest.approx(13.0)  # the left leg counts 0 kg
    assert models["pybullet_mass"] == pytest.approx(14.0)  # and 1 kg in PyBullet
    assert any(
        "'left_leg' has no <inertial>: PyBullet simulates it as 1 kg, pinocchio" in w and "as 0 kg" in w
        for w in models["warnings"]
    )
    assert any("total mass: PyBullet 14.000 kg, pinocchio 13.000 kg" in w for w in models["warnings"])


def test_a_trailing_nul_that_pybullet_accepts_is_accepted_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, tiny_urdf().encode() + b"\x00\n\x00")
    assert check_json(capsys, "--robot-config", str(config))["models"]["warnings"] == []
    spec = RobotSpec.load(config)
    assert RobotKinematics(spec).total_mass == pytest.approx(15.0)
    with HumanoidSim(spec, SimConfig(seed=0)) as sim:
        sim.reset(seed=0)
        assert sim.standing_base_height == pytest.approx(0.5, abs=1e-3)


def test_the_urdf_may_be_relative_absolute_or_a_package_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    relative = RobotSpec.load(write(tmp_path / "a", urdf_name="urdf/tiny.urdf"))
    assert relative.urdf_path == (tmp_path / "a" / "urdf" / "tiny.urdf").resolve()
    absolute = RobotSpec.load(write(tmp_path / "b", urdf=str(relative.urdf_path)))
    assert absolute.urdf_path == relative.urdf_path
    # package://: a folder listed in package_dirs that holds the package ...
    packages = tmp_path / "src"
    write(packages / "tiny_description", urdf_name="urdf/tiny.urdf")
    via_dirs = RobotSpec.load(
        write(tmp_path / "c", urdf="package://tiny_description/urdf/tiny.urdf", package_dirs=["../src"])
    )
    assert via_dirs.urdf_path == (packages / "tiny_description" / "urdf" / "tiny.urdf").resolve()
    # ... or share/NAME of an install prefix on AMENT_PREFIX_PATH, as a sourced ROS workspace provides it.
    prefix = tmp_path / "install"
    write(prefix / "share" / "tiny_description", urdf_name="urdf/tiny.urdf")
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"/nonexistent:{prefix}")
    via_ament = RobotSpec.load(write(tmp_path / "d", urdf="package://tiny_description/urdf/tiny.urdf"))
    assert via_ament.urdf_path == (prefix / "share" / "tiny_description" / "urdf" / "tiny.urdf").resolve()
    monkeypatch.setenv("AMENT_PREFIX_PATH", "")
    with pytest.raises(RobotConfigError, match="no file 'urdf/tiny.urdf' in package 'tiny_description'"):
        RobotSpec.load(write(tmp_path / "e", urdf="package://tiny_description/urdf/tiny.urdf"))


def test_a_base_orientation_for_y_up_models_is_read_and_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, base_orientation_rpy=[1.5707963, 0.0, 0.0])
    assert RobotSpec.load(config).base_orientation_rpy == (1.5707963, 0.0, 0.0)
    with pytest.raises(RobotConfigError, match="base_orientation_rpy"):
        RobotSpec.load(write(tmp_path, base_orientation_rpy=[1.57, 0.0]))
