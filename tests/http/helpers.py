"""Drive a `ServerConnection` with raw bytes and reduce what comes out to a comparable outcome.

Every parser test goes through `run_case`, which feeds the same bytes three ways (whole, byte by
byte, and whole with a further request after them) and checks that the three agree: the
parser's answer must never depend on how TCP happened to cut the stream.

An outcome is the list of *completed* requests (head, body and trailers, normalised to plain
Python values) and how the exchange ended:

- ``"need_data"``: the parser waits for more bytes (the connection may carry another request);
- ``"paused"``: the last response ended the connection (``conn.keep_alive`` is False);
- ``"closed"``: the peer's EOF arrived cleanly between requests (`ConnectionClosed`);
- ``"error"``: `next_event` raised `ProtocolError`; ``status`` holds its status.

A request whose head came out but whose body was cut short by an error is left out, because
how much of its body was reported before the error legitimately depends on the splitting.
Whenever the parser pauses after a request, the helper answers it with an empty 200 (as a
driver would) so that pipelined requests come out.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from treadle.http import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Limits,
    ProtocolError,
    Request,
    ServerConnection,
)

# Appended by the "extra" way: after a complete keep-alive request it must come out unchanged,
# after an error or a closing response it must never be parsed at all.
EXTRA_REQUEST = b"GET /__extra__ HTTP/1.1\r\nHost: extra\r\n\r\n"
EXTRA_PARSED = {
    "method": "GET",
    "target": "/__extra__",
    "version": "1.1",
    "path": "/__extra__",
    "query": "",
    "host": "extra",
    "headers": [["host", "extra"]],
    "body": "",
    "trailers": [],
    "keep_alive": True,
    "expect_continue": False,
    "content_length": None,
    "chunked": False,
}

# A guard against a parser that never stops producing events.
_MAX_EVENTS = 10_000


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _pairs(headers: Iterable[tuple[bytes, bytes]]) -> list[list[str]]:
    return [[name.decode("latin-1"), value.decode("latin-1")] for name, value in headers]


@dataclass
class Outcome:
    requests: list[dict[str, Any]] = field(default_factory=list)
    end: str = "need_data"
    status: int | None = None
    message: str | None = None

    def summary(self) -> dict[str, Any]:
        """The outcome without the error message (messages may vary with the splitting)."""
        return {"requests": self.requests, "end": self.end, "status": self.status}


class Driver:
    """A minimal stand-in for the server's connection driver, recording what it sees."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.conn = ServerConnection(limits=limits if limits is not None else Limits())
        self.outcome = Outcome()
        self._current: dict[str, Any] | None = None
        self._body = bytearray()
        self._awaiting_response = False
        self.done = False

    def feed(self, data: bytes) -> None:
        """Give bytes (b"" for EOF) to the connection, then drain every available event."""
        if self.done:
            return
        self.conn.receive_data(data)
        self.drain()

    def drain(self) -> None:
        for _ in range(_MAX_EVENTS):
            try:
                event = self.conn.next_event()
            except ProtocolError as err:
                self._fail(err)
                return
            if event is NEED_DATA:
                return
            if event is PAUSED:
                if self._awaiting_response:
                    self._awaiting_response = False
                    self.conn.send_response(200, [], b"")
                    continue
                assert not self.conn.keep_alive, "PAUSED with no request to answer"
                self.outcome.end = "paused"
                self.done = True
                return
            if isinstance(event, ConnectionClosed):
                assert self._current is None, "ConnectionClosed in the middle of a request"
                self.outcome.end = "closed"
                self.done = True
                return
            if isinstance(event, Request):
                assert self._current is None, "a Request before the previous EndOfMessage"
                self._current = describe_request(event)
                self._body = bytearray()
            elif isinstance(event, Data):
                assert self._current is not None, "Data outside a request"
                assert isinstance(event.data, bytes)
                self._body += event.data
            elif isinstance(event, EndOfMessage):
                assert self._current is not None, "EndOfMessage outside a request"
                self._current["body"] = self._body.decode("latin-1")
                self._current["trailers"] = _pairs(event.trailers)
                self.outcome.requests.append(self._current)
                self._current = None
                self._awaiting_response = True
            else:
                raise AssertionError(f"unexpected event {event!r}")
        raise AssertionError("next_event() never asked for data")

    def _fail(self, err: ProtocolError) -> None:
        self.outcome.end = "error"
        self.outcome.status = err.status
        self.outcome.message = str(err)
        self.done = True
        # Sticky: no byte after a bad request may ever be parsed.
        for _ in range(2):
            try:
                event = self.conn.next_event()
            except ProtocolError:
                continue
            raise AssertionError(f"next_event() after a ProtocolError returned {event!r}")


def describe_request(req: Request) -> dict[str, Any]:
    """A Request as plain JSON-like values (bytes decoded as latin-1)."""
    return {
        "method": _text(req.method),
        "target": _text(req.target),
        "version": _text(req.http_version),
        "path": _text(req.path),
        "query": _text(req.query),
        "host": _text(req.host),
        "headers": _pairs(req.headers),
        "keep_alive": req.keep_alive,
        "expect_continue": req.expect_continue,
        "content_length": req.content_length,
        "chunked": req.chunked,
    }


def run_chunks(chunks: Iterable[bytes], limits: Limits | None = None, eof: bool = False) -> Outcome:
    """Feed each chunk in turn (then EOF if asked), draining events after each one.

    Empty chunks are skipped: to `receive_data`, b"" means EOF.
    """
    driver = Driver(limits)
    for chunk in chunks:
        if chunk:
            driver.feed(chunk)
    if eof:
        driver.feed(b"")
    return driver.outcome


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_split(data: bytes, seed: int) -> list[bytes]:
    """Cut `data` at a handful of seeded random places (pieces of 0 bytes included)."""
    rng = random.Random(seed)
    cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(1, 12)))
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(data[start:cut])
        start = cut
    pieces.append(data[start:])
    return pieces


def split_at(data: bytes, positions: Sequence[int]) -> list[bytes]:
    pieces, start = [], 0
    for pos in sorted(positions):
        pieces.append(data[start:pos])
        start = pos
    pieces.append(data[start:])
    return pieces


def check_extra(base: Outcome, extra: Outcome) -> None:
    """Bytes after the case must not change what the case itself produced."""
    if base.end in ("error", "paused"):
        assert extra.summary() == base.summary()
    elif base.end == "need_data":
        n = len(base.requests)
        assert extra.requests[:n] == base.requests
        assert extra.requests[n:] == [EXTRA_PARSED], "the request after the case was mangled"
        assert extra.end == "need_data"
    else:
        raise AssertionError(f"no extra-bytes check for an outcome ending {base.end!r}")


def run_case(data: bytes, limits: Limits | None = None, eof: bool = False) -> Outcome:
    """Run `data` whole, byte by byte and (without EOF) followed by a request; all must agree.

    Returns the outcome of the whole feed.
    """
    whole = run_chunks([data], limits, eof)
    by_byte = run_chunks(bytewise(data), limits, eof)
    assert by_byte.summary() == whole.summary(), "byte-by-byte feed differs from whole feed"
    if not eof:
        check_extra(whole, run_chunks([data + EXTRA_REQUEST], limits))
    return whole


def parse_one(data: bytes, limits: Limits | None = None) -> dict[str, Any]:
    """Run a case that must be exactly one valid request; return that request."""
    outcome = run_case(data, limits)
    assert outcome.end in ("need_data", "paused"), outcome
    assert len(outcome.requests) == 1, outcome
    return outcome.requests[0]


def error_status(data: bytes, limits: Limits | None = None, eof: bool = False) -> int:
    """Run a case that must fail; return the ProtocolError status."""
    outcome = run_case(data, limits, eof)
    assert outcome.end == "error", outcome
    assert outcome.status is not None
    return outcome.status


# -- the corpus file format --------------------------------------------------------------------

_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}


def decode_http_text(text: str) -> bytes:
    """Decode a corpus `.http` file: physical line breaks are dropped, escapes are decoded.

    Recognised escapes are ``\\r``, ``\\n``, ``\\t``, ``\\\\`` and ``\\xHH``; any other
    backslash sequence raises ValueError. Other characters are encoded as latin-1.
    """
    text = text.replace("\r", "").replace("\n", "")
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\":
            out += char.encode("latin-1")
            i += 1
            continue
        code = text[i + 1 : i + 2]
        if code in _ESCAPES:
            out += _ESCAPES[code]
            i += 2
        elif code == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", text[i + 2 : i + 4]):
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            raise ValueError(f"bad escape {text[i : i + 4]!r} at offset {i}")
    return bytes(out)
