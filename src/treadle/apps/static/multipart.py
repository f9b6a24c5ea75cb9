"""Reading ``multipart/form-data`` uploads: bytes in, events out.

An upload can be far larger than we are willing to hold, so the body is parsed as a
stream, in the manner of the HTTP core: ``feed`` takes whatever bytes the client sent and
returns the events they complete (``PartStart``, ``PartData``, ``PartEnd``,
``MultipartEnd``); ``close`` says the body is over. Nothing is read or written here; the
application decides where part data goes.

Theory of operation. RFC 2046 5.1.1 frames the body with one delimiter, ``CRLF "--"
boundary``. The parser starts with a virtual CRLF in its buffer, so the first boundary of
a body that opens with ``--boundary`` (no preamble) is found by the same search as every
later one. The buffer is searched with ``bytes.find``, never byte by byte. While no
delimiter is in sight, every byte is handed out as ``PartData`` except a suffix that could
still begin one: that suffix starts at a CR (the delimiter holds exactly one CR, at its
start, since boundaries cannot contain CR), so one ``rfind`` and one ``startswith`` find
it, and at most ``len(delimiter) - 1`` bytes are ever held back. A part is never held whole,
nor is the preamble or the epilogue. Only a part's header block is buffered whole before it
is parsed, and that is bounded by ``max_header_bytes``.

What a delimiter is followed by decides what it is: ``--`` makes it the close delimiter
(everything after is epilogue, ignored unread); transport padding (spaces and tabs) and
CRLF make it the start of the next part. Anything else is malformed and raises
``MultipartError``. RFC 2046 5.1.1 says the delimiter must not appear inside a part, so
a delimiter line followed by other bytes cannot be part data; treating it as data would
let a front end that reads the body the other way see different parts from ours, the
multipart form of request smuggling. For the same reason a part whose headers repeat
Content-Disposition, or repeat a parameter in it, is refused. ``PartEnd`` is only emitted
once the delimiter that ends the part is known to be good, so an application may commit
a file on ``PartEnd``.

Part headers follow the field grammar of the HTTP core (token name, colon, a value of
visible characters, spaces and tabs); folded lines, bare CR or LF, NUL and other controls
are refused. ``Content-Disposition`` is read as RFC 7578 4.2 and RFC 6266 4.1 describe
it, with the ``filename*`` form of RFC 8187 preferred over ``filename`` when both are
sent. Browsers do not escape a backslash in a file name, and old Windows browsers send
the whole path (``C:\\dir\\a.txt``), so in a quoted value only ``\\"`` and ``\\\\`` are
escapes and any other backslash is kept as it is; ``names.sanitize_filename`` then cuts the
path. Names and file names must be UTF-8.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from ...http.errors import shorten
from ...http.grammar import FIELD_VALUE, QUOTED_STRING, TOKEN

__all__ = [
    "MultipartEnd",
    "MultipartError",
    "MultipartEvent",
    "MultipartParser",
    "PartData",
    "PartEnd",
    "PartStart",
    "boundary_from_content_type",
]


class MultipartError(Exception):
    """The body is not ``multipart/form-data`` we accept; the caller answers 400.

    ``str(err)`` is a one-line reason, safe to show to the client.
    """


@dataclass(frozen=True, slots=True)
class PartStart:
    """The header block of one part.

    ``name`` is the form field name and ``filename`` the file name as the client sent it
    (``filename*`` decoded when present), or None when the parameter is absent; an empty
    ``filename`` is how a browser sends a file field with no file chosen. Pass
    ``filename`` through ``names.sanitize_filename`` before it comes near a file system.
    ``content_type`` is the part's Content-Type value, or None. ``headers`` holds every
    header field of the part in order, names lowercased, values stripped of surrounding
    whitespace.
    """

    name: str | None
    filename: str | None
    content_type: bytes | None
    headers: list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class PartData:
    """Bytes of the current part's body (never empty)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    """The current part ended with a well-formed delimiter."""


@dataclass(frozen=True, slots=True)
class MultipartEnd:
    """The closing boundary was seen; the rest of the body is epilogue and is ignored."""


MultipartEvent = PartStart | PartData | PartEnd | MultipartEnd

# RFC 2046 5.1.1:  boundary      := 0*69<bchars> bcharsnospace
#                  bchars        := bcharsnospace / " "
#                  bcharsnospace := DIGIT / ALPHA / "'" / "(" / ")" / "+" / "_" / "," / "-"
#                                   / "." / "/" / ":" / "=" / "?"
BOUNDARY_RE = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")

# RFC 9110 8.3.1:  media-type = type "/" subtype parameters
# RFC 9110 5.6.6:  parameters = *( OWS ";" OWS [ parameter ] )
#                  parameter  = parameter-name "=" parameter-value
#                  parameter-value = ( token / quoted-string )
MEDIA_TYPE_RE = re.compile(rb"[ \t]*(" + TOKEN + rb"/" + TOKEN + rb")")
# Used for Content-Disposition too (RFC 6266 4.1), where we also allow whitespace around "=".
PARAMETER_RE = re.compile(
    rb"[ \t]*;[ \t]*(?:(" + TOKEN + rb")[ \t]*=[ \t]*(" + TOKEN + rb"|" + QUOTED_STRING + rb"))?"
    rb"[ \t]*"
)

# RFC 2046 5.1.1 (via RFC 822):  transport-padding := *LWSP-char ; LWSP-char = SPACE / HTAB
PADDING_RE = re.compile(rb"[ \t]*")
PADDING_PREFIX_RE = re.compile(rb"[ \t]*\r?")

# RFC 5322 2.2 fields, held to the HTTP field grammar (RFC 9110 5.1, 5.5): a token name, no
# whitespace before the colon, a value of VCHAR / obs-text with inner SP / HTAB.
PART_FIELD_LINE_RE = re.compile(rb"(" + TOKEN + rb"):[ \t]*(" + FIELD_VALUE + rb")[ \t]*")

# RFC 6266 4.1:  disposition-type = "inline" | "attachment" | disp-ext-type ; a token
DISPOSITION_TYPE_RE = re.compile(TOKEN)

# RFC 8187 3.2.1:  ext-value   = charset  "'" [ language ] "'" value-chars
#                  charset     = "UTF-8" / mime-charset
#                  value-chars = *( pct-encoded / attr-char )
#                  attr-char   = ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "."
#                                / "^" / "_" / "`" / "|" / "~"
EXT_VALUE_RE = re.compile(
    rb"([-!#$%&+^_`{}~0-9A-Za-z]+)'([-0-9A-Za-z]*)'"
    rb"((?:%[0-9A-Fa-f]{2}|[-!#$&+.^_`|~0-9A-Za-z])*)"
)
# RFC 8187 3.2.1: recipients support UTF-8; RFC 5987 also had ISO-8859-1, which costs nothing.
EXT_VALUE_CHARSETS = {b"utf-8": "utf-8", b"iso-8859-1": "latin-1"}

# RFC 7578 4.7: Content-Transfer-Encoding is deprecated; an identity value is harmless.
IDENTITY_TRANSFER_ENCODINGS = {b"7bit", b"8bit", b"binary"}

# A quoted value's escapes as browsers really send them: see the module docstring.
QUOTED_PAIR_RE = re.compile(rb'\\(["\\])')
ANY_QUOTED_PAIR_RE = re.compile(rb"\\(.)", re.DOTALL)


def boundary_from_content_type(value: bytes) -> bytes:
    """The boundary parameter of a ``multipart/form-data`` Content-Type field value.

    Returns the boundary without quotes or escapes. The media type and the parameter
    names are matched case-insensitively; other parameters are ignored.

    Raises ``MultipartError`` when the type is another one, the value does not parse,
    the boundary is missing, repeated, empty, longer than 70 characters or holds a
    character outside RFC 2046 5.1.1 ``bchars``.
    """
    value = value.strip(b" \t")
    match = MEDIA_TYPE_RE.match(value)
    if match is None:
        raise MultipartError(f"Content-Type {shorten(value)} is not a media type")
    if match[1].lower() != b"multipart/form-data":
        raise MultipartError(f"Content-Type {shorten(match[1])} is not multipart/form-data")
    pos = match.end()
    boundary: bytes | None = None
    while pos < len(value):
        param = PARAMETER_RE.match(value, pos)
        if param is None:
            raise MultipartError(f"bad parameters in Content-Type {shorten(value)}")
        pos = param.end()
        if param[1] is None or param[1].lower() != b"boundary":
            continue
        if boundary is not None:
            raise MultipartError("Content-Type repeats its boundary parameter")
        raw = param[2]
        boundary = ANY_QUOTED_PAIR_RE.sub(rb"\1", raw[1:-1]) if raw[:1] == b'"' else raw
    if boundary is None:
        raise MultipartError("Content-Type has no boundary parameter")
    # RFC 2046 5.1.1: a boundary is 1 to 70 bchars, the last one not a space.
    if BOUNDARY_RE.fullmatch(boundary) is None:
        raise MultipartError(f"boundary {shorten(boundary)} is not 1 to 70 RFC 2046 bchars")
    return boundary


class _State(enum.Enum):
    PREAMBLE = "PREAMBLE"  # before the first delimiter: skipped
    AFTER_DELIMITER = "AFTER_DELIMITER"  # a delimiter was seen; "--" or a new part follows
    HEADERS = "HEADERS"  # padding, CRLF, then the part's header block up to CRLF CRLF
    DATA = "DATA"  # a part's body, up to the next delimiter
    EPILOGUE = "EPILOGUE"  # after the close delimiter: ignored
    FAILED = "FAILED"  # a MultipartError was raised; it is raised again


class MultipartParser:
    """Turns a ``multipart/form-data`` body, fed in pieces of any size, into events.

    Events come in the order ``(PartStart PartData* PartEnd)* MultipartEnd``. A part's
    data may be split across any number of ``PartData`` events; where the splits fall
    depends on how the body was fed, nothing else does.

    ``max_header_bytes`` bounds one part's header block: the bytes after a boundary up
    to and including the blank line. ``max_parts`` bounds the number of parts. Each
    raises ``MultipartError`` when exceeded.
    """

    __slots__ = (
        "_delimiter",
        "_max_header_bytes",
        "_max_parts",
        "_buffer",
        "_pos",
        "_state",
        "_in_part",
        "_part_count",
        "_failure",
    )

    def __init__(
        self, boundary: bytes, *, max_header_bytes: int = 16 * 1024, max_parts: int = 1000
    ) -> None:
        # Not client input (it comes from boundary_from_content_type), so a ValueError.
        if BOUNDARY_RE.fullmatch(boundary) is None:
            raise ValueError(f"boundary {shorten(boundary)} is not 1 to 70 RFC 2046 bchars")
        # RFC 2046 5.1.1: delimiter := CRLF dash-boundary ; dash-boundary := "--" boundary
        self._delimiter = b"\r\n--" + boundary
        self._max_header_bytes = max_header_bytes
        self._max_parts = max_parts
        # The virtual CRLF lets a body that starts with "--boundary" match the delimiter.
        self._buffer = b"\r\n"
        self._pos = 0
        self._state = _State.PREAMBLE
        self._in_part = False
        self._part_count = 0
        self._failure = ""

    def feed(self, data: bytes) -> list[MultipartEvent]:
        """Take the next bytes of the body; return the events they complete, in order.

        Empty ``data`` is allowed and means nothing (the end of the body is ``close``).
        Bytes after the closing boundary are ignored.

        Raises ``MultipartError`` when the body is malformed or breaks a limit, and again
        on every later call.
        """
        state = self._state
        if state is _State.EPILOGUE:
            return []
        if state is _State.FAILED:
            raise MultipartError(self._failure)
        if data:
            # The last call left only unconsumed bytes (pos 0): a few, or a partial head.
            self._buffer = self._buffer + data if self._buffer else data
        events: list[MultipartEvent] = []
        try:
            while self._step(events):
                pass
        except MultipartError as err:
            self._fail(str(err))
            raise
        # Drop the consumed bytes now, so no reference to a fed piece outlives this call.
        if self._pos:
            self._buffer = self._buffer[self._pos :]
            self._pos = 0
        return events

    def close(self) -> None:
        """Say the body is over.

        Raises ``MultipartError`` unless the closing boundary was seen.
        """
        if self._state is _State.EPILOGUE:
            return
        if self._state is not _State.FAILED:
            # RFC 2046 5.1.1: multipart-body ends with close-delimiter.
            self._fail("body ended before the closing boundary")
        raise MultipartError(self._failure)

    # -- one step of the state machine: True when it should run again ------------------------

    def _step(self, events: list[MultipartEvent]) -> bool:
        state = self._state
        if state is _State.DATA or state is _State.PREAMBLE:
            return self._scan_for_delimiter(events, emit=state is _State.DATA)
        if state is _State.AFTER_DELIMITER:
            return self._read_delimiter_end(events)
        if state is _State.HEADERS:
            return self._read_part_head(events)
        return False

    def _scan_for_delimiter(self, events: list[MultipartEvent], *, emit: bool) -> bool:
        buffer, pos, delimiter = self._buffer, self._pos, self._delimiter
        found = buffer.find(delimiter, pos)
        if found != -1:
            if emit and found > pos:
                events.append(PartData(buffer[pos:found]))
            self._pos = found + len(delimiter)
            self._state = _State.AFTER_DELIMITER
            return True
        # Hold back only a suffix that may be the start of a delimiter cut by the feed.
        # The delimiter's only CR is its first byte, so such a suffix begins at the last CR.
        keep = len(buffer)
        last_cr = buffer.rfind(b"\r", max(pos, keep - len(delimiter) + 1))
        if last_cr != -1 and delimiter.startswith(buffer[last_cr:]):
            keep = last_cr
        if emit and keep > pos:
            events.append(PartData(buffer[pos:keep]))
        self._pos = keep
        return False

    def _read_delimiter_end(self, events: list[MultipartEvent]) -> bool:
        buffer, pos = self._buffer, self._pos
        if len(buffer) - pos < 2:
            return False
        if buffer.startswith(b"--", pos):
            # RFC 2046 5.1.1: close-delimiter := delimiter "--" ; the epilogue is ignored.
            if self._in_part:
                events.append(PartEnd())
                self._in_part = False
            events.append(MultipartEnd())
            self._state = _State.EPILOGUE
            self._buffer = b""
            self._pos = 0
            return False
        self._state = _State.HEADERS
        return True

    def _read_part_head(self, events: list[MultipartEvent]) -> bool:
        buffer, pos, limit = self._buffer, self._pos, self._max_header_bytes
        window_end = pos + limit  # searches stop here: nothing valid lies beyond
        line_end = buffer.find(b"\r\n", pos, window_end)
        # RFC 2046 5.1.1: encapsulation := delimiter transport-padding CRLF body-part
        padding_ok = (
            PADDING_RE.fullmatch(buffer, pos, line_end)
            if line_end != -1
            else PADDING_PREFIX_RE.fullmatch(buffer, pos)
        )
        if padding_ok is None:
            after = buffer[pos : pos + 20]
            raise MultipartError(f"boundary followed by {shorten(after)}, not CRLF or --")
        # Found within the window, the whole block (blank line included) is within the limit.
        head_end = buffer.find(b"\r\n\r\n", pos, window_end) if line_end != -1 else -1
        if head_end == -1:
            if len(buffer) - pos >= limit:
                raise MultipartError(f"part header block exceeds {limit} bytes")
            return False
        if self._part_count >= self._max_parts:
            raise MultipartError(f"more than {self._max_parts} parts")
        # The delimiter is now known to be good: the part before it is complete.
        if self._in_part:
            events.append(PartEnd())
        events.append(_part_start(buffer[line_end + 2 : head_end]))
        self._part_count += 1
        self._in_part = True
        self._pos = head_end + 4
        self._state = _State.DATA
        return True

    def _fail(self, message: str) -> None:
        self._state = _State.FAILED
        self._failure = message
        self._buffer = b""
        self._pos = 0


# -- part headers -------------------------------------------------------------------------------


def _part_start(block: bytes) -> PartStart:
    """The ``PartStart`` of a header block (its lines without the final blank line).

    Raises ``MultipartError`` for a malformed line or Content-Disposition.
    """
    fields = _parse_fields(block)
    dispositions = [value for name, value in fields if name == b"content-disposition"]
    # RFC 7578 4.2: each part MUST contain a Content-Disposition header field.
    if len(dispositions) != 1:
        raise MultipartError(f"part has {len(dispositions)} Content-Disposition fields, not 1")
    content_types = [value for name, value in fields if name == b"content-type"]
    if len(content_types) > 1:
        raise MultipartError("part repeats Content-Type")
    for name, value in fields:
        # RFC 7578 4.7: senders do not encode parts; we would store encoded bytes if one did.
        if name == b"content-transfer-encoding" and value.lower() not in (
            IDENTITY_TRANSFER_ENCODINGS
        ):
            raise MultipartError(f"part has Content-Transfer-Encoding {shorten(value)}")
    field_name, filename = _parse_disposition(dispositions[0])
    return PartStart(field_name, filename, content_types[0] if content_types else None, fields)


def _parse_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    if not block:
        return []
    fields: list[tuple[bytes, bytes]] = []
    for line in block.split(b"\r\n"):
        match = PART_FIELD_LINE_RE.fullmatch(line)
        if match is None:
            raise MultipartError(_diagnose_field_line(line))
        fields.append((match[1].lower(), match[2]))
    return fields


def _diagnose_field_line(line: bytes) -> str:
    if line[:1] in (b" ", b"\t"):
        # RFC 9112 5.2 / RFC 7578 4.8: no obs-fold; a folded line is refused, not unfolded.
        return f"folded part header line {shorten(line)}"
    if b":" not in line:
        return f"part header line without a colon: {shorten(line)}"
    if b"\x00" in line or b"\r" in line or b"\n" in line:
        return f"NUL, CR or LF inside part header line {shorten(line)}"
    return f"invalid part header line {shorten(line)}"


def _parse_disposition(value: bytes) -> tuple[str | None, str | None]:
    """``(name, filename)`` from a ``form-data`` Content-Disposition value.

    Raises ``MultipartError`` for another disposition type, a malformed or repeated
    parameter, or a name that does not decode.
    """
    match = DISPOSITION_TYPE_RE.match(value)
    # RFC 7578 4.2: the disposition type is "form-data".
    if match is None or match[0].lower() != b"form-data":
        raise MultipartError(f"Content-Disposition {shorten(value)} is not form-data")
    params: dict[bytes, bytes] = {}
    pos = match.end()
    while pos < len(value):
        param = PARAMETER_RE.match(value, pos)
        if param is None:
            raise MultipartError(f"bad parameters in Content-Disposition {shorten(value)}")
        pos = param.end()
        if param[1] is None:
            continue
        key = param[1].lower()
        # Two names or two file names for one part: which one a reader takes is a guess.
        if key in params:
            raise MultipartError(f"Content-Disposition repeats {shorten(key)}")
        params[key] = param[2]
    name = _decode_parameter(params[b"name"]) if b"name" in params else None
    filename: str | None = None
    # RFC 6266 4.3: when both are present, filename* is preferred.
    if b"filename*" in params:
        filename = _decode_ext_value(params[b"filename*"])
    elif b"filename" in params:
        filename = _decode_parameter(params[b"filename"])
    return name, filename


def _decode_parameter(raw: bytes) -> str:
    if raw[:1] == b'"':
        raw = QUOTED_PAIR_RE.sub(rb"\1", raw[1:-1])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MultipartError(f"parameter {shorten(raw)} is not UTF-8") from None


def _decode_ext_value(raw: bytes) -> str:
    match = EXT_VALUE_RE.fullmatch(raw)
    if match is None:
        raise MultipartError(f"filename* {shorten(raw)} is not an RFC 8187 ext-value")
    encoding = EXT_VALUE_CHARSETS.get(match[1].lower())
    if encoding is None:
        raise MultipartError(f"filename* charset {shorten(match[1])} is not UTF-8")
    try:
        return unquote_to_bytes(match[3]).decode(encoding)
    except UnicodeDecodeError:
        raise MultipartError(f"filename* {shorten(raw)} is not valid {encoding}") from None
