"""Whole-body kinematics with pinocchio: centre of mass, foot positions, sole centres and foot Jacobians.

The model is built from the spec's URDF with a free-flyer root. Joint vectors are in **policy order** (the
spec's ``joint_names``); they are mapped to pinocchio's ``q``/``v`` indices by name, never by position, since
pinocchio orders joints its own way. Passive joints (``spec.passive_joints``) are held at zero.

Each foot also gets a sole-centre frame: the foot frame moved by the sole offset's x/y (``spec.soles``, in the
foot frame turned upright), so a sole centre costs what a foot position costs. The offset's z (the sole's depth
below the frame) is left out: it moves nothing in the ground plane while the foot is flat, which is when it
carries the robot, and the shield's support polygon has always taken the foot frame's x/y for a sole centre
below it.

Every method reuses one ``pin.Data`` and preallocated ``q`` vectors, so an instance is fast but not
thread-safe: give each thread its own ``RobotKinematics``.
"""

from __future__ import annotations

import math

import numpy as np
import pinocchio as pin

from humanoid_rl.core.robot_spec import RobotSpec, read_urdf_text

__all__ = ["RobotKinematics"]

_IDENTITY_BASE = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])  # position + quaternion xyzw


class RobotKinematics:
    """Pinocchio kinematics of one robot; all joint vectors in policy order, quaternions xyzw."""

    def __init__(self, spec: RobotSpec) -> None:
        self.spec = spec
        # From the text, as PyBullet reads it (trailing NULs and blanks ignored).
        urdf_text = read_urdf_text(spec.urdf_path).decode(errors="replace")
        self.model = pin.buildModelFromXML(urdf_text, pin.JointModelFreeFlyer())
        self.n_joints = spec.n_joints
        q_index, v_index = [], []
        for name in spec.joint_names:
            if not self.model.existJointName(name):
                raise ValueError(
                    f"joint {name!r} of {spec.config_path} is not in pinocchio's model of {spec.urdf_path}"
                )
            joint = self.model.joints[self.model.getJointId(name)]
            if joint.nq != 1 or joint.nv != 1:
                raise ValueError(
                    f"joint {name!r} has nq={joint.nq}, nv={joint.nv}; only 1-DoF joints are supported"
                )
            q_index.append(joint.idx_q)
            v_index.append(joint.idx_v)
        self._q_index = np.array(q_index, dtype=np.intp)
        self._v_index = np.array(v_index, dtype=np.intp)
        self._foot_frame_ids: list[int] = []
        for link in spec.foot_links:
            if not self.model.existFrame(link):
                raise ValueError(
                    f"foot link {link!r} of {spec.config_path} is not a frame of {spec.urdf_path}"
                )
            self._foot_frame_ids.append(self.model.getFrameId(link))
        self._sole_frame_ids: list[int] = []
        zero_pose = self.model.createData()
        pin.framesForwardKinematics(self.model, zero_pose, pin.neutral(self.model))
        base_upright = pin.rpy.rpyToMatrix(*spec.base_orientation_rpy)
        for link, frame_id, sole in zip(spec.foot_links, self._foot_frame_ids, spec.soles, strict=True):
            foot = self.model.frames[frame_id]
            # The sole is given in the foot frame turned upright (spec.soles); its offset, in the foot frame:
            foot_from_upright = (base_upright @ zero_pose.oMf[frame_id].rotation).T
            offset = pin.SE3(np.eye(3), foot_from_upright @ np.array([sole.offset[0], sole.offset[1], 0.0]))
            self._sole_frame_ids.append(
                self.model.addFrame(
                    pin.Frame(f"{link}_sole_centre", foot.parentJoint, frame_id, foot.placement * offset, pin.OP_FRAME)
                )
            )
        # Sole rectangle corners in each foot frame (the sole's depth included): where a stance foot may touch
        # the ground, for the estimator's stance point (LeggedStateEstimator).
        corners = []
        for frame_id, sole in zip(self._foot_frame_ids, spec.soles, strict=True):
            foot_from_upright = (base_upright @ zero_pose.oMf[frame_id].rotation).T
            half_x, half_y = 0.5 * sole.size[0], 0.5 * sole.size[1]
            upright = [(sole.offset[0] + sx * half_x, sole.offset[1] + sy * half_y, sole.offset[2])
                       for sx, sy in ((1, 1), (1, -1), (-1, -1), (-1, 1))]
            corners.append(np.array(upright) @ foot_from_upright.T)
        self.sole_corners_in_foot: np.ndarray = np.array(corners)  # (2, 4, 3), left, right
        self.data = self.model.createData()  # after the sole frames: Data sizes its frame placements then
        self.total_mass: float = float(pin.computeTotalMass(self.model))
        # Two configuration buffers: one with the real base pose (world quantities), one with the base at
        # the origin (base-frame quantities). Passive joints stay at pinocchio's neutral (zero) position.
        self._q_world = pin.neutral(self.model)
        self._q_world_position, self._q_world_quaternion = self._q_world[0:3], self._q_world[3:7]
        self._q_base = pin.neutral(self.model)
        self._q_base[:7] = _IDENTITY_BASE
        self._v_base = np.zeros(self.model.nv)  # base and passive joints still
        self._feet = np.empty((2, 3))
        self._foot_jacobians = np.empty((2, 3, self.n_joints))
        self._foot_rotations = np.empty((2, 3, 3))
        self._foot_spatial_jacobians = np.empty((2, 6, self.n_joints))

    # ------------------------------------------------------------------------------------------ loading

    def _load_world(
        self, base_pos: np.ndarray, base_quat_xyzw: np.ndarray, joint_pos: np.ndarray
    ) -> np.ndarray:
        q = self._q_world
        self._q_world_position[...] = base_pos
        quat = np.asarray(base_quat_xyzw, dtype=np.float64)
        norm_squared = float(quat.dot(quat))
        if not norm_squared > 1e-18:  # also catches NaN
            raise ValueError(
                f"base quaternion {quat} has no direction; expected a unit quaternion [x, y, z, w]"
            )
        self._q_world_quaternion[...] = quat
        if abs(norm_squared - 1.0) > 1e-12:  # pinocchio assumes a unit quaternion
            self._q_world_quaternion /= math.sqrt(norm_squared)
        self._set_joints(q, joint_pos)
        return q

    def _load_base(self, joint_pos: np.ndarray) -> np.ndarray:
        self._set_joints(self._q_base, joint_pos)
        return self._q_base

    def _set_joints(self, q: np.ndarray, joint_pos: np.ndarray) -> None:
        joint_pos = np.asarray(joint_pos, dtype=np.float64)
        if joint_pos.shape != (self.n_joints,):
            raise ValueError(
                f"joint_pos has shape {joint_pos.shape}; expected ({self.n_joints},) in policy order "
                f"({self.spec.joint_names[0]}, ...)"
            )
        q[self._q_index] = joint_pos

    def _feet_from_data(self, frame_ids: list[int] | None = None) -> np.ndarray:
        for side, frame_id in enumerate(self._foot_frame_ids if frame_ids is None else frame_ids):
            self._feet[side] = pin.updateFramePlacement(self.model, self.data, frame_id).translation
        return self._feet.copy()

    # ------------------------------------------------------------------------------------------ queries

    def com(self, base_pos: np.ndarray, base_quat_xyzw: np.ndarray, joint_pos: np.ndarray) -> np.ndarray:
        """Centre of mass of the whole robot in the world frame, (3,)."""
        q = self._load_world(base_pos, base_quat_xyzw, joint_pos)
        return pin.centerOfMass(self.model, self.data, q, compute_subtree_coms=False).copy()

    def foot_positions(
        self, base_pos: np.ndarray, base_quat_xyzw: np.ndarray, joint_pos: np.ndarray
    ) -> np.ndarray:
        """World positions of the foot link frames, (2, 3): row 0 left, row 1 right."""
        q = self._load_world(base_pos, base_quat_xyzw, joint_pos)
        pin.forwardKinematics(self.model, self.data, q)
        return self._feet_from_data()

    def com_and_foot_positions(
        self, base_pos: np.ndarray, base_quat_xyzw: np.ndarray, joint_pos: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``com`` and ``foot_positions`` from one forward-kinematics pass (what the safety shield needs)."""
        q = self._load_world(base_pos, base_quat_xyzw, joint_pos)
        com = pin.centerOfMass(
            self.model, self.data, q, compute_subtree_coms=False
        ).copy()  # runs forward kinematics too
        return com, self._feet_from_data()

    def com_and_sole_centres(
        self, base_pos: np.ndarray, base_quat_xyzw: np.ndarray, joint_pos: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``com`` and the world positions of the sole centres, (2, 3) left, right: what the shield's support
        polygon is built from. With no sole offset these are the foot positions, bit for bit."""
        q = self._load_world(base_pos, base_quat_xyzw, joint_pos)
        model, data = self.model, self.data
        # Positional arguments: Boost.Python keyword matching costs about a microsecond per call here.
        com = pin.centerOfMass(model, data, q, False).copy()  # False: no subtree CoMs; runs forward kinematics
        left, right = self._sole_frame_ids
        feet = np.array(
            (
                pin.updateFramePlacement(model, data, left).translation,
                pin.updateFramePlacement(model, data, right).translation,
            )
        )
        return com, feet

    def sole_centres_in_base(self, joint_pos: np.ndarray) -> np.ndarray:
        """Sole centres in the base frame, (2, 3): row 0 left, row 1 right."""
        pin.forwardKinematics(self.model, self.data, self._load_base(joint_pos))
        return self._feet_from_data(self._sole_frame_ids)

    def com_in_base(self, joint_pos: np.ndarray) -> np.ndarray:
        """Centre of mass in the base frame, (3,)."""
        return pin.centerOfMass(
            self.model, self.data, self._load_base(joint_pos), compute_subtree_coms=False
        ).copy()

    def foot_positions_in_base(self, joint_pos: np.ndarray) -> np.ndarray:
        """Positions of the foot link frames in the base frame, (2, 3): row 0 left, row 1 right."""
        pin.forwardKinematics(self.model, self.data, self._load_base(joint_pos))
        return self._feet_from_data()

    def foot_jacobians_in_base(self, joint_pos: np.ndarray) -> np.ndarray:
        """d(foot position in base frame)/d(joint_pos), (2, 3, n_joints), columns in policy order."""
        q = self._load_base(joint_pos)
        pin.computeJointJacobians(self.model, self.data, q)
        for side, frame_id in enumerate(self._foot_frame_ids):
            # With the base at the origin, world-aligned axes are the base axes.
            jacobian = pin.getFrameJacobian(self.model, self.data, frame_id, pin.LOCAL_WORLD_ALIGNED)
            self._foot_jacobians[side] = jacobian[:3, self._v_index]
        return self._foot_jacobians.copy()

    def foot_frames_in_base(self, joint_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Foot link frames in the base frame from one pass: positions (2, 3), rotations foot -> base (2, 3, 3)
        and Jacobians (2, 6, n_joints), rows linear then angular velocity in base axes, columns in policy order."""
        q = self._load_base(joint_pos)
        pin.computeJointJacobians(self.model, self.data, q)  # runs forward kinematics too
        for side, frame_id in enumerate(self._foot_frame_ids):
            placement = pin.updateFramePlacement(self.model, self.data, frame_id)
            self._feet[side] = placement.translation
            self._foot_rotations[side] = placement.rotation
            jacobian = pin.getFrameJacobian(self.model, self.data, frame_id, pin.LOCAL_WORLD_ALIGNED)
            self._foot_spatial_jacobians[side] = jacobian[:, self._v_index]
        return self._feet.copy(), self._foot_rotations.copy(), self._foot_spatial_jacobians.copy()

    def foot_motion_in_base(
        self, joint_pos: np.ndarray, joint_vel: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Foot link frames in the base frame and their velocities for joint velocities ``joint_vel`` (policy order)
        with the base held still: positions (2, 3), rotations foot -> base (2, 3, 3) and spatial velocities (2, 6),
        linear (of the frame origin) then angular, in base axes. Equals ``foot_frames_in_base``'s Jacobians times
        ``joint_vel``, cheaper (no Jacobians, no column gathers): the state estimator's per-update path."""
        q = self._load_base(joint_pos)
        joint_vel = np.asarray(joint_vel, dtype=np.float64)
        if joint_vel.shape != (self.n_joints,):
            raise ValueError(f"joint_vel has shape {joint_vel.shape}; expected ({self.n_joints},) in policy order")
        self._v_base[self._v_index] = joint_vel
        model, data = self.model, self.data
        pin.forwardKinematics(model, data, q, self._v_base)  # positional: keywords cost ~1 µs in Boost.Python
        left, right = self._foot_frame_ids
        # One array per quantity from both feet: cheaper than per-foot stores into buffers and copies.
        left_placement = pin.updateFramePlacement(model, data, left)
        right_placement = pin.updateFramePlacement(model, data, right)
        return (
            np.array((left_placement.translation, right_placement.translation)),
            np.array((left_placement.rotation, right_placement.rotation)),
            np.array(
                (
                    pin.getFrameVelocity(model, data, left, pin.LOCAL_WORLD_ALIGNED).vector,
                    pin.getFrameVelocity(model, data, right, pin.LOCAL_WORLD_ALIGNED).vector,
                )
            ),
        )
