"""Runs some of the graph's nodes in one process until SIGINT/SIGTERM: the building block of process layouts.

    python -m humanoid_rl.apps.node_group --nodes state_estimator,safety_shield,policy --executor auto \\
        --overrides '{"policy": {"rate_hz": 200.0}}'

``humanoid-rl bench loop`` starts its process layouts with it (one process per node with SingleThreadedExecutor
as the naive baseline; the simulator apart from the control nodes; everything in one process). Nodes come from
:mod:`humanoid_rl.graph` and read the same parameter file as every other way of starting them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from humanoid_rl.graph import ALL_NODES, NodeDescription, StackMode
from humanoid_rl.nodes.runner import ExecutorKind
from humanoid_rl.process import exit_after_stop, install_stop_handlers, set_process_name, stop_requested

NODES_BY_NAME = {d.name: d for d in ALL_NODES}


def parse_nodes(text: str) -> list[NodeDescription]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in NODES_BY_NAME]
    if unknown or not names:
        raise ValueError(f"--nodes {text!r}: unknown node(s) {unknown}; choose from {sorted(NODES_BY_NAME)}")
    return [NODES_BY_NAME[n] for n in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m humanoid_rl.apps.node_group",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nodes", required=True, help="comma-separated node names from humanoid_rl.graph")
    parser.add_argument("--executor", choices=[k.value for k in ExecutorKind], default="auto")
    parser.add_argument(
        "--mode",
        choices=[m.value for m in StackMode],
        default=StackMode.SIM.value,
        help="which parameter file is the base (config/sim.yaml or config/real_robot.yaml)",
    )
    parser.add_argument(
        "--params-file",
        action="append",
        default=[],
        type=Path,
        help="extra parameter YAML after the base file (repeatable)",
    )
    parser.add_argument("--overrides", default="{}", help="JSON {node name: {parameter: value}}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from humanoid_rl.apps.stack import InProcessStack, StackOptions

    args = build_parser().parse_args(argv)
    try:
        nodes = parse_nodes(args.nodes)
        overrides = json.loads(args.overrides)
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"node_group: {exc}", file=sys.stderr)
        return 2
    install_stop_handlers()
    set_process_name(nodes[0].name if len(nodes) == 1 else "node_group")  # in ps -e and top, not `python3`
    options = StackOptions(
        nodes=nodes,
        mode=StackMode(args.mode),
        parameter_files=args.params_file,
        overrides=overrides,
        executor=ExecutorKind(args.executor),
    )
    try:
        with InProcessStack(options) as stack:
            stack.spin_until(stop_requested)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"node_group {args.nodes}: {exc}", file=sys.stderr)
        return 2
    exit_after_stop(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
