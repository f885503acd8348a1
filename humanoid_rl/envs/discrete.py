"""``HumanoidRL/StandDiscrete-v0`` and ``WalkDiscrete-v0``: the tasks with a small discrete action set, for DQN.

Each discrete action is one whole-body posture offset from the default pose, a fixed row of the continuous action
vector the contract maps to joint targets (``target = default_pose + action_scale * action``). The rows follow
the balance strategies of human stance, applied to both legs alike:

====  =======================================================  ==========================================
0     hold the default pose                                      (what the PD-only stand does)
1, 2  ankle strategy: both ankle pitches +STEP / -STEP            lean the body forwards / backwards
3, 4  hip strategy: both hip pitches +STEP / -STEP                bend / straighten at the hips
5, 6  lateral shift: hip rolls +STEP and ankle rolls -STEP, / -+  move the hips sideways over the feet
7, 8  crouch / extend: knees +STEP / -STEP                        lower / raise the body
====  =======================================================  ==========================================

``STEP`` is 0.2 action units (0.1 rad at the contract's default scale 0.5): a posture the PD holds without
toppling. Observation, reward, termination and contract are the continuous task's; ``table`` is the (9, n_actions)
float32 matrix the exported DQN graph embeds (argmax over Q, then that row), so the policy node runs it as any
other model.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from humanoid_rl.envs import STAND_DISCRETE_ID, WALK_DISCRETE_ID

__all__ = ["DISCRETE_IDS", "POSTURE_STEP", "DiscretePostureWrapper", "make_discrete", "posture_table"]

POSTURE_STEP = 0.2
# (joint-name fragment, sign) pairs of each non-hold action; a joint matches when its name contains the fragment.
POSTURES: tuple[tuple[tuple[str, float], ...], ...] = (
    (("ankle_pitch", 1.0),), (("ankle_pitch", -1.0),),
    (("hip_pitch", 1.0),), (("hip_pitch", -1.0),),
    (("hip_roll", 1.0), ("ankle_roll", -1.0)), (("hip_roll", -1.0), ("ankle_roll", 1.0)),
    (("knee", 1.0),), (("knee", -1.0),),
)
DISCRETE_IDS = {"stand": STAND_DISCRETE_ID, "walk": WALK_DISCRETE_ID}


def posture_table(policy_joints: tuple[str, ...] | list[str], step: float = POSTURE_STEP) -> np.ndarray:
    """The (1 + len(POSTURES), n_actions) continuous action of each discrete action, for these policy joints."""
    table = np.zeros((1 + len(POSTURES), len(policy_joints)), np.float32)
    for row, posture in enumerate(POSTURES, start=1):
        for fragment, sign in posture:
            columns = [i for i, name in enumerate(policy_joints) if fragment in name]
            if not columns:
                raise ValueError(f"the discrete posture actions need a '{fragment}' joint; the policy joints are "
                                 f"{list(policy_joints)}. Fix: train this robot with a continuous algorithm")
            table[row, columns] = sign * step
    return table


class DiscretePostureWrapper(gymnasium.ActionWrapper):
    """The continuous task seen through ``posture_table``: action ``k`` applies row ``k``."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        contract = env.unwrapped.contract
        self.table = posture_table(contract.policy_joints)
        high = env.action_space.high
        if np.any(np.abs(self.table) > high):
            raise ValueError(f"posture step {POSTURE_STEP} exceeds the action clip {float(high.min())}")
        self.action_space = gymnasium.spaces.Discrete(len(self.table))

    def action(self, action: Any) -> np.ndarray:
        return self.table[int(action)]


def make_discrete(task: str, **kwargs: Any) -> gymnasium.Env:
    from humanoid_rl.envs.humanoid_env import HumanoidEnv

    return DiscretePostureWrapper(HumanoidEnv(task=task, **kwargs))
