"""treadle's CLI under cProfile or tracemalloc, for the ``profile`` scenario.

    python bench/peers/instrumented_treadle.py cprofile OUT.json -- run treadle.demo:hello ...
    python bench/peers/instrumented_treadle.py tracemalloc OUT.json -- run treadle.demo:hello ...

``cprofile`` profiles the loop thread from start to shutdown (SIGTERM stops treadle
cleanly) and writes the functions that cost most, by own time. ``tracemalloc`` starts
tracing before treadle imports anything; each line ``snapshot NAME`` on stdin makes a
side thread take a snapshot (the loop thread is never touched) and write the biggest
allocation sites, and the count and size of live objects by type, to OUT.json under
NAME, then answer ``ok`` on stdout.
"""

from __future__ import annotations

import cProfile
import gc
import json
import pstats
import sys
import threading
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

TOP = 25


def cprofile_report(profile: cProfile.Profile) -> dict[str, Any]:
    stats = pstats.Stats(profile)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, func), (cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({func})",
                "calls": nc,
                "primitive_calls": cc,
                "own_s": round(tt, 4),
                "cumulative_s": round(ct, 4),
                "own_share": round(tt / total, 4) if total else None,
            }
        )
    rows.sort(key=lambda r: r["own_s"], reverse=True)
    return {"total_s": round(total, 3), "top_by_own_time": rows[:TOP]}


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


class MemoryProbe:
    """Snapshots of the heap, each compared with the one before."""

    def __init__(self) -> None:
        self.previous: tracemalloc.Snapshot | None = None
        self.previous_types: Counter[str] = Counter()

    def report(self) -> dict[str, Any]:
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [
                tracemalloc.Filter(False, tracemalloc.__file__),
                tracemalloc.Filter(False, "<frozen *>"),
            ]
        )
        traced, peak = tracemalloc.get_traced_memory()
        types: Counter[str] = Counter(type(obj).__qualname__ for obj in gc.get_objects())
        out: dict[str, Any] = {
            "traced_kib": round(traced / 1024, 1),
            "peak_kib": round(peak / 1024, 1),
            "top_lines": [
                {
                    "where": f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}",
                    "kib": round(s.size / 1024, 1),
                    "blocks": s.count,
                }
                for s in snapshot.statistics("lineno")[:TOP]
            ],
        }
        if self.previous is not None:
            diffs = snapshot.compare_to(self.previous, "lineno")
            out["growth_by_line"] = [
                {
                    "where": f"{_short(d.traceback[0].filename)}:{d.traceback[0].lineno}",
                    "bytes": d.size_diff,
                    "blocks": d.count_diff,
                }
                for d in sorted(diffs, key=lambda d: d.size_diff, reverse=True)[:TOP]
            ]
            grown = types.copy()
            grown.subtract(self.previous_types)
            out["growth_of_gc_objects_by_type"] = dict(grown.most_common(TOP))
        self.previous, self.previous_types = snapshot, types
        return out


def main() -> int:
    mode, out_path = sys.argv[1], Path(sys.argv[2])
    if sys.argv[3] != "--":
        raise SystemExit("usage: instrumented_treadle.py MODE OUT.json -- TREADLE ARGS")
    argv = sys.argv[4:]
    if mode == "tracemalloc":
        tracemalloc.start(1)
        reports: dict[str, Any] = {}
        probe = MemoryProbe()

        def answer_snapshots() -> None:
            for line in sys.stdin:
                cmd, _, name = line.strip().partition(" ")
                if cmd == "snapshot":
                    reports[name] = probe.report()
                    out_path.write_text(json.dumps(reports, indent=1))
                    print("ok", flush=True)

        threading.Thread(target=answer_snapshots, daemon=True).start()

    from treadle.cli import main as treadle_main

    if mode == "cprofile":
        profile = cProfile.Profile()
        try:
            code = profile.runcall(treadle_main, argv)
        finally:
            out_path.write_text(json.dumps(cprofile_report(profile), indent=1))
        return int(code or 0)
    return int(treadle_main(argv) or 0)


if __name__ == "__main__":
    sys.exit(main())
