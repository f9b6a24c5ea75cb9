"""Writing responses: status lines, field validation and serialisation, dates, errors.

Functions, constants and a bounded cache of validated field lines; the framing
decisions that depend on the request live in ``connection.py``. Nothing here reads a
clock: ``format_date`` formats the time it is given, and the server
(``treadle.server.Server``, which owns the clock) refreshes ``ResponseDefaults.date``
once a second for every connection at once.
"""

from __future__ import annotations

from http import HTTPStatus

from .errors import LocalProtocolError
from .events import HeaderPairs
from .grammar import RESPONSE_VALUE_RE, TOKEN_RE

_STATUS_LINES: dict[int, bytes] = {
    status.value: b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode("ascii"))
    for status in HTTPStatus
}


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status``, or an empty string."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def status_line(status: int, reason: bytes = b"") -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n``; raises LocalProtocolError if impossible."""
    if not reason:
        line = _STATUS_LINES.get(status)
        if line is not None:
            return line
    if not (isinstance(status, int) and 100 <= status <= 999):
        raise LocalProtocolError(f"invalid status code {status!r}")
    # RFC 9112 4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
    if RESPONSE_VALUE_RE.fullmatch(reason) is None:
        raise LocalProtocolError(f"invalid reason phrase {reason!r}")
    return b"HTTP/1.1 %d %s\r\n" % (status, reason)


def encode_field(name: bytes | str, value: bytes | str) -> tuple[bytes, bytes]:
    """Validate one response field from application code; return it as bytes.

    Raises LocalProtocolError for a name that is not a token or a value holding CR, LF,
    NUL or another control character: such a field could split the response.
    """
    if isinstance(name, str):
        name = name.encode("latin-1", "replace")
    if isinstance(value, str):
        try:
            value = value.encode("latin-1")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"field value {value!r} is not latin-1") from None
    if not isinstance(name, bytes) or not isinstance(value, bytes):
        raise LocalProtocolError(f"field {name!r}: {value!r} is not made of str or bytes")
    if TOKEN_RE.fullmatch(name) is None:
        raise LocalProtocolError(f"invalid field name {name!r}")
    if RESPONSE_VALUE_RE.fullmatch(value) is None:
        raise LocalProtocolError(f"invalid field value {value[:40]!r} for {name!r}")
    return name, value


_CONTENT_LENGTH = b"content-length"
_TRANSFER_ENCODING = b"transfer-encoding"
_CONNECTION = b"connection"


# Validated, serialised field lines by their (name, value) pair as the application gave
# them. Applications send the same few fields again and again (content-type, cache
# headers); validating each once saves two regex matches per field per response. Only
# fields with no framing meaning are kept; bounded so odd values cannot grow it.
_FIELD_LINES: dict[tuple[bytes | str, bytes | str], bytes] = {}
_FIELD_LINES_MAX = 512


def _remember_field_line(field: tuple[bytes | str, bytes | str], line: bytes) -> None:
    if len(_FIELD_LINES) >= _FIELD_LINES_MAX:
        _FIELD_LINES.clear()
    try:
        _FIELD_LINES[field] = line
    except TypeError:
        pass  # an unhashable pair (a list): simply not cached


#: bits of what serialize_fields reports: the application wrote Date, or Server
OWN_DATE, OWN_SERVER = 1, 2
_DEFAULT_FIELDS = {b"date": OWN_DATE, b"server": OWN_SERVER}


def serialize_fields(
    headers: HeaderPairs, parts: list[bytes]
) -> tuple[bytes | None, bool, bool, int]:
    """Validate an application's response fields and append their lines to ``parts``.

    The fields that frame the message are not appended but returned, since writing
    them is ours: ``(Content-Length value or None, chunked asked for, Connection asked
    to close, which of Date/Server the application wrote itself)``. Raises
    LocalProtocolError for a field that cannot be sent.
    """
    length: bytes | None = None
    chunked = close = False
    own = 0
    cache = _FIELD_LINES
    for field in headers:
        try:
            line = cache.get(field)
        except TypeError:  # an unhashable pair (a list): validated every time
            line = None
        if line is not None:
            parts.append(line)
            continue
        name, value = encode_field(*field)
        lowered = name.lower()
        if lowered == _CONTENT_LENGTH:
            length = value.strip()
            continue
        if lowered == _TRANSFER_ENCODING:
            if value.strip().lower() != b"chunked":
                raise LocalProtocolError(f"unsupported Transfer-Encoding {value!r}")
            chunked = True
            continue
        if lowered == _CONNECTION:
            # A token list (RFC 9110 7.6.1); the field itself is ours to write.
            close = close or b"close" in [t.strip().lower() for t in value.split(b",")]
            continue
        line = name + b": " + value + b"\r\n"
        parts.append(line)
        if lowered in _DEFAULT_FIELDS:
            own |= _DEFAULT_FIELDS[lowered]
        else:
            _remember_field_line(field, line)
    return length, chunked, close, own


class PreparedFields:
    """Response fields validated and serialised once, for responses sent again and again
    (a static file's fields): ``send_response`` then appends one block instead of
    looking each field up. Fields that frame the message (Content-Length,
    Transfer-Encoding, Connection) are the connection's to write and are refused here.
    Raises LocalProtocolError as ``send_response`` would for a bad field.
    """

    __slots__ = ("lines", "own")

    def __init__(self, headers: HeaderPairs) -> None:
        parts: list[bytes] = []
        length, chunked, close, own = serialize_fields(headers, parts)
        if length is not None or chunked or close:
            raise LocalProtocolError("framing fields cannot be prepared")
        self.lines = b"".join(parts)
        self.own = own


_DAY_NAMES = (b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed")  # 1970-01-01 was a Thursday
_MONTH_NAMES = (
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
    b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
)  # fmt: skip


def format_date(epoch_s: float) -> bytes:
    """The IMF-fixdate of RFC 9110 5.6.7 for a Unix time, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``.

    Plain arithmetic on the given number (days to civil date), so the core needs no
    clock and no time module.
    """
    seconds = int(epoch_s)
    days, rem = divmod(seconds, 86400)
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    weekday = _DAY_NAMES[days % 7]
    # Civil date from a day count: shift the epoch to 0000-03-01 so leap days fall last.
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        weekday,
        day,
        _MONTH_NAMES[month - 1],
        year,
        hour,
        minute,
        second,
    )


class ResponseDefaults:
    """Fields every response carries, shared by all connections of a server.

    The server sets ``date`` once a second; ``fields`` is the pre-serialised block so
    that a response pays one list append for both.
    """

    __slots__ = ("_server", "_date", "fields")

    def __init__(self, server: bytes = b"treadle", date: bytes = b"") -> None:
        self._server = server
        self._date = date
        self.fields = b""
        self._rebuild()

    @property
    def date(self) -> bytes:
        return self._date

    @date.setter
    def date(self, value: bytes) -> None:
        self._date = value
        self._rebuild()

    @property
    def server(self) -> bytes:
        return self._server

    @server.setter
    def server(self, value: bytes) -> None:
        self._server = value
        self._rebuild()

    def _rebuild(self) -> None:
        fields = b""
        if self._date:
            fields += b"date: " + self._date + b"\r\n"
        if self._server:
            fields += b"server: " + self._server + b"\r\n"
        self.fields = fields


def error_response(status: int, message: str, date: bytes | None = None) -> bytes:
    """A complete, short ``text/plain`` error response that closes the connection.

    The body is the status line's reason and ``message`` (one line, already safe to
    show: protocol errors say what was wrong with the request, never internals).
    """
    phrase = reason_phrase(status)
    text = f"{status} {phrase}\n" if phrase else f"{status}\n"
    line = message.replace("\r", " ").replace("\n", " ")
    if line:
        text += line + "\n"
    body = text.encode("ascii", "backslashreplace")
    head = status_line(status) + b"content-type: text/plain; charset=utf-8\r\n"
    head += b"content-length: %d\r\nconnection: close\r\n" % len(body)
    if date:
        head += b"date: " + date + b"\r\n"
    return head + b"\r\n" + body
