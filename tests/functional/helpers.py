"""The pieces functional tests are built from: a server process and a raw HTTP client.

``ServerProcess`` runs ``python -m treadle run`` on port 0 in a subprocess, reads its
stderr on a thread (so the pipe never fills and the log can be searched), learns the
port from the ``listening on`` line and stops the process again, killing it if it does
not exit in time. ``RawConnection`` speaks HTTP/1.1 over a plain socket and parses
responses strictly enough to notice a framing mistake: content-length, chunked and
close-delimited bodies, interim 1xx responses, EOF.

Every wait here has a deadline. The only pause is ``wait_until``'s polling interval,
for state in ``/proc`` that offers nothing to block on.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from treadle.poll import available_pollers

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.data.apps:app"

POLLERS = available_pollers()
#: the pollers that can hold a thousand connections (select stops at FD_SETSIZE)
SCALABLE_POLLERS = [name for name in POLLERS if name != "select"]

#: how long a test waits for something that should happen at once on an idle machine
TIMEOUT_S = 15.0

_LISTENING_RE = re.compile(r"listening on http://(\[[^\]]+\]|[^:]+):(\d+) \(poller ([\w-]+)\)")


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT_S, what: str = "") -> None:
    """Poll ``predicate`` until it is true; AssertionError naming ``what`` past ``timeout``.

    This polls state that lives in another process (``/proc``), which offers nothing to
    block on; the pause between checks grows from 5 ms to 100 ms. The deadline, not the
    pause, is what the test relies on.
    """
    deadline = time.monotonic() + timeout
    pause = 0.005
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(pause)  # polling interval of a deadline-bounded wait
        pause = min(pause * 2, 0.1)


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a server process: ours without TREADLE_*, tests importable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TREADLE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def treadle_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "treadle", *args]


class ServerProcess:
    """One ``treadle run`` subprocess; see the module docstring."""

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        app: str = APP,
        poller: str = "auto",
        bind: Sequence[str] = ("127.0.0.1:0",),
        env: dict[str, str] | None = None,
        serve: str | os.PathLike[str] | None = None,
    ) -> None:
        # ``serve``: ``treadle serve FOLDER`` instead of ``treadle run APP``
        head = (
            ["serve", os.fspath(serve)]
            if serve is not None
            else ["run", app, "--interface", "native"]
        )
        command = treadle_command(*head, "--poller", poller, "--log-level", "info")
        for address in bind:
            command += ["--bind", address]
        command += list(args)
        self.command = command
        self.poller = poller
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._eof = False
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=server_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        self.addresses: list[tuple[str, int]] = []
        self._expected_binds = len(bind)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    # ------------------------------------------------------------------ the log

    @property
    def log(self) -> str:
        with self._changed:
            return "\n".join(self._lines)

    def log_lines(self, containing: str = "") -> list[str]:
        with self._changed:
            return [line for line in self._lines if containing in line]

    def wait_for_log(self, pattern: str, timeout: float = TIMEOUT_S, count: int = 1) -> list[str]:
        """Wait until ``count`` log lines match the regex ``pattern``; return them."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self._lines if regex.search(line)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    raise AssertionError(
                        f"no {count} log line(s) matching {pattern!r} "
                        f"(found {len(found)}); log so far:\n{self.tail()}"
                    )
                self._changed.wait(remaining)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self._lines[-lines:])

    # ---------------------------------------------------------------- lifecycle

    def wait_listening(self, timeout: float = TIMEOUT_S) -> ServerProcess:
        """Wait for every ``listening on`` line; fills ``addresses``. Returns self."""
        try:
            lines = self.wait_for_log(_LISTENING_RE.pattern, timeout, self._expected_binds)
        except AssertionError:
            self.stop()
            raise
        for line in lines:
            match = _LISTENING_RE.search(line)
            assert match is not None
            assert match.group(3) == self.poller or self.poller == "auto", line
            self.addresses.append((match.group(1).strip("[]"), int(match.group(2))))
        return self

    @property
    def address(self) -> tuple[str, int]:
        return self.addresses[0]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    @property
    def url(self) -> str:
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = TIMEOUT_S) -> int:
        """Wait for the process to exit; kill it (and fail) if it does not."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"server did not exit within {timeout} s") from None
        self._reader.join(TIMEOUT_S)
        return status

    def stop(self, signum: int = signal.SIGTERM, timeout: float = TIMEOUT_S) -> int | None:
        """Stop the server (``signum``, then SIGKILL after ``timeout``); its exit status.

        Prints the end of the log, which pytest shows when the test failed.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(TIMEOUT_S)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        print(f"--- server log ({' '.join(self.command[2:])}), exit {self.proc.returncode}")
        print(self.tail())
        return self.proc.returncode

    # ---------------------------------------------------- what /proc tells us

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc status")

    def wait_fd_count(self, expected: int, timeout: float = TIMEOUT_S) -> None:
        """Wait for the server's descriptor count to come back to ``expected``."""
        counts: list[int] = []

        def settled() -> bool:
            counts.append(self.fd_count())
            return counts[-1] == expected

        try:
            wait_until(settled, timeout, f"{expected} open descriptors")
        except AssertionError:
            raise AssertionError(
                f"server holds {counts[-1]} descriptors, expected {expected}: "
                f"{sorted(os.listdir(f'/proc/{self.pid}/fd'), key=int)}"
            ) from None

    # ------------------------------------------------------------------ clients

    def connect(self, timeout: float = TIMEOUT_S) -> RawConnection:
        return RawConnection(self.address, timeout)


def start_servers(
    pollers: Iterable[str], args: Sequence[str] = (), **kwargs: object
) -> dict[str, ServerProcess]:
    """One server per poller, started together; returns them by poller once all listen."""
    processes = {
        name: ServerProcess(args, poller=name, **kwargs)  # type: ignore[arg-type]
        for name in pollers
    }
    try:
        for process in processes.values():
            process.wait_listening()
    except BaseException:
        for process in processes.values():
            process.stop()
        raise
    return processes


def run_on_each(
    servers: dict[str, ServerProcess], scenario: Callable[[ServerProcess], None]
) -> None:
    """Run ``scenario`` against every server at once, one thread each.

    For scenarios that mostly wait for a server's deadline: the waits overlap instead
    of adding up. Fails with every poller's failure, each with its traceback.
    """
    failures: dict[str, str] = {}

    def run(name: str, process: ServerProcess) -> None:
        try:
            scenario(process)
        except BaseException:
            failures[name] = traceback.format_exc()

    threads = [
        threading.Thread(target=run, args=item, name=f"scenario-{item[0]}", daemon=True)
        for item in servers.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        # every scenario bounds its own waits; this only guards against a hung thread
        thread.join(4 * TIMEOUT_S)
        if thread.is_alive():
            failures[thread.name] = "still running after the deadline"
    if failures:
        raise AssertionError(
            "\n".join(f"--- poller {name}:\n{text}" for name, text in sorted(failures.items()))
        )


# ---------------------------------------------------------------------------- client


class IncompleteResponse(AssertionError):
    """The connection ended before a whole response arrived."""

    def __init__(self, message: str, received: bytes) -> None:
        super().__init__(f"{message}; received {received[:200]!r}")
        self.received = received


@dataclass
class HTTPResponse:
    """One parsed response; header names are lower case."""

    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    #: "length", "chunked", "close" or "none"
    framing: str = "none"
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    @property
    def closes(self) -> bool:
        """Whether the response says the connection ends after it."""
        tokens = {
            token.strip().lower()
            for value in self.header_all("connection")
            for token in value.split(",")
        }
        return "close" in tokens


_NO_BODY_STATUSES = {204, 304}


class RawConnection:
    """An HTTP/1.x client over a plain blocking socket, with a deadline on each call."""

    #: more than any test reads on one connection: a server that never stops sending
    #: fails the test instead of keeping a read loop going
    MAX_RECEIVED = 256 * 1024 * 1024

    def __init__(self, address: tuple[str, int], timeout: float = TIMEOUT_S) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.buffer = bytearray()
        self.eof = False
        self.received = 0

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- sending

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(
        self,
        method: str = "GET",
        target: str = "/",
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        version: str = "HTTP/1.1",
        *,
        host: str | None = "test",
    ) -> None:
        """Send one request; Content-Length is added for a body unless given."""
        self.send(request_bytes(method, target, headers, body, version, host=host))

    def get(self, target: str = "/", **kwargs: object) -> HTTPResponse:
        """Send a GET and read its response."""
        self.request("GET", target, **kwargs)  # type: ignore[arg-type]
        return self.read_response()

    # ---------------------------------------------------------------- reading

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.sock.recv(256 * 1024)
        if not data:
            self.eof = True
            return False
        self.received += len(data)
        if self.received > self.MAX_RECEIVED:
            raise AssertionError(f"more than {self.MAX_RECEIVED} bytes on one connection")
        self.buffer += data
        return True

    def _read_line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line
            if not self._fill():
                raise IncompleteResponse("EOF before the end of a line", bytes(self.buffer))

    def _read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise IncompleteResponse(f"EOF before {size} body bytes", bytes(self.buffer))
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_until_eof(self) -> bytes:
        while self._fill():
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def _read_fields(self) -> list[tuple[str, str]]:
        fields = []
        while True:
            line = self._read_line()
            if not line:
                return fields
            name, colon, value = line.decode("latin-1").partition(":")
            assert colon and name == name.strip(), f"malformed field line {line!r}"
            fields.append((name.lower(), value.strip(" \t")))

    def read_response(self, method: str = "GET", *, interim: bool = False) -> HTTPResponse:
        """Read the next response; 1xx responses are skipped unless ``interim``.

        Raises IncompleteResponse if the connection ends before the response does.
        """
        while True:
            if not self.buffer and not self._fill():
                raise IncompleteResponse("EOF before a status line", b"")
            status_line = self._read_line().decode("latin-1")
            match = re.fullmatch(r"(HTTP/\d\.\d) (\d{3}) ?(.*)", status_line)
            assert match, f"malformed status line {status_line!r}"
            version, status, reason = match.group(1), int(match.group(2)), match.group(3)
            response = HTTPResponse(version, status, reason, self._read_fields())
            if status >= 200 or interim:
                break
        if method == "HEAD" or status < 200 or status in _NO_BODY_STATUSES:
            return response
        encoding = response.header("transfer-encoding")
        length = response.header("content-length")
        if encoding is not None:
            assert encoding.lower() == "chunked", encoding
            assert length is None, "both content-length and transfer-encoding"
            response.framing = "chunked"
            response.body, response.trailers = self._read_chunked()
        elif length is not None:
            response.framing = "length"
            response.body = self._read_exact(int(length))
        else:
            response.framing = "close"
            response.body = self.read_until_eof()
        return response

    def _read_chunked(self) -> tuple[bytes, list[tuple[str, str]]]:
        pieces = []
        while True:
            size_line = self._read_line()
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                return b"".join(pieces), self._read_fields()
            pieces.append(self._read_exact(size))
            if self._read_exact(2) != b"\r\n":
                raise AssertionError("chunk data not followed by CRLF")

    def expect_eof(self) -> bytes:
        """Read until the server closes; returns what came before (usually nothing)."""
        return self.read_until_eof()

    # ---------------------------------------------------------------- closing

    def close(self) -> None:
        self.sock.close()

    def reset(self) -> None:
        """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def shutdown_write(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)


def request_bytes(
    method: str = "GET",
    target: str = "/",
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    version: str = "HTTP/1.1",
    *,
    host: str | None = "test",
) -> bytes:
    """A request's bytes; Host and Content-Length are added unless given or not wanted."""
    fields = list(headers)
    names = {name.lower() for name, _ in fields}
    if host is not None and "host" not in names:
        fields.insert(0, ("Host", host))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        fields.append(("Content-Length", str(len(body))))
    head = f"{method} {target} {version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in fields)
    return head.encode("latin-1") + b"\r\n" + body


def chunked(*pieces: bytes, trailers: Iterable[tuple[str, str]] = ()) -> bytes:
    """A chunked request body made of ``pieces``."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces if piece)
    tail = "".join(f"{name}: {value}\r\n" for name, value in trailers).encode("latin-1")
    return out + b"0\r\n" + tail + b"\r\n"


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


requires_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
requires_ipv6 = pytest.mark.skipif(
    not ipv6_loopback_available(), reason="no IPv6 loopback (::1) on this machine"
)
