"""The deadline queue: a heap of timers where cancelling is O(1).

Words: a *deadline* is an absolute time on the reactor's clock; a *timeout* is a
duration. The queue only knows deadlines.

Why lazy cancellation. A server arms a timer for every phase of every connection (head,
body, keep-alive idle, write stall) and almost all of them are cancelled before they
fire, because the client did what it should in time. Removing an entry from the middle
of a heap costs a search; instead ``cancel`` only marks the handle and counts it, and
the dead entry is dropped when it reaches the top. Dead entries would pile up if timers
are armed and cancelled much faster than they come due, so when more than half of the
heap is dead (and it is not tiny) ``push`` rebuilds it from the live entries, which
costs O(n) once per O(n) cancellations: amortised O(1) each, and memory stays within
twice the live count.

Heap entries are ``(deadline, sequence, handle)`` tuples, so comparisons run in C, and
the sequence number breaks ties in push order (and keeps the handles from ever being
compared).

Not thread-safe: the queue belongs to the loop thread.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heapify, heappop, heappush
from typing import Any

#: below this many dead entries the heap is never rebuilt: not worth it
_COMPACT_MIN_DEAD = 64


class Deadline:
    """A handle on one timer: its ``deadline``, whether it was ``cancelled``, ``cancel()``.

    ``callback(*args)`` is what the reactor runs when the deadline is due.
    """

    __slots__ = ("deadline", "callback", "args", "cancelled", "_queue")

    def __init__(
        self,
        deadline: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        queue: DeadlineQueue,
    ) -> None:
        self.deadline = deadline
        self.callback = callback
        self.args = args
        self.cancelled = False
        # The queue while the handle is in its heap; None once popped, so that a late
        # cancel() of a timer that already fired does not count a dead entry.
        self._queue: DeadlineQueue | None = queue

    def cancel(self) -> None:
        """Stop this timer from firing. O(1); cancelling twice or after firing is harmless."""
        if self.cancelled:
            return
        self.cancelled = True
        queue = self._queue
        if queue is not None:
            self._queue = None
            queue._dead += 1

    def __repr__(self) -> str:
        state = " cancelled" if self.cancelled else ""
        return f"<Deadline at {self.deadline!r}{state} {self.callback!r}>"


class DeadlineQueue:
    """Timers ordered by deadline, then by push order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._sequence = 0
        # cancelled handles still in the heap
        self._dead = 0

    def push(self, deadline: float, callback: Callable[..., object], *args: Any) -> Deadline:
        """Schedule ``callback(*args)`` at ``deadline`` and return its handle."""
        if self._dead > _COMPACT_MIN_DEAD and self._dead * 2 > len(self._heap):
            self._compact()
        handle = Deadline(deadline, callback, args, self)
        self._sequence += 1
        heappush(self._heap, (deadline, self._sequence, handle))
        return handle

    def next_deadline(self) -> float | None:
        """Return the earliest live deadline, or None when no timer is pending.

        Dead entries found at the top are dropped on the way.
        """
        heap = self._heap
        while heap:
            head = heap[0]
            if not head[2].cancelled:
                return head[0]
            heappop(heap)
            self._dead -= 1
        return None

    def pop_due(self, now: float) -> list[Deadline]:
        """Remove and return the live timers whose deadline is at or before ``now``.

        They come in deadline order, ties in push order. A timer pushed while the
        returned ones run is not among them, even if already due: it waits for the next
        call, so a callback that re-arms itself at ``now`` cannot starve the loop. The
        caller should skip a handle whose ``cancelled`` became true while an earlier
        one ran.
        """
        heap = self._heap
        due: list[Deadline] = []
        while heap and heap[0][0] <= now:
            handle = heappop(heap)[2]
            if handle.cancelled:
                self._dead -= 1
            else:
                handle._queue = None
                due.append(handle)
        return due

    def __len__(self) -> int:
        """Return the number of live (not cancelled, not yet popped) timers."""
        return len(self._heap) - self._dead

    def _compact(self) -> None:
        # Rebuilding keeps the (deadline, sequence) keys, so order and ties are unchanged.
        live = [entry for entry in self._heap if not entry[2].cancelled]
        heapify(live)
        self._heap = live
        self._dead = 0

    def __repr__(self) -> str:
        return f"<DeadlineQueue live={len(self)} dead={self._dead}>"
