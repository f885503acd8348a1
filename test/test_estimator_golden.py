"""The state estimator's outputs over fixed input sequences, against a recording (test/data/estimator_golden.npz).

This pins behaviour across refactors that are meant to change only the cost of an update (issue #16): the
sequences cover double and single support, flight long enough to lose footing, slipping legs (slip gate), feet
rolling onto their sole edges, dt gaps, an out-of-order and a rejected sample and a reset. A change that is meant
to change the estimates regenerates the recording: ``python test/test_estimator_golden.py`` (and says why in
its commit).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from humanoid_rl.core.estimator import LeggedStateEstimator
from humanoid_rl.core.estimator_params import BEFORE_SOLE, EstimatorInputError, EstimatorParams
from humanoid_rl.core.kinematics import RobotKinematics
from humanoid_rl.core.robot_spec import RobotSpec

GOLDEN = Path(__file__).parent / "data" / "estimator_golden.npz"
FIELDS = (
    "time_s", "position", "orientation_xyzw", "linear_velocity_world", "linear_velocity_body",
    "angular_velocity_body", "height", "contacts", "covariance_diag", "foot_positions", "gyro_bias", "valid",
    "no_contact_s",
)  # fmt: skip
CASES = {
    "default": {},
    "before_sole": BEFORE_SOLE,
    "smoothed_tight_gate": {"orientation_time_constant_s": 0.1, "slip_gate_chi2": 4.0},
}
STEPS = 3000
KEEP_EVERY = 25  # outputs kept in the recording (errors carry through the state, so a sample of them suffices)


def record(spec: RobotSpec, kinematics: RobotKinematics, params: EstimatorParams, seed: int) -> dict[str, np.ndarray]:
    estimator = LeggedStateEstimator(spec, kinematics, params)
    rng = np.random.default_rng(seed)
    q0 = np.asarray(spec.default_pose, dtype=float)
    n = len(q0)
    kept: dict[str, list[np.ndarray]] = {name: [] for name in FIELDS}
    t = 0.0
    for i in range(STEPS):
        t += 0.01 if i % 97 == 0 else (0.08 if i % 300 == 0 else 0.02)  # odd dt and gaps beyond max_dt_s
        if i % 500 == 250:
            t -= 0.05  # out of order
        a = 0.15 * np.sin(0.003 * i)
        quat = np.array([0.3 * np.sin(a), 0.2 * np.sin(a), np.sin(0.5 * a), 1.0])
        quat *= (1.0 + 0.01 * np.sin(i)) / np.linalg.norm(quat)  # not quite unit
        q = q0 + 0.25 * np.sin(0.013 * i + np.arange(n)) * np.cos(0.002 * i)  # feet roll onto their edges
        qd = rng.normal(0.0, 0.1, n)
        if i % 211 < 6:
            qd += rng.normal(0.0, 3.0, n)  # a slipping leg
        phase = i % 400
        if phase < 120 or 230 <= phase < 300:
            forces = [300.0, 300.0]
        elif phase < 200:
            forces = [300.0, 0.0] if (i // 400) % 2 else [0.0, 300.0]
        elif phase < 230:
            forces = [0.0, 0.0] if i % 1200 < 800 else [20.0, 20.0]  # short flight, or inside the hysteresis band
        elif phase < 340 and i % 1200 >= 800:
            forces = [0.0, 0.0]  # long flight: footing lost
        else:
            forces = [300.0 + 50.0 * np.sin(i), 40.0]
        gyro = rng.normal(0.0, 0.05, 3) + [0.02, -0.01, 0.03]
        accel = np.array([0.0, 0.0, 9.81]) + rng.normal(0.0, 0.3, 3)
        if i == 1000:
            with pytest.raises(EstimatorInputError):
                estimator.update(t, quat, gyro, accel, q, qd, [np.nan, 1.0])
        out = estimator.update(t, quat.tolist() if i % 2 else quat, gyro, accel, q, qd, forces)
        if i % KEEP_EVERY == 0 or i == STEPS - 1:
            for name in FIELDS:
                kept[name].append(np.asarray(getattr(out, name), dtype=float))
        if i == 2000:
            estimator.reset(position=[0.1, 0.2, 0.9])
    result = {name: np.array(values) for name, values in kept.items()}
    result["counters"] = np.array(
        [
            estimator.samples_rejected,
            estimator.samples_out_of_order,
            estimator.gaps_clamped,
            estimator.lost_footing_updates,
            estimator.slip_gated_updates,
        ],
        dtype=float,
    )
    return result


def record_all() -> dict[str, np.ndarray]:
    spec = RobotSpec.load(None)
    kinematics = RobotKinematics(spec)
    data = {}
    for seed, (case, overrides) in enumerate(CASES.items()):
        for name, values in record(spec, kinematics, EstimatorParams(**overrides), seed).items():
            data[f"{case}/{name}"] = values
    return data


def test_estimator_outputs_match_the_recording_to_round_off() -> None:
    golden = np.load(GOLDEN)
    data = record_all()
    assert sorted(golden.files) == sorted(data)
    for key in golden.files:
        np.testing.assert_allclose(data[key], golden[key], rtol=0.0, atol=1e-9, err_msg=key)
    # The sequences exercise what they claim to: lost footing, the slip gate, gaps and out-of-order samples.
    for case in CASES:
        rejected, out_of_order, gaps, lost, gated = golden[f"{case}/counters"]
        assert rejected == 1 and out_of_order > 0 and gaps > 0 and lost > 0
        assert gated > 0 or CASES[case].get("slip_gate_chi2", 1.0) == 0.0


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, **record_all())
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)", file=sys.stderr)
