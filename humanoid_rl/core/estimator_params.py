"""Tunables of the legged-robot state estimator (:class:`EstimatorParams`), their presets and the error it raises
on malformed input.

Apart from the filter (:mod:`humanoid_rl.core.estimator`, which re-exports these names) so that the filter module
stays about the filter; the nodes, benches and evaluations that only configure an estimator read them here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = ["BEFORE_SOLE", "STANCE_POINTS", "EstimatorInputError", "EstimatorParams"]

STANCE_POINTS = ("sole", "foot_frame")
# EstimatorParams settings of the estimator as it was before the stance point moved to the sole (issue #12), for
# before/after comparisons (`humanoid-rl bench estimator --estimator-before-sole`).
BEFORE_SOLE = {"stance_point": "foot_frame", "slip_gate_chi2": 0.0, "foot_velocity_std": 0.1}


class EstimatorInputError(ValueError):
    """An input to ``LeggedStateEstimator.update`` is malformed: wrong shape, NaN, inf, a reading beyond
    ``EstimatorParams.max_abs_reading``, a quaternion far from unit length.

    The estimator state is left exactly as it was; the caller should drop the sample (and count it).
    """


@dataclass(frozen=True)
class EstimatorParams:
    """Tunables of ``LeggedStateEstimator``. Noise densities are continuous-time (variance grows as σ²·dt),
    so the tuning does not depend on the update rate; measurement standard deviations are per sample.

    Defaults were tuned on the PyBullet humanoid (humanoid_rl.sim.estimator_eval) with its default sensor
    noise.
    """

    # --- process noise (continuous-time densities, σ² · dt per step) ---
    accel_noise_density: float = 0.25
    """m/s²·√s: white noise on the world acceleration (accelerometer noise, bias, vibration, lever arm).
    In the simulation 0.1 scores best (its accelerometer is clean); 0.25 leaves room for a real robot's
    impacts and vibration at a cost of about 1 mm/s RMSE there."""
    position_noise_density: float = 0.002
    """m/√s: small extra freedom on the base position beyond v·dt."""
    stance_foot_noise_density: float = 0.002
    """m/√s: how much a foot in contact may slip."""
    swing_foot_noise_density: float = 5.0
    """m/√s: a swinging foot is free; this makes its state follow the kinematic measurement."""

    # --- measurement noise (per sample standard deviations) ---
    stance_foot_position_std: float = 0.005
    """m: kinematic foot position relative to the base, foot in contact (encoder noise x leg length)."""
    swing_foot_position_std: float = 0.02
    """m: same for a swinging foot (only carries the foot state along; hardly moves the base)."""
    foot_height_std: float = 0.005
    """m: stance foot height above the ground plane (flat ground assumption)."""
    foot_velocity_std: float = 0.05
    """m/s: base velocity from a stance leg, -R(J q̇ + ω × r) (joint velocity noise x leg length). 0.1 until the
    stance point sat on the sole; 0.05 with the slip gate: walking RMSE vx 0.065 -> 0.042 m/s (the walk policy's
    50 Hz sensor stream replayed), standing under pushes 6.1 -> 7.8 mm/s (estimator_eval, 500 Hz)."""
    use_foot_height_measurement: bool = True
    """False on uneven ground: then height drifts only as slowly as the feet slip."""
    use_foot_velocity_measurement: bool = True
    slip_gate_chi2: float = 16.0
    """Squared normalised distance (3 DoF) beyond which a stance leg's velocity is taken for a slipping or
    just-landed foot and down-weighted (0: off): the two legs' disagreement with both feet down, else the leg's
    distance from the prediction. 16 is the 99.9 % point of χ²(3): a still foot passes it; the walk policy's feet,
    which slide under load now and then (per-leg error 99th percentile 0.4-0.7 m/s), do not."""

    # --- stance point ---
    stance_point: str = "sole"
    """What stays put on the ground while a foot is in contact. "sole": the lowest part of the sole rectangle
    (``RobotSpec.soles``): its centre while flat, the edge or corner it stands on while tilted, chosen anew at
    every update from the kinematics and the orientation. "foot_frame": the foot link origin, right only for a
    foot that stays flat."""
    stance_point_softness_m: float = 0.002
    """m: sole corners within about this of the lowest one share the stance point (a soft minimum), so a flat
    foot's point sits mid-sole and does not jump between corners on encoder or orientation noise. Smaller follows
    a tilting foot sooner (walking vy RMSE 35 / 30 / 28 mm/s at 3 / 2 / 1.5 mm) but lifts a standing robot's
    height error (1.1 / 1.6 / 2.1 mm: its feet are never quite flat)."""

    # --- geometry ---
    ground_height: float = 0.0
    """m: world z of the (flat) ground."""
    foot_frame_height: float | None = None
    """m: height of the foot link frame above the ground when the sole is flat on it. None derives it from the
    robot spec: nominal_base_height + the base-frame z of the feet in the default pose."""
    gravity: float = 9.81
    """m/s²: magnitude; world gravity is (0, 0, -gravity)."""

    # --- contact detection (per-foot normal force, hysteresis) ---
    contact_on_weight_fraction: float = 0.15
    """A foot enters contact when its normal force exceeds this fraction of the robot's weight ..."""
    contact_off_weight_fraction: float = 0.05
    """... and leaves contact when it falls below this fraction."""

    # --- orientation and gyro bias ---
    gyro_bias_time_constant_s: float = 1.0
    """s: time constant of the gyro bias estimate (0 switches it off). The bias is what makes the gyro
    disagree with the IMU quaternion over time; uncorrected it biases the leg-velocity measurement by
    bias x leg length (5 mm/s for 0.005 rad/s on a 0.75 m leg) and the base position drifts with it."""
    max_gyro_bias: float = 0.1
    """rad/s: the bias estimate is clamped to this."""
    orientation_time_constant_s: float = 0.0
    """s: 0 outputs the IMU quaternion as is (an IMU's on-board AHRS already fuses gyro and accelerometer at
    a higher rate, and a second filter would add lag). > 0 outputs the gyro integrated and pulled towards the
    IMU quaternion with this time constant: for an IMU whose quaternion is noisy sample to sample."""

    # --- input checks, timing and initialisation ---
    max_abs_reading: float = 1e4
    """Any reading (rad, rad/s, m/s², N) beyond ± this is a sensor fault and the sample is refused: far above
    anything physical for a humanoid (1e4 N, 1000 g), far below what would overflow the filter."""
    max_dt_s: float = 0.05
    """s: a gap longer than this (lost samples) is integrated as max_dt_s only, and counted."""
    max_flight_s: float = 0.5
    """s: no foot in contact for longer than this (a fall, the robot lifted or lying on its side) and the estimate
    has lost its footing: nothing anchors it, and the IMU integrated alone runs away (a fallen robot's height read
    -3.8 m). The output is then flagged invalid, the base holds its last position with zero velocity and a
    variance that keeps growing, until a foot is in contact again."""
    initial_position_std: float = 0.01
    initial_velocity_std: float = 0.1
    initial_foot_std: float = 0.01

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (bool, str)) or value is None:
                continue
            if not math.isfinite(value):
                raise ValueError(f"EstimatorParams.{f.name} = {value!r}: must be a finite number")
            if f.name not in ("ground_height", "foot_frame_height") and value < 0.0:
                raise ValueError(f"EstimatorParams.{f.name} = {value!r}: must be >= 0")
        positive = (
            "stance_foot_position_std",
            "swing_foot_position_std",
            "foot_height_std",
            "foot_velocity_std",
            "gravity",
            "max_dt_s",
            "max_flight_s",
            "initial_position_std",
            "initial_velocity_std",
            "initial_foot_std",
            "max_abs_reading",
        )
        for name in positive:
            if getattr(self, name) <= 0.0:
                raise ValueError(f"EstimatorParams.{name} = {getattr(self, name)!r}: must be > 0")
        if self.stance_point not in STANCE_POINTS:
            raise ValueError(f"EstimatorParams.stance_point = {self.stance_point!r}: use one of {STANCE_POINTS}")
        if self.stance_point == "sole" and self.stance_point_softness_m <= 0.0:
            raise ValueError("EstimatorParams.stance_point_softness_m must be > 0 with stance_point 'sole'")
        if self.contact_off_weight_fraction >= self.contact_on_weight_fraction:
            raise ValueError(
                f"EstimatorParams.contact_off_weight_fraction ({self.contact_off_weight_fraction}) "
                "must be below "
                f"contact_on_weight_fraction ({self.contact_on_weight_fraction}) for the hysteresis to work"
            )
