"""``humanoid-rl export``: the ONNX graph computes what the trained SB3 policy computes, normalization
included; the contract and recorded pairs travel in the file; a robot that differs is refused by name."""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from train_fixtures import tiny_config

from humanoid_rl.core.contract import ContractMismatchError, PolicyContract
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.policy import load_policy, read_model_metadata
from humanoid_rl.policy.model_file import open_session
from humanoid_rl.train.cli import load_checkpoint, train
from humanoid_rl.train.export import PARITY_TOLERANCE, ExportError, export_policy, resolve_checkpoint

REPO = Path(__file__).resolve().parents[1]
ROBOT_YAML = REPO / "config" / "robots" / "humanoid.yaml"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A PPO trained for a few hundred steps (so the normalizer statistics are far from identity), exported."""
    root = tmp_path_factory.mktemp("export")
    train(tiny_config(root, total_timesteps=384, eval_freq=10**6, checkpoint_freq=10**6))
    run_dir = root / "tiny-ppo"
    output = root / "models" / "tiny.onnx"
    export_policy(resolve_checkpoint(run_dir), output, rollout_episodes=1, rollout_s=1.0, n_pairs=32)
    return run_dir, output


def _robot_contract(config: Path | None = None) -> PolicyContract:
    return PolicyContract.from_robot(RobotSpec.load(config))


def test_onnx_actions_equal_the_trained_policy_with_its_normalizer_to_1e5(exported: tuple[Path, Path]) -> None:
    run_dir, output = exported
    model = load_checkpoint(run_dir / "final", "ppo")
    with (run_dir / "final" / "vecnormalize.pkl").open("rb") as stream:
        normalizer = pickle.load(stream)
    rng = np.random.default_rng(0)
    mean, std = normalizer.obs_rms.mean, np.sqrt(normalizer.obs_rms.var)
    raw = (mean + std * rng.normal(0.0, 1.5, size=(200, mean.size))).astype(np.float32)
    expected, _ = model.predict(normalizer.normalize_obs(raw), deterministic=True)
    (onnx_actions,) = open_session(output).run(["actions"], {"obs": raw})
    assert onnx_actions.shape == (200, 21)  # dynamic batch
    assert np.max(np.abs(onnx_actions - expected)) <= PARITY_TOLERANCE
    # The normalization matters: feeding raw observations to the bare network gives other actions.
    unnormalized, _ = model.predict(raw, deterministic=True)
    assert np.max(np.abs(unnormalized - expected)) > 1e-2


def test_contract_and_recorded_pairs_round_trip_through_the_file(exported: tuple[Path, Path]) -> None:
    _, output = exported
    metadata = read_model_metadata(output)
    robot = _robot_contract()
    assert metadata.contract.to_dict() == robot.to_dict()
    assert metadata.contract.mismatches(robot) == []
    assert len(metadata.recorded_pairs) == 32
    assert metadata.training["algorithm"] == "ppo" and metadata.training["steps"] >= 384
    policy = load_policy(output, robot)  # the policy node's path: replays the recorded pairs
    report = policy.verify_recorded_pairs()
    assert report.passed and report.max_abs_diff <= PARITY_TOLERANCE
    card = output.with_suffix(".md").read_text()
    assert f"| environment steps (checkpoint) | {metadata.training['steps']:,} |" in card
    assert "## Commands" in card and "## Training settings" in card
    assert metadata.training["config"]["seed"] == 3


def _edited_robot(tmp_path: Path, edit: str) -> Path:
    text = ROBOT_YAML.read_text()
    text = re.sub(r"^urdf: \S+", f"urdf: {(REPO / 'urdf' / 'humanoid.urdf').as_posix()}", text, flags=re.M)
    lines = text.splitlines()
    if edit == "swap":
        i = next(k for k, line in enumerate(lines) if "left_hip_yaw_joint" in line)
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    else:
        i = next(k for k, line in enumerate(lines) if "left_knee_joint" in line)
        lines[i] = lines[i].replace("kp: 300.0", "kp: 250.0")
    path = tmp_path / "robots" / "humanoid.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("edit", "field"), [("swap", "joint order differs: left_hip_yaw_joint"), ("gains", "kp")])
def test_a_robot_with_swapped_joints_or_other_gains_is_refused_naming_the_field(
    exported: tuple[Path, Path], tmp_path: Path, edit: str, field: str
) -> None:
    _, output = exported
    robot = _robot_contract(_edited_robot(tmp_path, edit))
    with pytest.raises(ContractMismatchError, match=field) as error:
        load_policy(output, robot)
    if edit == "gains":
        assert "left_knee_joint" in str(error.value)


def test_export_refuses_a_checkpoint_without_its_normalizer_stats(
    exported: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, _ = exported
    copy = tmp_path / "no-stats"
    shutil.copytree(run_dir / "final", copy)
    (copy / "vecnormalize.pkl").unlink()
    with pytest.raises(ExportError, match="vecnormalize.pkl"):
        export_policy(resolve_checkpoint(copy), tmp_path / "x.onnx", rollout_episodes=1, rollout_s=0.2)
    assert not (tmp_path / "x.onnx").exists()


def test_exporting_a_checkpoint_again_writes_the_same_bytes(exported: tuple[Path, Path], tmp_path: Path) -> None:
    # So `humanoid-rl export ... --eval-json` after an evaluation writes the very file that was evaluated.
    run_dir, output = exported
    again = tmp_path / "again.onnx"
    result = export_policy(resolve_checkpoint(run_dir), again, rollout_episodes=1, rollout_s=1.0, n_pairs=32)
    assert again.read_bytes() == output.read_bytes()
    assert result["sha256"] in again.with_suffix(".md").read_text()


@pytest.mark.parametrize("algo", ["sac", "td3", "tqc", "crossq"])
def test_squashed_actors_of_off_policy_algorithms_export_with_the_same_actions(tmp_path: Path, algo: str) -> None:
    train(tiny_config(tmp_path, algo, total_timesteps=192, eval_freq=10**6, checkpoint_freq=10**6))
    output = tmp_path / f"{algo}.onnx"
    # export_policy itself refuses a module that differs from SB3's predict() or from ONNX Runtime by > 1e-5.
    result = export_policy(resolve_checkpoint(tmp_path / f"tiny-{algo}"), output, rollout_episodes=1,
                           rollout_s=0.5, n_pairs=16, write_card=False)
    assert max(result["parity_max_abs_diff"].values()) <= PARITY_TOLERANCE
    actions = read_model_metadata(output).recorded_pairs.actions
    assert np.all(np.abs(actions) <= 1.0)  # tanh-squashed, scaled back to the action space [-1, 1]
    assert np.ptp(actions) > 0.0
