"""The README's parameter tables are generated from the declarations and must be up to date."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_param_tables", REPO / "tools" / "render_param_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _tool()


def test_the_readme_parameter_tables_match_the_declarations(capsys: pytest.CaptureFixture[str]) -> None:
    assert TOOL.main(["--check"]) == 0, capsys.readouterr().err


def test_the_tables_cover_every_declared_parameter_of_every_node() -> None:
    from humanoid_rl.core.shield import SHIELD_PARAMETERS
    from humanoid_rl.nodes.policy import POLICY_PARAMETERS
    from humanoid_rl.nodes.safety_shield import PARAMETERS as SHIELD_NODE_PARAMETERS
    from humanoid_rl.nodes.sim_bridge import PARAMETERS as BRIDGE_PARAMETERS

    body = TOOL.render()
    for spec in (*SHIELD_PARAMETERS, *SHIELD_NODE_PARAMETERS, *POLICY_PARAMETERS, *BRIDGE_PARAMETERS):
        assert f"| `{spec.name}` |" in body, spec.name
    for node in ("sim_bridge", "state_estimator", "policy", "safety_shield", "hardware_interface"):
        assert f"### `{node}`" in body


def test_a_stale_readme_is_reported_then_rewritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        (REPO / "README.md").read_text().replace("| `tilt_trip` | double | `0.7`", "| `tilt_trip` | double | `0.9`")
    )
    assert TOOL.main(["--check", "--readme", str(readme)]) == 1
    assert "stale" in capsys.readouterr().err
    assert TOOL.main(["--readme", str(readme)]) == 0
    assert TOOL.main(["--check", "--readme", str(readme)]) == 0
    assert readme.read_text() == (REPO / "README.md").read_text()


def test_a_readme_without_the_markers_is_refused_with_the_fix(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# a readme\n\n## Parameters\n")
    with pytest.raises(SystemExit, match="params:begin"):
        TOOL.main(["--readme", str(readme)])
