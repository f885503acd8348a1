"""Domain randomization: every item changes the physical quantity it claims to, seeded, without compounding."""

from __future__ import annotations

import json

import numpy as np
import pybullet as pb
import pytest

from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.sim import DomainRandomization, HumanoidSim, SensorNoise, SimConfig, draw_randomization

ALL_OFF = {
    "mass_scale": None,
    "friction": None,
    "gravity_z": None,
    "actuator_strength": None,
    "imu_noise_scale": None,
    "encoder_noise_scale": None,
    "control_latency_s": None,
    "kp_scale": None,
    "kd_scale": None,
}


@pytest.fixture(scope="module")
def spec() -> RobotSpec:
    return RobotSpec.load()


def only(noise: SensorNoise | None = None, **items: object) -> SimConfig:
    """Randomization enabled for the named items only."""
    ranges = {**ALL_OFF, **items}
    return SimConfig(
        noise=noise if noise is not None else SensorNoise.none(),
        randomization=DomainRandomization(enabled=True, **ranges),  # type: ignore[arg-type]
    )


def dynamics(sim: HumanoidSim, link: int) -> tuple:
    return pb.getDynamicsInfo(sim.robot_id, link, physicsClientId=sim.client_id)


def lift_into_free_fall(sim: HumanoidSim, height: float = 3.0) -> None:
    """Put the robot, at rest, high above the ground: in free fall gravity makes no joint move."""
    position, orientation = pb.getBasePositionAndOrientation(sim.robot_id, physicsClientId=sim.client_id)
    pb.resetBasePositionAndOrientation(
        sim.robot_id, (position[0], position[1], height), orientation, physicsClientId=sim.client_id
    )


def test_disabled_randomization_runs_the_nominal_robot(spec: RobotSpec) -> None:
    with HumanoidSim(spec, SimConfig(noise=SensorNoise.none())) as sim:
        sample = sim.randomization_sample
        assert not sample.enabled
        assert np.all(sample.mass_scale == 1.0) and np.all(sample.actuator_strength == 1.0)
        assert sample.gravity.tolist() == [0.0, 0.0, -9.81]
        assert sim.latency_steps == 0
        assert dynamics(sim, -1)[0] == pytest.approx(7.0)  # the pelvis mass in the URDF
        assert sample.friction.tolist() == [sim.config.foot_friction] * 2


def test_mass_randomization_scales_every_link_and_never_compounds_over_resets(spec: RobotSpec) -> None:
    with HumanoidSim(spec, SimConfig()) as plain:
        links = range(-1, len(plain.link_names) - 1)
        nominal = np.array([dynamics(plain, link)[0] for link in links])
        nominal_inertia = np.array([dynamics(plain, link)[2] for link in links])
    with HumanoidSim(spec, only(mass_scale=(0.8, 1.2))) as sim:
        for seed in (1, 2, 3):
            sim.reset(seed)
            scale = sim.randomization_sample.mass_scale
            assert np.all((scale >= 0.8) & (scale <= 1.2)) and np.ptp(scale) > 0.1
            for row, link in enumerate(range(-1, len(sim.link_names) - 1)):
                info = dynamics(sim, link)
                assert info[0] == pytest.approx(nominal[row] * scale[row], rel=1e-9)
                assert info[2] == pytest.approx(nominal_inertia[row] * scale[row], rel=1e-9)
        total = sum(dynamics(sim, link)[0] for link in range(-1, len(sim.link_names) - 1))
        assert total == pytest.approx(float(nominal @ sim.randomization_sample.mass_scale), rel=1e-9)


def test_friction_randomization_sets_the_drawn_friction_on_the_feet(spec: RobotSpec) -> None:
    with HumanoidSim(spec, only(friction=(0.5, 1.5))) as sim:
        sample = sim.randomization_sample
        assert sample.friction_link_names == spec.foot_links
        assert np.all((sample.friction >= 0.5) & (sample.friction <= 1.5))
        for name, friction in zip(sample.friction_link_names, sample.friction, strict=True):
            assert dynamics(sim, sim.link_names.index(name) - 1)[1] == pytest.approx(friction)
        pelvis_friction = dynamics(sim, -1)[1]
    all_links = only(friction=(0.2, 0.3))
    all_links.randomization.friction_all_links = True
    with HumanoidSim(spec, all_links) as sim:
        assert len(sim.randomization_sample.friction) == len(sim.link_names)
        assert 0.2 <= dynamics(sim, -1)[1] <= 0.3 != pelvis_friction


def test_low_friction_lets_a_pushed_robot_slide(spec: RobotSpec) -> None:
    def foot_slides(friction: float) -> np.ndarray:
        with HumanoidSim(spec, only(friction=(friction, friction))) as sim:
            sim.set_joint_targets(spec.default_pose, stiffness_scale=3.0, damping_scale=2.0)
            sim.step(200)
            feet = [sim.link_names.index(name) - 1 for name in spec.foot_links]

            def sideways() -> np.ndarray:
                states = pb.getLinkStates(sim.robot_id, feet, physicsClientId=sim.client_id)
                return np.array([state[4][1] for state in states])

            start = sideways()
            sim.apply_push(np.array([0.0, 80.0, 0.0]), 0.5)
            sim.step(700)
            return np.abs(sideways() - start)

    assert foot_slides(0.1).min() > 0.15  # on ice both feet slide along with the push
    assert foot_slides(1.5).min() < 0.03  # with grip a foot stays put (the robot leans instead)


def test_gravity_randomization_changes_the_fall_of_the_centre_of_mass(spec: RobotSpec) -> None:
    config = only(gravity_z=(-9.0, -8.0))
    config.randomization.gravity_tilt_rad = 0.1
    with HumanoidSim(spec, config) as sim:
        gravity = sim.randomization_sample.gravity
        assert -9.0 <= gravity[2] <= -8.0 and 0.0 < np.hypot(gravity[0], gravity[1]) <= 9.0 * np.tan(0.1)
        assert pb.getPhysicsEngineParameters(physicsClientId=sim.client_id)["gravityAccelerationZ"] == gravity[2]
        lift_into_free_fall(sim)
        start = sim.ground_truth().com
        sim.step(200)
        t = 0.2
        # Internal (joint) forces cancel: the whole-body centre of mass falls as 1/2 g t^2, in every axis.
        assert sim.ground_truth().com - start == pytest.approx(0.5 * gravity * t * t, abs=2e-3)


def test_actuator_strength_scales_the_torque_at_saturation_and_the_motion_it_causes(spec: RobotSpec) -> None:
    elbow = spec.joint_index("left_elbow_joint")
    target = spec.default_pose.copy()
    target[elbow] = spec.lower[elbow]  # far away: the motor saturates

    def first_step(config: SimConfig) -> tuple[float, float, float]:
        with HumanoidSim(spec, config) as sim:
            lift_into_free_fall(sim)
            sim.set_joint_targets(target)
            sim.step(1)
            strength = float(sim.randomization_sample.actuator_strength[elbow])
            return strength, float(sim.last_applied_torques[elbow]), float(sim.joint_state()[1][elbow])

    _, nominal_torque, nominal_velocity = first_step(SimConfig(noise=SensorNoise.none()))
    strength, torque, velocity = first_step(only(actuator_strength=(0.9, 1.1)))
    assert nominal_torque == pytest.approx(-spec.effort_limits[elbow])
    assert strength != 1.0
    assert torque == pytest.approx(strength * nominal_torque, rel=1e-12)
    # From rest in free fall the first step's joint velocity is proportional to the torque.
    assert velocity / nominal_velocity == pytest.approx(strength, rel=1e-6)


def test_gain_scales_change_the_pd_torque_below_saturation(spec: RobotSpec) -> None:
    knee = spec.joint_index("right_knee_joint")
    with HumanoidSim(spec, only(kp_scale=(0.5, 0.7), kd_scale=(1.3, 1.5))) as sim:
        sample = sim.randomization_sample
        assert np.all((sample.kp_scale >= 0.5) & (sample.kp_scale <= 0.7))
        assert np.all((sample.kd_scale >= 1.3) & (sample.kd_scale <= 1.5))
        target = spec.default_pose.copy()
        target[knee] += 0.02
        sim.set_joint_targets(target, qd_target=np.eye(spec.n_joints)[knee] * 0.5)
        sim.step(1)  # starts at rest in the default pose: tau = kp*0.02 + kd*0.5 exactly
        expected = sample.kp_scale[knee] * spec.kp[knee] * 0.02 + sample.kd_scale[knee] * spec.kd[knee] * 0.5
        assert sim.last_applied_torques[knee] == pytest.approx(expected, rel=1e-9)


def test_latency_randomization_delays_the_first_motion_by_the_drawn_latency(spec: RobotSpec) -> None:
    config = only(control_latency_s=(0.0, 0.02))
    with HumanoidSim(spec, config) as commanded, HumanoidSim(spec, config) as idle:
        latencies = set()
        for seed in (3, 4):
            commanded.reset(seed)
            idle.reset(seed)
            drawn = commanded.randomization_sample.control_latency_s
            assert 0.0 <= drawn <= 0.02
            assert commanded.latency_steps == round(drawn * spec.physics_rate_hz)
            latencies.add(commanded.latency_steps)
            target = spec.default_pose.copy()
            target[spec.joint_index("right_elbow_joint")] -= 0.5
            commanded.set_joint_targets(target)
            first_moving_step = None
            for step in range(1, 30):
                commanded.step(1)
                idle.step(1)
                if not np.array_equal(commanded.joint_state()[0], idle.joint_state()[0]):
                    first_moving_step = step
                    break
            assert first_moving_step == commanded.latency_steps + 1
        assert len(latencies) == 2


def test_noise_scale_multiplies_the_sensor_noise(spec: RobotSpec) -> None:
    noise = SensorNoise(gyro_std=0.02, gyro_bias_std=0.0, accel_std=0.0, accel_bias_std=0.0, joint_vel_std=0.05)
    config = only(noise=noise, imu_noise_scale=(0.3, 0.4), encoder_noise_scale=(2.0, 2.5))
    with HumanoidSim(spec, config) as sim:
        sample = sim.randomization_sample
        readings = [sim.read_sensors() for _ in range(2000)]
        gyro_std = np.array([r.imu_gyro for r in readings]).std(axis=0)
        joint_vel_std = np.array([r.joint_vel for r in readings]).std()
        assert gyro_std == pytest.approx([0.02 * sample.imu_noise_scale] * 3, rel=0.1)
        assert joint_vel_std == pytest.approx(0.05 * sample.encoder_noise_scale, rel=0.05)


def test_same_seed_draws_the_same_sample_and_other_seeds_differ(spec: RobotSpec) -> None:
    config = SimConfig(randomization=DomainRandomization(enabled=True))
    with HumanoidSim(spec, config) as sim:
        sim.reset(seed=7)
        first = sim.randomization_sample.to_dict()
        sim.reset(seed=8)
        other = sim.randomization_sample.to_dict()
        sim.reset(seed=7)
        assert sim.randomization_sample.to_dict() == first
        assert other["mass_scale"] != first["mass_scale"]
        assert json.loads(json.dumps(first)) == first  # loggable as JSON
        # Resets with no seed follow the sequence started by config.seed: reproducible run to run.
        sim.reset()
        unseeded = sim.randomization_sample.to_dict()
    with HumanoidSim(spec, config) as again:
        again.reset()
        assert again.randomization_sample.to_dict() == unseeded


def test_switching_one_item_off_leaves_the_other_draws_unchanged() -> None:
    kwargs = {
        "link_names": ("a", "b", "c"),
        "friction_link_names": ("c",),
        "nominal_friction": np.array([1.0]),
        "n_joints": 4,
    }
    full = draw_randomization(DomainRandomization(enabled=True), np.random.default_rng(5), **kwargs)
    no_mass = draw_randomization(DomainRandomization(enabled=True, mass_scale=None), np.random.default_rng(5), **kwargs)
    assert np.all(no_mass.mass_scale == 1.0)
    assert np.array_equal(no_mass.actuator_strength, full.actuator_strength)
    assert np.array_equal(no_mass.friction, full.friction)
    assert no_mass.control_latency_s == full.control_latency_s


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mass_scale", (1.2, 0.8), "low <= high"),
        ("mass_scale", (0.0, 1.0), "> 0.0"),
        ("friction", (-0.1, 1.0), ">= 0.0"),
        ("gravity_z", (-9.81, 1.0), "gravity points down"),
        ("control_latency_s", (-0.01, 0.02), ">= 0.0"),
        ("actuator_strength", (0.9,), "pair"),
    ],
)
def test_invalid_ranges_are_rejected_with_a_message_naming_the_item(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"DomainRandomization.{field}") as error:
        DomainRandomization(enabled=True, **{field: value})  # type: ignore[arg-type]
    assert message in str(error.value)
