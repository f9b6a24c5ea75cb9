"""Scenario ``wsgi``: treadle's WSGI serving next to waitress, gunicorn, uvicorn and granian.

Three parts, all with the applications of ``peers/wsgi_apps.py``, so that every server
runs the same code:

- **hello**: the hello WSGI application under wrk (one thread, 50 keep-alive
  connections) on treadle with its worker threads (``--threads`` default, 8) and with
  ``--threads 0`` (the application called inline on the loop thread), waitress (4
  threads), gunicorn's sync worker and its gthread worker (4 threads), granian's WSGI
  interface and, as the asyncio reference, uvicorn (uvloop, httptools) serving the raw
  ASGI hello of ``peers/asgi_hello.py``. One worker process each.
- **flask**: a Flask application's hello route (``/``) and JSON route (``/json``) on
  treadle (default threads), gunicorn (sync, one worker) and waitress (4 threads).
- **busy**: what the loop does while every worker thread blocks. One wrk keeps 16
  connections on a route that sleeps 200 ms, so treadle's 8 threads are always busy and
  8 requests wait in its queue; meanwhile a probe in the harness (core 1, one keep-alive
  connection per target, a request every 10 ms) times a fast WSGI route (it queues
  behind the sleeping ones: that shows the pool's queueing, honestly) and a file mounted
  with ``--static`` (answered on the loop, never in the pool: that shows whether the
  loop itself stays responsive). The same probe first runs with no load, for reference.

In the first two parts all servers of a part run for the whole part, each pinned to
core 0 through ``taskset`` on its command (a gunicorn or granian master and its worker
are one tree, and a child inherits the pinning); each round measures every server back
to back after a short warm-up, in an order that rotates, as ``hello`` does. Per server
and case: the median req/s, p50, p99 and CPU per request (of the whole process tree)
over the rounds, and the median of each round's own ratio to each reference server.
Before any measurement each server must answer its route correctly; a treadle that
cannot (its WSGI support missing or broken) is recorded as an error and the peers are
measured all the same.

gunicorn's sync worker does not keep connections alive: it answers with
``Connection: close``, so wrk opens a new connection for each of its requests; that is
how it serves, and it is measured so.
"""

from __future__ import annotations

import http.client
import importlib.metadata
import json
import math
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from harness import (
    BENCH_DIR,
    HELLO_BODY,
    HOST,
    LOADGEN_CPU,
    LOG_DIR,
    SERVER_CPU,
    BenchError,
    Context,
    WrkResult,
    check_hello,
    free_port,
    log_tail,
    median,
    proc_threads,
    proc_tree_cpu_s,
    python,
    ratio,
    run_wrk,
    wait_for_port,
)
from harness import (
    granian_argv as harness_granian_argv,
)
from scenarios.hello import uvicorn_argv

NAME = "wsgi"
TITLE = (
    "WSGI: a hello app and Flask next to waitress, gunicorn, uvicorn and granian; "
    "the loop while every worker thread blocks"
)
PEERS_DIR = BENCH_DIR / "peers"
WORK_DIR = LOG_DIR / "wsgi"
STATIC_DIR = WORK_DIR / "static"
STATIC_NAME = "hello.txt"
CONNECTIONS = 50
WAITRESS_THREADS = 4
GTHREAD_THREADS = 4
#: treadle's worker threads when ``--threads`` is not given (its documented default)
TREADLE_DEFAULT_THREADS = 8

# the busy part
BUSY_CONNECTIONS = 16
SLOW_PATH = "/slow"
FAST_PATH = "/"
STATIC_PATH = f"/static/{STATIC_NAME}"
PROBE_GAP_S = 0.01
PROBE_TIMEOUT_S = 10.0

#: (case, server, reference, target): server / reference req/s, from the issue
TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("hello", "treadle", "waitress", 3.0),
    ("hello", "treadle-threads-0", "uvicorn", 1.5),
    ("hello", "treadle-threads-0", "granian", 1.0),
)


# --------------------------------------------------------------------------- servers


def treadle_argv(app: str, port: int, *extra: str) -> list[str]:
    return [
        python(),
        "-m",
        "treadle",
        "run",
        f"wsgi_apps:{app}",
        "--interface",
        "wsgi",
        "--chdir",
        str(PEERS_DIR),
        "--bind",
        f"{HOST}:{port}",
        "--log-level",
        "warning",
        *extra,
    ]


def waitress_argv(app: str, port: int) -> list[str]:
    return [
        python(),
        "-m",
        "waitress",
        f"--threads={WAITRESS_THREADS}",
        "--host",
        HOST,
        "--port",
        str(port),
        f"wsgi_apps:{app}",
    ]


def gunicorn_argv(app: str, port: int, *worker: str) -> list[str]:
    return [
        python(),
        "-m",
        "gunicorn",
        "--workers",
        "1",
        *worker,
        "--bind",
        f"{HOST}:{port}",
        "--chdir",
        str(PEERS_DIR),
        "--log-level",
        "warning",
        # so that a stop (SIGTERM to the master) does not wait 30 s for the worker
        "--graceful-timeout",
        "2",
        f"wsgi_apps:{app}",
    ]


def granian_argv(app: str, port: int) -> list[str]:
    return harness_granian_argv(f"wsgi_apps:{app}", port)


Argv = Callable[[int], list[str]]

HELLO_SERVERS: dict[str, Argv] = {
    "treadle": lambda port: treadle_argv("hello", port),
    "treadle-threads-0": lambda port: treadle_argv("hello", port, "--threads", "0"),
    "waitress": lambda port: waitress_argv("hello", port),
    "gunicorn-sync": lambda port: gunicorn_argv("hello", port),
    "gunicorn-gthread": lambda port: gunicorn_argv(
        "hello", port, "--worker-class", "gthread", "--threads", str(GTHREAD_THREADS)
    ),
    "uvicorn": uvicorn_argv,
    "granian": lambda port: granian_argv("hello", port),
}
FLASK_SERVERS: dict[str, Argv] = {
    "treadle": lambda port: treadle_argv("flask_app", port),
    "gunicorn-sync": lambda port: gunicorn_argv("flask_app", port),
    "waitress": lambda port: waitress_argv("flask_app", port),
}


def busy_argv(port: int) -> list[str]:
    return treadle_argv("busy", port, "--static", f"/static={STATIC_DIR}")


#: what each part measures: case -> URL path
CASES: dict[str, dict[str, str]] = {
    "hello": {"hello": "/"},
    "flask": {"flask-hello": "/", "flask-json": "/json"},
}
PART_SERVERS: dict[str, dict[str, Argv]] = {"hello": HELLO_SERVERS, "flask": FLASK_SERVERS}
#: the servers every other one is given a ratio to, per part
REFERENCES: dict[str, tuple[str, ...]] = {
    "hello": ("waitress", "uvicorn", "granian"),
    "flask": ("waitress", "gunicorn-sync"),
}


def is_treadle(server: str) -> bool:
    return server.startswith("treadle")


def treadle_wsgi_missing() -> str | None:
    """Why treadle cannot serve WSGI here (its ``run --help`` lacks ``--threads``), or None."""
    try:
        out = subprocess.run(
            [python(), "-m", "treadle", "run", "--help"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"treadle run --help failed: {exc}"
    if "--threads" not in out.stdout:
        return "treadle run --help lists no --threads: treadle's WSGI support is not there yet"
    return None


# --------------------------------------------------------------------------- checks


def check_json(port: int, path: str = "/json") -> dict[str, Any]:
    """One request: 200, application/json, and a document equal to ``DOCUMENT``?"""
    import wsgi_apps  # from peers/, put on the import path by prepare()

    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        return {
            "ok": resp.status == 200 and document == wsgi_apps.DOCUMENT,
            "status": resp.status,
            "body": body[:120].decode("latin-1"),
            "headers": {k.lower(): v for k, v in resp.getheaders()},
        }
    except (OSError, http.client.HTTPException) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        conn.close()


def check_case(case: str, port: int, path: str) -> dict[str, Any]:
    return check_json(port, path) if case == "flask-json" else check_hello(port, path)


def prepare() -> None:
    """The static file of the busy part, and ``peers/`` on the import path for checks."""
    import sys

    STATIC_DIR.mkdir(parents=True, exist_ok=True)
    target = STATIC_DIR / STATIC_NAME
    if not target.exists() or target.read_bytes() != HELLO_BODY:
        target.write_bytes(HELLO_BODY)
    if str(PEERS_DIR) not in sys.path:
        sys.path.insert(0, str(PEERS_DIR))


# --------------------------------------------------------------------------- throughput


def count_points(ctx: Context) -> int:
    rounds = ctx.options.rounds
    wrk = sum(len(PART_SERVERS[p]) * len(CASES[p]) for p in CASES) * rounds
    return wrk + 2 * rounds  # busy: an idle and a loaded probe per round


def start_part(
    ctx: Context, part: str, missing: str | None, errors: list[dict[str, Any]]
) -> tuple[dict[str, int], dict[str, subprocess.Popen[bytes]], dict[str, Any]]:
    """Start a part's servers on core 0 and check each case on each; the failures are
    errors. Returns the ports, the processes and the checks of those that answered."""
    ports: dict[str, int] = {}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    checks: dict[str, Any] = {}
    for server, argv in PART_SERVERS[part].items():
        if is_treadle(server) and missing:
            errors.append({"part": part, "server": server, "error": missing})
            continue
        port = free_port()
        proc = ctx.procs.start(
            argv(port), cpu=SERVER_CPU, log_name=f"wsgi-{part}-{server}", cwd=PEERS_DIR
        )
        try:
            wait_for_port(port, proc)
        except BenchError as exc:
            errors.append({"part": part, "server": server, "error": str(exc)})
            ctx.procs.stop(proc)
            continue
        ok = True
        for case, path in CASES[part].items():
            check = checks.setdefault(server, {})[case] = check_case(case, port, path)
            if not check["ok"]:
                ok = False
                errors.append(
                    {"part": part, "server": server, "case": case, "error": "wrong answer", **check}
                )
        if not ok:
            ctx.procs.stop(proc)
            continue
        ports[server], procs[server] = port, proc
    return ports, procs, checks


def measure(
    ctx: Context, port: int, proc: subprocess.Popen[bytes], path: str, connections: int
) -> tuple[WrkResult, float | None]:
    """A warm-up, then one wrk point; returns it and the server tree's CPU µs per request."""

    def wrk(duration_s: float) -> WrkResult:
        return run_wrk(
            port, duration_s=duration_s, connections=connections, path=path, procs=ctx.procs
        )

    wrk(ctx.options.warmup_s)
    cpu0 = proc_tree_cpu_s(proc.pid)
    res = wrk(ctx.options.duration_s)
    cpu1 = proc_tree_cpu_s(proc.pid)
    if not res.requests or cpu0 is None or cpu1 is None:
        return res, None
    return res, round((cpu1 - cpu0) / res.requests * 1e6, 2)


def throughput_part(
    ctx: Context, part: str, missing: str | None, errors: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    """Every server of ``part`` on every case, interleaved rounds; the points, the checks
    and the servers that were measured."""
    names = list(PART_SERVERS[part])
    ports, procs, checks = start_part(ctx, part, missing, errors)
    points: list[dict[str, Any]] = []
    try:
        for rnd in range(ctx.options.rounds):
            for c, (case, path) in enumerate(CASES[part].items()):
                shift = (rnd + c) % len(names)
                for server in names[shift:] + names[:shift]:
                    label = f"{server} {case} round {rnd + 1}"
                    proc = procs.get(server)
                    if proc is None:
                        ctx.progress.step(f"{label}: not running")
                        continue
                    if proc.poll() is not None:
                        errors.append(
                            {"part": part, "round": rnd, "server": server,
                             "error": f"server died: {log_tail(proc)}"}
                        )  # fmt: skip
                        del procs[server]
                        ctx.progress.step(f"{label}: died")
                        continue
                    res, cpu_us = measure(ctx, ports[server], proc, path, CONNECTIONS)
                    point = {"round": rnd, "server": server, "case": case, **res.as_dict()}
                    if cpu_us is not None:
                        point["cpu_us_per_req"] = cpu_us
                    points.append(point)
                    if not res.clean:
                        errors.append(
                            {"part": part, "round": rnd, "server": server, "case": case,
                             "wrk_errors": res.errors, "text": res.error_text}
                        )  # fmt: skip
                    ctx.progress.step(f"{label}: {res.req_per_s:,.0f} req/s")
    finally:
        for proc in procs.values():
            ctx.procs.stop(proc)
    measured = [n for n in names if any(p["server"] == n for p in points)]
    return points, checks, measured


def round_ratios(
    points: list[dict[str, Any]], case: str, server: str, ref: str
) -> list[float | None]:
    """Each round's req/s ratio of ``server`` to ``ref`` on ``case``, in round order."""
    of_ref = {
        p["round"]: p["req_per_s"]
        for p in points
        if p["case"] == case and p["server"] == ref and p["requests"]
    }
    return [
        ratio(p["req_per_s"], of_ref.get(p["round"]))
        for p in points
        if p["case"] == case and p["server"] == server and p["requests"]
    ]


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def summarise(points: list[dict[str, Any]], part: str) -> dict[str, Any]:
    """Per case and server: medians over the rounds, and the median of each round's
    ratio to each reference of the part (a reference gets none to itself)."""
    summary: dict[str, Any] = {}
    for case in CASES[part]:
        per_server: dict[str, Any] = {}
        for server in PART_SERVERS[part]:
            runs = [p for p in points if p["case"] == case and p["server"] == server]
            by_round = {
                ref: round_ratios(points, case, server, ref)
                for ref in REFERENCES[part]
                if ref != server
            }
            per_server[server] = {
                "req_per_s": median([p["req_per_s"] for p in runs if p["requests"]]),
                "latency_p50_ms": median([p["latency_p50_ms"] for p in runs]),
                "latency_p99_ms": median([p["latency_p99_ms"] for p in runs]),
                "cpu_us_per_req": median([p.get("cpu_us_per_req") for p in runs]),
                "runs": [p["req_per_s"] for p in runs],
                "ratio_to": {ref: rounded(median(r)) for ref, r in by_round.items()},
                "ratio_by_round_to": by_round,
            }
        summary[case] = per_server
    return summary


def verdicts(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of ``TARGETS``: the ratio and whether it is met (None: not measured)."""
    out = []
    for case, server, ref, target in TARGETS:
        got = summary.get(case, {}).get(server, {}).get("ratio_to", {}).get(ref)
        out.append(
            {
                "case": case,
                "server": server,
                "reference": ref,
                "target": target,
                "ratio": got,
                "met": None if got is None else got >= target,
            }
        )
    return out


# --------------------------------------------------------------------------- busy


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of sorted values; None when empty."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


class Probe(threading.Thread):
    """One keep-alive connection fetching ``path`` every PROBE_GAP_S until a deadline,
    timing each request from its write to the end of its body."""

    def __init__(self, port: int, path: str, seconds: float, expect: bytes) -> None:
        super().__init__(daemon=True, name=f"probe {path}")
        self.port, self.path, self.seconds, self.expect = port, path, seconds, expect
        self.latencies_ms: list[float] = []
        self.statuses: dict[str, int] = {}
        self.failures: list[str] = []

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        conn = http.client.HTTPConnection(HOST, self.port, timeout=PROBE_TIMEOUT_S)
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    conn.request("GET", self.path)
                    resp = conn.getresponse()
                    body = resp.read()
                except (OSError, http.client.HTTPException) as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, self.port, timeout=PROBE_TIMEOUT_S)
                    time.sleep(PROBE_GAP_S)
                    continue
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
                key = str(resp.status) if body == self.expect else f"{resp.status} wrong body"
                self.statuses[key] = self.statuses.get(key, 0) + 1
                if resp.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, self.port, timeout=PROBE_TIMEOUT_S)
                time.sleep(PROBE_GAP_S)
        finally:
            conn.close()

    def result(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "path": self.path,
            "requests": len(lat),
            "p50_ms": rounded(percentile(lat, 0.5)),
            "p99_ms": rounded(percentile(lat, 0.99)),
            "max_ms": rounded(lat[-1] if lat else None),
            "statuses": self.statuses,
            "failures": self.failures[:5],
            "failure_count": len(self.failures),
        }


def probe_both(port: int, seconds: float) -> dict[str, dict[str, Any]]:
    """The fast WSGI route and the mounted file, probed side by side for ``seconds``."""
    probes = {
        "fast": Probe(port, FAST_PATH, seconds, HELLO_BODY),
        "static": Probe(port, STATIC_PATH, seconds, HELLO_BODY),
    }
    for probe in probes.values():
        probe.start()
    for probe in probes.values():
        probe.join(seconds + PROBE_TIMEOUT_S + 5)
    return {name: probe.result() for name, probe in probes.items()}


def probe_seconds(ctx: Context) -> float:
    return 3.0 if ctx.options.quick else max(5.0, ctx.options.duration_s)


def busy_part(
    ctx: Context, missing: str | None, errors: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per round: the probe alone, then the probe while wrk keeps every thread asleep."""
    rounds = ctx.options.rounds
    checks: dict[str, Any] = {}
    if missing:
        errors.append({"part": "busy", "server": "treadle", "error": missing})
        for rnd in range(rounds):
            ctx.progress.step(f"busy round {rnd + 1}: skipped")
            ctx.progress.step(f"busy round {rnd + 1}: skipped")
        return [], checks
    port = free_port()
    proc = ctx.procs.start(busy_argv(port), cpu=SERVER_CPU, log_name="wsgi-busy-treadle")
    points: list[dict[str, Any]] = []
    seconds = probe_seconds(ctx)
    try:
        try:
            wait_for_port(port, proc)
        except BenchError as exc:
            errors.append({"part": "busy", "server": "treadle", "error": str(exc)})
            return [], checks
        checks = {
            "fast": check_hello(port, FAST_PATH),
            "static": check_hello(port, STATIC_PATH),
            "slow": check_hello(port, SLOW_PATH),
        }
        bad = {k: v for k, v in checks.items() if not v["ok"]}
        if bad:
            errors.append({"part": "busy", "server": "treadle", "error": "wrong answer", **bad})
            return [], checks
        for rnd in range(rounds):
            idle = probe_both(port, seconds)
            points.append({"round": rnd, "phase": "idle", "probes": idle})
            ctx.progress.step(
                f"busy round {rnd + 1} idle: fast p99 {idle['fast']['p99_ms']} ms, "
                f"static p99 {idle['static']['p99_ms']} ms"
            )
            point = loaded_round(ctx, port, proc, seconds)
            points.append({"round": rnd, **point})
            for name, res in point["probes"].items():
                if res["failure_count"] or set(res["statuses"]) - {"200"}:
                    errors.append({"part": "busy", "round": rnd, "probe": name, **res})
            if point["slow"].get("error_text"):
                errors.append({"part": "busy", "round": rnd, "slow": point["slow"]})
            ctx.progress.step(
                f"busy round {rnd + 1} loaded: fast p99 {point['probes']['fast']['p99_ms']} ms, "
                f"static p99 {point['probes']['static']['p99_ms']} ms, "
                f"slow {point['slow']['req_per_s']:,.1f} req/s"
            )
            if proc.poll() is not None:
                errors.append({"part": "busy", "error": f"server died: {log_tail(proc)}"})
                break
    finally:
        ctx.procs.stop(proc)
    return points, checks


def loaded_round(
    ctx: Context, port: int, proc: subprocess.Popen[bytes], seconds: float
) -> dict[str, Any]:
    """wrk on the slow route (in a thread), and the probes once its queue has filled."""
    lead_s = 1.0  # the slow requests fill the threads and the queue first
    holder: dict[str, WrkResult] = {}

    def load() -> None:
        holder["res"] = run_wrk(
            port,
            duration_s=seconds + 2 * lead_s,
            connections=BUSY_CONNECTIONS,
            path=SLOW_PATH,
            procs=ctx.procs,
        )

    wrk = threading.Thread(target=load, daemon=True, name="busy wrk")
    cpu0 = proc_tree_cpu_s(proc.pid)
    wrk.start()
    time.sleep(lead_s)
    threads_seen = proc_threads(proc.pid)
    probes = probe_both(port, seconds)
    wrk.join(seconds + 2 * lead_s + 60)
    cpu1 = proc_tree_cpu_s(proc.pid)
    res = holder.get("res") or WrkResult(error_text="wrk did not finish in time")
    return {
        "phase": "loaded",
        "probes": probes,
        "slow": {"connections": BUSY_CONNECTIONS, "path": SLOW_PATH, **res.as_dict()},
        "server_threads": threads_seen,
        "server_cpu_s": None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 3),
    }


def summarise_busy(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Per phase and probe: medians over the rounds of p50, p99 and max; the slow route."""
    out: dict[str, Any] = {}
    for phase in ("idle", "loaded"):
        of_phase = [p for p in points if p["phase"] == phase]
        out[phase] = {
            name: {
                key: median([p["probes"][name][key] for p in of_phase])
                for key in ("p50_ms", "p99_ms", "max_ms", "requests")
            }
            for name in ("fast", "static")
        }
    loaded = [p for p in points if p["phase"] == "loaded"]
    out["slow"] = {
        "req_per_s": median([p["slow"]["req_per_s"] for p in loaded if p["slow"]["requests"]]),
        "latency_p50_ms": median([p["slow"]["latency_p50_ms"] for p in loaded]),
        "latency_p99_ms": median([p["slow"]["latency_p99_ms"] for p in loaded]),
        "server_threads": median([p["server_threads"] for p in loaded]),
    }
    return out


# --------------------------------------------------------------------------- run


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ("waitress", "gunicorn", "flask", "werkzeug", "granian", "uvicorn"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def run(ctx: Context) -> dict[str, Any]:
    opts = ctx.options
    errors: list[dict[str, Any]] = []
    ctx.progress.begin(NAME, count_points(ctx))
    prepare()
    missing = treadle_wsgi_missing()
    if missing:
        ctx.progress.say(f"{missing}: peers only")

    summary: dict[str, Any] = {}
    points: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    measured: dict[str, list[str]] = {}
    for part in CASES:
        part_points, checks[part], measured[part] = throughput_part(ctx, part, missing, errors)
        points += part_points
        summary.update(summarise(part_points, part))
    busy_points, checks["busy"] = busy_part(ctx, missing, errors)
    busy = summarise_busy(busy_points) if busy_points else {}

    print_summary(summary, busy)
    return {
        "title": TITLE,
        "settings": {
            "connections": CONNECTIONS,
            "wrk_threads": 1,
            "rounds": opts.rounds,
            "duration_s": opts.duration_s,
            "warmup_s": opts.warmup_s,
            "server_cpu": SERVER_CPU,
            "loadgen_cpu": LOADGEN_CPU,
            "cases": {part: cases for part, cases in CASES.items()},
            "references": {part: list(refs) for part, refs in REFERENCES.items()},
            "treadle_default_threads": TREADLE_DEFAULT_THREADS,
            "waitress_threads": WAITRESS_THREADS,
            "gthread_threads": GTHREAD_THREADS,
            "commands": {
                part: {name: " ".join(argv(0)) for name, argv in PART_SERVERS[part].items()}
                for part in PART_SERVERS
            },
            "busy": {
                "command": " ".join(busy_argv(0)),
                "slow_connections": BUSY_CONNECTIONS,
                "slow_path": SLOW_PATH,
                "slow_sleep_s": 0.2,
                "fast_path": FAST_PATH,
                "static_path": STATIC_PATH,
                "probe_seconds": probe_seconds(ctx),
                "probe_gap_s": PROBE_GAP_S,
            },
            "treadle_wsgi_missing": missing,
            # the machine record lists the packages of hello; these are this scenario's
            "versions": package_versions(),
        },
        "measured": measured,
        "checks": checks,
        "summary": summary,
        "targets": [
            {"case": c, "server": s, "reference": r, "target": t} for c, s, r, t in TARGETS
        ],
        "verdicts": verdicts(summary),
        "busy": busy,
        "points": points,
        "busy_points": busy_points,
        "errors": errors,
    }


def print_summary(summary: dict[str, Any], busy: dict[str, Any]) -> None:
    refs = sorted({r for refs in REFERENCES.values() for r in refs})
    head = "".join(f"{'x ' + r:>16}" for r in refs)
    print(f"\n{'case':<12} {'server':<18} {'req/s':>9} {'p99 ms':>8} {'CPU µs':>7}{head}")
    for case, per_server in summary.items():
        for server, e in per_server.items():
            rps, p99, cpu = e["req_per_s"], e["latency_p99_ms"], e["cpu_us_per_req"]
            ratios = e["ratio_to"]
            cells = "".join(
                f"{'' if ratios.get(r) is None else f'{ratios[r]:.2f}':>16}" for r in refs
            )
            print(
                f"{case:<12} {server:<18} {'-' if rps is None else f'{rps:,.0f}':>9} "
                f"{'-' if p99 is None else f'{p99:.2f}':>8} "
                f"{'-' if cpu is None else f'{cpu:.1f}':>7}{cells}"
            )
    for target in verdicts(summary):
        got = target["ratio"]
        print(
            f"target {target['server']} / {target['reference']} >= {target['target']:g}: "
            f"{'-' if got is None else f'{got:.2f}'} "
            f"{'' if target['met'] is None else ('ok' if target['met'] else 'MISSED')}"
        )
    for phase in ("idle", "loaded"):
        for name, e in busy.get(phase, {}).items():
            print(f"busy {phase:<6} {name:<6} p50 {e['p50_ms']} ms  p99 {e['p99_ms']} ms")
    if busy.get("slow"):
        print(f"busy slow route: {busy['slow']}")
    print()
