"""Helpers for poller tests: fill and drain a non-blocking socket, guard against hangs."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator


def fill(sock: socket.socket) -> int:
    """Send until the kernel refuses more; return how many bytes went in."""
    chunk = b"x" * 65536
    total = 0
    while True:
        try:
            total += sock.send(chunk)
        except BlockingIOError:
            # A smaller write can still fit after a big one is refused; insist until
            # even one byte does not, so "full" really means full.
            if len(chunk) == 1:
                return total
            chunk = chunk[: len(chunk) // 16 or 1]


def drain(sock: socket.socket) -> bytes:
    """Receive until EAGAIN (or EOF); return everything read."""
    parts = []
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            break
        if not data:
            break
        parts.append(data)
    return b"".join(parts)


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
