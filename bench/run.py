"""treadle's benchmark: one harness, many scenarios.

    python bench/run.py [--quick] [--scenario NAME ...] [--rounds N] [--no-report]

Runs the scenarios (all by default), writes ``bench/results/<scenario>.json`` for each,
then regenerates ``docs/benchmarks.md`` and the figures from every JSON file
(``bench/report.py``). ``--quick`` shortens every point for development (about two
minutes in all) and writes to ``bench/results/tmp/`` without touching the docs; a full
run is what the committed results come from.

The harness pins itself to the load-generator core, installs wrk and the ``bench`` extra
when they are missing, raises its open-file limit (children inherit it) and stops every
process it started on the way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from typing import Any, NoReturn

from harness import (
    LOADGEN_CPU,
    Context,
    Options,
    Processes,
    Progress,
    ensure_dependencies,
    machine_info,
    raise_nofile_limit,
    write_result,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from scenarios import ALL

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short points, one round")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(ALL),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(ALL)}",
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 1)")
    parser.add_argument(
        "--no-report", action="store_true", help="do not regenerate docs/benchmarks.md"
    )
    return parser.parse_args(argv)


def _on_sigterm(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from scenarios import ALL

    names = args.scenario or list(ALL)
    if args.quick:
        opts = Options(quick=True, rounds=args.rounds or 1, duration_s=1.0, warmup_s=1.0)
    else:
        opts = Options(rounds=args.rounds or 3)
    if opts.rounds < 1:
        print("--rounds must be at least 1", file=sys.stderr)
        return 2

    ensure_dependencies(need_wrk=True)
    os.sched_setaffinity(0, {LOADGEN_CPU})
    limits = raise_nofile_limit()
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in background

    progress = Progress()
    procs = Processes()
    ctx = Context(options=opts, progress=progress, procs=procs)
    failed = []
    try:
        for name in names:
            scenario = ALL[name]
            machine = machine_info()
            machine["nofile_limit"] = list(limits)
            started = time.monotonic()
            try:
                result = scenario.run(ctx)
            except Exception:  # one broken scenario must not cost the others
                traceback.print_exc()
                failed.append(name)
                continue
            finally:
                procs.stop_all()
            document = {
                "scenario": name,
                "quick": opts.quick,
                "machine": {
                    **machine,
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
                },
                "elapsed_s": round(time.monotonic() - started, 1),
                **result,
            }
            # a quick run never overwrites the committed results of a full run
            path = write_result(name, document, quick=opts.quick)
            progress.say(f"wrote {path.relative_to(path.parents[2])}")
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
    progress.scenario = "run"
    progress.say(f"all done, {len(names) - len(failed)} of {len(names)} scenarios")

    if not args.no_report and not opts.quick:
        import report

        report.main([])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
