"""`humanoid-rl eval --shield`: the deployed shield core sits between the policy and the simulator, holds the
policy off during its start-up ramp, limits what it must, and the evaluation reports its interventions per stage."""

from __future__ import annotations

import numpy as np

from humanoid_rl.core.shield_filter import STAGES
from humanoid_rl.core.shield_modes import ShieldMode
from humanoid_rl.envs.commands import CommandConfig
from humanoid_rl.envs.humanoid_env import EnvConfig, HumanoidEnv
from humanoid_rl.envs.pushes import PushConfig
from humanoid_rl.train.evaluate import EvalSetting, ShieldInLoop, evaluate, sim_shield_params


def _quiet_env() -> HumanoidEnv:
    return HumanoidEnv("stand", EnvConfig(randomize=False, sensor_noise=False, push=PushConfig.off()))


def test_the_shield_holds_the_policy_off_during_its_ramp_then_limits_a_target_jump_by_its_rate_stage() -> None:
    params = sim_shield_params()
    env = _quiet_env()
    shield = ShieldInLoop(params=params)
    env.target_filter = shield
    try:
        env.reset(seed=0)
        shield.reset()
        ramp_steps = int(round(params.ramp_time / env.policy_dt))
        big = np.full(env.contract.n_actions, env.contract.action_clip, np.float32)  # every joint at once
        for _ in range(ramp_steps - 5):
            env.step(big)  # ignored: still ramping to the default pose
        q, _ = env.sim.joint_state()
        assert shield.shield.mode is ShieldMode.HOLD
        assert np.max(np.abs(q - env.robot_spec.default_pose)) < 0.1
        zero = np.zeros(env.contract.n_actions, np.float32)
        for _ in range(10):
            env.step(zero)
        assert shield.shield.mode is ShieldMode.ACTIVE
        before = shield.episode_counters()["interventions"]["RATE"]
        env.step(big)
    finally:
        env.close()
    counters = shield.episode_counters()
    assert counters["interventions"]["RATE"] == before + 1
    # The targets that reached the motors moved by at most max_target_rate x control period from the last ones.
    applied = env.sim._active[3] / env.sim._kp  # offset = kp * q_target (zero velocity and feed-forward targets)
    step_limit = params.max_target_rate * params.control_period
    moved = np.max(np.abs(applied - env.robot_spec.default_pose))
    assert step_limit - 1e-6 <= moved <= step_limit + 1e-6


def test_eval_with_the_shield_reports_interventions_per_stage_and_the_modes_it_went_through() -> None:
    setting = EvalSetting(episodes=1, episode_s=3.0, push_force_n=0.0, randomize=False, shield=True)
    result = evaluate(None, setting)
    shield = result["baseline"]["shield"]
    assert set(shield["interventions_per_stage"]) == {stage.name for stage in STAGES}
    assert shield["mode_entries"]["HOLD"] == 1 and shield["mode_entries"]["ACTIVE"] == 1
    assert shield["commands_received"] == 150  # one per policy step: 3 s at 50 Hz
    assert 0 < shield["commands_accepted"] < 150  # none during the 2 s ramp
    assert result["baseline"]["success_rate"] == 1.0
    assert "shield" in result["baseline"]["per_episode"][0]


def test_eval_without_the_shield_sends_the_policy_targets_straight_to_the_motors() -> None:
    result = evaluate(None, EvalSetting(episodes=1, episode_s=1.0, push_force_n=0.0, randomize=False))
    assert "shield" not in result["baseline"]
    env = _quiet_env()
    try:
        assert env.target_filter is None
    finally:
        env.close()


def test_walk_tracking_is_judged_only_while_the_shield_lets_the_policy_control_the_robot() -> None:
    # The shield holds the robot still for its 2 s ramp while the command asks for 0.5 m/s: those strides are
    # the shield's, not the policy's, and are left out. The PD hold then stands still: 0.5 m/s error per stride.
    env = HumanoidEnv("walk", EnvConfig(randomize=False, sensor_noise=False, push=PushConfig.off(),
                                        episode_length_s=4.2, commands=CommandConfig.fixed(0.5)))
    shield = ShieldInLoop(params=sim_shield_params())
    env.target_filter = shield
    try:
        env.reset(seed=0)
        shield.reset()
        zero = np.zeros(env.contract.n_actions, np.float32)
        held = 0
        while True:
            *_, terminated, truncated, info = env.step(zero)
            held += shield.shield.mode is not ShieldMode.ACTIVE
            if terminated or truncated:
                break
    finally:
        env.close()
    summary = info["episode_summary"]
    window = int(round(env.contract.gait_period_s / env.policy_dt))
    assert held >= 100  # the ramp, at 50 Hz
    assert summary["strides_judged"] == (summary["length_steps"] - held) // window
    assert abs(summary["stride_vx_error_mps"] - 0.5) < 0.03
    assert abs(summary["mean_vx_error_mps"] - 0.5) < 0.03  # per step too: only the steps the policy controlled
