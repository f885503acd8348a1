"""`humanoid-rl check-robot`: load a robot config (YAML + URDF, checked against each other) and print it.

The table is what the policy sees, in policy order: limits from the URDF, gains and default pose from the
YAML. Any problem is a RobotConfigError naming the file, the key and the fix (printed as one line).

The URDF is also loaded the two other ways the stack loads it, so a robot that passes here runs in `sim`:
pinocchio (the shield's and estimator's kinematics) and the PyBullet simulator (posed in its default pose
and lowered onto the ground). Where the two disagree on the robot's masses (a link without <inertial>:
PyBullet gives it 1 kg, pinocchio 0 kg) the difference is named.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from humanoid_rl.core.robot_spec import RobotSpec, urdf_root_element
from humanoid_rl.paths import config_path

COLUMNS: tuple[tuple[str, str], ...] = (
    ("#", ">3"),
    ("joint", "<"),
    ("lower", ">8"),
    ("upper", ">8"),
    ("vel_lim", ">8"),
    ("eff_lim", ">8"),
    ("kp", ">7"),
    ("kd", ">6"),
    ("default", ">8"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        nargs="?",
        default=None,
        help="robot YAML path, or the name of a shipped robot (config/robots/<name>.yaml); default: humanoid",
    )
    parser.add_argument("--robot-config", default=None, help="robot YAML (the same as the positional form)")
    parser.add_argument("--json", action="store_true", help="print the spec as JSON instead of a table")


def resolve_config(value: str | None) -> Path | None:
    """A path as given, or a shipped robot's YAML by name; None means the default robot."""
    if value is None:
        return None
    path = Path(value)
    if path.suffix in (".yaml", ".yml") or path.exists() or len(path.parts) > 1:
        return path
    return config_path("robots", f"{value}.yaml")


@dataclass
class ModelCheck:
    """The robot as pinocchio and PyBullet load it."""

    pinocchio_mass: float  # kg, what the kinematics (CoM, capture point) use
    pybullet_mass: float  # kg, what the simulator moves
    standing_base_height: float  # m, base height with the soles on the ground in PyBullet (default pose)
    warnings: list[str] = field(default_factory=list)


def _declared_masses(spec: RobotSpec) -> dict[str, float | None]:
    """Mass per link as the URDF declares it; None where the link has no <inertial>."""
    masses: dict[str, float | None] = {}
    for link in urdf_root_element(spec.urdf_path).findall("link"):
        mass = link.find("inertial/mass")
        masses[link.get("name", "")] = None if mass is None else float(mass.get("value", "0"))
    return masses


def _import_pybullet_quietly() -> None:
    """Import PyBullet without its C-level build banner (written at import, to stdout or stderr depending on the
    build), so that `--json` output stays JSON and a closed pipe leaves stderr empty."""
    if "pybullet" in sys.modules:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        import pybullet  # noqa: F401

        ctypes.CDLL(None).fflush(None)  # the banner may sit in C stdio's buffer until flushed
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def check_models(spec: RobotSpec) -> ModelCheck:
    """Load the URDF in pinocchio and in the simulator; raise CommandError when either cannot."""
    _import_pybullet_quietly()
    import pybullet as pb

    from humanoid_rl.cli import CommandError
    from humanoid_rl.core.kinematics import RobotKinematics
    from humanoid_rl.sim.simulator import HumanoidSim, SimConfig, SimError

    try:
        kinematics = RobotKinematics(spec)
    except (ValueError, RuntimeError) as error:
        raise CommandError(f"{spec.urdf_path}: pinocchio cannot use it: {error}") from None
    try:
        with HumanoidSim(spec, SimConfig(seed=0)) as sim:
            sim.reset(seed=0)
            client = sim._client  # read-only queries of the model PyBullet built
            pybullet_masses = {
                name: float(pb.getDynamicsInfo(sim.robot_id, index, physicsClientId=client)[0])
                for index, name in zip(range(-1, len(sim.link_names) - 1), sim.link_names, strict=True)
            }
            standing = sim.standing_base_height
    except (SimError, pb.error) as error:
        raise CommandError(f"{spec.urdf_path}: the simulator (PyBullet) cannot load it: {error}") from None
    check = ModelCheck(kinematics.total_mass, sum(pybullet_masses.values()), standing)
    for link, declared in _declared_masses(spec).items():
        simulated = pybullet_masses.get(link)
        if declared is None and simulated:
            check.warnings.append(
                f"link {link!r} has no <inertial>: PyBullet simulates it as {simulated:g} kg, pinocchio (the "
                f"shield's CoM) as 0 kg; give it an <inertial> (a few grams for a frame-only link)"
            )
        elif simulated is not None and declared is not None and abs(simulated - declared) > 1e-6:
            check.warnings.append(f"link {link!r}: the URDF says {declared:g} kg, PyBullet uses {simulated:g} kg")
    if not pybullet_masses.get(spec.base_link):
        check.warnings.append(
            f"base link {spec.base_link!r} has no mass: PyBullet fixes a massless base in space, so the simulated "
            "robot cannot fall; give it an <inertial> with a mass"
        )
    if abs(check.pybullet_mass - check.pinocchio_mass) > 1e-6:
        check.warnings.append(
            f"total mass: PyBullet {check.pybullet_mass:.3f} kg, pinocchio {check.pinocchio_mass:.3f} kg"
        )
    if abs(standing - spec.nominal_base_height) > 0.01:
        check.warnings.append(
            f"nominal_base_height {spec.nominal_base_height:.4f} m, but PyBullet stands the default pose at "
            f"{standing:.4f} m: set nominal_base_height to the latter"
        )
    return check


def spec_as_dict(spec: RobotSpec) -> dict[str, object]:
    return {
        "name": spec.name,
        "config": str(spec.config_path),
        "urdf": str(spec.urdf_path),
        "config_hash": spec.config_hash,
        "base_link": spec.base_link,
        "imu_link": spec.imu_link,
        "foot_links": list(spec.foot_links),
        "foot_size": list(spec.foot_size),
        "soles": [sole.as_dict() for sole in spec.soles],
        "base_orientation_rpy": list(spec.base_orientation_rpy),
        "nominal_base_height": spec.nominal_base_height,
        "physics_rate_hz": spec.physics_rate_hz,
        "policy_rate_hz": spec.policy_rate_hz,
        "passive_joints": list(spec.passive_joints),
        "joints": [
            {
                "name": j.name,
                "lower": j.lower,
                "upper": j.upper,
                "velocity_limit": j.velocity_limit,
                "effort_limit": j.effort_limit,
                "kp": j.kp,
                "kd": j.kd,
                "default_position": j.default_position,
            }
            for j in spec.joints
        ],
    }


def print_summary(spec: RobotSpec, out: TextIO) -> None:
    print(f"robot          {spec.name}  ({spec.n_joints} policy joints)", file=out)
    print(f"config         {spec.config_path}", file=out)
    print(f"urdf           {spec.urdf_path}", file=out)
    print(f"config hash    {spec.config_hash[:16]}", file=out)
    print(
        f"links          base {spec.base_link}, imu {spec.imu_link}, feet {' / '.join(spec.foot_links)}",
        file=out,
    )
    for side, sole in zip(("left", "right"), spec.soles, strict=True):
        x, y, z = sole.offset
        print(
            f"{side + ' sole':<15}{sole.size[0]:.3f} x {sole.size[1]:.3f} m, centre ({x:+.3f}, {y:+.3f}, {z:+.3f}) m "
            "in the foot frame",
            file=out,
        )
    if any(spec.base_orientation_rpy):
        print(f"base upright   rpy {' '.join(f'{a:+.4f}' for a in spec.base_orientation_rpy)} rad", file=out)
    print(f"base height    {spec.nominal_base_height:.4f} m (default pose)", file=out)
    print(
        f"rates          physics {spec.physics_rate_hz:g} Hz, policy {spec.policy_rate_hz:g} Hz "
        f"(decimation {spec.decimation})",
        file=out,
    )
    if spec.passive_joints:
        print(f"passive joints {', '.join(spec.passive_joints)}", file=out)
    print(file=out)

    name_width = max(len("joint"), *(len(n) for n in spec.joint_names))
    rows = [
        [
            str(i),
            j.name,
            f"{j.lower:.3f}",
            f"{j.upper:.3f}",
            f"{j.velocity_limit:.2f}",
            f"{j.effort_limit:.1f}",
            f"{j.kp:g}",
            f"{j.kd:g}",
            f"{j.default_position:.3f}",
        ]
        for i, j in enumerate(spec.joints)
    ]

    def line(cells: list[str]) -> str:
        formatted = []
        for (_, align), cell in zip(COLUMNS, cells, strict=True):
            formatted.append(f"{cell:{align}{name_width}}" if align == "<" else f"{cell:{align}}")
        return "  ".join(formatted).rstrip()

    print(line([title for title, _ in COLUMNS]), file=out)
    for row in rows:
        print(line(row), file=out)
    print(
        "(positions rad, velocities rad/s, efforts N·m; limits from the URDF, gains and pose from the YAML)",
        file=out,
    )


def print_models(check: ModelCheck, out: TextIO) -> None:
    print(
        f"models         pinocchio {check.pinocchio_mass:.3f} kg, PyBullet {check.pybullet_mass:.3f} kg, "
        f"standing base height in PyBullet {check.standing_base_height:.4f} m",
        file=out,
    )
    for warning in check.warnings:
        print(f"warning        {warning}", file=out)


def run(args: argparse.Namespace) -> int:
    from humanoid_rl.cli import CommandError

    if args.config is not None and args.robot_config is not None and args.config != args.robot_config:
        raise CommandError(f"two robot configs given ({args.config!r} and --robot-config {args.robot_config!r})")
    spec = RobotSpec.load(resolve_config(args.robot_config or args.config))
    check = check_models(spec)
    if args.json:
        data = spec_as_dict(spec)
        data["models"] = {
            "pinocchio_mass": check.pinocchio_mass,
            "pybullet_mass": check.pybullet_mass,
            "standing_base_height": check.standing_base_height,
            "warnings": check.warnings,
        }
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        print_summary(spec, sys.stdout)
        print_models(check, sys.stdout)
    return 0
