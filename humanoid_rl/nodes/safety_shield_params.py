"""The safety-shield node's own parameters and the clock and trigger choices they name (no rclpy).

Apart from the node (:mod:`humanoid_rl.nodes.safety_shield`, which re-exports them) so that the node module stays
about its behaviour. The shield's thresholds are declared in :mod:`humanoid_rl.core.shield_params`
(``SHIELD_PARAMETERS``); these are the node's: robot, clock, trigger, timer rate, engagement and deadman.
"""

from __future__ import annotations

from enum import Enum

from humanoid_rl.core.params import ParamSpec
from humanoid_rl.graph import Topics

__all__ = ["PARAMETERS", "ShieldClock", "ShieldTrigger"]


class ShieldClock(Enum):
    SIM = "sim"  # the node's ROS clock (sim time under use_sim_time)
    STEADY = "steady"  # time.monotonic(): hardware


class ShieldTrigger(Enum):
    TIMER = "timer"  # commands publish at once; a timer at rate_hz runs the watchdogs and ramps
    STATE = "state"  # each joint state steps the shield: the simulator's lock-step mode


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("robot_config", "", "robot YAML (config/robots/<robot>.yaml); '' = the shipped humanoid", read_only=True),
    ParamSpec(
        "clock",
        ShieldClock.SIM.value,
        "time base of the watchdogs: 'sim' = the ROS clock (sim time under use_sim_time), 'steady' = a"
        " monotonic clock that keeps running when /clock stops (hardware)",
        choices=tuple(c.value for c in ShieldClock),
        read_only=True,
    ),
    ParamSpec(
        "trigger",
        ShieldTrigger.TIMER.value,
        "'timer': a timer at rate_hz runs the watchdogs and ramps between commands; 'state': each joint state"
        " steps the shield (the simulator's lock-step mode)",
        choices=tuple(t.value for t in ShieldTrigger),
        read_only=True,
    ),
    ParamSpec(
        "rate_hz",
        50.0,
        "timer trigger: rate of the watchdog / ramp timer, which publishes when no command did since its last"
        " tick (outputs stay about one per control_period on average, at most 1.1)",
        "Hz",
        1.0,
        2000.0,
    ),
    ParamSpec(
        "require_engage",
        False,
        "HOLD until /safety_shield/engage is called with true (hardware: the user's explicit go)",
        read_only=True,
    ),
    ParamSpec(
        "autostart",
        True,
        "configure and activate at start-up (simulation); false waits for lifecycle transitions (hardware)",
        read_only=True,
    ),
    ParamSpec(
        "deadman_timeout",
        0.0,
        f"hardware: > 0 requires a std_msgs/Empty heartbeat on {Topics.DEADMAN} (e.g. a joystick button held)"
        " at least this often; without it the shield is disengaged (HOLD) until heartbeats come again. 0 = off",
        "s",
        0.0,
        10.0,
    ),
)
