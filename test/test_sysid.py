"""System identification: fitted parameters change the simulated robot, a replay reproduces a recording made with
the same parameters, and the fit recovers perturbed parameters from a short recording (the proof of the method;
the five-parameter version is the slow test at the end, and `humanoid-rl sysid --emulate` prints it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from humanoid_rl import cli
from humanoid_rl.apps.sysid import RECOVERY_TOLERANCE
from humanoid_rl.core.excitation import Excitation, excitation_targets
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.sim.bag_io import read_recording, write_recording
from humanoid_rl.sim.sim_params import SimParams, joint_groups, load_sim_params, save_sim_params
from humanoid_rl.sim.simulator import HumanoidSim, SensorNoise, SimConfig
from humanoid_rl.sim.sysid import fit_parameter, hang, position_rmse, record_in_sim, replay
from humanoid_rl.sim.sysid_fit import fit


@pytest.fixture(scope="module")
def spec() -> RobotSpec:
    return RobotSpec.load()


@pytest.fixture(scope="module")
def legs(spec: RobotSpec) -> list[int]:
    return list(joint_groups(spec.joint_names)["legs"])


def test_joint_groups_split_the_humanoid_into_legs_arms_and_torso(spec: RobotSpec) -> None:
    groups = joint_groups(spec.joint_names)
    assert sorted(groups) == ["arms", "legs", "torso"]
    assert len(groups["legs"]) == 12 and len(groups["arms"]) == 8
    assert spec.joint_names[groups["torso"][0]] == "torso_yaw_joint"


def test_sim_params_scale_the_legs_gains_and_masses_and_leave_the_arms(spec: RobotSpec, legs: list[int]) -> None:
    params = SimParams(kp_scale={"legs": 1.3}, kd_scale={"legs": 0.5}, mass_scale={"legs": 1.5},
                       control_latency_s=0.01, foot_friction=0.7)  # fmt: skip
    with HumanoidSim(spec, SimConfig(noise=SensorNoise.none())) as nominal, \
            HumanoidSim(spec, SimConfig(noise=SensorNoise.none(), params=params)) as fitted:  # fmt: skip
        arms = list(joint_groups(spec.joint_names)["arms"])
        np.testing.assert_allclose(fitted._kp[legs], 1.3 * nominal._kp[legs])
        np.testing.assert_allclose(fitted._kd[legs], 0.5 * nominal._kd[legs])
        np.testing.assert_allclose(fitted._kp[arms], nominal._kp[arms])
        leg_links = [i + 1 for i in fitted.bullet_joint_indices[:12]]
        np.testing.assert_allclose(fitted._link_masses[leg_links], 1.5 * nominal._link_masses[leg_links])
        assert fitted._link_masses[0] == nominal._link_masses[0]  # the pelvis is no leg
        assert fitted.latency_steps == 10 and fitted.config.foot_friction == 0.7


def test_joint_friction_holds_a_free_joint_against_a_smaller_torque_and_yields_to_a_larger(spec: RobotSpec) -> None:
    hip_yaw = spec.joint_names.index("left_hip_yaw_joint")  # hanging: its axis is vertical, gravity does not turn it
    moved = {}
    for torque in (1.5, 4.5):
        with HumanoidSim(spec, SimConfig(noise=SensorNoise.none(), params=SimParams(joint_friction_nm={"legs": 3.0}))
                         ) as sim:  # fmt: skip
            hang(sim)
            gains = np.ones(spec.n_joints)
            gains[hip_yaw] = 0.0  # the motor only pushes with the feed-forward torque
            tau = np.zeros(spec.n_joints)
            tau[hip_yaw] = torque
            start = sim.joint_state()[0][hip_yaw]
            sim.set_joint_targets(spec.default_pose, tau_ff=tau, stiffness_scale=gains, damping_scale=gains)
            sim.step(300)
            moved[torque] = abs(sim.joint_state()[0][hip_yaw] - start)
    assert moved[1.5] < 1e-3  # below the 3 N*m friction: stuck
    assert moved[4.5] > 0.05  # above it: turns


def test_unknown_group_or_negative_value_is_refused_with_its_name(spec: RobotSpec, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="wings"):
        HumanoidSim(spec, SimConfig(params=SimParams(kp_scale={"wings": 1.1})))
    with pytest.raises(ValueError, match="kd_scale"):
        SimParams(kd_scale={"legs": -1.0})
    bad = tmp_path / "bad.yaml"
    bad.write_text("robot: humanoid\n")
    with pytest.raises(ValueError, match="sim_params"):
        load_sim_params(bad)
    with pytest.raises(ValueError, match="foot friction"):
        fit_parameter("foot_friction", spec.joint_names)


def test_fitted_yaml_round_trips(spec: RobotSpec, tmp_path: Path) -> None:
    params = SimParams(kp_scale={"legs": 1.1}, joint_friction_nm={"legs": 0.4}, control_latency_s=0.006)
    save_sim_params(tmp_path / "f.yaml", params, spec, {"fit": {"rmse_after_rad": 0.001}})
    assert load_sim_params(tmp_path / "f.yaml") == params
    assert yaml.safe_load((tmp_path / "f.yaml").read_text())["groups"]["torso"] == ["torso_yaw_joint"]


def test_excitation_stays_inside_the_joint_limits_and_moves_only_the_chosen_joints(spec: RobotSpec) -> None:
    t = np.linspace(0.0, 6.0, 1201)
    targets = excitation_targets(t, spec.default_pose, [3, 4], spec.lower, spec.upper, Excitation(amplitude_rad=2.0))
    assert np.all(targets >= spec.lower) and np.all(targets <= spec.upper)
    moved = np.ptp(targets, axis=0) > 1e-9
    assert moved.tolist() == [i in (3, 4) for i in range(spec.n_joints)]
    np.testing.assert_allclose(targets[0], spec.default_pose)  # ramps in: no jump at the start


def test_replay_with_the_recorded_parameters_reproduces_the_recording_to_sensor_noise(
    spec: RobotSpec, legs: list[int], tmp_path: Path
) -> None:
    truth = SimParams(kp_scale={"legs": 1.2}, control_latency_s=0.01)
    recording = record_in_sim(spec, truth, Excitation(duration_s=1.0), legs)
    write_recording(tmp_path / "bag", recording)  # through a real rosbag2 and back
    read = read_recording(tmp_path / "bag", spec.joint_names)
    np.testing.assert_allclose(read.positions, recording.positions)
    np.testing.assert_allclose(read.command_times, recording.command_times, atol=1e-9)
    same = position_rmse(read, replay(spec, read, truth), legs)
    nominal = position_rmse(read, replay(spec, read, SimParams()), legs)
    assert same < 0.003  # the encoders' noise (1 mrad) and the emulated sensors' randomness
    assert nominal > 5 * same


def test_fit_recovers_perturbed_stiffness_and_latency_from_a_one_second_recording(
    spec: RobotSpec, legs: list[int]
) -> None:
    truth = SimParams(kp_scale={"legs": 1.2}, control_latency_s=0.01)
    recording = record_in_sim(spec, truth, Excitation(duration_s=1.2), legs)
    parameters = [fit_parameter(k, spec.joint_names) for k in ("kp_scale.legs", "control_latency_s")]
    result = fit(spec, recording, parameters=parameters, max_evaluations=60)
    # The efforts alone (a linear solve per latency, no simulation) already land next to the answer ...
    assert result.initial_guess["kp_scale.legs"] == pytest.approx(1.2, rel=0.05)
    assert result.initial_guess["control_latency_s"] == pytest.approx(0.01, abs=0.002)
    # ... and the replays refine it.
    assert abs(result.values["kp_scale.legs"] / 1.2 - 1.0) <= RECOVERY_TOLERANCE["kp_scale"]
    assert abs(result.values["control_latency_s"] - 0.01) <= RECOVERY_TOLERANCE["control_latency_s"]
    assert result.rmse_after_rad < result.rmse_before_rad / 5
    assert result.evaluations <= 60


def test_sysid_command_fits_an_emulated_recording_and_writes_yaml_plot_and_json(
    spec: RobotSpec, tmp_path: Path
) -> None:
    truth = tmp_path / "truth.yaml"
    truth.write_text("sim_params:\n  kp_scale: {legs: 0.85}\n")
    out = tmp_path / "fitted.yaml"
    code = cli.main(["sysid", "--emulate", str(truth), "-o", str(out), "--duration", "1.0",
                     "--fit", "kp_scale.legs", "--max-evals", "20"])  # fmt: skip
    assert code == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["parameters"]["kp_scale.legs"]["within_tolerance"]
    assert report["error_reduction_factor"] > 3
    assert out.with_suffix(".png").stat().st_size > 10_000
    fitted = load_sim_params(out)
    assert fitted.kp_scale["legs"] == pytest.approx(0.85, rel=RECOVERY_TOLERANCE["kp_scale"])
    with HumanoidSim(spec, SimConfig(params=fitted)) as sim:  # the simulator reads what sysid wrote
        assert sim._kp[0] == pytest.approx(fitted.kp_scale["legs"] * spec.kp[0])


def test_without_efforts_the_fit_scouts_the_latency_and_still_finds_it(spec: RobotSpec, legs: list[int]) -> None:
    recording = record_in_sim(spec, SimParams(control_latency_s=0.014), Excitation(duration_s=0.8), legs)
    recording.efforts = None  # a robot that reports no joint torques
    result = fit(spec, recording, parameters=[fit_parameter("control_latency_s", spec.joint_names)],
                 max_evaluations=30)  # fmt: skip
    assert result.initial_guess == {}
    assert result.values["control_latency_s"] == pytest.approx(0.014, abs=RECOVERY_TOLERANCE["control_latency_s"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sysid", "-o", "{tmp}/f.yaml"], "give a BAG"),
        (["sysid", "{tmp}/no_bag", "-o", "{tmp}/f.yaml"], "does not exist"),
        (["sysid", "{tmp}/empty", "-o", "{tmp}/f.yaml"], "not a readable rosbag2"),
        (["sysid", "--emulate", "{tmp}/t.yaml", "-o", "{tmp}/f.yaml", "--fit", "foot_friction"], "not identifiable"),
        (["sysid", "--emulate", "{tmp}/t.yaml", "-o", "{tmp}/f.txt"], "*.yaml"),
        (["sysid", "--emulate", "{tmp}/missing.yaml", "-o", "{tmp}/f.yaml"], "does not exist"),
    ],
)
def test_sysid_refuses_bad_input_in_one_line_and_writes_nothing(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "t.yaml").write_text("sim_params: {}\n")
    (tmp_path / "empty").mkdir()
    assert cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "f.yaml").exists() and not (tmp_path / "f_bag").exists()


@pytest.mark.slow
def test_fit_recovers_all_five_perturbed_leg_parameters_within_tolerance(spec: RobotSpec, legs: list[int]) -> None:
    truth = SimParams(kp_scale={"legs": 1.25}, kd_scale={"legs": 0.7}, joint_friction_nm={"legs": 0.8},
                      mass_scale={"legs": 1.2}, control_latency_s=0.012)  # fmt: skip
    recording = record_in_sim(spec, truth, Excitation(duration_s=4.0), legs)
    result = fit(spec, recording, max_evaluations=250)
    for key, value in result.values.items():
        name = key.partition(".")[0]
        true_value = truth.value(key)
        error = abs(value - true_value) / (true_value if name in ("kp_scale", "kd_scale", "mass_scale") else 1.0)
        assert error <= RECOVERY_TOLERANCE[name], (key, value, true_value)
    assert result.rmse_after_rad < result.rmse_before_rad / 10


def test_training_environment_runs_on_the_fitted_robot_with_randomization_centred_on_it(
    spec: RobotSpec, tmp_path: Path
) -> None:
    from humanoid_rl.envs.humanoid_env import EnvConfig, HumanoidEnv
    from humanoid_rl.train.config import TrainConfig, TrainConfigError

    path = tmp_path / "fitted.yaml"
    save_sim_params(path, SimParams(kp_scale={"legs": 1.2}, control_latency_s=0.015, foot_friction=0.8), spec)
    env = HumanoidEnv(config=EnvConfig(sim_params=path, curriculum_level=1.0))
    try:
        ranges = env.sim.config.randomization
        assert ranges.control_latency_s == pytest.approx((0.005, 0.025))  # the default 20 ms wide range, moved
        assert ranges.friction == pytest.approx((0.3, 1.3))
        env.reset(seed=3)
        sample = env.sim.randomization_sample
        knee = spec.joint_names.index("left_knee_joint")
        expected = spec.kp[knee] * 1.2 * sample.kp_scale[knee] * sample.actuator_strength[knee]
        assert env.sim._kp[knee] == pytest.approx(expected)
    finally:
        env.close()
    with pytest.raises(TrainConfigError, match="sim_params"):
        TrainConfig(sim_params=str(tmp_path / "missing.yaml"))


def test_the_mujoco_backend_refuses_fitted_parameters_rather_than_ignoring_them(spec: RobotSpec) -> None:
    from humanoid_rl.sim.mujoco_sim import MujocoHumanoidSim

    with pytest.raises(ValueError, match="PyBullet simulator only"):
        MujocoHumanoidSim(spec, SimConfig(params=SimParams(kp_scale={"legs": 1.1})))
