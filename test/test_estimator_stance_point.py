"""The estimator's stance point: a stance foot that rolls onto an edge of its sole pivots about that edge, and its
link frame (at the ankle) moves while it carries the robot. Anchoring the ankle made a walking robot's estimated
velocity wrong by the ankle's speed (0.19 m/s RMSE in the full stack) and its height by the ankle's lift; these
tests roll the feet on purpose, synthetically and in PyBullet, and hold both models to account."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_estimator import DT, SensorStream, run, weight

from humanoid_rl.core.estimator import EstimatorParams, LeggedStateEstimator
from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.core.rotations import quat_from_axis_angle, quat_to_matrix
from humanoid_rl.sim.simulator import HumanoidSim, SimConfig

FOOT_FRAME = EstimatorParams(stance_point="foot_frame")


@pytest.fixture(scope="module")
def spec() -> RobotSpec:
    return RobotSpec.load()


@pytest.fixture(scope="module")
def kinematics(spec: RobotSpec) -> RobotKinematics:
    return RobotKinematics(spec)


def test_a_flat_foot_stands_on_its_sole_centre_and_a_tilted_one_on_its_lower_edge(spec, kinematics):
    estimator = LeggedStateEstimator(spec, kinematics)
    q = np.asarray(spec.default_pose)
    feet, rotations, _ = kinematics.foot_frames_in_base(q)
    sole_centres = feet + np.einsum("sij,sj->si", rotations, kinematics.sole_corners_in_foot.mean(axis=1))
    level = estimator.stance_points_in_base(q, [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(level, sole_centres, atol=1e-3)
    # The whole robot rolled 0.2 rad to its left (about +x): the feet stand on their left edges (+y), mid-length.
    rolled = estimator.stance_points_in_base(q, quat_from_axis_angle(np.array([1.0, 0.0, 0.0]), -0.2))
    half_width = 0.5 * spec.soles[0].size[1]
    np.testing.assert_allclose(rolled[:, 1] - sole_centres[:, 1], half_width, atol=1e-3)
    np.testing.assert_allclose(rolled[:, 0], sole_centres[:, 0], atol=1e-3)
    # The foot-frame model keeps the foot link origins whatever the orientation.
    old = LeggedStateEstimator(spec, kinematics, FOOT_FRAME)
    np.testing.assert_allclose(old.stance_points_in_base(q, [0.0, 0.0, 0.0, 1.0]), feet, atol=1e-12)


def rolling_feet_stream(spec: RobotSpec, kinematics: RobotKinematics, duration_s: float) -> SensorStream:
    """Base still and level at the nominal height; both feet roll about their left sole edges (fixed on the
    ground) by 0.25 (1 - cos(2π·0.7 Hz t))/2 rad, as a robot rocking on its ankles does. Joints by 6-D inverse
    kinematics, joint velocities from the feet's exact twists."""
    n = round(duration_s / DT)
    t = np.arange(n) * DT
    w = 2 * math.pi * 0.7
    angle = 0.125 * (1 - np.cos(w * t))
    rate = 0.125 * w * np.sin(w * t)
    q = np.array(spec.default_pose, dtype=float)
    feet0, rotations0, jac = kinematics.foot_frames_in_base(q)
    columns = [np.flatnonzero(np.abs(jac[i]).sum(axis=0) > 1e-9) for i in range(2)]
    corners = kinematics.sole_corners_in_foot
    # Pivot: the midpoint of each sole's left edge (the two corners with the largest y), in the base frame.
    pivots = np.array([feet0[s] + rotations0[s] @ corners[s][np.argsort(corners[s][:, 1])[2:]].mean(axis=0)
                       for s in range(2)])
    joint_pos = np.empty((n, spec.n_joints))
    joint_vel = np.zeros((n, spec.n_joints))
    for k in range(n):
        turn = quat_to_matrix(quat_from_axis_angle(np.array([1.0, 0.0, 0.0]), -angle[k]))
        targets = [(pivots[s] + turn @ (feet0[s] - pivots[s]), turn @ rotations0[s]) for s in range(2)]
        for _ in range(4):
            feet, rotations, jac = kinematics.foot_frames_in_base(q)
            for s, cols in enumerate(columns):
                delta = targets[s][1] @ rotations[s].T
                error = np.concatenate([targets[s][0] - feet[s], 0.5 * (delta - delta.T)[[2, 0, 1], [1, 2, 0]]])
                q[cols] += np.linalg.lstsq(jac[s][:, cols], error, rcond=None)[0]
        feet, _, jac = kinematics.foot_frames_in_base(q)
        omega = np.array([-rate[k], 0.0, 0.0])
        for s, cols in enumerate(columns):
            twist = np.concatenate([np.cross(omega, feet[s] - pivots[s]), omega])
            joint_vel[k, cols] = np.linalg.lstsq(jac[s][:, cols], twist, rcond=None)[0]
        assert np.abs(feet - np.array([target[0] for target in targets])).max() < 1e-6, "fixture: IK did not converge"
        joint_pos[k] = q
    return SensorStream(
        times=t,
        quat=np.tile([0.0, 0.0, 0.0, 1.0], (n, 1)),
        gyro=np.zeros((n, 3)),
        accel=np.tile([0.0, 0.0, 9.81], (n, 1)),
        joint_pos=joint_pos,
        joint_vel=joint_vel,
        foot_forces=np.tile([weight(kinematics) / 2, weight(kinematics) / 2], (n, 1)),
        true_position=np.tile([0.0, 0.0, spec.nominal_base_height], (n, 1)),
        true_velocity=np.zeros((n, 3)),
    )


def test_feet_rolling_on_their_edges_under_a_still_base_leave_velocity_and_height_still(spec, kinematics):
    stream = rolling_feet_stream(spec, kinematics, duration_s=2.0).with_noise(seed=11)
    errors = {}
    for name, params in (("sole", None), ("foot_frame", FOOT_FRAME)):
        outputs = run(LeggedStateEstimator(spec, kinematics, params), stream)
        velocity = np.array([o.linear_velocity_world for o in outputs[200:]])
        height = np.array([o.height for o in outputs[200:]])
        errors[name] = (float(np.sqrt(np.mean(velocity**2))), float(np.abs(height - spec.nominal_base_height).max()))
    assert errors["sole"][0] < 0.01, errors
    assert errors["sole"][1] < 0.004, errors
    # The ankle-anchored model reads the ankles' swing as base motion and their lift as height.
    assert errors["foot_frame"][0] > 3 * errors["sole"][0], errors
    assert errors["foot_frame"][1] > 0.008, errors  # about 1 cm


def test_a_robot_rocking_on_its_ankles_in_pybullet_is_estimated_from_its_sole_edges(spec, kinematics):
    """PD hold with both ankle rolls swung ±0.3 rad at 1 Hz: the feet tip 14-17° onto their edges and the base
    sways sideways (0.08 m/s rms). Sampled at 50 Hz, the sim bridge's rate in the ROS stack."""
    estimators = {"sole": LeggedStateEstimator(spec, kinematics),
                  "foot_frame": LeggedStateEstimator(spec, kinematics, FOOT_FRAME)}
    errors: dict[str, list[np.ndarray]] = {name: [] for name in estimators}
    ankles = [spec.joint_names.index(f"{side}_ankle_roll_joint") for side in ("left", "right")]
    rate_hz = 50.0
    with HumanoidSim(spec, SimConfig()) as sim:
        sim.reset(seed=0)
        steps = round(sim.physics_rate_hz / rate_hz)
        for k in range(round(4.0 * rate_hz)):
            t = k / rate_hz
            targets = np.array(spec.default_pose, dtype=float)
            targets[ankles] += 0.3 * min(1.0, max(0.0, t - 0.5)) * math.sin(2 * math.pi * t)
            sim.set_joint_targets(targets)
            sim.step(steps)
            s, truth = sim.read_sensors(), sim.ground_truth()
            for name, estimator in estimators.items():
                out = estimator.update(s.time_s, s.imu_quat, s.imu_gyro, s.imu_accel, s.joint_pos, s.joint_vel,
                                       s.foot_forces)
                if t > 1.0:
                    errors[name].append(out.linear_velocity_world - truth.lin_vel_world)
        assert truth.pos[2] > 0.9 * spec.nominal_base_height, "the robot fell: the scripted motion is too strong"
    rmse = {name: np.sqrt(np.mean(np.square(e), axis=0)) for name, e in errors.items()}
    assert rmse["sole"].max() < 0.03, rmse
    assert rmse["foot_frame"][1] > 0.04, rmse  # the 0.05 m/s sideways error the ankle model makes here
