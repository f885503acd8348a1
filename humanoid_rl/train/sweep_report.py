"""What a sweep leaves: ``trials.csv``, ``trials.png``, ``best.yaml`` (a ``train --config`` file) and
``sweep.json``, written the same way for local and Ray sweeps from one list of trial rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from humanoid_rl.train.sweep_spec import SweepSpec

__all__ = ["write_report"]

COLUMNS = ("number", "state", "value", "success_rate", "mean_return", "steps", "run_dir")


def _best(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    complete = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    return max(complete, key=lambda r: (r["value"], -r["number"])) if complete else None


def _write_csv(path: Path, spec: SweepSpec, rows: list[dict[str, Any]]) -> None:
    names = list(spec.space)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*COLUMNS, *names])
        for row in rows:
            writer.writerow([row[c] for c in COLUMNS] + [row["params"].get(n) for n in names])


def _plot(path: Path, spec: SweepSpec, rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = [n for n, raw in spec.space.items() if "choice" not in raw][:3]
    fig, axes = plt.subplots(1, 1 + len(numeric), figsize=(4.5 * (1 + len(numeric)), 3.8), squeeze=False)
    colors = {"COMPLETE": "tab:blue", "PRUNED": "tab:orange", "FAIL": "tab:red"}
    scored = [r for r in rows if r["value"] is not None]
    for state, color in colors.items():
        mine = [r for r in scored if r["state"] == state]
        axes[0][0].scatter([r["number"] for r in mine], [r["value"] for r in mine], color=color, label=state)
        for ax, name in zip(axes[0][1:], numeric, strict=True):
            ax.scatter([r["params"][name] for r in mine if name in r["params"]],
                       [r["value"] for r in mine if name in r["params"]], color=color)
    axes[0][0].set(xlabel="trial", ylabel=f"objective ({spec.objective})", title="trials")
    axes[0][0].legend(loc="best", fontsize=8)
    for ax, name in zip(axes[0][1:], numeric, strict=True):
        ax.set(xlabel=name, title=f"objective vs {name}")
        if "log" in next(iter(spec.space[name])):
            ax.set_xscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(spec: SweepSpec, sweep_dir: Path, rows: list[dict[str, Any]], backend: str,
                 command: list[str]) -> dict[str, Any]:
    """The four outputs; returns the summary that ``sweep.json`` holds."""
    rows = sorted(rows, key=lambda r: r["number"])
    _write_csv(sweep_dir / "trials.csv", spec, rows)
    _plot(sweep_dir / "trials.png", spec, rows)
    best = _best(rows)
    if best is not None:
        # A fresh run of the best settings: the sweep's trial directory is not reused.
        config = spec.trial_config(best["params"])
        config.run_name = ""
        config.save_yaml(sweep_dir / "best.yaml")
    states: dict[str, int] = {}
    for row in rows:
        states[row["state"]] = states.get(row["state"], 0) + 1
    summary = {"backend": backend, "objective": spec.objective, "trials": len(rows), "states": states,
               "best": best, "best_config": str(sweep_dir / "best.yaml") if best is not None else None,
               "spec": spec.to_dict(), "command": command, "rows": rows}
    (sweep_dir / "sweep.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary

