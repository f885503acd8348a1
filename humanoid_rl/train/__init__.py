"""Training, export and evaluation of humanoid policies (stable-baselines3, torch; not needed on a robot)."""

from __future__ import annotations
