"""aiohttp serving a folder with its static route, the Python peer of the ``static`` scenario.

    python bench/peers/aiohttp_static.py --port PORT --root DIR

One process on asyncio's own event loop, not uvloop: aiohttp's file responses go
through ``loop.sendfile``, which the default selector loop turns into ``os.sendfile``,
while uvloop has no native sendfile and would copy every file through user space. The
access log is off, as it is for every server of the scenario.
"""

from __future__ import annotations

import argparse

from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True, help="the folder to serve at /")
    args = parser.parse_args()
    app = web.Application()
    app.add_routes([web.static("/", args.root)])
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
