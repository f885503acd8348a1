"""The fit of ``humanoid-rl sysid``: minimize the replay's residuals (``sim/sysid.py``) over a few parameters.

Two methods, both bounded, both counting every simulation against ``max_evaluations``:

* ``lsq`` (default): Levenberg-Marquardt on the residual vector (numpy; tiny normal equations), with a
  forward-difference Jacobian (one replay per parameter, step ``FitParameter.step``). Every replay is a full
  simulation (~0.15 s per simulated second on a free core), so the replay count decides the run time:
  Gauss-Newton uses the residuals' structure (the efforts pin the stiffness, the positions its ratio to the
  mass) and converges in about ten iterations. The replay blends a command into the physics step it arrives in,
  so the cost is smooth in the latency too.
* ``cma``: CMA-ES (``cma``), needing neither gradients nor smoothness: the fallback for a recording whose cost
  has several minima (large, chaotic motions), at several hundred replays.

The latency has local minima of its own (a delay looks like a softer, less damped joint over part of a chirp).
With measured efforts the fit starts from ``effort_guess`` (stiffness, damping and latency by linear least
squares on the efforts, no simulation); without them, ``lsq`` first takes two iterations from each of
``LATENCY_STARTS_S`` and refines the best. After the refinement the latency is swept over +-3 ms with the rest
held, and where that finds a better point the refinement runs again from there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from humanoid_rl.core.robot_spec import RobotSpec
from humanoid_rl.sim.sim_params import SimParams, joint_groups
from humanoid_rl.sim.sysid import (
    DEFAULT_FIT,
    NOMINAL,
    FitParameter,
    Recording,
    position_rmse,
    replay,
    residuals,
    scored_joints,
    smoothed,
)

__all__ = ["FIT_METHODS", "FitResult", "effort_guess", "fit"]

FIT_METHODS = ("lsq", "cma")
MAX_ITERATIONS = 30
LATENCY_STARTS_S = (0.0, 0.01, 0.02, 0.03)  # within the latency's bounds (sim/sysid.py BOUNDS)
LATENCY_GRID_S = np.arange(0.0, 0.0401, 0.0005)  # the effort guess's latency candidates
SWEEP_SPAN_S, SWEEP_STEP_S, SWEEP_ROUNDS = 0.003, 0.0005, 2  # the latency sweep after each refinement
SATURATED_FRACTION = 0.95  # of the effort limit: samples beyond it are left out of the effort guess
SCOUT_ITERATIONS = 2


@dataclass
class FitResult:
    params: SimParams
    values: dict[str, float]  # fitted value per FitParameter key
    cost_before: float
    cost_after: float
    rmse_before_rad: float
    rmse_after_rad: float
    evaluations: int
    history: list[float] = field(default_factory=list)  # best cost after each iteration (lsq) or generation (cma)
    initial_guess: dict[str, float] = field(default_factory=dict)  # from the efforts, before any replay


class _BudgetSpent(Exception):
    pass


class _Objective:
    """Replays on demand, remembers the best point, and stops the search when the budget is spent."""

    def __init__(self, spec: RobotSpec, recording: Recording, start: SimParams, parameters: Sequence[FitParameter],
                 joints: list[int], hanging: bool, budget: int) -> None:  # fmt: skip
        self.spec, self.recording, self.start, self.parameters = spec, recording, start, parameters
        self.joints, self.hanging, self.budget = joints, hanging, budget
        self.evaluations = 0
        self.best_x: np.ndarray | None = None
        self.best_cost = np.inf
        self._last: tuple[bytes, np.ndarray] | None = None

    def params_at(self, x: np.ndarray) -> SimParams:
        clipped = np.clip(x, [p.low for p in self.parameters], [p.high for p in self.parameters])
        return self.start.with_values({p.key: float(v) for p, v in zip(self.parameters, clipped, strict=True)})

    def residuals(self, x: np.ndarray) -> np.ndarray:
        key = np.asarray(x, dtype=np.float64).tobytes()
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        if self.evaluations >= self.budget:
            raise _BudgetSpent
        simulated = replay(self.spec, self.recording, self.params_at(x), hanging=self.hanging)
        self.evaluations += 1
        r = residuals(self.recording, simulated, self.joints)
        value = float(np.linalg.norm(r))
        if value < self.best_cost:
            self.best_cost, self.best_x = value, np.array(x, dtype=np.float64)
        self._last = (key, r)
        return r

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        r0 = self.residuals(x)
        columns = []
        for i, p in enumerate(self.parameters):
            h = p.step if x[i] + p.step <= p.high else -p.step  # stay inside the bounds
            shifted = np.array(x, dtype=np.float64)
            shifted[i] += h
            columns.append((self.residuals(shifted) - r0) / h)
        self.residuals(x)  # leave x as the remembered point (least_squares asks for it again)
        return np.stack(columns, axis=1)


def effort_guess(spec: RobotSpec, recording: Recording, parameters: Sequence[FitParameter]) -> dict[str, float]:
    """Stiffness and damping scales and the latency from the measured efforts alone, before any replay.

    A motor's effort is its PD torque, ``kp_scale*kp*(q*(t - latency) - q) - kd_scale*kd*qd``: linear in the two
    scales once the latency is fixed. So for each latency on LATENCY_GRID_S the scales are a least-squares
    solve over the recorded samples, and the latency with the smallest residual wins. No simulation, and no
    local minima: the fit starts next to the answer. Empty when the recording has no efforts.
    """
    keys = {p.key for p in parameters}
    groups = joint_groups(spec.joint_names)
    fitted = [g for g in groups if f"kp_scale.{g}" in keys or f"kd_scale.{g}" in keys]
    if recording.efforts is None or not fitted:
        return {}
    t, q, qd = recording.state_times, recording.positions, recording.velocities
    effort = smoothed(recording.efforts)
    unsaturated = np.abs(recording.efforts) < SATURATED_FRACTION * spec.effort_limits
    best: tuple[float, float, dict[str, float]] | None = None
    for latency in LATENCY_GRID_S:
        index = np.searchsorted(recording.command_times + latency, t, side="right") - 1
        valid = index >= 0  # before the first command arrives the drivers hold the initial pose
        error = recording.command_positions[np.maximum(index, 0)] - q
        sse, values = 0.0, {}
        for group in fitted:
            j = list(groups[group])
            # Samples at the torque limit say nothing about the gains (and a chattering joint sits there).
            usable = (valid[:, None] & unsaturated[:, j]).ravel()
            if usable.sum() < 10:
                continue
            columns = np.stack([smoothed(error[:, j] * spec.kp[j]).ravel()[usable],
                                smoothed(-qd[:, j] * spec.kd[j]).ravel()[usable]], axis=1)  # fmt: skip
            measured = effort[:, j].ravel()[usable]
            scales, *_ = np.linalg.lstsq(columns, measured, rcond=None)
            sse += float(np.sum((columns @ scales - measured) ** 2)) / measured.size
            values[f"kp_scale.{group}"], values[f"kd_scale.{group}"] = float(scales[0]), float(scales[1])
        if best is None or sse < best[0]:
            best = (sse, float(latency), values)
    if best is None or not best[2]:
        return {}
    guess = {k: v for k, v in best[2].items() if k in keys}
    if "control_latency_s" in keys:
        guess["control_latency_s"] = best[1]
    return guess


def _start_values(start: SimParams, parameters: Sequence[FitParameter]) -> np.ndarray:
    values = []
    for p in parameters:
        value = start.value(p.key)
        value = NOMINAL.get(p.key.partition(".")[0], 0.0) if value is None else value
        values.append(float(np.clip(value, p.low, p.high)))
    return np.array(values)


def fit(
    spec: RobotSpec,
    recording: Recording,
    *,
    start: SimParams | None = None,
    parameters: Sequence[FitParameter] = DEFAULT_FIT,
    joints: Sequence[int] | None = None,
    hanging: bool = True,
    method: str = "lsq",
    max_evaluations: int = 150,
    seed: int = 0,
    on_iteration: Callable[[int, float], None] | None = None,
) -> FitResult:
    """Fit ``parameters`` from ``start`` (default: nominal) so the replay matches ``recording``."""
    if method not in FIT_METHODS:
        raise ValueError(f"fit method {method!r}: use one of {list(FIT_METHODS)}")
    start = start if start is not None else SimParams()
    joints = list(joints) if joints is not None else scored_joints(spec.joint_names, parameters)
    objective = _Objective(spec, recording, start, parameters, joints, hanging, max_evaluations)
    x0 = _start_values(start, parameters)
    before = replay(spec, recording, start, hanging=hanging)
    history: list[float] = []

    def report() -> None:
        history.append(objective.best_cost)
        if on_iteration is not None:
            on_iteration(objective.evaluations, objective.best_cost)

    guess = effort_guess(spec, recording, parameters)
    for i, p in enumerate(parameters):
        if p.key in guess:
            x0[i] = float(np.clip(guess[p.key], p.low, p.high))
    try:
        if method == "lsq":
            if "control_latency_s" not in guess:
                _scout_latency(objective, x0, report)
            _least_squares(objective, objective.best_x if objective.best_x is not None else x0, report)
            for _ in range(SWEEP_ROUNDS):  # the latency's local minima: sweep it, refine again if it moved
                assert objective.best_x is not None
                if not _sweep_latency(objective, objective.best_x):
                    break
                report()
                _least_squares(objective, objective.best_x, report)
        else:
            _cma(objective, x0, seed, report)
    except _BudgetSpent:
        pass
    if not history or history[-1] > objective.best_cost:
        report()  # the last steps after the last Jacobian (lsq) count too
    best = objective.best_x if objective.best_x is not None else x0
    fitted = objective.params_at(best)
    after = replay(spec, recording, fitted, hanging=hanging)
    return FitResult(
        params=fitted,
        values={p.key: float(fitted.value(p.key) or 0.0) for p in parameters},
        cost_before=float(np.linalg.norm(residuals(recording, before, joints))),
        cost_after=float(np.linalg.norm(residuals(recording, after, joints))),
        rmse_before_rad=position_rmse(recording, before, joints),
        rmse_after_rad=position_rmse(recording, after, joints),
        evaluations=objective.evaluations,
        history=history,
        initial_guess=guess,
    )


def _least_squares(objective: _Objective, x0: np.ndarray, report: Callable[[], None],
                   iterations: int = MAX_ITERATIONS) -> None:
    """Levenberg-Marquardt with Marquardt's diagonal scaling, steps clipped to the bounds (a handful of
    parameters: the normal equations are tiny; every cost is in the replays)."""
    low = np.array([p.low for p in objective.parameters])
    high = np.array([p.high for p in objective.parameters])
    steps = np.array([p.step for p in objective.parameters])
    x = x0.copy()
    r = objective.residuals(x)
    damping = 1e-2
    for _ in range(iterations):
        jacobian = objective.jacobian(x)
        report()
        normal = jacobian.T @ jacobian
        gradient = jacobian.T @ r
        scale = np.maximum(np.diag(normal), 1e-12)
        while True:
            step = -np.linalg.solve(normal + damping * np.diag(scale), gradient)
            candidate = np.clip(x + step, low, high)
            r_new = objective.residuals(candidate)
            if r_new @ r_new < r @ r:
                improvement = 1.0 - (r_new @ r_new) / (r @ r)
                moved = np.abs(candidate - x)
                x, r = candidate, r_new
                damping = max(damping / 3.0, 1e-7)
                break
            damping *= 4.0
            if damping > 1e6:  # no step downhill: a minimum (to the resolution of the replays)
                return
        if improvement < 1e-6 or np.all(moved <= 0.01 * steps):  # converged: nothing left worth a Jacobian
            return


def _scout_latency(objective: _Objective, x0: np.ndarray, report: Callable[[], None]) -> None:
    """A few iterations from each of LATENCY_STARTS_S: the cost has local minima in the latency (a delay looks
    like a softer, less damped joint over part of a chirp), and the refinement starts from the best of them."""
    keys = [p.key for p in objective.parameters]
    if "control_latency_s" not in keys:
        return
    index = keys.index("control_latency_s")
    for latency in LATENCY_STARTS_S:
        start = x0.copy()
        start[index] = latency
        _least_squares(objective, start, report, SCOUT_ITERATIONS)


def _sweep_latency(objective: _Objective, x: np.ndarray) -> bool:
    """Replays at latencies within SWEEP_SPAN_S of ``x``'s, the rest held; True if one of them was better."""
    keys = [p.key for p in objective.parameters]
    if "control_latency_s" not in keys:
        return False
    index = keys.index("control_latency_s")
    p = objective.parameters[index]
    best = objective.best_cost
    for offset in np.arange(-SWEEP_SPAN_S, SWEEP_SPAN_S + 1e-9, SWEEP_STEP_S):
        candidate = x.copy()
        candidate[index] = float(np.clip(x[index] + offset, p.low, p.high))
        if abs(offset) > 1e-9:
            objective.residuals(candidate)
    return objective.best_cost < best


def _cma(objective: _Objective, x0: np.ndarray, seed: int, report: Callable[[], None]) -> None:
    import cma

    low = np.array([p.low for p in objective.parameters])
    span = np.array([p.high for p in objective.parameters]) - low
    options = {"bounds": [0.0, 1.0], "seed": seed + 1, "verbose": -9, "tolfun": 1e-6}
    strategy = cma.CMAEvolutionStrategy(((x0 - low) / span).tolist(), 0.25, options)
    while not strategy.stop():
        candidates = strategy.ask()
        strategy.tell(candidates, [float(np.linalg.norm(objective.residuals(low + np.asarray(u) * span)) ** 2)
                                   for u in candidates])  # fmt: skip
        report()
