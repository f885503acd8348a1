"""``humanoid-rl export``: a trained checkpoint → ``models/NAME.onnx`` the policy node can load.

The graph is the deterministic actor (the mean action) with the VecNormalize observation normalization inside
it: ``obs`` (raw contract observation, float32 ``[batch, n_obs]``) → ``clip((obs - mean) / sqrt(var + eps),
±clip_obs)`` → MLP → ``actions`` (``[batch, n_actions]``, clipped/scaled to the action space exactly as
stable-baselines3's ``predict`` does). A DQN's graph ends in the argmax over its Q-values and a constant table
(``envs.discrete.posture_table``) that maps the chosen discrete action to the contract's continuous action, so the
policy node runs it like any other model. The file's metadata (``write_model_metadata``) holds the contract of the
environment the policy was trained in, (obs, action) pairs recorded from evaluation rollouts, and a training
summary. Export fails unless PyTorch and ONNX Runtime agree to ``PARITY_TOLERANCE`` on those pairs and on
random observations, and unless the file loads through ``load_policy`` (the deployment path).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PARITY_TOLERANCE",
    "Checkpoint",
    "ExportError",
    "add_arguments",
    "export_policy",
    "resolve_checkpoint",
    "run",
]

PARITY_TOLERANCE = 1e-5
OPSET = 17


class ExportError(RuntimeError):
    """The export cannot produce a trustworthy model file; the message says why."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint directory (model.zip + vecnormalize.pkl + info.json) and what its run says about it."""

    directory: Path
    info: dict[str, Any]
    run_dir: Path | None
    config: dict[str, Any]

    @property
    def algo(self) -> str:
        return str(self.info.get("algo") or self.config.get("algo") or "ppo")

    @property
    def task(self) -> str:
        return str(self.info.get("task") or self.config.get("task") or "stand")


def resolve_checkpoint(source: str | Path, which: str = "best") -> Checkpoint:
    """A run directory (its ``which`` checkpoint: best, final or latest), a checkpoint directory, or a model.zip."""
    from humanoid_rl.cli import CommandError
    from humanoid_rl.train.callbacks import CHECKPOINT_INFO, LATEST_FILE, MODEL_FILE

    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist. Fix: pass a run directory from `humanoid-rl train`, one of "
                                "its checkpoint directories, or a model.zip")
    if path.is_file():
        path = path.parent
    if (path / "config.yaml").is_file() and not (path / MODEL_FILE).is_file():  # a run directory
        if which == "latest":
            latest = json.loads((path / LATEST_FILE).read_text(encoding="utf-8"))
            directory = path / latest["checkpoint"]
        else:
            directory = path / which
            if which == "best" and not (directory / MODEL_FILE).is_file():
                directory = path / "final"
    else:
        directory = path
    if not (directory / MODEL_FILE).is_file():
        raise CommandError(f"no {MODEL_FILE} in {directory}. Fix: pass a run directory (with best/ or final/), a "
                           "checkpoint directory, or use --checkpoint latest while a run is still going")
    run_dir = next((p for p in (directory, *directory.parents) if (p / "config.yaml").is_file()), None)
    config: dict[str, Any] = {}
    if run_dir is not None:
        import yaml

        config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    info_path = directory / CHECKPOINT_INFO
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    return Checkpoint(directory=directory, info=info, run_dir=run_dir, config=config)


def _load_normalization(directory: Path, n_obs: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(mean, var, epsilon, clip_obs) of the observation normalizer; identity if the run had none. A goal task's
    per-key statistics are laid end to end in the flat contract observation's order."""
    from humanoid_rl.train.callbacks import VECNORMALIZE_FILE

    path = directory / VECNORMALIZE_FILE
    if not path.is_file():
        raise ExportError(f"{path} is missing: without the observation statistics the exported policy would see "
                          "observations it was never trained on. Fix: export a checkpoint directory saved by "
                          "`humanoid-rl train` (it writes model.zip and vecnormalize.pkl together)")
    with path.open("rb") as stream:
        normalizer = pickle.load(stream)  # noqa: S301 - our own training output
    if not normalizer.norm_obs:
        return np.zeros(n_obs), np.ones(n_obs), 0.0, float("inf")
    rms = normalizer.obs_rms
    if isinstance(rms, dict):
        from humanoid_rl.train.goal import NETWORK_KEYS

        mean = np.concatenate([np.asarray(rms[k].mean, np.float64) for k in NETWORK_KEYS])
        var = np.concatenate([np.asarray(rms[k].var, np.float64) for k in NETWORK_KEYS])
        return mean, var, float(normalizer.epsilon), float(normalizer.clip_obs)
    return np.asarray(rms.mean, np.float64), np.asarray(rms.var, np.float64), float(normalizer.epsilon), float(
        normalizer.clip_obs
    )


def build_actor_module(model: Any, mean: np.ndarray, var: np.ndarray, epsilon: float, clip_obs: float,
                       action_table: np.ndarray | None = None, goal_split: int | None = None) -> Any:
    """torch Module: raw observation → deterministic action, normalization included (float32 throughout).
    ``action_table`` (DQN): row ``k`` is the continuous action of discrete action ``k``. ``goal_split`` (a goal
    task): where the flat observation's ``observation`` part ends and its ``desired_goal`` begins."""
    import torch
    from stable_baselines3.common.policies import ActorCriticPolicy

    policy = model.policy
    bounds = (action_table.min(axis=0), action_table.max(axis=0)) if action_table is not None else (
        model.action_space.low, model.action_space.high)  # DQN: unused, the table rows are the actions
    low, high = (torch.as_tensor(b, dtype=torch.float32) for b in bounds)

    class DeterministicActor(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("obs_mean", torch.as_tensor(mean, dtype=torch.float32))
            # sqrt(var + eps) folded into one constant: the graph divides by exactly what SB3 divides by.
            self.register_buffer("obs_std", torch.as_tensor(np.sqrt(var + epsilon), dtype=torch.float32))
            self.register_buffer("action_low", low)
            self.register_buffer("action_high", high)
            self.clip_obs = float(clip_obs)
            if action_table is not None:  # DQN: greedy action = argmax of the Q-values, looked up in the table
                self.kind = "greedy_q"
                self.register_buffer("action_table", torch.as_tensor(action_table, dtype=torch.float32))
                self.features, self.latent, self.head = policy.q_net.features_extractor, torch.nn.Identity(), \
                    policy.q_net.q_net
            elif isinstance(policy, ActorCriticPolicy):  # PPO, A2C: Gaussian mean, then clipped like predict()
                self.kind = "gaussian"
                shared = policy.share_features_extractor
                self.features = policy.features_extractor if shared else policy.pi_features_extractor
                self.latent = policy.mlp_extractor.policy_net
                self.head = policy.action_net
            else:  # SAC (mu then tanh) and TD3/DDPG (mu ends in tanh): squashed, then scaled to the bounds
                actor = policy.actor
                self.kind = "sac" if hasattr(actor, "latent_pi") else "deterministic"
                self.features = actor.features_extractor
                self.latent = actor.latent_pi if self.kind == "sac" else torch.nn.Identity()
                self.head = actor.mu

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            x = torch.clamp((obs - self.obs_mean) / self.obs_std, -self.clip_obs, self.clip_obs)
            if goal_split is not None:  # the Dict policy's inputs, cut from the flat contract observation
                x = {"observation": x[:, :goal_split], "desired_goal": x[:, goal_split:]}  # type: ignore[assignment]
            x = self.head(self.latent(self.features(x)))
            if self.kind == "greedy_q":
                return self.action_table[torch.argmax(x, dim=1)]
            if self.kind == "gaussian":
                return torch.maximum(torch.minimum(x, self.action_high), self.action_low)
            if self.kind == "sac":
                x = torch.tanh(x)
            return self.action_low + 0.5 * (x + 1.0) * (self.action_high - self.action_low)

    module = DeterministicActor()
    module.eval()
    return module


def _discrete_action_table(config: Any) -> np.ndarray:
    """The discrete task's action table, from an environment of the run's robot (its policy joints)."""
    from humanoid_rl.train.algorithms import task_env_id
    from humanoid_rl.train.cli import _make_env, env_config

    env = _make_env(task_env_id(config), env_config(config))
    try:
        return np.asarray(env.get_wrapper_attr("table"), np.float32)
    finally:
        env.close()


def _torch_actions(module: Any, obs: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return module(torch.as_tensor(obs, dtype=torch.float32)).numpy().astype(np.float32)


def record_rollouts(
    module: Any, env_id: str, env_config: Any, episodes: int, episode_s: float, n_pairs: int, seed: int
) -> tuple[np.ndarray, np.ndarray, Any]:
    """Observations and actions of deterministic rollouts (evenly subsampled to ``n_pairs``) and the contract."""
    import gymnasium

    import humanoid_rl.envs  # noqa: F401 - registers the ids
    from humanoid_rl.train.goal import flat_observation

    env_config.episode_length_s = episode_s
    env = gymnasium.make(env_id, config=env_config)
    try:
        contract = env.unwrapped.contract
        observations: list[np.ndarray] = []
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            done = False
            while not done:
                if isinstance(obs, dict):  # a goal task: the contract observation is observation + desired_goal
                    obs = flat_observation(obs)
                observations.append(obs.astype(np.float32))
                action = _torch_actions(module, obs[None, :])[0]
                obs, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
    finally:
        env.close()
    all_obs = np.stack(observations)
    picked = all_obs[np.linspace(0, len(all_obs) - 1, min(n_pairs, len(all_obs))).round().astype(int)]
    return picked, _torch_actions(module, picked), contract


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def export_policy(
    checkpoint: Checkpoint,
    output: Path,
    *,
    rollout_episodes: int = 2,
    rollout_s: float = 4.0,
    n_pairs: int = 64,
    n_random: int = 1000,
    seed: int = 12345,
    eval_results: list[dict[str, Any]] | None = None,
    command: list[str] | None = None,
    write_card: bool = True,
) -> dict[str, Any]:
    """Write ``output`` (and its model card ``output.with_suffix('.md')``); return the parity report."""
    import onnx
    import torch
    from stable_baselines3.common.vec_env import VecNormalize

    from humanoid_rl.policy import load_policy, write_model_metadata
    from humanoid_rl.policy.model_file import open_session
    from humanoid_rl.train.cli import ENV_IDS, env_config, load_checkpoint
    from humanoid_rl.train.config import TrainConfig

    started = time.monotonic()
    config = TrainConfig.from_dict(checkpoint.config) if checkpoint.config else TrainConfig(task=checkpoint.task,
                                                                                            algo=checkpoint.algo)
    model = load_checkpoint(checkpoint.directory, checkpoint.algo, replay=config.replay)
    space = model.observation_space
    goal_split = int(space["observation"].shape[0]) if hasattr(space, "spaces") else None
    n_obs = int(goal_split + space["desired_goal"].shape[0]) if goal_split is not None else int(space.shape[0])
    mean, var, epsilon, clip_obs = _load_normalization(checkpoint.directory, n_obs)
    action_table = _discrete_action_table(config) if checkpoint.algo == "dqn" else None
    module = build_actor_module(model, mean, var, epsilon, clip_obs, action_table, goal_split)

    # Rollouts in the training task's env at full curriculum (pushes and randomization on): realistic inputs.
    rollout_config = env_config(config, curriculum_level=1.0)
    obs, actions, contract = record_rollouts(module, ENV_IDS[checkpoint.task], rollout_config, rollout_episodes,
                                             rollout_s, n_pairs, seed)
    if contract.n_obs != n_obs:
        raise ExportError(f"the checkpoint takes {n_obs} observations but the environment's contract has "
                          f"{contract.n_obs}: it was trained with another observation layout; retrain it")

    # The module must be what SB3 itself does: normalize with the saved stats, then predict deterministically.
    with (checkpoint.directory / "vecnormalize.pkl").open("rb") as stream:
        normalizer: VecNormalize = pickle.load(stream)  # noqa: S301 - our own training output
    sb3_inputs: Any = obs.copy()
    if goal_split is not None:  # achieved_goal is no input of the networks: zeros prove it
        from humanoid_rl.train.goal import split_observation

        sb3_inputs = {**split_observation(obs, goal_split), "achieved_goal": np.zeros((len(obs), 3), np.float32)}
    sb3_actions, _ = model.predict(normalizer.normalize_obs(sb3_inputs), deterministic=True)
    if action_table is not None:
        sb3_actions = action_table[sb3_actions]
    module_vs_sb3 = _max_abs_diff(actions, np.asarray(sb3_actions, np.float32))
    if module_vs_sb3 > PARITY_TOLERANCE:
        raise ExportError(f"the export module differs from stable-baselines3's predict() by {module_vs_sb3:.3g} "
                          f"(> {PARITY_TOLERANCE}); the actor was not extracted correctly for {checkpoint.algo}")

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp_graph = output.with_name(output.name + ".graph.tmp")
    tmp_model = output.with_name(output.name + ".tmp")
    try:
        torch.onnx.export(
            module, (torch.zeros(1, n_obs),), str(tmp_graph), input_names=["obs"], output_names=["actions"],
            dynamic_axes={"obs": {0: "batch"}, "actions": {0: "batch"}}, opset_version=OPSET, dynamo=False,
        )
        proto = onnx.load(str(tmp_graph))
        onnx.checker.check_model(proto)
        summary = training_summary(checkpoint, config, model)
        write_model_metadata(proto, contract, obs, actions, summary, tolerance=PARITY_TOLERANCE)
        onnx.save(proto, str(tmp_model))

        session = open_session(tmp_model)
        rng = np.random.default_rng(seed)
        std = np.sqrt(var + epsilon)
        random_obs = (mean + std * rng.normal(0.0, 2.0, size=(n_random, n_obs))).astype(np.float32)
        parity: dict[str, float] = {"module_vs_sb3_predict": module_vs_sb3}
        for name, inputs in (("recorded_pairs", obs), ("random_observations", random_obs)):
            ort_actions = session.run(["actions"], {"obs": inputs})[0]
            parity[name] = _max_abs_diff(ort_actions, _torch_actions(module, inputs))
        worst = max(parity["recorded_pairs"], parity["random_observations"])
        if not worst <= PARITY_TOLERANCE:
            raise ExportError(f"PyTorch and ONNX Runtime disagree by {worst:.3g} (> {PARITY_TOLERANCE}): "
                              f"{parity}; nothing was written")
        # The deployment path must accept it: contract, graph shapes and recorded pairs replayed by OnnxPolicy.
        policy = load_policy(tmp_model, contract)
        report = policy.verify_recorded_pairs()
        tmp_model.replace(output)
    finally:
        tmp_graph.unlink(missing_ok=True)
        tmp_model.unlink(missing_ok=True)
    result = {
        "output": str(output),
        "sha256": hashlib.sha256(output.read_bytes()).hexdigest(),
        "checkpoint": str(checkpoint.directory),
        "parity_max_abs_diff": parity,
        "load_policy_replay": report.describe(),
        "n_recorded_pairs": len(obs),
        "export_seconds": round(time.monotonic() - started, 1),
        "training": summary,
    }
    if write_card:
        card = output.with_suffix(".md")
        card.write_text(model_card(output, result, config, eval_results, command or list(sys.argv)), encoding="utf-8")
        result["model_card"] = str(card)
    return result


def training_summary(checkpoint: Checkpoint, config: Any, model: Any) -> dict[str, Any]:
    import stable_baselines3
    import torch

    metrics: dict[str, Any] = {}
    if checkpoint.run_dir is not None and (checkpoint.run_dir / "metrics.json").is_file():
        metrics = json.loads((checkpoint.run_dir / "metrics.json").read_text(encoding="utf-8"))
    info = checkpoint.info
    return {
        "algorithm": checkpoint.algo,
        "task": checkpoint.task,
        "steps": int(info.get("steps", model.num_timesteps)),
        "wall_time_s": info.get("wall_time_s"),
        "seed": info.get("seed", config.seed),
        "curriculum_level": info.get("curriculum_level"),
        "checkpoint_evaluation": info.get("evaluation"),
        "run": str(checkpoint.run_dir) if checkpoint.run_dir else None,
        "checkpoint": str(checkpoint.directory),
        "train_commands": metrics.get("commands") or ([metrics["command"]] if "command" in metrics else []),
        "run_total_steps": metrics.get("steps"),
        "run_wall_time_s": metrics.get("wall_time_s"),
        "config": config.to_dict(),
        "stable_baselines3": stable_baselines3.__version__,
        "torch": torch.__version__,
        # No export time: exporting a checkpoint again gives the same bytes, so an evaluation's sha256 names
        # the shipped file, not a sibling export.
    }


def _quote(argv: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


def _command_line(argv: list[str] | None) -> str:
    if not argv:
        return "(unknown)"
    if argv[0].endswith(("humanoid_rl/cli.py", "humanoid-rl")) or argv[0].endswith("__main__.py"):
        argv = ["humanoid-rl", *argv[1:]]
    return _quote(argv)


def _eval_table(eval_results: list[dict[str, Any]]) -> list[str]:
    lines = ["| setting | policy success | PD-only success | policy mean length (s) | PD-only mean length (s) "
             "| policy min joint-limit distance (rad) | model sha256 |",
             "|---|---|---|---|---|---|---|"]
    for entry in eval_results:
        s = entry.get("setting", {})
        force = f"{s.get('push_force_n')}" + (f"–{s['push_force_max_n']}" if s.get("push_force_max_n") else "")
        label = (f"{s.get('episodes')} × {s.get('episode_s')} s, push {force} N / "
                 f"{s.get('push_duration_s')} s every {s.get('push_interval_s')} s, randomize {s.get('randomize')}, "
                 f"seeds from {s.get('seed')}")
        p, b = entry["policy"], entry.get("baseline")
        lines.append(f"| {label} | {p['success_rate']:.0%} | {b['success_rate']:.0%} | "
                     f"{p['mean_length_s']:.1f} | {b['mean_length_s']:.1f} | "
                     f"{p['min_joint_limit_distance_rad']:.3f} | `{str(entry.get('model_sha256'))[:12]}` |"
                     if b else f"| {label} | {p['success_rate']:.0%} | – | {p['mean_length_s']:.1f} | – | "
                     f"{p['min_joint_limit_distance_rad']:.3f} | `{str(entry.get('model_sha256'))[:12]}` |")
    return lines


def model_card(output: Path, result: dict[str, Any], config: Any, eval_results: list[dict[str, Any]] | None,
               command: list[str]) -> str:
    from humanoid_rl.train.cli import ENV_IDS

    t = result["training"]
    parity = result["parity_max_abs_diff"]
    wall = t.get("wall_time_s")
    lines = [
        f"# {output.name}",
        "",
        f"Policy for `{ENV_IDS[t['task']]}` "
        f"({t['task']}), trained with stable-baselines3 {t['algorithm'].upper()} and exported by "
        "`humanoid-rl export`. Observation normalization is inside the graph: feed the raw contract "
        "observation. The contract, recorded (obs, action) pairs and this training summary are in the ONNX "
        "metadata; the policy node refuses the file for a robot whose contract differs.",
        "",
        "| | |",
        "|---|---|",
        f"| file sha256 | `{result['sha256']}` |",
        f"| algorithm | {t['algorithm']} |",
        f"| environment steps (checkpoint) | {t['steps']:,} |",
        f"| training wall time to this checkpoint | {wall / 60:.1f} min |" if wall else "| wall time | unknown |",
        f"| run total | {t.get('run_total_steps')} steps, {t.get('run_wall_time_s')} s |",
        f"| seed | {t['seed']} |",
        f"| curriculum level at the checkpoint | {t.get('curriculum_level')} |",
        f"| network | {config.net_arch} (actor), normalization clip ±{config.clip_obs} |",
        f"| checkpoint | `{t['checkpoint']}` |",
        *([f"| fine-tuned from | `{config.init_from}` (its steps and wall time are included above) |"]
          if getattr(config, "init_from", "") else []),
        f"| parity PyTorch vs ONNX Runtime (max abs) | recorded pairs {parity['recorded_pairs']:.2g}, "
        f"1000 random obs {parity['random_observations']:.2g} |",
        "",
        "## Commands",
        "",
        "Training, every invocation that made this policy (`--resume` continues a run, `--init-from` starts a "
        "new run from an earlier run's checkpoint):",
        "",
        "```",
        *(_command_line(c) for c in t.get("train_commands") or [None]),
        "```",
        "",
        "Export:",
        "",
        "```",
        _command_line(command),
        "```",
    ]
    if eval_results:
        lines += ["", "Evaluation:", "", "```", *(_command_line(e.get("command")) for e in eval_results), "```", "",
                  "## Evaluation (ONNX model through `load_policy`, same seeds for the PD-only baseline)", "",
                  "Success = no fall (base below 60 % of the standing height or tilted more than 0.8 rad) over the "
                  "whole episode. The model sha256 column names the file each evaluation ran.", "",
                  *_eval_table(eval_results)]
    lines += ["", "## Training settings", "", "```yaml"]
    import yaml

    lines += [yaml.safe_dump(config.to_dict(), sort_keys=False).rstrip(), "```", ""]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from humanoid_rl.cli_args import positive_float, positive_int

    parser.add_argument("source", type=Path, metavar="RUN_OR_CHECKPOINT",
                        help="run directory (runs/<task>-<algo>-<time>), checkpoint directory, or model.zip")
    parser.add_argument("-o", "--output", type=Path, required=True, help="ONNX file to write, e.g. models/NAME.onnx")
    parser.add_argument("--checkpoint", choices=("best", "final", "latest"), default="best",
                        help="which checkpoint of a run directory (default: best, falling back to final)")
    parser.add_argument("--rollout-episodes", type=positive_int, default=2,
                        help="evaluation rollouts to record pairs from")
    parser.add_argument("--rollout-s", type=positive_float, default=4.0,
                        help="length of each recording rollout, seconds")
    parser.add_argument("--pairs", type=positive_int, default=64, help="(obs, action) pairs stored in the model file")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the recording rollouts and random inputs")
    parser.add_argument("--eval-json", type=Path, action="append",
                        help="eval.json of `humanoid-rl eval` for this policy, shown in the model card (repeatable)")
    parser.add_argument("--no-card", action="store_true", help="do not write the model card NAME.md")


def run(args: argparse.Namespace) -> int:
    from humanoid_rl.cli import CommandError
    from humanoid_rl.cli_args import writable_dir

    output = Path(args.output)
    if output.is_dir():
        raise CommandError(f"-o {output} is a folder. Fix: give the model file's path, e.g. {output / 'NAME.onnx'}")
    writable_dir(output.parent)  # before seconds of rollouts and parity checks, not after them
    checkpoint = resolve_checkpoint(args.source, args.checkpoint)
    eval_results = None
    if args.eval_json:
        eval_results = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.eval_json]
    command = ["humanoid-rl", *sys.argv[1:]] if sys.argv and "export" in sys.argv else None
    result = export_policy(checkpoint, args.output, rollout_episodes=args.rollout_episodes, rollout_s=args.rollout_s,
                           n_pairs=args.pairs, seed=args.seed, eval_results=eval_results, command=command,
                           write_card=not args.no_card)
    parity = result["parity_max_abs_diff"]
    print(f"exported {checkpoint.directory} ({result['training']['steps']} steps) -> {result['output']}\n"
          f"  parity max|diff|: recorded pairs {parity['recorded_pairs']:.2g}, random obs "
          f"{parity['random_observations']:.2g}, module vs SB3 predict {parity['module_vs_sb3_predict']:.2g}\n"
          f"  load_policy: {result['load_policy_replay']}\n"
          f"  sha256 {result['sha256']}" + (f"\n  model card {result['model_card']}" if "model_card" in result else ""))
    return 0
