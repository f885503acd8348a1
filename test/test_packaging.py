"""The package as installed: node executables where ROS looks, the share directory, metadata, and paths.py."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

import humanoid_rl
from humanoid_rl import paths

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARE_SUBDIRS = ("config", "urdf", "launch", "models")


def load_setup_module() -> ModuleType:
    """setup.py as a module: its tables, without running setup()."""
    spec = importlib.util.spec_from_file_location("humanoid_rl_setup", REPO_ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SETUP = load_setup_module()
ALL_CONSOLE_SCRIPTS: dict[str, str] = {**SETUP.COMMAND_LINE_TOOLS, **SETUP.NODE_EXECUTABLES}


def installed_distribution() -> importlib.metadata.Distribution:
    """The installed humanoid_rl, looked up in site directories only: an egg-info left in the checkout by a
    `pip wheel .` must not stand in for it."""
    site_dirs = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    for distribution in importlib.metadata.distributions(name="humanoid_rl", path=site_dirs):
        return distribution
    pytest.skip("humanoid_rl is not installed in this interpreter (run `make test`, which installs it)")


def install_prefix() -> Path:
    """The prefix humanoid_rl is installed under: <prefix>/lib/pythonX.Y/site-packages -> <prefix>."""
    site_packages = Path(str(installed_distribution().locate_file(""))).resolve()
    return site_packages.parents[2]


# ------------------------------------------------------------------------------------ installed layout


def test_the_install_prefix_is_this_interpreters_prefix_in_a_venv() -> None:
    if sys.prefix == sys.base_prefix:
        pytest.skip("not running in a virtual environment")
    ament_prefixes = {Path(p).resolve() for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p}
    if install_prefix() in ament_prefixes - {Path(sys.prefix).resolve()}:
        pytest.skip(f"testing the colcon install at {install_prefix()}, not a pip install into this venv")
    assert install_prefix() == Path(sys.prefix).resolve()


@pytest.mark.parametrize("executable", sorted(SETUP.NODE_EXECUTABLES))
def test_each_node_executable_is_installed_in_lib_humanoid_rl_and_is_executable(executable: str) -> None:
    path = install_prefix() / "lib" / "humanoid_rl" / executable
    assert path.is_file(), f"{path} missing: `ros2 run humanoid_rl {executable}` would not find it"
    assert os.access(path, os.X_OK), f"{path} is not executable"


@pytest.mark.parametrize("executable", sorted(SETUP.NODE_EXECUTABLES))
def test_each_installed_node_executable_starts_the_entry_point_named_in_setup_py(executable: str) -> None:
    text = (install_prefix() / "lib" / "humanoid_rl" / executable).read_text()
    module, function = SETUP.NODE_EXECUTABLES[executable].split(":")
    if SETUP.LAUNCHER_MARKER in text:  # pip install: our launcher
        assert f"from {module} import {function}" in text
    else:  # colcon install: setuptools' console script (its text differs between setuptools releases)
        assert module in text or ("console_scripts" in text and f"'{executable}'" in text)


def test_the_ament_index_marks_humanoid_rl_as_an_installed_package() -> None:
    marker = install_prefix() / "share" / "ament_index" / "resource_index" / "packages" / "humanoid_rl"
    assert marker.is_file()


def test_the_installed_share_directory_holds_package_xml_config_urdf_launch_and_models() -> None:
    share = install_prefix() / "share" / "humanoid_rl"
    assert (share / "package.xml").is_file()
    for subdir in SHARE_SUBDIRS:
        assert (share / subdir).is_dir(), f"{share / subdir} was not installed"


def test_config_is_installed_recursively_with_the_robot_descriptions() -> None:
    robots = install_prefix() / "share" / "humanoid_rl" / "config" / "robots"
    assert (robots / "humanoid.yaml").is_file()


def test_the_humanoid_rl_command_is_installed_in_bin() -> None:
    command = install_prefix() / "bin" / "humanoid-rl"
    if not command.exists():
        pytest.skip("colcon installs humanoid-rl into lib/humanoid_rl, not bin/")
    assert os.access(command, os.X_OK)


# ----------------------------------------------------------------------------------------------- metadata


def read_package_xml() -> ET.Element:
    return ET.parse(REPO_ROOT / "package.xml").getroot()


def test_package_xml_is_format_3_ament_python_named_humanoid_rl() -> None:
    root = read_package_xml()
    assert root.get("format") == "3"
    assert root.findtext("name") == "humanoid_rl"
    assert root.findtext("export/build_type") == "ament_python"


def test_package_xml_declares_the_ros_and_python_dependencies_by_rosdep_key() -> None:
    root = read_package_xml()
    exec_depends = {e.text for e in root.findall("exec_depend")}
    expected = {
        "rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "nav_msgs", "trajectory_msgs", "diagnostic_msgs",
        "std_srvs", "rosgraph_msgs", "lifecycle_msgs", "rcl_interfaces", "launch", "launch_ros",
        "python3-numpy", "python3-yaml", "pinocchio", "python3-onnxruntime-pip", "python3-pybullet-pip",
    }  # fmt: skip
    assert expected <= exec_depends, f"missing: {sorted(expected - exec_depends)}"
    assert {e.text for e in root.findall("test_depend")} >= {"python3-pytest", "python3-hypothesis"}


def test_the_installed_version_is_the_one_package_xml_states() -> None:
    version = read_package_xml().findtext("version")
    assert version == SETUP.read_package_xml()["version"]
    assert installed_distribution().version == version
    assert humanoid_rl.__version__ == version


def test_the_installed_console_scripts_are_exactly_those_setup_py_lists() -> None:
    scripts = {e.name: e.value for e in installed_distribution().entry_points if e.group == "console_scripts"}
    assert scripts == ALL_CONSOLE_SCRIPTS


@pytest.mark.parametrize("name", sorted(ALL_CONSOLE_SCRIPTS))
def test_each_console_script_points_at_a_function_in_a_humanoid_rl_module(name: str) -> None:
    module_name, function = ALL_CONSOLE_SCRIPTS[name].split(":")
    assert module_name.startswith("humanoid_rl."), f"{name} -> {module_name} is outside humanoid_rl"
    if importlib.util.find_spec(module_name) is None:
        pytest.skip(f"{module_name} is not written yet")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function, None)), f"{module_name} has no function {function}()"


def test_the_train_extra_pins_torch_exactly_and_install_requires_needs_no_torch() -> None:
    requirements = installed_distribution().requires or []
    base = [r for r in requirements if "extra ==" not in r]
    torch = [r.split(";")[0].replace(" ", "") for r in requirements if r.startswith("torch")]
    assert torch == ["torch==2.13.0"]
    assert sorted(r.split(">=")[0] for r in base) == ["numpy", "pyyaml"]


# ---------------------------------------------------------------------------------------- node launcher


def make_prefix_with_launcher(root: Path, entry_point: str) -> Path:
    """A prefix like a venv's: bin/python3 and lib/humanoid_rl/probe, the launcher setup.py generates."""
    (root / "bin").mkdir(parents=True)
    # Not a symlink: a venv's python finds its site-packages through pyvenv.cfg beside the link it is run as.
    (root / "bin" / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (root / "bin" / "python3").chmod(0o755)
    launcher = root / "lib" / "humanoid_rl" / "probe"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(SETUP.node_launcher_source("probe", entry_point))
    launcher.chmod(0o755)
    return launcher


def test_a_node_launcher_runs_its_entry_point_with_the_python_of_its_prefix(tmp_path: Path) -> None:
    launcher = make_prefix_with_launcher(tmp_path / "prefix", "humanoid_rl.cli:main")
    result = subprocess.run([str(launcher), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"humanoid_rl {humanoid_rl.__version__}"


def test_a_node_launcher_ignores_a_humanoid_rl_folder_in_the_current_directory(tmp_path: Path) -> None:
    launcher = make_prefix_with_launcher(tmp_path / "prefix", "humanoid_rl.cli:main")
    decoy = tmp_path / "cwd" / "humanoid_rl"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise SystemExit('the decoy package in the cwd was imported')\n")
    result = subprocess.run(
        [str(launcher), "--version"], capture_output=True, text=True, timeout=60, cwd=decoy.parent
    )
    assert result.returncode == 0, result.stderr
    assert "decoy" not in result.stderr


def test_a_node_launcher_passes_ros_arguments_through_unchanged(tmp_path: Path) -> None:
    probe = tmp_path / "probe_module"
    probe.mkdir()
    (probe / "argv_probe.py").write_text(
        "import sys\n\ndef main():\n    print(repr(sys.argv))\n    return 3\n"
    )
    launcher = make_prefix_with_launcher(tmp_path / "prefix", "argv_probe:main")
    env = {**os.environ, "PYTHONPATH": str(probe)}
    arguments = ["--ros-args", "-r", "__node:=my policy", "-p", "rate:=50.0"]
    result = subprocess.run([str(launcher), *arguments], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == repr(["probe", *arguments])


def test_setup_py_writes_a_launcher_for_humanoid_rl_beside_the_node_launchers() -> None:
    names = {Path(path).name for path in SETUP.write_node_launchers()}
    assert names == set(SETUP.NODE_EXECUTABLES) | {"humanoid-rl"}


def test_a_node_launcher_shows_its_own_path_in_ps_instead_of_python_code(tmp_path: Path) -> None:
    probe = tmp_path / "probe_module"
    probe.mkdir()
    (probe / "cmdline_probe.py").write_text(
        "import sys\n\ndef main():\n    print(open('/proc/self/cmdline').read().split(chr(0))[:3])\n    return 0\n"
    )
    launcher = make_prefix_with_launcher(tmp_path / "prefix", "cmdline_probe:main")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(probe), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([str(launcher), "--ros-args"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    python, script, first_argument = eval(result.stdout)  # noqa: S307 - our own probe's repr of a list
    assert Path(python).name in ("python3", "python") or "python" in Path(python).name
    assert (script, first_argument) == (str(launcher), "--ros-args")


def test_a_pip_install_puts_humanoid_rl_in_lib_humanoid_rl_where_ros2_run_finds_it(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    install = subprocess.run(
        # --ignore-installed: without it pip first uninstalls the package from the venv running these tests
        # (the editable install, its bin/ and lib/humanoid_rl/ launchers), breaking every test after this one.
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--ignore-installed",
         "--prefix", str(prefix), str(REPO_ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    command = prefix / "lib" / "humanoid_rl" / "humanoid-rl"
    assert os.access(command, os.X_OK), f"{command} missing: `ros2 run humanoid_rl humanoid-rl` would not find it"
    site_packages = next(prefix.glob("lib/python3*/site-packages"))
    env = {**os.environ, "PYTHONPATH": str(site_packages)}
    result = subprocess.run(
        [str(command), "check-robot", "--json"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert '"humanoid"' in result.stdout


# ----------------------------------------------------------------------------------------------- paths.py


def test_share_dir_in_a_checkout_is_the_checkout_so_edits_take_effect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(paths.SHARE_ENV_VAR, raising=False)
    if Path(paths.__file__).resolve().parents[1] != REPO_ROOT:
        pytest.skip("humanoid_rl is imported from an installed copy, not from this checkout")
    assert paths.share_dir() == REPO_ROOT
    assert paths.default_robot_config() == REPO_ROOT / "config" / "robots" / "humanoid.yaml"
    assert paths.urdf_path("humanoid.urdf") == REPO_ROOT / "urdf" / "humanoid.urdf"


def test_the_share_env_var_overrides_every_other_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "package.xml").write_text("<package/>")
    (tmp_path / "models").mkdir()
    monkeypatch.setenv(paths.SHARE_ENV_VAR, str(tmp_path))
    assert paths.share_dir() == tmp_path
    assert paths.model_path() == tmp_path / "models"
    assert paths.launch_path("sim.launch.py", must_exist=False) == tmp_path / "launch" / "sim.launch.py"


def test_a_share_env_var_without_package_xml_is_an_error_not_a_silent_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.SHARE_ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(paths.ShareDirNotFoundError, match=r"\$HUMANOID_RL_SHARE=.*nowhere.*unset it"):
        paths.share_dir()


def test_a_missing_file_in_the_share_dir_names_what_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.SHARE_ENV_VAR, raising=False)
    with pytest.raises(paths.ShareDirNotFoundError) as error:
        paths.config_path("robots", "no_such_robot.yaml")
    assert "no_such_robot.yaml does not exist" in str(error.value)
    assert "humanoid.yaml" in str(error.value)


def run_installed_like_copy_of_paths(
    root: Path, ament_prefixes: list[Path]
) -> subprocess.CompletedProcess[str]:
    """paths.py copied into <root>/lib/python3.X/site-packages/humanoid_rl and run by the base interpreter.

    The base interpreter has no share/humanoid_rl of its own, and -I keeps this checkout off sys.path, so
    only the places paths.py itself derives are searched.
    """
    package = root / "lib" / "python3" / "site-packages" / "humanoid_rl"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    shutil.copy(paths.__file__, package / "paths.py")
    env = {k: v for k, v in os.environ.items() if k != paths.SHARE_ENV_VAR}
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(str(p) for p in ament_prefixes)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from humanoid_rl import paths; print(paths.share_dir())"
    )
    python = getattr(sys, "_base_executable", sys.executable)
    return subprocess.run(
        [python, "-I", "-c", code, str(package.parent)], capture_output=True, text=True, env=env, timeout=60
    )


def test_without_any_share_dir_the_error_names_every_place_searched_and_the_fix(tmp_path: Path) -> None:
    if (Path(sys.base_prefix) / "share" / "humanoid_rl").exists():
        pytest.skip("the base interpreter has humanoid_rl installed, so a share dir exists")
    ament_prefixes = [tmp_path / "ament_a", tmp_path / "ament_b"]
    result = run_installed_like_copy_of_paths(tmp_path / "prefix", ament_prefixes)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("humanoid_rl.paths.ShareDirNotFoundError: Cannot find the humanoid_rl share")
    for place in [
        tmp_path / "prefix" / "share" / "humanoid_rl",
        *(p / "share" / "humanoid_rl" for p in ament_prefixes),
    ]:
        assert str(place) in message
    assert "$HUMANOID_RL_SHARE" in message and "colcon build" in message


def test_an_installed_copy_finds_the_share_dir_of_its_own_install_prefix(tmp_path: Path) -> None:
    share = tmp_path / "prefix" / "share" / "humanoid_rl"
    share.mkdir(parents=True)
    (share / "package.xml").write_text("<package/>")
    result = run_installed_like_copy_of_paths(tmp_path / "prefix", [])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(share)


def test_an_installed_copy_finds_the_share_dir_through_ament_prefix_path(tmp_path: Path) -> None:
    share = tmp_path / "ament_b" / "share" / "humanoid_rl"
    share.mkdir(parents=True)
    (share / "package.xml").write_text("<package/>")
    result = run_installed_like_copy_of_paths(
        tmp_path / "prefix", [tmp_path / "ament_a", tmp_path / "ament_b"]
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(share)
