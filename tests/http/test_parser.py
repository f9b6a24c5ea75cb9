"""Receiving requests: raw bytes in, events or a ProtocolError out.

The corpus (test_corpus.py) covers the grammar case by case; this file covers what a file
cannot say well: the event sequence itself, PAUSED and pipelining, EOF, error stickiness,
limits enforced while bytes are still arriving, and the Headers API.
"""

from __future__ import annotations

import pytest

from treadle.http import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Headers,
    Limits,
    ProtocolError,
    Request,
    Response,
    ServerConnection,
)

from .helpers import error_status, parse_one, run_case, run_chunks

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def events_until_pause(conn: ServerConnection) -> list[object]:
    """Every event up to (not including) the first NEED_DATA or PAUSED, then that too."""
    out: list[object] = []
    while True:
        event = conn.next_event()
        out.append(event)
        if event is NEED_DATA or event is PAUSED or isinstance(event, ConnectionClosed):
            return out


def receive(data: bytes, limits: Limits | None = None) -> ServerConnection:
    conn = ServerConnection(limits=limits or Limits())
    conn.receive_data(data)
    return conn


def raises_status(conn: ServerConnection) -> int:
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    return info.value.status


# -- the event sequence ----------------------------------------------------------------------


def test_request_without_body_is_request_then_end_of_message() -> None:
    conn = receive(GET)
    events = events_until_pause(conn)
    assert [type(e) for e in events[:2]] == [Request, EndOfMessage]
    assert events[2] is PAUSED
    request = events[0]
    assert isinstance(request, Request)
    assert request.method == b"GET"
    assert request.target == b"/"
    assert request.http_version == b"1.1"
    assert request.path == b"/"
    assert request.query == b""
    assert request.host == b"a"
    assert request.keep_alive is True
    assert request.expect_continue is False
    assert request.content_length is None
    assert request.chunked is False
    end = events[1]
    assert isinstance(end, EndOfMessage)
    assert len(end.trailers) == 0


def test_body_comes_as_data_and_stops_at_content_length() -> None:
    conn = receive(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel")
    request = conn.next_event()
    assert isinstance(request, Request)
    assert request.content_length == 5
    first = conn.next_event()
    assert isinstance(first, Data)
    assert first.data == b"hel"
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"loGET /next")
    second = conn.next_event()
    assert isinstance(second, Data)
    assert second.data == b"lo"
    assert isinstance(conn.next_event(), EndOfMessage)
    assert conn.next_event() is PAUSED


def test_head_split_anywhere_needs_data_until_complete() -> None:
    for cut in range(1, len(GET)):
        conn = receive(GET[:cut])
        assert conn.next_event() is NEED_DATA, cut
        conn.receive_data(GET[cut:])
        assert isinstance(conn.next_event(), Request), cut


def test_chunked_trailers_stay_out_of_the_request_headers() -> None:
    conn = receive(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"
    )
    request = conn.next_event()
    assert isinstance(request, Request)
    assert request.chunked is True
    assert request.content_length is None
    body = b""
    while isinstance(event := conn.next_event(), Data):
        body += event.data
    assert body == b"abc"
    assert isinstance(event, EndOfMessage)
    assert list(event.trailers) == [(b"x-sum", b"1")]
    assert "x-sum" not in request.headers
    assert request.headers.get_all("x-sum") == []


# -- PAUSED and pipelining -------------------------------------------------------------------


def test_paused_until_the_whole_response_is_sent() -> None:
    conn = receive(GET + b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert [type(e) for e in events_until_pause(conn)[:2]] == [Request, EndOfMessage]
    assert conn.next_event() is PAUSED
    conn.send(Response(status=200, headers=[(b"content-length", b"2")]))
    assert conn.next_event() is PAUSED, "the response head alone does not finish it"
    conn.send(Data(b"ok"))
    assert conn.next_event() is PAUSED
    conn.send(EndOfMessage())
    second = conn.next_event()
    assert isinstance(second, Request)
    assert second.target == b"/2"


def test_pipelined_requests_come_out_in_order() -> None:
    targets = [b"/%d" % i for i in range(20)]
    stream = b"".join(b"GET " + t + b" HTTP/1.1\r\nHost: a\r\n\r\n" for t in targets)
    conn = receive(stream)
    seen = []
    for _ in targets:
        events = events_until_pause(conn)
        assert isinstance(events[0], Request)
        seen.append(events[0].target)
        assert events[-1] is PAUSED
        conn.send_response(200, [], b"")
        assert conn.keep_alive is True
    assert seen == targets
    assert conn.next_event() is NEED_DATA


def test_connection_close_pauses_forever() -> None:
    conn = receive(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + GET)
    events = events_until_pause(conn)
    assert isinstance(events[0], Request)
    assert events[0].keep_alive is False
    conn.send_response(200, [], b"")
    assert conn.keep_alive is False
    for _ in range(3):
        assert conn.next_event() is PAUSED
    conn.receive_data(GET)
    assert conn.next_event() is PAUSED


def test_http10_without_keep_alive_pauses_forever() -> None:
    conn = receive(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n")
    assert isinstance(conn.next_event(), Request)
    assert isinstance(conn.next_event(), EndOfMessage)
    conn.send_response(200, [], b"x")
    assert conn.keep_alive is False
    assert conn.next_event() is PAUSED


# -- end of input ----------------------------------------------------------------------------


def test_eof_between_requests_is_connection_closed() -> None:
    conn = receive(b"")
    assert isinstance(conn.next_event(), ConnectionClosed)
    assert isinstance(conn.next_event(), ConnectionClosed)


def test_eof_after_request_comes_after_the_response() -> None:
    conn = receive(GET)
    conn.receive_data(b"")
    assert [type(e) for e in events_until_pause(conn)] == [Request, EndOfMessage, type(PAUSED)]
    conn.send_response(200, [], b"")
    assert isinstance(conn.next_event(), ConnectionClosed)


@pytest.mark.parametrize(
    "data",
    [
        b"G",
        b"GET / HTTP/1.1\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
    ],
    ids=["method", "head", "final-cr", "cl-body", "chunk-data", "next-chunk", "trailers"],
)
def test_eof_in_the_middle_of_a_request_is_400(data: bytes) -> None:
    assert error_status(data, eof=True) == 400


# -- errors are final ------------------------------------------------------------------------


def test_error_is_sticky_even_with_valid_requests_after_it() -> None:
    conn = receive(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n" + GET + GET)
    assert raises_status(conn) == 400
    assert raises_status(conn) == 400
    conn.receive_data(GET)
    assert raises_status(conn) == 400
    conn.receive_data(b"")
    assert raises_status(conn) == 400


def test_error_message_is_one_short_line_showing_the_bytes() -> None:
    conn = receive(b"GET / HTTP/1.1\r\nHost: a\r\nX-Bad: " + b"\x01" * 5000 + b"\r\n\r\n")
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    message = str(info.value)
    assert info.value.status == 400
    assert "\n" not in message and "\r" not in message
    assert len(message) < 300
    assert "\\x01" in message, "the offending bytes are shown with !r"


def test_error_message_for_a_bad_request_line_shows_it() -> None:
    conn = receive(b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert "\\x7f" in str(info.value)


# -- limits, enforced as bytes arrive --------------------------------------------------------


def feed_until_error(conn: ServerConnection, pieces: list[bytes]) -> tuple[int, int]:
    """Feed pieces until next_event raises; return (status, bytes fed by then).

    A Request or body Data may come out on the way; anything else fails the test.
    """
    fed = 0
    for piece in pieces:
        conn.receive_data(piece)
        fed += len(piece)
        try:
            while isinstance(event := conn.next_event(), (Request, Data)):
                pass
        except ProtocolError as err:
            return err.status, fed
        assert event is NEED_DATA
    raise AssertionError(f"no error after {fed} bytes")


def test_request_line_limit_passes_without_a_line_end() -> None:
    limit = 64
    conn = ServerConnection(limits=Limits(max_request_line_bytes=limit))
    status, fed = feed_until_error(conn, [b"GET /"] + [b"a" * 7] * 1000)
    assert status == 414
    assert fed <= limit + 7


def test_request_line_limit_boundary() -> None:
    limit = 64
    line = b"GET /" + b"a" * (limit - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"
    assert len(line) == limit
    assert parse_one(line + b"\r\nHost: a\r\n\r\n", Limits(max_request_line_bytes=limit))
    longer = b"GET /a" + line[5:]
    too_long = longer + b"\r\nHost: a\r\n\r\n"
    assert error_status(too_long, Limits(max_request_line_bytes=limit)) == 414
    # Byte by byte, the line is refused once it is longer than the limit, line end or not.
    conn = ServerConnection(limits=Limits(max_request_line_bytes=limit))
    status, fed = feed_until_error(conn, [longer[i : i + 1] for i in range(len(longer))])
    assert (status, fed) == (414, limit + 1)


def test_default_request_line_limit_is_8_kib() -> None:
    under = b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    assert parse_one(under)["target"] == "/" + "a" * 8000
    over = b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    assert error_status(over) == 414
    conn = ServerConnection(limits=Limits())
    status, fed = feed_until_error(conn, [b"GET /"] + [b"a" * 100] * 200)
    assert status == 414
    assert fed <= 8192 + 100


def test_header_bytes_limit_passes_inside_one_endless_line() -> None:
    limit = 256
    conn = ServerConnection(limits=Limits(max_header_bytes=limit))
    pieces = [b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: "] + [b"v" * 10] * 1000
    status, fed = feed_until_error(conn, pieces)
    assert status == 431
    assert fed <= len(pieces[0]) + limit + 10


def test_header_bytes_limit_passes_over_many_lines() -> None:
    limit = 256
    conn = ServerConnection(limits=Limits(max_header_bytes=limit, max_header_count=1000))
    pieces = [b"GET / HTTP/1.1\r\nHost: a\r\n"] + [b"X-A: bb\r\n"] * 1000
    status, fed = feed_until_error(conn, pieces)
    assert status == 431
    assert fed <= 16 + limit + 9


def test_default_header_bytes_limit_is_64_kib() -> None:
    under = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 60_000 + b"\r\n\r\n"
    assert len(parse_one(under)["headers"][1][1]) == 60_000
    over = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 66_000 + b"\r\n\r\n"
    assert error_status(over) == 431


def test_header_count_limit_passes_before_the_head_ends() -> None:
    conn = ServerConnection(limits=Limits(max_header_count=5))
    pieces = [b"GET / HTTP/1.1\r\nHost: a\r\n"] + [b"X: y\r\n"] * 100
    status, fed = feed_until_error(conn, pieces)
    assert status == 431
    assert fed <= 16 + 9 + 6 * 6


def test_default_header_count_limit_is_100() -> None:
    def head(count: int) -> bytes:
        fields = b"".join(b"X-%d: v\r\n" % i for i in range(count - 1))
        return b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n"

    assert len(parse_one(head(100))["headers"]) == 100
    assert error_status(head(101)) == 431


def test_trailer_section_is_bounded() -> None:
    conn = ServerConnection(limits=Limits(max_header_bytes=256, max_header_count=1000))
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    status, fed = feed_until_error(conn, [head] + [b"X-T: " + b"v" * 20 + b"\r\n"] * 1000)
    assert status in (400, 431)
    assert fed < len(head) + 2 * 256 + 27


def test_endless_chunk_extension_is_refused() -> None:
    conn = ServerConnection(limits=Limits())
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext="
    status, fed = feed_until_error(conn, [head] + [b"a" * 100] * 10_000)
    assert status == 400
    assert fed < len(head) + 64 * 1024


def test_endless_chunk_size_is_refused() -> None:
    conn = ServerConnection(limits=Limits())
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    status, fed = feed_until_error(conn, [head] + [b"1" * 10] * 10_000)
    assert status == 400
    assert fed < len(head) + 8 * 1024


def test_content_length_over_limit_is_refused_before_the_body() -> None:
    conn = receive(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n",
        Limits(max_body_bytes=1000),
    )
    assert raises_status(conn) == 413


def test_chunked_body_over_limit_is_refused_as_it_grows() -> None:
    conn = ServerConnection(limits=Limits(max_body_bytes=16))
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert isinstance(conn.next_event(), Request)
    conn.receive_data(b"10\r\n0123456789abcdef\r\n")
    body = b""
    while isinstance(event := conn.next_event(), Data):
        body += event.data
    assert event is NEED_DATA
    assert body == b"0123456789abcdef"
    conn.receive_data(b"1\r\nX")
    assert raises_status(conn) == 413


def test_body_of_exactly_the_limit_is_fine() -> None:
    body = b"x" * 1000
    limits = Limits(max_body_bytes=1000)
    request = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + body
    assert parse_one(request, limits)["body"] == body.decode()


# -- resuming where the last feed stopped -------------------------------------------------------
# Both cases are a head or trailer section whose end arrives in a later receive_data() after
# earlier bytes of the buffer were consumed: the parser must find the end wherever it lands.


def test_trailers_completed_by_a_later_feed() -> None:
    conn = receive(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n")
    assert isinstance(conn.next_event(), Request)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"X: y\r\n\r\n")
    end = conn.next_event()
    assert isinstance(end, EndOfMessage)
    assert list(end.trailers) == [(b"x", b"y")]


def test_pipelined_head_completed_by_a_later_feed() -> None:
    conn = receive(GET + b"GET /2 HTTP/1.1\r\nHo")
    assert [type(e) for e in events_until_pause(conn)] == [Request, EndOfMessage, type(PAUSED)]
    conn.send_response(200, [], b"")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"st: a\r\n\r\n")
    second = conn.next_event()
    assert isinstance(second, Request)
    assert second.target == b"/2"


def test_pipelined_request_whose_first_byte_came_with_the_previous_one() -> None:
    first = GET + b"G"
    rest = b"ET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n"
    outcome = run_chunks([first, rest])
    assert outcome.end == "need_data", outcome.message
    assert [r["target"] for r in outcome.requests] == ["/", "/2", "/3"]


def test_a_head_with_two_faults_fails_the_same_whatever_the_split() -> None:
    # A bare LF (400) at the start and a header section over the limit (431): fed whole or
    # in pieces, the parser must settle on one answer.
    data = b"\nGET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 300 + b"\r\n\r\n"
    assert error_status(data, Limits(max_header_bytes=100)) in (400, 431)


# -- Headers ---------------------------------------------------------------------------------


def test_headers_api() -> None:
    conn = receive(b"GET / HTTP/1.1\r\nHost: a\r\nX-Dup: 1\r\nAccept: */*\r\nx-dup:  2 \r\n\r\n")
    request = conn.next_event()
    assert isinstance(request, Request)
    headers = request.headers
    assert isinstance(headers, Headers)
    assert len(headers) == 4
    assert list(headers) == [
        (b"host", b"a"),
        (b"x-dup", b"1"),
        (b"accept", b"*/*"),
        (b"x-dup", b"2"),
    ]
    assert headers[0] == (b"host", b"a")
    assert headers.get(b"host") == b"a"
    assert headers.get("HOST") == b"a"
    assert headers.get(b"X-Dup") == b"1"
    assert headers.get(b"missing") is None
    assert headers.get_all(b"x-dup") == [b"1", b"2"]
    assert headers.get_all("X-DUP") == [b"1", b"2"]
    assert headers.get_all(b"missing") == []
    assert b"accept" in headers
    assert "Accept" in headers
    assert b"content-type" not in headers
    for name, value in headers:
        assert isinstance(name, bytes) and isinstance(value, bytes)
        assert name == name.lower()


def test_request_fields_of_an_absolute_form_target() -> None:
    request = parse_one(b"GET http://h.example:81/a/b?c=d?e HTTP/1.1\r\nHost: x\r\n\r\n")
    assert request["host"] == "h.example:81"
    assert request["path"] == "/a/b"
    assert request["query"] == "c=d?e"
    assert request["target"] == "http://h.example:81/a/b?c=d?e"


def test_outcome_does_not_depend_on_where_the_bytes_are_cut() -> None:
    # run_case compares whole, byte-by-byte and extra-bytes runs; do it on a dense stream.
    stream = (
        b"\r\nPOST /a?b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'1;x="y"\r\nA\r\nf\r\n0123456789abcde\r\n0\r\nT: 1\r\n\r\n'
        b"PUT /c HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nxyz"
    )
    outcome = run_case(stream)
    assert [r["body"] for r in outcome.requests] == ["A0123456789abcde", "xyz"]
    assert outcome.requests[0]["trailers"] == [["t", "1"]]
    assert outcome.requests[1]["expect_continue"] is True
