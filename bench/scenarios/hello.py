"""Scenario ``hello``: the hello handler under wrk, treadle on each poller next to three peers.

Three modes, each with wrk on one thread and 50 connections:

- ``keep-alive``: one request in flight per connection;
- ``pipelined``: 16 requests per write (``WRK_PIPELINE=16`` in ``wrk_script.lua``);
- ``close``: ``Connection: close``, a new TCP connection for every request.

The peers, each with one worker process:

- uvicorn with uvloop and httptools, serving the raw ASGI app of ``peers/asgi_hello.py``;
- granian (Rust, hyper underneath) on its WSGI interface, serving ``peers/wsgi_hello.py``,
  HTTP/1 only, no access log, its default blocking threads;
- nginx answering ``return 200 "Hello, world!"`` itself: the ceiling of what one core
  can do here, with no application at all.

All servers are started once, each pinned to core 0 (only the one under load uses it).
Each round takes the modes in turn and measures every server back to back, after a
short warm-up, in an order that rotates, so that the drift of the shared machine hits
every server alike. Per server and mode: the median req/s over the rounds, and for each
treadle the median of each round's ratio to each peer (and to its baseline, when one
is measured). A server's CPU is that of its whole process tree (nginx's and granian's
workers are children of the process started).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from harness import (
    BENCH_DIR,
    HOST,
    LOG_DIR,
    NGINX,
    SERVER_CPU,
    BenchError,
    Context,
    check_hello,
    free_port,
    log_tail,
    median,
    nginx_argv,
    nginx_config,
    proc_tree_cpu_s,
    proc_tree_minor_faults,
    python,
    ratio,
    run_wrk,
    wait_for_port,
)
from harness import (
    granian_argv as harness_granian_argv,
)

NAME = "hello"
TITLE = "Hello handler: keep-alive, pipelined and Connection: close"
POLLERS = ("select", "poll", "epoll", "epoll-et")
#: the peer of the original targets; ``ratio_to_peer`` and ``target`` refer to it
PEER = "uvicorn"
#: every peer measured beside treadle (a missing one is an error, not a failure)
PEERS = ("uvicorn", "granian", "nginx")
MODES: dict[str, dict[str, Any]] = {
    "keep-alive": {"pipeline": 1, "close": False},
    "pipelined": {"pipeline": 16, "close": False},
    "close": {"pipeline": 1, "close": True},
}
#: treadle / uvicorn req/s, from issue 3
TARGETS = {"keep-alive": 2.0, "pipelined": 6.0, "close": 1.3}
#: treadle / peer req/s on epoll and epoll-et, by mode and peer (the later issue)
TARGETS_TO: dict[str, dict[str, float]] = {
    "keep-alive": {"granian": 1.0},
    "pipelined": {"nginx": 0.85},
    "close": {"granian": 1.0, "nginx": 0.95},
}
#: the treadle servers the targets are judged on
TARGET_SERVERS = ("treadle-epoll", "treadle-epoll-et")


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


def granian_available() -> bool:
    return importlib.util.find_spec("granian") is not None


def granian_argv(port: int) -> list[str]:
    return harness_granian_argv("wsgi_hello:app", port)


NGINX_PREFIX = LOG_DIR / "hello-nginx"


def hello_nginx_config(port: int) -> str:
    """One worker answering every request itself with 200 ``Hello, world!``."""
    return nginx_config(
        port,
        NGINX_PREFIX,
        http_lines=[
            "default_type text/plain;",
            "tcp_nodelay on;",
            "keepalive_requests 100000;",
            "keepalive_timeout 75s;",
        ],
        server_lines=['location / { return 200 "Hello, world!"; }'],
    )


def hello_nginx_argv(port: int) -> list[str]:
    return nginx_argv(port, NGINX_PREFIX, hello_nginx_config(port))


#: a treadle source tree (its ``src/`` folder) to measure beside this one in the same
#: run, as ``treadle-<poller>-baseline`` on the epoll pollers: before/after a change
BASELINE_ENV = "TREADLE_BENCH_BASELINE"
BASELINE_POLLERS = ("epoll", "epoll-et")


def baseline_argv(src: str, poller: str, port: int) -> list[str]:
    return ["env", f"PYTHONPATH={src}", *treadle_argv(poller, port)]


#: a comma-separated subset of POLLERS to measure (default: all), for a shorter run
POLLERS_ENV = "TREADLE_BENCH_POLLERS"


def servers() -> dict[str, Any]:
    """Server name -> argv builder; treadle's only once its CLI has landed, a peer only
    when it is installed (see ``missing_peers``)."""
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
    if granian_available():
        table["granian"] = granian_argv
    if os.path.exists(NGINX):
        table["nginx"] = hello_nginx_argv
    return table


def missing_peers() -> list[dict[str, Any]]:
    """An error record for each peer that cannot be run here."""
    errors = []
    if not granian_available():
        errors.append({"server": "granian", "error": "granian is not installed: no granian"})
    if not os.path.exists(NGINX):
        errors.append({"server": "nginx", "error": f"{NGINX} is missing: no nginx"})
    return errors


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
        errors.append({"error": "treadle's CLI or treadle.demo is missing: peers only"})
    errors += missing_peers()

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
                    # the whole tree: nginx and granian serve from a child process
                    cpu0, faults0 = proc_tree_cpu_s(proc.pid), proc_tree_minor_faults(proc.pid)
                    res = run_wrk(port, duration_s=opts.duration_s, procs=ctx.procs, **spec)
                    cpu1, faults1 = proc_tree_cpu_s(proc.pid), proc_tree_minor_faults(proc.pid)
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
            "peers": [name for name in PEERS if name in table],
            "nginx_config": hello_nginx_config(0) if "nginx" in table else None,
        },
        "checks": checks,
        "summary": summary,
        "targets": TARGETS,
        "targets_to": TARGETS_TO,
        "target_servers": list(TARGET_SERVERS),
        "verdicts": verdicts(summary),
        "points": points,
        "errors": errors,
    }


def round_ratios(
    points: list[dict[str, Any]], mode: str, server: str, peer: str
) -> list[float | None]:
    """Each round's req/s ratio of ``server`` to ``peer`` in ``mode`` (both measured
    within a minute of each other), in round order."""
    peer_by_round = {
        p["round"]: p["req_per_s"]
        for p in points
        if p["mode"] == mode and p["server"] == peer and p["requests"]
    }
    return [
        ratio(p["req_per_s"], peer_by_round.get(p["round"]))
        for p in points
        if p["mode"] == mode and p["server"] == server and p["requests"]
    ]


def rounded_median(values: list[float | None]) -> float | None:
    m = median(values)
    return None if m is None else round(m, 3)


def summarise(points: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Median req/s and latency per mode and server; ratios of each treadle to each peer.

    A ratio is the median of the rounds' own ratios, which resists the machine's drift
    better than a ratio of medians (kept, for uvicorn, as ``ratio_of_medians``).
    ``ratio_to`` maps each peer (and ``baseline``, for a treadle measured beside its
    baseline tree) to that median; ``ratio_to_peer``, ``target`` and ``target_met``
    are the original figures against uvicorn, ``targets_to`` the later ones.
    """
    summary: dict[str, Any] = {}
    peers = [name for name in PEERS if name in names]
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
        for server, entry in per_server.items():
            if server in PEERS:
                continue
            others = list(peers)
            if f"{server}-baseline" in per_server:
                others.append(f"{server}-baseline")
            by_round = {other: round_ratios(points, mode, server, other) for other in others}
            entry["ratio_to"] = {
                ("baseline" if other.endswith("-baseline") else other): rounded_median(paired)
                for other, paired in by_round.items()
            }
            entry["ratio_by_round_to"] = {
                ("baseline" if other.endswith("-baseline") else other): paired
                for other, paired in by_round.items()
            }
            if PEER in per_server:
                entry["ratio_by_round"] = by_round[PEER]
                entry["ratio_to_peer"] = entry["ratio_to"][PEER]
                entry["ratio_of_medians"] = ratio(entry["req_per_s"], per_server[PEER]["req_per_s"])
                entry["target"] = TARGETS[mode]
                entry["target_met"] = (
                    entry["ratio_to_peer"] is not None and entry["ratio_to_peer"] >= TARGETS[mode]
                )
            entry["targets_to"] = {
                peer: {
                    "target": target,
                    "ratio": entry["ratio_to"].get(peer),
                    "met": (
                        None
                        if entry["ratio_to"].get(peer) is None
                        else entry["ratio_to"][peer] >= target
                    ),
                }
                for peer, target in TARGETS_TO[mode].items()
            }
        summary[mode] = per_server
    return summary


def verdicts(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of ``TARGETS_TO`` on each of ``TARGET_SERVERS``: ratio and whether met
    (None when the server or the peer was not measured)."""
    out = []
    for mode, per_peer in TARGETS_TO.items():
        for server in TARGET_SERVERS:
            entry = summary.get(mode, {}).get(server)
            for peer, target in per_peer.items():
                got = None if entry is None else entry["ratio_to"].get(peer)
                out.append(
                    {
                        "mode": mode,
                        "server": server,
                        "peer": peer,
                        "target": target,
                        "ratio": got,
                        "met": None if got is None else got >= target,
                    }
                )
    return out


def print_summary(summary: dict[str, Any]) -> None:
    columns = [*PEERS, "baseline"]
    head = "".join(f"{'x ' + c:>11}" for c in columns)
    print(f"\n{'mode':<11} {'server':<27} {'req/s':>10}{head}  targets")
    for mode, per_server in summary.items():
        for server, entry in per_server.items():
            rps = entry["req_per_s"]
            ratios = entry.get("ratio_to", {})
            cells = "".join(
                f"{'' if ratios.get(c) is None else f'{ratios[c]:.2f}':>11}" for c in columns
            )
            targets = ", ".join(
                f"{peer} >={t['target']:g} {'ok' if t['met'] else 'MISSED'}"
                for peer, t in entry.get("targets_to", {}).items()
                if t["met"] is not None
            )
            print(
                f"{mode:<11} {server:<27} {'-' if rps is None else f'{rps:,.0f}':>10}{cells}"
                f"  {targets}"
            )
    print()
