"""``humanoid-rl sweep SWEEP.yaml``: search training settings with Optuna, locally or on a Ray cluster.

Locally the trials run one after another in an Optuna study stored in ``<sweep>/study.db`` (``--resume <sweep>``
continues it), pruned by the median rule on each periodic evaluation. With ``--ray-address`` Ray Tune runs them
(``OptunaSearch`` with the same space, ``MedianStoppingRule`` for pruning). Either way each trial is a normal run
directory under ``<sweep>/trials/`` and the sweep ends with ``trials.csv``, ``trials.png``, ``best.yaml`` (a
``humanoid-rl train --config`` file) and ``sweep.json``. The sweep file's format: :mod:`humanoid_rl.train.sweep_spec`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml

from humanoid_rl.train.sweep_spec import SweepSpec, run_trial

__all__ = ["add_arguments", "run", "run_local", "run_ray"]

SPEC_COPY = "sweep.yaml"  # the sweep file as the sweep ran it (base inlined), what --resume reads
STUDY_DB = "study.db"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_file", type=Path, nargs="?", help="sweep YAML: base settings, space, trials, objective")
    parser.add_argument("--out", type=Path, help="sweep directory (default: runs/sweep-<file name>-<timestamp>)")
    parser.add_argument("--resume", type=Path, metavar="SWEEP_DIR",
                        help="continue a local sweep up to its number of trials (its sweep.yaml; trials it started "
                        "and did not finish count as failed)")
    parser.add_argument("--ray-address", metavar="ADDRESS",
                        help="run the trials with Ray Tune: 'auto' (a running cluster), 'local' (start one here), "
                        "or ray://HOST:PORT")
    parser.add_argument("--ray-num-cpus", type=int, default=None, help="with --ray-address local: CPUs Ray may use")


def _trial_row(number: int, state: str, params: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    value = outcome.get("value")
    return {"number": number, "state": state,
            "value": value if value is not None and math.isfinite(value) else None,
            "success_rate": outcome.get("success_rate"), "mean_return": outcome.get("mean_return"),
            "steps": outcome.get("steps"), "run_dir": outcome.get("run_dir"), "params": params}


def run_local(spec: SweepSpec, sweep_dir: Path) -> list[dict[str, Any]]:
    """The trials in an Optuna study (ask and tell, so the space is the same distributions Ray uses)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    states = optuna.trial.TrialState
    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    if spec.pruner == "median":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    storage = f"sqlite:///{(sweep_dir / STUDY_DB).resolve()}"
    study = optuna.create_study(study_name="sweep", storage=storage, load_if_exists=True, direction="maximize",
                                pruner=pruner)
    for stale in study.get_trials(deepcopy=False, states=(states.RUNNING,)):  # a sweep stopped mid-trial
        study.tell(stale.number, state=states.FAIL)
    # Reseeded per trial so that a resumed sweep does not draw the first trials' values again.
    done = len(study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED)))
    for _ in range(spec.trials - done):
        study.sampler = optuna.samplers.TPESampler(seed=spec.seed + len(study.trials), n_startup_trials=5)
        trial = study.ask(spec.distributions)
        evaluations = 0

        def report(steps: int, value: float, evaluation: dict[str, Any], trial: Any = trial) -> bool:
            nonlocal evaluations
            evaluations += 1
            trial.report(value, steps)
            return evaluations <= spec.prune_warmup_evaluations or not trial.should_prune()

        print(f"[sweep] trial {trial.number}: {trial.params}", flush=True)
        try:
            outcome = run_trial(spec, trial.params, sweep_dir / "trials", f"trial-{trial.number:03d}", report)
        except KeyboardInterrupt:
            study.tell(trial, state=states.FAIL)
            raise
        for key in ("success_rate", "mean_return", "steps", "run_dir", "status"):
            trial.set_user_attr(key, outcome.get(key))
        if not math.isfinite(outcome["value"]):  # no evaluation ran: nothing to rank it by
            study.tell(trial, state=states.FAIL)
        elif outcome["status"] == "stopped":
            study.tell(trial, state=states.PRUNED)
        else:
            study.tell(trial, outcome["value"])
        print(f"[sweep] trial {trial.number}: {outcome['status']}, value {outcome['value']:.4g}", flush=True)
    rows = []
    for t in study.get_trials(deepcopy=False):
        value = t.value if t.state == states.COMPLETE else (t.intermediate_values or {}).get(t.last_step)
        rows.append(_trial_row(t.number, t.state.name, t.params, {**t.user_attrs, "value": value}))
    return rows


def _ray_trial(params: dict[str, Any], spec_data: dict[str, Any], trials_dir: str) -> None:
    """The Ray trainable: the same ``run_trial``, reporting each evaluation through ``ray.tune.report``."""
    from ray import tune

    spec = SweepSpec.from_dict(spec_data)
    name = f"trial-{tune.get_context().get_trial_id()}"

    def report(steps: int, value: float, evaluation: dict[str, Any]) -> bool:
        tune.report({"objective": value, "step": steps, "done": False})
        return True  # Ray's scheduler stops a trial itself

    outcome = run_trial(spec, params, Path(trials_dir), name, report)
    final = {k: outcome.get(k) for k in ("success_rate", "mean_return", "status", "run_dir")}
    tune.report({"objective": outcome["value"], "step": outcome["steps"], "done": True, **final})


def run_ray(spec: SweepSpec, sweep_dir: Path, address: str, num_cpus: int | None) -> list[dict[str, Any]]:
    """The trials as Ray Tune trials (OptunaSearch over the same distributions); joins a Ray already started in
    this process (``ray.init``), else starts or connects to ``address``."""
    import optuna
    import ray
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler, MedianStoppingRule
    from ray.tune.search.optuna import OptunaSearch

    started = not ray.is_initialized()
    if started:
        ray.init(address=None if address == "local" else address, num_cpus=num_cpus, include_dashboard=False,
                 log_to_driver=False)
    try:
        scheduler: Any = FIFOScheduler()
        if spec.pruner == "median":
            scheduler = MedianStoppingRule(time_attr="training_iteration", metric="objective", mode="max",
                                           grace_period=spec.prune_warmup_evaluations, min_samples_required=1)
        search = OptunaSearch(space=spec.distributions, metric="objective", mode="max",
                              sampler=optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=5))
        trial = spec.trial_config({})
        cpus = trial.worker_processes(int(trial.n_envs))  # one core per process of a trial's environments
        trials_dir = str((sweep_dir / "trials").resolve())
        trainable = tune.with_resources(
            tune.with_parameters(_ray_trial, spec_data=spec.to_dict(), trials_dir=trials_dir), {"cpu": cpus})
        tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=search, scheduler=scheduler,
                                                                  num_samples=spec.trials),
                           run_config=tune.RunConfig(name="ray", storage_path=str(sweep_dir.resolve()), verbose=0))
        grid = tuner.fit()
    finally:
        if started:
            ray.shutdown()
    rows = []
    for number, result in enumerate(grid):
        metrics = dict(result.metrics or {})
        state = "FAIL" if result.error else "COMPLETE" if metrics.get("done") else "PRUNED"
        rows.append(_trial_row(number, state, dict(result.config or {}), {**metrics, "value": metrics.get("objective"),
                                                                        "steps": metrics.get("step")}))
    return rows


def _sweep_dir(args: argparse.Namespace) -> tuple[SweepSpec, Path]:
    from humanoid_rl.cli import CommandError
    from humanoid_rl.cli_args import prepare_run_dir

    if args.resume is not None:
        if args.sweep_file is not None or args.ray_address:
            raise CommandError("--resume continues a local sweep from its own sweep.yaml: give no sweep file and "
                               "no --ray-address")
        if not (args.resume / SPEC_COPY).is_file() or not (args.resume / STUDY_DB).is_file():
            raise FileNotFoundError(f"--resume {args.resume}: no {SPEC_COPY} and {STUDY_DB} there; pass a directory "
                                    "made by a local `humanoid-rl sweep`")
        return SweepSpec.load(args.resume / SPEC_COPY), args.resume
    if args.sweep_file is None:
        raise CommandError("give a sweep file (humanoid-rl sweep SWEEP.yaml) or --resume SWEEP_DIR")
    spec = SweepSpec.load(args.sweep_file)
    out = prepare_run_dir(args.out, Path("runs"), f"sweep-{args.sweep_file.stem}",
                          refuse_fix="choose another --out, or continue that sweep with --resume").path
    (out / SPEC_COPY).write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False), encoding="utf-8")
    return spec, out


def run(args: argparse.Namespace) -> int:
    from humanoid_rl.cli import CommandError
    from humanoid_rl.train.sweep_report import write_report

    if args.ray_num_cpus is not None and (args.ray_num_cpus < 1 or args.ray_address != "local"):
        raise CommandError(f"--ray-num-cpus {args.ray_num_cpus}: give a positive number of CPUs, with --ray-address "
                           "local (a cluster's CPUs are its own)")
    spec, sweep_dir = _sweep_dir(args)
    backend = "ray" if args.ray_address else "local"
    print(f"sweep of {spec.trials} trials ({backend}) into {sweep_dir}", flush=True)
    rows = run_ray(spec, sweep_dir, args.ray_address, args.ray_num_cpus) if args.ray_address else \
        run_local(spec, sweep_dir)
    summary = write_report(spec, sweep_dir, rows, backend, command=list(sys.argv))
    best = summary["best"]
    if best is None:
        print(f"no trial completed; see {sweep_dir / 'trials.csv'}", file=sys.stderr, flush=True)
        return 1
    print(f"best: trial {best['number']} value {best['value']:.4g} {best['params']}; train it with: "
          f"humanoid-rl train --config {sweep_dir / 'best.yaml'}", flush=True)
    print(json.dumps({k: summary[k] for k in ("trials", "states")}), flush=True)
    return 0
