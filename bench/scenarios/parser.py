"""Scenario ``parser``: the hot path of the HTTP core, next to h11 and httptools.

Operations per second for the same work done three ways, in one process pinned to the
server core (each round of each case is a fresh process, so the cases interleave):

- ``parse-browser`` / ``parse-minimal``: bytes of one request in, the parsed request out
  (method, target, lowercased header fields). Every implementation builds one fresh
  connection (or parser) object per request and counts it, as a server does for each new
  TCP connection; nobody gets a reused, warmed object.
- ``serialise``: one ``200 text/plain`` response with ``Hello, world!``, its
  Content-Length, Date and Server fields, to bytes. The connections are prepared, with a
  request received, outside the timed loop.
- ``cycle-browser`` / ``cycle-minimal``: what a keep-alive server does per request on
  one long-lived connection: feed the bytes, take the request and its end, produce the
  response, be ready for the next request.

Peers. h11 builds ``Response``, ``Data`` and ``EndOfMessage`` events and joins the three
pieces it returns. httptools only parses: a minimal callback object collects method, URL
and lowercased header fields (what a server keeps), and responses come from a small
hand-written serialiser in the style of an httptools-based server (status line from a
table, field names and values checked by regular expression, joined once).

Timing: ``time.perf_counter_ns`` around batches of about 20 ms, the garbage collector
left on (servers run with it) but emptied before each batch; the figure is the median
time per operation over all batches of all rounds.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

NAME = "parser"
TITLE = "HTTP core micro-benchmark: parse and serialise, next to h11 and httptools"
CASES = ("parse-browser", "parse-minimal", "serialise", "cycle-browser", "cycle-minimal")
IMPLS = ("treadle", "h11", "httptools")
#: treadle / peer operations per second, from issue 3 (parsing)
TARGETS = {"h11": 3.0, "httptools": 0.5}
TARGET_CASES = ("parse-browser", "parse-minimal")

BROWSER_REQUEST = (
    b"GET /articles/2024/event-loops?ref=home HTTP/1.1\r\n"
    b"Host: www.example.org\r\n"
    b"Connection: keep-alive\r\n"
    b'sec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"\r\n'
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    b"(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
    b"image/webp,image/apng,*/*;q=0.8\r\n"
    b"Sec-Fetch-Site: same-origin\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"Referer: https://www.example.org/articles/\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Accept-Language: en-GB,en;q=0.9,de;q=0.7\r\n"
    b"Cookie: session=9f2c1e7a4b6d8f0e; theme=dark; seen_banner=1\r\n"
    b"\r\n"
)
MINIMAL_REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
BODY = b"Hello, world!"
DATE = b"Fri, 27 Nov 2026 10:00:00 GMT"
BATCH_TARGET_NS = 20_000_000
#: how the harness starts a measuring process (in bench/, pinned to the server core)
CHILD = "import sys; from scenarios.parser import child_main; sys.exit(child_main(sys.argv[1:]))"


# ----------------------------------------------------------------------------- treadle


def treadle_impl(case: str, raw: bytes) -> Callable[[int], int]:
    """Return ``run(n) -> elapsed ns`` doing ``case`` n times with treadle's core."""
    from treadle.http import (
        NEED_DATA,
        PAUSED,
        EndOfMessage,
        Limits,
        Request,
        ResponseDefaults,
        ServerConnection,
    )

    limits = Limits()
    defaults = ResponseDefaults(server=b"treadle", date=DATE)
    headers = [(b"content-type", b"text/plain")]

    if case.startswith("parse"):

        def run(n: int) -> int:
            t0 = time.perf_counter_ns()
            for _ in range(n):
                conn = ServerConnection(limits, defaults=defaults)
                conn.receive_data(raw)
                conn.next_event()
                conn.next_event()
            return time.perf_counter_ns() - t0

        return run

    if case == "serialise":

        def run(n: int) -> int:
            conns = []
            for _ in range(n):
                conn = ServerConnection(limits, defaults=defaults)
                conn.receive_data(raw)
                conn.next_event()
                conn.next_event()
                conns.append(conn)
            gc.collect()
            t0 = time.perf_counter_ns()
            for conn in conns:
                conn.send_response(200, headers, BODY)
            return time.perf_counter_ns() - t0

        return run

    conn = ServerConnection(limits, defaults=defaults)

    def run(n: int) -> int:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            conn.receive_data(raw)
            conn.next_event()
            conn.next_event()
            conn.send_response(200, headers, BODY)
        return time.perf_counter_ns() - t0

    # one cycle outside the clock proves the loop does what it claims
    conn.receive_data(raw)
    assert type(conn.next_event()) is Request
    assert type(conn.next_event()) is EndOfMessage
    assert conn.next_event() is PAUSED
    conn.send_response(200, headers, BODY)
    assert conn.next_event() is NEED_DATA
    return run


def treadle_outputs(raw: bytes) -> dict[str, Any]:
    from treadle.http import Limits, ResponseDefaults, ServerConnection

    conn = ServerConnection(Limits(), defaults=ResponseDefaults(server=b"treadle", date=DATE))
    conn.receive_data(raw)
    req = conn.next_event()
    conn.next_event()
    out = conn.send_response(200, [(b"content-type", b"text/plain")], BODY)
    return {
        "method": req.method.decode(),  # type: ignore[union-attr]
        "target": req.target.decode(),  # type: ignore[union-attr]
        "fields": len(req.headers),  # type: ignore[union-attr]
        "response_bytes": len(out),
        "response": out.decode("latin-1"),
    }


# ----------------------------------------------------------------------------- h11


def h11_impl(case: str, raw: bytes) -> Callable[[int], int]:
    import h11

    Connection, SERVER = h11.Connection, h11.SERVER
    Response, Data, EndOfMessage = h11.Response, h11.Data, h11.EndOfMessage
    headers = [
        (b"content-type", b"text/plain"),
        (b"content-length", b"%d" % len(BODY)),
        (b"date", DATE),
        (b"server", b"h11"),
    ]

    if case.startswith("parse"):

        def run(n: int) -> int:
            t0 = time.perf_counter_ns()
            for _ in range(n):
                conn = Connection(SERVER)
                conn.receive_data(raw)
                conn.next_event()
                conn.next_event()
            return time.perf_counter_ns() - t0

        return run

    def respond(conn: Any) -> bytes:
        return b"".join(
            (
                conn.send(Response(status_code=200, headers=headers, reason=b"OK")),
                conn.send(Data(data=BODY)),
                conn.send(EndOfMessage()),
            )
        )

    if case == "serialise":

        def run(n: int) -> int:
            conns = []
            for _ in range(n):
                conn = Connection(SERVER)
                conn.receive_data(raw)
                conn.next_event()
                conn.next_event()
                conns.append(conn)
            gc.collect()
            t0 = time.perf_counter_ns()
            for conn in conns:
                respond(conn)
            return time.perf_counter_ns() - t0

        return run

    conn = Connection(SERVER)

    def run(n: int) -> int:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            conn.receive_data(raw)
            conn.next_event()
            conn.next_event()
            respond(conn)
            conn.start_next_cycle()
        return time.perf_counter_ns() - t0

    return run


def h11_outputs(raw: bytes) -> dict[str, Any]:
    import h11

    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    req = conn.next_event()
    conn.next_event()
    headers = [
        (b"content-type", b"text/plain"),
        (b"content-length", b"%d" % len(BODY)),
        (b"date", DATE),
        (b"server", b"h11"),
    ]
    out = b"".join(
        (
            conn.send(h11.Response(status_code=200, headers=headers, reason=b"OK")),
            conn.send(h11.Data(data=BODY)),
            conn.send(h11.EndOfMessage()),
        )
    )
    return {
        "method": req.method.decode(),
        "target": req.target.decode(),
        "fields": len(req.headers),
        "response_bytes": len(out),
        "response": out.decode("latin-1"),
    }


# ----------------------------------------------------------------------------- httptools


class _Collector:
    """The least a server keeps from httptools' callbacks: method, URL, fields."""

    __slots__ = ("parser", "url", "headers", "method", "keep_alive", "complete")

    def __init__(self) -> None:
        self.parser: Any = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.method = b""
        self.keep_alive = True
        self.complete = False

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.method = self.parser.get_method()
        self.keep_alive = self.parser.should_keep_alive()

    def on_message_complete(self) -> None:
        self.complete = True


_FIELD_NAME_BAD = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
_FIELD_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS_LINE = {200: b"HTTP/1.1 200 OK\r\n"}


def serialise_for_httptools(
    status: int, headers: list[tuple[bytes, bytes]], body: bytes, date: bytes
) -> bytes:
    """A minimal response writer of the kind servers built on httptools carry."""
    parts = [_STATUS_LINE[status], b"date: ", date, b"\r\nserver: httptools\r\n"]
    for name, value in headers:
        if _FIELD_NAME_BAD.search(name) or _FIELD_VALUE_BAD.search(value):
            raise ValueError("invalid response field")
        parts += (name.lower(), b": ", value, b"\r\n")
    parts += (b"content-length: ", b"%d" % len(body), b"\r\n\r\n", body)
    return b"".join(parts)


def httptools_impl(case: str, raw: bytes) -> Callable[[int], int]:
    import httptools

    Parser = httptools.HttpRequestParser
    headers = [(b"content-type", b"text/plain")]

    def new_parser() -> tuple[_Collector, Any]:
        proto = _Collector()
        proto.parser = parser = Parser(proto)
        return proto, parser

    if case.startswith("parse"):

        def run(n: int) -> int:
            t0 = time.perf_counter_ns()
            for _ in range(n):
                proto = _Collector()
                proto.parser = parser = Parser(proto)
                parser.feed_data(raw)
            return time.perf_counter_ns() - t0

        return run

    if case == "serialise":

        def run(n: int) -> int:
            protos = []
            for _ in range(n):
                proto, parser = new_parser()
                parser.feed_data(raw)
                protos.append(proto)
            gc.collect()
            t0 = time.perf_counter_ns()
            for _proto in protos:
                serialise_for_httptools(200, headers, BODY, DATE)
            return time.perf_counter_ns() - t0

        return run

    proto, parser = new_parser()

    def run(n: int) -> int:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            parser.feed_data(raw)
            serialise_for_httptools(200, headers, BODY, DATE)
        return time.perf_counter_ns() - t0

    return run


def httptools_outputs(raw: bytes) -> dict[str, Any]:
    import httptools

    proto = _Collector()
    proto.parser = parser = httptools.HttpRequestParser(proto)
    parser.feed_data(raw)
    assert proto.complete
    out = serialise_for_httptools(200, [(b"content-type", b"text/plain")], BODY, DATE)
    return {
        "method": proto.method.decode(),
        "target": proto.url.decode(),
        "fields": len(proto.headers),
        "response_bytes": len(out),
        "response": out.decode("latin-1"),
    }


# ----------------------------------------------------------------------------- child


BUILDERS = {"treadle": treadle_impl, "h11": h11_impl, "httptools": httptools_impl}
OUTPUTS = {"treadle": treadle_outputs, "h11": h11_outputs, "httptools": httptools_outputs}


def request_of(case: str) -> bytes:
    return MINIMAL_REQUEST if case.endswith("minimal") else BROWSER_REQUEST


def measure_case(case: str, batches: int, first: int) -> dict[str, list[float]]:
    """ns per operation of each batch, implementations taken in turn from ``first``."""
    raw = request_of(case)
    runners = {impl: BUILDERS[impl](case, raw) for impl in IMPLS}
    sizes = {}
    for impl, run in runners.items():  # calibrate to ~20 ms a batch, warming up too
        n = 200
        elapsed = run(n)
        sizes[impl] = max(100, int(n * BATCH_TARGET_NS / max(elapsed, 1)))
    order = list(IMPLS[first % 3 :] + IMPLS[: first % 3])
    samples: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for _ in range(batches):
        for impl in order:
            gc.collect()
            n = sizes[impl]
            samples[impl].append(runners[impl](n) / n)
    return samples


def profile_case(case: str, n: int = 50_000) -> dict[str, Any]:
    """treadle's functions by own time for ``n`` operations of ``case``, under cProfile."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    if case == "serialise":
        from treadle.http import Limits, ResponseDefaults, ServerConnection

        defaults = ResponseDefaults(server=b"treadle", date=DATE)
        conns = []
        for _ in range(n + 1000):
            conn = ServerConnection(Limits(), defaults=defaults)
            conn.receive_data(request_of(case))
            conn.next_event()
            conn.next_event()
            conns.append(conn)
        headers = [(b"content-type", b"text/plain")]
        for conn in conns[n:]:  # warm up outside the profile
            conn.send_response(200, headers, BODY)

        def respond_all() -> None:
            for conn in conns[:n]:
                conn.send_response(200, headers, BODY)

        profile.runcall(respond_all)
    else:
        run = treadle_impl(case, request_of(case))
        run(1000)  # warm up outside the profile
        profile.runcall(run, n)
    stats = pstats.Stats(profile)
    rows = []
    for (filename, line, func), (_cc, calls, own, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = filename.split("/src/", 1)[-1] if "/src/" in filename else filename
        rows.append(
            {
                "function": f"{where}:{line}({func})",
                "calls_per_op": round(calls / n, 2),
                "own_us_per_op": round(own / n * 1e6, 3),
                "cumulative_us_per_op": round(cum / n * 1e6, 3),
            }
        )
    rows.sort(key=lambda r: r["own_us_per_op"], reverse=True)
    total = sum(r["own_us_per_op"] for r in rows)
    return {
        "case": case,
        "operations": n,
        "profiled_us_per_op": round(total, 3),
        "top_by_own_time": rows[:15],
    }


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=CASES)
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--outputs", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile treadle on --case")
    args = parser.parse_args(argv)
    if args.profile:
        out = profile_case(args.case)
    elif args.outputs:
        out = {
            kind: {impl: OUTPUTS[impl](raw) for impl in IMPLS}
            for kind, raw in (("browser", BROWSER_REQUEST), ("minimal", MINIMAL_REQUEST))
        }
    else:
        out = measure_case(args.case, args.batches, args.first)
    json.dump(out, sys.stdout)
    return 0


# ----------------------------------------------------------------------------- scenario


def _child(ctx: Any, args: list[str]) -> Any:
    from harness import BENCH_DIR, SERVER_CPU, BenchError, python

    proc = ctx.procs.start(
        [python(), "-c", CHILD, *args],
        cpu=SERVER_CPU,
        stdout=subprocess.PIPE,
        cwd=BENCH_DIR,
        log_name="parser",
    )
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        ctx.procs.stop(proc)
    if proc.returncode != 0:
        from harness import log_tail

        raise BenchError(f"parser child failed: {log_tail(proc)}")
    return json.loads(out)


def count_points(ctx: Any) -> int:
    return len(CASES) * ctx.options.rounds


def run(ctx: Any) -> dict[str, Any]:
    from harness import median, ratio

    opts = ctx.options
    batches = 3 if opts.quick else 7
    ctx.progress.begin(NAME, count_points(ctx))
    outputs = _child(ctx, ["--outputs"])
    samples: dict[str, dict[str, list[float]]] = {c: {i: [] for i in IMPLS} for c in CASES}
    for rnd in range(opts.rounds):
        for case in CASES:
            got = _child(ctx, ["--case", case, "--batches", str(batches), "--first", str(rnd)])
            for impl in IMPLS:
                samples[case][impl] += got[impl]
            ctx.progress.step(f"{case} round {rnd + 1}")

    summary: dict[str, Any] = {}
    for case in CASES:
        entry: dict[str, Any] = {}
        for impl in IMPLS:
            ns = median(samples[case][impl])
            entry[impl] = {
                "ns_per_op": round(ns, 1) if ns else None,
                "ops_per_s": round(1e9 / ns) if ns else None,
                "batches": len(samples[case][impl]),
            }
        for peer in ("h11", "httptools"):
            r = ratio(entry["treadle"]["ops_per_s"], entry[peer]["ops_per_s"])
            entry["treadle"][f"ratio_to_{peer}"] = r
            if case in TARGET_CASES:
                entry["treadle"][f"target_{peer}"] = TARGETS[peer]
                entry["treadle"][f"target_{peer}_met"] = r is not None and r >= TARGETS[peer]
        summary[case] = entry
    print_summary(summary)
    return {
        "title": TITLE,
        "settings": {
            "rounds": opts.rounds,
            "batches_per_round": batches,
            "batch_target_ms": BATCH_TARGET_NS / 1e6,
            "cpu": "core 0 (taskset)",
            "requests": {
                "browser": BROWSER_REQUEST.decode("latin-1"),
                "minimal": MINIMAL_REQUEST.decode("latin-1"),
            },
            "method": __doc__,
        },
        "outputs": outputs,
        "summary": summary,
        "targets": {"cases": list(TARGET_CASES), "ratio_to": TARGETS},
        "errors": [],
    }


def print_summary(summary: dict[str, Any]) -> None:
    print(
        f"\n{'case':<14} {'treadle/s':>11} {'h11/s':>11} {'httptools/s':>12} "
        f"{'x h11':>7} {'x httptools':>12}"
    )
    for case, entry in summary.items():
        t, h, p = (entry[i]["ops_per_s"] or 0 for i in IMPLS)
        print(
            f"{case:<14} {t:>11,} {h:>11,} {p:>12,} "
            f"{entry['treadle']['ratio_to_h11'] or 0:>7.2f} "
            f"{entry['treadle']['ratio_to_httptools'] or 0:>12.2f}"
        )
    print()


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
