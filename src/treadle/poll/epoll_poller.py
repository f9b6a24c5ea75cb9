"""The Linux ``epoll(7)`` backends: level-triggered (``epoll``) and edge-triggered (``epoll-et``).

epoll keeps the interest list in the kernel, so a wait costs what is ready, not what is
watched. The two backends differ only in registration:

- ``EpollPoller`` (level) asks for what the caller asks for. The driver watches for
  writes only while output is pending, so ``modify`` is a syscall each time that
  changes, and a busy connection flips its mask often.
- ``EpollEdgePoller`` registers a descriptor once, for read, write and the peer's
  half-close (``EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET``), whatever mask is asked.
  ``modify`` is then a no-op with no syscall. The price is that readiness is reported
  only when it *changes*: the caller keeps "readable"/"writable" flags in user space and
  always reads or writes until EAGAIN, or it will wait forever for an edge that already
  passed. Handlers also see events they did not ask for (a fresh socket is reported
  writable at once), which is how the caller learns its flags.

Traps worth knowing (see also trio's essay "Some facts about epoll"):

- epoll watches the open *file*, not the number. Closing a descriptor removes it from
  the interest list only when no duplicate (``dup``, ``fork``) keeps the file open;
  otherwise events keep coming for a number that is no longer ours. Unregister first.
- ``EPOLLERR`` and ``EPOLLHUP`` are always reported, whatever the mask; with level
  triggering a hung-up socket is reported on every turn until it is closed.
- ``EPOLLRDHUP`` is the peer's shutdown of its writing side. We ask for it with reads so
  a half-closed connection is seen even while its receive buffer is empty, and report
  it as ``EVENT_READ``: the next ``recv`` returns ``b""``.

Translation to our masks: ``EPOLLIN``/``EPOLLRDHUP`` -> ``EVENT_READ``, ``EPOLLOUT`` ->
``EVENT_WRITE``, ``EPOLLERR``/``EPOLLHUP`` -> ``EVENT_ERROR``, through a small cache of
raw masks seen so far (a loop sees only a handful).

EINTR is retried by CPython (PEP 475) with the remaining timeout.
"""

from __future__ import annotations

import select
from contextlib import suppress

from .base import ALL_EVENTS, MaskTranslator, check_registration, timeout_to_seconds

# getattr with Linux's values: the module must import where epoll does not exist, so
# that ``available_pollers`` can report it missing rather than fail to import.
_EPOLLIN: int = getattr(select, "EPOLLIN", 0x001)
_EPOLLOUT: int = getattr(select, "EPOLLOUT", 0x004)
_EPOLLERR: int = getattr(select, "EPOLLERR", 0x008)
_EPOLLHUP: int = getattr(select, "EPOLLHUP", 0x010)
_EPOLLRDHUP: int = getattr(select, "EPOLLRDHUP", 0x2000)
_EPOLLET: int = getattr(select, "EPOLLET", 1 << 31)

_MASKS = MaskTranslator(
    read_bits=_EPOLLIN | _EPOLLRDHUP,
    write_bit=_EPOLLOUT,
    error_bits=_EPOLLERR | _EPOLLHUP,
    hangup_bits=_EPOLLRDHUP | _EPOLLHUP,
)
#: what the edge backend always registers
_EDGE_MASK = _EPOLLIN | _EPOLLOUT | _EPOLLRDHUP | _EPOLLET


class _EpollBase:
    """What both epoll backends share: the epoll object, unregister, poll and close."""

    name = "epoll"
    edge_triggered = False
    max_fd: int | None = None

    def __init__(self) -> None:
        self._epoll = select.epoll()
        # fd -> the mask the caller asked for (the edge backend keeps it only to know
        # what is registered)
        self._events: dict[int, int] = {}

    def fileno(self) -> int:
        """Return the epoll descriptor (for diagnostics; callers do not poll it)."""
        return self._epoll.fileno()

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; unknown descriptors are ignored."""
        if self._events.pop(fd, None) is None:
            return
        # EBADF: the descriptor was closed first, which already took it out of the
        # interest list (unless a duplicate keeps the file open; see the module doc).
        with suppress(OSError):
            self._epoll.unregister(fd)

    def poll(self, timeout_s: float | None) -> list[tuple[int, int]]:
        """Wait for readiness; see ``Poller.poll``."""
        return _MASKS.translate(self._epoll.poll(timeout_to_seconds(timeout_s)))

    def close(self) -> None:
        """Close the epoll descriptor; safe to call twice."""
        self._epoll.close()
        self._events.clear()

    def __repr__(self) -> str:
        state = "closed" if self._epoll.closed else f"fd={self._epoll.fileno()}"
        return f"<{type(self).__name__} {state} fds={len(self._events)}>"


class EpollPoller(_EpollBase):
    """Level-triggered poller over ``select.epoll``: the default where Linux has it."""

    name = "epoll"
    edge_triggered = False

    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd``; see ``Poller.register``."""
        check_registration(fd, events)
        if fd in self._events:
            raise FileExistsError(f"fd {fd} is already registered with the epoll poller")
        self._epoll.register(fd, _MASKS.to_kernel(events))
        self._events[fd] = events

    def modify(self, fd: int, events: int) -> None:
        """Change the events watched for ``fd``; see ``Poller.modify``.

        A mask equal to the current one costs no syscall.
        """
        check_registration(fd, events)
        current = self._events.get(fd)
        if current is None:
            raise FileNotFoundError(f"fd {fd} is not registered with the epoll poller")
        if current != events:
            self._epoll.modify(fd, _MASKS.to_kernel(events))
            self._events[fd] = events


class EpollEdgePoller(_EpollBase):
    """Edge-triggered poller over ``select.epoll``: register once, never modify."""

    name = "epoll-et"
    edge_triggered = True

    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for everything, edge-triggered, whatever ``events`` says."""
        check_registration(fd, events)
        if fd in self._events:
            raise FileExistsError(f"fd {fd} is already registered with the epoll-et poller")
        self._epoll.register(fd, _EDGE_MASK)
        self._events[fd] = events

    def modify(self, fd: int, events: int) -> None:
        """Record ``events`` and do nothing else: the kernel already watches everything.

        Raises FileNotFoundError if ``fd`` is not registered, like the other backends.
        """
        if fd not in self._events:
            raise FileNotFoundError(f"fd {fd} is not registered with the epoll-et poller")
        if events & ~ALL_EVENTS:
            raise ValueError(f"invalid event mask {events:#x}")
        self._events[fd] = events
