"""What ``start_response`` accepts: a status and header fields that one HTTP/1.1 response can carry.

PEP 3333 hands the server text: a status such as ``"200 OK"`` and a list of
``(name, value)`` native strings. Everything here turns that into the bytes the server's
exchange takes, and refuses what could not be sent honestly, at the moment the
application calls ``start_response``: the exception then surfaces in the application's
own frame (where an error middleware may still catch it and answer with ``exc_info``),
and an application that lets it escape gets a 500 with the reason in the log.

Refused: a status that is not three digits, a space and a reason phrase (or one below
200: an interim response is never the final one); a field name that is not a token; a
value with CR, LF, NUL or another control character (it would split the response); text
outside latin-1 (PEP 3333: header strings are ISO-8859-1); and hop-by-hop fields, whose
framing is the server's to write (PEP 3333, "Other HTTP Features").

Applications send the same few statuses and fields again and again, so what passed is
remembered (bounded, like the HTTP core's own field cache): the common response is
checked with a dictionary lookup per field.

Pure code: no sockets, no logging.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ...http.grammar import RESPONSE_VALUE_RE, TOKEN_RE

# PEP 3333: "a status number and a reason phrase, separated by a single space".
_STATUS_RE = re.compile(r"([1-9][0-9][0-9]) (.*)\Z", re.DOTALL)

#: RFC 9110 7.6.1 (and 7.8, 6.6.2, 11.7): fields that describe one connection, not the
#: message; the application may not set them, the server writes what framing needs.
HOP_BY_HOP_FIELDS = frozenset(
    {
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

HeaderFields = list[tuple[bytes, bytes]]

# What passed before, by the application's own value. Dictionary operations are atomic
# under the GIL, so worker threads share these without a lock.
_CACHE_MAX = 1024
_STATUSES: dict[str, int] = {}
_FIELDS: dict[tuple[str, str], tuple[bytes, bytes]] = {}


class ResponseRefused(ValueError):
    """``start_response`` was given a status or a header field that cannot be sent."""


def parse_status(status: object) -> int:
    """The status code of a PEP 3333 status string such as ``"404 Not Found"``.

    Raises TypeError for a non-str status, ResponseRefused for a malformed one or an
    informational (1xx) one. The reason phrase is checked but not kept: the server
    writes the standard phrase of the code.
    """
    code = _STATUSES.get(status) if type(status) is str else None
    if code is not None:
        return code
    if type(status) is not str:
        raise TypeError(f"the status must be a str, not {type(status).__name__}")
    match = _STATUS_RE.match(status)
    if match is None:
        raise ResponseRefused(f"malformed status {status[:40]!r}: expected e.g. '200 OK'")
    # RFC 9112 4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
    reason = match.group(2)
    try:
        reason_ok = RESPONSE_VALUE_RE.fullmatch(reason.encode("latin-1")) is not None
    except UnicodeEncodeError:
        reason_ok = False
    if not reason_ok:
        raise ResponseRefused(f"invalid reason phrase in status {status[:40]!r}")
    code = int(match.group(1))
    if code < 200:
        raise ResponseRefused(f"status {code} is informational and cannot end a response")
    if len(_STATUSES) >= _CACHE_MAX:
        _STATUSES.clear()
    _STATUSES[status] = code
    return code


def encode_headers(headers: object) -> HeaderFields:
    """Validate PEP 3333 response headers; return them as ``(name, value)`` bytes.

    Raises TypeError when ``headers`` is not a list (or tuple) of ``(str, str)`` pairs,
    and ResponseRefused for a field that cannot be sent (see the module docstring).
    """
    if not isinstance(headers, (list, tuple)):
        raise TypeError(f"the headers must be a list, not {type(headers).__name__}")
    out: HeaderFields = []
    cache = _FIELDS
    for field in headers:
        try:
            encoded = cache.get(field)
        except TypeError:  # unhashable: certainly not a (str, str) pair
            encoded = None
        if encoded is None:
            encoded = _check_field(field)
        out.append(encoded)
    return out


def _check_field(field: object) -> tuple[bytes, bytes]:
    if not isinstance(field, tuple) or len(field) != 2:
        raise TypeError(f"each header must be a (name, value) tuple, not {field!r:.60}")
    name, value = field
    if type(name) is not str or type(value) is not str:
        raise TypeError(f"header {name!r:.40}: name and value must be str")
    encoded = _encode_field(name, value)
    if len(_FIELDS) >= _CACHE_MAX:
        _FIELDS.clear()
    _FIELDS[field] = encoded  # (str, str): hashable, and the same pair is the same field
    return encoded


def _encode_field(name: str, value: str) -> tuple[bytes, bytes]:
    try:
        name_bytes = name.encode("latin-1")
    except UnicodeEncodeError:
        raise ResponseRefused(f"invalid header name {name[:40]!r}") from None
    # RFC 9110 5.1: field-name = token
    if TOKEN_RE.fullmatch(name_bytes) is None:
        raise ResponseRefused(f"invalid header name {name[:40]!r}")
    lowered = name.lower()
    if lowered in HOP_BY_HOP_FIELDS or lowered.startswith("proxy-"):
        raise ResponseRefused(f"hop-by-hop header {name!r} is the server's to send (PEP 3333)")
    try:
        value_bytes = value.encode("latin-1")
    except UnicodeEncodeError:
        raise ResponseRefused(f"header {name!r}: value {value[:40]!r} is not latin-1") from None
    # RFC 9110 5.5: a value with CR, LF or NUL MUST be rejected (it could split the response)
    if RESPONSE_VALUE_RE.fullmatch(value_bytes) is None:
        raise ResponseRefused(f"header {name!r}: invalid value {value[:40]!r}")
    return name_bytes, value_bytes


def content_length(fields: Sequence[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length the application set, or None (also when it is not a number)."""
    for name, value in fields:
        if len(name) == 14 and name.lower() == b"content-length":
            value = value.strip()
            return int(value) if value.isdigit() else None
    return None
