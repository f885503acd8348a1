"""Gymnasium environments for the humanoid: ``HumanoidRL/Stand-v0`` (stand and recover from pushes) and
``HumanoidRL/Walk-v0`` (walk at a commanded velocity, with a gait clock in the observation).

One ``HumanoidEnv`` owns one ``HumanoidSim``. A step maps the action to joint targets with
``PolicyContract.action_to_joint_targets``, lets the simulator's joint PD track them for ``decimation`` physics
steps (20 at 1 kHz physics / 50 Hz policy), reads the *noisy* sensors once, and builds the observation with
``PolicyContract.build_observation`` — the same call, from the same kind of readings (IMU orientation and gyro,
joint encoders), that the deployed policy node makes. Rewards and terminations use the simulator's exact state,
which only training sees.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import pybullet

from humanoid_rl.core.contract import ContractMismatchError, PolicyContract, RobotState
from humanoid_rl.core.observation import ObservationBuilder, walk_terms
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.core.rotations import yaw as heading
from humanoid_rl.core.shield_modes import ShieldMode
from humanoid_rl.envs.commands import CommandConfig, StrideTracking, draw_command
from humanoid_rl.envs.gait import FeetAirTime, GaitConfig, LegReference, gait_targets, is_moving
from humanoid_rl.envs.pushes import PushConfig, PushSchedule
from humanoid_rl.envs.rewards import STAND_TERMS, WALK_TERMS, RewardConfig, RewardInputs, reward_terms
from humanoid_rl.sim import DomainRandomization, HumanoidSim, SensorNoise, SensorReadings, SimConfig
from humanoid_rl.sim.sim_params import load_sim_params, recentred

__all__ = ["CommandConfig", "EnvConfig", "HumanoidEnv", "JointTargets", "Task", "scaled_randomization"]

Range = tuple[float, float]
BACKENDS = ("pybullet", "mujoco")


class JointTargets(Protocol):
    """What a target filter hands the joint PD (policy order): the shield's ShieldOutput is one."""

    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray
    stiffness_scale: float
    damping_scale: float


class Task(str, Enum):
    STAND = "stand"  # hold the default stance, recover from pushes, stay where you are
    WALK = "walk"  # walk at the commanded velocity (heading frame)


@dataclass
class EnvConfig:
    """Everything an episode depends on besides the seed. Defaults are the acceptance setting: randomization
    on, 60–100 N pushes for 0.2 s every 4 s in random horizontal directions, 20 s episodes."""

    robot_config: str | Path | None = None  # robot YAML; None: the shipped humanoid
    episode_length_s: float = 20.0  # truncation (time limit)
    policy_rate_hz: float | None = None  # None: the robot spec's (50 Hz)
    # None: the spec's physics rate (1 kHz), what evaluation and the sim bridge run. A lower rate trains faster
    # but is a different simulator: check a policy trained that way at the spec's rate before shipping it.
    physics_rate_hz: float | None = None
    # "pybullet" (what evaluation, `humanoid-rl sim` and the bridge run) or "mujoco" (training only, ~5x the
    # steps per CPU second, 500 Hz by default; a policy trained there must pass its acceptance in PyBullet).
    backend: str = "pybullet"
    randomize: bool = True  # domain randomization on/off (ranges in `randomization`; its `enabled` is ignored)
    randomization: DomainRandomization = field(default_factory=DomainRandomization)
    # Fitted simulator parameters (`humanoid-rl sysid`'s YAML): the nominal values, and the randomization's centres.
    sim_params: str | Path | None = None
    sensor_noise: bool = True  # False: exact sensors (SensorNoise.none())
    # Std of the noise on base velocity (m/s) and height (m) for policies that observe the state estimator's
    # outputs: training has no estimator in the loop, so it sees the exact values plus this (with sensor_noise).
    # The estimator's measured errors: velocity RMSE 0.005-0.011 m/s under pushes, 0.015 m/s in `make sim`;
    # walking (the walk policy, `humanoid-rl bench estimator`) 0.042 / 0.029 / 0.030 m/s per axis with a bias of
    # -0.023 m/s on vx and slip outliers: docs/results/estimator_walk_error.json has the figures and a proposed
    # noise model to match.
    estimate_noise: tuple[float, float] = (0.05, 0.01)
    push: PushConfig = field(default_factory=PushConfig)
    rewards: RewardConfig | None = None  # None: the task's (RewardConfig() to stand, RewardConfig.for_walk())
    commands: CommandConfig = field(default_factory=CommandConfig)
    gait: GaitConfig = field(default_factory=GaitConfig)  # walk: the contract's gait period and the schedule
    # Termination (a fall): base below this fraction of the nominal standing height, or tilted beyond this angle.
    min_base_height_fraction: float = 0.6
    max_tilt_rad: float = 0.8
    # Curriculum in [0, 1]: scales push forces and randomization ranges (1 = full). See HumanoidEnv.set_curriculum.
    curriculum_level: float = 1.0
    initial_joint_noise_rad: float = 0.0  # uniform +- noise on the default pose at reset
    solver_iterations: int | None = None  # PyBullet solver iterations; None: the simulator's default
    real_time: bool = False  # with render_mode="human": sleep so the GUI plays at wall-clock speed
    render_size: tuple[int, int] = (320, 240)  # width, height of render_mode="rgb_array" frames

    @classmethod
    def for_task(cls, task: Task | str) -> EnvConfig:
        """The defaults of ``gymnasium.make(id)``: walking is pushed with 40 N (0.2 s every 4 s), standing 60-100 N."""
        if Task(task) is Task.WALK:
            return cls(push=PushConfig(force_range_n=(40.0, 40.0)))
        return cls()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.episode_length_s) and self.episode_length_s > 0.0):
            raise ValueError(f"EnvConfig.episode_length_s = {self.episode_length_s!r}: use a positive duration")
        if not 0.0 < self.min_base_height_fraction < 1.0:
            raise ValueError(
                f"EnvConfig.min_base_height_fraction = {self.min_base_height_fraction!r}: use a fraction in (0, 1)"
            )
        if not 0.0 < self.max_tilt_rad < math.pi:
            raise ValueError(f"EnvConfig.max_tilt_rad = {self.max_tilt_rad!r}: use an angle in (0, pi) radians")
        if self.backend not in BACKENDS:
            raise ValueError(f"EnvConfig.backend = {self.backend!r}: use one of {list(BACKENDS)}")
        _check_level(self.curriculum_level, "EnvConfig.curriculum_level")
        if len(self.estimate_noise) != 2 or not all(math.isfinite(v) and v >= 0.0 for v in self.estimate_noise):
            raise ValueError(f"EnvConfig.estimate_noise = {self.estimate_noise!r}: use (velocity std m/s, height std "
                             "m), both >= 0")
        if not (math.isfinite(self.initial_joint_noise_rad) and self.initial_joint_noise_rad >= 0.0):
            raise ValueError(f"EnvConfig.initial_joint_noise_rad = {self.initial_joint_noise_rad!r}: use a value >= 0")


def _check_level(level: float, what: str) -> float:
    level = float(level)
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"{what} = {level!r}: a curriculum level is a fraction in [0, 1]")
    return level


def scaled_randomization(
    ranges: DomainRandomization, level: float, *, nominal_friction: float, nominal_latency_s: float
) -> DomainRandomization:
    """``ranges`` shrunk towards the nominal values: each end moves to ``nominal + level * (end - nominal)``."""
    level = _check_level(level, "curriculum level")

    def shrink(value: Range | None, nominal: float) -> Range | None:
        if value is None:
            return None
        return (nominal + level * (value[0] - nominal), nominal + level * (value[1] - nominal))

    return dataclasses.replace(
        ranges,
        mass_scale=shrink(ranges.mass_scale, 1.0),
        friction=shrink(ranges.friction, nominal_friction),
        gravity_z=shrink(ranges.gravity_z, -9.81),
        gravity_tilt_rad=level * ranges.gravity_tilt_rad,
        actuator_strength=shrink(ranges.actuator_strength, 1.0),
        imu_noise_scale=shrink(ranges.imu_noise_scale, 1.0),
        encoder_noise_scale=shrink(ranges.encoder_noise_scale, 1.0),
        control_latency_s=shrink(ranges.control_latency_s, nominal_latency_s),
        kp_scale=shrink(ranges.kp_scale, 1.0),
        kd_scale=shrink(ranges.kd_scale, 1.0),
    )


class HumanoidEnv(gym.Env[np.ndarray, np.ndarray]):
    """The humanoid standing (``task="stand"``) or walking (``task="walk"``) in PyBullet.

    Observation: ``contract.build_observation`` of the noisy sensor readings (float32, ``contract.n_obs``).
    Action: ``contract.n_actions`` values in ``[-action_clip, action_clip]``, mapped to joint position targets by
    ``contract.action_to_joint_targets``. ``info["reward_terms"]`` holds each weighted reward term of the step.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 50}

    def __init__(
        self, task: Task | str = Task.STAND, config: EnvConfig | None = None, render_mode: str | None = None
    ) -> None:
        super().__init__()
        try:
            self.task = Task(task)
        except ValueError:
            raise ValueError(f"task {task!r} is not known: use one of {[t.value for t in Task]}") from None
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode {render_mode!r} is not supported: use None, 'human' or 'rgb_array'")
        if render_mode == "human" and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
            # PyBullet's GUI terminates the whole process when it cannot open a window; fail politely instead.
            raise RuntimeError(
                "render_mode='human' opens a PyBullet window, but DISPLAY is not set (no X server): "
                "run with a display, or use render_mode=None"
            )
        self.render_mode = render_mode
        self.config = config if config is not None else EnvConfig.for_task(self.task)
        # `spec` is Gymnasium's EnvSpec; the robot's is `robot_spec`.
        self.robot_spec = RobotSpec.load(self.config.robot_config)
        walking = self.task is Task.WALK
        if self.config.rewards is not None:
            self.rewards = self.config.rewards
        else:
            self.rewards = RewardConfig.for_task(walking)
        self.contract = PolicyContract.from_robot(
            self.robot_spec,
            policy_rate_hz=self.config.policy_rate_hz,
            terms=walk_terms(self.robot_spec.n_joints) if walking else None,
            gait_period_s=self.config.gait.period_s if walking else None,
        )
        self._observer = ObservationBuilder(self.contract)  # history and gait clock, restarted at every reset
        spec = self.robot_spec
        self._hip_yaw_roll = np.array(
            [i for i, name in enumerate(spec.joint_names) if "hip_yaw" in name or "hip_roll" in name], dtype=int
        )
        # Only a robot with named hip/knee/ankle pitch joints has one; the term must then be off.
        self._leg_reference = None
        if walking and self.rewards.reference_gait > 0.0:
            self._leg_reference = LegReference(spec.joint_names, spec.lower, spec.upper)
        mujoco = self.config.backend == "mujoco"
        if mujoco and render_mode is not None:
            raise ValueError("the MuJoCo backend is for training only and does not render: use backend='pybullet'")
        default_rate = spec.physics_rate_hz
        if mujoco:  # imported only here: PyBullet users need not install MuJoCo
            from humanoid_rl.sim.mujoco_sim import MUJOCO_PHYSICS_RATE_HZ, MujocoHumanoidSim

            default_rate = MUJOCO_PHYSICS_RATE_HZ
        physics_rate_hz = float(self.config.physics_rate_hz or default_rate)
        ratio = physics_rate_hz / self.contract.policy_rate_hz
        self.decimation = int(round(ratio))
        if self.decimation < 1 or abs(ratio - self.decimation) > 1e-9:
            raise ValueError(
                f"policy rate {self.contract.policy_rate_hz:g} Hz does not divide the physics rate "
                f"{physics_rate_hz:g} Hz (robot {spec.config_path}): choose rates such that "
                "physics_hz / policy_hz is a whole number"
            )
        self.policy_dt = 1.0 / self.contract.policy_rate_hz
        self.max_episode_steps = max(1, int(round(self.config.episode_length_s / self.policy_dt)))
        self.metadata = {**self.metadata, "render_fps": self.contract.policy_rate_hz}

        clip = self.contract.action_clip
        self.action_space = gym.spaces.Box(-clip, clip, (self.contract.n_actions,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.contract.n_obs,), np.float32)
        self._command_slice = self.contract.term_slices().get("velocity_command")

        sim_kwargs: dict[str, Any] = {}
        if self.config.solver_iterations is not None:
            sim_kwargs["solver_iterations"] = self.config.solver_iterations
        self._randomization_ranges = dataclasses.replace(self.config.randomization, enabled=self.config.randomize)
        if self.config.sim_params is not None:
            if mujoco:
                raise ValueError("EnvConfig.sim_params: fitted parameters apply to the PyBullet backend only")
            sim_kwargs["params"] = params = load_sim_params(self.config.sim_params)
            # Absolute ranges move to the fitted values; the multiplicative ones already scale them.
            self._randomization_ranges = dataclasses.replace(
                self._randomization_ranges,
                friction=recentred(self._randomization_ranges.friction, params.foot_friction),
                control_latency_s=recentred(self._randomization_ranges.control_latency_s, params.control_latency_s),
            )
        sim_config = SimConfig(
            physics_rate_hz=physics_rate_hz,
            gui=render_mode == "human",
            noise=SensorNoise() if self.config.sensor_noise else SensorNoise.none(),
            randomization=self._randomization_ranges,
            **sim_kwargs,
        )
        self.sim: Any = MujocoHumanoidSim(spec, sim_config) if mujoco else HumanoidSim(spec, sim_config)
        self.pushes = PushSchedule(self.config.push, self.policy_dt)
        self._nominal_height = spec.nominal_base_height
        self._min_height = self.config.min_base_height_fraction * spec.nominal_base_height
        self._curriculum_level = 1.0
        self.set_curriculum(self.config.curriculum_level)

        n = self.contract.n_actions
        self.command = np.zeros(3)
        self._last_action = np.zeros(n)
        self._step_index = 0
        self._episode_seed: int | None = None
        self._command_rng = np.random.default_rng(0)
        self._start_xy = np.zeros(2)
        self._stride_tracking = StrideTracking(1)  # sized at every reset, by the contract in use then
        self._tracked: deque[np.ndarray] | None = None  # sized at every reset, by the reward config then
        self._air_time = FeetAirTime()
        self._foot_ground_z = np.zeros(2)  # foot frame heights standing at reset: lift is measured from here
        self._needs_reset = True
        self._wall_start = 0.0
        # Between the policy's joint targets and the simulator (e.g. the safety shield in `humanoid-rl eval
        # --shield`): called as target_filter(env, targets) after the action is mapped, returns a JointTargets.
        # None: the targets go to the motors as they are (training).
        self.target_filter: Callable[[HumanoidEnv, np.ndarray], JointTargets] | None = None
        self.last_readings: SensorReadings | None = None  # the noisy readings the latest observation was built from
        # Where observed base velocity (body frame) and height come from: None, the exact ones plus
        # `estimate_noise` (training); else called with each observation's readings, e.g. a state estimator in
        # the loop as in the ROS stack (`humanoid-rl bench estimator`).
        self.base_estimate: Callable[[SensorReadings], tuple[np.ndarray, float]] | None = None

    # ------------------------------------------------------------------------------------------ curriculum

    @property
    def curriculum_level(self) -> float:
        return self._curriculum_level

    def set_curriculum(self, level: float) -> None:
        """Scale push forces (at once) and randomization ranges (from the next reset) by ``level`` in [0, 1].

        Training raises the level as the evaluation success rate passes a threshold, e.g. through
        ``vec_env.env_method("set_curriculum", level)``.
        """
        self._curriculum_level = _check_level(level, "curriculum level")
        self.pushes.curriculum_scale = self._curriculum_level
        sim_config = self.sim.config
        # The simulator draws from `config.randomization` at every reset; swapping the ranges is how the level
        # reaches it (the simulator has no curriculum of its own).
        sim_config.randomization = scaled_randomization(
            self._randomization_ranges,
            self._curriculum_level,
            nominal_friction=sim_config.foot_friction,
            nominal_latency_s=sim_config.control_latency_s,
        )

    # ------------------------------------------------------------------------------------------ episodes

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode. ``seed`` fixes the randomization draw, sensor noise, pushes and commands; with no
        seed the next episode follows from the last seed given (or from fresh entropy if none ever was)."""
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(0, 2**63 - 1))
        self._episode_seed = episode_seed
        # Separate streams per consumer (the simulator spawns its own from `episode_seed`).
        push_rng, command_rng, pose_rng, self._estimate_rng = (
            np.random.default_rng([episode_seed, k]) for k in (1, 2, 3, 4))
        pose = None
        if self.config.initial_joint_noise_rad > 0.0:
            noise = pose_rng.uniform(-1.0, 1.0, self.robot_spec.n_joints) * self.config.initial_joint_noise_rad
            pose = np.clip(self.robot_spec.default_pose + noise, self.robot_spec.lower, self.robot_spec.upper)
        self.sim.forget_contacts()
        self.sim.reset(seed=episode_seed, joint_pos=pose)
        self.pushes.reset(push_rng)
        self._command_rng = command_rng
        self.command = self._draw_command()
        self._air_time.reset()
        self._foot_ground_z = self.sim.foot_kinematics()[0][:, 2].copy()
        self._last_action = np.zeros(self.contract.n_actions)
        self._observer.reset()
        self._step_index = 0
        truth = self.sim.ground_truth()
        self._start_xy = truth.pos[:2].copy()
        self._term_sums = dict.fromkeys(self._term_names(), 0.0)
        self._return = 0.0
        self._max_tilt = truth.tilt_rad
        self._energy_j = 0.0
        self._speed_error_sum = 0.0
        self._tracking_error_sums = np.zeros(3)  # |vx error|, |vy error|, |yaw-rate error|
        self._achieved_sums = np.zeros(3)  # vx, vy (heading frame), yaw rate: with a held command, which way it errs
        self._judged_steps = 0  # steps the policy controlled (a shield in the loop holds the robot at first)
        # One stride = one gait period (the contract's clock; the stand task uses the default period as its window).
        period = self.contract.gait_period_s or self.config.gait.period_s
        self._stride_tracking = StrideTracking(max(1, int(round(period / self.policy_dt))))
        # The recent achieved velocities the tracking rewards judge (RewardConfig.tracking_average_s), if asked for.
        average_steps = int(round(self.rewards.tracking_average_s / self.policy_dt))
        self._tracked = deque(maxlen=average_steps) if average_steps > 0 else None
        self._needs_reset = False
        self._wall_start = time.monotonic()
        obs = self._observe()
        info = {
            "fell": False,
            "base_height": float(truth.pos[2]),
            "tilt": truth.tilt_rad,
            "push_active": False,
            "command": self.command.copy(),
            "episode_seed": episode_seed,
            "curriculum_level": self._curriculum_level,
        }
        return obs, info

    def _term_names(self) -> tuple[str, ...]:
        return WALK_TERMS if self.task is Task.WALK else STAND_TERMS

    def _draw_command(self) -> np.ndarray:
        if self.task is Task.STAND:
            return np.zeros(3)
        return draw_command(self.config.commands, self._command_rng)

    def _observe(self) -> np.ndarray:
        readings = self.sim.read_sensors()
        self.last_readings = readings
        state = RobotState(
            base_ang_vel=readings.imu_gyro,
            base_quat=readings.imu_quat,
            joint_pos=readings.joint_pos,
            joint_vel=readings.joint_vel,
        )
        self._feet_in_contact = readings.foot_contacts
        if self._observer.needs_truth and self.base_estimate is not None:
            state.base_lin_vel, state.base_height = self.base_estimate(readings)
        elif self._observer.needs_truth:  # base velocity and height: what an estimator gives, from the exact ones
            truth = self.sim.ground_truth()
            state.base_lin_vel, state.base_height = truth.lin_vel_body, float(truth.pos[2])
            if self.config.sensor_noise:
                velocity_std, height_std = self.config.estimate_noise
                state.base_lin_vel = state.base_lin_vel + self._estimate_rng.normal(0.0, velocity_std, 3)
                state.base_height += float(self._estimate_rng.normal(0.0, height_std))
        state.foot_contacts, state.imu_lin_acc = readings.foot_contacts.astype(np.float64), readings.imu_accel
        return self._observer.build(state, self.command, self._last_action)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("HumanoidEnv.step called before reset() or after the episode ended: call reset()")
        action = self.contract.clip_action(action)
        targets = self.contract.action_to_joint_targets(action, self.robot_spec.lower, self.robot_spec.upper)
        push = self.pushes.push_at(self._step_index)
        if push is not None:
            self.sim.apply_push(push.force_world, push.duration_s)
        push_active = self.sim.push_active
        in_control = True  # the policy's targets reach the joints (tracking is judged only then)
        if self.target_filter is None:
            self.sim.set_joint_targets(targets)
        else:
            out = self.target_filter(self, targets)
            in_control = getattr(out, "mode", ShieldMode.ACTIVE) is ShieldMode.ACTIVE
            self.sim.set_joint_targets(out.positions, out.velocities, out.efforts, out.stiffness_scale,
                                       out.damping_scale)
        self.sim.step(self.decimation)
        self._step_index += 1
        # As legged_gym does: a new command takes effect at once, in this step's reward and the next observation.
        commands = self.config.commands
        if (
            self.task is Task.WALK
            and commands.resample_interval_s is not None
            and self._step_index % max(1, int(round(commands.resample_interval_s / self.policy_dt))) == 0
        ):
            self.command = self._draw_command()
            if self._tracked is not None:  # a new command is judged on what was achieved since it came
                self._tracked.clear()

        previous_action = self._last_action
        self._last_action = action
        clock_s = self._observer.time_s  # the gait clock of the state just reached (the next observation's)
        obs = self._observe()
        truth = self.sim.ground_truth()
        joint_pos, joint_vel = self.sim.joint_state()
        yaw = float(heading(truth.quat))
        cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
        vx, vy = truth.lin_vel_world[0], truth.lin_vel_world[1]
        lin_vel_heading = np.array([cos_yaw * vx + sin_yaw * vy, -sin_yaw * vx + cos_yaw * vy])
        achieved = np.append(lin_vel_heading, truth.ang_vel_world[2])
        torques = self.sim.last_applied_torques
        inputs = RewardInputs(
            base_height=float(truth.pos[2]),
            nominal_base_height=self._nominal_height,
            projected_gravity=truth.projected_gravity,
            ang_vel_body=truth.ang_vel_body,
            lin_vel_heading=lin_vel_heading,
            yaw_rate=float(achieved[2]),
            drift_xy=truth.pos[:2] - self._start_xy,
            feet_in_contact=self._feet_in_contact,
            command=self.command,
            action=action,
            last_action=previous_action,
            torques=torques,
            joint_vel=joint_vel,
            joint_limit_proximity=self.sim.joint_limit_proximity(joint_pos),
        )
        if self.task is Task.WALK:
            self._gait_inputs(inputs, clock_s, joint_pos)
            if self._tracked is not None:
                self._tracked.append(achieved)
                inputs.tracked_velocity = np.mean(self._tracked, axis=0)
        terms = reward_terms(inputs, self.rewards, walking=self.task is Task.WALK)
        reward = float(sum(terms.values()))

        tilt = truth.tilt_rad
        fell = bool(truth.pos[2] < self._min_height or tilt > self.config.max_tilt_rad)
        terminated = fell
        truncated = (not terminated) and self._step_index >= self.max_episode_steps

        self._return += reward
        for name, value in terms.items():
            self._term_sums[name] += value
        self._max_tilt = max(self._max_tilt, tilt)
        self._energy_j += float(np.abs(torques * joint_vel).sum()) * self.policy_dt
        if in_control:
            self._speed_error_sum += float(np.linalg.norm(lin_vel_heading - self.command[:2]))
            self._tracking_error_sums += np.abs(achieved - self.command)
            self._achieved_sums += achieved
            self._judged_steps += 1
        self._stride_tracking.update(achieved, self.command, judged=in_control)

        info: dict[str, Any] = {
            "reward_terms": terms,
            "fell": fell,
            "base_height": float(truth.pos[2]),
            "tilt": tilt,
            "push_active": push_active,
            "command": self.command.copy(),
            "time_s": self._step_index * self.policy_dt,
        }
        if terminated or truncated:
            self._needs_reset = True
            info["episode_summary"] = self._summary(fell, truth.pos[:2])
        if self.render_mode == "human" and self.config.real_time:
            lag = self._step_index * self.policy_dt - (time.monotonic() - self._wall_start)
            if lag > 0.0:
                time.sleep(lag)
        return obs, reward, terminated, truncated, info

    def _gait_inputs(self, inputs: RewardInputs, clock_s: float, joint_pos: np.ndarray) -> None:
        """Fill the walk terms' inputs: the schedule at the gait clock, foot lift and slip, touchdowns."""
        gait = self.config.gait
        period = self.contract.gait_period_s or gait.period_s  # an imported contract may bring its own clock
        inputs.moving = is_moving(self.command)
        targets = gait_targets(clock_s, gait, inputs.moving, period_s=period)
        foot_pos, foot_vel = self.sim.foot_kinematics()
        inputs.scheduled_stance, inputs.swing_height_ref_m = targets.stance, targets.swing_height_m
        inputs.foot_height_m = foot_pos[:, 2] - self._foot_ground_z
        inputs.foot_vel_xy = foot_vel[:, :2]
        inputs.touchdown, inputs.flight_time_s = self._air_time.update(self._feet_in_contact, self.policy_dt)
        inputs.half_period_s, inputs.min_air_time_s = period / 2.0, gait.min_air_time_s
        if self.rewards.hip_posture > 0.0:  # as the reference below: no per-step work for a term that is off
            hips = self._hip_yaw_roll
            inputs.hip_offset_rad = joint_pos[hips] - self.robot_spec.default_pose[hips]
        if self._leg_reference is not None:
            reference = self._leg_reference.offsets(targets.swing, self.rewards.reference_gait_amplitude_rad)
            legs = self._leg_reference.leg_joints
            inputs.reference_error_rad = (joint_pos - self.robot_spec.default_pose - reference)[legs]

    def _summary(self, fell: bool, final_xy: np.ndarray) -> dict[str, Any]:
        """Per-episode statistics for training and evaluation logs (not named "episode": Monitor owns that key)."""
        steps = self._step_index
        duration = steps * self.policy_dt
        pushes = self.pushes.history
        return {
            "fell": fell,
            "success": not fell,
            "length_steps": steps,
            "length_s": duration,
            "return": self._return,
            "reward_terms": dict(self._term_sums),
            "pushes": len(pushes),
            "max_push_force_n": max((p.magnitude_n for p in pushes), default=0.0),
            "max_tilt_rad": self._max_tilt,
            "drift_m": float(np.linalg.norm(final_xy - self._start_xy)),
            "mean_speed_error_mps": self._speed_error_sum / max(1, self._judged_steps),
            "mean_vx_error_mps": float(self._tracking_error_sums[0]) / max(1, self._judged_steps),
            "mean_vy_error_mps": float(self._tracking_error_sums[1]) / max(1, self._judged_steps),
            "mean_yaw_rate_error_rps": float(self._tracking_error_sums[2]) / max(1, self._judged_steps),
            "mean_achieved_velocity": (self._achieved_sums / max(1, self._judged_steps)).tolist(),
            # The walk acceptance's figures: per stride (StrideTracking), so a gait's sway is not counted as error.
            **dict(zip(("stride_vx_error_mps", "stride_vy_error_mps", "stride_yaw_rate_error_rps"),
                       self._stride_tracking.mean_errors().tolist(), strict=True)),
            "strides_judged": self._stride_tracking.windows,
            "mean_mechanical_power_w": self._energy_j / duration if duration > 0 else 0.0,
            "command": self.command.copy(),
            "curriculum_level": self._curriculum_level,
            "episode_seed": self._episode_seed,
        }

    # ------------------------------------------------------------------------------------------ misc

    def contract_dict(self) -> dict[str, Any]:
        """The contract as plain data (``contract_to_dict``): what a vector env's worker process can send back."""
        from humanoid_rl.core.contract_io import contract_to_dict

        return contract_to_dict(self.contract)

    def use_contract(self, contract: PolicyContract) -> None:
        """Observe and act as ``contract`` says (a model's own, e.g. an imported policy in ``humanoid-rl eval``)
        from the next reset; its robot facts (joints, default pose, gains, rate) must be this robot's."""
        if contract is self.contract:
            return
        own = PolicyContract.from_robot(self.robot_spec, policy_rate_hz=self.contract.policy_rate_hz)
        problems = contract.robot_mismatches(own)
        if problems:
            raise ContractMismatchError(problems, context="the contract does not fit this environment's robot")
        self.contract = contract
        self._observer = ObservationBuilder(contract)
        clip = np.inf if contract.action_clip is None else contract.action_clip
        self.action_space = gym.spaces.Box(-clip, clip, (contract.n_actions,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (contract.n_obs,), np.float32)
        stacked = contract.frame_stack > 1 or any(t.history > 1 for t in contract.terms)
        self._command_slice = None if stacked else contract.term_slices().get("velocity_command")
        self._needs_reset = True

    def velocity_command_in(self, obs: np.ndarray) -> np.ndarray:
        """The (unscaled) velocity command an observation carries, read through the contract's layout."""
        if self._command_slice is None:
            raise ValueError("this contract's observation has no velocity_command term")
        scale = self.contract.observation_scale[self._command_slice]
        return np.asarray(obs, dtype=np.float64)[self._command_slice] / scale

    def render(self) -> np.ndarray | None:
        """``rgb_array``: a (height, width, 3) uint8 frame from a camera that follows the base (software
        renderer, works without a display; costs milliseconds, so only when asked). ``human``: the PyBullet
        window draws itself; None."""
        if self.render_mode != "rgb_array":
            return None
        width, height = self.config.render_size
        client = self.sim.client_id
        target = pybullet.getBasePositionAndOrientation(self.sim.robot_id, physicsClientId=client)[0]
        view = pybullet.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=target, distance=2.5, yaw=45.0, pitch=-15.0, roll=0.0, upAxisIndex=2
        )
        projection = pybullet.computeProjectionMatrixFOV(fov=60.0, aspect=width / height, nearVal=0.05, farVal=20.0)
        _, _, rgba, _, _ = pybullet.getCameraImage(
            width, height, view, projection, renderer=pybullet.ER_TINY_RENDERER, physicsClientId=client
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()

    def close(self) -> None:
        sim = getattr(self, "sim", None)
        if sim is not None:
            sim.close()
        super().close()
