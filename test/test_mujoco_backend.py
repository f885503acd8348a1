"""The MuJoCo training backend: the same robot, PD, sensors, randomization and pushes as the PyBullet simulator
that evaluates and deploys, close enough that the PD-held stance agrees, and a walk env that trains on it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

from humanoid_rl.core.robot_spec import RobotSpec  # noqa: E402
from humanoid_rl.envs.humanoid_env import EnvConfig, HumanoidEnv  # noqa: E402
from humanoid_rl.envs.pushes import PushConfig  # noqa: E402
from humanoid_rl.sim import DomainRandomization, HumanoidSim, SensorNoise, SimConfig  # noqa: E402
from humanoid_rl.sim.mujoco_sim import MUJOCO_PHYSICS_RATE_HZ, MujocoHumanoidSim  # noqa: E402

SPEC = RobotSpec.load(None)
WEIGHT_N = 40.01 * 9.81  # the URDF's total mass


def hold_default_pose(sim: object, seconds: float) -> None:
    for _ in range(int(round(seconds * SPEC.policy_rate_hz))):
        sim.set_joint_targets(SPEC.default_pose)  # type: ignore[attr-defined]
        sim.step(sim.decimation)  # type: ignore[attr-defined]


def test_the_pd_held_stance_matches_the_1khz_pybullet_simulator_within_stated_tolerances() -> None:
    quiet = SimConfig(noise=SensorNoise.none())
    mujoco_sim = MujocoHumanoidSim(SPEC, quiet)
    bullet = HumanoidSim(SPEC, SimConfig(noise=SensorNoise.none()))
    try:
        assert mujoco_sim.physics_rate_hz == MUJOCO_PHYSICS_RATE_HZ and mujoco_sim.decimation == 10
        for sim in (mujoco_sim, bullet):
            sim.reset(seed=0)
        # both place the soles on the ground the same way
        assert mujoco_sim.standing_base_height == pytest.approx(bullet.standing_base_height, abs=1e-6)
        hold_default_pose(mujoco_sim, 5.0)
        hold_default_pose(bullet, 5.0)
        mj, pb = mujoco_sim.ground_truth(), bullet.ground_truth()
        # Stated tolerances: base height within 2 mm, tilt within 1 degree, every joint within 0.01 rad, centre of
        # mass within 1 cm; both at rest.
        assert abs(mj.pos[2] - pb.pos[2]) < 0.002
        assert abs(mj.tilt_rad - pb.tilt_rad) < np.radians(1.0)
        assert np.abs(mujoco_sim.joint_state()[0] - bullet.joint_state()[0]).max() < 0.01
        assert np.linalg.norm(mj.com - pb.com) < 0.01
        assert np.linalg.norm(mj.lin_vel_world) < 0.01 and np.linalg.norm(mj.ang_vel_body) < 0.02
        mj_read, pb_read = mujoco_sim.read_sensors(), bullet.read_sensors()
        # The feet carry the weight, half each, in both; the ankle sensors see it along their z.
        assert mj_read.foot_forces.sum() == pytest.approx(WEIGHT_N, rel=0.01)
        assert mj_read.foot_forces == pytest.approx(pb_read.foot_forces, rel=0.03)
        assert mj_read.foot_contacts.all()
        assert mj_read.foot_wrenches[:, 2] == pytest.approx(mj_read.foot_forces, rel=0.01)
        assert mj_read.imu_accel == pytest.approx([0.0, 0.0, 9.81], abs=0.15)  # specific force at rest
        assert mujoco_sim.last_applied_torques == pytest.approx(bullet.last_applied_torques, abs=3.0)
    finally:
        bullet.close()


def test_a_seed_replays_the_same_episode_and_the_randomization_reaches_the_model() -> None:
    config = SimConfig(randomization=DomainRandomization(enabled=True, friction_all_links=False))
    sim = MujocoHumanoidSim(SPEC, config)
    runs = []
    for _ in range(2):
        sim.reset(seed=11)
        hold_default_pose(sim, 0.5)
        runs.append((sim.joint_state()[0], sim.read_sensors().imu_gyro))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    sample = sim.randomization_sample
    assert sample.enabled and sample.link_names == sim.link_names and sim.link_names[0] == SPEC.base_link
    np.testing.assert_allclose(sim.model.body_mass[1:], sim._nominal_mass * sample.mass_scale)
    np.testing.assert_allclose(sim.model.opt.gravity, sample.gravity)
    for name, friction in zip(sample.friction_link_names, sample.friction, strict=True):
        np.testing.assert_allclose(sim.model.geom_friction[sim._geoms_of[name], 0], friction)
    np.testing.assert_allclose(sim.model.actuator_forcerange[:, 1], SPEC.effort_limits * sample.actuator_strength)
    assert sim.latency_steps == round(sample.control_latency_s * MUJOCO_PHYSICS_RATE_HZ)


def test_a_command_reaches_the_motors_after_the_latency_and_a_push_moves_the_base() -> None:
    sim = MujocoHumanoidSim(SPEC, SimConfig(control_latency_s=0.01, noise=SensorNoise.none()))
    sim.reset(seed=0)
    assert sim.latency_steps == 5
    before = sim.data.ctrl.copy()
    target = SPEC.default_pose + 0.1
    sim.set_joint_targets(target)
    sim.step(5)
    np.testing.assert_array_equal(sim.data.ctrl, before)  # in flight for 5 steps (10 ms), as in HumanoidSim
    sim.step(1)
    np.testing.assert_allclose(sim.data.ctrl, sim._kp * target)  # the 6th step ran with it: kp*q* (no qd*, no ff)

    sim.reset(seed=0)
    hold_default_pose(sim, 0.5)
    sim.apply_push(np.array([0.0, 150.0, 0.0]), 0.1)
    assert sim.push_active
    sim.step(50)  # 0.1 s
    assert not sim.push_active
    velocity = sim.ground_truth().lin_vel_world
    # 15 N·s on 40 kg: up to 0.37 m/s sideways, less what the feet resist; nothing along x
    assert 0.1 < velocity[1] < 0.4 and abs(velocity[0]) < 0.1


def test_the_walk_env_on_mujoco_has_the_same_spaces_and_contract_and_refuses_to_render() -> None:
    from gymnasium.utils.env_checker import check_env

    env = HumanoidEnv("walk", EnvConfig(backend="mujoco", push=PushConfig(force_range_n=(40.0, 40.0))))
    bullet = HumanoidEnv("walk", EnvConfig())
    try:
        assert env.contract == bullet.contract  # a policy trained here deploys through the same contract
        assert env.observation_space == bullet.observation_space and env.action_space == bullet.action_space
        assert env.decimation == 10
        check_env(env, skip_render_check=True)
        env.reset(seed=0)
        infos = [env.step(np.zeros(21, np.float32))[4] for _ in range(150)]
        assert any(info["push_active"] for info in infos)  # the 2 s push
        assert infos[-1]["reward_terms"]["contact_schedule"] != 0.0
    finally:
        env.close()
        bullet.close()
    with pytest.raises(ValueError, match="does not render"):
        HumanoidEnv("walk", EnvConfig(backend="mujoco"), render_mode="rgb_array")
    with pytest.raises(ValueError, match="backend"):
        EnvConfig(backend="ode")


def test_eval_runs_on_the_training_backend_for_the_sim_to_sim_gap() -> None:
    from humanoid_rl.train.evaluate import EvalSetting, evaluate

    setting = EvalSetting(episodes=1, episode_s=1.0, push_force_n=0.0, randomize=False, backend="mujoco")
    result = evaluate(None, setting)
    assert result["setting"]["backend"] == "mujoco"
    assert result["baseline"]["success_rate"] == 1.0  # the PD hold stands in MuJoCo too
    assert EvalSetting().backend == "pybullet"  # acceptance stays on PyBullet unless asked
