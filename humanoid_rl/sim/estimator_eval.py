"""How good is the state estimator? Run the PyBullet humanoid, feed ``LeggedStateEstimator`` the simulated
sensors, compare with the simulator's ground truth.

The metric definitions live here (``velocity_errors``, ``orientation_errors_rad``, ``EstimatorEvalResult``) so
that the estimator tests, the state-estimator node tests and ``humanoid-rl sim`` reports all mean the same thing
by "velocity RMSE":

* velocity: world-frame linear velocity of the base link frame origin, error as the Euclidean norm of the 3-D
  difference, RMSE over the evaluated samples;
* orientation: the angle of the rotation between estimated and true base orientation;
* height: estimated ``height`` (above the ground plane) minus the true base link z;
* horizontal drift: change of the estimated x, y since the first sample minus the true change (x, y are not
  observable from legs and IMU, so only their drift is meaningful).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from humanoid_rl.core.estimator import LeggedStateEstimator
from humanoid_rl.core.estimator_params import EstimatorParams
from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.sim.simulator import HumanoidSim, SimConfig

__all__ = [
    "DEFAULT_PUSHES",
    "EstimatorEvalConfig",
    "EstimatorEvalResult",
    "EstimatorTraces",
    "Push",
    "evaluate_estimator",
    "orientation_errors_rad",
    "velocity_errors",
]


@dataclass(frozen=True)
class Push:
    """A constant world-frame force on the base centre of mass."""

    start_s: float
    force_world: tuple[float, float, float]
    duration_s: float


# Two pushes of 80 N and 60 N for 0.2 s: 16 and 12 N·s on a 40 kg robot, a sideways lurch it survives
# without stepping while the PD holds the default pose.
DEFAULT_PUSHES = (Push(1.5, (-60.0, 0.0, 0.0), 0.2), Push(3.5, (-60.0, 0.0, 0.0), 0.2))


@dataclass(frozen=True)
class EstimatorEvalConfig:
    duration_s: float = 5.0
    sample_rate_hz: float = 500.0
    """How often the estimator gets a sensor sample; the physics rate must be a whole multiple of it."""
    pushes: tuple[Push, ...] = DEFAULT_PUSHES
    seed: int = 0
    """Episode seed of the simulator (sensor noise and biases; the randomization if the SimConfig enables it)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and self.duration_s > 0.0):
            raise ValueError(f"EstimatorEvalConfig.duration_s = {self.duration_s!r}: use a positive duration")
        if not (math.isfinite(self.sample_rate_hz) and self.sample_rate_hz > 0.0):
            raise ValueError(f"EstimatorEvalConfig.sample_rate_hz = {self.sample_rate_hz!r}: use a positive rate")


@dataclass
class EstimatorTraces:
    """Per-sample series, for plots."""

    time_s: np.ndarray
    true_velocity_world: np.ndarray  # (n, 3)
    estimated_velocity_world: np.ndarray  # (n, 3)
    true_height: np.ndarray  # (n,)
    estimated_height: np.ndarray  # (n,)
    orientation_error_rad: np.ndarray  # (n,)
    contacts: np.ndarray  # (n, 2) bool


@dataclass
class EstimatorEvalResult:
    n_samples: int
    velocity_rmse: float  # m/s, world frame, norm of the 3-D error
    velocity_max_error: float  # m/s
    velocity_rmse_during_pushes: float  # m/s, from each push start to 0.5 s after its end
    peak_true_speed: float  # m/s, to show the pushes moved the robot
    orientation_rmse_deg: float
    orientation_max_error_deg: float
    height_rmse: float  # m
    height_max_error: float  # m
    horizontal_drift: float  # m, at the end
    fell: bool  # base below half the nominal height or tilted past 45 degrees at some point
    update_median_us: float
    update_p99_us: float
    samples_rejected: int
    traces: EstimatorTraces | None = field(default=None, repr=False)

    def summary(self) -> str:
        return (
            f"estimator vs ground truth over {self.n_samples} samples: velocity RMSE {self.velocity_rmse:.4f} m/s "
            f"(max {self.velocity_max_error:.3f}, during pushes {self.velocity_rmse_during_pushes:.4f}, peak true "
            f"speed {self.peak_true_speed:.2f}), orientation RMSE {self.orientation_rmse_deg:.3f} deg "
            f"(max {self.orientation_max_error_deg:.3f}), height RMSE {100 * self.height_rmse:.2f} cm "
            f"(max {100 * self.height_max_error:.2f}), horizontal drift {100 * self.horizontal_drift:.2f} cm, "
            f"update {self.update_median_us:.0f} us median / {self.update_p99_us:.0f} us p99"
            + (", ROBOT FELL" if self.fell else "")
        )

    def to_dict(self) -> dict[str, float | int | bool]:
        """Scalar metrics only (JSON-able)."""
        out = asdict(self)
        out.pop("traces")
        return out


def velocity_errors(estimated: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-sample Euclidean norm of the velocity error, (n,)."""
    return np.linalg.norm(np.asarray(estimated) - np.asarray(true), axis=-1)


def orientation_errors_rad(estimated_xyzw: np.ndarray, true_xyzw: np.ndarray) -> np.ndarray:
    """Per-sample angle of the rotation from the true to the estimated orientation, (n,) radians."""
    est = np.asarray(estimated_xyzw, dtype=np.float64)
    true = np.asarray(true_xyzw, dtype=np.float64)
    dots = np.abs(np.sum(est * true, axis=-1)) / (np.linalg.norm(est, axis=-1) * np.linalg.norm(true, axis=-1))
    return 2.0 * np.arccos(np.clip(dots, 0.0, 1.0))


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values)))) if len(values) else 0.0


def evaluate_estimator(
    spec: RobotSpec | None = None,
    params: EstimatorParams | None = None,
    sim_config: SimConfig | None = None,
    config: EstimatorEvalConfig | None = None,
    kinematics: RobotKinematics | None = None,
    keep_traces: bool = False,
) -> EstimatorEvalResult:
    """Stand the robot (PD holding the default pose), push it, and score the estimator against ground truth.

    The estimator starts uninitialised, as on the robot: its height comes from the leg kinematics of the first
    sample, so the height error includes the initialisation.
    """
    spec = spec if spec is not None else RobotSpec.load()
    config = config if config is not None else EstimatorEvalConfig()
    kinematics = kinematics if kinematics is not None else RobotKinematics(spec)
    estimator = LeggedStateEstimator(spec, kinematics, params)

    with HumanoidSim(spec, sim_config) as sim:
        steps_per_sample = sim.physics_rate_hz / config.sample_rate_hz
        if abs(steps_per_sample - round(steps_per_sample)) > 1e-9:
            raise ValueError(
                f"sample_rate_hz = {config.sample_rate_hz} does not divide the physics rate "
                f"{sim.physics_rate_hz} Hz; choose a divisor (e.g. {sim.physics_rate_hz / 2:g})"
            )
        steps_per_sample = round(steps_per_sample)
        n_samples = round(config.duration_s * config.sample_rate_hz)
        push_steps = {round(p.start_s * sim.physics_rate_hz): p for p in config.pushes}

        sim.reset(seed=config.seed)
        sim.set_joint_targets(spec.default_pose)

        times = np.empty(n_samples)
        true_vel = np.empty((n_samples, 3))
        est_vel = np.empty((n_samples, 3))
        true_height = np.empty(n_samples)
        est_height = np.empty(n_samples)
        true_quat = np.empty((n_samples, 4))
        est_quat = np.empty((n_samples, 4))
        true_xy = np.empty((n_samples, 2))
        est_xy = np.empty((n_samples, 2))
        contacts = np.empty((n_samples, 2), dtype=bool)
        tilt = np.empty(n_samples)
        durations = np.empty(n_samples)
        for k in range(n_samples):
            for _ in range(steps_per_sample):
                push = push_steps.get(sim.step_count)
                if push is not None:
                    sim.apply_push(np.asarray(push.force_world, dtype=np.float64), push.duration_s)
                sim.step(1)
            sensors = sim.read_sensors()
            truth = sim.ground_truth()
            start = time.perf_counter()
            out = estimator.update(
                sensors.time_s,
                sensors.imu_quat,
                sensors.imu_gyro,
                sensors.imu_accel,
                sensors.joint_pos,
                sensors.joint_vel,
                sensors.foot_forces,
            )
            durations[k] = time.perf_counter() - start
            times[k] = sensors.time_s
            true_vel[k] = truth.lin_vel_world
            est_vel[k] = out.linear_velocity_world
            true_height[k] = truth.pos[2]
            est_height[k] = out.height
            true_quat[k] = truth.quat
            est_quat[k] = out.orientation_xyzw
            true_xy[k] = truth.pos[:2]
            est_xy[k] = out.position[:2]
            contacts[k] = out.contacts
            tilt[k] = truth.tilt_rad

    vel_err = velocity_errors(est_vel, true_vel)
    ori_err = orientation_errors_rad(est_quat, true_quat)
    height_err = est_height - true_height
    in_push = np.zeros(n_samples, dtype=bool)
    for p in config.pushes:
        in_push |= (times >= p.start_s) & (times <= p.start_s + p.duration_s + 0.5)
    drift = (est_xy[-1] - est_xy[0]) - (true_xy[-1] - true_xy[0])
    traces = (
        EstimatorTraces(times, true_vel, est_vel, true_height, est_height, ori_err, contacts) if keep_traces else None
    )
    return EstimatorEvalResult(
        n_samples=n_samples,
        velocity_rmse=_rms(vel_err),
        velocity_max_error=float(vel_err.max()),
        velocity_rmse_during_pushes=_rms(vel_err[in_push]),
        peak_true_speed=float(np.linalg.norm(true_vel, axis=1).max()),
        orientation_rmse_deg=math.degrees(_rms(ori_err)),
        orientation_max_error_deg=math.degrees(float(ori_err.max())),
        height_rmse=_rms(height_err),
        height_max_error=float(np.abs(height_err).max()),
        horizontal_drift=float(np.linalg.norm(drift)),
        fell=bool((true_height < 0.5 * spec.nominal_base_height).any() or (tilt > math.radians(45.0)).any()),
        update_median_us=1e6 * float(np.median(durations)),
        update_p99_us=1e6 * float(np.percentile(durations, 99)),
        samples_rejected=estimator.samples_rejected,
        traces=traces,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m humanoid_rl.sim.estimator_eval``: print the figures for one run."""
    import argparse

    from humanoid_rl.sim.randomization import DomainRandomization

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of simulated time")
    parser.add_argument("--rate", type=float, default=500.0, help="estimator sample rate, Hz")
    parser.add_argument("--randomize", action="store_true", help="enable the default domain randomization")
    parser.add_argument("--no-push", action="store_true", help="stand without being pushed")
    args = parser.parse_args(argv)
    config = EstimatorEvalConfig(
        duration_s=args.duration,
        sample_rate_hz=args.rate,
        pushes=() if args.no_push else DEFAULT_PUSHES,
        seed=args.seed,
    )
    sim_config = SimConfig(randomization=DomainRandomization(enabled=True)) if args.randomize else None
    print(evaluate_estimator(config=config, sim_config=sim_config).summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
