"""Small ONNX policies built with onnx.helper and numpy weights (no torch), for the runtime and node tests.

``build_mlp`` makes a graph laid out as ``humanoid-rl export`` writes one: input ``obs`` [batch, n_obs],
output ``actions`` [batch, n_actions], observation normalisation ``(obs - mean) / std`` inside the graph, then
an ELU MLP.
``MlpWeights.forward`` is the same network in float64 numpy, so a test can compare ONNX Runtime against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from humanoid_rl.core.contract import PolicyContract, default_terms
from humanoid_rl.policy.model_file import write_model_metadata

OPSET = 17
# ONNX Runtime 1.31 reads IR versions up to 13; onnx 1.23 writes 14 by default.
IR_VERSION = 10
TRAINING_SUMMARY = {
    "algorithm": "PPO",
    "total_timesteps": 1000,
    "env_id": "HumanoidRL/Stand-v0",
    "note": "test",
}


@dataclass
class MlpWeights:
    obs_mean: np.ndarray
    obs_std: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]]  # (W [in, out], b [out]) per layer

    def forward(self, obs: np.ndarray) -> np.ndarray:
        """The network in float64: normalise, ELU hidden layers, linear output."""
        x = (np.asarray(obs, dtype=np.float64) - self.obs_mean) / self.obs_std
        for i, (w, b) in enumerate(self.layers):
            x = x @ w + b
            if i < len(self.layers) - 1:
                x = np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
        return x


def random_weights(
    n_obs: int, n_actions: int, hidden: Sequence[int] = (256, 128), seed: int = 0
) -> MlpWeights:
    rng = np.random.default_rng(seed)
    sizes = [n_obs, *hidden, n_actions]
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        w = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(fan_in, fan_out)).astype(np.float32)
        b = rng.normal(0.0, 0.1, size=fan_out).astype(np.float32)
        layers.append((w, b))
    mean = rng.normal(0.0, 0.5, size=n_obs).astype(np.float32)
    std = rng.uniform(0.5, 2.0, size=n_obs).astype(np.float32)
    return MlpWeights(obs_mean=mean, obs_std=std, layers=layers)


def _io(
    n_obs: int, n_actions: int, input_name: str = "obs", output_name: str = "actions"
) -> tuple[onnx.ValueInfoProto, onnx.ValueInfoProto]:
    return (
        helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", n_obs]),
        helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", n_actions]),
    )


def build_mlp(
    weights: MlpWeights, *, input_name: str = "obs", output_name: str = "actions"
) -> onnx.ModelProto:
    n_obs = weights.obs_mean.size
    n_actions = weights.layers[-1][1].size
    inits = [
        numpy_helper.from_array(weights.obs_mean, "obs_mean"),
        numpy_helper.from_array(weights.obs_std, "obs_std"),
    ]
    nodes = [
        helper.make_node("Sub", [input_name, "obs_mean"], ["centred"]),
        helper.make_node("Div", ["centred", "obs_std"], ["h0"]),
    ]
    for i, (w, b) in enumerate(weights.layers):
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        last = i == len(weights.layers) - 1
        out = output_name if last else f"z{i + 1}"
        nodes.append(helper.make_node("Gemm", [f"h{i}", f"w{i}", f"b{i}"], [out]))
        if not last:
            nodes.append(helper.make_node("Elu", [out], [f"h{i + 1}"], alpha=1.0))
    inp, outp = _io(n_obs, n_actions, input_name, output_name)
    graph = helper.make_graph(nodes, "mlp_policy", [inp], [outp], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model


def build_log_model(n_obs: int, n_actions: int) -> onnx.ModelProto:
    """actions = log(obs[:, :n_actions] + 1): finite for obs > -1, NaN for obs < -1."""
    select = np.zeros((n_obs, n_actions), dtype=np.float32)
    select[np.arange(n_actions), np.arange(n_actions)] = 1.0
    inits = [
        numpy_helper.from_array(select, "select"),
        numpy_helper.from_array(np.ones(n_actions, np.float32), "one"),
    ]
    nodes = [
        helper.make_node("Gemm", ["obs", "select", "one"], ["shifted"]),
        helper.make_node("Log", ["shifted"], ["actions"]),
    ]
    inp, outp = _io(n_obs, n_actions)
    graph = helper.make_graph(nodes, "log_policy", [inp], [outp], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)


def toy_contract(
    n_joints: int = 21,
    *,
    joint_names: Sequence[str] | None = None,
    policy_rate_hz: float = 50.0,
    config_hash: str = "toyhash",
) -> PolicyContract:
    names = (
        tuple(joint_names) if joint_names is not None else tuple(f"joint_{i:02d}" for i in range(n_joints))
    )
    n = len(names)
    return PolicyContract(
        robot_name="toy",
        robot_config_hash=config_hash,
        joint_names=names,
        terms=default_terms(n),
        action_scale=0.5,
        action_clip=1.0,
        default_pose=tuple(0.01 * i for i in range(n)),
        kp=(50.0,) * n,
        kd=(1.0,) * n,
        policy_rate_hz=policy_rate_hz,
    )


def recorded_obs(n_obs: int, n_pairs: int = 16, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, size=(n_pairs, n_obs)).astype(np.float32)


def write_mlp_policy(
    path: Path,
    contract: PolicyContract,
    *,
    seed: int = 0,
    n_pairs: int = 16,
    hidden: Sequence[int] = (256, 128),
    corrupt_pair: bool = False,
) -> MlpWeights:
    """An exported-looking model file: MLP, contract, pairs recorded from the float64 forward pass."""
    weights = random_weights(contract.n_obs, contract.n_actions, hidden, seed)
    model = build_mlp(weights)
    obs = recorded_obs(contract.n_obs, n_pairs)
    actions = weights.forward(obs).astype(np.float32)
    if corrupt_pair:
        actions[3, 5] += 0.25  # as if the file had been edited, or the graph changed after recording
    write_model_metadata(model, contract, obs, actions, TRAINING_SUMMARY)
    onnx.save(model, str(path))
    return weights


def write_log_policy(path: Path, contract: PolicyContract) -> None:
    model = build_log_model(contract.n_obs, contract.n_actions)
    obs = np.abs(recorded_obs(contract.n_obs, 4))
    actions = np.log(obs[:, : contract.n_actions].astype(np.float64) + 1.0).astype(np.float32)
    write_model_metadata(model, contract, obs, actions, TRAINING_SUMMARY)
    onnx.save(model, str(path))


@dataclass
class RecurrentWeights:
    """h' = tanh(obs W + h U + b), actions = h' V: the smallest network with memory."""

    w: np.ndarray
    u: np.ndarray
    b: np.ndarray
    v: np.ndarray

    def run(self, observations: np.ndarray) -> np.ndarray:
        """Actions for a sequence, memory carried from zero (float64)."""
        h = np.zeros(self.u.shape[0])
        out = []
        for obs in np.asarray(observations, dtype=np.float64):
            h = np.tanh(obs @ self.w + h @ self.u + self.b)
            out.append(h @ self.v)
        return np.array(out)


def build_recurrent(
    n_obs: int, n_actions: int, hidden: int = 8, *, seed: int = 0, names: Sequence[str] = ("obs", "h_in", "actions",
                                                                                             "h_out")
) -> tuple[onnx.ModelProto, RecurrentWeights]:
    """A recurrent ONNX policy with its memory as explicit input/output ([1, hidden])."""
    rng = np.random.default_rng(seed)
    weights = RecurrentWeights(
        w=rng.normal(0, 1 / np.sqrt(n_obs), (n_obs, hidden)).astype(np.float32),
        u=rng.normal(0, 0.9 / np.sqrt(hidden), (hidden, hidden)).astype(np.float32),
        b=rng.normal(0, 0.1, hidden).astype(np.float32),
        v=rng.normal(0, 1 / np.sqrt(hidden), (hidden, n_actions)).astype(np.float32),
    )
    obs, h_in, actions, h_out = names
    inits = [numpy_helper.from_array(getattr(weights, k), k) for k in ("w", "u", "b", "v")]
    nodes = [
        helper.make_node("MatMul", [obs, "w"], ["xw"]),
        helper.make_node("MatMul", [h_in, "u"], ["hu"]),
        helper.make_node("Add", ["xw", "hu"], ["s0"]),
        helper.make_node("Add", ["s0", "b"], ["s1"]),
        helper.make_node("Tanh", ["s1"], [h_out]),
        helper.make_node("MatMul", [h_out, "v"], [actions]),
    ]
    inputs = [helper.make_tensor_value_info(obs, TensorProto.FLOAT, [1, n_obs]),
              helper.make_tensor_value_info(h_in, TensorProto.FLOAT, [1, hidden])]
    outputs = [helper.make_tensor_value_info(actions, TensorProto.FLOAT, [1, n_actions]),
               helper.make_tensor_value_info(h_out, TensorProto.FLOAT, [1, hidden])]
    graph = helper.make_graph(nodes, "recurrent_policy", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model, weights
