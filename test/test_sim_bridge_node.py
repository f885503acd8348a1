"""The simulation bridge node on real rclpy and real PyBullet, with a test stand-in for the shield."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import rclpy
from rclpy.exceptions import InvalidParameterValueException
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from sim_bridge_fixtures import SPEC, BridgeHarness
from std_msgs.msg import String
from std_srvs.srv import Trigger

from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.graph import Frames, Topics
from humanoid_rl.nodes.runner import spin_until
from humanoid_rl.nodes.sim_bridge import Actuation, SimBridgeNode

NOMINAL_HEIGHT = SPEC.nominal_base_height
BRIDGE_TOPICS = (
    Topics.CLOCK,
    Topics.JOINT_STATES,
    Topics.IMU,
    Topics.LEFT_FOOT_WRENCH,
    Topics.RIGHT_FOOT_WRENCH,
    Topics.GROUND_TRUTH_ODOM,
)


@pytest.fixture()
def harness() -> Iterator[Callable[..., BridgeHarness]]:
    rclpy.init()
    made: list[BridgeHarness] = []

    def make(**parameters: Any) -> BridgeHarness:
        made.append(BridgeHarness(**parameters))
        return made[-1]

    try:
        yield make
    finally:
        for h in made:
            h.close()
        rclpy.try_shutdown()


def ground_truth_height(h: BridgeHarness) -> float:
    return float(h.bridge.sim.ground_truth().pos[2])


def test_in_lock_step_with_a_shield_the_robot_stands_for_5_s_with_monotonic_stamps_names_and_frames(harness):
    h = harness(sync=True)
    h.run_until_sim(1.0)
    wall_1, sim_1 = time.perf_counter(), h.bridge.sim_time_s
    h.run_until_sim(5.0)
    ratio = (h.bridge.sim_time_s - sim_1) / (time.perf_counter() - wall_1)
    report = h.bridge.report()
    shield = h.shield
    print(
        f"\nlock-step: sim/wall {ratio:.2f}, state→command latency "
        f"p50 {report['latency_p50_us'] / 1e3:.2f} ms "
        f"p99 {report['latency_p99_us'] / 1e3:.2f} ms max {report['latency_max_us'] / 1e3:.2f} ms "
        f"({report['latency_samples']} samples), sync timeouts {report['sync_timeouts']}"
    )

    assert not report["fell"] and report["upright_time_s"] == pytest.approx(5.0)
    assert report["base_height_min_m"] > 0.95 * NOMINAL_HEIGHT
    # Commands were applied by name: the reversed-name default pose holds the default pose.
    np.testing.assert_allclose(shield.joint_positions(), SPEC.default_pose, atol=0.05)  # PD sag under load
    published = report["states_published"]
    assert published == 250  # 5 s at 50 Hz, one state per period, from t = 20 ms
    assert report["commands_applied"] >= 0.95 * published
    assert report["sync_timeouts"] <= 0.05 * published  # a lost best-effort state costs one timeout
    # Lock-step advances on the answer, not on the timeout (which alone would give 0.02 / 0.25 = 0.08).
    assert ratio > 0.3
    assert report["latency_samples"] >= 0.9 * published
    assert 0.0 < report["latency_p50_us"] <= report["latency_p99_us"] <= report["latency_max_us"]
    traces = h.bridge.traces()
    assert len(traces["time_s"]) == published and traces["joint_targets"].shape == (published, SPEC.n_joints)
    np.testing.assert_allclose(traces["joint_targets"][-1], SPEC.default_pose)  # the commanded pose, by name
    assert len(traces["latency_us"]) == report["latency_samples"]
    # Standing on both feet: each sole carries about half the weight (the walking plot's contact timeline).
    weight = RobotKinematics(SPEC).total_mass * 9.81
    feet = traces["foot_force_n"][-50:]
    assert traces["foot_links"] == list(SPEC.foot_links) and feet.shape == (50, 2)
    assert np.all(feet > 0.25 * weight)
    assert feet.sum(axis=1).mean() == pytest.approx(weight, rel=0.1)
    status = shield.diagnostics["humanoid_rl/sim_bridge"]  # ~2 Hz on a steady clock
    diagnostics = {kv.key: kv.value for kv in status.values}
    for key in ("achieved_rate_hz", "real_time_factor", "latency_p50_us", "latency_p99_us", "sync_timeouts"):
        assert key in diagnostics
    assert diagnostics["actuation"] == "command" and int(diagnostics["stale_commands"]) == 0

    for topic in BRIDGE_TOPICS:
        stamps = np.array(shield.stamps[topic])
        assert len(stamps) >= 0.9 * published, f"{topic}: only {len(stamps)} of {published} received"
        assert np.all(np.diff(stamps) > 0), f"{topic}: stamps not strictly increasing"
        assert 0 < stamps[0] and stamps[-1] <= 5 * 10**9
        assert set(np.diff(stamps)) <= {20_000_000 * k for k in range(1, 6)}  # whole periods only
    assert shield.frames[Topics.IMU] == {(Frames.IMU, "")}
    assert shield.frames[Topics.GROUND_TRUTH_ODOM] == {(Frames.ODOM, Frames.BASE)}
    assert shield.frames[Topics.LEFT_FOOT_WRENCH] == {(SPEC.foot_links[0], "")}
    assert shield.frames[Topics.RIGHT_FOOT_WRENCH] == {(SPEC.foot_links[1], "")}
    joint = shield.last[Topics.JOINT_STATES]
    assert tuple(joint.name) == SPEC.joint_names
    assert len(joint.position) == len(joint.velocity) == len(joint.effort) == SPEC.n_joints
    assert np.abs(joint.effort).max() > 1.0  # the applied torques that hold the robot up
    imu = shield.last[Topics.IMU]
    assert imu.linear_acceleration.z == pytest.approx(9.81, abs=0.5)  # specific force, standing still
    assert imu.orientation_covariance[0] > 0 and imu.angular_velocity_covariance[4] > 0
    # Both feet carry the robot's weight; the ground-truth odometry is the standing pose, twist in base_link.
    weight = sum(shield.last[t].wrench.force.z for t in (Topics.LEFT_FOOT_WRENCH, Topics.RIGHT_FOOT_WRENCH))
    assert weight == pytest.approx(_robot_weight(h), rel=0.1)
    odom = shield.last[Topics.GROUND_TRUTH_ODOM]
    assert odom.pose.pose.position.z == pytest.approx(NOMINAL_HEIGHT, abs=0.02)
    assert abs(odom.twist.twist.linear.x) < 0.05


def _robot_weight(h: BridgeHarness) -> float:
    return float(h.bridge.sim._link_masses.sum() * 9.81)  # noqa: SLF001 - the sim's own masses, for the check


def test_without_any_command_the_sim_advances_after_sync_timeout_and_holds_the_default_pose(harness):
    h = harness(sync=True, sync_timeout=0.01)
    h.shield.answering = False
    # Malformed commands are refused and change nothing: a joint missing, a NaN target.
    bad_names = JointState(name=list(SPEC.joint_names[:-1]), position=SPEC.default_pose[:-1].tolist())
    nan_pose = SPEC.default_pose.copy()
    nan_pose[3] = np.nan
    nan_command = JointState(name=list(SPEC.joint_names), position=nan_pose.tolist())
    start = time.perf_counter()
    h.run_until_sim(0.2)
    for count, command in enumerate((bad_names, nan_command), start=1):
        h.shield.command_pub.publish(command)  # one at a time: COMMAND_QOS keeps only the newest
        assert spin_until(h.executor, lambda c=count: h.bridge.commands_rejected == c, wall_timeout_s=5.0)
    h.run_until_sim(1.0)
    wall = time.perf_counter() - start
    report = h.bridge.report()

    assert report["states_published"] == 50
    assert report["sync_timeouts"] == 49  # every state but the last one waited out its timeout
    assert wall >= 49 * 0.01  # each period waited for the timeout
    assert report["commands_rejected"] == 2 and report["commands_applied"] == 0
    assert h.bridge.actuation is Actuation.DEFAULT_POSE and report["stale_commands"] == 0
    assert not report["fell"]
    assert ground_truth_height(h) == pytest.approx(NOMINAL_HEIGHT, abs=0.01)
    np.testing.assert_allclose(h.bridge.sim.joint_state()[0], SPEC.default_pose, atol=0.05)


def test_damping_mode_on_the_shield_topic_makes_the_joints_go_limp(harness):
    h = harness(sync=True)
    h.run_until_sim(0.5)
    assert ground_truth_height(h) == pytest.approx(NOMINAL_HEIGHT, abs=0.01)
    h.shield.mode_pub.publish(String(data="DAMPING"))
    h.run_until_sim(2.5)
    report = h.bridge.report()

    assert h.bridge.actuation is Actuation.SHIELD_DAMPING
    assert report["shield_mode_counts"] == {"DAMPING": 1}
    assert report["commands_applied"] > 50  # the commands kept coming and were overridden
    assert report["base_height_min_m"] < 0.8 * NOMINAL_HEIGHT  # no stiffness: the knees give way
    damping = h.bridge.traces()["damping"]
    assert damping[-1] and not damping[0]
    # HOLD (or ACTIVE) gives the commands back their stiffness.
    h.shield.mode_pub.publish(String(data="HOLD"))
    h.run_until_sim(2.6)
    assert h.bridge.actuation is Actuation.COMMAND


def test_a_command_older_than_command_timeout_makes_the_bridge_damp_by_itself_and_counts_it(harness):
    h = harness(sync=True, sync_timeout=0.01, command_timeout=0.1)
    h.run_until_sim(0.5)
    assert h.bridge.actuation is Actuation.COMMAND
    h.shield.answering = False  # the shield dies: the last command ages in sim time
    h.run_until_sim(0.6)
    assert h.bridge.actuation is Actuation.COMMAND  # 100 ms is not yet stale
    h.run_until_sim(1.0)
    report = h.bridge.report()
    assert h.bridge.actuation is Actuation.STALE_DAMPING
    assert report["stale_commands"] == 1
    assert report["sync_timeouts"] >= 20
    # A fresh command ends the bridge's own damping.
    h.shield.answering = True
    h.run_until_sim(1.1)
    assert h.bridge.actuation is Actuation.COMMAND and h.bridge.report()["stale_commands"] == 1


def test_a_push_moves_the_base_and_reset_restores_the_standing_pose_with_the_clock_still_going_forward(
    harness,
):
    h = harness(sync=True, push_duration=0.2)
    h.run_until_sim(0.5)
    x_before = float(h.bridge.sim.ground_truth().pos[0])
    h.shield.push((-60.0, 0.0, 0.0), frame="odom")
    h.run_until_sim(1.5)
    report = h.bridge.report()
    assert report["pushes"] == 1
    traces = h.bridge.traces()
    after_push = traces["time_s"] > 0.5
    assert traces["base_velocity_world_mps"][after_push, 0].min() < -0.1  # pushed towards -x
    assert float(h.bridge.sim.ground_truth().pos[0]) < x_before - 0.005
    assert not report["fell"]

    future = h.shield.reset_client.call_async(Trigger.Request())
    assert spin_until(h.executor, future.done, wall_timeout_s=10.0)
    assert future.result().success, future.result().message
    sim_at_reset = h.bridge.sim_time_s
    assert sim_at_reset >= 1.5
    h.run_until_sim(sim_at_reset + 0.2)
    truth = h.bridge.sim.ground_truth()
    assert abs(truth.pos[0]) < 0.005 and truth.pos[2] == pytest.approx(NOMINAL_HEIGHT, abs=0.01)
    assert h.bridge.report()["resets"] == 1
    for topic in BRIDGE_TOPICS:
        assert np.all(np.diff(h.shield.stamps[topic]) > 0), f"{topic}: stamps went back at the reset"
    assert h.bridge.actuation is Actuation.COMMAND  # the shield's answers to the new states apply again


def test_in_real_time_mode_every_wall_period_is_simulated_or_counted_as_dropped_and_sim_never_runs_ahead(
    harness,
):
    h = harness(sync=False)
    bridge = h.bridge

    def right_after_a_tick() -> tuple[float, float, int]:
        published = bridge.states_published
        assert spin_until(h.executor, lambda: bridge.states_published > published, wall_timeout_s=10.0)
        return time.perf_counter(), bridge.sim_time_s, bridge.dropped_periods

    h.run_until_sim(0.1)
    wall_0, sim_0, dropped_0 = right_after_a_tick()
    h.spin_for(2.0)
    wall_1, sim_1, dropped_1 = right_after_a_tick()
    wall, simulated, dropped = wall_1 - wall_0, sim_1 - sim_0, (dropped_1 - dropped_0) / 50.0
    report = h.bridge.report()
    print(
        f"\nreal time: achieved {report['achieved_rate_hz']:.1f} Hz of 50, "
        f"real-time factor {simulated / wall:.3f}, "
        f"dropped {dropped:.2f} s, jitter {report['jitter_us']:.0f} us, overruns {report['overruns']}, "
        f"latency p50 {report['latency_p50_us'] / 1e3:.2f} ms p99 {report['latency_p99_us'] / 1e3:.2f} ms, "
        f"stale commands {report['stale_commands']}"
    )
    assert simulated <= wall * 1.02 + 0.02  # never ahead of wall time
    # Deadline based: what was not simulated was counted (a box that keeps up drops nothing and runs at 1.0).
    assert (simulated + dropped) / wall == pytest.approx(1.0, abs=0.08)
    assert report["achieved_rate_hz"] <= 50.0 * 1.05
    assert report["commands_applied"] > 0 and report["latency_samples"] > 0


def test_a_state_rate_that_does_not_divide_the_physics_rate_is_refused_with_the_fix(harness):
    with pytest.raises(ValueError, match=r"state_rate_hz = 300 Hz does not divide the physics rate 1000 Hz"):
        SimBridgeNode(parameter_overrides=[Parameter("state_rate_hz", value=300.0)])
    with pytest.raises(InvalidParameterValueException, match="state_rate_hz out of range"):
        SimBridgeNode(parameter_overrides=[Parameter("state_rate_hz", value=2000.0)])
