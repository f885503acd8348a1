"""One episode's sensor noise: white noise per reading, biases per episode. Shared by both physics backends, so
a policy trained in one sees the same sensors in the other."""

from __future__ import annotations

import math

import numpy as np

from humanoid_rl.core.rotations import quat_multiply
from humanoid_rl.sim.randomization import RandomizationSample

__all__ = ["EpisodeNoise"]


class EpisodeNoise:
    """Noise of one episode: standard deviations scaled by the randomization draw, biases drawn at creation.

    ``rng`` is consumed in a fixed order (gyro bias, accel bias, then one block per reading), so a seed gives
    the same readings in every run.
    """

    def __init__(self, noise: object, sample: RandomizationSample, n_joints: int, rng: np.random.Generator) -> None:
        imu_scale, encoder_scale = sample.imu_noise_scale, sample.encoder_noise_scale
        self.orientation_std = noise.orientation_std * imu_scale  # type: ignore[attr-defined]
        self._n = n_joints
        # One draw per reading, scaled per channel: gyro (3), accel (3), joint pos (n), joint vel (n), orientation (3).
        self._std = np.concatenate(
            [
                np.full(3, noise.gyro_std * imu_scale),  # type: ignore[attr-defined]
                np.full(3, noise.accel_std * imu_scale),  # type: ignore[attr-defined]
                np.full(n_joints, noise.joint_pos_std * encoder_scale),  # type: ignore[attr-defined]
                np.full(n_joints, noise.joint_vel_std * encoder_scale),  # type: ignore[attr-defined]
                np.full(3, self.orientation_std),
            ]
        )
        self.gyro_bias = rng.normal(0.0, noise.gyro_bias_std * imu_scale, 3)  # type: ignore[attr-defined]
        self.accel_bias = rng.normal(0.0, noise.accel_bias_std * imu_scale, 3)  # type: ignore[attr-defined]
        self._rng = rng

    def apply(
        self, imu_quat: np.ndarray, gyro: np.ndarray, accel: np.ndarray, q: np.ndarray, qd: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The readings as the sensors report them, from the exact IMU-frame values and joint state."""
        n = self._n
        noise = self._rng.standard_normal(self._std.size) * self._std
        if self.orientation_std > 0.0:  # a small random rotation of the reported orientation, in the IMU frame
            x, y, z = noise[6 + 2 * n :].tolist()
            angle = math.sqrt(x * x + y * y + z * z)
            if angle > 0.0:
                factor = math.sin(0.5 * angle) / angle
                error = np.array([x * factor, y * factor, z * factor, math.cos(0.5 * angle)])
                imu_quat = quat_multiply(imu_quat, error)
        return (
            imu_quat,
            gyro + self.gyro_bias + noise[0:3],
            accel + self.accel_bias + noise[3:6],
            q + noise[6 : 6 + n],
            qd + noise[6 + n : 6 + 2 * n],
        )
