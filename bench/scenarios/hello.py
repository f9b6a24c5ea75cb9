"""Scenario ``hello``: the hello handler under wrk, treadle on each poller next to uvicorn.

Three modes, each with wrk on one thread and 50 connections:

- ``keep-alive``: one request in flight per connection;
- ``pipelined``: 16 requests per write (``WRK_PIPELINE=16`` in ``wrk_script.lua``);
- ``close``: ``Connection: close``, a new TCP connection for every request.

The peer is uvicorn with uvloop and httptools, one worker, serving the raw ASGI app of
``peers/asgi_hello.py``. All servers are started once, each pinned to core 0 (only the
one under load uses it). Each round takes the modes in turn and measures every server
back to back, after a short warm-up, in an order that rotates, so that the drift of the
shared machine hits every server alike. Per server and mode: the median req/s over the
rounds, and the median of each round's ratio to the peer.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from harness import (
    BENCH_DIR,
    HOST,
    SERVER_CPU,
    BenchError,
    Context,
    check_hello,
    free_port,
    log_tail,
    median,
    proc_cpu_s,
    proc_minor_faults,
    python,
    ratio,
    run_wrk,
    wait_for_port,
)

NAME = "hello"
TITLE = "Hello handler: keep-alive, pipelined and Connection: close"
POLLERS = ("select", "poll", "epoll", "epoll-et")
PEER = "uvicorn"
MODES: dict[str, dict[str, Any]] = {
    "keep-alive": {"pipeline": 1, "close": False},
    "pipelined": {"pipeline": 16, "close": False},
    "close": {"pipeline": 1, "close": True},
}
#: treadle / uvicorn req/s, from issue 3
TARGETS = {"keep-alive": 2.0, "pipelined": 6.0, "close": 1.3}


def treadle_available() -> bool:
    """Are the CLI and the demo handler there yet?"""
    try:
        return all(
            importlib.util.find_spec(mod) is not None
            for mod in ("treadle.__main__", "treadle.cli", "treadle.demo")
        )
    except ModuleNotFoundError:
        return False


def treadle_argv(poller: str, port: int, *extra: str) -> list[str]:
    return [
        python(),
        "-m",
        "treadle",
        "run",
        "treadle.demo:hello",
        "--interface",
        "native",
        "--bind",
        f"{HOST}:{port}",
        "--poller",
        poller,
        "--log-level",
        "warning",
        *extra,
    ]


def uvicorn_argv(port: int) -> list[str]:
    return [
        python(),
        "-m",
        "uvicorn",
        "asgi_hello:app",
        "--app-dir",
        str(BENCH_DIR / "peers"),
        "--host",
        HOST,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]


#: a treadle source tree (its ``src/`` folder) to measure beside this one in the same
#: run, as ``treadle-<poller>-baseline`` on the epoll pollers: before/after a change
BASELINE_ENV = "TREADLE_BENCH_BASELINE"
BASELINE_POLLERS = ("epoll", "epoll-et")


def baseline_argv(src: str, poller: str, port: int) -> list[str]:
    return ["env", f"PYTHONPATH={src}", *treadle_argv(poller, port)]


#: a comma-separated subset of POLLERS to measure (default: all), for a shorter run
POLLERS_ENV = "TREADLE_BENCH_POLLERS"


def servers() -> dict[str, Any]:
    """Server name -> argv builder; treadle's only once its CLI has landed."""
    table: dict[str, Any] = {}
    if treadle_available():
        wanted = os.environ.get(POLLERS_ENV)
        pollers = [p for p in POLLERS if not wanted or p in wanted.split(",")]
        for poller in pollers:
            table[f"treadle-{poller}"] = lambda port, p=poller: treadle_argv(p, port)
        baseline = os.environ.get(BASELINE_ENV)
        if baseline:
            for poller in BASELINE_POLLERS:
                table[f"treadle-{poller}-baseline"] = lambda port, p=poller: baseline_argv(
                    baseline, p, port
                )
    table[PEER] = uvicorn_argv
    return table


def count_points(ctx: Context) -> int:
    return len(servers()) * len(MODES) * ctx.options.rounds


def run(ctx: Context) -> dict[str, Any]:
    opts = ctx.options
    table = servers()
    names = list(table)
    points: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    ctx.progress.begin(NAME, count_points(ctx))
    if not treadle_available():
        errors.append({"error": "treadle's CLI or treadle.demo is missing: uvicorn only"})

    # Every server runs for the whole scenario, all pinned to core 0; only the one under
    # load uses it. Points then interleave finely: each round takes each mode in turn
    # and measures every server back to back, so a burst of noise on the shared machine
    # hits one round of every server alike, and each round yields its own ratio.
    ports: dict[str, int] = {}
    procs: dict[str, Any] = {}
    try:
        for server in names:
            port = free_port()
            proc = ctx.procs.start(table[server](port), cpu=SERVER_CPU, log_name=f"hello-{server}")
            try:
                wait_for_port(port, proc)
            except BenchError as exc:
                errors.append({"server": server, "error": str(exc)})
                ctx.procs.stop(proc)
                continue
            ports[server], procs[server] = port, proc
            checks[server] = check = check_hello(port)
            if not check["ok"]:
                errors.append({"server": server, "error": "wrong answer", "check": check})

        for rnd in range(opts.rounds):
            for m, (mode, spec) in enumerate(MODES.items()):
                shift = (rnd + m) % len(names)
                for server in names[shift:] + names[:shift]:
                    label = f"{server} {mode} round {rnd + 1}"
                    proc = procs.get(server)
                    if proc is None or proc.poll() is not None:
                        if proc is not None:
                            errors.append(
                                {
                                    "round": rnd,
                                    "server": server,
                                    "error": f"server died: {log_tail(proc)}",
                                }
                            )
                            del procs[server]
                        ctx.progress.step(f"{label}: not running")
                        continue
                    port = ports[server]
                    try:
                        wait_for_port(port, proc, timeout_s=10)  # still accepting?
                    except BenchError as exc:
                        errors.append({"round": rnd, "server": server, "error": str(exc)})
                        ctx.progress.step(f"{label}: not accepting")
                        continue
                    run_wrk(port, duration_s=opts.warmup_s, procs=ctx.procs, **spec)
                    cpu0, faults0 = proc_cpu_s(proc.pid), proc_minor_faults(proc.pid)
                    res = run_wrk(port, duration_s=opts.duration_s, procs=ctx.procs, **spec)
                    cpu1, faults1 = proc_cpu_s(proc.pid), proc_minor_faults(proc.pid)
                    point = {"round": rnd, "server": server, "mode": mode, **res.as_dict()}
                    if res.requests and None not in (cpu0, cpu1, faults0, faults1):
                        # the server's own cost per request: CPU time, and fresh pages
                        point["cpu_us_per_req"] = round((cpu1 - cpu0) / res.requests * 1e6, 2)
                        point["minor_faults_per_req"] = round((faults1 - faults0) / res.requests, 4)
                    points.append(point)
                    if not res.clean:
                        errors.append(
                            {
                                "round": rnd,
                                "server": server,
                                "mode": mode,
                                "wrk_errors": res.errors,
                                "text": res.error_text,
                            }
                        )
                    ctx.progress.step(f"{label}: {res.req_per_s:,.0f} req/s")
    finally:
        for proc in procs.values():
            ctx.procs.stop(proc)

    summary = summarise(points, names)
    print_summary(summary)
    return {
        "title": TITLE,
        "settings": {
            "connections": 50,
            "wrk_threads": 1,
            "pipeline_depth": MODES["pipelined"]["pipeline"],
            "rounds": opts.rounds,
            "duration_s": opts.duration_s,
            "warmup_s": opts.warmup_s,
            "server_cpu": SERVER_CPU,
            "commands": {name: " ".join(table[name](0)) for name in names},
        },
        "checks": checks,
        "summary": summary,
        "targets": TARGETS,
        "points": points,
        "errors": errors,
    }


def summarise(points: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Median req/s and latency per mode and server; ratio of each treadle to the peer."""
    summary: dict[str, Any] = {}
    for mode in MODES:
        per_server: dict[str, Any] = {}
        for server in names:
            runs = [p for p in points if p["mode"] == mode and p["server"] == server]
            per_server[server] = {
                "req_per_s": median([p["req_per_s"] for p in runs if p["requests"]]),
                "latency_p50_ms": median([p["latency_p50_ms"] for p in runs]),
                "latency_p99_ms": median([p["latency_p99_ms"] for p in runs]),
                "cpu_us_per_req": median([p.get("cpu_us_per_req") for p in runs]),
                "minor_faults_per_req": median([p.get("minor_faults_per_req") for p in runs]),
                "runs": [p["req_per_s"] for p in runs],
            }
        peer = per_server.get(PEER, {}).get("req_per_s")
        peer_by_round = {
            p["round"]: p["req_per_s"]
            for p in points
            if p["mode"] == mode and p["server"] == PEER and p["requests"]
        }
        for server, entry in per_server.items():
            if server != PEER:
                # The ratio is the median of each round's own ratio (both measured
                # minutes apart at most), which resists the machine's drift better
                # than a ratio of medians; the latter is kept for reference.
                paired = [
                    ratio(p["req_per_s"], peer_by_round.get(p["round"]))
                    for p in points
                    if p["mode"] == mode and p["server"] == server and p["requests"]
                ]
                entry["ratio_by_round"] = paired
                entry["ratio_to_peer"] = (
                    round(median(paired), 3) if median(paired) is not None else None
                )
                entry["ratio_of_medians"] = ratio(entry["req_per_s"], peer)
                entry["target"] = TARGETS[mode]
                entry["target_met"] = (
                    entry["ratio_to_peer"] is not None and entry["ratio_to_peer"] >= TARGETS[mode]
                )
        summary[mode] = per_server
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    print(f"\n{'mode':<11} {'server':<18} {'req/s':>10} {'x uvicorn':>10} {'target':>7}")
    for mode, per_server in summary.items():
        for server, entry in per_server.items():
            rps = entry["req_per_s"]
            r = entry.get("ratio_to_peer")
            tgt = f">={entry['target']:g}" if "target" in entry else ""
            print(
                f"{mode:<11} {server:<18} {'-' if rps is None else f'{rps:,.0f}':>10} "
                f"{'' if r is None else f'{r:.2f}':>10} {tgt:>7}"
            )
    print()
