"""Policy runtime: an exported ONNX policy (or the hold-pose baseline) behind one small interface.

No ROS and no torch: numpy and ONNX Runtime only, so the same code runs in the policy node, in evaluation and
in ``humanoid-rl bench``. :func:`load_policy` is the one entry point that deployments use: it loads the model,
refuses it unless its contract matches the robot's (every difference listed) and its recorded (obs, action)
pairs replay within tolerance, and returns something with ``act(obs) -> action``.

``act`` is the hot path (up to 1 kHz): the observation is copied into a preallocated input buffer bound to the
session once (IO binding), the output lands in a preallocated buffer, and a non-finite input or output raises
instead of returning NaN. It is not reentrant: one policy object per calling thread.

A recurrent policy (its contract declares ``recurrent_state``) carries its memory from one ``act`` to the next:
each state output is bound to a buffer that is copied into the matching input buffer after the run. ``reset()``
zeroes the memory; callers reset at engage, at episode start and after HOLD.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from humanoid_rl.core.contract import ContractMismatchError, PolicyContract
from humanoid_rl.policy.model_file import (
    INPUT_NAME,
    OUTPUT_NAME,
    ModelFileError,
    ModelMetadata,
    ModelNotFoundError,
    check_model_file,
    open_session,
    session_io_mismatches,
    session_metadata,
)

__all__ = [
    "HoldPosePolicy",
    "NonFiniteActionError",
    "OnnxPolicy",
    "Policy",
    "RecordedPairsError",
    "VerificationReport",
    "benchmark_inference",
    "load_policy",
    "resolve_model_path",
]


class NonFiniteActionError(ValueError):
    """The policy was given, or produced, a NaN/inf: no joint command may be built from it."""


class RecordedPairsError(ValueError):
    """The model's recorded (obs, action) pairs do not replay within tolerance; ``report`` has the figures."""

    def __init__(self, report: VerificationReport, source: str) -> None:
        self.report = report
        super().__init__(
            f"policy model {source} does not reproduce its recorded actions: {report.describe()}. The graph "
            "or its metadata was changed after export, or this runtime computes differently. Fix: re-export "
            "the model with `humanoid-rl export`; if a fresh export also fails, compare the onnxruntime "
            "versions of export and deployment"
        )


@dataclass(frozen=True)
class VerificationReport:
    """Result of replaying the recorded pairs through the same code path as ``act``."""

    n_pairs: int
    max_abs_diff: float
    tolerance: float
    passed: bool
    worst_pair: int = -1  # index of the pair with the largest difference (-1: no pairs)
    worst_joint: str = ""  # joint (action element) of that difference

    def describe(self) -> str:
        if self.n_pairs == 0:
            return "no recorded pairs to verify"
        where = f" (pair {self.worst_pair}, joint {self.worst_joint})" if self.worst_pair >= 0 else ""
        verdict = "within" if self.passed else "exceeds"
        return (
            f"max |action difference| {self.max_abs_diff:.3g}{where} over {self.n_pairs} pairs {verdict} "
            f"the tolerance {self.tolerance:.3g}"
        )


@runtime_checkable
class Policy(Protocol):
    """What the node, the evaluator and the benchmark need from a policy."""

    contract: PolicyContract
    warnings: list[str]

    @property
    def name(self) -> str: ...

    def act(self, obs: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...

    def check_against(self, robot_contract: PolicyContract) -> list[str]: ...

    def verify_recorded_pairs(self) -> VerificationReport: ...


class OnnxPolicy:
    """An exported policy running in ONNX Runtime. Build with :meth:`load` (or :func:`load_policy`)."""

    def __init__(self, session: Any, metadata: ModelMetadata, path: Path) -> None:
        self._session = session
        self.metadata = metadata
        self.contract = metadata.contract
        self.path = path
        self.warnings: list[str] = []
        n_obs, n_actions = self.contract.n_obs, self.contract.n_actions
        self._obs_shape = (n_obs,)
        # Buffers bound once (IO binding): act() copies into one and reads the other; no per-call feed dict.
        self._input = np.zeros((1, n_obs), dtype=np.float32)
        self._output = np.zeros((1, n_actions), dtype=np.float32)
        self._input_row = self._input[0]
        self._output_row = self._output[0]
        import onnxruntime as ort

        self._binding = session.io_binding()
        self._binding.bind_ortvalue_input(INPUT_NAME, ort.OrtValue.ortvalue_from_numpy(self._input))
        self._binding.bind_ortvalue_output(OUTPUT_NAME, ort.OrtValue.ortvalue_from_numpy(self._output))
        # Recurrent memory: (input buffer, output buffer) per state; the output is copied in after each run.
        self._memory: list[tuple[np.ndarray, np.ndarray]] = []
        for state in self.contract.recurrent_state:
            pair = (np.zeros(state.shape, dtype=np.float32), np.zeros(state.shape, dtype=np.float32))
            self._binding.bind_ortvalue_input(state.input, ort.OrtValue.ortvalue_from_numpy(pair[0]))
            self._binding.bind_ortvalue_output(state.output, ort.OrtValue.ortvalue_from_numpy(pair[1]))
            self._memory.append(pair)
        self._run = session.run_with_iobinding

    @classmethod
    def load(cls, path: str | Path, *, intra_op_threads: int = 1, inter_op_threads: int = 1) -> OnnxPolicy:
        """Open a model file exported by ``humanoid-rl export``; ModelFileError (naming the fix) if not one.

        Checks the file exists, is ONNX, carries the humanoid_rl metadata, and has graph input/output shapes
        that match its own contract. Checking the contract against a robot is :meth:`check_against` /
        :func:`load_policy`'s job.
        """
        path = check_model_file(path)
        session = open_session(path, intra_op_threads=intra_op_threads, inter_op_threads=inter_op_threads)
        metadata = session_metadata(session, str(path))
        problems = session_io_mismatches(session, metadata.contract)
        if problems:
            raise ModelFileError(
                f"policy model {path}: the graph does not match the contract in its own metadata: "
                + "; ".join(problems)
                + ". Fix: re-export it with `humanoid-rl export`"
            )
        return cls(session, metadata, path)

    @property
    def name(self) -> str:
        return f"ONNX policy {self.path.name}"

    @property
    def session_options(self) -> Any:
        """The ONNX Runtime options the session runs with (thread counts, execution mode)."""
        return self._session.get_session_options()

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Action (n_actions,) float32 for one observation (n_obs,); NonFiniteActionError on NaN/inf."""
        if obs.shape != self._obs_shape:
            raise ValueError(f"observation has shape {obs.shape}, expected {self._obs_shape}")
        row = self._input_row
        row[:] = obs
        if not np.isfinite(row).all():
            raise NonFiniteActionError("non-finite observation given to the policy: refusing to run it")
        self._run(self._binding)
        for memory_in, memory_out in self._memory:
            np.copyto(memory_in, memory_out)
        action = self._output_row
        if not np.isfinite(action).all():
            bad = [self.contract.policy_joints[i] for i in np.flatnonzero(~np.isfinite(action))]
            raise NonFiniteActionError(
                f"{self.name} produced non-finite actions for {bad}: no command is built"
            )
        return action.copy()

    def reset(self) -> None:
        """Zero the recurrent memory (no-op for a feed-forward policy)."""
        for memory_in, _ in self._memory:
            memory_in.fill(0.0)

    def check_against(self, robot_contract: PolicyContract) -> list[str]:
        """Every difference between this model's contract and the robot's (empty: safe to run)."""
        return self.contract.robot_mismatches(robot_contract, self_label="model", other_label="robot")

    def verify_recorded_pairs(self) -> VerificationReport:
        """Replay the recorded observations through ``act`` (as sequences, memory carried, for a recurrent
        policy) and compare with the recorded actions. Leaves the memory zeroed."""
        pairs = self.metadata.recorded_pairs
        diffs = np.empty(pairs.actions.shape, dtype=np.float64)
        starts = set(pairs.sequence_starts)
        for i, obs in enumerate(pairs.obs):
            if i in starts:
                self.reset()
            try:
                diffs[i] = np.abs(self.act(obs).astype(np.float64) - pairs.actions[i])
            except NonFiniteActionError:
                diffs[i] = np.inf
        worst_pair, worst_element = np.unravel_index(int(np.argmax(diffs)), diffs.shape)
        max_diff = float(diffs[worst_pair, worst_element])
        report = VerificationReport(
            n_pairs=len(pairs),
            max_abs_diff=max_diff,
            tolerance=pairs.tolerance,
            passed=max_diff <= pairs.tolerance,
            worst_pair=int(worst_pair),
            worst_joint=self.contract.policy_joints[int(worst_element)],
        )
        self.reset()
        return report


class HoldPosePolicy:
    """Action zero = PD to the contract's default pose: used before a trained model exists; a baseline."""

    def __init__(self, contract: PolicyContract) -> None:
        self.contract = contract
        self.warnings: list[str] = []
        self._obs_shape = (contract.n_obs,)
        self._zeros = np.zeros(contract.n_actions, dtype=np.float32)

    @property
    def name(self) -> str:
        return "hold pose (PD to the default pose)"

    def act(self, obs: np.ndarray) -> np.ndarray:
        if obs.shape != self._obs_shape:
            raise ValueError(f"observation has shape {obs.shape}, expected {self._obs_shape}")
        return self._zeros.copy()

    def reset(self) -> None:
        """Nothing to forget."""

    def check_against(self, robot_contract: PolicyContract) -> list[str]:
        return self.contract.mismatches(robot_contract, self_label="hold policy", other_label="robot")

    def verify_recorded_pairs(self) -> VerificationReport:
        return VerificationReport(n_pairs=0, max_abs_diff=0.0, tolerance=0.0, passed=True)


def resolve_model_path(model: str | Path) -> Path:
    """A model path as given if it exists, else the same relative path under the share directory's models/."""
    path = Path(model).expanduser()
    if path.is_absolute() or path.exists():
        return path
    searched = [str(path.absolute())]
    try:
        from humanoid_rl.paths import model_path

        shared = model_path(path, must_exist=False)
    except (ImportError, FileNotFoundError):
        shared = None  # no share directory: only the working directory counts
    if shared is not None:
        if shared.exists():
            return shared
        searched.append(str(shared))
    raise ModelNotFoundError(
        f"policy model {str(model)!r} not found; looked at {' and '.join(searched)}. Fix: pass "
        "an existing .onnx path (relative paths are also looked up in the share directory's "
        "models/), or leave the model empty to hold the default pose"
    )


def load_policy(
    model: str | Path | None,
    robot_contract: PolicyContract,
    *,
    intra_op_threads: int = 1,
    inter_op_threads: int = 1,
) -> Policy:
    """The policy to deploy on a robot with ``robot_contract``, checked; ``None`` / ``""`` → HoldPosePolicy.

    Raises ModelFileError (file problems), ContractMismatchError (every difference from the robot's contract)
    or RecordedPairsError (max difference). Warnings that do not block (the robot files changed since export,
    but nothing the contract states did) are returned in ``policy.warnings``.
    """
    if model is None or not str(model).strip():
        return HoldPosePolicy(robot_contract)
    path = resolve_model_path(str(model).strip())
    policy = OnnxPolicy.load(path, intra_op_threads=intra_op_threads, inter_op_threads=inter_op_threads)
    problems = policy.check_against(robot_contract)
    if problems:
        raise ContractMismatchError(
            problems,
            context=f"policy model {path} was exported for another robot configuration (retrain/re-export "
            "for this robot, or point robot_config at the robot it was trained for)",
        )
    if policy.contract.hash_differs(robot_contract):
        policy.warnings.append(
            f"robot files changed since {path.name} was exported (config hash "
            f"{policy.contract.robot_config_hash[:12]}"
            f" at export, {robot_contract.robot_config_hash[:12]} now); joint order, gains, default pose and "
            "observation layout still match, so it is allowed — re-export to silence this warning"
        )
    report = policy.verify_recorded_pairs()
    if not report.passed:
        raise RecordedPairsError(report, str(path))
    return policy


def check_model_for_robot(model: str | None, robot_config: str | None) -> Path | None:
    """The model's path, loaded and checked as the policy node will load it (file, metadata, contract against
    the robot, recorded pairs), for a command to refuse a bad file before it starts anything; None for no
    model (the hold pose)."""
    if model is None or not str(model).strip():
        return None
    from humanoid_rl.core.robot_spec import RobotSpec

    path = resolve_model_path(str(model).strip())
    load_policy(path, PolicyContract.from_robot(RobotSpec.load(robot_config or None)))
    return path


def _percentiles_us(samples_us: list[np.ndarray]) -> tuple[float, float, float]:
    values = np.concatenate(samples_us)
    p50, p99 = np.percentile(values, [50, 99])
    return float(p50), float(p99), float(values.mean())


def benchmark_inference(
    path: str | Path,
    n: int = 5000,
    *,
    intra_op_threads: int = 1,
    inter_op_threads: int = 1,
    rounds: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """``act()`` latency against a bare ``InferenceSession.run`` of the same file, in the same process.

    Both use the same session options (thread counts, optimisation level) and the same observations; the two
    are measured in alternating rounds so that machine load affects both alike. Returns µs percentiles and
    the ratios act/bare (the runtime's overhead; target ≤ 1.2 at p50).
    """
    import onnxruntime as ort

    if n < rounds:
        raise ValueError(f"n must be at least rounds ({rounds}), got {n}")
    policy = OnnxPolicy.load(path, intra_op_threads=intra_op_threads, inter_op_threads=inter_op_threads)
    bare = open_session(policy.path, intra_op_threads=intra_op_threads, inter_op_threads=inter_op_threads)
    rng = np.random.default_rng(seed)
    recorded = policy.metadata.recorded_pairs.obs
    # Realistic inputs: recorded evaluation observations plus noise, 64 of them cycled.
    base = recorded[rng.integers(0, len(recorded), size=64)]
    observations = (base + rng.normal(0.0, 0.05, size=base.shape)).astype(np.float32)
    batched = [o[None, :] for o in observations]

    def run_act(i: int) -> None:
        policy.act(observations[i & 63])

    memory = {r.input: np.zeros(r.shape, np.float32) for r in policy.contract.recurrent_state}

    def run_bare(i: int) -> None:  # a recurrent model's memory fed as zeros: the same work per step
        bare.run(None, {INPUT_NAME: batched[i & 63], **memory})

    per_round = n // rounds
    samples: dict[str, list[np.ndarray]] = {"act": [], "bare": []}
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for key, fn in (("act", run_act), ("bare", run_bare)):
            for i in range(max(20, per_round // 10)):  # warm caches after the other one ran
                fn(i)
            times = np.empty(per_round, dtype=np.float64)
            for i in range(per_round):
                start = clock()
                fn(i)
                times[i] = clock() - start
            samples[key].append(times / 1e3)
    act_p50, act_p99, act_mean = _percentiles_us(samples["act"])
    bare_p50, bare_p99, bare_mean = _percentiles_us(samples["bare"])
    return {
        "model": str(policy.path),
        "n": per_round * rounds,
        "n_obs": policy.contract.n_obs,
        "n_actions": policy.contract.n_actions,
        "intra_op_threads": intra_op_threads,
        "inter_op_threads": inter_op_threads,
        "onnxruntime_version": ort.__version__,
        "act_p50_us": act_p50,
        "act_p99_us": act_p99,
        "act_mean_us": act_mean,
        "bare_p50_us": bare_p50,
        "bare_p99_us": bare_p99,
        "bare_mean_us": bare_mean,
        "ratio_p50": act_p50 / bare_p50,
        "ratio_p99": act_p99 / bare_p99,
    }
