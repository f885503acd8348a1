"""HumanoidSim on the real PyBullet and the shipped robot: standing, pushes, determinism, sensors, joint mapping."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pybullet as pb
import pytest

from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.sim import DomainRandomization, HumanoidSim, SensorNoise, SimConfig
from humanoid_rl.sim.bench import format_results, run_sim_benchmark


@pytest.fixture(scope="module")
def spec() -> RobotSpec:
    return RobotSpec.load()


def quiet(**overrides: object) -> SimConfig:
    """Noise-free sensors, no randomization: what the physics alone does."""
    return SimConfig(noise=SensorNoise.none(), **overrides)  # type: ignore[arg-type]


def bullet_joint_index(sim: HumanoidSim, name: str) -> int:
    """PyBullet's index of a joint, looked up independently of the simulator's own mapping."""
    for index in range(pb.getNumJoints(sim.robot_id, physicsClientId=sim.client_id)):
        if pb.getJointInfo(sim.robot_id, index, physicsClientId=sim.client_id)[1].decode() == name:
            return index
    raise AssertionError(f"no joint {name}")


def test_robot_stands_for_ten_seconds_on_its_joint_pd_alone(spec: RobotSpec) -> None:
    with HumanoidSim(spec, SimConfig()) as sim:
        lowest_height, largest_tilt = math.inf, 0.0
        for _ in range(100):  # 10 s of simulated time, checked every 0.1 s
            sim.step(100)
            truth = sim.ground_truth()
            lowest_height = min(lowest_height, float(truth.pos[2]))
            largest_tilt = max(largest_tilt, truth.tilt_rad)
        assert sim.time_s == pytest.approx(10.0)
        assert lowest_height > 0.9 * spec.nominal_base_height
        assert math.degrees(largest_tilt) < 10.0
        assert sim.read_sensors().foot_contacts.tolist() == [True, True]


def test_reset_puts_the_soles_on_the_ground_at_the_kinematic_standing_height(spec: RobotSpec) -> None:
    with HumanoidSim(spec, quiet()) as sim:
        # Measured by PyBullet's closest points; the spec's figure comes from the URDF's kinematics.
        assert sim.standing_base_height == pytest.approx(spec.nominal_base_height, abs=1e-3)
        truth = sim.ground_truth()
        assert truth.pos[2] == pytest.approx(sim.standing_base_height, abs=1e-9)
        assert np.allclose(truth.lin_vel_world, 0.0) and np.allclose(truth.ang_vel_world, 0.0)
        assert np.allclose(sim.joint_state()[0], spec.default_pose)
        sim.step(500)
        weight = RobotKinematics(spec).total_mass * 9.81
        assert sim.read_sensors().foot_forces.sum() == pytest.approx(weight, rel=0.02)
        # Lowering a crouched pose onto the ground works the same way.
        crouch = spec.default_pose.copy()
        for side in ("left", "right"):
            crouch[spec.joint_index(f"{side}_hip_pitch_joint")] -= 0.3
            crouch[spec.joint_index(f"{side}_knee_joint")] += 0.6
            crouch[spec.joint_index(f"{side}_ankle_pitch_joint")] -= 0.3
        sim.reset(seed=1, joint_pos=crouch)
        assert sim.standing_base_height < spec.nominal_base_height - 0.03
        sim.step(200)
        assert sim.read_sensors().foot_contacts.tolist() == [True, True]


def test_whole_body_com_agrees_with_pinocchio(spec: RobotSpec) -> None:
    kinematics = RobotKinematics(spec)
    with HumanoidSim(spec, quiet()) as sim:
        sim.step(300)
        truth = sim.ground_truth()
        joint_pos = sim.joint_state()[0]
        assert np.allclose(truth.com, kinematics.com(truth.pos, truth.quat, joint_pos), atol=1e-4)


def run_with_push(spec: RobotSpec, force: list[float], duration_s: float, seconds: float) -> tuple[float, float]:
    """Stand 0.5 s, push, keep going; return the base's horizontal displacement and the largest tilt."""
    with HumanoidSim(spec, quiet()) as sim:
        sim.step(500)
        start = sim.ground_truth().pos.copy()
        sim.apply_push(np.array(force), duration_s)
        largest_tilt = 0.0
        for _ in range(int(seconds * 50)):
            sim.step(20)
            largest_tilt = max(largest_tilt, sim.ground_truth().tilt_rad)
        assert not sim.push_active
        return float(np.linalg.norm(sim.ground_truth().pos[:2] - start[:2])), largest_tilt


def test_a_moderate_push_moves_the_base_and_a_huge_one_knocks_the_robot_over(spec: RobotSpec) -> None:
    calm_shift, calm_tilt = run_with_push(spec, [0.0, 0.0, 0.0], 0.2, 1.0)
    pushed_shift, pushed_tilt = run_with_push(spec, [200.0, 0.0, 0.0], 0.2, 1.0)
    assert calm_shift < 0.005
    assert pushed_shift > 0.03 and pushed_shift > 10 * calm_shift
    assert pushed_tilt > calm_tilt
    _, knocked_tilt = run_with_push(spec, [1500.0, 0.0, 0.0], 0.2, 1.5)
    assert math.degrees(knocked_tilt) > 60.0


def foot_to_world_rotations(sim: HumanoidSim, spec: RobotSpec) -> list[np.ndarray]:
    """Each foot link's rotation (foot -> world), read from PyBullet independently of the simulator's sensors."""
    rotations = []
    for link in spec.foot_links:
        index = next(
            i
            for i in range(pb.getNumJoints(sim.robot_id, physicsClientId=sim.client_id))
            if pb.getJointInfo(sim.robot_id, i, physicsClientId=sim.client_id)[12].decode() == link
        )
        orientation = pb.getLinkState(sim.robot_id, index, physicsClientId=sim.client_id)[5]
        rotations.append(np.array(pb.getMatrixFromQuaternion(orientation)).reshape(3, 3))
    return rotations


def test_foot_wrenches_are_in_the_foot_frame_and_balance_a_steady_push(spec: RobotSpec) -> None:
    # Both hips yawed the same way: the feet point 0.4 rad off the world x axis, so a world-aligned wrench and a
    # foot-frame one differ by several newtons under the push below.
    pose = spec.default_pose.copy()
    for side in ("left", "right"):
        pose[spec.joint_names.index(f"{side}_hip_yaw_joint")] = 0.4
    with HumanoidSim(spec, quiet()) as sim:
        sim.reset(joint_pos=pose)
        # Stiffer joints keep the robot upright under the push; the check is on the contact forces.
        sim.set_joint_targets(pose, stiffness_scale=3.0, damping_scale=2.0)
        sim.step(500)
        push = np.array([12.0, -5.0, 0.0])
        sim.apply_push(push, 3.0)
        sim.step(500)
        world_forces, sensor_forces, normal_forces = [], [], []
        for _ in range(100):  # 2 s: the mean over the sway is the static balance (momentum changes little)
            sim.step(20)
            readings = sim.read_sensors()
            rotations = foot_to_world_rotations(sim, spec)
            sensor_forces.append(readings.foot_wrenches[:, :3])
            world_forces.append([r @ w[:3] for r, w in zip(rotations, readings.foot_wrenches, strict=True)])
            normal_forces.append(readings.foot_forces)
        total_world = np.mean(world_forces, axis=0).sum(axis=0)
        total_sensor = np.mean(sensor_forces, axis=0).sum(axis=0)
        weight = RobotKinematics(spec).total_mass * 9.81
        # The ground carries the weight and holds against the push, once the sensor frames are rotated back.
        assert total_world[:2] == pytest.approx(-push[:2], abs=2.0)
        assert total_world[2] == pytest.approx(weight, rel=0.01)
        # Read as world-aligned, the same numbers are off by the feet's yaw.
        assert np.linalg.norm(total_sensor[:2] + push[:2]) > 4.0
        # The soles are flat: the sensor's z is the normal force.
        assert np.mean(normal_forces, axis=0) == pytest.approx(np.mean(sensor_forces, axis=0)[:, 2], rel=1e-3)


def test_same_seed_gives_bit_identical_trajectories_and_other_seeds_differ(spec: RobotSpec) -> None:
    config = SimConfig(randomization=DomainRandomization(enabled=True))

    def trajectory(sim: HumanoidSim, seed: int) -> np.ndarray:
        sim.reset(seed)
        wiggle = np.random.default_rng(0)
        for _ in range(15):
            sim.set_joint_targets(spec.default_pose + 0.1 * wiggle.standard_normal(spec.n_joints))
            sim.step(20)
        return np.concatenate([sim.joint_state()[0], sim.read_sensors().joint_pos])

    with HumanoidSim(spec, config) as first, HumanoidSim(spec, config) as second:
        reference = trajectory(first, 11)
        assert np.array_equal(trajectory(second, 11), reference)  # another sim in the same process
        trajectory(first, 12)
        assert np.array_equal(trajectory(first, 11), reference)  # the same sim after other episodes
        assert np.abs(trajectory(second, 12) - reference).max() > 1e-3


def test_two_sims_in_one_process_do_not_interfere(spec: RobotSpec) -> None:
    with HumanoidSim(spec, quiet()) as alone:
        alone.step(300)
        expected = alone.joint_state()[0]
    with HumanoidSim(spec, quiet()) as busy, HumanoidSim(spec, quiet()) as calm:
        busy.apply_push(np.array([0.0, 400.0, 0.0]), 0.2)
        busy.set_joint_targets(spec.default_pose + 0.2)
        for _ in range(3):
            busy.step(100)
            calm.step(100)
        assert np.array_equal(calm.joint_state()[0], expected)
        assert not np.allclose(busy.joint_state()[0], expected, atol=1e-2)


def test_a_target_for_one_named_joint_moves_that_joint_only(spec: RobotSpec) -> None:
    # URDF order differs from policy order (the arms come first in the URDF), so a mix-up would show here.
    with HumanoidSim(spec, quiet()) as sim:
        for name, offset in (("right_elbow_joint", -0.6), ("left_shoulder_pitch_joint", 0.5)):
            sim.reset(seed=0)
            target = spec.default_pose.copy()
            index = spec.joint_index(name)
            target[index] += offset
            sim.set_joint_targets(target)
            sim.step(400)
            moved = sim.joint_state()[0] - spec.default_pose
            # Most of the way (the PD sags under the arm's weight); every other joint stays nearly put.
            assert moved[index] == pytest.approx(offset, abs=0.15)
            assert np.abs(np.delete(moved, index)).max() < 0.05
            # PyBullet's own view of that joint, found by name, agrees.
            bullet_position = pb.getJointState(
                sim.robot_id, bullet_joint_index(sim, name), physicsClientId=sim.client_id
            )[0]
            assert bullet_position == pytest.approx(spec.default_pose[index] + moved[index], abs=1e-9)


def test_pd_torque_is_clipped_to_the_urdf_effort_limit(spec: RobotSpec) -> None:
    with HumanoidSim(spec, quiet()) as sim:
        index = spec.joint_index("left_knee_joint")
        target = spec.default_pose.copy()
        target[index] = spec.upper[index]
        sim.set_joint_targets(target)
        sim.step(1)
        assert sim.last_applied_torques[index] == pytest.approx(spec.effort_limits[index])
        # Below saturation the torque is the PD law: kp * error (the robot starts at rest in the default pose).
        small = spec.default_pose.copy()
        elbow = spec.joint_index("left_elbow_joint")
        small[elbow] -= 0.01
        sim.reset(seed=0)
        sim.set_joint_targets(small, tau_ff=np.eye(spec.n_joints)[elbow] * 0.25, stiffness_scale=2.0)
        sim.step(1)
        assert sim.last_applied_torques[elbow] == pytest.approx(2.0 * spec.kp[elbow] * -0.01 + 0.25, rel=1e-9)


def test_control_latency_delays_the_first_motion_by_the_configured_steps(spec: RobotSpec) -> None:
    latency_steps = 7
    config = quiet(control_latency_s=latency_steps / spec.physics_rate_hz)
    with HumanoidSim(spec, config) as commanded, HumanoidSim(spec, config) as idle:
        assert commanded.latency_steps == latency_steps
        commanded.step(50)
        idle.step(50)
        target = spec.default_pose.copy()
        index = spec.joint_index("right_elbow_joint")
        target[index] -= 0.5
        commanded.set_joint_targets(target)
        for _ in range(latency_steps):
            commanded.step(1)
            idle.step(1)
            assert np.array_equal(commanded.joint_state()[0], idle.joint_state()[0])
        commanded.step(1)
        idle.step(1)
        assert commanded.joint_state()[0][index] < idle.joint_state()[0][index]


def test_imu_reads_plus_one_g_on_z_and_no_rotation_when_standing(spec: RobotSpec) -> None:
    with HumanoidSim(spec, quiet()) as sim:
        sim.step(1000)
        accel = []
        for _ in range(25):
            sim.step(20)
            readings = sim.read_sensors()
            accel.append(readings.imu_accel)
            assert np.abs(readings.imu_gyro).max() < 0.05
        mean = np.mean(accel, axis=0)
        assert mean[2] == pytest.approx(9.81, abs=0.05)
        assert np.abs(mean[:2]).max() < 0.2
        truth = sim.ground_truth()
        assert np.allclose(readings.imu_quat, truth.quat, atol=1e-9)  # the IMU is mounted level on the pelvis
        assert readings.time_s == pytest.approx(truth.time_s)


def test_imu_accelerometer_sees_a_push_in_the_body_frame(spec: RobotSpec) -> None:
    with HumanoidSim(spec, quiet()) as sim:
        sim.step(200)
        sim.apply_push(np.array([300.0, 0.0, 0.0]), 0.1)
        sim.step(20)
        assert sim.read_sensors().imu_accel[0] > 2.0


def test_imu_noise_and_bias_follow_the_configured_standard_deviations(spec: RobotSpec) -> None:
    noise = SensorNoise(gyro_std=0.02, gyro_bias_std=0.01, accel_std=0.1, accel_bias_std=0.05, joint_pos_std=0.003)
    with HumanoidSim(spec, SimConfig(noise=noise)) as sim:
        truth_gyro = sim.ground_truth().ang_vel_body
        truth_q = sim.joint_state()[0]
        readings = [sim.read_sensors() for _ in range(2000)]  # no stepping: the spread is the noise alone
        gyro = np.array([r.imu_gyro for r in readings])
        joint_pos = np.array([r.joint_pos for r in readings])
        assert gyro.std(axis=0) == pytest.approx([0.02] * 3, rel=0.1)
        assert (joint_pos - truth_q).std() == pytest.approx(0.003, rel=0.05)
        # The bias is constant within the episode: the mean error is it.
        assert gyro.mean(axis=0) - truth_gyro == pytest.approx(sim.noise.gyro_bias, abs=0.003)
        first_bias = sim.noise.gyro_bias.copy()
        sim.reset(seed=99)
        assert not np.allclose(sim.noise.gyro_bias, first_bias)
    with HumanoidSim(spec, quiet()) as silent:
        assert np.array_equal(silent.read_sensors().joint_pos, silent.joint_state()[0])


def test_joint_limit_helpers_report_the_default_pose_inside_and_a_limit_at_one(spec: RobotSpec) -> None:
    with HumanoidSim(spec, quiet()) as sim:
        assert sim.joints_within_limits()
        proximity = sim.joint_limit_proximity()
        assert proximity.shape == (spec.n_joints,) and np.all(proximity < 1.0)
        at_limit = spec.default_pose.copy()
        at_limit[3] = spec.upper[3]
        assert sim.joint_limit_proximity(at_limit)[3] == pytest.approx(1.0)
        assert not sim.joints_within_limits(at_limit + np.eye(spec.n_joints)[3] * 0.01)
        assert not sim.joints_within_limits(at_limit, margin_rad=0.05)


def test_bad_commands_are_rejected_with_a_message_that_names_the_problem(spec: RobotSpec) -> None:
    with HumanoidSim(spec, quiet()) as sim:
        with pytest.raises(ValueError, match=r"q_target must have shape \(21,\)"):
            sim.set_joint_targets(np.zeros(20))
        with pytest.raises(ValueError, match="NaN"):
            sim.set_joint_targets(np.full(spec.n_joints, np.nan))
        with pytest.raises(ValueError, match="stiffness_scale"):
            sim.set_joint_targets(spec.default_pose, stiffness_scale=-1.0)
        with pytest.raises(ValueError, match="duration_s"):
            sim.apply_push(np.array([1.0, 0.0, 0.0]), 0.0)
    with pytest.raises(ValueError, match="physics_rate_hz"):
        SimConfig(physics_rate_hz=-5.0)


def test_close_disconnects_the_physics_client_and_a_closed_sim_refuses_to_reset(spec: RobotSpec) -> None:
    sim = HumanoidSim(spec, quiet())
    client = sim.client_id
    with sim:
        assert pb.getConnectionInfo(physicsClientId=client)["isConnected"] == 1
    assert pb.getConnectionInfo(physicsClientId=client)["isConnected"] == 0
    sim.close()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        sim.reset()


def test_sim_benchmark_reports_every_case_and_writes_json(spec: RobotSpec, tmp_path: Path) -> None:
    out = tmp_path / "bench" / "sim.json"
    results = run_sim_benchmark(0.2, spec=spec, repeats=2, out=out)
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    cases = results["cases"]
    assert set(cases) == {
        "core_policy_rate_sensors",
        "core_sensors_every_step",
        "bare_step_simulation",
        "bare_step_simulation_builtin_motors",
    }
    for case in cases.values():
        assert case["physics_steps_per_round"] == 100  # 0.2 s at 1 kHz over 2 rounds, whole policy steps
        assert case["steps_per_s"] > 0 and case["cpu_us_per_step"] > 0
        assert case["real_time_factor"] == pytest.approx(case["steps_per_s"] / 1000.0)
    ratio = cases["core_policy_rate_sensors"]["steps_per_s"] / cases["bare_step_simulation"]["steps_per_s"]
    assert results["core_to_bare_speed_ratio"] == pytest.approx(ratio)
    assert "core:" in format_results(results)
    with pytest.raises(ValueError, match="seconds"):
        run_sim_benchmark(0.0, spec=spec)
