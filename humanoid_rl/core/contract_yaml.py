"""A user-written contract YAML (how a policy trained elsewhere sees the robot) → PolicyContract.

The format is documented field by field in ``docs/importing_policies.md``. Every error names the file and the
field (``observation[3].term``, ``joints[2].name``, ...) and says what is allowed; nothing is guessed. The
robot (``RobotSpec``) supplies what the contract does not state: the robot's name, joint list and config hash, and
the default pose and gains of joints the policy does not drive (or of policy joints whose values are omitted).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from humanoid_rl.core.contract import ContractError, ObservationTerm, PolicyContract
from humanoid_rl.core.observation import HISTORY_ORDERS, HISTORY_RESETS, TERM_KINDS, term_size, unknown_term_message

if TYPE_CHECKING:
    from humanoid_rl.core.robot_spec import RobotSpec

TOP_LEVEL_KEYS = (
    "policy_rate_hz",
    "joints",
    "observation",
    "clip_observations",
    "gait_period_s",
    "frame_stack",
    "history_order",
    "history_reset",
    "action",
    "model",
)
JOINT_KEYS = ("name", "default", "kp", "kd")
TERM_KEYS = ("term", "scale", "clip", "history")
ACTION_KEYS = ("scale", "clip")
MODEL_KEYS = ("input", "output", "recurrent_state")
STATE_KEYS = ("input", "output")


class ContractYamlError(ContractError):
    """The contract YAML is wrong; the message names the file and the field."""


@dataclass(frozen=True)
class ModelIO:
    """Names of the model's tensors as the contract declares them (the importer renames them to ours)."""

    input: str = "obs"
    output: str = "actions"
    recurrent_state: tuple[tuple[str, str], ...] = ()  # (input, output) per memory tensor


@dataclass(frozen=True)
class ContractDeclaration:
    contract: PolicyContract  # recurrent_state left empty: its shapes come from the model
    model_io: ModelIO
    source: str


def load_contract_yaml(path: str | Path, spec: RobotSpec) -> ContractDeclaration:
    """Read and check ``path`` against the robot ``spec``; ContractYamlError names the field at fault."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ContractYamlError(f"contract file {path} does not exist (absolute: {path.absolute()})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ContractYamlError(f"{path}: not valid YAML: {exc}") from exc
    return contract_from_mapping(data, spec, source=str(path))


def contract_from_mapping(data: Any, spec: RobotSpec, source: str = "contract") -> ContractDeclaration:
    reader = _Reader(source)
    data = reader.mapping(data, "(top level)", TOP_LEVEL_KEYS)
    for key in ("policy_rate_hz", "joints", "observation", "action"):
        if key not in data:
            raise reader.error(key, "is required")
    rate = reader.positive(data["policy_rate_hz"], "policy_rate_hz")

    robot_index = {name: i for i, name in enumerate(spec.joint_names)}
    default_pose, kp, kd = list(spec.default_pose), list(spec.kp), list(spec.kd)
    policy_joints: list[str] = []
    joints = data["joints"]
    if not isinstance(joints, list) or not joints:
        raise reader.error("joints", "must be a non-empty list of {name, default, kp, kd}, in the policy's order")
    for i, entry in enumerate(joints):
        where = f"joints[{i}]"
        entry = reader.mapping(entry, where, JOINT_KEYS)
        name = entry.get("name")
        if name not in robot_index:
            raise reader.error(f"{where}.name", f"{name!r} is not a joint of robot {spec.name!r} "
                                                f"(its joints: {', '.join(spec.joint_names)})")
        if name in policy_joints:
            raise reader.error(f"{where}.name", f"{name!r} is listed twice")
        policy_joints.append(name)
        k = robot_index[name]
        if "default" in entry:
            default_pose[k] = reader.number(entry["default"], f"{where}.default")
        for key, values in (("kp", kp), ("kd", kd)):
            if key in entry:
                values[k] = reader.number(entry[key], f"{where}.{key}", minimum=0.0)

    n_policy = len(policy_joints)
    clip_all = data.get("clip_observations")
    clip_all = None if clip_all is None else reader.positive(clip_all, "clip_observations")
    terms = data["observation"]
    if not isinstance(terms, list) or not terms:
        raise reader.error("observation", "must be a non-empty list of {term, scale, clip, history}")
    parsed_terms = []
    for i, entry in enumerate(terms):
        where = f"observation[{i}]"
        entry = reader.mapping(entry, where, TERM_KEYS)
        name = entry.get("term")
        if name not in TERM_KINDS:
            raise reader.error(f"{where}.term", unknown_term_message(str(name)))
        size = term_size(name, n_policy)
        scale = reader.scale(entry.get("scale", 1.0), f"{where}.scale", size)
        clip = entry.get("clip", clip_all)
        history = entry.get("history", 1)
        if not isinstance(history, int) or isinstance(history, bool) or history < 1:
            raise reader.error(f"{where}.history", f"must be a whole number ≥ 1, got {history!r}")
        parsed_terms.append(ObservationTerm(
            name, size, scale, clip=None if clip is None else reader.positive(clip, f"{where}.clip"), history=history
        ))

    action = reader.mapping(data["action"], "action", ACTION_KEYS)
    if "scale" not in action or "clip" not in action:
        raise reader.error("action", "needs scale (a number or one per joint) and clip (a number, or null for none)")
    action_scale = reader.scale(action["scale"], "action.scale", n_policy)
    clip = action["clip"]
    action_clip = None if clip is None else reader.positive(clip, "action.clip")

    model = reader.mapping(data.get("model") or {}, "model", MODEL_KEYS)
    states = []
    for i, entry in enumerate(model.get("recurrent_state") or ()):
        entry = reader.mapping(entry, f"model.recurrent_state[{i}]", STATE_KEYS)
        if not all(isinstance(entry.get(k), str) for k in STATE_KEYS):
            raise reader.error(f"model.recurrent_state[{i}]", "needs input and output: the memory's tensor names")
        states.append((entry["input"], entry["output"]))
    model_io = ModelIO(str(model.get("input", "obs")), str(model.get("output", "actions")), tuple(states))

    gait = data.get("gait_period_s")
    options = {
        "frame_stack": data.get("frame_stack", 1),
        "history_order": data.get("history_order", "oldest_first"),
        "history_reset": data.get("history_reset", "first"),
    }
    if not isinstance(options["frame_stack"], int) or options["frame_stack"] < 1:
        raise reader.error("frame_stack", f"must be a whole number ≥ 1, got {options['frame_stack']!r}")
    for key, allowed in (("history_order", HISTORY_ORDERS), ("history_reset", HISTORY_RESETS)):
        if options[key] not in allowed:
            raise reader.error(key, f"must be one of {list(allowed)}, got {options[key]!r}")
    uses_clock = any(t.name == "gait_phase" for t in parsed_terms)
    if uses_clock and gait is None:
        raise reader.error("gait_period_s", "is required by the gait_phase term (the gait cycle in seconds)")
    try:
        contract = PolicyContract(
            robot_name=spec.name,
            robot_config_hash=spec.config_hash,
            joint_names=tuple(spec.joint_names),
            terms=tuple(parsed_terms),
            action_scale=action_scale[0] if len(set(action_scale)) == 1 else action_scale,
            action_clip=action_clip,
            default_pose=tuple(default_pose),
            kp=tuple(kp),
            kd=tuple(kd),
            policy_rate_hz=rate,
            policy_joints=tuple(policy_joints),
            gait_period_s=None if gait is None else reader.positive(gait, "gait_period_s"),
            **options,
        )
    except ContractError as exc:
        raise ContractYamlError(f"{source}: {exc}") from exc
    return ContractDeclaration(contract=contract, model_io=model_io, source=source)


def robot_differences(contract: PolicyContract, spec: RobotSpec) -> list[str]:
    """Default pose and gains the contract states differently from the robot YAML, one line per joint and field
    (the PD controller applies the robot YAML's)."""
    robot = PolicyContract.from_robot(spec, policy_rate_hz=contract.policy_rate_hz)
    return contract.robot_mismatches(robot, self_label="contract", other_label="robot YAML")


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, field: str, message: str) -> ContractYamlError:
        return ContractYamlError(f"{self.source}: field {field!r} {message}")

    def mapping(self, value: Any, field: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(field, f"must be a mapping with keys {list(keys)}, got {type(value).__name__}")
        unknown = [k for k in value if k not in keys]
        if unknown:
            raise self.error(field, f"has unknown keys {unknown} (known: {list(keys)})")
        return value

    def number(self, value: Any, field: str, minimum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(field, f"must be a finite number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(field, f"must be ≥ {minimum:g}, got {value!r}")
        return float(value)

    def positive(self, value: Any, field: str) -> float:
        number = self.number(value, field)
        if number <= 0:
            raise self.error(field, f"must be positive, got {value!r}")
        return number

    def scale(self, value: Any, field: str, size: int) -> tuple[float, ...]:
        if isinstance(value, list):
            if len(value) != size:
                raise self.error(field, f"has {len(value)} values; the term has {size} (give one number or {size})")
            return tuple(self.number(v, f"{field}[{i}]") for i, v in enumerate(value))
        return (self.number(value, field),) * size
