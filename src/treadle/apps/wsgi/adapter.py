"""WSGI (PEP 3333) applications served through the server's ``Exchange``.

Threads and the loop. A WSGI application may block, so ``WSGIApplication`` hands each
request to a worker thread (``pool.py``) and returns at once; the loop goes on serving
every other connection. Only the loop thread ever touches an exchange: the worker
sends its answer back through ``exchange.call_soon_threadsafe`` (the reactor's
waker), and the loop calls the exchange. With ``threads=0`` the application runs
inline on the loop thread instead, for applications that never block.

The common case is one hand-off each way. The loop submits the request (a notify to
an idle worker); the worker builds the environ, calls the application, and when it
returns a list (or a tuple) of bytes after ``start_response``, joins it, calls
``close()`` if there is one, and hands the loop one ``respond`` of the whole body, with
its Content-Length. Anything else is streamed through a ``ResponseOutput`` (``output.py``):
pieces in order, flow-controlled against the client, with hand-offs coalesced; a
generator that yields once still ends as one ``respond``. A ``wsgi.file_wrapper`` of a
regular file goes out as a ``FileSegment`` (``sendfile``), never read by the worker.

Endings. ``close()`` of the application's iterable is called exactly once, on the
worker, when iteration ends: normally, by an exception, or because the client went
away (the exchange's ``on_finish`` wakes a worker blocked on writing or on
``wsgi.input``, and the blocked call raises ``ClientDisconnected``). It is called
before the hand-off that ends the response: a response answered whole (a list, or a
generator whose pieces were all handed over together) and a chunked one reach their
end on the wire only after ``close()`` has run. A failure (in the application, its iterable, its
``close()``, or a ``start_response`` that refused the status or a field) goes through
the server's guard on the loop thread: the traceback is logged and the client gets a
500 when nothing was sent yet, else the connection is closed, never a second status
line. A request that arrives while every thread is busy and ``queue_size`` requests
already wait is answered 503 with Retry-After at once, on the loop thread.

PEP 3333 details: headers are not sent before the first non-empty piece of the body,
the first ``write()``, or the application's return; ``start_response`` with
``exc_info`` re-raises once the head was handed over and replaces the head before
that; calling it a second time without ``exc_info`` is an error. The reason phrase of
the status is checked but the server writes the standard phrase of the code.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import IO, TYPE_CHECKING

from ...config import parse_bind
from ...server import Exchange
from .body import CollectedInput
from .calls import InlineCall, WorkerCall
from .environ import Environ, EnvironBuilder, ErrorStream
from .files import FileWrapper
from .handoff import LoopInbox
from .pool import WorkerPool

if TYPE_CHECKING:
    from ...config import Settings

log = logging.getLogger("treadle.wsgi")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Write = Callable[[bytes], None]
StartResponse = Callable[..., Write]
WSGICallable = Callable[[Environ, StartResponse], Iterable[bytes]]

_NO_BODY_STATUSES = (204, 304)
_BUSY_BODY = b"503 Service Unavailable\nevery worker thread is busy; try again shortly\n"


class WSGIApplication:
    """Adapts a WSGI callable to the server's ``Application`` interface.

    ``threads`` worker threads (0: inline on the loop), ``queue_size`` requests that
    may wait for one, ``root_path`` the SCRIPT_NAME the application is mounted at.
    Call ``close()`` when the server has closed its connections: it stops and joins the
    worker threads.
    """

    def __init__(
        self,
        app: WSGICallable,
        *,
        threads: int = 8,
        queue_size: int = 1024,
        root_path: str = "",
        server_address: tuple[str, int] = ("127.0.0.1", 8000),
        input_buffer_bytes: int = 256 * 1024,
        output_buffer_bytes: int = 256 * 1024,
        spool_bytes: int = 1024 * 1024,
        retry_after_s: int = 1,
    ) -> None:
        if threads < 0:
            raise ValueError("threads must not be negative")
        self.app = app
        self.threads = threads
        self.errors = ErrorStream()
        self.environ = EnvironBuilder(
            root_path=root_path,
            multithread=threads > 0,
            server_address=server_address,
            errors=self.errors,
            file_wrapper=FileWrapper,
        )
        self.pool: WorkerPool | None = WorkerPool(threads, queue_size) if threads else None
        self.input_buffer_bytes = input_buffer_bytes
        self.output_buffer_bytes = output_buffer_bytes
        self.spool_bytes = spool_bytes
        self._busy_fields = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"retry-after", b"%d" % retry_after_s),
        ]
        self._saturated = False
        # one per loop thread that calls us (see handoff.py)
        self._inboxes: dict[int, LoopInbox] = {}

    @classmethod
    def from_settings(cls, app: WSGICallable, settings: Settings) -> WSGIApplication:
        """The adapter that ``treadle run`` builds: threads, queue, root path and
        buffer sizes from the settings table."""
        host, port = parse_bind(settings.bind[0])
        return cls(
            app,
            threads=settings.threads,
            queue_size=settings.queue_size,
            root_path=settings.root_path,
            server_address=(host, port),
            input_buffer_bytes=settings.write_high_water,
            output_buffer_bytes=settings.write_high_water,
            spool_bytes=settings.body_buffer_bytes,
        )

    # ------------------------------------------------------------ loop thread

    def __call__(self, exchange: Exchange) -> None:
        pool = self.pool
        if pool is None:
            self._inline(exchange)
            return
        thread = threading.get_ident()
        inbox = self._inboxes.get(thread)
        if inbox is None:
            inbox = self._inboxes[thread] = LoopInbox()
        call = WorkerCall(self, exchange, inbox)
        if not pool.submit(call.run):
            self._refuse(exchange)
            return
        self._saturated = False
        if call.input is not None:
            call.input.hold()
        exchange.on_finish(call.on_finish)

    def _refuse(self, exchange: Exchange) -> None:
        if not self._saturated:
            self._saturated = True
            assert self.pool is not None
            log.warning(
                "all %d WSGI worker threads are busy and %d requests wait: answering 503",
                self.pool.threads,
                self.pool.queue_size,
            )
        exchange.respond(503, self._busy_fields, _BUSY_BODY)

    def _inline(self, exchange: Exchange) -> None:
        body = exchange.body
        if body is not None:
            InlineCall(self, exchange).run(io.BytesIO(body), len(body))
            return
        stream = exchange.stream
        assert stream is not None

        def collected(spooled: IO[bytes], size: int) -> None:
            try:
                InlineCall(self, exchange).run(spooled, size)
            finally:
                spooled.close()

        CollectedInput(stream, collected, self.spool_bytes)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the worker threads (each finishes the request it runs), waiting at most
        ``timeout_s``. Call once the server has closed its connections."""
        if self.pool is not None:
            self.pool.close(timeout_s)
