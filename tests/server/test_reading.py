"""Reading stops at a short read, in level and edge mode alike.

A ``recv`` that returns fewer bytes than asked means the kernel's buffer was empty at
that instant: the driver does not pay the extra ``recv`` that would only raise EAGAIN.
What that rule must not lose: a FIN queued right behind the data (the poller's
hang-up report makes the driver read on to it), data that arrives while the handler
works, a body larger than one read, a pipelined burst.
"""

from __future__ import annotations

import socket

import pytest

from treadle.apps.native import Request, Response
from treadle.poll import EVENT_HANGUP, EVENT_READ, create_poller

from .helpers import get, parse_responses, post, statuses


def test_one_request_costs_one_recv(make, poller):
    harness = make(poller=poller)
    counting = harness.count_io()
    request = get("/one")
    [response] = harness.exchange(request)
    assert response.status == 200
    assert counting.recvs == [len(request)]  # no second recv to see EAGAIN


def test_a_fin_right_behind_the_data_is_seen_at_once(make, poller):
    harness = make(poller=poller, tcp=True)
    harness.peer.sendall(get("/last"))
    harness.peer.shutdown(socket.SHUT_WR)  # data and FIN arrive together
    data = harness.collect(lambda d: harness.peer_eof, 30)  # no clock moves: no timeout
    assert statuses(parse_responses(data, eof=True)) == [200]
    harness.run_until(lambda: harness.driver.closed, 30)
    assert not harness.registered


def test_data_that_arrives_while_the_handler_works_is_served(make, poller):
    pending: list[Request] = []

    def handler(request: Request) -> Response | None:
        if request.path == "/slow":
            pending.append(request)
            return None
        return Response(200, [], b"fast " + request.path.encode())

    harness = make(handler, poller=poller)
    harness.send(get("/slow"))
    harness.turn(2)
    assert len(pending) == 1
    harness.send(get("/next"))  # arrives while /slow is unanswered
    harness.turn(2)
    pending[0].respond(Response(200, [], b"slow done"))
    data = harness.collect(lambda d: d.endswith(b"fast /next"))
    assert [r.body for r in parse_responses(data)] == [b"slow done", b"fast /next"]


def test_a_body_larger_than_one_read_arrives_whole(make, poller):
    def handler(request: Request) -> Response:
        assert request.body is not None
        return Response(200, [], b"%d %d" % (len(request.body), request.body.count(b"z")))

    harness = make(handler, poller=poller)
    body = b"z" * (300 * 1024)  # several 64 KiB reads, buffered whole (under 1 MiB)
    request = memoryview(post("/big", body))
    for _ in range(500):  # the peer's socket is non-blocking: feed it as it drains
        if not request:
            break
        try:
            request = request[harness.peer.send(request) :]
        except BlockingIOError:
            pass
        harness.turn()
    assert not request
    data = harness.collect(lambda d: d.endswith(b"307200 307200"), 200)
    assert parse_responses(data)[0].body == b"307200 307200"


def test_a_pipelined_burst_is_read_and_answered_in_order(make, poller):
    harness = make(poller=poller)
    counting = harness.count_io()
    burst = b"".join(get(f"/{n}") for n in range(50))
    harness.send(burst)
    data = harness.collect(lambda d: d.endswith(b"hello /49"), 100)
    assert [r.body for r in parse_responses(data)] == [b"hello /%d" % n for n in range(50)]
    assert sum(counting.recvs) == len(burst) and len(counting.recvs) <= 2


@pytest.mark.parametrize("name", ["poll", "epoll", "epoll-et"])
def test_pollers_report_the_peers_shutdown_as_a_hangup(name):
    server, client = socket.socketpair()
    poller = create_poller(name)
    try:
        poller.register(server.fileno(), EVENT_READ)
        client.sendall(b"data")
        client.shutdown(socket.SHUT_WR)
        [(fd, events)] = poller.poll(1.0)
        assert fd == server.fileno()
        assert events & EVENT_READ and events & EVENT_HANGUP
    finally:
        poller.close()
        server.close()
        client.close()


def test_select_reports_no_hangup_but_the_end_again():
    server, client = socket.socketpair()
    poller = create_poller("select")
    try:
        poller.register(server.fileno(), EVENT_READ)
        client.sendall(b"data")
        client.shutdown(socket.SHUT_WR)
        [(_, events)] = poller.poll(1.0)
        assert events & EVENT_READ and not events & EVENT_HANGUP
        assert server.recv(100) == b"data"
        [(_, events)] = poller.poll(1.0)  # level-triggered: the end is reported too
        assert events & EVENT_READ and server.recv(100) == b""
    finally:
        poller.close()
        server.close()
        client.close()
