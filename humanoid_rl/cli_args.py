"""What every `humanoid-rl` subcommand checks in the same way: option values and run folders.

Standard library only, so that building the parser stays fast. The type functions raise
``argparse.ArgumentTypeError``, which argparse prints as one usage line with exit code 2 before anything starts.
Run folders are made by :func:`prepare_run_dir`: unique even for runs started in the same second, an existing
non-empty folder refused unless the user asks to overwrite, and found unwritable before a run, not after it.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = [
    "DEFAULT_MODEL",
    "RunDir",
    "add_output_arguments",
    "existing_file",
    "finite_float",
    "float_in",
    "non_negative_float",
    "non_negative_int",
    "parse_timed_triples",
    "velocity_command",
    "positive_float",
    "positive_int",
    "prepare_run_dir",
    "ros_parameter_file",
    "writable_dir",
    "write_new_file",
    "yaml_error_line",
]

DEFAULT_MODEL = "humanoid_stand.onnx"  # the shipped stand policy (models/): `sim` and `bench` run it by default
MAX_SUFFIX = 1000  # runs of one name started in the same second before giving up


def finite_float(text: str) -> float:
    """A float that is neither nan nor ±inf."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0.0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number > 0")
    return value


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0.0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number >= 0")
    return value


def float_in(low: float, high: float, unit: str = "") -> Callable[[str], float]:
    """A finite float in ``[low, high]``."""
    suffix = f" {unit}" if unit else ""

    def parse(text: str) -> float:
        value = finite_float(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: use a value from {low:g} to {high:g}{suffix}")
        return value

    parse.__name__ = "number"  # argparse names the type in "invalid number value"
    return parse


def _whole_number_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r}: use a whole number >= {minimum}")
    return value


def positive_int(text: str) -> int:
    return _whole_number_at_least(text, 1)


def non_negative_int(text: str) -> int:
    return _whole_number_at_least(text, 0)


Triple = tuple[float, float, float]


def _triple(text: str, whole: str, option: str, shape: str, syntax: str) -> Triple:
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{option} {whole!r}: {text.strip()!r} is not {shape}; {syntax}")
    try:
        a, b, c = (finite_float(part.strip()) for part in parts)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"{option} {whole!r}: {error}") from None
    return a, b, c


def parse_timed_triples(text: str, option: str, shape: str, syntax: str, what: str) -> list[tuple[float, Triple]]:
    """``A,B,C`` (from 0 s on) or a schedule ``T:A,B,C;...`` as [(start_s, (a, b, c))] sorted by start, for
    ``--cmd-vel`` and ``--goal``; ArgumentTypeError in one line. ``shape`` names the triple (``VX,VY,WZ``),
    ``what`` its items in the plural (``commands``)."""
    stripped = text.strip()
    if ":" not in stripped:
        return [(0.0, _triple(stripped, text, option, shape, syntax))]
    steps = []
    for item in stripped.split(";"):
        if not item.strip():
            continue
        start_text, _, value_text = item.partition(":")
        try:
            start = float(start_text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} {text!r}: time {start_text.strip()!r}; {syntax}") from None
        if not (math.isfinite(start) and start >= 0.0):
            raise argparse.ArgumentTypeError(f"{option} {text!r}: time {start_text.strip()!r} must be >= 0")
        steps.append((start, _triple(value_text, text, option, shape, syntax)))
    steps.sort(key=lambda step: step[0])
    if len({start for start, _ in steps}) != len(steps):
        raise argparse.ArgumentTypeError(f"{option} {text!r}: two {what} start at the same time")
    return steps


def velocity_command(text: str) -> Triple:
    """argparse type of a held ``--cmd-vel VX,VY,WZ`` (one command, no schedule)."""
    if ":" in text:
        raise argparse.ArgumentTypeError(f"--cmd-vel {text!r}: use one command VX,VY,WZ, e.g. 0.5,0,0")
    ((_, command),) = parse_timed_triples(text, "--cmd-vel", "VX,VY,WZ", "use VX,VY,WZ, e.g. 0.5,0,0", "commands")
    return command


def yaml_error_line(error: Exception) -> str:
    """A YAML parse error in one line (PyYAML's message spans several, with a caret drawing)."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text!r} does not exist or is not a file")
    return path


def ros_parameter_file(text: str) -> Path:
    """A ROS 2 parameter YAML (``node_name: {ros__parameters: {name: value}}``, node names may be ``/**``),
    checked before rclpy reads it: rcl's own error names C source lines and, in an rclpy.init, is a traceback."""
    import yaml

    path = existing_file(text)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r} cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not valid YAML ({yaml_error_line(exc)})") from None
    example = "write e.g. 'safety_shield: {ros__parameters: {tilt_trip: 0.6}}'"
    if not isinstance(data, dict) or not data:
        raise argparse.ArgumentTypeError(f"{text!r} is not a ROS parameter file: {example}")
    for node, section in data.items():
        inner = section
        while isinstance(inner, dict) and "ros__parameters" not in inner and len(inner) == 1:
            inner = next(iter(inner.values()))  # a namespace level: /ns: {node: {ros__parameters: ...}}
        if not isinstance(inner, dict) or not isinstance(inner.get("ros__parameters"), dict):
            raise argparse.ArgumentTypeError(
                f"{text!r}: '{node}' has no 'ros__parameters' mapping, so ROS would not read it: {example}")
    return path


def add_output_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    """``--out`` and ``--overwrite``, worded the same for every subcommand that writes a run folder."""
    parser.add_argument(
        "--out", type=Path, default=None,
        help=f"output folder (default {default}, made unique with a -2, -3 ... suffix when it exists); "
        "an existing non-empty folder is refused unless --overwrite",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="write into an existing non-empty --out (its files may be replaced)"
    )


@dataclass(frozen=True)
class RunDir:
    """A run folder ready to be written; ``created``: this run made it (so it may remove it again)."""

    path: Path
    created: bool

    def discard_if_empty(self) -> None:
        """Remove the folder this run made when nothing was written into it (a run that failed to start)."""
        if self.created and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()


def _command_error(message: str) -> Exception:
    from humanoid_rl.cli import CommandError

    return CommandError(message)


def _check_writable(path: Path) -> None:
    probe = path / f".write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _command_error(
            f"cannot write into {path}: {exc.strerror or exc}. Fix: choose a folder you can write to"
        ) from None


def writable_dir(path: Path) -> Path:
    """``path`` made if missing and checked writable (a folder that collects results of many runs)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _command_error(
            f"cannot make the output folder {exc.filename or path}: {exc.strerror or exc}. Fix: choose a folder "
            "you can write to"
        ) from None
    _check_writable(path)
    return path


def write_new_file(folder: Path, prefix: str, suffix: str, text: str) -> Path:
    """``folder/<prefix>-<timestamp><suffix>`` holding ``text``, created exclusively (``-2``, ``-3`` ... when a run
    started in the same second wrote one), so that no result replaces another's."""
    stem = f"{prefix}-{datetime.now():%Y%m%d-%H%M%S}"
    for n in range(1, MAX_SUFFIX + 1):
        path = folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        try:
            with path.open("x", encoding="utf-8") as f:
                f.write(text)
        except FileExistsError:
            continue
        return path
    raise _command_error(f"{MAX_SUFFIX} files named {folder / stem}* exist. Fix: write into another folder")


def prepare_run_dir(
    out: Path | None,
    parent: Path,
    prefix: str,
    *,
    overwrite: bool = False,
    refuse_fix: str = "choose another --out, or pass --overwrite",
) -> RunDir:
    """The folder a run writes into, made now and checked writable.

    ``out`` None: ``parent/<prefix>-<YYYYmmdd-HHMMSS>``, made atomically (``mkdir(exist_ok=False)``) with a
    ``-2``, ``-3`` ... suffix when a run started in the same second already took the name. ``out`` given: used
    if it does not exist or is empty; an existing non-empty folder only with ``overwrite``.
    """
    try:
        if out is None:
            parent.mkdir(parents=True, exist_ok=True)
            stem = f"{prefix}-{datetime.now():%Y%m%d-%H%M%S}"
            for n in range(1, MAX_SUFFIX + 1):
                path = parent / (stem if n == 1 else f"{stem}-{n}")
                try:
                    path.mkdir()
                except FileExistsError:
                    continue
                run_dir = RunDir(path, created=True)
                break
            else:
                raise _command_error(f"{MAX_SUFFIX} run folders named {parent / stem}* exist. Fix: name the run")
        else:
            out = out.expanduser()
            try:
                out.mkdir(parents=True)
                run_dir = RunDir(out, created=True)
            except FileExistsError:
                if not out.is_dir():
                    raise _command_error(f"{out} exists and is not a folder. Fix: pass a folder path") from None
                if any(out.iterdir()) and not overwrite:
                    raise _command_error(f"{out} exists and is not empty. Fix: {refuse_fix}") from None
                run_dir = RunDir(out, created=False)
    except OSError as exc:
        where = exc.filename or out or parent
        raise _command_error(
            f"cannot make the output folder {where}: {exc.strerror or exc}. Fix: choose a folder you can write to"
        ) from None
    try:
        _check_writable(run_dir.path)
    except Exception:
        run_dir.discard_if_empty()
        raise
    return run_dir
