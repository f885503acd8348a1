"""Pure-numpy core of humanoid_rl: robot spec, kinematics, policy contract, shield, estimator, rotations.

Kept light on purpose: import the submodule you need (``from humanoid_rl.core.robot_spec import RobotSpec``);
importing this package pulls in nothing heavy (no pinocchio, no ROS, no torch).
"""

from __future__ import annotations
