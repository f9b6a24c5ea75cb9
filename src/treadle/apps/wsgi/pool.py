"""The worker threads that run WSGI applications, and the bounded queue in front of them.

A WSGI application may block (a database call, a sleep, a slow disk), so it runs off
the loop thread. ``submit`` is called on the loop thread and never waits: it hands the
job to an idle thread, starts another thread while fewer than ``threads`` exist (they
are started as load asks for them, so a quiet server holds one), or queues the job;
past ``queue_size`` waiting jobs it refuses, and the caller answers 503 at once rather
than letting a queue grow without bound while clients time out in it.

Threads are daemons: a thread stuck in application code cannot keep the process alive
after the server stopped. ``close`` stops taking jobs, lets each thread finish the job
it is running, drops those still queued and joins the threads, waiting at most its
deadline.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger("treadle.wsgi")

Job = Callable[[], object]

#: what tells a thread to end (one per thread, put by ``close``)
_STOP = object()


class WorkerPool:
    """Up to ``threads`` daemon threads taking jobs from a queue of ``queue_size``."""

    __slots__ = (
        "threads",
        "queue_size",
        "name",
        "_jobs",
        "_lock",
        "_idle",
        "_waiting",
        "_started",
        "_closed",
    )

    def __init__(self, threads: int, queue_size: int, name: str = "treadle-wsgi") -> None:
        if threads <= 0:
            raise ValueError("a worker pool needs at least one thread")
        if queue_size < 0:
            raise ValueError("the queue size must not be negative")
        self.threads = threads
        self.queue_size = queue_size
        self.name = name
        # A C queue: put and get cost a fraction of a Condition's Python-level wait and
        # notify, on the path every request takes.
        self._jobs: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting in get() that no queued job is reserved for
        self._waiting = 0  # queued jobs that no idle thread was reserved for
        self._started: list[threading.Thread] = []
        self._closed = False

    def submit(self, job: Job) -> bool:
        """Run ``job()`` on a worker thread soon. Returns False, without queueing it,
        when every thread is busy and the queue is full, or once the pool is closed.
        Called from one thread (the loop's)."""
        if self._closed:
            return False
        with self._lock:
            # Every queued job is spoken for: by an idle thread reserved here, or as one
            # of the ``_waiting`` that the next thread to finish a job takes. Counting
            # idle threads as they wait in get() instead would be wrong for the moment
            # between a thread's get() returning and its count going down: a job
            # queued then would wait behind a thread that is already busy.
            if self._idle:
                self._idle -= 1
            elif len(self._started) < self.threads:
                self._waiting += 1
                self._start_thread()
            elif self._waiting >= self.queue_size:
                return False
            else:
                self._waiting += 1
        self._jobs.put(job)
        return True

    @property
    def size(self) -> int:
        """Threads started so far."""
        return len(self._started)

    @property
    def busy(self) -> int:
        """Threads running a job (or about to take one)."""
        return len(self._started) - self._idle

    @property
    def queued(self) -> int:
        """Jobs waiting for a thread."""
        return self._waiting

    def close(self, timeout_s: float = 5.0) -> bool:
        """Stop: no new jobs, queued ones dropped, threads joined within ``timeout_s``.

        Returns True when every thread has ended. Safe to call twice.
        """
        dropped = 0
        if not self._closed:
            self._closed = True
            while True:
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    dropped += 1
            for _ in self._started:
                self._jobs.put(_STOP)
        if dropped:
            log.info("dropped %d queued WSGI request(s) at shutdown", dropped)
        deadline = time.monotonic() + timeout_s
        threads = list(self._started)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in threads if thread.is_alive()]
        if alive:
            log.warning(
                "%d worker thread(s) still running application code at shutdown: %s",
                len(alive),
                ", ".join(alive),
            )
        return not alive

    # ------------------------------------------------------------------ the threads

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self.name}-{len(self._started) + 1}", daemon=True
        )
        self._started.append(thread)
        thread.start()

    def _work(self) -> None:
        jobs = self._jobs
        lock = self._lock
        while True:
            with lock:
                if self._waiting:
                    self._waiting -= 1  # a job no idle thread was reserved for: ours
                else:
                    self._idle += 1  # the next submit reserves us
            job = jobs.get()
            if job is _STOP:
                return
            try:
                job()  # type: ignore[operator]
            except BaseException:  # a job guards itself; this is the last line of defence
                log.exception("unhandled exception in a WSGI worker thread")
            del job
