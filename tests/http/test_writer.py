"""Sending responses: events in, bytes out.

Each test receives a real request first (the writer's framing depends on it), then checks
the bytes produced. Responses are read back with a small strict splitter below, so a test
says which header it expects without depending on field order or name case.
"""

from __future__ import annotations

import email.utils

import pytest

from treadle.http import (
    NEED_DATA,
    PAUSED,
    Data,
    EndOfMessage,
    InformationalResponse,
    Limits,
    LocalProtocolError,
    PreparedFields,
    Request,
    Response,
    ResponseDefaults,
    ServerConnection,
    error_response,
    format_date,
)

DATE = b"Sun, 06 Nov 1994 08:49:37 GMT"
GET11 = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\n\r\n"
GET10_KEEP = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
HEAD11 = b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"


def ready(request: bytes, defaults: ResponseDefaults | None = None) -> ServerConnection:
    """A connection that has received `request` whole and waits for its response."""
    conn = ServerConnection(limits=Limits(), defaults=defaults)
    conn.receive_data(request)
    assert isinstance(conn.next_event(), Request)
    while not isinstance(conn.next_event(), EndOfMessage):
        pass
    assert conn.next_event() is PAUSED
    return conn


def split_response(data: bytes) -> tuple[bytes, dict[str, list[str]], bytes]:
    """(status line, fields by lowercased name, everything after the head)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, f"no end of head in {data!r}"
    lines = head.split(b"\r\n")
    fields: dict[str, list[str]] = {}
    for line in lines[1:]:
        assert b"\n" not in line and b"\r" not in line
        name, colon, value = line.partition(b":")
        assert colon and name and name == name.strip(), line
        fields.setdefault(name.decode("latin-1").lower(), []).append(
            value.strip(b" \t").decode("latin-1")
        )
    return lines[0], fields, rest


def one(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name, [])
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def connection_tokens(fields: dict[str, list[str]]) -> set[str]:
    return {
        token.strip().lower()
        for value in fields.get("connection", [])
        for token in value.split(",")
    }


# -- status line and defaults ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (200, b"HTTP/1.1 200 OK"),
        (201, b"HTTP/1.1 201 Created"),
        (404, b"HTTP/1.1 404 Not Found"),
        (500, b"HTTP/1.1 500 Internal Server Error"),
    ],
)
def test_status_line(status: int, line: bytes) -> None:
    status_line, _, _ = split_response(ready(GET11).send_response(status, [], b""))
    assert status_line == line


def test_status_line_is_http11_to_an_http10_client() -> None:
    status_line, _, _ = split_response(ready(GET10).send_response(200, [], b""))
    assert status_line == b"HTTP/1.1 200 OK"


def test_custom_reason_phrase() -> None:
    out = ready(GET11).send(
        Response(status=299, headers=[(b"content-length", b"0")], reason=b"Fine")
    )
    assert split_response(out)[0] == b"HTTP/1.1 299 Fine"


@pytest.mark.parametrize("reason", [b"a\r\nX: y", b"a\nb", b"a\x00"])
def test_bad_reason_phrase_raises(reason: bytes) -> None:
    conn = ready(GET11)
    with pytest.raises(LocalProtocolError):
        conn.send(Response(status=200, reason=reason))


def test_date_and_server_come_from_the_shared_defaults() -> None:
    defaults = ResponseDefaults(server=b"treadle", date=DATE)
    first, second = ready(GET11, defaults), ready(GET11, defaults)
    _, fields, _ = split_response(first.send_response(200, [], b""))
    assert one(fields, "date") == DATE.decode()
    assert one(fields, "server") == "treadle"
    later = format_date(784111777 + 3600)
    defaults.date = later
    _, fields, _ = split_response(second.send_response(200, [], b""))
    assert one(fields, "date") == later.decode(), "the driver refreshes one shared object"


def test_format_date() -> None:
    assert format_date(0) == b"Thu, 01 Jan 1970 00:00:00 GMT"
    assert format_date(784111777) == DATE
    assert format_date(784111777.999) == DATE
    # Leap days, century rules and far dates, against the standard library.
    for epoch_s in (951782400, 951868800, 4107542400, 4102444799, 1709164800, 253402300799):
        expected = email.utils.formatdate(epoch_s, usegmt=True).encode()
        assert format_date(epoch_s) == expected


# -- framing: Content-Length, chunked, close-delimited -----------------------------------------


def test_send_response_sets_content_length() -> None:
    conn = ready(GET11)
    out = conn.send_response(200, [(b"content-type", b"text/plain")], b"hello")
    _, fields, body = split_response(out)
    assert one(fields, "content-length") == "5"
    assert one(fields, "content-type") == "text/plain"
    assert "transfer-encoding" not in fields
    assert body == b"hello"
    assert conn.keep_alive is True


def test_app_content_length_is_used_and_enforced() -> None:
    conn = ready(GET11)
    _, fields, rest = split_response(conn.send(Response(200, [(b"Content-Length", b"4")])))
    assert one(fields, "content-length") == "4"
    assert "transfer-encoding" not in fields
    assert rest == b""
    assert conn.send(Data(b"ab")) == b"ab"
    with pytest.raises(LocalProtocolError):
        conn.send(Data(b"cde"))  # one byte more than announced would desync the client


def test_chunked_to_http11_without_content_length() -> None:
    conn = ready(GET11 + GET11)
    _, fields, rest = split_response(conn.send(Response(200, [(b"x-a", b"b")])))
    assert one(fields, "transfer-encoding").lower() == "chunked"
    assert "content-length" not in fields
    assert rest == b""
    assert conn.send(Data(b"abc")) == b"3\r\nabc\r\n"
    assert conn.send(Data(b"")) == b"", "an empty Data must not end the chunked body"
    assert conn.send(Data(b"0123456789")).lower() == b"a\r\n0123456789\r\n"
    assert conn.send(EndOfMessage()) == b"0\r\n\r\n"
    assert conn.keep_alive is True
    assert isinstance(conn.next_event(), Request)


@pytest.mark.parametrize("request_bytes", [GET11, GET10], ids=["1.1", "1.0"])
def test_app_content_length_and_chunked_give_one_framing(request_bytes: bytes) -> None:
    # RFC 9112 6.2: never both Content-Length and Transfer-Encoding in one message.
    conn = ready(request_bytes)
    head = conn.send(Response(200, [(b"content-length", b"4"), (b"transfer-encoding", b"chunked")]))
    _, fields, _ = split_response(head)
    assert not ("content-length" in fields and "transfer-encoding" in fields), head
    body = conn.send(Data(b"abcd")) + conn.send(EndOfMessage())
    if "content-length" in fields:
        assert one(fields, "content-length") == "4"
        assert body == b"abcd"


@pytest.mark.parametrize("request_bytes", [GET10, GET10_KEEP], ids=["plain", "keep-alive"])
def test_close_delimited_to_http10_without_content_length(request_bytes: bytes) -> None:
    conn = ready(request_bytes + GET10)
    _, fields, rest = split_response(conn.send(Response(200, [])))
    assert "transfer-encoding" not in fields
    assert "content-length" not in fields
    assert conn.send(Data(b"abc")) == b"abc"
    assert conn.send(EndOfMessage()) == b""
    assert conn.keep_alive is False
    assert conn.next_event() is PAUSED


def test_http10_keep_alive_with_content_length_stays_open() -> None:
    conn = ready(GET10_KEEP + GET10)
    _, fields, body = split_response(conn.send_response(200, [], b"abc"))
    assert body == b"abc"
    assert "keep-alive" in connection_tokens(fields), "an HTTP/1.0 client must be told"
    assert conn.keep_alive is True
    assert isinstance(conn.next_event(), Request)


def test_http10_response_says_close() -> None:
    conn = ready(GET10)
    _, fields, _ = split_response(conn.send_response(200, [], b"abc"))
    assert "keep-alive" not in connection_tokens(fields)
    assert conn.keep_alive is False


# -- responses without a body --------------------------------------------------------------------


def test_head_keeps_headers_and_drops_the_body() -> None:
    conn = ready(HEAD11 + GET11)
    out = conn.send_response(200, [(b"content-type", b"text/plain")], b"hello")
    _, fields, rest = split_response(out)
    assert rest == b""
    assert one(fields, "content-length") == "5", "HEAD announces what GET would send"
    assert conn.keep_alive is True
    assert isinstance(conn.next_event(), Request)


def test_head_streamed_body_is_dropped() -> None:
    conn = ready(HEAD11 + GET11)
    _, _, rest = split_response(conn.send(Response(200, [(b"content-type", b"text/plain")])))
    assert rest == b""
    assert conn.send(Data(b"hello")) == b""
    assert conn.send(EndOfMessage()) == b"", "no last-chunk after a HEAD response"
    assert conn.keep_alive is True
    assert isinstance(conn.next_event(), Request)


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_send_no_body(status: int) -> None:
    conn = ready(GET11 + GET11)
    _, fields, rest = split_response(conn.send_response(status, [], b""))
    assert rest == b""
    assert "transfer-encoding" not in fields
    if status == 204:
        assert "content-length" not in fields, "RFC 9110 8.6: never in a 204"
    assert conn.keep_alive is True
    assert isinstance(conn.next_event(), Request)


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_streamed(status: int) -> None:
    conn = ready(GET11 + GET11)
    _, fields, rest = split_response(conn.send(Response(status, [])))
    assert rest == b""
    assert "transfer-encoding" not in fields
    try:
        out = conn.send(Data(b"x"))
    except LocalProtocolError:
        out = b""
    assert out == b""
    assert conn.send(EndOfMessage()) == b""


def test_continue_then_final_response() -> None:
    conn = ServerConnection(limits=Limits())
    conn.receive_data(
        b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    )
    request = conn.next_event()
    assert isinstance(request, Request)
    assert request.expect_continue is True
    assert conn.next_event() is NEED_DATA
    interim = conn.send(InformationalResponse(100))
    status_line, fields, rest = split_response(interim)
    assert status_line == b"HTTP/1.1 100 Continue"
    assert rest == b""
    assert "content-length" not in fields and "transfer-encoding" not in fields
    conn.receive_data(b"abc")
    data = conn.next_event()
    assert isinstance(data, Data) and data.data == b"abc"
    assert isinstance(conn.next_event(), EndOfMessage)
    assert conn.next_event() is PAUSED
    _, _, body = split_response(conn.send_response(201, [], b"ok"))
    assert body == b"ok"
    assert conn.keep_alive is True
    assert conn.next_event() is NEED_DATA


# -- what application code may not send ----------------------------------------------------------

BAD_FIELDS = [
    (b"x y", b"v"),
    (b"x:y", b"v"),
    (b"", b"v"),
    (b"x\r\ny", b"v"),
    (b"x\x00", b"v"),
    (b"x(", b"v"),
    (b"x", b"a\r\nSet-Cookie: evil=1"),
    (b"x", b"a\nb"),
    (b"x", b"a\rb"),
    (b"x", b"a\x00b"),
    ("x", "a\r\nb"),
    ("x y", "v"),
]
BAD_IDS = [repr(pair)[:40] for pair in BAD_FIELDS]


@pytest.mark.parametrize("field", BAD_FIELDS, ids=BAD_IDS)
def test_bad_field_in_response_raises_and_sends_nothing(field: tuple[bytes, bytes]) -> None:
    conn = ready(GET11)
    with pytest.raises(LocalProtocolError):
        conn.send(Response(200, [(b"content-length", b"0"), field]))
    # Nothing went out: the application can still answer properly.
    status_line, _, _ = split_response(conn.send_response(500, [], b""))
    assert status_line == b"HTTP/1.1 500 Internal Server Error"


@pytest.mark.parametrize("field", BAD_FIELDS, ids=BAD_IDS)
def test_bad_field_in_send_response_raises(field: tuple[bytes, bytes]) -> None:
    conn = ready(GET11)
    with pytest.raises(LocalProtocolError):
        conn.send_response(200, [field], b"body")
    assert conn.send_response(500, [], b"")


@pytest.mark.parametrize("field", BAD_FIELDS, ids=BAD_IDS)
def test_bad_field_in_informational_response_raises(field: tuple[bytes, bytes]) -> None:
    conn = ready(GET11)
    with pytest.raises(LocalProtocolError):
        conn.send(InformationalResponse(103, [field]))


def test_local_protocol_error_is_a_value_error() -> None:
    assert issubclass(LocalProtocolError, ValueError)


def test_str_fields_are_latin1() -> None:
    conn = ready(GET11)
    out = conn.send_response(200, [("X-Name", "caf\xe9")], b"")
    assert b"caf\xe9\r\n" in out
    _, fields, _ = split_response(out)
    assert one(fields, "x-name") == "caf\xe9"


def test_data_before_the_response_head_raises() -> None:
    conn = ready(GET11)
    with pytest.raises(LocalProtocolError):
        conn.send(Data(b"x"))


def test_second_response_raises() -> None:
    conn = ready(GET11)
    conn.send_response(200, [], b"")
    with pytest.raises(LocalProtocolError):
        conn.send_response(200, [], b"")


# -- Connection: close from the application ------------------------------------------------------


@pytest.mark.parametrize("value", [b"close", b"Close", b"keep-alive, CLOSE"])
def test_app_connection_close_ends_keep_alive(value: bytes) -> None:
    conn = ready(GET11 + GET11)
    _, fields, _ = split_response(conn.send_response(200, [(b"Connection", value)], b""))
    assert "close" in connection_tokens(fields)
    assert conn.keep_alive is False
    assert conn.next_event() is PAUSED, "the pipelined request is never read"


def test_app_connection_close_streamed() -> None:
    conn = ready(GET11 + GET11)
    conn.send(Response(200, [("connection", "close"), ("content-length", "1")]))
    conn.send(Data(b"x"))
    conn.send(EndOfMessage())
    assert conn.keep_alive is False
    assert conn.next_event() is PAUSED


def test_client_connection_close_is_announced() -> None:
    conn = ready(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    _, fields, _ = split_response(conn.send_response(200, [], b""))
    assert "close" in connection_tokens(fields)
    assert conn.keep_alive is False


# -- error_response ------------------------------------------------------------------------------


def test_error_response_is_short_plain_and_closes() -> None:
    out = error_response(400, "invalid Host field b'a b'")
    status_line, fields, body = split_response(out)
    assert status_line == b"HTTP/1.1 400 Bad Request"
    assert "close" in connection_tokens(fields)
    assert one(fields, "content-type").startswith("text/plain")
    assert int(one(fields, "content-length")) == len(body)
    assert b"Bad Request" in body
    assert b"invalid Host field b'a b'" in body
    assert b"Traceback" not in body
    assert "date" not in fields


@pytest.mark.parametrize("status", [400, 413, 414, 417, 431, 501, 505])
def test_error_response_for_each_protocol_status(status: int) -> None:
    status_line, fields, body = split_response(error_response(status, "why", date=DATE))
    assert status_line.startswith(b"HTTP/1.1 %d " % status)
    assert one(fields, "date") == DATE.decode()
    assert int(one(fields, "content-length")) == len(body)


def test_error_response_message_stays_one_line() -> None:
    message = "first line\n  second line\r\nthird line"
    _, fields, body = split_response(error_response(500, message))
    assert int(one(fields, "content-length")) == len(body)
    status_text, _, rest = body.partition(b"\n")
    assert b"500" in status_text
    assert rest.count(b"\n") <= 1, "the message is one line, whatever it was given"


def test_application_date_and_server_replace_the_defaults() -> None:
    from treadle.http import ResponseDefaults, ServerConnection

    conn = ServerConnection(defaults=ResponseDefaults(server=b"treadle", date=b"D"))
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.next_event()
    conn.next_event()
    out = conn.send_response(200, [("Server", "mine")], b"hi")
    assert out.lower().count(b"server:") == 1
    assert b"Server: mine\r\n" in out
    assert b"date: D\r\n" in out


def test_connection_close_is_matched_as_a_token() -> None:
    from treadle.http import ServerConnection

    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.next_event()
    conn.next_event()
    out = conn.send_response(200, [("Connection", "x-closed")], b"hi")
    assert conn.keep_alive
    assert b"x-closed" not in out


def test_fields_given_as_lists_are_accepted() -> None:
    from treadle.http import ServerConnection

    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.next_event()
    conn.next_event()
    out = conn.send_response(200, [["x-a", "1"]], b"hi")  # type: ignore[list-item]
    assert b"x-a: 1\r\n" in out


def test_a_field_value_that_is_not_text_is_our_error() -> None:
    from treadle.http import LocalProtocolError, ServerConnection

    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.next_event()
    conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.send_response(200, [("x-count", 5)], b"hi")  # type: ignore[list-item]


# ------------------------------------------------------------------ prepared fields

PREPARED_CASES = [
    [(b"content-type", b"text/plain"), (b"etag", b'"x"')],
    [("Content-Type", "text/html; charset=utf-8"), ("Server", "mine")],
    [(b"date", DATE), (b"x-a", b"1"), (b"x-a", b"2")],
    [],
]


@pytest.mark.parametrize("fields", PREPARED_CASES)
@pytest.mark.parametrize("request_bytes", [GET11, GET10, GET10_KEEP, HEAD11])
def test_prepared_fields_give_the_same_bytes_as_the_list(fields, request_bytes):
    """The fast path and the slow path, fed the same responses, must agree."""
    defaults = ResponseDefaults(date=DATE)
    slow = ready(request_bytes, defaults).send_response(200, list(fields), b"body")
    fast = ready(request_bytes, defaults).send_response(200, PreparedFields(fields), b"body")
    assert fast == slow


@pytest.mark.parametrize(
    "fields",
    [
        [(b"content-length", b"4")],
        [(b"transfer-encoding", b"chunked")],
        [(b"connection", b"close")],
        [(b"bad name", b"x")],
        [(b"x", b"a\r\nb")],
    ],
)
def test_prepared_fields_refuse_framing_and_bad_fields(fields):
    with pytest.raises(LocalProtocolError):
        PreparedFields(fields)
