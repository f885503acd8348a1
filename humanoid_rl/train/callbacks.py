"""stable-baselines3 callbacks of ``humanoid-rl train``: reward terms, evaluation + curriculum, checkpoints,
progress and the wall-clock budget.

A checkpoint is a directory holding ``model.zip`` (the SB3 model), ``vecnormalize.pkl`` (observation/reward
normalization statistics, needed to run or export the model) and ``info.json`` (steps, curriculum level,
algorithm, task, and evaluation figures where there are some). ``latest.json`` in the run directory names the
newest one, which is what ``--resume`` continues from; for an off-policy algorithm that one also holds
``replay_buffer.pkl`` (only the newest does: a buffer is up to hundreds of MB), so a resumed run replays what it
had collected instead of starting from an empty buffer.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, sync_envs_normalization

__all__ = [
    "CHECKPOINT_INFO",
    "LATEST_FILE",
    "MODEL_FILE",
    "REPLAY_BUFFER_FILE",
    "VECNORMALIZE_FILE",
    "CheckpointCallback",
    "EvalCurriculumCallback",
    "ProgressCallback",
    "RewardTermsCallback",
    "RunState",
    "TimeBudgetCallback",
    "save_checkpoint",
]

MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.pkl"
CHECKPOINT_INFO = "info.json"
CHECKPOINT_CONTRACT = "contract.json"
LATEST_FILE = "latest.json"
REPLAY_BUFFER_FILE = "replay_buffer.pkl"
METRICS_FILE = "metrics.json"


@dataclass
class RunState:
    """What the callbacks share and what metrics.json reports; survives a resume through latest.json."""

    run_dir: Path
    task: str
    algo: str
    seed: int
    curriculum_level: float
    wall_time_before_s: float = 0.0  # training wall time of earlier invocations (resume)
    started_at: float = field(default_factory=time.monotonic)
    status: str = "running"
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    # Command lines of every invocation that trained this run (the first, then each --resume).
    commands: list[list[str]] = field(default_factory=lambda: [list(sys.argv)])
    start_steps: int = 0
    contract: dict[str, Any] | None = None  # the training env's contract (contract_to_dict), saved with checkpoints

    @property
    def wall_time_s(self) -> float:
        return self.wall_time_before_s + (time.monotonic() - self.started_at)

    def write_metrics(self, steps: int, extra: dict[str, Any] | None = None) -> None:
        this_run_s = time.monotonic() - self.started_at
        data = {
            "task": self.task,
            "algo": self.algo,
            "seed": self.seed,
            "status": self.status,
            "steps": steps,
            "wall_time_s": round(self.wall_time_s, 1),
            "steps_per_s_this_invocation": round((steps - self.start_steps) / max(this_run_s, 1e-9), 1),
            "curriculum_level": self.curriculum_level,
            "best": self.best,
            "evaluations": self.evaluations,
            "commands": self.commands,
            **(extra or {}),
        }
        path = self.run_dir / METRICS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp.replace(path)


def save_checkpoint(
    model: BaseAlgorithm, directory: Path, state: RunState, extra: dict[str, Any] | None = None
) -> Path:
    """Model + normalization stats + info.json into ``directory``; latest.json points at it."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / MODEL_FILE)
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        vec_normalize.save(str(directory / VECNORMALIZE_FILE))
    info = {
        "steps": int(model.num_timesteps),
        "algo": state.algo,
        "task": state.task,
        "seed": state.seed,
        "curriculum_level": state.curriculum_level,
        "wall_time_s": round(state.wall_time_s, 1),
        **(extra or {}),
    }
    (directory / CHECKPOINT_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
    if state.contract is not None:  # what the network's inputs mean, whatever the code's layouts become later
        (directory / CHECKPOINT_CONTRACT).write_text(json.dumps(state.contract, indent=2), encoding="utf-8")
    if hasattr(model, "save_replay_buffer"):
        _move_replay_buffer(model, directory, state.run_dir)
    latest = {"checkpoint": str(directory.relative_to(state.run_dir)), **info}
    (state.run_dir / LATEST_FILE).write_text(json.dumps(latest, indent=2), encoding="utf-8")
    return directory


def _move_replay_buffer(model: BaseAlgorithm, directory: Path, run_dir: Path) -> None:
    """The replay buffer into the new newest checkpoint, out of the one latest.json named until now."""
    model.save_replay_buffer(directory / REPLAY_BUFFER_FILE)  # type: ignore[attr-defined]
    latest_path = run_dir / LATEST_FILE
    if latest_path.is_file():
        previous = run_dir / json.loads(latest_path.read_text(encoding="utf-8"))["checkpoint"]
        if previous.resolve() != directory.resolve():
            (previous / REPLAY_BUFFER_FILE).unlink(missing_ok=True)


class RewardTermsCallback(BaseCallback):
    """Logs the per-step mean of every ``info["reward_terms"]`` entry (``reward_terms/<name>``) and the
    training episodes' fall rate and length, averaged since the last record."""

    def __init__(self, min_steps_per_record: int = 1000) -> None:
        super().__init__()
        self.min_steps_per_record = min_steps_per_record
        self._sums: dict[str, float] = {}
        self._count = 0
        self._episodes: list[dict[str, Any]] = []

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            terms = info.get("reward_terms")
            if terms:
                for name, value in terms.items():
                    self._sums[name] = self._sums.get(name, 0.0) + float(value)
                self._count += 1
            summary = info.get("episode_summary")
            if summary is not None:
                self._episodes.append(summary)
        return True

    def _on_rollout_end(self) -> None:
        if self._count < self.min_steps_per_record:
            return
        for name, total in self._sums.items():
            self.logger.record(f"reward_terms/{name}", total / self._count)
        if self._episodes:
            for name, key in (("episode_fall_rate", "fell"), ("episode_length_s", "length_s"),
                              ("episode_max_push_n", "max_push_force_n")):
                self.logger.record(f"train/{name}", float(np.mean([e[key] for e in self._episodes])))
        self._sums, self._count, self._episodes = {}, 0, []


def run_evaluation(
    model: BaseAlgorithm, eval_env: VecEnv, n_episodes: int, seed: int
) -> dict[str, Any]:
    """Seeded deterministic episodes on a one-env VecEnv; success = the episode ended without a fall."""
    summaries: list[dict[str, Any]] = []
    for i in range(n_episodes):
        eval_env.seed(seed + i)
        obs = eval_env.reset()
        while True:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, dones, infos = eval_env.step(action)
            if dones[0]:
                summaries.append(infos[0]["episode_summary"])
                break
    return {
        "episodes": n_episodes,
        "success_rate": float(np.mean([s["success"] for s in summaries])),
        "mean_return": float(np.mean([s["return"] for s in summaries])),
        "mean_length_s": float(np.mean([s["length_s"] for s in summaries])),
        "reward_terms": {
            name: float(np.mean([s["reward_terms"][name] for s in summaries]))
            for name in summaries[0]["reward_terms"]
        },
    }


class EvalCurriculumCallback(BaseCallback):
    """Every ``eval_freq`` steps: evaluate on a separate env at the current curriculum level, keep the best
    checkpoint (ranked by level, then success rate, then return), and raise the level when the success rate
    reaches ``threshold``."""

    def __init__(
        self,
        eval_env: VecEnv,
        state: RunState,
        *,
        eval_freq: int,
        n_episodes: int,
        seed: int,
        threshold: float,
        level_step: float,
        on_level_change: Callable[[float], None],
        on_evaluation: Callable[[dict[str, Any]], bool] | None = None,
        stop_success_rate: float = 0.0,
        stop_min_level: float = 1.0,
    ) -> None:
        super().__init__()
        # A sweep's hook: sees each evaluation (Optuna's report, Ray's report) and returns False to stop the run.
        self.on_evaluation = on_evaluation
        self.stopped = False
        self.eval_env = eval_env
        self.state = state
        self.eval_freq = eval_freq
        self.n_episodes = n_episodes
        self.seed = seed
        self.threshold = threshold
        self.level_step = level_step
        self.on_level_change = on_level_change
        self.stop_success_rate = stop_success_rate
        self.stop_min_level = stop_min_level
        self.stopped_at_threshold = False
        self._last_eval_steps = 0
        self._best_key: tuple[float, float, float] | None = None
        if state.best is not None:
            self._best_key = (state.best["curriculum_level"], state.best["success_rate"], state.best["mean_return"])

    def _init_callback(self) -> None:
        self._last_eval_steps = self.model.num_timesteps

    def _on_step(self) -> bool:
        if self.model.num_timesteps - self._last_eval_steps >= self.eval_freq:
            self._last_eval_steps = self.model.num_timesteps
            level = self.state.curriculum_level
            result = self.evaluate()
            if self.on_evaluation is not None and not self.on_evaluation(result):
                self.stopped = True
                return False
            if 0.0 < self.stop_success_rate <= result["success_rate"] and level >= self.stop_min_level:
                self.stopped_at_threshold = True
                print(f"[eval] success {result['success_rate']:.2f} >= --stop-success-rate {self.stop_success_rate} "
                      f"at level {level:.2f}: stopping", flush=True)
                return False
        return True

    def evaluate(self) -> dict[str, Any]:
        train_env = self.model.get_env()
        if isinstance(self.eval_env, VecNormalize) and train_env is not None:
            sync_envs_normalization(train_env, self.eval_env)
        level = self.state.curriculum_level
        self.eval_env.env_method("set_curriculum", level)
        started = time.monotonic()
        result = run_evaluation(self.model, self.eval_env, self.n_episodes, self.seed)
        result.update(steps=int(self.model.num_timesteps), curriculum_level=level,
                      wall_time_s=round(self.state.wall_time_s, 1), eval_seconds=round(time.monotonic() - started, 1))
        self.state.evaluations.append(result)
        for key in ("success_rate", "mean_return", "mean_length_s"):
            self.logger.record(f"eval/{key}", result[key])
        for name, value in result["reward_terms"].items():
            self.logger.record(f"eval_reward_terms/{name}", value)
        key = (level, result["success_rate"], result["mean_return"])
        if self._best_key is None or key > self._best_key:
            self._best_key = key
            self.state.best = {k: result[k] for k in ("steps", "curriculum_level", "success_rate", "mean_return",
                                                       "mean_length_s")}
            save_checkpoint(self.model, self.state.run_dir / "best", self.state, {"evaluation": result})
        if result["success_rate"] >= self.threshold and level < 1.0:
            new_level = min(1.0, round(level + self.level_step, 6))
            self.state.curriculum_level = new_level
            self.on_level_change(new_level)
        self.logger.record("curriculum/level", self.state.curriculum_level)
        self.state.write_metrics(int(self.model.num_timesteps))
        print(
            f"[eval] steps {result['steps']} level {level:.2f}: success {result['success_rate']:.2f} "
            f"return {result['mean_return']:.1f} length {result['mean_length_s']:.1f} s "
            f"-> level {self.state.curriculum_level:.2f} ({result['eval_seconds']} s)",
            flush=True,
        )
        return result


class CheckpointCallback(BaseCallback):
    """Saves ``checkpoints/step_<N>/`` every ``save_freq`` environment steps."""

    def __init__(self, state: RunState, save_freq: int) -> None:
        super().__init__()
        self.state = state
        self.save_freq = save_freq
        self._last_save = 0

    def _init_callback(self) -> None:
        self._last_save = self.model.num_timesteps

    def _on_step(self) -> bool:
        if self.model.num_timesteps - self._last_save >= self.save_freq:
            self._last_save = self.model.num_timesteps
            save_checkpoint(self.model, self.state.run_dir / "checkpoints" / f"step_{self.model.num_timesteps}",
                            self.state)
            self.state.write_metrics(int(self.model.num_timesteps))
        return True


class TimeBudgetCallback(BaseCallback):
    """Stops training (SB3 returns from ``learn`` normally) once ``budget_s`` of wall time is spent."""

    def __init__(self, budget_s: float) -> None:
        super().__init__()
        self.budget_s = budget_s
        self.started = time.monotonic()
        self.exhausted = False

    def _on_training_start(self) -> None:
        self.started = time.monotonic()

    def _on_step(self) -> bool:
        if self.budget_s > 0 and time.monotonic() - self.started >= self.budget_s:
            self.exhausted = True
            return False
        return True


def progress_postfix(rate: float, eta_s: float, state: RunState) -> str:
    """What the bar shows after the count: the rate, the ETA, the curriculum level and the latest evaluation."""
    text = f"{rate:.0f} steps/s, ETA {eta_s / 60:.1f} min, level {state.curriculum_level:.2f}"
    if state.evaluations:
        last = state.evaluations[-1]
        text += f", last eval: success {last['success_rate']:.2f} return {last['mean_return']:.0f}"
    return text


def plot_training_curve(state: RunState, path: Path) -> Path | None:
    """The periodic evaluations against steps (success rate and curriculum level; mean return), as a PNG; None
    when there were none."""
    if not state.evaluations:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [e["steps"] for e in state.evaluations]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.plot(steps, [e["success_rate"] for e in state.evaluations], "o-",
             label="success rate (hand at the goal)" if state.task == "reach" else "success rate (no fall)")
    top.plot(steps, [e["curriculum_level"] for e in state.evaluations], "s--", label="curriculum level")
    top.set(ylim=(-0.05, 1.05), ylabel="fraction",
            title=f"{state.task} / {state.algo} / seed {state.seed}: periodic evaluations")
    top.legend(loc="lower right")
    bottom.plot(steps, [e["mean_return"] for e in state.evaluations], "o-")
    bottom.set(xlabel="environment steps", ylabel="mean return")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


class ProgressCallback(BaseCallback):
    """A tqdm bar with steps/s and the ETA of whichever ends first: the step count or the time budget."""

    def __init__(self, total_timesteps: int, budget_s: float, state: RunState, mininterval_s: float = 10.0) -> None:
        super().__init__()
        self.total_timesteps = total_timesteps
        self.budget_s = budget_s
        self.state = state
        self.mininterval_s = mininterval_s
        self._bar: Any = None
        self._last = 0
        self._started = 0.0
        self._start_steps = 0

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        self._started = time.monotonic()
        self._start_steps = self._last = self.model.num_timesteps
        # One rate (ours, over this invocation; tqdm's own smoothed one would be a second, different figure).
        self._bar = tqdm(total=self.total_timesteps, initial=self._last, unit="step", dynamic_ncols=True,
                         mininterval=self.mininterval_s, file=sys.stderr,
                         bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")

    def _on_step(self) -> bool:
        steps = self.model.num_timesteps
        self._bar.update(steps - self._last)
        self._last = steps
        elapsed = time.monotonic() - self._started
        if elapsed > 0 and steps % 1000 < self.training_env.num_envs:
            rate = (steps - self._start_steps) / elapsed
            eta_steps = (self.total_timesteps - steps) / rate if rate > 0 else math.inf
            eta = min(eta_steps, self.budget_s - elapsed) if self.budget_s > 0 else eta_steps
            self._bar.set_postfix_str(progress_postfix(rate, eta, self.state), refresh=False)
        return True

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()
