"""Reading requests: the receive buffer, the head parser and the body readers.

Theory of operation. Received bytes go into one ``ReceiveBuffer``. A request head is
parsed only once it is complete (its ``CRLF CRLF`` has arrived), in one go, with
C-speed primitives: one ``find`` for the end, one regex ``fullmatch`` for the request
line, one ``findall`` for every field line at once. While a head is incomplete the
parser only checks the limits and looks for bare line feeds in the new bytes, so a
client that dribbles a head byte by byte is refused as soon as it breaks a rule or a
limit, never after we buffered without bound.

A valid head yields a ``Request`` and a body reader chosen by its framing
(``ContentLengthReader``, ``ChunkedReader``, or none). Readers are small resumable
objects: each call consumes what it can and answers an event or ``NEED_DATA``.

The fast path only accepts; it never explains. When the quick checks fail, the slow
``_diagnose_*`` functions walk the offending lines to raise the precise error.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ProtocolError, shorten
from .events import END_OF_MESSAGE, NEED_DATA, Data, EndOfMessage, Request, Sentinel
from .grammar import (
    ABSOLUTE_FORM_RE,
    AUTHORITY_FORM_RE,
    CHUNK_SIZE_LINE_RE,
    CONTENT_LENGTH_RE,
    FIELD_LINE_RE,
    FIELD_VALUE_RE,
    HOST_RE,
    HTTP_VERSION_RE,
    REQUEST_LINE_RE,
    TOKEN_RE,
)
from .headers import EMPTY_HEADERS, Headers


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one request may make us hold, each with its own status."""

    #: request line, without its CRLF (414 URI Too Long past it)
    max_request_line_bytes: int = 8 * 1024
    #: field lines of the head, or of the trailers (431)
    max_header_bytes: int = 64 * 1024
    #: number of field lines (431)
    max_header_count: int = 100
    #: decoded body size (413 Content Too Large)
    max_body_bytes: int = 100 * 1024 * 1024
    #: one chunk-size line with its extensions (400: nobody needs more)
    max_chunk_line_bytes: int = 4 * 1024


class ReceiveBuffer:
    """Bytes received and not yet consumed: ``data[pos:]``.

    Consuming moves ``pos`` instead of copying; the common case (one request per
    ``recv``, consumed whole) never copies at all.
    """

    __slots__ = ("data", "pos")

    def __init__(self) -> None:
        self.data = b""
        self.pos = 0

    def feed(self, chunk: bytes) -> None:
        if self.pos >= len(self.data):
            self.data = chunk
        else:
            self.data = self.data[self.pos :] + chunk
        self.pos = 0

    def __len__(self) -> int:
        return len(self.data) - self.pos

    def take(self, size: int) -> bytes:
        """Consume and return up to ``size`` bytes."""
        data, pos = self.data, self.pos
        end = pos + size
        if end >= len(data):
            # Everything left: drop our reference, so an idle connection holds no bytes.
            self.data, self.pos = b"", 0
            return data if pos == 0 else data[pos:]
        self.pos = end
        return data[pos:end]


# ---------------------------------------------------------------------------------
# Request heads

_VERSIONS = {b"HTTP/1.1": b"1.1", b"HTTP/1.0": b"1.0"}


def check_head(
    data: bytes,
    start: int,
    stop: int,
    head_end: int,
    scanned: int,
    lines: int,
    limits: Limits,
    request_line: bool = True,
) -> tuple[int, int]:
    """Raise the first error, in byte order, that ``data[start:stop]`` shows so far.

    The errors a head can show before it is complete: a bare LF (400), too many field
    lines (431), a request line or a field section over its size limit (414, 431).
    Each is placed at the byte that reveals it and the earliest wins, so that where a
    client's bytes happen to be cut never changes the answer. ``head_end`` is where the
    terminating CRLF CRLF starts (-1 while it has not arrived). ``scanned`` bytes (from
    ``start``) were checked by earlier calls and held ``lines`` line ends; both are
    returned updated, so a head dribbled byte by byte is still looked at once.
    ``request_line`` False checks a trailer section, which has none.
    """
    limit_at = stop
    limit_error: tuple[int, str] | None = None
    if request_line:
        line_end = data.find(b"\r\n", start, stop)
        max_line = limits.max_request_line_bytes
        if line_end < 0 or line_end - start > max_line:
            # Too long once a byte past the limit arrives that is not the CR of the
            # line's CRLF (a CR there is decided by the byte after it).
            at = start + max_line
            if at < stop and (data[at] != 0x0D or at + 1 < stop):
                limit_at = at if data[at] != 0x0D else at + 1
                limit_error = (414, "request line too long")
            fields_start = -1
        else:
            fields_start = line_end + 2
    else:
        fields_start = start
    if fields_start >= 0:
        max_section = limits.max_header_bytes
        if (head_end < 0 or head_end - fields_start > max_section) and (
            fields_start + max_section + 3 < stop
        ):
            limit_at = fields_start + max_section + 3
            limit_error = (431, "header section too large")
    max_lines = limits.max_header_count + (1 if request_line else 0)
    lf = data.find(b"\n", start + scanned, limit_at)
    while lf >= 0:
        # RFC 9112 2.2: a bare LF as a line terminator is not accepted here (strict).
        if lf == start or data[lf - 1] != 0x0D:
            raise ProtocolError(400, "bare LF in header section")
        lines += 1
        if lines > max_lines and lf != head_end + 3:
            raise ProtocolError(431, f"more than {limits.max_header_count} fields")
        lf = data.find(b"\n", lf + 1, limit_at)
    if limit_error is not None:
        raise ProtocolError(*limit_error)
    return stop - start, lines


def parse_request_head(data: bytes, start: int, end: int, limits: Limits) -> Request:
    """Parse the head ``data[start:end]`` (followed by CRLF CRLF in ``data``).

    Returns the Request; raises ProtocolError with the status to answer. When several
    rules are broken, a limit or bare LF that comes earlier in the bytes wins over
    what only the complete head reveals, as it would have if the head had arrived
    in pieces.
    """
    try:
        return _parse_request_head(data, start, end, limits)
    except ProtocolError:
        check_head(data, start, end + 4, end, 0, 0, limits)
        raise


# Host values already found valid: a server sees the same few names again and again,
# and a set lookup is cheaper than the pattern. Bounded, so odd values cannot grow it.
_VALID_HOSTS: set[bytes] = set()
_VALID_HOSTS_MAX = 256


def _remember_valid_host(host: bytes) -> None:
    if len(_VALID_HOSTS) >= _VALID_HOSTS_MAX:
        _VALID_HOSTS.clear()
    _VALID_HOSTS.add(host)


def _parse_request_head(data: bytes, start: int, end: int, limits: Limits) -> Request:
    line_end = data.find(b"\r\n", start, end)
    if line_end < 0:
        line_end = fields_start = end
    else:
        fields_start = line_end + 2
    if line_end - start > limits.max_request_line_bytes:
        raise ProtocolError(414, "request line too long")
    if end - fields_start > limits.max_header_bytes:
        raise ProtocolError(431, "request header section too large")

    match = REQUEST_LINE_RE.fullmatch(data, start, line_end)
    if match is None:
        _diagnose_request_line(data[start:line_end])
    method, target, version_text = match.groups()  # type: ignore[union-attr]
    version = _VERSIONS.get(version_text)
    if version is None:
        version = _parse_other_version(version_text)

    if fields_start < end:
        headers = parse_fields(data, fields_start, end + 2, limits, "request")
    else:
        headers = Headers()

    # The semantics of the fields that frame or steer the request. A dict answers the
    # five lookups at C speed; repeated names (rare) are combined into one list value,
    # which is what RFC 9110 5.3 says they mean, by the slow path.
    fields = dict(headers)
    if len(fields) != len(headers):
        fields = _combine_repeated(headers)
    host = fields.get(b"host")
    content_length_value = fields.get(b"content-length")
    transfer_encoding = fields.get(b"transfer-encoding")
    connection = fields.get(b"connection")
    expect = fields.get(b"expect")

    # RFC 9112 3.2: a server MUST respond 400 to an HTTP/1.1 request without Host, and to
    # any request with more than one Host field line or an invalid Host value.
    if host is None:
        if version == b"1.1":
            raise ProtocolError(400, "missing Host field")
    elif host not in _VALID_HOSTS:
        if HOST_RE.fullmatch(host) is None:
            raise ProtocolError(400, f"invalid Host field {shorten(host)}")
        _remember_valid_host(host)

    content_length = None
    if content_length_value is not None:
        content_length = _parse_content_length(content_length_value)

    chunked = False
    if transfer_encoding is not None:
        # RFC 9112 6.1: Transfer-Encoding is an HTTP/1.1 feature; a 1.0 request that has it
        # cannot be framed safely (an intermediary may have ignored it), so it is refused.
        if version == b"1.0":
            raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
        # RFC 9112 6.3: with both present, Transfer-Encoding would override Content-Length;
        # two framings on one message is the classic smuggling shape, so refuse it outright.
        if content_length is not None:
            raise ProtocolError(400, "both Content-Length and Transfer-Encoding")
        _check_transfer_codings(_list_elements(transfer_encoding))
        chunked = True
    elif content_length is not None and content_length > limits.max_body_bytes:
        raise ProtocolError(413, f"body of {content_length} bytes is over the limit")

    if target[0] == 0x2F and method != b"CONNECT":  # origin-form, by far the most common
        path, _, query = target.partition(b"?")
    else:
        path, query, host = _split_target(method, target, host)

    if connection is None:
        keep_alive = version == b"1.1"
    else:
        lowered = connection.lower()
        if lowered == b"keep-alive":
            keep_alive = True
        elif lowered == b"close":
            keep_alive = False
        else:
            tokens = {token.lower() for token in _list_elements(connection)}
            keep_alive = b"close" not in tokens and (version == b"1.1" or b"keep-alive" in tokens)

    expect_continue = False
    if expect is not None:
        for expectation in _list_elements(expect):
            if expectation.lower() != b"100-continue":
                raise ProtocolError(417, f"unsupported expectation {shorten(expectation)}")
        # RFC 9110 10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored.
        expect_continue = version == b"1.1"

    return Request(
        method,
        target,
        version,
        headers,
        path,
        query,
        host,
        keep_alive,
        expect_continue,
        content_length,
        chunked,
    )


def parse_fields(data: bytes, start: int, end: int, limits: Limits, what: str) -> Headers:
    """Parse the field lines in ``data[start:end]``, each ending with CRLF.

    Returns them as Headers; raises ProtocolError 400 for a malformed line and 431 for
    too many.
    """
    pairs = FIELD_LINE_RE.findall(data, start, end)
    # One match per line when every line is valid (the pattern only matches at a line
    # start); otherwise find the bad one and say what is wrong with it.
    line_count = data.count(b"\n", start, end)
    if len(pairs) != line_count:
        _diagnose_fields(data[start:end])
    if line_count > limits.max_header_count:
        raise ProtocolError(431, f"more than {limits.max_header_count} {what} fields")
    return Headers([(name.lower(), value) for name, value in pairs])


def _parse_other_version(text: bytes) -> bytes:
    match = HTTP_VERSION_RE.fullmatch(text)
    if match is None:
        raise ProtocolError(400, f"malformed HTTP version {shorten(text)}")
    if match.group(1) != b"1":
        # RFC 9110 15.6.6: 505 for a major version we do not support.
        raise ProtocolError(505, f"HTTP version {text.decode('ascii')} not supported")
    # RFC 9110 6.2: a higher minor version of HTTP/1 is answered as HTTP/1.1.
    return b"1.1"


def _list_elements(value: bytes) -> list[bytes]:
    """The non-empty elements of a comma-separated list (RFC 9110 5.6.1)."""
    return [element for element in (part.strip(b" \t") for part in value.split(b",")) if element]


def _combine_repeated(headers: Headers) -> dict[bytes, bytes]:
    """Fields by name, repeated ones joined into one comma-separated list value.

    Raises ProtocolError for a repeated Host, which is never a list (RFC 9112 3.2).
    """
    fields: dict[bytes, bytes] = {}
    for name, value in headers:
        previous = fields.get(name)
        if previous is None:
            fields[name] = value
        elif name == b"host":
            raise ProtocolError(400, "more than one Host field")
        else:
            fields[name] = previous + b"," + value
    return fields


def _parse_content_length(value: bytes) -> int:
    # RFC 9112 6.3 item 5 / RFC 9110 8.6: a list of identical values may be taken as one
    # value; differing or malformed values are unrecoverable framing errors.
    if CONTENT_LENGTH_RE.fullmatch(value) is not None:
        return int(value)
    result: int | None = None
    for element in value.split(b","):
        element = element.strip(b" \t")
        if CONTENT_LENGTH_RE.fullmatch(element) is None:
            raise ProtocolError(400, f"invalid Content-Length {shorten(value)}")
        length = int(element)
        if result is not None and result != length:
            raise ProtocolError(400, "conflicting Content-Length values")
        result = length
    assert result is not None
    return result


def _check_transfer_codings(codings: list[bytes]) -> None:
    # RFC 9112 6.3 item 4: when the final coding of a request is not chunked, the length
    # cannot be determined: 400. RFC 9112 7: chunked MUST NOT be applied twice.
    # Codings other than chunked are valid HTTP but not something we decode: 501, the
    # status RFC 9112 6.1 gives for a transfer coding the server does not understand.
    lowered = [coding.lower() for coding in codings]
    if not lowered:
        raise ProtocolError(400, "empty Transfer-Encoding")
    for coding in lowered:
        if TOKEN_RE.fullmatch(coding) is None:
            raise ProtocolError(400, f"invalid transfer coding {shorten(coding)}")
    if lowered[-1] != b"chunked":
        raise ProtocolError(400, "Transfer-Encoding does not end with chunked")
    if lowered.count(b"chunked") > 1:
        raise ProtocolError(400, "chunked applied more than once")
    if len(lowered) > 1:
        raise ProtocolError(501, f"transfer coding {shorten(lowered[0])} not implemented")


def _split_target(
    method: bytes, target: bytes, host: bytes | None
) -> tuple[bytes, bytes, bytes | None]:
    """Return ``(path, query, host)`` for the four request-target forms (RFC 9112 3.2)."""
    if target[0] == 0x2F:  # "/": origin-form, by far the most common
        path, _, query = target.partition(b"?")
        if method == b"CONNECT":
            raise ProtocolError(400, "CONNECT needs an authority-form target")
        return path, query, host
    if target == b"*":
        # RFC 9112 3.2.4: asterisk-form is only used for a server-wide OPTIONS.
        if method != b"OPTIONS":
            raise ProtocolError(400, "asterisk-form target with a method other than OPTIONS")
        return b"*", b"", host
    if method == b"CONNECT":
        # RFC 9112 3.2.3: authority-form is only used for CONNECT.
        if AUTHORITY_FORM_RE.fullmatch(target) is None:
            raise ProtocolError(400, f"invalid CONNECT target {shorten(target)}")
        return b"", b"", target
    match = ABSOLUTE_FORM_RE.fullmatch(target)
    if match is None:
        raise ProtocolError(400, f"invalid request target {shorten(target)}")
    authority, rest = match.group(2), match.group(3)
    if not authority or b"@" in authority or HOST_RE.fullmatch(authority) is None:
        raise ProtocolError(400, f"invalid authority in target {shorten(target)}")
    path, _, query = rest.partition(b"?")
    # RFC 9112 3.2.2: the authority of an absolute-form target replaces the Host field.
    return path or b"/", query, authority


def _diagnose_request_line(line: bytes) -> None:
    """Raise the precise error for a request line the fast pattern refused."""
    if b"\n" in line:
        raise ProtocolError(400, "bare LF in request line")
    if b"\r" in line:
        raise ProtocolError(400, "bare CR in request line")
    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts):
        raise ProtocolError(400, f"malformed request line {shorten(line)}")
    method, target, _ = parts
    if TOKEN_RE.fullmatch(method) is None:
        raise ProtocolError(400, f"invalid method {shorten(method)}")
    raise ProtocolError(400, f"invalid request target {shorten(target)}")


def _diagnose_fields(section: bytes) -> None:
    """Raise the precise error for a field section the fast pattern refused."""
    lines = section.split(b"\r\n")
    for line in lines[:-1]:
        if b"\n" in line:
            raise ProtocolError(400, "bare LF in header section")
        if b"\r" in line:
            raise ProtocolError(400, f"bare CR in field line {shorten(line)}")
        if line[:1] in (b" ", b"\t"):
            # RFC 9112 5.2: obs-fold is refused with 400 outside message/http.
            raise ProtocolError(400, f"obsolete line folding {shorten(line)}")
        name, colon, value = line.partition(b":")
        if not colon:
            raise ProtocolError(400, f"field line without a colon {shorten(line)}")
        if not name:
            raise ProtocolError(400, "empty field name")
        if name[-1:] in (b" ", b"\t"):
            # RFC 9112 5.1: no whitespace is allowed between the field name and colon;
            # a server MUST reject such a message with 400.
            raise ProtocolError(400, f"whitespace before colon in {shorten(line)}")
        if TOKEN_RE.fullmatch(name) is None:
            raise ProtocolError(400, f"invalid field name {shorten(name)}")
        if FIELD_VALUE_RE.fullmatch(value.strip(b" \t")) is None:
            raise ProtocolError(400, f"invalid character in field value {shorten(line)}")
    raise ProtocolError(400, "malformed header section")


# ---------------------------------------------------------------------------------
# Bodies

ReadResult = Data | EndOfMessage | Sentinel


class NoBodyReader:
    """A request without a body: the end comes at once."""

    __slots__ = ()

    def read(self, buf: ReceiveBuffer) -> ReadResult:
        return END_OF_MESSAGE

    def check_eof(self) -> None:
        return None


NO_BODY = NoBodyReader()


class ContentLengthReader:
    """A body of a known length."""

    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        self.remaining = length

    def read(self, buf: ReceiveBuffer) -> ReadResult:
        remaining = self.remaining
        if remaining == 0:
            return END_OF_MESSAGE
        if buf.pos >= len(buf.data):
            return NEED_DATA
        data = buf.take(remaining)
        self.remaining = remaining - len(data)
        return Data(data)

    def check_eof(self) -> None:
        if self.remaining:
            raise ProtocolError(400, f"connection closed with {self.remaining} body bytes missing")


_SIZE, _DATA, _DATA_END, _TRAILERS, _DONE = range(5)


class ChunkedReader:
    """A chunked body (RFC 9112 7.1), resumable at any byte."""

    __slots__ = ("limits", "state", "remaining", "total", "scanned", "lines")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.state = _SIZE
        self.remaining = 0
        self.total = 0
        self.scanned = 0
        self.lines = 0

    def read(self, buf: ReceiveBuffer) -> ReadResult:
        while True:
            state = self.state
            if state == _DATA:
                if buf.pos >= len(buf.data):
                    return NEED_DATA
                data = buf.take(self.remaining)
                self.remaining -= len(data)
                if self.remaining == 0:
                    self.state = _DATA_END
                return Data(data)
            if state == _SIZE:
                if not self._read_size_line(buf):
                    return NEED_DATA
            elif state == _DATA_END:
                if len(buf) < 2:
                    if len(buf) == 1 and buf.data[buf.pos] != 0x0D:
                        raise ProtocolError(400, "chunk data not followed by CRLF")
                    return NEED_DATA
                if buf.take(2) != b"\r\n":
                    raise ProtocolError(400, "chunk data not followed by CRLF")
                self.state = _SIZE
            elif state == _TRAILERS:
                return self._read_trailers(buf)
            else:
                return END_OF_MESSAGE

    def _read_size_line(self, buf: ReceiveBuffer) -> bool:
        data, pos = buf.data, buf.pos
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            if len(data) - pos > self.limits.max_chunk_line_bytes:
                raise ProtocolError(400, "chunk size line too long")
            if b"\n" in data[pos:]:
                raise ProtocolError(400, "bare LF in chunk size line")
            return False
        if line_end - pos > self.limits.max_chunk_line_bytes:
            raise ProtocolError(400, "chunk size line too long")
        match = CHUNK_SIZE_LINE_RE.fullmatch(data, pos, line_end)
        if match is None:
            raise ProtocolError(400, f"invalid chunk size line {shorten(data[pos:line_end])}")
        size = int(match.group(1), 16)
        buf.pos = line_end + 2
        self.total += size
        if self.total > self.limits.max_body_bytes:
            raise ProtocolError(413, "chunked body over the size limit")
        if size == 0:
            self.state = _TRAILERS
            self.scanned = self.lines = 0
        else:
            self.remaining = size
            self.state = _DATA
        return True

    def _read_trailers(self, buf: ReceiveBuffer) -> ReadResult:
        data, pos = buf.data, buf.pos
        if data.startswith(b"\r\n", pos):
            buf.pos = pos + 2
            self.state = _DONE
            return END_OF_MESSAGE
        if len(data) - pos < 2:
            if len(data) - pos == 1 and data[pos] == 0x0A:
                raise ProtocolError(400, "bare LF in trailer section")
            return NEED_DATA
        # scanned: unconsumed bytes already checked, relative to pos (see check_head)
        end = data.find(b"\r\n\r\n", pos + max(0, self.scanned - 3))
        if end < 0:
            self.scanned, self.lines = check_head(
                data, pos, len(data), -1, self.scanned, self.lines, self.limits, False
            )
            return NEED_DATA
        try:
            if end - pos > self.limits.max_header_bytes:
                raise ProtocolError(431, "trailer section too large")
            trailers = parse_fields(data, pos, end + 2, self.limits, "trailer")
        except ProtocolError:
            check_head(data, pos, end + 4, end, 0, 0, self.limits, False)
            raise
        buf.pos = end + 4
        self.state = _DONE
        return EndOfMessage(trailers or EMPTY_HEADERS)

    def check_eof(self) -> None:
        if self.state != _DONE:
            raise ProtocolError(400, "connection closed in the middle of a chunked body")


BodyReader = NoBodyReader | ContentLengthReader | ChunkedReader
