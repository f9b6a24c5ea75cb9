"""Scenario ``profile``: where treadle's time and memory go.

Not a race against a peer but the explanation next to the races: when a target of the
other scenarios is missed, this says what to look at.

- Time: treadle on epoll runs under cProfile (``peers/instrumented_treadle.py``) while
  wrk drives it, once per mode of the hello scenario. The functions with the most own
  time are listed with their share and their microseconds per request. cProfile slows
  everything down (about twofold here), so the shares are what to read, not the sums.
- Memory: treadle on epoll runs under tracemalloc; a snapshot is taken after the
  warm-up and another with the lab's 10,000 idle connections held (by the same holder,
  same request). The growth between them, per line of source and per type of object,
  divided by the number of connections, is what one idle connection costs in Python
  objects. (RSS adds the allocator's slack and tracemalloc's own bookkeeping.)
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from harness import (
    BENCH_DIR,
    LOG_DIR,
    SERVER_CPU,
    BenchError,
    Context,
    check_hello,
    free_port,
    log_tail,
    python,
    run_wrk,
    wait_for_port,
)
from scenarios.hello import MODES, treadle_argv, treadle_available
from scenarios.lab import BACKLOG, IDLE_TIMEOUT_S, Holder
from scenarios.parser import CHILD

NAME = "profile"
TITLE = "Where treadle's time and memory go (cProfile under wrk, tracemalloc with idle connections)"
POLLER = "epoll"
IDLE = 10000
WRAPPER = BENCH_DIR / "peers" / "instrumented_treadle.py"


PARSER_CASES = ("parse-browser", "serialise")


def count_points(ctx: Context) -> int:
    return len(MODES) + 1 + len(PARSER_CASES) if treadle_available() else 0


def profile_parser(ctx: Context, case: str) -> dict[str, Any]:
    """treadle's HTTP core alone under cProfile (see scenarios/parser.py)."""
    proc = ctx.procs.start(
        [python(), "-c", CHILD, "--profile", "--case", case],
        cpu=SERVER_CPU,
        stdout=subprocess.PIPE,
        cwd=BENCH_DIR,
        log_name="profile-parser",
    )
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        ctx.procs.stop(proc)
    if proc.returncode != 0:
        raise BenchError(f"parser profile failed: {log_tail(proc)}")
    return json.loads(out)


def _argv(mode: str, out: str, port: int) -> list[str]:
    args = treadle_argv(
        POLLER, port, "--idle-timeout", str(IDLE_TIMEOUT_S), "--backlog", str(BACKLOG)
    )
    # treadle_argv starts with: python -m treadle ...; the wrapper takes the CLI's argv
    return [python(), str(WRAPPER), mode, out, "--", *args[3:]]


def profile_mode(ctx: Context, mode: str) -> dict[str, Any]:
    opts = ctx.options
    out = LOG_DIR / f"profile-{mode}.json"
    out.unlink(missing_ok=True)
    port = free_port()
    proc = ctx.procs.start(
        _argv("cprofile", str(out), port), cpu=SERVER_CPU, log_name=f"profile-{mode}"
    )
    try:
        wait_for_port(port, proc)
        if not check_hello(port)["ok"]:
            raise BenchError("wrong answer from the profiled server")
        warm = run_wrk(port, duration_s=opts.warmup_s, procs=ctx.procs, **MODES[mode])
        res = run_wrk(port, duration_s=opts.duration_s, procs=ctx.procs, **MODES[mode])
    finally:
        code = ctx.procs.stop(proc, timeout_s=15)
    if not out.exists():
        raise BenchError(f"no profile written (exit {code}): {log_tail(proc)}")
    report = json.loads(out.read_text())
    # every request the profiled server answered: the check, the warm-up and the run
    requests = 1 + warm.requests + res.requests
    for row in report["top_by_own_time"]:
        row["own_us_per_request"] = round(row["own_s"] / requests * 1e6, 3) if requests else None
    return {
        "mode": mode,
        "wrk": res.as_dict(),
        "requests_profiled": requests,
        **report,
    }


def memory(ctx: Context) -> dict[str, Any]:
    opts = ctx.options
    out = LOG_DIR / "profile-memory.json"
    out.unlink(missing_ok=True)
    port = free_port()
    proc = ctx.procs.start(
        _argv("tracemalloc", str(out), port),
        cpu=SERVER_CPU,
        stdin=subprocess.PIPE,
        log_name="profile-memory",
    )
    holder = None

    def snapshot(name: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write(f"snapshot {name}\n".encode())
        proc.stdin.flush()
        # the answer is the file growing a key; poll it with a deadline
        import time

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if out.exists():
                try:
                    if name in json.loads(out.read_text()):
                        return
                except ValueError:
                    pass
            if proc.poll() is not None:
                raise BenchError(f"traced server exited: {log_tail(proc)}")
            time.sleep(0.2)
        raise BenchError(f"no snapshot {name!r} within 120 s")

    try:
        wait_for_port(port, proc)
        run_wrk(port, duration_s=opts.warmup_s, procs=ctx.procs)
        snapshot("before")
        holder = Holder(ctx, port, stall_s=3.0)
        opened = holder.ask(f"open {IDLE}")
        snapshot("idle")
    finally:
        if holder is not None:
            holder.close()
        ctx.procs.stop(proc, timeout_s=15)
    reports = json.loads(out.read_text())
    held = opened["held"] or 1
    idle = reports["idle"]
    per_conn = [
        {**row, "bytes_per_connection": round(row["bytes"] / held, 1)}
        for row in idle.get("growth_by_line", [])
    ]
    types = {
        name: round(count / held, 3)
        for name, count in idle.get("growth_of_gc_objects_by_type", {}).items()
    }
    growth = idle["traced_kib"] - reports["before"]["traced_kib"]
    return {
        "idle_connections": held,
        "traced_growth_kib": round(growth, 1),
        "traced_bytes_per_connection": round(growth * 1024 / held, 1),
        "growth_by_line": per_conn,
        "gc_objects_per_connection": types,
    }


def run(ctx: Context) -> dict[str, Any]:
    ctx.progress.begin(NAME, count_points(ctx))
    if not treadle_available():
        return {"title": TITLE, "errors": [{"error": "treadle's CLI is missing"}]}
    cpu = []
    errors: list[dict[str, Any]] = []
    for mode in MODES:
        try:
            cpu.append(profile_mode(ctx, mode))
        except BenchError as exc:
            errors.append({"mode": mode, "error": str(exc)})
        ctx.progress.step(f"cProfile, {mode}")
    parser = []
    for case in PARSER_CASES:
        try:
            parser.append(profile_parser(ctx, case))
        except BenchError as exc:
            errors.append({"parser": case, "error": str(exc)})
        ctx.progress.step(f"cProfile, HTTP core alone, {case}")
    try:
        mem = memory(ctx)
    except BenchError as exc:
        mem = {}
        errors.append({"memory": True, "error": str(exc)})
    ctx.progress.step(f"tracemalloc, {IDLE} idle connections")
    print_summary(cpu, mem)
    return {
        "title": TITLE,
        "settings": {
            "poller": POLLER,
            "duration_s": ctx.options.duration_s,
            "idle_connections": IDLE,
        },
        "cpu": cpu,
        "parser": parser,
        "memory": mem,
        "errors": errors,
    }


def print_summary(cpu: list[dict[str, Any]], mem: dict[str, Any]) -> None:
    for entry in cpu:
        print(f"\n{entry['mode']}: {entry['requests_profiled']:,} requests under cProfile")
        for row in entry["top_by_own_time"][:12]:
            print(
                f"  {row['own_share'] * 100:5.1f}%  {row['own_us_per_request']:7.2f} us/req  "
                f"{row['function']}"
            )
    if mem:
        print(
            f"\nmemory: {mem['traced_bytes_per_connection']:,.0f} traced bytes per idle "
            "connection; biggest growth:"
        )
        for row in mem["growth_by_line"][:10]:
            print(f"  {row['bytes_per_connection']:8.1f} B/conn  {row['where']}")
        print("  objects per connection:", mem["gc_objects_per_connection"])
    print()
