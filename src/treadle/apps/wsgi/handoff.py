"""Results from worker threads to the loop, batched: one wake-up for many completions.

Each hand-off could be its own ``exchange.call_soon_threadsafe``, but every one of those
writes a byte to the reactor's waker, a system call that also gives up the GIL; under
load the workers finish requests faster than the loop wakes, and those writes (and the
thread switches they cause) were a third of the cost of a request. So completions for
one loop thread go into a ``LoopInbox``: the first one after a delivery schedules
``_deliver`` through ``call_soon_threadsafe``, the others only join the list, and the
loop runs them all, in order, when it gets there.

An inbox serves one loop thread (the adapter keeps one per thread that calls it), and
``_deliver`` runs on the loop of the item that scheduled it: every item in an inbox came
from an exchange called on that same thread, so running it there is as good as running
it on its own loop. Should that loop be closed (``call_soon_threadsafe`` raises
RuntimeError), each waiting item is handed to its own loop one by one instead, and the
ones whose loop is gone are dropped. (Two loops taking turns on one thread, as tests
with several in-process servers do, share the inbox; a delivery scheduled on one that
is then closed without running it would strand what follows. A server runs one loop
per thread.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("treadle.wsgi")

CallSoon = Callable[..., None]
_Item = tuple[CallSoon, Callable[..., object], tuple[Any, ...]]


class LoopInbox:
    """Worker-to-loop hand-offs for one loop thread; see the module docstring."""

    __slots__ = ("_lock", "_items", "_pending")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[_Item] = []
        self._pending = False  # a _deliver is scheduled and has not yet taken the items

    def post(self, call_soon: CallSoon, callback: Callable[..., object], *args: Any) -> bool:
        """From any thread: run ``callback(*args)`` on the loop that ``call_soon`` (an
        exchange's ``call_soon_threadsafe``) belongs to. False when that loop is closed."""
        with self._lock:
            self._items.append((call_soon, callback, args))
            if self._pending:
                return True
            self._pending = True
        try:
            call_soon(self._deliver)
        except RuntimeError:
            return self._hand_over_one_by_one()
        return True

    def _deliver(self) -> None:
        """Loop thread: run everything posted so far, in order."""
        with self._lock:
            items, self._items = self._items, []
            self._pending = False
        for _, callback, args in items:
            try:
                callback(*args)
            except Exception:
                log.exception("unhandled exception in a WSGI hand-off to the loop")

    def _hand_over_one_by_one(self) -> bool:
        """The loop asked to deliver is closed: give each waiting item to its own loop.
        Returns False: the item being posted belonged to the closed loop."""
        with self._lock:
            items, self._items = self._items, []
            self._pending = False
        for call_soon, callback, args in items:
            try:
                call_soon(callback, *args)
            except RuntimeError:
                continue  # its loop is gone: nobody is left to answer
        return False
