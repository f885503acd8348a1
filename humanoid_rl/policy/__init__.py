"""Policy runtime: the ONNX model file format and the policies that run it (no ROS, no torch)."""

from __future__ import annotations

from humanoid_rl.policy.model_file import (
    ModelFileError,
    ModelMetadata,
    ModelMetadataError,
    ModelNotFoundError,
    RecordedPairs,
    read_model_metadata,
    write_model_metadata,
)
from humanoid_rl.policy.runtime import (
    HoldPosePolicy,
    NonFiniteActionError,
    OnnxPolicy,
    Policy,
    RecordedPairsError,
    VerificationReport,
    benchmark_inference,
    load_policy,
)

__all__ = [
    "HoldPosePolicy",
    "ModelFileError",
    "ModelMetadata",
    "ModelMetadataError",
    "ModelNotFoundError",
    "NonFiniteActionError",
    "OnnxPolicy",
    "Policy",
    "RecordedPairs",
    "RecordedPairsError",
    "VerificationReport",
    "benchmark_inference",
    "load_policy",
    "read_model_metadata",
    "write_model_metadata",
]
