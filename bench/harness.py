"""What every scenario of the benchmark shares.

The rules of a fair measurement on this two-core machine live here, so that a scenario
cannot forget one of them:

- The server under test runs on core 0 and every load generator (wrk, the idle-connection
  holder) on core 1, through ``taskset``. The harness itself stays on core 1.
- Everything talks to 127.0.0.1 only.
- Every process started goes through ``Processes``, which stops them all on the way out,
  also on Ctrl-C, SIGTERM or an exception.
- Waiting is always bounded: a port is polled until a deadline, never slept on blindly.
- A result is a median over interleaved rounds, next to a peer measured in the same run.

Scenarios receive a ``Context`` (options, progress, processes) and return a JSON-ready
dict; ``run.py`` wraps it with the machine description and writes
``bench/results/<scenario>.json``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import http.client
import importlib.metadata
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LOG_DIR = RESULTS_DIR / "tmp"  # server logs of the last run; ignored by git
WRK_SCRIPT = BENCH_DIR / "wrk_script.lua"

HOST = "127.0.0.1"
SERVER_CPU = 0
LOADGEN_CPU = 1
HELLO_BODY = b"Hello, world!"

#: the PyPI packages of the ``bench`` extra, by import name
BENCH_PACKAGES = ("h11", "httptools", "uvicorn", "uvloop", "matplotlib", "aiohttp", "granian")
NGINX = "/usr/sbin/nginx"


class BenchError(RuntimeError):
    """A measurement could not be taken (a server died, a port never opened...)."""


# --------------------------------------------------------------------------- options


@dataclass
class Options:
    quick: bool = False
    rounds: int = 3
    #: seconds of load per measured point, and of warm-up before it
    duration_s: float = 5.0
    warmup_s: float = 1.0


@dataclass
class Context:
    """What a scenario is handed: the options, the progress line and the process registry."""

    options: Options
    progress: Progress
    procs: Processes


# --------------------------------------------------------------------------- progress


class Progress:
    """Prints which scenario runs, how many points are left and the time elapsed."""

    def __init__(self, started: float | None = None) -> None:
        self.started = time.monotonic() if started is None else started
        self.scenario = ""
        self.total = 0
        self.done = 0

    def begin(self, scenario: str, total: int) -> None:
        self.scenario, self.total, self.done = scenario, total, 0
        self.say(f"start, {total} points")

    def step(self, label: str) -> None:
        self.done += 1
        left = self.total - self.done
        self.say(f"{self.done}/{self.total} ({left} left) {label}")

    def say(self, text: str) -> None:
        elapsed = int(time.monotonic() - self.started)
        stamp = f"{elapsed // 60:02d}:{elapsed % 60:02d}"
        print(f"[{stamp}] {self.scenario}: {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


class Processes:
    """Starts child processes and guarantees that each one is stopped."""

    def __init__(self) -> None:
        self._running: list[subprocess.Popen[bytes]] = []
        LOG_DIR.mkdir(parents=True, exist_ok=True)

    def start(
        self,
        argv: Sequence[str],
        *,
        cpu: int | None,
        log_name: str | None = None,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` pinned to ``cpu``; stderr (and stdout unless given) go to a log."""
        full = (["taskset", "-c", str(cpu)] if cpu is not None else []) + list(argv)
        log = None
        if log_name is not None:
            log = open(LOG_DIR / f"{log_name}.log", "wb")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen(
            full,
            stdin=stdin,
            stdout=stdout if stdout is not None else (log or subprocess.DEVNULL),
            stderr=log or subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,  # a Ctrl-C in the terminal reaches only the harness
        )
        proc.log_path = LOG_DIR / f"{log_name}.log" if log_name else None  # type: ignore[attr-defined]
        proc.log_file = log  # type: ignore[attr-defined]
        self._running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> int | None:
        """Ask ``proc`` to stop (SIGTERM), kill it after ``timeout_s``; returns its code."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout_s)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        log = getattr(proc, "log_file", None)
        if log is not None:
            log.close()
        if proc in self._running:
            self._running.remove(proc)
        return proc.returncode

    def stop_all(self) -> None:
        for proc in list(self._running):
            self.stop(proc, timeout_s=3.0)

    @contextlib.contextmanager
    def running(self, argv: Sequence[str], **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
        proc = self.start(argv, **kwargs)
        try:
            yield proc
        finally:
            self.stop(proc)


def log_tail(proc: subprocess.Popen[bytes], max_chars: int = 600) -> str:
    """The end of a child's log, for an error record."""
    path = getattr(proc, "log_path", None)
    if path is None or not Path(path).exists():
        return ""
    log = getattr(proc, "log_file", None)
    if log is not None and not log.closed:
        log.flush()
    text = Path(path).read_bytes()[-max_chars:].decode("utf-8", "replace")
    return text.strip()


# --------------------------------------------------------------------------- network


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = 20.0
) -> float:
    """Poll until ``port`` accepts a connection; returns the seconds it took.

    Raises BenchError at the deadline or as soon as ``proc`` has exited.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode}: {log_tail(proc)}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise BenchError(f"port {port} did not accept within {timeout_s:.0f} s")
        time.sleep(0.05)


def check_hello(port: int, path: str = "/") -> dict[str, Any]:
    """One request with http.client; is the answer 200 ``Hello, world!``?"""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        ok = resp.status == 200 and body == HELLO_BODY
        return {
            "ok": ok,
            "status": resp.status,
            "body": body[:80].decode("latin-1"),
            "headers": {k.lower(): v for k, v in resp.getheaders()},
        }
    except (OSError, http.client.HTTPException) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        conn.close()


# --------------------------------------------------------------------------- nginx


def granian_argv(target: str, port: int) -> list[str]:
    """granian serving the WSGI callable ``target`` (``module:attr`` under ``peers/``):
    one worker, HTTP/1 only (what treadle speaks), no access log."""
    return [
        python(),
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--http",
        "1",
        "--workers",
        "1",
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--working-dir",
        str(BENCH_DIR / "peers"),
        target,
    ]


def nginx_config(
    port: int, prefix: Path, *, http_lines: Sequence[str], server_lines: Sequence[str]
) -> str:
    """An nginx config: one worker, no access log, listening on HOST:``port``.

    Every path nginx writes (pid, lock, error log, temp folders) lies under ``prefix``;
    ``http_lines`` go into the ``http`` block, ``server_lines`` into its one ``server``.
    """
    user = "user root;\n" if os.geteuid() == 0 else ""  # the worker must read our files
    temp = "".join(
        f"    {kind}_temp_path {prefix / ('temp-' + kind)};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 1;\n"
        f"pid {prefix / f'nginx-{port}.pid'};\n"
        f"lock_file {prefix / f'nginx-{port}.lock'};\n"
        f"error_log {prefix / 'error.log'} warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    access_log off;\n"
        + "".join(f"    {line}\n" for line in http_lines)
        + temp
        + "    server {\n"
        f"        listen {HOST}:{port};\n"
        + "".join(f"        {line}\n" for line in server_lines)
        + "    }\n"
        "}\n"
    )


def nginx_argv(port: int, prefix: Path, config: str) -> list[str]:
    """Write ``config`` under ``prefix`` and return the foreground nginx command for it."""
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / f"nginx-{port}.conf"
    conf.write_text(config)
    return [
        NGINX,
        "-p",
        f"{prefix}/",
        "-e",
        str(prefix / "error.log"),
        "-c",
        str(conf),
        "-g",
        "daemon off;",
    ]


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    requests: int = 0
    duration_s: float = 0.0
    req_per_s: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    error_text: str = ""

    @property
    def clean(self) -> bool:
        return not self.error_text and not any(self.errors.values()) and self.requests > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "req_per_s": round(self.req_per_s, 1),
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "errors": self.errors,
            **({"error_text": self.error_text} if self.error_text else {}),
        }


def run_wrk(
    port: int,
    *,
    duration_s: float,
    connections: int = 50,
    pipeline: int = 1,
    close: bool = False,
    procs: Processes,
    timeout_s: float = 5.0,
    path: str = "/",
) -> WrkResult:
    """Drive ``port`` with wrk (1 thread, on the load-generator core) and read its summary.

    The summary comes from the ``done`` hook of our Lua script as one JSON line; wrk's
    own socket and status error counts are part of it. ``path`` is the URL path fetched.
    """
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(WRK_SCRIPT),
    ]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://{HOST}:{port}{path}")
    env = dict(os.environ, WRK_PIPELINE=str(pipeline))
    proc = procs.start(argv, cpu=LOADGEN_CPU, stdout=subprocess.PIPE, env=env)
    try:
        out, _ = proc.communicate(timeout=duration_s + timeout_s + 30)
    except subprocess.TimeoutExpired:
        procs.stop(proc)
        return WrkResult(error_text="wrk did not finish in time")
    finally:
        procs.stop(proc)
    text = out.decode("utf-8", "replace")
    match = re.search(r"^WRK_JSON (\{.*\})$", text, re.M)
    if proc.returncode != 0 or match is None:
        return WrkResult(error_text=f"wrk exited {proc.returncode}: {text.strip()[-400:]}")
    data = json.loads(match.group(1))
    duration = data["duration_us"] / 1e6
    requests = int(data["requests"])
    return WrkResult(
        requests=requests,
        duration_s=duration,
        req_per_s=requests / duration if duration > 0 else 0.0,
        latency_p50_ms=round(data["p50_us"] / 1000, 3) if requests else None,
        latency_p99_ms=round(data["p99_us"] / 1000, 3) if requests else None,
        errors={k: int(v) for k, v in data["errors"].items()},
    )


# --------------------------------------------------------------------------- /proc


def proc_rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB, from /proc/PID/status."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (all its threads), from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; fields after it are plain
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def proc_minor_faults(pid: int) -> int | None:
    """Minor page faults of ``pid`` so far (field 10 of /proc/PID/stat).

    A server that keeps mapping fresh memory (a large buffer allocated per ``recv``,
    say) shows it here long before a profile does.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2 :].split()[7])


def proc_tree_minor_faults(pid: int) -> int | None:
    """Minor page faults of ``pid`` and all its descendants; None once it is gone."""
    if proc_minor_faults(pid) is None:
        return None
    return sum(proc_minor_faults(p) or 0 for p in proc_tree(pid))


def proc_children(pid: int) -> list[int]:
    """The pids of the direct children of ``pid`` (an empty list once it is gone)."""
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(k) for k in f.read().split()]
        except OSError:
            continue
    return kids


def proc_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (a master and its workers), parents first."""
    pids = [pid]
    for kid in proc_children(pid):
        pids += proc_tree(kid)
    return pids


def proc_tree_rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` and all its descendants, in KiB (a master and its workers).

    Shared pages count once per process, as ``VmRSS`` counts them; None once ``pid`` is gone.
    """
    if proc_rss_kib(pid) is None:
        return None
    return sum(proc_rss_kib(p) or 0 for p in proc_tree(pid))


def proc_tree_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and all its descendants; None once it is gone."""
    if proc_cpu_s(pid) is None:
        return None
    return sum(proc_cpu_s(p) or 0.0 for p in proc_tree(pid))


def proc_open_sockets(pid: int) -> int | None:
    """How many sockets ``pid`` and its descendants hold open (listening ones included).

    Read from /proc/PID/fd; a socket shared by a master and its worker counts once.
    """
    if not os.path.isdir(f"/proc/{pid}/fd"):
        return None
    sockets: set[str] = set()
    for p in proc_tree(pid):
        try:
            names = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(f"/proc/{p}/fd/{name}")
            except OSError:
                continue
            if target.startswith("socket:"):
                sockets.add(target)
    return len(sockets)


def proc_threads(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None


def raise_nofile_limit() -> tuple[int, int]:
    """Raise this process's open-file soft limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# --------------------------------------------------------------------------- statistics


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _wrk_version() -> str | None:
    if shutil.which("wrk") is None:
        return None
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"wrk (\S+)", out)
    return match.group(1) if match else None


def _nginx_version() -> str | None:
    if not os.path.exists(NGINX):
        return None
    out = subprocess.run([NGINX, "-v"], capture_output=True, text=True, timeout=10).stderr
    match = re.search(r"nginx/(\S+)", out)
    return match.group(1) if match else None


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO_DIR), *args], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info() -> dict[str, Any]:
    """What a reader needs to judge the figures: hardware, software, code version."""
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {
            "treadle": _version("treadle"),
            **{name: _version(name) for name in BENCH_PACKAGES},
            "wrk": _wrk_version(),
            "nginx": _nginx_version(),
        },
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_src_dirty": bool(_git("status", "--porcelain", "--", "src")),
        # other work on a shared machine shows here; a high figure means noisy results
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


# --------------------------------------------------------------------------- setup


def _bench_pins() -> dict[str, str]:
    """The ``name==version`` pins of the ``bench`` extra in pyproject.toml."""
    text = (REPO_DIR / "pyproject.toml").read_text()
    match = re.search(r"^bench\s*=\s*\[(.*?)\]", text, re.S | re.M)
    if match is None:
        return {}
    return dict(re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', match.group(1)))


def ensure_dependencies(*, need_wrk: bool) -> None:
    """Install wrk (Debian) and the pinned ``bench`` extra (PyPI) when they are missing."""
    if need_wrk and shutil.which("wrk") is None:
        print("installing wrk with apt-get", file=sys.stderr, flush=True)
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
    pins = _bench_pins()
    wrong = [
        f"{name} (have {_version(name)}, want {want})"
        for name, want in pins.items()
        if _version(name) != want
    ]
    if wrong or _version("treadle") is None:
        print(
            "installing the bench extra: " + (", ".join(wrong) or "treadle"),
            file=sys.stderr,
            flush=True,
        )
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "-e", f"{REPO_DIR}[bench]"],
            check=True,
        )
        importlib.invalidate_caches()


def write_result(name: str, document: dict[str, Any], *, quick: bool = False) -> Path:
    """Write a scenario's result; a quick run's goes to the ignored ``results/tmp/``."""
    folder = LOG_DIR if quick else RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return path


def python() -> str:
    return sys.executable
