"""Properties of the HTTP core, over generated input (hypothesis).

- Any bytes, and mostly-valid requests with a few bytes changed, cut anywhere: the parser
  gives events or a ProtocolError, never another exception, and where the cuts fall never
  changes the outcome.
- Requests serialised by the small writer below (Content-Length or chunked, with chunk
  extensions, odd hex case and trailers) parse back to what was generated.
- Our writer's chunked body, read as a chunked request body, gives back the data sent.
- Our writer's responses read back with the standard library's `http.client` to the same
  status, fields and body.

Example counts are bounded so this folder runs in a few seconds.
"""

from __future__ import annotations

import http.client
import io
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treadle.http import Data, EndOfMessage, Limits, Request, Response, ServerConnection

from ..http.helpers import Outcome, run_chunks, split_at

# report_multiple_bugs=False: stop shrinking after the first distinct failure, which keeps a
# failing run (while a core bug is open) from spending minutes shrinking every variant.
FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    report_multiple_bugs=False,
)
SLOW = settings(FAST, max_examples=60)

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VCHARS = "".join(chr(c) for c in range(0x21, 0x7F))
OBS_TEXT = "".join(chr(c) for c in range(0x80, 0x100))
# Names the parser or the writer give a meaning to; generated fields avoid them.
SPECIAL = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "expect",
    "date",
    "server",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
}

tokens = st.text(alphabet=TCHARS, min_size=1, max_size=8)
field_names = tokens.filter(lambda name: name.lower() not in SPECIAL)
# field-content: visible characters with single runs of SP/HTAB inside, none at the ends.
field_words = st.text(alphabet=VCHARS + OBS_TEXT, min_size=1, max_size=6)
field_values = st.just("") | st.builds(
    lambda first, rest: first + "".join(sep + word for sep, word in rest),
    field_words,
    st.lists(st.tuples(st.sampled_from([" ", "\t", "  "]), field_words), max_size=3),
)
ows = st.sampled_from(["", " ", "\t", " \t "])
path_chars = "".join(c for c in VCHARS if c not in "#?")
query_chars = "".join(c for c in VCHARS if c != "#")


def latin1(text: str) -> bytes:
    return text.encode("latin-1")


# -- generated requests ------------------------------------------------------------------------


@dataclass
class GenRequest:
    wire: bytes
    expected: dict[str, Any]


quoted_strings = st.text(
    alphabet="".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"\\') + "\t",
    max_size=6,
).map(lambda text: '"' + text + '"') | st.just('"a\\"b\\\\c"')
chunk_extensions = st.lists(
    st.tuples(ows, ows, tokens, st.none() | st.tuples(ows, ows, tokens | quoted_strings)),
    max_size=2,
).map(
    lambda exts: "".join(
        f"{before};{after}{name}" + ("" if value is None else f"{value[0]}={value[1]}{value[2]}")
        for before, after, name, value in exts
    )
)


@st.composite
def chunked_bodies(draw: st.DrawFn, body: bytes) -> bytes:
    """`body` as a chunked body: a few random cuts, extensions and hex spellings."""
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=3))))
    bounds = [0] + [cut for cut in cuts if cut < len(body)] + [len(body)]
    out = bytearray()
    for start, end in zip(bounds, bounds[1:], strict=False):
        if start == end:
            continue
        digits = f"{end - start:x}"
        digits = "0" * draw(st.integers(0, 16 - len(digits))) + digits
        digits = digits.upper() if draw(st.booleans()) else digits
        out += latin1(digits + draw(chunk_extensions)) + b"\r\n" + body[start:end] + b"\r\n"
    out += latin1("0" * draw(st.integers(1, 3)) + draw(chunk_extensions)) + b"\r\n"
    return bytes(out)


@st.composite
def generated_requests(draw: st.DrawFn, last: bool = True) -> GenRequest:
    method = draw(tokens.filter(lambda m: m != "CONNECT"))
    path = "/" + draw(st.text(alphabet=path_chars, max_size=12))
    query = draw(st.none() | st.text(alphabet=query_chars, max_size=12))
    target = path if query is None else f"{path}?{query}"
    version = draw(st.sampled_from(["1.1", "1.1", "1.0"]))
    body = draw(st.binary(max_size=40))
    framing = draw(st.sampled_from(["length", "chunked"] if version == "1.1" else ["length"]))
    if not body and draw(st.booleans()):
        framing = "none"

    fields = draw(st.lists(st.tuples(field_names, field_values), max_size=4))
    host = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=10))
    fields.insert(draw(st.integers(0, len(fields))), ("Host", host))
    if framing == "length":
        fields.insert(draw(st.integers(0, len(fields))), ("Content-Length", str(len(body))))
    elif framing == "chunked":
        fields.insert(draw(st.integers(0, len(fields))), ("Transfer-Encoding", "chunked"))
    keep_alive = version == "1.1"
    if version == "1.0" and not last:
        fields.append(("Connection", "keep-alive"))
        keep_alive = True

    head = f"{method} {target} HTTP/{version}\r\n"
    for name, value in fields:
        head += f"{name}:{draw(ows)}{value}{draw(ows)}\r\n"
    trailers: list[tuple[str, str]] = []
    if framing == "chunked":
        trailers = draw(st.lists(st.tuples(field_names, field_values), max_size=3))
        wire_body = draw(chunked_bodies(body))
        wire_body += latin1("".join(f"{n}:{draw(ows)}{v}{draw(ows)}\r\n" for n, v in trailers))
        wire_body += b"\r\n"
    else:
        wire_body = body
    expected = {
        "method": method,
        "target": target,
        "version": version,
        "path": path,
        "query": query or "",
        "host": host,
        "headers": [[name.lower(), value] for name, value in fields],
        "body": body.decode("latin-1"),
        "trailers": [[name.lower(), value] for name, value in trailers],
        "keep_alive": keep_alive,
        "content_length": len(body) if framing == "length" else None,
        "chunked": framing == "chunked",
    }
    return GenRequest(latin1(head) + b"\r\n" + wire_body, expected)


@st.composite
def pipelines(draw: st.DrawFn) -> list[GenRequest]:
    count = draw(st.integers(1, 3))
    return [draw(generated_requests(last=i == count - 1)) for i in range(count)]


def cuts_for(data: bytes) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, len(data)), max_size=8)


def strip_expect(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "expect_continue"} for r in requests]


@FAST
@given(pipelines(), st.data())
def test_serialised_requests_parse_back(requests: list[GenRequest], data: st.DataObject) -> None:
    wire = b"".join(r.wire for r in requests)
    cuts = data.draw(cuts_for(wire))
    outcome = run_chunks(split_at(wire, cuts))
    assert outcome.end != "error", (outcome.status, outcome.message)
    assert strip_expect(outcome.requests) == [r.expected for r in requests]


# -- any bytes, mutated requests: never another exception, split-independent ----------------


def same_outcome(data: bytes, cuts: list[int], limits: Limits | None, eof: bool) -> Outcome:
    whole = run_chunks([data], limits, eof)
    split = run_chunks(split_at(data, cuts), limits, eof)
    assert split.summary() == whole.summary(), (whole.message, split.message)
    return whole


@FAST
@given(st.binary(max_size=300), st.data(), st.booleans())
def test_any_bytes_give_events_or_protocol_error(
    data: bytes, draw: st.DataObject, eof: bool
) -> None:
    same_outcome(data, draw.draw(cuts_for(data)), None, eof)


@FAST
@given(
    st.lists(
        st.sampled_from(
            [
                b"GET / HTTP/1.1",
                b"\r\n",
                b"Host: a",
                b"0",
                b"\r",
                b"\n",
                b" ",
                b":",
                b"Transfer-Encoding: chunked",
                b"Content-Length: 3",
                b"abc",
                b'5;x="y"',
                b"\x00",
                b"\t",
            ]
        ),
        max_size=30,
    ),
    st.data(),
    st.booleans(),
)
def test_request_shaped_noise_gives_events_or_protocol_error(
    pieces: list[bytes], draw: st.DataObject, eof: bool
) -> None:
    data = b"".join(pieces)
    same_outcome(data, draw.draw(cuts_for(data)), None, eof)


MUTATION_BYTES = b'\r\n \t:;,="\x00\x0b\x0c\x7f\x80\xff0aA-/?#*'


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(r.wire for r in draw(pipelines())))
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(data)))
        byte = draw(st.sampled_from(MUTATION_BYTES))
        kind = draw(st.sampled_from(["insert", "replace", "delete"]))
        if kind == "insert" or pos == len(data):
            data.insert(pos, byte)
        elif kind == "replace":
            data[pos] = byte
        else:
            del data[pos]
    return bytes(data)


@FAST
@given(mutated(), st.data(), st.booleans())
def test_mutated_requests_give_events_or_protocol_error(
    data: bytes, draw: st.DataObject, eof: bool
) -> None:
    same_outcome(data, draw.draw(cuts_for(data)), None, eof)


SMALL_LIMITS = Limits(
    max_request_line_bytes=40, max_header_bytes=120, max_header_count=5, max_body_bytes=50
)


@FAST
@given(mutated(), st.data())
def test_small_limits_do_not_depend_on_the_split(data: bytes, draw: st.DataObject) -> None:
    same_outcome(data, draw.draw(cuts_for(data)), SMALL_LIMITS, False)


# -- our writer, read back ---------------------------------------------------------------------


def answering(request: bytes) -> ServerConnection:
    conn = ServerConnection(limits=Limits())
    conn.receive_data(request)
    assert isinstance(conn.next_event(), Request)
    while not isinstance(conn.next_event(), EndOfMessage):
        pass
    return conn


@SLOW
@given(st.lists(st.binary(max_size=40), max_size=8), st.data())
def test_writer_chunked_body_parses_as_a_chunked_request_body(
    pieces: list[bytes], draw: st.DataObject
) -> None:
    conn = answering(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    head = conn.send(Response(200, [(b"content-type", b"application/octet-stream")]))
    assert b"transfer-encoding: chunked" in head.lower()
    body = b"".join(conn.send(Data(piece)) for piece in pieces) + conn.send(EndOfMessage())
    request = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    outcome = run_chunks(split_at(request, draw.draw(cuts_for(request))))
    assert outcome.end == "need_data", outcome.message
    assert [r["body"] for r in outcome.requests] == [b"".join(pieces).decode("latin-1")]
    assert outcome.requests[0]["trailers"] == []


class FakeSocket:
    """Just enough of a socket for `http.client.HTTPResponse`."""

    def __init__(self, data: bytes) -> None:
        self._file = io.BytesIO(data)

    def makefile(self, mode: str, *args: object, **kwargs: object) -> io.BytesIO:
        assert "r" in mode
        return self._file


response_values = st.text(alphabet=VCHARS, min_size=1, max_size=10)


@SLOW
@given(
    status=st.sampled_from([200, 201, 202, 204, 301, 304, 400, 404, 418, 500, 503]),
    fields=st.lists(st.tuples(field_names, response_values), max_size=5),
    pieces=st.lists(st.binary(max_size=30), max_size=5),
    method=st.sampled_from([b"GET", b"HEAD", b"POST"]),
    version=st.sampled_from([b"1.1", b"1.0"]),
    mode=st.sampled_from(["send_response", "streamed_length", "streamed"]),
)
def test_writer_responses_read_back_with_http_client(
    status: int,
    fields: list[tuple[str, str]],
    pieces: list[bytes],
    method: bytes,
    version: bytes,
    mode: str,
) -> None:
    host = b"Host: a\r\n" if version == b"1.1" else b""
    conn = answering(method + b" / HTTP/" + version + b"\r\n" + host + b"\r\n")
    headers = [(latin1(n), latin1(v)) for n, v in fields]
    body = b"".join(pieces)
    if mode == "send_response":
        wire = conn.send_response(status, headers, body)
    else:
        if mode == "streamed_length":
            headers.append((b"Content-Length", b"%d" % len(body)))
        wire = conn.send(Response(status, headers))
        wire += b"".join(conn.send(Data(piece)) for piece in pieces)
        wire += conn.send(EndOfMessage())

    response = http.client.HTTPResponse(FakeSocket(wire), method=method.decode())  # type: ignore[arg-type]
    response.begin()
    assert response.status == status
    for name, value in fields:
        assert value in response.msg.get_all(name, [])
    no_body = method == b"HEAD" or status in (204, 304)
    assert response.read() == (b"" if no_body else body)
    assert response.will_close == (not conn.keep_alive)
