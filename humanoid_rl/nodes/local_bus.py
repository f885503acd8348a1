"""Direct hand-over between nodes that share a process (rclpy has no intra-process communication, rclcpp's has).

A node that publishes a topic also ``deliver``s the message object to the callbacks other nodes of the same
rclpy context registered with ``receive``: the receiver runs at once, inside the publisher's callback, with no
serialization, DDS round trip or executor wake-up in between. The topic is still published as before, so
outside subscribers (``ros2 topic echo``, bags, nodes in other processes) see no difference; the receiver drops
the DDS copy of what it already got (``DirectInput.is_duplicate``). Nodes in different processes never share
a context, so between processes nothing changes.

The publisher must not change a delivered message while a receiver may still hold it: publishers alternate
between two preallocated messages (``MessagePair``), and receivers keep only the newest one (single-threaded
executors: the next delivery replaces it before the other buffer is reused).

``HUMANOID_RL_LOCAL_BUS=0`` in a process's environment turns the hand-over off there (every message through
DDS, as between processes): for measuring what it saves, and for ruling it out when chasing a problem.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["DirectInput", "MessagePair", "deliver", "receive"]

_RECEIVERS: dict[tuple[int, str], list[Callable[[Any], None]]] = {}


def _key(node: Any, topic: str) -> tuple[int, str]:
    return id(node.context), topic


def receive(node: Any, topic: str, callback: Callable[[Any], None]) -> Callable[[], None]:
    """Have ``callback`` called with every message a node of ``node``'s context delivers on ``topic``; returns
    the function that undoes it (call it when the node tears its inputs down)."""
    if os.environ.get("HUMANOID_RL_LOCAL_BUS", "1") == "0":
        return lambda: None
    key = _key(node, topic)
    _RECEIVERS.setdefault(key, []).append(callback)

    def unregister() -> None:
        callbacks = _RECEIVERS.get(key, [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks:
            _RECEIVERS.pop(key, None)

    return unregister


def deliver(node: Any, topic: str, message: Any) -> int:
    """Hand ``message`` (just published on ``topic``) to this context's receivers; how many there were."""
    callbacks = _RECEIVERS.get(_key(node, topic), ())
    for callback in tuple(callbacks):
        callback(message)
    return len(callbacks)


class MessagePair:
    """Two preallocated messages used in turn, so the one a receiver holds stays as it was delivered."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._messages = (factory(), factory())
        self._next = 0

    @property
    def both(self) -> tuple[Any, Any]:
        return self._messages

    def next(self) -> Any:
        message = self._messages[self._next]
        self._next ^= 1
        return message


def _stamp_ns(message: Any) -> int:
    stamp = message.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class DirectInput:
    """The receiving side of one topic: counts what came directly and recognises the DDS copies of it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.direct = 0
        self.duplicates = 0
        self._newest_ns: int | None = None

    def arrived(self, message: Any) -> None:
        self.direct += 1
        self._newest_ns = _stamp_ns(message)

    def direct_callback(self, handle: Callable[[Any], None]) -> Callable[[Any], None]:
        """The callback to ``receive`` with: notes the message, then ``handle``s it."""

        def on_direct(message: Any) -> None:
            self.arrived(message)
            handle(message)

        return on_direct

    def dds_callback(self, handle: Callable[[Any], None]) -> Callable[[Any], None]:
        """The subscription's callback: ``handle``s what did not already come directly."""

        def on_dds(message: Any) -> None:
            if not self.is_duplicate(message):
                handle(message)

        return on_dds

    def is_duplicate(self, message: Any) -> bool:
        """A message from DDS stamped no later than the newest delivered directly: its copy, or older."""
        if self._newest_ns is not None and _stamp_ns(message) <= self._newest_ns:
            self.duplicates += 1
            return True
        return False
