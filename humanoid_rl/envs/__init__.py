"""Gymnasium environments ``HumanoidRL/Stand-v0`` and ``HumanoidRL/Walk-v0`` (and their discrete-action
variants ``StandDiscrete-v0``, ``WalkDiscrete-v0``, see ``envs.discrete``) and the goal-conditioned
``HumanoidRL/Reach-v0`` (``envs.reach``), registered on import.

Importing this package only registers the ids (cheap: no PyBullet); ``gymnasium.make`` loads the environment
module. Pass ``config=EnvConfig(...)`` to ``gymnasium.make`` to change pushes, randomization or rewards.
"""

from __future__ import annotations

import gymnasium

ENTRY_POINT = "humanoid_rl.envs.humanoid_env:HumanoidEnv"
STAND_ID = "HumanoidRL/Stand-v0"
WALK_ID = "HumanoidRL/Walk-v0"

REACH_ID = "HumanoidRL/Reach-v0"  # goal-conditioned (Dict observation), for HER: envs/reach.py
STAND_DISCRETE_ID = "HumanoidRL/StandDiscrete-v0"
WALK_DISCRETE_ID = "HumanoidRL/WalkDiscrete-v0"

__all__ = ["REACH_ID", "STAND_DISCRETE_ID", "STAND_ID", "WALK_DISCRETE_ID", "WALK_ID"]

# The environment truncates at EnvConfig.episode_length_s itself, so no TimeLimit wrapper is registered.
for _env_id, _task in ((STAND_ID, "stand"), (WALK_ID, "walk")):
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=ENTRY_POINT, kwargs={"task": _task})
for _env_id, _task in ((STAND_DISCRETE_ID, "stand"), (WALK_DISCRETE_ID, "walk")):
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point="humanoid_rl.envs.discrete:make_discrete", kwargs={"task": _task})
if REACH_ID not in gymnasium.registry:
    gymnasium.register(id=REACH_ID, entry_point="humanoid_rl.envs.reach:ReachEnv")
