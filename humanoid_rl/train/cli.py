"""``humanoid-rl train``: train a stand or walk policy with stable-baselines3.

A run lives in ``runs/<task>-<algo>-<timestamp>/``: ``config.yaml`` (every setting), ``tb/`` (TensorBoard:
SB3's losses, ``reward_terms/*``, ``eval/*``, ``curriculum/level``), ``checkpoints/step_<N>/``, ``best/``
(best periodic evaluation), ``final/`` (end of training, time budget, or Ctrl-C), ``metrics.json`` and
``latest.json`` (the checkpoint ``--resume`` continues from). ``--task reach`` trains the goal-conditioned task
(Dict observation; ``--replay her`` for hindsight replay), see ``train/goal.py``. Export a run with
``humanoid-rl export RUN_DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from humanoid_rl.train.config import Algorithm, TrainConfig, add_config_arguments, config_from_args

__all__ = ["ENV_IDS", "add_arguments", "build_model", "env_config", "hyperparameters", "load_checkpoint",
           "make_vec_env", "run", "train"]

ENV_IDS = {"stand": "HumanoidRL/Stand-v0", "walk": "HumanoidRL/Walk-v0", "reach": "HumanoidRL/Reach-v0"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file of training settings (command-line options win)")
    parser.add_argument(
        "--resume", type=Path, metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its latest checkpoint, with its config.yaml (options given here "
        "override it, e.g. --time-budget-min or --total-timesteps)",
    )
    add_config_arguments(parser)


def env_config(config: TrainConfig, *, episode_s: float | None = None, curriculum_level: float | None = None) -> Any:
    """The ``EnvConfig`` of a training (or periodic-evaluation) environment (``ReachConfig`` for reach)."""
    if config.task == "reach":
        from humanoid_rl.train.goal import reach_env_config

        return reach_env_config(config, episode_s)
    from humanoid_rl.envs.commands import CommandConfig
    from humanoid_rl.envs.gait import GaitConfig
    from humanoid_rl.envs.humanoid_env import EnvConfig
    from humanoid_rl.envs.pushes import PushConfig

    return EnvConfig(
        commands=CommandConfig(
            vx_range_mps=tuple(config.cmd_vx_range),
            vy_range_mps=tuple(config.cmd_vy_range),
            yaw_rate_range_rps=tuple(config.cmd_yaw_rate_range),
            still_probability=config.cmd_still_probability,
            resample_interval_s=config.cmd_resample_s or None,
        ),
        gait=GaitConfig(period_s=config.gait_period_s),
        robot_config=config.robot_config or None,
        episode_length_s=episode_s if episode_s is not None else config.episode_s,
        physics_rate_hz=config.physics_rate_hz or None,
        backend=config.backend,
        randomize=config.randomize,
        sim_params=config.sim_params or None,
        randomization=randomization_ranges(config),
        push=PushConfig(
            interval_s=config.push_interval_s,
            force_range_n=(config.push_force_min_n, config.push_force_max_n),
            duration_s=config.push_duration_s,
        ),
        curriculum_level=config.curriculum_start if curriculum_level is None else curriculum_level,
        initial_joint_noise_rad=config.initial_joint_noise_rad,
        rewards=config.reward_config(),
    )


def randomization_ranges(config: TrainConfig) -> Any:
    """The default ranges plus the gravity and PD-gain ranges the config turns on."""
    from humanoid_rl.sim.randomization import DomainRandomization

    ranges: dict[str, Any] = {"gravity_tilt_rad": config.rand_gravity_tilt_rad}
    for name in ("gravity_z", "kp_scale", "kd_scale"):
        if getattr(config, f"rand_{name}"):
            ranges[name] = tuple(getattr(config, f"rand_{name}"))
    return DomainRandomization(**ranges)


def _make_env(env_id: str, env_cfg: Any, costs: bool = False, shield_in_loop: bool = False) -> Any:
    import gymnasium

    import humanoid_rl.envs  # noqa: F401 - registers the ids (also in subprocesses)

    env = gymnasium.make(env_id, config=env_cfg)
    if costs or shield_in_loop:  # info["costs"], and the deployed shield between action and motors if asked
        from humanoid_rl.train.safety import SafetyWrapper

        env = SafetyWrapper(env, shield_in_loop=shield_in_loop)
    return env


def make_vec_env(config: TrainConfig, n_envs: int, env_cfg: Any) -> Any:
    """``n_envs`` environments in ``config.worker_processes(n_envs)`` worker processes (in-process for one env) +
    VecMonitor + VecCheckNan (raises, naming the source)."""
    from functools import partial

    from stable_baselines3.common.vec_env import DummyVecEnv, VecCheckNan, VecMonitor

    from humanoid_rl.train.algorithms import task_env_id
    from humanoid_rl.train.vec_env import BatchedSubprocVecEnv

    costs = config.algorithm is Algorithm.PPO_LAG
    factories = [partial(_make_env, task_env_id(config), env_cfg, costs, config.shield_in_loop)
                 for _ in range(n_envs)]
    venv = DummyVecEnv(factories) if n_envs == 1 else BatchedSubprocVecEnv(factories, config.worker_processes(n_envs))
    return VecCheckNan(VecMonitor(venv), raise_exception=True)


def hyperparameters(config: TrainConfig, n_envs: int) -> dict[str, Any]:
    """The learner's settings from ``config`` (one place): what a fresh model is built with, and what a loaded
    checkpoint is set to when a run resumes or fine-tunes (else it would silently keep the checkpoint's own)."""
    algo = config.algorithm
    settings: dict[str, Any] = {"learning_rate": config.learning_rate, "gamma": config.gamma}
    if algo.on_policy:
        settings.update(n_steps=config.n_steps, gae_lambda=config.gae_lambda, ent_coef=config.ent_coef,
                        vf_coef=config.vf_coef, max_grad_norm=config.max_grad_norm)
        if algo in (Algorithm.PPO, Algorithm.PPO_LAG):
            settings.update(batch_size=min(config.batch_size, config.n_steps * n_envs), n_epochs=config.n_epochs,
                            clip_range=config.clip_range, target_kl=config.target_kl or None)
        return settings
    settings.update(batch_size=config.batch_size, gradient_steps=config.gradient_steps)
    if algo is not Algorithm.CROSSQ:  # no target networks: nothing to soft-update
        settings["tau"] = config.tau
    return settings


def build_model(config: TrainConfig, env: Any, tensorboard_dir: Path | None) -> Any:
    """A fresh SB3 model of ``config.algo`` with the configured hyper-parameters."""
    from stable_baselines3 import A2C, PPO

    from humanoid_rl.train.algorithms import algorithm_class, build_dqn, off_policy_extras

    algo = config.algorithm
    arch = [int(n) for n in config.net_arch]
    settings = hyperparameters(config, env.num_envs)
    common: dict[str, Any] = {
        "seed": config.seed,
        "device": "cpu",
        "verbose": 0,
        "tensorboard_log": str(tensorboard_dir) if tensorboard_dir else None,
    }
    if algo.on_policy:
        policy_kwargs = {"net_arch": {"pi": arch, "vf": arch}, "log_std_init": config.log_std_init}
        if algo in (Algorithm.PPO, Algorithm.PPO_LAG):
            cls, lagrangian = PPO, {}
            if algo is Algorithm.PPO_LAG:
                cls, lagrangian = algorithm_class(algo.value), {
                    "cost_limits": config.cost_limits, "cost_net_arch": arch, "multiplier_lr": config.multiplier_lr}
            return cls("MlpPolicy", env, policy_kwargs=policy_kwargs, **lagrangian, **settings, **common)
        return (A2C if algo is Algorithm.A2C else algorithm_class(algo.value))(
            "MlpPolicy", env, policy_kwargs=policy_kwargs, **settings, **common)
    off_policy: dict[str, Any] = {
        **settings,
        "buffer_size": config.buffer_size,
        "learning_starts": config.learning_starts,
        "train_freq": config.train_freq,
    }
    if algo is Algorithm.DQN:
        return build_dqn(config, env, off_policy, common)
    cls = algorithm_class(algo.value, config.replay)
    policy, policy_kwargs, extras = "MlpPolicy", {"net_arch": arch}, off_policy_extras(config, env)
    if config.task == "reach":  # Dict observation, and HER's buffer if asked (train/goal.py)
        from humanoid_rl.train.goal import goal_model_kwargs

        policy, goal_policy_kwargs, goal_extras = goal_model_kwargs(config)
        policy_kwargs.update(goal_policy_kwargs)
        extras.update(goal_extras)
    if algo in (Algorithm.SAC, Algorithm.TQC, Algorithm.CROSSQ):
        policy_kwargs["log_std_init"] = config.log_std_init
    return cls(policy, env, policy_kwargs=policy_kwargs, **off_policy, **extras, **common)


def _changed_settings(checkpoint: Path, settings: dict[str, Any]) -> str:
    """``name old -> new`` for each of ``settings`` that differs from what the checkpoint was saved with ('' if
    none), so that a fine-tune under other settings says so."""
    from stable_baselines3.common.save_util import load_from_zip_file

    from humanoid_rl.train.callbacks import MODEL_FILE

    try:
        saved, _, _ = load_from_zip_file(checkpoint / MODEL_FILE, device="cpu", print_system_info=False)
    except Exception:  # noqa: BLE001 - only for the message: the load itself reports a broken file
        return ""
    changes = []
    for name, value in settings.items():
        old = saved.get(name)
        old = old(1.0) if callable(old) else old  # schedules (clip range): their value now
        if isinstance(old, int | float) and isinstance(value, int | float) and float(old) != float(value):
            changes.append(f"{name} {old:g} -> {value:g}")
        elif (old is None) != (value is None):
            changes.append(f"{name} {old} -> {value}")
    return ", ".join(changes)


def load_checkpoint(directory: Path, algo: str, env: Any | None = None, settings: dict[str, Any] | None = None,
                    replay: str = "uniform") -> Any:
    """The SB3 model saved in ``directory``; ``settings`` (``hyperparameters(config)``) replace the saved ones, so a
    run continued or fine-tuned trains as its config says, not silently as the checkpoint did."""
    from humanoid_rl.train.algorithms import algorithm_class
    from humanoid_rl.train.callbacks import MODEL_FILE
    from humanoid_rl.train.goal import load_kwargs

    custom = {**(settings or {}), **load_kwargs(replay, env)}
    return algorithm_class(algo, replay).load(directory / MODEL_FILE, env=env, device="cpu", custom_objects=custom)


def _fine_tune_source_info(config: TrainConfig) -> dict[str, Any]:
    """info.json of the checkpoint ``config.init_from`` names, checked against the run's task and algo, with
    ``transfer``: whether its layers must be mapped (another task or observation layout) rather than loaded."""
    from humanoid_rl.cli import CommandError
    from humanoid_rl.train.callbacks import CHECKPOINT_INFO, METRICS_FILE, MODEL_FILE, VECNORMALIZE_FILE
    from humanoid_rl.train.export import resolve_checkpoint

    source = Path(config.init_from)
    missing = [name for name in (MODEL_FILE, VECNORMALIZE_FILE, CHECKPOINT_INFO) if not (source / name).is_file()]
    if missing:
        raise CommandError(f"--init-from {source}: no {', '.join(missing)} there. Fix: pass a checkpoint directory "
                           "of a run, e.g. runs/NAME/best or runs/NAME/checkpoints/step_N")
    checkpoint = resolve_checkpoint(source)  # finds the run directory the checkpoint belongs to, as export does
    info = dict(checkpoint.info)
    if info.get("algo") != config.algo:  # another task is fine: train/transfer.py maps what fits
        raise CommandError(f"--init-from {source}: that checkpoint's algo is {info.get('algo')!r}, this run's is "
                           f"{config.algo!r}. Fix: pass --algo {info.get('algo')} or another checkpoint")
    info["run_dir"] = checkpoint.run_dir
    from humanoid_rl.train.transfer import needs_transfer

    # Another task, or the same task with another observation layout: a fresh network, steps from 0.
    info["transfer"] = needs_transfer(source, info, config)
    if config.freeze_shared_steps and not info["transfer"]:
        raise CommandError(f"--freeze-shared-steps: the checkpoint {source} has this run's task and observation "
                           "layout, so every layer is shared and nothing would train. Fix: leave it out, or "
                           "--init-from another task's")
    # The commands that trained the source, with this run's own, are the policy's whole recipe.
    metrics = checkpoint.run_dir / METRICS_FILE if checkpoint.run_dir is not None else None
    if metrics is not None and metrics.is_file():
        info["commands"] = json.loads(metrics.read_text(encoding="utf-8")).get("commands", [])
    return info


def _new_run_dir(config: TrainConfig) -> Path:
    from humanoid_rl.cli_args import prepare_run_dir

    root = Path(config.run_root)
    named = root / config.run_name if config.run_name else None
    return prepare_run_dir(named, root, f"{config.task}-{config.algo}",
                           refuse_fix=f"choose another --run-name, or continue it with --resume {named}").path


def check_before_start(config: TrainConfig, resume: Path | None) -> list[str]:
    """What would otherwise fail in every worker, or after the run folder exists, refused in one line here
    (robot config, a run to resume without a checkpoint); returns warnings about settings that waste the run."""
    from humanoid_rl.cli import CommandError
    from humanoid_rl.core.robot_spec import RobotSpec
    from humanoid_rl.train.algorithms import schedule_warnings, task_env_id
    from humanoid_rl.train.callbacks import LATEST_FILE

    RobotSpec.load(config.robot_config or None)
    try:  # the settings every worker's environment is built from, tried once here (episode, pushes, rates)
        env_config(config, episode_s=config.eval_episode_s)
        env = _make_env(task_env_id(config), env_config(config))
        try:
            if config.mirror_loss > 0:  # a one-sided term (reach's goal) or an asymmetric robot has no mirror
                from humanoid_rl.train.symmetry import MirrorMap

                MirrorMap(env.unwrapped.contract, RobotSpec.load(config.robot_config or None))
        finally:
            env.close()
    except ValueError as exc:
        raise CommandError(f"invalid training configuration: {exc}") from None
    if resume is not None and not (resume / LATEST_FILE).is_file():
        raise CommandError(f"--resume {resume}: no {LATEST_FILE} there, so no checkpoint to continue from (the run "
                           f"stopped before its first one). Fix: remove {resume} and start the run again")
    warnings = []
    if not config.algorithm.on_policy and config.total_timesteps <= config.learning_starts:
        warnings.append(f"--total-timesteps {config.total_timesteps} is not above --learning-starts "
                        f"{config.learning_starts}: {config.algo} only takes random actions and never learns")
    if config.total_timesteps < config.eval_freq:
        warnings.append(f"--total-timesteps {config.total_timesteps} is below --eval-freq {config.eval_freq}: no "
                        "periodic evaluation runs, so there is no best/ checkpoint and no success rate")
    return warnings + schedule_warnings(config)


def _norm_obs_keys(config: TrainConfig) -> list[str] | None:
    """The Dict observation's keys to normalize (the networks' inputs; HER needs achieved_goal raw); None: a flat
    observation, normalized whole."""
    from humanoid_rl.train.goal import NETWORK_KEYS, is_goal_task

    return list(NETWORK_KEYS) if is_goal_task(config.task) else None


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM both raise KeyboardInterrupt, which saves ``final/``.

    A run started in the background (``nohup ... &``) inherits SIGINT ignored, and ``kill`` sends SIGTERM,
    which would otherwise end the process without a checkpoint.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def train(
    config: TrainConfig, resume: Path | None = None, on_evaluation: Callable[[dict[str, Any]], bool] | None = None
) -> dict[str, Any]:
    """Train (or continue) a run; returns the final metrics. KeyboardInterrupt saves ``final/`` and re-raises.
    ``on_evaluation`` sees each periodic evaluation and returns False to stop the run there (a sweep's pruning)."""
    import torch
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.vec_env import VecNormalize

    from humanoid_rl.train.algorithms import load_replay_buffer, task_env_id
    from humanoid_rl.train.callbacks import (
        LATEST_FILE,
        VECNORMALIZE_FILE,
        CheckpointCallback,
        EvalCurriculumCallback,
        ProgressCallback,
        RewardTermsCallback,
        RunState,
        TimeBudgetCallback,
        plot_training_curve,
        save_checkpoint,
    )

    torch.set_num_threads(config.torch_threads)
    _interrupt_on_signals()
    if resume is not None:
        run_dir = resume
        latest = json.loads((run_dir / LATEST_FILE).read_text(encoding="utf-8"))
        level = float(latest["curriculum_level"])
        metrics_path = run_dir / "metrics.json"
        previous = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else {}
        earlier = previous.get("commands") or ([previous["command"]] if "command" in previous else [])
        state = RunState(run_dir, config.task, config.algo, config.seed, level,
                         wall_time_before_s=float(latest.get("wall_time_s", 0.0)),
                         evaluations=list(previous.get("evaluations", [])), best=previous.get("best"),
                         commands=[*earlier, list(sys.argv)])
        transfer = False  # a resumed transfer run holds its own weights and statistics
    else:
        source_info = _fine_tune_source_info(config) if config.init_from else {}
        transfer = bool(source_info.get("transfer"))
        run_dir = _new_run_dir(config)
        state = RunState(run_dir, config.task, config.algo, config.seed, config.curriculum_start,
                         wall_time_before_s=0.0 if transfer else float(source_info.get("wall_time_s", 0.0)),
                         commands=[*source_info.get("commands", []), list(sys.argv)])
    config.save_yaml(run_dir / "config.yaml")

    env = make_vec_env(config, config.n_envs, env_config(config, curriculum_level=state.curriculum_level))
    state.contract = env.env_method("contract_dict", indices=0)[0]  # plain data: workers cannot pickle the contract
    eval_env = make_vec_env(config, 1, env_config(config, episode_s=config.eval_episode_s,
                                                  curriculum_level=state.curriculum_level))
    eval_env = VecNormalize(eval_env, training=False, norm_obs=True, norm_reward=False, clip_obs=config.clip_obs,
                            norm_obs_keys=_norm_obs_keys(config))
    masks: dict[str, Any] = {}
    if resume is not None or (config.init_from and not transfer):
        checkpoint = run_dir / latest["checkpoint"] if resume is not None else Path(config.init_from)
        env = VecNormalize.load(str(checkpoint / VECNORMALIZE_FILE), env)
        env.training = True
        settings = hyperparameters(config, env.num_envs)
        changed = _changed_settings(checkpoint, settings)
        model = load_checkpoint(checkpoint, config.algo, env, settings=settings, replay=config.replay)
        verb = "resuming" if resume is not None else "fine-tuning into"
        if changed:
            print(f"this run's settings replace the checkpoint's: {changed}", flush=True)
        replayed = resume is not None and load_replay_buffer(model, checkpoint)
        print(f"{verb} {run_dir} from {checkpoint} at {model.num_timesteps} steps, level {state.curriculum_level}"
              + (f", replay buffer of {model.replay_buffer.size() * env.num_envs} transitions" if replayed else ""),
              flush=True)
    else:
        env = VecNormalize(env, norm_obs=True, norm_reward=config.normalize_reward and config.task != "reach",
                           clip_obs=config.clip_obs, gamma=config.gamma, norm_obs_keys=_norm_obs_keys(config))
        model = build_model(config, env, run_dir / "tb")
        if transfer:
            from humanoid_rl.train.transfer import transfer_from_checkpoint

            masks = transfer_from_checkpoint(model, env, Path(config.init_from), config, source_info)
    model.tensorboard_log = str(run_dir / "tb")
    state.start_steps = int(model.num_timesteps)
    if config.mirror_loss > 0:  # not saved with the model: installed again on every start and resume
        from humanoid_rl.core.contract_io import contract_from_dict
        from humanoid_rl.core.robot_spec import RobotSpec
        from humanoid_rl.train.symmetry import MirrorMap, install_mirror_loss

        mirror = MirrorMap(contract_from_dict(state.contract), RobotSpec.load(config.robot_config or None))
        install_mirror_loss(model, mirror, config.mirror_loss, env.obs_rms, env.epsilon, config.clip_obs)

    def set_level(level: float) -> None:
        env.env_method("set_curriculum", level)

    budget_s = config.time_budget_min * 60.0
    budget = TimeBudgetCallback(budget_s)
    evaluation = EvalCurriculumCallback(
        eval_env, state, eval_freq=config.eval_freq, n_episodes=config.eval_episodes, seed=config.seed + 10_000,
        threshold=config.curriculum_threshold, level_step=config.curriculum_step, on_level_change=set_level,
        on_evaluation=on_evaluation, stop_success_rate=config.stop_success_rate, stop_min_level=config.stop_min_level)
    callback_list = [
        RewardTermsCallback(min_steps_per_record=min(1000, config.n_steps * config.n_envs)),
        evaluation,
        CheckpointCallback(state, config.checkpoint_freq),
        ProgressCallback(config.total_timesteps, budget_s, state),
        budget,
    ]
    if masks and config.freeze_shared_steps:
        from humanoid_rl.train.transfer import FreezeSharedCallback

        callback_list.append(FreezeSharedCallback(masks, config.freeze_shared_steps))
    callbacks = CallbackList(callback_list)
    print(f"training {config.algo} on {task_env_id(config)} with {config.n_envs} envs into {run_dir}", flush=True)
    remaining = max(0, config.total_timesteps - int(model.num_timesteps))
    try:
        # A fine-tuned run keeps counting from its source's steps: the totals it reports are the policy's.
        model.learn(total_timesteps=remaining, callback=callbacks,
                    reset_num_timesteps=resume is None and not config.init_from,
                    tb_log_name="run", progress_bar=False)
        state.status = ("time_budget" if budget.exhausted else "stopped" if evaluation.stopped else
                        "success_threshold" if evaluation.stopped_at_threshold else "finished")
    except KeyboardInterrupt:
        state.status = "interrupted"
        save_checkpoint(model, run_dir / "final", state, {"status": state.status})
        state.write_metrics(int(model.num_timesteps))
        plot_training_curve(state, run_dir / "training_curve.png")
        print(f"\ninterrupted: saved {run_dir / 'final'} at {model.num_timesteps} steps", file=sys.stderr, flush=True)
        raise
    finally:
        for vec in (env, eval_env):
            try:
                vec.close()
            except Exception:  # noqa: BLE001 - subprocesses may already be gone after Ctrl-C
                pass
    save_checkpoint(model, run_dir / "final", state, {"status": state.status})
    state.write_metrics(int(model.num_timesteps))
    curve = plot_training_curve(state, run_dir / "training_curve.png")
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    print(f"done ({state.status}): {model.num_timesteps} steps in {state.wall_time_s / 60:.1f} min; "
          f"run {run_dir}; export with: humanoid-rl export {run_dir} -o models/<name>.onnx", flush=True)
    print(("training curve: " + str(curve) + "; " if curve else "") + "TensorBoard (each reward term): "
          f"tensorboard --logdir {run_dir / 'tb'}", flush=True)
    return metrics


def run(args: argparse.Namespace) -> int:
    from humanoid_rl.train.config import TrainConfig as Config

    if args.resume is not None:
        config_path = args.resume / "config.yaml"
        if not config_path.is_file():
            raise FileNotFoundError(f"--resume {args.resume}: no config.yaml there; pass a run directory made by "
                                    "`humanoid-rl train`")
        base = Config.load_yaml(config_path)
    elif args.config is not None:
        base = Config.load_yaml(args.config)
    else:
        base = None
    config = config_from_args(args, base)
    for warning in check_before_start(config, args.resume):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    started = time.monotonic()
    train(config, resume=args.resume)
    print(f"wall time {time.monotonic() - started:.0f} s", flush=True)
    return 0
