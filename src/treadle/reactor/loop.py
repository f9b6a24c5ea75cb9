"""The reactor: treadle's one loop, which turns readiness, deadlines and wake-ups into calls.

Everything the server does happens in a callback run from ``Reactor.run_once``: an I/O
handler because a descriptor is ready, a timer because its deadline passed, or a plain
callback queued with ``call_soon`` (from the loop) or ``call_soon_threadsafe`` (from a
worker thread, through the waker). Those three are run from this one method and nowhere
else, with one policy for errors: an exception that escapes is logged with its
traceback on the ``treadle.reactor`` logger at ERROR, and the loop goes on. (Exceptions
that are not ``Exception``, such as KeyboardInterrupt, leave ``run_once``; the events
not yet dispatched in that batch are lost, which with an edge-triggered poller means
lost for good.)

Stale events. A batch of events is a snapshot taken when ``poll`` returned; by the time
the fifth event is dispatched, the handler of the first may have closed the fifth's
connection, and an ``accept`` may even have been given the same descriptor number for a
new one. Dispatching the stale event to the new connection would read or write at the
wrong moment. So each registration remembers the batch number current when it was made,
and an event is delivered only to a registration older than its batch (nginx keeps an
"instance" bit in the epoll data for the same purpose; trio's essay "Some facts about
epoll" tells the story). Dropping is safe: a level-triggered poller reports the
readiness again on the next turn, and epoll reports the state of a freshly added
descriptor at once.

Signals. The Python-level handler only records the signal number and wakes the waker.
CPython runs that handler between bytecodes and then retries the interrupted ``poll``
(PEP 475), which returns at once because the waker is readable; the loop then queues the
registered callback, which runs on the loop thread. A signal that arrives just *before*
the wait starts would leave nothing to interrupt, so the waker's write end is also given
to ``signal.set_wakeup_fd``: the C-level handler writes there in any case.
"""

from __future__ import annotations

import logging
import signal
from collections import deque
from collections.abc import Callable
from time import monotonic
from types import FrameType
from typing import Any, Protocol, TypeAlias

from ..poll import EVENT_ERROR, EVENT_HANGUP, EVENT_READ, EVENT_WRITE, Poller, create_poller
from .deadlines import Deadline, DeadlineQueue
from .waker import Waker

logger = logging.getLogger("treadle.reactor")

_READ_OR_ERROR = EVENT_READ | EVENT_ERROR

#: what ``signal.signal`` returns and takes back
_SignalHandler: TypeAlias = "Callable[[int, FrameType | None], Any] | int | None"


class IOHandler(Protocol):
    """What the reactor calls when a descriptor is ready.

    Handlers must tolerate being called when nothing can be done (``recv`` or ``send``
    raising BlockingIOError): level-triggered readiness can be consumed by an earlier
    handler, and an edge-triggered poller reports readiness that was not asked for.
    """

    def handle_read(self) -> None:
        """The descriptor is readable, hung up or in error: ``recv`` will tell which."""

    def handle_write(self) -> None:
        """The descriptor is writable."""

    # Optional: ``handle_hangup()``, called just before ``handle_read`` when the poller
    # says the peer shut its side down (EVENT_HANGUP), so that a reader that stops at a
    # short read knows to go on to the end of input. asyncio's readers get no such
    # call; a handler must work without it on level-triggered pollers.


class _Registration:
    """One ``add_handler``: the bound methods (looked up once), the mask, the batch."""

    __slots__ = ("handler", "read", "write", "hangup", "events", "batch")

    def __init__(self, handler: IOHandler, events: int, batch: int) -> None:
        self.handler = handler
        self.read = handler.handle_read
        self.write = handler.handle_write
        self.hangup: Callable[[], object] | None = getattr(handler, "handle_hangup", None)
        self.events = events
        self.batch = batch


class _WakeHandler:
    """The waker's I/O handler: empty it, then queue the callbacks of pending signals."""

    def __init__(self, reactor: Reactor) -> None:
        self.handle_read = reactor._handle_wake

    def handle_write(self) -> None:
        """Never wanted; an edge-triggered poller reports the fresh socket writable."""


class Reactor:
    """The one dispatch loop.

    One iteration (``run_once``) does, in this order:

    1. Compute the timeout: 0 if callbacks are ready, else until the earliest deadline,
       else forever; capped by ``run_once``'s own ``timeout_s``.
    2. Poll.
    3. Dispatch I/O: for each ``(fd, events)``, READ or ERROR -> ``handle_read()``
       (preceded by ``handle_hangup()``, if the handler has one, on HANGUP),
       then WRITE -> ``handle_write()`` if the descriptor is still registered with the
       same registration. Events for descriptors removed (or removed and re-added)
       earlier in the batch are dropped.
    4. Fire the timers whose deadline has passed, in deadline order (ties in push
       order), reading the clock once.
    5. Run the callbacks that are queued when this step begins, in order; callbacks
       they queue wait for the next iteration (so one cannot starve the poll). Those
       queued by steps 3 and 4, by other threads or by signals run in this step.

    Threads: only ``call_soon_threadsafe`` and ``stop`` may be called from another
    thread. ``add_signal_handler`` and ``close`` (when signal handlers were added) must
    be called from the main thread, as Python requires.

    The reactor owns its poller: ``close()`` closes it. It does not own the descriptors
    of its handlers; remove a handler before closing its descriptor.
    """

    def __init__(
        self, poller: Poller | None = None, clock: Callable[[], float] = monotonic
    ) -> None:
        self.poller: Poller = create_poller("auto") if poller is None else poller
        self._clock = clock
        #: the reactor's clock, read now (the clock deadlines are measured on); the
        #: clock itself rather than a method around it: the driver reads it per request
        self.time: Callable[[], float] = clock
        self._handlers: dict[int, _Registration] = {}
        self._ready: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._deadlines = DeadlineQueue()
        # number of the batch being (or last) dispatched; see "Stale events"
        self._batch = 0
        self._stopping = False
        self._running = False
        self._closed = False
        self._signal_callbacks: dict[int, tuple[Callable[..., object], tuple[Any, ...]]] = {}
        self._previous_signal_handlers: dict[int, _SignalHandler] = {}
        self._previous_wakeup_fd: int | None = None
        # appended to by the signal handler, emptied by the loop; deque ops are atomic
        self._pending_signals: deque[int] = deque()
        self._waker = Waker()
        #: a call_soon_threadsafe wake-up byte is in the waker, not yet drained
        self._wake_pending = False
        self.add_handler(self._waker.fileno(), _WakeHandler(self), EVENT_READ)

    # -- descriptors -------------------------------------------------------------------

    def add_handler(self, fd: int, handler: IOHandler, events: int) -> None:
        """Watch ``fd`` for ``events`` and call ``handler`` when it is ready.

        Raises FileExistsError if ``fd`` already has a handler (remove it first), and
        whatever the poller raises (PollerFullError at capacity).
        """
        if fd in self._handlers:
            raise FileExistsError(f"fd {fd} already has a handler; remove_handler() it first")
        self.poller.register(fd, events)
        self._handlers[fd] = _Registration(handler, events, self._batch)

    def modify_handler(self, fd: int, events: int) -> None:
        """Change the events watched for ``fd``; the same mask again costs nothing.

        Raises FileNotFoundError if ``fd`` has no handler.
        """
        registration = self._handlers.get(fd)
        if registration is None:
            raise FileNotFoundError(f"fd {fd} has no handler")
        if registration.events != events:
            self.poller.modify(fd, events)
            registration.events = events

    def remove_handler(self, fd: int) -> None:
        """Stop watching ``fd``; pending events for it are dropped. Unknown fds are ignored."""
        if self._handlers.pop(fd, None) is not None:
            self.poller.unregister(fd)

    # -- callbacks and timers ----------------------------------------------------------

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` in this or the next iteration. Loop thread only."""
        self._ready.append((callback, args))

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> None:
        """Like ``call_soon``, from any thread: queues, then wakes the loop.

        Raises RuntimeError once the reactor is closed, so a late worker finds out.
        """
        if self._closed:
            raise RuntimeError("the reactor is closed")
        self._ready.append((callback, args))  # before the wake, so the loop sees it
        # One wake-up byte is enough until the loop has drained it: later callers find
        # their callback run by the same pass (it was queued before the pass's step 5).
        if not self._wake_pending:
            self._wake_pending = True
            self._waker.wake()

    def call_at(self, deadline: float, callback: Callable[..., object], *args: Any) -> Deadline:
        """Run ``callback(*args)`` once ``time()`` reaches ``deadline``. Loop thread only."""
        return self._deadlines.push(deadline, callback, *args)

    def call_later(self, timeout_s: float, callback: Callable[..., object], *args: Any) -> Deadline:
        """Run ``callback(*args)`` ``timeout_s`` seconds from now. Loop thread only."""
        return self._deadlines.push(self._clock() + timeout_s, callback, *args)

    # -- signals -----------------------------------------------------------------------

    def add_signal_handler(self, signum: int, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop thread each time ``signum`` arrives.

        Replaces an earlier callback for the same signal. Main thread only (Python
        raises ValueError elsewhere). The first call also makes the waker the process's
        ``signal.set_wakeup_fd`` (there is one per process, so a second reactor or an
        asyncio loop would take it over). ``close()`` restores the handlers and the
        wakeup fd found here.
        """
        if self._closed:
            raise RuntimeError("the reactor is closed")
        # the callback first: the signal may arrive as soon as the handler is in place
        self._signal_callbacks[signum] = (callback, args)
        if signum in self._previous_signal_handlers:
            return
        try:
            self._previous_signal_handlers[signum] = signal.signal(signum, self._on_signal)
        except BaseException:
            del self._signal_callbacks[signum]
            raise
        if self._previous_wakeup_fd is None:
            self._previous_wakeup_fd = signal.set_wakeup_fd(
                self._waker.write_fileno(), warn_on_full_buffer=False
            )

    def remove_signal_handler(self, signum: int) -> bool:
        """Restore the handler ``signum`` had before; return False if we had none."""
        if signum not in self._previous_signal_handlers:
            return False
        previous = self._previous_signal_handlers.pop(signum)
        self._signal_callbacks.pop(signum, None)
        # None: the previous handler was not installed from Python; SIG_DFL is its best
        # stand-in.
        signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        if not self._previous_signal_handlers and self._previous_wakeup_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            self._previous_wakeup_fd = None
        return True

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes, maybe in the middle of
        # run_once: only record and wake, touch nothing else.
        self._pending_signals.append(signum)
        self._waker.wake()

    def _handle_wake(self) -> None:
        # Drain first: a signal recorded after the drain leaves a byte for next time,
        # so none is lost between the two steps. The wake flag is cleared *after* the
        # drain: cleared before it, a thread could set it and write its byte in between,
        # the drain would eat that byte, and the flag would stay set with no byte behind
        # it, so every later call_soon_threadsafe would skip its wake-up (seen: WSGI at
        # 100 req/s). A thread that finds the flag still set here queued its callback
        # before this pass's step 5, which runs it.
        self._waker.drain()
        self._wake_pending = False
        pending = self._pending_signals
        while pending:
            entry = self._signal_callbacks.get(pending.popleft())
            if entry is not None:
                self._ready.append(entry)

    # -- running -----------------------------------------------------------------------

    def run_once(self, timeout_s: float | None = None) -> None:
        """Run one iteration (see the class docstring); wait at most ``timeout_s``.

        Raises whatever the poller raises (for instance EBADF from select when a
        descriptor was closed before its handler was removed).
        """
        # 1. timeout
        timeout: float | None
        if self._ready:
            timeout = 0.0
        else:
            deadline = self._deadlines.next_deadline()
            if deadline is None:
                timeout = timeout_s
            else:
                timeout = deadline - self._clock()
                if timeout_s is not None and timeout_s < timeout:
                    timeout = timeout_s

        # 2. poll
        events = self.poller.poll(timeout)

        # 3. I/O
        self._batch = batch = self._batch + 1
        handlers = self._handlers
        for fd, mask in events:
            registration = handlers.get(fd)
            if registration is None or registration.batch == batch:
                continue  # removed, or re-added, earlier in this batch: stale
            if mask & _READ_OR_ERROR:
                try:
                    if mask & EVENT_HANGUP and registration.hangup is not None:
                        registration.hangup()
                    registration.read()
                except Exception:
                    logger.exception("exception in handle_read of %r", registration.handler)
                if not mask & EVENT_WRITE or handlers.get(fd) is not registration:
                    continue
            elif not mask & EVENT_WRITE:
                continue
            try:
                registration.write()
            except Exception:
                logger.exception("exception in handle_write of %r", registration.handler)

        # 4. timers
        deadlines = self._deadlines
        head = deadlines.next_deadline()
        if head is not None:
            now = self._clock()
            if head <= now:
                for timer in deadlines.pop_due(now):
                    if timer.cancelled:
                        continue  # cancelled by a timer that ran before it
                    try:
                        timer.callback(*timer.args)
                    except Exception:
                        logger.exception("exception in timer %r", timer)

        # 5. callbacks queued before this step
        ready = self._ready
        for _ in range(len(ready)):
            callback, args = ready.popleft()
            try:
                callback(*args)
            except Exception:
                logger.exception("exception in callback %r", callback)

    def run_forever(self) -> None:
        """Run iterations until ``stop()``.

        A ``stop()`` made before this call makes it return after one iteration.
        Raises RuntimeError if the reactor is already running or closed.
        """
        if self._running:
            raise RuntimeError("the reactor is already running")
        if self._closed:
            raise RuntimeError("the reactor is closed")
        self._running = True
        try:
            while True:
                self.run_once()
                if self._stopping:
                    break
        finally:
            self._stopping = False
            self._running = False

    def stop(self) -> None:
        """Make ``run_forever`` return after the current iteration. Safe from any thread."""
        self._stopping = True
        self._waker.wake()

    def close(self) -> None:
        """Restore signal handlers, then close the poller and the waker. Safe to call twice.

        Raises RuntimeError while ``run_forever`` is running (``stop()`` it first).
        """
        if self._running:
            raise RuntimeError("cannot close a running reactor; stop() it first")
        if self._closed:
            return
        self._closed = True
        for signum in list(self._previous_signal_handlers):
            self.remove_signal_handler(signum)
        self._handlers.clear()
        self._ready.clear()
        self.poller.close()
        self._waker.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._running else "idle"
        return (
            f"<Reactor {state} poller={self.poller.name} handlers={len(self._handlers)}"
            f" timers={len(self._deadlines)} ready={len(self._ready)}>"
        )
