"""Request bodies: buffered whole, streamed past body_buffer_bytes, or cut short by an
early response; and whatever happens, the bytes after a body are the next request."""

from __future__ import annotations

from treadle.apps.native import Request, Response

from .helpers import chunked_post, get, parse_responses, post, statuses


def _describe(request: Request) -> Response:
    body = request.body
    assert body is not None
    return Response(200, [], b"%s %d %s" % (request.method.encode(), len(body), body[:20]))


def test_small_content_length_body_comes_whole(make, poller):
    harness = make(_describe, poller=poller)
    [response] = harness.exchange(post("/", b"hello world"))
    assert response.body == b"POST 11 hello world"


def test_bodiless_request_has_empty_bytes_body(make, poller):
    harness = make(_describe, poller=poller)
    [response] = harness.exchange(get("/"))
    assert response.body == b"GET 0 "
    [response] = harness.exchange(post("/", b""))
    assert response.body == b"POST 0 "


def test_chunked_body_comes_whole(make, poller):
    harness = make(_describe, poller=poller)
    [response] = harness.exchange(chunked_post("/", [b"abc", b"defg", b"h" * 100]))
    assert response.body == b"POST 107 abcdefghhhhhhhhhhhhh"


def test_chunked_body_with_trailers_and_extensions(make, poller):
    harness = make(_describe, poller=poller)
    request = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;name=value\r\nabc\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    harness.send(request + get("/after"))
    responses = parse_responses(harness.collect(lambda d: d.endswith(b"GET 0 ")))
    assert [r.body for r in responses] == [b"POST 3 abc", b"GET 0 "]


def test_body_split_byte_by_byte(make, poller):
    harness = make(_describe, poller=poller)
    data = chunked_post("/", [b"12345", b"678"]) + post("/", b"xyz")
    for byte in data:
        harness.send(bytes([byte]))
        harness.turn()
    responses = parse_responses(harness.collect(lambda d: d.endswith(b"xyz")))
    assert [r.body for r in responses] == [b"POST 8 12345678", b"POST 3 xyz"]


def test_pipelined_bodies_are_kept_apart(make, poller):
    harness = make(_describe, poller=poller)
    burst = post("/", b"first") + chunked_post("/", [b"second"]) + post("/", b"third") + get("/")
    harness.send(burst)
    responses = parse_responses(harness.collect(lambda d: d.endswith(b"GET 0 ")))
    assert [r.body for r in responses] == [
        b"POST 5 first",
        b"POST 6 second",
        b"POST 5 third",
        b"GET 0 ",
    ]


# ---------------------------------------------------------------------------- streaming


class StreamingHandler:
    """Collects a streamed body and answers with its length and pieces once it ends."""

    def __init__(self, set_callbacks_at_once: bool = True) -> None:
        self.requests: list[Request] = []
        self.pieces: list[bytes] = []
        self.ends = 0
        self.set_callbacks_at_once = set_callbacks_at_once

    def __call__(self, request: Request) -> Response | None:
        if request.body is not None:
            return Response(200, [], b"whole %d" % len(request.body))
        self.requests.append(request)
        if self.set_callbacks_at_once:
            self.listen(request)
        return None

    def listen(self, request: Request) -> None:
        def on_end() -> None:
            self.ends += 1
            body = b"".join(self.pieces)
            request.respond(Response(200, [], b"streamed %d" % len(body)))

        request.stream.set_callbacks(self.pieces.append, on_end)


def test_large_content_length_body_is_streamed(make, poller):
    handler = StreamingHandler()
    harness = make(handler, poller=poller, body_buffer_bytes=1000)
    body = bytes(range(256)) * 40  # 10240 bytes
    harness.send(post("/upload", body)[: -len(body)])
    harness.turn()
    assert len(handler.requests) == 1  # called at the head, before any body byte
    assert handler.requests[0].body is None
    for start in range(0, len(body), 999):
        harness.send(body[start : start + 999])
        harness.turn()
    [response] = parse_responses(harness.collect(lambda d: d.endswith(b"10240")))
    assert response.body == b"streamed 10240"
    assert b"".join(handler.pieces) == body
    assert handler.ends == 1
    # Small bodies on the same connection are still buffered.
    [small] = harness.exchange(post("/", b"tiny"))
    assert small.body == b"whole 4"


def test_chunked_body_switches_to_streaming_past_the_threshold(make, poller):
    handler = StreamingHandler()
    harness = make(handler, poller=poller, body_buffer_bytes=100)
    pieces = [b"a" * 60, b"b" * 60, b"c" * 60]
    [response] = harness.exchange(chunked_post("/", pieces))
    assert response.body == b"streamed 180"
    assert b"".join(handler.pieces) == b"".join(pieces)  # the buffered pieces are replayed
    assert handler.ends == 1
    assert len(handler.requests) == 1


def test_stream_callbacks_set_later_get_the_pieces_that_came_before(make, poller):
    handler = StreamingHandler(set_callbacks_at_once=False)
    harness = make(handler, poller=poller, body_buffer_bytes=10)
    harness.send(post("/", b"0123456789" * 5))
    harness.turn(3)
    [request] = handler.requests
    assert harness.read() == b""
    handler.listen(request)  # the whole body and its end arrived in the meantime
    assert b"".join(handler.pieces) == b"0123456789" * 5
    assert handler.ends == 1
    [response] = parse_responses(harness.collect(lambda d: d.endswith(b"50")))
    assert response.body == b"streamed 50"


def test_body_over_max_body_bytes_while_streaming_gets_413(make, poller):
    handler = StreamingHandler()
    harness = make(handler, poller=poller, body_buffer_bytes=10, max_body_bytes=100)
    harness.send(chunked_post("/", [b"x" * 60, b"y" * 60]))
    data = harness.collect(lambda d: harness.peer_eof)
    assert statuses(parse_responses(data)) == [413]
    assert handler.ends == 0
    # The handler's late answer is dropped, not an error.
    handler.requests[0].respond(Response(200, [], b"late"))


# -------------------------------------------------------------------- early responses


def test_early_response_discards_the_rest_of_the_body(make, poller):
    """A handler that answers at the head of a streamed body: the rest of the body is read
    and dropped, and what follows it is the next request, never a piece of the body."""
    seen = []

    def refuse(request: Request) -> Response:
        seen.append(request.path)
        if request.body is None:
            return Response(413, [], b"too big")
        return Response(200, [], b"ok " + request.path.encode())

    harness = make(refuse, poller=poller, body_buffer_bytes=100)
    # The body looks like requests: none of them may be answered.
    body = get("/smuggled") * 20
    harness.send(post("/upload", body)[: -len(body)] + body[:50])
    [early] = parse_responses(harness.collect(lambda d: d.endswith(b"too big")))
    assert early.status == 413
    assert early.header("connection") is None  # kept alive: the body's length is known
    harness.send(body[50:] + get("/next"))
    data = harness.collect(lambda d: d.endswith(b"ok /next"))
    assert [r.body for r in parse_responses(data)] == [b"ok /next"]
    assert seen == ["/upload", "/next"]
    assert not harness.peer_eof


def test_early_response_from_a_body_callback(make, poller):
    """The handler answers after the first piece of a chunked body; the remaining chunks
    are discarded and the next request is answered."""
    answered = []

    def handler(request: Request) -> Response | None:
        if request.body is not None:
            return Response(200, [], b"next " + request.path.encode())

        def on_data(piece: bytes) -> None:
            if not answered:
                answered.append(piece)
                request.respond(Response(200, [], b"enough"))

        request.stream.set_callbacks(on_data, lambda: answered.append(b"END"))
        return None

    harness = make(handler, poller=poller, body_buffer_bytes=10)
    chunks = [b"p" * 20, get("/smuggled"), b"q" * 20]
    harness.send(chunked_post("/", chunks) + get("/after"))
    data = harness.collect(lambda d: d.endswith(b"next /after"))
    assert [r.body for r in parse_responses(data)] == [b"enough", b"next /after"]
    assert answered == [b"p" * 20]  # nobody listens after the answer: no END either


def test_early_response_then_peer_closes_mid_body(make, poller):
    def refuse(request: Request) -> Response:
        return Response(413, [], b"no")

    harness = make(refuse, poller=poller, body_buffer_bytes=10)
    harness.send(post("/", b"z" * 1000)[:-900])
    assert statuses(parse_responses(harness.collect(lambda d: d.endswith(b"no")))) == [413]
    harness.peer.close()
    harness.run_until(lambda: harness.driver.closed)
    assert not harness.registered


def test_buffered_bodies_answered_later_in_order(make, poller):
    pending = []
    harness = make(pending.append, poller=poller)
    harness.send(post("/", b"payload") + post("/", b"second"))
    harness.turn(3)
    assert [r.body for r in pending] == [b"payload"]  # the second waits its turn
    pending[0].respond(Response(200, [], pending[0].body))
    harness.turn(3)
    assert [r.body for r in pending] == [b"payload", b"second"]
    pending[1].respond(Response(200, [], pending[1].body))
    data = harness.collect(lambda d: d.endswith(b"second"))
    assert [r.body for r in parse_responses(data)] == [b"payload", b"second"]
