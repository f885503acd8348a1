"""Recurrent policies in the runtime: memory carried across act(), zeroed by reset(), pairs replayed as sequences."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
from policy_fixtures import TRAINING_SUMMARY, build_recurrent, toy_contract

from humanoid_rl.core.contract import RecurrentState
from humanoid_rl.policy.model_file import ModelFileError, write_model_metadata
from humanoid_rl.policy.runtime import OnnxPolicy, RecordedPairsError, load_policy

HIDDEN = 8


@pytest.fixture()
def contract():
    return dataclasses.replace(toy_contract(6), recurrent_state=(RecurrentState("h_in", "h_out", (1, HIDDEN)),))


def write(path: Path, contract, *, corrupt_step: int | None = None) -> np.ndarray:
    model, weights = build_recurrent(contract.n_obs, contract.n_actions, HIDDEN)
    obs = np.random.default_rng(4).normal(size=(60, contract.n_obs)).astype(np.float32)
    # two sequences of 30 steps, each from zero memory
    actions = np.concatenate([weights.run(obs[:30]), weights.run(obs[30:])]).astype(np.float32)
    if corrupt_step is not None:
        actions[corrupt_step, 1] += 0.1
    write_model_metadata(model, contract, obs, actions, TRAINING_SUMMARY, sequence_starts=(0, 30))
    onnx.save(model, str(path))
    return obs


def test_memory_is_carried_from_step_to_step_and_reset_zeroes_it(tmp_path: Path, contract) -> None:
    obs = write(tmp_path / "rnn.onnx", contract)
    policy = load_policy(tmp_path / "rnn.onnx", toy_contract(6))
    _, weights = build_recurrent(contract.n_obs, contract.n_actions, HIDDEN)
    expected = weights.run(obs[:10])
    got = np.array([policy.act(o) for o in obs[:10]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(got[5] - weights.run(obs[5:6])[0]).max() > 1e-3  # not what the step alone gives: memory matters
    policy.reset()
    np.testing.assert_allclose(policy.act(obs[0]), expected[0], atol=1e-6)


def test_recorded_sequences_replay_with_memory_and_name_the_worst_step(tmp_path: Path, contract) -> None:
    write(tmp_path / "ok.onnx", contract)
    report = OnnxPolicy.load(tmp_path / "ok.onnx").verify_recorded_pairs()
    assert report.passed and report.n_pairs == 60 and report.max_abs_diff < 1e-5
    write(tmp_path / "bad.onnx", contract, corrupt_step=42)
    with pytest.raises(RecordedPairsError, match="pair 42"):
        load_policy(tmp_path / "bad.onnx", toy_contract(6))


def test_a_state_input_the_contract_does_not_declare_is_refused_naming_it(contract) -> None:
    model, _ = build_recurrent(contract.n_obs, contract.n_actions, HIDDEN)
    obs = np.zeros((2, contract.n_obs), np.float32)
    with pytest.raises(ModelFileError, match=r"\['h_in'\] not declared.*recurrent_state"):
        write_model_metadata(model, toy_contract(6), obs, np.zeros((2, 6), np.float32), TRAINING_SUMMARY)


def test_the_inference_benchmark_runs_a_recurrent_model(tmp_path: Path, contract) -> None:
    from humanoid_rl.policy.runtime import benchmark_inference

    write(tmp_path / "rnn.onnx", contract)
    result = benchmark_inference(tmp_path / "rnn.onnx", n=200, rounds=2)
    assert result["n"] == 200 and 0 < result["act_p50_us"] and 0 < result["bare_p50_us"]
