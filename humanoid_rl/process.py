"""The process around the nodes: its name in ``ps``/``top``, and SIGINT/SIGTERM as a request to stop.

rclpy's own handlers shut the context down inside the signal and then raise KeyboardInterrupt wherever Python
happens to be, often inside a callback called from C++ (pybind11 then aborts the process, or a callback
publishes on a context that is already gone). Ours only set a flag; the spin loops check it, stop spinning,
and shut down in order (see ``humanoid_rl.nodes.runner.shut_down``). No rclpy here.
"""

from __future__ import annotations

import atexit
import ctypes
import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

_PR_SET_NAME = 15  # <linux/prctl.h>
_COMM_LENGTH = 15  # the kernel keeps 15 bytes of a process name
_FORCE_AFTER = 3  # the third signal exits at once: a user whose shutdown hangs keeps a way out
TEARDOWN_DEADLINE_S = 3.0  # a signal-requested teardown takes ~0.05 s; one still going after this hangs

_stop = threading.Event()
_signals_seen = 0


def set_process_name(name: str) -> bool:
    """Give this process ``name`` in ``ps -e``, ``top``, ``pgrep`` (Linux only); False where it could not."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_NAME, os.path.basename(name).encode()[:_COMM_LENGTH], 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _on_signal(signum: int, frame: object) -> None:
    global _signals_seen
    _signals_seen += 1
    _stop.set()
    if _signals_seen >= _FORCE_AFTER:
        os.write(2, f"{signal.Signals(signum).name} {_signals_seen} times: exiting without a clean shutdown\n".encode())
        os._exit(128 + signum)


def install_stop_handlers() -> None:
    """From now on SIGINT and SIGTERM only request a stop (:func:`stop_requested`); call from the main thread."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """:func:`install_stop_handlers` for a block, then the previous handlers again (a command run in a test).
    Outside the main thread, where Python cannot install handlers, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    install_stop_handlers()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stop_requested() -> bool:
    return _stop.is_set()


def clear_stop_request() -> None:
    """Forget a handled stop (a test that runs several stacks in one process)."""
    global _signals_seen
    _signals_seen = 0
    _stop.clear()


@contextmanager
def teardown_deadline(seconds: float = TEARDOWN_DEADLINE_S) -> Iterator[None]:
    """After a stop was requested, a teardown still running ``seconds`` later is ended: faulthandler's own thread
    prints where every thread was and exits 1. A Python watchdog, or the third Ctrl-C, cannot do this when the
    hang is in C holding the GIL, as Fast DDS deleting a participant did in ~1 % of whole-graph Ctrl-Cs: gdb shows
    the main thread in rmw's ``destroy_participant`` → ``DomainParticipant::set_listener(nullptr)``, which spins
    (no timeout) while a discovery callback is in flight (eProsima/Fast-DDS#6513). Without a stop request it
    does nothing."""
    armed = stop_requested()
    if armed:
        faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        if armed:
            faulthandler.cancel_dump_traceback_later()


def exit_after_stop(code: int) -> None:
    """After a signal-requested, already finished shutdown: exit at once with ``code``.

    The ROS side is gone in about 60 ms, but the interpreter's own teardown of pybullet, onnxruntime and Fast
    DDS then took 0.3–1.5 s per process with four exiting together on a loaded 2-core machine, past the 1 s a
    launcher (or a user at Ctrl-C) should wait. atexit handlers still run and the streams are flushed.
    Returns (and the caller exits normally) when no stop was requested.
    """
    if stop_requested():
        _exit_now(code)


def _exit_now(code: int) -> NoReturn:
    atexit._run_exitfuncs()  # noqa: SLF001 - the documented atexit behaviour, without the module teardown
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to say
            pass
    os._exit(code)
