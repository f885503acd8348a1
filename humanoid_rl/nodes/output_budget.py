"""The shield node's output budget: a token bucket that bounds how many core steps go out per control period.

The core bounds each step's change by a speed × ``control_period``; a flood of commands must therefore not
multiply the steps (see :mod:`humanoid_rl.nodes.safety_shield`, "Output timing").
"""

from __future__ import annotations

__all__ = ["BUDGET_CAPACITY", "BUDGET_RATE", "BUDGET_TOLERANCE", "CLOCK_JUMP_TOLERANCE_S", "OutputBudget"]

# Output budget: core steps per control_period on average (10 % above one: a stream at exactly the nominal rate
# recovers from a late output within ~10 periods instead of staying delayed), bursts up to BUDGET_CAPACITY.
BUDGET_RATE = 1.1
BUDGET_CAPACITY = 1.5
BUDGET_TOLERANCE = 1e-3  # of a period: stamps quantised to ns / ms never hold back an on-time output
CLOCK_JUMP_TOLERANCE_S = 1e-3


class OutputBudget:
    """Token bucket on the shield's clock: :data:`BUDGET_RATE` tokens per ``period``, at most
    :data:`BUDGET_CAPACITY`; an output takes one."""

    def __init__(self) -> None:
        self.tokens = BUDGET_CAPACITY
        self._last: float | None = None

    def reset(self) -> None:
        self.tokens, self._last = BUDGET_CAPACITY, None

    def available(self, now: float, period: float) -> bool:
        if self._last is not None and now > self._last:
            self.tokens = min(BUDGET_CAPACITY, self.tokens + BUDGET_RATE * (now - self._last) / period)
        if self._last is None or now > self._last or now < self._last - CLOCK_JUMP_TOLERANCE_S:
            self._last = now
        return self.tokens >= 1.0 - BUDGET_TOLERANCE

    def wait_s(self, period: float) -> float:
        """How long after the last :meth:`available` call the next output is allowed (aimed at a whole token, so
        that rounding cannot refuse it at that moment)."""
        return max(0.0, 1.0 - self.tokens) * period / BUDGET_RATE

    def take(self) -> None:
        self.tokens = max(0.0, self.tokens - 1.0)
