"""One WSGI call: the environ, ``start_response``, ``write()`` and the response's way out.

``WorkerCall`` runs on a worker thread and hands every answer to the loop through the
exchange's ``call_soon_threadsafe`` (``handoff.py`` batches them); ``InlineCall`` runs
on the loop itself (``--threads 0``). Both share ``Call``: the PEP 3333 rules of
``start_response`` (``exc_info``, a head not sent before the first body byte) and what
makes a file wrapper a ``FileSegment``. ``adapter.py`` says how they are chosen and
how the endings work.
"""

from __future__ import annotations

import abc
import io
import logging
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from ...server import Exchange, FileSegment
from .body import ClientDisconnected, StreamedInput
from .files import FileWrapper
from .handoff import LoopInbox
from .output import END, Failure, Head, ResponseOutput
from .validation import HeaderFields, content_length, encode_headers, parse_status

if TYPE_CHECKING:
    from .adapter import WSGIApplication

log = logging.getLogger("treadle.wsgi")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Write = Callable[[bytes], None]

_NO_BODY_STATUSES = (204, 304)


def _reraise(error: BaseException) -> None:
    raise error


# How the server's guard names the failing code in its log line.
_reraise.__qualname__ = "WSGI application"


def as_bytes(piece: object) -> bytes:
    """A body piece as bytes; raises TypeError for anything not bytes-like (str)."""
    if type(piece) is bytes:
        return piece
    if isinstance(piece, str):
        raise TypeError("a WSGI body must be made of bytes, not str")
    try:
        return memoryview(piece).tobytes()  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"a WSGI body must be made of bytes, not {type(piece).__name__}") from None


def _join(result: list[Any] | tuple[Any, ...]) -> bytes:
    if len(result) == 1:
        return as_bytes(result[0])
    try:
        return b"".join(result)
    except TypeError:
        return b"".join(as_bytes(piece) for piece in result)


class Call(abc.ABC):
    """``start_response`` for one request: the head the application asked for."""

    __slots__ = ("adapter", "exchange", "status", "headers", "head_sent")

    def __init__(self, adapter: WSGIApplication, exchange: Exchange) -> None:
        self.adapter = adapter
        self.exchange = exchange
        self.status: int | None = None
        self.headers: HeaderFields = []
        #: the head was handed over (PEP 3333's "headers sent")
        self.head_sent = False

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Write:
        """PEP 3333's ``start_response``. Raises exc_info's exception once the head
        was handed over, RuntimeError when called again without exc_info, TypeError
        and ResponseRefused (a ValueError) for a status or field that cannot be sent."""
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self.status is not None:
            raise RuntimeError("start_response() called again without exc_info (PEP 3333)")
        code = parse_status(status)
        self.headers = encode_headers(headers)
        self.status = code
        return self.write

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """PEP 3333's ``write()`` callable: each kind of call sends it its own way."""

    def _head(self) -> int:
        status = self.status
        if status is None:
            raise RuntimeError("the application produced a body before calling start_response")
        return status

    def _whole_of(self, result: object) -> bytes | FileSegment | None:
        """The whole body when it is known at once: a list or tuple of pieces joined, or
        the file segment of a file wrapper; else None (the pieces are to be pulled)."""
        if type(result) is list or type(result) is tuple or isinstance(result, (list, tuple)):
            return _join(result)
        return self._segment_of(result)

    def _segment_of(self, result: object) -> FileSegment | None:
        """A file segment for a ``wsgi.file_wrapper`` result of a regular file, or None."""
        if type(result) is not FileWrapper:
            return None
        limit = content_length(self.headers)
        return result.segment(limit)

    def _with_length(self, segment: FileSegment) -> HeaderFields:
        headers = self.headers
        if content_length(headers) is None and self.status not in _NO_BODY_STATUSES:
            headers = [*headers, (b"content-length", b"%d" % segment.count)]
        return headers


class WorkerCall(Call):
    """One request on a worker thread. Methods named ``_on_loop_*``, ``on_finish`` and
    the constructor run on the loop thread; the rest on the worker."""

    __slots__ = (
        "request",
        "client",
        "body",
        "input",
        "output",
        "finished",
        "_call_soon",
        "_inbox",
    )

    def __init__(self, adapter: WSGIApplication, exchange: Exchange, inbox: LoopInbox) -> None:
        super().__init__(adapter, exchange)
        self._inbox = inbox
        self.request = exchange.request
        self.client = exchange.client
        self.body = exchange.body
        self._call_soon = exchange.call_soon_threadsafe
        stream = exchange.stream
        self.input: StreamedInput | None = (
            None
            if stream is None
            else StreamedInput(stream, self.handoff, adapter.input_buffer_bytes)
        )
        self.output: ResponseOutput | None = None
        #: set on the loop thread once the exchange has ended
        self.finished = False

    # ------------------------------------------------------------ loop thread

    def on_finish(self, ending: object) -> None:
        self.finished = True
        if self.input is not None:
            self.input.fail("the exchange ended before the body did")
        if self.output is not None:
            self.output.finish()

    def _on_loop_respond(self, status: int, headers: HeaderFields, body: bytes) -> None:
        if not self.exchange.finished:
            self.exchange.respond(status, headers, body)

    def _on_loop_send_file(self, status: int, headers: HeaderFields, segment: FileSegment) -> None:
        exchange = self.exchange
        if not exchange.finished:
            exchange.start(status, headers)
        if exchange.finished:
            segment.done()
            return
        exchange.write(segment)
        exchange.end()

    def _on_loop_abort(self, error: BaseException) -> None:
        if not self.exchange.finished:
            # Through the server's guard: the traceback is logged, the client gets a
            # 500 if nothing was sent, else the connection is closed.
            self.exchange.responder.call_app(_reraise, error)

    # ---------------------------------------------------------- worker thread

    def handoff(self, callback: Callable[..., object], *args: object) -> bool:
        """Run ``callback(*args)`` on the loop thread; False when the loop is closed."""
        return self._inbox.post(self._call_soon, callback, *args)

    def run(self) -> None:
        if self.finished:
            return  # the client went away while the request waited for a thread
        adapter = self.adapter
        try:
            body = self.body
            if body is None:
                body_input: Any = self.input
                length = None
            else:
                body_input = io.BytesIO(body)
                length = len(body)
            environ = adapter.environ.build(self.request, self.client, body_input, length)
            result = adapter.app(environ, self.start_response)
        except BaseException as error:
            adapter.errors.flush()
            self._fail(error)
            return
        whole: bytes | FileSegment | None = None
        failure: BaseException | None = None
        try:
            whole = self._produce(result)
        except BaseException as error:
            failure = error
        close = getattr(result, "close", None)
        if close is not None:
            try:
                close()
            except BaseException as error:
                if failure is None:
                    failure = error
                else:
                    log.exception("the close() of a failed WSGI response failed too")
        adapter.errors.flush()  # before the end goes out: what the request wrote is logged
        if failure is None:
            try:
                self._finish(whole)
            except BaseException as error:
                failure = error
        if failure is not None:
            if type(whole) is FileSegment:
                whole.done()
            self._fail(failure)

    def _produce(self, result: Iterable[bytes]) -> bytes | FileSegment | None:
        """Consume the application's iterable. Returns the whole body when it can go
        out with the head in one hand-off (a list, a file segment), else None (pieces
        were put on the output)."""
        if not self.head_sent:
            whole = self._whole_of(result)
            if whole is not None:
                return whole
        elif self.output is not None:
            segment = self._segment_of(result)
            if segment is not None:
                self.output.put(segment, segment.count)
                return None
        for piece in result:
            if type(piece) is not bytes:
                piece = as_bytes(piece)
            if piece:
                self._send(piece)
        return None

    def write(self, data: bytes) -> None:
        """PEP 3333's ``write()``: sends the head if it has not gone yet, then ``data``;
        waits while the client is behind. Raises ClientDisconnected once it is gone."""
        if type(data) is not bytes:
            data = as_bytes(data)
        if data or not self.head_sent:
            self._send(data)

    def _send(self, piece: bytes) -> None:
        output = self.output
        if output is None:
            status = self._head()
            self.head_sent = True
            self.output = output = ResponseOutput(
                self.exchange, self.handoff, self._abort, self.adapter.output_buffer_bytes
            )
            if self.finished:
                output.finish()
            output.put(Head(status, self.headers))
        if piece:
            output.put(piece, len(piece))

    def _abort(self, error: BaseException) -> None:
        self._on_loop_abort(error)

    def _finish(self, whole: bytes | FileSegment | None) -> None:
        if self.output is not None:
            self.output.put(END)
            return
        status = self._head()
        if type(whole) is FileSegment:
            if not self.handoff(self._on_loop_send_file, status, self._with_length(whole), whole):
                whole.done()
            return
        self.handoff(self._on_loop_respond, status, self.headers, whole or b"")

    def _fail(self, error: BaseException) -> None:
        if self.finished or isinstance(error, ClientDisconnected):
            if not isinstance(error, ClientDisconnected):
                log.warning(
                    "WSGI application failed after its exchange ended",
                    exc_info=(type(error), error, error.__traceback__),
                )
            return
        output = self.output
        if output is None:
            self.handoff(self._on_loop_abort, error)
            return
        try:
            output.put(Failure(error))
        except ClientDisconnected:
            pass


class InlineCall(Call):
    """One request run on the loop thread itself (``threads=0``)."""

    __slots__ = ()

    def run(self, body_input: IO[bytes], length: int | None) -> None:
        """Run the application and answer. Exceptions propagate to the server's guard
        (a 500, or a cut connection once the head went out), after ``close()``."""
        adapter = self.adapter
        exchange = self.exchange
        environ = adapter.environ.build(exchange.request, exchange.client, body_input, length)
        try:
            result = adapter.app(environ, self.start_response)
        finally:
            adapter.errors.flush()
        try:
            whole = self._answer(result)
        except BaseException:
            _close_quietly(result)
            raise
        finally:
            adapter.errors.flush()
        if whole is _HANDED_OVER:
            return
        try:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        except BaseException:
            if type(whole) is FileSegment:
                whole.done()
            raise
        if exchange.finished:
            if type(whole) is FileSegment:
                whole.done()
        elif whole is None:
            exchange.end()
        elif type(whole) is FileSegment:
            exchange.start(self._head(), self._with_length(whole))
            if exchange.finished:
                whole.done()
                return
            exchange.write(whole)
            exchange.end()
        else:
            exchange.respond(self._head(), self.headers, whole)  # type: ignore[arg-type]

    def _answer(self, result: Iterable[bytes]) -> bytes | FileSegment | object | None:
        """Answer from ``result``. Returns ``_HANDED_OVER`` when the exchange took the
        iterable (it calls ``close()``), the whole body when it can go out with the head
        (bytes, a file segment), or None when the head went out and the body was
        written (the caller ends it)."""
        exchange = self.exchange
        if self.head_sent:
            segment = self._segment_of(result)
            if segment is not None:
                if exchange.finished:
                    segment.done()
                    raise ClientDisconnected("the client went away, or the exchange ended")
                exchange.write(segment)
                return None
            for piece in result:
                self.write(piece)
            return None
        whole = self._whole_of(result)
        if whole is not None:
            return whole
        iterator = iter(result)
        for piece in iterator:
            if type(piece) is not bytes:
                piece = as_bytes(piece)
            if piece:
                if self.head_sent:  # the iterable called write() meanwhile
                    self.write(piece)
                    continue
                body = InlineBody(piece, iterator, getattr(result, "close", None))
                exchange.respond_iterable(self._head(), self.headers, body)
                return _HANDED_OVER
        return None if self.head_sent else b""

    def write(self, data: bytes) -> None:
        """``write()`` on the loop thread: queued at once, not flow-controlled."""
        if type(data) is not bytes:
            data = as_bytes(data)
        exchange = self.exchange
        if not self.head_sent:
            status = self._head()
            self.head_sent = True
            exchange.start(status, self.headers)
        if exchange.finished:
            raise ClientDisconnected("the client went away, or the exchange ended")
        if data:
            exchange.write(data)


_HANDED_OVER = object()


class InlineBody:
    """The rest of an inline application's iterable, pulled by the server as the
    client reads; ``close()`` is the application's."""

    __slots__ = ("_first", "_iterator", "_close")

    def __init__(
        self, first: bytes, iterator: Iterator[Any], close: Callable[[], object] | None
    ) -> None:
        self._first: bytes | None = first
        self._iterator = iterator
        self._close = close

    def __iter__(self) -> InlineBody:
        return self

    def __next__(self) -> bytes | FileSegment:
        first = self._first
        if first is not None:
            self._first = None
            return first
        piece = next(self._iterator)
        return piece if type(piece) is bytes else as_bytes(piece)

    def close(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            close()


def _close_quietly(result: object) -> None:
    close = getattr(result, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:
        log.exception("the close() of a failed WSGI response failed too")
