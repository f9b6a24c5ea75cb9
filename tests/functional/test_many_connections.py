"""A thousand connections at once: the pollers that scale serve them all; select stops
at FD_SETSIZE without dying and lets the rest wait in the listen backlog.

Needs about 2,200 descriptors in this process and in the server; the conftest raises
RLIMIT_NOFILE for both (the server inherits it).
"""

from __future__ import annotations

import resource
from collections.abc import Callable

import pytest

from treadle.poll import FD_SETSIZE

from .helpers import (
    POLLERS,
    SCALABLE_POLLERS,
    IncompleteResponse,
    RawConnection,
    ServerProcess,
)

CONNECTIONS = 1000
#: more than a select server can register, fewer than its backlog lets wait
OVER_SELECT_LIMIT = FD_SETSIZE + 76


@pytest.fixture(scope="module", autouse=True)
def _enough_descriptors() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 2 * OVER_SELECT_LIMIT + 100:
        pytest.skip(f"RLIMIT_NOFILE is {soft}; these tests need {2 * OVER_SELECT_LIMIT + 100}")


@pytest.fixture(scope="module", params=SCALABLE_POLLERS)
def poller(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server_args() -> list[str]:
    # Connections wait their turn while a thousand others are served: no idle cut here.
    return ["--idle-timeout", "120"]


def open_connections(server: ServerProcess, count: int) -> list[RawConnection]:
    connections = []
    try:
        for _ in range(count):
            connections.append(server.connect(timeout=60))
    except BaseException:
        for connection in connections:
            connection.close()
        raise
    return connections


def test_thousand_concurrent_keep_alive_connections(server: ServerProcess) -> None:
    connections = open_connections(server, CONNECTIONS)
    try:
        for round_number in range(2):
            # Every connection has a request in flight before any answer is read.
            for index, connection in enumerate(connections):
                connection.request("GET", f"/mark/{round_number}-{index}")
            for index, connection in enumerate(connections):
                response = connection.read_response()
                assert response.status == 200
                assert response.body == f"{round_number}-{index}".encode()
                assert not response.closes
        client_ports = {connection.sock.getsockname()[1] for connection in connections}
        assert len(client_ports) == CONNECTIONS
    finally:
        for connection in connections:
            connection.close()
    assert not server.log_lines("WARNING"), server.tail()


def fill_select_server(server: ServerProcess) -> set[int]:
    """Open more connections than select can watch, check the server keeps serving,
    close 100 early ones and send a request on each of the rest.

    Returns the indices of the connections that the server closed without an answer.
    """
    connections = open_connections(server, OVER_SELECT_LIMIT)
    try:
        server.wait_for_log(r"WARNING treadle\.server: not accepting new connections: .*")
        # the earlier connections are served all along
        for index in (0, 1, CONNECTIONS // 2):
            assert connections[index].get(f"/mark/{index}").body == str(index).encode()
        assert server.alive()

        # Closing some makes room: the connections that waited in the backlog get in.
        closed = 100
        for connection in connections[:closed]:
            connection.close()
        waiting = dict(enumerate(connections[closed:], closed))
        refused = set()
        for index, connection in waiting.items():
            try:
                connection.request("GET", f"/mark/{index}")
            except (BrokenPipeError, ConnectionResetError):
                refused.add(index)
        for index, connection in waiting.items():
            if index in refused:
                continue
            try:
                response = connection.read_response()
            except (IncompleteResponse, ConnectionResetError) as error:
                # closed without a single byte, never a wrong or cut answer
                assert not getattr(error, "received", b""), error
                refused.add(index)
                continue
            assert response.body == str(index).encode(), index
    finally:
        for connection in connections:
            connection.close()
    return refused


@pytest.mark.skipif("select" not in POLLERS, reason="no select on this platform")
def test_select_stops_at_fd_setsize_and_keeps_serving(
    spawn: Callable[..., ServerProcess],
) -> None:
    server = spawn("--idle-timeout", "120", poller="select")
    # Every connection past the limit waited in the backlog and was served; none was
    # accepted and dropped.
    assert fill_select_server(server) == set()
    assert server.alive()
    refusals = server.log_lines("not accepting new connections")
    assert len(refusals) == 1, refusals
    assert "FD_SETSIZE" in refusals[0] and str(FD_SETSIZE) in refusals[0], refusals[0]
    # and afterwards it serves as before
    with server.connect() as connection:
        assert connection.get("/hello").status == 200
