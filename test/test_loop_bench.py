"""`humanoid-rl bench loop`: process layouts started for real (child processes, real rclpy over DDS), measured
from outside through /diagnostics and the nodes' reset_statistics services. Figures are not asserted against
targets (benchmarks report them); these tests check that what the benchmark reports is what happened."""

from __future__ import annotations

from pathlib import Path

import pytest

from humanoid_rl.apps.loop_bench import CHAIN_STAGES, Layout, LoopBenchError, benchmark_layout, layout_groups
from humanoid_rl.apps.node_group import main as node_group_main
from humanoid_rl.apps.node_group import parse_nodes
from humanoid_rl.graph import private_domain_id, sim_graph
from humanoid_rl.nodes.runner import ExecutorKind


def test_every_layout_runs_each_node_of_the_simulated_graph_exactly_once() -> None:
    expected = sorted(d.name for d in sim_graph())
    for layout in Layout:
        names = sorted(d.name for group in layout_groups(layout) for d in group.nodes)
        assert names == expected, layout


def test_the_baseline_layout_is_one_single_threaded_process_per_node() -> None:
    groups = layout_groups(Layout.PER_NODE_SINGLE)
    assert len(groups) == len(sim_graph())
    assert all(len(g.nodes) == 1 and g.executor is ExecutorKind.SINGLE for g in groups)


def test_node_group_refuses_an_unknown_node_name_and_lists_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"unknown node\(s\) \['planner'\].*'policy'"):
        parse_nodes("policy,planner")
    assert node_group_main(["--nodes", "planner"]) == 2
    assert "unknown node(s) ['planner']" in capsys.readouterr().err


def test_a_private_domain_is_never_the_one_to_avoid() -> None:
    ids = {private_domain_id(avoid="42") for _ in range(300)}
    assert 42 not in ids
    assert min(ids) >= 10 and max(ids) <= 99 and len(ids) > 50


def test_the_per_node_baseline_is_measured_after_the_warm_up_through_diagnostics(tmp_path: Path) -> None:
    seconds = 3.0
    case = benchmark_layout(Layout.PER_NODE_SINGLE, 50.0, seconds, "", tmp_path / "logs")
    assert case["processes"] == [[d.name] for g in layout_groups(Layout.PER_NODE_SINGLE) for d in g.nodes]
    assert case["executors"] == ["single"] * 4
    assert not case["fell"]
    # The reset after the warm-up worked: the counts cover the measured window only (plus at most one
    # diagnostics period), not the start-up and warm-up before it.
    assert 0 < case["policy_ticks"] <= 50.0 * (seconds + 1.0)
    assert 0 < case["commands_at_bridge"] <= 50.0 * (seconds + 1.0)
    # Real figures from a real loop: a rate near 50 Hz, latencies of a few hops, four processes burning CPU.
    assert 20.0 < case["achieved_rate_hz"] < 55.0
    assert 0.0 < case["latency_us"]["p50"] <= case["latency_us"]["p99"] <= case["latency_us"]["max"] < 1e6
    assert case["inference_us"]["p50"] > 0.0
    assert len(case["cpu_cores_used"]) == 4 and all(c > 0.0 for c in case["cpu_cores_used"])
    assert len(list((tmp_path / "logs").glob("per-node-single-*-50hz-*.log"))) == 4
    # The per-stage budget: every stage of the chain measured by its node, in order, and the rest of the
    # latency (the hand-overs between four processes) is what the stages do not account for.
    stages = case["stages_us"]
    assert list(stages) == [f"{node}.{stage}" for node, stage in CHAIN_STAGES]
    assert all(0.0 < v["p50"] <= v["p99"] < 1e5 for v in stages.values()), stages
    assert stages["policy.inference"]["p50"] == pytest.approx(case["inference_us"]["p50"], rel=0.5)
    assert case["stages_p50_sum_us"] + case["transport_and_executor_p50_us"] == pytest.approx(
        case["latency_us"]["p50"]
    )
    assert case["transport_and_executor_p50_us"] > 0.0  # three inter-process hops cost something


def test_a_layout_whose_nodes_cannot_start_fails_with_their_log(tmp_path: Path) -> None:
    # A missing model makes the policy refuse to configure: the process exits 2 and the error carries its reason.
    with pytest.raises(LoopBenchError, match=r"exited with 2[\s\S]*no_such_model\.onnx"):
        benchmark_layout(Layout.ONE_PROCESS, 50.0, 1.0, "no_such_model.onnx", tmp_path / "logs")
