"""``humanoid-rl eval --task reach``: a goal-conditioned ONNX policy on ``HumanoidRL/Reach-v0`` over seeded goals.

Episode ``i`` resets the environment with seed ``seed + i``, which draws the goal (a reachable hand point, as in
training) and the start pose: the policy and the PD-hold baseline (action zero: the arm stays at its default
pose) meet the same goals. The policy gets the flat contract observation (``observation`` then the goal), as the
policy node builds it. An episode succeeds when its last step has the hand within the radius (the model's
training ``reach_threshold_m``) and the robot did not fall. :mod:`humanoid_rl.train.evaluate` runs the episodes
(workers, seeds, progress); this module holds what differs for the reach task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_reach", "run_reach_episode", "summarize_reach"]


def run_reach_episode(env: Any, policy: Any, seed: int) -> dict[str, Any]:
    """One seeded episode: the goal, the hand's start, closest and final distance, and the env's summary."""
    from humanoid_rl.train.goal import flat_observation

    obs, _ = env.reset(seed=seed)
    policy.reset()
    goal = np.asarray(obs["desired_goal"], dtype=np.float64)
    start = float(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]))
    closest = start
    while True:
        obs, _, terminated, truncated, info = env.step(policy.act(flat_observation(obs)))
        closest = min(closest, float(info["distance_m"]))
        if terminated or truncated:
            break
    summary = dict(info["episode_summary"])
    summary.update(seed=seed, goal=goal.tolist(), hand=np.asarray(obs["achieved_goal"], np.float64).tolist(),
                   start_distance_m=start, closest_distance_m=closest)
    return summary


def summarize_reach(episodes: list[dict[str, Any]], radius_m: float) -> dict[str, Any]:
    """Success rate within ``radius_m`` (last step, not fallen), final-distance statistics, falls."""
    final = np.array([e["final_distance_m"] for e in episodes])
    fell = np.array([e["fell"] for e in episodes], dtype=bool)
    return {
        "episodes": len(episodes),
        "success_radius_m": radius_m,
        "success_rate": float(np.mean((final <= radius_m) & ~fell)),
        "mean_final_distance_m": float(final.mean()),
        "median_final_distance_m": float(np.median(final)),
        "max_final_distance_m": float(final.max()),
        "mean_start_distance_m": float(np.mean([e["start_distance_m"] for e in episodes])),
        "fall_rate": float(fell.mean()),
        "mean_length_s": float(np.mean([e["length_s"] for e in episodes])),
        "mean_return": float(np.mean([e["return"] for e in episodes])),
        "per_episode": episodes,
    }


def describe_reach(name: str, r: dict[str, Any]) -> str:
    cm = {k: r[k] * 100 for k in ("success_radius_m", "mean_final_distance_m", "median_final_distance_m",
                                  "max_final_distance_m", "mean_start_distance_m")}
    return (f"  {name:8s} success {r['success_rate']:6.1%} (within {cm['success_radius_m']:g} cm)  final distance "
            f"mean {cm['mean_final_distance_m']:5.1f} cm, median {cm['median_final_distance_m']:5.1f} cm, max "
            f"{cm['max_final_distance_m']:5.1f} cm (from {cm['mean_start_distance_m']:.1f} cm at the start)  fall "
            f"{r['fall_rate']:.1%}")


def plot_reach(result: dict[str, Any], path: Path, names: list[str]) -> None:
    """Histogram of the final distances per policy, with the success radius."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    finals = {n: [e["final_distance_m"] * 100 for e in result[n]["per_episode"]] for n in names}
    bins = np.linspace(0.0, max(max(v) for v in finals.values()) * 1.05 + 1e-6, 25)
    for name in names:
        ax.hist(finals[name], bins=bins, alpha=0.6, label=f"{name} ({result[name]['success_rate']:.0%} within)")
    radius_cm = result[names[0]]["success_radius_m"] * 100
    ax.axvline(radius_cm, color="black", linestyle="--", label=f"radius {radius_cm:g} cm")
    ax.set(xlabel="hand-goal distance at the end of the episode (cm)", ylabel="episodes", title="reach: final distance")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
