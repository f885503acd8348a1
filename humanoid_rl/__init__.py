"""humanoid_rl: run an RL humanoid policy (ONNX) on ROS 2 — training, export, simulation and deployment.

Kept import-light on purpose: `humanoid-rl --help` and every node import this first.
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # Looked up on first use only: importlib.metadata costs ~50 ms, most of a `humanoid-rl --help`.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("humanoid_rl")
        except PackageNotFoundError:  # a checkout that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'humanoid_rl' has no attribute {name!r}")
