"""`humanoid-rl sysid`: fit the simulator to a recording of the robot (see humanoid_rl/sim/sysid.py).

    humanoid-rl sysid BAG [--robot-config ROBOT.yaml] -o fitted.yaml

reads the bag's /joint_states and /joint_commands, replays the commands in PyBullet (base held: the robot
hung from a gantry while it was recorded; ``--standing`` for a free base) and fits ``--fit`` items with CMA-ES.
Writes ``fitted.yaml`` (``sim_params``: what ``HumanoidSim`` and ``humanoid-rl train --sim-params`` read),
``fitted.png`` (recorded vs simulated joint trajectories before and after the fit) and ``fitted.json`` (values,
trajectory RMSE before/after, evaluations).

``--emulate TRUTH.yaml`` makes the recording first, from the simulator configured with TRUTH's parameters (the
hardware emulator's simulator, with its sensor noise), hung and excited with chirps and steps, writes it as a
bag beside the output and fits it: the JSON then says how far each recovered value is from the truth.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from humanoid_rl.cli_args import non_negative_int, positive_float, positive_int

# How close `--emulate` must recover each item (the acceptance of the method; test_sysid checks it).
RECOVERY_TOLERANCE: dict[str, float] = {
    "kp_scale": 0.05,  # relative
    "kd_scale": 0.10,  # relative
    "mass_scale": 0.08,  # relative
    "joint_friction_nm": 0.15,  # N*m
    "control_latency_s": 0.002,  # s
}
RELATIVE = ("kp_scale", "kd_scale", "mass_scale")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", nargs="?", type=Path, help="rosbag2 folder (sqlite3 or MCAP) from `humanoid-rl record`")
    parser.add_argument("--robot-config", default="", help="robot YAML (default: the shipped humanoid)")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="fitted parameters YAML; the plot (.png) and the report (.json) are written beside it")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--fit", nargs="+", default=None, metavar="ITEM",
                        help="what to fit: control_latency_s and ITEM.GROUP (kp_scale, kd_scale, joint_friction_nm, "
                        "mass_scale; groups legs, arms, torso); default: kp, kd, friction and mass of the legs and "
                        "the latency")  # fmt: skip
    parser.add_argument("--start", type=Path, default=None, help="start from this fitted YAML (default: nominal)")
    parser.add_argument("--standing", action="store_true",
                        help="the robot stood (base free) while recorded; default: it hung (base held)")
    parser.add_argument("--method", choices=("lsq", "cma"), default="lsq",
                        help="lsq: least squares (default, ~60 simulations); cma: CMA-ES (several hundred)")
    parser.add_argument("--max-evals", type=positive_int, default=150, help="simulations the fit may run (default 150)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seeds CMA-ES and the emulated recording")
    emulate = parser.add_argument_group("emulated recording (proof of the method)")
    emulate.add_argument("--emulate", type=Path, default=None, metavar="TRUTH.yaml",
                         help="record from the simulator with these (perturbed) parameters instead of reading BAG")
    emulate.add_argument("--duration", type=positive_float, default=4.0, help="emulated recording length, s")


def _check_output(path: Path, overwrite: bool) -> None:
    if path.suffix not in (".yaml", ".yml"):
        raise ValueError(f"-o {path}: name the fitted parameters file *.yaml")
    beside = [path, path.with_suffix(".png"), path.with_suffix(".json")]
    existing = [str(p) for p in beside if p.exists()]
    if existing and not overwrite:
        raise ValueError(f"{', '.join(existing)} exist; choose another -o or pass --overwrite")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"-o {path}: the folder {path.parent} does not exist")


def run(args: argparse.Namespace) -> int:
    from humanoid_rl.cli import CommandError
    from humanoid_rl.core.robot_spec import RobotSpec
    from humanoid_rl.sim.bag_io import read_recording
    from humanoid_rl.sim.sim_params import SimParams, load_sim_params
    from humanoid_rl.sim.sysid import DEFAULT_FIT_KEYS, fit_parameter

    started = time.monotonic()
    try:  # everything the user gave is checked (and the bag read) before the fit starts
        if (args.bag is None) == (args.emulate is None):
            raise ValueError("give a BAG to fit, or --emulate TRUTH.yaml to record one from the simulator (not both)")
        _check_output(args.output, args.overwrite)
        spec = RobotSpec.load(args.robot_config or None)
        parameters = [fit_parameter(key, spec.joint_names) for key in (args.fit or DEFAULT_FIT_KEYS)]
        start = load_sim_params(args.start) if args.start is not None else SimParams()
        truth = load_sim_params(args.emulate) if args.emulate is not None else None
        bag = args.bag if truth is None else _emulated_bag(spec, truth, args)
        recording = read_recording(bag, spec.joint_names)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    print(f"{bag}: {recording.state_times.size} joint states and {recording.command_times.size} commands over "
          f"{recording.duration_s:.1f} s; fitting {', '.join(p.key for p in parameters)}")  # fmt: skip
    report = _fit_and_write(spec, recording, parameters, start, truth, args)
    report.update(bag=str(bag), wall_s=round(time.monotonic() - started, 1), command=" ".join(sys.argv))
    args.output.with_suffix(".json").write_text(json.dumps(report, indent=2))
    print(_summary(report, args.output))
    return 0


def _emulated_bag(spec: Any, truth: Any, args: argparse.Namespace) -> Path:
    from humanoid_rl.core.excitation import Excitation
    from humanoid_rl.sim.bag_io import write_recording
    from humanoid_rl.sim.sim_params import joint_groups
    from humanoid_rl.sim.sysid import record_in_sim

    bag = args.output.with_name(args.output.stem + "_bag")
    if bag.exists():
        if not args.overwrite:
            raise ValueError(f"{bag} exists; choose another -o or pass --overwrite")
        import shutil

        shutil.rmtree(bag)
    legs = list(joint_groups(spec.joint_names)["legs"])
    recording = record_in_sim(spec, truth, Excitation(duration_s=args.duration, seed=args.seed), legs, seed=args.seed)
    write_recording(bag, recording)
    return bag


def _fit_and_write(spec: Any, recording: Any, parameters: list[Any], start: Any, truth: Any,
                   args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    from humanoid_rl.sim.sim_params import save_sim_params
    from humanoid_rl.sim.sysid import replay, scored_joints
    from humanoid_rl.sim.sysid_fit import fit

    joints = scored_joints(spec.joint_names, parameters)
    hanging = not args.standing

    def progress(evaluations: int, best: float) -> None:
        print(f"\r  {evaluations:4d} simulations, best cost {best:.5f}", end="", flush=True)

    result = fit(spec, recording, start=start, parameters=parameters, joints=joints, hanging=hanging,
                 method=args.method, max_evaluations=args.max_evals, seed=args.seed, on_iteration=progress)  # fmt: skip
    print()
    items: dict[str, dict[str, float | bool | None]] = {}
    for p in parameters:
        item: dict[str, float | bool | None] = {"start": _start_value(start, p.key), "fitted": result.values[p.key]}
        if truth is not None:
            item.update(_recovery(p.key, truth, result.values[p.key]))
        items[p.key] = item
    report: dict[str, Any] = {
        "robot": spec.name,
        "hanging": hanging,
        "scored_joints": [spec.joint_names[i] for i in joints],
        "parameters": items,
        "rmse_before_rad": result.rmse_before_rad,
        "rmse_after_rad": result.rmse_after_rad,
        "error_reduction_factor": result.rmse_before_rad / max(result.rmse_after_rad, 1e-12),
        "cost_before": result.cost_before,
        "cost_after": result.cost_after,
        "initial_guess_from_efforts": result.initial_guess,
        "evaluations": result.evaluations,
        "method": args.method,
        "recording_s": recording.duration_s,
        "cost_history": result.history,
    }
    if truth is not None:
        report["truth"] = truth.to_dict()
        report["all_within_tolerance"] = all(bool(i["within_tolerance"]) for i in items.values())
    fit_record = {k: report[k] for k in ("rmse_before_rad", "rmse_after_rad", "error_reduction_factor", "evaluations")}
    save_sim_params(args.output, result.params, spec, {
        "fit": {**fit_record, "items": list(items), "bag": str(args.bag or "(emulated)")},
    })  # fmt: skip
    before = replay(spec, recording, start, hanging=hanging)
    after = replay(spec, recording, result.params, hanging=hanging)
    from humanoid_rl.apps.sysid_plot import plot_fit

    plot_fit(args.output.with_suffix(".png"), spec, recording, before, after, joints, result)
    return report


def _start_value(params: Any, key: str) -> float:
    """An item's value in ``params``, its nominal value where unset (a scale of 1, no friction, no latency)."""
    from humanoid_rl.sim.sysid import NOMINAL

    value = params.value(key)
    return float(value) if value is not None else NOMINAL.get(key.partition(".")[0], 0.0)


def _recovery(key: str, truth: Any, fitted: float) -> dict[str, float | bool | None]:
    name = key.partition(".")[0]
    true_value = _start_value(truth, key)
    error = fitted - true_value
    relative = name in RELATIVE
    measured = abs(error) / true_value if relative else abs(error)
    return {
        "truth": true_value,
        "error": error,
        "tolerance": RECOVERY_TOLERANCE[name],
        "tolerance_kind": "relative" if relative else "absolute",
        "within_tolerance": bool(measured <= RECOVERY_TOLERANCE[name]),
    }


def _summary(report: dict[str, Any], output: Path) -> str:
    lines = [f"{'item':<26}{'start':>10}{'fitted':>10}" + (f"{'truth':>10}{'ok':>5}" if "truth" in report else "")]
    for key, item in report["parameters"].items():
        line = f"{key:<26}{item['start']:>10.4g}{item['fitted']:>10.4g}"
        if "truth" in item:
            line += f"{item['truth']:>10.4g}{'yes' if item['within_tolerance'] else 'NO':>5}"
        lines.append(line)
    lines.append(f"joint trajectory RMSE {report['rmse_before_rad']:.4f} rad → {report['rmse_after_rad']:.4f} rad "
                 f"({report['error_reduction_factor']:.1f}x lower) after {report['evaluations']} simulations")
    lines.append(f"wrote {output}, {output.with_suffix('.png')}, {output.with_suffix('.json')}")
    return "\n".join(lines)
