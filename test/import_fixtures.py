"""Policies "trained elsewhere", made here: an rsl_rl-style recurrent TorchScript module and its contract YAML.

The module is laid out as rsl_rl's ``PolicyExporterLSTM`` writes one (an ``actor`` MLP after an LSTM ``memory``
whose state lives in the buffers ``hidden_state`` / ``cell_state``, ``reset_memory()`` zeroing them), with random
weights and a legged_gym-style 47-value observation over 12 leg joints of our humanoid, in legged_gym's own order
(right leg first), gait clock included.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

# legged_gym orders joints its own way: right leg first here, unlike the robot YAML.
LEG_JOINTS = tuple(f"{side}_{j}_joint" for side in ("right", "left")
                   for j in ("hip_yaw", "hip_roll", "hip_pitch", "knee", "ankle_pitch", "ankle_roll"))
HIDDEN = 32
N_OBS = 47


class LeggedGymLstmExporter(torch.nn.Module):
    """rsl_rl's exporter layout: memory in buffers, mutated by forward()."""

    def __init__(self, n_obs: int = N_OBS, n_actions: int = 12, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.actor = torch.nn.Sequential(torch.nn.Linear(hidden, 64), torch.nn.ELU(), torch.nn.Linear(64, n_actions))
        self.memory = torch.nn.LSTM(n_obs, hidden, 1)
        self.register_buffer("hidden_state", torch.zeros(1, 1, hidden))
        self.register_buffer("cell_state", torch.zeros(1, 1, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, (h, c) = self.memory(x.unsqueeze(0), (self.hidden_state, self.cell_state))
        self.hidden_state[:] = h
        self.cell_state[:] = c
        return self.actor(out.squeeze(0))

    @torch.jit.export
    def reset_memory(self) -> None:
        self.hidden_state[:] = 0.0
        self.cell_state[:] = 0.0


class GruExporter(torch.nn.Module):
    """The same with a two-layer GRU behind an input normalizer (newer rsl_rl): one memory buffer."""

    def __init__(self, n_obs: int = N_OBS, n_actions: int = 12, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.normalizer = torch.nn.LayerNorm(n_obs)
        self.rnn = torch.nn.GRU(n_obs, hidden, 2)
        self.actor = torch.nn.Sequential(torch.nn.Linear(hidden, n_actions), torch.nn.Tanh())
        self.register_buffer("hidden_state", torch.zeros(2, 1, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, h = self.rnn(self.normalizer(x).unsqueeze(0), self.hidden_state)
        self.hidden_state[:] = h
        return self.actor(out.squeeze(0))


def write_gru_policy(path: Path, seed: int = 0) -> None:
    torch.manual_seed(seed)
    torch.jit.script(GruExporter().eval()).save(str(path))


def write_lstm_policy(path: Path, seed: int = 0) -> torch.jit.ScriptModule:
    torch.manual_seed(seed)
    module = torch.jit.script(LeggedGymLstmExporter().eval())
    module.save(str(path))
    return module


def legged_contract(**overrides: object) -> dict:
    """A legged_gym-style contract: 3 + 3 + 3 + 12 + 12 + 12 + 2 = 47 observations, 12 actions."""
    from humanoid_rl.core.robot_spec import RobotSpec

    spec = RobotSpec.load()
    joints = [{"name": n, "default": float(spec.default_pose[spec.joint_names.index(n)])} for n in LEG_JOINTS]
    data: dict = {
        "policy_rate_hz": 50,
        "joints": joints,
        "observation": [
            {"term": "base_ang_vel", "scale": 0.25},
            {"term": "projected_gravity"},
            {"term": "velocity_command", "scale": [2.0, 2.0, 0.25]},
            {"term": "joint_pos_rel", "scale": 1.0},
            {"term": "joint_vel", "scale": 0.05},
            {"term": "last_action"},
            {"term": "gait_phase"},
        ],
        "clip_observations": 100.0,
        "gait_period_s": 0.8,
        "action": {"scale": 0.25, "clip": None},
    }
    data.update(overrides)
    return data


def write_contract(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
