"""Training environments in a few worker processes, several environments to a process.

SB3's ``SubprocVecEnv`` gives every environment a process of its own, and each policy step is one round trip:
the learner sends the actions, every worker steps, the learner waits for the slowest, then runs the policy
while the workers wait. With one environment per core each side idles while the other works: on 2 cores,
training the walk task on MuJoCo kept the workers busy ~40 % of the time and the learner ~45 %, and collected
no faster with 2 environments than with 1. ``BatchedSubprocVecEnv`` runs ``n_envs`` environments in
``n_processes`` workers (SB3's ``DummyVecEnv`` in each, so auto-reset, ``terminal_observation`` and
``TimeLimit.truncated`` are SB3's own): one round trip and one batched policy call serve every environment,
so the fixed cost of a step is shared by more samples. The environments' order, seeds and results are those
of ``SubprocVecEnv`` with the same factories.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper, VecEnv, VecEnvIndices

__all__ = ["BatchedSubprocVecEnv", "split_evenly"]


def split_evenly(n_envs: int, n_processes: int) -> list[range]:
    """Consecutive ranges of environment indices, one per process, sizes differing by at most one."""
    if n_envs < 1 or n_processes < 1:
        raise ValueError(f"n_envs = {n_envs}, n_processes = {n_processes}: use at least one of each")
    n_processes = min(n_processes, n_envs)
    base, extra = divmod(n_envs, n_processes)
    ranges, start = [], 0
    for worker in range(n_processes):
        stop = start + base + (1 if worker < extra else 0)
        ranges.append(range(start, stop))
        start = stop
    return ranges


def _worker(remote: Any, parent_remote: Any, env_fns: CloudpickleWrapper) -> None:
    parent_remote.close()
    venv = DummyVecEnv(env_fns.var)
    try:
        _serve(remote, venv)
    except (EOFError, KeyboardInterrupt):  # the learner is gone, or Ctrl-C reached the whole process group
        pass


def _serve(remote: Any, venv: DummyVecEnv) -> None:
    while True:
        command, data = remote.recv()
        if command == "step":
            obs, rewards, dones, infos = venv.step(data)
            remote.send((obs, rewards, dones, infos, venv.reset_infos))
        elif command == "reset":
            venv._seeds, venv._options = list(data[0]), list(data[1])
            obs = venv.reset()
            remote.send((obs, venv.reset_infos))
        elif command == "env_method":
            name, args, kwargs, indices = data
            remote.send(venv.env_method(name, *args, indices=indices, **kwargs))
        elif command == "get_attr":
            remote.send(venv.get_attr(data[0], data[1]))
        elif command == "set_attr":
            remote.send(venv.set_attr(data[0], data[1], data[2]))
        elif command == "has_attr":
            remote.send(venv.has_attr(data))
        elif command == "is_wrapped":
            remote.send(venv.env_is_wrapped(data[0], data[1]))
        elif command == "render":
            remote.send(venv.get_images())
        elif command == "get_spaces":
            remote.send((venv.observation_space, venv.action_space))
        elif command == "close":
            venv.close()
            remote.close()
            break
        else:
            raise NotImplementedError(f"BatchedSubprocVecEnv worker: unknown command {command!r}")


def _concat(parts: Sequence[Any], space: spaces.Space) -> Any:
    """Join the workers' stacked observations along the environment axis."""
    if isinstance(space, spaces.Dict):
        return {key: np.concatenate([part[key] for part in parts]) for key in space.spaces}
    if isinstance(space, spaces.Tuple):
        return tuple(np.concatenate([part[i] for part in parts]) for i in range(len(space.spaces)))
    return np.concatenate(parts)


class BatchedSubprocVecEnv(VecEnv):
    """``n_envs`` environments in ``n_processes`` worker processes (see the module's docstring)."""

    def __init__(self, env_fns: list[Callable[[], gym.Env]], n_processes: int,
                 start_method: str = "forkserver") -> None:
        self.waiting = False
        self.closed = False
        self.chunks = split_evenly(len(env_fns), n_processes)
        context = mp.get_context(start_method)
        pipes = [context.Pipe() for _ in self.chunks]
        self.remotes = [parent for parent, _ in pipes]
        self.processes = []
        for (remote, work_remote), chunk in zip(pipes, self.chunks, strict=True):
            functions = CloudpickleWrapper([env_fns[i] for i in chunk])
            # daemon: a crashed learner does not leave workers behind
            process = context.Process(target=_worker, args=(work_remote, remote, functions), daemon=True)
            process.start()
            self.processes.append(process)
            work_remote.close()
        self.remotes[0].send(("get_spaces", None))
        observation_space, action_space = self.remotes[0].recv()
        super().__init__(len(env_fns), observation_space, action_space)

    def step_async(self, actions: np.ndarray) -> None:
        for remote, chunk in zip(self.remotes, self.chunks, strict=True):
            remote.send(("step", actions[chunk.start:chunk.stop]))
        self.waiting = True

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        results = [remote.recv() for remote in self.remotes]
        self.waiting = False
        self.reset_infos = [info for result in results for info in result[4]]
        infos = [info for result in results for info in result[3]]
        return (_concat([result[0] for result in results], self.observation_space),
                np.concatenate([result[1] for result in results]), np.concatenate([result[2] for result in results]),
                infos)

    def reset(self) -> Any:
        for remote, chunk in zip(self.remotes, self.chunks, strict=True):
            remote.send(("reset", ([self._seeds[i] for i in chunk], [self._options[i] for i in chunk])))
        results = [remote.recv() for remote in self.remotes]
        self.reset_infos = [info for result in results for info in result[1]]
        self._reset_seeds()  # seeds and options are used once, as SB3's vector envs do
        self._reset_options()
        return _concat([result[0] for result in results], self.observation_space)

    def close(self) -> None:
        if self.closed:
            return
        if self.waiting:
            for remote in self.remotes:
                remote.recv()
        for remote in self.remotes:
            remote.send(("close", None))
        for process in self.processes:
            process.join()
        for remote in self.remotes:
            remote.close()
        self.closed = True

    def _per_worker(self, indices: VecEnvIndices) -> list[tuple[Any, list[int]]]:
        """(remote, local indices) of each worker holding any of ``indices``, in environment order."""
        wanted = set(self._get_indices(indices))
        targets = []
        for remote, chunk in zip(self.remotes, self.chunks, strict=True):
            local = [i - chunk.start for i in chunk if i in wanted]
            if local:
                targets.append((remote, local))
        return targets

    def _ask(self, command: str, indices: VecEnvIndices, *data: Any) -> list[Any]:
        targets = self._per_worker(indices)
        for remote, local in targets:
            remote.send((command, (*data, local)))
        return [value for remote, _ in targets for value in remote.recv()]

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        return self._ask("env_method", indices, method_name, method_args, method_kwargs)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._ask("get_attr", indices, attr_name)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        targets = self._per_worker(indices)
        for remote, local in targets:
            remote.send(("set_attr", (attr_name, value, local)))
        for remote, _ in targets:
            remote.recv()

    def has_attr(self, attr_name: str) -> bool:
        for remote in self.remotes:
            remote.send(("has_attr", attr_name))
        return all([remote.recv() for remote in self.remotes])

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return self._ask("is_wrapped", indices, wrapper_class)

    def get_images(self) -> Sequence[np.ndarray | None]:
        for remote in self.remotes:
            remote.send(("render", None))
        return [image for remote in self.remotes for image in remote.recv()]
