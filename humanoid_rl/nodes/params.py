"""Declares a node's parameters from its ParamSpec table and refuses invalid sets with a reason."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from humanoid_rl.core.params import ParamSpec, validate

_TYPES = {
    "bool": Parameter.Type.BOOL,
    "int": Parameter.Type.INTEGER,
    "double": Parameter.Type.DOUBLE,
    "string": Parameter.Type.STRING,
    "double[]": Parameter.Type.DOUBLE_ARRAY,
    "string[]": Parameter.Type.STRING_ARRAY,
}


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    d = ParameterDescriptor(
        name=spec.name,
        type=_TYPES[spec.type_name].value,
        read_only=spec.read_only,
        description=f"{spec.description}" + (f" [{spec.unit}]" if spec.unit else ""),
    )
    if spec.type_name == "double":
        # `ros2 param set /node ramp_time 3` and `ramp_time: 3` in a file give an integer: accept it instead of
        # rclpy's bare "Wrong parameter type". DeclaredParameters stores it as a DOUBLE, so the type stays double.
        d.dynamic_typing = True
    if spec.type_name == "double" and (spec.min is not None or spec.max is not None):
        d.floating_point_range = [
            FloatingPointRange(
                from_value=float(spec.min if spec.min is not None else -1e308),
                to_value=float(spec.max if spec.max is not None else 1e308),
                step=0.0,
            )
        ]
    elif spec.type_name == "int" and (spec.min is not None or spec.max is not None):
        d.integer_range = [
            IntegerRange(
                from_value=int(spec.min if spec.min is not None else -(2**62)),
                to_value=int(spec.max if spec.max is not None else 2**62),
                step=0,
            )
        ]
    if spec.choices:
        d.additional_constraints = f"one of {list(spec.choices)}"
    return d


def _as_double(p: Parameter, doubles: set[str]) -> Parameter:
    if p.name in doubles and p.type_ == Parameter.Type.INTEGER:
        return Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
    return p


def _keep_doubles_double(node: Node, names: Sequence[str]) -> set[str]:
    """Before a set is validated, an integer for one of these double parameters becomes that DOUBLE, so the
    stored type (what `ros2 param describe` and `get` show) never turns into integer. One hook per node:
    rclpy concatenates what each pre-set hook returns, so a second hook would repeat every parameter."""
    doubles: set[str] | None = getattr(node, "_humanoid_rl_doubles", None)
    if doubles is None:
        doubles = set()
        node._humanoid_rl_doubles = doubles  # type: ignore[attr-defined]
        node.add_pre_set_parameters_callback(lambda params: [_as_double(p, doubles) for p in params])
    doubles.update(names)
    return doubles


class DeclaredParameters:
    """The node's parameters as a validated dict; ``on_change`` is called with the new full set after a change.

    Values from the parameter file are validated too: a bad file fails at start-up naming the parameter.
    """

    def __init__(
        self,
        node: Node,
        specs: Sequence[ParamSpec],
        consistency: Callable[[Mapping[str, Any]], list[str]] | None = None,
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._node = node
        self._specs = tuple(specs)
        self._by_name = {s.name: s for s in self._specs}
        self._consistency = consistency
        self._on_change = on_change
        self.changes = 0
        self.refusals = 0
        self.last_refusal = ""
        for s in self._specs:
            default = float(s.default) if s.type_name == "double" else s.default
            node.declare_parameter(s.name, default, descriptor(s))
        doubles = _keep_doubles_double(node, [s.name for s in self._specs if s.type_name == "double"])
        from_file = [node.get_parameter(s.name) for s in self._specs]
        integers = [q for p in from_file if (q := _as_double(p, doubles)) is not p]
        if integers:
            node.set_parameters(integers)
        self.values: dict[str, Any] = {s.name: self._read(s) for s in self._specs}
        reasons = validate(self._specs, self.values, self._consistency)
        if reasons:
            raise ValueError(f"node {node.get_name()}: invalid parameters: " + "; ".join(reasons))
        node.add_on_set_parameters_callback(self._on_set)

    def _read(self, spec: ParamSpec) -> Any:
        value = self._node.get_parameter(spec.name).value
        if spec.type_name == "double" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        return value

    def _on_set(self, params: list[Parameter]) -> SetParametersResult:
        candidate = dict(self.values)
        for p in params:
            if p.name not in self._by_name:
                continue  # e.g. use_sim_time: not ours to judge
            value = p.value
            if (
                self._by_name[p.name].type_name == "double"
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                value = float(value)
            candidate[p.name] = value
        reasons = validate(self._specs, candidate, self._consistency)
        if reasons:
            self.refusals += 1
            self.last_refusal = "; ".join(reasons)
            self._node.get_logger().warning(f"parameter change refused: {self.last_refusal}")
            return SetParametersResult(successful=False, reason=self.last_refusal)
        changed = {k: v for k, v in candidate.items() if self.values.get(k) != v}
        if changed:
            self.values = candidate
            self.changes += 1
            self._node.get_logger().info(f"parameters changed: {changed}")
            if self._on_change is not None:
                self._on_change(dict(self.values))
        return SetParametersResult(successful=True)
