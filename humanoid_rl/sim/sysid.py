"""System identification: replay a recording's joint commands in PyBullet and fit ``SimParams`` to its motion.

The core has no ROS: a ``Recording`` is arrays (``sim/bag_io.py`` reads one from a rosbag2). ``replay`` runs the
recorded commands through a ``HumanoidSim`` with candidate parameters, from the recording's first measured pose,
and samples the joints at the recorded instants; ``residuals`` and ``cost`` compare the two. The fit that
minimizes them is in ``sim/sysid_fit.py``.

What the joint trajectories of a hanging robot (base fixed: no contacts) can identify, and what they cannot:

* identifiable: the PD stiffness and damping scales of the excited group (``kp_scale``, ``kd_scale``), its
  Coulomb friction, the command latency; and, *with the measured joint efforts*, the mass scale of the group's
  links (position alone only sees stiffness / inertia ratios: kp x1.2 with mass x1.2 moves the same);
* not identifiable here: actuator strength separately from ``kp_scale``/``kd_scale`` (it multiplies both; they
  differ only when the torque limit is hit), the viscous joint damping separately from ``kd_scale`` (with zero
  velocity targets both are ``-b * qd``), foot friction (no contact while hanging) and the torso's mass (the
  base is held). They stay at their nominal values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pybullet as pb

from humanoid_rl.core.excitation import Excitation, excitation_targets
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.sim.sim_params import SimParams, joint_groups
from humanoid_rl.sim.simulator import HumanoidSim, SensorNoise, SimConfig

__all__ = [
    "BOUNDS",
    "DEFAULT_FIT",
    "DEFAULT_FIT_KEYS",
    "FitParameter",
    "Recording",
    "Trajectory",
    "cost",
    "fit_parameter",
    "hang",
    "position_rmse",
    "record_in_sim",
    "replay",
    "residuals",
    "smoothed",
    "scored_joints",
]

HANG_HEIGHT_M = 0.3  # a hanging robot's soles are this far above the ground: no contact however the legs swing
EFFORT_WEIGHT_RAD_PER_NM = 0.01  # 1 N*m of effort error costs as much as 0.01 rad of position error
# Efforts are compared averaged over this many samples (20 ms at 200 Hz): an explicit PD's torque chatters from one
# physics step to the next on light links, and a single-step sample of it aliases into noise that flips with the
# latency's parity; a motor driver's effort reading is filtered like this too.
EFFORT_SMOOTHING_SAMPLES = 4


@dataclass(frozen=True)
class FitParameter:
    """One fitted item (``SimParams.with_values`` key) and its search bounds."""

    key: str
    low: float
    high: float

    @property
    def step(self) -> float:
        """The finite-difference step: 1% of a scale, 0.05 N*m of friction, 1 ms of latency."""
        return FD_STEPS[self.key.partition(".")[0]]


# Search bounds per item: wide enough for a robot far from its URDF, narrow enough to search.
BOUNDS: dict[str, tuple[float, float]] = {
    "kp_scale": (0.5, 2.0),
    "kd_scale": (0.3, 3.0),
    "joint_friction_nm": (0.0, 3.0),
    "mass_scale": (0.5, 2.0),
    "control_latency_s": (0.0, 0.04),
}

FD_STEPS: dict[str, float] = {
    "kp_scale": 0.01,
    "kd_scale": 0.02,
    "joint_friction_nm": 0.05,
    "mass_scale": 0.01,
    "control_latency_s": 0.001,  # the replay's latency is continuous (blended within a physics step)
}
NOMINAL: dict[str, float] = {"kp_scale": 1.0, "kd_scale": 1.0, "mass_scale": 1.0, "joint_friction_nm": 0.0}


def fit_parameter(key: str, joint_names: tuple[str, ...]) -> FitParameter:
    """``"kp_scale.legs"`` → a FitParameter with its bounds, or ValueError naming what can be fitted."""
    name, _, group = key.partition(".")
    groups = joint_groups(joint_names)
    grouped = name != "control_latency_s"
    if name not in BOUNDS or grouped != bool(group):
        raise ValueError(
            f"cannot fit {key!r}: use control_latency_s or ITEM.GROUP with ITEM one of "
            f"{[k for k in BOUNDS if k != 'control_latency_s']} and GROUP one of {list(groups)} (foot friction and "
            "actuator strength are not identifiable from joint trajectories; see docs/sim_to_real.md)"
        )
    if grouped and group not in groups:
        raise ValueError(f"cannot fit {key!r}: this robot's joint groups are {list(groups)}")
    return FitParameter(key, *BOUNDS[name])


def scored_joints(joint_names: tuple[str, ...], parameters: Sequence[FitParameter]) -> list[int]:
    """The joints whose trajectories the fit compares: those of the groups it fits (the legs if none)."""
    groups = joint_groups(joint_names)
    named = {p.key.partition(".")[2] for p in parameters} - {""}
    return sorted(i for g in (named or {"legs"}) for i in groups.get(g, ()))


DEFAULT_FIT_KEYS = ("kp_scale.legs", "kd_scale.legs", "joint_friction_nm.legs", "mass_scale.legs", "control_latency_s")
DEFAULT_FIT: tuple[FitParameter, ...] = tuple(FitParameter(k, *BOUNDS[k.partition(".")[0]]) for k in DEFAULT_FIT_KEYS)


@dataclass
class Recording:
    """What a robot did: the commands it was sent and the joint states it measured (policy order, seconds)."""

    joint_names: tuple[str, ...]
    command_times: np.ndarray  # (K,) when each command was sent
    command_positions: np.ndarray  # (K, n) position targets
    state_times: np.ndarray  # (M,) when each state was measured
    positions: np.ndarray  # (M, n)
    velocities: np.ndarray  # (M, n)
    efforts: np.ndarray | None = None  # (M, n) measured joint torques, if the robot reports them

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if self.command_positions.shape != (self.command_times.size, n) or self.command_times.size == 0:
            raise ValueError(f"recording: {self.command_times.size} commands for {n} joints; need at least one")
        if self.positions.shape != (self.state_times.size, n) or self.state_times.size < 2:
            raise ValueError(f"recording: {self.state_times.size} joint states; need at least two")
        if self.efforts is not None and self.efforts.shape != self.positions.shape:
            self.efforts = None  # a robot that reports no (or partial) effort: fit on positions only

    @property
    def duration_s(self) -> float:
        return float(self.state_times[-1] - self.state_times[0])


@dataclass
class Trajectory:
    positions: np.ndarray  # (M, n) at the recording's state times
    velocities: np.ndarray
    efforts: np.ndarray


def hang(sim: HumanoidSim, height_m: float = HANG_HEIGHT_M) -> None:
    """Lift the robot ``height_m`` and hold its base there (a robot hanging from a gantry)."""
    position, orientation = pb.getBasePositionAndOrientation(sim.robot_id, physicsClientId=sim.client_id)
    lifted = (position[0], position[1], position[2] + height_m)
    pb.resetBasePositionAndOrientation(sim.robot_id, lifted, orientation, physicsClientId=sim.client_id)
    sim.hold_base()


def _sim_config(params: SimParams, noise: SensorNoise | None = None, seed: int = 0) -> SimConfig:
    return SimConfig(noise=noise if noise is not None else SensorNoise.none(), params=params, seed=seed)


def replay(spec: RobotSpec, recording: Recording, params: SimParams, *, hanging: bool = True) -> Trajectory:
    """The recorded commands played on the simulated robot with ``params``, sampled at the recorded instants.

    The latency is applied here rather than by the simulator, which rounds it to whole physics steps: a command
    arriving part-way through a step is blended into that step's target by the fraction of the step it was in
    force (the PD torque is linear in the target), so the cost is smooth in the latency and the fit can use
    its slope. The simulator then runs the fitted latency to the nearest step.
    """
    latency = params.control_latency_s or 0.0
    with HumanoidSim(spec, _sim_config(dataclasses.replace(params, control_latency_s=0.0))) as sim:
        sim.reset(seed=0, joint_pos=recording.positions[0])
        if hanging:
            hang(sim)
        t0 = recording.state_times[0]
        arrivals = (recording.command_times - t0 + latency) * sim.physics_rate_hz  # in physics steps, continuous
        sample_steps = np.round((recording.state_times - t0) * sim.physics_rate_hz).astype(int)
        n, m = spec.n_joints, recording.state_times.size
        out = Trajectory(np.zeros((m, n)), np.zeros((m, n)), np.zeros((m, n)))
        # The command in force at the first sample (the last one to arrive by then), then each later one in turn.
        first = int(np.searchsorted(arrivals, 0.0, side="right")) - 1
        in_force = recording.positions[0] if first < 0 else recording.command_positions[first]
        sim.set_joint_targets(in_force)
        k = first + 1
        for i, sample in enumerate(sample_steps):
            while k < arrivals.size and math.ceil(arrivals[k] - 1e-9) <= sample:
                whole = math.floor(arrivals[k] + 1e-9)
                share = 1.0 - (arrivals[k] - whole)  # of the step [whole, whole + 1) the new target is in force
                new = recording.command_positions[k]
                sim.step(max(0, whole - sim.step_count))
                if share < 1.0 - 1e-9:
                    sim.set_joint_targets(in_force + share * (new - in_force))
                    sim.step(1)
                sim.set_joint_targets(new)
                in_force = new
                k += 1
            sim.step(max(0, int(sample) - sim.step_count))
            out.positions[i], out.velocities[i] = sim.joint_state()
            out.efforts[i] = sim.last_applied_torques
        return out


def position_rmse(recording: Recording, simulated: Trajectory, joints: Sequence[int]) -> float:
    """Root-mean-square joint position error over ``joints`` and all samples, radians."""
    error = simulated.positions[:, joints] - recording.positions[:, joints]
    return float(np.sqrt(np.mean(error**2)))


def smoothed(values: np.ndarray, window: int = EFFORT_SMOOTHING_SAMPLES) -> np.ndarray:
    """Moving average over ``window`` samples (shorter at the ends), along time."""
    padded = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    m = values.shape[0]
    upper = np.minimum(np.arange(m) + window // 2 + 1, m)
    lower = np.maximum(np.arange(m) - (window - 1) // 2, 0)
    return (padded[upper] - padded[lower]) / (upper - lower)[:, None]


def residuals(recording: Recording, simulated: Trajectory, joints: Sequence[int]) -> np.ndarray:
    """Position errors of ``joints`` at every sample (rad) and, when the recording has efforts, errors of the
    smoothed efforts times EFFORT_WEIGHT_RAD_PER_NM, each block divided by sqrt(its size): the norm is ``cost``."""
    position_error = (simulated.positions[:, joints] - recording.positions[:, joints]).ravel()
    blocks = [position_error / math.sqrt(position_error.size)]
    if recording.efforts is not None:
        effort_error = (smoothed(simulated.efforts[:, joints]) - smoothed(recording.efforts[:, joints])).ravel()
        blocks.append(EFFORT_WEIGHT_RAD_PER_NM * effort_error / math.sqrt(effort_error.size))
    return np.concatenate(blocks)


def cost(recording: Recording, simulated: Trajectory, joints: Sequence[int]) -> float:
    """sqrt(position MSE + (EFFORT_WEIGHT_RAD_PER_NM * effort RMSE)^2): what the fit minimizes, radians."""
    return float(np.linalg.norm(residuals(recording, simulated, joints)))


def record_in_sim(
    spec: RobotSpec,
    truth: SimParams,
    excitation: Excitation,
    joints: Sequence[int],
    *,
    command_rate_hz: float = 50.0,
    state_rate_hz: float = 200.0,
    seed: int = 0,
) -> Recording:
    """A recording of the simulated robot with ``truth`` parameters and real sensor noise, hanging, excited by
    ``excitation`` on ``joints``: what ``humanoid-rl record --excite`` gets from the hardware emulator."""
    with HumanoidSim(spec, _sim_config(truth, SensorNoise(), seed)) as sim:
        sim.reset(seed=seed, joint_pos=spec.default_pose)
        hang(sim)
        steps_per_state = int(round(sim.physics_rate_hz / state_rate_hz))
        steps_per_command = int(round(sim.physics_rate_hz / command_rate_hz))
        n_states = int(math.floor(excitation.duration_s * state_rate_hz)) + 1
        command_times, commands, states = [], [], []
        for k in range(n_states):
            step = k * steps_per_state
            sim.step(step - sim.step_count)
            sensors = sim.read_sensors()
            states.append((sim.time_s, sensors.joint_pos, sensors.joint_vel, sim.last_applied_torques.copy()))
            if step % steps_per_command == 0:  # the controller answers the state it has just read
                t = sim.time_s
                target = excitation_targets(np.array([t]), spec.default_pose, joints, spec.lower, spec.upper,
                                            excitation)[0]  # fmt: skip
                sim.set_joint_targets(target)
                command_times.append(t)
                commands.append(target)
        return Recording(
            joint_names=spec.joint_names,
            command_times=np.array(command_times),
            command_positions=np.array(commands),
            state_times=np.array([s[0] for s in states]),
            positions=np.array([s[1] for s in states]),
            velocities=np.array([s[2] for s in states]),
            efforts=np.array([s[3] for s in states]),
        )
