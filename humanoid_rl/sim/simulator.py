"""PyBullet simulation of the humanoid: our joint PD at physics rate, noisy sensors, pushes, randomization.

One ``HumanoidSim`` owns one PyBullet physics client (DIRECT unless ``gui``), so several simulations in one
process never see each other. The joint PD runs in Python at the physics rate in TORQUE_CONTROL, the way a
motor driver does on the robot: ``tau = strength * (kp*s_kp*(q* - q) + kd*s_kd*(qd* - qd) + tau_ff)``, clipped
to ``strength * effort_limit``. PyBullet's own velocity motors are switched off at load, so nothing else
pushes on the joints. Every joint vector in and out of this class is in **policy order**
(``spec.joint_names``); the mapping to PyBullet joint indices is made once, by name, at load.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np
import pybullet as pb
import pybullet_data

from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.core.rotations import (
    projected_gravity,
    quat_multiply,
    quat_to_matrix,
    tilt_angle,
)
from humanoid_rl.sim.randomization import DomainRandomization, RandomizationSample, draw_randomization
from humanoid_rl.sim.sensor_noise import EpisodeNoise
from humanoid_rl.sim.sim_params import SimParams

__all__ = ["BaseState", "HumanoidSim", "SensorNoise", "SensorReadings", "SimConfig", "SimError"]

STANDARD_GRAVITY = 9.81
_GROUND_URDF = Path(pybullet_data.getDataPath()) / "plane.urdf"
_SPAWN_HEIGHT_M = 3.0  # where the robot is posed before it is lowered onto the ground at reset


class SimError(RuntimeError):
    """The simulation cannot do what was asked; the message says why and what to do."""


@dataclass
class SensorNoise:
    """Standard deviations of the sensor noise. White noise is drawn per reading, bias once per episode."""

    gyro_std: float = 0.01  # rad/s
    gyro_bias_std: float = 0.005  # rad/s
    accel_std: float = 0.05  # m/s^2
    accel_bias_std: float = 0.05  # m/s^2
    orientation_std: float = 0.002  # rad, a small random rotation applied to the IMU quaternion
    joint_pos_std: float = 0.001  # rad
    joint_vel_std: float = 0.02  # rad/s

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"SensorNoise.{name} = {value!r}: a standard deviation must be finite and >= 0")

    @classmethod
    def none(cls) -> SensorNoise:
        """Noise-free, bias-free sensors."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass
class SimConfig:
    physics_rate_hz: float | None = None  # None: the robot spec's physics rate (1 kHz for the shipped robot)
    gui: bool = False
    seed: int = 0  # seeds the episodes of resets that are given no seed
    noise: SensorNoise = field(default_factory=SensorNoise)
    randomization: DomainRandomization = field(default_factory=DomainRandomization)
    control_latency_s: float = 0.0  # used when the randomization does not draw one
    foot_friction: float = 1.0  # nominal lateral friction of the feet (the ground's is ground_friction)
    ground_friction: float = 1.0
    contact_force_threshold_n: float = 5.0  # normal force above which a foot counts as in contact
    # The accelerometer reports the mean acceleration over this window, like an IMU's anti-aliasing filter;
    # a single physics step would pass every contact impulse on at full size.
    imu_accel_window_s: float = 0.005
    solver_iterations: int = 50
    self_collision: bool = False
    # Fitted physical parameters (`humanoid-rl sysid`), applied beneath the randomization; None: the nominal ones.
    params: SimParams | None = None

    def __post_init__(self) -> None:
        if self.params is not None:  # fitted values replace the nominal ones they name
            if self.params.control_latency_s is not None:
                self.control_latency_s = self.params.control_latency_s
            if self.params.foot_friction is not None:
                self.foot_friction = self.params.foot_friction
        if self.physics_rate_hz is not None and not (math.isfinite(self.physics_rate_hz) and self.physics_rate_hz > 0):
            raise ValueError(f"SimConfig.physics_rate_hz = {self.physics_rate_hz!r}: use a positive rate or None")
        checks = {
            "control_latency_s": self.control_latency_s,
            "foot_friction": self.foot_friction,
            "ground_friction": self.ground_friction,
            "contact_force_threshold_n": self.contact_force_threshold_n,
            "imu_accel_window_s": self.imu_accel_window_s,
        }
        for name, value in checks.items():
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"SimConfig.{name} = {value!r}: use a finite value >= 0")
        if self.solver_iterations < 1:
            raise ValueError(f"SimConfig.solver_iterations = {self.solver_iterations!r}: use at least 1")


@dataclass
class SensorReadings:
    """What the robot's own sensors report (noisy). Joint vectors in policy order."""

    time_s: float
    imu_quat: np.ndarray  # (4,) xyzw, IMU frame in world
    imu_gyro: np.ndarray  # (3,) rad/s, IMU (body) frame
    imu_accel: np.ndarray  # (3,) m/s^2 specific force in the IMU frame: +9.81 on z when standing still
    joint_pos: np.ndarray  # (n_joints,)
    joint_vel: np.ndarray  # (n_joints,)
    foot_forces: np.ndarray  # (2,) N, normal contact force per foot (left, right)
    foot_contacts: np.ndarray  # (2,) bool, foot_forces above the contact threshold
    # (2, 6) force (3) and torque about the foot link origin (3), both in the foot link frame: what a
    # force-torque sensor in the ankle reports (its z is the sole normal; the sole is flat in that frame)
    foot_wrenches: np.ndarray


@dataclass
class BaseState:
    """Exact (noise-free) state of the floating base, for rewards, terminations and tests."""

    time_s: float
    pos: np.ndarray  # (3,) base link frame origin, world
    quat: np.ndarray  # (4,) xyzw, base link frame in world
    lin_vel_world: np.ndarray  # (3,)
    ang_vel_world: np.ndarray  # (3,)
    ang_vel_body: np.ndarray  # (3,) base frame
    lin_vel_body: np.ndarray  # (3,) base frame
    com: np.ndarray  # (3,) whole-body centre of mass, world
    projected_gravity: np.ndarray  # (3,) unit (0, 0, -1) expressed in the base frame
    upright_in_base: np.ndarray | None = None  # xyzw, the spec's base_orientation_rpy undone; None: z-up model

    @property
    def tilt_rad(self) -> float:
        """Angle between the upright base's z axis (the base z axis for z-up models) and world up."""
        if self.upright_in_base is None:
            return float(tilt_angle(self.quat))
        return float(tilt_angle(quat_multiply(self.quat, self.upright_in_base)))


def _cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors; np.cross costs ~10x more for one pair."""
    ax, ay, az = a.tolist()
    bx, by, bz = b.tolist()
    return np.array([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx])


def _as_vector(name: str, value: object, size: int, what: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(size, float(array))
    if array.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},) ({what}), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf: {array}; send finite values")
    return array


def checked_joint_command(
    n: int,
    q_target: object,
    qd_target: object | None,
    tau_ff: object | None,
    stiffness_scale: object,
    damping_scale: object,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A joint PD command (policy order) as float vectors, or ValueError naming what is wrong with it."""
    q = _as_vector("q_target", q_target, n, "policy order, spec.joint_names")
    qd = np.zeros(n) if qd_target is None else _as_vector("qd_target", qd_target, n, "policy order")
    ff = np.zeros(n) if tau_ff is None else _as_vector("tau_ff", tau_ff, n, "policy order")
    kp_scale = _as_vector("stiffness_scale", stiffness_scale, n, "a scalar or one per joint")
    kd_scale = _as_vector("damping_scale", damping_scale, n, "a scalar or one per joint")
    if np.any(kp_scale < 0.0) or np.any(kd_scale < 0.0):
        raise ValueError("stiffness_scale and damping_scale must be >= 0 (a negative gain destabilizes the joint)")
    return q, qd, ff, kp_scale, kd_scale


def checked_push(force_world: object, duration_s: float, physics_rate_hz: float) -> tuple[np.ndarray, int]:
    """A push's world-frame force and how many physics steps it lasts, or ValueError."""
    force = _as_vector("force_world", force_world, 3, "newtons, world frame")
    if not (math.isfinite(duration_s) and duration_s > 0.0):
        raise ValueError(f"duration_s = {duration_s!r}: a push lasts a positive, finite time")
    return force, max(1, int(round(duration_s * physics_rate_hz)))


def joint_limit_proximity(spec: RobotSpec, joint_pos: np.ndarray) -> np.ndarray:
    """Per joint: 0 mid-range, 1 at (or beyond) a limit."""
    q = np.asarray(joint_pos, dtype=np.float64)
    middle = 0.5 * (spec.upper + spec.lower)
    half_range = 0.5 * (spec.upper - spec.lower)
    return np.minimum(np.abs(q - middle) / half_range, 1.0)


class HumanoidSim:
    """The humanoid in PyBullet. ``reset`` then alternately ``set_joint_targets`` and ``step``."""

    def __init__(self, spec: RobotSpec, config: SimConfig | None = None) -> None:
        self.spec = spec
        self.config = config if config is not None else SimConfig()
        self.physics_rate_hz = float(self.config.physics_rate_hz or spec.physics_rate_hz)
        self.dt = 1.0 / self.physics_rate_hz
        # Physics steps per policy step.
        self.decimation = max(1, int(round(self.physics_rate_hz / spec.policy_rate_hz)))
        self.n_joints = spec.n_joints
        self.joint_names = spec.joint_names
        self._client = pb.connect(pb.GUI if self.config.gui else pb.DIRECT)
        if self._client < 0:
            raise SimError("PyBullet could not connect (a second GUI window in one process is not allowed)")
        self._closed = False
        self._gantry: int | None = None  # PyBullet constraint holding the base, while a virtual gantry holds it
        rpy = spec.base_orientation_rpy
        x, y, z, w = pb.getQuaternionFromEuler(rpy)
        self._upright_in_base = np.array([-x, -y, -z, w]) if any(rpy) else None
        try:
            self._load_world()
            self._resolve_params(self.config.params or SimParams())
        except BaseException:
            self.close()
            raise
        self._episode_seeds = np.random.default_rng(self.config.seed)
        self.reset()

    # ------------------------------------------------------------------------------------------ loading

    def _load_world(self) -> None:
        client = self._client
        pb.setPhysicsEngineParameter(
            fixedTimeStep=self.dt,
            numSubSteps=0,
            numSolverIterations=self.config.solver_iterations,
            deterministicOverlappingPairs=1,
            physicsClientId=client,
        )
        self.ground_id = pb.loadURDF(str(_GROUND_URDF), useFixedBase=True, physicsClientId=client)
        pb.changeDynamics(self.ground_id, -1, lateralFriction=self.config.ground_friction, physicsClientId=client)
        flags = pb.URDF_USE_INERTIA_FROM_FILE
        if self.config.self_collision:
            flags |= pb.URDF_USE_SELF_COLLISION
        self.robot_id = pb.loadURDF(
            str(self.spec.urdf_path),
            basePosition=(0.0, 0.0, _SPAWN_HEIGHT_M),
            flags=flags,
            physicsClientId=client,
        )
        root_name = pb.getBodyInfo(self.robot_id, physicsClientId=client)[0].decode()
        if root_name != self.spec.base_link:
            raise SimError(
                f"{self.spec.urdf_path}: PyBullet's root link is {root_name!r} but the spec's base_link is "
                f"{self.spec.base_link!r}; make base_link the URDF root in {self.spec.config_path}"
            )
        n_bullet_joints = pb.getNumJoints(self.robot_id, physicsClientId=client)
        joint_index: dict[str, int] = {}
        link_index: dict[str, int] = {self.spec.base_link: -1}
        parent_of: dict[int, int] = {}
        fixed: dict[int, bool] = {}
        movable: list[int] = []
        for index in range(n_bullet_joints):
            info = pb.getJointInfo(self.robot_id, index, physicsClientId=client)
            joint_index[info[1].decode()] = index
            link_index[info[12].decode()] = index
            parent_of[index] = info[16]
            fixed[index] = info[2] == pb.JOINT_FIXED
            if info[2] != pb.JOINT_FIXED:
                movable.append(index)
        missing = [name for name in self.spec.joint_names if name not in joint_index]
        if missing:
            raise SimError(f"{self.spec.urdf_path} has no joints named {missing}; the spec and URDF disagree")
        self._joint_ids = [joint_index[name] for name in self.spec.joint_names]  # policy order -> PyBullet index
        self._link_index = link_index
        self.link_names: tuple[str, ...] = tuple(sorted(link_index, key=link_index.__getitem__))  # base first
        self._foot_ids = [link_index[name] for name in self.spec.foot_links]

        # Default motors hold every joint with a velocity servo; switch them off so only our torques act.
        pb.setJointMotorControlArray(
            self.robot_id, movable, pb.VELOCITY_CONTROL, forces=[0.0] * len(movable), physicsClientId=client
        )
        for link in range(-1, n_bullet_joints):  # no invented air drag on the robot
            pb.changeDynamics(self.robot_id, link, linearDamping=0.0, angularDamping=0.0, physicsClientId=client)

        # Nominal dynamics, so each reset starts from them and randomization draws never compound.
        infos = [pb.getDynamicsInfo(self.robot_id, link, physicsClientId=client) for link in range(-1, n_bullet_joints)]
        self._nominal_mass = np.array([info[0] for info in infos])
        self._nominal_inertia = np.array([info[2] for info in infos])
        self._link_masses = self._nominal_mass.copy()
        # The URDF's (or PyBullet's default) friction; the feet get config.foot_friction at every reset.
        self._nominal_link_friction = np.array([info[1] for info in infos])

        # PyBullet reports the base's inertial (centre-of-mass) frame; keep the base link frame in it.
        inertial = pb.getDynamicsInfo(self.robot_id, -1, physicsClientId=client)
        self._com_to_base = pb.invertTransform(inertial[3], inertial[4])
        self._base_is_com_frame = bool(np.allclose(inertial[3], 0.0) and np.allclose(inertial[4], (0, 0, 0, 1)))
        # The IMU must ride rigidly on the base (fixed joints only) so its pose follows from the base pose.
        imu_link = link_index.get(self.spec.imu_link)
        if imu_link is None:
            raise SimError(f"{self.spec.urdf_path} has no link {self.spec.imu_link!r} (spec imu_link)")
        link = imu_link
        while link != -1:
            if not fixed[link]:
                moving = pb.getJointInfo(self.robot_id, link, physicsClientId=client)[1].decode()
                raise SimError(
                    f"imu_link {self.spec.imu_link!r} is not rigidly attached to the base "
                    f"{self.spec.base_link!r} "
                    f"(joint {moving!r} moves); mount the IMU on the base through fixed joints"
                )
            link = parent_of[link]
        if imu_link == -1:
            com_to_imu = self._com_to_base
        else:
            com_pos, com_quat = pb.getBasePositionAndOrientation(self.robot_id, physicsClientId=client)
            imu_state = pb.getLinkState(self.robot_id, imu_link, computeForwardKinematics=1, physicsClientId=client)
            com_to_imu = pb.multiplyTransforms(*pb.invertTransform(com_pos, com_quat), imu_state[4], imu_state[5])
        self._imu_offset = np.asarray(com_to_imu[0])  # IMU position in the base COM frame
        self._imu_has_lever = bool(np.any(np.abs(self._imu_offset) > 1e-9))
        # None when the IMU axes are the base COM frame's (the usual mounting): saves a product per reading.
        imu_rotated = not np.allclose(com_to_imu[1], (0.0, 0.0, 0.0, 1.0), atol=1e-12)
        self._imu_quat_in_com: np.ndarray | None = np.asarray(com_to_imu[1]) if imu_rotated else None

        self._all_link_ids = list(range(n_bullet_joints))
        # Preallocated per-step buffers.
        self._tau = np.zeros(self.n_joints)
        self._tau_scratch = np.zeros(self.n_joints)
        self.last_applied_torques = np.zeros(self.n_joints)  # what the motors produced in the last physics step

    def _resolve_params(self, params: SimParams) -> None:
        """The fitted parameters as per-joint and per-link vectors (a group's mass: its joints' child links)."""
        names = self.spec.joint_names
        self._params_kp = params.per_joint("kp_scale", names)
        self._params_kd = params.per_joint("kd_scale", names)
        self._params_friction = params.per_joint("joint_friction_nm", names)
        self._params_mass = np.ones(len(self.link_names))
        self._params_mass[[index + 1 for index in self._joint_ids]] = params.per_joint("mass_scale", names)

    # ------------------------------------------------------------------------------------------ episodes

    def reset(self, seed: int | None = None, joint_pos: np.ndarray | None = None) -> None:
        """Start an episode: draw the randomization and sensor biases from ``seed`` (None: the next seed of
        the sequence started by ``config.seed``), pose the robot (``joint_pos`` or the default pose), lower it
        until its lowest point touches the ground, at rest, and command it to hold that pose."""
        if self._closed:
            raise SimError("this HumanoidSim is closed; create a new one")
        if seed is None:
            seed = int(self._episode_seeds.integers(0, 2**63 - 1))
        self.seed = seed
        self.release_base()  # the robot is placed anew; a gantry, if wanted, is attached again after reset
        randomization_rng, noise_rng = np.random.default_rng(seed).spawn(2)
        pose = (
            self.spec.default_pose
            if joint_pos is None
            else _as_vector("joint_pos", joint_pos, self.n_joints, "policy order")
        )
        link_friction = self._nominal_link_friction.copy()
        link_friction[[link + 1 for link in self._foot_ids]] = self.config.foot_friction
        friction_links = self.link_names if self.config.randomization.friction_all_links else self.spec.foot_links
        friction_rows = [self._link_index[name] + 1 for name in friction_links]
        self.randomization_sample = draw_randomization(
            self.config.randomization,
            randomization_rng,
            link_names=self.link_names,
            friction_link_names=tuple(friction_links),
            nominal_friction=link_friction[friction_rows],
            n_joints=self.n_joints,
            nominal_gravity_z=-STANDARD_GRAVITY,
            nominal_latency_s=self.config.control_latency_s,
            seed=seed,
        )
        link_friction[friction_rows] = self.randomization_sample.friction
        self._apply_sample(self.randomization_sample, link_friction)
        self.noise = EpisodeNoise(self.config.noise, self.randomization_sample, self.n_joints, noise_rng)
        self._place_on_ground(pose)

        self.step_count = 0
        self._pending: collections.deque[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = collections.deque()
        self._push_force: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._push_steps_left = 0
        self.last_applied_torques[:] = 0.0
        # The accelerometer window starts from rest (the robot is placed with zero velocity).
        self._accel_window_steps = max(1, int(round(self.config.imu_accel_window_s * self.physics_rate_hz)))
        zero = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
        self._velocity_history: list[tuple[tuple[float, ...], tuple[float, ...]]] = [zero] * (
            self._accel_window_steps + 1
        )
        self._activate_targets(pose, np.zeros(self.n_joints), np.zeros(self.n_joints), 1.0, 1.0, delay_steps=0)

    def _apply_sample(self, sample: RandomizationSample, link_friction: np.ndarray) -> None:
        client = self._client
        # Every link is set from its nominal values, so draws never compound over resets.
        mass_scale = sample.mass_scale * self._params_mass
        masses = self._nominal_mass * mass_scale
        inertias = self._nominal_inertia * mass_scale[:, None]  # same shape, denser material
        for row, link in enumerate(range(-1, len(self.link_names) - 1)):
            pb.changeDynamics(
                self.robot_id,
                link,
                mass=float(masses[row]),
                localInertiaDiagonal=inertias[row].tolist(),
                lateralFriction=float(link_friction[row]),
                physicsClientId=client,
            )
        self._link_masses = masses
        self.gravity = sample.gravity.copy()
        pb.setGravity(*self.gravity.tolist(), physicsClientId=client)
        strength = sample.actuator_strength
        # The motor produces `strength` times what it is asked for, up to `strength` times its rated effort.
        self._kp = self.spec.kp * sample.kp_scale * self._params_kp * strength
        self._kd = self.spec.kd * sample.kd_scale * self._params_kd * strength
        self._strength = strength.copy()
        self._tau_max = self.spec.effort_limits * strength
        self._tau_min = -self._tau_max
        self.latency_steps = int(round(sample.control_latency_s * self.physics_rate_hz))
        # Coulomb friction: a zero-velocity motor that can push back at most the friction torque (Bullet solves it
        # with the contacts, so it sticks without chattering); our PD torques act on top of it.
        pb.setJointMotorControlArray(
            self.robot_id, self._joint_ids, pb.VELOCITY_CONTROL, targetVelocities=[0.0] * self.n_joints,
            forces=self._params_friction.tolist(), physicsClientId=client,
        )  # fmt: skip

    def _place_on_ground(self, pose: np.ndarray) -> None:
        client, robot = self._client, self.robot_id
        for index, position in zip(self._joint_ids, pose, strict=True):
            pb.resetJointState(robot, index, float(position), 0.0, physicsClientId=client)
        # The base link upright: rotated by the spec's base orientation (identity for z-up models).
        upright = pb.getQuaternionFromEuler(self.spec.base_orientation_rpy)
        upright_com = pb.multiplyTransforms(
            (0.0, 0.0, _SPAWN_HEIGHT_M), upright, *pb.invertTransform(*self._com_to_base)
        )
        pb.resetBasePositionAndOrientation(robot, upright_com[0], upright_com[1], physicsClientId=client)
        pb.resetBaseVelocity(robot, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), physicsClientId=client)
        # Signed distance from every robot link to the ground; lower the robot by the smallest.
        closest = pb.getClosestPoints(robot, self.ground_id, 2.0 * _SPAWN_HEIGHT_M, physicsClientId=client)
        if not closest:
            raise SimError("could not measure the robot's height above the ground (no closest points)")
        gap = min(point[8] for point in closest)
        if gap <= 0.0:
            raise SimError(f"in the requested pose the robot reaches {-gap:.2f} m below its base at spawn height")
        lowered = (upright_com[0][0], upright_com[0][1], upright_com[0][2] - gap)
        pb.resetBasePositionAndOrientation(robot, lowered, upright_com[1], physicsClientId=client)
        self.standing_base_height = _SPAWN_HEIGHT_M - gap  # base link frame height with the soles on the ground

    # ------------------------------------------------------------------------------------------ commands

    def set_joint_targets(
        self,
        q_target: np.ndarray,
        qd_target: np.ndarray | None = None,
        tau_ff: np.ndarray | None = None,
        stiffness_scale: float | np.ndarray = 1.0,
        damping_scale: float | np.ndarray = 1.0,
    ) -> None:
        """Command the joint PD (policy order). The command reaches the motors ``latency_steps`` physics steps
        from now and is held until the next one arrives."""
        command = checked_joint_command(self.n_joints, q_target, qd_target, tau_ff, stiffness_scale, damping_scale)
        self._activate_targets(*command, delay_steps=self.latency_steps)

    def _activate_targets(
        self,
        q: np.ndarray,
        qd: np.ndarray,
        ff: np.ndarray,
        kp_scale: float | np.ndarray,
        kd_scale: float | np.ndarray,
        delay_steps: int,
    ) -> None:
        kp = self._kp * kp_scale
        kd = self._kd * kd_scale
        # tau = kp*(q* - q) + kd*(qd* - qd) + s*ff == offset - kp*q - kd*qd: the constant part is folded once.
        offset = kp * q + kd * qd + self._strength * ff
        entry = (self.step_count + delay_steps, kp, kd, offset)
        if delay_steps == 0:
            self._pending.clear()  # a command without delay supersedes everything still in flight
            self._active = entry
        else:
            self._pending.append(entry)

    # ------------------------------------------------------------------------------------------ gantry

    @property
    def base_held(self) -> bool:
        return self._gantry is not None

    def hold_base(self) -> None:
        """Hold the base where it is now with a virtual gantry (a fixed constraint to the world), for robots
        that cannot stand under PD alone until their policy takes over. ``reset`` releases it."""
        if self._gantry is None:
            position, orientation = pb.getBasePositionAndOrientation(self.robot_id, physicsClientId=self._client)
            self._gantry = pb.createConstraint(
                self.robot_id, -1, -1, -1, pb.JOINT_FIXED, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), position,
                childFrameOrientation=orientation, physicsClientId=self._client,
            )  # fmt: skip
            # Strong enough for any robot this stack drives (a 100 kg robot weighs ~1 kN).
            pb.changeConstraint(self._gantry, maxForce=1e5, physicsClientId=self._client)

    def release_base(self) -> None:
        """Let go of the base (no-op when it is free)."""
        if self._gantry is not None:
            pb.removeConstraint(self._gantry, physicsClientId=self._client)
            self._gantry = None

    def apply_push(self, force_world: np.ndarray, duration_s: float) -> None:
        """Push the base (at its centre of mass) with a constant world-frame force for ``duration_s``."""
        force, self._push_steps_left = checked_push(force_world, duration_s, self.physics_rate_hz)
        self._push_force = (float(force[0]), float(force[1]), float(force[2]))

    # ------------------------------------------------------------------------------------------ stepping

    def step(self, n_steps: int = 1) -> None:
        """Advance ``n_steps`` physics steps, running the joint PD before each."""
        if n_steps < 0:
            raise ValueError(f"n_steps = {n_steps!r}: the simulation only steps forward (use 0 or more)")
        client, robot, joint_ids = self._client, self.robot_id, self._joint_ids
        get_joint_states = pb.getJointStates
        set_motors = pb.setJointMotorControlArray
        step_simulation = pb.stepSimulation
        get_base_velocity = pb.getBaseVelocity
        torque_control = pb.TORQUE_CONTROL
        tau, scratch = self._tau, self._tau_scratch
        history, history_len = self._velocity_history, len(self._velocity_history)
        pending = self._pending
        for _ in range(n_steps):
            while pending and pending[0][0] <= self.step_count:
                self._active = pending.popleft()
            _, kp, kd, offset = self._active
            if self._push_steps_left > 0:
                com = pb.getBasePositionAndOrientation(robot, physicsClientId=client)[0]
                pb.applyExternalForce(robot, -1, self._push_force, com, pb.WORLD_FRAME, physicsClientId=client)
                self._push_steps_left -= 1
            columns = tuple(zip(*get_joint_states(robot, joint_ids, physicsClientId=client), strict=True))
            np.multiply(kp, columns[0], out=tau)
            np.multiply(kd, columns[1], out=scratch)
            np.subtract(offset, tau, out=tau)
            np.subtract(tau, scratch, out=tau)
            np.minimum(tau, self._tau_max, out=tau)
            np.maximum(tau, self._tau_min, out=tau)
            set_motors(robot, joint_ids, torque_control, forces=tau.tolist(), physicsClientId=client)
            step_simulation(physicsClientId=client)
            self.step_count += 1
            history[self.step_count % history_len] = get_base_velocity(robot, physicsClientId=client)
        self.last_applied_torques[:] = tau

    @property
    def time_s(self) -> float:
        """Simulated time since reset (counted in whole physics steps, so it never drifts)."""
        return self.step_count * self.dt

    @property
    def push_active(self) -> bool:
        return self._push_steps_left > 0

    # ------------------------------------------------------------------------------------------ sensing

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact joint positions and velocities (policy order)."""
        columns = tuple(
            zip(*pb.getJointStates(self.robot_id, self._joint_ids, physicsClientId=self._client), strict=True)
        )
        return np.array(columns[0]), np.array(columns[1])

    def pose_snapshot(self) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray]:
        """The whole robot's pose (base inertial frame position and orientation, joint positions): enough for
        another HumanoidSim of the same robot to :meth:`show_pose` it (a renderer in another process)."""
        position, orientation = pb.getBasePositionAndOrientation(self.robot_id, physicsClientId=self._client)
        return tuple(position), tuple(orientation), self.joint_state()[0]

    def show_pose(self, snapshot: tuple[tuple[float, ...], tuple[float, ...], np.ndarray]) -> None:
        """Put the robot in a :meth:`pose_snapshot`'s pose, at rest (for rendering; not for simulating on)."""
        position, orientation, q = snapshot
        client, robot = self._client, self.robot_id
        pb.resetBasePositionAndOrientation(robot, position, orientation, physicsClientId=client)
        for index, value in zip(self._joint_ids, q, strict=True):
            pb.resetJointState(robot, index, float(value), 0.0, physicsClientId=client)

    def read_sensors(self) -> SensorReadings:
        """The IMU, encoders and foot force sensors, with this episode's noise and bias."""
        client, robot = self._client, self.robot_id
        q, qd = self.joint_state()
        com_quat = pb.getBasePositionAndOrientation(robot, physicsClientId=client)[1]
        # Accelerometer: mean acceleration of the IMU point over the window, minus gravity (specific force).
        history, length = self._velocity_history, len(self._velocity_history)
        newest, oldest = history[self.step_count % length], history[(self.step_count + 1) % length]
        rate = 1.0 / ((length - 1) * self.dt)
        omega = np.array(newest[1])
        acceleration = (np.array(newest[0]) - oldest[0]) * rate
        if self._imu_has_lever:  # the IMU point also moves by the base's rotation
            lever = quat_to_matrix(com_quat) @ self._imu_offset
            angular_acceleration = (omega - oldest[1]) * rate
            acceleration += _cross3(angular_acceleration, lever) + _cross3(omega, _cross3(omega, lever))
        imu_quat = (
            np.array(com_quat) if self._imu_quat_in_com is None else quat_multiply(com_quat, self._imu_quat_in_com)
        )
        imu_to_world = quat_to_matrix(imu_quat)
        imu_quat, gyro, accel, q, qd = self.noise.apply(
            imu_quat, omega @ imu_to_world, (acceleration - self.gravity) @ imu_to_world, q, qd
        )
        forces, contacts, wrenches = self._foot_contacts()
        return SensorReadings(
            time_s=self.time_s,
            imu_quat=imu_quat,
            imu_gyro=gyro,
            imu_accel=accel,
            joint_pos=q,
            joint_vel=qd,
            foot_forces=forces,
            foot_contacts=contacts,
            foot_wrenches=wrenches,
        )

    def _foot_contacts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        client, robot = self._client, self.robot_id
        forces = np.zeros(2)
        wrenches = np.zeros((2, 6))
        foot_states = pb.getLinkStates(robot, self._foot_ids, physicsClientId=client)
        for side, foot in enumerate(self._foot_ids):
            ox, oy, oz = foot_states[side][4]  # torques are taken about the foot link origin
            normal_sum = fx_sum = fy_sum = fz_sum = tx_sum = ty_sum = tz_sum = 0.0
            # A handful of points per foot: plain float arithmetic is several times faster than numpy here.
            for point in pb.getContactPoints(bodyA=robot, linkIndexA=foot, physicsClientId=client):
                if point[2] == robot:  # a self-collision, not a ground reaction
                    continue
                (px, py, pz), (nx, ny, nz), normal = point[5], point[7], point[9]
                friction1, (ax, ay, az), friction2, (bx, by, bz) = point[10], point[11], point[12], point[13]
                # The normal points from the ground to the foot (A); PyBullet reports the friction impulses as
                # acting on the ground (they do not flip with A/B as the normal does; checked by
                # test_foot_wrench_balances_a_steady_push), hence the minus signs for the force on the foot.
                fx = normal * nx - friction1 * ax - friction2 * bx
                fy = normal * ny - friction1 * ay - friction2 * by
                fz = normal * nz - friction1 * az - friction2 * bz
                rx, ry, rz = px - ox, py - oy, pz - oz
                normal_sum += normal
                fx_sum += fx
                fy_sum += fy
                fz_sum += fz
                tx_sum += ry * fz - rz * fy
                ty_sum += rz * fx - rx * fz
                tz_sum += rx * fy - ry * fx
            forces[side] = normal_sum
            # World -> foot link frame (a sensor reports in its own frame): the transpose of the link's rotation.
            r = pb.getMatrixFromQuaternion(foot_states[side][5])  # row-major, foot -> world
            wrenches[side] = (
                r[0] * fx_sum + r[3] * fy_sum + r[6] * fz_sum,
                r[1] * fx_sum + r[4] * fy_sum + r[7] * fz_sum,
                r[2] * fx_sum + r[5] * fy_sum + r[8] * fz_sum,
                r[0] * tx_sum + r[3] * ty_sum + r[6] * tz_sum,
                r[1] * tx_sum + r[4] * ty_sum + r[7] * tz_sum,
                r[2] * tx_sum + r[5] * ty_sum + r[8] * tz_sum,
            )
        return forces, forces > self.config.contact_force_threshold_n, wrenches

    def ground_truth(self) -> BaseState:
        """Exact base pose and velocity and the whole-body centre of mass."""
        client, robot = self._client, self.robot_id
        com_pos, com_quat = pb.getBasePositionAndOrientation(robot, physicsClientId=client)
        lin_vel, ang_vel = pb.getBaseVelocity(robot, physicsClientId=client)
        omega = np.asarray(ang_vel)
        velocity = np.asarray(lin_vel)
        if self._base_is_com_frame:
            pos, quat = com_pos, com_quat
        else:
            pos, quat = pb.multiplyTransforms(com_pos, com_quat, *self._com_to_base)
            velocity = velocity + np.cross(omega, np.asarray(pos) - np.asarray(com_pos))
        rotation = quat_to_matrix(quat)
        link_coms = pb.getLinkStates(robot, self._all_link_ids, physicsClientId=client)
        positions = np.array([com_pos] + [state[0] for state in link_coms])
        whole_body_com = self._link_masses @ positions / self._link_masses.sum()
        return BaseState(
            time_s=self.time_s,
            pos=np.asarray(pos),
            quat=np.asarray(quat),
            lin_vel_world=velocity,
            ang_vel_world=omega,
            ang_vel_body=rotation.T @ omega,
            lin_vel_body=rotation.T @ velocity,
            com=whole_body_com,
            projected_gravity=projected_gravity(quat),
            upright_in_base=self._upright_in_base,
        )

    def joint_tree(self) -> list[tuple[str, str]]:
        """(parent link, child link) of every URDF joint, fixed ones too: what a transform tree needs."""
        names = self.link_names  # base first, then PyBullet link order (link i is index i + 1)
        tree = []
        for index in range(len(names) - 1):
            parent = pb.getJointInfo(self.robot_id, index, physicsClientId=self._client)[16]
            tree.append((names[parent + 1], names[index + 1]))
        return tree

    def link_frames(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """World position and xyzw orientation of every URDF link frame (exact; for viewers)."""
        truth = self.ground_truth()
        frames = {self.spec.base_link: (truth.pos, truth.quat)}
        states = pb.getLinkStates(self.robot_id, self._all_link_ids, computeForwardKinematics=1,
                                  physicsClientId=self._client)
        for name, state in zip(self.link_names[1:], states, strict=True):
            frames[name] = (np.asarray(state[4]), np.asarray(state[5]))
        return frames

    def contact_wrenches(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact normal force (2,) and wrench in the foot frame (2, 6) per foot; draws no sensor noise, so a
        viewer may call it without changing the run."""
        forces, _, wrenches = self._foot_contacts()
        return forces, wrenches

    def foot_kinematics(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact world position (2, 3) of the foot link frames and linear velocity (2, 3) of the feet's centres of
        mass (left, right): both engines report a link's velocity there (checked against finite differences)."""
        states = pb.getLinkStates(
            self.robot_id, self._foot_ids, computeLinkVelocity=1, computeForwardKinematics=1,
            physicsClientId=self._client,
        )
        return np.array([state[4] for state in states]), np.array([state[6] for state in states])

    # ------------------------------------------------------------------------------------------ limits

    def joint_limit_proximity(self, joint_pos: np.ndarray | None = None) -> np.ndarray:
        """Per joint: 0 mid-range, 1 at (or beyond) a limit. Uses the exact positions if none are given."""
        return joint_limit_proximity(self.spec, self.joint_state()[0] if joint_pos is None else joint_pos)

    def forget_contacts(self) -> None:
        """Drop Bullet's cached contact manifolds; call before ``reset``.

        Bullet warm-starts the contact solver from the manifolds of the previous step; a reset that puts the
        feet back where they were keeps them, so an episode would depend on the one before it and the same
        seed would not give the same trajectory. Lifting the robot clear of everything and running collision
        detection releases the pairs, so every episode starts as the first one after construction does.
        """
        client, robot = self._client, self.robot_id
        pb.resetBasePositionAndOrientation(robot, (0.0, 0.0, 100.0), (0.0, 0.0, 0.0, 1.0), physicsClientId=client)
        pb.performCollisionDetection(physicsClientId=client)

    def joints_within_limits(self, joint_pos: np.ndarray | None = None, margin_rad: float = 0.0) -> bool:
        """True if every joint is inside [lower + margin, upper - margin]."""
        q = self.joint_state()[0] if joint_pos is None else np.asarray(joint_pos, dtype=np.float64)
        return bool(np.all(q >= self.spec.lower + margin_rad) and np.all(q <= self.spec.upper - margin_rad))

    # ------------------------------------------------------------------------------------------ lifetime

    @property
    def client_id(self) -> int:
        """This simulation's PyBullet physics client (pass it as physicsClientId to direct PyBullet calls)."""
        return self._client

    @property
    def bullet_joint_indices(self) -> tuple[int, ...]:
        """PyBullet joint index of each joint, in policy order."""
        return tuple(self._joint_ids)

    def close(self) -> None:
        if not getattr(self, "_closed", True):
            self._closed = True
            try:
                pb.disconnect(physicsClientId=self._client)
            except pb.error:  # already gone (e.g. the GUI window was closed)
                pass

    def __enter__(self) -> HumanoidSim:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # at interpreter exit pybullet may already be torn down
            pass
