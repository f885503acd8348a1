"""Message ↔ numpy conversions. Joint arrays are mapped BY NAME into policy order, never by position."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from sensor_msgs.msg import JointState


class JointNameError(ValueError):
    """A message's joint names do not match the robot's: names what is missing, extra or duplicated."""


class JointOrderMap:
    """Reorders name-keyed joint arrays into policy order, caching the permutation per name list."""

    def __init__(self, joint_names: Sequence[str]) -> None:
        self.joint_names = tuple(joint_names)
        self._index = {n: i for i, n in enumerate(self.joint_names)}
        self._cache_key: tuple[str, ...] | None = None
        self._cache_perm: np.ndarray | None = None

    def permutation(self, names: Sequence[str]) -> np.ndarray:
        """``perm`` such that ``values[perm]`` is in policy order; the message may carry extra joints."""
        key = tuple(names)
        if key == self._cache_key and self._cache_perm is not None:
            return self._cache_perm
        position = {}
        duplicates = []
        for i, n in enumerate(key):
            if n in position:
                duplicates.append(n)
            position[n] = i
        missing = [n for n in self.joint_names if n not in position]
        if duplicates or missing:
            raise JointNameError(
                f"joint names do not match the robot: missing {missing}, duplicated {duplicates}"
                " (check the driver's joint names against the robot config)"
            )
        perm = np.fromiter(
            (position[n] for n in self.joint_names), dtype=np.intp, count=len(self.joint_names)
        )
        self._cache_key, self._cache_perm = key, perm
        return perm

    def extra_names(self, names: Sequence[str]) -> list[str]:
        return [n for n in names if n not in self._index]

    def reorder(self, names: Sequence[str], values: Sequence[float]) -> np.ndarray:
        if len(values) != len(names):
            raise JointNameError(f"{len(names)} joint names but {len(values)} values")
        return np.asarray(values, dtype=np.float64)[self.permutation(names)]


def stamp_to_seconds(stamp: TimeMsg) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(seconds: float) -> TimeMsg:
    sec = int(np.floor(seconds))
    nanosec = int(round((seconds - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return TimeMsg(sec=sec, nanosec=nanosec)


def joint_state_msg(
    names: Sequence[str],
    stamp: TimeMsg,
    position: np.ndarray,
    velocity: np.ndarray | None = None,
    effort: np.ndarray | None = None,
) -> JointState:
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = position.tolist()
    msg.velocity = velocity.tolist() if velocity is not None else []
    msg.effort = effort.tolist() if effort is not None else []
    return msg
