"""Launch files name only executables and files that exist; with launch_ros installed they generate a description.

launch/launch_ros are not on PyPI, so the generation tests skip cleanly here and run on a full ROS 2 install.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from test_packaging import SETUP

from humanoid_rl import graph
from humanoid_rl.paths import config_path

REPO_ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((REPO_ROOT / "launch").glob("*.launch.py"))


def string_constants(path: Path) -> set[str]:
    return {
        n.value
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def test_there_is_a_sim_launch_file() -> None:
    assert REPO_ROOT / "launch" / "sim.launch.py" in LAUNCH_FILES


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_are_valid_python_that_defines_generate_launch_description(path: Path) -> None:
    tree = ast.parse(path.read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in names


def test_every_node_of_the_sim_graph_is_an_installed_executable_with_a_module() -> None:
    for description in graph.sim_graph():
        assert description.executable in SETUP.NODE_EXECUTABLES, description.executable
        module = SETUP.NODE_EXECUTABLES[description.executable].split(":")[0]
        assert module == description.module
        assert importlib.util.find_spec(module) is not None, f"{module} is missing"


def test_the_single_process_executable_named_in_sim_launch_exists() -> None:
    assert "sim_stack" in string_constants(REPO_ROOT / "launch" / "sim.launch.py")
    module, function = SETUP.NODE_EXECUTABLES["sim_stack"].split(":")
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    assert f"def {function}(" in Path(spec.origin).read_text()


def test_the_parameter_files_of_the_graph_exist_and_have_a_section_per_node() -> None:
    import yaml

    sim = yaml.safe_load(config_path(graph.PARAMETER_FILES[graph.StackMode.SIM]).read_text())
    for description in graph.sim_graph():
        assert "ros__parameters" in sim.get(description.name, {}), f"config/sim.yaml lacks {description.name}"


def load_launch_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_generate_a_description_whose_nodes_and_arguments_are_documented(path: Path) -> None:
    pytest.importorskip("launch_ros", reason="launch_ros is not installed (it is not on PyPI); runs on a ROS install")
    from launch.actions import DeclareLaunchArgument

    from launch import LaunchContext

    description = load_launch_module(path).generate_launch_description()
    context = LaunchContext()
    arguments = [e for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    assert arguments, "a launch file without documented arguments"
    for argument in arguments:
        assert argument.description and argument.description != "no description given", argument.name
        argument.visit(context)
    executables = [e.node_executable for e in description.entities if type(e).__name__ == "Node"]
    assert executables
    for executable in executables:
        assert executable in SETUP.NODE_EXECUTABLES, executable


def launch_argument_defaults(path: Path) -> dict[str, str]:
    """The (name, default) pairs of a launch file's LAUNCH_ARGUMENTS whose default is a literal string."""
    tree = ast.parse(path.read_text())
    table = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "LAUNCH_ARGUMENTS"
    )
    defaults = {}
    for row in table.elts:
        name, default = row.elts[0], row.elts[1]
        if isinstance(default, ast.Constant):
            defaults[name.value] = default.value
    return defaults


def test_sim_launch_with_no_arguments_runs_the_shipped_policy_in_real_time_in_the_layout_that_holds_its_rate() -> None:
    defaults = launch_argument_defaults(REPO_ROOT / "launch" / "sim.launch.py")
    assert (REPO_ROOT / "models" / defaults["model"]).is_file()
    assert defaults["sync"] == "false"
    assert defaults["single_process"] == "true"


def test_the_rviz_config_reads_the_topics_the_stack_publishes_with_matching_qos() -> None:
    import yaml

    from humanoid_rl.core.robot_spec import RobotSpec
    from humanoid_rl.graph import Topics

    config = yaml.safe_load(config_path("humanoid.rviz").read_text(encoding="utf-8"))
    displays = {d["Class"]: d for d in config["Visualization Manager"]["Displays"]}
    model = displays["rviz_default_plugins/RobotModel"]["Description Topic"]
    # The estimator latches the URDF (transient local): a volatile subscriber joining late would never get it.
    assert model["Value"] == Topics.ROBOT_DESCRIPTION and model["Durability Policy"] == "Transient Local"
    odom = displays["rviz_default_plugins/Odometry"]["Topic"]
    # The estimator publishes best effort: a reliable subscriber would be incompatible and show nothing.
    assert odom["Value"] == Topics.ESTIMATOR_ODOM and odom["Reliability Policy"] == "Best Effort"
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == RobotSpec.load().base_link
