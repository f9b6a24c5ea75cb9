"""Thread-per-connection baseline for the I/O-model lab: blocking sockets, treadle's core.

    python bench/peers/threaded_server.py --port PORT [--stack-kib 128]

One thread per accepted connection blocks in ``recv`` and ``sendall`` and drives the
same sans-IO ``ServerConnection`` as treadle's reactor, answering every request with the
hello response. ``TCP_NODELAY`` is set on every connection, as treadle does, so that the
only difference from the reactor is the I/O model: a blocked thread per connection
instead of one loop asking a poller which connections are ready.

Threads get a small stack (``threading.stack_size``) so that 10,000 of them fit; when a
thread cannot be started the connection is closed, counted and reported on stderr, and
the server goes on serving the connections it has.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import threading
import time
from types import FrameType

from treadle.http import (
    NEED_DATA,
    EndOfMessage,
    Limits,
    ProtocolError,
    Request,
    ResponseDefaults,
    ServerConnection,
    error_response,
    format_date,
)

BODY = b"Hello, world!"
HEADERS = [(b"content-type", b"text/plain")]
LIMITS = Limits()
DEFAULTS = ResponseDefaults(server=b"treadle-threaded", date=format_date(time.time()))


def refresh_date() -> None:
    """Keep the shared Date field current, once a second, as treadle's driver does."""
    while True:
        time.sleep(1.0)
        DEFAULTS.date = format_date(time.time())


def serve(sock: socket.socket) -> None:
    conn = ServerConnection(LIMITS, defaults=DEFAULTS)
    try:
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif type(event) is EndOfMessage:
                sock.sendall(conn.send_response(200, HEADERS, BODY))
                if not conn.keep_alive:
                    return
            elif type(event) is Request:
                continue
            else:  # the peer closed (ConnectionClosed), or PAUSED after a closing response
                return
    except ProtocolError as error:
        with contextlib.suppress(OSError):
            sock.sendall(error_response(error.status, error.message, DEFAULTS.date))
    except OSError:
        pass
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backlog", type=int, default=4096)
    parser.add_argument("--stack-kib", type=int, default=128)
    args = parser.parse_args(argv)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    threading.stack_size(args.stack_kib * 1024)
    threading.Thread(target=refresh_date, daemon=True).start()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(args.backlog)
    refused = 0
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            threading.Thread(target=serve, args=(sock,), daemon=True).start()
        except RuntimeError as exc:  # "can't start new thread"
            sock.close()
            refused += 1
            if refused == 1 or refused % 1000 == 0:
                print(f"refused {refused} connection(s): {exc}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
