"""``HumanoidRL/Reach-v0``: the standing humanoid moves its right hand to a goal point (goal-conditioned, for HER).

The robot stands on the ground as in the stand task, its legs held by the joint PD at the default pose. The
policy drives the right arm only (the contract's ``policy_joints``: shoulder pitch, roll, yaw and elbow) with the
contract's action mapping, ``target = default + action_scale * clip(action)``; every other joint keeps its
default target. The goal is a point for the hand (``HAND_LINK`` plus ``HAND_OFFSET``, the forearm's tip) in the
pelvis frame. Each episode draws it by forward kinematics of a random arm posture within ``GOAL_ACTION_RANGE``
action units of the default: every goal is reachable with the action the policy has.

Observation (a ``Dict``, as stable-baselines3's ``HerReplayBuffer`` wants it): ``observation`` is the
contract's observation without its last term (the arm's joint positions and velocities from the noisy encoders,
the last action), ``desired_goal`` that last term, the ``goal``, and ``achieved_goal`` the hand's exact position
in the pelvis frame. ``observation`` followed by ``desired_goal`` is the flat contract observation the exported
model and the policy node use. The reward is sparse: 0 when the hand is within ``success_threshold_m`` of the
goal, -1 otherwise (``compute_reward`` works on batches, for HER's relabelled goals); ``info["is_success"]``
says the same at every step, and an episode's ``success`` is whether its last step ended there.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from humanoid_rl.core.contract import PolicyContract, RobotState
from humanoid_rl.core.observation import ObservationBuilder, ObservationTerm
from humanoid_rl.core.robot_spec import RobotSpec, read_urdf_text
from humanoid_rl.sim import HumanoidSim, SensorNoise, SimConfig

__all__ = ["ARM_JOINTS", "HAND_LINK", "HandKinematics", "ReachConfig", "ReachEnv", "reach_contract", "reach_terms"]

ARM_JOINTS = ("right_shoulder_pitch_joint", "right_shoulder_roll_joint", "right_shoulder_yaw_joint",
              "right_elbow_joint")
HAND_LINK = "right_forearm"
HAND_OFFSET = (0.0, 0.0, -0.2)  # the forearm's tip in its link frame (the URDF's forearm ends there)
GOAL_FRAME = "pelvis"
# Goals come from arm postures within this many action units of the default: inside the action clip (1), so
# the PD's sag under gravity leaves the policy room to correct.
GOAL_ACTION_RANGE = 0.8


def reach_terms(n_arm_joints: int) -> tuple[ObservationTerm, ...]:
    """The reach layout: the arm's joint state and last action, then the goal (last, unscaled: HER puts achieved
    hand positions in metres where the goal was, so the term must carry metres)."""
    return (
        ObservationTerm("joint_pos_rel", n_arm_joints, (1.0,) * n_arm_joints),
        ObservationTerm("joint_vel", n_arm_joints, (0.05,) * n_arm_joints),
        ObservationTerm("last_action", n_arm_joints, (1.0,) * n_arm_joints),
        ObservationTerm("goal", 3, (1.0, 1.0, 1.0)),
    )


def reach_contract(spec: RobotSpec, policy_rate_hz: float | None = None) -> PolicyContract:
    """The robot's contract with the right arm as policy joints and the goal term (hand point, pelvis frame)."""
    missing = [j for j in ARM_JOINTS if j not in spec.joint_names]
    if missing:
        raise ValueError(f"the reach task drives {list(ARM_JOINTS)}; robot {spec.name!r} lacks {missing}")
    robot = PolicyContract.from_robot(spec, policy_rate_hz=policy_rate_hz)  # joints, pose, gains, rate, scale
    fields = {f.name: getattr(robot, f.name) for f in dataclasses.fields(robot) if f.init}
    fields.update(terms=reach_terms(len(ARM_JOINTS)), policy_joints=ARM_JOINTS, goal_link=HAND_LINK,
                  goal_frame=GOAL_FRAME)
    return PolicyContract(**fields)


class HandKinematics:
    """The hand point in the pelvis frame from joint positions (robot order), by pinocchio on a fixed base."""

    def __init__(self, spec: RobotSpec, link: str = HAND_LINK, offset: tuple[float, ...] = HAND_OFFSET) -> None:
        import pinocchio as pin

        self._pin = pin
        self.model = pin.buildModelFromXML(read_urdf_text(spec.urdf_path).decode(errors="replace"))
        self.data = self.model.createData()
        if self.model.getFrameId(link) >= len(self.model.frames):
            raise ValueError(f"link {link!r} is not in {spec.urdf_path}")
        self._frame = self.model.getFrameId(link)
        self._q_index = np.array([self.model.joints[self.model.getJointId(n)].idx_q for n in spec.joint_names])
        self._q = pin.neutral(self.model)
        self._offset = np.asarray(offset, dtype=np.float64)

    def hand_position(self, joint_pos: np.ndarray) -> np.ndarray:
        self._q[self._q_index] = joint_pos
        self._pin.framesForwardKinematics(self.model, self.data, self._q)
        placement = self.data.oMf[self._frame]
        return placement.rotation @ self._offset + placement.translation


@dataclass
class ReachConfig:
    robot_config: str | Path | None = None
    episode_length_s: float = 1.0  # 50 steps at 50 Hz: the arm's PD settles on a target in about 0.3 s
    success_threshold_m: float = 0.05
    physics_rate_hz: float | None = None  # None: the robot's (1 kHz)
    sensor_noise: bool = True
    initial_joint_noise_rad: float = 0.02
    min_base_height_fraction: float = 0.6  # below this the robot fell: the episode ends, unsuccessful

    def __post_init__(self) -> None:
        if not (self.episode_length_s > 0 and self.success_threshold_m > 0):
            raise ValueError(f"ReachConfig: episode_length_s = {self.episode_length_s!r}, success_threshold_m = "
                             f"{self.success_threshold_m!r}: use values > 0")


class ReachEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """See the module docstring."""

    metadata = {"render_modes": [], "render_fps": 50}

    def __init__(self, config: ReachConfig | None = None, render_mode: str | None = None) -> None:
        super().__init__()
        if render_mode is not None:
            raise ValueError("HumanoidRL/Reach-v0 does not render")
        self.config = config if config is not None else ReachConfig()
        self.robot_spec = spec = RobotSpec.load(self.config.robot_config)
        self.contract = reach_contract(spec)
        self._observer = ObservationBuilder(self.contract)
        self._goal_slice = self.contract.term_slices()["goal"]
        # observation ‖ desired_goal must be the flat contract observation the exported model takes.
        assert self._goal_slice.stop == self.contract.n_obs, "the goal must be the contract's last term"
        self._arm = np.array([spec.joint_names.index(j) for j in ARM_JOINTS])
        self.hand = HandKinematics(spec)
        physics_hz = float(self.config.physics_rate_hz or spec.physics_rate_hz)
        self.sim = HumanoidSim(spec, SimConfig(physics_rate_hz=physics_hz,
                                               noise=SensorNoise() if self.config.sensor_noise else SensorNoise.none()))
        self.decimation = max(1, int(round(physics_hz / self.contract.policy_rate_hz)))
        self.policy_dt = 1.0 / self.contract.policy_rate_hz
        self.max_episode_steps = max(1, int(round(self.config.episode_length_s / self.policy_dt)))
        clip = float(self.contract.action_clip or 1.0)
        self.action_space = gym.spaces.Box(-clip, clip, (self.contract.n_actions,), np.float32)
        n_obs = self.contract.n_obs - 3
        box = gym.spaces.Box
        self.observation_space = gym.spaces.Dict({
            "observation": box(-np.inf, np.inf, (n_obs,), np.float32),
            "achieved_goal": box(-np.inf, np.inf, (3,), np.float32),
            "desired_goal": box(-np.inf, np.inf, (3,), np.float32),
        })
        self.goal = np.zeros(3)
        self._last_action = np.zeros(self.contract.n_actions)
        self._steps = 0
        self._return = 0.0
        self._needs_reset = True

    # ------------------------------------------------------------------ goals and reward
    def sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        """A reachable hand point: forward kinematics of the default pose with the arm moved by a random action
        in ``±GOAL_ACTION_RANGE`` (within the joint limits)."""
        spec = self.robot_spec
        action = rng.uniform(-GOAL_ACTION_RANGE, GOAL_ACTION_RANGE, self.contract.n_actions)
        targets = self.contract.action_to_joint_targets(action, spec.lower, spec.upper)
        return self.hand.hand_position(targets)

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """0 within ``success_threshold_m`` of the goal, -1 elsewhere; over a batch (HER) or one step."""
        distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -(distance > self.config.success_threshold_m).astype(np.float32)

    def achieved_goal(self) -> np.ndarray:
        """The hand point now, from the exact joint positions (the reward's truth, as the other tasks' is)."""
        return self.hand.hand_position(self.sim.joint_state()[0])

    # ------------------------------------------------------------------ episodes
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(0, 2**63 - 1))
        goal_rng, pose_rng = (np.random.default_rng([episode_seed, k]) for k in (1, 2))
        spec = self.robot_spec
        noise = pose_rng.uniform(-1.0, 1.0, spec.n_joints) * self.config.initial_joint_noise_rad
        self.sim.forget_contacts()
        self.sim.reset(seed=episode_seed, joint_pos=np.clip(spec.default_pose + noise, spec.lower, spec.upper))
        self.goal = self.sample_goal(goal_rng)
        if options and "goal" in options:  # a fixed goal (tests, demonstrations)
            self.goal = np.asarray(options["goal"], dtype=np.float64).reshape(3)
        self._last_action = np.zeros(self.contract.n_actions)
        self._observer.reset()
        self._steps, self._return = 0, 0.0
        self._needs_reset = False
        self._wall_start = time.monotonic()
        obs = self._observe()
        return obs, {"is_success": bool(self._distance(obs) <= self.config.success_threshold_m),
                     "episode_seed": episode_seed}

    def _observe(self) -> dict[str, np.ndarray]:
        readings = self.sim.read_sensors()
        state = RobotState(base_ang_vel=readings.imu_gyro, base_quat=readings.imu_quat,
                           joint_pos=readings.joint_pos, joint_vel=readings.joint_vel, goal=self.goal)
        flat = self._observer.build(state, np.zeros(3), self._last_action)
        where = self._goal_slice
        return {
            "observation": flat[: where.start].astype(np.float32),
            "achieved_goal": self.achieved_goal().astype(np.float32),
            "desired_goal": flat[where].astype(np.float32),
        }

    @staticmethod
    def _distance(obs: dict[str, np.ndarray]) -> float:
        return float(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]))

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("ReachEnv.step called before reset() or after the episode ended: call reset()")
        spec = self.robot_spec
        action = self.contract.clip_action(action)
        self.sim.set_joint_targets(self.contract.action_to_joint_targets(action, spec.lower, spec.upper))
        self.sim.step(self.decimation)
        self._steps += 1
        self._last_action = action
        obs = self._observe()
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], None))
        self._return += reward
        fell = bool(self.sim.ground_truth().pos[2] < self.config.min_base_height_fraction * spec.nominal_base_height)
        distance = self._distance(obs)
        success = distance <= self.config.success_threshold_m and not fell
        truncated = not fell and self._steps >= self.max_episode_steps
        info: dict[str, Any] = {"is_success": success, "distance_m": distance, "fell": fell}
        if fell or truncated:
            self._needs_reset = True
            duration = self._steps * self.policy_dt
            info["episode_summary"] = {  # what training's evaluation and logs read, as the other tasks give it
                "success": success, "fell": fell, "length_steps": self._steps, "length_s": duration,
                "return": self._return, "final_distance_m": distance, "max_push_force_n": 0.0,
                "reward_terms": {"final_distance_m": distance},
            }
        return obs, reward, fell, truncated, info

    # ------------------------------------------------------------------ what training calls on every task
    def set_curriculum(self, level: float) -> None:
        """No curriculum: the goal box stays the same (the training loop calls this on every task)."""

    def contract_dict(self) -> dict[str, Any]:
        from humanoid_rl.core.contract_io import contract_to_dict

        return contract_to_dict(self.contract)

    def close(self) -> None:
        sim = getattr(self, "sim", None)
        if sim is not None:
            sim.close()
        super().close()
