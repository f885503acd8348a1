"""Options of ``humanoid-rl bench estimator`` (the state estimator under a walking policy,
:mod:`humanoid_rl.sim.estimator_walk`), kept apart from it so that building the parser imports no simulator."""

from __future__ import annotations

import argparse

from humanoid_rl.cli_args import velocity_command
from humanoid_rl.core.estimator_params import BEFORE_SOLE, STANCE_POINTS

__all__ = ["add_estimator_arguments"]


def add_estimator_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("estimator (bench estimator: the state estimator under a walking policy)")
    group.add_argument("--cmd-vel", type=velocity_command, default=(0.5, 0.0, 0.0),
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
