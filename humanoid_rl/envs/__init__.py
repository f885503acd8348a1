"""Gymnasium environments ``HumanoidRL/Stand-v0`` and ``HumanoidRL/Walk-v0``, registered on import.

Importing this package only registers the ids (cheap: no PyBullet); ``gymnasium.make`` loads the environment
module. Pass ``config=EnvConfig(...)`` to ``gymnasium.make`` to change pushes, randomization or rewards.
"""

from __future__ import annotations

import gymnasium

ENTRY_POINT = "humanoid_rl.envs.humanoid_env:HumanoidEnv"
STAND_ID = "HumanoidRL/Stand-v0"
WALK_ID = "HumanoidRL/Walk-v0"

__all__ = ["STAND_ID", "WALK_ID"]

# The environment truncates at EnvConfig.episode_length_s itself, so no TimeLimit wrapper is registered.
for _env_id, _task in ((STAND_ID, "stand"), (WALK_ID, "walk")):
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=ENTRY_POINT, kwargs={"task": _task})
