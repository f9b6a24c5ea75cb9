"""The native handler API, end to end through the real driver: what a handler sees in a
``Request`` and what each shape of ``Response`` puts on the wire."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

import pytest

from tests.server.helpers import get, parse_responses, post, statuses
from treadle.apps import HeaderView, NativeApplication, Request, Response


class Capture:
    """A handler that keeps the request and answers 200 with an empty body."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.seen: list[dict[str, object]] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        # Read everything while the exchange is current.
        self.seen.append(
            {
                "method": request.method,
                "target": request.target,
                "path": request.path,
                "raw_path": request.raw_path,
                "query": request.query,
                "http_version": request.http_version,
                "client": request.client,
                "body": request.body,
                "stream": request.stream,
                "headers": list(request.headers),
                "repr": repr(request),
            }
        )
        return Response()


def _see(make, raw: bytes, **overrides) -> dict[str, object]:
    capture = Capture()
    harness = make(capture, **overrides)
    harness.exchange(raw)
    [seen] = capture.seen
    seen["request"] = capture.requests[0]
    return seen


# ------------------------------------------------------------------------------ Request


def test_request_line_properties(make):
    seen = _see(make, b"GET /a%20b/caf%C3%A9?x=1&y=%20 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert seen["method"] == "GET"
    assert seen["target"] == "/a%20b/caf%C3%A9?x=1&y=%20"
    assert seen["path"] == "/a b/café"
    assert seen["raw_path"] == b"/a%20b/caf%C3%A9"
    assert seen["query"] == "x=1&y=%20"  # as sent: decoding a query is the handler's call
    assert seen["http_version"] == "1.1"
    assert seen["client"] == ("127.0.0.1", 1234)
    assert seen["repr"] == "<Request GET /a%20b/caf%C3%A9?x=1&y=%20>"


@pytest.mark.parametrize(
    ("target", "path", "raw_path", "query"),
    [
        (b"/", "/", b"/", ""),
        (b"/%FF%FE", "/\ufffd\ufffd", b"/%FF%FE", ""),  # not UTF-8: replaced, never raised
        (b"/a%2Fb", "/a/b", b"/a%2Fb", ""),  # raw_path keeps the encoded slash
        (b"/a?b?c", "/a", b"/a", "b?c"),
        (b"/a?", "/a", b"/a", ""),
        (b"http://example.com:8080/p%20q?x=1", "/p q", b"/p%20q", "x=1"),
        (b"/%41%42", "/AB", b"/%41%42", ""),
    ],
)
def test_path_decoding(make, target, path, raw_path, query):
    seen = _see(make, b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (seen["path"], seen["raw_path"], seen["query"]) == (path, raw_path, query)


def test_asterisk_form(make):
    seen = _see(make, b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (seen["method"], seen["target"], seen["path"]) == ("OPTIONS", "*", "*")


def test_http10_version(make):
    seen = _see(make, b"GET / HTTP/1.0\r\n\r\n")
    assert seen["http_version"] == "1.0"


def test_headers_view(make):
    raw = (
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Multi: one\r\nContent-Type: text/plain\r\n"
        b"x-multi: two\r\nX-Latin: caf\xe9\r\nX-Empty:\r\n\r\n"
    )
    seen = _see(make, raw)
    headers = seen["request"].headers
    assert isinstance(headers, HeaderView)
    assert headers.get("content-type") == "text/plain"
    assert headers.get("CONTENT-TYPE") == "text/plain"
    assert headers["Content-Type"] == "text/plain"
    assert headers.get("X-Multi") == "one"  # the first of several
    assert headers.get_all("x-MULTI") == ["one", "two"]
    assert headers.get_all("absent") == []
    assert headers.get("absent") is None
    assert headers.get("absent", "fallback") == "fallback"
    assert headers.get("x-empty") == ""
    assert headers.get("x-latin") == "café"  # bytes above 0x7f are latin-1
    assert "x-multi" in headers and "X-MULTI" in headers
    assert "absent" not in headers
    assert b"x-multi" not in headers  # text names only
    with pytest.raises(KeyError):
        headers["absent"]
    assert len(headers) == 6
    assert (
        list(headers)
        == seen["headers"]
        == [
            ("host", "h"),
            ("x-multi", "one"),
            ("content-type", "text/plain"),
            ("x-multi", "two"),
            ("x-latin", "café"),
            ("x-empty", ""),
        ]
    )
    assert repr(headers).startswith("HeaderView([('host', 'h')")


def test_headers_view_is_built_once(make):
    seen = _see(make, get("/"))
    request = seen["request"]
    assert request.headers is request.headers


def test_bodies_seen_by_the_handler(make):
    assert _see(make, get("/"))["body"] == b""
    assert _see(make, post("/", b"payload"))["body"] == b"payload"
    assert _see(make, post("/", b"payload"))["stream"] is None


def test_streamed_body_is_none_with_a_stream(make):
    requests = []

    def handler(request: Request) -> None:
        requests.append((request.body, request.stream))
        request.stream.set_callbacks(
            lambda data: None, lambda: request.respond(Response(200, [], b"done"))
        )

    harness = make(handler, body_buffer_bytes=4)
    [response] = harness.exchange(post("/", b"0123456789"))
    assert response.body == b"done"
    [(body, stream)] = requests
    assert body is None and stream is not None


# ----------------------------------------------------------------------------- Response


def test_response_defaults():
    response = Response()
    assert (response.status, tuple(response.headers), response.body) == (200, (), b"")
    assert repr(Response(404)) == "<Response 404>"


def _answer(make, response: Response, request: bytes = b"", **overrides):
    harness = make(lambda r: response, **overrides)
    harness.send(request or get("/"))
    data = harness.collect(lambda d: bool(parse_responses(d, partial_ok=True)) or harness.peer_eof)
    harness.turn(2)
    data += harness.read()
    return parse_responses(data, eof=harness.peer_eof), harness


def test_bytes_body_has_a_content_length(make):
    [response], _ = _answer(make, Response(201, [("Content-Type", "text/plain")], b"made"))
    assert response.status == 201
    assert response.header("content-length") == "4"
    assert response.header("transfer-encoding") is None
    assert response.header("content-type") == "text/plain"
    assert response.body == b"made"


@pytest.mark.parametrize(
    "body", [bytearray(b"mutable"), memoryview(b"mutable")], ids=["bytearray", "memoryview"]
)
def test_bytes_like_bodies(make, body):
    [response], _ = _answer(make, Response(200, [], body))
    assert response.header("content-length") == "7"
    assert response.body == b"mutable"


@pytest.mark.parametrize(
    "make_body",
    [
        lambda: (piece for piece in [b"a", b"", b"bc", b"def"]),
        lambda: [b"a", b"bc", b"def"],
        lambda: iter((b"a", b"bc", b"def")),
        lambda: [bytearray(b"a"), b"bcdef"],
    ],
    ids=["generator", "list", "iterator", "bytearray-pieces"],
)
def test_iterable_body_is_chunked_for_http11(make, make_body):
    [response], harness = _answer(make, Response(200, [], make_body()))
    assert response.chunked
    assert response.header("content-length") is None
    assert response.body == b"abcdef"
    assert not harness.peer_eof  # kept alive


def test_iterable_body_to_http10_is_read_until_close(make):
    [response], harness = _answer(
        make, Response(200, [], iter([b"old", b"-client"])), get("/", version="1.0")
    )
    assert response.header("transfer-encoding") is None
    assert response.header("connection") == "close"
    assert response.body == b"old-client"
    assert harness.peer_eof


def test_iterable_body_with_content_length_is_not_chunked(make):
    body = iter([b"12", b"345"])
    [response], harness = _answer(make, Response(200, [("Content-Length", "5")], body))
    assert not response.chunked
    assert response.header("content-length") == "5"
    assert response.body == b"12345"
    assert not harness.peer_eof


class FieldMapping(Mapping[str, str]):
    def __init__(self, **fields: str) -> None:
        self._fields = {name.replace("_", "-"): value for name, value in fields.items()}

    def __getitem__(self, name: str) -> str:
        return self._fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


@pytest.mark.parametrize(
    "headers",
    [
        [("X-One", "1"), ("X-Two", "2")],
        [(b"X-One", b"1"), (b"X-Two", b"2")],
        (("X-One", "1"), ("X-Two", "2")),
        {"X-One": "1", "X-Two": "2"},
        FieldMapping(X_One="1", X_Two="2"),
        lambda: ((name, value) for name, value in [("X-One", "1"), ("X-Two", "2")]),
    ],
    ids=["list", "bytes-list", "tuple", "dict", "mapping", "generator"],
)
@pytest.mark.parametrize("body", [b"x", [b"x"]], ids=["bytes", "iterable"])
def test_header_shapes(make, headers, body):
    if callable(headers):
        headers = headers()
    [response], _ = _answer(make, Response(200, headers, body))
    assert response.header("x-one") == "1"
    assert response.header("x-two") == "2"
    assert response.body == b"x"


def test_repeated_response_fields_are_kept(make):
    [response], _ = _answer(make, Response(200, [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]))
    assert [v for n, v in response.headers if n == "set-cookie"] == ["a=1", "b=2"]


def test_head_request_gets_no_body(make):
    harness = make(lambda r: Response(200, [], b"not for HEAD"))
    harness.send(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n" + get("/after"))
    data = harness.collect(lambda d: d.count(b"not for HEAD") == 1)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 12" in head  # what a GET would get...
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")  # ...but no body before the next
    assert parse_responses(rest)[0].body == b"not for HEAD"


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses(make, status):
    harness = make(lambda r: Response(status, [], b""))
    [response, after] = harness.exchange(get("/") + get("/after"))
    assert response.status == status
    assert response.header("transfer-encoding") is None
    assert after.status == status


def test_str_body_is_a_500_with_the_type_error_logged(make, caplog):
    harness = make(lambda r: Response(200, [], "not bytes"))
    with caplog.at_level(logging.ERROR):
        [response] = harness.exchange(get("/"))
    assert response.status == 500
    assert b"not bytes" not in response.body
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "treadle.server"
    assert record.exc_info[0] is TypeError
    assert "not str" in str(record.exc_info[1])


def test_response_subclass_is_accepted(make):
    class Json(Response):
        def __init__(self, text: str) -> None:
            super().__init__(200, {"Content-Type": "application/json"}, text.encode())

    [response], _ = _answer(make, Json('{"ok": true}'))
    assert response.header("content-type") == "application/json"
    assert response.body == b'{"ok": true}'


def test_respond_later_from_a_handler_that_returned_none(make):
    pending = []

    def handler(request: Request) -> None:
        pending.append(request)

    harness = make(handler)
    harness.send(get("/later"))
    harness.turn()
    assert harness.read() == b""
    pending[0].respond(Response(202, {"X-Later": "yes"}, [b"acc", b"epted"]))
    [response] = parse_responses(harness.collect(lambda d: d.endswith(b"0\r\n\r\n")))
    assert (response.status, response.header("x-later"), response.body) == (
        202,
        "yes",
        b"accepted",
    )


def test_respond_with_a_non_response_raises_type_error_to_the_caller(make):
    pending = []
    harness = make(pending.append)
    harness.send(get("/"))
    harness.turn()
    with pytest.raises(TypeError, match="Response or None"):
        pending[0].respond("not a response")  # type: ignore[arg-type]
    pending[0].respond(Response(200, [], b"fine"))
    assert statuses(parse_responses(harness.collect(lambda d: d.endswith(b"fine")))) == [200]


def test_native_application_wraps_the_handler():
    def handler(request: Request) -> Response:
        return Response()

    app = NativeApplication(handler)
    assert app.handler is handler
