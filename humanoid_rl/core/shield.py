"""The safety shield (pure logic): nothing reaches the joints except through it.

* :mod:`~humanoid_rl.core.shield_params`: every threshold, declared once (:data:`SHIELD_PARAMETERS`,
  :class:`ShieldParams`, :func:`validate`, :func:`parameter_table_markdown`).
* :mod:`~humanoid_rl.core.shield_filter`: :class:`SafetyFilter`, one command in, one bounded target out
  (reject stage, then position / velocity / rate / effort / balance intervals, clipped once).
* :mod:`~humanoid_rl.core.shield_modes`: :class:`SafetyShield`, modes ACTIVE / HOLD / DAMPING / ESTOP,
  watchdogs and ramps.

The ROS node (``humanoid_rl.nodes.safety_shield``) is a thin adapter over :class:`SafetyShield`; it computes
CoM and feet with :class:`humanoid_rl.core.kinematics.RobotKinematics` and passes them in a
:class:`BalanceState`.
"""

from __future__ import annotations

from humanoid_rl.core.shield_filter import (
    MAX_PLAUSIBLE_POSITION,
    MAX_PLAUSIBLE_VELOCITY,
    STAGES,
    BalanceAssessment,
    BalanceState,
    FilterResult,
    FilterState,
    JointCommand,
    JointLimits,
    RejectReason,
    SafetyFilter,
    Stage,
    support_polygon_distance,
    tilt_from_imu,
)
from humanoid_rl.core.shield_modes import SafetyShield, ShieldCounters, ShieldMode, ShieldOutput, Transition
from humanoid_rl.core.shield_params import (
    HOLD_POSE_CHOICES,
    SHIELD_PARAMETERS,
    ShieldParams,
    consistency_reasons,
    parameter_table_markdown,
    validate,
)

__all__ = [
    "HOLD_POSE_CHOICES",
    "MAX_PLAUSIBLE_POSITION",
    "MAX_PLAUSIBLE_VELOCITY",
    "SHIELD_PARAMETERS",
    "STAGES",
    "BalanceAssessment",
    "BalanceState",
    "FilterResult",
    "FilterState",
    "JointCommand",
    "JointLimits",
    "RejectReason",
    "SafetyFilter",
    "SafetyShield",
    "ShieldCounters",
    "ShieldMode",
    "ShieldOutput",
    "ShieldParams",
    "Stage",
    "Transition",
    "consistency_reasons",
    "parameter_table_markdown",
    "support_polygon_distance",
    "tilt_from_imu",
    "validate",
]
