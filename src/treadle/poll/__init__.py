"""Pollers: one small interface (``Poller``) and one module per backend.

``create_poller(name)`` is the one way the rest of treadle gets a poller; ``auto`` picks
the best this platform has (epoll, then poll, then select). Availability is checked when
asked, not at import, so every backend module imports on every platform.
"""

from __future__ import annotations

import select
from collections.abc import Callable

from .base import (
    ALL_EVENTS,
    EVENT_ERROR,
    EVENT_HANGUP,
    EVENT_READ,
    EVENT_WRITE,
    Poller,
    PollerFullError,
)
from .epoll_poller import EpollEdgePoller, EpollPoller
from .poll_poller import PollPoller
from .select_poller import FD_SETSIZE, SelectPoller

__all__ = [
    "ALL_EVENTS",
    "EVENT_ERROR",
    "EVENT_HANGUP",
    "EVENT_READ",
    "EVENT_WRITE",
    "FD_SETSIZE",
    "POLLER_NAMES",
    "EpollEdgePoller",
    "EpollPoller",
    "PollPoller",
    "Poller",
    "PollerFullError",
    "SelectPoller",
    "available_pollers",
    "create_poller",
]

#: every name ``create_poller`` knows, ``auto`` first (the order ``--poller`` lists them)
POLLER_NAMES = ("auto", "select", "poll", "epoll", "epoll-et")

# name -> (what the select module must have, constructor); best first for "auto"
_BACKENDS: dict[str, tuple[str, Callable[[], Poller]]] = {
    "epoll": ("epoll", EpollPoller),
    "epoll-et": ("epoll", EpollEdgePoller),
    "poll": ("poll", PollPoller),
    "select": ("select", SelectPoller),
}
#: what "auto" tries, in order. Edge-triggered epoll is not among them: it is a choice
#: about how the driver keeps readiness, not a better way to get the same thing.
_AUTO_ORDER = ("epoll", "poll", "select")


def _has(name: str) -> bool:
    return hasattr(select, _BACKENDS[name][0])


def available_pollers() -> list[str]:
    """Return the concrete backend names this platform has, in ``POLLER_NAMES`` order."""
    return [name for name in POLLER_NAMES if name != "auto" and _has(name)]


def create_poller(name: str = "auto") -> Poller:
    """Return a new poller of the backend called ``name``.

    ``auto`` picks epoll, then poll, then select, whichever the platform has first.
    Raises ValueError (with a one-line message) for an unknown name, or one this
    platform does not have.
    """
    if name == "auto":
        for candidate in _AUTO_ORDER:
            if _has(candidate):
                return _BACKENDS[candidate][1]()
        raise ValueError("no poller is available on this platform")
    if name not in _BACKENDS:
        raise ValueError(f"unknown poller {name!r}; choose one of {', '.join(POLLER_NAMES)}")
    if not _has(name):
        raise ValueError(
            f"poller {name!r} is not available on this platform;"
            f" available: {', '.join(available_pollers())}"
        )
    return _BACKENDS[name][1]()
