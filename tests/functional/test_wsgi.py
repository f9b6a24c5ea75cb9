"""WSGI applications on the real server: PEP 3333 checked by ``wsgiref.validate`` under two
pollers, a slow application beside fast clients, close() after a disconnect, the command's
WSGI options, and a real Flask application and a real Django project end to end."""

from __future__ import annotations

import hashlib
import json
import re
import select
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import (
    POLLERS,
    ROOT,
    ServerProcess,
    chunked,
    server_env,
    treadle_command,
    wait_until,
)

requests = pytest.importorskip("requests")

#: two pollers that differ the most: level-triggered select and edge-triggered epoll
WSGI_POLLERS = [name for name in ("select", "epoll-et") if name in POLLERS] or POLLERS[:2]
ERROR_MARKER = "deliberate failure in a WSGI test app"
DATA = ROOT / "tests" / "data"


def _start(app: str, *args: str, poller: str = "auto") -> ServerProcess:
    # The helper always passes --interface native; the last --interface given wins.
    return ServerProcess(["--interface", "auto", *args], app=app, poller=poller).wait_listening()


def _stop(process: ServerProcess) -> None:
    alive = process.alive()
    status = process.stop()
    assert alive, f"the server died:\n{process.tail()}"
    assert status == 0, f"server exited with {status}"
    # wsgiref.validate reports a broken promise (an iterable never closed, a bad environ)
    # as an AssertionError in the application, or in __del__; neither may appear.
    assert "garbage collected without being closed" not in process.log
    assert "AssertionError" not in process.log


@pytest.fixture(scope="module", params=WSGI_POLLERS)
def wsgi(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """``tests.data.wsgi_apps:validated`` (under wsgiref.validate), 4 worker threads."""
    process = _start("tests.data.wsgi_apps:validated", "--threads", "4", poller=request.param)
    try:
        yield process
    finally:
        _stop(process)


def _token() -> str:
    return uuid.uuid4().hex


# ----------------------------------------------------------------------- PEP 3333


def test_environ_on_the_wire(wsgi):
    with wsgi.connect() as conn:
        response = conn.get(
            "/environ?a=1&b=%20",
            headers=[("X-Trace", "t1"), ("X-Trace", "t2"), ("X-Under_Score", "dropped")],
            host=f"localhost:{wsgi.port}",
        )
    environ = json.loads(response.body)
    assert response.status == 200
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["PATH_INFO"] == "/environ" and environ["SCRIPT_NAME"] == ""
    assert environ["QUERY_STRING"] == "a=1&b=%20"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("localhost", str(wsgi.port))
    assert environ["REMOTE_ADDR"] == "127.0.0.1" and environ["REMOTE_PORT"].isdigit()
    assert environ["HTTP_X_TRACE"] == "t1, t2"
    assert not any("UNDER" in key for key in environ)
    assert environ["wsgi.multithread"] is True and environ["wsgi.multiprocess"] is False
    assert environ["wsgi.version"] == [1, 0]


@pytest.mark.parametrize("size", [0, 10, 3 * 1024 * 1024])
def test_bodies_whole_and_streamed(wsgi, size):
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    expected = {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    with wsgi.connect() as conn:
        assert json.loads(conn.get("/echo", body=body).body) == expected
        pieces = [body[i : i + 100_000] for i in range(0, len(body), 100_000)]
        conn.request(
            "POST", "/echo", headers=[("Transfer-Encoding", "chunked")], body=chunked(*pieces)
        )
        assert json.loads(conn.read_response().body) == expected


def test_lines_and_100_continue(wsgi):
    body = b"first\nsecond\n" + b"long " * 100_000 + b"\nlast"
    with wsgi.connect() as conn:
        conn.request(
            "POST",
            "/lines",
            headers=[("Content-Length", str(len(body))), ("Expect", "100-continue")],
        )
        interim = conn.read_response(interim=True)
        assert interim.status == 100
        conn.send(body)
        response = conn.read_response()
    lines = json.loads(response.body)
    assert [line.encode("latin-1") for line in lines] == body.splitlines(keepends=True)


def test_streams_writes_and_keep_alive(wsgi):
    with wsgi.connect() as conn:
        streamed = conn.get("/stream?pieces=2000&size=1000")
        assert len(streamed.body) == 2_000_000
        assert streamed.body[:8] == b"00000000" and streamed.body[-1000:-992] == b"00001999"
        written = conn.get("/write")
        assert written.body == b"written one, written two, returned"
        assert conn.get("/hello").body == b"Hello, WSGI!"  # the same connection throughout


def test_failures(wsgi):
    with wsgi.connect() as conn:
        response = conn.get("/error-before")
        assert response.status == 500
        assert ERROR_MARKER.encode() not in response.body
    wsgi.wait_for_log(re.escape(ERROR_MARKER))
    with wsgi.connect() as conn:
        conn.request("GET", "/error-after")
        data = conn.read_until_eof()
    # Never a second status line: a clean 500 when the failure came before any byte left
    # (the worker often outruns the loop), else the 200 cut short, never "complete".
    assert data.count(b"HTTP/1.1 ") == 1
    if data.startswith(b"HTTP/1.1 200 "):
        assert not data.endswith(b"0\r\n\r\n")
    else:
        assert data.startswith(b"HTTP/1.1 500 ")


# --------------------------------------------------------------- threads and the loop


def test_a_slow_application_does_not_delay_other_clients(wsgi):
    token = _token()
    with wsgi.connect() as slow, wsgi.connect() as other:
        slow.request("GET", f"/slow?token={token}")

        def slow_started() -> bool:
            return other.get(f"/state?token={token}").body == b"started"

        wait_until(slow_started, what="the slow request to be running")
        # While it runs: other requests are answered, and the slow one has no answer.
        assert other.get("/hello").body == b"Hello, WSGI!"
        assert other.get("/stream?pieces=100&size=1000").status == 200
        readable, _, _ = select.select([slow.sock], [], [], 0)
        assert readable == []
        assert other.get(f"/release?token={token}").body == b"ok"
        assert slow.read_response().body == b"released"


def test_a_client_that_disconnects_mid_response_gets_its_iterable_closed(wsgi):
    token = _token()
    with wsgi.connect() as conn:
        conn.request("GET", f"/tracked?token={token}")
        assert conn._read_line().startswith(b"HTTP/1.1 200")
        conn.reset()
    with wsgi.connect() as probe:

        def closed() -> bool:
            return probe.get(f"/closed?token={token}").body == b"closed 1"

        wait_until(closed, what="close() of the abandoned response")


# ------------------------------------------------------------------- the command


def test_factory_chdir_root_path_static_inline_and_file_wrapper(spawn, tmp_path):
    (tmp_path / "asset.txt").write_text("static beside wsgi")
    blob = DATA / "wsgi_apps.py"
    process = spawn(
        "--interface", "auto", "--threads", "0", "--root-path", "/app",
        "--static", f"/assets={tmp_path}", "--chdir", str(DATA),
        app="wsgi_apps:router",
    )  # fmt: skip
    with process.connect() as conn:
        environ = json.loads(conn.get("/app/environ").body)
        assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/app", "/environ")
        assert environ["wsgi.multithread"] is False
        assert conn.get("/assets/asset.txt").body == b"static beside wsgi"
        sent = conn.get("/app/file?name=wsgi_apps.py")
        assert sent.body == blob.read_bytes()
        assert sent.header("content-length") == str(blob.stat().st_size)
        refused = conn.get("/app/bad-header")  # not under the validator, which refuses it too
        assert refused.status == 500 and refused.header("set-cookie") is None
        assert b"must not be sent" not in refused.body
    process.wait_for_log("invalid value")


def test_factory_and_explicit_wsgi_interface(spawn):
    factory = spawn("--interface", "auto", app="tests.data.wsgi_apps:create_app()")
    linted = spawn("--interface", "wsgi", app="tests.data.wsgi_apps:linted")
    for process in (factory, linted):
        with process.connect() as conn:
            assert conn.get("/hello").body == b"Hello, WSGI!"


def test_auto_asks_for_an_interface_it_cannot_tell():
    result = subprocess.run(
        treadle_command("run", "tests.data.wsgi_apps:linted", "--bind", "127.0.0.1:0"),
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "give --interface wsgi or --interface native" in result.stderr


# ------------------------------------------------------------------------- Flask


@pytest.fixture(scope="module")
def flask_server() -> Iterator[ServerProcess]:
    pytest.importorskip("flask")
    process = _start("tests.data.flask_app:app")
    try:
        yield process
    finally:
        _stop(process)


def test_flask_end_to_end(flask_server, tmp_path):
    url = flask_server.url
    with requests.Session() as session:
        assert session.get(url + "/", timeout=10).text == "hello from flask"
        item = session.get(url + "/items/7?q=x", timeout=10).json()
        assert item == {"id": 7, "name": "item 7", "query": "x"}
        created = session.post(url + "/json", json={"a": [1, 2]}, timeout=10)
        assert created.status_code == 201
        assert created.json() == {"received": {"a": [1, 2]}, "kind": "dict"}
        form = session.post(url + "/form", data={"name": ["x", "y"], "z": "1"}, timeout=10)
        assert form.json() == {"fields": {"name": ["x", "y"], "z": ["1"]}}
        payload = bytes(range(256)) * 8192  # 2 MiB: streamed into the worker
        uploaded = session.post(
            url + "/upload",
            files={"file": ("data.bin", payload)},
            data={"note": "hi"},
            timeout=30,
        ).json()
        assert uploaded == {
            "name": "data.bin",
            "size": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
            "note": "hi",
        }
        streamed = session.get(url + "/stream?lines=50", timeout=10, stream=True)
        lines = list(streamed.iter_lines())
        assert len(lines) == 50 and lines[49] == b"line 49 of /stream"
        download = session.get(url + "/download", timeout=10)
        source = (DATA / "flask_app.py").read_bytes()
        assert download.content == source
        assert download.headers["Content-Length"] == str(len(source))
        assert "attachment" in download.headers["Content-Disposition"]
        visits = [session.get(url + "/count", timeout=10).json()["visits"] for _ in range(3)]
        assert visits == [1, 2, 3]  # the session cookie went out and came back
        assert session.get(url + "/missing", timeout=10).status_code == 404
        assert session.get(url + "/boom", timeout=10).status_code == 500
    flask_server.wait_for_log("deliberate failure in the Flask test app")


# ------------------------------------------------------------------------ Django


@pytest.fixture(scope="module")
def django_server() -> Iterator[ServerProcess]:
    pytest.importorskip("django")
    process = _start("tests.data.django_site.wsgi:application")
    try:
        yield process
    finally:
        _stop(process)


def test_django_end_to_end(django_server):
    url = django_server.url
    with requests.Session() as session:
        page = session.get(url + "/", timeout=10)
        assert page.text == "hello from django at /"
        form = session.get(url + "/form/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token is not None and "csrftoken" in session.cookies
        posted = session.post(
            url + "/form/",
            data={"csrfmiddlewaretoken": token.group(1), "name": "Ada <3"},
            timeout=10,
        )
        assert (posted.status_code, posted.text) == (200, "<p>hello Ada &lt;3</p>")
        forged = requests.post(url + "/form/", data={"name": "no token"}, timeout=10)
        assert forged.status_code == 403  # CSRF protection is really on
        payload = b"\x00\xff" * 700_000
        uploaded = session.post(
            url + "/upload/", files={"file": ("up.bin", payload)}, data={"note": "n"}, timeout=30
        ).json()
        assert uploaded == {
            "name": "up.bin",
            "size": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
            "note": "n",
        }
        streamed = session.get(url + "/stream/?chunks=40", timeout=10)
        assert streamed.text == "".join(f"chunk {n}\n" for n in range(40))
        download = session.get(url + "/download/", timeout=10)
        assert download.content == Path(DATA / "django_site" / "views.py").read_bytes()
        assert session.get(url + "/missing/", timeout=10).status_code == 404
