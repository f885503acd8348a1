from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from policy_fixtures import (
    TRAINING_SUMMARY,
    build_mlp,
    random_weights,
    recorded_obs,
    toy_contract,
    write_log_policy,
    write_mlp_policy,
)

from humanoid_rl.core.contract import ContractMismatchError
from humanoid_rl.policy.model_file import (
    CONTRACT_KEY,
    RECORDED_PAIRS_KEY,
    TRAINING_KEY,
    ModelFileError,
    ModelMetadataError,
    ModelNotFoundError,
    read_model_metadata,
    write_model_metadata,
)
from humanoid_rl.policy.runtime import (
    HoldPosePolicy,
    NonFiniteActionError,
    OnnxPolicy,
    RecordedPairsError,
    benchmark_inference,
    load_policy,
)


@pytest.fixture()
def contract():
    return toy_contract(21)


@pytest.fixture()
def model_file(tmp_path: Path, contract):
    path = tmp_path / "stand.onnx"
    weights = write_mlp_policy(path, contract)
    return path, weights


def test_act_matches_a_numpy_forward_pass_of_the_same_weights_including_normalisation(
    model_file, contract
) -> None:
    path, weights = model_file
    policy = OnnxPolicy.load(path)
    assert policy.contract == contract
    rng = np.random.default_rng(7)
    for _ in range(20):
        obs = rng.normal(0.0, 2.0, size=contract.n_obs).astype(np.float32)
        action = policy.act(obs)
        assert action.shape == (contract.n_actions,) and action.dtype == np.float32
        np.testing.assert_allclose(action, weights.forward(obs), atol=2e-5, rtol=1e-5)
    # The normaliser really is inside the graph: without it the same weights give something else.
    obs = rng.normal(0.0, 2.0, size=contract.n_obs).astype(np.float32)
    unnormalised = weights.forward(obs * weights.obs_std + weights.obs_mean)
    assert np.max(np.abs(policy.act(obs) - unnormalised)) > 1e-2


def test_act_returns_a_fresh_array_each_call(model_file, contract) -> None:
    policy = OnnxPolicy.load(model_file[0])
    first = policy.act(np.zeros(contract.n_obs, np.float32))
    kept = first.copy()
    policy.act(np.ones(contract.n_obs, np.float32))
    np.testing.assert_array_equal(first, kept)


def test_metadata_round_trips_contract_pairs_and_training_summary(model_file, contract) -> None:
    metadata = read_model_metadata(model_file[0])
    assert metadata.contract == contract
    assert len(metadata.recorded_pairs) == 16
    assert metadata.recorded_pairs.obs.shape == (16, contract.n_obs)
    np.testing.assert_array_equal(metadata.recorded_pairs.obs, recorded_obs(contract.n_obs, 16))
    assert metadata.recorded_pairs.tolerance == 1e-5
    assert metadata.training == TRAINING_SUMMARY


def test_recorded_pairs_of_a_fresh_export_replay_within_tolerance(model_file) -> None:
    report = OnnxPolicy.load(model_file[0]).verify_recorded_pairs()
    assert report.passed and report.n_pairs == 16
    assert report.max_abs_diff < 1e-5


def test_a_model_whose_recorded_action_was_edited_is_refused_naming_the_max_difference(
    tmp_path, contract
) -> None:
    path = tmp_path / "edited.onnx"
    write_mlp_policy(path, contract, corrupt_pair=True)
    report = OnnxPolicy.load(path).verify_recorded_pairs()
    assert not report.passed
    assert report.max_abs_diff == pytest.approx(0.25, abs=1e-4)
    assert (report.worst_pair, report.worst_joint) == (3, contract.joint_names[5])
    with pytest.raises(RecordedPairsError) as caught:
        load_policy(path, contract)
    assert "max |action difference| 0.25" in str(caught.value)
    assert "pair 3" in str(caught.value) and contract.joint_names[5] in str(caught.value)


def test_a_contract_for_another_joint_order_is_refused_naming_the_joints(model_file, contract) -> None:
    names = list(contract.joint_names)
    names[2], names[7] = names[7], names[2]
    robot = toy_contract(joint_names=names)
    with pytest.raises(ContractMismatchError) as caught:
        load_policy(model_file[0], robot)
    message = str(caught.value)
    assert "joint order differs" in message
    assert f"{names[2]} (model #7, robot #2)" in message and f"{names[7]} (model #2, robot #7)" in message


def test_every_contract_difference_is_listed_not_only_the_first(model_file, contract) -> None:
    robot = toy_contract(policy_rate_hz=100.0, joint_names=[*contract.joint_names[:-1], "wrist_joint"])
    with pytest.raises(ContractMismatchError) as caught:
        load_policy(model_file[0], robot)
    assert len(caught.value.mismatches) == 3
    text = str(caught.value)
    assert "'wrist_joint'" in text and "policy_rate_hz: model 50.0, robot 100.0" in text


def test_only_a_changed_config_hash_loads_with_a_warning(model_file, contract) -> None:
    robot = toy_contract(config_hash="edited-comment-in-yaml")
    policy = load_policy(model_file[0], robot)
    assert isinstance(policy, OnnxPolicy)
    assert len(policy.warnings) == 1 and "config hash" in policy.warnings[0]
    assert load_policy(model_file[0], contract).warnings == []


def test_a_missing_file_is_named_with_the_fix(tmp_path, contract) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelNotFoundError) as caught:
        OnnxPolicy.load(missing)
    assert str(missing) in str(caught.value) and "does not exist" in str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    with pytest.raises(ModelNotFoundError, match="looked at"):
        load_policy("surely_not_a_model_anywhere.onnx", contract)


def test_a_garbage_file_is_reported_as_not_an_onnx_model(tmp_path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        OnnxPolicy.load(garbage)
    truncated = tmp_path / "truncated.onnx"
    write_mlp_policy(tmp_path / "whole.onnx", toy_contract(21))
    truncated.write_bytes((tmp_path / "whole.onnx").read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="cannot load policy model"):
        OnnxPolicy.load(truncated)


def test_a_model_without_metadata_is_refused_as_not_exported_by_humanoid_rl(tmp_path, contract) -> None:
    path = tmp_path / "bare.onnx"
    onnx.save(build_mlp(random_weights(contract.n_obs, contract.n_actions)), str(path))
    with pytest.raises(ModelMetadataError) as caught:
        OnnxPolicy.load(path)
    assert CONTRACT_KEY in str(caught.value) and "humanoid-rl export" in str(caught.value)


def test_a_graph_whose_shapes_disagree_with_its_contract_is_refused(tmp_path, contract) -> None:
    # A 21-action network labelled with a 20-joint contract: metadata written, then the graph swapped.
    model = build_mlp(random_weights(contract.n_obs, contract.n_actions))
    small = toy_contract(20)
    with pytest.raises(ModelFileError, match="72 columns, the contract says 69"):
        write_model_metadata(model, small, np.zeros((1, 69)), np.zeros((1, 20)), {})
    good = build_mlp(random_weights(small.n_obs, small.n_actions))
    write_model_metadata(good, small, np.zeros((1, 69)), np.zeros((1, 20)), {})
    for prop in good.metadata_props:
        model.metadata_props.add(key=prop.key, value=prop.value)
    path = tmp_path / "swapped.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelFileError) as caught:
        OnnxPolicy.load(path)
    assert "input 'obs' has 72 columns, the contract says 69" in str(caught.value)
    assert "output 'actions' has 21 columns, the contract says 20" in str(caught.value)


def test_a_graph_with_other_input_names_is_refused_at_export(contract) -> None:
    model = build_mlp(random_weights(contract.n_obs, contract.n_actions), input_name="input")
    with pytest.raises(ModelFileError, match=r"graph inputs are \['input'\], expected exactly \['obs'\]"):
        write_model_metadata(model, contract, np.zeros((1, 72)), np.zeros((1, 21)), {})


def test_malformed_recorded_pairs_are_refused_at_export(contract) -> None:
    model = build_mlp(random_weights(contract.n_obs, contract.n_actions))
    with pytest.raises(ModelMetadataError, match=r"actions has shape \(2, 20\), expected \(n, 21\)"):
        write_model_metadata(model, contract, np.zeros((2, 72)), np.zeros((2, 20)), {})
    with pytest.raises(ModelMetadataError, match="non-finite"):
        write_model_metadata(model, contract, np.full((2, 72), np.nan), np.zeros((2, 21)), {})


def test_rewriting_metadata_replaces_ours_and_keeps_foreign_entries(contract) -> None:
    model = build_mlp(random_weights(contract.n_obs, contract.n_actions))
    model.metadata_props.add(key="producer.note", value="kept")
    for _ in range(2):
        write_model_metadata(model, contract, np.zeros((1, 72)), np.zeros((1, 21)), {"steps": np.int64(5)})
    keys = [p.key for p in model.metadata_props]
    assert sorted(keys) == sorted(["producer.note", CONTRACT_KEY, RECORDED_PAIRS_KEY, TRAINING_KEY])


def test_act_raises_instead_of_returning_nan(tmp_path, contract) -> None:
    path = tmp_path / "log.onnx"
    write_log_policy(path, contract)
    policy = load_policy(path, contract)  # its recorded pairs are finite and replay
    obs = np.zeros(contract.n_obs, np.float32)
    assert np.all(np.isfinite(policy.act(obs)))
    obs[4] = -5.0  # log(-4) for joint 4
    with pytest.raises(NonFiniteActionError, match=contract.joint_names[4]):
        policy.act(obs)


def test_act_refuses_a_non_finite_or_misshapen_observation(model_file, contract) -> None:
    policy = OnnxPolicy.load(model_file[0])
    obs = np.zeros(contract.n_obs, np.float32)
    obs[10] = np.inf
    with pytest.raises(NonFiniteActionError):
        policy.act(obs)
    with pytest.raises(ValueError, match=r"shape \(71,\)"):
        policy.act(np.zeros(contract.n_obs - 1, np.float32))
    with pytest.raises(ValueError, match=r"shape \(\)"):
        policy.act(np.float32(0.0))  # would otherwise broadcast into the whole buffer


THREAD_COUNT_SCRIPT = """
import os, sys
from humanoid_rl.policy.runtime import OnnxPolicy
count = lambda: len(os.listdir("/proc/self/task"))
OnnxPolicy.load(sys.argv[1])  # the first session of a process also starts ONNX Runtime's one global thread
before = count()
one = OnnxPolicy.load(sys.argv[1])
after_one = count()
three = OnnxPolicy.load(sys.argv[1], intra_op_threads=3, inter_op_threads=2)
print(before, after_one, count())
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc")
def test_sessions_use_the_thread_counts_we_set(model_file) -> None:
    # Counted in a fresh process: threads that earlier tests (DDS, torch) start and stop would blur the count here.
    result = subprocess.run([sys.executable, "-c", THREAD_COUNT_SCRIPT, str(model_file[0])],
                            capture_output=True, text=True, timeout=120, check=True)
    before, after_one, after_three = (int(v) for v in result.stdout.split())
    assert after_one == before  # one intra-op thread = the caller's: no pool started
    assert after_three == before + 2  # a pool of 2 workers beside the caller
    one = OnnxPolicy.load(model_file[0])
    options = one.session_options
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    three = OnnxPolicy.load(model_file[0], intra_op_threads=3, inter_op_threads=2)
    assert (three.session_options.intra_op_num_threads, three.session_options.inter_op_num_threads) == (3, 2)
    assert three.session_options.execution_mode.name == "ORT_SEQUENTIAL"
    with pytest.raises(ValueError, match="intra_op_threads must be an integer ≥ 1"):
        OnnxPolicy.load(model_file[0], intra_op_threads=0)


def test_hold_pose_policy_acts_zero_which_maps_to_the_default_pose(contract) -> None:
    policy = load_policy(None, contract)
    assert isinstance(policy, HoldPosePolicy) and load_policy("", contract).contract == contract
    action = policy.act(np.ones(contract.n_obs, np.float32))
    np.testing.assert_array_equal(action, np.zeros(contract.n_actions))
    targets = contract.action_to_joint_targets(action, np.full(21, -3.0), np.full(21, 3.0))
    np.testing.assert_allclose(targets, contract.default_pose)
    assert policy.check_against(contract) == []
    assert policy.verify_recorded_pairs().passed


def test_benchmark_reports_act_and_bare_session_latencies(model_file) -> None:
    result = benchmark_inference(model_file[0], n=400, rounds=4)
    assert result["n"] == 400 and result["n_obs"] == 72 and result["n_actions"] == 21
    for key in ("act_p50_us", "act_p99_us", "bare_p50_us", "bare_p99_us"):
        assert 0.0 < result[key] < 100_000.0
    assert result["act_p50_us"] <= result["act_p99_us"]
    assert result["ratio_p50"] == pytest.approx(result["act_p50_us"] / result["bare_p50_us"])


def test_a_relative_model_name_is_found_in_the_share_directorys_models(tmp_path, contract, monkeypatch) -> None:
    share = tmp_path / "share"
    (share / "models").mkdir(parents=True)
    (share / "package.xml").write_text("<package/>")
    write_mlp_policy(share / "models" / "shared_stand.onnx", contract)
    monkeypatch.setenv("HUMANOID_RL_SHARE", str(share))
    monkeypatch.chdir(tmp_path)  # not in the working directory
    policy = load_policy("shared_stand.onnx", contract)
    assert isinstance(policy, OnnxPolicy) and policy.path == share / "models" / "shared_stand.onnx"
    with pytest.raises(ModelNotFoundError) as caught:
        load_policy("other.onnx", contract)
    assert str(share / "models" / "other.onnx") in str(caught.value)
