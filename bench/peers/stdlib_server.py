"""The standard library's ThreadingHTTPServer as users know it, for the I/O-model lab.

    python bench/peers/stdlib_server.py --port PORT

A ``BaseHTTPRequestHandler`` speaking HTTP/1.1 (so connections stay open) answers the
hello response. Nothing is tuned except the listen backlog, raised to the one every
server of the lab gets so that opening thousands of idle connections does not stall on
SYN retries; the defaults that matter are kept on purpose: one thread per connection
with the default stack size, and headers and body written separately without
``TCP_NODELAY``. With Nagle's algorithm the body then waits for the client's delayed ACK
of the headers, about 40 ms per keep-alive response on Linux.
"""

from __future__ import annotations

import argparse
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

BODY = b"Hello, world!"


class HelloHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass  # no access log, like every other server of the lab


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backlog", type=int, default=4096)
    args = parser.parse_args(argv)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    ThreadingHTTPServer.request_queue_size = args.backlog
    with ThreadingHTTPServer((args.host, args.port), HelloHandler) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
