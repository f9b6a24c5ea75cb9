"""Scenario ``static``: ``treadle serve DIR`` next to nginx, aiohttp and ``http.server``.

Three parts, all against files of random bytes under ``results/tmp/static/www/``:

- **wrk**: a 4 KiB and a 1 MiB file, each fetched by wrk (one thread, 50 keep-alive
  connections) from every server. All servers run for the whole part, pinned to core
  0, and each round measures every server back to back on each file in an order that
  rotates, as ``hello`` does; per server and file, the median req/s over the rounds and
  the median of each round's ratio to nginx.
- **1 GiB**: downloads of a 1 GiB file by curl (on core 1), treadle and nginx in turn,
  three per server and round (one in quick mode), a round's figure being their median;
  MiB/s medians over the rounds and the median of the rounds' ratios. The file holds
  real bytes (one random MiB written 1,024 times), not a sparse hole: a hole reads as
  zero pages the kernel never has to fetch, which would flatter ``sendfile``.
- **memory**: 100 clients (``bench/slow_reader.py``, one process on core 1) each ask for
  the 1 GiB file and then read 64 KiB a second for ten seconds, while the server's
  RSS (with its children: nginx's worker) is sampled; before, peak and after.

nginx is the reference: Debian's build, one worker, ``sendfile``, ``tcp_nopush``, an open
file cache, no access log, keep-alive without a request limit in practice. aiohttp
serves with ``web.static`` on asyncio's loop (``peers/aiohttp_static.py``); the
standard library's ``python -m http.server`` logs every request to stderr and answers
in HTTP/1.0, closing the connection after each response, so wrk reconnects for every
request (``STDLIB_CONNECTIONS`` says how many it gets). Before any measurement
each server must answer each file with exactly its bytes; a server that does not is
recorded as an error and left out of that file's points, so a 404 is never timed.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import (
    BENCH_DIR,
    HOST,
    LOADGEN_CPU,
    LOG_DIR,
    SERVER_CPU,
    BenchError,
    Context,
    free_port,
    log_tail,
    median,
    proc_open_sockets,
    proc_tree_cpu_s,
    proc_tree_rss_kib,
    python,
    ratio,
    run_wrk,
    wait_for_port,
)
from harness import (
    nginx_argv as harness_nginx_argv,
)
from harness import (
    nginx_config as harness_nginx_config,
)

NAME = "static"
TITLE = "Static files: 4 KiB and 1 MiB under wrk, a 1 GiB download, RSS under 100 slow readers"
PEER = "nginx"
WORK_DIR = LOG_DIR / "static"
ROOT = WORK_DIR / "www"
#: label -> (file name, size in bytes)
FILES: dict[str, tuple[str, int]] = {"4KiB": ("4k.bin", 4096), "1MiB": ("1m.bin", 1 << 20)}
BIG_NAME = "1g.bin"
BIG_BYTES = 1 << 30
BLOCK_BYTES = 1 << 20
#: curl downloads of the big file per server and round (one in quick mode)
BIG_DOWNLOADS_PER_ROUND = 3
CONNECTIONS = 50
#: http.server answers in HTTP/1.0 and closes every connection, so wrk reconnects for
#: each request; 50 such connections overflow its accept backlog (5) now and then, which
#: shows in its p99 (SYN retries), yet wrk sees no errors: it gets the same load as the rest
STDLIB_CONNECTIONS = 50
#: the servers that take part in the 1 GiB download and the memory part
BIG_SERVERS = ("treadle", "nginx")
SLOW_CLIENTS = 100
SLOW_RATE_BYTES = 64 * 1024
SLOW_SECONDS = 10.0
QUICK_SLOW_SECONDS = 4.0
#: treadle / nginx, from the issue
TARGETS = {"4KiB": 0.5, "1MiB": 0.9, "1GiB": 0.95}
MIB = 1 << 20


# --------------------------------------------------------------------------- servers


def treadle_argv(port: int) -> list[str]:
    return [
        python(),
        "-m",
        "treadle",
        "serve",
        str(ROOT),
        "--bind",
        f"{HOST}:{port}",
        "--log-level",
        "warning",
    ]


#: what the static nginx adds to the one-worker config the harness writes
NGINX_HTTP_LINES = (
    "sendfile on;",
    "tcp_nopush on;",
    "tcp_nodelay on;",
    "keepalive_requests 100000;",
    "keepalive_timeout 75s;",
    "open_file_cache max=1000 inactive=60s;",
    "open_file_cache_valid 60s;",
    "open_file_cache_errors on;",
    "types { application/octet-stream bin; }",
    "default_type application/octet-stream;",
)


def nginx_config(port: int, prefix: Path) -> str:
    """One worker serving ROOT on ``port``; every path it writes lies under ``prefix``."""
    return harness_nginx_config(
        port, prefix, http_lines=NGINX_HTTP_LINES, server_lines=(f"root {ROOT};", "location / { }")
    )


def nginx_argv(port: int) -> list[str]:
    """Write the config for ``port`` and return the foreground nginx command."""
    prefix = WORK_DIR / "nginx"
    return harness_nginx_argv(port, prefix, nginx_config(port, prefix))


def aiohttp_argv(port: int) -> list[str]:
    return [
        python(),
        str(BENCH_DIR / "peers" / "aiohttp_static.py"),
        "--port",
        str(port),
        "--root",
        str(ROOT),
    ]


def stdlib_argv(port: int) -> list[str]:
    return [python(), "-m", "http.server", "--bind", HOST, str(port), "--directory", str(ROOT)]


#: name -> (argv builder, wrk connections)
SERVERS: dict[str, tuple[Callable[[int], list[str]], int]] = {
    "treadle": (treadle_argv, CONNECTIONS),
    "nginx": (nginx_argv, CONNECTIONS),
    "aiohttp": (aiohttp_argv, CONNECTIONS),
    "http.server": (stdlib_argv, STDLIB_CONNECTIONS),
}


# --------------------------------------------------------------------------- files


def file_bytes(label: str) -> bytes:
    """The content of a small file: random bytes, the same in every run."""
    name, size = FILES[label]
    return random.Random(name).randbytes(size)


def big_block() -> bytes:
    """The MiB that the big file repeats."""
    return random.Random(BIG_NAME).randbytes(BLOCK_BYTES)


def prepare_files() -> dict[str, Any]:
    """Write the files under ROOT (the big one only when it is missing or differs)."""
    ROOT.mkdir(parents=True, exist_ok=True)
    for label, (name, _) in FILES.items():
        path = ROOT / name
        data = file_bytes(label)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    block = big_block()
    big = ROOT / BIG_NAME
    reused = False
    if big.exists() and big.stat().st_size == BIG_BYTES:
        with open(big, "rb") as f:
            reused = f.read(BLOCK_BYTES) == block
    started = time.monotonic()
    if not reused:
        with open(big, "wb") as f:
            for _ in range(BIG_BYTES // BLOCK_BYTES):
                f.write(block)
    return {"big_file_reused": reused, "big_file_write_s": round(time.monotonic() - started, 2)}


def check_file(port: int, label: str) -> dict[str, Any]:
    """GET a small file with http.client: 200 and exactly its bytes?"""
    name, _ = FILES[label]
    expected = file_bytes(label)
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", f"/{name}")
        resp = conn.getresponse()
        body = resp.read()
        return {
            "ok": resp.status == 200 and body == expected,
            "status": resp.status,
            "body_bytes": len(body),
            "body_matches": body == expected,
            "headers": {k.lower(): v for k, v in resp.getheaders()},
        }
    except (OSError, http.client.HTTPException) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        conn.close()


def check_big(port: int) -> dict[str, Any]:
    """GET the big file and compare every byte, streaming; returns what was seen."""
    block = memoryview(big_block())
    started = time.monotonic()
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    offset = 0
    try:
        conn.request("GET", f"/{BIG_NAME}")
        resp = conn.getresponse()
        if resp.status != 200:
            resp.read(65536)
            return {"ok": False, "status": resp.status}
        while True:
            data = resp.read(BLOCK_BYTES)
            if not data:
                break
            view, pos = memoryview(data), 0
            while pos < len(view):
                start = (offset + pos) % BLOCK_BYTES
                n = min(BLOCK_BYTES - start, len(view) - pos)
                if view[pos : pos + n] != block[start : start + n]:
                    return {"ok": False, "status": 200, "first_wrong_byte": offset + pos}
                pos += n
            offset += len(data)
        return {
            "ok": offset == BIG_BYTES,
            "status": 200,
            "body_bytes": offset,
            "seconds": round(time.monotonic() - started, 2),
        }
    except (OSError, http.client.HTTPException) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "body_bytes": offset}
    finally:
        conn.close()


# --------------------------------------------------------------------------- parts


def downloads_per_round(ctx: Context) -> int:
    """1 GiB downloads per server and round: one takes well under a second, and varies."""
    return 1 if ctx.options.quick else BIG_DOWNLOADS_PER_ROUND


def count_points(ctx: Context) -> int:
    rounds = ctx.options.rounds
    # wrk points; per big server: its check, its downloads, its slow readers
    big = rounds * downloads_per_round(ctx) + 2
    return len(SERVERS) * len(FILES) * rounds + len(BIG_SERVERS) * big


def start_servers(
    ctx: Context, names: list[str], errors: list[dict[str, Any]]
) -> tuple[dict[str, int], dict[str, subprocess.Popen[bytes]]]:
    """Start each server on core 0 and wait for its port; those that fail are errors."""
    ports: dict[str, int] = {}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for server in names:
        port = free_port()
        try:
            argv = SERVERS[server][0](port)
        except OSError as exc:
            errors.append({"server": server, "error": f"cannot prepare: {exc}"})
            continue
        proc = ctx.procs.start(argv, cpu=SERVER_CPU, log_name=f"static-{server}")
        try:
            wait_for_port(port, proc)
        except BenchError as exc:
            errors.append({"server": server, "error": str(exc)})
            ctx.procs.stop(proc)
            continue
        ports[server], procs[server] = port, proc
    return ports, procs


def alive(
    server: str,
    procs: dict[str, subprocess.Popen[bytes]],
    errors: list[dict[str, Any]],
    **where: Any,
) -> bool:
    """Is ``server`` still running? A death is recorded once and the server dropped."""
    proc = procs.get(server)
    if proc is None:
        return False
    if proc.poll() is None:
        return True
    errors.append({**where, "server": server, "error": f"server died: {log_tail(proc)}"})
    del procs[server]
    return False


def wrk_part(
    ctx: Context,
    ports: dict[str, int],
    procs: dict[str, subprocess.Popen[bytes]],
    ok_files: dict[str, set[str]],
    errors: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The 4 KiB and 1 MiB points, interleaved rounds."""
    opts = ctx.options
    names = list(SERVERS)
    points: list[dict[str, Any]] = []
    for rnd in range(opts.rounds):
        for f, (label, (name, size)) in enumerate(FILES.items()):
            shift = (rnd + f) % len(names)
            for server in names[shift:] + names[:shift]:
                step = f"{server} {label} round {rnd + 1}"
                if label not in ok_files.get(server, set()) or not alive(
                    server, procs, errors, round=rnd, file=label
                ):
                    ctx.progress.step(f"{step}: skipped")
                    continue
                port, proc = ports[server], procs[server]
                spec = {
                    "connections": SERVERS[server][1],
                    "path": f"/{name}",
                    "procs": ctx.procs,
                }
                run_wrk(port, duration_s=opts.warmup_s, **spec)
                cpu0 = proc_tree_cpu_s(proc.pid)
                res = run_wrk(port, duration_s=opts.duration_s, **spec)
                cpu1 = proc_tree_cpu_s(proc.pid)
                point = {
                    "round": rnd,
                    "server": server,
                    "file": label,
                    "connections": spec["connections"],
                    **res.as_dict(),
                    "mib_per_s": round(res.req_per_s * size / MIB, 1),
                }
                if res.requests and cpu0 is not None and cpu1 is not None:
                    point["cpu_us_per_req"] = round((cpu1 - cpu0) / res.requests * 1e6, 2)
                    # near 1: the server was the limit; well below: wrk (or the kernel) was
                    point["server_core_busy"] = round((cpu1 - cpu0) / res.duration_s, 3)
                points.append(point)
                if not res.clean:
                    errors.append(
                        {
                            "round": rnd,
                            "server": server,
                            "file": label,
                            "wrk_errors": res.errors,
                            "text": res.error_text,
                        }
                    )
                ctx.progress.step(f"{step}: {res.req_per_s:,.0f} req/s")
    return points


def curl_download(ctx: Context, port: int, max_s: float) -> dict[str, Any]:
    """One curl download of the big file on core 1; its status, size, time and MiB/s."""
    argv = [
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "--max-time",
        f"{max_s:g}",
        "-w",
        "%{http_code} %{size_download} %{time_total}",
        f"http://{HOST}:{port}/{BIG_NAME}",
    ]
    proc = ctx.procs.start(argv, cpu=LOADGEN_CPU, stdout=subprocess.PIPE)
    try:
        out, _ = proc.communicate(timeout=max_s + 10)
    except subprocess.TimeoutExpired:
        return {"error": "curl did not finish in time"}
    finally:
        ctx.procs.stop(proc)
    try:
        code, size, seconds = out.decode().split()
        size_bytes, total_s = int(size), float(seconds)
    except ValueError:
        return {"error": f"curl exited {proc.returncode}: {out[-200:]!r}"}
    result: dict[str, Any] = {
        "http_code": int(code),
        "size_download": size_bytes,
        "time_total_s": round(total_s, 4),
        "mib_per_s": round(size_bytes / MIB / total_s, 1) if total_s > 0 else None,
        "curl_exit": proc.returncode,
    }
    if proc.returncode != 0 or size_bytes != BIG_BYTES or code != "200":
        result["error"] = "partial or failed download"
    return result


def big_part(
    ctx: Context,
    ports: dict[str, int],
    procs: dict[str, subprocess.Popen[bytes]],
    checks: dict[str, Any],
    errors: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Check the big file byte for byte on each server, then the timed downloads."""
    opts = ctx.options
    ready: list[str] = []
    for server in BIG_SERVERS:
        if not alive(server, procs, errors, part="1GiB"):
            ctx.progress.step(f"{server} {BIG_NAME} check: not running")
            continue
        check = checks.setdefault(server, {})["1GiB"] = check_big(ports[server])
        if check["ok"]:
            ready.append(server)
        else:
            errors.append({"server": server, "file": "1GiB", "error": "wrong answer", **check})
        ctx.progress.step(f"{server} {BIG_NAME} check: {'ok' if check['ok'] else 'WRONG'}")
    max_s = 30.0 if opts.quick else 120.0
    downloads = downloads_per_round(ctx)
    points: list[dict[str, Any]] = []
    for rnd in range(opts.rounds):
        for i in range(downloads):
            order = BIG_SERVERS if (rnd + i) % 2 == 0 else BIG_SERVERS[::-1]
            for server in order:
                step = f"{server} {BIG_NAME} round {rnd + 1} download {i + 1}"
                if server not in ready or not alive(server, procs, errors, round=rnd, file="1GiB"):
                    ctx.progress.step(f"{step}: skipped")
                    continue
                res = curl_download(ctx, ports[server], max_s)
                points.append({"round": rnd, "download": i, "server": server, **res})
                if "error" in res:
                    errors.append({"round": rnd, "server": server, "file": "1GiB", **res})
                ctx.progress.step(f"{step}: {res.get('mib_per_s') or 0:,.0f} MiB/s")
    return points


class LineReader:
    """JSON lines from a child's stdout pipe, each read with a deadline."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.buffer = b""
        self.eof = False

    def poll(self, timeout_s: float) -> dict[str, Any] | None:
        """A complete line if one arrives within ``timeout_s``, else None."""
        if b"\n" not in self.buffer and not self.eof:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout_s))
            if ready:
                chunk = os.read(self.fd, 65536)
                self.buffer += chunk
                self.eof = not chunk
        if b"\n" not in self.buffer:
            return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            record: dict[str, Any] = json.loads(line)
        except ValueError:
            return {"event": "garbled", "text": line[:200].decode("latin-1")}
        return record


def slow_readers(ctx: Context, server: str, port: int, pid: int, seconds: float) -> dict[str, Any]:
    """RSS of the server tree before, during (peak) and after SLOW_CLIENTS slow downloads."""
    before = proc_tree_rss_kib(pid)
    sockets_before = proc_open_sockets(pid)
    argv = [
        python(),
        str(BENCH_DIR / "slow_reader.py"),
        str(port),
        f"/{BIG_NAME}",
        "--clients",
        str(SLOW_CLIENTS),
        "--rate-bytes",
        str(SLOW_RATE_BYTES),
        "--seconds",
        f"{seconds:g}",
    ]
    reader = ctx.procs.start(
        argv, cpu=LOADGEN_CPU, stdout=subprocess.PIPE, log_name=f"static-slow-{server}"
    )
    lines = LineReader(reader)
    samples: list[int] = []
    started = done = None
    sockets_peak = 0
    deadline = time.monotonic() + seconds + 30
    try:
        while time.monotonic() < deadline and done is None:
            record = lines.poll(0.1)
            rss = proc_tree_rss_kib(pid)
            if rss is not None and started is not None:
                samples.append(rss)
                sockets_peak = max(sockets_peak, proc_open_sockets(pid) or 0)
            if record is None:
                if lines.eof or (reader.poll() is not None and not lines.buffer):
                    break
                continue
            if record.get("event") == "started":
                started = record
            else:
                done = record
    finally:
        ctx.procs.stop(reader)
    # after: once the server has let go of the readers' sockets (bounded), or at 5 s
    settle_deadline = time.monotonic() + 5
    while time.monotonic() < settle_deadline:
        now = proc_open_sockets(pid)
        if now is None or sockets_before is None or now <= sockets_before:
            break
        time.sleep(0.05)
    after = proc_tree_rss_kib(pid)
    result: dict[str, Any] = {
        "rss_before_kib": before,
        "rss_peak_kib": max(samples) if samples else None,
        "rss_after_kib": after,
        "rss_growth_kib": (max(samples) - before) if samples and before is not None else None,
        "samples": len(samples),
        "sockets_before": sockets_before,
        "sockets_peak": sockets_peak,
        "sockets_after": proc_open_sockets(pid),
        "clients_started": started,
        "clients_done": done,
    }
    if started is None or done is None:
        result["error"] = f"slow readers did not report: {log_tail(reader)}"
    return result


def memory_part(
    ctx: Context,
    ports: dict[str, int],
    procs: dict[str, subprocess.Popen[bytes]],
    big_ok: set[str],
    errors: list[dict[str, Any]],
) -> dict[str, Any]:
    seconds = QUICK_SLOW_SECONDS if ctx.options.quick else SLOW_SECONDS
    out: dict[str, Any] = {}
    for server in (PEER, *[s for s in BIG_SERVERS if s != PEER]):
        step = f"{server} {SLOW_CLIENTS} slow readers"
        if server not in big_ok or not alive(server, procs, errors, part="memory"):
            ctx.progress.step(f"{step}: skipped")
            continue
        res = slow_readers(ctx, server, ports[server], procs[server].pid, seconds)
        res["still_serving"] = check_file(ports[server], "4KiB")["ok"]
        out[server] = res
        if "error" in res or not res["still_serving"]:
            errors.append({"server": server, "part": "memory", "error": res.get("error", "")})
        ctx.progress.step(f"{step}: peak {res['rss_peak_kib'] or 0:,} KiB")
    return out


# --------------------------------------------------------------------------- run


def run(ctx: Context) -> dict[str, Any]:
    opts = ctx.options
    errors: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    ctx.progress.begin(NAME, count_points(ctx))
    ctx.progress.say(f"writing the files under {ROOT}")
    files = prepare_files()

    ports, procs = start_servers(ctx, list(SERVERS), errors)
    ok_files: dict[str, set[str]] = {}
    try:
        for server, port in ports.items():
            for label in FILES:
                check = checks.setdefault(server, {})[label] = check_file(port, label)
                if check["ok"]:
                    ok_files.setdefault(server, set()).add(label)
                else:
                    slim = {k: v for k, v in check.items() if k != "headers"}
                    errors.append(
                        {"server": server, "file": label, "error": "wrong answer", **slim}
                    )
        points = wrk_part(ctx, ports, procs, ok_files, errors)
        for server in [s for s in procs if s not in BIG_SERVERS]:
            ctx.procs.stop(procs.pop(server))
        big_points = big_part(ctx, ports, procs, checks, errors)
        big_ok = {s for s in BIG_SERVERS if checks.get(s, {}).get("1GiB", {}).get("ok")}
        memory = memory_part(ctx, ports, procs, big_ok, errors)
    finally:
        for proc in procs.values():
            ctx.procs.stop(proc)

    summary = summarise(points, big_points)
    print_summary(summary, memory)
    return {
        "title": TITLE,
        "settings": {
            "files": {label: size for label, (_, size) in FILES.items()},
            "big_file_bytes": BIG_BYTES,
            "big_file": "one random MiB written 1,024 times (real data, not sparse)",
            **files,
            "connections": {s: SERVERS[s][1] for s in SERVERS},
            "wrk_threads": 1,
            "rounds": opts.rounds,
            "duration_s": opts.duration_s,
            "warmup_s": opts.warmup_s,
            "server_cpu": SERVER_CPU,
            "loadgen_cpu": LOADGEN_CPU,
            "big_downloads_per_round": downloads_per_round(ctx),
            "slow_clients": SLOW_CLIENTS,
            "slow_rate_bytes_per_s": SLOW_RATE_BYTES,
            "slow_seconds": QUICK_SLOW_SECONDS if opts.quick else SLOW_SECONDS,
            "commands": {name: " ".join(SERVERS[name][0](0)) for name in SERVERS},
            "nginx_config": nginx_config(0, WORK_DIR / "nginx"),
        },
        "checks": checks,
        "summary": summary,
        "memory": memory,
        "targets": TARGETS,
        "points": points,
        "big_points": big_points,
        "errors": errors,
    }


def paired_ratios(points: list[dict[str, Any]], server: str, key: str) -> list[float | None]:
    """Each round's ratio of ``server`` to the peer on ``key`` (points of one file)."""
    peer = {p["round"]: p[key] for p in points if p["server"] == PEER and p.get(key)}
    return [
        ratio(p[key], peer.get(p["round"])) for p in points if p["server"] == server and p.get(key)
    ]


def with_ratio(entry: dict[str, Any], paired: list[float | None], label: str, server: str) -> None:
    ratio_median = median(paired)
    entry["ratio_by_round"] = paired
    entry["ratio_to_nginx"] = round(ratio_median, 3) if ratio_median is not None else None
    if server == "treadle":
        entry["target"] = TARGETS[label]
        entry["target_met"] = (
            entry["ratio_to_nginx"] is not None and entry["ratio_to_nginx"] >= TARGETS[label]
        )


def summarise(points: list[dict[str, Any]], big_points: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per file and server; per-round ratios to nginx, then their median."""
    summary: dict[str, Any] = {}
    for label in FILES:
        of_file = [p for p in points if p["file"] == label]
        per_server: dict[str, Any] = {}
        for server in SERVERS:
            runs = [p for p in of_file if p["server"] == server]
            entry = {
                "connections": SERVERS[server][1],
                "req_per_s": median([p["req_per_s"] for p in runs if p["requests"]]),
                "mib_per_s": median([p["mib_per_s"] for p in runs if p["requests"]]),
                "latency_p50_ms": median([p["latency_p50_ms"] for p in runs]),
                "latency_p99_ms": median([p["latency_p99_ms"] for p in runs]),
                "cpu_us_per_req": median([p.get("cpu_us_per_req") for p in runs]),
                "server_core_busy": median([p.get("server_core_busy") for p in runs]),
                "runs": [p["req_per_s"] for p in runs],
            }
            if server != PEER:
                with_ratio(entry, paired_ratios(of_file, server, "req_per_s"), label, server)
            per_server[server] = entry
        summary[label] = per_server
    big: dict[str, Any] = {}
    # a round's figure is the median of its downloads; then as for wrk: medians over
    # the rounds, and the median of the rounds' ratios
    by_round = [
        {
            "round": rnd,
            "server": server,
            "mib_per_s": median([p["mib_per_s"] for p in of_round]),
            "time_total_s": median([p["time_total_s"] for p in of_round]),
        }
        for server in BIG_SERVERS
        for rnd in sorted({p["round"] for p in big_points})
        if (
            of_round := [
                p
                for p in big_points
                if p["server"] == server and p["round"] == rnd and "error" not in p
            ]
        )
    ]
    for server in BIG_SERVERS:
        runs = [p for p in by_round if p["server"] == server]
        entry = {
            "mib_per_s": median([p["mib_per_s"] for p in runs]),
            "time_total_s": median([p["time_total_s"] for p in runs]),
            "runs": [p["mib_per_s"] for p in runs],
            "downloads": [
                p["mib_per_s"] for p in big_points if p["server"] == server and "error" not in p
            ],
        }
        if server != PEER:
            with_ratio(entry, paired_ratios(by_round, server, "mib_per_s"), "1GiB", server)
        big[server] = entry
    summary["1GiB"] = big
    return summary


def print_summary(summary: dict[str, Any], memory: dict[str, Any]) -> None:
    print(f"\n{'file':<6} {'server':<12} {'req/s':>10} {'MiB/s':>9} {'x nginx':>8} {'target':>7}")
    for label, per_server in summary.items():
        for server, entry in per_server.items():
            rps = entry.get("req_per_s")
            mib = entry.get("mib_per_s")
            r = entry.get("ratio_to_nginx")
            tgt = f">={entry['target']:g}" if "target" in entry else ""
            print(
                f"{label:<6} {server:<12} {'-' if rps is None else f'{rps:,.0f}':>10} "
                f"{'-' if mib is None else f'{mib:,.0f}':>9} "
                f"{'' if r is None else f'{r:.2f}':>8} {tgt:>7}"
            )
    for server, res in memory.items():
        print(
            f"RSS {server}: before {res['rss_before_kib']} KiB, peak {res['rss_peak_kib']} KiB, "
            f"after {res['rss_after_kib']} KiB"
        )
    print()
