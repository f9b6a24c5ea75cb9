"""The one small interface every poller backend implements.

A poller watches file descriptors and reports which are ready. Backends differ in how
they are asked (``select`` rebuilds three sets every call, ``poll`` passes an array,
``epoll`` keeps the interest list in the kernel) and in when they report (level-triggered
backends report a descriptor for as long as it stays ready; the edge-triggered epoll
backend reports only a change to ready). The connection driver always reads and writes
until EAGAIN, so the two modes differ only in registration: see ``edge_triggered``.

Event masks are small ints: ``EVENT_READ``, ``EVENT_WRITE``, and ``EVENT_ERROR`` for
hang-up or error conditions (which the reactor hands to the read side so that the
following ``recv`` finds the EOF or the error).
"""

from __future__ import annotations

from typing import Protocol

EVENT_READ = 1
EVENT_WRITE = 2
EVENT_ERROR = 4


class PollerFullError(OSError):
    """Raised by ``register`` when a backend cannot watch one more descriptor.

    The select backend raises it for descriptors at or above FD_SETSIZE; the caller
    (the listener) stops accepting and keeps serving the connections it has.
    """


class Poller(Protocol):
    """What the reactor needs from an I/O multiplexing backend."""

    #: the name used by ``--poller`` (``select``, ``poll``, ``epoll``, ``epoll-et``)
    name: str
    #: True when readiness is reported only on change (the caller must drain to EAGAIN)
    edge_triggered: bool
    #: highest descriptor number + 1 this backend can watch, or None when unbounded
    max_fd: int | None

    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for ``events``. Raises PollerFullError at capacity."""

    def modify(self, fd: int, events: int) -> None:
        """Change the events watched for a registered ``fd``."""

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``. Unknown descriptors are ignored."""

    def poll(self, timeout_s: float | None) -> list[tuple[int, int]]:
        """Wait up to ``timeout_s`` seconds (None: forever, 0: not at all).

        Returns ``(fd, events)`` pairs. The timeout is rounded up to whole milliseconds
        so that a deadline is never woken for early, and EINTR is retried inside.
        """

    def close(self) -> None:
        """Release the backend's own descriptor, if it has one."""
