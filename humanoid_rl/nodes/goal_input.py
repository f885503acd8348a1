"""The goal of a goal-conditioned policy (a contract with a ``goal`` term), from a ``geometry_msgs/PointStamped``
topic.

A goal counts only in the contract's ``goal_frame`` (for Reach-v0 the pelvis, the robot's base link): the node
has no transform tree of its own to look a frame up in, and a point silently taken in the wrong frame would
send the hand elsewhere. A point in any other frame (an empty ``frame_id`` included), or with a non-finite
coordinate, is refused with one log line per cause and counted; the previous goal stays. Until the first goal
arrives the policy node publishes nothing (skip reason ``no_goal``): the safety shield's command watchdog then
holds the robot, as it does for a policy that has stopped.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from geometry_msgs.msg import PointStamped

from humanoid_rl.nodes.qos import COMMAND_QOS

__all__ = ["GoalInput"]


class GoalInput:
    """The newest accepted goal (``goal``: None until one arrives), received on ``topic`` by ``node``."""

    def __init__(self, node: Any, topic: str, frame: str) -> None:
        self._node = node
        self.topic, self.frame = topic, frame
        self.goal: np.ndarray | None = None
        self.accepted = 0
        self.refused = 0
        self._reported: set[str] = set()  # causes already logged: one line each, not one per message
        # Reliable and volatile, like a command: `ros2 topic pub` and a planner's publisher both match it.
        self.subscription = node.create_subscription(PointStamped, topic, self._on_goal, COMMAND_QOS)

    def reset(self) -> None:
        self.goal = None

    def _refuse(self, cause: str, line: str) -> None:
        self.refused += 1
        if cause not in self._reported:
            self._reported.add(cause)
            self._node.get_logger().error(line)

    def _on_goal(self, msg: PointStamped) -> None:
        frame = msg.header.frame_id
        if frame != self.frame:
            self._refuse(f"frame:{frame}", f"goal on {self.topic} refused: frame {frame!r} is not the model's goal "
                         f"frame {self.frame!r} (no transform is looked up; publish the point in {self.frame!r})")
            return
        point = (msg.point.x, msg.point.y, msg.point.z)
        if not all(math.isfinite(v) for v in point):
            self._refuse("non-finite", f"goal on {self.topic} refused: non-finite coordinates {point}")
            return
        self.goal = np.array(point, dtype=np.float64)
        self.accepted += 1
