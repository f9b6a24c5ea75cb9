"""WSGI applications on the in-process harness: a real driver, worker threads, a fake clock.

The harness's own ``run_until`` turns the loop a fixed number of times without waiting,
which is right for code on the loop thread; a worker thread answers in its own time.
``Served.pump`` therefore turns the loop with a short bounded poll (the reactor's waker
ends it as soon as a worker hands something back) until a condition holds, failing past
a wall-clock deadline. Nothing sleeps.

``Served`` builds one harness around a ``WSGIApplication`` and closes both; several
served connections can share one adapter (``also``), which is how the tests fill the
worker pool. ``Gate`` is a threading.Event with a deadline, for applications that must
wait until the test lets them go on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from tests.server.helpers import Harness, ParsedResponse, parse_responses
from treadle.apps.wsgi import WSGIApplication

#: how long a test waits for something that should happen at once
DEADLINE_S = 10.0


#: every gate made in a test, opened at its teardown (see conftest)
GATES: list[Gate] = []


class Gate:
    """An event an application waits on; fails the application past the deadline."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reached = threading.Event()
        GATES.append(self)

    def wait(self) -> None:
        self.reached.set()
        if not self._event.wait(DEADLINE_S):
            raise TimeoutError("the test never opened the gate")

    def open(self) -> None:
        self._event.set()


def pump(harnesses: Iterable[Harness], predicate: Callable[[], bool], what: str = "") -> None:
    """Turn each harness's loop (a bounded poll each) until ``predicate()`` holds."""
    harnesses = list(harnesses)
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        for harness in harnesses:
            harness.reactor.run_once(0.005)


class Served:
    """One connection to ``adapter`` through a harness."""

    def __init__(self, make: Callable[..., Harness], adapter: WSGIApplication, **kwargs: Any):
        self.adapter = adapter
        self.harness = make(adapter, native=False, **kwargs)
        self.received = bytearray()
        self._outgoing = bytearray()

    def send(self, data: bytes) -> None:
        """Send ``data``: what the socket does not take now goes out as the loop turns."""
        self._outgoing += data
        self._send_some()

    def _send_some(self) -> None:
        while self._outgoing:
            try:
                sent = self.harness.peer.send(self._outgoing[:65536])
            except BlockingIOError:
                return
            del self._outgoing[:sent]

    def read_now(self) -> bytes:
        data = self.harness.read()
        self.received += data
        return data

    def pump(self, predicate: Callable[[], bool], what: str = "") -> None:
        def sending() -> bool:
            self._send_some()
            return predicate()

        pump([self.harness], sending, what)

    def responses(self, count: int = 1, *, eof: bool = False) -> list[ParsedResponse]:
        """Turn until ``count`` whole responses arrived (or, with ``eof``, until the
        server closed the connection); returns every response so far."""

        def arrived() -> bool:
            self.read_now()
            if eof:
                return self.harness.peer_eof
            return len(parse_responses(bytes(self.received), partial_ok=True)) >= count

        self.pump(arrived, f"{count} response(s)" if not eof else "the connection to close")
        return parse_responses(bytes(self.received), eof=self.harness.peer_eof, partial_ok=eof)

    def request(self, data: bytes) -> ParsedResponse:
        """Send one request, return its response (the last one received)."""
        before = len(parse_responses(bytes(self.received), partial_ok=True))
        self.send(data)
        return self.responses(before + 1)[-1]

    def wait_closed(self) -> bytes:
        """Turn until the server closed the connection; return everything received."""
        self.pump(lambda: bool(self.read_now() or True) and self.harness.peer_eof, "EOF")
        return bytes(self.received)


def simple(body: bytes = b"ok", status: str = "200 OK", headers: Any = None) -> Any:
    """A WSGI app answering ``body`` after one start_response."""
    fields = [("Content-Type", "text/plain")] if headers is None else headers

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, fields)
        return [body]

    return app


class Tracked:
    """A response iterable that counts its ``close()`` calls and the pieces pulled."""

    def __init__(
        self,
        pieces: Iterable[bytes],
        fail_after: int | None = None,
        before_each: Callable[[int], None] | None = None,
    ) -> None:
        self._pieces = iter(pieces)
        self.fail_after = fail_after
        self.before_each = before_each
        self.pulled = 0
        self.closes = 0
        self.closed = threading.Event()

    def __iter__(self) -> Tracked:
        return self

    def __next__(self) -> bytes:
        if self.fail_after is not None and self.pulled >= self.fail_after:
            raise RuntimeError("deliberate failure mid-iteration")
        if self.before_each is not None:
            self.before_each(self.pulled)
        piece = next(self._pieces)
        self.pulled += 1
        return piece

    def close(self) -> None:
        self.closes += 1
        self.closed.set()
