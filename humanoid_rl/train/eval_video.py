"""Videos of chosen evaluation episodes (`humanoid-rl eval --video SEED,...`).

An evaluation runs its episodes in worker processes without rendering; the episodes a user wants to watch are run
again afterwards in this process, with the same seed, policy and shield, and filmed by the run video of
`humanoid-rl sim` (``sim/video.py``: PyBullet's renderer in another process, a camera following the base, pushes as
arrows, the command and the shield mode on the frame). Episodes are deterministic per seed, so the filmed episode is
the evaluated one: its outcome is checked against the evaluation's and a difference is reported, not hidden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from humanoid_rl.sim.video import FrameInfo, RunVideo


def parse_video_seeds(text: str) -> tuple[int, ...]:
    """``"103,107"`` → (103, 107); one clear error for anything else (an argparse ``type``)."""
    import argparse

    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part.isdigit():
            raise argparse.ArgumentTypeError(f"expected episode seeds like '100' or '100,104', got {text!r}")
        seeds.append(int(part))
    return tuple(dict.fromkeys(seeds))


def frame_info(env: Any) -> FrameInfo:
    """What the frame shows: the shield's mode (or that no shield runs), the walk command, the push acting now."""
    u = env.unwrapped
    pushes = u.pushes.history
    push = pushes[-1].force_world if u.sim.push_active and pushes else None
    shield = u.target_filter
    mode = shield.shield.mode.value if shield is not None else "no shield"
    return FrameInfo(mode, tuple(float(c) for c in np.asarray(u.command)), push)


def film(model: str | None, setting: Any, seeds: tuple[int, ...], out_dir: Path) -> list[dict[str, Any]]:
    """Film the policy's episodes of ``seeds`` (the baseline's when there is no model) as the evaluation ran them."""
    from humanoid_rl.train.evaluate import BASELINE, POLICY, make_env_and_policies

    env, policies = make_env_and_policies(setting, model)
    try:
        which = POLICY if model else BASELINE
        return film_episodes(env, policies[which], seeds, out_dir, which)
    finally:
        env.close()


def film_episodes(env: Any, policy: Any, seeds: tuple[int, ...], out_dir: Path, name: str) -> list[dict[str, Any]]:
    """Run each seed's episode again with a video; one entry per seed: path, frames, and the episode summary."""
    from humanoid_rl.train.evaluate import run_episode

    filmed = []
    for seed in seeds:
        video = RunVideo(env.unwrapped.sim, out_dir / f"{name}-seed{seed}.mp4", wait_for_renderer=True)
        try:
            summary = run_episode(env, policy, seed,
                                  on_step=lambda e, v=video: v.maybe_capture(e.unwrapped.sim.time_s, frame_info(e)))
        except BaseException:  # Ctrl-C: keep what is rendered, drop the frames still queued, and stop at once
            video.close(drop_pending=True)
            raise
        path = video.close()
        filmed.append({"seed": seed, "policy": name, "path": str(path) if path else "", "frames": video.frames,
                       "dropped_frames": video.dropped, "renderer_cpu_s": round(video.render_cpu_s, 2),
                       "fell": summary["fell"], "length_s": summary["length_s"], "return": summary["return"]})
    return filmed


def check_against_evaluation(filmed: list[dict[str, Any]], result: dict[str, Any]) -> list[str]:
    """Lines naming each filmed episode whose outcome differs from the evaluated one (empty: all match)."""
    problems = []
    for film in filmed:
        evaluated = {e["seed"]: e for e in result[film["policy"]]["per_episode"]}.get(film["seed"])
        if evaluated is None:
            continue
        same = (evaluated["fell"] == film["fell"] and abs(evaluated["length_s"] - film["length_s"]) < 1e-6
                and abs(evaluated["return"] - film["return"]) <= 1e-6 * max(1.0, abs(evaluated["return"])))
        if not same:
            problems.append(f"seed {film['seed']}: filmed {film['length_s']:.2f} s, return {film['return']:.3f} "
                            f"(fell {film['fell']}), evaluated {evaluated['length_s']:.2f} s, return "
                            f"{evaluated['return']:.3f} (fell {evaluated['fell']})")
    return problems
