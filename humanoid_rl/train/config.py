"""``TrainConfig``: every setting of a training run, with its help text, saved as YAML in the run directory.

The command line is generated from the fields (``--field-name``, help from the field's metadata), so a setting
is declared once; a run's ``config.yaml`` holds all of them, and ``--config FILE`` or ``--resume RUN_DIR``
reads one back.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "FAST_PHYSICS_RATE_HZ",
    "REACH_DEFAULTS",
    "DEFAULT_COST_LIMITS",
    "Algorithm",
    "TrainConfig",
    "TrainConfigError",
    "add_config_arguments",
    "config_from_args",
]


# The fast training path's physics rate (`--physics-rate-hz 500`): half the deployment's 1 kHz. Not the default:
# it holds the PD stance as 1 kHz does, but the shipped stand policy (trained at 1 kHz) stays up through 60 N
# pushes with randomization in 11 of 12 seeded episodes at 1 kHz and in 5 of 12 at 500 Hz. A policy trained at
# 500 Hz must pass its acceptance at 1 kHz (`humanoid-rl eval`, `humanoid-rl sim`) before it ships.
FAST_PHYSICS_RATE_HZ = 500.0


# Steps per episode each safety cost may take under ppo-lag, in the order of train.safety.COST_NAMES
# (shield_intervention, joint_limit, effort, tilt); a 20 s training episode is 1000 steps.
DEFAULT_COST_LIMITS = (10.0, 5.0, 10.0, 10.0)


TASKS = ("stand", "walk", "reach")
REPLAYS = ("uniform", "prioritized", "her")

# Where --task reach departs from the stand defaults (the command line and --config still win): 1 s episodes of
# a sparse reward, evaluated often on many goals; the learning rate and discount of Andrychowicz et al. 2017's HER
# experiments, and full-width exploration (an arm cannot topple, so stand's tiny log std is not needed); 128x128
# layers: an update costs 7 ms against 16 ms at 256x256 on one thread, and 4 joints to a point is a small map;
# rewards of -1/0 need no scaling, and there is no push curriculum. 20 000 steps: twice what HER needed for every
# goal within 2 cm in docs/training_methods.md (the stand task's 3 million would run for days).
REACH_DEFAULTS: dict[str, Any] = {
    "algo": "sac", "total_timesteps": 20_000, "episode_s": 1.0, "eval_episode_s": 1.0, "eval_freq": 2_000,
    "eval_episodes": 20,
    "checkpoint_freq": 10_000, "curriculum_start": 1.0, "learning_starts": 1_000, "buffer_size": 200_000,
    "learning_rate": 1e-3,
    "net_arch": [128, 128], "gamma": 0.95, "log_std_init": 0.0, "normalize_reward": False, "n_envs": 1,
}


class TrainConfigError(ValueError):
    """A training setting is invalid; the message names the setting and the fix."""


class Algorithm(str, Enum):
    PPO = "ppo"
    SAC = "sac"
    TD3 = "td3"
    DDPG = "ddpg"
    A2C = "a2c"
    TQC = "tqc"  # sb3-contrib: SAC with truncated quantile critics
    CROSSQ = "crossq"  # sb3-contrib: SAC with batch-renormalized critics and no target networks
    PPO_LAG = "ppo-lag"  # PPO-Lagrangian (train/ppo_lagrangian.py): PPO under the safety costs' limits
    DQN = "dqn"  # on the discrete-action variant of the task (envs/discrete.py)
    REINFORCE = "reinforce"  # ours: train/reinforce.py

    @property
    def on_policy(self) -> bool:
        return self in (Algorithm.PPO, Algorithm.A2C, Algorithm.PPO_LAG, Algorithm.REINFORCE)

    @property
    def class_name(self) -> str:
        """The class in stable_baselines3 (or sb3_contrib: ``contrib``)."""
        return {"crossq": "CrossQ"}.get(self.value, self.name)

    @property
    def contrib(self) -> bool:
        return self in (Algorithm.TQC, Algorithm.CROSSQ)


def _divides(physics_rate_hz: float, robot_config: str) -> bool:
    """Whether the robot's policy rate divides ``physics_rate_hz`` (0, the robot's own rate, always does); the
    environments refuse other rates, but only in their worker processes, after the run directory exists."""
    if not physics_rate_hz > 0 or not math.isfinite(physics_rate_hz):
        return True
    from humanoid_rl.core.robot_spec import RobotSpec

    ratio = physics_rate_hz / RobotSpec.load(robot_config or None).policy_rate_hz
    return round(ratio) >= 1 and abs(ratio - round(ratio)) < 1e-9


def _policy_rate(robot_config: str) -> float:
    from humanoid_rl.core.robot_spec import RobotSpec

    return float(RobotSpec.load(robot_config or None).policy_rate_hz)


def _setting(default: Any, help: str, **kwargs: Any) -> Any:  # noqa: A002 - "help" as argparse spells it
    if isinstance(default, list | dict | tuple) and not isinstance(default, str):
        return field(default_factory=lambda: default, metadata={"help": help, **kwargs})
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass
class TrainConfig:
    """All settings of one training run. Defaults are the shipped stand policy's."""

    # ---- task and run
    task: str = _setting("stand", "task to train: 'stand' (HumanoidRL/Stand-v0), 'walk' (HumanoidRL/Walk-v0) or "
                         "'reach' (HumanoidRL/Reach-v0, goal-conditioned: sac, td3 or ddpg; its defaults are "
                         "REACH_DEFAULTS)")
    algo: str = _setting("ppo", "algorithm: ppo, sac, td3, ddpg, a2c (stable-baselines3), tqc, crossq "
                         "(sb3-contrib), ppo-lag (PPO-Lagrangian), dqn (on the task's discrete posture actions, "
                         "envs/discrete.py) or reinforce (train/reinforce.py)")
    total_timesteps: int = _setting(3_000_000, "environment steps (all envs together) to train for at most")
    time_budget_min: float = _setting(
        0.0, "wall-clock budget in minutes; training stops cleanly and saves when it is spent (0: no limit)"
    )
    n_envs: int = _setting(os.cpu_count() or 1, "parallel environments (1: in the learner's process)")
    n_processes: int = _setting(
        0, "worker processes that run the n_envs environments, several to a process (0: one per CPU core, at most "
        "n_envs): each policy step then costs one round trip and one batched policy call for all of them"
    )
    seed: int = _setting(0, "seed for the environments, the network initialisation and the evaluation episodes")
    run_root: str = _setting("runs", "directory under which the run directory <task>-<algo>-<timestamp> is made")
    run_name: str = _setting("", "run directory name (empty: <task>-<algo>-<timestamp>)")
    torch_threads: int = _setting(1, "torch CPU threads in the learner (1 leaves the cores to the simulators)")
    robot_config: str = _setting("", "robot YAML (empty: the shipped humanoid)")
    init_from: str = _setting(
        "", "fine-tune: start a new run from this checkpoint directory (e.g. runs/NAME/best), its weights and "
        "observation statistics; its steps and wall time count in this run's totals (empty: a fresh network). A "
        "checkpoint of another task (stand -> walk) gives the layers that fit; the new task's run counts from 0"
    )
    freeze_shared_steps: int = _setting(
        0, "with --init-from another task's checkpoint: hold the transferred weights still for this many steps "
        "while the new inputs' weights adapt (0: train everything from the start)"
    )

    # ---- environment
    episode_s: float = _setting(20.0, "training episode length in seconds (truncation)")
    # 500 Hz holds the PD stance as 1 kHz does (test_train_throughput); 250 Hz and below let the light joints'
    # explicit PD oscillate. Evaluation, `humanoid-rl sim` and the sim bridge always run the robot's 1 kHz.
    physics_rate_hz: float = _setting(
        0.0, "physics rate for training, a multiple of the policy rate (0: the robot's, 1 kHz, which evaluation "
        f"and deployment use; {FAST_PHYSICS_RATE_HZ:g}: the fast path, ~1.5x the steps per CPU second, check the "
        "policy at 1 kHz)"
    )
    backend: str = _setting(
        "pybullet", "physics engine for training: 'pybullet' (what eval, sim and deployment run) or 'mujoco' (~3x "
        "the policy steps per CPU second at 500 Hz; the policy must then pass its acceptance in PyBullet)"
    )
    randomize: bool = _setting(True, "domain randomization (masses, friction, gains, latency, noise)")
    sim_params: str = _setting(
        "", "fitted simulator parameters (`humanoid-rl sysid -o FILE`): the nominal values and the randomization's "
        "centres (empty: the URDF's)"
    )
    push_force_min_n: float = _setting(60.0, "smallest push force at full curriculum, newtons")
    push_force_max_n: float = _setting(120.0, "largest push force at full curriculum, newtons")
    push_interval_s: float = _setting(4.0, "seconds between pushes")
    push_duration_s: float = _setting(0.2, "seconds each push lasts")
    initial_joint_noise_rad: float = _setting(0.02, "uniform noise on the initial joint positions, radians")
    # Randomization ranges (at full curriculum; the curriculum level shrinks them towards nominal) that are off
    # by default: the deployed gains and gravity are known. Empty list: that quantity is not randomized.
    rand_gravity_z: list[float] = _setting([], "randomize vertical gravity in [LOW, HIGH] m/s^2, e.g. -10.3 -9.3")
    rand_gravity_tilt_rad: float = _setting(0.0, "randomize the gravity direction up to this tilt, radians")
    rand_kp_scale: list[float] = _setting([], "randomize each joint's PD stiffness by a factor in [LOW, HIGH]")
    rand_kd_scale: list[float] = _setting([], "randomize each joint's PD damping by a factor in [LOW, HIGH]")

    # ---- walk task (ignored by stand)
    cmd_vx_range: list[float] = _setting([-0.3, 0.8], "walk: forward velocity commands drawn in [LOW, HIGH], m/s")
    cmd_vy_range: list[float] = _setting([-0.3, 0.3], "walk: sideways velocity commands drawn in [LOW, HIGH], m/s")
    cmd_yaw_rate_range: list[float] = _setting([-0.8, 0.8], "walk: yaw-rate commands drawn in [LOW, HIGH], rad/s")
    cmd_still_probability: float = _setting(0.1, "walk: share of commands that are 'stand still'")
    cmd_resample_s: float = _setting(10.0, "walk: draw a new command every this many seconds (0: once per episode)")
    gait_period_s: float = _setting(0.7, "walk: gait cycle (the observation's clock and the contact schedule), s")

    # ---- reach task (ignored by the others)
    reach_threshold_m: float = _setting(0.05, "reach: success radius around the goal, metres (the sparse reward's 0)")

    # ---- curriculum
    curriculum_start: float = _setting(
        0.4, "initial curriculum level in [0, 1]: scales push forces and randomization ranges"
    )
    curriculum_step: float = _setting(0.15, "how much the level rises when the evaluation success rate passes")
    curriculum_threshold: float = _setting(
        0.8, "evaluation success rate (fraction of episodes without a fall) that raises the curriculum level"
    )

    # ---- evaluation and checkpoints
    eval_freq: int = _setting(25_000, "evaluate every this many environment steps (all envs together)")
    eval_episodes: int = _setting(4, "episodes per periodic evaluation (seeded, deterministic actions)")
    eval_episode_s: float = _setting(10.0, "length of a periodic-evaluation episode, seconds")
    checkpoint_freq: int = _setting(25_000, "save model + normalization stats every this many steps")
    stop_success_rate: float = _setting(
        0.0, "stop training once a periodic evaluation at level >= --stop-min-level reaches this success rate "
        "(0: never)"
    )
    stop_min_level: float = _setting(1.0, "curriculum level at which --stop-success-rate applies")

    # ---- normalization
    normalize_reward: bool = _setting(True, "VecNormalize also scales rewards (observations always are)")
    clip_obs: float = _setting(10.0, "clip normalized observations to +- this (also inside the exported graph)")

    # ---- algorithm hyper-parameters (those that do not apply to the chosen algorithm are ignored)
    learning_rate: float = _setting(1.5e-4, "optimizer learning rate")
    net_arch: list[int] = _setting([256, 128], "hidden layer sizes of the actor and the critic")
    gamma: float = _setting(0.99, "discount factor")
    n_steps: int = _setting(512, "PPO/A2C: steps per environment per rollout")
    batch_size: int = _setting(256, "minibatch size (PPO and off-policy)")
    n_epochs: int = _setting(5, "PPO: optimisation epochs per rollout")
    gae_lambda: float = _setting(0.95, "PPO/A2C: GAE lambda")
    clip_range: float = _setting(0.2, "PPO: policy clip range")
    ent_coef: float = _setting(0.0, "PPO/A2C: entropy bonus coefficient")
    vf_coef: float = _setting(0.5, "PPO/A2C: value loss coefficient")
    max_grad_norm: float = _setting(0.5, "PPO/A2C: gradient norm clip")
    target_kl: float = _setting(0.03, "PPO: stop an update's epochs early above this KL (0: never)")
    # Measured: zero-mean Gaussian actions with std 0.37 (log std -1) topple the PD-held robot within 1.5 s, 0.08
    # within 4 s now and then, 0.04 never: exploration must stay well below that for the robot to meet pushes.
    log_std_init: float = _setting(
        -3.0, "PPO/A2C/SAC: initial log std of the action noise (-3: std 0.05, i.e. 0.025 rad at scale 0.5)"
    )
    buffer_size: int = _setting(300_000, "off-policy: replay buffer size")
    learning_starts: int = _setting(5_000, "off-policy: random steps before learning starts")
    tau: float = _setting(0.005, "off-policy: target network soft-update rate")
    train_freq: int = _setting(1, "off-policy: steps between gradient updates")
    gradient_steps: int = _setting(
        1, "off-policy: gradient updates per update round (the update-to-data ratio is this / (train_freq * n_envs))"
    )
    action_noise_std: float = _setting(0.1, "TD3/DDPG: exploration noise std (fraction of the action range)")
    action_noise: str = _setting("normal", "TD3/DDPG: exploration noise, 'normal' or 'ou' (Ornstein-Uhlenbeck)")
    ou_theta: float = _setting(0.15, "TD3/DDPG with --action-noise ou: mean reversion rate per step")
    replay: str = _setting(
        "uniform", "SAC/TD3/DDPG/DQN: 'uniform' or 'prioritized' (proportional PER, train/replay.py); with --task "
        "reach also 'her' (hindsight experience replay, SB3's HerReplayBuffer, 'future' goals, 4 per transition)"
    )
    per_alpha: float = _setting(0.6, "prioritized replay: priority exponent alpha (0: uniform)")
    per_beta0: float = _setting(0.4, "prioritized replay: initial importance-sampling exponent, annealed to 1")
    per_eps: float = _setting(1e-6, "prioritized replay: added to |TD error| so no transition has priority 0")
    exploration_fraction: float = _setting(0.1, "DQN: share of the run over which epsilon falls to its final value")
    exploration_final_eps: float = _setting(0.02, "DQN: final epsilon of epsilon-greedy exploration")

    reward: list[str] = _setting(
        [], "reward weights and shapes over the task's defaults, NAME=VALUE ... (e.g. joint_limits=5 "
        "soft_joint_limit=0.8; the names are RewardConfig's fields in envs/rewards.py)"
    )

    mirror_loss: float = _setting(
        0.0, "PPO: weight of the left-right mirror loss |pi(mirror(s)) - mirror(pi(s))|^2 (train/symmetry.py; "
        "needs ent_coef > 0); 0: off"
    )

    # ---- constrained RL and safe exploration (train/safety.py, train/ppo_lagrangian.py)
    shield_in_loop: bool = _setting(
        False, "run the deployed safety shield (config/sim.yaml thresholds) between the policy and the motors in "
        "training and periodic evaluation; the learner is trained on its raw actions"
    )
    cost_limits: list[float] = _setting(
        list(DEFAULT_COST_LIMITS), "ppo-lag: allowed mean steps per episode of each cost: shield_intervention, "
        "joint_limit, effort, tilt"
    )
    multiplier_lr: float = _setting(0.01, "ppo-lag: dual-ascent step of the multipliers per unit of excess cost")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        problems: list[str] = []
        if self.task not in TASKS:
            problems.append(f"task = {self.task!r}: use one of {list(TASKS)}")
        if self.backend not in ("pybullet", "mujoco"):
            problems.append(f"backend = {self.backend!r}: use 'pybullet' or 'mujoco'")
        if self.algo not in {a.value for a in Algorithm}:
            problems.append(f"algo = {self.algo!r}: use one of {[a.value for a in Algorithm]}")
        for name in ("total_timesteps", "n_envs", "eval_freq", "eval_episodes", "checkpoint_freq", "n_steps",
                     "batch_size", "n_epochs", "torch_threads", "buffer_size", "train_freq", "gradient_steps"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} = {getattr(self, name)!r}: use a positive integer")
        if int(self.n_processes) < 0:
            problems.append(f"n_processes = {self.n_processes!r}: use a count of processes, or 0 for one per core")
        for name in ("curriculum_start", "curriculum_threshold"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                problems.append(f"{name} = {getattr(self, name)!r}: use a fraction in [0, 1]")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                problems.append(f"{f.name} = {value!r}: use a finite number")
        if self.learning_rate <= 0.0:
            problems.append(f"learning_rate = {self.learning_rate!r}: use a rate > 0")
        if math.isfinite(self.gamma) and not 0.0 < self.gamma <= 1.0:
            problems.append(f"gamma = {self.gamma!r}: use a discount factor in (0, 1]")
        if int(self.seed) < 0:  # numpy and gymnasium refuse negative seeds, in every worker
            problems.append(f"seed = {self.seed!r}: use an integer >= 0")
        if not (math.isfinite(self.physics_rate_hz) and self.physics_rate_hz >= 0) or not _divides(
            self.physics_rate_hz, self.robot_config
        ):
            problems.append(f"physics_rate_hz = {self.physics_rate_hz!r}: use a rate in Hz that the policy rate "
                            f"divides (e.g. {FAST_PHYSICS_RATE_HZ:g}), or 0 for the robot's")
        if int(self.freeze_shared_steps) < 0:
            problems.append(f"freeze_shared_steps = {self.freeze_shared_steps!r}: use steps >= 0")
        elif self.freeze_shared_steps and not self.init_from:
            problems.append("freeze_shared_steps needs init_from (the checkpoint whose layers it holds still)")
        if self.sim_params and not Path(self.sim_params).is_file():
            problems.append(f"sim_params = {self.sim_params!r}: no such file (write one with `humanoid-rl sysid`)")
        if self.sim_params and self.backend == "mujoco":
            problems.append("sim_params: fitted parameters apply to the pybullet backend only")
        if self.time_budget_min < 0:
            problems.append(f"time_budget_min = {self.time_budget_min!r}: use minutes >= 0 (0: no limit)")
        if not 0.0 <= self.push_force_min_n <= self.push_force_max_n:
            problems.append(
                f"push_force_min_n/max_n = {self.push_force_min_n}/{self.push_force_max_n}: use 0 <= min <= max"
            )
        for name in ("cmd_vx_range", "cmd_vy_range", "cmd_yaw_rate_range"):
            value = getattr(self, name)
            if len(value) != 2 or not all(math.isfinite(v) for v in value) or value[0] > value[1]:
                problems.append(f"{name} = {value!r}: give two finite numbers LOW HIGH with LOW <= HIGH")
        if not 0.0 <= self.cmd_still_probability <= 1.0:
            problems.append(f"cmd_still_probability = {self.cmd_still_probability!r}: use a fraction in [0, 1]")
        if self.cmd_resample_s < 0:
            problems.append(f"cmd_resample_s = {self.cmd_resample_s!r}: use seconds >= 0 (0: once per episode)")
        if not self.reach_threshold_m > 0:
            problems.append(f"reach_threshold_m = {self.reach_threshold_m!r}: use a radius in metres > 0")
        if not self.gait_period_s > 0:
            problems.append(f"gait_period_s = {self.gait_period_s!r}: use a period in seconds > 0")
        problems += self._toolbox_problems()
        if self.reward and self.task == "reach":
            problems.append("reward: the reach task's reward is sparse, with nothing to weigh (its radius is "
                            "reach_threshold_m)")
        try:
            self.reward_config()
        except ValueError as exc:
            problems.append(str(exc))
        if not self.net_arch or any(int(n) < 1 for n in self.net_arch):
            problems.append(f"net_arch = {self.net_arch!r}: use one or more positive layer sizes")
        limits = self.cost_limits
        if len(limits) != len(DEFAULT_COST_LIMITS) or not all(math.isfinite(c) and c >= 0 for c in limits):
            problems.append(f"cost_limits = {self.cost_limits!r}: give four limits >= 0 (shield_intervention, "
                            "joint_limit, effort, tilt)")
        if self.mirror_loss < 0:
            problems.append(f"mirror_loss = {self.mirror_loss!r}: use a weight >= 0 (0: off)")
        elif self.mirror_loss > 0 and (self.algo not in ("ppo", "ppo-lag") or self.ent_coef <= 0):
            problems.append(f"mirror_loss with algo = {self.algo!r} and ent_coef = {self.ent_coef!r}: the mirror loss "
                            "extends PPO and rides on its entropy term; use --algo ppo with --ent-coef > 0")
        if self.multiplier_lr < 0:
            problems.append(f"multiplier_lr = {self.multiplier_lr!r}: use a step >= 0")
        if problems:
            raise TrainConfigError("invalid training configuration: " + "; ".join(problems))

    def worker_processes(self, n_envs: int) -> int:
        """How many processes run ``n_envs`` environments: ``n_processes``, or one per CPU core; never more than
        there are environments."""
        return max(1, min(n_envs, int(self.n_processes) or os.cpu_count() or 1))

    def reward_config(self) -> Any:
        """The task's reward weights with ``reward``'s settings applied."""
        from humanoid_rl.envs.rewards import RewardConfig

        return RewardConfig.for_task(self.task == "walk").with_settings(self.reward)

    def _toolbox_problems(self) -> list[str]:
        problems = []
        goal_algos = ("sac", "td3", "ddpg")  # off-policy learners whose actor the export extracts from a Dict input
        if self.task == "reach" and self.algo not in goal_algos:
            problems.append(f"task = 'reach' with algo = {self.algo!r}: the goal-conditioned task trains with "
                            f"{', '.join(goal_algos)}")
        if self.replay == "her" and self.task != "reach":
            problems.append(f"replay = 'her' with task = {self.task!r}: hindsight replay needs a goal-conditioned "
                            "task; use --task reach")
        elif self.replay == "her" and self.algo not in goal_algos:
            problems.append(f"replay = 'her' with algo = {self.algo!r}: use {', '.join(goal_algos)}")
        if self.replay == "her" and self.learning_starts <= self.episode_s * _policy_rate(self.robot_config):
            problems.append(f"replay = 'her' with learning_starts = {self.learning_starts}: HER samples only from "
                            f"finished episodes; start learning after the first one (episode_s {self.episode_s:g} s)")
        if self.replay == "prioritized" and self.task == "reach":
            problems.append("replay = 'prioritized' with task = 'reach': prioritized replay stores flat "
                            "observations; use --replay her or uniform")
        if self.replay not in REPLAYS:
            problems.append(f"replay = {self.replay!r}: use one of {list(REPLAYS)}")
        elif self.replay == "prioritized" and self.algo not in ("sac", "td3", "ddpg", "dqn"):
            problems.append(f"replay = 'prioritized' with algo = {self.algo!r}: prioritized replay extends sac, td3, "
                            "ddpg and dqn (on-policy algorithms have no replay buffer; tqc and crossq keep theirs)")
        if not (self.per_alpha >= 0 and 0 <= self.per_beta0 <= 1 and self.per_eps > 0):
            problems.append(f"per_alpha/per_beta0/per_eps = {self.per_alpha}/{self.per_beta0}/{self.per_eps}: use "
                            "alpha >= 0, beta0 in [0, 1], eps > 0")
        if self.action_noise not in ("normal", "ou"):
            problems.append(f"action_noise = {self.action_noise!r}: use 'normal' or 'ou'")
        for name in ("stop_success_rate", "stop_min_level", "exploration_fraction", "exploration_final_eps"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                problems.append(f"{name} = {getattr(self, name)!r}: use a fraction in [0, 1]")
        for name in ("rand_gravity_z", "rand_kp_scale", "rand_kd_scale"):
            value = getattr(self, name)
            if value and (len(value) != 2 or not all(math.isfinite(v) for v in value) or value[0] > value[1]):
                problems.append(f"{name} = {value!r}: give two finite numbers LOW HIGH with LOW <= HIGH")
        return problems

    @property
    def algorithm(self) -> Algorithm:
        return Algorithm(self.algo)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainConfigError(
                f"{source}: unknown training settings {unknown}. Fix: remove them; known settings are "
                f"listed by `humanoid-rl train --help`"
            )
        return cls(**data)

    @classmethod
    def load_yaml(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config {path} does not exist")
        from humanoid_rl.cli_args import yaml_error_line

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise TrainConfigError(f"{path}: not valid YAML ({yaml_error_line(exc)})") from None
        if not isinstance(data, dict):
            raise TrainConfigError(f"{path}: expected a mapping of setting: value, got {type(data).__name__}")
        return cls.from_dict(data, source=str(path))


CHOICES = {"replay": list(REPLAYS), "action_noise": ["normal", "ou"], "task": list(TASKS)}


def _option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def add_config_arguments(parser: argparse.ArgumentParser, cls: type = TrainConfig) -> None:
    """One option per dataclass field; every default is None so that only what the user typed overrides."""
    group = parser.add_argument_group("training settings (also in the run's config.yaml)")
    defaults = cls.__new__(cls)  # the defaults without validation side effects
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        setattr(defaults, f.name, default)
        hint = _field_type(cls, f.name)
        help_text = f"{f.metadata['help']} (default: {default})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text}
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) in (list, tuple) or isinstance(hint, types.GenericAlias):
            (item_type, *_) = typing.get_args(hint)
            kwargs.update(nargs="+", type=item_type, metavar="NAME=VALUE" if f.name == "reward" else "N")
        else:
            kwargs["type"] = hint
            if f.name == "algo":
                kwargs["choices"] = [a.value for a in Algorithm]
            elif f.name == "backend":
                kwargs["choices"] = ["pybullet", "mujoco"]
            elif f.name in CHOICES:
                kwargs["choices"] = CHOICES[f.name]
        group.add_argument(_option_name(f.name), **kwargs)


def config_overrides(args: argparse.Namespace, cls: type = TrainConfig) -> dict[str, Any]:
    """The settings the user gave on the command line."""
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if getattr(args, f.name, None) is not None
    }


def config_from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """``base`` (or the defaults) with the command-line settings applied, validated."""
    overrides = config_overrides(args)
    if base is None:
        base = TrainConfig(**REACH_DEFAULTS, task="reach") if overrides.get("task") == "reach" else TrainConfig()
    data = base.to_dict()
    data.update(overrides)
    return TrainConfig.from_dict(data, source="command line")
