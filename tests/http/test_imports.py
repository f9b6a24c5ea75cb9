"""The HTTP core is sans-IO: importing it must not pull in sockets, pollers, clocks or logs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import treadle.http

HTTP_DIR = Path(treadle.http.__file__).parent
SRC_DIR = HTTP_DIR.parent.parent
# Never loaded by `import treadle.http`, in a fresh interpreter.
ABSENT = ["socket", "select", "selectors", "logging", "threading", "asyncio"]
# Not imported by the core; `time` may be loaded at interpreter start-up, so for these the
# check is that the import did not add them, and that no module of the core names them.
NOT_IMPORTED = ABSENT + ["time", "datetime", "treadle.poll", "treadle.reactor", "treadle.server"]

PROBE = """
import json, sys
before = set(sys.modules)
sys.path.insert(0, {src!r})
import treadle.http
print(json.dumps({{"before": sorted(before), "after": sorted(sys.modules)}}))
"""


def test_fresh_import_loads_no_io_modules() -> None:
    # -I -S: no site, no user paths, no PYTHON* environment; the source path is added by hand.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE.format(src=str(SRC_DIR))],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    modules = json.loads(result.stdout)
    after, added = set(modules["after"]), set(modules["after"]) - set(modules["before"])
    assert "treadle.http" in added
    assert [name for name in ABSENT if name in after] == []
    assert [name for name in NOT_IMPORTED if name in added] == []


def test_core_modules_import_nothing_above_them() -> None:
    forbidden = {name.split(".")[0] for name in NOT_IMPORTED} - {"treadle"}
    for path in sorted(HTTP_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
                assert not name.startswith("treadle.") or name.startswith("treadle.http"), (
                    f"{path.name} imports {name}"
                )
