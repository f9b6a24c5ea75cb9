"""The ``treadle`` command as a user meets it: shutdown on SIGINT and SIGTERM, and one
clear line (never a traceback) for every mistake on the command line.
"""

from __future__ import annotations

import re
import select
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .helpers import APP, POLLERS, ROOT, TIMEOUT_S, server_env, start_servers, treadle_command

# --------------------------------------------------------------------- signals


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_the_server_cleanly(signum: signal.Signals) -> None:
    servers = start_servers(POLLERS)
    try:
        idle = {}
        for name, server in servers.items():
            # an idle keep-alive connection must not hold the shutdown up
            idle[name] = server.connect()
            assert idle[name].get("/hello").status == 200
        for server in servers.values():
            server.send_signal(signum)
        for name, server in servers.items():
            assert server.wait() == 0, f"{name}: exit status {server.proc.returncode}"
            server.wait_for_log(rf"INFO treadle\.server: received {signum.name}, shutting down")
            assert "Traceback" not in server.log, server.log
            # the client's connection was closed, and the port is closed
            assert idle[name].expect_eof() == b""
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(server.address, TIMEOUT_S).close()
    finally:
        for server in servers.values():
            server.stop()


# ---------------------------------------------------------------- bad usage


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    status: int = 2
    #: a piece of the one error line
    says: str = ""
    env: tuple[tuple[str, str], ...] = ()


CASES = {
    "unknown-option": Case(("run", APP, "--no-such-option"), says="--no-such-option"),
    "bad-number": Case(("run", APP, "--idle-timeout", "abc"), says="'abc'"),
    "negative-timeout": Case(("run", APP, "--header-timeout", "-1"), says="greater than 0"),
    "unknown-poller": Case(("run", APP, "--poller", "kqueue"), says="kqueue"),
    "bad-bind": Case(("run", APP, "--bind", "localhost"), says="localhost"),
    "bad-size": Case(("run", APP, "--max-body-bytes", "12Q"), says="12Q"),
    "low-water-over-high-water": Case(
        ("run", APP, "--write-low-water", "1M", "--write-high-water", "64K"), says="low-water"
    ),
    "bad-env-value": Case(
        ("run", APP), says="TREADLE_IDLE_TIMEOUT", env=(("TREADLE_IDLE_TIMEOUT", "abc"),)
    ),
    "bad-env-poller": Case(("run", APP), says="TREADLE_POLLER", env=(("TREADLE_POLLER", "x"),)),
    "missing-app": Case(("run",), says="MODULE:ATTR"),
    "not-module-colon-attr": Case(("run", "treadle.demo"), says="MODULE:ATTR"),
    "unimportable-module": Case(("run", "no_such_module_for_treadle:app"), says="cannot import"),
    "missing-attribute": Case(("run", "treadle.demo:no_such_handler"), says="no_such_handler"),
    "not-callable": Case(("run", "tests.data.apps:PATTERN"), says="not callable"),
    "unknown-command": Case(("launch", APP), says="launch"),
    "serve-missing-folder": Case(("serve", "/no/such/folder/for/treadle"), says="not a folder"),
    "serve-bad-symlinks": Case(("serve", ".", "--symlinks", "some"), says="inside, all, none"),
    "static-missing-folder": Case(("run", APP, "--static", "/a=/no/such/dir"), says="not a folder"),
    "static-bad-prefix": Case(("run", APP, "--static", "assets=."), says="starting with"),
    "bad-env-boolean": Case(("serve", "."), says="TREADLE_UPLOAD", env=(("TREADLE_UPLOAD", "x"),)),
}


@dataclass(frozen=True)
class Outcome:
    status: int
    stdout: str
    stderr: str


def run_commands(commands: dict[str, tuple[list[str], dict[str, str]]]) -> dict[str, Outcome]:
    """Run every command at once (each is a Python start-up); their outcomes by name."""
    processes = {
        name: subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (command, env) in commands.items()
    }
    outcomes = {}
    try:
        for name, process in processes.items():
            stdout, stderr = process.communicate(timeout=TIMEOUT_S)
            outcomes[name] = Outcome(process.returncode, stdout, stderr)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return outcomes


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    return run_commands(
        {
            name: (treadle_command(*case.args), server_env(dict(case.env)))
            for name, case in CASES.items()
        }
    )


@pytest.mark.parametrize("name", list(CASES))
def test_bad_usage_is_one_line_and_status_2(outcomes: dict[str, Outcome], name: str) -> None:
    case, outcome = CASES[name], outcomes[name]
    assert outcome.status == case.status, outcome
    assert "Traceback" not in outcome.stderr
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("treadle: error: "), lines[0]
    assert case.says in lines[0]
    assert outcome.stdout == ""


@pytest.fixture
def occupied_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_address_in_use_is_one_line_and_status_1(occupied_port: int) -> None:
    command = treadle_command("run", APP, "--bind", f"127.0.0.1:{occupied_port}")
    outcome = run_commands({"in-use": (command, server_env())})["in-use"]
    assert outcome.status == 1, outcome
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("treadle: error: cannot listen"), lines[0]
    assert "in use" in lines[0].lower()
    assert "Traceback" not in outcome.stderr


def test_help_lists_every_option() -> None:
    outcome = run_commands({"help": (treadle_command("run", "--help"), server_env())})["help"]
    assert outcome.status == 0
    for flag in ("--poller", "--header-timeout", "--write-high-water", "--requests-per-turn"):
        assert flag in outcome.stdout


# ---------------------------------------------------------------- the main job


def test_serve_prints_its_url_and_serves_the_folder(tmp_path) -> None:
    """The README's first command: ``treadle serve DIR`` says where it serves."""
    (tmp_path / "hello.txt").write_bytes(b"hello from a folder\n")
    proc = subprocess.Popen(
        treadle_command("serve", str(tmp_path), "--bind", "127.0.0.1:0"),
        cwd=ROOT,
        env=server_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT_S)
        assert ready, "no line on stdout in time"
        line = proc.stdout.readline().decode()
        match = re.fullmatch(r"treadle: serving (.+) at http://127\.0\.0\.1:(\d+)/\n", line)
        assert match and match.group(1) == str(tmp_path), line
        port = int(match.group(2))
        with socket.create_connection(("127.0.0.1", port), TIMEOUT_S) as client:
            client.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            client.settimeout(TIMEOUT_S)
            received = b""
            while chunk := client.recv(65536):
                received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert received.endswith(b"\r\n\r\nhello from a folder\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT_S) == 0
