"""`humanoid-rl check-robot` on robot descriptions from the wild: it loads the URDF in pinocchio and in the
PyBullet simulator, refuses multi-DoF joints, names links whose mass the two disagree on, takes the quirks
PyBullet takes, and finds the URDF relative to the YAML, by absolute path or as package://. Every robot here is
a small URDF the test writes itself."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from robot_fixtures import JOINTS, box_link, joint, tiny_urdf, write, y_up_urdf

from humanoid_rl import cli
from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.robot_spec import RobotConfigError, RobotSpec
from humanoid_rl.sim.simulator import HumanoidSim, SimConfig


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


def test_a_trailing_nul_or_leading_blank_that_pybullet_accepts_is_accepted_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, b"\n  " + tiny_urdf().encode() + b"\x00\n\x00")  # and blanks before <?xml
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


def test_a_model_drawn_y_up_stands_upright_with_its_base_orientation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, y_up_urdf(), base_orientation_rpy=[math.pi / 2, 0.0, 0.0])
    spec = RobotSpec.load(config)
    assert spec.base_orientation_rpy == (math.pi / 2, 0.0, 0.0)
    # The soles come from the foot boxes, read in the upright frame: 0.2 long, 0.1 wide, 2 cm ahead, 5 cm down.
    for sole in spec.soles:
        assert sole.size == pytest.approx((0.2, 0.1)) and sole.offset == pytest.approx((0.02, 0.0, -0.05))
    upright = np.array([math.sin(math.pi / 4), 0.0, 0.0, math.cos(math.pi / 4)])
    kinematics = RobotKinematics(spec)
    _, soles = kinematics.com_and_sole_centres(np.array([0.0, 0.0, 0.5]), upright, spec.default_pose)
    np.testing.assert_allclose(soles, [[0.02, 0.1, 0.05], [0.02, -0.1, 0.05]], atol=1e-12)  # left is +y

    data = check_json(capsys, "--robot-config", str(config))
    assert data["base_orientation_rpy"] == [math.pi / 2, 0.0, 0.0] and data["models"]["warnings"] == []
    with HumanoidSim(spec, SimConfig(seed=0)) as sim:
        assert sim.standing_base_height == pytest.approx(0.5, abs=1e-3)
        np.testing.assert_allclose(sim.ground_truth().quat, upright, atol=1e-6)
        sim.set_joint_targets(spec.default_pose)
        sim.step(2000)
        truth = sim.ground_truth()
        assert truth.pos[2] == pytest.approx(0.5, abs=0.01)
        np.testing.assert_allclose(truth.projected_gravity, [0.0, -1.0, 0.0], atol=0.02)  # base y is up
        assert truth.tilt_rad < 0.02  # upright as the spec defines it
    with pytest.raises(RobotConfigError, match="base_orientation_rpy"):
        RobotSpec.load(write(tmp_path, base_orientation_rpy=[1.57, 0.0]))


def test_a_world_link_with_a_floating_joint_is_refused_saying_how_to_fix_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = '<link name="world"/>' + joint("world_joint", "world", "pelvis", "0 0 0", "floating")
    message = one_line_error(capsys, "--robot-config", str(write(tmp_path, tiny_urdf(extra=world))))
    assert "a floating joint" in message and "remove link 'world' and this joint" in message


def test_a_massless_base_is_named_because_pybullet_would_fix_it_in_space(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    urdf = tiny_urdf().replace('<mass value="10.0"/>', '<mass value="0"/>')
    warnings = check_json(capsys, "--robot-config", str(write(tmp_path, urdf)))["models"]["warnings"]
    assert any("base link 'pelvis' has no mass: PyBullet fixes a massless base in space" in w for w in warnings)


def test_an_unreadable_foot_collision_is_one_line_naming_the_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    urdf = tiny_urdf().replace('<box size="0.2 0.1 0.03"/>', '<box size="0.2 wide 0.03"/>', 2)  # left foot
    message = one_line_error(capsys, "--robot-config", str(write(tmp_path, urdf)))
    assert "<link left_foot> <collision>" in message and "cannot read the collision shapes" in message


def test_the_table_shows_each_sole_and_both_models_masses(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-robot", "--robot-config", "biped12"]) == 0
    out = capsys.readouterr().out
    assert "left sole      0.240 x 0.090 m, centre (+0.030, +0.000, -0.050) m in the foot frame" in out
    assert "models         pinocchio 27.810 kg, PyBullet 27.810 kg, standing base height in PyBullet 0.7807 m" in out
    assert "warning" not in out
