"""What tests of several layers share: a clock moved by hand and a guard against hangs."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "a monotonic clock does not go back"
        self.now += seconds


@contextlib.contextmanager
def hang_guard(seconds: float = 10.0) -> Iterator[None]:
    """Fail, rather than hang the run, if the body blocks for ``seconds``.

    A guard against a broken backend, not a timing assertion: the bound is far above
    anything a working backend needs.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
