"""Regenerate ``docs/benchmarks.md`` and the figures from ``bench/results/*.json``.

    python bench/report.py [--results DIR] [--docs DIR]

Every figure in the page comes from a result file, so nothing is typed by hand. A
scenario gets a section through a renderer registered in ``RENDERERS``; a result file
without one still gets its headline rows and a pointer to the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
ORDER = ("hello", "stages", "static", "wsgi", "parser", "lab", "profile")

Doc = dict[str, Any]
Row = tuple[str, str, str, str, str, str]  # what, treadle, peer, ratio, target, met


# ----------------------------------------------------------------------------- formatting


def num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def met(flag: bool | None) -> str:
    if flag is None:
        return "–"
    return "yes" if flag else "**no**"


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(doc: Doc) -> str:
    m = doc.get("machine", {})
    pk = m.get("packages", {})
    versions = ", ".join(f"{k} {v}" for k, v in pk.items() if v)
    commit = (m.get("git_commit") or "")[:10]
    dirty = " (with uncommitted changes under src/)" if m.get("git_src_dirty") else ""
    quick = " **quick run**" if doc.get("quick") else ""
    return (
        f"Measured {m.get('date', '?')} at commit `{commit}`{dirty}{quick}, in "
        f"{num(doc.get('elapsed_s'))} s; {m.get('cpu_model', '?')}, {m.get('cores', '?')} "
        f"cores, Linux {m.get('kernel', '?')}, Python {m.get('python', '?')}; {versions}."
    )


def errors_block(doc: Doc) -> str:
    errors = doc.get("errors") or []
    if not errors:
        return (
            "No errors were recorded: every server answered the check request correctly and "
            "wrk saw no socket errors or error statuses."
        )
    lines = [f"{len(errors)} problem(s) were recorded in the result file:", ""]
    for err in errors[:12]:
        lines.append(f"- `{json.dumps(err)[:300]}`")
    if len(errors) > 12:
        lines.append(f"- … and {len(errors) - 12} more")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- hello


HELLO_PEERS = ("uvicorn", "granian", "nginx")
HELLO_TARGET_SERVERS = ("treadle-epoll", "treadle-epoll-et")
HELLO_PEER_TEXT = {
    "uvicorn": "uvicorn with uvloop and httptools, one worker, serving a raw ASGI app "
    "(`bench/peers/asgi_hello.py`)",
    "granian": "granian on its WSGI interface, one worker, HTTP/1 only, no access log, "
    "its default blocking threads, serving `bench/peers/wsgi_hello.py`",
    "nginx": 'nginx, one worker, answering `return 200 "Hello, world!"` itself '
    "(`default_type text/plain`, no access log, `keepalive_requests 100000`): what one "
    "core does with no application at all",
}


def hello_peers(doc: Doc) -> list[str]:
    """The peers of a hello result: listed in its settings, or uvicorn (older results)."""
    listed = doc.get("settings", {}).get("peers")
    if listed:
        return list(listed)
    first = next(iter(doc["summary"].values()), {})
    return [p for p in HELLO_PEERS if p in first]


def hello_ratio(entry: dict[str, Any], peer: str) -> float | None:
    """An entry's ratio to ``peer``; older results only have ``ratio_to_peer`` (uvicorn)."""
    ratios = entry.get("ratio_to")
    if ratios is not None:
        return ratios.get(peer)  # type: ignore[no-any-return]
    return entry.get("ratio_to_peer") if peer == "uvicorn" else None


def hello_rows(doc: Doc) -> list[Row]:
    rows: list[Row] = []
    targets_to: dict[str, dict[str, float]] = doc.get("targets_to") or {}
    for mode, per_server in doc["summary"].items():
        for server in HELLO_TARGET_SERVERS:
            entry = per_server.get(server)
            if entry is None:
                continue
            poller = server.removeprefix("treadle-")
            goals = [("uvicorn", doc["targets"][mode])] + list(targets_to.get(mode, {}).items())
            for peer, target in goals:
                got = hello_ratio(entry, peer)
                if peer == "uvicorn":
                    flag = entry.get("target_met") if got is not None else None
                else:
                    flag = None if got is None else got >= target
                rows.append(
                    (
                        f"hello, {mode} ({poller})",
                        f"{num(entry['req_per_s'])} req/s",
                        f"{peer} {num(per_server.get(peer, {}).get('req_per_s'))} req/s",
                        times(got),
                        f">= {target:g}x",
                        met(flag),
                    )
                )
    return rows


def hello_section(doc: Doc, figures: Path) -> str:
    s = doc["settings"]
    summary = doc["summary"]
    modes = list(summary)
    peers = hello_peers(doc)
    described = "; ".join(HELLO_PEER_TEXT.get(p, p) for p in peers)
    out = [
        "wrk with one thread and "
        f"{s['connections']} connections on core 1, the servers on core 0 (all started "
        "once; only the one under load uses the core); "
        f"{s['rounds']} rounds, each measuring every server back to back in each mode, "
        f"{num(s['duration_s'])} s per point after a {num(s['warmup_s'])} s warm-up. "
        "req/s are medians over the rounds; a ratio is the median of the rounds' own "
        "ratios (treadle and the peer measured within a minute of each other). Modes: "
        f"keep-alive; pipelined ({s['pipeline_depth']} requests per write); "
        "`Connection: close` (a new TCP connection per request). treadle serves "
        f"`treadle.demo:hello`. The peer{'s' if len(peers) > 1 else ''}: {described}.",
        "",
    ]
    servers = list(next(iter(summary.values())))
    header = ["server"] + [f"{mode} req/s" for mode in modes]
    rows = [[server] + [num(summary[m][server]["req_per_s"]) for m in modes] for server in servers]
    out += [table(header, rows), ""]

    treadles = [sv for sv in servers if sv not in HELLO_PEERS]
    columns = [(m, p) for m in modes for p in peers]
    if any("baseline" in (summary[m][sv].get("ratio_to") or {}) for m in modes for sv in treadles):
        columns += [(m, "baseline") for m in modes]
    if treadles and columns:
        rows = [
            [server] + [times(hello_ratio(summary[m][server], p)) for m, p in columns]
            for server in treadles
        ]
        out += [
            "Each treadle's ratio to each peer (and to the same poller of the baseline tree, "
            "when one was measured):",
            "",
            table(["server"] + [f"{m} x {p}" for m, p in columns], rows),
            "",
        ]

    targets = ", ".join(f"{m} >= {t:g}x" for m, t in doc["targets"].items())
    out.append(f"Targets (treadle / uvicorn): {targets}.")
    verdicts = doc.get("verdicts")
    if verdicts:
        out += [
            "",
            "Targets on "
            + " and ".join(f"`{v}`" for v in doc.get("target_servers", HELLO_TARGET_SERVERS))
            + ":",
            "",
            table(
                ["mode", "server", "peer", "target", "ratio", "met"],
                [
                    [
                        v["mode"],
                        v["server"],
                        v["peer"],
                        f">= {v['target']:g}x",
                        times(v["ratio"]),
                        met(v["met"]),
                    ]
                    for v in verdicts
                ],
                "lllrrc",
            ),
        ]
    out.append("")
    lat_rows = []
    for server in servers:
        e = summary["keep-alive"][server]
        c = summary["close"][server]
        lat_rows.append(
            [
                server,
                num(e["latency_p50_ms"], 2),
                num(e["latency_p99_ms"], 2),
                num(c["latency_p50_ms"], 2),
                num(c["latency_p99_ms"], 2),
            ]
        )
    out.append(
        "Latency in ms as wrk reports it (with its correction for coordinated omission); "
        "wrk's latency figures are not meaningful for pipelined requests and are left out."
    )
    out.append("")
    out.append(
        table(["server", "keep-alive p50", "keep-alive p99", "close p50", "close p99"], lat_rows)
    )
    if "cpu_us_per_req" in summary["keep-alive"][servers[0]]:
        cost_rows = [
            [server]
            + [num(summary[m][server].get("cpu_us_per_req"), 1) for m in modes]
            + [num(summary[m][server].get("minor_faults_per_req"), 3) for m in modes]
            for server in servers
        ]
        out += [
            "",
            "The server's own cost per request: CPU microseconds (`utime + stime` from "
            "`/proc`"
            + (
                ", of the whole process tree: nginx's and granian's workers are children"
                if set(peers) - {"uvicorn"}
                else ""
            )
            + ") and minor page faults (fresh memory mapped while serving; a "
            "healthy steady state has almost none).",
            "",
            table(
                ["server"] + [f"{m} CPU µs" for m in modes] + [f"{m} faults" for m in modes],
                cost_rows,
            ),
        ]
    out += ["", errors_block(doc)]
    return "\n".join(out)


# ----------------------------------------------------------------------------- stages

STAGES_FIGURE = "stages.png"
STAGE_NAMES = ("poll", "recv", "parse", "dispatch", "serialise", "send", "bookkeeping")
STAGE_TEXT = {
    "poll": "`epoll_wait` through treadle's poller, one readable socket, no wait",
    "recv": "one `recv(65536)` of the request (the system call and its bytes object)",
    "parse": "`receive_data` and `next_event` until `NEED_DATA`: the request line, the "
    "fields, the framing, the next cycle",
    "dispatch": "an `Exchange`, the guard, `NativeApplication`: the handler's `Request`, "
    "`treadle.demo.hello`, its `Response`, the responder's call",
    "serialise": "`send_response`: status line, fields, Content-Length, Date and Server",
    "send": "one `send` of the response (over loopback, the kernel's delivery included)",
    "bookkeeping": "the rest of the real turn: reactor dispatch, the driver's read loop, "
    "turn and settle, the session's checks, the output queue, the deadline",
}


def stages_trees(doc: Doc) -> list[str]:
    return [t for t in ("after", "before") if t in doc.get("summary", {})]


def stages_rows(doc: Doc) -> list[Row]:
    summary = doc.get("summary", {})
    after = summary.get("after", {})
    before = summary.get("before", {})
    total = after.get("total_in_process_us")
    if total is None:
        return []
    measured = [(k, v) for k, v in after["us"].items() if v is not None and k != "bookkeeping"]
    worst = max(measured, key=lambda kv: kv[1], default=None)
    peer = "–"
    share = "–"
    if before.get("total_in_process_us"):
        peer = f"before {num(before['total_in_process_us'], 2)} µs"
        share = times(ratio_of(total, before["total_in_process_us"]))
    largest = f" (largest stage: {worst[0]}, {num(worst[1], 2)} µs)" if worst else ""
    return [
        (
            "stages, CPU per keep-alive hello request, in process" + largest,
            f"{num(total, 2)} µs",
            peer,
            share,
            "–",
            "–",
        )
    ]


def stages_section(doc: Doc, figures: Path) -> str:
    s = doc["settings"]
    summary = doc["summary"]
    trees = stages_trees(doc)
    method = (s.get("method") or "").split("\n\n")
    out = [
        "One keep-alive hello request taken apart: each stage run alone in a process on "
        f"core 0, {s['rounds']} round(s) x {s['batches_per_round']} batches of about "
        f"{num(s['batch_target_ms'])} ms per stage, medians. The request is wrk's "
        "(`GET / HTTP/1.1` with a `Host` field), over a TCP connection on 127.0.0.1.",
        "",
    ]
    if (figures / STAGES_FIGURE).exists():
        out += [f"![CPU per request by stage]({STAGES_FIGURE})", ""]
    header = ["stage"]
    for tree in trees:
        header += [f"{tree} µs", f"{tree} share"]
    if len(trees) == 2:
        header.append("after / before")
    header.append("what it is")
    rows = []
    for name in STAGE_NAMES:
        row = [name]
        for tree in trees:
            row += [
                num(summary[tree]["us"].get(name), 3),
                percent(summary[tree]["share_of_total"].get(name)),
            ]
        if len(trees) == 2:
            row.append(
                times(ratio_of(summary["after"]["us"].get(name), summary["before"]["us"].get(name)))
            )
        row.append(STAGE_TEXT[name])
        rows.append(row)
    total_row = ["**total, in process**"]
    for tree in trees:
        total_row += [num(summary[tree].get("total_in_process_us"), 3), "100%"]
    if len(trees) == 2:
        total_row.append(
            times(
                ratio_of(
                    summary["after"].get("total_in_process_us"),
                    summary["before"].get("total_in_process_us"),
                )
            )
        )
    total_row.append("`reactor.run_once` of the real server for one request")
    rows.append(total_row)
    wrk = doc.get("under_wrk")
    if wrk:
        wrk_row = ["total under wrk"]
        for tree in trees:
            wrk_row += [num(wrk["us"].get(tree), 2), "–"]
        if len(trees) == 2:
            wrk_row.append(times(ratio_of(wrk["us"].get("after"), wrk["us"].get("before"))))
        wrk_row.append(
            f"hello's keep-alive CPU per request of treadle-epoll (`{wrk['file']}`, "
            f"{wrk['date'][:16]}{', quick' if wrk.get('quick') else ''})"
        )
        rows.append(wrk_row)
    align = "l" + "r" * (len(header) - 2) + "l"
    out += [table(header, rows, align), ""]
    out += ["How each figure is taken (from `bench/scenarios/stages.py`):", ""]
    for paragraph in method[1:]:
        if paragraph.strip() and not paragraph.startswith("With "):
            out += [paragraph, ""]
    errors = doc.get("errors") or []
    if errors:
        out.append(errors_block(doc))
    else:
        out.append("No errors were recorded: every stage of every tree was measured.")
    return "\n".join(out)


def stages_figures(doc: Doc, folder: Path) -> None:
    """One horizontal stacked bar per tree: µs per stage, the total under wrk marked."""
    trees = stages_trees(doc)
    if not trees or doc["summary"][trees[0]].get("total_in_process_us") is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {
        "poll": "tab:purple",
        "recv": "tab:blue",
        "parse": "tab:orange",
        "dispatch": "tab:green",
        "serialise": "tab:olive",
        "send": "tab:cyan",
        "bookkeeping": "tab:gray",
    }
    fig, ax = plt.subplots(figsize=(8.5, 1.2 + 0.8 * len(trees)), dpi=110)
    for y, tree in enumerate(trees):
        left = 0.0
        for name in STAGE_NAMES:
            value = doc["summary"][tree]["us"].get(name) or 0.0
            ax.barh(y, value, left=left, color=colors[name], label=name if y == 0 else None)
            if value >= 1.0:
                ax.text(left + value / 2, y, f"{value:.1f}", ha="center", va="center", fontsize=7)
            left += value
        wrk = (doc.get("under_wrk") or {}).get("us", {}).get(tree)
        if wrk:
            ax.plot([wrk, wrk], [y - 0.4, y + 0.4], color="black", linewidth=1.5)
            ax.annotate(
                f"under wrk {wrk:.1f}",
                (wrk, y),
                xytext=(4, 0),
                textcoords="offset points",
                ha="left",
                va="center",
                fontsize=7,
            )
    widest = [doc["summary"][t].get("total_in_process_us") or 0.0 for t in trees]
    widest += [v or 0.0 for v in (doc.get("under_wrk") or {}).get("us", {}).values()]
    ax.set_xlim(0, max(widest) * 1.2)
    ax.set_yticks(range(len(trees)))
    ax.set_yticklabels(trees)
    ax.invert_yaxis()
    ax.set_xlabel("CPU µs per keep-alive hello request")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, ncol=len(STAGE_NAMES), loc="upper center", bbox_to_anchor=(0.5, -0.35))
    m = doc.get("machine", {})
    ax.set_title(
        f"treadle, one request by stage — {m.get('date', '')[:10]}, "
        f"{(m.get('git_commit') or '')[:8]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(folder / STAGES_FIGURE)
    plt.close(fig)


# ----------------------------------------------------------------------------- parser


def parser_rows(doc: Doc) -> list[Row]:
    rows: list[Row] = []
    for case in doc["targets"]["cases"]:
        entry = doc["summary"][case]
        t = entry["treadle"]
        for peer in ("h11", "httptools"):
            rows.append(
                (
                    f"parser, {case}",
                    f"{num(t['ops_per_s'])} /s",
                    f"{peer} {num(entry[peer]['ops_per_s'])} /s",
                    times(t.get(f"ratio_to_{peer}")),
                    f">= {t[f'target_{peer}']:g}x",
                    met(t.get(f"target_{peer}_met")),
                )
            )
    return rows


def parser_section(doc: Doc, figures: Path) -> str:
    s = doc["settings"]
    header = ["case", "treadle /s", "h11 /s", "httptools /s", "x h11", "x httptools"]
    rows = []
    for case, entry in doc["summary"].items():
        t = entry["treadle"]
        rows.append(
            [
                case,
                num(t["ops_per_s"]),
                num(entry["h11"]["ops_per_s"]),
                num(entry["httptools"]["ops_per_s"]),
                times(t["ratio_to_h11"]),
                times(t["ratio_to_httptools"]),
            ]
        )
    targets = doc["targets"]
    method = (s.get("method") or "").split("\n\n")
    out = [
        "Operations per second in one process on core 0; "
        f"{s['rounds']} rounds x {s['batches_per_round']} batches of about "
        f"{num(s['batch_target_ms'])} ms per implementation and case; medians.",
        "",
        table(header, rows),
        "",
        f"Targets, on the parse cases: treadle >= {targets['ratio_to']['h11']:g}x h11 and "
        f">= {targets['ratio_to']['httptools']:g}x httptools (within 2x).",
        "",
        "What each case does (from `bench/scenarios/parser.py`):",
        "",
        "\n\n".join(p for p in method[1:] if p.strip()),
        "",
        "The browser request:",
        "",
        "```http",
        s["requests"]["browser"].replace("\r\n", "\n").rstrip("\n"),
        "```",
    ]
    return "\n".join(out)


# ----------------------------------------------------------------------------- lab

LAB_FIGURES = {
    "throughput": "io-models-throughput.png",
    "p99": "io-models-p99.png",
    "rss": "io-models-rss-per-connection.png",
}
LAB_METRICS = (
    ("req_per_s", "Requests per second (50 active keep-alive connections)", 0),
    ("share_of_no_idle", "Throughput as a share of the same model with no idle connection", 2),
    ("latency_p50_ms", "p50 latency, ms", 2),
    ("latency_p99_ms", "p99 latency, ms", 2),
    ("cpu_s_per_1000_req", "Server CPU seconds per 1,000 requests", 4),
    ("rss_kib", "Server RSS, MiB (during the load)", 1),
    ("rss_per_idle_kib", "RSS per idle connection, KiB", 2),
    (
        "minor_faults_per_req",
        "Server minor page faults per request (fresh memory mapped while serving; "
        "an outlier point with many was slowed by the allocator, not the I/O model)",
        3,
    ),
)


def lab_rows(doc: Doc) -> list[Row]:
    rows: list[Row] = []
    summary = doc["summary"]
    threaded = summary.get("threaded", {}).get("10000", {})
    epoll = summary.get("epoll", {}).get("10000", {})
    if epoll.get("req_per_s") and threaded.get("req_per_s"):
        rows.append(
            (
                "lab, epoll: req/s with 10,000 idle, next to a thread per connection",
                f"{num(epoll['req_per_s'])} req/s",
                f"threads {num(threaded['req_per_s'])} req/s",
                times(ratio_of(epoll["req_per_s"], threaded["req_per_s"])),
                "–",
                "–",
            )
        )
    for key, target in doc["targets"].items():
        model = key.split()[0]
        entry = summary.get(model, {}).get("10000", {})
        if "throughput" in key:
            rows.append(
                (
                    f"lab, {model}: req/s with 10,000 idle / with none",
                    f"{num(entry.get('req_per_s'))} req/s ({times(target['value'])})",
                    f"thread per connection {times(threaded.get('share_of_no_idle'))}",
                    times(target["value"]),
                    target["target"] + "x",
                    met(target["met"]),
                )
            )
        else:
            stdlib = summary.get("stdlib", {}).get("10000", {})
            rows.append(
                (
                    f"lab, {model}: RSS per idle connection at 10,000",
                    f"{num(target['value'], 2)} KiB",
                    f"threads {num(threaded.get('rss_per_idle_kib'), 1)} KiB, "
                    f"stdlib {num(stdlib.get('rss_per_idle_kib'), 1)} KiB",
                    times(ratio_of(target["value"], threaded.get("rss_per_idle_kib"))),
                    target["target"] + " KiB",
                    met(target["met"]),
                )
            )
    return rows


def ratio_of(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def lab_cell(entry: dict[str, Any], key: str, digits: int, notes: dict[str, int]) -> str:
    if "refused" in entry and entry.get(key) is None:
        mark = notes.setdefault(entry["refused"], len(notes) + 1)
        return f"refused [{mark}]"
    value = entry.get(key)
    if key == "rss_kib" and value is not None:
        value = value / 1024
    text = num(value, digits)
    for error in entry.get("errors", [])[:1]:
        text += f" [{notes.setdefault(error, len(notes) + 1)}]"
    return text


def lab_section(doc: Doc, figures: Path) -> str:
    s = doc["settings"]
    summary = doc["summary"]
    counts = [str(n) for n in s["idle_counts"]]
    labels = s["labels"]
    out = [
        f"A fresh server per point, on core 0, holds N idle keep-alive connections "
        f"({s['idle_connections']}; opened by `bench/idle_holder.py` on core 1) while wrk "
        f"drives {s['active_connections']} active keep-alive connections for "
        f"{num(s['duration_s'])} s. {s['rounds']} rounds; in each, every model measures "
        "its idle counts back to back. Figures are medians over the rounds, and a share of "
        "the throughput with none idle is the median of the rounds' own shares. Before "
        "the idle connections the server is warmed up; RSS per idle connection is the "
        "growth of `VmRSS` while they were opened, divided by their number (kernel socket "
        "buffers are not part of it). treadle runs with "
        f"`--idle-timeout {s['idle_timeout_s']} --backlog {s['backlog']}`; the "
        f"thread-per-connection baseline with {s['thread_stack_kib']} KiB stacks. "
        "The page [I/O models](io-models.md) explains what the lines show.",
        "",
        "ThreadingHTTPServer writes a response's headers and its body in two `send` calls "
        "and leaves Nagle's algorithm on: the body waits for the client's delayed ACK, "
        "about 40 ms per keep-alive response here, which caps it near 50 / 0.04 s = "
        "1,250 req/s whatever the I/O model. Its figures measure that, not threads.",
        "",
    ]
    for name, key in (("throughput", "throughput"), ("p99", "p99"), ("rss", "rss")):
        out.append(f"![{name}]({LAB_FIGURES[key]})")
        out.append("")
    notes: dict[str, int] = {}
    for key, title, digits in LAB_METRICS:
        if not any(key in e for per_n in summary.values() for e in per_n.values()):
            continue  # a metric that older results do not have
        rows = []
        for model, per_n in summary.items():
            rows.append(
                [labels.get(model, model)]
                + [lab_cell(per_n[n], key, digits, notes) for n in counts]
            )
        out += [f"**{title}**", ""]
        out.append(table(["model"] + [f"{int(n):,} idle" for n in counts], rows))
        out.append("")
    for reason, mark in notes.items():
        out.append(f"[{mark}] {reason}.")
        out.append("")
    targets = [
        f"- {key}: {num(t['value'], 3)} (target {t['target']}): {met(t['met'])}"
        for key, t in doc["targets"].items()
    ]
    out += ["Targets:", "", *targets, "", errors_block(doc)]
    return "\n".join(out)


def lab_figures(doc: Doc, folder: Path) -> None:
    """Draw the three PNGs of the lab from its result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    def minor_label(value: float, _pos: int) -> str:
        """Label the 2s and 5s between the powers of ten of a log axis."""
        if value <= 0:
            return ""
        lead = value / 10 ** math.floor(math.log10(value))
        return f"{value:,g}" if round(lead) in (2, 5) and abs(lead - round(lead)) < 1e-6 else ""

    s = doc["settings"]
    labels = s["labels"]
    counts = s["idle_counts"]
    styles = {
        "select": ("tab:orange", "o"),
        "poll": ("tab:green", "s"),
        "epoll": ("tab:blue", "D"),
        "epoll-et": ("tab:purple", "^"),
        "threaded": ("tab:red", "v"),
        "stdlib": ("tab:gray", "x"),
    }

    def draw(
        key: str,
        ylabel: str,
        path: Path,
        *,
        logy: bool,
        skip_zero: bool,
        target: float | None = None,
        scale: float = 1.0,
    ) -> None:
        fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
        shown: set[int] = set()
        for model, per_n in doc["summary"].items():
            xs, ys = [], []
            for n in counts:
                value = per_n[str(n)].get(key)
                if value is None or (skip_zero and n == 0) or (logy and value <= 0):
                    continue
                xs.append(n)
                ys.append(value * scale)
            if not xs:
                continue
            shown.update(xs)
            color, marker = styles.get(model, (None, "o"))
            ax.plot(xs, ys, marker=marker, color=color, label=labels.get(model, model))
        if target is not None:
            ax.axhline(
                target,
                color="black",
                linestyle=":",
                linewidth=1,
                label=f"target for epoll: {target:g}",
            )
        ticks = [n for n in counts if n in shown] or counts
        ax.set_xscale("symlog", linthresh=100)
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{n:,}" for n in ticks])
        ax.set_xlim(left=-10 if 0 in ticks else ticks[0] * 0.8, right=ticks[-1] * 1.15)
        if logy:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(minor_label))
        ax.set_xlabel("idle keep-alive connections held")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        m = doc.get("machine", {})
        ax.set_title(
            f"{ylabel} — {m.get('date', '')[:10]}, {(m.get('git_commit') or '')[:8]}",
            fontsize=9,
        )
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)

    draw(
        "req_per_s",
        "requests per second",
        folder / LAB_FIGURES["throughput"],
        logy=True,
        skip_zero=False,
    )
    draw(
        "latency_p99_ms",
        "p99 latency (ms)",
        folder / LAB_FIGURES["p99"],
        logy=True,
        skip_zero=False,
    )
    draw(
        "rss_per_idle_kib",
        "RSS per idle connection (KiB)",
        folder / LAB_FIGURES["rss"],
        logy=True,
        skip_zero=True,
        target=2.0,
    )


def lab_summary(doc: Doc) -> str:
    """The short table and the figures that docs/io-models.md shows."""
    s = doc["settings"]
    counts = [str(n) for n in s["idle_counts"]]
    top = counts[-1]
    labels = s["labels"]
    notes: dict[str, int] = {}
    rows = []
    for model, per_n in doc["summary"].items():
        base, last = per_n["0"], per_n[top]
        rows.append(
            [
                labels.get(model, model),
                lab_cell(base, "req_per_s", 0, notes),
                lab_cell(last, "share_of_no_idle", 2, notes),
                lab_cell(base, "latency_p99_ms", 1, notes),
                lab_cell(last, "latency_p99_ms", 1, notes),
                lab_cell(base, "cpu_s_per_1000_req", 4, notes),
                lab_cell(last, "cpu_s_per_1000_req", 4, notes),
                lab_cell(last, "rss_per_idle_kib", 1, notes),
            ]
        )
    n = f"{int(top):,}"
    out = [
        table(
            [
                "model",
                "req/s, none idle",
                f"req/s share, {n} idle",
                "p99 ms, none idle",
                f"p99 ms, {n} idle",
                "CPU s / 1k req, none idle",
                f"CPU s / 1k req, {n} idle",
                f"KiB per idle connection, {n}",
            ],
            rows,
        ),
        "",
    ]
    out += [f"[{mark}] {reason}." for reason, mark in notes.items()]
    m = doc.get("machine", {})
    out += [
        "",
        f"Medians of {s['rounds']} rounds, measured {m.get('date', '?')[:10]} at commit "
        f"`{(m.get('git_commit') or '')[:10]}`.",
        "",
    ]
    for key, alt in (
        ("throughput", "Requests per second against idle connections held"),
        ("p99", "p99 latency against idle connections held"),
        ("rss", "RSS per idle connection"),
    ):
        out += [f"![{alt}]({LAB_FIGURES[key]})", ""]
    return "\n".join(out).rstrip("\n")


def update_io_models(docs_dir: Path, doc: Doc) -> None:
    """Replace the generated block of docs/io-models.md with the lab's latest figures."""
    page = docs_dir / "io-models.md"
    if not page.exists():
        return
    text = page.read_text()
    begin, end = "<!-- lab-summary:begin -->", "<!-- lab-summary:end -->"
    if begin not in text or end not in text:
        return
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    page.write_text(f"{head}{begin}\n{lab_summary(doc)}\n{end}{tail}")


# ----------------------------------------------------------------------------- profile


def profile_section(doc: Doc, figures: Path) -> str:
    out = [
        "treadle on epoll under cProfile while wrk drives it, one run per mode of the hello "
        "scenario; the functions with the most own time. cProfile roughly doubles the cost "
        "of every Python call, so read the shares, not the sums. Built-in methods "
        "(`send`, `recv`, `poll`) are the system calls and their wrappers.",
        "",
    ]
    for entry in doc.get("cpu", []):
        rows = [
            [
                f"`{r['function']}`",
                f"{r['own_share'] * 100:.1f}%",
                num(r.get("own_us_per_request"), 2),
                num(r["calls"]),
            ]
            for r in entry["top_by_own_time"][:12]
        ]
        out += [
            f"**{entry['mode']}** ({num(entry.get('requests_profiled'))} requests profiled)",
            "",
            table(["function", "own time", "µs per request", "calls"], rows),
            "",
        ]
    for entry in doc.get("parser", []):
        rows = [
            [f"`{r['function']}`", num(r["own_us_per_op"], 3), num(r["calls_per_op"], 2)]
            for r in entry["top_by_own_time"][:10]
        ]
        out += [
            f"**HTTP core alone, {entry['case']}** (`bench/scenarios/parser.py`; "
            f"{num(entry['profiled_us_per_op'], 2)} µs per operation under cProfile)",
            "",
            table(["function", "own µs per operation", "calls per operation"], rows),
            "",
        ]
    mem = doc.get("memory") or {}
    if mem:
        rows = [
            [f"`{r['where']}`", num(r["bytes_per_connection"], 1)]
            for r in mem["growth_by_line"][:10]
        ]
        objects = ", ".join(
            f"{name} {count:g}"
            for name, count in mem["gc_objects_per_connection"].items()
            if count >= 0.5
        )
        out += [
            f"**Memory** with {num(mem['idle_connections'])} idle keep-alive connections "
            f"(tracemalloc): {num(mem['traced_bytes_per_connection'])} bytes of Python "
            "objects per connection. Where they were allocated:",
            "",
            table(["allocated at", "bytes per connection"], rows),
            "",
            f"Objects tracked by the garbage collector, per connection: {objects}.",
        ]
    out += ["", errors_block(doc)]
    return "\n".join(out)


# ----------------------------------------------------------------------------- static

STATIC_FIGURE = "static-throughput.png"
STATIC_FILES = {"4KiB": "4 KiB", "1MiB": "1 MiB", "1GiB": "1 GiB"}


def percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f}%"


def static_met(entry: dict[str, Any]) -> str:
    """Whether treadle met its target; a dash when it was not measured at all."""
    return met(entry.get("target_met") if entry.get("ratio_to_nginx") is not None else None)


def static_rows(doc: Doc) -> list[Row]:
    rows: list[Row] = []
    summary = doc["summary"]
    conns = doc["settings"]["connections"]
    for label in ("4KiB", "1MiB"):
        entry = summary.get(label, {}).get("treadle", {})
        peer = summary.get(label, {}).get("nginx", {})
        rows.append(
            (
                f"static, {STATIC_FILES[label]} file (wrk, {conns['treadle']} connections)",
                f"{num(entry.get('req_per_s'))} req/s",
                f"nginx {num(peer.get('req_per_s'))} req/s",
                times(entry.get("ratio_to_nginx")),
                f">= {doc['targets'][label]:g}x",
                static_met(entry),
            )
        )
    big = summary.get("1GiB", {})
    entry = big.get("treadle", {})
    rows.append(
        (
            "static, 1 GiB download (curl)",
            f"{num(entry.get('mib_per_s'))} MiB/s",
            f"nginx {num(big.get('nginx', {}).get('mib_per_s'))} MiB/s",
            times(entry.get("ratio_to_nginx")),
            f">= {doc['targets']['1GiB']:g}x",
            static_met(entry),
        )
    )
    memory = doc.get("memory", {})
    mine, theirs = memory.get("treadle", {}), memory.get("nginx", {})
    rows.append(
        (
            f"static, peak RSS with {doc['settings']['slow_clients']} slow 1 GiB downloads",
            f"{num(mine.get('rss_peak_kib'))} KiB",
            f"nginx {num(theirs.get('rss_peak_kib'))} KiB",
            times(ratio_of(mine.get("rss_peak_kib"), theirs.get("rss_peak_kib"))),
            "–",
            "–",
        )
    )
    return rows


def static_section(doc: Doc, figures: Path) -> str:
    s = doc["settings"]
    summary = doc["summary"]
    conns = s["connections"]
    stdlib_conns = conns.get("http.server")
    out = [
        f"Files of random bytes ({', '.join(f'{STATIC_FILES[k]}' for k in s['files'])}) "
        f"fetched by wrk with one thread and {conns['treadle']} keep-alive connections on "
        "core 1, every server on core 0 (all started once; only the one under load uses "
        f"the core); {s['rounds']} rounds, each measuring every server back to back on each "
        f"file, {num(s['duration_s'])} s per point after a {num(s['warmup_s'])} s warm-up. "
        "req/s are medians over the rounds; a ratio is the median of the rounds' own "
        'ratios to nginx. MiB/s is req/s times the file size (bodies only). "Server core '
        "busy\" is the server's CPU time over the point's duration: near 100% the server "
        "was the limit, well below it wrk (one thread, parsing every byte) or the kernel "
        "was, and the ratio says less about the server. "
        "nginx runs one worker with `sendfile`, `tcp_nopush`, an open file cache and no "
        "access log; aiohttp serves `web.static` on asyncio's loop "
        "(`bench/peers/aiohttp_static.py`); `python -m http.server` answers in HTTP/1.0 and "
        "closes every connection, so wrk reconnects for each request"
        + (
            "."
            if stdlib_conns == conns["treadle"]
            else f", and it gets {stdlib_conns} connections rather than {conns['treadle']}."
        )
        + " Before any point, each server had to answer each file with exactly its bytes.",
        "",
    ]
    if (figures / STATIC_FIGURE).exists():
        out += [f"![requests per second per server]({STATIC_FIGURE})", ""]
    for label in s["files"]:
        rows = []
        for server, e in summary[label].items():
            rows.append(
                [
                    server,
                    num(e.get("connections")),
                    num(e.get("req_per_s")),
                    num(e.get("mib_per_s")),
                    "1.00x" if server == "nginx" else times(e.get("ratio_to_nginx")),
                    num(e.get("latency_p50_ms"), 2),
                    num(e.get("latency_p99_ms"), 2),
                    num(e.get("cpu_us_per_req"), 1),
                    percent(e.get("server_core_busy")),
                ]
            )
        out += [
            f"**{STATIC_FILES[label]} file** (target: treadle >= {doc['targets'][label]:g}x nginx)",
            "",
            table(
                [
                    "server",
                    "connections",
                    "req/s",
                    "MiB/s",
                    "x nginx",
                    "p50 ms",
                    "p99 ms",
                    "server CPU µs/req",
                    "server core busy",
                ],
                rows,
            ),
            "",
        ]
    big = summary.get("1GiB", {})
    rows = [
        [
            server,
            num(e.get("mib_per_s")),
            num(e.get("time_total_s"), 2),
            "1.00x" if server == "nginx" else times(e.get("ratio_to_nginx")),
            ", ".join(num(v) for v in e.get("runs", [])) or "–",
        ]
        for server, e in big.items()
    ]
    out += [
        f"**1 GiB download** (target: treadle >= {doc['targets']['1GiB']:g}x nginx): "
        f"{s.get('big_downloads_per_round', 1)} `curl -o /dev/null` on core 1 per server and "
        "round, the servers alternating, a round's figure being their median; the "
        f"file is {s.get('big_file', 'real data')}, checked byte for byte through each "
        "server first (which also put it in the page cache).",
        "",
        table(["server", "MiB/s", "seconds", "x nginx", "MiB/s per round"], rows),
        "",
    ]
    rows = []
    for server, m in doc.get("memory", {}).items():
        done = m.get("clients_done") or {}
        statuses = ", ".join(f"{k}: {v}" for k, v in (done.get("statuses") or {}).items())
        per_client = done.get("body_bytes_total", 0) / max(1, done.get("clients", 0) or 1)
        rows.append(
            [
                server,
                num(m.get("rss_before_kib")),
                num(m.get("rss_peak_kib")),
                num(m.get("rss_after_kib")),
                num(m.get("rss_growth_kib")),
                statuses or "–",
                num(per_client / 1024),
            ]
        )
    out += [
        f"**Memory under slow downloads**: {s['slow_clients']} clients "
        "(`bench/slow_reader.py`, one process on core 1) each ask for the 1 GiB file and read "
        f"{num(s['slow_rate_bytes_per_s'] / 1024)} KiB a second for "
        f"{num(s['slow_seconds'])} s; the server's RSS (nginx: master and worker together) "
        'sampled every 0.1 s meanwhile, "after" once it has closed their sockets.',
        "",
        table(
            [
                "server",
                "RSS before KiB",
                "peak KiB",
                "after KiB",
                "growth KiB",
                "statuses",
                "KiB read per client",
            ],
            rows,
        ),
        "",
        errors_block(doc),
    ]
    return "\n".join(out)


def static_figures(doc: Doc, folder: Path) -> None:
    """A bar chart of req/s per server, one panel per file size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(doc["settings"]["files"])
    colors = {
        "treadle": "tab:blue",
        "nginx": "tab:green",
        "aiohttp": "tab:orange",
        "http.server": "tab:gray",
    }
    fig, grid = plt.subplots(1, len(labels), figsize=(8.5, 3.8), dpi=110, squeeze=False)
    for ax, label in zip(grid[0], labels, strict=True):
        per_server = doc["summary"][label]
        names = list(per_server)
        values = [per_server[n].get("req_per_s") or 0 for n in names]
        bars = ax.bar(names, values, color=[colors.get(n, "tab:purple") for n in names])
        for bar, name in zip(bars, names, strict=True):
            r = per_server[name].get("ratio_to_nginx")
            text = "1.00x" if name == "nginx" else ("–" if r is None else f"{r:.2f}x")
            if not bar.get_height():
                text = "not measured"
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_title(f"{STATIC_FILES[label]} file", fontsize=10)
        ax.set_ylabel("requests per second")
        ax.grid(True, axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    m = doc.get("machine", {})
    fig.suptitle(
        "static files under wrk (ratios to nginx) — "
        f"{m.get('date', '')[:10]}, {(m.get('git_commit') or '')[:8]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(folder / STATIC_FIGURE)
    plt.close(fig)


# ----------------------------------------------------------------------------- wsgi

WSGI_FIGURE = "wsgi-throughput.png"
WSGI_CASES = {
    "hello": "hello app",
    "flask-hello": "Flask hello route",
    "flask-json": "Flask JSON route",
}
WSGI_SERVER_TEXT = {
    "treadle": "treadle, its WSGI worker threads (`--threads` default)",
    "treadle-threads-0": "treadle `--threads 0`: the application called inline on the loop",
    "waitress": "waitress, 4 threads",
    "gunicorn-sync": "gunicorn, one sync worker (closes every connection)",
    "gunicorn-gthread": "gunicorn, one gthread worker with 4 threads",
    "uvicorn": "uvicorn (uvloop, httptools) serving the raw ASGI hello",
    "granian": "granian, WSGI interface, one worker, HTTP/1",
}


def wsgi_refs(doc: Doc, case: str) -> list[str]:
    """The reference servers of the part ``case`` belongs to."""
    s = doc["settings"]
    for part, cases in s["cases"].items():
        if case in cases:
            return list(s["references"][part])
    return []


def wsgi_threads(doc: Doc) -> str:
    return f"{doc['settings'].get('treadle_default_threads', 8)} threads"


def wsgi_rows(doc: Doc) -> list[Row]:
    rows: list[Row] = []
    summary = doc["summary"]
    for v in doc.get("verdicts", []):
        entry = summary.get(v["case"], {}).get(v["server"], {})
        peer = summary.get(v["case"], {}).get(v["reference"], {})
        how = wsgi_threads(doc) if v["server"] == "treadle" else "`--threads 0`"
        rows.append(
            (
                f"WSGI, {WSGI_CASES.get(v['case'], v['case'])} ({how})",
                f"{num(entry.get('req_per_s'))} req/s",
                f"{v['reference']} {num(peer.get('req_per_s'))} req/s",
                times(v["ratio"]),
                f">= {v['target']:g}x",
                met(v["met"]),
            )
        )
    for case in ("flask-hello", "flask-json"):
        entry = summary.get(case, {}).get("treadle")
        peer = summary.get(case, {}).get("waitress", {})
        if entry is None:
            continue
        rows.append(
            (
                f"WSGI, {WSGI_CASES[case]} ({wsgi_threads(doc)})",
                f"{num(entry.get('req_per_s'))} req/s",
                f"waitress {num(peer.get('req_per_s'))} req/s",
                times((entry.get("ratio_to") or {}).get("waitress")),
                "–",
                "–",
            )
        )
    busy = doc.get("busy") or {}
    loaded = busy.get("loaded", {}).get("static", {})
    idle = busy.get("idle", {}).get("static", {})
    if loaded:
        rows.append(
            (
                "WSGI, p99 of a `--static` file while every worker thread blocks",
                f"{num(loaded.get('p99_ms'), 2)} ms",
                f"idle {num(idle.get('p99_ms'), 2)} ms",
                times(ratio_of(loaded.get("p99_ms"), idle.get("p99_ms"))),
                "–",
                "–",
            )
        )
    return rows


def wsgi_case_table(doc: Doc, case: str) -> str:
    refs = wsgi_refs(doc, case)
    rows = []
    for server, e in doc["summary"][case].items():
        if e.get("req_per_s") is None:
            rows.append([server] + ["not measured"] + ["–"] * (len(refs) + 3))
            continue
        ratios = e.get("ratio_to") or {}
        rows.append(
            [server, num(e["req_per_s"])]
            + ["1.00x" if ref == server else times(ratios.get(ref)) for ref in refs]
            + [
                num(e.get("latency_p50_ms"), 2),
                num(e.get("latency_p99_ms"), 2),
                num(e.get("cpu_us_per_req"), 1),
            ]
        )
    header = ["server", "req/s"] + [f"x {ref}" for ref in refs]
    header += ["p50 ms", "p99 ms", "server CPU µs/req"]
    return table(header, rows)


def wsgi_section(doc: Doc, figures: Path) -> str:
    s = doc["settings"]
    busy_s = s["busy"]
    servers = [sv for sv in WSGI_SERVER_TEXT if sv in s["commands"]["hello"]]
    described = "; ".join(f"`{sv}`: {WSGI_SERVER_TEXT[sv]}" for sv in servers)
    out = [
        f"wrk with one thread and {s['connections']} keep-alive connections on core 1, every "
        "server on core 0 with one worker process (a gunicorn or granian master and its "
        "worker pinned together), all of a part started once; "
        f"{s['rounds']} rounds, each measuring every server back to back, "
        f"{num(s['duration_s'])} s per point after a {num(s['warmup_s'])} s warm-up. req/s "
        "are medians over the rounds; a ratio is the median of the rounds' own ratios. "
        "Every WSGI server runs the same applications, `bench/peers/wsgi_apps.py`: `hello` "
        "(a prebuilt status, header list and body) and a Flask application (`/` the same "
        "hello, `/json` a small document through `jsonify`). Servers: " + described + ". "
        "Server CPU is `utime + stime` of the whole process tree per request.",
        "",
    ]
    if s.get("treadle_wsgi_missing"):
        out += [f"treadle was not measured: {s['treadle_wsgi_missing']}.", ""]
    if (figures / WSGI_FIGURE).exists():
        out += [f"![requests per second per WSGI server]({WSGI_FIGURE})", ""]
    for case in doc["summary"]:
        out += [f"**{WSGI_CASES.get(case, case)}**", "", wsgi_case_table(doc, case), ""]
    verdicts = doc.get("verdicts") or []
    if verdicts:
        out += [
            "Targets:",
            "",
            table(
                ["case", "server", "reference", "target", "ratio", "met"],
                [
                    [
                        v["case"],
                        v["server"],
                        v["reference"],
                        f">= {v['target']:g}x",
                        times(v["ratio"]),
                        met(v["met"]),
                    ]
                    for v in verdicts
                ],
                "lllrrc",
            ),
            "",
        ]
    busy = doc.get("busy") or {}
    out += [
        f"**The loop while every worker thread blocks.** One wrk keeps "
        f"{busy_s['slow_connections']} connections on `{busy_s['slow_path']}`, which sleeps "
        f"{num(busy_s['slow_sleep_s'] * 1000)} ms, so treadle's {wsgi_threads(doc)} are always "
        "busy and the rest of the requests wait in its queue. Meanwhile a probe in the "
        "harness (core 1; one keep-alive connection per route, a request every "
        f"{num(busy_s['probe_gap_s'] * 1000)} ms, for {num(busy_s['probe_seconds'])} s) times "
        f"the fast WSGI route `{busy_s['fast_path']}`, which queues behind the sleeping "
        f"requests in the same pool, and `{busy_s['static_path']}`, a file mounted with "
        "`--static` and answered on the loop without entering the pool. The same probe "
        "runs first with no load. Medians over the rounds of each probe's own p50, p99 and "
        "maximum (milliseconds, from the write of a request to the end of its body).",
        "",
    ]
    if busy:
        rows = []
        for name, label in (("fast", "fast WSGI route"), ("static", "`--static` file")):
            i, b = busy["idle"][name], busy["loaded"][name]
            rows.append(
                [
                    label,
                    num(i["p50_ms"], 2),
                    num(i["p99_ms"], 2),
                    num(b["p50_ms"], 2),
                    num(b["p99_ms"], 2),
                    num(b["max_ms"], 2),
                    num(b["requests"]),
                ]
            )
        out += [
            table(
                [
                    "probe",
                    "idle p50",
                    "idle p99",
                    "threads busy p50",
                    "threads busy p99",
                    "threads busy max",
                    "requests (busy)",
                ],
                rows,
            ),
            "",
        ]
        slow = busy.get("slow", {})
        out += [
            f"The slow route meanwhile: {num(slow.get('req_per_s'), 1)} req/s "
            f"(p50 {num(slow.get('latency_p50_ms'))} ms, p99 {num(slow.get('latency_p99_ms'))} "
            f"ms as wrk saw it); the server had {num(slow.get('server_threads'))} threads "
            "(its worker threads and the loop).",
            "",
        ]
    else:
        out += ["The busy part was not measured.", ""]
    out.append(errors_block(doc))
    return "\n".join(out)


def wsgi_figures(doc: Doc, folder: Path) -> None:
    """A bar chart of req/s per server, one panel per case."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(doc["summary"])
    if not cases:
        return
    colors = {
        "treadle": "tab:blue",
        "treadle-threads-0": "tab:cyan",
        "waitress": "tab:orange",
        "gunicorn-sync": "tab:red",
        "gunicorn-gthread": "tab:pink",
        "uvicorn": "tab:gray",
        "granian": "tab:green",
    }
    widths = [len(doc["summary"][c]) for c in cases]
    fig, grid = plt.subplots(
        1, len(cases), figsize=(10, 4.2), dpi=110, squeeze=False, width_ratios=widths
    )
    for ax, case in zip(grid[0], cases, strict=True):
        per_server = doc["summary"][case]
        names = list(per_server)
        values = [per_server[n].get("req_per_s") or 0 for n in names]
        bars = ax.bar(names, values, color=[colors.get(n, "tab:purple") for n in names])
        ref = "waitress"
        for bar, name in zip(bars, names, strict=True):
            r = (per_server[name].get("ratio_to") or {}).get(ref)
            text = "1.00x" if name == ref else ("" if r is None else f"{r:.2f}x")
            if not bar.get_height():
                text = "not measured"
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
            )
        ax.set_title(WSGI_CASES.get(case, case), fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelsize=7, labelrotation=35)
    grid[0][0].set_ylabel("requests per second")
    m = doc.get("machine", {})
    fig.suptitle(
        "WSGI servers under wrk, 50 keep-alive connections (ratios to waitress) — "
        f"{m.get('date', '')[:10]}, {(m.get('git_commit') or '')[:8]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(folder / WSGI_FIGURE)
    plt.close(fig)


# ----------------------------------------------------------------------------- registry


RENDERERS: dict[str, tuple[str, Callable[[Doc], list[Row]], Callable[[Doc, Path], str]]] = {
    "hello": ("Hello handler", hello_rows, hello_section),
    "stages": ("One hello request, stage by stage", stages_rows, stages_section),
    "static": ("Static files", static_rows, static_section),
    "wsgi": ("WSGI applications", wsgi_rows, wsgi_section),
    "parser": ("The HTTP core alone", parser_rows, parser_section),
    "lab": ("I/O models: idle connections", lab_rows, lab_section),
    "profile": ("Where the time and memory go", lambda doc: [], profile_section),
}
#: scenarios that draw figures, called with the result and the docs folder
FIGURES: dict[str, Callable[[Doc, Path], None]] = {
    "lab": lab_figures,
    "static": static_figures,
    "stages": stages_figures,
    "wsgi": wsgi_figures,
}


def load_results(folder: Path) -> dict[str, Doc]:
    docs = {}
    for path in sorted(folder.glob("*.json")):
        try:
            docs[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            print(f"skipping {path}: {exc}", file=sys.stderr)
    ordered = {name: docs.pop(name) for name in ORDER if name in docs}
    ordered.update(docs)
    return ordered


def render(docs: dict[str, Doc], figures: Path) -> str:
    parts = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/report.py from bench/results/*.json: edit those, not this. -->",
        "",
        "Every figure below comes from `python bench/run.py`, which measures treadle next to "
        "a peer in the same run: the server pinned to core 0, the load generator to core 1, "
        "over 127.0.0.1, in interleaved rounds, reported as medians and ratios. The machine "
        "is small (2 cores) and shared, so absolute numbers move between runs; the ratios "
        "are what to read.",
        "",
        "## Where treadle stands",
        "",
    ]
    rows: list[list[str]] = []
    for name, doc in docs.items():
        renderer = RENDERERS.get(name)
        if renderer is not None:
            rows += [list(r) for r in renderer[1](doc)]
    parts.append(
        table(["measurement", "treadle", "peer", "ratio", "target", "met"], rows, "lrrrrc")
    )
    parts.append("")
    for name, doc in docs.items():
        renderer = RENDERERS.get(name)
        title = renderer[0] if renderer else doc.get("title", name)
        parts += [f"## {title}", "", f"Scenario `{name}`: {doc.get('title', '')}.", ""]
        if renderer is not None:
            parts.append(renderer[2](doc, figures))
        else:
            parts.append(f"No renderer yet; see `bench/results/{name}.json`.")
        parts += ["", machine_line(doc), ""]
    full = {n: d["elapsed_s"] for n, d in docs.items() if not d.get("quick") and d.get("elapsed_s")}
    took = sum(full.values())
    each = ", ".join(f"{name} {seconds / 60:.1f}" for name, seconds in full.items())
    parts += [
        "## Running it",
        "",
        f"The results above took {took / 60:.0f} minutes to measure "
        f"({each} minutes). "
        "`--quick` takes about two minutes and writes to `bench/results/tmp/`, "
        "so it never replaces these results.",
        "",
        "```sh",
        "python bench/run.py                    # every scenario, three rounds",
        "python bench/run.py --quick            # about two minutes, results in bench/results/tmp/",
        "python bench/run.py --scenario hello   # one scenario (repeatable)",
        "python bench/report.py                 # this page and the figures, from the JSON",
        "```",
        "",
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--docs", type=Path, default=REPO_DIR / "docs")
    args = parser.parse_args(argv)
    docs = load_results(args.results)
    args.docs.mkdir(parents=True, exist_ok=True)
    for name, draw in FIGURES.items():
        if name in docs:
            draw(docs[name], args.docs)
    if "lab" in docs:
        update_io_models(args.docs, docs["lab"])
    page = render(docs, args.docs)
    target = args.docs / "benchmarks.md"
    target.write_text(page)
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
