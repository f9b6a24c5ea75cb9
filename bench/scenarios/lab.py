"""Scenario ``lab``: the I/O-model lab (issue 4).

For each I/O model, and each number N of idle keep-alive connections, a fresh server is
started on core 0 and measured while wrk drives 50 active keep-alive connections to the
hello handler. The models:

- treadle's reactor on each poller: ``select``, ``poll``, ``epoll``, ``epoll-et``;
- ``threaded``: one blocking thread per connection driving treadle's own HTTP core, with
  ``TCP_NODELAY`` (``bench/peers/threaded_server.py``), so only the I/O model differs;
- ``stdlib``: the standard library's ``ThreadingHTTPServer``, as users know it
  (``bench/peers/stdlib_server.py``). It writes headers and body separately without
  ``TCP_NODELAY``: Nagle's algorithm then holds the body until the client's delayed ACK,
  about 40 ms per keep-alive response, which caps it near 50 / 0.04 s = 1,250 req/s.

One point goes:

1. start the server, wait for its port, check one answer, warm it up with wrk;
2. read its RSS (``VmRSS``), then let the idle holder (``bench/idle_holder.py``, on core
   1) open N connections that each send one keep-alive request, read the response and
   fall silent; read the RSS again: the difference over N is the RSS per idle connection;
3. probe: can 50 more connections still be served? If the server could not hold all N
   idle ones, or not the 50 on top of them (select beyond FD_SETSIZE), the point is
   recorded as refused with the reason, the held idle connections are checked to be
   still served, and the point goes without wrk;
4. otherwise wrk runs (1 thread, 50 connections) and the server's CPU time
   (``utime + stime`` from ``/proc/PID/stat``) over the run gives CPU seconds per 1,000
   requests; afterwards the idle connections are checked to be still open.

Each round takes every model in turn (in an order that rotates) and measures its idle
counts back to back (ascending, then descending the next round), so a model's share at N
of its own throughput with none idle compares points taken close together. Figures are
medians over the rounds; shares are medians of each round's share.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from typing import Any

from harness import (
    BENCH_DIR,
    HOST,
    LOADGEN_CPU,
    SERVER_CPU,
    BenchError,
    Context,
    check_hello,
    free_port,
    log_tail,
    median,
    proc_cpu_s,
    proc_minor_faults,
    proc_rss_kib,
    proc_threads,
    python,
    ratio,
    run_wrk,
    wait_for_port,
)
from scenarios.hello import POLLERS, treadle_argv, treadle_available

NAME = "lab"
TITLE = "I/O-model lab: throughput, latency, CPU and memory against idle connections"
IDLE_COUNTS = (0, 100, 1000, 5000, 10000)
QUICK_IDLE_COUNTS = (0, 1000, 10000)
ACTIVE = 50
BACKLOG = 4096
IDLE_TIMEOUT_S = 300
THREAD_STACK_KIB = 128
FD_SETSIZE = 1024
#: below this many idle connections their RSS is lost in the allocator's own movements
#: (a server can even shrink while they open), so no per-connection figure is derived
RSS_PER_IDLE_MIN = 1000
#: epoll and epoll-et at 10,000 idle keep this share of their throughput with none idle
TARGET_THROUGHPUT_SHARE = 0.95
#: RSS per idle connection on epoll, KiB
TARGET_RSS_PER_IDLE_KIB = 2.0

LABELS = {
    "select": "treadle, select",
    "poll": "treadle, poll",
    "epoll": "treadle, epoll",
    "epoll-et": "treadle, epoll edge-triggered",
    "threaded": "thread per connection (treadle's core)",
    "stdlib": "ThreadingHTTPServer (stdlib)",
}


def models() -> dict[str, Any]:
    """Model name -> argv builder for a port."""
    table: dict[str, Any] = {}
    if treadle_available():
        for poller in POLLERS:
            table[poller] = lambda port, p=poller: treadle_argv(
                p,
                port,
                "--idle-timeout",
                str(IDLE_TIMEOUT_S),
                "--backlog",
                str(BACKLOG),
            )
    table["threaded"] = lambda port: [
        python(),
        str(BENCH_DIR / "peers" / "threaded_server.py"),
        "--port",
        str(port),
        "--backlog",
        str(BACKLOG),
        "--stack-kib",
        str(THREAD_STACK_KIB),
    ]
    table["stdlib"] = lambda port: [
        python(),
        str(BENCH_DIR / "peers" / "stdlib_server.py"),
        "--port",
        str(port),
        "--backlog",
        str(BACKLOG),
    ]
    return table


def idle_counts(ctx: Context) -> tuple[int, ...]:
    return QUICK_IDLE_COUNTS if ctx.options.quick else IDLE_COUNTS


def count_points(ctx: Context) -> int:
    return len(models()) * len(idle_counts(ctx)) * ctx.options.rounds


class Holder:
    """The idle-connection holder process, spoken to line by line."""

    def __init__(self, ctx: Context, port: int, stall_s: float) -> None:
        self.ctx = ctx
        self.proc = ctx.procs.start(
            [python(), str(BENCH_DIR / "idle_holder.py"), str(port), "--stall", str(stall_s)],
            cpu=LOADGEN_CPU,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            log_name="lab-holder",
        )

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()  # the holder bounds its own waits
        if not line:
            raise BenchError(f"idle holder exited: {log_tail(self.proc)}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, BenchError, ValueError):
                self.ask("close")
        self.ctx.procs.stop(self.proc)


def capacity_limited(model: str, opened: dict[str, Any], probe: dict[str, Any]) -> bool:
    """Is a shortfall the model's known limit rather than a lost connection?

    select cannot watch descriptors past FD_SETSIZE; a thread server that cannot start
    a thread closes the connection. Connections that simply never get an answer from a
    server that accepted them are a bug, whatever the model.
    """
    if model == "select":
        return True
    if model in ("threaded", "stdlib"):
        errors = {**opened.get("errors", {}), **probe.get("errors", {})}
        return "no response" not in errors
    return False


def refusal_reason(model: str, n: int, opened: dict[str, Any], probe: dict[str, Any]) -> str:
    held, served = opened.get("held", n), probe.get("served", ACTIVE)
    what = f"held {held} of {n} idle connections and served {served} of {ACTIVE} more"
    if model == "select":
        return (
            f"{what}: select() watches descriptors below FD_SETSIZE ({FD_SETSIZE}) only, and "
            f"{n} idle + {ACTIVE} active connections need more"
        )
    if model in ("threaded", "stdlib"):
        return f"{what}: a thread could not be started for every connection"
    return what


def measure_point(
    ctx: Context, model: str, argv: list[str], n: int, rnd: int, stall_s: float
) -> dict[str, Any]:
    opts = ctx.options
    point: dict[str, Any] = {"round": rnd, "model": model, "idle": n}
    port = free_port()
    proc = ctx.procs.start(argv(port), cpu=SERVER_CPU, log_name=f"lab-{model}")
    holder: Holder | None = None
    try:
        try:
            wait_for_port(port, proc)
        except BenchError as exc:
            point["error"] = str(exc)
            return point
        check = check_hello(port)
        if not check["ok"]:
            point["error"] = f"wrong answer: {check}"
            return point
        pid = proc.pid
        run_wrk(port, duration_s=opts.warmup_s, procs=ctx.procs)
        rss0 = proc_rss_kib(pid)
        point["rss_before_idle_kib"] = rss0
        if n:
            holder = Holder(ctx, port, stall_s)
            opened = holder.ask(f"open {n}")
            point["idle_open"] = opened
            rss1 = proc_rss_kib(pid)
            point["rss_idle_kib"] = rss1
            point["threads"] = proc_threads(pid)
            held = opened["held"]
            if rss0 is not None and rss1 is not None and held >= RSS_PER_IDLE_MIN:
                point["rss_per_idle_kib"] = round((rss1 - rss0) / held, 3)
            probe = holder.ask(f"probe {ACTIVE}")
            point["probe"] = probe
            if held < n or probe["served"] < ACTIVE:
                if capacity_limited(model, opened, probe):
                    point["refused"] = refusal_reason(model, n, opened, probe)
                    point["still_serving"] = holder.ask("check 20")
                    point["server_log"] = log_tail(proc, 400)
                    return point
                # A server that should hold them all lost some: a bug, not a limit.
                # Measure anyway, and say so.
                point["error"] = (
                    f"{n - held} of {n} idle connections and {ACTIVE - probe['served']} of "
                    f"{ACTIVE} probe connections were never answered "
                    f"({opened['errors'] or probe['errors']})"
                )
        cpu0, faults0 = proc_cpu_s(pid), proc_minor_faults(pid)
        res = run_wrk(port, duration_s=opts.duration_s, procs=ctx.procs)
        cpu1, faults1 = proc_cpu_s(pid), proc_minor_faults(pid)
        point["wrk"] = res.as_dict()
        if faults0 is not None and faults1 is not None and res.requests:
            # fresh memory mapped while serving: explains an outlier point
            point["minor_faults_per_req"] = round((faults1 - faults0) / res.requests, 4)
        point["rss_after_kib"] = proc_rss_kib(pid)
        if cpu0 is not None and cpu1 is not None and res.requests:
            point["cpu_s"] = round(cpu1 - cpu0, 3)
            point["cpu_s_per_1000_req"] = round((cpu1 - cpu0) / res.requests * 1000, 5)
        if not res.clean:
            wrk_error = f"wrk: {res.errors} {res.error_text}".strip()
            point["error"] = f"{point['error']}; {wrk_error}" if "error" in point else wrk_error
        if holder is not None:
            point["idle_after"] = holder.ask("check 20")
        if proc.poll() is not None:
            point["error"] = f"server died: {log_tail(proc)}"
        return point
    finally:
        if holder is not None:
            holder.close()
        ctx.procs.stop(proc)


def run(ctx: Context) -> dict[str, Any]:
    opts = ctx.options
    table = models()
    names = list(table)
    counts = idle_counts(ctx)
    stall_s = 2.0 if opts.quick else 3.0
    points: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    ctx.progress.begin(NAME, count_points(ctx))
    if not treadle_available():
        errors.append({"error": "treadle's CLI or treadle.demo is missing: baselines only"})
    for rnd in range(opts.rounds):
        shift = rnd % len(names)
        for model in names[shift:] + names[:shift]:
            # A model's idle counts run back to back, so its share at N of its throughput
            # with none idle compares points a minute apart at most; their order flips
            # every round so that a trend in the machine's load does not favour one end.
            for n in counts if rnd % 2 == 0 else counts[::-1]:
                started = time.monotonic()
                point = measure_point(ctx, model, table[model], n, rnd, stall_s)
                point["seconds"] = round(time.monotonic() - started, 1)
                points.append(point)
                if "error" in point:
                    errors.append({k: point[k] for k in ("round", "model", "idle", "error")})
                if "refused" in point:
                    what = "refused"
                elif "wrk" in point:
                    what = f"{point['wrk']['req_per_s']:,.0f} req/s"
                else:
                    what = "failed"
                ctx.progress.step(f"{model} idle={n} round {rnd + 1}: {what}")

    summary = summarise(points, names, counts)
    targets = check_targets(summary)
    print_summary(summary, names, counts)
    return {
        "title": TITLE,
        "settings": {
            "idle_counts": list(counts),
            "active_connections": ACTIVE,
            "rounds": opts.rounds,
            "duration_s": opts.duration_s,
            "warmup_s": opts.warmup_s,
            "backlog": BACKLOG,
            "idle_timeout_s": IDLE_TIMEOUT_S,
            "thread_stack_kib": THREAD_STACK_KIB,
            "idle_connections": "each sends one complete keep-alive GET, reads the "
            "response, then stays silent",
            "labels": {name: LABELS[name] for name in names},
            "commands": {name: " ".join(table[name](0)) for name in names},
            "server_cpu": SERVER_CPU,
            "loadgen_cpu": LOADGEN_CPU,
            "host": HOST,
        },
        "summary": summary,
        "targets": targets,
        "points": points,
        "errors": errors,
    }


def summarise(
    points: list[dict[str, Any]], names: list[str], counts: tuple[int, ...]
) -> dict[str, Any]:
    """Medians per model and idle count; refused points say why."""
    summary: dict[str, Any] = {}
    for model in names:
        per_n: dict[str, Any] = {}
        for n in counts:
            runs = [p for p in points if p["model"] == model and p["idle"] == n]
            measured = [p for p in runs if "wrk" in p and p["wrk"]["requests"]]
            refused = [p for p in runs if "refused" in p]
            entry: dict[str, Any] = {
                "req_per_s": median([p["wrk"]["req_per_s"] for p in measured]),
                "latency_p50_ms": median([p["wrk"]["latency_p50_ms"] for p in measured]),
                "latency_p99_ms": median([p["wrk"]["latency_p99_ms"] for p in measured]),
                "cpu_s_per_1000_req": median([p.get("cpu_s_per_1000_req") for p in measured]),
                "minor_faults_per_req": median([p.get("minor_faults_per_req") for p in measured]),
                "rss_idle_kib": median([p.get("rss_idle_kib") for p in runs]),
                "rss_kib": median([p.get("rss_after_kib") or p.get("rss_idle_kib") for p in runs]),
                "rss_per_idle_kib": median([p.get("rss_per_idle_kib") for p in runs]),
                "measured_rounds": len(measured),
            }
            if refused and len(refused) >= len(runs) / 2:
                entry["refused"] = refused[0]["refused"]
                entry["still_serving"] = refused[0].get("still_serving")
            failed = [p["error"] for p in runs if "error" in p]
            if failed:
                entry["errors"] = failed
            per_n[str(n)] = entry
        # share at N of the throughput with none idle: the median of each round's own
        # share, as a round measures a model's idle counts back to back
        base_by_round = {
            p["round"]: p["wrk"]["req_per_s"]
            for p in points
            if p["model"] == model and p["idle"] == 0 and "wrk" in p and p["wrk"]["requests"]
        }
        for n in counts:
            entry = per_n[str(n)]
            shares = [
                ratio(p["wrk"]["req_per_s"], base_by_round.get(p["round"]))
                for p in points
                if p["model"] == model and p["idle"] == n and "wrk" in p and p["wrk"]["requests"]
            ]
            entry["share_by_round"] = shares
            share = median(shares)
            entry["share_of_no_idle"] = None if share is None else round(share, 3)
        summary[model] = per_n
    return summary


def check_targets(summary: dict[str, Any]) -> dict[str, Any]:
    targets: dict[str, Any] = {}
    for model in ("epoll", "epoll-et"):
        entry = summary.get(model, {}).get("10000")
        if entry is None:
            continue
        share = entry.get("share_of_no_idle")
        targets[f"{model} throughput at 10000 idle / at 0"] = {
            "value": share,
            "target": f">= {TARGET_THROUGHPUT_SHARE}",
            "met": share is not None and share >= TARGET_THROUGHPUT_SHARE,
        }
    entry = summary.get("epoll", {}).get("10000")
    if entry is not None:
        rss = entry.get("rss_per_idle_kib")
        targets["epoll RSS per idle connection (KiB) at 10000 idle"] = {
            "value": rss,
            "target": f"<= {TARGET_RSS_PER_IDLE_KIB}",
            "met": rss is not None and rss <= TARGET_RSS_PER_IDLE_KIB,
        }
    return targets


def print_summary(summary: dict[str, Any], names: list[str], counts: tuple[int, ...]) -> None:
    print(
        f"\n{'model':<10} {'idle':>6} {'req/s':>9} {'share':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'cpu/1k':>7} {'RSS MiB':>8} {'KiB/idle':>9}"
    )
    for model in names:
        for n in counts:
            e = summary[model][str(n)]
            if "refused" in e:
                print(f"{model:<10} {n:>6}  refused: {e['refused'][:70]}")
                continue

            def f(v: float | None, spec: str) -> str:
                return "-" if v is None else format(v, spec)

            rss = e["rss_kib"] / 1024 if e["rss_kib"] else None
            print(
                f"{model:<10} {n:>6} {f(e['req_per_s'], ',.0f'):>9} "
                f"{f(e['share_of_no_idle'], '.2f'):>6} {f(e['latency_p50_ms'], '.2f'):>7} "
                f"{f(e['latency_p99_ms'], '.2f'):>7} {f(e['cpu_s_per_1000_req'], '.4f'):>7} "
                f"{f(rss, '.1f'):>8} {f(e['rss_per_idle_kib'], '.2f'):>9}"
            )
    print()
