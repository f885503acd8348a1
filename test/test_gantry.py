"""A virtual gantry for robots that cannot stand under PD alone: the simulator holds the base with a fixed
constraint, and the sim bridge (parameter ``gantry``) keeps it held until the shield reports ACTIVE. Standing
on the gantry in the default pose, the shield does not trip; released, the weak robot falls and it does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState

from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.core.shield import ShieldMode
from humanoid_rl.graph import Topics
from humanoid_rl.nodes.conversions import stamp_to_seconds
from humanoid_rl.nodes.qos import COMMAND_QOS, SENSOR_QOS
from humanoid_rl.nodes.runner import make_executor, spin_until
from humanoid_rl.nodes.safety_shield import SafetyShieldNode
from humanoid_rl.nodes.sim_bridge import SimBridgeNode
from humanoid_rl.sim.simulator import HumanoidSim, SimConfig

REPO = Path(__file__).resolve().parents[1]
WEAK_ANKLE_KP = 30.0  # biped12 needs ~300 N·m/rad at the ankles; with 30 PD alone lets it fall in ~1.2 s


@pytest.fixture(scope="module")
def weak_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = yaml.safe_load((REPO / "config" / "robots" / "biped12.yaml").read_text())
    data["urdf"] = str(REPO / "urdf" / "biped12.urdf")
    for joint in data["joints"]:
        if "ankle_pitch" in joint["name"]:
            joint["kp"] = WEAK_ANKLE_KP
    path = tmp_path_factory.mktemp("weak") / "weak_biped12.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def base_heights(sim: HumanoidSim, seconds: float) -> list[float]:
    heights = []
    for _ in range(int(seconds * 10)):
        sim.step(int(sim.physics_rate_hz / 10))
        heights.append(float(sim.ground_truth().pos[2]))
    return heights


def test_the_gantry_holds_a_robot_that_falls_under_pd_and_letting_go_lets_it_fall(weak_config: Path) -> None:
    spec = RobotSpec.load(weak_config)
    with HumanoidSim(spec, SimConfig(seed=0)) as sim:
        sim.set_joint_targets(spec.default_pose)
        assert min(base_heights(sim, 2.0)) < 0.5 * spec.nominal_base_height  # fallen

        sim.reset(seed=0)
        sim.hold_base()
        sim.set_joint_targets(spec.default_pose)
        held = base_heights(sim, 3.0)
        assert sim.base_held and max(abs(h - sim.standing_base_height) for h in held) < 1e-3
        sim.release_base()
        assert not sim.base_held and min(base_heights(sim, 2.0)) < 0.5 * spec.nominal_base_height

        sim.hold_base()
        sim.reset(seed=0)  # a new episode starts free; whoever wants the gantry attaches it again
        assert not sim.base_held


@pytest.fixture
def ros() -> Iterator[None]:
    rclpy.init()
    yield
    rclpy.shutdown()


def test_on_the_gantry_the_shield_holds_without_tripping_until_active_releases_it(ros: None, weak_config: Path) -> None:
    spec = RobotSpec.load(weak_config)
    engage_at = 2.0  # the policy starts answering here; the shield goes ACTIVE, the bridge lets go
    robot = ("robot_config", str(weak_config))
    bridge = SimBridgeNode(
        parameter_overrides=[
            Parameter(k, value=v)
            for k, v in (robot, ("sync", True), ("state_rate_hz", 50.0), ("sync_timeout", 0.5), ("gantry", True))
        ]
    )
    shield = SafetyShieldNode(
        parameter_overrides=[
            Parameter(k, value=v) for k, v in (robot, ("use_sim_time", True), ("trigger", "state"), ("ramp_time", 0.5))
        ],
        cli_args=["--ros-args", "-r", f"{Topics.ESTIMATOR_ODOM}:={Topics.GROUND_TRUTH_ODOM}"],
    )
    io = Node("gantry_io")
    commands = io.create_publisher(JointState, Topics.POLICY_COMMANDS, COMMAND_QOS)

    def on_state(msg: JointState) -> None:  # a policy that holds the default pose, from engage_at on
        if stamp_to_seconds(msg.header.stamp) >= engage_at:
            commands.publish(
                JointState(header=msg.header, name=list(spec.joint_names), position=spec.default_pose.tolist())
            )

    io.create_subscription(JointState, Topics.JOINT_STATES, on_state, SENSOR_QOS)
    executor = make_executor()
    try:
        executor.add_node(io)
        executor.add_node(shield)
        assert shield.trigger_configure().name == "SUCCESS"
        assert shield.trigger_activate().name == "SUCCESS"
        assert spin_until(
            executor,
            lambda: io.count_subscribers(Topics.JOINT_COMMANDS) >= 1 and commands.get_subscription_count() >= 1,
            wall_timeout_s=15.0,
        )
        executor.add_node(bridge)
        assert spin_until(executor, lambda: bridge.sim_time_s >= engage_at - 0.1, wall_timeout_s=120.0)
        core = shield.shield
        assert core is not None
        assert core.mode is ShieldMode.HOLD and {t.to_mode for t in core.transitions} <= {ShieldMode.HOLD}
        assert bridge.sim.base_held and bridge.gantry_releases == 0
        assert abs(bridge.sim.ground_truth().pos[2] - bridge.sim.standing_base_height) < 1e-3

        assert spin_until(executor, lambda: bridge.sim_time_s >= engage_at + 3.0, wall_timeout_s=120.0)
        active = next(t.time for t in core.transitions if t.to_mode is ShieldMode.ACTIVE)
        trips = [t for t in core.transitions if t.to_mode is ShieldMode.DAMPING]
        print(
            f"\ngantry: ACTIVE at {active:.2f} s, released {bridge.gantry_releases}x; weak robot then "
            f"{'tripped at ' + format(trips[0].time, '.2f') + ' s: ' + trips[0].reason if trips else 'did not trip'}"
        )
        assert engage_at <= active < engage_at + 0.1
        assert not bridge.sim.base_held and bridge.gantry_releases == 1
        assert trips and trips[0].time > active and "balance trip" in trips[0].reason  # it fell only once let go
        assert np.isfinite(bridge.sim.ground_truth().pos).all()
    finally:
        for node in (bridge, shield, io):
            executor.remove_node(node)
            node.destroy_node()
