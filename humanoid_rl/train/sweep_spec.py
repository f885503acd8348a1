"""The sweep file of ``humanoid-rl sweep`` and the one trial function that both the local (Optuna) and the Ray
runner call.

A sweep file is YAML::

    base: {task: stand, total_timesteps: 200000, eval_freq: 25000}   # or base_config: train.yaml (relative path)
    space:
      learning_rate: {log_uniform: [1.0e-5, 1.0e-3]}
      n_steps: {choice: [256, 512, 1024]}
      net_arch: {choice: [[128, 128], [256, 128]]}
      gamma: {uniform: [0.97, 0.995]}
      n_epochs: {int: [3, 10]}
    trials: 20
    objective: success_then_return    # or success_rate, mean_return
    seed: 0                           # the sampler's
    pruner: median                    # or none
    prune_warmup_evaluations: 1       # evaluations a trial always gets before it can be pruned

The space is expressed once, as Optuna distributions: the local study asks with them and Ray's ``OptunaSearch``
takes them as its space.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from humanoid_rl.cli_args import yaml_error_line
from humanoid_rl.train.config import TrainConfig

__all__ = ["OBJECTIVES", "SweepFileError", "SweepSpec", "decode_params", "objective_value", "run_trial"]

# success_then_return: the success rate decides and the return breaks ties (evaluation returns are ~1e3).
SUCCESS_WEIGHT = 1e6
OBJECTIVES: dict[str, Callable[[dict[str, Any]], float]] = {
    "success_then_return": lambda e: SUCCESS_WEIGHT * e["success_rate"] + e["mean_return"],
    "success_rate": lambda e: float(e["success_rate"]),
    "mean_return": lambda e: float(e["mean_return"]),
}
DISTRIBUTIONS = ("log_uniform", "uniform", "int", "log_int", "choice")
PRUNERS = ("median", "none")
# Settings a trial owns: where its run goes (the sweep decides) cannot be searched.
NOT_SEARCHABLE = ("run_root", "run_name")


class SweepFileError(ValueError):
    """The sweep file is wrong; the message names the key and the fix."""


def objective_value(evaluation: dict[str, Any], objective: str) -> float:
    return float(OBJECTIVES[objective](evaluation))


def _distribution(name: str, spec: Any, source: str) -> Any:
    import optuna.distributions as d

    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise SweepFileError(f"{source}: space.{name} = {spec!r}: write one of " +
                             ", ".join(f"{{{k}: [...]}}" for k in DISTRIBUTIONS))
    kind, values = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(values, list) or not values:
            raise SweepFileError(f"{source}: space.{name}: choice needs a non-empty list of values")
        # Optuna's choices are scalars: a list-valued setting (net_arch) is chosen as its YAML text.
        return d.CategoricalDistribution([_encode(v) for v in values])
    ok = (isinstance(values, list) and len(values) == 2 and all(isinstance(v, int | float) for v in values)
          and not any(isinstance(v, bool) for v in values) and all(math.isfinite(v) for v in values))
    if not ok or values[0] >= values[1]:
        raise SweepFileError(f"{source}: space.{name}: {kind} needs [LOW, HIGH], two numbers with LOW < HIGH")
    low, high = values
    if kind.startswith("log") and low <= 0:
        raise SweepFileError(f"{source}: space.{name}: {kind} needs LOW > 0 (it samples the logarithm)")
    if kind in ("int", "log_int"):
        if int(low) != low or int(high) != high:
            raise SweepFileError(f"{source}: space.{name}: {kind} needs whole numbers")
        return d.IntDistribution(int(low), int(high), log=kind == "log_int")
    return d.FloatDistribution(float(low), float(high), log=kind == "log_uniform")


def _encode(value: Any) -> Any:
    if isinstance(value, list | dict):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return value


def decode_params(params: dict[str, Any], space: dict[str, Any]) -> dict[str, Any]:
    """A trial's sampled values as training settings (the YAML text of a list-valued choice back to its list)."""
    out = {}
    for name, value in params.items():
        raw = space[name]
        listed = "choice" in raw and any(isinstance(v, list | dict) for v in raw["choice"])
        out[name] = yaml.safe_load(value) if listed and isinstance(value, str) else value
    return out


@dataclass
class SweepSpec:
    base: dict[str, Any]
    space: dict[str, Any]  # name -> the file's {kind: values}
    trials: int
    objective: str = "success_then_return"
    seed: int = 0
    pruner: str = "median"
    prune_warmup_evaluations: int = 1
    distributions: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path) -> SweepSpec:
        if not path.is_file():
            raise FileNotFoundError(f"sweep file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise SweepFileError(f"{path}: not valid YAML ({yaml_error_line(exc)})") from None
        if not isinstance(data, dict):
            raise SweepFileError(f"{path}: expected a mapping with base, space and trials")
        data = dict(data)
        if "base_config" in data:
            if "base" in data:
                raise SweepFileError(f"{path}: give base or base_config, not both")
            base_path = path.parent / str(data.pop("base_config"))
            base = TrainConfig.load_yaml(base_path).to_dict()  # validates it, names the file when it is wrong
            data["base"] = base
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "sweep") -> SweepSpec:
        known = {f.name for f in dataclasses.fields(cls)} - {"distributions"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SweepFileError(f"{source}: unknown keys {unknown}; a sweep file has {sorted(known)}")
        for key in ("base", "space", "trials"):
            if key not in data:
                raise SweepFileError(f"{source}: no {key!r}; a sweep file needs base (or base_config), space, trials")
        base, space = data["base"] or {}, data["space"]
        if not isinstance(base, dict) or not isinstance(space, dict) or not space:
            raise SweepFileError(f"{source}: base must be a mapping of training settings, space a non-empty mapping")
        settings = {f.name for f in dataclasses.fields(TrainConfig)}
        for name in space:
            if name not in settings or name in NOT_SEARCHABLE:
                raise SweepFileError(f"{source}: space.{name} is not a searchable training setting (see "
                                     "`humanoid-rl train --help`)")
        spec = cls(**{k: v for k, v in data.items()})
        if not isinstance(spec.trials, int) or isinstance(spec.trials, bool) or spec.trials < 1:
            raise SweepFileError(f"{source}: trials = {spec.trials!r}: use a positive integer")
        if spec.objective not in OBJECTIVES:
            raise SweepFileError(f"{source}: objective = {spec.objective!r}: use one of {list(OBJECTIVES)}")
        if spec.pruner not in PRUNERS:
            raise SweepFileError(f"{source}: pruner = {spec.pruner!r}: use one of {list(PRUNERS)}")
        for key in ("seed", "prune_warmup_evaluations"):
            value = getattr(spec, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SweepFileError(f"{source}: {key} = {value!r}: use an integer >= 0")
        spec.distributions = {name: _distribution(name, raw, source) for name, raw in space.items()}
        TrainConfig.from_dict(spec.base, source=f"{source}: base")  # a wrong base fails here, not in trial 1
        return spec

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "distributions"}

    def trial_config(self, params: dict[str, Any], run_root: Path | str = "runs", run_name: str = "") -> TrainConfig:
        """The training config of a trial: the base, the sampled values, and where its run goes."""
        settings = {**self.base, **decode_params(params, self.space), "run_root": str(run_root),
                    "run_name": run_name}
        return TrainConfig.from_dict(settings, source="sweep trial")


def run_trial(
    spec: SweepSpec, params: dict[str, Any], run_root: Path, run_name: str,
    report: Callable[[int, float, dict[str, Any]], bool],
) -> dict[str, Any]:
    """One trial: a normal training run in ``run_root/run_name``. ``report(steps, value, evaluation)`` sees the
    running best objective after each evaluation and returns False to stop (prune) the run. Returns the outcome:
    the best evaluation's value, success rate and return, the steps, the run's status and directory."""
    from humanoid_rl.train.cli import train

    config = spec.trial_config(params, run_root, run_name)
    best: dict[str, Any] = {"value": -math.inf}

    def on_evaluation(evaluation: dict[str, Any]) -> bool:
        value = objective_value(evaluation, spec.objective)
        if value > best["value"]:
            best.update(value=value, success_rate=evaluation["success_rate"], mean_return=evaluation["mean_return"],
                        best_steps=evaluation["steps"])
        return report(int(evaluation["steps"]), best["value"], evaluation)

    metrics = train(config, on_evaluation=on_evaluation)
    return {**best, "status": metrics["status"], "steps": metrics["steps"], "evaluations": len(metrics["evaluations"]),
            "run_dir": str(run_root / run_name)}
