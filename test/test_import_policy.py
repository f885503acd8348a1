"""`humanoid-rl import`: policies trained elsewhere, with their contract YAML, become model files we can deploy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from import_fixtures import LEG_JOINTS, N_OBS, legged_contract, write_contract, write_gru_policy, write_lstm_policy
from policy_fixtures import build_recurrent

from humanoid_rl.cli import main
from humanoid_rl.core.contract import PolicyContract
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.policy.runtime import load_policy
from humanoid_rl.train.import_policy import ImportFailed, import_policy


@pytest.fixture(scope="module")
def lstm_import(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    tmp = tmp_path_factory.mktemp("lstm")
    write_lstm_policy(tmp / "policy.pt")
    contract = write_contract(tmp / "contract.yaml", legged_contract())
    result = import_policy(tmp / "policy.pt", contract, tmp / "walker.onnx", command=["humanoid-rl", "import"])
    return tmp / "policy.pt", tmp / "walker.onnx", result


def robot_contract() -> PolicyContract:
    return PolicyContract.from_robot(RobotSpec.load())


def test_a_recurrent_torchscript_policy_imports_with_its_memory_as_explicit_state(lstm_import) -> None:
    source, output, result = lstm_import
    policy = load_policy(output, robot_contract())
    contract = policy.contract
    assert contract.n_obs == N_OBS and contract.policy_joints == LEG_JOINTS and contract.action_clip is None
    assert [(r.input, r.output, r.shape) for r in contract.recurrent_state] == [
        ("h_in", "h_out", (1, 1, 32)), ("c_in", "c_out", (1, 1, 32))]
    assert result["parity"]["max_abs_diff"] <= 1e-5 and result["parity"]["steps"] == [250, 250]
    assert policy.metadata.recorded_pairs.sequence_starts == (0, 100)
    assert Path(result["model_card"]).read_text().count("gait_phase") == 1


def test_the_imported_runtime_follows_the_torchscript_module_step_for_step_and_reset_restarts_it(lstm_import) -> None:
    source, output, _ = lstm_import
    module = torch.jit.load(str(source))
    policy = load_policy(output, robot_contract())
    obs = np.random.default_rng(5).normal(0, 0.5, (220, N_OBS)).astype(np.float32)
    with torch.no_grad():
        module.reset_memory()
        expected = np.concatenate([module(torch.from_numpy(o)[None]).numpy() for o in obs])
    got = np.array([policy.act(o) for o in obs])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(expected[100] - expected[0]).max() > 1e-3
    policy.reset()
    np.testing.assert_allclose(policy.act(obs[0]), expected[0], atol=1e-6)


def test_a_plain_onnx_export_would_have_frozen_the_memory_which_the_import_does_not(lstm_import, tmp_path) -> None:
    source, output, _ = lstm_import
    module = torch.jit.load(str(source))
    torch.onnx.export(module, (torch.zeros(1, N_OBS),), str(tmp_path / "plain.onnx"), input_names=["obs"],
                      output_names=["actions"], opset_version=17, dynamo=False)
    assert [i.name for i in onnx.load(str(tmp_path / "plain.onnx")).graph.input] == ["obs"]  # memory gone


def test_a_gru_behind_a_normalizer_imports_with_one_memory_tensor_and_no_reset_method(tmp_path: Path) -> None:
    write_gru_policy(tmp_path / "gru.pt")
    contract = write_contract(tmp_path / "c.yaml", legged_contract())
    result = import_policy(tmp_path / "gru.pt", contract, tmp_path / "gru.onnx")
    policy = load_policy(tmp_path / "gru.onnx", robot_contract())
    assert [(r.input, r.shape) for r in policy.contract.recurrent_state] == [("h_in", (2, 1, 32))]
    assert result["parity"]["max_abs_diff"] <= 1e-5


class HiddenClockExporter(torch.nn.Module):
    """rsl_rl's layout plus a step counter the policy reads: memory the import cannot see."""

    def __init__(self) -> None:
        super().__init__()
        self.actor = torch.nn.Linear(8, 12)
        self.memory = torch.nn.GRU(N_OBS, 8, 1)
        self.register_buffer("hidden_state", torch.zeros(1, 1, 8))
        self.register_buffer("steps", torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, h = self.memory(x.unsqueeze(0), self.hidden_state)
        self.hidden_state[:] = h
        self.steps += 1.0
        return self.actor(out.squeeze(0)) + 0.01 * self.steps


def test_memory_the_import_cannot_carry_fails_parity_naming_the_worst_step(tmp_path: Path) -> None:
    torch.jit.script(HiddenClockExporter().eval()).save(str(tmp_path / "clock.pt"))
    contract = write_contract(tmp_path / "c.yaml", legged_contract())
    with pytest.raises(ImportFailed, match=r"differs from clock.pt by \d.* at step \d+ of sequence \d, joint"):
        import_policy(tmp_path / "clock.pt", contract, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_term_sizes_that_do_not_add_up_to_the_models_input_are_refused_naming_the_terms(tmp_path: Path) -> None:
    write_lstm_policy(tmp_path / "policy.pt")
    data = legged_contract()
    data["observation"] = data["observation"][:-1]  # no gait clock: 45 values
    contract = write_contract(tmp_path / "c.yaml", data)
    with pytest.raises(ImportFailed, match=r"'observation': the terms add up to 45 .*last_action 12.*takes 47"):
        import_policy(tmp_path / "policy.pt", contract, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["joints"][3].update(name="tail_joint"), r"'joints\[3\].name' 'tail_joint' is not a joint"),
    (lambda d: d["joints"][0].update(kp=55.0), r"kp of right_hip_yaw_joint: contract 55, robot YAML 100"),
    (lambda d: d["observation"].append({"term": "height_scan"}), r"unknown observation term 'height_scan' \(known:"),
    (lambda d: d["action"].update(scale=[0.25] * 5), r"'action.scale' has 5 values; the term has 12"),
    (lambda d: d.pop("gait_period_s"), r"'gait_period_s' is required by the gait_phase term"),
])
def test_wrong_declarations_are_refused_naming_the_field(tmp_path: Path, edit, message: str) -> None:
    write_lstm_policy(tmp_path / "policy.pt")
    data = legged_contract()
    edit(data)
    with pytest.raises(ValueError, match=message):
        import_policy(tmp_path / "policy.pt", write_contract(tmp_path / "c.yaml", data), tmp_path / "out.onnx")


def _onnx_rnn(tmp_path: Path) -> Path:
    model, _ = build_recurrent(N_OBS, 12, 16, names=("input_0", "hx", "mu", "hx_next"))
    onnx.save(model, str(tmp_path / "theirs.onnx"))
    return tmp_path / "theirs.onnx"


def test_an_onnx_policy_with_other_tensor_names_and_declared_memory_imports(tmp_path: Path) -> None:
    model = dict(input="input_0", output="mu", recurrent_state=[{"input": "hx", "output": "hx_next"}])
    contract = write_contract(tmp_path / "c.yaml", legged_contract(model=model))
    result = import_policy(_onnx_rnn(tmp_path), contract, tmp_path / "out.onnx")
    policy = load_policy(tmp_path / "out.onnx", robot_contract())
    assert [(r.input, r.shape) for r in policy.contract.recurrent_state] == [("hx", (1, 16))]
    assert result["parity"]["max_abs_diff"] <= 1e-5


def test_a_state_input_with_no_declaration_is_refused_naming_it(tmp_path: Path) -> None:
    contract = write_contract(tmp_path / "c.yaml", legged_contract(model={"input": "input_0", "output": "mu"}))
    with pytest.raises(ImportFailed, match=r"graph inputs \['hx'\] have no declaration.*model.recurrent_state"):
        import_policy(_onnx_rnn(tmp_path), contract, tmp_path / "out.onnx")


def test_the_command_line_reports_a_bad_contract_in_one_line_with_exit_2(tmp_path: Path, capsys) -> None:
    contract = write_contract(tmp_path / "c.yaml", legged_contract(action={"scale": 0.25}))
    code = main(["import", str(_onnx_rnn(tmp_path)), "--contract", str(contract), "-o", str(tmp_path / "o.onnx")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "'action' needs scale" in err and "Traceback" not in err


def test_eval_runs_an_imported_policy_on_the_observations_of_its_own_contract(lstm_import) -> None:
    from humanoid_rl.train.evaluate import EvalSetting, evaluate

    _, output, _ = lstm_import
    setting = EvalSetting(task="walk", episodes=1, episode_s=1.0, push_force_n=0.0, randomize=False)
    result = evaluate(str(output), setting, baseline=True)
    assert result["policy"]["episodes"] == 1 and result["baseline"]["episodes"] == 1
    # Random weights walk nowhere in particular; what matters is that 47-value observations reached the model
    # every step: a 72-value observation would have been refused by act().
    assert result["policy"]["mean_length_s"] > 0.0


def test_the_documented_example_contract_loads_as_47_observations_and_12_unclipped_actions() -> None:
    import re

    import yaml

    from humanoid_rl.core.contract_yaml import contract_from_mapping

    text = (Path(__file__).parents[1] / "docs" / "importing_policies.md").read_text(encoding="utf-8")
    example, memory = re.findall(r"```yaml\n(.*?)```", text, re.S)[:2]
    declaration = contract_from_mapping({**yaml.safe_load(example), **yaml.safe_load(memory)}, RobotSpec.load())
    contract = declaration.contract
    assert (contract.n_obs, contract.n_actions, contract.action_clip) == (47, 12, None)
    assert contract.policy_joints == LEG_JOINTS
    assert declaration.model_io.recurrent_state == (("h_in", "h_out"), ("c_in", "c_out"))


@pytest.mark.slow
def test_humanoid_rl_sims_graph_runs_an_imported_recurrent_policy_and_restarts_it_when_the_shield_engages(
    lstm_import,
) -> None:
    from humanoid_rl.apps.sim import stack_overrides
    from humanoid_rl.apps.stack import InProcessStack, StackOptions
    from humanoid_rl.graph import POLICY, SIM_BRIDGE, StackMode, sim_graph

    _, output, _ = lstm_import
    args = type("Args", (), dict(sync=True, gui=False, seed=3, rate=50.0, push_duration=0.2, robot_config="",
                                 model=str(output)))()
    with InProcessStack(StackOptions(nodes=sim_graph(), mode=StackMode.SIM, overrides=stack_overrides(args))) as stack:
        policy, bridge = stack.node(POLICY.name), stack.node(SIM_BRIDGE.name)
        assert policy.configure_error == ""
        assert stack.spin_until(lambda: bridge.sim_time_s >= 2.5, wall_timeout_s=240.0)
        # Random weights do not walk; what is checked is the path: 47 observations built from the model's
        # contract every period, and one restart at activate plus one when the shield's ramp ended in ACTIVE.
        assert policy.published >= 0.9 * 50 * 2.5 and policy.skips["bad_observation"] == 0
        assert policy.resets == 2


def test_a_feed_forward_onnx_policy_with_isaac_lab_style_term_history_imports(tmp_path: Path) -> None:
    from policy_fixtures import build_mlp, random_weights

    data = legged_contract(model={"input": "policy_obs", "output": "mu"}, history_order="oldest_first")
    data["observation"] = [{"term": "base_ang_vel", "scale": 0.25, "history": 3},
                           {"term": "projected_gravity", "history": 3},
                           {"term": "joint_pos_rel"}, {"term": "joint_vel", "scale": 0.05}, {"term": "last_action"}]
    data.pop("gait_period_s")
    n_obs = 9 + 9 + 36
    onnx.save(build_mlp(random_weights(n_obs, 12, (64,)), input_name="policy_obs", output_name="mu"),
              str(tmp_path / "isaac.onnx"))
    result = import_policy(tmp_path / "isaac.onnx", write_contract(tmp_path / "c.yaml", data), tmp_path / "out.onnx")
    policy = load_policy(tmp_path / "out.onnx", robot_contract())
    assert policy.contract.n_obs == 54 and policy.contract.terms[0].history == 3
    assert result["parity"]["max_abs_diff"] <= 1e-5 and len(policy.metadata.recorded_pairs) == 64
    # the recorded observations carry real history: the three ang-vel frames of a row are not all equal
    obs = policy.metadata.recorded_pairs.obs
    assert np.abs(obs[10, 0:3] - obs[10, 6:9]).max() > 1e-3
