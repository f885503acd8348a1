"""A double parameter set as an integer (`ros2 param set /safety_shield ramp_time 3`) stays a double in the graph."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import rclpy
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from humanoid_rl.nodes.runner import make_executor, shut_down, spin_until
from humanoid_rl.nodes.safety_shield import SafetyShieldNode


@contextmanager
def shield_and_client(**overrides: Any) -> Iterator[tuple[SafetyShieldNode, Any]]:
    """An (unconfigured) safety_shield node and a function calling one of its parameter services, as the
    `ros2 param` command line does."""
    context = Context()
    rclpy.init(context=context)
    shield = SafetyShieldNode(
        context=context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
    )
    client_node = Node("param_client", context=context)
    executor = make_executor(context=context)
    executor.add_node(shield)
    executor.add_node(client_node)

    def call(service_type: Any, suffix: str, request: Any) -> Any:
        client = client_node.create_client(service_type, f"/safety_shield/{suffix}")
        assert spin_until(executor, client.service_is_ready, wall_timeout_s=10.0)
        future = client.call_async(request)
        assert spin_until(executor, future.done, wall_timeout_s=10.0)
        return future.result()

    try:
        yield shield, call
    finally:
        shut_down([shield, client_node], executor, context)


def integer_parameter(name: str, value: int) -> ParameterMsg:
    return ParameterMsg(name=name, value=ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value))


def test_ramp_time_set_to_the_integer_3_is_stored_and_described_as_the_double_3_0() -> None:
    with shield_and_client() as (shield, call):
        request = SetParameters.Request(parameters=[integer_parameter("ramp_time", 3)])
        result = call(SetParameters, "set_parameters", request)
        assert result.results[0].successful, result.results[0].reason
        value = call(GetParameters, "get_parameters", GetParameters.Request(names=["ramp_time"])).values[0]
        assert (value.type, value.double_value) == (ParameterType.PARAMETER_DOUBLE, 3.0)
        described = call(DescribeParameters, "describe_parameters", DescribeParameters.Request(names=["ramp_time"]))
        assert described.descriptors[0].type == ParameterType.PARAMETER_DOUBLE
        assert shield.get_parameter("ramp_time").type_ == Parameter.Type.DOUBLE


def test_an_integer_out_of_range_is_still_refused_and_the_double_stays() -> None:
    with shield_and_client() as (shield, call):
        before = shield.get_parameter("ramp_time").value
        result = call(
            SetParameters, "set_parameters", SetParameters.Request(parameters=[integer_parameter("ramp_time", -5)])
        )
        assert not result.results[0].successful
        assert "ramp_time" in result.results[0].reason
        assert shield.get_parameter("ramp_time").type_ == Parameter.Type.DOUBLE
        assert shield.get_parameter("ramp_time").value == before


def test_an_integer_from_the_parameter_file_is_stored_as_a_double() -> None:
    with shield_and_client(ramp_time=2) as (shield, call):
        value = call(GetParameters, "get_parameters", GetParameters.Request(names=["ramp_time"])).values[0]
        assert (value.type, value.double_value) == (ParameterType.PARAMETER_DOUBLE, 2.0)
        assert shield.get_parameter("ramp_time").value == 2.0
