"""Sole geometry: the rectangle in which each foot touches the ground, in the foot link's frame.

A sole is a ``size`` (length along the foot frame's x, width along y) and the ``offset`` of its centre in the
foot frame (z: how far below the frame the sole face is). The robot YAML gives it per foot, as a box or as
contact points (their bounding rectangle); without it the foot link's collision boxes/spheres in the URDF
define it. The safety shield's support polygon is the hull of these rectangles
(:func:`humanoid_rl.core.shield_filter.support_polygon_distance`).

Plain Python + xml.etree: no numpy, so the robot computer parses it with the rest of the spec.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Sole", "SoleError", "sole_from_points", "sole_from_urdf_link", "sole_from_yaml"]

SOLE_KEYS = ("size", "offset", "points")
# Contact points must fill at least this share of their bounding rectangle: the shield uses the rectangle, and
# a rectangle much larger than the real sole would call a falling robot safe.
MIN_POINT_FILL = 0.95


class SoleError(ValueError):
    """A sole problem; ``RobotSpec.load`` adds the file. ``key`` is relative to the foot's entry."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        self.key, self.problem, self.fix = key, problem, fix
        super().__init__(f"key '{key}': {problem}. Fix: {fix}")


@dataclass(frozen=True)
class Sole:
    size: tuple[float, float]  # length (foot x), width (foot y), metres
    offset: tuple[float, float, float]  # the rectangle's centre in the foot frame, metres

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


def _origin(element: ET.Element, key: str) -> tuple[float, float, float]:
    origin = element.find("origin")
    if origin is None:
        return 0.0, 0.0, 0.0
    rpy = [float(v) for v in origin.get("rpy", "0 0 0").split()]
    if any(abs(angle) > 1e-9 for angle in rpy):
        raise SoleError(key, f"a rotated collision shape (rpy {rpy})", "give the sole in the robot YAML ('soles:')")
    x, y, z = (float(v) for v in origin.get("xyz", "0 0 0").split())
    return x, y, z


def sole_from_urdf_link(link: ET.Element) -> Sole:
    """The footprint of a foot link's collision boxes and spheres (spheres count as contact points)."""
    name = link.get("name", "")
    key = f"<link {name}> <collision>"
    points: list[tuple[float, float, float]] = []
    for collision in link.findall("collision"):
        geometry = collision.find("geometry")
        shape = geometry[0] if geometry is not None and len(geometry) else None
        if shape is None or shape.tag not in ("box", "sphere"):
            continue  # cylinders and meshes: no footprint we can trust
        x, y, z = _origin(collision, key)
        if shape.tag == "box":
            sx, sy, sz = (float(v) for v in shape.get("size", "0 0 0").split())
            points += [(x + a * sx / 2, y + b * sy / 2, z - sz / 2) for a in (-1, 1) for b in (-1, 1)]
        else:
            points.append((x, y, z - float(shape.get("radius", "0"))))
    if not points:
        raise SoleError(
            key, "the foot link has no collision box or sphere to take the sole from", "give 'soles:' in the robot YAML"
        )
    return sole_from_points(points, key)
