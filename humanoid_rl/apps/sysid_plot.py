"""The figure `humanoid-rl sysid` writes: recorded vs simulated joint trajectories before and after the fit.

One panel per joint for the (up to) six scored joints that moved most: the recording (black), the simulator with
the starting parameters (red, dashed) and with the fitted ones (blue). The last panel is the best cost after
each iteration of the fit. A fit that worked shows the blue line on the black one where the red one strays.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MAX_PANELS = 6


def plot_fit(path: Path, spec: Any, recording: Any, before: Any, after: Any, joints: Sequence[int],
             result: Any) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    motion = np.ptp(recording.positions[:, joints], axis=0)
    shown = [joints[i] for i in np.argsort(motion)[::-1][:MAX_PANELS]]
    t = recording.state_times - recording.state_times[0]
    rows = len(shown) + 1
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.0 * rows), squeeze=False)
    for ax, joint in zip(axes[:-1, 0], shown, strict=True):
        ax.plot(t, recording.positions[:, joint], color="black", lw=1.2, label="recorded")
        ax.plot(t, before.positions[:, joint], color="tab:red", lw=1.0, ls="--", label="simulated, start")
        ax.plot(t, after.positions[:, joint], color="tab:blue", lw=1.0, label="simulated, fitted")
        ax.set_ylabel(f"{spec.joint_names[joint]}\n[rad]", fontsize=8)
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=3)
    axes[0, 0].set_title(
        f"joint trajectory RMSE {result.rmse_before_rad:.4f} rad → {result.rmse_after_rad:.4f} rad "
        f"({result.rmse_before_rad / max(result.rmse_after_rad, 1e-12):.1f}x lower)"
    )
    axes[-2, 0].set_xlabel("time [s]")
    history = axes[-1, 0]
    history.semilogy(np.arange(1, len(result.history) + 1), result.history, color="tab:blue")
    history.set_xlabel("iteration (lsq) or generation (cma)")
    history.set_ylabel("best cost", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
