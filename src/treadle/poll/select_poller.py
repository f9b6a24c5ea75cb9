"""The ``select(2)`` backend: available everywhere, limited to FD_SETSIZE descriptors.

``select`` passes bitmaps of FD_SETSIZE bits (1024 on Linux and macOS), so it cannot
watch a descriptor numbered FD_SETSIZE or above: CPython raises ValueError from inside
``select.select`` for such a descriptor, which in a server loop would kill every
connection at once. We refuse it at ``register`` time with ``PollerFullError`` instead,
so the listener can stop accepting and keep serving what it has. (treadle is for POSIX
systems; on Windows the limit would be a count of sockets rather than a number.)

``select`` has no separate hang-up or error report: a socket whose peer closed or that
has a pending error is reported readable (and writable), and the following ``recv`` or
``send`` finds the EOF or the error. So this backend never reports ``EVENT_ERROR``; the
reactor hands both to ``handle_read`` anyway. The third set (``exceptfds``) means
out-of-band data on Linux, which HTTP does not use, so we do not pass it.

EINTR is retried by CPython (PEP 475) with the remaining timeout.
"""

from __future__ import annotations

import select

from .base import (
    EVENT_READ,
    EVENT_WRITE,
    PollerFullError,
    check_registration,
    timeout_to_seconds,
)

#: CPython's select module is built with the platform's FD_SETSIZE, 1024 on Linux, the
#: BSDs and macOS. Python does not expose the value, so we know it here.
FD_SETSIZE = 1024


class SelectPoller:
    """Level-triggered poller over ``select.select``; the fallback of last resort."""

    name = "select"
    edge_triggered = False
    max_fd: int | None = FD_SETSIZE

    def __init__(self) -> None:
        self._events: dict[int, int] = {}
        # The two sets are what select() is handed on every call; kept up to date at
        # registration time so that poll() builds nothing but its result.
        self._readers: set[int] = set()
        self._writers: set[int] = set()

    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd``; see ``Poller.register``.

        Raises PollerFullError for a descriptor at or above FD_SETSIZE.
        """
        check_registration(fd, events)
        if fd in self._events:
            raise FileExistsError(f"fd {fd} is already registered with the select poller")
        if fd >= FD_SETSIZE:
            raise PollerFullError(
                f"fd {fd} is beyond the select poller's limit: select() can only watch"
                f" descriptors below FD_SETSIZE={FD_SETSIZE}; use the poll or epoll poller"
            )
        self._events[fd] = events
        self._update_sets(fd, events)

    def modify(self, fd: int, events: int) -> None:
        """Change the events watched for ``fd``; see ``Poller.modify``."""
        check_registration(fd, events)
        if fd not in self._events:
            raise FileNotFoundError(f"fd {fd} is not registered with the select poller")
        self._events[fd] = events
        self._update_sets(fd, events)

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; unknown descriptors are ignored."""
        if self._events.pop(fd, None) is not None:
            self._readers.discard(fd)
            self._writers.discard(fd)

    def poll(self, timeout_s: float | None) -> list[tuple[int, int]]:
        """Wait for readiness; see ``Poller.poll``."""
        readable, writable, _ = select.select(
            self._readers, self._writers, (), timeout_to_seconds(timeout_s)
        )
        # The common cases need no merging: a loop turn is mostly reads, or mostly writes.
        if not writable:
            return [(fd, EVENT_READ) for fd in readable]
        if not readable:
            return [(fd, EVENT_WRITE) for fd in writable]
        merged = dict.fromkeys(readable, EVENT_READ)
        for fd in writable:
            merged[fd] = merged.get(fd, 0) | EVENT_WRITE
        return list(merged.items())

    def close(self) -> None:
        """Forget every descriptor; select keeps no kernel object to release."""
        self._events.clear()
        self._readers.clear()
        self._writers.clear()

    def _update_sets(self, fd: int, events: int) -> None:
        if events & EVENT_READ:
            self._readers.add(fd)
        else:
            self._readers.discard(fd)
        if events & EVENT_WRITE:
            self._writers.add(fd)
        else:
            self._writers.discard(fd)

    def __repr__(self) -> str:
        return f"<SelectPoller fds={len(self._events)}>"
