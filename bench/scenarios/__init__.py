"""The scenarios of the benchmark, in the order a full run takes them.

Each module has ``NAME``, ``TITLE``, ``count_points(ctx)`` and ``run(ctx)``, which returns
the JSON-ready result of the scenario; ``run.py`` adds the machine and writes it.
"""

from __future__ import annotations

from types import ModuleType

from scenarios import hello, lab, parser, profile, stages, static, wsgi

ALL: dict[str, ModuleType] = {
    mod.NAME: mod for mod in (hello, stages, parser, lab, profile, static, wsgi)
}
