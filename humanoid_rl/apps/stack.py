"""The whole node graph in ONE process, built from :mod:`humanoid_rl.graph`.

``humanoid-rl sim`` and the integration tests use :class:`InProcessStack`; ``launch/sim.launch.py`` builds the
same nodes from the same description as separate launch_ros ``Node`` actions (or this runner, with
``single_process:=true``). One rclpy context per stack, so a test can run several stacks one after another.
"""

from __future__ import annotations

import gc
import importlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor
from rclpy.node import Node
from rclpy.parameter import Parameter

from humanoid_rl.graph import PARAMETER_FILES, NodeDescription, StackMode
from humanoid_rl.nodes.runner import ExecutorKind, bring_up_lifecycle, make_executor, shut_down
from humanoid_rl.paths import config_path
from humanoid_rl.process import stop_requested


@dataclass
class StackOptions:
    """What differs between runs; everything else comes from the parameter file (config/sim.yaml)."""

    nodes: Sequence[NodeDescription]
    mode: StackMode = StackMode.SIM
    parameter_files: Sequence[Path] = ()  # extra files after the default one (later files win)
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # node name → {param: value}
    use_sim_time: bool = True
    executor: ExecutorKind = ExecutorKind.AUTO


class InProcessStack:
    """Creates the nodes in one context, brings lifecycle nodes up, and spins them with one executor."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        files = [config_path(PARAMETER_FILES[options.mode]), *options.parameter_files]
        for f in files:
            if not Path(f).is_file():
                raise FileNotFoundError(f"parameter file {f} does not exist (pass --config with an existing YAML)")
        args = ["--ros-args"]
        for f in files:
            args += ["--params-file", str(f)]
        self.context = Context()
        rclpy.init(args=args, context=self.context)
        self.nodes: dict[str, Node] = {}
        self.executor: Executor | None = None
        try:
            for description in options.nodes:
                self.nodes[description.name] = self._create(description)
            self.executor = make_executor(options.executor, context=self.context)
            for node in self.nodes.values():
                self.executor.add_node(node)
            for node in self.nodes.values():
                bring_up_lifecycle(node)
        except BaseException:
            self.shutdown()
            raise

    def _create(self, description: NodeDescription) -> Node:
        module = importlib.import_module(description.module)
        node_class = getattr(module, description.node_class)
        params = {"use_sim_time": self.options.use_sim_time, **self.options.overrides.get(description.name, {})}
        overrides = [Parameter(name, value=value) for name, value in params.items()]
        try:
            return node_class(context=self.context, parameter_overrides=overrides)
        except ParameterException as exc:  # a value rclpy refused against its declared range or type
            error: Exception = RuntimeError(f"node {description.name}: {exc}")
        except (ValueError, RuntimeError, FileNotFoundError) as exc:
            # A plain ValueError is DeclaredParameters refusing the values: a node that refuses to start, like
            # one that refuses to configure (RuntimeError). Its own kinds (RobotConfigError, ...) keep their type.
            error = RuntimeError(str(exc)) if type(exc) is ValueError else exc.with_traceback(None)
        # Without the traceback the half-built node can be collected before the context shuts down, which would
        # otherwise destroy it half-built (an AttributeError from its destroy_node, the reason above lost).
        gc.collect()
        raise error

    def spin_until(
        self,
        done: Callable[[], bool],
        wall_timeout_s: float | None = None,
        on_tick: Callable[[], None] | None = None,
        stop_on_signal: bool = True,
    ) -> bool:
        """spin_once until ``done()`` or, with ``stop_on_signal``, a stop request (SIGINT/SIGTERM, where the process
        installed ``humanoid_rl.process`` handlers); ``on_tick`` runs between callbacks (status line, pushes)."""
        assert self.executor is not None
        deadline = None if wall_timeout_s is None else time.monotonic() + wall_timeout_s
        while self.context.ok() and not done() and not (stop_on_signal and stop_requested()):
            if deadline is not None and time.monotonic() > deadline:
                return False
            self.executor.spin_once(timeout_sec=0.01)
            if on_tick is not None:
                on_tick()
        return done()

    def node(self, name: str) -> Any:
        return self.nodes[name]

    def shutdown(self) -> None:
        shut_down(list(self.nodes.values()), self.executor, self.context)
        self.executor = None
        self.nodes.clear()

    def __enter__(self) -> InProcessStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
