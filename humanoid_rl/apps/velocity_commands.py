"""Velocity commands for walking policies, as users give them on the command line, and how well a run tracked them.

``--cmd-vel VX,VY,WZ`` holds one command for the whole run; ``--cmd-vel '0:0.5,0,0;8:0,0,0.5;14:0,0,0'`` is a
schedule: from each time (s) on, the command after the colon. Commands are the body-frame ``/cmd_vel`` of the
policy (m/s forward, m/s left, rad/s counter-clockwise), the ``velocity command`` term of the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from humanoid_rl.cli_args import parse_timed_triples

SYNTAX = "expected VX,VY,WZ like '0.5,0,0' or T:VX,VY,WZ;... like '0:0.5,0,0;8:0,0,0.5'"
Command = tuple[float, float, float]


@dataclass(frozen=True)
class VelocitySchedule:
    """Piecewise-constant commands: ``steps[i] = (start_s, (vx, vy, wz))``, sorted, the first at 0 s."""

    steps: tuple[tuple[float, Command], ...] = ((0.0, (0.0, 0.0, 0.0)),)

    def at(self, time_s: float) -> Command:
        command = self.steps[0][1]
        for start, value in self.steps:
            if time_s >= start:
                command = value
            else:
                break
        return command

    def sample(self, times_s: np.ndarray) -> np.ndarray:
        """(len(times), 3) commands at ``times_s``."""
        starts = np.array([start for start, _ in self.steps])
        values = np.array([value for _, value in self.steps]).reshape(-1, 3)
        index = np.searchsorted(starts, np.asarray(times_s, dtype=float), side="right") - 1
        return values[np.clip(index, 0, len(values) - 1)]

    @property
    def is_zero(self) -> bool:
        return all(value == (0.0, 0.0, 0.0) for _, value in self.steps)

    def describe(self) -> str:
        return "; ".join(f"from {start:g} s: {vx:g}, {vy:g}, {wz:g}" for start, (vx, vy, wz) in self.steps)


def parse_cmd_vel(text: str) -> VelocitySchedule:
    """``--cmd-vel``: argparse ``type=``; a malformed value raises ArgumentTypeError with one line."""
    if not text.strip():
        return VelocitySchedule()
    steps = parse_timed_triples(text, "--cmd-vel", "VX,VY,WZ", SYNTAX, "commands")
    if steps[0][0] > 0.0:
        steps.insert(0, (0.0, (0.0, 0.0, 0.0)))  # standing still until the first command
    return VelocitySchedule(tuple(steps))


def achieved_velocity(
    times_s: np.ndarray, velocities_world: np.ndarray, yaws: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vx, vy, yaw rate) the base achieved, in the heading frame a ``/cmd_vel`` command is given in (>= 2 samples)."""
    t = np.asarray(times_s, dtype=float)
    yaw = np.unwrap(np.asarray(yaws, dtype=float))
    cos, sin = np.cos(yaw), np.sin(yaw)
    v = np.asarray(velocities_world, dtype=float)
    return cos * v[:, 0] + sin * v[:, 1], -sin * v[:, 0] + cos * v[:, 1], np.gradient(yaw, t)


def tracking_summary(
    times_s: np.ndarray,
    positions_world: np.ndarray,
    velocities_world: np.ndarray,
    yaws: np.ndarray,
    schedule: VelocitySchedule,
    settle_s: float = 1.0,
) -> dict[str, float]:
    """Commanded vs achieved velocity from ground truth: mean absolute error per axis (body frame; each command's
    first ``settle_s`` left out, the time a gait needs to change speed), distance walked on the ground and the
    net displacement."""
    t = np.asarray(times_s, dtype=float)
    if t.size < 3:
        return {"samples": int(t.size)}
    vx_body, vy_body, yaw_rate = achieved_velocity(t, velocities_world, yaws)
    commanded = schedule.sample(t)
    starts = np.array([start for start, _ in schedule.steps])
    since_change = t - starts[np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)]
    settled = since_change >= settle_s
    if not settled.any():
        settled = np.ones_like(t, dtype=bool)
    xy = np.asarray(positions_world, dtype=float)[:, :2]
    return {
        "samples": int(settled.sum()),
        "vx_error_mps": float(np.mean(np.abs(vx_body - commanded[:, 0])[settled])),
        "vy_error_mps": float(np.mean(np.abs(vy_body - commanded[:, 1])[settled])),
        "yaw_rate_error_radps": float(np.mean(np.abs(yaw_rate - commanded[:, 2])[settled])),
        "vx_mean_mps": float(np.mean(vx_body[settled])),
        "distance_m": float(np.sum(np.linalg.norm(np.diff(xy, axis=0), axis=1))),
        "displacement_m": float(np.linalg.norm(xy[-1] - xy[0])),
    }


CONTACT_FORCE_N = 20.0  # a sole carrying more than this normal force counts as on the ground in the plot


def write_walking_plot(traces: dict, schedule: VelocitySchedule, path: Path) -> None:
    """``walking.png``: commanded vs achieved velocity (vx, vy, yaw rate), the feet's contact timeline and the path
    on the ground, from the simulator's ground truth (``sim_bridge.traces()``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(traces["time_s"], dtype=float)
    if t.size < 3:
        return
    achieved = achieved_velocity(t, traces["base_velocity_world_mps"], traces["base_yaw_rad"])
    commanded = schedule.sample(t)
    fig = plt.figure(figsize=(10, 7))
    grid = fig.add_gridspec(4, 2, width_ratios=(2.2, 1))
    labels = ("vx [m/s]", "vy [m/s]", "yaw rate [rad/s]")
    axes = [fig.add_subplot(grid[i, 0]) for i in range(4)]
    for i, ax in enumerate(axes[:3]):
        ax.plot(t, commanded[:, i], color="black", linestyle="--", label="commanded")
        ax.plot(t, achieved[i], color="tab:blue", linewidth=0.8, label="achieved")
        ax.set_ylabel(labels[i], fontsize=8)
    axes[0].legend(fontsize=7, loc="upper right")
    axes[0].set_title("Commanded vs achieved (heading frame, ground truth)")
    forces = np.asarray(traces.get("foot_force_n", np.zeros((0, 2))), dtype=float)
    names = traces.get("foot_links", ["left", "right"])
    for k in range(forces.shape[1] if forces.ndim == 2 else 0):
        on = forces[: t.size, k] > CONTACT_FORCE_N
        axes[3].fill_between(t[: on.size], k - 0.4, k + 0.4, where=on, step="post", color=f"C{k}")
    axes[3].set_yticks(range(len(names)), [str(n).replace("_link", "") for n in names], fontsize=7)
    axes[3].set(xlabel="sim time [s]", title=f"Foot contact (normal force > {CONTACT_FORCE_N:g} N)")
    ground = fig.add_subplot(grid[:, 1])
    xy = np.asarray(traces["base_position_m"], dtype=float)[:, :2]
    ground.plot(xy[:, 0], xy[:, 1], color="tab:blue")
    ground.plot(*xy[0], "o", color="green", label="start")
    ground.plot(*xy[-1], "s", color="red", label="end")
    ground.set(xlabel="x [m]", ylabel="y [m]", title="Path on the ground", aspect="equal")
    ground.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
