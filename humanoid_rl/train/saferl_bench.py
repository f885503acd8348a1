"""PPO against PPO-Lagrangian on the same seeds: training return and cost, deployed cost and shield interventions.

``python -m humanoid_rl.train.saferl_bench --minutes 5 --out runs/saferl-bench`` trains PPO for ``--minutes`` of
wall time (``--backend mujoco``, the stand task), then PPO-Lagrangian for the SAME number of updates with the
same seed (``--variants`` adds the shield in the training loop, ``--steps`` fixes the steps), exports them, and
evaluates the ONNX policies on the same seeded episodes:

* ``costs``: episode return and the safety costs (``train/safety.py``, shadow shield: what it would have changed)
  without the shield, in the training backend;
* ``deployed``: ``humanoid-rl eval --shield``'s code path (``evaluate`` with ``EvalSetting(shield=True)``) in
  PyBullet, the acceptance simulator: success, return and the shield's interventions per stage.

Everything, with the commands and the machine's load, goes to ``OUT/saferl_bench.json``. The machine's load
changes the steps PPO reaches in its minutes, never the comparison: both train for the same steps.
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

from humanoid_rl.train.evaluate import DEFAULT_PUSH_N

__all__ = ["VARIANTS", "cost_episodes", "main"]

# Variant name: (algorithm, shield in the training loop).
VARIANTS = {"ppo": ("ppo", False), "ppo-lag": ("ppo-lag", False), "ppo-shield": ("ppo", True),
            "ppo-lag-shield": ("ppo-lag", True)}


def cost_episodes(model: str, task: str, backend: str, seeds: list[int], episode_s: float,
                  push_force_n: float) -> dict[str, Any]:
    """The exported policy without the shield, in ``backend``: return and safety costs per episode and their mean."""
    import gymnasium

    from humanoid_rl.envs import STAND_ID, WALK_ID
    from humanoid_rl.policy import load_policy
    from humanoid_rl.train.evaluate import EvalSetting, run_episode
    from humanoid_rl.train.safety import COST_NAMES, SafetyWrapper

    setting = EvalSetting(task=task, episode_s=episode_s, push_force_n=push_force_n, backend=backend)
    env = SafetyWrapper(gymnasium.make(STAND_ID if task == "stand" else WALK_ID, config=setting.env_config()))
    policy = load_policy(model, env.unwrapped.contract)
    try:
        episodes = [run_episode(env, policy, seed) for seed in seeds]
    finally:
        env.close()
    return {
        "episodes": len(episodes),
        "fall_rate": float(np.mean([e["fell"] for e in episodes])),
        "mean_return": float(np.mean([e["return"] for e in episodes])),
        "mean_episode_cost": {name: float(np.mean([e["costs"][name] for e in episodes])) for name in COST_NAMES},
        "per_episode": [{"seed": e["seed"], "fell": e["fell"], "length_s": e["length_s"], "return": e["return"],
                         "costs": e["costs"]} for e in episodes],
    }


def _train(config: Any) -> dict[str, Any]:
    from humanoid_rl.train.cli import train

    started = time.monotonic()
    metrics = train(config)
    return {"steps": int(metrics.get("steps", 0) or 0), "wall_s": round(time.monotonic() - started, 1),
            "metrics": metrics}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="PPO's wall-clock training budget (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="training seed of both runs (default 0)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per policy (default 10)")
    parser.add_argument("--episode-s", type=float, default=10.0, help="evaluation episode length, s (default 10)")
    parser.add_argument("--n-envs", type=int, default=2, help="training environments (default 2)")
    parser.add_argument("--variants", default="ppo,ppo-lag",
                        help=f"comma-separated, trained in this order: {', '.join(VARIANTS)} (default ppo,ppo-lag)")
    parser.add_argument("--steps", type=int, default=0,
                        help="train every variant for these steps (default 0: the steps PPO, first, reaches in "
                        "--minutes, rounded down to whole rollouts)")
    parser.add_argument("--push-force", type=float, default=DEFAULT_PUSH_N["stand"],
                        help=f"evaluation pushes, N, every 4 s (default {DEFAULT_PUSH_N['stand']:g}, the acceptance)")
    parser.add_argument("--eval-only", action="store_true",
                        help="train nothing: evaluate the OUT/stand-<variant>.onnx of an earlier run into "
                        "OUT/saferl_eval_push<N>.json")
    parser.add_argument("--out", type=Path, default=Path("runs/saferl-bench"), help="output folder")
    args = parser.parse_args(argv)

    from humanoid_rl.train.config import TrainConfig
    from humanoid_rl.train.evaluate import EvalSetting, evaluate
    from humanoid_rl.train.export import export_policy, resolve_checkpoint

    args.out.mkdir(parents=True, exist_ok=True)
    common = dict(task="stand", backend="mujoco", seed=args.seed, n_envs=args.n_envs, run_root=str(args.out),
                  eval_freq=10**9, checkpoint_freq=10**9)  # no periodic evaluation: both stay at one curriculum
    result: dict[str, Any] = {"command": [sys.executable, "-m", "humanoid_rl.train.saferl_bench", *sys.argv[1:]],
                              "load_average_at_start": list(os.getloadavg()), "runs": {}}
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise SystemExit(f"--variants {args.variants}: use some of {', '.join(VARIANTS)}")
    steps = args.steps or 10**9
    for name in variants:
        algo, shield_in_loop = VARIANTS[name]
        model = args.out / f"stand-{name}.onnx"
        run: dict[str, Any] = {}
        if not args.eval_only:
            first = steps == 10**9  # trains for --minutes; the others for its steps, whatever they take
            config = TrainConfig(algo=algo, run_name=name, total_timesteps=steps, shield_in_loop=shield_in_loop,
                                 time_budget_min=args.minutes if first else 0.0, **common)
            run = {**_train(config), "config": config.to_dict()}
            if first:  # the budget may stop it inside a rollout, which it never learned from: the others get
                rollout = config.n_steps * config.n_envs  # the same number of whole rollouts, so of updates
                steps = max(rollout, run["steps"] // rollout * rollout)
            export_policy(resolve_checkpoint(args.out / name), model, write_card=False)
        seeds = list(range(1000, 1000 + args.episodes))
        run["costs_mujoco"] = cost_episodes(str(model), "stand", "mujoco", seeds, args.episode_s, args.push_force)
        deployed = evaluate(str(model), EvalSetting(task="stand", episodes=args.episodes, episode_s=args.episode_s,
                                                    push_force_n=args.push_force, seed=1000, shield=True),
                            baseline=name == variants[0])
        for which in ("policy", "baseline"):
            if which in deployed:
                deployed[which].pop("per_episode")
        run["deployed_pybullet_shield"] = deployed
        result["runs"][name] = run
        print(json.dumps({name: {"steps": run.get("steps"), "costs": run["costs_mujoco"]["mean_episode_cost"],
                                 "return": run["costs_mujoco"]["mean_return"],
                                 "interventions": deployed["policy"]["shield"]["interventions_per_stage"]}}),
              flush=True)
    result["load_average_at_end"] = list(os.getloadavg())
    path = args.out / (f"saferl_eval_push{args.push_force:g}.json" if args.eval_only else "saferl_bench.json")
    path.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
