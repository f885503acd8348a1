"""Domain randomization: what may vary between training episodes, and one episode's draw of it.

``DomainRandomization`` says *which* physical quantities vary and over which ranges; ``draw`` turns it and a
seeded generator into a ``RandomizationSample`` — the concrete numbers one episode runs with. With
randomization disabled (or an item set to ``None``) the sample holds the nominal values, so the simulator
always runs from a sample and never branches on "randomized or not".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

__all__ = ["DomainRandomization", "RandomizationSample", "draw_randomization"]

Range = tuple[float, float]


def _check_range(name: str, value: Range | None, minimum: float | None = None, strict: bool = False) -> None:
    if value is None:
        return
    if len(value) != 2:
        raise ValueError(f"DomainRandomization.{name} must be a (low, high) pair or None, got {value!r}")
    low, high = float(value[0]), float(value[1])
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(
            f"DomainRandomization.{name} = {value!r} is not a valid range: use finite numbers, low <= high"
        )
    if minimum is not None and (low < minimum or (strict and low <= minimum)):
        bound = ">" if strict else ">="
        raise ValueError(f"DomainRandomization.{name} = {value!r}: both ends must be {bound} {minimum}")


@dataclass
class DomainRandomization:
    """Ranges drawn uniformly once per episode (at ``HumanoidSim.reset``). ``None`` switches an item off.

    Defaults follow common legged-robot practice. Everything is off unless ``enabled`` is True.
    """

    enabled: bool = False
    # Every link's mass (and rotational inertia, as if its density changed) is scaled by its own draw.
    mass_scale: Range | None = (0.8, 1.2)
    # Lateral friction coefficient of each foot (of every robot link if friction_all_links). Bullet multiplies
    # it with the ground's (1 by default), so the draw is the effective foot-ground coefficient.
    friction: Range | None = (0.5, 1.5)
    friction_all_links: bool = False
    # Vertical gravity component (m/s^2, negative) and a tilt of the gravity vector away from -z (rad),
    # drawn as a uniform angle in [0, gravity_tilt_rad] in a uniform direction (like standing on a slope).
    gravity_z: Range | None = (-9.81, -9.81)
    gravity_tilt_rad: float = 0.0
    # Per joint: scales the torque the motor produces and its ceiling (a motor-constant error).
    actuator_strength: Range | None = (0.9, 1.1)
    # Per-episode scale on the IMU and on the encoder noise standard deviations (and IMU bias).
    imu_noise_scale: Range | None = (0.5, 1.5)
    encoder_noise_scale: Range | None = (0.5, 1.5)
    # Delay between set_joint_targets and the targets reaching the motor driver, seconds.
    control_latency_s: Range | None = (0.0, 0.02)
    # Per joint PD gain scales (off by default: the deployed gains are known).
    kp_scale: Range | None = None
    kd_scale: Range | None = None

    def __post_init__(self) -> None:
        _check_range("mass_scale", self.mass_scale, minimum=0.0, strict=True)
        _check_range("friction", self.friction, minimum=0.0)
        _check_range("gravity_z", self.gravity_z)
        if self.gravity_z is not None and max(self.gravity_z) > 0.0:
            raise ValueError(
                f"DomainRandomization.gravity_z = {self.gravity_z!r}: gravity points down, use values <= 0"
            )
        if not (0.0 <= self.gravity_tilt_rad < math.pi / 2):
            raise ValueError(f"DomainRandomization.gravity_tilt_rad = {self.gravity_tilt_rad!r}: use [0, pi/2) rad")
        _check_range("actuator_strength", self.actuator_strength, minimum=0.0, strict=True)
        _check_range("imu_noise_scale", self.imu_noise_scale, minimum=0.0)
        _check_range("encoder_noise_scale", self.encoder_noise_scale, minimum=0.0)
        _check_range("control_latency_s", self.control_latency_s, minimum=0.0)
        _check_range("kp_scale", self.kp_scale, minimum=0.0, strict=True)
        _check_range("kd_scale", self.kd_scale, minimum=0.0)


@dataclass
class RandomizationSample:
    """The physical parameters one episode runs with (nominal values where nothing was drawn)."""

    link_names: tuple[str, ...]  # base link first, then PyBullet link order
    mass_scale: np.ndarray  # (n_links,) per link_names entry
    friction_link_names: tuple[str, ...]  # links whose lateral friction is set
    friction: np.ndarray  # (len(friction_link_names),)
    gravity: np.ndarray  # (3,) world frame, m/s^2
    actuator_strength: np.ndarray  # (n_joints,) policy order
    imu_noise_scale: float
    encoder_noise_scale: float
    control_latency_s: float
    kp_scale: np.ndarray  # (n_joints,) policy order
    kd_scale: np.ndarray  # (n_joints,) policy order
    enabled: bool = False
    seed: int | None = None
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able values, for training logs."""
        out: dict[str, object] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, tuple):
                value = list(value)
            out[item.name] = value
        return out


def _uniform(rng: np.random.Generator, bounds: Range | None, nominal: float, size: int | None = None) -> np.ndarray:
    if bounds is None:
        return np.full(size if size is not None else (), nominal, dtype=np.float64)
    return rng.uniform(bounds[0], bounds[1], size=size)


# One independent random stream per item, so narrowing or switching off one item leaves the others' draws
# for the same seed unchanged (a sweep over one item compares like with like).
_ITEMS = ("mass", "friction", "gravity", "strength", "imu_noise", "encoder_noise", "latency", "kp", "kd")


def draw_randomization(
    config: DomainRandomization,
    rng: np.random.Generator,
    *,
    link_names: tuple[str, ...],
    friction_link_names: tuple[str, ...],
    nominal_friction: np.ndarray,
    n_joints: int,
    nominal_gravity_z: float = -9.81,
    nominal_latency_s: float = 0.0,
    seed: int | None = None,
) -> RandomizationSample:
    """One episode's parameters, drawn from ``rng`` (same generator state, same sample)."""
    n_links = len(link_names)
    nominal_friction = np.asarray(nominal_friction, dtype=np.float64).copy()
    if not config.enabled:
        return RandomizationSample(
            link_names=link_names,
            mass_scale=np.ones(n_links),
            friction_link_names=friction_link_names,
            friction=nominal_friction,
            gravity=np.array([0.0, 0.0, nominal_gravity_z]),
            actuator_strength=np.ones(n_joints),
            imu_noise_scale=1.0,
            encoder_noise_scale=1.0,
            control_latency_s=nominal_latency_s,
            kp_scale=np.ones(n_joints),
            kd_scale=np.ones(n_joints),
            enabled=False,
            seed=seed,
        )
    streams = dict(zip(_ITEMS, rng.spawn(len(_ITEMS)), strict=True))
    friction = (
        nominal_friction
        if config.friction is None
        else streams["friction"].uniform(config.friction[0], config.friction[1], size=len(friction_link_names))
    )
    gravity_z = float(_uniform(streams["gravity"], config.gravity_z, nominal_gravity_z))
    # The tilt keeps the vertical component as drawn and adds a horizontal one, as on a slope of that angle.
    tilt = azimuth = 0.0
    if config.gravity_tilt_rad > 0.0:
        tilt = float(streams["gravity"].uniform(0.0, config.gravity_tilt_rad))
        azimuth = float(streams["gravity"].uniform(0.0, 2.0 * math.pi))
    horizontal = abs(gravity_z) * math.tan(tilt)
    return RandomizationSample(
        link_names=link_names,
        mass_scale=_uniform(streams["mass"], config.mass_scale, 1.0, n_links),
        friction_link_names=friction_link_names,
        friction=friction,
        gravity=np.array([horizontal * math.cos(azimuth), horizontal * math.sin(azimuth), gravity_z]),
        actuator_strength=_uniform(streams["strength"], config.actuator_strength, 1.0, n_joints),
        imu_noise_scale=float(_uniform(streams["imu_noise"], config.imu_noise_scale, 1.0)),
        encoder_noise_scale=float(_uniform(streams["encoder_noise"], config.encoder_noise_scale, 1.0)),
        control_latency_s=float(_uniform(streams["latency"], config.control_latency_s, nominal_latency_s)),
        kp_scale=_uniform(streams["kp"], config.kp_scale, 1.0, n_joints),
        kd_scale=_uniform(streams["kd"], config.kd_scale, 1.0, n_joints),
        enabled=True,
        seed=seed,
        extra={"gravity_tilt_rad": tilt, "gravity_tilt_azimuth_rad": azimuth},
    )
