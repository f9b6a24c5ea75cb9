"""The one small interface every poller backend implements, and the helpers they share.

A poller watches file descriptors and reports which are ready. Backends differ in how
they are asked (``select`` rebuilds three sets every call, ``poll`` passes an array,
``epoll`` keeps the interest list in the kernel) and in when they report (level-triggered
backends report a descriptor for as long as it stays ready; the edge-triggered epoll
backend reports only a change to ready, and again on each arrival of new data). The
connection driver stops reading at a short read, EAGAIN or the end of input, and writes
until EAGAIN, so the two modes differ only in registration: see ``edge_triggered``.

Event masks are small ints: ``EVENT_READ``, ``EVENT_WRITE``, and ``EVENT_ERROR`` for
hang-up or error conditions (which the reactor hands to the read side so that the
following ``recv`` finds the EOF or the error). ``EVENT_HANGUP`` comes with
``EVENT_READ`` where the kernel can say that the peer shut its side down
(``EPOLLRDHUP``, ``POLLRDHUP``, ``EPOLLHUP``): the end of input is queued, maybe behind
data, so a reader must go on to it rather than stop at a short read. ``select`` cannot
tell; level-triggered backends report the end again anyway. ``EVENT_ERROR`` is reported whether or
not it was asked for, because the kernel reports it that way (``POLLHUP``/``EPOLLHUP``
cannot be masked): a handler that gets it must close or unregister, or a level-triggered
backend will report it again on every turn.

The contract every backend keeps (tested once, in ``tests/poll/test_contract.py``):

- ``register`` of a descriptor that is already registered raises ``FileExistsError``
  (a double registration almost always means a closed descriptor was never unregistered
  and its number came back for a new socket, so it is better loud than papered over);
  ``modify`` of an unknown descriptor raises ``FileNotFoundError``; ``unregister`` of an
  unknown descriptor is ignored.
- Unregister a descriptor *before* closing it. ``select`` fails with EBADF on a closed
  descriptor, ``poll`` reports it as ``EVENT_ERROR`` on every turn, and epoll silently
  forgets it (unless the file is still open through a duplicate).
- ``poll`` returns a list of ``(fd, events)`` with each descriptor at most once.
- Timeouts are rounded *up* to whole milliseconds, so that a timer is never woken for
  early and then has to spin; None blocks, 0 (or less) does not wait.
- EINTR is retried by Python itself (PEP 475) with the remaining timeout, after running
  any Python-level signal handler; that is why the reactor's signal handler writes to its
  waker, so that the retried wait returns at once.
"""

from __future__ import annotations

from math import ceil
from typing import Protocol

EVENT_READ = 1
EVENT_WRITE = 2
EVENT_ERROR = 4
#: with EVENT_READ: the peer has shut down its side (the end of input is queued)
EVENT_HANGUP = 8
#: every bit a caller may pass to ``register``/``modify``
ALL_EVENTS = EVENT_READ | EVENT_WRITE | EVENT_ERROR

#: the longest wait the C APIs take (an ``int`` of milliseconds, about 24.8 days). Longer
#: timeouts are cut to this; the reactor recomputes its timeout on every turn anyway.
MAX_TIMEOUT_MS = 2**31 - 1


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
        """Start watching ``fd`` for ``events``.

        Raises PollerFullError at capacity, FileExistsError if ``fd`` is already
        registered, ValueError for a negative ``fd`` or unknown event bits.
        """

    def modify(self, fd: int, events: int) -> None:
        """Change the events watched for a registered ``fd``.

        Raises FileNotFoundError if ``fd`` is not registered.
        """

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``. Unknown descriptors are ignored."""

    def poll(self, timeout_s: float | None) -> list[tuple[int, int]]:
        """Wait up to ``timeout_s`` seconds (None: forever, 0: not at all).

        Returns ``(fd, events)`` pairs. The timeout is rounded up to whole milliseconds
        so that a deadline is never woken for early, and EINTR is retried inside.
        """

    def close(self) -> None:
        """Release the backend's own descriptor, if it has one. Safe to call twice."""


def check_registration(fd: int, events: int) -> None:
    """Reject what no backend can watch, before any state changes.

    Raises ValueError for a negative descriptor or bits outside ``ALL_EVENTS``.
    """
    if fd < 0:
        raise ValueError(f"invalid file descriptor {fd}")
    if events & ~ALL_EVENTS:
        raise ValueError(f"invalid event mask {events:#x}")


def timeout_to_ms(timeout_s: float | None) -> int:
    """Return ``timeout_s`` as whole milliseconds for ``poll(2)``-style calls.

    -1 means block (None), 0 means don't wait (zero or negative); anything else is
    rounded up, so 0.1 ms becomes 1 ms rather than a busy 0, and capped at
    ``MAX_TIMEOUT_MS``.
    """
    if timeout_s is None:
        return -1
    if timeout_s <= 0:
        return 0
    ms = ceil(timeout_s * 1000.0)
    return ms if ms < MAX_TIMEOUT_MS else MAX_TIMEOUT_MS


def timeout_to_seconds(timeout_s: float | None) -> float | None:
    """Return ``timeout_s`` rounded up to whole milliseconds, in seconds.

    For the backends whose Python API takes seconds (``select``, ``epoll``). CPython
    itself rounds the float it is given up to its own unit (microseconds for select,
    milliseconds for epoll), and ``67 / 1000`` is a hair above 0.067, which epoll would
    turn into 68 ms. Shading the value down by 100 ns, far below a millisecond and far
    above float error, makes that second rounding land exactly on our millisecond.
    """
    ms = timeout_to_ms(timeout_s)
    if ms > 0:
        return ms * 0.001 - 1e-7
    return None if ms < 0 else 0.0


class MaskTranslator:
    """Our event masks to one kernel interface's bits and back.

    ``poll`` and ``epoll`` differ only in the names of their bits, so both backends use
    one of these. Translating what the kernel reports goes through a cache of the raw
    masks seen so far: a loop sees only a handful, so after warm-up it is one dict
    lookup per ready descriptor.
    """

    __slots__ = ("_read_bits", "_write_bit", "_error_bits", "_hangup_bits", "_cache")

    def __init__(
        self, read_bits: int, write_bit: int, error_bits: int, hangup_bits: int = 0
    ) -> None:
        #: asked for with EVENT_READ and reported as it (readable, and the peer's
        #: shutdown of its side where the kernel can say so)
        self._read_bits = read_bits
        self._write_bit = write_bit
        #: reported whatever was asked (hang-up, error, invalid descriptor)
        self._error_bits = error_bits
        #: reported as EVENT_HANGUP too: the peer shut its side, the end of input waits
        self._hangup_bits = hangup_bits
        self._cache: dict[int, int] = {}

    def to_kernel(self, events: int) -> int:
        """The kernel mask that asks for ``events``."""
        mask = 0
        if events & EVENT_READ:
            mask |= self._read_bits
        if events & EVENT_WRITE:
            mask |= self._write_bit
        return mask

    def from_kernel(self, raw: int) -> int:
        """Our mask for a kernel-reported ``raw`` mask."""
        events = 0
        if raw & self._read_bits:
            events |= EVENT_READ
        if raw & self._write_bit:
            events |= EVENT_WRITE
        if raw & self._error_bits:
            events |= EVENT_ERROR
        if raw & self._hangup_bits:
            events |= EVENT_HANGUP
        return events

    def translate(self, ready: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """``(fd, raw)`` pairs from the kernel to ``(fd, events)`` pairs."""
        cache = self._cache
        try:
            return [(fd, cache[raw]) for fd, raw in ready]
        except KeyError:
            # A raw mask not seen before: learn every new one, then translate again.
            for _, raw in ready:
                if raw not in cache:
                    cache[raw] = self.from_kernel(raw)
            return [(fd, cache[raw]) for fd, raw in ready]
