"""Excitation targets for system identification: chirps and steps around a pose, inside the joint limits.

A recording is only as informative as its motion. A chirp sweeps frequency (stiffness, damping and inertia shape
the response), steps show the delay and the stick-slip of friction. ``mixed`` (the default) plays the chirp for
the first half and random steps for the second. Each joint gets its own phase and step levels (seeded), so the
joints do not move in lockstep. Numpy only: the simulator and the ``record`` node both use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["EXCITATION_KINDS", "Excitation", "excitation_targets"]

EXCITATION_KINDS = ("chirp", "steps", "mixed")


@dataclass(frozen=True)
class Excitation:
    amplitude_rad: float = 0.12  # peak excursion from the base pose (less where a limit is nearer)
    duration_s: float = 6.0
    kind: str = "mixed"
    f0_hz: float = 0.5  # chirp start frequency
    f1_hz: float = 3.0  # chirp end frequency (past the hanging legs' resonance, ~2 Hz)
    step_period_s: float = 0.4  # each step level is held this long
    ramp_s: float = 0.3  # amplitude ramps in over this time (no jump at the start)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in EXCITATION_KINDS:
            raise ValueError(f"excitation kind {self.kind!r}: use one of {list(EXCITATION_KINDS)}")
        for name in ("amplitude_rad", "duration_s", "f0_hz", "f1_hz", "step_period_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"excitation {name} = {value!r}: use a positive, finite value")
        if not (math.isfinite(self.ramp_s) and self.ramp_s >= 0.0):
            raise ValueError(f"excitation ramp_s = {self.ramp_s!r}: use a finite value >= 0")


def excitation_targets(
    times_s: np.ndarray,
    base_pose: np.ndarray,
    joints: list[int] | tuple[int, ...],
    lower: np.ndarray,
    upper: np.ndarray,
    config: Excitation,
    margin_rad: float = 0.05,
) -> np.ndarray:
    """Targets (len(times), n) at ``times_s`` from the start: ``base_pose``, with ``joints`` excited."""
    t = np.asarray(times_s, dtype=np.float64)
    base = np.asarray(base_pose, dtype=np.float64)
    out = np.tile(base, (t.size, 1))
    rng = np.random.default_rng(config.seed)
    # Amplitude per joint: what fits between the pose and the nearer limit (less a margin).
    room = np.minimum(base - (lower + margin_rad), (upper - margin_rad) - base)
    amplitude = np.clip(np.minimum(config.amplitude_rad, room), 0.0, None)
    envelope = np.clip(t / config.ramp_s, 0.0, 1.0) if config.ramp_s > 0 else np.ones_like(t)
    envelope = envelope * (t <= config.duration_s)
    # Linear chirp: phase = 2*pi*(f0*t + (f1-f0)*t^2 / (2*T)).
    span = config.duration_s if config.kind == "chirp" else 0.5 * config.duration_s
    tc = np.minimum(t, span)
    chirp_phase = 2.0 * math.pi * (config.f0_hz * tc + (config.f1_hz - config.f0_hz) * tc**2 / (2.0 * span))
    n_steps = int(math.ceil(config.duration_s / config.step_period_s)) + 1
    for joint in joints:
        offset = rng.uniform(0.0, 2.0 * math.pi)
        levels = rng.uniform(-1.0, 1.0, n_steps)
        chirp = np.sin(chirp_phase + offset)
        steps = levels[np.minimum((t / config.step_period_s).astype(int), n_steps - 1)]
        if config.kind == "chirp":
            signal = chirp
        elif config.kind == "steps":
            signal = steps
        else:
            signal = np.where(t < span, chirp, steps)
        out[:, joint] = base[joint] + amplitude[joint] * envelope * signal
    return out
