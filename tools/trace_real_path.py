"""Per-hop timing of `humanoid-rl real --emulate`: where the measurement → controller milliseconds go.

Runs the real command in this process with the nodes' callbacks wrapped: each records the wall clock (the ROS
clock of a real run, the same clock the stamps are on) at entry / exit, keyed by the measurement stamp that
travels through the graph (the joint state's stamp becomes the policy's and the shield's command stamp). Prints
per-hop percentiles, in ms after the measurement stamp, and the budget between consecutive points.

    PYTHONPATH=. python tools/trace_real_path.py [--duration 15] [-- extra `real` arguments]

A diagnostic tool, not part of the stack: the wrappers cost a few µs per callback.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

_NS = 1_000_000_000
# point name → {stamp ns → wall ns}; the first record per stamp wins (a stamp may be seen twice: direct + DDS).
POINTS: dict[str, dict[int, int]] = defaultdict(dict)
ORDER: list[str] = []
COUNTS: dict[str, int] = defaultdict(int)


def _stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * _NS + int(stamp.nanosec)


def _record(point: str, stamp_ns: int | None, wall_ns: int) -> None:
    if stamp_ns is None:
        return
    if point not in ORDER:
        ORDER.append(point)
    POINTS[point].setdefault(stamp_ns, wall_ns)


def wrap(cls: type, method: str, entry: str | None, leave: str | None, stamp_of: Callable[..., int | None]) -> None:
    original = getattr(cls, method)

    @functools.wraps(original)
    def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            stamp = stamp_of(self, *args, **kwargs)
        except Exception:  # noqa: BLE001 - a message without the stamp we look for: not traced
            stamp = None
        if entry:
            _record(entry, stamp, time.time_ns())
        result = original(self, *args, **kwargs)
        if leave:
            _record(leave, stamp, time.time_ns())
        return result

    setattr(cls, method, traced)


def install() -> None:
    from humanoid_rl.nodes.hardware_emulator import HardwareEmulatorNode
    from humanoid_rl.nodes.hardware_interface import HardwareInterfaceNode
    from humanoid_rl.nodes.policy import PolicyNode
    from humanoid_rl.nodes.safety_shield import SafetyShieldNode
    from humanoid_rl.nodes.state_estimator import StateEstimatorNode

    def msg_stamp(self: Any, msg: Any, *a: Any, **k: Any) -> int:
        return _stamp_ns(msg.header.stamp)

    wrap(HardwareEmulatorNode, "_publish", None, "emulator published", lambda s, sensors, t, stamp, v: _stamp_ns(stamp))
    wrap(HardwareInterfaceNode, "_on_joint_state", "hw: joint state in", None, msg_stamp)
    wrap(StateEstimatorNode, "_on_joint_state", "estimator: joint state in", None, msg_stamp)
    wrap(StateEstimatorNode, "_on_imu", "estimator: imu in", None, msg_stamp)
    wrap(StateEstimatorNode, "_publish", None, "estimator: odom out", lambda s, stamp_ns, out: stamp_ns)
    wrap(PolicyNode, "_on_joint_state_trigger", "policy: joint state in", None, msg_stamp)
    wrap(PolicyNode, "_compute", "policy: compute start", "policy: compute end",
         lambda s: _stamp_ns(s._joint_msg.header.stamp))  # noqa: SLF001
    wrap(SafetyShieldNode, "_on_command", "shield: command in", None, msg_stamp)
    wrap(SafetyShieldNode, "_publish", None, "shield: published",
         lambda s, output, stamp: _stamp_ns(stamp) if stamp is not None else None)
    wrap(HardwareInterfaceNode, "_on_command", "hw: command in", "hw: command out", msg_stamp)
    traced_command = HardwareInterfaceNode._on_command

    def on_command(self: Any, msg: Any) -> None:
        traced_command(self, msg)
        if self._shield_mode == "ACTIVE":  # noqa: SLF001 - the policy path only (HOLD outputs come on a timer)
            _record("hw: command out, ACTIVE", _stamp_ns(msg.header.stamp), time.time_ns())

    HardwareInterfaceNode._on_command = on_command  # type: ignore[method-assign]
    original_output = SafetyShieldNode._output

    def output(self: Any, now: float, force: bool = False) -> Any:
        pending = self._pending_command  # noqa: SLF001
        result = original_output(self, now, force)
        if result is None and pending is not None:
            COUNTS["shield: command deferred (budget)"] += 1
            _record("shield: deferred", _stamp_ns(pending.header.stamp), time.time_ns())
        elif pending is None and self._active and self.shield is not None:  # noqa: SLF001
            COUNTS[f"shield: output without a command ({self.shield.mode.value})"] += 1
        return result

    SafetyShieldNode._output = output  # type: ignore[method-assign]
    for name in ("_on_command_direct", "_on_command_dds"):
        if hasattr(HardwareInterfaceNode, name):
            wrap(HardwareInterfaceNode, name, None, None, msg_stamp)


def report() -> str:
    base = POINTS["emulator published"]
    lines = [f"{'point':32s} {'n':>6s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s}   (after the measurement stamp)"]
    for point in ORDER:
        samples = np.array([wall - stamp for stamp, wall in POINTS[point].items() if stamp in base]) / 1e6
        if samples.size:
            p50, p90, p99 = np.percentile(samples, (50, 90, 99))
            lines.append(f"{point:32s} {samples.size:6d} {p50:8.2f} {p90:8.2f} {p99:8.2f}")
    hw_in, hw_out = POINTS["hw: joint state in"], POINTS["hw: command out, ACTIVE"]
    inside = np.array([hw_out[s] - hw_in[s] for s in hw_out if s in hw_in]) / 1e6
    if inside.size:
        p50, p90, p99 = np.percentile(inside, (50, 90, 99))
        lines.append(f"{'hw: state in → out, ACTIVE':32s} {inside.size:6d} {p50:8.2f} {p90:8.2f} {p99:8.2f}")
    lines += [f"{name}: {count}" for name, count in sorted(COUNTS.items())]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--model", default="models/humanoid_stand.onnx")
    parser.add_argument("rest", nargs="*", help="more `humanoid-rl real` arguments (after --)")
    args = parser.parse_args()
    install()
    from humanoid_rl.apps import real

    code = real.main(
        ["--emulate", "--model", args.model, "--duration", str(args.duration), "--out", "/tmp/trace_real_path",
         "--overwrite", *args.rest]
    )
    print(report())
    return code


if __name__ == "__main__":
    sys.exit(main())
