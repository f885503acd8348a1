"""PyBullet simulation of the robot: ``HumanoidSim`` (physics, joint PD, sensors) and domain randomization."""

from __future__ import annotations

from humanoid_rl.sim.randomization import DomainRandomization, RandomizationSample, draw_randomization
from humanoid_rl.sim.simulator import (
    BaseState,
    HumanoidSim,
    SensorNoise,
    SensorReadings,
    SimConfig,
    SimError,
)

__all__ = [
    "BaseState",
    "DomainRandomization",
    "HumanoidSim",
    "RandomizationSample",
    "SensorNoise",
    "SensorReadings",
    "SimConfig",
    "SimError",
    "draw_randomization",
]
