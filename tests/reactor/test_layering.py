"""Imports point downward: the reactor uses the pollers and nothing of ours above them."""

from __future__ import annotations

import json
import subprocess
import sys


def test_reactor_imports_only_poll_and_itself() -> None:
    code = (
        "import json, sys, treadle.reactor; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('treadle.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    assert all(name.startswith(("treadle.poll", "treadle.reactor")) for name in loaded), loaded
    assert "treadle.reactor.loop" in loaded
