"""Test doubles for the reactor: a clock moved by hand, a poller that replays a script."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from treadle.poll import Poller

from ..support import FakeClock as FakeClock  # re-exported for the reactor tests
from ..support import hang_guard as hang_guard


class ScriptedPoller:
    """A poller that returns the batches it is given, in order, and records its calls."""

    name = "scripted"
    edge_triggered = False
    max_fd: int | None = None

    def __init__(self) -> None:
        self.registered: dict[int, int] = {}
        self.batches: deque[list[tuple[int, int]]] = deque()
        self.timeouts: list[float | None] = []
        self.modify_calls = 0
        self.closed = False

    def register(self, fd: int, events: int) -> None:
        if fd in self.registered:
            raise FileExistsError(fd)
        self.registered[fd] = events

    def modify(self, fd: int, events: int) -> None:
        if fd not in self.registered:
            raise FileNotFoundError(fd)
        self.modify_calls += 1
        self.registered[fd] = events

    def unregister(self, fd: int) -> None:
        self.registered.pop(fd, None)

    def poll(self, timeout_s: float | None) -> list[tuple[int, int]]:
        self.timeouts.append(timeout_s)
        return self.batches.popleft() if self.batches else []

    def close(self) -> None:
        self.closed = True


class ObservedPoller:
    """Wraps a real poller; ``entered`` is set each time a wait is about to begin.

    Lets another thread act while the loop is (about to be) blocked, with no sleeps.
    """

    def __init__(self, inner: Poller) -> None:
        self.inner = inner
        self.name = inner.name
        self.edge_triggered = inner.edge_triggered
        self.max_fd = inner.max_fd
        self.entered = threading.Event()
        self.register = inner.register
        self.modify = inner.modify
        self.unregister = inner.unregister
        self.close = inner.close

    def poll(self, timeout_s: float | None) -> list[tuple[int, int]]:
        self.entered.set()
        return self.inner.poll(timeout_s)


class Recorder:
    """An I/O handler that logs its calls and runs optional hooks."""

    def __init__(
        self,
        log: list[object],
        name: str,
        on_read: Callable[[], object] | None = None,
        on_write: Callable[[], object] | None = None,
    ) -> None:
        self.log = log
        self.name = name
        self.on_read = on_read
        self.on_write = on_write

    def handle_read(self) -> None:
        self.log.append((self.name, "read"))
        if self.on_read is not None:
            self.on_read()

    def handle_write(self) -> None:
        self.log.append((self.name, "write"))
        if self.on_write is not None:
            self.on_write()
