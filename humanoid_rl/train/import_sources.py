"""Foreign policy files as references for ``humanoid-rl import``: an ONNX graph with any tensor names, or a
TorchScript module (recurrent ones laid out as rsl_rl's exporter writes them), each turned into an ONNX graph
``obs → actions`` (+ memory inputs/outputs) and a step-by-step reference with its own memory carried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_rl.core.contract import PolicyContract, RecurrentState
from humanoid_rl.core.contract_yaml import ContractDeclaration
from humanoid_rl.train.export import OPSET

RNN_KINDS = ("LSTM", "GRU")


class ImportFailed(ValueError):
    """The import cannot produce a trustworthy model file; the message names the field or step at fault."""


@dataclass
class Source:
    """The original model as a reference: reset() then act(obs) step by step, memory carried."""

    reset: Callable[[], None]
    act: Callable[[np.ndarray], np.ndarray]
    graph: Any  # onnx.ModelProto ready for our metadata
    recurrent_state: tuple[RecurrentState, ...]
    kind: str  # for the card


# ------------------------------------------------------------------------------------------ ONNX source


def _graph_io(proto: Any) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    initializers = {t.name for t in proto.graph.initializer}

    def dims(value: Any) -> list[Any]:
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in value.type.tensor_type.shape.dim]

    inputs = {v.name: dims(v) for v in proto.graph.input if v.name not in initializers}
    return inputs, {v.name: dims(v) for v in proto.graph.output}


def _rename(proto: Any, mapping: dict[str, str]) -> None:
    taken = {n for node in proto.graph.node for n in (*node.input, *node.output)}
    clash = [new for old, new in mapping.items() if old != new and new in taken]
    if clash:
        raise ImportFailed(f"the graph already uses the tensor names {clash} for something else; rename them first")
    for node in proto.graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    for value in (*proto.graph.input, *proto.graph.output, *proto.graph.value_info):
        value.name = mapping.get(value.name, value.name)


def _state_shape(shape: list[Any]) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else 1 for d in shape)


def onnx_source(path: Path, decl: ContractDeclaration) -> Source:
    import onnx

    from humanoid_rl.policy.model_file import INPUT_NAME, OUTPUT_NAME, open_session

    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types
        raise ImportFailed(f"{path} is not a readable ONNX file: {exc}") from exc
    io = decl.model_io
    inputs, outputs = _graph_io(proto)
    declared_in = [io.input, *(i for i, _ in io.recurrent_state)]
    declared_out = [io.output, *(o for _, o in io.recurrent_state)]
    for name in declared_in:
        if name not in inputs:
            raise ImportFailed(f"{decl.source}: model declares input {name!r}, but the graph's inputs are "
                               f"{list(inputs)}")
    for name in declared_out:
        if name not in outputs:
            raise ImportFailed(f"{decl.source}: model declares output {name!r}, but the graph's outputs are "
                               f"{list(outputs)}")
    undeclared = [n for n in inputs if n not in declared_in]
    if undeclared:
        raise ImportFailed(f"{decl.source}: graph inputs {undeclared} have no declaration: a recurrent state input "
                           "goes under model.recurrent_state with the output that carries it to the next step "
                           f"(outputs: {list(outputs)})")
    _check_widths(decl, inputs[io.input][-1], outputs[io.output][-1])
    states = tuple(RecurrentState(i, o, _state_shape(inputs[i])) for i, o in io.recurrent_state)
    session = open_session(path)
    memory: dict[str, np.ndarray] = {}

    def reset() -> None:
        memory.clear()
        memory.update({s.input: np.zeros(s.shape, np.float32) for s in states})

    def act(obs: np.ndarray) -> np.ndarray:
        result = session.run([io.output, *(s.output for s in states)], {io.input: obs[None, :], **memory})
        for s, value in zip(states, result[1:], strict=True):
            memory[s.input] = value
        return np.asarray(result[0]).reshape(-1)

    _rename(proto, {io.input: INPUT_NAME, io.output: OUTPUT_NAME})
    obs_dims = next(v for v in proto.graph.input if v.name == INPUT_NAME).type.tensor_type.shape.dim
    if len(obs_dims) != 2:
        raise ImportFailed(f"the model's input {io.input!r} has {len(obs_dims)} dimensions; expected [batch, n_obs]")
    return Source(reset, act, proto, states, "ONNX")


def _sizes(contract: PolicyContract) -> str:
    sizes = " + ".join(f"{t.name} {t.width}" for t in contract.terms)
    return f"{contract.n_obs} ({sizes}{f' × frame_stack {contract.frame_stack}' if contract.frame_stack > 1 else ''})"


def _check_widths(decl: ContractDeclaration, n_in: Any, n_out: Any) -> None:
    contract = decl.contract
    if n_in != contract.n_obs:
        raise ImportFailed(f"{decl.source}: field 'observation': the terms add up to {_sizes(contract)} "
                           f"but the model's input {decl.model_io.input!r} takes {n_in}")
    if n_out != contract.n_actions:
        raise ImportFailed(f"{decl.source}: field 'joints': the contract lists {contract.n_actions} joints but the "
                           f"model's output {decl.model_io.output!r} gives {n_out} actions")


# ------------------------------------------------------------------------------------------ TorchScript source


def torchscript_source(path: Path, decl: ContractDeclaration, work: Path) -> Source:
    import onnx
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and others
        raise ImportFailed(f"{path} is not a loadable TorchScript module: {str(exc).strip().splitlines()[0]}") from exc
    module.eval()
    contract = decl.contract
    rnns = [(n, c) for n, c in module.named_children() if getattr(c, "original_name", "") in RNN_KINDS]
    probe = torch.zeros(1, contract.n_obs)
    memory_buffers: list[torch.Tensor] = []
    if rnns:
        if len(rnns) > 1 or not hasattr(module, "actor"):
            raise ImportFailed(f"{path}: a recurrent module is imported when it is laid out as rsl_rl's exporter "
                               f"writes it (one LSTM/GRU child, an 'actor' child, memory in buffers); found children "
                               f"{[n for n, _ in module.named_children()]}. Fix: export it to ONNX with the memory as "
                               "inputs/outputs and declare them under model.recurrent_state")
        rnn = rnns[0][1]
        shape = (int(rnn.num_layers), 1, int(rnn.hidden_size))
        memory_buffers = [b for _, b in module.named_buffers(recurse=False) if tuple(b.shape) == shape]
        if len(memory_buffers) != (2 if rnn.original_name == "LSTM" else 1):
            raise ImportFailed(f"{path}: found {len(memory_buffers)} memory buffers of shape {list(shape)} for its "
                               f"{rnn.original_name}; expected {2 if rnn.original_name == 'LSTM' else 1}")

    def reset() -> None:
        with torch.no_grad():
            if hasattr(module, "reset_memory"):
                module.reset_memory()
            for buffer in memory_buffers:
                buffer.zero_()

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.asarray(obs, np.float32))[None, :]).numpy().reshape(-1)

    reset()
    try:
        with torch.no_grad():
            n_out = int(module(probe).shape[-1])
    except Exception as exc:  # noqa: BLE001 - a shape error inside the scripted graph
        n_in = getattr(rnns[0][1], "input_size", "another number") if rnns else "another number"
        raise ImportFailed(f"{decl.source}: field 'observation': the terms add up to {_sizes(contract)} but the "
                           f"model takes {n_in} ({str(exc).strip().splitlines()[-1]})") from exc
    _check_widths(decl, contract.n_obs if not rnns else int(rnns[0][1].input_size), n_out)
    graph_path = work / "graph.onnx"
    if rnns:
        states = _export_recurrent(module, rnns[0][1], graph_path, contract.n_obs)
        kind = f"TorchScript {rnns[0][1].original_name} (memory exported as explicit inputs/outputs)"
    else:
        torch.onnx.export(module, (probe,), str(graph_path), input_names=["obs"], output_names=["actions"],
                          dynamic_axes={"obs": {0: "batch"}, "actions": {0: "batch"}}, opset_version=OPSET,
                          dynamo=False)
        states, kind = (), "TorchScript"
    reset()
    return Source(reset, act, onnx.load(str(graph_path)), states, kind)


def _export_recurrent(module: Any, rnn: Any, graph_path: Path, n_obs: int) -> tuple[RecurrentState, ...]:
    """The module as (obs, memory...) → (actions, memory...): the LSTM/GRU rebuilt with the module's weights (a
    loaded scripted RNN cannot be traced), then the optional ``normalizer`` and the ``actor`` it already has."""
    import torch

    lstm = rnn.original_name == "LSTM"
    cls = torch.nn.LSTM if lstm else torch.nn.GRU
    eager = cls(int(rnn.input_size), int(rnn.hidden_size), int(rnn.num_layers), bias=bool(rnn.bias),
                batch_first=bool(rnn.batch_first))
    eager.load_state_dict(rnn.state_dict())
    normalizer = module.normalizer if hasattr(module, "normalizer") else torch.nn.Identity()

    class ExplicitLstm(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.normalizer, self.rnn, self.actor = normalizer, eager, module.actor

        def forward(self, obs: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                                         torch.Tensor]:
            out, (h2, c2) = self.rnn(self.normalizer(obs).unsqueeze(0), (h, c))
            return self.actor(out.squeeze(0)), h2, c2

    class ExplicitGru(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.normalizer, self.rnn, self.actor = normalizer, eager, module.actor

        def forward(self, obs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out, h2 = self.rnn(self.normalizer(obs).unsqueeze(0), h)
            return self.actor(out.squeeze(0)), h2

    shape = (int(rnn.num_layers), 1, int(rnn.hidden_size))
    names = [("h_in", "h_out"), ("c_in", "c_out")][: 2 if lstm else 1]
    wrapper = torch.jit.script(ExplicitLstm() if lstm else ExplicitGru())
    args = (torch.zeros(1, n_obs), *(torch.zeros(shape) for _ in names))
    torch.onnx.export(wrapper, args, str(graph_path), input_names=["obs", *(i for i, _ in names)],
                      output_names=["actions", *(o for _, o in names)], opset_version=OPSET, dynamo=False)
    return tuple(RecurrentState(i, o, shape) for i, o in names)
