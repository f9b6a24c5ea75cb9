"""The environ a WSGI application sees, end to end through the driver (PEP 3333's keys),
and the pure parts of building it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.server.helpers import get
from treadle.apps.wsgi import FileWrapper
from treadle.apps.wsgi.environ import ErrorStream, split_host, wsgi_text


class Capture:
    """A WSGI app that keeps each environ and answers 200."""

    def __init__(self) -> None:
        self.environs: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["test.body"] = environ["wsgi.input"].read()
        self.environs.append(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


def _environ(serve, raw: bytes, **options: Any) -> dict[str, Any]:
    capture = Capture()
    served = serve(capture, **options)
    response = served.request(raw)
    assert response.status == 200
    [environ] = capture.environs
    return environ


def test_request_keys(serve, poller):
    raw = (
        b"GET /a/b%20c?x=1&y=%20 HTTP/1.1\r\nHost: example.com:8080\r\n"
        b"User-Agent: t/1\r\nAccept: */*\r\n\r\n"
    )
    environ = _environ(serve, raw, poller=poller)
    expected = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/a/b c",
        "QUERY_STRING": "x=1&y=%20",
        "RAW_URI": "/a/b%20c?x=1&y=%20",
        "REQUEST_URI": "/a/b%20c?x=1&y=%20",
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "1234",
        "HTTP_HOST": "example.com:8080",
        "HTTP_USER_AGENT": "t/1",
        "HTTP_ACCEPT": "*/*",
    }
    assert {key: environ.get(key) for key in expected} == expected
    assert "CONTENT_TYPE" not in environ and "CONTENT_LENGTH" not in environ
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.multiprocess"] is False
    assert environ["wsgi.run_once"] is False
    assert environ["wsgi.input_terminated"] is True
    assert environ["wsgi.file_wrapper"] is FileWrapper
    assert isinstance(environ["wsgi.errors"], ErrorStream)
    assert environ["test.body"] == b""
    # PEP 3333: every CGI key is a native str
    assert all(type(value) is str for key, value in environ.items() if "." not in key)


def test_underscore_fields_are_dropped_and_repeats_joined(serve):
    raw = (
        b"GET / HTTP/1.1\r\nHost: h\r\nX-User-Id: real\r\nX-User_Id: forged\r\n"
        b"Accept: text/html\r\nAccept: text/plain\r\nCookie: a=1\r\nCookie: b=2\r\n"
        b"X-Empty:\r\n\r\n"
    )
    environ = _environ(serve, raw)
    assert environ["HTTP_X_USER_ID"] == "real"  # the underscore spelling never lands here
    assert environ["HTTP_ACCEPT"] == "text/html, text/plain"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["HTTP_X_EMPTY"] == ""


@pytest.mark.parametrize(
    ("target", "path_info"),
    [
        (b"/caf%C3%A9", "/caf\xc3\xa9"),  # UTF-8 bytes, each seen as latin-1
        (b"/a%2Fb", "/a/b"),  # decoded, as CGI does
        (b"/%FF", "/\xff"),  # not UTF-8 at all: still one char per byte, never an error
        (b"http://other.example/p%20q?z", "/p q"),  # absolute-form
    ],
)
def test_path_info_is_decoded_bytes_as_latin_1(serve, target, path_info):
    environ = _environ(serve, b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert environ["PATH_INFO"] == path_info
    assert environ["PATH_INFO"].encode("latin-1") == path_info.encode("latin-1")
    assert environ["RAW_URI"] == target.decode("latin-1")


@pytest.mark.parametrize(
    ("root", "target", "script_name", "path_info"),
    [
        ("/app", b"/app/x/y", "/app", "/x/y"),
        ("/app", b"/app", "/app", ""),
        ("/app", b"/apple", "/app", "/apple"),  # whole segments only
        ("/app", b"/other", "/app", "/other"),
        ("/app/", b"/app/", "/app", "/"),
        ("/caf\xe9", b"/caf%C3%A9/z", "/caf\xc3\xa9", "/z"),
    ],
)
def test_root_path_is_script_name(serve, root, target, script_name, path_info):
    raw = b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n"
    environ = _environ(serve, raw, root_path=root)
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == (script_name, path_info)


def test_without_host_the_configured_address_names_the_server(serve):
    environ = _environ(
        serve, b"GET / HTTP/1.0\r\n\r\n", server_address=("::1", 8123), poller="poll"
    )
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("[::1]", "8123")
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_content_fields_and_body(serve):
    raw = (
        b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 7\r\n\r\na=1&b=2"
    )
    environ = _environ(serve, raw)
    assert environ["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert environ["CONTENT_LENGTH"] == "7"
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["test.body"] == b"a=1&b=2"


def test_a_chunked_body_that_arrived_whole_gets_its_length(serve):
    raw = (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    environ = _environ(serve, raw)
    assert environ["CONTENT_LENGTH"] == "5"
    assert environ["test.body"] == b"abcde"
    assert environ["HTTP_TRANSFER_ENCODING"] == "chunked"


def test_inline_applications_are_not_multithreaded(serve):
    environ = _environ(serve, get("/"), threads=0)
    assert environ["wsgi.multithread"] is False


# ---------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (b"example.com", ("example.com", "80")),
        (b"example.com:8080", ("example.com", "8080")),
        (b"[::1]:9", ("[::1]", "9")),
        (b"[::1]", ("[::1]", "80")),
        (b"[::1", None),
        (b"[::1]x", None),
        (b":80", None),
    ],
)
def test_split_host(host, expected):
    assert split_host(host) == expected


def test_wsgi_text_is_utf8_seen_as_latin1():
    assert wsgi_text("/é") == "/\xc3\xa9"
    assert wsgi_text("/plain") == "/plain"


def test_error_stream_logs_one_record_per_write_that_ends_a_line(caplog):
    stream = ErrorStream()
    with caplog.at_level(logging.ERROR, logger="treadle.wsgi"):
        stream.write("partial ")
        stream.write("line\n")
        stream.write("Traceback:\n  frame\nError: x\n")
        stream.writelines(["a", "b"])
        stream.flush()
        stream.flush()  # nothing pending: no record
    messages = [record.getMessage() for record in caplog.records if record.name == "treadle.wsgi"]
    assert messages == ["partial line", "Traceback:\n  frame\nError: x", "ab"]
    with pytest.raises(TypeError):
        stream.write(b"bytes")  # type: ignore[arg-type]


def test_errors_written_by_an_application_reach_the_log(serve, caplog):
    def app(environ, start_response):
        print("something odd", file=environ["wsgi.errors"])
        environ["wsgi.errors"].write("unterminated")
        start_response("200 OK", [])
        return [b""]

    with caplog.at_level(logging.ERROR, logger="treadle.wsgi"):
        assert serve(app).request(get("/")).status == 200
    messages = [record.getMessage() for record in caplog.records if record.name == "treadle.wsgi"]
    assert messages == ["something odd", "unterminated"]  # flushed at the end of the request
