"""``humanoid-rl import``: a policy trained elsewhere (ONNX, or TorchScript from rsl_rl / legged_gym) → our model file.

The user writes a contract YAML (``docs/importing_policies.md``): how the policy sees the robot. The import

1. reads it against the robot YAML (every joint must exist; default pose and gains that differ from the robot
   YAML are listed and refused, because the PD controller applies the robot YAML's);
2. turns the model into an ONNX graph ``obs → actions`` (plus one input/output per recurrent memory tensor):
   an ONNX file gets its tensors renamed; a TorchScript module is exported, and a recurrent one (LSTM/GRU memory
   kept in buffers, as rsl_rl's exporter writes) with its memory as explicit inputs/outputs — a plain
   ``torch.onnx.export`` would freeze the memory into constants;
3. feeds the original model and the new file's runtime (``OnnxPolicy``, the node's code path) the same
   observation sequences (≥ 200 steps each, memory carried, observations built by ``ObservationBuilder`` from a
   synthetic walking-like state trajectory) and refuses the result if any action differs by more than 1e-5,
   naming the worst step;
4. writes the contract, recorded pairs (sequences for recurrent models) and a model card, as ``export`` does.

Runs on the training machine (torch for TorchScript; onnx for the graph edit).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_rl.core.contract import ContractError, PolicyContract, RobotState
from humanoid_rl.core.contract_yaml import load_contract_yaml, robot_differences
from humanoid_rl.core.observation import ObservationBuilder
from humanoid_rl.core.rotations import quat_from_axis_angle, quat_multiply
from humanoid_rl.train.export import PARITY_TOLERANCE, _command_line
from humanoid_rl.train.import_sources import ImportFailed, Source, onnx_source, torchscript_source

__all__ = ["ImportFailed", "add_arguments", "import_policy", "run"]

RECORDED_STEPS = 100  # per recorded sequence (recurrent) — the file stays small, replay stays fast


# ------------------------------------------------------------------------------------------ inputs for parity


def synthetic_sequence(contract: PolicyContract, spec: Any, n_steps: int, rng: np.random.Generator,
                       act: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Observations and the reference's actions over a walking-like state trajectory (joint oscillations around
    the default pose at the gait frequency, a small swaying tilt, a random velocity command), built by the
    contract's ObservationBuilder with the reference's own clipped actions as ``last_action``."""
    builder = ObservationBuilder(contract)
    dt = 1.0 / contract.policy_rate_hz
    period = contract.gait_period_s or 0.8
    n = len(contract.joint_names)
    amplitude, phase = rng.uniform(0.05, 0.3, n), rng.uniform(0, 2 * np.pi, n)
    command = np.array([rng.uniform(0.0, 1.0), rng.uniform(-0.3, 0.3), rng.uniform(-0.5, 0.5)])
    last = np.zeros(contract.n_actions)
    observations, actions = [], []
    for k in range(n_steps):
        w = 2 * np.pi * k * dt / period
        roll, pitch = 0.05 * np.sin(w + 0.3), 0.03 * np.sin(2 * w)
        state = RobotState(
            base_ang_vel=np.array([0.05 * np.cos(w), 0.06 * np.cos(2 * w), 0.0]) + rng.normal(0, 0.05, 3),
            base_quat=quat_multiply(quat_from_axis_angle(np.array([1.0, 0.0, 0.0]), roll),
                                    quat_from_axis_angle(np.array([0.0, 1.0, 0.0]), pitch)),
            joint_pos=np.asarray(spec.default_pose) + amplitude * np.sin(w + phase) + rng.normal(0, 0.01, n),
            joint_vel=amplitude * (2 * np.pi / period) * np.cos(w + phase) + rng.normal(0, 0.1, n),
            base_lin_vel=np.array([command[0], command[1], 0.0]) + rng.normal(0, 0.05, 3),
            base_height=float(spec.nominal_base_height + 0.01 * np.sin(2 * w)),
            foot_contacts=np.array([float(np.sin(w) >= 0), float(np.sin(w) <= 0)]),
            imu_lin_acc=np.array([0.0, 0.0, 9.81]) + rng.normal(0, 0.3, 3),
        )
        obs = builder.build(state, command, last)
        action = np.asarray(act(obs), dtype=np.float32)
        observations.append(obs)
        actions.append(action)
        last = contract.clip_action(action)
    return np.array(observations, np.float32), np.array(actions, np.float32)


# ------------------------------------------------------------------------------------------ the import


def import_policy(model: Path, contract_file: Path, output: Path, *, robot_config: str | None = None,
                  steps: int = 250, sequences: int = 2, seed: int = 7, command: list[str] | None = None,
                  write_card: bool = True) -> dict[str, Any]:
    """Write ``output`` (and its card) from ``model`` and ``contract_file``; return the parity report."""
    import onnx

    from humanoid_rl.core.robot_spec import RobotSpec
    from humanoid_rl.policy.model_file import write_model_metadata
    from humanoid_rl.policy.runtime import OnnxPolicy, load_policy

    if steps < 200 or sequences < 1:
        raise ImportFailed(f"--steps {steps} --sequences {sequences}: parity is checked over at least one sequence "
                           "of at least 200 steps")
    started = time.monotonic()
    model, output = Path(model), Path(output)
    if not model.is_file():
        raise ImportFailed(f"model {model} does not exist (absolute: {model.absolute()})")
    spec = RobotSpec.load(robot_config)
    decl = load_contract_yaml(contract_file, spec)
    differences = robot_differences(decl.contract, spec)
    if differences:
        lines = "; ".join(differences)
        raise ImportFailed(f"{decl.source}: the contract's default pose / gains differ from the robot YAML "
                           f"{spec.config_path} ({len(differences)}): {lines}. The PD controller applies the robot "
                           "YAML's, so the policy would run with other gains than it was trained with. Fix: put the "
                           "policy's values in the robot YAML (or omit them in the contract)")
    output.parent.mkdir(parents=True, exist_ok=True)
    work = output.with_name(output.name + ".import.tmp")
    work.mkdir(exist_ok=True)
    tmp_model = work / "model.onnx"
    try:
        if model.suffix.lower() == ".onnx":
            source = onnx_source(model, decl)
        else:
            with warnings.catch_warnings():  # torch's deprecation notes on jit/TorchScript export: not the user's
                warnings.simplefilter("ignore")
                source = torchscript_source(model, decl, work)
        contract = replace(decl.contract, recurrent_state=source.recurrent_state)
        rng = np.random.default_rng(seed)
        runs = []
        for _ in range(sequences):
            source.reset()
            runs.append(synthetic_sequence(contract, spec, steps, rng, source.act))
        obs, actions, starts = _recorded(runs, contract.recurrent)
        proto = source.graph
        onnx.checker.check_model(proto)
        write_model_metadata(proto, contract, obs, actions, _summary(model, contract_file, source, spec),
                             tolerance=PARITY_TOLERANCE, sequence_starts=starts)
        onnx.save(proto, str(tmp_model))
        parity = _parity(OnnxPolicy.load(tmp_model), runs)
        if not parity["max_abs_diff"] <= PARITY_TOLERANCE:
            raise ImportFailed(
                f"the imported model differs from {model.name} by {parity['max_abs_diff']:.3g} (> {PARITY_TOLERANCE}) "
                f"at step {parity['worst_step']} of sequence {parity['worst_sequence']}, joint "
                f"{parity['worst_joint']}: nothing was written"
                + (". Its memory is probably not carried (a frozen recurrent state)" if parity["worst_step"] else "")
            )
        # The deployment path must accept it: contract against the robot, recorded pairs replayed.
        policy = load_policy(tmp_model, PolicyContract.from_robot(spec, policy_rate_hz=contract.policy_rate_hz))
        replay = policy.verify_recorded_pairs()
        tmp_model.replace(output)
    finally:
        for leftover in work.glob("*"):
            leftover.unlink()
        work.rmdir()
    result = {
        "output": str(output),
        "sha256": hashlib.sha256(output.read_bytes()).hexdigest(),
        "source": str(model),
        "source_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "contract_file": str(contract_file),
        "robot_config": str(spec.config_path),
        "kind": source.kind,
        "parity": parity,
        "load_policy_replay": replay.describe(),
        "n_recorded_pairs": len(obs),
        "import_seconds": round(time.monotonic() - started, 1),
    }
    if write_card:
        card = output.with_suffix(".md")
        card.write_text(model_card(output, result, contract, command or list(sys.argv)), encoding="utf-8")
        result["model_card"] = str(card)
    return result


def _recorded(runs: list[tuple[np.ndarray, np.ndarray]], recurrent: bool
              ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    if recurrent:  # whole sequences from zero memory
        obs = np.concatenate([o[:RECORDED_STEPS] for o, _ in runs])
        actions = np.concatenate([a[:RECORDED_STEPS] for _, a in runs])
        return obs, actions, tuple(range(0, len(obs), min(RECORDED_STEPS, len(runs[0][0]))))
    all_obs, all_actions = np.concatenate([o for o, _ in runs]), np.concatenate([a for _, a in runs])
    picked = np.linspace(0, len(all_obs) - 1, 64).round().astype(int)
    return all_obs[picked], all_actions[picked], (0,)


def _parity(policy: Any, runs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """The runtime against the original over every sequence, memory carried; the worst step named."""
    worst = {"max_abs_diff": 0.0, "worst_sequence": 0, "worst_step": 0, "worst_joint": ""}
    for s, (obs, reference) in enumerate(runs):
        policy.reset()
        for k in range(len(obs)):
            diff = np.abs(policy.act(obs[k]).astype(np.float64) - reference[k])
            if diff.max() > worst["max_abs_diff"]:
                worst = {"max_abs_diff": float(diff.max()), "worst_sequence": s, "worst_step": k,
                         "worst_joint": policy.contract.policy_joints[int(np.argmax(diff))]}
    policy.reset()
    worst["steps"] = [len(o) for o, _ in runs]
    return worst


def _summary(model: Path, contract_file: Path, source: Source, spec: Any) -> dict[str, Any]:
    return {
        "imported_from": model.name,
        "source_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "source_kind": source.kind,
        "contract_file": Path(contract_file).name,
        "robot": spec.name,
    }


def model_card(output: Path, result: dict[str, Any], contract: PolicyContract, command: list[str]) -> str:
    p = result["parity"]
    scale = contract.action_scale
    terms = "\n".join(
        f"| {t.name} | {t.size} | {list(t.scale) if len(set(t.scale)) > 1 else t.scale[0]} | {t.clip} | {t.history} |"
        for t in contract.terms)
    return "\n".join([
        f"# {output.name}",
        "",
        f"Imported by `humanoid-rl import` from `{result['source']}` ({result['kind']}), with the contract "
        f"`{result['contract_file']}` for the robot `{result['robot_config']}`. The contract and recorded "
        "(obs, action) pairs are in the ONNX metadata; the policy node builds its observations from them.",
        "",
        "| | |",
        "|---|---|",
        f"| file sha256 | `{result['sha256']}` |",
        f"| source sha256 | `{result['source_sha256']}` |",
        f"| policy joints ({contract.n_actions}) | {', '.join(contract.policy_joints)} |",
        f"| observation | {contract.n_obs} values, frame_stack {contract.frame_stack}, {contract.history_order} |",
        f"| action | scale {scale if isinstance(scale, float) else list(scale)}, clip {contract.action_clip} |",
        f"| policy rate | {contract.policy_rate_hz:g} Hz |",
        f"| gait period | {contract.gait_period_s} s |",
        f"| recurrent state | {[r.to_dict() for r in contract.recurrent_state] or 'none'} |",
        f"| parity original vs ONNX Runtime (max abs) | {p['max_abs_diff']:.2g} over sequences of {p['steps']} steps, "
        "memory carried |",
        f"| recorded pairs | {result['n_recorded_pairs']} ({result['load_policy_replay']}) |",
        "",
        "| term | size | scale | clip | history |",
        "|---|---|---|---|---|",
        terms,
        "",
        "Import:",
        "",
        "```",
        _command_line(command),
        "```",
        "",
    ])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL", help="ONNX file (any tensor names) or TorchScript .pt")
    parser.add_argument("--contract", type=Path, required=True, metavar="CONTRACT.yaml",
                        help="how the policy sees the robot (docs/importing_policies.md)")
    parser.add_argument("--robot-config", default=None, help="robot YAML (default: the shipped humanoid)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="ONNX file to write, e.g. models/NAME.onnx")
    parser.add_argument("--steps", type=int, default=250, help="steps per parity sequence (≥ 200, default 250)")
    parser.add_argument("--sequences", type=int, default=2, help="parity sequences (default 2)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic parity trajectories")
    parser.add_argument("--no-card", action="store_true", help="do not write the model card NAME.md")


def run(args: argparse.Namespace) -> int:
    from humanoid_rl.cli import CommandError
    from humanoid_rl.policy.model_file import ModelFileError
    from humanoid_rl.policy.runtime import RecordedPairsError

    command = ["humanoid-rl", *sys.argv[1:]] if sys.argv and "import" in sys.argv else None
    try:
        result = import_policy(args.model, args.contract, args.output, robot_config=args.robot_config,
                               steps=args.steps, sequences=args.sequences, seed=args.seed, command=command,
                               write_card=not args.no_card)
    except (ImportFailed, ContractError, ModelFileError, RecordedPairsError) as exc:
        raise CommandError(str(exc)) from exc
    p = result["parity"]
    print(f"imported {result['source']} ({result['kind']}) -> {result['output']}\n"
          f"  parity max|diff| {p['max_abs_diff']:.2g} over {len(p['steps'])} sequences of {p['steps'][0]} steps\n"
          f"  load_policy: {result['load_policy_replay']}\n"
          f"  sha256 {result['sha256']}" + (f"\n  model card {result['model_card']}" if "model_card" in result else ""))
    return 0
