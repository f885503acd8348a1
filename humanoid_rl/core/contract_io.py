"""A PolicyContract as the JSON-able dict a model file carries, and back: versioned, older versions still load."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from humanoid_rl.core.contract import (
    CONTRACT_VERSION,
    SUPPORTED_VERSIONS,
    ContractError,
    ObservationTerm,
    PolicyContract,
    RecurrentState,
)


def contract_to_dict(contract: PolicyContract) -> dict[str, Any]:
    """The JSON-able description a model file carries (always the current version)."""
    scale = contract.action_scale
    return {
        "version": CONTRACT_VERSION,
        "robot_name": contract.robot_name,
        "robot_config_hash": contract.robot_config_hash,
        "joint_names": list(contract.joint_names),
        "policy_joints": list(contract.policy_joints),
        "observation": [t.to_dict() for t in contract.terms],
        "n_obs": contract.n_obs,
        "n_actions": contract.n_actions,
        "action_scale": scale if isinstance(scale, float | int) else list(scale),
        "action_clip": contract.action_clip,
        "default_pose": list(contract.default_pose),
        "kp": list(contract.kp),
        "kd": list(contract.kd),
        "policy_rate_hz": contract.policy_rate_hz,
        "gait_period_s": contract.gait_period_s,
        "frame_stack": contract.frame_stack,
        "history_order": contract.history_order,
        "history_reset": contract.history_reset,
        "recurrent_state": [r.to_dict() for r in contract.recurrent_state],
        "goal_link": contract.goal_link,
        "goal_frame": contract.goal_frame,
    }


def contract_from_dict(data: Mapping[str, Any]) -> PolicyContract:
    """A contract from :meth:`to_dict` of this or an earlier version (version 1: every field added since
    takes its default, which is what version 1 meant)."""
    required = (
        "version",
        "robot_name",
        "robot_config_hash",
        "joint_names",
        "observation",
        "action_scale",
        "action_clip",
        "default_pose",
        "kp",
        "kd",
        "policy_rate_hz",
    )
    missing = [k for k in required if k not in data]
    if missing:
        raise ContractError(f"contract description lacks {missing}; was the model exported by humanoid-rl export?")
    if data["version"] not in SUPPORTED_VERSIONS:
        raise ContractError(
            f"contract version {data['version']} is not supported by this runtime (versions "
            f"{list(SUPPORTED_VERSIONS)}): re-export the model with this version of humanoid_rl"
        )
    try:
        terms = tuple(
            ObservationTerm(
                str(t["name"]),
                int(t["size"]),
                tuple(float(s) for s in t["scale"]),
                clip=None if t.get("clip") is None else float(t["clip"]),
                history=int(t.get("history", 1)),
            )
            for t in data["observation"]
        )
        recurrent = tuple(
            RecurrentState(str(r["input"]), str(r["output"]), tuple(int(x) for x in r["shape"]))
            for r in data.get("recurrent_state") or ()
        )
        scale = data["action_scale"]
        return PolicyContract(
            robot_name=str(data["robot_name"]),
            robot_config_hash=str(data["robot_config_hash"]),
            joint_names=tuple(str(n) for n in data["joint_names"]),
            terms=terms,
            action_scale=float(scale) if isinstance(scale, int | float) else tuple(float(x) for x in scale),
            action_clip=None if data["action_clip"] is None else float(data["action_clip"]),
            default_pose=tuple(float(x) for x in data["default_pose"]),
            kp=tuple(float(x) for x in data["kp"]),
            kd=tuple(float(x) for x in data["kd"]),
            policy_rate_hz=float(data["policy_rate_hz"]),
            policy_joints=tuple(str(n) for n in data.get("policy_joints") or ()),
            gait_period_s=None if data.get("gait_period_s") is None else float(data["gait_period_s"]),
            frame_stack=int(data.get("frame_stack", 1)),
            history_order=str(data.get("history_order", "oldest_first")),
            history_reset=str(data.get("history_reset", "first")),
            recurrent_state=recurrent,
            goal_link=None if data.get("goal_link") is None else str(data["goal_link"]),
            goal_frame=None if data.get("goal_frame") is None else str(data["goal_frame"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ContractError):
            raise
        raise ContractError(f"malformed contract description: {exc!r}") from exc
