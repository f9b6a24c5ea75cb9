"""Scenario ``stages``: the CPU cost of one hello request, stage by stage.

The hello scenario says how fast treadle is next to its peers; this one says where the
microseconds of one keep-alive hello request go, so that a change can be aimed at the
stage that costs most and its effect seen there. Each stage runs alone, many times in
a row, in a child process pinned to the server core (core 0), timed with
``time.perf_counter_ns``; its figure is the median over batches of about 20 ms of the
time per operation (the garbage collector on, as in a server, emptied before each
batch). The request is the one wrk sends (``GET / HTTP/1.1`` and a ``Host`` field);
sockets are a TCP connection over 127.0.0.1 with ``TCP_NODELAY`` on the server's side,
as the listener sets it.

- ``poll``: ``poll(0)`` of treadle's epoll poller with one registered, readable socket.
- ``recv``: the server socket's ``recv(65536)`` of one request, which the client wrote
  just before, outside the timed region.
- ``parse``: on one reused ``ServerConnection``: ``receive_data`` of the request, then
  ``next_event`` until ``NEED_DATA``, answering the request with ``send_response`` as
  the session does (which also starts the next cycle); minus ``serialise``.
- ``dispatch``: what the session does to hand a parsed request to the application and
  get its answer: build an ``Exchange``, call ``NativeApplication(treadle.demo.hello)``
  through a guard like ``call_app``, which builds the handler's ``Request`` and passes
  its ``Response`` to the responder; the responder here is a stub that records the call.
- ``serialise``: ``send_response(200, [content-type], b"Hello, world!")`` on connections
  that each hold a parsed request (with the Date and Server fields the server adds).
- ``send``: the server socket's ``send`` of the response bytes; the client reads them
  (and sends the next request, so TCP acknowledges as under wrk) outside the timed region.

``recv`` and ``send`` are timed one call at a time inside one ping-pong loop, less the
cost of an empty pair of clock reads; the other stages are timed over whole batches.

Total. ``in-process`` is the real server's code for one request: a ``Reactor`` on epoll,
a ``ServerContext`` and a ``ConnectionDriver`` on the server end of the connection; the
client writes a request (untimed), ``reactor.run_once`` is timed, and the client reads
the response (untimed), so the client's own cost is outside the figure. Bookkeeping is
this total less the six stages: the reactor's dispatch, the driver's read loop, turn and
settle, the session's checks, the output queue, the deadline. ``under wrk`` is the
hello scenario's ``cpu_us_per_req`` of treadle-epoll in keep-alive mode (user + system
CPU over requests served, with 50 connections sharing each ``epoll_wait``), read from
the newest hello result, when it is less than a day old; the kernel work that wrk's
traffic adds (interrupts, ACKs, scheduling) is in it and not in the in-process total.

With ``TREADLE_BENCH_BASELINE`` set to another tree's ``src/`` folder (as for hello),
each round measures that tree too, in its own child process (``PYTHONPATH``), the two
trees taking turns first: the "before" beside this tree's "after".
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

NAME = "stages"
TITLE = "The CPU cost of one hello request, stage by stage (poll, recv, parse, dispatch, ...)"
STAGES = ("poll", "recv", "parse", "dispatch", "serialise", "send")
BATCH_TARGET_NS = 20_000_000
#: how the harness starts a measuring process (in bench/, pinned to the server core)
CHILD = "import sys; from scenarios.stages import child_main; sys.exit(child_main(sys.argv[1:]))"
BASELINE_ENV = "TREADLE_BENCH_BASELINE"
#: a hello result older than this is not used for the total under wrk
HELLO_MAX_AGE_S = 24 * 3600
HEADERS = [(b"content-type", b"text/plain")]
BODY = b"Hello, world!"


# ----------------------------------------------------------------------------- child

Runner = Callable[[int], int]  # run(n) -> ns spent on n operations


def wrk_request(port: int) -> bytes:
    """The request wrk sends for ``http://127.0.0.1:PORT/``."""
    return b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port


class Pair:
    """A TCP connection over 127.0.0.1: the server's end (non-blocking, TCP_NODELAY, as
    the listener leaves it) and the client's (blocking, with a timeout)."""

    def __init__(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.port = listener.getsockname()[1]
        self.client = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.server, self.address = listener.accept()
        listener.close()
        self.server.setblocking(False)
        self.server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read_exactly(self, size: int) -> bytes:
        """What the client receives, ``size`` bytes of it (blocking, bounded)."""
        parts, got = [], 0
        while got < size:
            chunk = self.client.recv(size - got)
            if not chunk:
                raise RuntimeError("the server end closed")
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self.client.close()
        self.server.close()


def clock_pair_ns() -> float:
    """What an empty pair of ``perf_counter_ns`` reads adds to a measured call."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(7):
        spent = 0
        for _ in range(20_000):
            t0 = clock()
            spent += clock() - t0
        samples.append(spent / 20_000)
    samples.sort()
    return samples[len(samples) // 2]


def response_bytes(port: int) -> bytes:
    """What treadle answers to the request (Date and Server fields included)."""
    from treadle.http import ResponseDefaults, ServerConnection, format_date

    conn = ServerConnection(None, ResponseDefaults(server=b"treadle", date=format_date(0)))
    conn.receive_data(wrk_request(port))
    conn.next_event()
    return conn.send_response(200, HEADERS, BODY)


def poll_stage(pair: Pair) -> Runner:
    from treadle.poll import EVENT_READ, create_poller

    poller = create_poller("epoll")
    pair.client.sendall(b"x")  # stays unread: the socket is readable on every poll
    poller.register(pair.server.fileno(), EVENT_READ)
    poll = poller.poll
    if not poll(0):
        raise RuntimeError("the readable socket was not reported")

    def run(n: int) -> int:
        clock = time.perf_counter_ns
        t0 = clock()
        for _ in range(n):
            poll(0)
        return clock() - t0

    return run


def ping_pong(pair: Pair, overhead_ns: float) -> tuple[Runner, Runner]:
    """``recv`` and ``send`` of the server's end, timed inside one ping-pong loop."""
    request = wrk_request(pair.port)
    response = response_bytes(pair.port)
    size = len(response)
    client_send = pair.client.sendall
    read = pair.read_exactly
    recv, send = pair.server.recv, pair.server.send
    last: dict[str, int] = {}

    def loop(n: int) -> None:
        clock = time.perf_counter_ns
        spent_recv = spent_send = 0
        for _ in range(n):
            client_send(request)
            t0 = clock()
            data = recv(65536)
            t1 = clock()
            t2 = clock()
            sent = send(response)
            t3 = clock()
            spent_recv += t1 - t0
            spent_send += t3 - t2
            if len(data) != len(request) or sent != size:
                raise RuntimeError(f"short transfer: recv {len(data)}, send {sent}")
            read(size)
        last["recv"] = spent_recv - round(n * overhead_ns)
        last["send"] = spent_send - round(n * overhead_ns)

    def run_recv(n: int) -> int:
        loop(n)
        return last["recv"]

    def run_send(n: int) -> int:
        loop(n)
        return last["send"]

    return run_recv, run_send


def connection_parts(port: int) -> tuple[Any, Any, Any]:
    """The server's limits and response defaults (from its settings), and a request."""
    from types import SimpleNamespace

    from treadle.config import Settings
    from treadle.demo import hello
    from treadle.http import ServerConnection, format_date
    from treadle.server.context import ServerContext

    no_reactor = SimpleNamespace(poller=SimpleNamespace(edge_triggered=False))
    ctx = ServerContext(no_reactor, hello, Settings.resolve({}, environ={}))  # type: ignore[arg-type]
    ctx.defaults.date = format_date(time.time())
    conn = ServerConnection(ctx.limits, ctx.defaults)
    conn.receive_data(wrk_request(port))
    return ctx.limits, ctx.defaults, conn.next_event()


def cycle_stage(port: int) -> Runner:
    """One request through a reused connection: feed, events, answer (parse + serialise)."""
    from treadle.http import NEED_DATA, Request, ServerConnection

    limits, defaults, _ = connection_parts(port)
    conn = ServerConnection(limits, defaults)
    request = wrk_request(port)

    def run(n: int) -> int:
        clock = time.perf_counter_ns
        receive, next_event, respond = conn.receive_data, conn.next_event, conn.send_response
        t0 = clock()
        for _ in range(n):
            receive(request)
            while True:
                event = next_event()
                if event is NEED_DATA:
                    break
                if type(event) is Request:
                    respond(200, HEADERS, BODY)
        return clock() - t0

    run(10)
    if conn.buffered:
        raise RuntimeError("the cycle left bytes unparsed")
    return run


def serialise_stage(port: int) -> Runner:
    from treadle.http import ServerConnection

    limits, defaults, _ = connection_parts(port)
    request = wrk_request(port)

    def run(n: int) -> int:
        conns = []
        for _ in range(n):  # prepared outside the timed region
            conn = ServerConnection(limits, defaults)
            conn.receive_data(request)
            conn.next_event()
            conns.append(conn)
        clock = time.perf_counter_ns
        t0 = clock()
        for conn in conns:
            conn.send_response(200, HEADERS, BODY)
        return clock() - t0

    return run


class StubResponder:
    """Records the answer instead of serialising it; guards like the session's call_app."""

    closed = False

    def __init__(self) -> None:
        self.answers = 0

    def respond(self, exchange: Any, status: int, headers: Any, body: bytes) -> None:
        self.answers += 1

    def call_app(self, callback: Callable[..., object], *args: object) -> bool:
        try:
            callback(*args)
            return True
        except Exception:
            return False


def dispatch_stage(port: int) -> Runner:
    from treadle.apps.native import NativeApplication
    from treadle.demo import hello
    from treadle.server.exchange import Exchange

    _, _, request = connection_parts(port)
    app = NativeApplication(hello)
    stub = StubResponder()
    client = ("127.0.0.1", 40000)

    def run(n: int) -> int:
        call_app = stub.call_app
        clock = time.perf_counter_ns
        before = stub.answers
        t0 = clock()
        for _ in range(n):
            call_app(app, Exchange(stub, request, client, b""))
        spent = clock() - t0
        if stub.answers - before != n:
            raise RuntimeError("the application did not answer every exchange")
        return spent

    return run


def total_stage(overhead_ns: float) -> tuple[Runner, Callable[[], None]]:
    """The real reactor, context and driver: ``run_once`` per request, timed alone."""
    from treadle.apps.native import NativeApplication
    from treadle.config import Settings
    from treadle.demo import hello
    from treadle.http import format_date
    from treadle.poll import create_poller
    from treadle.reactor import Reactor
    from treadle.server.context import ServerContext
    from treadle.server.driver import ConnectionDriver

    pair = Pair()
    reactor = Reactor(create_poller("epoll"))
    ctx = ServerContext(reactor, NativeApplication(hello), Settings.resolve({}, environ={}))
    ctx.defaults.date = format_date(time.time())
    driver = ConnectionDriver(ctx, pair.server, pair.address)
    request = wrk_request(pair.port)
    size = len(response_bytes(pair.port))
    client_send, read = pair.client.sendall, pair.read_exactly

    def run(n: int) -> int:
        clock = time.perf_counter_ns
        run_once = reactor.run_once
        spent = 0
        for _ in range(n):
            client_send(request)
            t0 = clock()
            run_once(5.0)
            spent += clock() - t0
            read(size)  # blocks (bounded) if the turn did not answer: a failure, not a cost
        return spent - round(n * overhead_ns)

    def close() -> None:
        driver.close()
        reactor.close()
        pair.close()

    return run, close


def calibrate(run: Runner, target_ns: int) -> int:
    """Operations per batch for about ``target_ns`` of wall time (what is prepared or
    done outside the timed region included), warming the stage up as it goes."""
    clock = time.perf_counter_ns
    n = 100
    while True:
        t0 = clock()
        run(n)
        spent = max(clock() - t0, 1)
        if spent >= target_ns // 4 or n >= 2_000_000:
            return max(100, int(n * target_ns / spent))
        n *= 4


def measure(batches: int, first: int, target_ns: int) -> dict[str, Any]:
    """ns per operation of each batch, per stage; the stages taken in turn from ``first``."""
    import treadle

    overhead = clock_pair_ns()
    pair, poll_pair = Pair(), Pair()
    errors: dict[str, str] = {}
    runners: dict[str, Runner] = {}
    closers: list[Callable[[], None]] = [pair.close, poll_pair.close]
    builders: dict[str, Callable[[], Any]] = {
        "poll": lambda: poll_stage(poll_pair),
        "pingpong": lambda: ping_pong(pair, overhead),
        "cycle": lambda: cycle_stage(pair.port),
        "serialise": lambda: serialise_stage(pair.port),
        "dispatch": lambda: dispatch_stage(pair.port),
        "total": lambda: total_stage(overhead),
    }
    for name, build in builders.items():
        try:
            built = build()
        except Exception as exc:  # another tree's API may differ: record, go on
            errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        if name == "pingpong":
            runners["recv"], runners["send"] = built
        elif name == "total":
            runners["total"], close = built
            closers.append(close)
        else:
            runners[name] = built
    samples: dict[str, list[float]] = {name: [] for name in runners}
    try:
        sizes = {}
        for name, run in list(runners.items()):
            try:
                sizes[name] = calibrate(run, target_ns)
            except Exception as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
                del runners[name], samples[name]
        names = list(runners)
        shift = first % max(1, len(names))
        order = names[shift:] + names[:shift]
        for _ in range(batches):
            for name in order:
                if name in errors:
                    continue
                gc.collect()
                n = sizes[name]
                try:
                    samples[name].append(runners[name](n) / n)
                except Exception as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
    finally:
        for close in closers:
            try:
                close()
            except Exception:
                pass
    return {
        "treadle_file": getattr(treadle, "__file__", None),
        "clock_pair_ns": round(overhead, 1),
        "batch_sizes": sizes,
        "samples_ns": samples,
        "errors": errors,
    }


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--batch-ms", type=float, default=BATCH_TARGET_NS / 1e6)
    args = parser.parse_args(argv)
    json.dump(measure(args.batches, args.first, int(args.batch_ms * 1e6)), sys.stdout)
    return 0


# ----------------------------------------------------------------------------- scenario


def trees() -> dict[str, str | None]:
    """Tree label -> PYTHONPATH for its child (None: the installed, current tree)."""
    table: dict[str, str | None] = {"after": None}
    baseline = os.environ.get(BASELINE_ENV)
    if baseline:
        table["before"] = baseline
    return table


def count_points(ctx: Any) -> int:
    return len(trees()) * ctx.options.rounds


def _child(ctx: Any, args: list[str], pythonpath: str | None, label: str) -> dict[str, Any]:
    from harness import BENCH_DIR, SERVER_CPU, BenchError, log_tail, python

    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    proc = ctx.procs.start(
        [python(), "-c", CHILD, *args],
        cpu=SERVER_CPU,
        stdout=subprocess.PIPE,
        cwd=BENCH_DIR,
        env=env,
        log_name=f"stages-{label}",
    )
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"stages child ({label}) did not finish in 300 s") from exc
    finally:
        ctx.procs.stop(proc)
    if proc.returncode != 0:
        raise BenchError(f"stages child ({label}) failed: {log_tail(proc)}")
    result: dict[str, Any] = json.loads(out)
    return result


def hello_under_wrk() -> dict[str, Any] | None:
    """treadle-epoll's keep-alive CPU per request from the newest hello result, if recent.

    Looks at the committed result and the quick one; None when neither is under a day
    old or has the figure.
    """
    import datetime as dt

    from harness import LOG_DIR, RESULTS_DIR

    best: dict[str, Any] | None = None
    now = dt.datetime.now(dt.timezone.utc)
    for path in (RESULTS_DIR / "hello.json", LOG_DIR / "hello.json"):
        try:
            doc = json.loads(path.read_text())
            when = dt.datetime.fromisoformat(doc["machine"]["date"])
        except (OSError, ValueError, KeyError):
            continue
        age_s = (now - when).total_seconds()
        keep_alive = doc.get("summary", {}).get("keep-alive", {})
        after = keep_alive.get("treadle-epoll", {}).get("cpu_us_per_req")
        if after is None or age_s > HELLO_MAX_AGE_S:
            continue
        if best is None or when > best["_when"]:
            best = {
                "_when": when,
                "file": str(path.relative_to(path.parents[2])),
                "date": doc["machine"]["date"],
                "quick": doc.get("quick", False),
                "git_commit": doc["machine"].get("git_commit"),
                "us": {
                    "after": after,
                    "before": keep_alive.get("treadle-epoll-baseline", {}).get("cpu_us_per_req"),
                },
                "req_per_s": keep_alive.get("treadle-epoll", {}).get("req_per_s"),
            }
    if best is not None:
        del best["_when"]
    return best


def summarise(samples: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """Per tree: µs per stage (median of its batches), share of the in-process total,
    bookkeeping as the rest."""
    from harness import median

    summary: dict[str, Any] = {}
    for tree, per_stage in samples.items():
        us = {
            name: (None if median(values) is None else median(values) / 1000)
            for name, values in per_stage.items()
        }
        total = us.get("total")
        cycle = us.get("cycle")
        serialise = us.get("serialise")
        stages: dict[str, float | None] = {}
        for name in STAGES:
            if name == "parse":
                stages[name] = None if cycle is None or serialise is None else cycle - serialise
            else:
                stages[name] = us.get(name)
        known = [v for v in stages.values() if v is not None]
        complete = len(known) == len(STAGES)
        stages["bookkeeping"] = (
            total - sum(known) if total is not None and complete else None  # type: ignore[arg-type]
        )
        summary[tree] = {
            "us": {k: None if v is None else round(v, 3) for k, v in stages.items()},
            "share_of_total": {
                k: None if v is None or not total else round(v / total, 4)
                for k, v in stages.items()
            },
            "total_in_process_us": None if total is None else round(total, 3),
            "cycle_us": None if cycle is None else round(cycle, 3),
            "batches": {name: len(values) for name, values in per_stage.items()},
        }
    return summary


def run(ctx: Any) -> dict[str, Any]:
    from harness import BenchError

    opts = ctx.options
    batches = 3 if opts.quick else 7
    batch_ms = 10.0 if opts.quick else BATCH_TARGET_NS / 1e6
    table = trees()
    ctx.progress.begin(NAME, count_points(ctx))
    errors: list[dict[str, Any]] = []
    samples: dict[str, dict[str, list[float]]] = {tree: {} for tree in table}
    files: dict[str, Any] = {}
    for rnd in range(opts.rounds):
        labels = list(table)
        if rnd % 2:
            labels.reverse()  # the trees take turns going first
        for tree in labels:
            args = ["--batches", str(batches), "--first", str(rnd), "--batch-ms", f"{batch_ms:g}"]
            try:
                got = _child(ctx, args, table[tree], tree)
            except BenchError as exc:
                errors.append({"round": rnd, "tree": tree, "error": str(exc)})
                ctx.progress.step(f"{tree} round {rnd + 1}: failed")
                continue
            files[tree] = {"treadle_file": got["treadle_file"], "pythonpath": table[tree]}
            for name, values in got["samples_ns"].items():
                samples[tree].setdefault(name, []).extend(values)
            for name, text in got["errors"].items():
                errors.append({"round": rnd, "tree": tree, "stage": name, "error": text})
            ctx.progress.step(f"{tree} round {rnd + 1}")
    summary = summarise(samples)
    wrk = hello_under_wrk()
    print_summary(summary, wrk)
    return {
        "title": TITLE,
        "settings": {
            "rounds": opts.rounds,
            "batches_per_round": batches,
            "batch_target_ms": batch_ms,
            "cpu": "core 0 (taskset)",
            "request": wrk_request(0).decode("latin-1").replace(":0\r", ":PORT\r"),
            "stages": list(STAGES),
            "trees": files,
            "method": __doc__,
        },
        "summary": summary,
        "under_wrk": wrk,
        "errors": errors,
    }


def print_summary(summary: dict[str, Any], wrk: dict[str, Any] | None) -> None:
    trees_ = list(summary)
    head = "".join(f"{tree + ' µs':>12}{'share':>8}" for tree in trees_)
    print(f"\n{'stage':<12}{head}")
    for name in (*STAGES, "bookkeeping"):
        cells = ""
        for tree in trees_:
            us = summary[tree]["us"].get(name)
            share = summary[tree]["share_of_total"].get(name)
            cells += f"{'-' if us is None else f'{us:.3f}':>12}"
            cells += f"{'' if share is None else f'{share * 100:.1f}%':>8}"
        print(f"{name:<12}{cells}")
    cells = ""
    for tree in trees_:
        total = summary[tree]["total_in_process_us"]
        cells += f"{'-' if total is None else f'{total:.3f}':>12}{'':>8}"
    print(f"{'total':<12}{cells}")
    if wrk is not None:
        before = wrk["us"]["before"]
        print(
            f"under wrk (hello keep-alive, treadle-epoll, {wrk['file']}, {wrk['date']}): "
            f"{wrk['us']['after']} µs/req" + (f"; baseline {before}" if before else "")
        )
    print()
