"""Simulation speed: our full simulator step against a bare ``stepSimulation()`` loop on the same robot.

Cases, each run for the same amount of simulated time at the physics rate (1 kHz for the shipped robot), on
one core (PyBullet DIRECT and this loop are single-threaded):

- ``core_policy_rate_sensors``: what a training environment does — ``set_joint_targets`` and
  ``read_sensors`` once per ``decimation`` physics steps, our joint PD at every physics step.
- ``core_sensors_every_step``: the same, but ``read_sensors`` after every physics step (a 1 kHz bridge).
- ``bare_step_simulation``: ``stepSimulation()`` alone on the same standing robot, unpowered, timed in
  50-step bursts that each restart from the standing state: the floor the physics engine sets.
- ``bare_step_simulation_builtin_motors``: ``stepSimulation()`` alone with PyBullet's own position motors
  holding the default pose (they run inside the solver): what one gets without our own PD.

The cases are interleaved over ``repeats`` rounds and the median round is reported, so a burst of load
from another process skews all of them alike. ``humanoid-rl bench sim`` and
``python -m humanoid_rl.sim.bench`` both run this module.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pybullet as pb

from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.sim.simulator import HumanoidSim, SensorNoise, SimConfig

__all__ = ["add_arguments", "main", "run", "run_sim_benchmark"]

TARGET_REAL_TIME_FACTOR = 2.0
CORE_CASE = "core_policy_rate_sensors"
BARE_CASE = "bare_step_simulation"


Timing = tuple[float, float]  # wall seconds, CPU seconds of this thread


def _clock() -> Timing:
    return time.perf_counter(), time.thread_time()


def _since(start: Timing) -> Timing:
    return time.perf_counter() - start[0], time.thread_time() - start[1]


def _policy_rate_loop(sim: HumanoidSim, n_steps: int, decimation: int) -> Timing:
    targets = sim.spec.default_pose
    start = _clock()
    for _ in range(n_steps // decimation):
        sim.set_joint_targets(targets)
        sim.step(decimation)
        sim.read_sensors()
    return _since(start)


def _every_step_loop(sim: HumanoidSim, n_steps: int, decimation: int) -> Timing:
    targets = sim.spec.default_pose
    start = _clock()
    for step in range(n_steps):
        if step % decimation == 0:
            sim.set_joint_targets(targets)
        sim.step(1)
        sim.read_sensors()
    return _since(start)


def _bare_standing_loop(sim: HumanoidSim, n_steps: int, decimation: int) -> Timing:
    """stepSimulation() alone, in short bursts that each start from the standing robot (restored from a saved
    state, untimed), so the contact set is the one the core cases see although nothing holds the joints."""
    client = sim.client_id
    step_simulation = pb.stepSimulation
    standing = pb.saveState(physicsClientId=client)
    wall = cpu = 0.0
    try:
        for burst_start in range(0, n_steps, BARE_BURST_STEPS):
            pb.restoreState(standing, physicsClientId=client)
            burst = min(BARE_BURST_STEPS, n_steps - burst_start)
            start = _clock()
            for _ in range(burst):
                step_simulation(physicsClientId=client)
            elapsed = _since(start)
            wall += elapsed[0]
            cpu += elapsed[1]
    finally:
        pb.removeState(standing, physicsClientId=client)
    return wall, cpu


def _builtin_motor_loop(sim: HumanoidSim, n_steps: int, decimation: int) -> Timing:
    pb.setJointMotorControlArray(
        sim.robot_id,
        list(sim.bullet_joint_indices),
        pb.POSITION_CONTROL,
        targetPositions=sim.spec.default_pose.tolist(),
        forces=sim.spec.effort_limits.tolist(),
        physicsClientId=sim.client_id,
    )
    step_simulation, client = pb.stepSimulation, sim.client_id
    start = _clock()
    for _ in range(n_steps):
        step_simulation(physicsClientId=client)
    return _since(start)


BARE_BURST_STEPS = 50  # 50 ms unpowered: the robot has barely begun to sag
CASES: dict[str, Callable[[HumanoidSim, int, int], Timing]] = {
    CORE_CASE: _policy_rate_loop,
    "core_sensors_every_step": _every_step_loop,
    BARE_CASE: _bare_standing_loop,
    "bare_step_simulation_builtin_motors": _builtin_motor_loop,
}


def _load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _environment() -> dict[str, object]:
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pybullet_api_version": pb.getAPIVersion(),
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "load_average_1m_at_start": _load_average(),
    }


def run_sim_benchmark(
    seconds: float = 10.0,
    *,
    spec: RobotSpec | None = None,
    decimation: int | None = None,
    repeats: int = 3,
    solver_iterations: int | None = None,
    out: str | Path | None = None,
) -> dict[str, object]:
    """Measure physics steps per second for each case over ``seconds`` of simulated time (per case, split
    over ``repeats`` interleaved rounds). Returns the results; also writes them as JSON to ``out`` if given."""
    if not seconds > 0.0:
        raise ValueError(f"seconds = {seconds!r}: benchmark at least some simulated time (e.g. 10)")
    if repeats < 1:
        raise ValueError(f"repeats = {repeats!r}: use 1 or more rounds")
    spec = spec if spec is not None else RobotSpec.load()
    config = SimConfig(noise=SensorNoise())  # sensor noise on: its draws are part of the cost
    if solver_iterations is not None:
        config.solver_iterations = solver_iterations
    environment = _environment()
    sims = {name: HumanoidSim(spec, config) for name in CASES}
    try:
        physics_rate_hz = next(iter(sims.values())).physics_rate_hz
        decimation = decimation if decimation is not None else next(iter(sims.values())).decimation
        if decimation < 1:
            raise ValueError(f"decimation = {decimation!r}: use 1 or more physics steps per policy step")
        steps_per_round = max(decimation, int(round(seconds * physics_rate_hz / repeats)))
        steps_per_round -= steps_per_round % decimation  # whole policy steps
        rounds: dict[str, list[float]] = {name: [] for name in CASES}
        cpu_rounds: dict[str, list[float]] = {name: [] for name in CASES}
        for _ in range(repeats):
            for name, loop in CASES.items():
                sims[name].reset(seed=0)
                wall, cpu = loop(sims[name], steps_per_round, decimation)
                rounds[name].append(wall)
                cpu_rounds[name].append(cpu)
    finally:
        for sim in sims.values():
            sim.close()

    cases: dict[str, dict[str, float | int]] = {}
    for name, wall_times in rounds.items():
        median_wall = statistics.median(wall_times)
        median_cpu = statistics.median(cpu_rounds[name])
        steps_per_s = steps_per_round / median_wall
        cases[name] = {
            "physics_steps_per_round": steps_per_round,
            "rounds": repeats,
            "median_wall_s": median_wall,
            "steps_per_s": steps_per_s,
            "best_steps_per_s": steps_per_round / min(wall_times),
            "us_per_step": 1e6 / steps_per_s,
            "real_time_factor": steps_per_s / physics_rate_hz,
            # CPU time of this thread: what a dedicated core would give when other processes share the machine.
            "median_cpu_s": median_cpu,
            "steps_per_cpu_s": steps_per_round / median_cpu,
            "cpu_us_per_step": 1e6 * median_cpu / steps_per_round,
            "cpu_real_time_factor": steps_per_round / median_cpu / physics_rate_hz,
        }
    core, bare = cases[CORE_CASE], cases[BARE_CASE]
    results: dict[str, object] = {
        "benchmark": "sim",
        "robot": spec.name,
        "n_joints": spec.n_joints,
        "physics_rate_hz": physics_rate_hz,
        "decimation": decimation,
        "simulated_seconds_per_case": steps_per_round * repeats / physics_rate_hz,
        "solver_iterations": config.solver_iterations,
        "cases": cases,
        "core_to_bare_speed_ratio": core["steps_per_s"] / bare["steps_per_s"],
        "core_to_bare_cpu_speed_ratio": core["steps_per_cpu_s"] / bare["steps_per_cpu_s"],
        "core_overhead_us_per_step": core["us_per_step"] - bare["us_per_step"],
        "core_overhead_cpu_us_per_step": core["cpu_us_per_step"] - bare["cpu_us_per_step"],
        "core_real_time_factor": core["real_time_factor"],
        "core_cpu_real_time_factor": core["cpu_real_time_factor"],
        "target_real_time_factor": TARGET_REAL_TIME_FACTOR,
        "meets_target": core["real_time_factor"] >= TARGET_REAL_TIME_FACTOR,
        "meets_target_on_a_dedicated_core": core["cpu_real_time_factor"] >= TARGET_REAL_TIME_FACTOR,
        "environment": {**environment, "load_average_1m_at_end": _load_average()},
        "timestamp_unix": time.time(),
    }
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
    return results


def format_results(results: dict[str, object]) -> str:
    cases = results["cases"]
    environment = results["environment"]
    assert isinstance(cases, dict) and isinstance(environment, dict)
    lines = [
        f"simulation benchmark: {results['robot']} ({results['n_joints']} joints), physics "
        f"{results['physics_rate_hz']:g} Hz, decimation {results['decimation']}, "
        f"{results['simulated_seconds_per_case']:g} s simulated per case, load average "
        f"{environment['load_average_1m_at_start']} -> {environment['load_average_1m_at_end']} "
        f"on {environment['cpu_count']} CPUs",
        f"{'case':<38}{'steps/s':>9}{'best':>8}{'x real':>8}{'steps/cpu-s':>13}{'cpu us/step':>13}{'x real':>8}",
    ]
    for name, case in cases.items():
        lines.append(
            f"{name:<38}{case['steps_per_s']:>9.0f}{case['best_steps_per_s']:>8.0f}"
            f"{case['real_time_factor']:>8.2f}{case['steps_per_cpu_s']:>13.0f}{case['cpu_us_per_step']:>13.1f}"
            f"{case['cpu_real_time_factor']:>8.2f}"
        )
    lines.append(
        f"core/bare speed ratio {results['core_to_bare_speed_ratio']:.2f} wall, "
        f"{results['core_to_bare_cpu_speed_ratio']:.2f} cpu; core overhead "
        f"{results['core_overhead_cpu_us_per_step']:.1f} cpu-us/step"
    )
    target = results["target_real_time_factor"]
    lines.append(
        f"core: {results['core_real_time_factor']:.2f}x real time by the wall clock "
        f"({'meets' if results['meets_target'] else 'MISSES'} the {target:g}x target), "
        f"{results['core_cpu_real_time_factor']:.2f}x per CPU-second "
        f"({'meets' if results['meets_target_on_a_dedicated_core'] else 'MISSES'} it on a dedicated core)"
    )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=10.0, help="simulated seconds per case (default: 10)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON to this file")
    parser.add_argument("--robot", default=None, help="robot YAML path (default: the shipped humanoid)")
    parser.add_argument(
        "--decimation", type=int, default=None, help="physics steps per policy step (default: from the robot)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--solver-iterations", type=int, default=None, help="PyBullet solver iterations")
    parser.add_argument(
        "--min-real-time-factor",
        type=float,
        default=None,
        help="exit with status 1 if the core case runs slower than this many times real time",
    )


def run(args: argparse.Namespace) -> int:
    spec = RobotSpec.load(args.robot)
    results = run_sim_benchmark(
        args.seconds,
        spec=spec,
        decimation=args.decimation,
        repeats=args.repeats,
        solver_iterations=args.solver_iterations,
        out=args.out,
    )
    print(format_results(results))
    if args.out is not None:
        print(f"results written to {args.out}")
    if args.min_real_time_factor is not None and results["core_real_time_factor"] < args.min_real_time_factor:
        print(
            f"core real-time factor {results['core_real_time_factor']:.2f} is below the required "
            f"{args.min_real_time_factor:g}",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m humanoid_rl.sim.bench", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
