"""`humanoid-rl eval`: the command line over ``train/evaluate.py`` (options, checks before anything runs, the printed
summary, and the videos of chosen episodes)."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from humanoid_rl.train.evaluate import BASELINE, DEFAULT_PUSH_N, POLICY, EvalSetting, evaluate, plot, print_progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from humanoid_rl.cli_args import (
        add_output_arguments,
        existing_file,
        float_in,
        non_negative_float,
        non_negative_int,
        positive_float,
        positive_int,
        velocity_command,
    )
    from humanoid_rl.train.eval_video import parse_video_seeds

    parser.add_argument("model", nargs="?", default="",
                        help="exported ONNX policy (empty: evaluate only the PD-only baseline)")
    parser.add_argument("--task", choices=("stand", "walk", "reach"), default="stand",
                        help="environment (default stand); reach: a goal-conditioned model on seeded goals, beside "
                        "the PD hold, scored by the hand's final distance")
    parser.add_argument("--cmd-vel", type=velocity_command, default=None, metavar="VX,VY,WZ",
                        help="walk: hold this command (m/s, m/s, rad/s, heading frame) in every episode, e.g. "
                        "0.5,0,0 (default: each episode's drawn from the training ranges); the summary then says "
                        "the mean velocity achieved, so too slow or veering shows with its sign")
    parser.add_argument("--episodes", type=positive_int, default=50, help="seeded episodes per policy (default 50)")
    parser.add_argument("--episode-s", type=positive_float, default=None,
                        help="episode length, seconds (default 20; reach: 1, its training episodes)")
    parser.add_argument("--push-force", type=non_negative_float, default=None,
                        help="push force in newtons, horizontal, random direction (default 60 for stand, 40 for "
                        "walk; 0: no pushes)")
    parser.add_argument("--push-force-max", type=non_negative_float, default=None,
                        help="draw each push uniformly in [--push-force, this] (default: always --push-force)")
    parser.add_argument("--push-interval", type=positive_float, default=4.0,
                        help="seconds between pushes (default 4)")
    parser.add_argument("--push-duration", type=float_in(0.001, 10.0, "s"), default=0.2,
                        help="seconds each push lasts (default 0.2)")
    parser.add_argument("--randomize", action=argparse.BooleanOptionalAction, default=True,
                        help="domain randomization (default on)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="episode i uses seed SEED+i for both policies")
    parser.add_argument("--jobs", type=positive_int, default=1, help="worker processes (default 1)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the PD-only baseline")
    parser.add_argument("--shield", action="store_true",
                        help="run the safety shield core (config/sim.yaml thresholds) between each policy and the "
                        "simulator, as deployed, and report its interventions per stage")
    parser.add_argument("--robot-config", default=None, help="robot YAML (default: the shipped humanoid)")
    parser.add_argument("--backend", choices=("pybullet", "mujoco"), default="pybullet",
                        help="simulator: pybullet (the acceptance one, default) or mujoco (where `train --backend "
                        "mujoco` trained: the difference between the two is the sim-to-sim gap)")
    parser.add_argument("--video", type=parse_video_seeds, default=(), metavar="SEED[,SEED...]",
                        help="film these evaluated episodes (seeds from --seed on) of the policy, or of the baseline "
                        "without a model, as <policy>-seed<N>.mp4 in the output folder (PyBullet only)")
    parser.add_argument("--sim-params", type=existing_file, default=None,
                        help="fitted simulator parameters (`humanoid-rl sysid -o FILE`): evaluate on the fitted robot")
    add_output_arguments(parser, "runs/eval-<timestamp>")


def _describe(name: str, r: dict[str, Any], walking: bool) -> str:
    text = (f"  {name:8s} success {r['success_rate']:6.1%}  fall {r['fall_rate']:6.1%}  mean length "
            f"{r['mean_length_s']:5.1f} s  return {r['mean_return']:8.1f}  min joint-limit distance "
            f"{r['min_joint_limit_distance_rad']:.3f} rad  mean max tilt {r['mean_max_tilt_rad']:.2f} rad")
    if walking:
        vx, vy, wz = r["mean_achieved_velocity"]
        text += (f"\n  {'':8s} tracking error per stride vx {r['stride_vx_error_mps']:.3f} m/s, vy "
                 f"{r['stride_vy_error_mps']:.3f} m/s, yaw rate {r['stride_yaw_rate_error_rps']:.3f} rad/s; per step "
                 f"vx {r['mean_vx_error_mps']:.3f} m/s, yaw rate {r['mean_yaw_rate_error_rps']:.3f} rad/s"
                 f"\n  {'':8s} mean achieved vx {vx:+.3f} m/s, vy {vy:+.3f} m/s, yaw rate {wz:+.3f} rad/s")
    return text


def run(args: argparse.Namespace) -> int:
    from humanoid_rl.cli import CommandError
    from humanoid_rl.cli_args import prepare_run_dir
    from humanoid_rl.core.robot_spec import RobotSpec
    from humanoid_rl.policy.runtime import check_model_for_robot
    from humanoid_rl.train.eval_video import check_against_evaluation, film

    if args.task == "reach":
        check_reach_options(args)
    if args.cmd_vel is not None and args.task != "walk":
        raise CommandError(f"--cmd-vel applies to --task walk (the {args.task} task takes no velocity command). "
                           "Fix: drop --cmd-vel, or add --task walk")
    if args.episode_s is None:
        args.episode_s = 1.0 if args.task == "reach" else 20.0
    if args.push_force is None:
        args.push_force = DEFAULT_PUSH_N.get(args.task, 0.0)
    if args.push_force_max is not None and args.push_force_max < args.push_force:
        raise CommandError(f"--push-force-max {args.push_force_max:g} is below --push-force {args.push_force:g}. "
                           "Fix: give a maximum >= the minimum")
    model = str(args.model).strip() or None
    outside = [s for s in args.video if not args.seed <= s < args.seed + args.episodes]
    if outside:
        raise CommandError(f"--video seed {outside[0]} is not one of the evaluated episodes' seeds "
                           f"{args.seed}..{args.seed + args.episodes - 1}. Fix: choose seeds in that range")
    if args.video and args.backend != "pybullet":
        raise CommandError("--video films PyBullet episodes only (the MuJoCo backend does not render). "
                           "Fix: drop --video, or evaluate with --backend pybullet")
    if model is None and args.no_baseline:
        raise CommandError("nothing to evaluate: give a model, or drop --no-baseline")
    RobotSpec.load(args.robot_config or None)  # a bad robot file: one line here, not a traceback per worker
    # Checked as the workers will load it (file, metadata, contract, recorded pairs) before any folder or worker.
    checked = check_model_for_robot(model, args.robot_config)
    model = None if checked is None else str(checked)
    radius_m = check_goal_term(model, args.task)
    setting = EvalSetting(task=args.task, episodes=args.episodes, episode_s=args.episode_s,
                          push_force_n=args.push_force, push_force_max_n=args.push_force_max,
                          push_interval_s=args.push_interval, push_duration_s=args.push_duration,
                          randomize=args.randomize, seed=args.seed, robot_config=args.robot_config,
                          shield=args.shield, backend=args.backend,
                          sim_params=None if args.sim_params is None else str(args.sim_params),
                          reach_radius_m=radius_m, command=args.cmd_vel)
    if setting.sim_params is not None:
        from humanoid_rl.sim.sim_params import load_sim_params

        try:
            load_sim_params(setting.sim_params)  # a bad file: one line here, not a traceback per worker
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if setting.backend == "mujoco":
            raise CommandError("--sim-params applies to the pybullet backend only")
    run_dir = prepare_run_dir(args.out, Path("runs"), "eval", overwrite=args.overwrite)
    out = run_dir.path
    try:
        result = evaluate(model, setting, jobs=args.jobs, baseline=not args.no_baseline, progress=print_progress)
    except BaseException:
        run_dir.discard_if_empty()
        raise
    result["command"] = ["humanoid-rl", *sys.argv[1:]] if "eval" in sys.argv else None
    result["model"] = model
    if model is not None:
        result["model_sha256"] = hashlib.sha256(Path(model).read_bytes()).hexdigest()
    # The results are written before any filming: a Ctrl-C while filming loses a video, not the evaluation.
    (out / "eval.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    if setting.task == "reach":
        from humanoid_rl.train.evaluate_reach import plot_reach

        plot_reach(result, out / "eval.png", [w for w in (POLICY, BASELINE) if w in result])
    else:
        plot(result, out / "eval.png")
    if args.video:
        result["videos"] = film(model, setting, args.video, out)
        for problem in check_against_evaluation(result["videos"], result):
            print(f"warning: the filmed episode differs from the evaluated one: {problem}", file=sys.stderr)
        (out / "eval.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    if setting.task == "reach":
        print_reach(result, setting, out)
        return 0
    push = f"{setting.push_force_n:g}" + (f"-{setting.push_force_max_n:g}" if setting.push_force_max_n else "")
    print(f"{setting.episodes} episodes x {setting.episode_s:g} s, push {push} N for {setting.push_duration_s:g} s "
          f"every {setting.push_interval_s:g} s, randomize {'on' if setting.randomize else 'off'}, seeds "
          f"{setting.seed}..{setting.seed + setting.episodes - 1}, {setting.backend} ({result['eval_seconds']} s)"
          + ("" if setting.command is None else ", command held at vx {:g} m/s, vy {:g} m/s, yaw rate {:g} rad/s"
             .format(*setting.command)))
    for name in (POLICY, BASELINE):
        if name in result:
            print(_describe(name, result[name], walking=setting.task == "walk"))
            if "shield" in result[name]:
                shield = result[name]["shield"]
                print(f"  {'':8s} shield interventions per stage {shield['interventions_per_stage']}, "
                      f"modes entered {shield['mode_entries']}")
    for video in result.get("videos", []):
        print(f"  video of seed {video['seed']} ({video['policy']}): {video['path'] or 'not written'}, "
              f"{video['frames']} frames")
    print(f"  results: {out / 'eval.json'}, {out / 'eval.png'}")
    return 0


def check_reach_options(args: argparse.Namespace) -> None:
    """What Reach-v0 has no use for, refused in one line rather than silently ignored."""
    from humanoid_rl.cli import CommandError

    unused = [name for name, given in (
        ("--push-force", args.push_force is not None), ("--push-force-max", args.push_force_max is not None),
        ("--shield", args.shield), ("--backend mujoco", args.backend != "pybullet"), ("--video", bool(args.video)),
        ("--sim-params", args.sim_params is not None)) if given]
    if unused:
        raise CommandError(f"--task reach: {unused[0]} does not apply (the reach task has no pushes, shield, "
                           "MuJoCo backend, video or fitted parameters). Fix: drop it")


def check_goal_term(model: str | None, task: str) -> float:
    """A goal-conditioned model evaluates on reach only, and reach takes only one; the success radius (the
    model's training radius, else Reach-v0's)."""
    from humanoid_rl.apps.reach_goals import DEFAULT_RADIUS_M, model_radius_m
    from humanoid_rl.cli import CommandError
    from humanoid_rl.policy.model_file import read_model_metadata

    if model is None:
        return DEFAULT_RADIUS_M
    has_goal = "goal" in {term.name for term in read_model_metadata(model).contract.terms}
    if has_goal and task != "reach":
        raise CommandError(f"{model} is goal-conditioned (it has a goal term). Fix: --task reach")
    if task == "reach" and not has_goal:
        raise CommandError(f"--task reach: {model} has no goal term. Fix: give a goal-conditioned model such as "
                           "models/humanoid_reach.onnx (`train --task reach --replay her`, then `export`)")
    return model_radius_m(model)


def print_reach(result: dict[str, Any], setting: EvalSetting, out: Path) -> None:
    from humanoid_rl.train.evaluate_reach import describe_reach

    print(f"{setting.episodes} reach goals x {setting.episode_s:g} s, sensor noise "
          f"{'on' if setting.randomize else 'off'}, seeds {setting.seed}..{setting.seed + setting.episodes - 1} "
          f"({result['eval_seconds']} s)")
    for name in (POLICY, BASELINE):
        if name in result:
            print(describe_reach(name, result[name]))
    print(f"  results: {out / 'eval.json'}, {out / 'eval.png'}")
