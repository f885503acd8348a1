"""Measured comparisons of training methods on the same seeds and budget, printed and saved as JSON.

``python -m humanoid_rl.train.compare per`` trains SAC with uniform and with prioritized replay to the same step
count; ``... her`` trains SAC on the goal-conditioned Reach-v0 with and without hindsight experience replay to the
same step count, on each of ``--seeds`` (success: the hand within 5 cm of the goal at the episode's end);
``... methods`` trains PPO, REINFORCE and DQN (on the discrete stand) for the same wall time. Every run's
final policy is then evaluated the same way: ``--eval-episodes`` seeded deterministic episodes at each curriculum
level of ``--eval-levels`` in the training backend, next to the PD-only stand (zero action: hold the default pose)
on the same seeds. The runs are in ``--run-root``; the figures in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_rl.train.config import REACH_DEFAULTS, TrainConfig

__all__ = ["COMPARISONS", "evaluate_final", "main", "run_comparison"]

# name -> (what is held equal, [(label, settings)]); settings override the shared base below.
COMPARISONS: dict[str, tuple[str, list[tuple[str, dict[str, Any]]]]] = {
    "per": ("steps", [("sac-uniform", {"algo": "sac", "replay": "uniform"}),
                      ("sac-prioritized", {"algo": "sac", "replay": "prioritized"})]),
    "methods": ("wall_time", [("ppo", {"algo": "ppo"}), ("reinforce", {"algo": "reinforce"}),
                              ("dqn", {"algo": "dqn"})]),
    "her": ("steps", [("sac-uniform", {"algo": "sac", "replay": "uniform"}),
                      ("sac-her", {"algo": "sac", "replay": "her"})]),
}


class _HoldPose:
    """The PD-only reference: action zero (DQN's action 0 too) holds the default pose."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return np.zeros((len(obs), *self.shape), np.float32), None


def evaluate_final(config: TrainConfig, run_dir: Path | None, episodes: int, level: float, seed: int,
                   episode_s: float) -> dict[str, Any]:
    """``run_evaluation`` of the run's final checkpoint (None: of the PD-only stand) at a fixed level."""
    from stable_baselines3.common.vec_env import VecNormalize

    from humanoid_rl.train.callbacks import VECNORMALIZE_FILE, run_evaluation
    from humanoid_rl.train.cli import env_config, load_checkpoint, make_vec_env

    env = make_vec_env(config, 1, env_config(config, episode_s=episode_s, curriculum_level=level))
    try:
        if run_dir is None:
            model: Any = _HoldPose(env.action_space.shape)
            vec: Any = env
        else:
            vec = VecNormalize.load(str(run_dir / "final" / VECNORMALIZE_FILE), env)
            vec.training, vec.norm_reward = False, False
            model = load_checkpoint(run_dir / "final", config.algo, replay=config.replay)
        vec.env_method("set_curriculum", level)
        return run_evaluation(model, vec, episodes, seed)
    finally:
        env.close()


def _evaluations(config: TrainConfig, run_dir: Path | None, episodes: int, levels: list[float],
                 episode_s: float) -> dict[str, dict[str, float]]:
    """Success rate, mean return and mean length (and the reach task's final distance) at each level."""
    keys = ("success_rate", "mean_return", "mean_length_s", *(("reward_terms",) if config.task == "reach" else ()))
    return {f"level_{level:g}": {k: v for k, v in evaluate_final(config, run_dir, episodes, level, 50_000,
                                                                  episode_s).items() if k in keys}
            for level in levels}


def run_comparison(name: str, base: dict[str, Any], run_root: Path, episodes: int, levels: list[float],
                   episode_s: float, log: Any = print, only: list[str] | None = None,
                   seeds: list[int] | None = None) -> dict[str, Any]:
    """Each case on each seed (``seeds``: the base's seed alone; with several, runs are keyed ``LABEL-sSEED``)."""
    from humanoid_rl.train.cli import train

    held, cases = COMPARISONS[name]
    cases = [case for case in cases if not only or case[0] in only]
    seeds = seeds or [int(base.get("seed", 0))]
    tag = (lambda label, seed: f"{label}-s{seed}") if len(seeds) > 1 else (lambda label, seed: label)
    results: dict[str, Any] = {"comparison": name, "held_equal": held, "base_settings": base, "seeds": seeds,
                               "runs": {}, "evaluation": {"episodes": episodes, "curriculum_levels": levels,
                                                          "episode_s": episode_s, "seed": 50_000},
                               "load_average_1min_at_start": os.getloadavg()[0]}
    for seed, (label, settings) in ((seed, case) for seed in seeds for case in cases):
        config = TrainConfig(**{**base, **settings, "seed": seed, "run_root": str(run_root),
                                "run_name": f"{name}-{tag(label, seed)}"})
        started = time.monotonic()
        metrics = train(config)
        wall = time.monotonic() - started
        results["runs"][tag(label, seed)] = {
            "settings": settings, "seed": seed, "steps": metrics["steps"], "train_wall_s": round(wall, 1),
            "status": metrics["status"],
            "final_eval": _evaluations(config, run_root / config.run_name, episodes, levels, episode_s),
            "periodic_evals": [{k: e[k] for k in ("steps", "curriculum_level", "success_rate", "mean_return")}
                               for e in metrics["evaluations"]],
            "run_dir": str(run_root / config.run_name),
        }
        log(f"[compare {name}] {tag(label, seed)}: {metrics['steps']} steps in {wall:.0f} s -> "
            f"{results['runs'][tag(label, seed)]}")
    reference = TrainConfig(**{**base, **cases[0][1]})
    results["pd_only_same_seeds"] = _evaluations(reference, None, episodes, levels, episode_s)
    results["load_average_1min_at_end"] = os.getloadavg()[0]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m humanoid_rl.train.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=sorted(COMPARISONS))
    parser.add_argument("--time-budget-min", type=float, default=3.0, help="wall-clock budget of each run")
    parser.add_argument("--total-timesteps", type=int, default=10**7,
                        help="step cap of each run ('per' holds steps equal: set it below what the budget allows)")
    labels = [label for _, cases in COMPARISONS.values() for label, _ in cases]
    parser.add_argument("--only", nargs="+", metavar="LABEL", help=f"run only these cases: {', '.join(labels)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", help="train every case on each of these seeds (her)")
    parser.add_argument("--backend", choices=["mujoco", "pybullet"], default="mujoco")
    parser.add_argument("--n-envs", type=int, default=1)
    parser.add_argument("--eval-episodes", type=int, default=8)
    parser.add_argument("--eval-levels", type=float, nargs="+", default=[0.4, 1.0],
                        help="curriculum levels of the final evaluation (0.4: where training starts; 1: full pushes)")
    parser.add_argument("--eval-episode-s", type=float, default=10.0, help="(her: the reach episode, 1 s)")
    parser.add_argument("--physics-rate-hz", type=float, default=0.0, help="her: training physics rate (0: 1 kHz)")
    parser.add_argument("--reach-threshold-m", type=float, default=0.05, help="her: the reach task's success radius")
    parser.add_argument("--eval-freq", type=int, default=0, help="her: periodic evaluation interval (0: the task's)")
    parser.add_argument("--run-root", type=Path, default=Path("runs/compare"))
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the figures")
    args = parser.parse_args(argv)
    known = [label for label, _ in COMPARISONS[args.which][1]]
    if args.only and not set(args.only) <= set(known):
        parser.error(f"--only {' '.join(args.only)}: the cases of '{args.which}' are {', '.join(known)}")
    base: dict[str, Any] = {"task": "stand", "backend": args.backend, "n_envs": args.n_envs, "seed": args.seed,
                            "time_budget_min": args.time_budget_min, "total_timesteps": args.total_timesteps,
                            "eval_freq": 10_000, "eval_episodes": 2, "checkpoint_freq": 10**9}
    levels, episode_s = args.eval_levels, args.eval_episode_s
    if args.which == "her":  # the reach task's own defaults; PyBullet, which is what it runs in
        base = {**REACH_DEFAULTS, "task": "reach", "seed": args.seed, "time_budget_min": args.time_budget_min,
                "total_timesteps": args.total_timesteps, "physics_rate_hz": args.physics_rate_hz,
                "checkpoint_freq": 10**9, "reach_threshold_m": args.reach_threshold_m,
                "eval_freq": args.eval_freq or REACH_DEFAULTS["eval_freq"]}
        levels, episode_s = [1.0], REACH_DEFAULTS["episode_s"]
    results = run_comparison(args.which, base, args.run_root, args.eval_episodes, levels, episode_s,
                             log=lambda text: print(text, file=sys.stderr, flush=True), only=args.only,
                             seeds=args.seeds)
    results["command"] = ["python", "-m", "humanoid_rl.train.compare", *(argv or sys.argv[1:])]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps({"out": str(args.out), **{label: {"steps": r["steps"], "wall_s": r["train_wall_s"],
                                                        **r["final_eval"]}
                                                 for label, r in results["runs"].items()},
                      "pd_only": results["pd_only_same_seeds"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
