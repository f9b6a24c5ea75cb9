"""Real clients against the real server: a raw socket, http.client, requests and curl.

Each test runs once per poller backend, against one shared server per backend.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest
import requests

from tests.data.apps import pattern_bytes

from .helpers import TIMEOUT_S, ServerProcess, requires_curl


def test_log_line_names_address_and_poller(server: ServerProcess, poller: str) -> None:
    lines = server.log_lines("listening on")
    assert len(lines) == 1
    assert re.search(
        rf" INFO treadle\.server: listening on http://127\.0\.0\.1:{server.port} "
        rf"\(poller {re.escape(poller)}\)$",
        lines[0],
    ), lines[0]
    assert server.port != 0


# ------------------------------------------------------------------ raw socket


def test_raw_get(server: ServerProcess) -> None:
    with server.connect() as connection:
        response = connection.get("/hello")
    assert (response.version, response.status, response.reason) == ("HTTP/1.1", 200, "OK")
    assert response.body == b"Hello, world!"
    assert response.framing == "length"
    assert response.header("content-length") == "13"
    assert response.header("content-type") == "text/plain"
    assert response.header("server") == "treadle"
    assert re.fullmatch(
        r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", response.header("date") or ""
    )
    assert not response.closes


def test_raw_keep_alive_serves_many_requests_on_one_connection(server: ServerProcess) -> None:
    with server.connect() as connection:
        for index in range(5):
            response = connection.get(f"/mark/{index}")
            assert (response.status, response.body) == (200, str(index).encode())
        connection.request("GET", "/mark/last", [("Connection", "close")])
        response = connection.read_response()
        assert response.body == b"last"
        assert response.closes
        assert connection.expect_eof() == b""


def test_raw_http10_closes_unless_asked_to_keep_alive(server: ServerProcess) -> None:
    with server.connect() as connection:
        connection.request("GET", "/mark/a", [("Connection", "keep-alive")], version="HTTP/1.0")
        response = connection.read_response()
        assert (response.version, response.body) == ("HTTP/1.1", b"a")
        assert not response.closes
        connection.request("GET", "/mark/b", version="HTTP/1.0", host=None)
        response = connection.read_response()
        assert response.body == b"b"
        assert connection.expect_eof() == b""


def test_raw_unknown_route_is_the_apps_404(server: ServerProcess) -> None:
    with server.connect() as connection:
        response = connection.get("/no/such/thing")
        assert response.status == 404
        # an application's 404 is an ordinary answer: the connection stays usable
        assert connection.get("/mark/still-open").body == b"still-open"


# ----------------------------------------------------------------- http.client


@pytest.fixture
def http_connection(server: ServerProcess) -> Iterator[http.client.HTTPConnection]:
    connection = http.client.HTTPConnection(*server.address, timeout=TIMEOUT_S)
    yield connection
    connection.close()


def test_http_client_get(http_connection: http.client.HTTPConnection) -> None:
    http_connection.request("GET", "/")
    response = http_connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/plain"
    assert response.read() == b"Hello, world!"


def test_http_client_reuses_the_connection(http_connection: http.client.HTTPConnection) -> None:
    ports = set()
    for index in range(3):
        body = f"body {index}".encode()
        http_connection.request("POST", f"/echo?n={index}", body=body)
        response = http_connection.getresponse()
        document = json.loads(response.read())
        assert document["method"] == "POST"
        assert document["query"] == f"n={index}"
        assert document["body"] == body.decode()
        assert document["http_version"] == "1.1"
        ports.add(document["client"][1])
    assert len(ports) == 1, "each request came on a new connection"


def test_http_client_reads_a_chunked_iterable(http_connection: http.client.HTTPConnection) -> None:
    http_connection.request("GET", "/stream?pieces=50&size=3000")
    response = http_connection.getresponse()
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Length") is None
    assert response.read() == pattern_bytes(150_000)


def test_http_client_sends_a_chunked_body(http_connection: http.client.HTTPConnection) -> None:
    pieces = [b"alpha ", b"beta ", b"gamma"]
    http_connection.request("POST", "/echo", body=iter(pieces), encode_chunked=True)
    document = json.loads(http_connection.getresponse().read())
    assert document["body"] == "alpha beta gamma"
    assert ["transfer-encoding", "chunked"] in document["headers"]


# -------------------------------------------------------------------- requests


def test_requests_get_and_post(server: ServerProcess) -> None:
    response = requests.get(server.url + "/hello", timeout=TIMEOUT_S)
    assert (response.status_code, response.text) == (200, "Hello, world!")
    response = requests.post(
        server.url + "/echo?x=1", json={"answer": 42}, timeout=TIMEOUT_S, headers={"X-Test": "yes"}
    )
    document = response.json()
    assert json.loads(document["body"]) == {"answer": 42}
    assert ["x-test", "yes"] in document["headers"]
    assert document["query"] == "x=1"


def test_requests_session_keeps_the_connection(server: ServerProcess) -> None:
    with requests.Session() as session:
        ports = {
            session.get(server.url + "/echo", timeout=TIMEOUT_S).json()["client"][1]
            for _ in range(3)
        }
    assert len(ports) == 1


def test_requests_streamed_upload_and_large_download(server: ServerProcess) -> None:
    pieces = [pattern_bytes(100_000)] * 30  # 3 MB, more than --body-buffer-bytes' default

    response = requests.post(server.url + "/digest", data=iter(pieces), timeout=TIMEOUT_S)
    body = b"".join(pieces)
    assert response.text == f"{len(body)} {hashlib.sha256(body).hexdigest()}"
    assert response.headers["x-streamed"] == "true"

    response = requests.get(server.url + "/big?size=5000000", timeout=TIMEOUT_S)
    assert response.headers["content-length"] == "5000000"
    assert response.content == pattern_bytes(5_000_000)


# ------------------------------------------------------------------------ curl


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    curl_path = shutil.which("curl")
    assert curl_path is not None
    return subprocess.run(
        [curl_path, "--silent", "--show-error", "--max-time", str(TIMEOUT_S), *args],
        capture_output=True,
        timeout=TIMEOUT_S + 5,
        check=False,
    )


def parse_curl_include(output: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of ``curl --include`` output (one response)."""
    head, _, body = output.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    return status, headers, body


@requires_curl
def test_curl_get(server: ServerProcess) -> None:
    result = curl("--include", server.url + "/hello")
    assert result.returncode == 0, result.stderr
    status, headers, body = parse_curl_include(result.stdout)
    assert (status, headers["content-type"], body) == (200, "text/plain", b"Hello, world!")


@requires_curl
def test_curl_reuses_one_connection_for_two_urls(server: ServerProcess) -> None:
    result = curl(
        "--write-out", "[%{num_connects}]", server.url + "/mark/one", server.url + "/mark/two"
    )
    assert result.returncode == 0, result.stderr
    # num_connects is per transfer: the second one made no new connection
    assert result.stdout == b"one[1]two[0]"


@requires_curl
def test_curl_posts_chunked_with_expect_continue(server: ServerProcess) -> None:
    body = pattern_bytes(300_000)
    result = subprocess.run(
        [
            shutil.which("curl") or "curl",
            "--silent",
            "--show-error",
            "--max-time",
            str(TIMEOUT_S),
            # wait for 100 Continue far longer than the test may take: the server must
            # send it, not curl's timer
            "--expect100-timeout",
            "60",
            "-H",
            "Expect: 100-continue",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "@-",
            server.url + "/digest",
        ],
        input=body,
        capture_output=True,
        timeout=TIMEOUT_S + 5,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()


@requires_curl
def test_curl_http10_gets_a_close_delimited_iterable(server: ServerProcess) -> None:
    result = curl("--http1.0", "--include", server.url + "/stream?pieces=10&size=1000")
    assert result.returncode == 0, result.stderr
    status, headers, body = parse_curl_include(result.stdout)
    assert status == 200
    assert "transfer-encoding" not in headers and "content-length" not in headers
    assert headers["connection"] == "close"
    assert body == pattern_bytes(10_000)
