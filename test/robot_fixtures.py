"""Small robots the tests write themselves (URDF + robot YAML in a tmp folder): a 4-joint pair of legs, z-up or
drawn y-up."""

from __future__ import annotations

from pathlib import Path

import yaml

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


def y_up_urdf() -> str:
    """The tiny robot drawn y-up (x forward, y up, z to the right): legs along -y, pitch joints about z."""

    def link(name: str, size: str, mass: float, centre: str) -> str:
        shape = f'<origin xyz="{centre}"/><geometry><box size="{size}"/></geometry>'
        return (
            f'<link name="{name}"><inertial><origin xyz="{centre}"/><mass value="{mass}"/>'
            '<inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial>'
            f"<visual>{shape}</visual><collision>{shape}</collision></link>"
        )

    def pitch(name: str, parent: str, child: str, xyz: str) -> str:
        return (
            f'<joint name="{name}" type="revolute"><parent link="{parent}"/><child link="{child}"/>'
            f'<origin xyz="{xyz}"/><axis xyz="0 0 -1"/><limit lower="-1" upper="1" velocity="10" effort="100"/></joint>'
        )

    parts = [link("pelvis", "0.2 0.1 0.3", 10.0, "0 0 0")]
    for side, z in (("left", -0.1), ("right", 0.1)):
        parts += [
            link(f"{side}_leg", "0.05 0.4 0.05", 2.0, "0 -0.2 0"),
            link(f"{side}_foot", "0.2 0.03 0.1", 0.5, "0.02 -0.035 0"),
            pitch(f"{side}_hip_joint", "pelvis", f"{side}_leg", f"0 -0.05 {z}"),
            pitch(f"{side}_ankle_joint", f"{side}_leg", f"{side}_foot", "0 -0.4 0"),
        ]
    return '<?xml version="1.0"?>\n<robot name="tiny_y_up">' + "".join(parts) + "</robot>\n"
