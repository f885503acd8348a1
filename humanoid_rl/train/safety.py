"""Safety costs for constrained RL, and the deployed shield in the training loop.

:class:`SafetyWrapper` adds ``info["costs"]`` to every step of a ``HumanoidEnv``: one number per entry of
:data:`COST_NAMES`, each an indicator (0 or 1) of the step, so an episode's cost counts the policy steps that
broke the constraint and a cost limit reads "at most this many steps per episode":

* ``shield_intervention``: the shield's filter changed the policy's command (any stage: position, velocity,
  rate, effort, balance); the stages are in ``info["shield_stages"]``.
* ``joint_limit``: a measured joint lies within the shield's ``soft_margin`` of its URDF limit.
* ``effort``: a motor delivered at least ``effort_scale`` of its URDF effort limit (the shield's effort bound).
* ``tilt``: the base tilts beyond the shield's ``tilt_warn``. A fall (0.8 rad) passes through it: measured on
  the MuJoCo stand task, each fall costs 15-25 steps of it, so a tilt limit below that asks for no falls.

The thresholds are the shield's as `humanoid-rl sim` runs it (``sim_shield_params``), so the costs are the
constraints the policy is deployed under.

With ``shield_in_loop`` the wrapper installs that shield core (``ShieldInLoop``, the code path of ``humanoid-rl
eval --shield``) as the environment's target filter: the policy's action becomes joint targets, the shield
filters them (and holds, ramps or damps as its modes say), and the filtered targets drive the motors. The learner
is trained on its RAW action: PPO's likelihood ratio needs the action the policy sampled, the deployed node feeds
that same raw output to the shield and back into the observation, and the shield is then part of the dynamics the
policy learns under. Without it, a shadow shield sees the same inputs and reports what it WOULD have changed; its
output is not applied.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["COST_NAMES", "SafetyWrapper", "step_costs"]

COST_NAMES: tuple[str, ...] = ("shield_intervention", "joint_limit", "effort", "tilt")


def step_costs(*, intervened: bool, joint_pos: np.ndarray, lower: np.ndarray, upper: np.ndarray,
               torques: np.ndarray, effort_limits: np.ndarray, tilt_rad: float, params: Any) -> dict[str, float]:
    """The step's costs (see the module docstring); ``params`` is a ``ShieldParams``."""
    margin = np.minimum(joint_pos - lower, upper - joint_pos)
    # 1e-6: a motor clipped exactly at its bound counts, whatever the float rounding of strength * limit.
    saturated = np.abs(torques) >= params.effort_scale * effort_limits * (1.0 - 1e-6)
    return {
        "shield_intervention": float(intervened),
        "joint_limit": float(np.any(margin <= params.soft_margin)),
        "effort": float(np.any(saturated)),
        "tilt": float(tilt_rad > params.tilt_warn),
    }


class SafetyWrapper(gym.Wrapper):
    """``info["costs"]`` on every step and, with ``shield_in_loop``, the deployed shield between action and motors."""

    def __init__(self, env: gym.Env, shield_in_loop: bool = False) -> None:
        from humanoid_rl.train.evaluate import ShieldInLoop

        super().__init__(env)
        base = env.unwrapped
        self.shield_in_loop = shield_in_loop
        self.shield = ShieldInLoop(base.config.robot_config)
        self.params = self.shield.params
        self._stages: list[str] = []
        self._sums = dict.fromkeys(COST_NAMES, 0.0)
        self._filter = self._record(self.shield)
        if shield_in_loop:
            base.target_filter = self._filter

    def _record(self, shield: Any) -> Any:
        """The shield call, noting which stages its counters say intervened (what `eval --shield` reports)."""
        def filtered(env: Any, targets: np.ndarray) -> Any:
            before = dict(shield.shield.counters.interventions)
            out = shield(env, targets)
            self._stages = [s.name.lower() for s, n in shield.shield.counters.interventions.items() if n > before[s]]
            return out

        return filtered

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        self.shield.reset()  # a fresh core per episode: HOLD, then the ramp, as at engage on the robot
        self._sums = dict.fromkeys(COST_NAMES, 0.0)
        return self.env.reset(**kwargs)

    def _shadow(self, action: np.ndarray) -> None:
        """The shield fed as in the loop, before the step, its output not applied."""
        base = self.env.unwrapped
        clipped = base.contract.clip_action(action)
        targets = base.contract.action_to_joint_targets(clipped, base.robot_spec.lower, base.robot_spec.upper)
        self._filter(base, targets)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._stages = []
        if not self.shield_in_loop:
            self._shadow(action)
        obs, reward, terminated, truncated, info = self.env.step(action)  # in the loop, the filter runs in here
        base = self.env.unwrapped
        spec = base.robot_spec
        joint_pos, _ = base.sim.joint_state()
        costs = step_costs(intervened=bool(self._stages), joint_pos=joint_pos, lower=spec.lower,
                           upper=spec.upper, torques=base.sim.last_applied_torques,
                           effort_limits=spec.effort_limits, tilt_rad=float(info["tilt"]), params=self.params)
        info["costs"] = costs
        info["shield_stages"] = self._stages
        for name, value in costs.items():
            self._sums[name] += value
        if "episode_summary" in info:
            info["episode_summary"]["costs"] = dict(self._sums)
        return obs, reward, terminated, truncated, info
