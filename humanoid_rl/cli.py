"""`humanoid-rl`: one command line for simulation, the real robot, training, export, evaluation and checks.

Each subcommand lives in its own module, which exposes

    add_arguments(parser: argparse.ArgumentParser) -> None
    run(args: argparse.Namespace) -> int

Only the chosen subcommand's module is imported, so `humanoid-rl --help` stays fast and works on a robot
computer without torch, and on a training machine without rclpy.

A subcommand signals a problem the user can fix by raising `CommandError` (or one of the library errors
listed in USER_ERROR_TYPES): it is printed as one line, without a traceback, and the exit code is 2.
Option checks shared by the subcommands (ranges, finite numbers, existing files) and their run folders (unique,
writable, never silently reused) live in :mod:`humanoid_rl.cli_args`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

PROG = "humanoid-rl"
EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what `cmd | head` gives a command that is not Python


class CommandError(Exception):
    """A problem the user can fix (bad argument, missing file, ...). The message says what and how."""


@dataclass(frozen=True)
class Subcommand:
    name: str
    module: str  # exposes add_arguments(parser) and run(args) -> int
    help: str


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "sim", "humanoid_rl.apps.sim", "run the policy on the simulated robot (PyBullet + ROS 2 nodes)"
    ),
    Subcommand(
        "real", "humanoid_rl.apps.real", "run the policy on the real robot through the hardware interface"
    ),
    Subcommand("train", "humanoid_rl.train.cli", "train a policy with stable-baselines3"),
    Subcommand("sweep", "humanoid_rl.train.sweep", "search training settings with Optuna, locally or on Ray"),
    Subcommand("export", "humanoid_rl.train.export", "export a trained policy to ONNX with its contract"),
    Subcommand("import", "humanoid_rl.train.import_policy", "import a policy trained elsewhere (ONNX or TorchScript)"),
    Subcommand("eval", "humanoid_rl.train.eval_cli", "evaluate an exported ONNX policy in simulation"),
    Subcommand("bench", "humanoid_rl.apps.bench", "measure inference, loop timing and end-to-end latency"),
    Subcommand("check-robot", "humanoid_rl.apps.check_robot", "load a robot config and print its joints"),
    Subcommand("record", "humanoid_rl.apps.record", "record the robot's topics to a rosbag2 (and excite joints)"),
    Subcommand("sysid", "humanoid_rl.apps.sysid", "fit the simulator's parameters to a recording of the robot"),
)
SUBCOMMANDS_BY_NAME: dict[str, Subcommand] = {s.name: s for s in SUBCOMMANDS}

# Library errors that mean "your input is wrong", by qualified class name so that building the parser
# imports none of their (numpy-using) modules.
USER_ERROR_TYPES: frozenset[str] = frozenset(
    {
        "humanoid_rl.cli.CommandError",
        "humanoid_rl.paths.ShareDirNotFoundError",
        "humanoid_rl.core.robot_spec.RobotConfigError",
        "humanoid_rl.core.contract.ContractMismatchError",
        "humanoid_rl.policy.model_file.ModelFileError",  # truncated, not ONNX, no metadata: not from export
        "humanoid_rl.policy.runtime.RecordedPairsError",  # the model does not reproduce its recorded actions
        "humanoid_rl.train.config.TrainConfigError",
        "humanoid_rl.train.sweep_spec.SweepFileError",
        "builtins.FileNotFoundError",  # a path the user gave does not exist; the message names it
    }
)

# Third-party modules a subcommand may need, and the extra that installs them.
EXTRA_FOR_MODULE: dict[str, str] = {
    "torch": "train",
    "stable_baselines3": "train",
    "tensorboard": "train",
    "tqdm": "train",
    "onnx": "train",
    "gymnasium": "train",
    "matplotlib": "train",
    "cma": "train",
    "rosbags": "viz",
    "onnxruntime": "runtime",
    "pybullet": "runtime",
    "pybullet_data": "runtime",
    "pinocchio": "runtime",
    "rclpy": "ros",
    "rosgraph_msgs": "ros",
    "std_msgs": "ros",
    "std_srvs": "ros",
    "sensor_msgs": "ros",
    "geometry_msgs": "ros",
    "nav_msgs": "ros",
    "trajectory_msgs": "ros",
    "diagnostic_msgs": "ros",
    "lifecycle_msgs": "ros",
    "rcl_interfaces": "ros",
    "launch": "ros",
    "launch_ros": "ros",
}


def _is_user_error(error: BaseException) -> bool:
    if isinstance(error, CommandError):  # also when this file runs as __main__ (python -m humanoid_rl.cli)
        return True
    return any(f"{cls.__module__}.{cls.__qualname__}" in USER_ERROR_TYPES for cls in type(error).__mro__)


def _missing_dependency_message(subcommand: Subcommand, error: ModuleNotFoundError) -> str | None:
    """One line for a missing third-party package; None when the missing module is part of humanoid_rl."""
    missing = error.name or ""
    top_level = missing.split(".")[0]
    if top_level == "humanoid_rl":
        return None
    extra = EXTRA_FOR_MODULE.get(top_level)
    install = f"pip install 'humanoid_rl[{extra}]'" if extra else f"pip install {top_level}"
    return (
        f"{PROG} {subcommand.name}: needs the Python module '{missing}', which is not installed. "
        f"Fix: {install} (on a ROS 2 system: rosdep install --from-paths src --ignore-src -y)."
    )


def _load_module(subcommand: Subcommand) -> ModuleType:
    try:
        return importlib.import_module(subcommand.module)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing and (subcommand.module == missing or subcommand.module.startswith(missing + ".")):
            raise CommandError(
                f"'{PROG} {subcommand.name}' is not available in this version: its module "
                f"{subcommand.module} does not exist yet."
            ) from error
        message = _missing_dependency_message(subcommand, error)
        if message is None:
            raise  # a humanoid_rl module importing a sibling that does not exist: a bug, show it
        raise CommandError(message) from error


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train, export, simulate and deploy an RL humanoid policy on ROS 2.",
        epilog=f"Run '{PROG} <command> --help' for the options of one command.",
    )
    parser.add_argument("--version", action="store_true", help="print the humanoid_rl version and exit")
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback for errors (for bug reports)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    by_name = {s.name: subparsers.add_parser(s.name, help=s.help, description=s.help) for s in SUBCOMMANDS}
    return parser, by_name


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one (still empty) sub-parser per subcommand; imports no subcommand."""
    return _build_parser()[0]


def _chosen_subcommand(argv: Sequence[str]) -> Subcommand | None:
    # Top-level options take no values, so the first positional argument names the subcommand.
    for token in argv:
        if token == "--":
            return None
        if not token.startswith("-"):
            return SUBCOMMANDS_BY_NAME.get(token)
    return None


def _report(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _discard_stdout() -> None:
    """The reader of stdout has gone: send what is left to /dev/null so that exit does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (tests capture it): nothing to flush at exit
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `humanoid-rl`; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own_options = argv[: argv.index("--")] if "--" in argv else argv
    show_traceback = "--traceback" in own_options
    parser, subparsers = _build_parser()
    subcommand = _chosen_subcommand(argv)
    try:
        module = _load_module(subcommand) if subcommand is not None else None
        if subcommand is not None and module is not None:
            module.add_arguments(subparsers[subcommand.name])
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_request:  # --help, or a usage error argparse already printed
            return exit_request.code if isinstance(exit_request.code, int) else EXIT_USER_ERROR
        if args.version:
            from humanoid_rl import __version__

            print(f"humanoid_rl {__version__}")
            return EXIT_OK
        if module is None:
            parser.print_help(sys.stderr)
            return EXIT_USER_ERROR
        result = module.run(args)
        sys.stdout.flush()  # a closed pipe (`| head`) shows here, not at interpreter exit
        return EXIT_OK if result is None else int(result)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except ModuleNotFoundError as error:
        message = _missing_dependency_message(subcommand, error) if subcommand is not None else None
        if message is None or show_traceback:
            raise
        _report(message)
        return EXIT_USER_ERROR
    except Exception as error:
        if show_traceback or not _is_user_error(error):
            raise
        _report(str(error))
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
