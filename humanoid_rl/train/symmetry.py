"""Left-right mirror symmetry for training: the map, and PPO's mirror loss.

A biped is symmetric about its sagittal (x-z) plane, so its policy should be: what it does in a mirrored state
is the mirror of what it does now. Without that prior a policy trained on few samples settles on a lopsided gait
(the walk policy veered right at 0.4-0.65 rad/s when told to walk straight). The mirror loss of Mittal et al.
(2024, rsl_rl's symmetry module) asks ``pi(mirror(s)) = mirror(pi(s))``.

``MirrorMap`` is pure numpy, built from the contract and the robot: a joint's partner swaps ``left``/``right`` in
its name (a joint without one, like the torso yaw, is its own); its sign comes from the joint axes at the zero
pose, so no naming convention for roll/yaw is assumed. Reflecting through the x-z plane (M = diag(1, -1, 1))
turns a rotation by q about axis a into one by -q about M a: the partner with axis b turns by
``-(b . M a) q``. Base vectors mirror as polar (linear velocity, gravity: y flips) or axial (angular velocity:
x and z flip); the gait clock shifts by half a period (the schedule's feet swap): sin and cos flip.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from humanoid_rl.core.contract import PolicyContract
from humanoid_rl.core.robot_spec import RobotSpec

__all__ = ["MirrorMap", "install_mirror_loss", "joint_mirror"]

_MIRROR = np.diag([1.0, -1.0, 1.0])
# Per-term sign patterns of the base and command terms (each value stays in place; only its sign changes).
_VECTOR_SIGNS: dict[str, tuple[float, ...]] = {
    "base_lin_vel": (1.0, -1.0, 1.0),  # polar vector
    "projected_gravity": (1.0, -1.0, 1.0),
    "imu_lin_acc": (1.0, -1.0, 1.0),
    "base_ang_vel": (-1.0, 1.0, -1.0),  # axial vector
    "base_euler_xyz": (-1.0, 1.0, -1.0),  # roll and yaw flip, pitch stays
    "velocity_command": (1.0, -1.0, -1.0),  # vx, vy, yaw rate
    "gait_phase": (-1.0, -1.0),  # phase + pi: the feet's schedule swaps
    "base_height": (1.0,),
}
_FEET_TERMS = ("foot_contacts",)  # (left, right): swapped
_JOINT_TERMS = ("joint_pos_rel", "joint_vel", "last_action")


def _partner_name(name: str) -> str:
    swapped = name.replace("left", "\0").replace("right", "left").replace("\0", "right")
    return swapped.replace("Left", "\0").replace("Right", "Left").replace("\0", "Right")


def joint_mirror(spec: RobotSpec, joint_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(partner index, sign) per joint of ``joint_names``: mirrored value i = sign[i] * value[partner[i]]."""
    import pinocchio as pin

    from humanoid_rl.core.kinematics import RobotKinematics

    kinematics = RobotKinematics(spec)
    model = kinematics.model
    data = model.createData()
    q = pin.neutral(model)
    pin.computeJointJacobians(model, data, q)
    axes: dict[str, np.ndarray] = {}
    for name in joint_names:
        joint_id = model.getJointId(name)
        column = model.joints[joint_id].idx_v
        jacobian = pin.getJointJacobian(model, data, joint_id, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED)
        axes[name] = jacobian[3:6, column] / np.linalg.norm(jacobian[3:6, column])
    partner = np.zeros(len(joint_names), dtype=np.intp)
    sign = np.zeros(len(joint_names))
    for i, name in enumerate(joint_names):
        other = _partner_name(name)
        if other not in axes:
            other = name
        partner[i] = joint_names.index(other)
        dot = float(axes[other] @ (_MIRROR @ axes[name]))
        if abs(abs(dot) - 1.0) > 1e-6:
            raise ValueError(f"joints {name} and {other} are not mirror images (axis dot {dot:.3f}): the robot is "
                             "not left-right symmetric, so the mirror loss does not apply")
        sign[i] = -np.sign(dot)
    return partner, sign


class MirrorMap:
    """The mirror of an observation and of an action under ``contract`` as signed permutations:
    ``mirror(x) = sign * x[index]``. Both are involutions (mirroring twice gives back x)."""

    def __init__(self, contract: PolicyContract, spec: RobotSpec) -> None:
        partner, joint_sign = joint_mirror(spec, tuple(contract.policy_joints))
        self.action_index, self.action_sign = partner, joint_sign
        frame_index: list[np.ndarray] = []
        frame_sign: list[np.ndarray] = []
        start = 0
        for term in contract.terms:
            if term.name in _JOINT_TERMS:
                index, sign = partner, joint_sign
            elif term.name in _FEET_TERMS:
                index, sign = np.array([1, 0]), np.ones(2)
            elif term.name in _VECTOR_SIGNS:
                sign = np.array(_VECTOR_SIGNS[term.name])
                index = np.arange(sign.size)
            else:
                raise ValueError(f"observation term {term.name!r} has no mirror: the mirror loss cannot be used with "
                                 "this contract")
            for block in range(term.width // term.size):  # each history entry mirrors alike
                frame_index.append(start + block * term.size + index)
                frame_sign.append(sign)
            start += term.width
        frame = np.concatenate(frame_index)
        signs = np.concatenate(frame_sign)
        size = contract.frame_size
        self.obs_index = np.concatenate([k * size + frame for k in range(contract.frame_stack)]).astype(np.intp)
        self.obs_sign = np.tile(signs, contract.frame_stack)

    def observation(self, obs: np.ndarray) -> np.ndarray:
        return self.obs_sign * obs[..., self.obs_index]

    def action(self, action: np.ndarray) -> np.ndarray:
        return self.action_sign * action[..., self.action_index]


def install_mirror_loss(model: Any, mirror: MirrorMap, weight: float, obs_rms: Any, epsilon: float,
                        clip_obs: float) -> None:
    """Add ``weight * |mu(mirror(s)) - mirror(mu(s))|^2`` (mean over actions and the minibatch; mu the policy's
    mean action, the target detached) to the loss of SB3's PPO, and log it as ``train/mirror_loss``.

    PPO's loss is built inside its ``train()``; the term reaches it through ``evaluate_actions``: the entropy it
    returns gets ``-(weight / ent_coef) * (l - l.detach())``, which is zero in value (the logged entropy is
    unchanged) and contributes exactly ``weight * grad l`` to the gradient of ``ent_coef * -mean(entropy)``.
    Hence it needs ``ent_coef > 0``. Observations arrive normalized (VecNormalize), so a batch is mirrored in
    raw units: ``(P(o * sigma + mu) - mu) / sigma``, with the statistics ``obs_rms`` holds now.
    """
    import torch as th

    if model.ent_coef <= 0.0:
        raise ValueError("the mirror loss rides on the entropy term: it needs ent_coef > 0")
    policy = model.policy
    original = policy.evaluate_actions
    index = th.as_tensor(mirror.obs_index)
    sign = th.as_tensor(mirror.obs_sign, dtype=th.float32)
    action_index = th.as_tensor(mirror.action_index)
    action_sign = th.as_tensor(mirror.action_sign, dtype=th.float32)
    scale = weight / model.ent_coef

    def mirrored_observation(obs: th.Tensor) -> th.Tensor:
        mean = th.as_tensor(obs_rms.mean, dtype=th.float32)
        std = th.as_tensor(np.sqrt(obs_rms.var + epsilon), dtype=th.float32)
        raw = obs * std + mean
        return th.clamp((sign * raw[:, index] - mean) / std, -clip_obs, clip_obs)

    def evaluate_actions(obs: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        values, log_prob, entropy = original(obs, actions)
        if entropy is None:
            return values, log_prob, entropy
        mean_action = policy.get_distribution(obs).distribution.mean
        target = (action_sign * mean_action[:, action_index]).detach()
        mirrored = policy.get_distribution(mirrored_observation(obs)).distribution.mean
        loss = ((mirrored - target) ** 2).mean(dim=1)
        if hasattr(model, "_logger"):  # set up by learn(); a direct call has none
            model.logger.record_mean("train/mirror_loss", float(loss.detach().mean()))  # mean over the update
        return values, log_prob, entropy - scale * (loss - loss.detach())

    policy.evaluate_actions = evaluate_actions
