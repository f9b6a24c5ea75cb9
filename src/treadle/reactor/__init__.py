"""The reactor: the one dispatch loop, its deadline (timer) queue, and the waker.

``Reactor`` runs I/O handlers, timers and callbacks on one thread; ``DeadlineQueue`` and
``Deadline`` are its timers; ``Waker`` is how other threads and signals interrupt its
wait. Imports point down only: this package uses ``treadle.poll`` and nothing above.
"""

from __future__ import annotations

from .deadlines import Deadline, DeadlineQueue
from .loop import IOHandler, Reactor
from .waker import Waker

__all__ = ["Deadline", "DeadlineQueue", "IOHandler", "Reactor", "Waker"]
