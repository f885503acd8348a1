"""The safety shield's thresholds, declared once.

:data:`SHIELD_PARAMETERS` is the single declaration (name, type via the default, default, description, unit,
range, read-only) of every threshold the shield uses. :class:`ShieldParams` takes its defaults from it, the
ROS node declares its parameters from it (``humanoid_rl.nodes.params.DeclaredParameters``) and the README's
table is rendered from it (:func:`parameter_table_markdown`). Table defaults are the simulation defaults; a
hardware parameter file overrides them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from humanoid_rl.core.params import ParamSpec, markdown_table
from humanoid_rl.core.params import validate as validate_specs

HOLD_POSE_CHOICES = ("default", "current")
SUPPORT_REGION_CHOICES = ("both_soles", "stance_soles")

SHIELD_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "control_period",
        0.02,
        "nominal period between two filtered commands; per-period bounds (rate, velocity, soft-limit law)"
        " are this period times a speed. Set it to 1 / policy rate",
        "s",
        1e-4,
        1.0,
    ),
    ParamSpec(
        "soft_margin",
        0.02,
        "soft joint limits lie this far inside the URDF limits; targets approach them only slowly",
        "rad",
        0.0,
        0.5,
    ),
    ParamSpec(
        "soft_limit_gain",
        # 10/s capped a target's speed toward a limit at 3.8 rad/s even 0.38 rad away from it, which altered
        # 352 of 563 commands of the shipped stand policy in `make sim` and made it fall; 25/s leaves safe
        # commands untouched and still halves the remaining distance each 50 Hz period near a limit.
        25.0,
        "soft-limit law: the target may move toward a soft limit at most at gain × distance to it"
        " (a discrete barrier; beyond the soft limit it is pulled back at that speed)",
        "1/s",
        0.1,
        1000.0,
    ),
    ParamSpec(
        "max_velocity_scale",
        1.0,
        "targets may change per period by at most this fraction of the URDF velocity limit × period",
        "",
        0.01,
        1.0,
    ),
    ParamSpec(
        "max_target_rate",
        10.0,
        "smoothness cap: targets may change by at most this speed × period, whatever the URDF says",
        "rad/s",
        0.01,
        100.0,
    ),
    ParamSpec(
        "effort_scale",
        1.0,
        "predicted PD effort kp·(target − q) − kd·q̇ must stay within this fraction of the URDF effort limit",
        "",
        0.01,
        2.0,
    ),
    ParamSpec(
        "tilt_warn",
        0.35,
        "predicted base tilt from vertical at which the balance warning starts (targets pulled toward"
        " the default pose)",
        "rad",
        0.0,
        math.pi,
    ),
    ParamSpec(
        "tilt_trip", 0.7, "predicted base tilt at which the shield trips to DAMPING", "rad", 0.0, math.pi
    ),
    ParamSpec(
        "tilt_horizon",
        0.1,
        "tilt is predicted this far ahead with the measured tilt rate (only a growing tilt counts)",
        "s",
        0.0,
        1.0,
    ),
    ParamSpec(
        "capture_point_margin",
        0.02,
        "balance warning starts when the capture point comes closer than this to the edge of the"
        " support polygon (negative: outside it)",
        "m",
        -0.5,
        0.5,
    ),
    ParamSpec(
        "capture_point_trip_margin",
        -0.1,
        "trip to DAMPING when the capture point is closer than this to the support polygon edge"
        " (negative: that far outside it). Must be below capture_point_margin",
        "m",
        -1.0,
        0.5,
    ),
    ParamSpec(
        "command_timeout",
        0.1,
        "no accepted policy command for longer than this: HOLD. Commands stamped older are rejected",
        "s",
        1e-3,
        10.0,
    ),
    ParamSpec(
        "state_timeout",
        0.1,
        "no joint state or IMU/balance update for longer than this: DAMPING",
        "s",
        1e-3,
        10.0,
    ),
    ParamSpec(
        "ramp_time",
        2.0,
        "HOLD ramps from the measured pose to the hold pose over this time; commands pass only after it",
        "s",
        0.0,
        60.0,
    ),
    ParamSpec(
        "future_tolerance",
        0.01,
        "commands stamped further than this in the future are rejected (clock mismatch)",
        "s",
        0.0,
        1.0,
    ),
    ParamSpec(
        "damping_kd_scale",
        1.0,
        "in DAMPING and ESTOP the actuators get kp·0 and kd × this scale (pure damping)",
        "",
        0.0,
        10.0,
    ),
    ParamSpec(
        "hold_average_time",
        # A closed-loop policy's single target holds the feedback correction of that instant (the shipped stand
        # policy's targets vary by 0.02-0.05 rad per joint while the robot stands still); HOLD that froze the
        # last one tipped the emulated robot in 3 of 4 disengages. Its average is the posture it actually held.
        0.5,
        "HOLD after ACTIVE starts from the policy's accepted targets averaged over this time constant"
        " (exponential), not from the last one; 0 starts from the last target",
        "s",
        0.0,
        5.0,
    ),
    ParamSpec(
        "hold_pose",
        "default",
        "where HOLD goes after a command timeout: 'default' ramps to the default pose, 'current' holds"
        " the policy's averaged targets (hold_average_time)",
        choices=HOLD_POSE_CHOICES,
    ),
    ParamSpec(
        "support_region",
        # A walking gait's capture point leaves the stance sole every step (0.5 m/s puts it ~0.13 m ahead of the
        # CoM) and the swing foot lands ahead of it: judged against the stance sole alone, the public G1 walking
        # policy tripped to DAMPING 0.12 s after it started walking, 0.107 m outside.
        "both_soles",
        "what the capture point is judged against: 'both_soles' the hull of both soles (walking: the next step"
        " lands ahead), 'stance_soles' only the soles in contact (stricter; for robots that must not step)",
        choices=SUPPORT_REGION_CHOICES,
    ),
    ParamSpec(
        "gravity",
        9.81,
        "gravity magnitude for the capture point ξ = c + ċ·√(z/g)",
        "m/s²",
        1.0,
        100.0,
        read_only=True,
    ),
    ParamSpec(
        "use_urdf_limits",
        True,
        "joint position, velocity and effort limits come from the URDF (through RobotSpec)",
        read_only=True,
    ),
)

_SPECS_BY_NAME = {s.name: s for s in SHIELD_PARAMETERS}


def _default(name: str) -> Any:
    return _SPECS_BY_NAME[name].default


@dataclass(frozen=True)
class ShieldParams:
    """One consistent set of shield thresholds; defaults come from :data:`SHIELD_PARAMETERS`.

    Build variants with :meth:`with_changes` (validates) or ``dataclasses.replace`` (does not).
    """

    control_period: float = _default("control_period")
    soft_margin: float = _default("soft_margin")
    soft_limit_gain: float = _default("soft_limit_gain")
    max_velocity_scale: float = _default("max_velocity_scale")
    max_target_rate: float = _default("max_target_rate")
    effort_scale: float = _default("effort_scale")
    tilt_warn: float = _default("tilt_warn")
    tilt_trip: float = _default("tilt_trip")
    tilt_horizon: float = _default("tilt_horizon")
    capture_point_margin: float = _default("capture_point_margin")
    capture_point_trip_margin: float = _default("capture_point_trip_margin")
    command_timeout: float = _default("command_timeout")
    state_timeout: float = _default("state_timeout")
    ramp_time: float = _default("ramp_time")
    future_tolerance: float = _default("future_tolerance")
    damping_kd_scale: float = _default("damping_kd_scale")
    hold_average_time: float = _default("hold_average_time")
    hold_pose: str = _default("hold_pose")
    support_region: str = _default("support_region")
    gravity: float = _default("gravity")
    use_urdf_limits: bool = _default("use_urdf_limits")

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base: ShieldParams | None = None) -> ShieldParams:
        """``base`` (default: table defaults) with ``values`` applied; raises ValueError naming every
        problem."""
        candidate = (base or cls()).as_dict()
        unknown = [k for k in values if k not in candidate]
        if unknown:
            raise ValueError(f"unknown shield parameter(s) {unknown}; known: {sorted(candidate)}")
        candidate.update(values)
        reasons = validate(candidate)
        if reasons:
            raise ValueError("invalid shield parameters: " + "; ".join(reasons))
        return cls(**_coerce(candidate))

    def with_changes(self, **changes: Any) -> ShieldParams:
        return ShieldParams.from_mapping(changes, base=self)


if tuple(f.name for f in fields(ShieldParams)) != tuple(s.name for s in SHIELD_PARAMETERS):
    raise AssertionError(
        "ShieldParams fields and SHIELD_PARAMETERS must list the same names in the same order"
    )


def _coerce(values: Mapping[str, Any]) -> dict[str, Any]:
    # ROS hands integers for doubles written without a decimal point ("ramp_time: 2").
    return {k: float(v) if _SPECS_BY_NAME[k].type_name == "double" else v for k, v in values.items()}


def consistency_reasons(values: Mapping[str, Any]) -> list[str]:
    """Reasons a set of individually valid values does not make sense together."""
    reasons = []
    if values["tilt_warn"] >= values["tilt_trip"]:
        reasons.append(
            f"tilt_warn ({values['tilt_warn']} rad) must be below tilt_trip ({values['tilt_trip']} rad)"
        )
    if values["capture_point_trip_margin"] >= values["capture_point_margin"]:
        reasons.append(
            f"capture_point_trip_margin ({values['capture_point_trip_margin']} m) must be below "
            f"capture_point_margin ({values['capture_point_margin']} m): the trip lies beyond the warning"
        )
    for name in ("command_timeout", "state_timeout"):
        if values[name] < values["control_period"]:
            reasons.append(
                f"{name} ({values[name]} s) is shorter than control_period ({values['control_period']} s):"
                " every period would time out"
            )
    if values["future_tolerance"] > values["command_timeout"]:
        reasons.append(
            f"future_tolerance ({values['future_tolerance']} s) exceeds command_timeout "
            f"({values['command_timeout']} s)"
        )
    return reasons


def validate(params: ShieldParams | Mapping[str, Any]) -> list[str]:
    """Every reason ``params`` is refused: out-of-range or wrongly typed values, changed read-only values and
    inconsistent combinations. Empty when valid. Limits-dependent checks (soft margin vs joint ranges) are
    in :meth:`humanoid_rl.core.shield_filter.SafetyFilter.check_params`."""
    values = params.as_dict() if isinstance(params, ShieldParams) else dict(params)
    missing = [s.name for s in SHIELD_PARAMETERS if s.name not in values]
    if missing:
        return [f"missing shield parameter(s) {missing}"]
    reasons = validate_specs(SHIELD_PARAMETERS, values, consistency_reasons)
    reasons += [
        f"{s.name} is read-only (fixed at {s.default!r}), got {values[s.name]!r}"
        for s in SHIELD_PARAMETERS
        if s.read_only and values[s.name] != s.default
    ]
    return reasons


def parameter_table_markdown() -> str:
    """The shield's parameter table as Markdown (the README's table is generated from this)."""
    return markdown_table(SHIELD_PARAMETERS)


__all__ = [
    "HOLD_POSE_CHOICES",
    "SUPPORT_REGION_CHOICES",
    "SHIELD_PARAMETERS",
    "ShieldParams",
    "consistency_reasons",
    "parameter_table_markdown",
    "validate",
]
