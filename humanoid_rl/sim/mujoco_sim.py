"""MuJoCo training backend: the same robot, sensors, randomization and pushes as ``HumanoidSim``, ~10x cheaper.

Training only (``humanoid-rl train --backend mujoco``). Evaluation, ``humanoid-rl sim`` and the sim bridge
always run PyBullet at the robot's 1 kHz, so a policy trained here ships only after it passes its acceptance
there (a sim-to-sim check, as humanoid-gym does the other way round).

Where the speed comes from (measured by ``humanoid-rl bench train``): MuJoCo's step costs ~25 µs against
PyBullet's ~110 µs, and the joint PD runs inside the engine as affine actuators
(``tau = ctrl - kp*q - kd*qd``, ``ctrl = kp*q* + kd*qd* + s*tau_ff``, clipped to the torque limit), with the
velocity term integrated implicitly (``implicitfast``). That is stable at 2 ms steps, where the explicit
Python PD of ``HumanoidSim`` needs 1-2 ms, so the default here is 500 Hz and ``mj_step`` runs whole chunks
between command changes without returning to Python.

The model is compiled from the robot's own URDF (collision shapes only; the floor and a free base added),
every joint vector is in policy order, and the interface is ``HumanoidSim``'s where training uses it.
"""

from __future__ import annotations

import collections
import math
import re

import mujoco
import numpy as np

from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.core.rotations import projected_gravity, quat_to_matrix
from humanoid_rl.sim.randomization import draw_randomization
from humanoid_rl.sim.sensor_noise import EpisodeNoise
from humanoid_rl.sim.simulator import (
    STANDARD_GRAVITY,
    BaseState,
    SensorReadings,
    SimConfig,
    SimError,
    _as_vector,
    checked_joint_command,
    checked_push,
    joint_limit_proximity,
)

__all__ = ["MUJOCO_PHYSICS_RATE_HZ", "MujocoHumanoidSim"]

MUJOCO_PHYSICS_RATE_HZ = 500.0  # the default step: stable with the implicit PD, 2x fewer steps than 1 kHz
_SPAWN_HEIGHT_M = 3.0
_IMU_SITE = "humanoid_rl_imu"


def _compiler_extension(urdf_text: str, mesh_dir: str) -> str:
    """The URDF with MuJoCo's ``<mujoco>`` extension: collision geometry only, every link kept as a body (the
    IMU link too), inertias as written."""
    match = re.search(r"<robot\b[^>]*>", urdf_text)
    if match is None:
        raise SimError("the URDF has no <robot> element")
    extension = (
        f'<mujoco><compiler discardvisual="true" fusestatic="false" balanceinertia="false" '
        f'angle="radian" meshdir="{mesh_dir}"/></mujoco>'
    )
    return urdf_text[: match.end()] + extension + urdf_text[match.end() :]


def _xyzw(wxyz: np.ndarray) -> np.ndarray:
    return np.array([wxyz[1], wxyz[2], wxyz[3], wxyz[0]])


class MujocoHumanoidSim:
    """The humanoid in MuJoCo. ``reset`` then alternately ``set_joint_targets`` and ``step``."""

    def __init__(self, spec: RobotSpec, config: SimConfig | None = None) -> None:
        self.spec = spec
        self.config = config if config is not None else SimConfig()
        if self.config.params is not None:  # not applied here: refuse rather than run the nominal robot silently
            raise ValueError("SimConfig.params (fitted parameters) apply to the PyBullet simulator only")
        self.physics_rate_hz = float(self.config.physics_rate_hz or MUJOCO_PHYSICS_RATE_HZ)
        self.dt = 1.0 / self.physics_rate_hz
        self.decimation = max(1, int(round(self.physics_rate_hz / spec.policy_rate_hz)))
        self.n_joints = spec.n_joints
        self.joint_names = spec.joint_names
        if self.config.gui:
            raise SimError("the MuJoCo backend is for training only and has no window: use the PyBullet backend")
        self._build()
        rpy = spec.base_orientation_rpy
        cr, sr = math.cos(rpy[0] / 2), math.sin(rpy[0] / 2)
        cp, sp = math.cos(rpy[1] / 2), math.sin(rpy[1] / 2)
        cy, sy = math.cos(rpy[2] / 2), math.sin(rpy[2] / 2)
        self._upright_xyzw = np.array([
            sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy,
            cr * cp * cy + sr * sp * sy,
        ])  # fmt: skip
        x, y, z, w = self._upright_xyzw
        self._upright_in_base = np.array([-x, -y, -z, w]) if any(rpy) else None
        self._episode_seeds = np.random.default_rng(self.config.seed)
        self.last_applied_torques = np.zeros(self.n_joints)
        self._truth: BaseState | None = None  # ground_truth() of the state reached, until the next step or reset
        self.reset()

    # ------------------------------------------------------------------------------------------ loading

    def _build(self) -> None:
        spec = self.spec
        text = _compiler_extension(spec.urdf_path.read_text(encoding="utf-8"), str(spec.urdf_path.parent))
        try:
            mj = mujoco.MjSpec.from_string(text)
        except ValueError as error:
            raise SimError(f"MuJoCo cannot compile {spec.urdf_path}: {error}") from None
        mj.option.timestep = self.dt
        mj.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        root = mj.worldbody.first_body()
        if root.name != spec.base_link:
            raise SimError(f"{spec.urdf_path}: the root link is {root.name!r}, the spec's base_link "
                           f"{spec.base_link!r}")
        root.add_freejoint(name="root")
        # Robot geoms touch only the floor (PyBullet without self-collision), and their friction wins over the
        # floor's (priority), so a drawn foot friction is the contact's, as in PyBullet with a ground of 1.
        for geom in mj.geoms:
            geom.contype, geom.conaffinity, geom.priority = 1, int(self.config.self_collision), 1
            geom.friction = [1.0, 0.005, 0.0001]
        mj.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05], contype=1,
                              conaffinity=1, friction=[self.config.ground_friction, 0.005, 0.0001])
        imu_body = mj.body(spec.imu_link)
        if imu_body is None:
            raise SimError(f"{spec.urdf_path} has no link {spec.imu_link!r} (spec imu_link)")
        imu_body.add_site(name=_IMU_SITE)
        mj.add_sensor(name="gyro", type=mujoco.mjtSensor.mjSENS_GYRO, objtype=mujoco.mjtObj.mjOBJ_SITE,
                      objname=_IMU_SITE)
        mj.add_sensor(name="accel", type=mujoco.mjtSensor.mjSENS_ACCELEROMETER, objtype=mujoco.mjtObj.mjOBJ_SITE,
                      objname=_IMU_SITE)
        for name, limit in zip(spec.joint_names, spec.effort_limits, strict=True):
            actuator = mj.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
            actuator.gaintype, actuator.biastype = mujoco.mjtGain.mjGAIN_FIXED, mujoco.mjtBias.mjBIAS_AFFINE
            actuator.gainprm[0] = 1.0  # ctrl is the torque offset; the PD lives in biasprm
            actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
            actuator.forcerange = [-float(limit), float(limit)]
        try:
            model = mj.compile()
        except ValueError as error:
            raise SimError(f"MuJoCo cannot compile {spec.urdf_path}: {error}") from None
        self.model, self.data = model, mujoco.MjData(model)
        missing = [name for name in spec.joint_names if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name) < 0]
        if missing:
            raise SimError(f"{spec.urdf_path} has no joints named {missing}; the spec and URDF disagree")
        self._qpos = np.array([model.joint(name).qposadr[0] for name in spec.joint_names])
        self._qvel = np.array([model.joint(name).dofadr[0] for name in spec.joint_names])
        self._base = model.body(spec.base_link).id
        self._imu = model.body(spec.imu_link).id
        self._feet = [model.body(name).id for name in spec.foot_links]
        self._floor = model.geom("floor").id
        self.link_names: tuple[str, ...] = tuple(model.body(i).name for i in range(1, model.nbody))  # base first
        self._geoms_of = {name: np.flatnonzero(model.geom_bodyid == model.body(name).id) for name in self.link_names}
        self._gyro = slice(model.sensor("gyro").adr[0], model.sensor("gyro").adr[0] + 3)
        self._accel = slice(model.sensor("accel").adr[0], model.sensor("accel").adr[0] + 3)
        self._nominal_mass = model.body_mass[1:].copy()
        self._nominal_inertia = model.body_inertia[1:].copy()
        self._nominal_friction = model.geom_friction[:, 0].copy()
        self._robot_geoms = np.flatnonzero(model.geom_bodyid > 0)
        self._contact_force = np.zeros(6)
        self._velocity = np.zeros(6)

    # ------------------------------------------------------------------------------------------ episodes

    def reset(self, seed: int | None = None, joint_pos: np.ndarray | None = None) -> None:
        """As ``HumanoidSim.reset``: draw the episode's randomization and sensor biases from ``seed``, put the robot
        in ``joint_pos`` (or the default pose) with its lowest point on the floor, at rest, holding that pose."""
        if seed is None:
            seed = int(self._episode_seeds.integers(0, 2**63 - 1))
        self.seed = seed
        randomization_rng, noise_rng = np.random.default_rng(seed).spawn(2)
        pose = self.spec.default_pose if joint_pos is None else _as_vector("joint_pos", joint_pos, self.n_joints, "")
        model = self.model
        friction = self._nominal_friction.copy()
        for foot in self.spec.foot_links:
            friction[self._geoms_of[foot]] = self.config.foot_friction
        friction_links = self.link_names if self.config.randomization.friction_all_links else self.spec.foot_links
        nominal = np.array([friction[self._geoms_of[name][0]] if len(self._geoms_of[name]) else 1.0
                            for name in friction_links])
        sample = draw_randomization(
            self.config.randomization, randomization_rng, link_names=self.link_names,
            friction_link_names=tuple(friction_links), nominal_friction=nominal, n_joints=self.n_joints,
            nominal_gravity_z=-STANDARD_GRAVITY, nominal_latency_s=self.config.control_latency_s, seed=seed,
        )  # fmt: skip
        self.randomization_sample = sample
        for name, value in zip(friction_links, sample.friction, strict=True):
            friction[self._geoms_of[name]] = value
        model.geom_friction[:, 0] = friction
        model.body_mass[1:] = self._nominal_mass * sample.mass_scale
        model.body_inertia[1:] = self._nominal_inertia * sample.mass_scale[:, None]
        self._link_masses = model.body_mass[1:].copy()
        self.gravity = sample.gravity.copy()
        model.opt.gravity[:] = self.gravity
        strength = sample.actuator_strength
        self._kp = self.spec.kp * sample.kp_scale * strength
        self._kd = self.spec.kd * sample.kd_scale * strength
        self._strength = strength.copy()
        model.actuator_forcerange[:, 0] = -self.spec.effort_limits * strength
        model.actuator_forcerange[:, 1] = self.spec.effort_limits * strength
        self.latency_steps = int(round(sample.control_latency_s * self.physics_rate_hz))
        self.noise = EpisodeNoise(self.config.noise, sample, self.n_joints, noise_rng)
        self._place_on_ground(pose)

        self.step_count = 0
        self._pending: collections.deque[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = collections.deque()
        self._push_force = np.zeros(3)
        self._push_steps_left = 0
        self.last_applied_torques[:] = 0.0
        self._activate_targets(pose, np.zeros(self.n_joints), np.zeros(self.n_joints), 1.0, 1.0, delay_steps=0)

    def _place_on_ground(self, pose: np.ndarray) -> None:
        model, data = self.model, self.data
        mujoco.mj_resetData(model, data)
        data.qpos[self._qpos] = pose
        x, y, z, w = self._upright_xyzw
        data.qpos[0:7] = [0.0, 0.0, _SPAWN_HEIGHT_M, w, x, y, z]
        mujoco.mj_forward(model, data)
        fromto = np.zeros(6)
        gap = min(
            mujoco.mj_geomDistance(model, data, int(g), self._floor, 2.0 * _SPAWN_HEIGHT_M, fromto)
            for g in self._robot_geoms
        )
        if gap <= 0.0:
            raise SimError(f"in the requested pose the robot reaches {-gap:.2f} m below its base at spawn height")
        data.qpos[2] = _SPAWN_HEIGHT_M - gap
        self.standing_base_height = _SPAWN_HEIGHT_M - gap
        mujoco.mj_forward(model, data)
        self._fresh = True
        self._truth = None

    # ------------------------------------------------------------------------------------------ commands

    def set_joint_targets(
        self,
        q_target: np.ndarray,
        qd_target: np.ndarray | None = None,
        tau_ff: np.ndarray | None = None,
        stiffness_scale: float | np.ndarray = 1.0,
        damping_scale: float | np.ndarray = 1.0,
    ) -> None:
        """As ``HumanoidSim.set_joint_targets``: reaches the motors ``latency_steps`` physics steps from now."""
        command = checked_joint_command(self.n_joints, q_target, qd_target, tau_ff, stiffness_scale, damping_scale)
        self._activate_targets(*command, delay_steps=self.latency_steps)

    def _activate_targets(self, q: np.ndarray, qd: np.ndarray, ff: np.ndarray, kp_scale: float | np.ndarray,
                          kd_scale: float | np.ndarray, delay_steps: int) -> None:
        kp, kd = self._kp * kp_scale, self._kd * kd_scale
        entry = (self.step_count + delay_steps, kp, kd, kp * q + kd * qd + self._strength * ff)
        if delay_steps == 0:
            self._pending.clear()
            self._apply(entry)
        else:
            self._pending.append(entry)

    def _apply(self, entry: tuple[int, np.ndarray, np.ndarray, np.ndarray]) -> None:
        _, kp, kd, offset = entry
        self.model.actuator_biasprm[:, 1] = -kp
        self.model.actuator_biasprm[:, 2] = -kd
        self.data.ctrl[:] = offset

    def apply_push(self, force_world: np.ndarray, duration_s: float) -> None:
        """Push the base (at its centre of mass) with a constant world-frame force for ``duration_s``."""
        self._push_force, self._push_steps_left = checked_push(force_world, duration_s, self.physics_rate_hz)

    @property
    def push_active(self) -> bool:
        return self._push_steps_left > 0

    # ------------------------------------------------------------------------------------------ stepping

    def step(self, n_steps: int = 1) -> None:
        """Advance ``n_steps`` physics steps, in chunks between command arrivals and push ends."""
        if n_steps < 0:
            raise ValueError(f"n_steps = {n_steps!r}: the simulation only steps forward (use 0 or more)")
        model, data, pending = self.model, self.data, self._pending
        remaining = n_steps
        while remaining > 0:
            while pending and pending[0][0] <= self.step_count:
                self._apply(pending.popleft())
            chunk = remaining
            if pending:
                chunk = min(chunk, pending[0][0] - self.step_count)
            pushing = self._push_steps_left > 0
            if pushing:
                chunk = min(chunk, self._push_steps_left)
            data.xfrc_applied[self._base, :3] = self._push_force if pushing else 0.0
            mujoco.mj_step(model, data, nstep=chunk)
            self.step_count += chunk
            remaining -= chunk
            if pushing:
                self._push_steps_left -= chunk
        data.xfrc_applied[self._base, :3] = 0.0
        self._fresh = n_steps == 0 and self._fresh
        if n_steps:
            self._truth = None
        self.last_applied_torques[:] = data.actuator_force

    def _sync(self) -> None:
        """mj_step leaves positions, contacts and sensors of the state *before* its last integration; the
        readings of the state reached need one mj_forward (done once, on the first read after stepping)."""
        if not self._fresh:
            mujoco.mj_forward(self.model, self.data)
            self._fresh = True

    @property
    def time_s(self) -> float:
        return self.step_count * self.dt

    # ------------------------------------------------------------------------------------------ sensing

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.qpos[self._qpos].copy(), self.data.qvel[self._qvel].copy()

    def read_sensors(self) -> SensorReadings:
        """The IMU, encoders and foot force sensors, with this episode's noise and bias."""
        self._sync()
        data = self.data
        q, qd = self.joint_state()
        imu_quat = _xyzw(data.xquat[self._imu])
        imu_quat, gyro, accel, q, qd = self.noise.apply(
            imu_quat, data.sensordata[self._gyro].copy(), data.sensordata[self._accel].copy(), q, qd
        )
        forces, wrenches = self._foot_contacts()
        return SensorReadings(
            time_s=self.time_s, imu_quat=imu_quat, imu_gyro=gyro, imu_accel=accel, joint_pos=q, joint_vel=qd,
            foot_forces=forces, foot_contacts=forces > self.config.contact_force_threshold_n,
            foot_wrenches=wrenches,
        )  # fmt: skip

    def _foot_contacts(self) -> tuple[np.ndarray, np.ndarray]:
        model, data = self.model, self.data
        forces, wrenches = np.zeros(2), np.zeros((2, 6))
        contacts = data.contact  # whole-array views: indexing data.contact[i] builds an object per contact
        body1, body2 = model.geom_bodyid[contacts.geom1], model.geom_bodyid[contacts.geom2]
        frames, points, local = contacts.frame.tolist(), contacts.pos.tolist(), self._contact_force
        for side, foot in enumerate(self._feet):
            ox, oy, oz = data.xpos[foot].tolist()
            normal_sum = fx_sum = fy_sum = fz_sum = tx_sum = ty_sum = tz_sum = 0.0
            # A handful of contacts per foot: plain float arithmetic is several times faster than numpy here.
            for i in np.flatnonzero((body1 == foot) | (body2 == foot)).tolist():
                mujoco.mj_contactForce(model, data, i, local)
                n, t1, t2 = local[0], local[1], local[2]
                a = frames[i]  # rows: normal, tangent 1, tangent 2; the force geom1 exerts on geom2
                sign = -1.0 if body1[i] == foot else 1.0
                fx = sign * (a[0] * n + a[3] * t1 + a[6] * t2)
                fy = sign * (a[1] * n + a[4] * t1 + a[7] * t2)
                fz = sign * (a[2] * n + a[5] * t1 + a[8] * t2)
                px, py, pz = points[i]
                rx, ry, rz = px - ox, py - oy, pz - oz
                normal_sum += n
                fx_sum += fx
                fy_sum += fy
                fz_sum += fz
                tx_sum += ry * fz - rz * fy
                ty_sum += rz * fx - rx * fz
                tz_sum += rx * fy - ry * fx
            forces[side] = normal_sum
            rotation = data.xmat[foot].reshape(3, 3)  # foot -> world; a sensor reports in its own frame
            wrenches[side, :3] = np.array([fx_sum, fy_sum, fz_sum]) @ rotation
            wrenches[side, 3:] = np.array([tx_sum, ty_sum, tz_sum]) @ rotation
        return forces, wrenches

    def ground_truth(self) -> BaseState:
        """Exact base pose and velocity and the whole-body centre of mass. Computed once per state reached (an env
        step asks three times: observation, reward, shield); its arrays are read-only, since they are shared."""
        if self._truth is None:
            self._truth = self._ground_truth()
        return self._truth

    def _ground_truth(self) -> BaseState:
        self._sync()
        data = self.data
        quat = _xyzw(data.qpos[3:7])
        rotation = quat_to_matrix(quat)
        ang_vel_body = data.qvel[3:6].copy()  # a free joint's angular velocity is in the body frame
        lin_vel_world = data.qvel[0:3].copy()
        truth = BaseState(
            time_s=self.time_s, pos=data.qpos[0:3].copy(), quat=quat, lin_vel_world=lin_vel_world,
            ang_vel_world=rotation @ ang_vel_body, ang_vel_body=ang_vel_body, lin_vel_body=rotation.T @ lin_vel_world,
            com=data.subtree_com[self._base].copy(), projected_gravity=projected_gravity(quat),
            upright_in_base=self._upright_in_base,
        )  # fmt: skip
        for value in vars(truth).values():
            if isinstance(value, np.ndarray) and value is not self._upright_in_base:
                value.flags.writeable = False
        return truth

    def foot_kinematics(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact world position (2, 3) of the foot link frames and linear velocity (2, 3) of the feet's centres of
        mass (left, right): both engines report a link's velocity there (checked against finite differences)."""
        self._sync()
        positions, velocities = np.zeros((2, 3)), np.zeros((2, 3))
        for side, foot in enumerate(self._feet):
            positions[side] = self.data.xpos[foot]
            mujoco.mj_objectVelocity(self.model, self.data, mujoco.mjtObj.mjOBJ_BODY, foot, self._velocity, 0)
            velocities[side] = self._velocity[3:]
        return positions, velocities

    def joint_limit_proximity(self, joint_pos: np.ndarray | None = None) -> np.ndarray:
        q = self.joint_state()[0] if joint_pos is None else joint_pos
        return joint_limit_proximity(self.spec, q)

    def forget_contacts(self) -> None:
        """Nothing to forget: MuJoCo keeps no contact state between resets (``mj_resetData`` clears it)."""

    def close(self) -> None:
        """Nothing to release (the model and data are freed with this object)."""

