"""The ``poll(2)`` backend: no descriptor limit, cost linear in the number watched.

``poll`` takes the whole interest list on every call (CPython keeps it as a dict and
rebuilds its ``pollfd`` array only when it changed), so it suits servers with a few
hundred connections, and platforms without epoll.

Translation to our masks: ``POLLIN`` (and ``POLLRDHUP`` where Linux has it, the peer's
half-close) is ``EVENT_READ``; ``POLLOUT`` is ``EVENT_WRITE``; ``POLLERR``, ``POLLHUP``
and ``POLLNVAL`` (a descriptor closed while still registered) are ``EVENT_ERROR``. The
kernel reports the last three whatever was asked, so they cannot be masked out.

EINTR is retried by CPython (PEP 475) with the remaining timeout.
"""

from __future__ import annotations

import select

from .base import MaskTranslator, check_registration, timeout_to_ms

# getattr: these names exist only where select.poll does, and the module must import on
# any platform so that ``available_pollers`` can say what is missing.
_POLLIN: int = getattr(select, "POLLIN", 0x001)
_POLLOUT: int = getattr(select, "POLLOUT", 0x004)
_POLLERR: int = getattr(select, "POLLERR", 0x008)
_POLLHUP: int = getattr(select, "POLLHUP", 0x010)
_POLLNVAL: int = getattr(select, "POLLNVAL", 0x020)
_POLLRDHUP: int = getattr(select, "POLLRDHUP", 0)  # Linux only; 0 adds nothing elsewhere

_MASKS = MaskTranslator(
    read_bits=_POLLIN | _POLLRDHUP,
    write_bit=_POLLOUT,
    error_bits=_POLLERR | _POLLHUP | _POLLNVAL,
    hangup_bits=_POLLRDHUP | _POLLHUP,
)


class PollPoller:
    """Level-triggered poller over ``select.poll``."""

    name = "poll"
    edge_triggered = False
    max_fd: int | None = None

    def __init__(self) -> None:
        self._poll = select.poll()
        self._events: dict[int, int] = {}

    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd``; see ``Poller.register``."""
        check_registration(fd, events)
        if fd in self._events:
            raise FileExistsError(f"fd {fd} is already registered with the poll poller")
        self._poll.register(fd, _MASKS.to_kernel(events))
        self._events[fd] = events

    def modify(self, fd: int, events: int) -> None:
        """Change the events watched for ``fd``; see ``Poller.modify``."""
        check_registration(fd, events)
        if fd not in self._events:
            raise FileNotFoundError(f"fd {fd} is not registered with the poll poller")
        self._poll.modify(fd, _MASKS.to_kernel(events))
        self._events[fd] = events

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; unknown descriptors are ignored."""
        if self._events.pop(fd, None) is not None:
            self._poll.unregister(fd)

    def poll(self, timeout_s: float | None) -> list[tuple[int, int]]:
        """Wait for readiness; see ``Poller.poll``."""
        return _MASKS.translate(self._poll.poll(timeout_to_ms(timeout_s)))

    def close(self) -> None:
        """Forget every descriptor; a poll object holds no kernel resource."""
        for fd in self._events:
            self._poll.unregister(fd)
        self._events.clear()

    def __repr__(self) -> str:
        return f"<PollPoller fds={len(self._events)}>"
