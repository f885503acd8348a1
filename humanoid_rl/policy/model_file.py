"""The policy model file: one definition shared by ``humanoid-rl export`` (writer) and the runtime (reader).

Format
------
A policy is one ONNX file (``models/<name>.onnx``):

* graph input ``obs``: float32 ``[batch, n_obs]``, batch dynamic (a string dim such as ``"batch"``) or 1, ``n_obs``
  fixed and equal to the contract's ``n_obs``;
* graph output ``actions``: float32 ``[batch, n_actions]``, ``n_actions`` = the contract's count of policy joints;
* a recurrent policy has one more input and output per ``recurrent_state`` entry of its contract (the memory:
  output of step t is input of step t+1, zeros after a reset), float32 of the declared shape;
* observation normalisation is INSIDE the graph: ``obs`` is the raw contract observation
  (:meth:`PolicyContract.build_observation`), never pre-normalised by the caller;
* ``metadata_props`` (string → string), all written by :func:`write_model_metadata`:

  ``humanoid_rl.contract``
      :meth:`PolicyContract.to_json` of the contract the policy was trained with (joint order, observation
      terms and scales, action scale/clip, default pose, gains, policy rate, robot config hash).
  ``humanoid_rl.recorded_pairs``
      JSON ``{"obs": [[...], ...], "actions": [[...], ...], "tolerance": 1e-5}``: observations from evaluation
      rollouts and the actions the trained network produced for them. The runtime replays them on load; a
      model whose replayed actions differ by more than ``tolerance`` (absolute) is refused. For a recurrent
      policy the rows are sequences with the memory carried, each starting from zero memory at the row indices
      listed in ``"sequence_starts"``, and they are replayed as such.
  ``humanoid_rl.training``
      JSON object summarising training (algorithm, steps, environment, returns, ...). Informational.

Reading goes through ONNX Runtime only (:func:`open_session`, :func:`parse_model_metadata`); the ``onnx``
package is needed only by the writer, and :func:`write_model_metadata` does not import it either (it edits
the ``ModelProto`` it is given).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from humanoid_rl.core.contract import METADATA_KEY, ContractError, PolicyContract

if TYPE_CHECKING:
    import onnx
    import onnxruntime

__all__ = [
    "CONTRACT_KEY",
    "DEFAULT_PAIR_TOLERANCE",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "RECORDED_PAIRS_KEY",
    "TRAINING_KEY",
    "ModelFileError",
    "ModelMetadata",
    "ModelMetadataError",
    "ModelNotFoundError",
    "RecordedPairs",
    "TensorSignature",
    "check_model_file",
    "io_mismatches",
    "open_session",
    "parse_model_metadata",
    "read_model_metadata",
    "write_model_metadata",
]

INPUT_NAME = "obs"
OUTPUT_NAME = "actions"
CONTRACT_KEY = METADATA_KEY
RECORDED_PAIRS_KEY = "humanoid_rl.recorded_pairs"
TRAINING_KEY = "humanoid_rl.training"
# Absolute tolerance on replayed actions: float32 inference of the same weights on another machine or runtime
# differs by ~1e-6; an edited weight or a missing normaliser differs by orders of magnitude more.
DEFAULT_PAIR_TOLERANCE = 1e-5
_ONNX_FLOAT = 1  # onnx.TensorProto.FLOAT, without importing onnx
_EXPORT_FIX = (
    "export the policy with `humanoid-rl export`, which writes the graph and metadata this runtime expects"
)


class ModelFileError(ValueError):
    """The model file is unusable (missing, not ONNX, wrong inputs/outputs, bad metadata). Says the fix."""


class ModelNotFoundError(ModelFileError, FileNotFoundError):
    """The model path does not exist."""


class ModelMetadataError(ModelFileError):
    """The humanoid_rl metadata is missing or malformed: not a file written by ``humanoid-rl export``."""


@dataclass(frozen=True)
class TensorSignature:
    """Name, shape (ints for fixed dims, str/None for dynamic ones) and element type of a graph tensor."""

    name: str
    shape: tuple[int | str | None, ...]
    element_type: str  # "float32", or whatever else the graph declares


@dataclass(frozen=True)
class RecordedPairs:
    """Evaluation observations and the actions the trained network gave for them (float32 rows)."""

    obs: np.ndarray  # (n, n_obs)
    actions: np.ndarray  # (n, n_actions)
    tolerance: float = DEFAULT_PAIR_TOLERANCE
    sequence_starts: tuple[int, ...] = (0,)  # rows where the recurrent memory starts from zero

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    def to_json(self) -> str:
        # float32 → float64 is exact, and JSON round-trips float64 exactly: replay sees the recorded bits.
        data: dict[str, Any] = {
            "obs": self.obs.astype(np.float64).tolist(),
            "actions": self.actions.astype(np.float64).tolist(),
            "tolerance": self.tolerance,
        }
        if self.sequence_starts != (0,):
            data["sequence_starts"] = list(self.sequence_starts)
        return json.dumps(data)


@dataclass(frozen=True)
class ModelMetadata:
    """Everything ``humanoid-rl export`` stores next to the graph."""

    contract: PolicyContract
    recorded_pairs: RecordedPairs
    training: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the file it was read from, for messages


# ---------------------------------------------------------------------------------------------- checks


def check_recorded_pairs(
    obs: Any,
    actions: Any,
    contract: PolicyContract,
    tolerance: float = DEFAULT_PAIR_TOLERANCE,
    source: str = "recorded pairs",
    sequence_starts: Sequence[int] = (0,),
) -> RecordedPairs:
    """Validated float32 copies; raises ModelMetadataError naming the shape or value problem."""
    try:
        obs_array = np.asarray(obs, dtype=np.float32)
        action_array = np.asarray(actions, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ModelMetadataError(
            f"{source}: recorded pairs are not numeric arrays ({exc}). Fix: {_EXPORT_FIX}"
        ) from exc
    problems = []
    if obs_array.ndim != 2 or obs_array.shape[1] != contract.n_obs:
        problems.append(f"obs has shape {obs_array.shape}, expected (n, {contract.n_obs})")
    if action_array.ndim != 2 or action_array.shape[1] != contract.n_actions:
        problems.append(f"actions has shape {action_array.shape}, expected (n, {contract.n_actions})")
    if not problems and obs_array.shape[0] != action_array.shape[0]:
        problems.append(f"{obs_array.shape[0]} observations but {action_array.shape[0]} actions")
    if not problems and obs_array.shape[0] == 0:
        problems.append("no pairs recorded (at least one is needed to verify the model)")
    if not problems and not (np.all(np.isfinite(obs_array)) and np.all(np.isfinite(action_array))):
        problems.append("non-finite values among the recorded pairs")
    if not (isinstance(tolerance, int | float) and math.isfinite(tolerance) and tolerance > 0):
        problems.append(f"tolerance {tolerance!r} is not a positive number")
    starts = tuple(int(i) for i in sequence_starts)
    ordered = bool(starts) and starts[0] == 0 and list(starts) == sorted(set(starts))
    if not problems and not (ordered and starts[-1] < len(obs_array)):
        problems.append(f"sequence_starts {list(starts)} must begin at 0 and increase within the {len(obs_array)} rows")
    if problems:
        raise ModelMetadataError(
            f"{source}: invalid recorded pairs: {'; '.join(problems)}. Fix: {_EXPORT_FIX}"
        )
    return RecordedPairs(obs=obs_array, actions=action_array, tolerance=float(tolerance), sequence_starts=starts)


def io_mismatches(
    inputs: Sequence[TensorSignature], outputs: Sequence[TensorSignature], contract: PolicyContract
) -> list[str]:
    """How the graph's inputs/outputs differ from ``obs [batch, n_obs] → actions [batch, n_actions]`` plus one
    input/output pair per recurrent state the contract declares."""
    out: list[str] = []
    state = contract.recurrent_state
    for kind, signatures, name, width, extra in (
        ("input", inputs, INPUT_NAME, contract.n_obs, [(r.input, r.shape) for r in state]),
        ("output", outputs, OUTPUT_NAME, contract.n_actions, [(r.output, r.shape) for r in state]),
    ):
        expected = [name, *(n for n, _ in extra)]
        by_name = {s.name: s for s in signatures}
        if sorted(by_name) != sorted(expected):
            undeclared = [n for n in by_name if n not in expected]
            hint = (
                f" ({undeclared} not declared: a recurrent state {kind} needs an entry in the contract's "
                "recurrent_state)" if undeclared and name in by_name else ""
            )
            out.append(f"graph {kind}s are {[s.name for s in signatures]}, expected exactly {expected}{hint}")
            continue
        for state_name, shape in extra:
            sig = by_name[state_name]
            if sig.element_type != "float32" or len(sig.shape) != len(shape) or any(
                isinstance(d, int) and d != want for d, want in zip(sig.shape, shape, strict=True)
            ):
                out.append(f"recurrent state {kind} {state_name!r} is {sig.element_type} {list(sig.shape)}, "
                           f"the contract says float32 {list(shape)}")
        sig = by_name[name]
        if sig.element_type != "float32":
            out.append(f"{kind} {name!r} is {sig.element_type}, expected float32")
        if len(sig.shape) != 2:
            out.append(f"{kind} {name!r} has shape {list(sig.shape)}, expected [batch, {width}]")
            continue
        if sig.shape[1] != width:
            out.append(
                f"{kind} {name!r} has {sig.shape[1]} columns, the contract says {width} "
                f"({'n_obs' if kind == 'input' else 'n_actions'})"
            )
        if isinstance(sig.shape[0], int) and sig.shape[0] != 1:
            out.append(f"{kind} {name!r} has a fixed batch size {sig.shape[0]}; export with a dynamic batch")
    return out


def _signatures_from_proto(model: onnx.ModelProto) -> tuple[list[TensorSignature], list[TensorSignature]]:
    initializers = {t.name for t in model.graph.initializer}

    def signature(value: Any) -> TensorSignature:
        tensor = value.type.tensor_type
        dims = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim
        )
        return TensorSignature(
            value.name,
            dims,
            "float32" if tensor.elem_type == _ONNX_FLOAT else f"ONNX element type {tensor.elem_type}",
        )

    inputs = [signature(v) for v in model.graph.input if v.name not in initializers]
    return inputs, [signature(v) for v in model.graph.output]


def _signatures_from_session(
    session: onnxruntime.InferenceSession,
) -> tuple[list[TensorSignature], list[TensorSignature]]:
    def signature(arg: Any) -> TensorSignature:
        element = "float32" if arg.type == "tensor(float)" else str(arg.type)
        return TensorSignature(arg.name, tuple(arg.shape), element)

    return [signature(a) for a in session.get_inputs()], [signature(a) for a in session.get_outputs()]


# ---------------------------------------------------------------------------------------------- writing


def write_model_metadata(
    model_proto: onnx.ModelProto,
    contract: PolicyContract,
    recorded_obs: np.ndarray,
    recorded_actions: np.ndarray,
    training_summary: Mapping[str, Any],
    *,
    tolerance: float = DEFAULT_PAIR_TOLERANCE,
    sequence_starts: Sequence[int] = (0,),
) -> onnx.ModelProto:
    """Store contract, recorded pairs and training summary in ``model_proto.metadata_props`` (in place).

    Returns ``model_proto``. First checks the graph is ``obs [batch, n_obs] → actions [batch, n_actions]``
    for this contract and that the pairs have matching shapes, so that a malformed export fails at export time
    rather than on the robot.
    Existing humanoid_rl entries are replaced; other metadata is kept.
    """
    inputs, outputs = _signatures_from_proto(model_proto)
    problems = io_mismatches(inputs, outputs, contract)
    if problems:
        raise ModelFileError(
            "the graph does not match the policy contract: "
            + "; ".join(problems)
            + f". Fix: name the input {INPUT_NAME!r} and the output {OUTPUT_NAME!r}, "
            "float32, with a dynamic batch dimension"
        )
    pairs = check_recorded_pairs(
        recorded_obs, recorded_actions, contract, tolerance, source="write_model_metadata",
        sequence_starts=sequence_starts,
    )
    try:
        training_json = json.dumps(dict(training_summary), sort_keys=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ModelMetadataError(
            f"training summary is not JSON-serialisable ({exc}); pass plain numbers and strings"
        ) from exc
    entries = {
        CONTRACT_KEY: contract.to_json(),
        RECORDED_PAIRS_KEY: pairs.to_json(),
        TRAINING_KEY: training_json,
    }
    kept = [(p.key, p.value) for p in model_proto.metadata_props if p.key not in entries]
    del model_proto.metadata_props[:]
    for key, value in [*kept, *entries.items()]:
        prop = model_proto.metadata_props.add()
        prop.key, prop.value = key, value
    return model_proto


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# ---------------------------------------------------------------------------------------------- reading


def check_model_file(path: str | Path) -> Path:
    """The path as an existing regular file, or ModelNotFoundError saying where it looked."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelNotFoundError(
            f"policy model {path} does not exist (absolute: {path.absolute()}). "
            "Fix: pass the path of an exported .onnx file, e.g. models/humanoid_stand.onnx, "
            "or leave the model empty to hold the default pose"
        )
    if not path.is_file():
        raise ModelNotFoundError(
            f"policy model {path} is not a file. Fix: pass the path of the .onnx file itself"
        )
    return path


def open_session(
    path: str | Path, *, intra_op_threads: int = 1, inter_op_threads: int = 1, optimize: bool = True
) -> onnxruntime.InferenceSession:
    """An ONNX Runtime CPU session with explicit thread counts and sequential execution.

    ONNX Runtime's default (0 threads) starts one intra-op thread per core, which spin-waits and starves the
    control loop and the other nodes on a small computer; a 72→256→128→21 MLP is fastest on one thread anyway.
    Spinning is also disabled for the case of more than one thread.
    """
    import onnxruntime as ort

    path = check_model_file(path)
    for name, value in (("intra_op_threads", intra_op_threads), ("inter_op_threads", inter_op_threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"{name} must be an integer ≥ 1, got {value!r} (0 would mean one thread per core)"
            )
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: ORT's warnings would otherwise go to the node's stderr
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own pybind exception types (InvalidProtobuf, Fail, ...)
        text = str(exc)
        if "IR version" in text:
            fix = (
                f"this onnxruntime ({ort.__version__}) cannot read the file's ONNX IR version: "
                "re-export with "
                "a lower ir_version (onnx.helper.make_model(..., ir_version=10)) or upgrade onnxruntime"
            )
        else:
            fix = (
                f"the file is not a readable ONNX model (truncated, corrupted, another format): {_EXPORT_FIX}"
            )
        raise ModelFileError(
            f"cannot load policy model {path}: {text.strip().splitlines()[0]}. Fix: {fix}"
        ) from exc


def parse_model_metadata(properties: Mapping[str, str], source: str = "model") -> ModelMetadata:
    """ModelMetadata from an ONNX file's metadata_props; ModelMetadataError says what is wrong."""
    missing = [key for key in (CONTRACT_KEY, RECORDED_PAIRS_KEY) if key not in properties]
    if missing:
        raise ModelMetadataError(
            f"{source} lacks the metadata {missing}: it was not exported by `humanoid-rl export`, so nothing "
            f"says which robot, joint order and observation layout it expects. Fix: {_EXPORT_FIX}"
        )
    try:
        contract = PolicyContract.from_json(properties[CONTRACT_KEY])
    except ContractError as exc:
        raise ModelMetadataError(f"{source}: metadata {CONTRACT_KEY!r} is invalid: {exc}") from exc
    try:
        pairs_data = json.loads(properties[RECORDED_PAIRS_KEY])
        if not isinstance(pairs_data, dict):
            raise TypeError("not a JSON object")
        pairs = check_recorded_pairs(
            pairs_data["obs"],
            pairs_data["actions"],
            contract,
            pairs_data.get("tolerance", DEFAULT_PAIR_TOLERANCE),
            source=source,
            sequence_starts=pairs_data.get("sequence_starts", (0,)),
        )
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelMetadataError(
            f"{source}: metadata {RECORDED_PAIRS_KEY!r} is malformed ({exc!r}); expected "
            f'{{"obs": [[...]], "actions": [[...]], "tolerance": x}}. '
            f"Fix: {_EXPORT_FIX}"
        ) from exc
    training: dict[str, Any] = {}
    if TRAINING_KEY in properties:
        try:
            loaded = json.loads(properties[TRAINING_KEY])
        except json.JSONDecodeError as exc:
            raise ModelMetadataError(f"{source}: metadata {TRAINING_KEY!r} is not JSON ({exc})") from exc
        training = loaded if isinstance(loaded, dict) else {"value": loaded}
    return ModelMetadata(contract=contract, recorded_pairs=pairs, training=training, source=source)


def session_metadata(session: onnxruntime.InferenceSession, source: str) -> ModelMetadata:
    return parse_model_metadata(session.get_modelmeta().custom_metadata_map, source)


def session_io_mismatches(session: onnxruntime.InferenceSession, contract: PolicyContract) -> list[str]:
    inputs, outputs = _signatures_from_session(session)
    return io_mismatches(inputs, outputs, contract)


def read_model_metadata(path: str | Path) -> ModelMetadata:
    """Contract, recorded pairs and training summary of a model file (read with ONNX Runtime)."""
    path = check_model_file(path)
    session = open_session(path, optimize=False)
    return session_metadata(session, str(path))
