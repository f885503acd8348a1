"""The walk task: its gait clock, contact schedule, commands, reward terms, and a short training run that exports
a policy whose contract carries the clock."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from train_fixtures import tiny_config

from humanoid_rl.envs.commands import CommandConfig, draw_command
from humanoid_rl.envs.gait import FeetAirTime, GaitConfig, gait_targets, is_moving
from humanoid_rl.envs.humanoid_env import EnvConfig, HumanoidEnv
from humanoid_rl.envs.pushes import PushConfig
from humanoid_rl.envs.rewards import WALK_TERMS, RewardConfig, RewardInputs, reward_terms

N = 21
GAIT = GaitConfig()


# ------------------------------------------------------------------------------------------------ the clock
def test_the_gait_clock_in_a_walk_observation_is_exact_at_known_times() -> None:
    env = HumanoidEnv("walk", EnvConfig(push=PushConfig.off(), randomize=False))
    try:
        assert env.contract.gait_period_s == GAIT.period_s
        slot = env.contract.term_slices()["gait_phase"]
        obs, _ = env.reset(seed=0)
        seen = [obs[slot]]
        for _ in range(40):
            obs, *_ = env.step(np.zeros(N, np.float32))
            seen.append(obs[slot])
        env.reset(seed=1)  # a new episode restarts the clock
        first_of_next = env.step(np.zeros(N, np.float32))[0][slot]
    finally:
        env.close()
    for k, value in enumerate(seen):  # observation k is built at t = k / 50 Hz
        angle = 2.0 * math.pi * (k / 50.0) / GAIT.period_s
        np.testing.assert_allclose(value, [math.sin(angle), math.cos(angle)], atol=1e-6)
    np.testing.assert_allclose(first_of_next, seen[1], atol=1e-6)


def test_the_schedule_stands_left_then_right_with_double_support_and_both_feet_when_still() -> None:
    quarter = GAIT.period_s / 4.0
    left_stands = gait_targets(quarter, GAIT, moving=True)  # sin = 1
    assert left_stands.stance.tolist() == [True, False]
    assert left_stands.swing_height_m == pytest.approx([0.0, GAIT.swing_height_m])
    right_stands = gait_targets(3.0 * quarter, GAIT, moving=True)  # sin = -1
    assert right_stands.stance.tolist() == [False, True]
    assert right_stands.swing_height_m == pytest.approx([GAIT.swing_height_m, 0.0])
    for crossing in (0.0, 2.0 * quarter, 4.0 * quarter):
        assert gait_targets(crossing, GAIT, moving=True).stance.tolist() == [True, True]
    still = gait_targets(quarter, GAIT, moving=False)
    assert still.stance.tolist() == [True, True] and not still.swing_height_m.any()
    # a contract's own period wins over the config's
    assert gait_targets(0.25, GAIT, moving=True, period_s=1.0).stance.tolist() == [True, False]


def test_the_reference_gait_flexes_only_the_swing_leg_and_lifts_its_sole_level_on_the_shipped_robot() -> None:
    from humanoid_rl.core.kinematics import RobotKinematics
    from humanoid_rl.core.robot_spec import RobotSpec
    from humanoid_rl.envs.gait import LegReference

    spec = RobotSpec.load(None)
    reference = LegReference(spec.joint_names, spec.lower, spec.upper)
    quarter = GAIT.period_s / 4.0
    right_swings = gait_targets(quarter, GAIT, moving=True)  # sin = 1: left stands, right at mid-swing
    assert right_swings.swing.tolist() == [0.0, 1.0]
    offsets = reference.offsets(right_swings.swing, 0.17)
    names = dict(zip(spec.joint_names, offsets, strict=True))
    # The shipped knee bends positive (limits 0..2.3), so the hip flexes negative and the ankle compensates.
    assert names["right_knee_joint"] == pytest.approx(0.34)
    assert names["right_hip_pitch_joint"] == pytest.approx(-0.17)
    assert names["right_ankle_pitch_joint"] == pytest.approx(-0.17)
    assert np.count_nonzero(offsets) == 3  # the stance leg and every other joint stay at the default
    assert not reference.offsets(gait_targets(0.0, GAIT, moving=True).swing, 0.17).any()  # double support
    assert not reference.offsets(gait_targets(quarter, GAIT, moving=False).swing, 0.17).any()  # standing still

    kinematics = RobotKinematics(spec)
    before = kinematics.foot_positions_in_base(spec.default_pose)
    after = kinematics.foot_positions_in_base(spec.default_pose + offsets)
    assert after[1, 2] - before[1, 2] > 0.02  # the swing sole lifts (signs right for this robot)
    assert np.allclose(after[0], before[0])  # the stance foot does not move


def test_the_reference_gait_term_pays_its_weight_on_the_reference_and_less_off_it() -> None:
    w = RewardConfig.for_walk().with_settings(["reference_gait=1.5"])
    on = reward_terms(walk_inputs(reference_error_rad=np.zeros(12)), w, walking=True)
    assert on["reference_gait"] == pytest.approx(1.5)
    error = np.zeros(12)
    error[3] = 0.3
    off = reward_terms(walk_inputs(reference_error_rad=error), w, walking=True)
    assert off["reference_gait"] == pytest.approx(1.5 * (math.exp(-0.6) - 0.2 * 0.3))
    far = reward_terms(walk_inputs(reference_error_rad=np.full(12, 1.0)), w, walking=True)
    assert far["reference_gait"] < 0.0  # the linear part keeps a slope where the exp has flattened
    assert reward_terms(walk_inputs(reference_error_rad=error), RewardConfig.for_walk(),
                        walking=True)["reference_gait"] == 0.0


def test_the_walk_env_rewards_the_reference_gait_for_standing_at_the_default_pose_when_told_to_stand() -> None:
    rewards = RewardConfig.for_walk().with_settings(["reference_gait=1"])
    env = HumanoidEnv("walk", EnvConfig(push=PushConfig.off(), randomize=False, commands=CommandConfig.fixed(0.0),
                                        rewards=rewards))
    try:
        env.reset(seed=0)
        terms = [env.step(np.zeros(N, np.float32))[4]["reward_terms"]["reference_gait"] for _ in range(10)]
        legs = [i for i, name in enumerate(env.robot_spec.joint_names) if "hip" in name or "knee" in name
                or "ankle" in name]
        sag = float(np.linalg.norm((env.sim.joint_state()[0] - env.robot_spec.default_pose)[legs]))
    finally:
        env.close()
    # The PD holds the default pose (the reference while standing) within its gravity sag.
    assert sag < 0.1
    assert terms[-1] == pytest.approx(math.exp(-2.0 * sag) - 0.2 * sag, abs=1e-9)


def test_a_command_below_the_still_thresholds_means_standing() -> None:
    assert not is_moving(np.zeros(3))
    assert not is_moving(np.array([0.03, 0.03, 0.04]))
    assert is_moving(np.array([0.1, 0.0, 0.0]))
    assert is_moving(np.array([0.0, 0.0, -0.2]))


def test_feet_air_time_reports_the_flight_only_at_touchdown() -> None:
    air = FeetAirTime()
    dt = 0.02
    contacts = [(True, True)] + [(True, False)] * 14 + [(True, True)]  # right foot up for 14 steps
    events = [air.update(np.array(c), dt) for c in contacts]
    touchdowns = [(i, first.tolist(), flight.tolist()) for i, (first, flight) in enumerate(events) if first.any()]
    assert len(touchdowns) == 1
    index, first, flight = touchdowns[0]
    assert index == 15 and first == [False, True]
    assert flight == pytest.approx([0.0, 15 * dt])  # 14 steps in the air and the landing step
    assert air.air_time.tolist() == [0.0, 0.0]


def test_gait_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="min_air_time_s"):
        GaitConfig(period_s=0.3, min_air_time_s=0.2)
    with pytest.raises(ValueError, match="double_support"):
        GaitConfig(double_support=1.0)


# --------------------------------------------------------------------------------------------- commands
def test_commands_come_from_their_ranges_with_still_draws_and_small_components_zeroed() -> None:
    config = CommandConfig()
    draws = np.array([draw_command(config, np.random.default_rng([7, i])) for i in range(3000)])
    still = np.all(draws == 0.0, axis=1)
    assert abs(still.mean() - config.still_probability) < 0.03
    moving = draws[~still]
    for column, (low, high) in enumerate((config.vx_range_mps, config.vy_range_mps, config.yaw_rate_range_rps)):
        values = moving[:, column]
        assert values.min() >= low and values.max() <= high
        nonzero = values[values != 0.0]
        assert np.abs(nonzero).min() >= config.deadband[column]
        assert nonzero.min() < low + 0.05 and nonzero.max() > high - 0.05  # the whole range is used
    again = [draw_command(config, np.random.default_rng(1)) for _ in range(2)]
    assert np.array_equal(*again)
    assert draw_command(CommandConfig.fixed(0.5), np.random.default_rng(0)).tolist() == [0.5, 0.0, 0.0]


def test_the_walk_env_resamples_its_command_on_the_configured_interval() -> None:
    commands = CommandConfig(resample_interval_s=0.2, still_probability=0.0)
    env = HumanoidEnv("walk", EnvConfig(push=PushConfig.off(), commands=commands))
    try:
        _, info = env.reset(seed=4)
        seen = [info["command"]]
        for _ in range(30):
            seen.append(env.step(np.zeros(N, np.float32))[4]["command"])
    finally:
        env.close()
    changes = [i for i in range(1, len(seen)) if not np.array_equal(seen[i], seen[i - 1])]
    assert changes == [10, 20, 30]  # every 10 policy steps (0.2 s at 50 Hz)


# ---------------------------------------------------------------------------------------------- rewards
def walk_inputs(**changes: object) -> RewardInputs:
    inputs = RewardInputs(
        base_height=0.8, nominal_base_height=0.8, projected_gravity=np.array([0.0, 0.0, -1.0]),
        ang_vel_body=np.zeros(3), lin_vel_heading=np.array([0.5, 0.0]), yaw_rate=0.0, drift_xy=np.zeros(2),
        feet_in_contact=np.array([True, False]), command=np.array([0.5, 0.0, 0.0]), action=np.zeros(N),
        last_action=np.zeros(N), torques=np.zeros(N), joint_vel=np.zeros(N), joint_limit_proximity=np.zeros(N),
        moving=True, scheduled_stance=np.array([True, False]), swing_height_ref_m=np.array([0.0, 0.06]),
        foot_height_m=np.array([0.0, 0.06]),
    )
    for name, value in changes.items():
        setattr(inputs, name, value)
    return inputs


def test_each_walk_term_pays_or_costs_what_its_formula_says() -> None:
    w = RewardConfig()
    perfect = reward_terms(walk_inputs(), w, walking=True)
    assert tuple(perfect) == WALK_TERMS
    for term in ("velocity_tracking", "yaw_tracking", "contact_schedule", "foot_clearance"):
        assert perfect[term] == pytest.approx(getattr(w, term)), term
    assert perfect["feet_air_time"] == 0.0 and perfect["foot_slip"] == 0.0

    off_schedule = reward_terms(walk_inputs(feet_in_contact=np.array([False, True])), w, walking=True)
    assert off_schedule["contact_schedule"] == pytest.approx(-0.3 * w.contact_schedule)

    slow = reward_terms(walk_inputs(lin_vel_heading=np.array([0.25, 0.0])), w, walking=True)
    assert slow["velocity_tracking"] == pytest.approx(w.velocity_tracking * math.exp(-1.0))  # error = scale

    step = {"touchdown": np.array([False, True]), "flight_time_s": np.array([0.0, 0.3])}
    landed = reward_terms(walk_inputs(**step), w, walking=True)
    assert landed["feet_air_time"] == pytest.approx(w.feet_air_time * (0.3 - 0.2))
    long_flight = reward_terms(walk_inputs(touchdown=np.array([False, True]), flight_time_s=np.array([0.0, 2.0])),
                               w, walking=True)
    assert long_flight["feet_air_time"] == pytest.approx(w.feet_air_time * (0.35 - 0.2))  # capped at T/2
    shuffle = reward_terms(walk_inputs(touchdown=np.array([False, True]), flight_time_s=np.array([0.0, 0.06])),
                           w, walking=True)
    assert shuffle["feet_air_time"] < 0.0
    assert reward_terms(walk_inputs(moving=False, **step), w, walking=True)["feet_air_time"] == 0.0

    sliding = np.array([[0.3, 0.4], [2.0, 0.0]])  # the stance foot slides at 0.5 m/s; the swing foot is free
    assert reward_terms(walk_inputs(foot_vel_xy=sliding), w, walking=True)["foot_slip"] == pytest.approx(
        -w.foot_slip * 0.5
    )
    dragging = reward_terms(walk_inputs(foot_height_m=np.array([0.0, 0.0])), w, walking=True)
    assert dragging["foot_clearance"] == pytest.approx(w.foot_clearance * 0.5 * (1.0 + math.exp(-4.0)))


def test_the_optional_tracking_slope_and_hip_posture_terms_cost_in_proportion_and_are_off_by_default() -> None:
    default = reward_terms(walk_inputs(lin_vel_heading=np.array([0.2, 0.0]), yaw_rate=-0.5,
                                       hip_offset_rad=np.array([0.5, 0.0, -0.3, 0.1])), RewardConfig.for_walk(),
                           walking=True)
    assert default["tracking_error"] == 0.0 and default["hip_posture"] == 0.0  # old recipes train as before

    w = RewardConfig.for_walk().with_settings(["tracking_error=2", "hip_posture=3", "hip_posture_free_rad=0.15"])
    perfect = reward_terms(walk_inputs(hip_offset_rad=np.array([0.15, -0.1, 0.0, 0.05])), w, walking=True)
    assert perfect["tracking_error"] == 0.0 and perfect["hip_posture"] == 0.0  # within the free band
    # 0.3 m/s short of the command and veering at 0.4 rad/s: the slope is the sum of both errors.
    veering = reward_terms(walk_inputs(lin_vel_heading=np.array([0.2, 0.0]), yaw_rate=-0.4), w, walking=True)
    assert veering["tracking_error"] == pytest.approx(-2.0 * (0.3 + 0.4))
    # Hips at +-0.5 rad (the limits the policy rode) cost (0.35 + 0.35) * weight; the 0.1 joint costs nothing.
    splayed = reward_terms(walk_inputs(hip_offset_rad=np.array([0.5, -0.5, 0.1, 0.0])), w, walking=True)
    assert splayed["hip_posture"] == pytest.approx(-3.0 * 0.7)
    with pytest.raises(ValueError, match="hip_posture_free_rad"):
        RewardConfig(hip_posture_free_rad=-0.1)


def test_averaged_tracking_judges_the_recent_mean_velocity_so_a_gaits_sway_does_not_drown_a_turn() -> None:
    w = RewardConfig.for_walk().with_settings(["tracking_average_s=0.7", "tracking_error=1"])
    # This step sways at -0.8 rad/s, but over the last stride it turned at the commanded 0.6 rad/s.
    swaying = walk_inputs(command=np.array([0.5, 0.0, 0.6]), yaw_rate=-0.8,
                          tracked_velocity=np.array([0.5, 0.0, 0.6]))
    terms = reward_terms(swaying, w, walking=True)
    assert terms["yaw_tracking"] == pytest.approx(w.yaw_tracking) and terms["tracking_error"] == 0.0
    per_step = reward_terms(walk_inputs(command=np.array([0.5, 0.0, 0.6]), yaw_rate=-0.8), w, walking=True)
    assert per_step["yaw_tracking"] == pytest.approx(w.yaw_tracking * math.exp(-(1.4**2) / w.yaw_rate_scale**2))
    with pytest.raises(ValueError, match="tracking_average_s"):
        RewardConfig(tracking_average_s=-1.0)


def test_the_walk_env_averages_tracking_over_its_window_and_restarts_the_window_on_a_new_command() -> None:
    rewards = RewardConfig.for_walk().with_settings(["tracking_average_s=0.1"])  # 5 policy steps
    commands = CommandConfig(resample_interval_s=0.2, still_probability=0.0)  # a new command every 10 steps
    env = HumanoidEnv("walk", EnvConfig(push=PushConfig.off(), commands=commands, rewards=rewards))
    try:
        env.reset(seed=4)
        yaw_rates = []
        for step in range(1, 15):
            info = env.step(np.zeros(N, np.float32))[4]
            yaw_rates.append(env.sim.ground_truth().ang_vel_world[2])
            recent = yaw_rates[-5:] if step < 10 else yaw_rates[9:][-5:]  # step 10 brought a new command
            mean = float(np.mean(recent))
            expected = rewards.yaw_tracking * math.exp(-((mean - info["command"][2]) ** 2) / rewards.yaw_rate_scale**2)
            assert info["reward_terms"]["yaw_tracking"] == pytest.approx(expected, rel=1e-9), step
    finally:
        env.close()


def test_the_walk_env_measures_hip_posture_from_the_hip_yaw_and_roll_joints_only() -> None:
    rewards = RewardConfig.for_walk().with_settings(["hip_posture=1", "hip_posture_free_rad=0"])
    env = HumanoidEnv("walk", EnvConfig(push=PushConfig.off(), randomize=False, initial_joint_noise_rad=0.0,
                                        commands=CommandConfig.fixed(0.0), rewards=rewards))
    try:
        names = env.robot_spec.joint_names
        hips = [i for i, name in enumerate(names) if "hip_yaw" in name or "hip_roll" in name]
        assert len(hips) == 4
        env.reset(seed=0)
        standing = env.step(np.zeros(N, np.float32))[4]["reward_terms"]["hip_posture"]
        offsets = env.sim.joint_state()[0][hips] - env.robot_spec.default_pose[hips]
        assert standing == pytest.approx(-float(np.abs(offsets).sum()), abs=1e-9)
        assert standing > -0.05  # the PD holds the hips near their defaults
    finally:
        env.close()


def test_a_walk_env_standing_still_on_both_feet_earns_the_full_schedule_and_clearance() -> None:
    config = EnvConfig(push=PushConfig.off(), randomize=False, commands=CommandConfig.fixed(0.0))
    env = HumanoidEnv("walk", config)
    try:
        env.reset(seed=0)
        infos = [env.step(np.zeros(N, np.float32))[4] for _ in range(25)]
    finally:
        env.close()
    w = env.rewards
    last = infos[-1]["reward_terms"]
    assert last["contact_schedule"] == pytest.approx(w.contact_schedule)
    assert last["foot_clearance"] > 0.95 * w.foot_clearance  # soles stay where they stood
    assert all(info["reward_terms"]["feet_air_time"] == 0.0 for info in infos)
    assert last["foot_slip"] > -0.01


# ------------------------------------------------------------------------------------------------ training
def test_a_short_walk_training_run_exports_a_policy_whose_contract_has_the_clock(tmp_path: Path) -> None:
    from humanoid_rl.policy.runtime import load_policy
    from humanoid_rl.train.cli import train
    from humanoid_rl.train.export import export_policy, resolve_checkpoint

    metrics = train(tiny_config(tmp_path, "ppo", task="walk", physics_rate_hz=500.0))
    assert metrics["status"] == "finished" and metrics["steps"] >= 256
    onnx = tmp_path / "walk.onnx"
    export_policy(resolve_checkpoint(tmp_path / "tiny-ppo"), onnx, rollout_episodes=1, rollout_s=1.0, n_pairs=32)
    env = HumanoidEnv("walk", EnvConfig(push=PushConfig.off()))
    try:
        policy = load_policy(onnx, env.contract)
        assert policy.contract.gait_period_s == GAIT.period_s
        assert [t.name for t in policy.contract.terms][-1] == "gait_phase"
        obs, _ = env.reset(seed=0)
        assert policy.act(obs).shape == (N,)
    finally:
        env.close()


def test_eval_of_the_walk_task_reports_velocity_tracking_errors_per_episode_and_overall() -> None:
    from humanoid_rl.train.evaluate import EvalSetting, evaluate

    setting = EvalSetting(task="walk", episodes=2, episode_s=2.0, push_force_n=0.0, randomize=False, seed=3)
    baseline = evaluate(None, setting)["baseline"]  # PD hold: stands still whatever it is told
    for episode in baseline["per_episode"]:
        command = np.array(episode["command"])
        assert len(command) == 3
        # standing still, the error is the command itself (less what little the robot sways)
        assert episode["mean_vx_error_mps"] == pytest.approx(abs(command[0]), abs=0.03)
        assert episode["mean_yaw_rate_error_rps"] == pytest.approx(abs(command[2]), abs=0.05)
        # Per stride the same (2 s: two whole 0.7 s strides judged).
        assert episode["strides_judged"] == 2
        assert episode["stride_vx_error_mps"] == pytest.approx(abs(command[0]), abs=0.03)
        assert episode["stride_yaw_rate_error_rps"] == pytest.approx(abs(command[2]), abs=0.05)
    assert baseline["mean_vx_error_mps"] == pytest.approx(
        np.mean([e["mean_vx_error_mps"] for e in baseline["per_episode"]])
    )


def test_eval_with_a_held_command_says_how_far_and_which_way_the_robot_misses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from humanoid_rl.cli import main

    # The PD hold told to walk at 0.4 m/s while turning left: it stands, so it achieves ~0 of each, with sign.
    assert main(["eval", "--task", "walk", "--cmd-vel", "0.4,0,0.3", "--episodes", "2", "--episode-s", "1.5",
                 "--push-force", "0", "--no-randomize", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    baseline = result["baseline"]
    assert result["setting"]["command"] == [0.4, 0.0, 0.3]
    assert all(e["command"] == [0.4, 0.0, 0.3] for e in baseline["per_episode"])
    assert baseline["mean_vx_error_mps"] == pytest.approx(0.4, abs=0.03)
    assert baseline["mean_yaw_rate_error_rps"] == pytest.approx(0.3, abs=0.05)
    vx, vy, wz = baseline["mean_achieved_velocity"]
    assert abs(vx) < 0.03 and abs(wz) < 0.05
    out = capsys.readouterr().out
    assert "command held at vx 0.4 m/s, vy 0 m/s, yaw rate 0.3 rad/s" in out and "mean achieved vx" in out


def test_the_walk_task_rewards_tracking_more_than_posture_with_a_wider_kernel_than_standing() -> None:
    walk, stand = RewardConfig.for_walk(), RewardConfig()
    assert walk.velocity_tracking + walk.yaw_tracking > walk.survival + walk.upright + walk.base_height
    assert walk.velocity_scale > stand.velocity_scale
    env = HumanoidEnv("walk", EnvConfig(push=PushConfig.off()))
    try:
        assert env.rewards == walk  # EnvConfig.rewards None: the task's own weights
    finally:
        env.close()
    custom = RewardConfig(velocity_tracking=0.5)
    env = HumanoidEnv("walk", EnvConfig(push=PushConfig.off(), rewards=custom))
    try:
        assert env.rewards is custom
    finally:
        env.close()


def test_stride_tracking_does_not_count_a_gaits_sway_as_error_but_counts_a_missed_speed() -> None:
    from humanoid_rl.envs.commands import StrideTracking

    window = 35  # a 0.7 s stride at 50 Hz
    tracking = StrideTracking(window)
    command = np.array([0.5, 0.0, 0.3])
    phase = 2.0 * math.pi * np.arange(4 * window) / window
    sway = np.stack([0.5 + 0.1 * np.sin(phase), 0.2 * np.sin(phase), 0.3 + 0.6 * np.cos(phase)], axis=1)
    for achieved in sway:
        tracking.update(achieved, command)
    assert tracking.windows == 4
    np.testing.assert_allclose(tracking.mean_errors(), 0.0, atol=1e-12)  # per step the yaw error averages 0.38
    tracking.reset()
    for k in range(3 * window):  # 0.4 m/s instead of 0.5; the command changes in the middle window
        tracking.update(np.array([0.4, 0.0, 0.0]), command if k < window + 10 else np.array([0.4, 0.0, 0.0]))
    assert tracking.windows == 2  # the window with the change is not judged
    np.testing.assert_allclose(tracking.mean_errors(), [0.05, 0.0, 0.15])  # (0.1 + 0.0) / 2, (0.3 + 0.0) / 2


def test_stride_tracking_leaves_out_a_stride_the_policy_did_not_control() -> None:
    from humanoid_rl.envs.commands import StrideTracking

    tracking = StrideTracking(10)
    command = np.array([0.5, 0.0, 0.0])
    for k in range(30):  # held still (not judged) for 12 steps, then walking 0.45 m/s under the policy
        held = k < 12
        tracking.update(np.zeros(3) if held else np.array([0.45, 0.0, 0.0]), command, judged=not held)
    assert tracking.windows == 1  # windows 0-9 and 10-19 each hold an unjudged step
    np.testing.assert_allclose(tracking.mean_errors(), [0.05, 0.0, 0.0])


def test_the_walk_policy_observes_the_estimators_base_velocity_with_the_estimators_error() -> None:
    def velocities(noise: bool) -> tuple[np.ndarray, np.ndarray]:
        env = HumanoidEnv("walk", EnvConfig(push=PushConfig.off(), randomize=False, sensor_noise=noise,
                                            commands=CommandConfig.fixed(0.0)))
        try:
            env.reset(seed=4)
            lin_vel = env.contract.term_slices()["base_lin_vel"]
            observed, true = [], []
            for _ in range(60):
                obs = env.step(np.zeros(N, np.float32))[0]
                observed.append(obs[lin_vel] / 2.0)  # the term's scale
                true.append(env.sim.ground_truth().lin_vel_body)
        finally:
            env.close()
        return np.array(observed), np.array(true)

    observed, true = velocities(noise=False)
    np.testing.assert_allclose(observed, true, atol=1e-6)  # float32 observation
    observed, true = velocities(noise=True)
    error = observed - true
    assert 0.03 < error.std() < 0.07 and abs(error.mean()) < 0.02  # EnvConfig.estimate_noise: 0.05 m/s
