"""`humanoid-rl check-robot`: load a robot config (YAML + URDF, checked against each other) and print it.

The table is what the policy sees, in policy order: limits from the URDF, gains and default pose from the
YAML. Any problem is a RobotConfigError naming the file, the key and the fix (printed as one line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from humanoid_rl.core.robot_spec import RobotSpec
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
    parser.add_argument("--json", action="store_true", help="print the spec as JSON instead of a table")


def resolve_config(value: str | None) -> Path | None:
    """A path as given, or a shipped robot's YAML by name; None means the default robot."""
    if value is None:
        return None
    path = Path(value)
    if path.suffix in (".yaml", ".yml") or path.exists() or len(path.parts) > 1:
        return path
    return config_path("robots", f"{value}.yaml")


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
    print(f"foot size      {spec.foot_size[0]:.3f} x {spec.foot_size[1]:.3f} m", file=out)
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


def run(args: argparse.Namespace) -> int:
    spec = RobotSpec.load(resolve_config(args.config))
    if args.json:
        json.dump(spec_as_dict(spec), sys.stdout, indent=2)
        print()
    else:
        print_summary(spec, sys.stdout)
    return 0
