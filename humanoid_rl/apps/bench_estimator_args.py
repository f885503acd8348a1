"""Options of ``humanoid-rl bench estimator`` (the state estimator under a walking policy,
:mod:`humanoid_rl.sim.estimator_walk`), kept apart from it so that building the parser imports no simulator."""

from __future__ import annotations

import argparse

from humanoid_rl.cli_args import parse_timed_triples
from humanoid_rl.core.estimator_params import BEFORE_SOLE, STANCE_POINTS

__all__ = ["add_estimator_arguments", "cmd_vel_type"]


def cmd_vel_type(text: str) -> tuple[float, float, float]:
    """argparse type of ``--cmd-vel VX,VY,WZ`` (one command held for the whole episode)."""
    if ":" in text:
        raise argparse.ArgumentTypeError(f"--cmd-vel {text!r}: use one command VX,VY,WZ, e.g. 0.5,0,0")
    ((_, command),) = parse_timed_triples(text, "--cmd-vel", "VX,VY,WZ", "use VX,VY,WZ, e.g. 0.5,0,0", "commands")
    return command


def add_estimator_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("estimator (bench estimator: the state estimator under a walking policy)")
    group.add_argument("--cmd-vel", type=cmd_vel_type, default=(0.5, 0.0, 0.0),
                       help="estimator: walking command VX,VY,WZ (default 0.5,0,0); standing runs 0,0,0")
    group.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                       help="estimator: episode seeds (default 0 1 2)")
    group.add_argument("--episode-s", type=float, default=20.0, help="estimator: seconds per episode (default 20)")
    group.add_argument("--policy-sees", choices=["estimate", "truth"], default="estimate",
                       help="estimator: the policy observes the estimate (as in the ROS stack, default) or the exact "
                       "velocity plus training noise")
    group.add_argument("--estimator-param", action="append", default=[], metavar="KEY=VALUE",
                       help="estimator: set an EstimatorParams field, e.g. stance_point=foot_frame or "
                       f"slip_gate_chi2=0 (repeatable; stance points: {', '.join(STANCE_POINTS)})")
    group.add_argument("--estimator-before-sole", action="store_true",
                       help=f"estimator: start from the estimator before the sole stance point ({BEFORE_SOLE}), "
                       "for before/after figures")
    group.add_argument("--no-shield", action="store_true", help="estimator: no shield between policy and motors")
