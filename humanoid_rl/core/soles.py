"""Sole geometry: the rectangle in which each foot touches the ground, in the foot link's frame.

A sole is a ``size`` (length along the foot frame's x, width along y) and the ``offset`` of its centre in the
foot frame (z: how far below the frame the sole face is). The robot YAML gives it per foot, as a box or as
contact points (their bounding rectangle); without it the foot link's collision boxes/spheres in the URDF
define it. The safety shield's support polygon is the hull of these rectangles
(:func:`humanoid_rl.core.shield_filter.support_polygon_distance`).

Soles are described in the foot frame turned upright: the foot link's own frame for the usual z-up model whose
foot frames are aligned with the base, and axes that are world-aligned (x forward, z up) when the robot stands
upright in its zero pose for a model drawn another way up (``base_orientation_rpy``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Sole",
    "SoleError",
    "robot_soles",
    "rpy_matrix",
    "sole_from_points",
    "sole_from_urdf_link",
    "sole_from_yaml",
    "upright_from_link",
]

SOLE_KEYS = ("size", "offset", "points")
# Contact points must fill at least this share of their bounding rectangle: the shield uses the rectangle, and
# a rectangle much larger than the real sole would call a falling robot safe.
MIN_POINT_FILL = 0.95


class SoleError(ValueError):
    """A sole problem; ``RobotSpec.load`` adds the file: the URDF's when ``in_urdf``, else the YAML's."""

    def __init__(self, key: str, problem: str, fix: str, in_urdf: bool = False) -> None:
        self.key, self.problem, self.fix, self.in_urdf = key, problem, fix, in_urdf
        super().__init__(f"key '{key}': {problem}. Fix: {fix}")


@dataclass(frozen=True)
class Sole:
    size: tuple[float, float]  # length (foot x), width (foot y), metres
    offset: tuple[float, float, float]  # the rectangle's centre in the foot frame (turned upright), metres

    def as_dict(self) -> dict[str, list[float]]:
        return {"size": list(self.size), "offset": list(self.offset)}


def _floats(key: str, value: Any, lengths: tuple[int, ...], what: str) -> tuple[float, ...]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) not in lengths
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise SoleError(key, f"expected {what}, got {value!r}", f"write {what}")
    return tuple(float(v) for v in value)


def sole_from_yaml(value: Any) -> Sole:
    """``{size: [l, w], offset: [x, y, z]}`` (offset optional, z optional) or ``{points: [[x, y, z], ...]}``."""
    if not isinstance(value, dict):
        raise SoleError(
            "", f"expected a mapping, got {value!r}", "write {size: [l, w], offset: [x, y, z]} or {points: [...]}"
        )
    unknown = [k for k in value if k not in SOLE_KEYS]
    if unknown:
        raise SoleError(str(unknown[0]), "unknown key", f"use {', '.join(SOLE_KEYS)}")
    if ("points" in value) == ("size" in value) or ("points" in value and "offset" in value):
        raise SoleError("", "give either 'size' (with an optional 'offset') or 'points'", "keep one of the two forms")
    if "points" in value:
        points = value["points"]
        if not isinstance(points, list) or len(points) < 3:
            raise SoleError("points", f"expected at least 3 points, got {points!r}", "list [x, y, z] per contact point")
        return sole_from_points(
            [_floats(f"points[{i}]", p, (2, 3), "[x, y] or [x, y, z]") for i, p in enumerate(points)], "points"
        )
    length, width = _floats("size", value["size"], (2,), "[length, width]")
    if not (length > 0.0 and width > 0.0):
        raise SoleError("size", f"length and width must be positive, got {value['size']!r}", "use values > 0")
    offset = _floats("offset", value.get("offset", [0.0, 0.0, 0.0]), (2, 3), "[x, y] or [x, y, z]")
    return Sole((length, width), (offset[0], offset[1], offset[2] if len(offset) == 3 else 0.0))


def _hull_area(points: list[tuple[float, float]]) -> float:
    """Area of the convex hull (monotone chain, then the shoelace formula)."""
    pts = sorted(set(points))

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while (
                len(out) >= 2
                and (out[-1][0] - out[-2][0]) * (p[1] - out[-2][1]) - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])
                <= 0
            ):
                out.pop()
            out.append(p)
        return out

    ring = half(pts)[:-1] + half(pts[::-1])[:-1]
    return 0.5 * abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:] + ring[:1], strict=True)))


def sole_from_points(points: Sequence[Sequence[float]], key: str) -> Sole:
    """The bounding rectangle (foot x/y) of contact points; z of the centre: the points' lowest z."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    zs = [p[2] if len(p) > 2 else 0.0 for p in points]
    length, width = max(xs) - min(xs), max(ys) - min(ys)
    if not (length > 1e-6 and width > 1e-6):
        raise SoleError(key, f"the points span {length:.4g} x {width:.4g} m: no area", "give points that span the sole")
    fill = _hull_area(list(zip(xs, ys, strict=True))) / (length * width)
    if fill < MIN_POINT_FILL:
        raise SoleError(
            key,
            f"the points fill only {fill:.0%} of their bounding rectangle, which the support polygon would use",
            "give the corners of a rectangle inside the sole (size/offset or 4 points)",
        )
    return Sole((length, width), (0.5 * (max(xs) + min(xs)), 0.5 * (max(ys) + min(ys)), min(zs)))


def rpy_matrix(rpy: Sequence[float]) -> np.ndarray:
    """URDF roll-pitch-yaw (about fixed x, then y, then z) as a rotation matrix: Rz(yaw) Ry(pitch) Rx(roll)."""
    (cr, cp, cy), (sr, sp, sy) = (math.cos(a) for a in rpy), (math.sin(a) for a in rpy)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def _origin(element: ET.Element) -> tuple[np.ndarray, np.ndarray]:
    """(xyz, rotation) of an element's <origin>."""
    origin = element.find("origin")
    if origin is None:
        return np.zeros(3), np.eye(3)
    xyz = np.array([float(v) for v in origin.get("xyz", "0 0 0").split()])
    rpy = [float(v) for v in origin.get("rpy", "0 0 0").split()]
    return xyz, (np.eye(3) if not any(rpy) else rpy_matrix(rpy))


def _footprint_points(link: ET.Element, turn: np.ndarray) -> list[np.ndarray]:
    """Box corners and sphere bottoms of a link's collision shapes, in the turned (upright) foot frame."""
    points: list[np.ndarray] = []
    for collision in link.findall("collision"):
        geometry = collision.find("geometry")
        shape = geometry[0] if geometry is not None and len(geometry) else None
        if shape is None or shape.tag not in ("box", "sphere"):
            continue  # cylinders and meshes: no footprint we can trust
        xyz, rotation = _origin(collision)
        if shape.tag == "box":
            half = np.array([float(v) for v in shape.get("size", "0 0 0").split()]) / 2
            points += [turn @ (xyz + rotation @ (half * (a, b, c))) for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)]
        else:
            points.append(turn @ xyz - (0.0, 0.0, float(shape.get("radius", "0"))))
    return points


def sole_from_urdf_link(link: ET.Element, upright_from_foot: np.ndarray | None = None) -> Sole:
    """The footprint of a foot link's collision boxes and spheres (spheres count as contact points): the
    rectangle spanned by their lowest points, in the foot frame turned upright (``upright_from_foot``: the
    rotation from the foot frame to axes that are world-aligned when the robot stands upright in its zero
    pose; identity for the usual z-up model)."""
    key = f"<link {link.get('name', '')}> <collision>"
    try:
        points = _footprint_points(link, np.eye(3) if upright_from_foot is None else upright_from_foot)
    except ValueError as error:  # a number the URDF does not spell as one
        raise SoleError(key, f"cannot read the collision shapes ({error})", "repair the URDF") from None
    if not points:
        raise SoleError(
            key, "the foot link has no collision box or sphere to take the sole from", "give 'soles:' in the robot YAML"
        )
    lowest = min(float(p[2]) for p in points)
    bottom = [(float(p[0]), float(p[1]), float(p[2])) for p in points if p[2] <= lowest + 1e-6]
    if len(bottom) < 3:
        raise SoleError(
            key, "the foot's collision shapes have no flat bottom (tilted?)", "give 'soles:' in the robot YAML"
        )
    return sole_from_points(bottom, key)


def upright_from_link(root: ET.Element, link: str, base_rpy: Sequence[float]) -> np.ndarray:
    """Rotation from a link's frame to the base's upright axes with every joint at zero (the joint origins'
    rpy down the chain, then the base orientation): identity for a z-up model without rotated joint origins."""
    joint_of = {j.find("child").get("link", ""): j for j in root.findall("joint") if j.find("child") is not None}
    rotation = np.eye(3)
    for _ in range(len(joint_of)):  # bounded: a malformed URDF may loop
        if link not in joint_of:
            break
        joint = joint_of[link]
        origin = joint.find("origin")
        rpy = [float(v) for v in (origin.get("rpy", "0 0 0") if origin is not None else "0 0 0").split()]
        if any(rpy):
            rotation = rpy_matrix(rpy) @ rotation
        parent = joint.find("parent")
        link = parent.get("link", "") if parent is not None else ""
    return rpy_matrix(base_rpy) @ rotation if any(base_rpy) else rotation


def robot_soles(
    given: dict[str, Any],
    foot_size: tuple[float, float] | None,
    root: ET.Element,
    foot_links: tuple[str, str],
    base_rpy: Sequence[float],
) -> tuple[Sole, Sole]:
    """(left, right): ``given[side]`` (the YAML's ``soles``), else a ``foot_size`` sole centred under the foot
    frame (the URDF footprint's depth, if it has one), else the foot link's URDF footprint."""
    links = {link.get("name", ""): link for link in root.findall("link")}

    def from_urdf(link: str) -> Sole:
        try:
            return sole_from_urdf_link(links[link], upright_from_link(root, link, base_rpy))
        except SoleError as error:
            raise SoleError(error.key, error.problem, error.fix, in_urdf=True) from None
        except ValueError as error:  # a joint origin's rpy that is not three numbers
            raise SoleError(
                f"<link {link}>", f"cannot read its joint origins ({error})", "repair the URDF", True
            ) from None

    soles = []
    for side, link in zip(("left", "right"), foot_links, strict=True):
        if foot_size is not None:
            try:
                depth = from_urdf(link).offset[2]
            except SoleError:
                depth = 0.0  # only the size is known
            soles.append(Sole(foot_size, (0.0, 0.0, depth)))
        elif side in given:
            try:
                soles.append(sole_from_yaml(given[side]))
            except SoleError as error:
                key = f"soles.{side}" + (f".{error.key}" if error.key else "")
                raise SoleError(key, error.problem, error.fix) from None
        else:
            soles.append(from_urdf(link))
    return soles[0], soles[1]
