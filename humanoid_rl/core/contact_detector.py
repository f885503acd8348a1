"""Per-foot contact from the feet's normal forces, with hysteresis (the state estimator's contact detection)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from humanoid_rl.core.estimator_params import EstimatorInputError

__all__ = ["ContactDetector"]


class ContactDetector:
    """Per-foot contact from normal force with hysteresis: on above ``on_threshold_n``, off below
    ``off_threshold_n``, otherwise unchanged (so a force hovering around one threshold does not chatter)."""

    def __init__(self, on_threshold_n: float, off_threshold_n: float, n_feet: int = 2) -> None:
        if not (math.isfinite(on_threshold_n) and math.isfinite(off_threshold_n)):
            raise ValueError(f"contact thresholds must be finite, got on={on_threshold_n}, off={off_threshold_n}")
        if off_threshold_n >= on_threshold_n:
            raise ValueError(
                f"contact off threshold ({off_threshold_n} N) must be below the on threshold ({on_threshold_n} N)"
            )
        self.on_threshold_n = float(on_threshold_n)
        self.off_threshold_n = float(off_threshold_n)
        self.n_feet = n_feet
        self._contacts = np.zeros(n_feet, dtype=bool)
        self._initialised = False

    @property
    def contacts(self) -> NDArray[np.bool_]:
        return self._contacts.copy()

    def reset(self) -> None:
        self._contacts = np.zeros(self.n_feet, dtype=bool)
        self._initialised = False

    def evaluate(self, normal_forces: ArrayLike) -> NDArray[np.bool_]:
        """The contacts these forces would give, without committing them (see ``commit``)."""
        forces = np.asarray(normal_forces, dtype=np.float64)
        if forces.shape != (self.n_feet,):
            raise EstimatorInputError(
                f"foot_forces has shape {forces.shape}, expected ({self.n_feet},) (one normal force per foot)"
            )
        if not self._initialised:
            # No history yet: decide by the midpoint between the thresholds.
            return forces > 0.5 * (self.on_threshold_n + self.off_threshold_n)
        # Plain floats: three element-wise operations on 2-element arrays cost more than the comparisons.
        on, off = self.on_threshold_n, self.off_threshold_n
        pairs = zip(self._contacts.tolist(), forces.tolist(), strict=True)
        contacts = [(was or force > on) and force >= off for was, force in pairs]
        return np.array(contacts, dtype=bool)

    def commit(self, contacts: NDArray[np.bool_]) -> None:
        self._contacts = contacts
        self._initialised = True

    def update(self, normal_forces: ArrayLike) -> NDArray[np.bool_]:
        """Evaluate and commit; returns the new contact flags (left, right)."""
        contacts = self.evaluate(normal_forces)
        self.commit(contacts)
        return contacts.copy()
