"""`humanoid-rl`: fast --help, one module per subcommand, one-line errors for problems a user can fix."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from humanoid_rl import cli
from humanoid_rl.core.robot_spec import RobotSpec

HEAVY_MODULES = ("torch", "rclpy", "pybullet", "onnxruntime", "pinocchio", "stable_baselines3", "gymnasium")


def humanoid_rl_command() -> list[str]:
    """The installed console script when there is one (it is what users run), else the module."""
    script = Path(sys.prefix) / "bin" / "humanoid-rl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "humanoid_rl.cli"]


def test_help_exits_zero_and_lists_every_subcommand_with_its_help() -> None:
    result = subprocess.run([*humanoid_rl_command(), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    for subcommand in cli.SUBCOMMANDS:
        assert subcommand.name in result.stdout
        assert subcommand.help in " ".join(result.stdout.split())


def test_building_the_parser_imports_no_torch_rclpy_pybullet_or_other_heavy_module() -> None:
    # A fresh interpreter: in this one, other tests may already have imported them.
    code = textwrap.dedent(
        f"""
        import sys
        import humanoid_rl.cli
        humanoid_rl.cli.build_parser().format_help()
        print([m for m in {HEAVY_MODULES!r} if m in sys.modules])
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_choosing_a_subcommand_imports_its_module_and_no_other_subcommand_module() -> None:
    code = textwrap.dedent(
        """
        import contextlib, io, sys
        import humanoid_rl.cli as cli
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["check-robot", "--json"])
        print(code, sorted(s.name for s in cli.SUBCOMMANDS if s.module in sys.modules))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0 ['check-robot']"


def test_main_returns_0_for_help_and_2_for_no_or_an_unknown_subcommand(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["--help"]) == 0
    assert cli.main([]) == 2
    assert cli.main(["no-such-command"]) == 2
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    import humanoid_rl

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"humanoid_rl {humanoid_rl.__version__}"


# ------------------------------------------------------------------------- errors, via probe subcommands


@pytest.fixture
def probe_subcommands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Subcommand modules that fail in each way the CLI must report, importable from tmp_path."""
    modules = {
        "probe_user_error": """
            from humanoid_rl.cli import CommandError
            def add_arguments(parser):
                parser.add_argument("--model", required=True)
            def run(args):
                raise CommandError(f"{args.model} is not an ONNX file. Fix: pass a .onnx path")
            """,
        "probe_missing_dependency": """
            import a_package_nobody_installed_for_humanoid_rl
            """,
        "probe_missing_file": """
            from pathlib import Path
            def add_arguments(parser):
                pass
            def run(args):
                return len(Path("/nonexistent/humanoid_rl/model.onnx").read_bytes())
            """,
        "probe_bug": """
            def add_arguments(parser):
                pass
            def run(args):
                return {}["a bug, not a user error"]
            """,
        "probe_exit_code": """
            def add_arguments(parser):
                parser.add_argument("code", type=int)
            def run(args):
                return args.code
            """,
    }
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    subcommands = (
        *cli.SUBCOMMANDS,
        cli.Subcommand("user-error", "probe_user_error", "raises CommandError"),
        cli.Subcommand("needs-dependency", "probe_missing_dependency", "imports a missing package"),
        cli.Subcommand("missing-file", "probe_missing_file", "reads a missing file"),
        cli.Subcommand("bug", "probe_bug", "has a bug"),
        cli.Subcommand("exit-code", "probe_exit_code", "returns its argument"),
        cli.Subcommand("future", "humanoid_rl.apps.a_subcommand_not_written_yet", "not written yet"),
    )
    monkeypatch.setattr(cli, "SUBCOMMANDS", subcommands)
    monkeypatch.setattr(cli, "SUBCOMMANDS_BY_NAME", {s.name: s for s in subcommands})


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("humanoid-rl: error: ")
    return lines[0]


@pytest.mark.usefixtures("probe_subcommands")
def test_a_user_error_is_one_line_without_traceback_and_exit_code_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["user-error", "--model", "policy.pt"]) == 2
    assert (
        one_line_error(capsys) == "humanoid-rl: error: policy.pt is not an ONNX file. Fix: pass a .onnx path"
    )


@pytest.mark.usefixtures("probe_subcommands")
def test_traceback_flag_shows_the_full_error_for_bug_reports() -> None:
    with pytest.raises(cli.CommandError, match="policy.pt is not an ONNX file"):
        cli.main(["--traceback", "user-error", "--model", "policy.pt"])


@pytest.mark.usefixtures("probe_subcommands")
def test_a_subcommand_whose_module_does_not_exist_yet_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["future"]) == 2
    message = one_line_error(capsys)
    assert "'humanoid-rl future' is not available in this version" in message
    assert "humanoid_rl.apps.a_subcommand_not_written_yet" in message


@pytest.mark.usefixtures("probe_subcommands")
def test_a_missing_third_party_package_is_named_with_the_install_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["needs-dependency"]) == 2
    message = one_line_error(capsys)
    assert "needs the Python module 'a_package_nobody_installed_for_humanoid_rl'" in message
    assert "pip install a_package_nobody_installed_for_humanoid_rl" in message


def test_a_missing_torch_points_at_the_train_extra() -> None:
    error = ModuleNotFoundError("No module named 'torch'", name="torch")
    message = cli._missing_dependency_message(cli.SUBCOMMANDS_BY_NAME["train"], error)
    assert message is not None and "pip install 'humanoid_rl[train]'" in message


@pytest.mark.usefixtures("probe_subcommands")
def test_a_missing_file_is_a_one_line_error_naming_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["missing-file"]) == 2
    assert "/nonexistent/humanoid_rl/model.onnx" in one_line_error(capsys)


@pytest.mark.usefixtures("probe_subcommands")
def test_a_bug_in_a_subcommand_keeps_its_traceback() -> None:
    with pytest.raises(KeyError, match="a bug, not a user error"):
        cli.main(["bug"])


@pytest.mark.usefixtures("probe_subcommands")
def test_the_subcommands_return_value_is_the_exit_code() -> None:
    assert cli.main(["exit-code", "0"]) == 0
    assert cli.main(["exit-code", "7"]) == 7


# ----------------------------------------------------------------------------------------------- check-robot


def test_check_robot_prints_every_joint_of_the_shipped_humanoid_in_policy_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = RobotSpec.load()
    assert cli.main(["check-robot"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip().split(" ")[0].isdigit()]
    assert [row[1] for row in rows] == list(spec.joint_names)
    knee = rows[spec.joint_index("left_knee_joint")]
    assert [float(v) for v in knee[2:]] == pytest.approx(
        [spec.lower[3], spec.upper[3], spec.velocity_limits[3], spec.effort_limits[3], spec.kp[3], spec.kd[3],
         spec.default_pose[3]], abs=0.01,
    )  # fmt: skip
    assert f"decimation {spec.decimation}" in out


def test_check_robot_json_matches_the_loaded_spec(capsys: pytest.CaptureFixture[str]) -> None:
    spec = RobotSpec.load()
    assert cli.main(["check-robot", "humanoid", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [j["name"] for j in data["joints"]] == list(spec.joint_names)
    assert [j["kp"] for j in data["joints"]] == spec.kp.tolist()
    assert data["config_hash"] == spec.config_hash


def test_check_robot_with_an_unknown_robot_lists_the_shipped_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-robot", "no_such_robot"]) == 2
    message = one_line_error(capsys)
    assert "no_such_robot.yaml does not exist" in message and "humanoid.yaml" in message


def test_check_robot_reports_a_broken_config_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\n")
    assert cli.main(["check-robot", str(broken)]) == 2
    assert str(broken) in one_line_error(capsys)
