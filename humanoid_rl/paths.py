"""Where the package's data lives: the share directory with config/, urdf/, models/ and launch/.

Search order (the first that holds package.xml wins):
1. `$HUMANOID_RL_SHARE` — an explicit override; if set, it must be right (no silent fallback).
2. The source checkout this package was imported from (repo root next to `humanoid_rl/`), so that
   editing config/ or urdf/ in a checkout takes effect at once, editable install or not.
3. `<sys.prefix>/share/humanoid_rl` — a pip install into a venv.
4. `<prefix>/share/humanoid_rl` for the prefix this package is installed under (`pip install --user`,
   `--prefix`, or a colcon install space that was not sourced).
5. `<entry>/share/humanoid_rl` for each entry of `$AMENT_PREFIX_PATH` — a sourced colcon/apt install.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE_NAME = "humanoid_rl"
SHARE_ENV_VAR = "HUMANOID_RL_SHARE"
DEFAULT_ROBOT = "humanoid"

_PACKAGE_DIR = Path(__file__).resolve().parent


class ShareDirNotFoundError(FileNotFoundError):
    """The share directory, or a file expected inside it, is missing. The message says how to fix it."""


@dataclass(frozen=True)
class ShareCandidate:
    """One place the share directory may be, and why it is searched."""

    path: Path
    source: str


def share_dir_candidates() -> list[ShareCandidate]:
    """Every place searched, in order (see the module docstring)."""
    candidates = []
    override = os.environ.get(SHARE_ENV_VAR, "").strip()
    if override:
        candidates.append(ShareCandidate(Path(override).expanduser(), f"${SHARE_ENV_VAR}"))
    candidates.append(ShareCandidate(_PACKAGE_DIR.parent, "source checkout"))
    candidates.append(ShareCandidate(Path(sys.prefix) / "share" / PACKAGE_NAME, "sys.prefix"))
    site_dir = _PACKAGE_DIR.parent
    if site_dir.name in ("site-packages", "dist-packages"):
        # <prefix>/lib/pythonX.Y/site-packages/humanoid_rl -> <prefix>
        install_prefix = site_dir.parent.parent.parent
        candidates.append(ShareCandidate(install_prefix / "share" / PACKAGE_NAME, "install prefix"))
    for entry in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if entry:
            candidates.append(ShareCandidate(Path(entry) / "share" / PACKAGE_NAME, "AMENT_PREFIX_PATH"))
    unique: dict[Path, ShareCandidate] = {}
    for candidate in candidates:  # a venv's sys.prefix is also its install prefix: name each place once
        unique.setdefault(candidate.path, candidate)
    return list(unique.values())


def _is_share_dir(path: Path, source: str) -> bool:
    if not (path / "package.xml").is_file():
        return False
    # A source checkout is only the share dir if it is the repo root, not some unrelated site-packages.
    return source != "source checkout" or (path / "setup.py").is_file()


def share_dir() -> Path:
    """The share directory in use. Raises ShareDirNotFoundError naming every place searched."""
    candidates = share_dir_candidates()
    override = os.environ.get(SHARE_ENV_VAR, "").strip()
    if override and not _is_share_dir(candidates[0].path, candidates[0].source):
        raise ShareDirNotFoundError(
            f"${SHARE_ENV_VAR}={override} is not a humanoid_rl share directory (no package.xml in it). "
            f"Point it at a checkout of humanoid_rl or at <prefix>/share/{PACKAGE_NAME}, or unset it."
        )
    for candidate in candidates:
        if _is_share_dir(candidate.path, candidate.source):
            return candidate.path
    searched = "; ".join(f"{c.path} ({c.source})" for c in candidates)
    raise ShareDirNotFoundError(
        f"Cannot find the humanoid_rl share directory (config/, urdf/, models/, launch/). "
        f"Searched: {searched}. "
        f"Fix: run from a source checkout, reinstall with `pip install .` or `colcon build` and source "
        f"install/setup.bash, or set ${SHARE_ENV_VAR} to the directory that holds package.xml."
    )


def _share_path(subdir: str, parts: tuple[str | os.PathLike[str], ...], must_exist: bool) -> Path:
    root = share_dir()
    path = root.joinpath(subdir, *parts)
    if must_exist and not path.exists():
        parent = path.parent
        while not parent.is_dir() and parent != root:
            parent = parent.parent
        available = sorted(p.name for p in parent.iterdir() if not p.name.startswith("."))
        raise ShareDirNotFoundError(
            f"{path} does not exist (share directory {root}). "
            f"{parent} holds: {', '.join(available) or 'nothing'}. "
            f"Fix: use one of those names, or set ${SHARE_ENV_VAR} to a share directory that has it."
        )
    return path


def config_path(*parts: str | os.PathLike[str], must_exist: bool = True) -> Path:
    """A path under share/config/, e.g. config_path("sim.yaml")."""
    return _share_path("config", parts, must_exist)


def urdf_path(*parts: str | os.PathLike[str], must_exist: bool = True) -> Path:
    """A path under share/urdf/, e.g. urdf_path("humanoid.urdf")."""
    return _share_path("urdf", parts, must_exist)


def model_path(*parts: str | os.PathLike[str], must_exist: bool = True) -> Path:
    """A path under share/models/, e.g. model_path("humanoid_stand.onnx")."""
    return _share_path("models", parts, must_exist)


def launch_path(*parts: str | os.PathLike[str], must_exist: bool = True) -> Path:
    """A path under share/launch/, e.g. launch_path("sim.launch.py")."""
    return _share_path("launch", parts, must_exist)


def default_robot_config() -> Path:
    """The shipped robot description: config/robots/humanoid.yaml."""
    return config_path("robots", f"{DEFAULT_ROBOT}.yaml")
