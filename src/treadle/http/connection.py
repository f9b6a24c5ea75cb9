"""The server side of one HTTP/1.1 connection, without I/O.

Theory of operation. A connection is a sequence of cycles, each one request and its
response. Two small state machines, one per direction, run side by side:

    their side (requests)        our side (responses)
    -------------------------    ------------------------------------------
    HEAD   waiting for a head    IDLE   nothing sent yet (1xx allowed)
    BODY   reading the body      BODY   head sent, body being sent
    DONE   request complete      DONE   response complete
    ERROR  bad bytes received

    cycle transitions (the whole table; nothing else moves a cycle on):
      their DONE and our DONE, keep-alive   -> both back to HEAD / IDLE (next request)
      their DONE and our DONE, closing      -> stay; next_event answers PAUSED for good
      their ERROR                           -> stays ERROR; next_event raises again

While their side is DONE and ours is not, ``next_event`` answers ``PAUSED``: pipelined
requests wait in the buffer, so responses can never be reordered. When our response is
complete first (an early 413, say) their side keeps reading the body, which the session
discards, and the cycle moves on once it ends.

Keep-alive is the conjunction of what the client asked for (``Request.keep_alive``)
and what our side decided (a ``Connection: close`` from the application, a
close-delimited body, an error). ``keep_alive`` tells the session, after a response, to
close once the output is flushed.
"""

from __future__ import annotations

import enum

from .errors import LocalProtocolError, ProtocolError
from .events import (
    END_OF_MESSAGE,
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    Sentinel,
)
from .readers import (
    NO_BODY,
    BodyReader,
    ChunkedReader,
    ContentLengthReader,
    Limits,
    ReceiveBuffer,
    check_head,
    parse_request_head,
)
from .writer import (
    OWN_DATE,
    OWN_SERVER,
    PreparedFields,
    ResponseDefaults,
    encode_field,
    serialize_fields,
    status_line,
)

Event = Request | Data | EndOfMessage | ConnectionClosed | Sentinel


class _Their(enum.Enum):
    HEAD = 0
    BODY = 1
    DONE = 2
    ERROR = 3
    CLOSED = 4


class _Ours(enum.Enum):
    IDLE = 0
    BODY = 1
    DONE = 2


_HEAD, _BODY, _DONE, _ERROR, _CLOSED = (
    _Their.HEAD,
    _Their.BODY,
    _Their.DONE,
    _Their.ERROR,
    _Their.CLOSED,
)
_IDLE, _SENDING, _SENT = _Ours.IDLE, _Ours.BODY, _Ours.DONE

# Body framing of the response being sent.
_FRAMING_LENGTH, _FRAMING_CHUNKED, _FRAMING_CLOSE, _FRAMING_NONE = range(4)

# RFC 9110 6.4.1: these responses never have content.
_NO_CONTENT_STATUSES = frozenset({204, 304})

_DEFAULT_LIMITS = Limits()


class ServerConnection:
    """Bytes in, events out; events in, bytes out — for one client connection."""

    # Slots: no per-connection attribute dictionary (a connection can sit idle for a
    # long time; 10,000 of them should cost little) and quicker attribute access.
    __slots__ = (
        "limits",
        "defaults",
        "_buf",
        "their_eof",
        "_their",
        "_ours",
        "_reader",
        "_scanned",
        "_lines",
        "_error",
        "request",
        "keep_alive",
        "_continue_sent",
        "_framing",
        "_remaining",
    )

    def __init__(
        self, limits: Limits | None = None, defaults: ResponseDefaults | None = None
    ) -> None:
        self.limits = limits if limits is not None else _DEFAULT_LIMITS
        self.defaults = defaults if defaults is not None else ResponseDefaults()
        self._buf = ReceiveBuffer()
        #: whether the end of input has been received (read it, never set it)
        self.their_eof = False
        self._their = _HEAD
        self._ours = _IDLE
        self._reader: BodyReader = NO_BODY
        self._scanned = 0  # bytes of an incomplete head already checked
        self._lines = 0  # line ends among them
        self._error: ProtocolError | None = None
        #: the request of the current cycle, None before its head is parsed
        self.request: Request | None = None
        #: False once this connection must close after the current response (read it,
        #: never set it)
        self.keep_alive = True
        self._continue_sent = False
        self._framing = _FRAMING_NONE
        self._remaining = 0

    # ----------------------------------------------------------------- receiving

    def receive_data(self, data: bytes) -> None:
        """Add received bytes; ``b""`` means the peer will send no more."""
        if data:
            if self.their_eof:
                raise RuntimeError("data received after end of input")
            buf = self._buf  # ReceiveBuffer.feed, inlined: this runs once per recv
            if buf.pos >= len(buf.data):
                buf.data = data
            else:
                buf.data = buf.data[buf.pos :] + data
            buf.pos = 0
        else:
            self.their_eof = True

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed."""
        buf = self._buf
        return len(buf.data) - buf.pos

    def next_event(self) -> Event:
        """Return the next received event, NEED_DATA or PAUSED.

        Raises ProtocolError (with the status to answer) for bad input, and again on
        every later call: nothing after a bad request is ever parsed.
        """
        their = self._their
        if their is _BODY:
            if self._reader is NO_BODY:
                # The common request has no body: its end is certain, and needs neither
                # a reader call nor an EOF check (what _read_body would conclude).
                self._their = _DONE
                if self._ours is _SENT:
                    self._start_next_cycle()
                return END_OF_MESSAGE
            return self._read_body()
        if their is _HEAD:
            buf = self._buf
            if buf.pos >= len(buf.data) and not self.their_eof:
                return NEED_DATA  # the common end of a turn: everything consumed
            return self._read_head()
        if their is _DONE:
            return PAUSED
        if their is _ERROR:
            assert self._error is not None
            raise self._error
        return ConnectionClosed()

    def _read_head(self) -> Event:
        buf = self._buf
        data, pos = buf.data, buf.pos
        # RFC 9112 2.2: empty lines before a request line are ignored.
        if data.startswith(b"\r\n", pos):
            while data.startswith(b"\r\n", pos):
                pos += 2
            buf.pos = pos
            self._scanned = self._lines = 0
        # _scanned counts the unconsumed bytes already searched (relative to pos, which
        # stays valid when feed() moves the unconsumed bytes to the front).
        end = data.find(b"\r\n\r\n", pos + max(0, self._scanned - 3))
        if end < 0:
            return self._wait_for_head()
        try:
            request = parse_request_head(data, pos, end, self.limits)
        except ProtocolError as error:
            return self._fail(error)
        if end + 4 == len(data):
            buf.data, buf.pos = b"", 0  # all consumed: an idle connection holds no bytes
        else:
            buf.pos = end + 4
        self._scanned = self._lines = 0
        self.request = request
        self.keep_alive = request.keep_alive
        self._continue_sent = False
        if request.chunked:
            self._reader = ChunkedReader(self.limits)
        elif request.content_length:
            self._reader = ContentLengthReader(request.content_length)
        else:
            self._reader = NO_BODY
        self._their = _BODY
        return request

    def _wait_for_head(self) -> Event:
        buf = self._buf
        if buf.pos >= len(buf.data):
            self._scanned = self._lines = 0
            if self.their_eof:
                self._their = _CLOSED
                self.keep_alive = False
                return ConnectionClosed()
            return NEED_DATA
        try:
            self._scanned, self._lines = check_head(
                buf.data, buf.pos, len(buf.data), -1, self._scanned, self._lines, self.limits
            )
        except ProtocolError as error:
            return self._fail(error)
        if self.their_eof:
            return self._fail(
                ProtocolError(400, "connection closed in the middle of a request head")
            )
        return NEED_DATA

    def _read_body(self) -> Event:
        try:
            event = self._reader.read(self._buf)
            if event is NEED_DATA and self.their_eof:
                self._reader.check_eof()
        except ProtocolError as error:
            return self._fail(error)
        if type(event) is not Data and event is not NEED_DATA:
            self._their = _DONE
            if self._ours is _SENT:
                self._start_next_cycle()
        return event

    def _fail(self, error: ProtocolError) -> Event:
        self._error = error
        self._their = _ERROR
        self.keep_alive = False
        raise error

    # ------------------------------------------------------------------- sending

    @property
    def request_done(self) -> bool:
        """Whether the current request has been read to its end (nothing more of it can
        arrive): a connection closing now need not linger for it."""
        their = self._their
        return their is _DONE or (their is _BODY and self._reader is NO_BODY)

    @property
    def response_started(self) -> bool:
        """Whether a final response head of the current cycle has been produced."""
        return self._ours is not _IDLE

    @property
    def continue_sent(self) -> bool:
        """Whether ``100 Continue`` has been sent in the current cycle."""
        return self._continue_sent

    def send(self, event: Response | InformationalResponse | Data | EndOfMessage) -> bytes:
        """Serialise one outgoing event; raises LocalProtocolError when it cannot be."""
        kind = type(event)
        if kind is Data:
            return self._send_data(event.data)  # type: ignore[union-attr]
        if kind is EndOfMessage:
            return self._send_end()
        if kind is Response:
            return self._send_head(event)  # type: ignore[arg-type]
        if kind is InformationalResponse:
            return self._send_informational(event)  # type: ignore[arg-type]
        raise LocalProtocolError(f"cannot send {event!r}")

    def send_response(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]] | list[tuple[str, str]] | PreparedFields,
        body: bytes = b"",
    ) -> bytes:
        """A whole response with a known body, in one piece (the common fast path)."""
        request = self._check_can_respond(status)
        parts = [status_line(status)]
        if type(headers) is PreparedFields:
            parts.append(headers.lines)
            length_given, chunked_asked, close, own = None, False, False, headers.own
        else:
            length_given, chunked_asked, close, own = serialize_fields(headers, parts)  # type: ignore[arg-type]
        if chunked_asked:
            raise LocalProtocolError("send_response frames the body itself")
        keep_alive = self.keep_alive and not close
        if status in _NO_CONTENT_STATUSES:
            if status == 304 and length_given is not None:
                parts.append(b"content-length: " + length_given + b"\r\n")
            body = b""
        else:
            if length_given is not None and length_given != b"%d" % len(body):
                if request.method != b"HEAD" or not length_given.isdigit():
                    raise LocalProtocolError("Content-Length does not match the body")
                parts.append(b"content-length: " + length_given + b"\r\n")
            else:
                parts.append(b"content-length: %d\r\n" % len(body))
            if request.method == b"HEAD":
                body = b""
        self._add_closing_fields(parts, keep_alive, request, own)
        parts.append(b"\r\n")
        parts.append(body)
        self._ours = _SENT
        if self._their is _DONE:
            self._start_next_cycle()
        return b"".join(parts)

    def _check_can_respond(self, status: int) -> Request:
        if self._ours is not _IDLE:
            raise LocalProtocolError("a response has already been started")
        request = self.request
        if request is None or self._their is _HEAD or self._their is _ERROR:
            raise LocalProtocolError("no request to respond to")
        if status < 200:
            raise LocalProtocolError("use InformationalResponse for 1xx")
        return request

    def _add_closing_fields(
        self, parts: list[bytes], keep_alive: bool, request: Request, own: int
    ) -> None:
        if (
            keep_alive
            and request.expect_continue
            and request.has_body
            and not self._continue_sent
            and self._their is not _DONE
        ):
            # The client may still be waiting to send the body it announced; we cannot
            # tell where the next request would start. Close instead.
            keep_alive = False
        defaults = self.defaults
        if not own:
            parts.append(defaults.fields)
        else:  # the application wrote its own Date or Server: ours gives way
            if not own & OWN_DATE and defaults.date:
                parts.append(b"date: " + defaults.date + b"\r\n")
            if not own & OWN_SERVER and defaults.server:
                parts.append(b"server: " + defaults.server + b"\r\n")
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        elif request.http_version == b"1.0":
            parts.append(b"connection: keep-alive\r\n")
        self.keep_alive = keep_alive

    def _send_head(self, response: Response) -> bytes:
        status = response.status
        request = self._check_can_respond(status)
        parts = [status_line(status, response.reason)]
        length_given, chunked_asked, close, own = serialize_fields(response.headers, parts)
        keep_alive = self.keep_alive and not close
        length: int | None = None
        if length_given is not None:
            if not length_given.isdigit():
                raise LocalProtocolError(f"invalid Content-Length {length_given!r}")
            length = int(length_given)

        if status in _NO_CONTENT_STATUSES or request.method == b"HEAD":
            framing = _FRAMING_NONE
        elif length is not None and not chunked_asked:
            framing = _FRAMING_LENGTH
        elif request.http_version == b"1.1":
            framing = _FRAMING_CHUNKED
            parts.append(b"transfer-encoding: chunked\r\n")
            length = None
        else:
            # RFC 9112 6.3 item 8: an HTTP/1.0 client reads to the end of the connection.
            framing = _FRAMING_CLOSE
            keep_alive = False
            length = None
        if length is not None and status != 204:
            parts.append(b"content-length: %d\r\n" % length)
        self._add_closing_fields(parts, keep_alive, request, own)
        parts.append(b"\r\n")
        self._framing = framing
        self._remaining = length or 0
        self._ours = _SENDING
        return b"".join(parts)

    def _send_informational(self, response: InformationalResponse) -> bytes:
        if not 100 <= response.status < 200:
            raise LocalProtocolError(f"{response.status} is not an informational status")
        if self._ours is not _IDLE or self.request is None:
            raise LocalProtocolError("an interim response must come before the final one")
        if self.request.http_version != b"1.1":
            # RFC 9110 15.2: no 1xx to an HTTP/1.0 client.
            return b""
        parts = [status_line(response.status, response.reason)]
        for name, value in response.headers:
            name_b, value_b = encode_field(name, value)
            parts.append(name_b + b": " + value_b + b"\r\n")
        parts.append(b"\r\n")
        if response.status == 100:
            self._continue_sent = True
        return b"".join(parts)

    def _send_data(self, data: bytes) -> bytes:
        if self._ours is not _SENDING:
            raise LocalProtocolError("body data outside a response body")
        framing = self._framing
        if framing == _FRAMING_CHUNKED:
            if not data:
                return b""
            return b"%x\r\n" % len(data) + data + b"\r\n"
        if framing == _FRAMING_LENGTH:
            if len(data) > self._remaining:
                self.keep_alive = False
                raise LocalProtocolError(
                    f"body longer than its Content-Length ({len(data)} > {self._remaining} left)"
                )
            self._remaining -= len(data)
            return data
        if framing == _FRAMING_CLOSE:
            return data
        return b""  # HEAD, 204, 304: the body is dropped

    def frame_segment(self, count: int) -> tuple[bytes, bytes] | None:
        """The framing around ``count`` body bytes that the caller sends itself (a file
        segment sent with ``sendfile``): ``(before, after)``, or None when nothing is to
        be sent (HEAD, 204, 304, or ``count`` 0). The bytes are never read here.

        Raises LocalProtocolError as ``send(Data(...))`` would for the same length.
        """
        if self._ours is not _SENDING:
            raise LocalProtocolError("body data outside a response body")
        framing = self._framing
        if count <= 0 or framing == _FRAMING_NONE:
            return None
        if framing == _FRAMING_CHUNKED:
            return b"%x\r\n" % count, b"\r\n"
        if framing == _FRAMING_LENGTH:
            if count > self._remaining:
                self.keep_alive = False
                raise LocalProtocolError(
                    f"body longer than its Content-Length ({count} > {self._remaining} left)"
                )
            self._remaining -= count
        return b"", b""

    def _send_end(self) -> bytes:
        if self._ours is not _SENDING:
            raise LocalProtocolError("end of message outside a response body")
        out = b""
        if self._framing == _FRAMING_CHUNKED:
            out = b"0\r\n\r\n"
        elif self._framing == _FRAMING_LENGTH and self._remaining:
            # The client would wait for bytes that never come: the only safe end is to
            # close. The session closes when keep_alive is False.
            self.keep_alive = False
            self._ours = _SENT
            raise LocalProtocolError(
                f"body ended {self._remaining} bytes short of its Content-Length"
            )
        self._ours = _SENT
        if self._their is _DONE:
            self._start_next_cycle()
        return out

    def _start_next_cycle(self) -> None:
        if not self.keep_alive:
            return  # their side stays DONE: next_event answers PAUSED until we close
        self._their = _HEAD
        self._ours = _IDLE
        self.request = None
        self._framing = _FRAMING_NONE
